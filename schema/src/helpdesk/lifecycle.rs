//! What happens to a ticket without an agent's change: a customer's message (it wakes a snoozed
//! ticket, answers a waiting one, reopens a closed one or leaves a new ticket to the caller), a new
//! ticket starting in a conversation, and the clocks that come due. Pure rules, over the state
//! machine of [`super::ticket`].

use super::ticket::{OnInbound, ReopenPolicy, on_inbound};
use crate::events::ConversationEvent;
use crate::ids::AgentId;
use crate::records::{Conversation, ConversationStatus, Priority};
use jiff::Timestamp;

/// What a message from the customer does to the ticket: wakes a snoozed one, answers a waiting one,
/// and reopens a closed one when `policy` says so. Returns the events; `NewTicket` is left to the
/// caller, which must take a new number first ([`start_ticket`]).
pub fn customer_wrote(
    conversation: &mut Conversation,
    policy: ReopenPolicy,
) -> (Vec<ConversationEvent>, OnInbound) {
    let mut events = Vec::new();
    if conversation.snoozed_until.take().is_some() {
        events.push(ConversationEvent::Snoozed {
            until: None,
            by: None,
        });
    }
    let outcome = on_inbound(conversation.status, policy);
    let to = match outcome {
        OnInbound::Stay | OnInbound::NewTicket => None,
        OnInbound::Move(to) => Some(to),
        OnInbound::Reopen => Some(ConversationStatus::Open),
    };
    if let Some(to) = to {
        events.push(ConversationEvent::StatusChanged {
            from: conversation.status,
            to,
            by: None,
        });
        conversation.status = to;
    }
    (events, outcome)
}

/// Starts a new ticket numbered `number` in the conversation at `now`: open, unassigned, normal
/// priority, no tags; the department stays (the same channel's queue).
pub fn start_ticket(
    conversation: &mut Conversation,
    number: u64,
    by: Option<AgentId>,
    now: Timestamp,
) -> Vec<ConversationEvent> {
    let mut events = Vec::new();
    if conversation.status != ConversationStatus::Open {
        events.push(ConversationEvent::StatusChanged {
            from: conversation.status,
            to: ConversationStatus::Open,
            by,
        });
    }
    conversation.status = ConversationStatus::Open;
    conversation.assignee = None;
    conversation.priority = Priority::Normal;
    conversation.tags.clear();
    conversation.snoozed_until = None;
    conversation.ticket_number = number;
    conversation.ticket_opened_at = Some(now);
    events.push(ConversationEvent::TicketOpened { number, by });
    events
}

/// What the clocks of a conversation do at `now`: a snooze whose time came ends, SLA targets whose
/// time came are missed. Returns the events to record (none when nothing was due).
pub fn timers_due(conversation: &mut Conversation, now: Timestamp) -> Vec<ConversationEvent> {
    let mut events = Vec::new();
    if conversation.snoozed_until.is_some_and(|until| until <= now) {
        conversation.snoozed_until = None;
        events.push(ConversationEvent::Snoozed {
            until: None,
            by: None,
        });
    }
    events.extend(
        conversation
            .sla
            .fire(now)
            .into_iter()
            .map(ConversationEvent::from),
    );
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpdesk::change::tests::{NOW, ticket};
    use ConversationStatus::*;
    use jiff::SignedDuration;

    #[test]
    fn a_customer_message_wakes_reopens_or_leaves_a_new_ticket_to_the_caller() {
        let mut t = ticket();
        t.status = Resolved;
        t.snoozed_until = Some(NOW);
        let (events, outcome) = customer_wrote(&mut t, ReopenPolicy::Reopen);
        assert_eq!(outcome, OnInbound::Reopen);
        assert_eq!(events.len(), 2);
        assert_eq!(t.status, Open);

        let mut t = ticket();
        t.status = Cancelled;
        t.assignee = Some(AgentId::new());
        let (events, outcome) = customer_wrote(&mut t, ReopenPolicy::NewTicket);
        assert!(events.is_empty());
        assert_eq!(outcome, OnInbound::NewTicket);
        let events = start_ticket(&mut t, 9, None, NOW);
        assert_eq!(t.status, Open);
        assert_eq!(t.assignee, None);
        assert_eq!(t.ticket_number, 9);
        assert_eq!(
            events.last(),
            Some(&ConversationEvent::TicketOpened {
                number: 9,
                by: None
            })
        );
    }

    #[test]
    fn a_snooze_ends_and_sla_clocks_are_missed_when_their_time_comes() {
        let mut t = ticket();
        let until = NOW + SignedDuration::from_hours(1);
        t.snoozed_until = Some(until);
        let policy = crate::helpdesk::sla::SlaPolicy {
            first_response: Some(SignedDuration::from_mins(30)),
            ..Default::default()
        };
        t.sla = crate::helpdesk::sla::TicketSla::start(&policy, None, NOW);
        assert_eq!(t.next_due(), Some(NOW + SignedDuration::from_mins(30)));
        assert!(timers_due(&mut t, NOW + SignedDuration::from_mins(29)).is_empty());
        let fired = timers_due(&mut t, NOW + SignedDuration::from_mins(30));
        assert!(matches!(fired[..], [ConversationEvent::SlaMissed { .. }]));
        assert_eq!(t.next_due(), Some(until));
        let fired = timers_due(&mut t, until);
        assert_eq!(
            fired,
            vec![ConversationEvent::Snoozed {
                until: None,
                by: None
            }]
        );
        assert_eq!(t.next_due(), None);
    }
}
