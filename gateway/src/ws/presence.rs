//! Agents' presence as this node sees it: the agents with a socket open here and what they said of
//! themselves (online, away). Each change is written to the store at once, and every
//! `HEARTBEAT_SECS` the node renews the presence of everyone connected to it, so distribution on any
//! node sees who is available (see `schema::presence`). The last socket of an agent closing takes
//! them offline.

use dashmap::DashMap;
use jiff::{SignedDuration, Timestamp};
use schema::presence::{EXPIRES_AFTER_SECS, HEARTBEAT_SECS, Presence, PresenceStatus};
use schema::store::Store;
use schema::{AgentId, TenantId};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Agents connected to this node: their sockets and status.
#[derive(Default)]
pub struct PresenceRegistry {
    agents: DashMap<(TenantId, AgentId), (usize, PresenceStatus)>,
}

impl PresenceRegistry {
    /// A socket of the agent started its live phase: the agent is online (or keeps the status a
    /// socket of theirs already set).
    pub async fn join(&self, store: &dyn Store, tenant: TenantId, agent: AgentId) {
        let status = {
            let mut entry = self
                .agents
                .entry((tenant, agent))
                .or_insert((0, PresenceStatus::Online));
            entry.0 += 1;
            entry.1
        };
        write(store, tenant, agent, status).await;
    }

    /// The agent set their status.
    pub async fn set(
        &self,
        store: &dyn Store,
        tenant: TenantId,
        agent: AgentId,
        status: PresenceStatus,
    ) {
        if let Some(mut entry) = self.agents.get_mut(&(tenant, agent)) {
            entry.1 = status;
        } else {
            return;
        }
        write(store, tenant, agent, status).await;
    }

    /// A socket of the agent ended; with the last one the agent goes offline.
    pub async fn leave(&self, store: &dyn Store, tenant: TenantId, agent: AgentId) {
        let gone = match self.agents.get_mut(&(tenant, agent)) {
            Some(mut entry) => {
                entry.0 = entry.0.saturating_sub(1);
                entry.0 == 0
            }
            None => false,
        };
        if gone {
            self.agents
                .remove_if(&(tenant, agent), |_, (sockets, _)| *sockets == 0);
            if let Err(error) = store.remove_presence(tenant, agent).await {
                tracing::warn!(%tenant, %agent, %error, "presence not cleared; it expires by itself");
            }
        }
    }

    /// Renews every connected agent's presence until `stop`.
    pub fn spawn_renewal(
        self: &Arc<Self>,
        store: Arc<dyn Store>,
        stop: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let registry = Arc::clone(self);
        tokio::spawn(async move {
            let every = Duration::from_secs(HEARTBEAT_SECS.unsigned_abs());
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let connected: Vec<_> = registry
                    .agents
                    .iter()
                    .map(|entry| (entry.key().0, entry.key().1, entry.value().1))
                    .collect();
                for (tenant, agent, status) in connected {
                    write(store.as_ref(), tenant, agent, status).await;
                }
            }
        })
    }
}

async fn write(store: &dyn Store, tenant: TenantId, agent: AgentId, status: PresenceStatus) {
    let presence = Presence {
        agent,
        status,
        until: Timestamp::now() + SignedDuration::from_secs(EXPIRES_AFTER_SECS),
    };
    if let Err(error) = store.put_presence(tenant, &presence).await {
        tracing::warn!(%tenant, %agent, %error, "presence not written; renewed on the next heartbeat");
    }
}
