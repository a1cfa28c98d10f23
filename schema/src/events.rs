//! What happened to a conversation. Each event has a per-conversation `seq` (1, 2, 3, ... with no gap)
//! assigned by the conversation's single owning actor, is stored before it is published, and is what an
//! agent's WebSocket receives live or replays after a reconnect.

use crate::helpdesk::sla::{SlaOutcome, SlaTarget};
use crate::ids::{AgentId, ConnectionId, ConversationId, MessageId, Seq, TenantId};
use crate::records::{
    Conversation, ConversationStatus, Message, MessageStatus, Note, Priority, ProviderError,
};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// The event itself; serialized as `{"event": "<name>", "data": {...}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "event", content = "data")]
// `conversation.created` carries the whole record once per conversation; events travel in `Arc`s on
// the bus and in short per-turn vectors, so boxing it would cost an allocation for nothing.
#[allow(clippy::large_enum_variant)]
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
    /// A new ticket started in a conversation whose earlier ticket was closed (the first ticket's number
    /// is in `conversation.created`).
    #[serde(rename = "ticket.opened")]
    TicketOpened {
        number: u64,
        /// The agent who started it; `None` when a customer's message did.
        by: Option<AgentId>,
    },
    /// The ticket was given to an agent (`previous` had it before).
    #[serde(rename = "ticket.assigned")]
    Assigned {
        assignee: AgentId,
        previous: Option<AgentId>,
        /// Who assigned it; `None` for the system (distribution).
        by: Option<AgentId>,
    },
    /// The ticket's agent was taken off it.
    #[serde(rename = "ticket.unassigned")]
    Unassigned {
        previous: AgentId,
        by: Option<AgentId>,
    },
    /// The ticket moved to another department and/or agent, with the note that explains why.
    #[serde(rename = "ticket.transferred")]
    Transferred {
        from_agent: Option<AgentId>,
        to_agent: Option<AgentId>,
        from_team: Option<String>,
        to_team: Option<String>,
        note: Option<String>,
        by: Option<AgentId>,
    },
    #[serde(rename = "ticket.status_changed")]
    StatusChanged {
        from: ConversationStatus,
        to: ConversationStatus,
        by: Option<AgentId>,
    },
    #[serde(rename = "ticket.priority_changed")]
    PriorityChanged {
        from: Priority,
        to: Priority,
        by: Option<AgentId>,
    },
    /// Tags were added or removed; `tags` is the whole set after the change.
    #[serde(rename = "ticket.tagged")]
    Tagged {
        added: Vec<String>,
        removed: Vec<String>,
        tags: Vec<String>,
        by: Option<AgentId>,
    },
    /// The ticket was snoozed until a time (`until`), or woken (`None`).
    #[serde(rename = "ticket.snoozed")]
    Snoozed {
        until: Option<Timestamp>,
        by: Option<AgentId>,
    },
    /// An internal note: never sent to the customer.
    #[serde(rename = "ticket.note_added")]
    NoteAdded { note: Note },
    /// An SLA target was met in time (`at`).
    #[serde(rename = "ticket.sla_hit")]
    SlaHit { target: SlaTarget, at: Timestamp },
    /// An SLA target's time passed unmet.
    #[serde(rename = "ticket.sla_missed")]
    SlaMissed { target: SlaTarget, due: Timestamp },
    /// An agent deleted a message (soft: `seq` is its `message.created`).
    #[serde(rename = "message.deleted")]
    MessageDeleted {
        message_id: MessageId,
        seq: Seq,
        by: AgentId,
    },
    /// The customer answered the satisfaction survey: `score` from 1 to 5 for the ticket.
    #[serde(rename = "ticket.rated")]
    TicketRated { score: u8, ticket_number: u64 },
    /// An agent deleted the conversation: every message up to `through` with it.
    #[serde(rename = "conversation.deleted")]
    ConversationDeleted { through: Seq, by: AgentId },
}

impl From<SlaOutcome> for ConversationEvent {
    fn from(outcome: SlaOutcome) -> Self {
        match outcome {
            SlaOutcome::Hit { target, at } => ConversationEvent::SlaHit { target, at },
            SlaOutcome::Missed { target, due } => ConversationEvent::SlaMissed { target, due },
        }
    }
}

impl ConversationEvent {
    /// The event name as it appears on the wire.
    pub fn name(&self) -> &'static str {
        match self {
            ConversationEvent::ConversationCreated { .. } => "conversation.created",
            ConversationEvent::MessageCreated { .. } => "message.created",
            ConversationEvent::MessageStatusUpdated { .. } => "message.status_updated",
            ConversationEvent::TicketOpened { .. } => "ticket.opened",
            ConversationEvent::Assigned { .. } => "ticket.assigned",
            ConversationEvent::Unassigned { .. } => "ticket.unassigned",
            ConversationEvent::Transferred { .. } => "ticket.transferred",
            ConversationEvent::StatusChanged { .. } => "ticket.status_changed",
            ConversationEvent::PriorityChanged { .. } => "ticket.priority_changed",
            ConversationEvent::Tagged { .. } => "ticket.tagged",
            ConversationEvent::Snoozed { .. } => "ticket.snoozed",
            ConversationEvent::NoteAdded { .. } => "ticket.note_added",
            ConversationEvent::SlaHit { .. } => "ticket.sla_hit",
            ConversationEvent::SlaMissed { .. } => "ticket.sla_missed",
            ConversationEvent::MessageDeleted { .. } => "message.deleted",
            ConversationEvent::TicketRated { .. } => "ticket.rated",
            ConversationEvent::ConversationDeleted { .. } => "conversation.deleted",
        }
    }
}

/// An event with its place in the conversation's stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EventEnvelope {
    pub tenant_id: TenantId,
    pub conversation_id: ConversationId,
    /// The conversation's connection (what a user limited to one connection is filtered by). Absent
    /// on events stored before it was carried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_id: Option<ConnectionId>,
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
            connection_id: None,
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
