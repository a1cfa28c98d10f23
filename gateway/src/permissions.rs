//! Each tenant's permissions per role, as the gateway checks them: read from the store and kept for a
//! few seconds per tenant, so a check costs no store read on most requests. A change made on this
//! node applies at once; on other nodes within [`TTL`].

use crate::error::ApiError;
use dashmap::DashMap;
use schema::TenantId;
use schema::permission::RolePermissions;
use schema::store::Store;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a tenant's permissions are kept before they are read again.
pub const TTL: Duration = Duration::from_secs(10);
/// Tenants kept at once; past it the cache starts over.
const MAX_TENANTS: usize = 10_000;

/// The cache.
#[derive(Default)]
pub struct PermissionCache {
    entries: DashMap<TenantId, (Instant, Arc<RolePermissions>)>,
    /// Grows with every `forget`: a read that started before one does not store what it read.
    generation: std::sync::atomic::AtomicU64,
}

impl PermissionCache {
    /// The tenant's permissions per role (the defaults where it changed nothing).
    pub async fn of(
        &self,
        store: &dyn Store,
        tenant: TenantId,
    ) -> Result<Arc<RolePermissions>, ApiError> {
        if let Some(entry) = self.entries.get(&tenant)
            && entry.0.elapsed() < TTL
        {
            return Ok(Arc::clone(&entry.1));
        }
        use std::sync::atomic::Ordering;
        let (read_at, generation) = (Instant::now(), self.generation.load(Ordering::SeqCst));
        let permissions = Arc::new(store.role_permissions(tenant).await?.unwrap_or_default());
        if self.entries.len() >= MAX_TENANTS {
            self.entries.clear();
        }
        if self.generation.load(Ordering::SeqCst) == generation {
            self.entries
                .insert(tenant, (read_at, Arc::clone(&permissions)));
        }
        Ok(permissions)
    }

    /// Forgets a tenant's entry (after a change on this node).
    pub fn forget(&self, tenant: TenantId) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.entries.remove(&tenant);
    }
}
