//! Bounds on what a provider can make the node store, checked at the edge right after a webhook is
//! parsed (a 400 names the field) so nothing downstream ever sees an unbounded id: ids become storage
//! keys, addresses become conversation ids, and both are read back on every inbox page.
//!
//! The bounds sit well above what any provider documents or sends (a `wamid` is ~60 bytes, a Messenger
//! `mid` ~120, a WhatsApp text 4,096 characters) and well below what would hurt a store key (fjall
//! refuses keys over 64 KiB) or an inbox page.

use crate::inbound::{InboundEvent, InboundMessage};
use crate::records::ProviderError;

/// Longest provider id kept: message ids, status ids, media ids, the target of a reply or reaction.
pub const MAX_PROVIDER_ID_BYTES: usize = 512;
/// Longest contact address (a phone number, a page- or Instagram-scoped id, a WhatsApp user id).
pub const MAX_ADDRESS_BYTES: usize = 256;
/// Longest display name kept; a longer one is cut (on a character boundary), not refused.
pub const MAX_NAME_BYTES: usize = 512;
/// Longest provider error text kept on a status; longer text is cut.
pub const MAX_ERROR_TEXT_BYTES: usize = 1024;
/// Largest content of one message, as JSON.
pub const MAX_CONTENT_BYTES: usize = 64 * 1024;

/// A field over its bound, or empty where a value is required.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error("{field} is empty")]
    Empty { field: &'static str },
    #[error("{field} has {len} bytes; at most {max} are accepted")]
    TooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
}

/// Checks every event of a parsed webhook, cutting names and error texts to their bounds in place.
pub fn check_inbound(events: &mut [InboundEvent]) -> Result<(), LimitError> {
    for event in events {
        match event {
            InboundEvent::Message(message) | InboundEvent::Echo(message) => check_message(message)?,
            InboundEvent::Status(status) => {
                id("status id", &status.provider_message_id)?;
                address("status recipient", &status.recipient)?;
                if let Some(error) = &mut status.error {
                    cut_error(error);
                }
            }
            InboundEvent::ReadUpTo { contact, .. }
            | InboundEvent::DeliveredUpTo { contact, .. } => address("receipt contact", contact)?,
            InboundEvent::Deleted {
                contact,
                provider_message_id,
                ..
            } => {
                address("deleted message contact", contact)?;
                id("deleted message id", provider_message_id)?;
            }
        }
    }
    Ok(())
}

fn check_message(message: &mut InboundMessage) -> Result<(), LimitError> {
    id("message id", &message.provider_message_id)?;
    address("sender", &message.from.address)?;
    if let Some(reply_to) = &message.reply_to {
        bounded("reply_to", reply_to, MAX_PROVIDER_ID_BYTES)?;
    }
    if let Some(name) = &mut message.from.name {
        cut(name, MAX_NAME_BYTES);
    }
    // A group member without an address is no one to show: dropped, the message kept.
    if message
        .sender
        .as_ref()
        .is_some_and(|s| s.address.trim().is_empty())
    {
        message.sender = None;
    }
    if let Some(sender) = &mut message.sender {
        address("group member", &sender.address)?;
        if let Some(name) = &mut sender.name {
            cut(name, MAX_NAME_BYTES);
        }
    }
    let content = serde_json::to_vec(&message.content).map_or(0, |bytes| bytes.len());
    bounded_len("message content", content, MAX_CONTENT_BYTES)
}

fn id(field: &'static str, value: &str) -> Result<(), LimitError> {
    if value.is_empty() {
        return Err(LimitError::Empty { field });
    }
    bounded(field, value, MAX_PROVIDER_ID_BYTES)
}

/// A contact address: never empty (an empty one would file every such sender into one conversation
/// and reply to nobody), never over its bound.
fn address(field: &'static str, value: &str) -> Result<(), LimitError> {
    if value.trim().is_empty() {
        return Err(LimitError::Empty { field });
    }
    bounded(field, value, MAX_ADDRESS_BYTES)
}

fn bounded(field: &'static str, value: &str, max: usize) -> Result<(), LimitError> {
    bounded_len(field, value.len(), max)
}

fn bounded_len(field: &'static str, len: usize, max: usize) -> Result<(), LimitError> {
    if len > max {
        return Err(LimitError::TooLong { field, len, max });
    }
    Ok(())
}

fn cut_error(error: &mut ProviderError) {
    cut(&mut error.title, MAX_ERROR_TEXT_BYTES);
    if let Some(detail) = &mut error.detail {
        cut(detail, MAX_ERROR_TEXT_BYTES);
    }
}

/// Cuts `text` to at most `max` bytes on a character boundary.
pub fn cut(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::InboundStatus;
    use crate::records::{Contact, MessageContent, MessageStatus};
    use jiff::Timestamp;

    fn message(id: &str, from: &str) -> InboundEvent {
        InboundEvent::Message(InboundMessage {
            provider_message_id: id.into(),
            from: Contact {
                address: from.into(),
                name: Some("é".repeat(600)),
            },
            sent_at: Timestamp::now(),
            content: MessageContent::Text { body: "oi".into() },
            reply_to: None,
            reference: None,
            forwarded: false,
            sender: None,
        })
    }

    #[test]
    fn ids_and_addresses_over_their_bounds_or_empty_are_refused() {
        let long_id = "w".repeat(MAX_PROVIDER_ID_BYTES + 1);
        assert!(matches!(
            check_inbound(&mut [message(&long_id, "5511")]),
            Err(LimitError::TooLong {
                field: "message id",
                ..
            })
        ));
        assert!(matches!(
            check_inbound(&mut [message("wamid.1", "")]),
            Err(LimitError::Empty { field: "sender" })
        ));
        let status = InboundEvent::Status(InboundStatus {
            provider_message_id: "x".repeat(70_000),
            recipient: "5511".into(),
            status: MessageStatus::Delivered,
            at: Timestamp::now(),
            error: None,
        });
        assert!(check_inbound(&mut [status]).is_err());
    }

    #[test]
    fn names_are_cut_on_a_character_boundary_not_refused() {
        let mut events = [message("wamid.1", "5511")];
        check_inbound(&mut events).unwrap();
        let InboundEvent::Message(m) = &events[0] else {
            unreachable!()
        };
        let name = m.from.name.as_deref().unwrap();
        assert!(name.len() <= MAX_NAME_BYTES && name.chars().all(|c| c == 'é'));
    }
}
