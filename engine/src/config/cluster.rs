//! The `cluster` section: whether this node is one of several sharing a store, how it is reached by
//! the others, and its lease timings.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::time::Duration;

/// Cluster membership. Off by default: one node serves everything and needs none of this.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    pub enabled: bool,
    /// Where the node-to-node RPC listens (forwarded commands). Keep it on the cluster's network.
    pub listen: SocketAddr,
    /// The URL other nodes reach that listener at (`http://10.0.0.5:7100`); by default the listen
    /// address with the port actually bound, which needs a specific (not unspecified) IP.
    pub advertise_url: Option<String>,
    /// Shared by every node; authenticates forwarded commands. At least 32 characters.
    pub secret: Option<String>,
    /// The operator's name for this node (host or pod name), shown by `cluster status`.
    pub name: Option<String>,
    /// A shard lease lasts this long; it is renewed every third of it, and a node that could not renew
    /// for two thirds of it stops serving the shard before the lease can lapse.
    pub lease_ms: u64,
    /// Shards a node gives up per renewal round when members join (a bounded, graceful handoff).
    pub max_moves_per_round: usize,
}

impl std::fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterConfig")
            .field("enabled", &self.enabled)
            .field("listen", &self.listen)
            .field("advertise_url", &self.advertise_url)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("name", &self.name)
            .field("lease_ms", &self.lease_ms)
            .field("max_moves_per_round", &self.max_moves_per_round)
            .finish()
    }
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            listen: SocketAddr::from(([127, 0, 0, 1], 7100)),
            advertise_url: None,
            secret: None,
            name: None,
            lease_ms: 15_000,
            // About a tenth of the shards, as Akka moves per round.
            max_moves_per_round: 26,
        }
    }
}

impl ClusterConfig {
    /// The lease length, at least 300 ms.
    pub fn lease(&self) -> Duration {
        Duration::from_millis(self.lease_ms.max(300))
    }
}
