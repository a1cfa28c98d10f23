//! Ticket changes and clocks as conversation turns: an agent's (or the system's) change is checked by
//! the pure rules in `schema::helpdesk::change`, and the clocks that came due (a snooze, SLA targets)
//! are fired when the due-index sweep asks; either way the events are committed like any other turn
//! (so they reach the stream, the tenant's feed and the bus together) and the commit moves the
//! conversation's entry in the due index.

use super::{ConversationError, ConversationState};
use crate::turn::Turn;
use jiff::Timestamp;
use schema::AgentId;
use schema::MessageId;
use schema::events::ConversationEvent;
use schema::helpdesk::change::{self, TicketChange};
use schema::helpdesk::lifecycle;
use schema::helpdesk::sla::{SlaOutcome, TicketSla};
use schema::helpdesk::survey;
use schema::helpdesk::ticket::is_closed;
use schema::records::{Conversation, ConversationStatus, Direction, Message, MessageStatus};
use schema::store::Due;

impl ConversationState {
    pub(super) async fn change_ticket(
        &mut self,
        by: Option<AgentId>,
        change: TicketChange,
    ) -> Result<Conversation, ConversationError> {
        let Some(conversation) = self.conversation.clone() else {
            return Err(ConversationError::NotFound);
        };
        let was_closed = is_closed(conversation.status);
        let skip_survey = matches!(
            change,
            TicketChange::Status {
                skip_survey: true,
                ..
            }
        );
        let mut turn = Turn::new(conversation, false);
        let events = change::apply(&mut turn.conversation, change, by, turn.now)
            .map_err(|refused| ConversationError::Invalid(refused.to_string()))?;
        if events.is_empty() {
            // Nothing changes (a retried request): answered with the stored conversation.
            return Ok(turn.conversation);
        }
        for event in events {
            turn.push(event);
        }
        // A change of agent by a person ends the wait for the agent distribution chose; a ticket left
        // unassigned in a distributing department queues for an agent.
        let agent_changed = turn.events.iter().any(|e| {
            matches!(
                e.event,
                ConversationEvent::Assigned { .. }
                    | ConversationEvent::Unassigned { .. }
                    | ConversationEvent::Transferred { .. }
            )
        });
        if agent_changed {
            turn.conversation.answer_by = None;
        }
        let team = turn.conversation.team.clone();
        let department = self.department(team.as_deref()).await?;
        super::distribution::queue(&mut turn, department.as_deref());
        // The SLA clocks follow the ticket: closing meets resolution, reopening starts them again.
        let closed = is_closed(turn.conversation.status);
        if closed && !was_closed {
            let resolved = turn.conversation.status == ConversationStatus::Resolved;
            let outcomes = turn.conversation.sla.closed(turn.now, resolved);
            push_outcomes(&mut turn, outcomes);
        } else if was_closed && !closed {
            turn.conversation.sla = department.map_or_else(TicketSla::default, |d| {
                TicketSla::reopened_by_agent(&d.sla, d.hours.as_ref(), turn.now)
            });
        }
        // An agent resolving the ticket asks the customer for a score, if the tenant rates.
        let survey = match closed && !was_closed && by.is_some() && !skip_survey {
            true if turn.conversation.status == ConversationStatus::Resolved => {
                self.survey(&mut turn).await?
            }
            _ => None,
        };
        self.commit(turn, None).await?;
        if let Some(question) = survey {
            self.dispatch(&question, None).await;
        }
        self.conversation
            .clone()
            .ok_or_else(|| ConversationError::Store("conversation missing after commit".into()))
    }

    /// Adds the satisfaction survey's question to the turn when the tenant's `service_rating` is
    /// on and the channel lets us write; returns the stored `pending` message to dispatch after the
    /// commit.
    async fn survey(&self, turn: &mut Turn) -> Result<Option<Message>, ConversationError> {
        if !survey::should_ask(&turn.conversation, turn.now) {
            return Ok(None);
        }
        let flags = self
            .store()
            .feature_flags(self.tenant)
            .await
            .map_err(super::store_error)?
            .unwrap_or_default();
        if !flags.service_rating {
            return Ok(None);
        }
        // Only through a connection that sends now: a paused or removed one would never deliver it.
        let connection = self
            .store()
            .connection(turn.conversation.connection_id)
            .await
            .map_err(super::store_error)?;
        if connection.is_none_or(|c| c.status == schema::records::ConnectionStatus::Paused) {
            return Ok(None);
        }
        let content = survey::ask(&mut turn.conversation, turn.now);
        metrics::counter!("conversa_surveys_sent_total").increment(1);
        Ok(Some(turn.add_message(Message {
            id: MessageId::new(),
            tenant_id: self.tenant,
            conversation_id: turn.conversation.id,
            seq: 0,
            direction: Direction::Outbound,
            content,
            status: MessageStatus::Pending,
            provider_message_id: None,
            reply_to: None,
            sent_by: None,
            client_message_id: None,
            error: None,
            created_at: turn.now,
            updated_at: turn.now,
            forwarded: false,
            sender: None,
            deleted: None,
        })))
    }

    /// Fires the clocks that came due (the sweep found this conversation in the due index at
    /// `listed`). When nothing is due and the index disagrees with the record (an entry left behind),
    /// a turn without events moves the entry to where the record says.
    pub(super) async fn fire_timers(&mut self, listed: Timestamp) -> Result<(), ConversationError> {
        let Some(conversation) = self.conversation.clone() else {
            // An entry naming no stored conversation (its turn wrote the entry, not the record).
            let due = Due {
                tenant: self.tenant,
                conversation: self.id,
                at: listed,
            };
            return self
                .store()
                .forget_due(&due)
                .await
                .map_err(super::store_error);
        };
        let mut turn = Turn::new(conversation, false);
        let events = lifecycle::timers_due(&mut turn.conversation, turn.now);
        for event in events {
            count_sla(&event);
            turn.push(event);
        }
        let result = self.fire_turn(turn, listed).await;
        // An agent distribution chose counted as one more ticket until now: the store shows it from
        // here (or the turn failed and they do not have it).
        self.reserved.clear();
        result
    }

    async fn fire_turn(
        &mut self,
        mut turn: Turn,
        listed: Timestamp,
    ) -> Result<(), ConversationError> {
        self.distribution_due(&mut turn).await?;
        if turn.events.is_empty() {
            if turn.conversation.next_due() == Some(listed) {
                return Ok(());
            }
            if let Some(previous) = turn.previous.as_mut() {
                previous.due = Some(listed);
            }
        }
        metrics::counter!("conversa_timers_fired_total").increment(1);
        self.commit(turn, None).await
    }
}

/// Records SLA outcomes as events.
pub(super) fn push_outcomes(turn: &mut Turn, outcomes: Vec<SlaOutcome>) {
    for outcome in outcomes {
        let event = ConversationEvent::from(outcome);
        count_sla(&event);
        turn.push(event);
    }
}

fn count_sla(event: &ConversationEvent) {
    let (target, outcome) = match event {
        ConversationEvent::SlaHit { target, .. } => (target, "hit"),
        ConversationEvent::SlaMissed { target, .. } => (target, "missed"),
        _ => return,
    };
    metrics::counter!("conversa_sla_outcomes_total", "target" => target.as_str(), "outcome" => outcome)
        .increment(1);
}
