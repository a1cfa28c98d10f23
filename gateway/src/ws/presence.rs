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

    /// The agent set their status (a repeat of the current one writes nothing).
    pub async fn set(
        &self,
        store: &dyn Store,
        tenant: TenantId,
        agent: AgentId,
        status: PresenceStatus,
    ) {
        match self.agents.get_mut(&(tenant, agent)) {
            Some(mut entry) if entry.1 != status => entry.1 = status,
            _ => return,
        }
        write(store, tenant, agent, status).await;
    }

    /// A socket of the agent ended; with the last one the agent goes offline. The count and the
    /// removal are one step under the entry's lock; a socket of the agent that joins meanwhile writes
    /// its presence again after the removal.
    pub async fn leave(&self, store: &dyn Store, tenant: TenantId, agent: AgentId) {
        let gone = match self.agents.entry((tenant, agent)) {
            dashmap::Entry::Occupied(mut entry) => {
                entry.get_mut().0 = entry.get().0.saturating_sub(1);
                if entry.get().0 == 0 {
                    entry.remove();
                    true
                } else {
                    false
                }
            }
            dashmap::Entry::Vacant(_) => false,
        };
        if !gone {
            return;
        }
        if let Err(error) = store.remove_presence(tenant, agent).await {
            tracing::warn!(%tenant, %agent, %error, "presence not cleared; it expires by itself");
        }
        let back = self.agents.get(&(tenant, agent)).map(|entry| entry.1);
        if let Some(status) = back {
            write(store, tenant, agent, status).await;
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
                    // Skipped when the agent left since the snapshot: renewing would show them online
                    // after they went.
                    if registry.agents.contains_key(&(tenant, agent)) {
                        write(store.as_ref(), tenant, agent, status).await;
                    }
                }
            }
        })
    }
}

/// A socket's presence: left by `leave`, or, if the socket's task ends without it (a panic), by a
/// task spawned when it is dropped.
pub struct Present {
    registry: Arc<PresenceRegistry>,
    store: Arc<dyn Store>,
    key: Option<(TenantId, AgentId)>,
}

impl Present {
    pub fn new(state: &crate::AppState, agent: &schema::records::Agent) -> Present {
        Present {
            registry: Arc::clone(&state.presence),
            store: Arc::clone(&state.store),
            key: Some((agent.tenant_id, agent.id)),
        }
    }

    pub async fn leave(&mut self) {
        if let Some((tenant, agent)) = self.key.take() {
            self.registry
                .leave(self.store.as_ref(), tenant, agent)
                .await;
        }
    }
}

impl Drop for Present {
    fn drop(&mut self) {
        if let Some((tenant, agent)) = self.key.take() {
            let (registry, store) = (Arc::clone(&self.registry), Arc::clone(&self.store));
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move { registry.leave(store.as_ref(), tenant, agent).await });
            }
        }
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
