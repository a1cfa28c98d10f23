//! The ticket's state machine: which status changes an agent may make, and what a new message from
//! the customer does to a ticket, per the department's reopen setting. Pure rules; the events a
//! change records are worked out in [`super::change`].

use crate::records::ConversationStatus;
use serde::{Deserialize, Serialize};

/// What a customer's message does to a resolved or cancelled ticket (a department setting).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReopenPolicy {
    /// The same ticket opens again.
    #[default]
    Reopen,
    /// A new ticket (a new number) starts in the same conversation.
    NewTicket,
}

/// What an inbound message does to the ticket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnInbound {
    /// Nothing changes (the ticket is open or being attended).
    Stay,
    /// The status moves to this one (a `waiting` ticket is answered: back to `in_progress`).
    Move(ConversationStatus),
    /// A resolved or cancelled ticket opens again with the same number.
    Reopen,
    /// A new ticket starts.
    NewTicket,
}

/// Why a status change is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a ticket cannot go from {} to {}", .from.as_str(), .to.as_str())]
pub struct TransitionRefused {
    pub from: ConversationStatus,
    pub to: ConversationStatus,
}

/// Whether an agent may move a ticket from `from` to `to` (a no-op change is refused too, so
/// every accepted change is an event worth recording).
///
/// ```text
/// open ──▶ in_progress ⇄ waiting
///   │           │           │
///   └──────┬────┴───────────┘
///          ▼
///   resolved / cancelled ──▶ open (reopened by an agent)
/// ```
pub fn transition(
    from: ConversationStatus,
    to: ConversationStatus,
) -> Result<(), TransitionRefused> {
    use ConversationStatus::*;
    let allowed = match (from, to) {
        (a, b) if a == b => false,
        (Open, InProgress | Waiting | Resolved | Cancelled) => true,
        (InProgress, Waiting | Resolved | Cancelled | Open) => true,
        (Waiting, InProgress | Resolved | Cancelled | Open) => true,
        (Resolved | Cancelled, Open) => true,
        _ => false,
    };
    if allowed {
        Ok(())
    } else {
        Err(TransitionRefused { from, to })
    }
}

/// What a message from the customer does to a ticket in `status`.
pub fn on_inbound(status: ConversationStatus, policy: ReopenPolicy) -> OnInbound {
    use ConversationStatus::*;
    match status {
        Open | InProgress => OnInbound::Stay,
        Waiting => OnInbound::Move(InProgress),
        Resolved | Cancelled => match policy {
            ReopenPolicy::Reopen => OnInbound::Reopen,
            ReopenPolicy::NewTicket => OnInbound::NewTicket,
        },
    }
}

/// Whether the ticket is finished (no SLA clock runs, no distribution applies).
pub fn is_closed(status: ConversationStatus) -> bool {
    matches!(
        status,
        ConversationStatus::Resolved | ConversationStatus::Cancelled
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use ConversationStatus::*;

    const ALL: [ConversationStatus; 5] = [Open, InProgress, Waiting, Resolved, Cancelled];

    #[test]
    fn a_closed_ticket_only_reopens() {
        for to in ALL {
            assert_eq!(
                transition(Resolved, to).is_ok(),
                to == Open,
                "resolved → {to:?}"
            );
            assert_eq!(
                transition(Cancelled, to).is_ok(),
                to == Open,
                "cancelled → {to:?}"
            );
        }
    }

    #[test]
    fn an_active_ticket_can_be_resolved_or_cancelled_from_any_active_status() {
        for from in [Open, InProgress, Waiting] {
            assert!(transition(from, Resolved).is_ok());
            assert!(transition(from, Cancelled).is_ok());
        }
    }

    #[test]
    fn a_change_to_the_same_status_is_refused() {
        for status in ALL {
            assert_eq!(
                transition(status, status),
                Err(TransitionRefused {
                    from: status,
                    to: status
                })
            );
        }
    }

    #[test]
    fn a_customer_message_answers_waiting_and_reopens_per_policy() {
        assert_eq!(
            on_inbound(Waiting, ReopenPolicy::Reopen),
            OnInbound::Move(InProgress)
        );
        assert_eq!(
            on_inbound(InProgress, ReopenPolicy::Reopen),
            OnInbound::Stay
        );
        assert_eq!(
            on_inbound(Resolved, ReopenPolicy::Reopen),
            OnInbound::Reopen
        );
        assert_eq!(
            on_inbound(Cancelled, ReopenPolicy::NewTicket),
            OnInbound::NewTicket
        );
    }
}
