//! The directory's outbound and recovery duties: the outbox sweep, handing a send to a connection's
//! session actor (forgetting a stopped one), the node-wide set of sends in flight, and the record of
//! conversations whose last commit ended with its outcome unknown (published by the next actor).

use super::{Directory, RouteError};
use crate::conversation::ConversationMsg;
use jiff::Timestamp;
use ractor::rpc::CallResult;
use schema::{ConversationId, Seq, TenantId};
use std::sync::Arc;
use std::time::Duration;

impl Directory {
    /// Hands outbound messages still `pending` that were created before `created_before` back to their
    /// session actors: at start with the start time (replies a previous process stored but never saw
    /// answered), then periodically with an age well past the longest retry schedule (a reply deferred
    /// by a full session queue, or whose actor stopped before it was handed over). Replies with a send
    /// in flight on this node are skipped, and in a cluster those of shards another node owns. About
    /// `SWEEP_PAGE` replies of this node (in the store's key order) per sweep, handed
    /// over `SWEEP_CONCURRENCY` at a time, each acknowledged by its conversation actor: a sweep never
    /// floods mailboxes. Sending is at least once: a reply the provider received just before a crash
    /// goes out again. Returns how many were handed over.
    pub async fn recover_outbox(
        self: &Arc<Self>,
        created_before: Timestamp,
    ) -> Result<usize, RouteError> {
        const SWEEP_PAGE: usize = 2_000;
        const SWEEP_CONCURRENCY: usize = 8;
        // The store lists pending replies of every shard; in a cluster this node resends only its
        // own, so it reads a page as many times larger as it holds a smaller share of the shards
        // (about `SWEEP_PAGE` of its own), within a hard bound.
        const LARGEST_READ: usize = 50_000;
        let read = match self.placement() {
            Some(placement) => {
                let share = placement.local_shards().max(1);
                (SWEEP_PAGE * usize::from(schema::cluster::SHARDS) / share).min(LARGEST_READ)
            }
            None => SWEEP_PAGE,
        };
        let pending = self.services.store.pending_outbound(read).await?;
        metrics::gauge!("conversa_outbox_pending").set(pending.len() as f64);
        let timeout = self.services.config.call_timeout;
        let resent = std::sync::atomic::AtomicUsize::new(0);
        let candidates = pending
            .into_iter()
            .filter(|(_, conversation, seq)| !self.outbound.contains(*conversation, *seq))
            // In a cluster only the owner of a conversation's shard resends its replies: no node
            // resends a reply that another is sending.
            .filter(|(_, conversation, _)| self.fence_for(*conversation).is_ok());
        futures::StreamExt::for_each_concurrent(
            futures::stream::iter(candidates),
            SWEEP_CONCURRENCY,
            |(tenant, conversation, seq)| {
                let resent = &resent;
                async move {
                    let handed_over = match self.conversation(tenant, conversation).await {
                        Ok(actor) => matches!(
                            actor
                                .call(
                                    |reply| ConversationMsg::Resend {
                                        seq,
                                        created_before,
                                        reply,
                                    },
                                    Some(timeout),
                                )
                                .await,
                            Ok(CallResult::Success(true))
                        ),
                        Err(_) => false,
                    };
                    if handed_over {
                        resent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            },
        )
        .await;
        let resent = resent.into_inner();
        metrics::counter!("conversa_outbox_resent_total").increment(resent as u64);
        Ok(resent)
    }

    /// The set of sends in flight on this node.
    pub(crate) fn outbound(&self) -> &crate::session::InFlight {
        &self.outbound
    }

    /// Records that the commit of a turn of this conversation ended with its outcome unknown, and that
    /// events up to `published` had been published. The next actor publishes what the store holds
    /// beyond; one is started shortly even if no message arrives for the conversation.
    pub(crate) fn turn_unsettled(
        self: &Arc<Self>,
        tenant: TenantId,
        conversation: ConversationId,
        published: Seq,
    ) {
        const RETRY_EVERY: Duration = Duration::from_secs(5);
        const MAX_TRIES: u32 = 120;
        self.unsettled
            .entry((tenant, conversation))
            .and_modify(|seq| *seq = (*seq).min(published))
            .or_insert(published);
        let directory = Arc::clone(self);
        tokio::spawn(async move {
            for _ in 0..MAX_TRIES {
                tokio::time::sleep(RETRY_EVERY).await;
                if !directory.unsettled.contains_key(&(tenant, conversation)) {
                    return;
                }
                let _ = directory.conversation(tenant, conversation).await;
            }
            // The turn's write never landed (or its events were published by an actor this loop could
            // not see stop): forget it, bounded.
            directory
                .unsettled
                .remove_if(&(tenant, conversation), |_, seq| *seq == published);
            tracing::warn!(%tenant, %conversation, "an unsettled turn never showed up in the store; no longer watched");
        });
    }

    /// The seq up to which events were published before an unsettled turn, if there was one.
    pub(crate) fn unsettled_since(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
    ) -> Option<Seq> {
        self.unsettled.get(&(tenant, conversation)).map(|s| *s)
    }

    /// The unsettled turn's events (those after `from`) are published.
    pub(crate) fn settled(&self, tenant: TenantId, conversation: ConversationId, from: Seq) {
        self.unsettled
            .remove_if(&(tenant, conversation), |_, seq| *seq == from);
    }
}
