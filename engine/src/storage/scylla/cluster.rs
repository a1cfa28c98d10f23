//! Membership, shard leases and conversation fences on CQL (`schema/cql/0002_cluster.cql`).
//!
//! Leases live in 256 one-row partitions (a lightweight transaction serialises its partition, so one
//! partition for all would make every renewal contend), read whole each round. Every change to a lease is a
//! lightweight transaction: taking one names the epoch and expiry the taker read (so a renewal or
//! another taker in between makes it fail), renewing and releasing name the holder and epoch. Expiry
//! is judged by the reader's clock (CQL has no server-side `now()` for conditions): nodes' clocks must
//! agree within the skew the README states, and a wrong judgement costs a lease, never data, because
//! commits are fenced.

use super::super::codec::{
    duration_micros, epoch_from_db, epoch_to_db, shard_from_db, timestamp_from_micros,
};
use super::{ScyllaStore, applied, seq_from_db};
use async_trait::async_trait;
use jiff::Timestamp;
use schema::cluster::{ClusterStore, Lease, Member, NodeId, ShardId};
use schema::store::{StoreError, StoreResult};
use schema::{ConversationId, Seq, TenantId};
use scylla::statement::Consistency;
use scylla::value::Row;
use std::time::Duration;
use uuid::Uuid;

fn now_us() -> i64 {
    Timestamp::now().as_microsecond()
}

type LeaseRow = (i32, Option<Uuid>, Option<i64>, Option<i64>);

impl ScyllaStore {
    /// A conversation's fence row: (epoch, last reserved seq, stamp of the turn that reserved it),
    /// read at SERIAL consistency so a lightweight transaction in progress is settled first.
    pub(super) async fn fence(
        &self,
        tenant: TenantId,
        id: ConversationId,
    ) -> StoreResult<Option<(u64, Seq, i64)>> {
        let mut statement = self.statements.select_fence.clone();
        statement.set_consistency(Consistency::Serial);
        let rows: Vec<(Option<i64>, Option<i64>, Option<i64>)> =
            self.rows(&statement, (tenant.0, id.0)).await?;
        match rows.into_iter().next() {
            Some((epoch, seq, stamp)) => Ok(Some((
                epoch_from_db(epoch.unwrap_or(0))?,
                seq_from_db(seq.unwrap_or(0))?,
                stamp.unwrap_or(0),
            ))),
            None => Ok(None),
        }
    }

    /// The last seq reserved on a conversation's fence row, if it has one (read at the store's
    /// consistency: used when an actor loads the conversation).
    pub(super) async fn fence_seq(
        &self,
        tenant: TenantId,
        id: ConversationId,
    ) -> StoreResult<Option<Seq>> {
        let rows: Vec<(Option<i64>, Option<i64>, Option<i64>)> = self
            .rows(&self.statements.select_fence, (tenant.0, id.0))
            .await?;
        rows.into_iter()
            .next()
            .map(|(_, seq, _)| seq_from_db(seq.unwrap_or(0)))
            .transpose()
    }

    async fn lease_rows(&self) -> StoreResult<Vec<LeaseRow>> {
        self.rows(&self.statements.select_leases, ()).await
    }
}

#[async_trait]
impl ClusterStore for ScyllaStore {
    async fn heartbeat(&self, member: &Member) -> StoreResult<()> {
        self.execute(
            &self.statements.heartbeat,
            (
                member.node.0,
                member.name.as_str(),
                member.rpc_url.as_str(),
                member.started_at.as_microsecond(),
                now_us(),
            ),
        )
        .await
    }

    async fn members(&self, alive_within: Duration) -> StoreResult<Vec<Member>> {
        let rows: Vec<(
            Uuid,
            Option<String>,
            Option<String>,
            Option<i64>,
            Option<i64>,
        )> = self.rows(&self.statements.select_members, ()).await?;
        let since = now_us().saturating_sub(duration_micros(alive_within));
        let mut members: Vec<Member> = rows
            .into_iter()
            .filter(|(.., heartbeat)| heartbeat.unwrap_or(0) > since)
            .map(|(node, name, rpc_url, started, heartbeat)| Member {
                node: NodeId(node),
                name: name.unwrap_or_default(),
                rpc_url: rpc_url.unwrap_or_default(),
                started_at: timestamp_from_micros(started.unwrap_or(0)),
                heartbeat_at: timestamp_from_micros(heartbeat.unwrap_or(0)),
            })
            .collect();
        members.sort_by_key(|m| m.node);
        Ok(members)
    }

    async fn leave(&self, node: NodeId) -> StoreResult<()> {
        self.execute(&self.statements.delete_member, (node.0,))
            .await
    }

    async fn leases(&self) -> StoreResult<Vec<Lease>> {
        let now = now_us();
        let mut leases: Vec<Lease> = ShardId::all()
            .map(|shard| Lease {
                shard,
                owner: None,
                epoch: 0,
                expires_at: Timestamp::UNIX_EPOCH,
                expired: true,
            })
            .collect();
        for (shard, owner, epoch, expires) in self.lease_rows().await? {
            let shard = shard_from_db(shard)?;
            let expires = expires.unwrap_or(0);
            if let Some(lease) = leases.get_mut(usize::from(shard.0)) {
                lease.owner = owner.map(NodeId);
                lease.epoch = epoch_from_db(epoch.unwrap_or(0))?;
                lease.expires_at = timestamp_from_micros(expires);
                lease.expired = owner.is_none() || expires < now;
            }
        }
        Ok(leases)
    }

    async fn acquire(
        &self,
        shard: ShardId,
        node: NodeId,
        seen_epoch: u64,
        ttl: Duration,
    ) -> StoreResult<Option<Lease>> {
        let now = now_us();
        let rows: Vec<LeaseRow> = self
            .rows(&self.statements.select_lease, (i32::from(shard.0),))
            .await?;
        let current = rows.into_iter().next();
        let epoch = seen_epoch + 1;
        let expires = now.saturating_add(duration_micros(ttl));
        let taken: Vec<Row> = match current {
            None if seen_epoch == 0 => {
                self.rows(
                    &self.statements.insert_lease,
                    (i32::from(shard.0), node.0, epoch_to_db(epoch), expires),
                )
                .await?
            }
            None => return Ok(None),
            Some((_, owner, stored_epoch, stored_expires)) => {
                let stored_expires = stored_expires.unwrap_or(0);
                let free = owner.is_none() || stored_expires < now;
                if !free || stored_epoch.unwrap_or(0) != epoch_to_db(seen_epoch) {
                    return Ok(None);
                }
                self.rows(
                    &self.statements.take_lease,
                    (
                        node.0,
                        epoch_to_db(epoch),
                        expires,
                        i32::from(shard.0),
                        epoch_to_db(seen_epoch),
                        stored_expires,
                    ),
                )
                .await?
            }
        };
        if !applied(&taken) {
            return Ok(None);
        }
        Ok(Some(Lease {
            shard,
            owner: Some(node),
            epoch,
            expires_at: timestamp_from_micros(expires),
            expired: false,
        }))
    }

    async fn renew(
        &self,
        node: NodeId,
        held: &[(ShardId, u64)],
        ttl: Duration,
    ) -> StoreResult<Vec<ShardId>> {
        let expires = now_us().saturating_add(duration_micros(ttl));
        let renewals = held.iter().map(|(shard, epoch)| async move {
            let done: Vec<Row> = self
                .rows(
                    &self.statements.renew_lease,
                    (expires, i32::from(shard.0), node.0, epoch_to_db(*epoch)),
                )
                .await?;
            Ok::<_, StoreError>(applied(&done).then_some(*shard))
        });
        // A renewal that could not reach the store is not a lease lost: the round fails as a whole
        // (as PostgreSQL's one statement does) and every held shard keeps the window it had.
        let answers = futures::future::try_join_all(renewals).await?;
        Ok(answers.into_iter().flatten().collect())
    }

    async fn release(&self, shard: ShardId, node: NodeId, epoch: u64) -> StoreResult<()> {
        self.rows::<Row>(
            &self.statements.release_lease,
            (i32::from(shard.0), node.0, epoch_to_db(epoch)),
        )
        .await
        .map(drop)
    }
}
