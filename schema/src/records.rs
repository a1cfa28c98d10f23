//! What Conversa stores: tenants, channel connections, agents, conversations (the support ticket) and
//! messages. Fields that later issues fill (assignee, team, tags, SLA, CSAT, sentiment) are present now so
//! that stored records and wire types do not change shape when those features land.

use crate::ids::{AgentId, ConnectionId, ConversationId, MessageId, Seq, TenantId};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A business using Conversa.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub created_at: Timestamp,
}

pub use crate::department::{Department, OutOfHours};
pub use crate::quick_reply::QuickReply;

pub use crate::connection::{
    ChannelSettings, Connection, ConnectionStatus, EvolutionSettings, MetaSettings, Provider,
    ZapiSettings,
};

/// Role of a tenant's user; what each may do is `permission`.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum AgentRole {
    Admin,
    Supervisor,
    Agent,
    Auditor,
    Bot,
}

impl AgentRole {
    /// The wire name (`admin`, `supervisor`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            AgentRole::Admin => "admin",
            AgentRole::Supervisor => "supervisor",
            AgentRole::Agent => "agent",
            AgentRole::Auditor => "auditor",
            AgentRole::Bot => "bot",
        }
    }
}

/// A user of a tenant who signs in to the inbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Agent {
    pub id: AgentId,
    pub tenant_id: TenantId,
    pub name: String,
    pub role: AgentRole,
    pub created_at: Timestamp,
    /// The connection the user works on: a role limited to its own connection sees only this one's
    /// conversations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_connection: Option<ConnectionId>,
}

/// The customer on the other side of a conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Contact {
    /// The provider's address of the contact (WhatsApp `wa_id`, digits only).
    pub address: String,
    /// Display name from the provider profile, when it sent one.
    pub name: Option<String>,
}

/// Ticket status of a conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConversationStatus {
    Open,
    InProgress,
    Waiting,
    Resolved,
    Cancelled,
}

impl ConversationStatus {
    /// The wire name (`open`, `in_progress`, …), also used as a stored column and view key.
    pub fn as_str(self) -> &'static str {
        match self {
            ConversationStatus::Open => "open",
            ConversationStatus::InProgress => "in_progress",
            ConversationStatus::Waiting => "waiting",
            ConversationStatus::Resolved => "resolved",
            ConversationStatus::Cancelled => "cancelled",
        }
    }
}

/// Ticket priority.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Low,
    Normal,
    High,
    Urgent,
}

impl Priority {
    /// The wire name (`low`, `normal`, …), also used as a view key.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Urgent => "urgent",
        }
    }
}

/// An internal note on a ticket: seen by the tenant's agents, never sent to the customer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Note {
    pub id: crate::ids::NoteId,
    pub body: String,
    pub author: AgentId,
}

/// A conversation: the thread with one contact on one connection, and the support ticket around it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Conversation {
    pub id: ConversationId,
    pub tenant_id: TenantId,
    pub connection_id: ConnectionId,
    pub contact: Contact,
    pub status: ConversationStatus,
    pub priority: Priority,
    pub assignee: Option<AgentId>,
    pub team: Option<String>,
    pub tags: Vec<String>,
    /// The current ticket's per-tenant number (#1042), unique and never reused; a new ticket in the
    /// same conversation takes a new one. 0 only on conversations stored before tickets had numbers.
    #[serde(default)]
    pub ticket_number: u64,
    /// When the current ticket started (a reopen keeps it; a new ticket starts it again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket_opened_at: Option<Timestamp>,
    /// The ticket is snoozed until then: set aside by an agent; a message from the contact wakes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snoozed_until: Option<Timestamp>,
    /// When the department's out-of-hours reply last went to this contact (at most one per period).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_of_hours_replied_at: Option<Timestamp>,
    /// The ticket's SLA clocks (its department's targets; empty when it tracks none).
    #[serde(
        default,
        skip_serializing_if = "crate::helpdesk::sla::TicketSla::is_empty"
    )]
    #[schema(value_type = Object)]
    pub sla: crate::helpdesk::sla::TicketSla,
    /// When distribution next looks for an agent for this unassigned ticket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribute_at: Option<Timestamp>,
    /// Failed distribution attempts in a row (the next waits longer).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub distribute_attempts: u32,
    /// The agent distribution chose must reply by then, or the ticket goes to another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_by: Option<Timestamp>,
    /// Seq of the newest event in this conversation's stream (0 before the first).
    pub last_seq: Seq,
    pub created_at: Timestamp,
    pub last_activity_at: Timestamp,
    /// When the contact last wrote: opens WhatsApp's 24-hour customer-service window.
    pub last_inbound_at: Option<Timestamp>,
    pub message_count: u64,
    /// Preview of the newest message for inbox lists.
    pub last_message_preview: Option<String>,
    /// Statuses that arrived for a provider message id before the send API returned that id
    /// (Meta can post `sent` before the send call answers). Applied when the id is attached; bounded.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub early_statuses: BTreeMap<String, StatusChange>,
    /// Echoes of a business send that came with no reference while a reply of the same text was still
    /// waiting for its provider id (WhatsApp Web gateways post the echo before answering the send): held
    /// until the answer tells whether the echo is that reply (dropped) or a message typed on the phone
    /// (stored). Bounded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub held_echoes: Vec<crate::inbound::InboundMessage>,
    /// A stamp (microseconds) that grows with every commit of the conversation, at least the commit's
    /// clock time and always past the previous stamp, whatever the clock does: stores that order
    /// writes by timestamp (CQL) write the conversation row with it.
    #[serde(default)]
    pub stamp_us: i64,
    /// The conversation was deleted (soft): hidden from the inbox of those who may not see deleted
    /// messages, until the contact (or an agent) writes again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<Deletion>,
    /// Every message up to this seq was deleted with the conversation (0: none).
    #[serde(default, skip_serializing_if = "is_zero_seq")]
    pub deleted_through: Seq,
    /// Seqs of messages deleted one by one, by an agent or by the contact (bounded:
    /// `helpdesk::deletion::MAX_DELETED_MESSAGES`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeSet::is_empty")]
    pub deleted_seqs: std::collections::BTreeSet<Seq>,
    /// The satisfaction survey waiting for the customer's score (`helpdesk::survey`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub survey: Option<crate::helpdesk::survey::Survey>,
    /// The newest score the customer gave (1 to 5) and the ticket it rated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rating: Option<Rating>,
}

/// A customer's score of a ticket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Rating {
    pub score: u8,
    pub ticket_number: u64,
    pub at: Timestamp,
}

fn is_zero_seq(seq: &Seq) -> bool {
    *seq == 0
}

/// Who deleted a message or a conversation, and when. Deletion is soft: the content stays stored,
/// shown only to those allowed to see deleted messages (`visibility`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Deletion {
    pub by: AgentId,
    pub at: Timestamp,
}

impl Conversation {
    /// When this conversation next needs its owner without a message (a snooze ending, an SLA clock
    /// coming due): what the store's due index holds for it.
    pub fn next_due(&self) -> Option<Timestamp> {
        [
            self.snoozed_until,
            self.sla.next_due(),
            self.distribute_at,
            self.answer_by,
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Which way a message travelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Inbound,
    Outbound,
}

/// What a message carries, provider-neutral. Types not understood are kept as `Unsupported` with the
/// raw payload so nothing a customer sent is ever dropped.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MessageContent {
    Text {
        body: String,
    },
    /// An image, audio, video, document or sticker, kept as the provider's media reference: the file
    /// itself is fetched through the connection's credentials, never handed to a browser directly.
    Media {
        kind: MediaKind,
        /// The provider's media id.
        media_id: String,
        mime_type: Option<String>,
        sha256: Option<String>,
        caption: Option<String>,
        filename: Option<String>,
        /// Audio recorded as a voice note.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        voice: bool,
        /// Animated sticker.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        animated: bool,
    },
    /// Media an agent sends by public https URL (the provider downloads it).
    MediaLink {
        kind: MediaKind,
        url: String,
        caption: Option<String>,
        /// Shown for documents.
        filename: Option<String>,
    },
    Location {
        latitude: f64,
        longitude: f64,
        name: Option<String>,
        address: Option<String>,
    },
    /// Contact cards shared by the customer.
    Contacts {
        contacts: Vec<SharedContact>,
    },
    /// The customer tapped a reply button, a list row or a template quick-reply button.
    InteractiveReply {
        /// `button_reply`, `list_reply` or `button` (template quick reply).
        kind: String,
        /// The id or payload the business gave the option.
        id: String,
        title: String,
        description: Option<String>,
    },
    /// An approved message template, the only thing WhatsApp delivers outside the 24-hour window.
    Template {
        name: String,
        /// Template language code, e.g. `pt_BR`.
        language: String,
        /// Values for the body's `{{1}}`, `{{2}}`, … in order.
        #[serde(default)]
        body_parameters: Vec<String>,
    },
    /// Text with up to three reply buttons (the contact's tap arrives as `InteractiveReply`).
    Interactive {
        body: String,
        buttons: Vec<ReplyButton>,
    },
    /// Text with a button that opens a list of options in sections (WhatsApp list message).
    InteractiveList {
        body: String,
        /// Label of the button that opens the list.
        button: String,
        sections: Vec<ListSection>,
    },
    /// A reaction to an earlier message; an empty emoji removes the reaction.
    Reaction {
        /// The provider id of the message reacted to.
        target: String,
        emoji: String,
    },
    Unsupported {
        /// The provider's type name (`order`, `system`, `unsupported`, ...).
        provider_type: String,
        /// The provider's message object as received.
        raw: serde_json::Value,
    },
}

/// Kinds of media message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    Image,
    Audio,
    Video,
    Document,
    Sticker,
}

impl MediaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Image => "image",
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
            MediaKind::Document => "document",
            MediaKind::Sticker => "sticker",
        }
    }
}

/// A titled group of rows in a list message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ListSection {
    pub title: String,
    pub rows: Vec<ListRow>,
}

/// One option of a list message (the contact's pick arrives as `InteractiveReply` with its id).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ListRow {
    pub id: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A reply button of an interactive message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReplyButton {
    pub id: String,
    pub title: String,
}

/// One contact card.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SharedContact {
    pub name: String,
    pub phones: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub emails: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
}

impl MessageContent {
    /// Short text for inbox previews.
    pub fn preview(&self) -> String {
        match self {
            MessageContent::Text { body } => body.chars().take(120).collect(),
            MessageContent::Media { kind, caption, .. } => match caption {
                Some(caption) => format!(
                    "[{}] {}",
                    kind.as_str(),
                    caption.chars().take(100).collect::<String>()
                ),
                None => format!("[{}]", kind.as_str()),
            },
            MessageContent::MediaLink { kind, caption, .. } => match caption {
                Some(caption) => format!(
                    "[{}] {}",
                    kind.as_str(),
                    caption.chars().take(100).collect::<String>()
                ),
                None => format!("[{}]", kind.as_str()),
            },
            MessageContent::Location { name, .. } => {
                format!("[location] {}", name.as_deref().unwrap_or(""))
            }
            MessageContent::Contacts { contacts } => format!("[contacts] {}", contacts.len()),
            MessageContent::InteractiveReply { title, .. } => title.chars().take(120).collect(),
            MessageContent::Reaction { emoji, .. } => format!("[reaction] {emoji}"),
            MessageContent::Template { name, .. } => format!("[template] {name}"),
            MessageContent::Interactive { body, .. }
            | MessageContent::InteractiveList { body, .. } => body.chars().take(120).collect(),
            MessageContent::Unsupported { provider_type, .. } => format!("[{provider_type}]"),
        }
    }
}

/// Delivery state of a message. Ordered: a status never moves backwards (`read` then a late `delivered`
/// leaves it `read`); `failed` is final.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    /// Stored, not yet accepted by the provider.
    Pending,
    /// The provider's send API accepted it and returned its id.
    Accepted,
    Sent,
    Delivered,
    Read,
    Failed,
    /// Inbound messages: received from the contact.
    Received,
    /// Inbound messages the contact deleted (unsent) afterwards: kept in the history, marked.
    Deleted,
}

impl MessageStatus {
    /// Whether moving from `self` to `next` is progress: never backwards, `failed` is final, and a
    /// message the recipient has (`delivered`, `read`) cannot fail any more (a late `failed` is stale).
    pub fn can_advance_to(self, next: MessageStatus) -> bool {
        use MessageStatus::*;
        if self == Received {
            return next == Deleted;
        }
        !matches!(self, Failed | Deleted)
            && next.rank() > self.rank()
            && !matches!(next, Received | Deleted)
    }

    /// The status's place in the delivery order. Stores keep the higher rank when a message is
    /// rewritten, so a late or reordered write can never move a message backwards. `failed` ranks
    /// below `delivered`: it can follow `pending`, `accepted` or `sent`, never a delivery.
    pub fn rank(self) -> i16 {
        use MessageStatus::*;
        match self {
            Pending => 0,
            Accepted => 1,
            Sent => 2,
            Failed => 3,
            Delivered => 4,
            Read => 5,
            Received => 6,
            Deleted => 7,
        }
    }
}

/// A provider's error attached to a failed message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProviderError {
    pub code: Option<i64>,
    pub title: String,
    pub detail: Option<String>,
}

/// One status change reported for a message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StatusChange {
    pub status: MessageStatus,
    pub at: Timestamp,
    pub error: Option<ProviderError>,
}

/// One message, inbound or outbound.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Message {
    pub id: MessageId,
    pub tenant_id: TenantId,
    pub conversation_id: ConversationId,
    /// Seq of the `message.created` event: orders the history.
    pub seq: Seq,
    pub direction: Direction,
    pub content: MessageContent,
    pub status: MessageStatus,
    /// The provider's id (`wamid.…`) once known.
    pub provider_message_id: Option<String>,
    /// The provider id of the message this one replies to.
    pub reply_to: Option<String>,
    /// Who sent an outbound message.
    pub sent_by: Option<AgentId>,
    /// Agent-supplied idempotency key of an outbound message.
    pub client_message_id: Option<String>,
    pub error: Option<ProviderError>,
    /// When the provider says it happened (inbound) or when the agent sent it (outbound).
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The contact forwarded it (WhatsApp `context.forwarded`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forwarded: bool,
    /// In a group's conversation: the member who wrote it (the conversation's contact is the group).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<Contact>,
    /// An agent deleted it (soft).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<Deletion>,
}

#[cfg(test)]
mod tests {
    use super::MessageStatus::*;

    #[test]
    fn status_never_moves_backwards_and_failed_is_final() {
        assert!(Pending.can_advance_to(Accepted));
        assert!(Sent.can_advance_to(Read));
        assert!(!Read.can_advance_to(Delivered));
        assert!(!Read.can_advance_to(Read));
        assert!(Sent.can_advance_to(Failed));
        assert!(
            !Delivered.can_advance_to(Failed),
            "a delivered message cannot fail"
        );
        assert!(
            !Read.can_advance_to(Failed),
            "a late failed must not outrank read"
        );
        assert!(!Failed.can_advance_to(Read));
        assert!(!Received.can_advance_to(Read));
        assert!(Received.can_advance_to(Deleted));
        assert!(
            !Read.can_advance_to(Deleted),
            "only what the contact sent can be unsent"
        );
        assert!(!Deleted.can_advance_to(Received));
    }
}
