//! The storage ports, one per aggregate, each implemented by the three backends in `engine` (embedded
//! LSM, ScyllaDB, PostgreSQL) and covered by the contract suite; [`Store`] is all of them, what a node
//! opens. Each is shaped by the queries the system makes, partition key first:
//!
//! - [`AccountStore`]: tenants and agents;
//! - [`AuditStore`]: each tenant's hash-chained audit log;
//! - [`ConnectionStore`]: channel connections and the provider address each owns;
//! - [`CredentialStore`]: users' sign-in credentials, bearer tokens' grants and sessions;
//! - [`ContactStore`]: contacts, found by id, address or search words;
//! - [`ConversationStore`]: conversations, their event streams and messages, the inbox, ticket numbers;
//! - [`DepartmentStore`]: departments, each stored whole;
//! - [`QuickReplyStore`]: quick replies, each stored whole;
//! - [`PresenceStore`]: agents' presence, with expiry;
//! - [`FeedStore`]: the durable per-tenant feed of events, appended by conversation commits;
//! - [`TenancyStore`]: plans, each tenant's account and feature flags, metered usage;
//! - [`TimerStore`]: the due index (when each conversation next needs its owner), moved by commits.
//!
//! The conversation reads:
//!
//! | read                              | partition key         | clustering            |
//! |-----------------------------------|-----------------------|-----------------------|
//! | conversation by id                | (tenant, conversation)| —                     |
//! | events after a seq (resume)       | (tenant, conversation)| seq                   |
//! | messages by seq, both directions  | (tenant, conversation)| seq                   |
//! | message by provider/client id     | (tenant, conversation)| key                   |
//! | inbox, newest activity first      | tenant                | (activity desc, id)   |
//! | inbox view (status/assignee/team) | (tenant, view)        | (activity desc, id)   |
//!
//! **Architecture Invariant:** every conversation read and write names its tenant; a backend never
//! answers across tenants.
//!
//! **Architecture Invariant:** only a conversation's owning actor calls [`ConversationStore::commit`] for it
//! (in a cluster: the actor on the node holding its shard's lease, proven by the commit's fence), so
//! the per-conversation `seq` has one writer; backends still reject a commit whose
//! first seq does not follow the stored `last_seq` ([`StoreError::SeqConflict`]) where they can do so
//! cheaply, to turn a placement bug into an error instead of a silent overwrite.

mod accounts;
mod audit;
mod connections;
mod contacts;
mod conversations;
mod credentials;
mod departments;
mod feed;
mod presence;
mod quick_replies;
mod tenancy;
mod timers;

pub use accounts::AccountStore;
pub use audit::{AuditEntry, AuditStore};
pub use connections::ConnectionStore;
pub use contacts::{ContactStore, MAX_CONTACT_PAGE, TermCursor};
pub use conversations::ConversationStore;
pub use credentials::CredentialStore;
pub use departments::DepartmentStore;
pub use feed::{FEED_SETTLE_SECS, FeedCursor, FeedPage, FeedStore, MAX_FEED_PAGE};
pub use presence::PresenceStore;
pub use quick_replies::QuickReplyStore;
pub use tenancy::TenancyStore;
pub use timers::{Due, MAX_DUE_PAGE, TimerStore};

use crate::cluster::Fence;
use crate::events::EventEnvelope;
use crate::ids::{AgentId, ConversationId, MessageId, Seq};
use crate::records::{Conversation, ConversationStatus, Message};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Every storage port: what a node opens (one backend implements them all).
pub trait Store:
    AccountStore
    + AuditStore
    + ConnectionStore
    + ContactStore
    + CredentialStore
    + ConversationStore
    + DepartmentStore
    + FeedStore
    + PresenceStore
    + QuickReplyStore
    + TenancyStore
    + TimerStore
{
}

impl<T> Store for T where
    T: AccountStore
        + AuditStore
        + ConnectionStore
        + ContactStore
        + CredentialStore
        + ConversationStore
        + DepartmentStore
        + FeedStore
        + PresenceStore
        + QuickReplyStore
        + TenancyStore
        + TimerStore
        + ?Sized
{
}

/// Failures of a store operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend cannot be reached or failed to persist; the operation may be retried.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A unique value (a provider address, a token) is already taken.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A commit's seq does not follow the stored one: two writers for one conversation.
    #[error(
        "seq conflict in conversation {conversation}: stored last seq {stored}, commit starts at {first}"
    )]
    SeqConflict {
        conversation: ConversationId,
        stored: Seq,
        first: Seq,
    },
    /// Stored bytes could not be decoded.
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// The commit's fence is stale: its shard's lease moved to a newer epoch, so the writer no longer
    /// owns the conversation. Nothing of the commit was written.
    #[error("fenced: shard {} is past epoch {}", .0.shard, .0.epoch)]
    Fenced(Fence),
    /// The operation is not offered by this backend (cluster membership on the embedded store).
    #[error("not supported by this backend: {0}")]
    Unsupported(&'static str),
    /// The request cannot be answered as asked (a feed cursor this backend did not hand out): the
    /// caller's mistake, nothing was read or written.
    #[error("invalid request: {0}")]
    Invalid(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A key under which a message can be found again for idempotency.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum MessageKey {
    /// The provider's id (`wamid.…`): dedupes provider retries and routes status webhooks.
    Provider(String),
    /// The agent's `client_message_id`: dedupes an agent's retried send.
    Client(String),
}

/// Where a keyed message lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRef {
    pub message_id: MessageId,
    pub seq: Seq,
}

/// Everything one conversation actor turn changes, written atomically and durably (all or nothing).
#[derive(Clone, Debug)]
pub struct ConversationCommit {
    /// The conversation after the turn; its `last_seq` is the seq of the last event below.
    pub conversation: Conversation,
    /// Where the conversation sat in the inbox and its views before the turn (`None` for a new
    /// conversation), so backends that index the views can move it.
    pub previous: Option<InboxPosition>,
    /// New events, in seq order, starting at the stored `last_seq + 1`.
    pub events: Vec<EventEnvelope>,
    /// Messages created or changed, each stored under its `seq`.
    pub messages: Vec<Message>,
    /// Idempotency keys to add.
    pub message_keys: Vec<(MessageKey, MessageRef)>,
    /// The words of the turn's new messages (`helpdesk::search::words`, at most
    /// `MAX_WORDS_PER_TURN`), indexed under the month of the conversation's `last_activity_at`.
    pub search_terms: Vec<String>,
    /// In a cluster, the writer's proof of ownership: the store refuses the commit with
    /// [`StoreError::Fenced`] unless the shard's lease is still at this epoch, checked atomically with
    /// the write (PostgreSQL), or with the reservation of the turn's seqs that precedes it (CQL).
    /// `None` on a single node.
    pub fence: Option<Fence>,
    /// With a fence: the end of the writer's lease window (its own monotonic clock). A backend that
    /// cannot check the fence in the same atomic write as the turn (CQL, whose turn spans partitions)
    /// refuses to start writing the turn after it, so a writer paused past its lease does not write
    /// late.
    pub write_by: Option<std::time::Instant>,
}

/// Which slice of a conversation's history to read. Results are always in ascending seq order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeqWindow {
    /// The first `limit` items with seq greater than this.
    After(Seq),
    /// The last `limit` items with seq lower than this (`Seq::MAX` = the newest).
    Before(Seq),
}

/// What places a conversation in the inbox and its views.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboxPosition {
    pub last_activity_at: Timestamp,
    pub status: ConversationStatus,
    pub assignee: Option<AgentId>,
    pub team: Option<String>,
    /// Where the conversation sits in the due index ([`TimerStore`]): `Conversation::next_due`.
    pub due: Option<Timestamp>,
    pub priority: crate::records::Priority,
    pub tags: Vec<String>,
}

impl InboxPosition {
    pub fn of(conversation: &Conversation) -> Self {
        Self {
            last_activity_at: conversation.last_activity_at,
            status: conversation.status,
            assignee: conversation.assignee,
            team: conversation.team.clone(),
            due: conversation.next_due(),
            priority: conversation.priority,
            tags: conversation.tags.clone(),
        }
    }

    /// The views whose count of active tickets includes this position: none for a resolved or
    /// cancelled ticket; else the whole inbox (`All`) and every view it is listed in.
    pub fn counted_views(&self) -> Vec<InboxView> {
        if crate::helpdesk::ticket::is_closed(self.status) {
            return Vec::new();
        }
        let mut views = vec![InboxView::All];
        views.extend(self.views());
        views
    }

    /// How a turn from `previous` (`None`: a new conversation) to `next` moves the active-ticket
    /// counts: each view left, then each view entered.
    pub fn count_moves(previous: Option<&Self>, next: &Self) -> (Vec<InboxView>, Vec<InboxView>) {
        let before = previous.map(Self::counted_views).unwrap_or_default();
        let after = next.counted_views();
        let left = before
            .iter()
            .filter(|v| !after.contains(v))
            .cloned()
            .collect();
        let entered = after
            .iter()
            .filter(|v| !before.contains(v))
            .cloned()
            .collect();
        (left, entered)
    }

    /// The filtered views this position is listed in (every conversation is also in `All`).
    pub fn views(&self) -> Vec<InboxView> {
        let mut views = vec![InboxView::Status(self.status)];
        if let Some(agent) = self.assignee {
            views.push(InboxView::Assignee(agent));
            if !crate::helpdesk::ticket::is_closed(self.status) {
                views.push(InboxView::Mine(agent));
            }
        }
        if let Some(team) = &self.team {
            views.push(InboxView::Team(team.clone()));
        }
        let active = !crate::helpdesk::ticket::is_closed(self.status);
        if active && self.assignee.is_none() {
            views.push(InboxView::Unassigned);
        }
        views.push(InboxView::Priority(self.priority));
        views.extend(self.tags.iter().cloned().map(InboxView::Tag));
        views
    }
}

/// Which slice of a tenant's inbox to list: one dimension at a time, each backed by an index of its
/// own, newest activity first like the whole inbox.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum InboxView {
    #[default]
    All,
    Status(ConversationStatus),
    Assignee(AgentId),
    /// The agent's active tickets (assigned, not resolved or cancelled): the agent's own queue, and
    /// their load for distribution.
    Mine(AgentId),
    Team(String),
    /// Active tickets nobody is assigned.
    Unassigned,
    Priority(crate::records::Priority),
    /// Tickets carrying a tag (each tag is a view: a ticket carries at most 32).
    Tag(String),
}

impl InboxView {
    /// A stable text key of the view (`status:open`, `assignee:<uuid>`, `team:<name>`), for
    /// backends that store views side by side.
    pub fn key(&self) -> String {
        match self {
            InboxView::All => "all".into(),
            InboxView::Status(status) => format!("status:{}", status.as_str()),
            InboxView::Assignee(agent) => format!("assignee:{agent}"),
            InboxView::Mine(agent) => format!("mine:{agent}"),
            InboxView::Team(team) => format!("team:{team}"),
            InboxView::Unassigned => "unassigned".into(),
            InboxView::Priority(priority) => format!("priority:{}", priority.as_str()),
            InboxView::Tag(tag) => format!("tag:{tag}"),
        }
    }
}

/// Position in a tenant's inbox: the last item of the previous page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxCursor {
    pub last_activity_at: Timestamp,
    pub conversation_id: ConversationId,
}
