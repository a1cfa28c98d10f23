//! The cluster's language and its rules without a runtime: shards, members, leases, fences, the
//! placement rule (rendezvous hashing), and the [`ClusterStore`] port the shared backends implement.
//!
//! Every conversation and every connection belongs to one of [`SHARDS`] shards, by a hash of its id.
//! Each shard has a lease in the shared store: an owner node and an **epoch** that grows by one each
//! time the lease changes hands. A node serves a shard only while it holds a lease it renewed recently;
//! every conversation commit carries the owner's [`Fence`] and the store refuses one whose epoch is no
//! longer the shard's (see `ConversationStore::commit`).
//!
//! **Architecture Invariant:** safety rests on the fence, not on clocks: two nodes may both believe
//! they own a shard for a moment (a paused process, a slow clock), but only the newest epoch's commits
//! are accepted by the store.

use crate::store::StoreResult;
use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::time::Duration;
use uuid::Uuid;

/// Shards in a cluster: fixed, and at least ten times the largest expected node count (≤ 25 nodes),
/// so rebalancing moves small slices and every node gets a fair share.
pub const SHARDS: u16 = 256;

/// One of the [`SHARDS`] slices of conversations and connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ShardId(pub u16);

impl ShardId {
    /// The shard of an entity id (a conversation's or a connection's): the first bytes of its
    /// SHA-256, so ids of any version (v5 derived, v7 time-ordered) spread evenly.
    pub fn of(id: &Uuid) -> ShardId {
        let digest = Sha256::digest(id.as_bytes());
        ShardId(u16::from_be_bytes([digest[0], digest[1]]) % SHARDS)
    }

    /// Every shard, in order.
    pub fn all() -> impl Iterator<Item = ShardId> {
        (0..SHARDS).map(ShardId)
    }
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// One run of one node: a restarted node is a new incarnation with a new id, so nothing the old
/// process held (leases, in-flight forwards) is mistaken for the new one's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(pub Uuid);

impl NodeId {
    pub fn new() -> Self {
        NodeId(Uuid::now_v7())
    }
}

impl Default for NodeId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A node in the membership table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub node: NodeId,
    /// The operator's name for the node (host name, pod name); several incarnations may share it.
    pub name: String,
    /// Where its node-to-node RPC listens (`http://10.0.0.5:7100`).
    pub rpc_url: String,
    pub started_at: Timestamp,
    /// Last heartbeat, by the store's clock where it has one.
    pub heartbeat_at: Timestamp,
}

/// A shard's lease as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub shard: ShardId,
    /// `None` when released or never taken.
    pub owner: Option<NodeId>,
    /// Grows by one each time the lease is taken; never reused.
    pub epoch: u64,
    pub expires_at: Timestamp,
    /// Whether the lease had lapsed when it was read (judged by the store's clock where it has one),
    /// so any node may take it.
    pub expired: bool,
}

impl Lease {
    /// Free for anyone to take: never taken, released, or lapsed.
    pub fn is_free(&self) -> bool {
        self.owner.is_none() || self.expired
    }
}

/// What a conversation commit carries to prove its writer still owns the conversation's shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Fence {
    pub shard: ShardId,
    pub epoch: u64,
}

/// Membership and shard leases in the shared store. Implemented by the backends several nodes share
/// (PostgreSQL, CQL); the embedded store has none, which is why it refuses cluster mode.
#[async_trait]
pub trait ClusterStore: Send + Sync + 'static {
    /// Records (or refreshes) a member; `heartbeat_at` is set to now.
    async fn heartbeat(&self, member: &Member) -> StoreResult<()>;
    /// Members whose last heartbeat is more recent than `alive_within`.
    async fn members(&self, alive_within: Duration) -> StoreResult<Vec<Member>>;
    /// Removes a member on graceful shutdown.
    async fn leave(&self, node: NodeId) -> StoreResult<()>;
    /// Every shard's lease (shards never taken are listed free with epoch 0).
    async fn leases(&self) -> StoreResult<Vec<Lease>>;
    /// Takes `shard` for `node` if its lease is free (see [`Lease::is_free`]) and its epoch is still
    /// `seen_epoch`, raising the epoch by one; `None` when another node got there first.
    async fn acquire(
        &self,
        shard: ShardId,
        node: NodeId,
        seen_epoch: u64,
        ttl: Duration,
    ) -> StoreResult<Option<Lease>>;
    /// Extends the leases `node` still holds at the given epochs; answers the shards renewed (a shard
    /// missing from the answer was taken over and must no longer be served).
    async fn renew(
        &self,
        node: NodeId,
        held: &[(ShardId, u64)],
        ttl: Duration,
    ) -> StoreResult<Vec<ShardId>>;
    /// Gives a shard up (graceful handoff or shutdown); a no-op when `node` no longer holds it at `epoch`.
    async fn release(&self, shard: ShardId, node: NodeId, epoch: u64) -> StoreResult<()>;
}

/// The live member that should own `shard`: highest rendezvous score of (shard, node). Adding or
/// removing one member moves only the shards it wins or held, about `1/N` of them.
pub fn preferred_owner(shard: ShardId, members: &[NodeId]) -> Option<NodeId> {
    members
        .iter()
        .copied()
        .max_by_key(|node| (score(shard, *node), *node))
}

fn score(shard: ShardId, node: NodeId) -> u64 {
    let mut hasher = Sha256::new();
    hasher.update(shard.0.to_be_bytes());
    hasher.update(node.0.as_bytes());
    let digest = hasher.finalize();
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(n: usize) -> Vec<NodeId> {
        (0..n)
            .map(|i| NodeId(Uuid::from_u128(i as u128 + 1)))
            .collect()
    }

    #[test]
    fn an_id_always_falls_in_the_same_shard_within_range() {
        let id = Uuid::from_u128(42);
        assert_eq!(ShardId::of(&id), ShardId::of(&id));
        assert!((0..1000).all(|i| ShardId::of(&Uuid::from_u128(i)).0 < SHARDS));
    }

    #[test]
    fn shards_are_spread_evenly_over_three_members() {
        let members = nodes(3);
        let mut counts = [0usize; 3];
        for shard in ShardId::all() {
            let owner = preferred_owner(shard, &members).expect("members");
            counts[members.iter().position(|m| *m == owner).expect("a member")] += 1;
        }
        // 256 / 3 ≈ 85 each; rendezvous hashing keeps every share within a wide, deterministic band.
        assert!(counts.iter().all(|c| (55..=115).contains(c)), "{counts:?}");
    }

    #[test]
    fn a_member_joining_moves_only_the_shards_it_wins() {
        let before = nodes(3);
        let after = nodes(4);
        let mut moved = 0;
        for shard in ShardId::all() {
            let old = preferred_owner(shard, &before);
            let new = preferred_owner(shard, &after);
            if old != new {
                assert_eq!(new, Some(after[3]), "a shard moved between old members");
                moved += 1;
            }
        }
        assert!((30..=100).contains(&moved), "moved {moved} of 256");
    }

    #[test]
    fn no_member_no_owner() {
        assert_eq!(preferred_owner(ShardId(0), &[]), None);
    }
}
