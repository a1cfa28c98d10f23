//! Cluster mode: this node's view of who owns which shard ([`ShardTable`], the `Placement` the actors
//! and the router consult) and the lease keeper that maintains it ([`keeper`]).
//!
//! ```text
//! keeper (every lease/3)   heartbeat → read members and leases → renew own → hand off surplus → take
//!                          free shards this node should own (rendezvous) → publish the table
//! ShardTable               shard → Local(fence) while renewed recently | Remote(url) | Nobody
//! ```

pub mod keeper;
pub mod status;

use actors::placement::{Owner, Placement};
use schema::cluster::{Fence, NodeId, SHARDS, ShardId};
use std::sync::RwLock;
use tokio::time::Instant;

/// One shard as this node sees it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Slot {
    pub owner: Option<NodeId>,
    pub epoch: u64,
    /// The owner's RPC URL when it is another live member.
    pub rpc_url: Option<String>,
    /// When this node owns the shard: until when it may serve it (two thirds of a lease after the
    /// start of the last successful renewal, so it stops before the lease can lapse).
    pub serve_until: Option<Instant>,
}

/// Shard → owner, as of the keeper's last round.
pub struct ShardTable {
    me: NodeId,
    slots: RwLock<Vec<Slot>>,
}

impl ShardTable {
    pub fn new(me: NodeId) -> Self {
        Self {
            me,
            slots: RwLock::new(vec![Slot::default(); usize::from(SHARDS)]),
        }
    }

    pub fn me(&self) -> NodeId {
        self.me
    }

    pub(crate) fn replace(&self, slots: Vec<Slot>) {
        let mut guard = self.slots.write().unwrap_or_else(|e| e.into_inner());
        *guard = slots;
    }

    pub(crate) fn snapshot(&self) -> Vec<Slot> {
        self.slots.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Placement for ShardTable {
    fn serving_until(&self, shard: ShardId) -> Option<std::time::Instant> {
        let slots = self.slots.read().unwrap_or_else(|e| e.into_inner());
        let slot = slots.get(usize::from(shard.0))?;
        if slot.owner != Some(self.me) {
            return None;
        }
        slot.serve_until.map(Instant::into_std)
    }

    fn local_shards(&self) -> usize {
        let now = Instant::now();
        self.slots
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|s| s.owner == Some(self.me) && s.serve_until.is_some_and(|t| t > now))
            .count()
    }

    fn owner(&self, shard: ShardId) -> Owner {
        let slots = self.slots.read().unwrap_or_else(|e| e.into_inner());
        let Some(slot) = slots.get(usize::from(shard.0)) else {
            return Owner::Nobody;
        };
        match (slot.owner, &slot.rpc_url) {
            (Some(owner), _) if owner == self.me => {
                if slot.serve_until.is_some_and(|t| t > Instant::now()) {
                    Owner::Local(Fence {
                        shard,
                        epoch: slot.epoch,
                    })
                } else {
                    Owner::Nobody
                }
            }
            (Some(node), Some(url)) => Owner::Remote {
                node,
                rpc_url: url.clone(),
            },
            _ => Owner::Nobody,
        }
    }
}
