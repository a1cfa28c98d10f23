//! The inbound half of a conversation turn: one webhook's messages, statuses, echoes and read receipts
//! for this conversation, deduplicated by provider id and built into one `Turn` (see `turn.rs`); the
//! turn is committed by `commit.rs`. Echoes of our own sends are matched exactly (a reference we sent,
//! or the provider id the send answer brings) and never by their text.

use super::departments::out_of_hours_reply;
use super::{ConversationError, ConversationState, store_error};
use crate::directory::IngestReport;
use crate::turn::{
    Turn, early_changed_insert, hold_echo, inbound_message, new_conversation, note_inbound, upsert,
};
use jiff::Timestamp;
use schema::events::ConversationEvent;
use schema::helpdesk::lifecycle;
use schema::helpdesk::sla::TicketSla;
use schema::helpdesk::survey;
use schema::helpdesk::ticket::{self, OnInbound, ReopenPolicy};
use schema::inbound::{InboundEvent, InboundMessage, InboundStatus};
use schema::records::Department;
use schema::records::Rating;
use schema::records::{Direction, Message, MessageContent, MessageStatus, StatusChange};
use schema::store::{MessageKey, MessageRef, SeqWindow};
use schema::{ConnectionId, MessageId, Seq};
use std::sync::Arc;

impl ConversationState {
    pub(super) async fn ingest(
        &mut self,
        connection_id: ConnectionId,
        events: Vec<InboundEvent>,
        request_id: &Arc<str>,
    ) -> Result<IngestReport, ConversationError> {
        let mut report = IngestReport::default();
        let opens = self.conversation.is_none() && carries_message(&events, true);
        // The department: the one the connection feeds for a new conversation, else the ticket's.
        let department = if opens {
            self.entry_department(connection_id).await?
        } else {
            let team = self.conversation.as_ref().and_then(|c| c.team.clone());
            self.department(team.as_deref()).await?
        };
        let policy = department
            .as_ref()
            .map_or_else(ReopenPolicy::default, |d| d.reopen);
        // A message starting a ticket (a new conversation's first, or one after a closed ticket when the
        // policy starts a new one) needs a number, which only the store hands out: taken up front.
        let mut opening = Opening {
            ticket: match self.new_ticket_needed(&events, policy) {
                true => Some(
                    self.store()
                        .next_ticket_number(self.tenant)
                        .await
                        .map_err(store_error)?,
                ),
                false => None,
            },
            team: department.as_ref().filter(|_| opens).map(|d| d.key.clone()),
            // Only a customer's message starts the clocks: a conversation opened by an echo (a
            // message sent from the phone) waits on nobody.
            sla: department
                .as_ref()
                .filter(|_| opens && carries_message(&events, false))
                .map(|d| TicketSla::start(&d.sla, d.hours.as_ref(), Timestamp::now()))
                .unwrap_or_default(),
        };
        let mut customer_messages = 0usize;
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
                    let turn = self.open(&mut turn, connection_id, &inbound, &mut opening);
                    let message = turn.add_message(self.inbound_message(&inbound, turn.now));
                    if let Some(name) = inbound.from.name.clone() {
                        turn.conversation.contact.name = Some(name);
                    }
                    // The score a survey asked for rates the ticket and leaves it as it is.
                    match survey::answered(&mut turn.conversation, &message.content, turn.now) {
                        Some(rated) => {
                            if let ConversationEvent::TicketRated {
                                score,
                                ticket_number,
                            } = rated
                            {
                                turn.conversation.rating = Some(Rating {
                                    score,
                                    ticket_number,
                                    at: turn.now,
                                });
                                metrics::counter!("conversa_ratings_total").increment(1);
                            }
                            turn.push(rated);
                        }
                        None => {
                            customer_wrote(
                                turn,
                                department.as_deref(),
                                policy,
                                &mut opening.ticket,
                            );
                            customer_messages += 1;
                        }
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
                    let applied = self.apply_status(turn, &status).await?;
                    if applied == Some(true) {
                        report.statuses_applied += 1;
                    } else if applied == Some(false) {
                        // Known and already there: a provider's retry changes nothing.
                        report.duplicates += 1;
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
                        if self.apply_status(turn, &sent).await? == Some(true) {
                            report.statuses_applied += 1;
                        } else {
                            report.duplicates += 1;
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
                    let turn = self.open(&mut turn, connection_id, &echo, &mut opening);
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
                    report.statuses_applied +=
                        self.up_to(turn, watermark, MessageStatus::Read).await?;
                }
                InboundEvent::DeliveredUpTo { watermark, .. } => {
                    let Some(turn) = turn.as_mut() else {
                        report.statuses_ignored += 1;
                        continue;
                    };
                    report.statuses_applied += self
                        .up_to(turn, watermark, MessageStatus::Delivered)
                        .await?;
                }
                InboundEvent::Deleted {
                    provider_message_id,
                    at,
                    contact,
                } => {
                    let Some(turn) = turn.as_mut() else {
                        report.statuses_ignored += 1;
                        continue;
                    };
                    let deleted = InboundStatus {
                        provider_message_id,
                        recipient: contact,
                        status: MessageStatus::Deleted,
                        at,
                        error: None,
                    };
                    match self.apply_status(turn, &deleted).await? {
                        Some(true) => report.statuses_applied += 1,
                        Some(false) => report.duplicates += 1,
                        None => report.statuses_ignored += 1,
                    }
                }
            }
        }
        // A waiting ticket of a distributing department queues for an agent.
        if let Some(turn) = turn.as_mut()
            && customer_messages > 0
        {
            super::distribution::queue(turn, department.as_deref());
        }
        // The department's out-of-hours reply rides in the same turn as the customer's message.
        let auto_reply = match (turn.as_mut(), &department) {
            (Some(turn), Some(department)) if customer_messages > 0 => {
                out_of_hours_reply(turn, self.tenant, department)
            }
            _ => None,
        };
        if let Some(turn) = turn
            && (!turn.events.is_empty() || early_changed)
        {
            self.commit(turn, Some(Arc::clone(request_id))).await?;
        }
        if let Some(reply) = auto_reply {
            self.dispatch(&reply, None).await;
        }
        metrics::counter!("conversa_messages_ingested_total")
            .increment(report.messages_stored as u64);
        metrics::counter!("conversa_messages_duplicate_total").increment(report.duplicates as u64);
        Ok(report)
    }

    /// Moves every recent outbound message created at or before `watermark` to `status` (read or
    /// delivered: Messenger receipts may name a time, not a message). Looks at the newest
    /// `READ_RECEIPT_SCAN` messages.
    async fn up_to(
        &self,
        turn: &mut Turn,
        watermark: Timestamp,
        status: MessageStatus,
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
            ) && message.status.can_advance_to(status);
            if message.direction != Direction::Outbound || !sent || message.created_at > watermark {
                continue;
            }
            let change = StatusChange {
                status,
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
    pub(super) async fn pending_twin(
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

    /// Applies a status to a known message: `Some(true)` when it moved the message, `Some(false)` when
    /// the message already had it (a retry), `None` when the provider id is not (yet) known here.
    async fn apply_status(
        &self,
        turn: &mut Turn,
        status: &InboundStatus,
    ) -> Result<Option<bool>, ConversationError> {
        let key = MessageKey::Provider(status.provider_message_id.clone());
        let found = match turn.key(&key) {
            Some(found) => Some(found),
            None => self.lookup(&key).await?,
        };
        let Some(found) = found else { return Ok(None) };
        let change = StatusChange {
            status: status.status,
            at: status.at,
            error: status.error.clone(),
        };
        let mut message = match turn.message_mut(found.seq) {
            Some(m) => m.clone(),
            None => self.load_message(found.seq).await?,
        };
        let moved = turn.advance(&mut message, change, None);
        if moved {
            upsert(&mut turn.messages, message);
        }
        Ok(Some(moved))
    }

    /// The turn, opening the conversation with `first` (its `conversation.created` event, whose
    /// record carries the first ticket's number and the department it entered, both settled up
    /// front) when it does not exist yet.
    fn open<'t>(
        &self,
        turn: &'t mut Option<Turn>,
        connection_id: ConnectionId,
        first: &InboundMessage,
        opening: &mut Opening,
    ) -> &'t mut Turn {
        let mut created = false;
        let turn = turn.get_or_insert_with(|| {
            let mut conversation = new_conversation(self.tenant, self.id, connection_id, first);
            // Seqs a cluster owner reserved for this conversation and may still write are skipped.
            conversation.last_seq = self.reserved_seq;
            conversation.ticket_number = opening.ticket.take().unwrap_or(0);
            conversation.ticket_opened_at = Some(conversation.created_at);
            conversation.team = opening.team.take();
            conversation.sla = std::mem::take(&mut opening.sla);
            created = true;
            Turn::new(conversation, true)
        });
        if created {
            let conversation = turn.conversation.clone();
            turn.push(ConversationEvent::ConversationCreated { conversation });
        }
        turn
    }

    /// Whether this webhook's events start a ticket, so need a number before the turn.
    fn new_ticket_needed(&self, events: &[InboundEvent], policy: ReopenPolicy) -> bool {
        match &self.conversation {
            None => carries_message(events, true),
            Some(c) => {
                ticket::is_closed(c.status)
                    && policy == ReopenPolicy::NewTicket
                    && carries_message(events, false)
                    && !only_a_score(c, events)
            }
        }
    }

    fn inbound_message(&self, inbound: &InboundMessage, now: Timestamp) -> Message {
        inbound_message(self.tenant, self.id, inbound, now)
    }
}

/// Applies a customer's message to the ticket (wake, answer, reopen, or a new ticket with the number
/// taken up front) and its SLA clocks (started again for a reopened or new ticket, else a
/// next-response clock once the first response is settled), and records the events.
fn customer_wrote(
    turn: &mut Turn,
    department: Option<&Department>,
    policy: ReopenPolicy,
    new_ticket: &mut Option<u64>,
) {
    let was_closed = ticket::is_closed(turn.conversation.status);
    let (events, outcome) = lifecycle::customer_wrote(&mut turn.conversation, policy);
    for event in events {
        turn.push(event);
    }
    if outcome == OnInbound::NewTicket {
        let events = match new_ticket.take() {
            Some(number) => lifecycle::start_ticket(&mut turn.conversation, number, None, turn.now),
            // Only when the policy changed between the check and here: reopen instead.
            None => lifecycle::customer_wrote(&mut turn.conversation, ReopenPolicy::Reopen).0,
        };
        for event in events {
            turn.push(event);
        }
    }
    if let Some(department) = department {
        let (policy, hours) = (&department.sla, department.hours.as_ref());
        if was_closed && !ticket::is_closed(turn.conversation.status) {
            turn.conversation.sla = TicketSla::start(policy, hours, turn.now);
        } else {
            turn.conversation
                .sla
                .customer_wrote(policy, hours, turn.now);
        }
    }
}

/// What a new conversation starts with, settled before its turn (both need the store).
struct Opening {
    /// The number of the ticket a message starts (taken up front).
    ticket: Option<u64>,
    /// The department a new conversation enters.
    team: Option<String>,
    /// The SLA clocks of its first ticket (its department's targets).
    sla: TicketSla,
}

/// Whether the contact's only message in `events` is the score of the pending survey (it starts no
/// ticket). Judged with the clock now, as the turn will be.
fn only_a_score(conversation: &schema::records::Conversation, events: &[InboundEvent]) -> bool {
    let mut messages = events.iter().filter_map(|e| match e {
        InboundEvent::Message(m) => Some(m),
        _ => None,
    });
    match (messages.next(), messages.next()) {
        (Some(only), None) => survey::would_rate(conversation, &only.content, Timestamp::now()),
        _ => false,
    }
}

/// Whether the events carry a message from the contact (and, with `echo_too`, an echo of one sent
/// from elsewhere: both open a conversation).
fn carries_message(events: &[InboundEvent], echo_too: bool) -> bool {
    events.iter().any(|e| {
        matches!(e, InboundEvent::Message(_)) || (echo_too && matches!(e, InboundEvent::Echo(_)))
    })
}
