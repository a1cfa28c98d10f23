//! Supervisor of one tenant's conversation and session actors.
//!
//! ```text
//! TenantSupervisor(tenant)
//! ├── ConversationActor × n   stop when idle (passivation) → entry dropped, nothing else to do
//! └── SessionActor × m        panic / error              → entry dropped, restart counted,
//!                                                          respawned from the store on next use
//! ```
//!
//! ractor's default `handle_supervisor_evt` would stop this supervisor when a child exits; this one
//! overrides it and never stops because of a child. Restarts are lazy (on the next message for the key)
//! rather than eager, because a conversation actor's whole state is in the store: an eager restart would
//! only reload state nobody asked for. Poison messages are bounded by the caller's retry limit
//! (`Directory::request`), not here.

use crate::directory::Directory;
use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};
use schema::TenantId;
use std::sync::Arc;

/// The supervisor (stateless config).
pub struct TenantSupervisor;

/// Startup arguments.
pub struct TenantArgs {
    pub tenant: TenantId,
    pub directory: Arc<Directory>,
}

/// Supervisor state: which tenant it serves and the directory its children are registered in.
pub struct TenantState {
    tenant: TenantId,
    directory: Arc<Directory>,
}

impl Actor for TenantSupervisor {
    /// A tenant supervisor only supervises; it takes no messages.
    type Msg = ();
    type State = TenantState;
    type Arguments = TenantArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        metrics::gauge!("conversa_actors_live", "kind" => "tenant").increment(1.0);
        Ok(TenantState {
            tenant: args.tenant,
            directory: args.directory,
        })
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                let entity = state.directory.actor_exited(cell.get_id());
                tracing::debug!(tenant = %state.tenant, ?entity, ?reason, "child stopped");
            }
            SupervisionEvent::ActorFailed(cell, error) => {
                if let Some(entity) = state.directory.actor_exited(cell.get_id()) {
                    metrics::counter!("conversa_actor_restarts_total", "kind" => entity.kind())
                        .increment(1);
                    tracing::error!(tenant = %state.tenant, ?entity, %error,
                        "child failed; it restarts from the store on its next message");
                }
            }
            _ => {}
        }
        Ok(())
    }
}
