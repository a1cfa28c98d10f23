//! The due-index sweep: the node asks the store which of its conversations have a clock due (a
//! snooze ending, an SLA target) and has each conversation's actor fire them. The index is written by
//! the same commits as the conversations, so timers survive passivation, restarts and failover: the
//! owner of a shard sweeps it, wherever the conversation's actor last ran.

use super::{Directory, RouteError};
use crate::conversation::ConversationMsg;
use crate::placement::Owner;
use jiff::Timestamp;
use schema::cluster::{SHARDS, ShardId};
use std::sync::Arc;

/// Due conversations read per sweep.
const SWEEP_PAGE: usize = 500;
/// Conversations fired at once.
const SWEEP_CONCURRENCY: usize = 8;

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
        let due = self
            .services
            .store
            .due(shards.as_deref(), now, SWEEP_PAGE)
            .await?;
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
                    match answer {
                        Ok(()) => {
                            fired.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        Err(error) => tracing::warn!(
                            tenant = %due.tenant, conversation = %due.conversation, %error,
                            "due timers not fired; the next sweep retries"
                        ),
                    }
                }
            },
        )
        .await;
        Ok(fired.into_inner())
    }
}
