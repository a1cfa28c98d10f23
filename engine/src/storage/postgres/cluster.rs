//! Membership and shard leases on PostgreSQL (`schema/postgres/0002_cluster.sql`). Every time is this
//! database's clock, so nodes never compare their own clocks: a lease lapses when the database says so.
//! Taking a lease is one conditional `UPDATE` (the epoch the caller saw, and the lease free), so two
//! nodes racing for a shard cannot both win; the fence check in a conversation commit takes a share
//! lock on the lease row, so a takeover waits for the commits still holding the old epoch and every
//! later commit with it is refused.

use super::super::codec::{
    duration_micros, epoch_from_db, epoch_to_db, shard_from_db, timestamp_from_micros,
};
use super::{PostgresStore, db_error};
use async_trait::async_trait;
use schema::cluster::{ClusterStore, Fence, Lease, Member, NodeId, ShardId};
use schema::store::{StoreError, StoreResult};
use sqlx::{Postgres, Transaction};
use std::time::Duration;
use uuid::Uuid;

/// Now in microseconds by the database's clock, spliced into static SQL text with `concat!`.
macro_rules! now_us {
    () => {
        "(extract(epoch from now()) * 1000000)::bigint"
    };
}

/// Members not heard from for this long are deleted on the next heartbeat (their rows only name them).
const FORGET_MEMBERS_AFTER: Duration = Duration::from_secs(24 * 3600);

type LeaseRow = (i32, Option<Uuid>, i64, i64, bool);

fn lease(row: LeaseRow) -> StoreResult<Lease> {
    let (shard, owner, epoch, expires_us, expired) = row;
    Ok(Lease {
        shard: shard_from_db(shard)?,
        owner: owner.map(NodeId),
        epoch: epoch_from_db(epoch)?,
        expires_at: timestamp_from_micros(expires_us),
        expired,
    })
}

/// Inside a commit's transaction: refuses the commit unless the shard's lease is still at the fence's
/// epoch, and holds a share lock on the lease row until the transaction ends.
pub(super) async fn check_fence(
    tx: &mut Transaction<'_, Postgres>,
    fence: Fence,
) -> StoreResult<()> {
    let epoch: Option<i64> =
        sqlx::query_scalar("SELECT epoch FROM shard_leases WHERE shard = $1 FOR SHARE")
            .bind(i32::from(fence.shard.0))
            .fetch_optional(&mut **tx)
            .await
            .map_err(db_error)?;
    if epoch == Some(epoch_to_db(fence.epoch)) {
        Ok(())
    } else {
        Err(StoreError::Fenced(fence))
    }
}

#[async_trait]
impl ClusterStore for PostgresStore {
    async fn heartbeat(&self, member: &Member) -> StoreResult<()> {
        let sql = concat!(
            "INSERT INTO cluster_members (node_id, name, rpc_url, started_us, heartbeat_us) \
             VALUES ($1, $2, $3, $4, ",
            now_us!(),
            ") \
             ON CONFLICT (node_id) DO UPDATE SET name = EXCLUDED.name, rpc_url = EXCLUDED.rpc_url, \
             heartbeat_us = EXCLUDED.heartbeat_us"
        );
        sqlx::query(sql)
            .bind(member.node.0)
            .bind(&member.name)
            .bind(&member.rpc_url)
            .bind(member.started_at.as_microsecond())
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        sqlx::query(concat!(
            "DELETE FROM cluster_members WHERE heartbeat_us < ",
            now_us!(),
            " - $1"
        ))
        .bind(duration_micros(FORGET_MEMBERS_AFTER))
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn members(&self, alive_within: Duration) -> StoreResult<Vec<Member>> {
        let sql = concat!(
            "SELECT node_id, name, rpc_url, started_us, heartbeat_us FROM cluster_members \
             WHERE heartbeat_us > ",
            now_us!(),
            " - $1 ORDER BY node_id"
        );
        let rows: Vec<(Uuid, String, String, i64, i64)> = sqlx::query_as(sql)
            .bind(duration_micros(alive_within))
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(rows
            .into_iter()
            .map(|(node, name, rpc_url, started, heartbeat)| Member {
                node: NodeId(node),
                name,
                rpc_url,
                started_at: timestamp_from_micros(started),
                heartbeat_at: timestamp_from_micros(heartbeat),
            })
            .collect())
    }

    async fn leave(&self, node: NodeId) -> StoreResult<()> {
        sqlx::query("DELETE FROM cluster_members WHERE node_id = $1")
            .bind(node.0)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn leases(&self) -> StoreResult<Vec<Lease>> {
        let sql = concat!(
            "SELECT shard, owner, epoch, expires_us, (owner IS NULL OR expires_us < ",
            now_us!(),
            ") \
             FROM shard_leases ORDER BY shard"
        );
        let rows: Vec<LeaseRow> = sqlx::query_as(sql)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        rows.into_iter().map(lease).collect()
    }

    async fn acquire(
        &self,
        shard: ShardId,
        node: NodeId,
        seen_epoch: u64,
        ttl: Duration,
    ) -> StoreResult<Option<Lease>> {
        let sql = concat!(
            "UPDATE shard_leases SET owner = $2, epoch = epoch + 1, expires_us = ",
            now_us!(),
            " + $4 \
             WHERE shard = $1 AND epoch = $3 AND (owner IS NULL OR expires_us < ",
            now_us!(),
            ") \
             RETURNING shard, owner, epoch, expires_us, false"
        );
        let row: Option<LeaseRow> = sqlx::query_as(sql)
            .bind(i32::from(shard.0))
            .bind(node.0)
            .bind(epoch_to_db(seen_epoch))
            .bind(duration_micros(ttl))
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
        row.map(lease).transpose()
    }

    async fn renew(
        &self,
        node: NodeId,
        held: &[(ShardId, u64)],
        ttl: Duration,
    ) -> StoreResult<Vec<ShardId>> {
        if held.is_empty() {
            return Ok(Vec::new());
        }
        let shards: Vec<i32> = held.iter().map(|(s, _)| i32::from(s.0)).collect();
        let epochs: Vec<i64> = held.iter().map(|(_, e)| epoch_to_db(*e)).collect();
        let sql = concat!(
            "UPDATE shard_leases AS l SET expires_us = ",
            now_us!(),
            " + $2 \
             FROM unnest($3::integer[], $4::bigint[]) AS h(shard, epoch) \
             WHERE l.shard = h.shard AND l.epoch = h.epoch AND l.owner = $1 \
             RETURNING l.shard"
        );
        let renewed: Vec<i32> = sqlx::query_scalar(sql)
            .bind(node.0)
            .bind(duration_micros(ttl))
            .bind(shards)
            .bind(epochs)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        renewed.into_iter().map(shard_from_db).collect()
    }

    async fn release(&self, shard: ShardId, node: NodeId, epoch: u64) -> StoreResult<()> {
        sqlx::query(
            "UPDATE shard_leases SET owner = NULL, expires_us = 0 \
             WHERE shard = $1 AND owner = $2 AND epoch = $3",
        )
        .bind(i32::from(shard.0))
        .bind(node.0)
        .bind(epoch_to_db(epoch))
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }
}
