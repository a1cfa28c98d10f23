//! One turn of a conversation actor: every change a message causes (events with their seqs, messages,
//! idempotency keys, the updated conversation record), built on a copy of the state and committed to
//! the store at once. If the commit fails the copy is dropped and the actor's state is untouched.

use jiff::Timestamp;
use schema::events::{ConversationEvent, EventEnvelope};
use schema::inbound::InboundMessage;
use schema::inbound::InboundStatus;
use schema::records::{Conversation, Message, StatusChange};
use schema::records::{ConversationStatus, Direction, MessageStatus, Priority};
use schema::store::{InboxPosition, MessageKey, MessageRef};
use schema::{ConnectionId, ConversationId, MessageId, Seq, TenantId};

/// How many statuses for not-yet-known provider ids a conversation keeps, and how many bytes (ids and
/// error texts) they may hold together; the oldest go first. The record is read on every inbox page.
const MAX_EARLY_STATUSES: usize = 64;
const MAX_EARLY_STATUS_BYTES: usize = 16 * 1024;

/// Everything one turn changes, built on a copy of the conversation and committed at once.
pub(crate) struct Turn {
    pub(crate) conversation: Conversation,
    pub(crate) previous: Option<InboxPosition>,
    pub(crate) events: Vec<EventEnvelope>,
    pub(crate) messages: Vec<Message>,
    pub(crate) keys: Vec<(MessageKey, MessageRef)>,
    /// The words of the turn's new messages, for search.
    pub(crate) search_terms: std::collections::BTreeSet<String>,
    pub(crate) now: Timestamp,
}

impl Turn {
    pub(crate) fn new(conversation: Conversation, is_new: bool) -> Self {
        let previous = (!is_new).then(|| InboxPosition::of(&conversation));
        Self {
            conversation,
            previous,
            events: Vec::new(),
            messages: Vec::new(),
            keys: Vec::new(),
            search_terms: std::collections::BTreeSet::new(),
            now: Timestamp::now(),
        }
    }

    pub(crate) fn push(&mut self, event: ConversationEvent) -> Seq {
        self.conversation.last_seq += 1;
        self.conversation.last_activity_at = self.now;
        let seq = self.conversation.last_seq;
        self.events.push(EventEnvelope {
            tenant_id: self.conversation.tenant_id,
            conversation_id: self.conversation.id,
            connection_id: Some(self.conversation.connection_id),
            seq,
            at: self.now,
            event,
        });
        seq
    }

    pub(crate) fn add_message(&mut self, mut message: Message) -> Message {
        message.seq = self.conversation.last_seq + 1;
        schema::helpdesk::deletion::revived(&mut self.conversation);
        self.conversation.message_count += 1;
        self.conversation.last_message_preview = Some(message.content.preview());
        if let Some(text) = schema::helpdesk::search::searchable_text(&message.content) {
            let room = schema::helpdesk::search::MAX_WORDS_PER_TURN
                .saturating_sub(self.search_terms.len());
            self.search_terms
                .extend(schema::helpdesk::search::words(text).into_iter().take(room));
        }
        let seq = self.push(ConversationEvent::MessageCreated {
            message: message.clone(),
        });
        debug_assert_eq!(seq, message.seq);
        self.messages.push(message.clone());
        message
    }

    /// Stamps the turn's events (and the conversation's activity) with the time of its commit, not of
    /// its start: a resume window is computed from the `at` of events an agent received, and an event
    /// must not be published carrying a time older than events published before it.
    /// The time is the conversation's stamp, which only grows: a clock that steps back (or a new owner
    /// whose clock is behind) never dates an event before the ones already in its stream, so stores
    /// that order a tenant's feed by time keep each conversation's events in seq order.
    pub(crate) fn stamp(&mut self, at: Timestamp) {
        let clock = at.as_microsecond();
        self.conversation.stamp_us = clock.max(self.conversation.stamp_us.saturating_add(1));
        if self.events.is_empty() {
            return;
        }
        let at = Timestamp::from_microsecond(self.conversation.stamp_us).unwrap_or(at);
        for event in &mut self.events {
            event.at = at;
        }
        self.conversation.last_activity_at = at;
    }

    /// A message already touched in this turn, or `None`.
    pub(crate) fn message_mut(&mut self, seq: Seq) -> Option<&mut Message> {
        self.messages.iter_mut().find(|m| m.seq == seq)
    }

    pub(crate) fn key(&self, key: &MessageKey) -> Option<MessageRef> {
        self.keys.iter().find(|(k, _)| k == key).map(|(_, r)| *r)
    }

    /// Moves a message's status forward (never backwards) and records the event.
    pub(crate) fn advance(
        &mut self,
        message: &mut Message,
        change: StatusChange,
        provider_message_id: Option<String>,
    ) -> bool {
        let id_is_new = provider_message_id.is_some() && message.provider_message_id.is_none();
        let moves = message.status.can_advance_to(change.status);
        if !moves && !id_is_new {
            return false;
        }
        if id_is_new {
            message.provider_message_id = provider_message_id;
        }
        if moves {
            message.status = change.status;
            message.error = change.error.or(message.error.take());
            if message.status == MessageStatus::Deleted {
                schema::helpdesk::deletion::revoked(&mut self.conversation, message);
            }
        }
        message.updated_at = self.now;
        self.push(ConversationEvent::MessageStatusUpdated {
            message_id: message.id,
            status: message.status,
            provider_message_id: message.provider_message_id.clone(),
            error: message.error.clone(),
        });
        true
    }
}

/// Keeps a status whose provider id is not known yet (its send call has not answered); `false` if the
/// same or a later status is already waiting.
pub(crate) fn early_changed_insert(turn: &mut Turn, status: &InboundStatus) -> bool {
    let change = StatusChange {
        status: status.status,
        at: status.at,
        error: status.error.clone(),
    };
    let early = &mut turn.conversation.early_statuses;
    if let Some(waiting) = early.get(&status.provider_message_id)
        && !waiting.status.can_advance_to(change.status)
    {
        return false;
    }
    early.insert(status.provider_message_id.clone(), change);
    while early.len() > MAX_EARLY_STATUSES || early_bytes(early) > MAX_EARLY_STATUS_BYTES {
        let oldest = early
            .iter()
            .min_by_key(|(_, c)| c.at)
            .map(|(k, _)| k.clone());
        match oldest {
            Some(key) => early.remove(&key),
            None => break,
        };
    }
    true
}

/// Records that the contact wrote at `sent_at`: the customer-service window opens from the newest
/// message, so an older one arriving late (a provider retry, out-of-order delivery) never moves it
/// back, and a sender's clock ahead of ours never holds it open past now.
pub(crate) fn note_inbound(conversation: &mut Conversation, sent_at: Timestamp, now: Timestamp) {
    let at = sent_at.min(now);
    conversation.last_inbound_at = conversation.last_inbound_at.max(Some(at));
}

/// How many echoes a conversation holds while their sends are unanswered; past it the oldest is
/// stored as a message of its own (at worst shown beside its reply, never lost).
const MAX_HELD_ECHOES: usize = 16;

/// Holds an echo that may belong to a reply still waiting for its provider id.
pub(crate) fn hold_echo(turn: &mut Turn, echo: InboundMessage) {
    turn.conversation.held_echoes.push(echo);
    while turn.conversation.held_echoes.len() > MAX_HELD_ECHOES {
        let oldest = turn.conversation.held_echoes.remove(0);
        store_echo(turn, &oldest);
    }
}

/// Stores an echo as an outbound message sent from elsewhere (the phone, Meta's inbox, another tool),
/// under its provider id.
pub(crate) fn store_echo(turn: &mut Turn, echo: &InboundMessage) {
    let (tenant, id) = (turn.conversation.tenant_id, turn.conversation.id);
    let mut message = inbound_message(tenant, id, echo, turn.now);
    message.direction = Direction::Outbound;
    message.status = MessageStatus::Sent;
    let message = turn.add_message(message);
    turn.keys.push((
        MessageKey::Provider(echo.provider_message_id.clone()),
        MessageRef {
            message_id: message.id,
            seq: message.seq,
        },
    ));
}

/// Roughly what the waiting statuses weigh in the stored record.
fn early_bytes(early: &std::collections::BTreeMap<String, StatusChange>) -> usize {
    early
        .iter()
        .map(|(id, change)| {
            let error = change.error.as_ref().map_or(0, |e| {
                e.title.len() + e.detail.as_ref().map_or(0, String::len)
            });
            id.len() + error + 64
        })
        .sum()
}

pub(crate) fn upsert(messages: &mut Vec<Message>, message: Message) {
    match messages.iter_mut().find(|m| m.seq == message.seq) {
        Some(slot) => *slot = message,
        None => messages.push(message),
    }
}

/// A new open conversation with the contact of its first message.
pub(crate) fn new_conversation(
    tenant: TenantId,
    id: ConversationId,
    connection_id: ConnectionId,
    first: &InboundMessage,
) -> Conversation {
    conversation_with(tenant, id, connection_id, first.from.clone())
}

/// A new open conversation with `contact`.
pub(crate) fn conversation_with(
    tenant: TenantId,
    id: ConversationId,
    connection_id: ConnectionId,
    contact: schema::records::Contact,
) -> Conversation {
    let now = Timestamp::now();
    Conversation {
        survey: None,
        rating: None,
        id,
        tenant_id: tenant,
        connection_id,
        contact,
        status: ConversationStatus::Open,
        priority: Priority::Normal,
        assignee: None,
        team: None,
        tags: Vec::new(),
        ticket_number: 0,
        ticket_opened_at: None,
        snoozed_until: None,
        out_of_hours_replied_at: None,
        sla: Default::default(),
        distribute_at: None,
        distribute_attempts: 0,
        answer_by: None,
        last_seq: 0,
        created_at: now,
        last_activity_at: now,
        last_inbound_at: None,
        message_count: 0,
        last_message_preview: None,
        early_statuses: Default::default(),
        held_echoes: Vec::new(),
        stamp_us: 0,
        deleted: None,
        deleted_through: 0,
        deleted_seqs: Default::default(),
    }
}

/// The stored form of a message the contact sent (its seq is set when the turn adds it).
pub(crate) fn inbound_message(
    tenant: TenantId,
    id: ConversationId,
    inbound: &InboundMessage,
    now: Timestamp,
) -> Message {
    Message {
        deleted: None,
        id: MessageId::new(),
        tenant_id: tenant,
        conversation_id: id,
        seq: 0,
        direction: Direction::Inbound,
        content: inbound.content.clone(),
        status: MessageStatus::Received,
        provider_message_id: Some(inbound.provider_message_id.clone()),
        reply_to: inbound.reply_to.clone(),
        sent_by: None,
        client_message_id: None,
        error: None,
        created_at: inbound.sent_at,
        updated_at: now,
        forwarded: inbound.forwarded,
        sender: inbound.sender.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::SignedDuration;
    use schema::records::Contact;

    fn conversation() -> Conversation {
        let first = InboundMessage {
            provider_message_id: "wamid.1".into(),
            from: Contact {
                address: "5511999990000".into(),
                name: None,
            },
            sent_at: Timestamp::now(),
            content: schema::records::MessageContent::Text { body: "oi".into() },
            reply_to: None,
            reference: None,
            forwarded: false,
            sender: None,
        };
        new_conversation(
            TenantId::new(),
            ConversationId::new(),
            ConnectionId::new(),
            &first,
        )
    }

    #[test]
    fn an_older_message_arriving_late_never_moves_the_window_back() {
        let now = Timestamp::now();
        let mut c = conversation();
        note_inbound(&mut c, now, now);
        note_inbound(&mut c, now - SignedDuration::from_hours(25), now);
        assert_eq!(c.last_inbound_at, Some(now));
    }

    #[test]
    fn statuses_for_unknown_ids_stay_within_their_byte_bound() {
        let mut turn = Turn::new(conversation(), false);
        for i in 0..64 {
            let status = InboundStatus {
                provider_message_id: format!("{i:0>500}"),
                recipient: "5511".into(),
                status: schema::records::MessageStatus::Delivered,
                at: Timestamp::now(),
                error: Some(schema::records::ProviderError {
                    code: None,
                    title: "t".repeat(1024),
                    detail: Some("d".repeat(1024)),
                }),
            };
            early_changed_insert(&mut turn, &status);
        }
        let early = &turn.conversation.early_statuses;
        assert!(!early.is_empty());
        assert!(
            early_bytes(early) <= MAX_EARLY_STATUS_BYTES,
            "{}",
            early_bytes(early)
        );
    }

    #[test]
    fn every_commit_stamp_grows_even_when_the_clock_steps_back() {
        let mut turn = Turn::new(conversation(), false);
        let now = Timestamp::now();
        turn.stamp(now);
        let first = turn.conversation.stamp_us;
        // The next process runs on a clock an hour behind.
        let mut next = Turn::new(turn.conversation.clone(), false);
        next.stamp(now - SignedDuration::from_hours(1));
        assert!(next.conversation.stamp_us > first);
        let mut again = Turn::new(next.conversation.clone(), false);
        again.stamp(now - SignedDuration::from_hours(1));
        assert!(again.conversation.stamp_us > next.conversation.stamp_us);
    }

    #[test]
    fn a_sender_clock_ahead_of_ours_counts_as_now() {
        let now = Timestamp::now();
        let mut c = conversation();
        note_inbound(&mut c, now + SignedDuration::from_hours(3), now);
        assert_eq!(c.last_inbound_at, Some(now));
    }
}
