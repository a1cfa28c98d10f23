//! The conversations aggregate: each conversation's record, its event stream and its messages, written
//! one actor turn at a time ([`ConversationCommit`]), and the inbox indexes over them.

use super::{
    ConversationCommit, InboxCursor, InboxView, MessageKey, MessageRef, SeqWindow, StoreResult,
};
use crate::events::EventEnvelope;
use crate::ids::{ConversationId, Seq, TenantId};
use crate::records::{Conversation, Message};
use async_trait::async_trait;
use jiff::Timestamp;

/// Conversations, their events and messages, and the inbox.
#[async_trait]
pub trait ConversationStore: Send + Sync + 'static {
    /// Cheap liveness probe used by `/readyz`.
    async fn ping(&self) -> StoreResult<()>;

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
    /// statuses never move backwards, whatever order writes arrive in. Every event of the commit is
    /// appended to its tenant's feed ([`super::FeedStore`]) in the same write.
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
    /// How many active tickets (neither resolved nor cancelled) each view lists, in the order asked:
    /// the badge numbers. Read from counts the commits keep (embedded, CQL) or from the active
    /// tickets' index (PostgreSQL), never by walking the history.
    async fn count_active(&self, tenant: TenantId, views: &[InboxView]) -> StoreResult<Vec<u64>>;
    /// Conversations whose messages in `month` (`helpdesk::search::month_of`) had the folded word
    /// `term`, by id after `after`, at most `limit`.
    async fn search_messages(
        &self,
        tenant: TenantId,
        term: &str,
        month: i32,
        after: Option<ConversationId>,
        limit: usize,
    ) -> StoreResult<Vec<ConversationId>>;
    /// Whether the conversation's messages in `month` had `term`.
    async fn has_message_term(
        &self,
        tenant: TenantId,
        term: &str,
        month: i32,
        conversation: ConversationId,
    ) -> StoreResult<bool>;
    /// LGPD erasure (`schema::privacy`): overwrites the conversation's stored events and messages at
    /// their seqs with these, overwrites the tenant feed's copies of those events where the backend
    /// keeps copies (embedded, PostgreSQL; the CQL feed points at the stored events), and removes
    /// these `(word, month)` rows of the search index. Only the conversation's owner calls it, with
    /// seqs already stored; doing it again with the same values changes nothing.
    async fn rewrite_history(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        events: &[crate::events::EventEnvelope],
        messages: &[crate::records::Message],
        unindex: &[(String, i32)],
    ) -> StoreResult<()>;
    /// The next ticket number of the tenant (1, 2, 3, …): durable when it returns, never handed out
    /// twice, even across restarts and nodes. A number taken by a turn that then fails is skipped,
    /// never reused, so numbers can have gaps.
    async fn next_ticket_number(&self, tenant: TenantId) -> StoreResult<u64>;
}
