//! `conversa cluster status`: the membership and lease tables as an operator reads them, straight
//! from the shared store (no node needs to be up to answer).

use crate::config::Config;
use crate::storage;
use schema::cluster::{Lease, Member, NodeId};
use schema::store::{StoreError, StoreResult};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

/// Members seen within this long count as alive (a default lease; the table says what it saw).
const ALIVE_WITHIN: std::time::Duration = std::time::Duration::from_secs(15);

/// What `cluster status` prints.
#[derive(Debug, Serialize)]
pub struct ClusterStatus {
    pub members: Vec<MemberStatus>,
    /// Shards whose lease is free (never taken, released or lapsed): nobody serves them right now.
    pub free_shards: usize,
    /// Shards held by a node that is not a live member (its lease has not lapsed yet).
    pub orphaned_shards: usize,
    pub highest_epoch: u64,
}

#[derive(Debug, Serialize)]
pub struct MemberStatus {
    #[serde(flatten)]
    pub member: Member,
    pub shards: usize,
}

/// Reads the status from the configured store.
pub async fn read(config: &Config) -> StoreResult<ClusterStatus> {
    let secrets = storage::secrets::SecretBox::from_config(
        config.security.secret_key.as_deref(),
        &config.storage.embedded.data_dir,
    )?;
    let opened = storage::open(&config.storage, secrets, false).await?;
    let Some(cluster) = opened.cluster.clone() else {
        return Err(StoreError::Unsupported(
            "cluster membership: the configured backend has no shard leases",
        ));
    };
    let members = cluster.members(ALIVE_WITHIN).await?;
    let leases = cluster.leases().await?;
    let _ = (opened.closer)().await;
    Ok(summarise(members, &leases))
}

fn summarise(members: Vec<Member>, leases: &[Lease]) -> ClusterStatus {
    let mut held: BTreeMap<NodeId, usize> = BTreeMap::new();
    let mut free = 0;
    for lease in leases {
        match lease.owner.filter(|_| !lease.expired) {
            Some(owner) => *held.entry(owner).or_default() += 1,
            None => free += 1,
        }
    }
    let live: Vec<NodeId> = members.iter().map(|m| m.node).collect();
    let orphaned = held
        .iter()
        .filter(|(node, _)| !live.contains(node))
        .map(|(_, n)| n)
        .sum();
    ClusterStatus {
        members: members
            .into_iter()
            .map(|member| MemberStatus {
                shards: held.get(&member.node).copied().unwrap_or(0),
                member,
            })
            .collect(),
        free_shards: free,
        orphaned_shards: orphaned,
        highest_epoch: leases.iter().map(|l| l.epoch).max().unwrap_or(0),
    }
}

impl fmt::Display for ClusterStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "members: {}", self.members.len())?;
        for m in &self.members {
            writeln!(
                f,
                "  {}  {:<20} {:<28} shards {:>3}  heartbeat {}",
                m.member.node, m.member.name, m.member.rpc_url, m.shards, m.member.heartbeat_at
            )?;
        }
        writeln!(
            f,
            "shards: {} free, {} held by nodes that are gone, highest epoch {}",
            self.free_shards, self.orphaned_shards, self.highest_epoch
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;
    use schema::cluster::ShardId;
    use uuid::Uuid;

    fn lease(shard: u16, owner: Option<NodeId>, expired: bool) -> Lease {
        Lease {
            shard: ShardId(shard),
            owner,
            epoch: u64::from(shard),
            expires_at: Timestamp::UNIX_EPOCH,
            expired,
        }
    }

    #[test]
    fn lapsed_leases_count_as_free_and_a_gone_owners_as_orphaned() {
        let (a, gone) = (NodeId(Uuid::from_u128(1)), NodeId(Uuid::from_u128(2)));
        let member = Member {
            node: a,
            name: "a".into(),
            rpc_url: "http://a".into(),
            started_at: Timestamp::UNIX_EPOCH,
            heartbeat_at: Timestamp::UNIX_EPOCH,
        };
        let leases = [
            lease(0, Some(a), false),
            lease(1, Some(a), true),
            lease(2, Some(gone), false),
            lease(3, None, true),
        ];
        let status = summarise(vec![member], &leases);
        assert_eq!(status.members[0].shards, 1);
        assert_eq!((status.free_shards, status.orphaned_shards), (2, 1));
        assert_eq!(status.highest_epoch, 3);
    }
}
