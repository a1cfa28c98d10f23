//! The lease keeper: one task per node that keeps its membership row alive and its shard leases
//! right. Each round (a third of a lease):
//!
//! 1. heartbeat, then read the live members and every lease (one query each);
//! 2. renew the leases this node holds, in one statement; a shard missing from the answer was taken
//!    over: its actors are stopped at once (their commits would be refused anyway);
//! 3. hand off, at most `max_moves_per_round` at a time, shards a newer member should own
//!    (rendezvous hashing over live members): stop the shard's actors (each finishes its turn), then
//!    release the lease so the preferred owner takes it next round;
//! 4. take the free (never taken, released or lapsed) shards this node should own;
//! 5. publish the new table to the router.
//!
//! A node that cannot reach the store keeps serving what it holds only until two thirds of a lease
//! after its last successful renewal, so it has stopped before any other node can take over.

use super::{ShardTable, Slot};
use actors::placement::Placement;
use schema::cluster::{ClusterStore, Lease, Member, NodeId, SHARDS, ShardId, preferred_owner};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// What the keeper needs.
pub struct Keeper {
    pub store: Arc<dyn ClusterStore>,
    pub directory: Arc<actors::Directory>,
    pub table: Arc<ShardTable>,
    pub member: Member,
    pub lease: Duration,
    pub max_moves_per_round: usize,
}

/// Leases this node holds: shard → epoch.
type Held = HashMap<ShardId, u64>;

impl Keeper {
    fn round_every(&self) -> Duration {
        self.lease / 3
    }

    fn serve_window(&self) -> Duration {
        self.lease * 2 / 3
    }

    /// Runs rounds until `stop` is cancelled; then serves nothing more (the table says nobody owns
    /// anything, so commands wait for the next owners) and, once `release` is cancelled (after the
    /// node's actors have drained), releases every lease held and leaves the membership.
    pub fn spawn(
        self,
        stop: CancellationToken,
        release: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        // The counters exist from the start (at 0), so dashboards and alerts see them before the
        // first event of each kind.
        for counter in [
            "conversa_cluster_takeovers_total",
            "conversa_cluster_handoffs_total",
            "conversa_cluster_leases_lost_total",
            "conversa_cluster_round_failures_total",
            "conversa_cluster_fencing_refusals_total",
            "conversa_cluster_unowned_refusals_total",
            "conversa_cluster_rpc_refused_total",
        ] {
            metrics::counter!(counter).absolute(0);
        }
        tokio::spawn(async move {
            let mut held = Held::new();
            let mut tick = tokio::time::interval(self.round_every());
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tick.tick() => {}
                }
                if let Err(error) = self.round(&mut held).await {
                    metrics::counter!("conversa_cluster_round_failures_total").increment(1);
                    tracing::warn!(%error, "cluster round failed; serving held shards until their window ends");
                    self.publish_expiry_only();
                }
            }
            self.table
                .replace(vec![Slot::default(); usize::from(SHARDS)]);
            release.cancelled().await;
            self.leave(held).await;
        })
    }

    async fn round(&self, held: &mut Held) -> Result<(), schema::store::StoreError> {
        let me = self.member.node;
        self.store.heartbeat(&self.member).await?;
        let members = self.store.members(self.lease).await?;
        let mut leases = self.store.leases().await?;

        // Renew, and publish at once: whatever fails later in the round, the renewed shards keep
        // being served.
        let started = Instant::now();
        let mine: Vec<(ShardId, u64)> = held.iter().map(|(s, e)| (*s, *e)).collect();
        let renewed = self.store.renew(me, &mine, self.lease).await?;
        let lost: Vec<ShardId> = mine
            .iter()
            .map(|(s, _)| *s)
            .filter(|s| !renewed.contains(s))
            .collect();
        for shard in &lost {
            held.remove(shard);
        }
        // Leases this node holds but forgot (an acquire whose answer was lost): adopted, so they are
        // renewed and served, or handed off, instead of lying idle until they lapse.
        for lease in &leases {
            if lease.owner == Some(me) && !lease.expired && !held.contains_key(&lease.shard) {
                held.insert(lease.shard, lease.epoch);
            }
        }
        let mut serve_until: HashMap<ShardId, Instant> = renewed
            .iter()
            .map(|s| (*s, started + self.serve_window()))
            .collect();
        self.publish(&leases, &members, held, &serve_until);
        if !lost.is_empty() {
            metrics::counter!("conversa_cluster_leases_lost_total").increment(lost.len() as u64);
            tracing::warn!(shards = lost.len(), "leases taken over by another node");
            self.directory
                .evict_shards(&lost, Duration::from_secs(1))
                .await;
        }

        // Hand off what a live member should own instead, a bounded number at a time: stop routing
        // to this node (the shards leave `held`, so the table says nobody), drain their actors, then
        // let the leases go (and drain again: a request that slipped in meanwhile).
        let live: Vec<NodeId> = members.iter().map(|m| m.node).collect();
        let surplus: Vec<(ShardId, u64)> = held
            .iter()
            .map(|(s, e)| (*s, *e))
            .filter(|(s, _)| preferred_owner(*s, &live).is_some_and(|p| p != me))
            .take(self.max_moves_per_round)
            .collect();
        if !surplus.is_empty() && live.contains(&me) {
            let shards: Vec<ShardId> = surplus.iter().map(|(s, _)| *s).collect();
            for shard in &shards {
                held.remove(shard);
                serve_until.remove(shard);
            }
            self.publish(&leases, &members, held, &serve_until);
            self.directory.evict_shards(&shards, self.lease / 3).await;
            for (shard, epoch) in &surplus {
                if let Err(error) = self.store.release(*shard, me, *epoch).await {
                    // It lapses by itself; the preferred owner takes it then.
                    tracing::warn!(%shard, %error, "lease not released");
                }
            }
            self.directory.evict_shards(&shards, self.lease / 3).await;
            metrics::counter!("conversa_cluster_handoffs_total").increment(surplus.len() as u64);
            tracing::info!(shards = surplus.len(), "shards handed off to newer members");
        }

        // Take free shards this node should own; one that cannot be taken now is tried next round.
        let mut taken = 0u64;
        for lease in &leases {
            if held.contains_key(&lease.shard) || !lease.is_free() {
                continue;
            }
            if preferred_owner(lease.shard, &live) != Some(me) {
                continue;
            }
            let asked = Instant::now();
            match self
                .store
                .acquire(lease.shard, me, lease.epoch, self.lease)
                .await
            {
                Ok(Some(won)) => {
                    if lease.owner.is_some_and(|o| o != me) {
                        metrics::counter!("conversa_cluster_takeovers_total").increment(1);
                    }
                    held.insert(won.shard, won.epoch);
                    serve_until.insert(won.shard, asked + self.serve_window());
                    taken += 1;
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(shard = %lease.shard, %error, "lease not taken; next round");
                }
            }
        }
        if taken > 0 {
            tracing::info!(shards = taken, held = held.len(), "shards taken");
        }
        if taken > 0 || !surplus.is_empty() {
            // Best effort: the owners of what just moved; the next round reads them anyway.
            if let Ok(fresh) = self.store.leases().await {
                leases = fresh;
            }
        }
        self.publish(&leases, &members, held, &serve_until);
        metrics::gauge!("conversa_cluster_members").set(members.len() as f64);
        metrics::gauge!("conversa_cluster_shards_owned").set(held.len() as f64);
        Ok(())
    }

    /// Builds and installs the table: own shards with their serving window, others with their owner's
    /// URL while that owner is a live member and its lease has not lapsed.
    fn publish(
        &self,
        leases: &[Lease],
        members: &[Member],
        held: &Held,
        serve_until: &HashMap<ShardId, Instant>,
    ) {
        let me = self.member.node;
        let urls: HashMap<NodeId, &str> = members
            .iter()
            .map(|m| (m.node, m.rpc_url.as_str()))
            .collect();
        let previous = self.table.snapshot();
        let mut slots = vec![Slot::default(); usize::from(SHARDS)];
        for lease in leases {
            let index = usize::from(lease.shard.0);
            let Some(slot) = slots.get_mut(index) else {
                continue;
            };
            if let Some(epoch) = held.get(&lease.shard) {
                slot.owner = Some(me);
                slot.epoch = *epoch;
                // Renewed or taken this round; otherwise the window it already had.
                slot.serve_until = serve_until
                    .get(&lease.shard)
                    .copied()
                    .or_else(|| previous.get(index).and_then(|p| p.serve_until));
            } else if let Some(owner) = lease.owner.filter(|o| *o != me && !lease.expired) {
                slot.owner = Some(owner);
                slot.epoch = lease.epoch;
                slot.rpc_url = urls.get(&owner).map(|u| u.to_string());
            }
        }
        self.table.replace(slots);
    }

    /// After a failed round: nothing changes but time; the table's own windows run out by themselves.
    fn publish_expiry_only(&self) {
        metrics::gauge!("conversa_cluster_shards_owned").set(self.table.local_shards() as f64);
    }

    /// Graceful exit: release every lease (the preferred owners take them on their next round) and
    /// leave the membership.
    async fn leave(&self, held: Held) {
        self.table
            .replace(vec![Slot::default(); usize::from(SHARDS)]);
        for (shard, epoch) in held {
            if let Err(error) = self.store.release(shard, self.member.node, epoch).await {
                tracing::warn!(%shard, %error, "lease not released; it lapses by itself");
            }
        }
        if let Err(error) = self.store.leave(self.member.node).await {
            tracing::warn!(%error, "membership row not removed; it ages out");
        }
        metrics::gauge!("conversa_cluster_shards_owned").set(0.0);
    }
}
