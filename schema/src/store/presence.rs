//! The presence aggregate: each tenant's agents who are connected, with an expiry (see
//! `schema::presence`).

use super::StoreResult;
use crate::ids::{AgentId, TenantId};
use crate::presence::Presence;
use async_trait::async_trait;

/// Presence.
#[async_trait]
pub trait PresenceStore: Send + Sync + 'static {
    /// Records (or renews) an agent's presence.
    async fn put_presence(&self, tenant: TenantId, presence: &Presence) -> StoreResult<()>;
    /// The agent went offline (its last socket closed).
    async fn remove_presence(&self, tenant: TenantId, agent: AgentId) -> StoreResult<()>;
    /// The tenant's recorded presences, expired ones possibly included (callers compare `until`).
    async fn presence(&self, tenant: TenantId) -> StoreResult<Vec<Presence>>;
}
