//! The satisfaction survey (the tenant's `service_rating` flag): when an agent resolves a ticket,
//! the customer is asked for a score from 1 to 5, and a reply that is just that score, within a day,
//! is recorded as the ticket's rating (`ticket.rated`) without reopening it. Any other reply ends the
//! survey and is an ordinary message. An agent whose role has `close_without_survey` may resolve
//! without asking. Pure rules: the conversation's owner asks and records.

use crate::events::ConversationEvent;
use crate::records::{Conversation, MessageContent};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

/// What the customer is asked.
pub const QUESTION: &str =
    "Como você avalia o nosso atendimento? Responda com uma nota de 1 (ruim) a 5 (ótimo).";
/// How long the customer has to answer (the channels' customer-service window).
pub const ANSWER_WINDOW: SignedDuration = SignedDuration::from_hours(24);

/// A survey waiting for the customer's score.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Survey {
    /// The ticket it rates.
    pub ticket_number: u64,
    pub asked_at: Timestamp,
}

/// Whether resolving the ticket at `now` asks the customer: only while the channel lets us write
/// a free-form message (the contact wrote within the window), and not when one is pending.
pub fn should_ask(conversation: &Conversation, now: Timestamp) -> bool {
    conversation.survey.is_none()
        // A group's members answer for no one.
        && !crate::inbound::is_group_address(&conversation.contact.address)
        && conversation
            .last_inbound_at
            .is_some_and(|at| now.duration_since(at) < ANSWER_WINDOW)
}

/// Records that the customer was asked at `now`; returns what to send.
pub fn ask(conversation: &mut Conversation, now: Timestamp) -> MessageContent {
    conversation.survey = Some(Survey {
        ticket_number: conversation.ticket_number,
        asked_at: now,
    });
    MessageContent::Text {
        body: QUESTION.to_owned(),
    }
}

/// The customer's message at `now` while a survey may wait: the `ticket.rated` event when it is the
/// score (the ticket stays as it is), `None` otherwise. Either way the survey is over.
pub fn answered(
    conversation: &mut Conversation,
    content: &MessageContent,
    now: Timestamp,
) -> Option<ConversationEvent> {
    let survey = conversation.survey.take()?;
    let score = score(conversation, &survey, content, now)?;
    Some(ConversationEvent::TicketRated {
        score,
        ticket_number: survey.ticket_number,
    })
}

/// Whether `content` at `now` would be taken as the score of the pending survey (and so starts no
/// ticket).
pub fn would_rate(conversation: &Conversation, content: &MessageContent, now: Timestamp) -> bool {
    conversation
        .survey
        .is_some_and(|survey| score(conversation, &survey, content, now).is_some())
}

/// The score `content` gives: only while the rated ticket is still the current one and closed
/// (an agent may have reopened it since), within the window, and only a bare 1 to 5.
fn score(
    conversation: &Conversation,
    survey: &Survey,
    content: &MessageContent,
    now: Timestamp,
) -> Option<u8> {
    if survey.ticket_number != conversation.ticket_number
        || !crate::helpdesk::ticket::is_closed(conversation.status)
        || now.duration_since(survey.asked_at) > ANSWER_WINDOW
    {
        return None;
    }
    let MessageContent::Text { body } = content else {
        return None;
    };
    match body.trim() {
        "1" => Some(1),
        "2" => Some(2),
        "3" => Some(3),
        "4" => Some(4),
        "5" => Some(5),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpdesk::change::tests::ticket;

    fn text(body: &str) -> MessageContent {
        MessageContent::Text { body: body.into() }
    }

    fn resolved() -> Conversation {
        let mut conversation = ticket();
        conversation.status = crate::records::ConversationStatus::Resolved;
        conversation
    }

    #[test]
    fn a_score_within_the_window_rates_the_ticket_once() {
        let mut conversation = resolved();
        let asked = Timestamp::UNIX_EPOCH + SignedDuration::from_hours(1);
        conversation.last_inbound_at = Some(Timestamp::UNIX_EPOCH);
        assert!(should_ask(&conversation, asked));
        ask(&mut conversation, asked);
        assert!(!should_ask(&conversation, asked), "one survey at a time");
        let later = asked + SignedDuration::from_mins(5);
        assert_eq!(
            answered(&mut conversation, &text(" 4 "), later),
            Some(ConversationEvent::TicketRated {
                score: 4,
                ticket_number: 1
            })
        );
        assert_eq!(answered(&mut conversation, &text("5"), later), None);
    }

    #[test]
    fn a_score_after_the_ticket_reopened_is_an_ordinary_message() {
        let mut conversation = resolved();
        ask(&mut conversation, Timestamp::UNIX_EPOCH);
        conversation.status = crate::records::ConversationStatus::Open;
        assert!(!would_rate(
            &conversation,
            &text("3"),
            Timestamp::UNIX_EPOCH
        ));
        assert_eq!(
            answered(&mut conversation, &text("3"), Timestamp::UNIX_EPOCH),
            None
        );
        let mut next_ticket = resolved();
        ask(&mut next_ticket, Timestamp::UNIX_EPOCH);
        next_ticket.ticket_number += 1;
        assert_eq!(
            answered(&mut next_ticket, &text("3"), Timestamp::UNIX_EPOCH),
            None
        );
    }

    #[test]
    fn groups_are_never_asked() {
        let mut conversation = resolved();
        conversation.contact.address = "120363025246125888@g.us".into();
        conversation.last_inbound_at = Some(Timestamp::UNIX_EPOCH);
        assert!(!should_ask(&conversation, Timestamp::UNIX_EPOCH));
    }

    #[test]
    fn anything_but_a_score_or_a_late_score_ends_the_survey_unrated() {
        let mut conversation = resolved();
        ask(&mut conversation, Timestamp::UNIX_EPOCH);
        assert_eq!(
            answered(
                &mut conversation,
                &text("ainda não resolveu"),
                Timestamp::UNIX_EPOCH
            ),
            None
        );
        assert!(conversation.survey.is_none());
        ask(&mut conversation, Timestamp::UNIX_EPOCH);
        let late = Timestamp::UNIX_EPOCH + ANSWER_WINDOW + SignedDuration::from_secs(1);
        assert_eq!(answered(&mut conversation, &text("5"), late), None);
        ask(&mut conversation, Timestamp::UNIX_EPOCH);
        assert_eq!(
            answered(&mut conversation, &text("6"), Timestamp::UNIX_EPOCH),
            None
        );
    }

    #[test]
    fn nobody_is_asked_outside_the_customer_service_window() {
        let mut conversation = ticket();
        conversation.last_inbound_at = Some(Timestamp::UNIX_EPOCH);
        assert!(!should_ask(
            &conversation,
            Timestamp::UNIX_EPOCH + ANSWER_WINDOW
        ));
        conversation.last_inbound_at = None;
        assert!(!should_ask(&conversation, Timestamp::UNIX_EPOCH));
    }
}
