//! The command port's node-local implementation: a [`Command`] runs on this node's actors when this
//! node owns the conversation's shard, and is forwarded to the owner otherwise. A single node (no
//! placement) runs everything locally.
//!
//! **Architecture Invariant:** a command is forwarded at most once. A node that receives a forwarded
//! command runs it only if it owns the shard ([`Router::execute_here`]) and never forwards it again, so
//! two nodes with different views of a moving shard cannot bounce a request between them.

use crate::directory::{Directory, RouteError};
use crate::placement::{Forwarder, Owner};
use schema::command::{Command, Reply};
use std::sync::Arc;
use std::time::Instant;

/// Runs commands where their conversation lives.
pub struct Router {
    directory: Arc<Directory>,
    forwarder: Option<Arc<dyn Forwarder>>,
}

impl Router {
    /// A router for one node, or (with a forwarder and the directory's placement set) a cluster member.
    pub fn new(directory: Arc<Directory>, forwarder: Option<Arc<dyn Forwarder>>) -> Self {
        Self {
            directory,
            forwarder,
        }
    }

    pub fn directory(&self) -> &Arc<Directory> {
        &self.directory
    }

    /// Runs a command from this node's edge (a webhook, an agent's request, received at
    /// `received_at`): here, or on its owner.
    pub async fn execute(
        &self,
        command: Command,
        received_at: Instant,
    ) -> Result<Reply, RouteError> {
        let (Some(placement), Some(forwarder)) = (self.directory.placement(), &self.forwarder)
        else {
            return self.run(command, received_at).await;
        };
        let shard = command.shard();
        match placement.owner(shard) {
            Owner::Local(_) => self.run(command, received_at).await,
            Owner::Remote { rpc_url, .. } => {
                let started = Instant::now();
                let answer = forwarder.forward(&rpc_url, &command).await;
                let outcome = match &answer {
                    Ok(_) => "ok",
                    Err(error) if error.outcome_known() => "refused",
                    Err(_) => "unknown",
                };
                metrics::counter!("conversa_cluster_forwards_total", "command" => command.kind(), "outcome" => outcome)
                    .increment(1);
                metrics::histogram!("conversa_cluster_forward_seconds", "command" => command.kind())
                    .record(started.elapsed().as_secs_f64());
                answer.map_err(RouteError::Remote)
            }
            Owner::Nobody => {
                metrics::counter!("conversa_cluster_unowned_refusals_total").increment(1);
                Err(RouteError::NotOwner(shard))
            }
        }
    }

    /// Runs a command another node forwarded: only if this node owns its shard (never forwarded again).
    pub async fn execute_here(&self, command: Command) -> Result<Reply, RouteError> {
        if let Some(placement) = self.directory.placement() {
            let shard = command.shard();
            if !matches!(placement.owner(shard), Owner::Local(_)) {
                return Err(RouteError::NotOwner(shard));
            }
        }
        self.run(command, Instant::now()).await
    }

    async fn run(&self, command: Command, received_at: Instant) -> Result<Reply, RouteError> {
        match command {
            Command::Ingest {
                tenant,
                connection,
                conversation,
                events,
                request_id,
            } => self
                .directory
                .ingest(
                    tenant,
                    connection,
                    conversation,
                    events,
                    received_at,
                    Arc::from(request_id),
                )
                .await
                .map(Reply::Ingested),
            Command::Send {
                tenant,
                conversation,
                agent,
                content,
                client_message_id,
            } => self
                .directory
                .send(tenant, conversation, agent, content, client_message_id)
                .await
                .map(|message| Reply::Sent(Box::new(message))),
        }
    }
}
