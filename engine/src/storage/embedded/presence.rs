//! The embedded store's presence: `tenant | agent` → the presence; writes through the committer.

use super::commit::Write;
use super::{EmbeddedStore, collect};
use async_trait::async_trait;
use schema::presence::Presence;
use schema::store::{PresenceStore, StoreResult};
use schema::{AgentId, TenantId};

fn key(tenant: TenantId, agent: AgentId) -> Vec<u8> {
    let mut key = tenant.as_bytes().to_vec();
    key.extend_from_slice(agent.as_bytes());
    key
}

#[async_trait]
impl PresenceStore for EmbeddedStore {
    async fn put_presence(&self, tenant: TenantId, presence: &Presence) -> StoreResult<()> {
        let value = super::encode(presence)?;
        self.write(Write::Put("presence", key(tenant, presence.agent), value))
            .await
    }

    async fn remove_presence(&self, tenant: TenantId, agent: AgentId) -> StoreResult<()> {
        self.write(Write::Remove("presence", key(tenant, agent)))
            .await
    }

    async fn presence(&self, tenant: TenantId) -> StoreResult<Vec<Presence>> {
        self.read("presence", move |t| {
            collect(t.presence.prefix(tenant.as_bytes()))
        })
        .await
    }
}
