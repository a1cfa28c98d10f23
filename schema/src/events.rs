//! What happened to a conversation. Each event has a per-conversation `seq` (1, 2, 3, ... with no gap)
//! assigned by the conversation's single owning actor, is stored before it is published, and is what an
//! agent's WebSocket receives live or replays after a reconnect.

use crate::ids::{ConversationId, MessageId, Seq, TenantId};
use crate::records::{Conversation, Message, MessageStatus, ProviderError};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// The event itself; serialized as `{"event": "<name>", "data": {...}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", content = "data")]
pub enum ConversationEvent {
    /// First event of every conversation.
    #[serde(rename = "conversation.created")]
    ConversationCreated { conversation: Conversation },
    /// A message was received from the contact or queued by an agent.
    #[serde(rename = "message.created")]
    MessageCreated { message: Message },
    /// A message's delivery state moved forward, or its provider id became known.
    #[serde(rename = "message.status_updated")]
    MessageStatusUpdated {
        message_id: MessageId,
        status: MessageStatus,
        provider_message_id: Option<String>,
        error: Option<ProviderError>,
    },
}

impl ConversationEvent {
    /// The event name as it appears on the wire.
    pub fn name(&self) -> &'static str {
        match self {
            ConversationEvent::ConversationCreated { .. } => "conversation.created",
            ConversationEvent::MessageCreated { .. } => "message.created",
            ConversationEvent::MessageStatusUpdated { .. } => "message.status_updated",
        }
    }
}

/// An event with its place in the conversation's stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventEnvelope {
    pub tenant_id: TenantId,
    pub conversation_id: ConversationId,
    pub seq: Seq,
    /// Server time at which the event was committed.
    pub at: Timestamp,
    #[serde(flatten)]
    pub event: ConversationEvent,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_serializes_with_event_name_and_round_trips() {
        let envelope = EventEnvelope {
            tenant_id: TenantId::new(),
            conversation_id: ConversationId::new(),
            seq: 7,
            at: Timestamp::UNIX_EPOCH,
            event: ConversationEvent::MessageStatusUpdated {
                message_id: MessageId::new(),
                status: MessageStatus::Read,
                provider_message_id: Some("wamid.X".into()),
                error: None,
            },
        };
        let json = serde_json::to_value(&envelope).unwrap();
        assert_eq!(json["event"], "message.status_updated");
        assert_eq!(json["data"]["status"], "read");
        assert_eq!(json["seq"], 7);
        let back: EventEnvelope = serde_json::from_value(json).unwrap();
        assert_eq!(back, envelope);
    }
}
