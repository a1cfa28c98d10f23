//! The storage port. One trait, three backends in `engine` (embedded LSM, ScyllaDB, PostgreSQL), so it
//! is shaped by the queries the system makes, partition key first:
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
//! **Architecture Invariant:** only a conversation's owning actor calls [`MessageStore::commit`] for it
//! (in a cluster: the actor on the node holding its shard's lease, proven by the commit's fence), so
//! the per-conversation `seq` has one writer; backends still reject a commit whose
//! first seq does not follow the stored `last_seq` ([`StoreError::SeqConflict`]) where they can do so
//! cheaply, to turn a placement bug into an error instead of a silent overwrite.

use crate::cluster::Fence;
use crate::events::EventEnvelope;
use crate::ids::{AgentId, ConnectionId, ConversationId, MessageId, Seq, TenantId};
use crate::records::{
    Agent, Connection, Conversation, ConversationStatus, Message, Provider, Tenant,
};
use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

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
}

impl InboxPosition {
    pub fn of(conversation: &Conversation) -> Self {
        Self {
            last_activity_at: conversation.last_activity_at,
            status: conversation.status,
            assignee: conversation.assignee,
            team: conversation.team.clone(),
        }
    }

    /// The filtered views this position is listed in (every conversation is also in `All`).
    pub fn views(&self) -> Vec<InboxView> {
        let mut views = vec![InboxView::Status(self.status)];
        if let Some(agent) = self.assignee {
            views.push(InboxView::Assignee(agent));
        }
        if let Some(team) = &self.team {
            views.push(InboxView::Team(team.clone()));
        }
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
    Team(String),
}

impl InboxView {
    /// A stable text key of the view (`status:open`, `assignee:<uuid>`, `team:<name>`), for
    /// backends that store views side by side.
    pub fn key(&self) -> String {
        match self {
            InboxView::All => "all".into(),
            InboxView::Status(status) => format!("status:{}", status.as_str()),
            InboxView::Assignee(agent) => format!("assignee:{agent}"),
            InboxView::Team(team) => format!("team:{team}"),
        }
    }
}

/// Position in a tenant's inbox: the last item of the previous page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxCursor {
    pub last_activity_at: Timestamp,
    pub conversation_id: ConversationId,
}

/// The storage port. Every method is durable when it returns `Ok`.
#[async_trait]
pub trait MessageStore: Send + Sync + 'static {
    /// Cheap liveness probe used by `/readyz`.
    async fn ping(&self) -> StoreResult<()>;

    async fn create_tenant(&self, tenant: &Tenant) -> StoreResult<()>;
    async fn tenant(&self, id: TenantId) -> StoreResult<Option<Tenant>>;
    /// Fails with `Conflict` when another connection already owns the provider address.
    async fn create_connection(&self, connection: &Connection) -> StoreResult<()>;
    async fn connection(&self, id: ConnectionId) -> StoreResult<Option<Connection>>;
    /// Replaces a connection's mutable fields (name, status, credentials); the caller keeps its
    /// tenant, provider and address unchanged. Fails with `Conflict` when the connection was removed
    /// meanwhile (an update never brings a removed connection back) or when its stored `version` is no
    /// longer the one `connection` carries (another update landed since it was read: read it again and
    /// reapply the change). A stored update bumps the version.
    async fn update_connection(&self, connection: &Connection) -> StoreResult<()>;
    /// Deletes a connection and frees its provider address; its conversations and messages stay.
    async fn remove_connection(&self, connection: &Connection) -> StoreResult<()>;
    /// A tenant's connections.
    async fn connections(&self, tenant: TenantId) -> StoreResult<Vec<Connection>>;
    /// The connection that owns a provider address (WhatsApp `phone_number_id`).
    async fn connection_by_address(
        &self,
        provider: Provider,
        address: &str,
    ) -> StoreResult<Option<Connection>>;
    /// Stores an agent and one access token, kept only as its SHA-256.
    async fn create_agent(&self, agent: &Agent, token_sha256: [u8; 32]) -> StoreResult<()>;
    async fn agent_by_token(&self, token_sha256: [u8; 32]) -> StoreResult<Option<Agent>>;

    async fn conversation(
        &self,
        tenant: TenantId,
        id: ConversationId,
    ) -> StoreResult<Option<Conversation>>;
    /// The last seq of a conversation reserved in cluster mode (CQL: a turn reserves its seqs before
    /// writing them), 0 when none: a conversation that does not exist yet but has a reservation (its
    /// first turn's owner stopped before writing it, or is paused and may still write) starts after
    /// it, so no seq is ever written by two owners. Backends without reservations answer 0.
    async fn reserved_seq(&self, tenant: TenantId, id: ConversationId) -> StoreResult<Seq> {
        let _ = (tenant, id);
        Ok(0)
    }
    /// Applies one actor turn atomically and durably. In the same write, every outbound message of the
    /// commit whose status is `pending` enters the outbox and every other outbound message leaves it.
    /// A message that is already stored with a higher [`MessageStatus::rank`] keeps its stored version:
    /// statuses never move backwards, whatever order writes arrive in.
    ///
    /// [`MessageStatus::rank`]: crate::records::MessageStatus::rank
    async fn commit(&self, commit: ConversationCommit) -> StoreResult<()>;
    /// Outbound messages still `pending` (stored, not yet answered by the provider), at most `limit`, in
    /// the backend's order (PostgreSQL oldest first; embedded by tenant, conversation and seq; CQL
    /// by outbox shard): what a node hands to its session actors again so an acknowledged reply is
    /// never lost. A reply stays listed until its answer is recorded, so a sweep that reads a full page
    /// reaches the rest once the first are answered.
    async fn pending_outbound(
        &self,
        limit: usize,
    ) -> StoreResult<Vec<(TenantId, ConversationId, Seq)>>;
    async fn message_ref(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        key: &MessageKey,
    ) -> StoreResult<Option<MessageRef>>;
    async fn message(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        seq: Seq,
    ) -> StoreResult<Option<Message>>;
    async fn messages(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        window: SeqWindow,
        limit: usize,
    ) -> StoreResult<Vec<Message>>;
    /// Events with seq greater than `after`, ascending, at most `limit`.
    async fn events(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        after: Seq,
        limit: usize,
    ) -> StoreResult<Vec<EventEnvelope>>;
    /// Conversations of `view` by last activity, newest first, strictly after `cursor`.
    async fn inbox(
        &self,
        tenant: TenantId,
        view: &InboxView,
        cursor: Option<InboxCursor>,
        limit: usize,
    ) -> StoreResult<Vec<Conversation>>;
    /// Conversations whose last activity is at or after `since`, newest first, at most `limit`.
    async fn active_since(
        &self,
        tenant: TenantId,
        since: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<Conversation>>;
}
