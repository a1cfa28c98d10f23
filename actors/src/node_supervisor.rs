//! Root of one node's actor tree: the parent of every tenant supervisor.
//!
//! Tenant supervisors do not run domain code, so they are not expected to fail; if one does, its entry
//! is dropped and the next request for the tenant spawns a new one (its children, linked to the old
//! one, are stopped by ractor with it and rebuilt from the store on their next message).

use crate::directory::Directory;
use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};
use std::sync::{Arc, OnceLock, Weak};

/// Starts the actor system: the root supervisor and the [`Directory`] that addresses its actors.
pub async fn start(services: crate::Services) -> Result<Arc<Directory>, ractor::SpawnErr> {
    let directory_cell: Arc<OnceLock<Weak<Directory>>> = Arc::new(OnceLock::new());
    let (root, _) = Actor::spawn(None, NodeSupervisor, Arc::clone(&directory_cell)).await?;
    let idle_check_interval = services.config.idle_check_interval;
    let directory = Arc::new(Directory::new(services, root));
    tokio::spawn(crate::directory::idle::sweep(
        Arc::downgrade(&directory),
        idle_check_interval,
    ));
    // Set once, right here, before any tenant exists: the root reads it only when a tenant exits.
    let _ = directory_cell.set(Arc::downgrade(&directory));
    Ok(directory)
}

/// The root supervisor (stateless config).
pub struct NodeSupervisor;

/// The root takes no messages of its own; it only supervises.
pub enum NodeMsg {}

impl Actor for NodeSupervisor {
    type Msg = NodeMsg;
    type State = Arc<OnceLock<Weak<Directory>>>;
    type Arguments = Arc<OnceLock<Weak<Directory>>>;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        directory: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(directory)
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        directory: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let Some(directory) = directory.get().and_then(Weak::upgrade) else {
            return Ok(());
        };
        match event {
            SupervisionEvent::ActorTerminated(cell, _, _) => {
                directory.actor_exited(cell.get_id());
            }
            SupervisionEvent::ActorFailed(cell, error) => {
                if let Some(entity) = directory.actor_exited(cell.get_id()) {
                    tracing::error!(?entity, %error, "tenant supervisor failed; it will be respawned on demand");
                    metrics::counter!("conversa_actor_restarts_total", "kind" => entity.kind())
                        .increment(1);
                }
            }
            _ => {}
        }
        Ok(())
    }
}
