//! Each tenant's permissions per role, as the gateway checks them: read from the store and kept for a
//! few seconds per tenant (`cache::TenantCache`), so a check costs no store read on most requests. A
//! change made on this node applies at once; on other nodes within [`TTL`].

use crate::cache::TenantCache;
use crate::error::ApiError;
use schema::TenantId;
use schema::permission::RolePermissions;
use schema::store::Store;
use std::sync::Arc;
use std::time::Duration;

/// How long a tenant's permissions are kept before they are read again.
pub const TTL: Duration = Duration::from_secs(10);

/// The cache.
pub struct PermissionCache(TenantCache<RolePermissions>);

impl Default for PermissionCache {
    fn default() -> Self {
        Self(TenantCache::new(TTL))
    }
}

impl PermissionCache {
    /// The tenant's permissions per role (the defaults where it changed nothing).
    pub async fn of(
        &self,
        store: &dyn Store,
        tenant: TenantId,
    ) -> Result<Arc<RolePermissions>, ApiError> {
        self.0
            .get(tenant, || async {
                Ok(store.role_permissions(tenant).await?.unwrap_or_default())
            })
            .await
    }

    /// Forgets a tenant's entry (after a change on this node).
    pub fn forget(&self, tenant: TenantId) {
        self.0.forget(tenant);
    }
}

/// What `agent` may see of its tenant (`schema::visibility`), from the cached permissions and flags.
pub async fn viewer(
    state: &crate::AppState,
    agent: &schema::records::Agent,
) -> Result<schema::visibility::Viewer, ApiError> {
    let permissions = state
        .permissions
        .of(state.store.as_ref(), agent.tenant_id)
        .await?;
    let tenant = state
        .tenancy
        .view(state.store.as_ref(), agent.tenant_id)
        .await?;
    Ok(schema::visibility::Viewer::new(
        agent,
        &permissions,
        &tenant.flags,
    ))
}
