//! The accounts aggregate: tenants and the agents who sign in to them.
//!
//! **Architecture Invariant:** an agent is found by id only together with its tenant: a backend never
//! answers with another tenant's agent.

use super::StoreResult;
use crate::ids::{AgentId, TenantId};
use crate::records::{Agent, Tenant};
use async_trait::async_trait;

/// Tenants and agents.
#[async_trait]
pub trait AccountStore: Send + Sync + 'static {
    async fn create_tenant(&self, tenant: &Tenant) -> StoreResult<()>;
    async fn tenant(&self, id: TenantId) -> StoreResult<Option<Tenant>>;
    /// Up to `limit` tenants after `after` in the store's own order (by id; by token on CQL): every
    /// tenant once over the pages.
    async fn tenants(&self, after: Option<TenantId>, limit: usize) -> StoreResult<Vec<Tenant>>;
    /// Stores an agent and one access token, kept only as its SHA-256.
    async fn create_agent(&self, agent: &Agent, token_sha256: [u8; 32]) -> StoreResult<()>;
    async fn agent_by_token(&self, token_sha256: [u8; 32]) -> StoreResult<Option<Agent>>;
    /// The tenant's agent with this id; `None` for an unknown id or another tenant's agent.
    async fn agent(&self, tenant: TenantId, id: AgentId) -> StoreResult<Option<Agent>>;
    /// Replaces a stored agent's record (its name, role, default connection); `false`, writing
    /// nothing, when its tenant has no such agent. Tokens and sessions already issued keep working
    /// and act as the record says from their next request (an access token within its lifetime).
    async fn update_agent(&self, agent: &Agent) -> StoreResult<bool>;
    /// The tenant's agents, at most `limit`, in no particular order.
    async fn agents(&self, tenant: TenantId, limit: usize) -> StoreResult<Vec<Agent>>;
    /// The tenant's permissions per role where its admins changed the defaults (`None`: defaults).
    async fn role_permissions(
        &self,
        tenant: TenantId,
    ) -> StoreResult<Option<crate::permission::RolePermissions>>;
    async fn put_role_permissions(
        &self,
        tenant: TenantId,
        permissions: &crate::permission::RolePermissions,
    ) -> StoreResult<()>;
}
