//! LGPD erasure, the pure part: what one conversation's history becomes when its contact is erased.
//! A message keeps its place (seq, ids, direction, status, times) and loses what it said or carried:
//! its content becomes `{"type": "unsupported", "provider_type": "erased", "raw": null}` (no text,
//! caption, file name, media reference, location or shared contact remains). Internal notes and transfer notes lose their text; the conversation record and its
//! `conversation.created` event lose the contact's name and the last message's preview. The words
//! a message was indexed under are listed so the search index can drop them.
//!
//! The contact's address (a phone number, a page-scoped id) stays on the conversation: it is the
//! conversation's key, and a later message from that address is new data, stored as usual.

use crate::events::{ConversationEvent, EventEnvelope};
use crate::helpdesk::search::{month_of, searchable_text, words};
use crate::records::{Conversation, Message, MessageContent};

/// The `provider_type` an erased message's content carries.
pub const ERASED: &str = "erased";

/// What an erased message carries instead of its content.
pub fn erased_content() -> MessageContent {
    MessageContent::Unsupported {
        provider_type: ERASED.into(),
        raw: serde_json::Value::Null,
    }
}

/// Whether a message's content was erased.
pub fn is_erased(message: &Message) -> bool {
    matches!(&message.content, MessageContent::Unsupported { provider_type, .. } if provider_type == ERASED)
}

/// The message with its content (and the id of the message it quoted) removed.
pub fn erase_message(message: &Message) -> Message {
    let mut erased = message.clone();
    erased.content = erased_content();
    erased.reply_to = None;
    erased.sender = None;
    erased
}

/// The conversation without its contact's name, its last message's preview, and the echoes it
/// held back (they carry messages' content).
pub fn erase_conversation(conversation: &Conversation) -> Conversation {
    let mut erased = conversation.clone();
    erased.contact.name = None;
    erased.last_message_preview = None;
    erased.held_echoes.clear();
    erased
}

/// The event as it must be stored after an erasure; `None` when it carries nothing to erase.
pub fn erase_event(envelope: &EventEnvelope) -> Option<EventEnvelope> {
    let event = match &envelope.event {
        ConversationEvent::ConversationCreated { conversation } => {
            ConversationEvent::ConversationCreated {
                conversation: erase_conversation(conversation),
            }
        }
        ConversationEvent::MessageCreated { message } if !is_erased(message) => {
            ConversationEvent::MessageCreated {
                message: erase_message(message),
            }
        }
        ConversationEvent::NoteAdded { note } if !note.body.is_empty() => {
            let mut note = note.clone();
            note.body = String::new();
            ConversationEvent::NoteAdded { note }
        }
        ConversationEvent::Transferred {
            from_agent,
            to_agent,
            from_team,
            to_team,
            note: Some(_),
            by,
        } => ConversationEvent::Transferred {
            from_agent: *from_agent,
            to_agent: *to_agent,
            from_team: from_team.clone(),
            to_team: to_team.clone(),
            note: None,
            by: *by,
        },
        _ => return None,
    };
    let mut erased = envelope.clone();
    erased.event = event;
    Some(erased)
}

/// The search index rows a `message.created` event made: each word of its text under the month of
/// the turn that committed it (the event's `at`).
pub fn indexed_terms(envelope: &EventEnvelope) -> Vec<(String, i32)> {
    let ConversationEvent::MessageCreated { message } = &envelope.event else {
        return Vec::new();
    };
    let Some(text) = searchable_text(&message.content) else {
        return Vec::new();
    };
    let month = month_of(envelope.at);
    words(text).into_iter().map(|w| (w, month)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message(text: &str) -> Message {
        serde_json::from_value(json!({
            "id": "018f0000-0000-7000-8000-000000000001",
            "tenant_id": "018f0000-0000-7000-8000-000000000002",
            "conversation_id": "018f0000-0000-7000-8000-000000000003",
            "seq": 2, "direction": "inbound",
            "content": {"type": "text", "body": text},
            "status": "received", "provider_message_id": "wamid.X", "reply_to": null,
            "sent_by": null, "client_message_id": null, "error": null,
            "created_at": "2026-11-28T12:00:00Z", "updated_at": "2026-11-28T12:00:00Z"
        }))
        .expect("a message")
    }

    fn envelope(event: ConversationEvent) -> EventEnvelope {
        let message = message("");
        EventEnvelope {
            connection_id: None,
            tenant_id: message.tenant_id,
            conversation_id: message.conversation_id,
            seq: 2,
            at: "2026-11-28T12:00:01Z".parse().expect("time"),
            event,
        }
    }

    #[test]
    fn an_erased_message_keeps_its_place_and_loses_what_it_said() {
        let message = message("Meu CPF é 123.456.789-00");
        let erased = erase_message(&message);
        assert!(is_erased(&erased));
        assert_eq!((erased.id, erased.seq), (message.id, message.seq));
        let json = serde_json::to_string(&erased).unwrap_or_default();
        assert!(!json.contains("CPF"), "{json}");
    }

    #[test]
    fn message_events_are_rewritten_and_their_index_words_listed() {
        let envelope = envelope(ConversationEvent::MessageCreated {
            message: message("pedido atrasado"),
        });
        let terms = indexed_terms(&envelope);
        assert_eq!(terms.len(), 2);
        assert!(
            terms
                .iter()
                .all(|(_, month)| *month == month_of(envelope.at))
        );
        let erased = erase_event(&envelope).expect("rewritten");
        assert!(indexed_terms(&erased).is_empty());
        assert_eq!(erase_event(&erased), None, "erasing twice changes nothing");
    }
}
