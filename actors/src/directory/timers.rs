//! The due-index sweep: the node asks the store which of its conversations have a clock due (a
//! snooze ending, an SLA target) and has each conversation's actor fire them. The index is written by
//! the same commits as the conversations, so timers survive passivation, restarts and failover: the
//! owner of a shard sweeps it, wherever the conversation's actor last ran.

use super::{Directory, RouteError};
use crate::conversation::ConversationMsg;
use crate::placement::Owner;
use dashmap::DashMap;
use jiff::Timestamp;
use schema::cluster::{SHARDS, ShardId};
use schema::store::MAX_DUE_PAGE;
use schema::{ConversationId, TenantId};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Due conversations read per sweep, beyond those waiting out a backoff.
const SWEEP_PAGE: usize = 500;
/// Conversations fired at once.
const SWEEP_CONCURRENCY: usize = 8;
/// Longest pause before a conversation whose firing keeps failing is tried again.
const LONGEST_BACKOFF: Duration = Duration::from_secs(300);

/// Due conversations whose firing failed (an actor that keeps failing, a store error): skipped until
/// their time, doubling each failure, so they neither hot-loop nor hold the page's front forever
/// (the sweep reads past them). Bounded by `MAX_DUE_PAGE` entries.
#[derive(Default)]
pub(crate) struct Backoff(DashMap<(TenantId, ConversationId), (u32, Instant)>);

impl Backoff {
    fn waiting(&self, key: &(TenantId, ConversationId)) -> bool {
        self.0
            .get(key)
            .is_some_and(|entry| entry.value().1 > Instant::now())
    }

    fn failed(&self, key: (TenantId, ConversationId)) {
        if self.0.len() >= MAX_DUE_PAGE && !self.0.contains_key(&key) {
            return;
        }
        let mut entry = self.0.entry(key).or_insert((0, Instant::now()));
        let failures = entry.0.saturating_add(1);
        let pause = Duration::from_secs(1)
            .saturating_mul(1 << failures.min(9))
            .min(LONGEST_BACKOFF);
        *entry = (failures, Instant::now() + pause);
    }

    fn succeeded(&self, key: &(TenantId, ConversationId)) {
        self.0.remove(key);
    }
}

impl Directory {
    /// Fires the clocks due at `now` of this node's conversations (in a cluster, those of the shards
    /// it serves); returns how many conversations fired. At least once: a conversation fired twice
    /// (a sweep racing its own previous commit) finds nothing due the second time.
    pub async fn fire_due_timers(self: &Arc<Self>, now: Timestamp) -> Result<usize, RouteError> {
        let shards: Option<Vec<ShardId>> = self.placement().map(|placement| {
            (0..SHARDS)
                .map(ShardId)
                .filter(|shard| matches!(placement.owner(*shard), Owner::Local(_)))
                .collect()
        });
        if shards.as_ref().is_some_and(Vec::is_empty) {
            return Ok(0);
        }
        let backoff = &self.timer_backoff;
        let read = (SWEEP_PAGE + backoff.0.len()).min(MAX_DUE_PAGE);
        let due: Vec<_> = self
            .services
            .store
            .due(shards.as_deref(), now, read)
            .await?
            .into_iter()
            .filter(|due| !backoff.waiting(&(due.tenant, due.conversation)))
            .collect();
        let fired = std::sync::atomic::AtomicUsize::new(0);
        futures::StreamExt::for_each_concurrent(
            futures::stream::iter(due),
            SWEEP_CONCURRENCY,
            |due| {
                let fired = &fired;
                async move {
                    let listed = due.at;
                    let answer = self
                        .request(due.tenant, due.conversation, |reply, _ticket| {
                            ConversationMsg::FireTimers { listed, reply }
                        })
                        .await;
                    let key = (due.tenant, due.conversation);
                    match answer {
                        Ok(()) => {
                            backoff.succeeded(&key);
                            fired.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        Err(error) => {
                            backoff.failed(key);
                            metrics::counter!("conversa_timers_failed_total").increment(1);
                            tracing::warn!(
                                tenant = %due.tenant, conversation = %due.conversation, %error,
                                "due timers not fired; retried after a backoff"
                            );
                        }
                    }
                }
            },
        )
        .await;
        Ok(fired.into_inner())
    }
}
