//! The command port's node-local implementation: a [`Command`] runs on this node's actors when this
//! node owns the shard of its conversation (or connection), and is forwarded to the owner otherwise. A
//! single node (no cluster) runs everything locally. The gateway calls it through the
//! [`Commands`] port, which [`Router`] implements; actors
//! reach other owners through [`route`] (a reply handed to its connection's session, the provider's
//! answer handed back to its conversation).
//!
//! **Architecture Invariant:** a command is forwarded at most once. A node that receives a forwarded
//! command runs it only if it owns the shard ([`Router::execute_here`]) and never forwards it again, so
//! two nodes with different views of a moving shard cannot bounce a request between them.

use crate::directory::{Directory, RouteError};
use crate::placement::Owner;
use crate::session::SessionMsg;
use schema::command::{Command, CommandError, Commands, Reply};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Runs commands where their conversation or connection lives.
pub struct Router {
    directory: Arc<Directory>,
}

impl Router {
    /// A router over this node's directory (a cluster member once `Directory::join_cluster` ran).
    pub fn new(directory: Arc<Directory>) -> Self {
        Self { directory }
    }

    pub fn directory(&self) -> &Arc<Directory> {
        &self.directory
    }
}

#[async_trait::async_trait]
impl Commands for Router {
    async fn execute(&self, command: Command, received_at: Instant) -> Result<Reply, CommandError> {
        route(&self.directory, command, received_at)
            .await
            .map_err(|e| e.to_command_error())
    }

    async fn execute_here(&self, command: Command) -> Result<Reply, CommandError> {
        if let Some(cluster) = self.directory.cluster() {
            let shard = command.shard();
            if !matches!(cluster.placement.owner(shard), Owner::Local(_)) {
                return Err(RouteError::NotOwner(shard).to_command_error());
            }
        }
        run(&self.directory, command, Instant::now())
            .await
            .map_err(|e| e.to_command_error())
    }
}

/// Longest a command waits for a moving shard to be taken by its next owner: a handoff takes up to
/// one keeper round of the new owner (a third of the 15 s default lease); a lost node's shards take a
/// whole lease, which is not waited for.
const HANDOFF_WAIT: Duration = Duration::from_secs(6);

/// Runs `command` here if this node owns its shard (or there is no cluster), else on its owner. While
/// the shard is changing hands the command waits, at most [`HANDOFF_WAIT`], for the new owner.
pub(crate) async fn route(
    directory: &Arc<Directory>,
    command: Command,
    received_at: Instant,
) -> Result<Reply, RouteError> {
    let deadline = tokio::time::Instant::now() + HANDOFF_WAIT;
    let mut pause = Duration::from_millis(20);
    loop {
        match route_once(directory, command.clone(), received_at).await {
            Err(RouteError::NotOwner(_))
            | Err(RouteError::Remote(CommandError::ShardMoving(_)))
                if tokio::time::Instant::now() + pause < deadline =>
            {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(250));
            }
            answer => return answer,
        }
    }
}

async fn route_once(
    directory: &Arc<Directory>,
    command: Command,
    received_at: Instant,
) -> Result<Reply, RouteError> {
    let Some(cluster) = directory.cluster() else {
        return run(directory, command, received_at).await;
    };
    let shard = command.shard();
    match cluster.placement.owner(shard) {
        Owner::Local(_) => run(directory, command, received_at).await,
        Owner::Remote { rpc_url, .. } => {
            let started = Instant::now();
            let answer = cluster.forwarder.forward(&rpc_url, &command).await;
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

/// Runs a command on this node's actors.
async fn run(
    directory: &Arc<Directory>,
    command: Command,
    received_at: Instant,
) -> Result<Reply, RouteError> {
    match command {
        Command::Ingest {
            tenant,
            connection,
            conversation,
            events,
            request_id,
        } => directory
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
        } => directory
            .send(tenant, conversation, agent, content, client_message_id)
            .await
            .map(|message| Reply::Sent(Box::new(message))),
        Command::Start {
            tenant,
            connection,
            conversation,
            contact,
            agent,
            content,
            client_message_id,
        } => directory
            .start(
                tenant,
                conversation,
                crate::conversation::Opening {
                    connection,
                    contact,
                    agent,
                },
                content,
                client_message_id,
            )
            .await
            .map(|message| Reply::Sent(Box::new(message))),
        Command::Requeue {
            tenant,
            conversation,
        } => directory
            .requeue(tenant, conversation)
            .await
            .map(|()| Reply::Done),
        Command::Erase {
            tenant,
            conversation,
        } => directory
            .erase(tenant, conversation)
            .await
            .map(|()| Reply::Done),
        Command::Delete {
            tenant,
            conversation,
            by,
            what,
        } => directory
            .delete(tenant, conversation, by, what)
            .await
            .map(|conversation| Reply::Ticket(Box::new(conversation))),
        Command::Ticket {
            tenant,
            conversation,
            by,
            change,
        } => directory
            .change_ticket(tenant, conversation, by, change)
            .await
            .map(|conversation| Reply::Ticket(Box::new(conversation))),
        Command::RecordAnswer {
            tenant,
            conversation,
            seq,
            answer,
        } => directory
            .record_answer(tenant, conversation, seq, answer)
            .await
            .map(|()| Reply::Done),
        Command::Deliver {
            tenant,
            connection,
            conversation,
            seq,
            outbound,
        } => {
            let send = SessionMsg::Send {
                conversation,
                seq,
                outbound,
            };
            if directory
                .hand_to_local_session(tenant, connection, send)
                .await
            {
                Ok(Reply::Done)
            } else {
                Err(RouteError::Spawn(format!(
                    "connection {connection} has no session here (paused or removed)"
                )))
            }
        }
        Command::Reconnect { tenant, connection } => {
            directory.reconnect_local_session(tenant, connection).await;
            Ok(Reply::Done)
        }
        Command::MarkRead {
            tenant,
            connection,
            contact,
            provider_message_id,
        } => directory
            .mark_read_local(tenant, connection, contact, provider_message_id)
            .await
            .map(|()| Reply::Done),
        Command::RestartSession { tenant, connection } => {
            directory.stop_local_session(tenant, connection);
            Ok(Reply::Done)
        }
    }
}
