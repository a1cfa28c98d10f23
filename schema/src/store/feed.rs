//! The durable per-tenant feed: every event of every conversation of a tenant, appended by the same
//! atomic commit as the turn that made it ([`ConversationStore::commit`]), read in pages with a cursor
//! the reader keeps. Timers, distribution, automation, the audit log and reports read it; the bus stays
//! the fast, lossy path to sockets.
//!
//! What a reader gets, per backend (the contract suite checks the shared part):
//! - every committed event exactly once when it pages from a cursor to the end, never an event of a
//!   turn that failed, and each conversation's events in seq order;
//! - the embedded store numbers entries in commit order: an entry is readable as soon as its commit
//!   returns;
//! - PostgreSQL orders entries by their transaction id and lists an entry once every transaction that
//!   began before its own has ended (`pg_snapshot_xmin`), so a slow commit can never be overtaken by
//!   a reader: a long transaction only delays the feed;
//! - CQL has no commit order across partitions: entries are ordered by commit time and listed once
//!   they are older than the settle window ([`FEED_SETTLE_SECS`] by default), longer than a turn may
//!   take to write (the turn deadline) plus clock skew between nodes. What it cannot promise: a turn
//!   whose logged batch timed out (its outcome unknown to the node) and was replayed by Cassandra's
//!   batch log or hints after the settle window is in the conversation's history but may be missed
//!   by a reader that already passed its time. The commit's own retries land within the window.
//!
//! [`ConversationStore::commit`]: super::ConversationStore::commit

use super::StoreResult;
use crate::events::EventEnvelope;
use crate::ids::TenantId;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// How long a CQL feed entry waits before it is listed (see the module docs): the longest turn
/// (20 s deadline) plus the clock skew the resume protocol allows for.
pub const FEED_SETTLE_SECS: i64 = 30;

/// Longest page of the feed a reader may ask for.
pub const MAX_FEED_PAGE: usize = 1000;

/// A reader's position in a tenant's feed. Opaque: each backend encodes its own order in it; a reader
/// only keeps the one it was given and hands it back.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FeedCursor(pub String);

/// One page of a tenant's feed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeedPage {
    /// Events after the cursor, in the backend's feed order.
    pub events: Vec<EventEnvelope>,
    /// Where the next page starts: after the last event listed, or at least as far as the cursor given
    /// (a backend may move it past entries it will never list). `None` only when the feed was read
    /// from its start and nothing was found.
    pub next: Option<FeedCursor>,
}

/// The per-tenant feed (written by [`super::ConversationStore::commit`]).
#[async_trait]
pub trait FeedStore: Send + Sync + 'static {
    /// The tenant's events after `after` (from the oldest kept when `None`), at most `limit`.
    /// Fails with `Invalid` for a cursor this backend did not hand out.
    async fn feed(
        &self,
        tenant: TenantId,
        after: Option<&FeedCursor>,
        limit: usize,
    ) -> StoreResult<FeedPage>;
}
