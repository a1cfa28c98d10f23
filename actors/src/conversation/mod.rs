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

mod outbound;

use crate::directory::{Directory, IngestReport};
use crate::ticket::Ticket;
use crate::turn::{
    Turn, early_changed_insert, hold_echo, inbound_message, new_conversation, note_inbound, upsert,
};
use jiff::Timestamp;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use schema::bus::Published;
use schema::events::ConversationEvent;
use schema::inbound::{InboundEvent, InboundMessage, InboundStatus};
use schema::records::{
    Conversation, Direction, Message, MessageContent, MessageStatus, ProviderError, StatusChange,
};
use schema::store::{
    ConversationCommit, MessageKey, MessageRef, MessageStore, SeqWindow, StoreError,
};
use schema::{AgentId, ConnectionId, ConversationId, MessageId, Seq, TenantId};
use std::sync::Arc;
use std::time::Instant;
use tokio::task::JoinHandle;

/// The actor (stateless config).
pub struct ConversationActor;

/// Startup arguments: which conversation, and where to find everything else.
pub struct ConversationArgs {
    pub tenant: TenantId,
    pub id: ConversationId,
    pub directory: Arc<Directory>,
}

/// Live state.
pub struct ConversationState {
    tenant: TenantId,
    id: ConversationId,
    directory: Arc<Directory>,
    /// The stored record; `None` until the first inbound message creates the conversation.
    conversation: Option<Conversation>,
    last_message_at: Instant,
    idle_timer: JoinHandle<()>,
    /// When the current turn must have published its events (see `ActorConfig::turn_deadline`).
    turn_deadline: tokio::time::Instant,
}

/// Errors a conversation answers with.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ConversationError {
    #[error("conversation not found")]
    NotFound,
    #[error("invalid request: {0}")]
    Invalid(String),
    /// WhatsApp accepts free text only within 24 hours of the contact's last message.
    #[error("the contact last wrote more than 24 hours ago")]
    WindowClosed,
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
    /// Timer: stop if nothing arrived for `idle_timeout`.
    IdleCheck,
}

impl Actor for ConversationActor {
    type Msg = ConversationMsg;
    type State = ConversationState;
    type Arguments = ConversationArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let services = args.directory.services();
        let conversation = services.store.conversation(args.tenant, args.id).await?;
        publish_unsettled(&args.directory, args.tenant, args.id, conversation.as_ref()).await?;
        let period = services.config.idle_check_interval;
        let idle_timer = myself.send_interval(period, || ConversationMsg::IdleCheck);
        metrics::gauge!("conversa_actors_live", "kind" => "conversation").increment(1.0);
        Ok(ConversationState {
            tenant: args.tenant,
            id: args.id,
            directory: args.directory,
            conversation,
            last_message_at: Instant::now(),
            idle_timer,
            turn_deadline: tokio::time::Instant::now(),
        })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        state.idle_timer.abort();
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
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
                let result = state.ingest(connection_id, events, &request_id).await;
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
                let result = state.send(agent, content, client_message_id).await;
                state.answer(reply, result)?;
            }
            ConversationMsg::ProviderAnswered { seq, answer, reply } => {
                let result = state.provider_answered(seq, answer).await;
                state.answer(reply, result)?;
            }
            ConversationMsg::Resend {
                seq,
                created_before,
                reply,
            } => {
                let result = state.resend(seq, created_before).await;
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
    fn store(&self) -> &dyn schema::store::MessageStore {
        self.directory.services().store.as_ref()
    }

    async fn ingest(
        &mut self,
        connection_id: ConnectionId,
        events: Vec<InboundEvent>,
        request_id: &Arc<str>,
    ) -> Result<IngestReport, ConversationError> {
        let mut report = IngestReport::default();
        let mut turn: Option<Turn> = self.conversation.clone().map(|c| Turn::new(c, false));
        let mut early_changed = false;
        for event in events {
            match event {
                InboundEvent::Message(inbound) => {
                    let key = MessageKey::Provider(inbound.provider_message_id.clone());
                    if let Some(turn) = &turn
                        && (turn.key(&key).is_some() || self.lookup(&key).await?.is_some())
                    {
                        report.duplicates += 1;
                        continue;
                    }
                    let turn = self.open(&mut turn, connection_id, &inbound);
                    let message = turn.add_message(self.inbound_message(&inbound, turn.now));
                    if let Some(name) = inbound.from.name.clone() {
                        turn.conversation.contact.name = Some(name);
                    }
                    note_inbound(&mut turn.conversation, inbound.sent_at, turn.now);
                    turn.keys.push((
                        key,
                        MessageRef {
                            message_id: message.id,
                            seq: message.seq,
                        },
                    ));
                    report.messages_stored += 1;
                }
                InboundEvent::Status(status) => {
                    let Some(turn) = turn.as_mut() else {
                        // A status for a conversation we never had (a message sent outside Conversa).
                        report.statuses_ignored += 1;
                        continue;
                    };
                    if self.apply_status(turn, &status).await? {
                        report.statuses_applied += 1;
                    } else if !early_changed_insert(turn, &status) {
                        report.statuses_ignored += 1;
                    } else {
                        early_changed = true;
                        report.statuses_applied += 1;
                    }
                }
                InboundEvent::Echo(echo) => {
                    let key = MessageKey::Provider(echo.provider_message_id.clone());
                    let known = match &turn {
                        Some(turn) => {
                            turn.key(&key).is_some() || self.lookup(&key).await?.is_some()
                        }
                        None => false,
                    };
                    if let Some(turn) = turn.as_mut()
                        && known
                    {
                        // The echo of one of our own sends: the provider has sent it.
                        let sent = InboundStatus {
                            provider_message_id: echo.provider_message_id.clone(),
                            recipient: echo.from.address.clone(),
                            status: MessageStatus::Sent,
                            at: echo.sent_at,
                            error: None,
                        };
                        if self.apply_status(turn, &sent).await? {
                            report.statuses_applied += 1;
                        }
                        continue;
                    }
                    // The echo of our own send can overtake the send call's answer (the provider
                    // posts it before answering us). Matched only exactly: by the reference we sent
                    // with it (Messenger), or, for gateways that echo no reference, by the provider id
                    // the answer brings: until then the echo is held (never taken for the reply on a
                    // guess, never dropped).
                    if let Some(turn) = turn.as_mut() {
                        if let Some(mut ours) = self.referenced_reply(turn, &echo).await? {
                            let sent = StatusChange {
                                status: MessageStatus::Sent,
                                at: echo.sent_at,
                                error: None,
                            };
                            let reference = MessageRef {
                                message_id: ours.id,
                                seq: ours.seq,
                            };
                            turn.advance(&mut ours, sent, Some(echo.provider_message_id.clone()));
                            upsert(&mut turn.messages, ours);
                            turn.keys.push((key, reference));
                            report.statuses_applied += 1;
                            continue;
                        }
                        if echo.reference.is_none()
                            && self.pending_twin(turn, &echo).await?.is_some()
                        {
                            hold_echo(turn, echo.clone());
                            early_changed = true;
                            report.statuses_applied += 1;
                            continue;
                        }
                    }
                    // Sent from elsewhere (Meta's own inbox, the phone, another tool): keep it in the
                    // history.
                    let turn = self.open(&mut turn, connection_id, &echo);
                    let mut outbound = self.inbound_message(&echo, turn.now);
                    outbound.direction = Direction::Outbound;
                    outbound.status = MessageStatus::Sent;
                    let message = turn.add_message(outbound);
                    turn.keys.push((
                        key,
                        MessageRef {
                            message_id: message.id,
                            seq: message.seq,
                        },
                    ));
                    report.messages_stored += 1;
                }
                InboundEvent::ReadUpTo { watermark, .. } => {
                    let Some(turn) = turn.as_mut() else {
                        report.statuses_ignored += 1;
                        continue;
                    };
                    report.statuses_applied += self.read_up_to(turn, watermark).await?;
                }
            }
        }
        if let Some(turn) = turn
            && (!turn.events.is_empty() || early_changed)
        {
            self.commit(turn, Some(Arc::clone(request_id))).await?;
        }
        metrics::counter!("conversa_messages_ingested_total")
            .increment(report.messages_stored as u64);
        metrics::counter!("conversa_messages_duplicate_total").increment(report.duplicates as u64);
        Ok(report)
    }

    /// Marks every recent outbound message created at or before `watermark` as read (Messenger read
    /// receipts name a time, not a message). Looks at the newest `READ_RECEIPT_SCAN` messages.
    async fn read_up_to(
        &self,
        turn: &mut Turn,
        watermark: Timestamp,
    ) -> Result<usize, ConversationError> {
        const READ_RECEIPT_SCAN: usize = 100;
        let stored = self
            .store()
            .messages(
                self.tenant,
                self.id,
                schema::store::SeqWindow::Before(Seq::MAX),
                READ_RECEIPT_SCAN,
            )
            .await
            .map_err(store_error)?;
        let mut applied = 0;
        for stored in stored {
            let mut message = turn.message_mut(stored.seq).cloned().unwrap_or(stored);
            // Only what the provider has taken can have been read: a `pending` reply is still in the
            // outbox and must stay there, a `failed` one never arrived.
            let sent = matches!(
                message.status,
                MessageStatus::Accepted | MessageStatus::Sent | MessageStatus::Delivered
            );
            if message.direction != Direction::Outbound || !sent || message.created_at > watermark {
                continue;
            }
            let change = StatusChange {
                status: MessageStatus::Read,
                at: watermark,
                error: None,
            };
            if turn.advance(&mut message, change, None) {
                upsert(&mut turn.messages, message);
                applied += 1;
            }
        }
        Ok(applied)
    }

    /// The reply an echo names by our reference (Messenger `metadata`): an outbound message of this
    /// conversation with that id and no provider id yet.
    async fn referenced_reply(
        &self,
        turn: &Turn,
        echo: &InboundMessage,
    ) -> Result<Option<Message>, ConversationError> {
        let Some(id) = echo
            .reference
            .as_deref()
            .and_then(|r| r.parse::<MessageId>().ok())
        else {
            return Ok(None);
        };
        let ours = |m: &Message| {
            m.id == id && m.direction == Direction::Outbound && m.provider_message_id.is_none()
        };
        if let Some(found) = turn.messages.iter().find(|m| ours(m)) {
            return Ok(Some(found.clone()));
        }
        let recent = self
            .store()
            .messages(self.tenant, self.id, SeqWindow::Before(Seq::MAX), 50)
            .await
            .map_err(store_error)?;
        Ok(recent.into_iter().find(|m| ours(m)))
    }

    /// The oldest outbound text still `pending` (no provider id yet) whose body equals the echo's: a
    /// send the echo may belong to, so the echo is held until that send's answer says (never used to
    /// mark the send itself). Only text can be compared, and only among the latest messages.
    async fn pending_twin(
        &self,
        turn: &Turn,
        echo: &InboundMessage,
    ) -> Result<Option<Message>, ConversationError> {
        let MessageContent::Text { body } = &echo.content else {
            return Ok(None);
        };
        let is_twin = |m: &Message| {
            m.direction == Direction::Outbound
                && m.status == MessageStatus::Pending
                && m.provider_message_id.is_none()
                && matches!(&m.content, MessageContent::Text { body: b } if b == body)
        };
        if let Some(found) = turn.messages.iter().rev().find(|m| is_twin(m)) {
            return Ok(Some(found.clone()));
        }
        let recent = self
            .store()
            .messages(self.tenant, self.id, SeqWindow::Before(Seq::MAX), 20)
            .await
            .map_err(|e| ConversationError::Store(e.to_string()))?;
        // The oldest pending twin first: sends answer in the order they were made. What this turn
        // already changed wins over the stored copy (two echoes in one webhook must not both claim
        // the same reply).
        Ok(recent
            .into_iter()
            .map(|m| {
                turn.messages
                    .iter()
                    .find(|changed| changed.seq == m.seq)
                    .map_or(m, Clone::clone)
            })
            .find(|m| is_twin(m)))
    }

    async fn apply_status(
        &self,
        turn: &mut Turn,
        status: &InboundStatus,
    ) -> Result<bool, ConversationError> {
        let key = MessageKey::Provider(status.provider_message_id.clone());
        let found = match turn.key(&key) {
            Some(found) => Some(found),
            None => self.lookup(&key).await?,
        };
        let Some(found) = found else { return Ok(false) };
        let change = StatusChange {
            status: status.status,
            at: status.at,
            error: status.error.clone(),
        };
        let mut message = match turn.message_mut(found.seq) {
            Some(m) => m.clone(),
            None => self.load_message(found.seq).await?,
        };
        if turn.advance(&mut message, change, None) {
            upsert(&mut turn.messages, message);
        }
        Ok(true)
    }

    /// Commits a turn: its events are stamped now, written at once, and published only once durable.
    /// A failure that may have written the turn anyway (a timeout, a lost answer) is settled by
    /// re-reading and retrying the identical commit until the turn deadline; only then is the outcome
    /// reported unknown (and left for the next actor to publish).
    async fn commit(
        &mut self,
        mut turn: Turn,
        request_id: Option<Arc<str>>,
    ) -> Result<(), ConversationError> {
        let started = Instant::now();
        turn.stamp(Timestamp::now());
        let commit = ConversationCommit {
            conversation: turn.conversation.clone(),
            previous: turn.previous,
            events: turn.events.clone(),
            messages: turn.messages,
            message_keys: turn.keys,
        };
        let store = Arc::clone(&self.directory.services().store);
        let deadline = self.turn_deadline;
        let first = tokio::time::timeout_at(deadline, store.commit(commit.clone())).await;
        match first {
            Ok(Ok(())) => {}
            Ok(Err(error @ StoreError::SeqConflict { .. })) => {
                // Refused before anything was written: another writer, or a stale cache.
                return Err(store_error(error));
            }
            Ok(Err(error)) => settle(store.as_ref(), &commit, deadline, error.to_string()).await?,
            Err(_) => settle(store.as_ref(), &commit, deadline, "commit timed out".into()).await?,
        }
        metrics::histogram!("conversa_store_operation_seconds", "op" => "commit")
            .record(started.elapsed().as_secs_f64());
        let durable_at = Instant::now();
        self.conversation = Some(turn.conversation);
        let bus = &self.directory.services().bus;
        for envelope in turn.events {
            bus.publish(Published::new(envelope, durable_at, request_id.clone()));
        }
        Ok(())
    }

    /// Answers the caller, then fails the actor if the store failed: its cached state may no longer
    /// match what is stored, so the next message rebuilds it from the store.
    fn answer<T: Send + 'static>(
        &self,
        reply: RpcReplyPort<Result<T, ConversationError>>,
        result: Result<T, ConversationError>,
    ) -> Result<(), ActorProcessingErr> {
        let error = result.as_ref().err().cloned();
        let _ = reply.send(result);
        match error {
            Some(error) => self.answer_nobody(&error),
            None => Ok(()),
        }
    }

    /// Fails the actor after a store failure (see `answer`); an unsettled commit is first handed to the
    /// directory so the next actor publishes whatever of it was stored.
    fn answer_nobody(&self, error: &ConversationError) -> Result<(), ActorProcessingErr> {
        match error {
            ConversationError::Unsettled(_) => {
                let published = self.conversation.as_ref().map_or(0, |c| c.last_seq);
                self.directory
                    .turn_unsettled(self.tenant, self.id, published);
                Err("commit outcome unknown; restarting from the store".into())
            }
            ConversationError::Store(_) => {
                Err("store commit failed; restarting from the store".into())
            }
            _ => Ok(()),
        }
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

    /// The turn, opening the conversation with `first` (and its `conversation.created` event) when it
    /// does not exist yet.
    fn open<'t>(
        &self,
        turn: &'t mut Option<Turn>,
        connection_id: ConnectionId,
        first: &InboundMessage,
    ) -> &'t mut Turn {
        let turn = turn.get_or_insert_with(|| {
            Turn::new(
                new_conversation(self.tenant, self.id, connection_id, first),
                true,
            )
        });
        if turn.conversation.last_seq == 0 {
            let conversation = turn.conversation.clone();
            turn.push(ConversationEvent::ConversationCreated { conversation });
        }
        turn
    }

    fn inbound_message(&self, inbound: &InboundMessage, now: Timestamp) -> Message {
        inbound_message(self.tenant, self.id, inbound, now)
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

/// Learns whether an ambiguous commit was written, retrying the identical commit (same ids, seqs and
/// stamps, so writing it twice is writing it once) until it is known or `deadline` passes.
async fn settle(
    store: &dyn MessageStore,
    commit: &ConversationCommit,
    deadline: tokio::time::Instant,
    first_error: String,
) -> Result<(), ConversationError> {
    const FIRST_PAUSE: std::time::Duration = std::time::Duration::from_millis(20);
    const LONGEST_PAUSE: std::time::Duration = std::time::Duration::from_secs(2);
    metrics::counter!("conversa_commits_unsettled_total").increment(1);
    tracing::warn!(conversation = %commit.conversation.id, error = %first_error, "commit outcome unknown; settling it");
    let tenant = commit.conversation.tenant_id;
    let id = commit.conversation.id;
    let mut pause = FIRST_PAUSE;
    loop {
        if tokio::time::Instant::now() + pause >= deadline {
            return Err(ConversationError::Unsettled(first_error));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(LONGEST_PAUSE);
        if let Some(last) = commit.events.last() {
            let at_seq =
                tokio::time::timeout_at(deadline, store.events(tenant, id, last.seq - 1, 1));
            match at_seq.await {
                Ok(Ok(found)) => match found.first() {
                    Some(stored) if stored == last => return Ok(()),
                    // Another event holds our seq: our commit was not written and cannot be.
                    Some(_) => {
                        return Err(ConversationError::Store(format!(
                            "seq {} of conversation {id} holds another turn's event",
                            last.seq
                        )));
                    }
                    None => {}
                },
                Ok(Err(_)) | Err(_) => continue,
            }
        }
        match tokio::time::timeout_at(deadline, store.commit(commit.clone())).await {
            Ok(Ok(())) => return Ok(()),
            // Written meanwhile (the next read tells), or written by another turn.
            Ok(Err(StoreError::SeqConflict { .. })) => {}
            Ok(Err(_)) | Err(_) => {}
        }
    }
}

/// After an actor stopped with a turn unsettled: publishes the events the store holds past what was
/// published then (at most one turn's worth), so a committed turn never stays unpublished.
async fn publish_unsettled(
    directory: &Directory,
    tenant: TenantId,
    id: ConversationId,
    stored: Option<&Conversation>,
) -> Result<(), StoreError> {
    let Some(published) = directory.unsettled_since(tenant, id) else {
        return Ok(());
    };
    let last_seq = stored.map_or(0, |c| c.last_seq);
    let store = &directory.services().store;
    let bus = &directory.services().bus;
    let mut after = published;
    while after < last_seq {
        let page = store.events(tenant, id, after, 500).await?;
        let Some(tail) = page.last() else { break };
        after = tail.seq;
        let now = Instant::now();
        for envelope in page.into_iter().filter(|e| e.seq <= last_seq) {
            bus.publish(Published::new(envelope, now, None));
        }
    }
    directory.settled(tenant, id, published);
    Ok(())
}

fn store_error(e: impl std::fmt::Display) -> ConversationError {
    ConversationError::Store(e.to_string())
}
