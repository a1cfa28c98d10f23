//! The due index: for every conversation with a clock running (a snooze, an SLA target), when it is
//! next due, kept by shard. Each conversation commit moves its entry in the same atomic write as the
//! turn (from `previous.due` to the conversation's `next_due`), so the index never disagrees with a
//! stored conversation for long: timers survive passivation, restarts and failover, because the owner
//! of a shard sweeps the index, not an in-memory timer.

use super::StoreResult;
use crate::cluster::ShardId;
use crate::ids::{ConversationId, TenantId};
use async_trait::async_trait;
use jiff::Timestamp;

/// Longest page of due conversations a sweep may ask for.
pub const MAX_DUE_PAGE: usize = 1000;

/// A conversation whose clock has come.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Due {
    pub tenant: TenantId,
    pub conversation: ConversationId,
    /// The due time the index holds for it.
    pub at: Timestamp,
}

/// Reading the due index (it is written by `ConversationStore::commit`).
#[async_trait]
pub trait TimerStore: Send + Sync + 'static {
    /// Conversations due at or before `until`, earliest first, at most `limit`: of the given shards
    /// only (a cluster node sweeps its own), of all when `None`.
    async fn due(
        &self,
        shards: Option<&[ShardId]>,
        until: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<Due>>;

    /// Removes an entry that names no stored conversation (a turn that wrote the entry but not the
    /// conversation, on a backend that writes a large turn statement by statement).
    async fn forget_due(&self, due: &Due) -> StoreResult<()>;
}
