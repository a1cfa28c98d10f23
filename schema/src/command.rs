//! What the edge and the actors ask of a conversation or a connection, as data: a [`Command`] names its
//! tenant and the entity it is for, so a router can run it on the node that owns that entity's shard,
//! locally or forwarded over the node-to-node RPC, and the answer ([`Reply`] or [`CommandError`])
//! travels back the same way. Conversation commands go to the conversation's owner; session commands
//! (a send handed to a connection, its reconnect loop, its restart) to the connection's owner, so each
//! connection has one rate limiter and one reconnect loop in the whole cluster.
//!
//! **Architecture Invariant:** a command's tenant is the one the receiving edge authenticated (a
//! webhook's connection, an agent's token), never one read from a request body; a forwarded command
//! keeps it, and the owner's actors are keyed by (tenant, conversation), so a command can only reach
//! its own tenant's conversation.

use crate::channel::Outbound;
use crate::cluster::ShardId;
use crate::helpdesk::change::TicketChange;
use crate::inbound::InboundEvent;
use crate::records::{Contact, Conversation, Message, MessageContent, ProviderError};
use crate::{AgentId, ConnectionId, ConversationId, Seq, TenantId};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// A request to one conversation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    /// One webhook's events for one conversation, acknowledged once durable.
    Ingest {
        tenant: TenantId,
        connection: ConnectionId,
        conversation: ConversationId,
        events: Vec<InboundEvent>,
        /// The webhook request's id, carried into logs on the owner.
        request_id: String,
    },
    /// An agent's reply, answered with the stored `pending` message.
    Send {
        tenant: TenantId,
        conversation: ConversationId,
        agent: AgentId,
        content: MessageContent,
        client_message_id: Option<String>,
    },
    /// An agent starts a conversation from our side (or writes into the one that exists with that
    /// contact on that connection): the conversation is created assigned to the agent, then the
    /// message is sent as a reply. Answered with the stored `pending` message.
    Start {
        tenant: TenantId,
        connection: ConnectionId,
        conversation: ConversationId,
        contact: Contact,
        agent: AgentId,
        content: MessageContent,
        client_message_id: Option<String>,
    },
    /// A change to the conversation's ticket (assign, transfer, status, priority, tags, snooze, note),
    /// answered with the conversation after it.
    Ticket {
        tenant: TenantId,
        conversation: ConversationId,
        /// Who makes the change; `None` for the system (distribution, timers).
        by: Option<AgentId>,
        change: TicketChange,
    },
    /// The conversation's department changed how it distributes: an unassigned waiting ticket joins
    /// the queue (the department is read afresh).
    Requeue {
        tenant: TenantId,
        conversation: ConversationId,
    },
    /// LGPD erasure of the conversation's contact (`schema::privacy`): its history is rewritten
    /// without what the contact said or carried, and its record without their name. Repeating it
    /// changes nothing.
    Erase {
        tenant: TenantId,
        conversation: ConversationId,
    },
    /// Soft deletion of one message or of the whole conversation (`helpdesk::deletion`), by an
    /// agent; answered with the conversation after it. Repeating it changes nothing.
    Delete {
        tenant: TenantId,
        conversation: ConversationId,
        by: AgentId,
        what: Deleting,
    },
    /// The provider's answer to a send (its message id, or the failure), recorded on the reply.
    RecordAnswer {
        tenant: TenantId,
        conversation: ConversationId,
        seq: Seq,
        answer: Result<String, ProviderError>,
    },
    /// A stored reply handed to its connection's session for sending (rate limit, retries).
    Deliver {
        tenant: TenantId,
        connection: ConnectionId,
        conversation: ConversationId,
        seq: Seq,
        outbound: Outbound,
    },
    /// A WhatsApp Web session dropped: start its reconnect loop unless it runs.
    Reconnect {
        tenant: TenantId,
        connection: ConnectionId,
    },
    /// Tell the provider the business read the contact's messages up to `provider_message_id`
    /// (through the connection's session, so it shares the number's rate limit).
    MarkRead {
        tenant: TenantId,
        connection: ConnectionId,
        contact: String,
        provider_message_id: String,
    },
    /// The connection changed (paused, edited, removed): stop its session so the next send loads it
    /// afresh.
    RestartSession {
        tenant: TenantId,
        connection: ConnectionId,
    },
}

/// What a [`Command::Delete`] deletes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "deleting", rename_all = "snake_case")]
pub enum Deleting {
    /// The message whose `message.created` is at this seq.
    Message { seq: Seq },
    /// The conversation, with every message it holds.
    Conversation,
}

/// Which entity a command is for, and so which shard's owner runs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Conversation(ConversationId),
    Connection(ConnectionId),
}

impl Command {
    pub fn tenant(&self) -> TenantId {
        match self {
            Command::Ingest { tenant, .. }
            | Command::Send { tenant, .. }
            | Command::Start { tenant, .. }
            | Command::Requeue { tenant, .. }
            | Command::Erase { tenant, .. }
            | Command::Delete { tenant, .. }
            | Command::Ticket { tenant, .. }
            | Command::RecordAnswer { tenant, .. }
            | Command::Deliver { tenant, .. }
            | Command::Reconnect { tenant, .. }
            | Command::MarkRead { tenant, .. }
            | Command::RestartSession { tenant, .. } => *tenant,
        }
    }

    pub fn target(&self) -> Target {
        match self {
            Command::Ingest { conversation, .. }
            | Command::Send { conversation, .. }
            | Command::Start { conversation, .. }
            | Command::Requeue { conversation, .. }
            | Command::Erase { conversation, .. }
            | Command::Delete { conversation, .. }
            | Command::Ticket { conversation, .. }
            | Command::RecordAnswer { conversation, .. } => Target::Conversation(*conversation),
            Command::Deliver { connection, .. }
            | Command::Reconnect { connection, .. }
            | Command::MarkRead { connection, .. }
            | Command::RestartSession { connection, .. } => Target::Connection(*connection),
        }
    }

    /// The shard whose owner runs the command.
    pub fn shard(&self) -> ShardId {
        match self.target() {
            Target::Conversation(id) => ShardId::of(&id.0),
            Target::Connection(id) => ShardId::of(&id.0),
        }
    }

    /// A short name for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Command::Ingest { .. } => "ingest",
            Command::Send { .. } => "send",
            Command::Ticket { .. } => "ticket",
            Command::Start { .. } => "start",
            Command::Requeue { .. } => "requeue",
            Command::Erase { .. } => "erase",
            Command::Delete { .. } => "delete",
            Command::RecordAnswer { .. } => "record_answer",
            Command::Deliver { .. } => "deliver",
            Command::Reconnect { .. } => "reconnect",
            Command::MarkRead { .. } => "mark_read",
            Command::RestartSession { .. } => "restart_session",
        }
    }
}

/// What a command did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    Ingested(IngestReport),
    Sent(Box<Message>),
    /// The conversation after a ticket change.
    Ticket(Box<Conversation>),
    /// Done, with nothing to report.
    Done,
}

/// What one ingest request did, for the webhook's answer and metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestReport {
    pub messages_stored: usize,
    pub duplicates: usize,
    pub statuses_applied: usize,
    pub statuses_ignored: usize,
}

/// Why a command failed, as the caller must understand it: each variant says whether anything may
/// have been done.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "error", content = "detail", rename_all = "snake_case")]
pub enum CommandError {
    #[error("conversation not found")]
    NotFound,
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("{0}")]
    WindowClosed(String),
    /// Too many requests in flight on the owner: nothing was done.
    #[error("the owning node has too many requests in flight")]
    Overloaded,
    /// The shard is changing owner (released, not yet taken, or this node just gave it up): nothing
    /// was done; retrying in a moment reaches the new owner.
    #[error("{0}")]
    ShardMoving(String),
    /// The provider refused or failed a call that stores nothing here (a read receipt).
    #[error("the provider refused or failed: {0}")]
    ProviderFailed(String),
    /// Surely nothing was done (refused, store unavailable before writing, no owner reachable).
    #[error("{0}")]
    NothingDone(String),
    /// May have been done, or may still be (a timeout, a commit whose outcome the store did not tell,
    /// a forward whose answer was lost).
    #[error("{0}")]
    OutcomeUnknown(String),
}

impl CommandError {
    /// `true` when the command surely changed nothing.
    pub fn outcome_known(&self) -> bool {
        !matches!(self, CommandError::OutcomeUnknown(_))
    }
}

/// The command port: how the edge (webhooks, REST, the node-to-node RPC) acts on conversations and
/// connections, without knowing where their actors run. Implemented by `actors::Router`.
#[async_trait]
pub trait Commands: Send + Sync + 'static {
    /// Runs a command from this node's edge (received at `received_at`): here, or on the node that
    /// owns its shard.
    async fn execute(&self, command: Command, received_at: Instant) -> Result<Reply, CommandError>;
    /// Runs a command another node forwarded: only if this node owns its shard, never forwarded again.
    async fn execute_here(&self, command: Command) -> Result<Reply, CommandError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_round_trips_through_json_with_its_tenant() {
        let command = Command::Send {
            tenant: TenantId::new(),
            conversation: ConversationId::new(),
            agent: AgentId::new(),
            content: MessageContent::Text {
                body: "olá".into()
            },
            client_message_id: Some("c-1".into()),
        };
        let wire = serde_json::to_string(&command).expect("serialises");
        let back: Command = serde_json::from_str(&wire).expect("parses");
        assert_eq!(back, command);
        assert_eq!(back.tenant(), command.tenant());
        let conversation = match &command {
            Command::Send { conversation, .. } => *conversation,
            _ => ConversationId::new(),
        };
        assert_eq!(back.target(), Target::Conversation(conversation));
        assert_eq!(back.shard(), ShardId::of(&conversation.0));
    }

    #[test]
    fn only_an_unknown_outcome_is_not_known() {
        assert!(CommandError::NothingDone("x".into()).outcome_known());
        assert!(CommandError::Overloaded.outcome_known());
        assert!(!CommandError::OutcomeUnknown("x".into()).outcome_known());
    }
}
