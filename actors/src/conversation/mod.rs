//! The conversation actor: the single writer of one conversation's event stream.
//!
//! Receives from the gateway (through `Directory`): inbound webhook events and agents' replies; from its
//! connection's session actor: the provider's answer to a send. For each turn it dedupes by provider or
//! client message id, assigns the next `seq`s, commits everything the turn changed to the store in one
//! atomic durable write, only then answers the caller and publishes the events on the bus.
//!
//! State is a cache of the stored conversation record: it is loaded in `pre_start` and replaced only
//! after a successful commit. A failed commit stops the actor (error → supervisor), so the next message
//! rebuilds from what is actually stored. The actor stops itself after `idle_timeout` without messages
//! (passivation); the tenant supervisor then drops its registry entry.
//!
//! ```text
//! mod.rs       the actor: messages, tickets (a request whose caller gave up is skipped), dispatch
//! inbound.rs   webhook events → a turn (dedupe, statuses, echoes matched exactly, read receipts)
//! outbound.rs  replies → a turn → the session actor; provider answers; outbox resends
//! departments.rs  the department's entry, reopen policy and out-of-hours reply
//! distribution.rs automatic assignment, and reassignment when an agent does not reply
//! start.rs     a conversation started from our side by an agent
//! ticket.rs    ticket changes (assign, transfer, status, priority, tags, snooze, notes) → a turn
//! commit.rs    stamp, commit, settle an ambiguous outcome, publish; answers and restarts
//! ```

mod commit;
mod deletion;
mod departments;
mod distribution;
mod erase;
mod inbound;
mod outbound;
mod start;
mod ticket;

use crate::directory::{Directory, IngestReport};
use crate::ticket::Ticket;
use commit::publish_unsettled;
use jiff::Timestamp;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use schema::cluster::Fence;
use schema::helpdesk::change::TicketChange;
use schema::inbound::InboundEvent;
use schema::records::{Conversation, Message, MessageContent, ProviderError};
use schema::store::{MessageKey, MessageRef};
use schema::{AgentId, ConnectionId, ConversationId, Seq, TenantId};
use std::sync::Arc;
use std::time::Instant;

pub use start::Opening;

/// The actor (stateless config).
pub struct ConversationActor;

/// Startup arguments: which conversation, and where to find everything else.
pub struct ConversationArgs {
    pub tenant: TenantId,
    pub id: ConversationId,
    pub directory: Arc<Directory>,
    /// In a cluster, the lease epoch of the conversation's shard when the actor started: every commit
    /// carries it, and the store refuses it once the shard has moved on.
    pub fence: Option<Fence>,
}

/// Live state.
pub struct ConversationState {
    tenant: TenantId,
    id: ConversationId,
    directory: Arc<Directory>,
    /// The stored record; `None` until the first inbound message creates the conversation.
    conversation: Option<Conversation>,
    last_message_at: Instant,
    /// When the current turn must have published its events (see `ActorConfig::turn_deadline`).
    turn_deadline: tokio::time::Instant,
    fence: Option<Fence>,
    /// For a conversation that does not exist yet: the seqs reserved for it in cluster mode, which
    /// its first turn follows (0 almost always).
    reserved_seq: Seq,
    /// Agents distribution chose in the current turn, counted as one more ticket each until the
    /// turn's commit (see `distribution.rs`).
    reserved: Vec<crate::directory::Reservation>,
}

/// Errors a conversation answers with.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ConversationError {
    #[error("conversation not found")]
    NotFound,
    #[error("invalid request: {0}")]
    Invalid(String),
    /// Outside the channel's window since the contact's last message (WhatsApp: 24 hours for anything
    /// but a template; Messenger and Instagram: 24 hours, 7 with the Human Agent tag); says why.
    #[error("{0}")]
    WindowClosed(String),
    /// The store failed before anything of the turn was written: nothing was done.
    #[error("store failed: {0}")]
    Store(String),
    /// The turn's commit failed in a way that may still have written it, and retrying the identical
    /// commit until the turn deadline did not tell: the outcome is unknown. The next actor for the
    /// conversation publishes whatever the store turns out to hold.
    #[error("commit outcome unknown: {0}")]
    Unsettled(String),
    /// The caller had stopped waiting before the request reached the front of the mailbox: skipped,
    /// nothing done.
    #[error("the request expired before it was handled")]
    Expired,
}

impl ConversationError {
    /// `true` when the request surely changed nothing (see `RouteError::outcome_known`).
    pub fn outcome_known(&self) -> bool {
        !matches!(self, ConversationError::Unsettled(_))
    }
}

/// Messages of the conversation actor.
pub enum ConversationMsg {
    /// Events of one webhook for this conversation, in order. Answered once they are durable.
    Ingest {
        connection_id: ConnectionId,
        events: Vec<InboundEvent>,
        /// When the webhook arrived, for the ingest latency histogram.
        received_at: Instant,
        /// Id of the webhook request, carried into logs and onto the bus.
        request_id: Arc<str>,
        /// The caller's deadline and request permit: skipped unhandled once the caller gave up.
        ticket: Ticket,
        reply: RpcReplyPort<Result<IngestReport, ConversationError>>,
    },
    /// An agent's reply (text, template, buttons or reaction): validated, stored as `pending`, then
    /// handed to the connection's session actor. Never sent when its caller had already given up.
    Send {
        agent: AgentId,
        content: MessageContent,
        client_message_id: Option<String>,
        ticket: Ticket,
        reply: RpcReplyPort<Result<Message, ConversationError>>,
    },
    /// An agent starts the conversation from our side (or writes into it when it exists); answered
    /// with the stored `pending` message.
    Start {
        opening: Opening,
        content: MessageContent,
        client_message_id: Option<String>,
        ticket: Ticket,
        reply: RpcReplyPort<Result<Message, ConversationError>>,
    },
    /// A change to the ticket by an agent (or the system, `by: None`); answered with the conversation
    /// after it.
    Ticket {
        by: Option<AgentId>,
        change: TicketChange,
        ticket: Ticket,
        reply: RpcReplyPort<Result<Conversation, ConversationError>>,
    },
    /// Its department now distributes: join the queue if the ticket waits unassigned.
    Requeue {
        ticket: Ticket,
        reply: RpcReplyPort<Result<(), ConversationError>>,
    },
    /// Delete a message or the conversation, soft (`deletion.rs`); answered with the conversation.
    Delete {
        by: AgentId,
        what: schema::command::Deleting,
        ticket: Ticket,
        reply: RpcReplyPort<Result<Conversation, ConversationError>>,
    },
    /// Erase the contact from the conversation's history (LGPD, `erase.rs`).
    Erase {
        ticket: Ticket,
        reply: RpcReplyPort<Result<(), ConversationError>>,
    },
    /// The due-index sweep found this conversation due at `listed`: fire what came due. Answered once
    /// committed (or when nothing was due).
    FireTimers {
        listed: Timestamp,
        reply: RpcReplyPort<Result<(), ConversationError>>,
    },
    /// The provider's answer to the send of the message stored at `seq`: its id, or the final failure.
    /// Answered once recorded (the session keeps the send in flight until then); recording the same
    /// answer twice changes nothing.
    ProviderAnswered {
        seq: Seq,
        answer: Result<String, ProviderError>,
        reply: RpcReplyPort<Result<(), ConversationError>>,
    },
    /// Hand the still-`pending` outbound message at `seq` to the session actor again (outbox recovery
    /// after a restart); answers whether it was handed over.
    Resend {
        seq: Seq,
        created_before: Timestamp,
        reply: RpcReplyPort<bool>,
    },
    /// From the directory's idle sweep (`directory/idle.rs`): stop if nothing arrived for
    /// `idle_timeout`.
    IdleCheck,
}

impl Actor for ConversationActor {
    type Msg = ConversationMsg;
    type State = ConversationState;
    type Arguments = ConversationArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let services = args.directory.services();
        let conversation = services.store.conversation(args.tenant, args.id).await?;
        let reserved_seq = match &conversation {
            None => services.store.reserved_seq(args.tenant, args.id).await?,
            Some(_) => 0,
        };
        publish_unsettled(&args.directory, args.tenant, args.id, conversation.as_ref()).await?;
        metrics::gauge!("conversa_actors_live", "kind" => "conversation").increment(1.0);
        Ok(ConversationState {
            tenant: args.tenant,
            id: args.id,
            directory: args.directory,
            conversation,
            last_message_at: Instant::now(),
            turn_deadline: tokio::time::Instant::now(),
            fence: args.fence,
            reserved_seq,
            reserved: Vec::new(),
        })
    }

    // ractor keeps the message loop's future for the actor's whole life, with the handler's future
    // inline in it. Here that is one pointer: the turn's future (the message, and what the turn holds
    // across an await) is boxed when the message arrives and freed once it is handled, so a live but
    // idle actor does not carry the largest turn. Each arm's work is boxed again, so that box is as
    // large as the dispatch, not as the largest turn.
    fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> impl Future<Output = Result<(), ActorProcessingErr>> + Send {
        Box::pin(state.handle(myself, message))
    }
}

impl ConversationState {
    async fn handle(
        &mut self,
        myself: ActorRef<ConversationMsg>,
        message: ConversationMsg,
    ) -> Result<(), ActorProcessingErr> {
        let state = self;
        if !matches!(message, ConversationMsg::IdleCheck) {
            state.last_message_at = Instant::now();
            state.turn_deadline =
                tokio::time::Instant::now() + state.directory.services().config.turn_deadline;
        }
        match message {
            ConversationMsg::Ingest {
                connection_id,
                events,
                received_at,
                request_id,
                ticket,
                reply,
            } => {
                if ticket.expired() {
                    return skip_expired(reply);
                }
                let result = Box::pin(state.ingest(connection_id, events, &request_id)).await;
                match &result {
                    Ok(report) => tracing::debug!(
                        %request_id, tenant = %state.tenant, conversation = %state.id,
                        stored = report.messages_stored, duplicates = report.duplicates,
                        statuses = report.statuses_applied, "ingested"
                    ),
                    Err(error) => tracing::warn!(
                        %request_id, tenant = %state.tenant, conversation = %state.id, %error,
                        "ingest failed"
                    ),
                }
                if result.is_ok() {
                    metrics::histogram!("conversa_ingest_latency_seconds")
                        .record(received_at.elapsed().as_secs_f64());
                }
                state.answer(reply, result)?;
            }
            ConversationMsg::Send {
                agent,
                content,
                client_message_id,
                ticket,
                reply,
            } => {
                if ticket.expired() {
                    return skip_expired(reply);
                }
                let result = Box::pin(state.send(agent, content, client_message_id)).await;
                state.answer(reply, result)?;
            }
            ConversationMsg::Start {
                opening,
                content,
                client_message_id,
                ticket,
                reply,
            } => {
                if ticket.expired() {
                    return skip_expired(reply);
                }
                let result = Box::pin(state.start(opening, content, client_message_id)).await;
                state.answer(reply, result)?;
            }
            ConversationMsg::Ticket {
                by,
                change,
                ticket,
                reply,
            } => {
                if ticket.expired() {
                    return skip_expired(reply);
                }
                let result = Box::pin(state.change_ticket(by, change)).await;
                state.answer(reply, result)?;
            }
            ConversationMsg::Requeue { ticket, reply } => {
                if ticket.expired() {
                    return skip_expired(reply);
                }
                let result = Box::pin(state.requeue()).await;
                state.answer(reply, result)?;
            }
            ConversationMsg::Delete {
                by,
                what,
                ticket,
                reply,
            } => {
                if ticket.expired() {
                    return skip_expired(reply);
                }
                let result = Box::pin(state.delete(by, what)).await;
                state.answer(reply, result)?;
            }
            ConversationMsg::Erase { ticket, reply } => {
                if ticket.expired() {
                    return skip_expired(reply);
                }
                let result = Box::pin(state.erase()).await;
                state.answer(reply, result)?;
            }
            ConversationMsg::FireTimers { listed, reply } => {
                let result = Box::pin(state.fire_timers(listed)).await;
                state.answer(reply, result)?;
            }
            ConversationMsg::ProviderAnswered { seq, answer, reply } => {
                let result = Box::pin(state.provider_answered(seq, answer)).await;
                state.answer(reply, result)?;
            }
            ConversationMsg::Resend {
                seq,
                created_before,
                reply,
            } => {
                let result = Box::pin(state.resend(seq, created_before)).await;
                let handed_over = matches!(result, Ok(true));
                let _ = reply.send(handed_over);
                if let Err(error) = result {
                    // Nothing to answer with but the failure itself: restart from the store.
                    state.answer_nobody(&error)?;
                }
            }
            ConversationMsg::IdleCheck => {
                if state.last_message_at.elapsed() >= state.directory.services().config.idle_timeout
                {
                    myself.stop(Some("passivated".into()));
                }
            }
        }
        Ok(())
    }
}

impl ConversationState {
    fn store(&self) -> &dyn schema::store::Store {
        self.directory.services().store.as_ref()
    }

    /// The message a key points at, if that message is really there: a key left by a commit whose
    /// outcome was unknown (written, while the rest of its turn was not) may point at a seq that a later
    /// turn reused for another message. Such a stale key counts as absent, so the provider's retry of
    /// that message is stored, not dropped as a duplicate.
    async fn lookup(&self, key: &MessageKey) -> Result<Option<MessageRef>, ConversationError> {
        let Some(found) = self
            .store()
            .message_ref(self.tenant, self.id, key)
            .await
            .map_err(store_error)?
        else {
            return Ok(None);
        };
        let last_seq = self.conversation.as_ref().map_or(0, |c| c.last_seq);
        if found.seq > last_seq {
            metrics::counter!("conversa_stale_message_keys_total").increment(1);
            return Ok(None);
        }
        let stored = self
            .store()
            .message(self.tenant, self.id, found.seq)
            .await
            .map_err(store_error)?;
        if stored.is_none_or(|m| m.id != found.message_id) {
            metrics::counter!("conversa_stale_message_keys_total").increment(1);
            return Ok(None);
        }
        Ok(Some(found))
    }

    async fn load_message(&self, seq: Seq) -> Result<Message, ConversationError> {
        self.store()
            .message(self.tenant, self.id, seq)
            .await
            .map_err(store_error)?
            .ok_or_else(|| ConversationError::Store(format!("message at seq {seq} is missing")))
    }
}

/// Answers a request whose caller had already given up, without doing it.
fn skip_expired<T: Send + 'static>(
    reply: RpcReplyPort<Result<T, ConversationError>>,
) -> Result<(), ActorProcessingErr> {
    metrics::counter!("conversa_actor_requests_expired_total").increment(1);
    let _ = reply.send(Err(ConversationError::Expired));
    Ok(())
}

fn store_error(e: impl std::fmt::Display) -> ConversationError {
    ConversationError::Store(e.to_string())
}
