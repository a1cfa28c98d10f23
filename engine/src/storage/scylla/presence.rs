//! CQL presence (migration 0007): one row per connected agent, expiring by itself (TTL) when its node
//! stops renewing it.

use super::ScyllaStore;
use crate::storage::codec::to_json;
use crate::storage::observe;
use async_trait::async_trait;
use schema::presence::{EXPIRES_AFTER_SECS, Presence};
use schema::store::{PresenceStore, StoreResult};
use schema::{AgentId, TenantId};

#[async_trait]
impl PresenceStore for ScyllaStore {
    async fn put_presence(&self, tenant: TenantId, presence: &Presence) -> StoreResult<()> {
        observe("put_presence", async {
            let ttl = i32::try_from(EXPIRES_AFTER_SECS).unwrap_or(60);
            self.execute(
                &self.statements.insert_presence,
                (tenant.0, presence.agent.0, to_json(presence)?, ttl),
            )
            .await
        })
        .await
    }

    async fn remove_presence(&self, tenant: TenantId, agent: AgentId) -> StoreResult<()> {
        observe(
            "remove_presence",
            self.execute(&self.statements.delete_presence, (tenant.0, agent.0)),
        )
        .await
    }

    async fn presence(&self, tenant: TenantId) -> StoreResult<Vec<Presence>> {
        observe(
            "presence",
            self.bodies(&self.statements.select_presence, (tenant.0,)),
        )
        .await
    }
}
