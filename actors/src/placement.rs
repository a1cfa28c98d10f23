//! Where a shard is served, as seen from this node: the port between the actor system and the cluster
//! runtime (the lease keeper in `engine`, the node-to-node client in `gateway`). A single node has no
//! placement at all: every conversation is local and commits carry no fence.

use async_trait::async_trait;
use schema::cluster::{Fence, NodeId, ShardId};
use schema::command::{Command, CommandError, Reply};

/// Who serves a shard right now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Owner {
    /// This node holds the lease, renewed recently enough to serve; commits carry this fence.
    Local(Fence),
    /// Another live node holds it.
    Remote { node: NodeId, rpc_url: String },
    /// Nobody may serve it right now (lease lapsed and not yet taken, or this node's own lease is too
    /// old to trust): the request is refused with nothing done, and the client retries.
    Nobody,
}

/// The node's current view of shard ownership.
pub trait Placement: Send + Sync + 'static {
    fn owner(&self, shard: ShardId) -> Owner;
    /// Shards this node serves right now.
    fn local_shards(&self) -> usize;
    /// Until when this node may serve `shard` (its lease window), if it serves it.
    fn serving_until(&self, shard: ShardId) -> Option<std::time::Instant>;
}

/// Carries a command to the node that owns it.
#[async_trait]
pub trait Forwarder: Send + Sync + 'static {
    /// Runs `command` on the node at `rpc_url`. A failure to reach it before the request was sent is
    /// [`CommandError::NothingDone`]; a lost answer is [`CommandError::OutcomeUnknown`].
    async fn forward(&self, rpc_url: &str, command: &Command) -> Result<Reply, CommandError>;
}
