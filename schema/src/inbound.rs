//! Provider-neutral inbound events: what the gateway parses a provider webhook into. Nothing downstream of
//! the gateway sees a provider's raw JSON except inside `MessageContent::Unsupported`.

use crate::records::{Contact, MessageContent, MessageStatus, ProviderError};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// A message the contact sent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InboundMessage {
    /// The provider's message id (`wamid.…`): the idempotency key.
    pub provider_message_id: String,
    pub from: Contact,
    pub sent_at: Timestamp,
    pub content: MessageContent,
    /// Provider id of the message this replies to (WhatsApp `context.id`).
    pub reply_to: Option<String>,
    /// On an echo of our own send: the reference we attached to it (Messenger's `metadata`, which
    /// carries our message id), so the echo is matched to its reply exactly, never by its text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// The contact forwarded it (WhatsApp `context.forwarded`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forwarded: bool,
    /// In a group (`from` is the group): the member who wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<Contact>,
}

/// A delivery status the provider reports for a message we sent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InboundStatus {
    pub provider_message_id: String,
    /// The contact the message was sent to: identifies the conversation.
    pub recipient: String,
    pub status: MessageStatus,
    pub at: Timestamp,
    pub error: Option<ProviderError>,
}

/// One thing a webhook reported, for one conversation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum InboundEvent {
    Message(InboundMessage),
    Status(InboundStatus),
    /// A message the business sent from elsewhere (Messenger/Instagram echoes, e.g. from Meta's own
    /// inbox) or the echo of one of ours; `from` is the contact it went to.
    Echo(InboundMessage),
    /// The contact read everything the business sent up to `watermark` (Messenger read receipts).
    ReadUpTo {
        contact: String,
        watermark: Timestamp,
    },
    /// Everything the business sent up to `watermark` reached the contact (a Messenger delivery
    /// receipt that names no message).
    DeliveredUpTo {
        contact: String,
        watermark: Timestamp,
    },
    /// The contact deleted (unsent) one of their messages (Instagram `is_deleted`).
    Deleted {
        contact: String,
        provider_message_id: String,
        at: Timestamp,
    },
}

/// Whether a contact address is a WhatsApp group's: an Evolution `…@g.us` JID, a Z-API `…-group`
/// phone, or a Z-API group made before November 2021 (`<creator's digits>-<creation time>`).
pub fn is_group_address(address: &str) -> bool {
    if address.ends_with("@g.us") || address.ends_with("-group") {
        return true;
    }
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    address
        .split_once('-')
        .is_some_and(|(creator, created)| digits(creator) && digits(created))
}

impl InboundEvent {
    /// Whether the event belongs to a group's conversation.
    pub fn is_group(&self) -> bool {
        is_group_address(self.contact_address())
    }

    /// The contact address that identifies the conversation this event belongs to.
    pub fn contact_address(&self) -> &str {
        match self {
            InboundEvent::Message(m) | InboundEvent::Echo(m) => &m.from.address,
            InboundEvent::Status(s) => &s.recipient,
            InboundEvent::ReadUpTo { contact, .. }
            | InboundEvent::DeliveredUpTo { contact, .. }
            | InboundEvent::Deleted { contact, .. } => contact,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_group_address;

    #[test]
    fn group_addresses_of_both_gateways_and_both_eras_are_told_from_people() {
        for group in [
            "120363025246125888@g.us",
            "120363019502650977-group",
            "5511999999999-1623281429",
        ] {
            assert!(is_group_address(group), "{group}");
        }
        for person in [
            "5511999999999",
            "123456789012345@lid",
            "5511999999999@s.whatsapp.net",
            "-1",
        ] {
            assert!(!is_group_address(person), "{person}");
        }
    }
}
