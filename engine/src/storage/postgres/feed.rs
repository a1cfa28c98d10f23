//! PostgreSQL's tenant feed and ticket numbers (migration 0003) and due index (migration 0005). The
//! feed is written by the turn's transaction (`commit.rs`); here it is read: ordered by (transaction
//! id, position) and cut at the oldest transaction still running, so every row a reader passes is
//! final (see `schema::store::feed`). The due index is two columns of the conversation row.

use super::{PostgresStore, db_error};
use crate::storage::codec::from_json;
use crate::storage::observe;
use async_trait::async_trait;
use jiff::Timestamp;
use schema::cluster::ShardId;
use schema::store::{
    Due, FeedCursor, FeedPage, FeedStore, MAX_DUE_PAGE, MAX_FEED_PAGE, StoreError, StoreResult,
    TimerStore,
};
use schema::{ConversationId, TenantId};
use uuid::Uuid;

impl PostgresStore {
    pub(super) async fn take_ticket_number(&self, tenant: TenantId) -> StoreResult<u64> {
        observe("next_ticket_number", async {
            let last: i64 = sqlx::query_scalar(
                "INSERT INTO ticket_counters (tenant_id, last) VALUES ($1, 1) \
                 ON CONFLICT (tenant_id) DO UPDATE SET last = ticket_counters.last + 1 \
                 RETURNING last",
            )
            .bind(tenant.0)
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)?;
            u64::try_from(last).map_err(|_| StoreError::Corrupt(format!("ticket number {last}")))
        })
        .await
    }
}

/// A cursor is `<txid>:<position>` of the last row read.
fn parse_cursor(cursor: &FeedCursor) -> StoreResult<(String, i64)> {
    let invalid =
        || StoreError::Invalid(format!("{:?} is not a feed cursor of this store", cursor.0));
    let (txid, position) = cursor.0.split_once(':').ok_or_else(invalid)?;
    let txid: u64 = txid.parse().map_err(|_| invalid())?;
    let position: i64 = position.parse().map_err(|_| invalid())?;
    Ok((txid.to_string(), position))
}

#[async_trait]
impl FeedStore for PostgresStore {
    async fn feed(
        &self,
        tenant: TenantId,
        after: Option<&FeedCursor>,
        limit: usize,
    ) -> StoreResult<FeedPage> {
        let (txid, position) = match after {
            Some(cursor) => parse_cursor(cursor)?,
            None => ("0".to_string(), 0),
        };
        let limit = i64::try_from(limit.min(MAX_FEED_PAGE)).unwrap_or(1000);
        observe("feed", async {
            let rows: Vec<(String, i64, String)> = sqlx::query_as(
                "SELECT txid::text, position, body::text FROM tenant_feed \
                 WHERE tenant_id = $1 AND (txid, position) > ($2::text::xid8, $3) \
                 AND txid < pg_snapshot_xmin(pg_current_snapshot()) \
                 ORDER BY txid, position LIMIT $4",
            )
            .bind(tenant.0)
            .bind(&txid)
            .bind(position)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
            let next = match rows.last() {
                Some((txid, position, _)) => Some(FeedCursor(format!("{txid}:{position}"))),
                None => after.cloned(),
            };
            let events = rows
                .iter()
                .map(|(_, _, body)| from_json(body))
                .collect::<StoreResult<Vec<_>>>()?;
            Ok(FeedPage { events, next })
        })
        .await
    }
}

#[async_trait]
impl TimerStore for PostgresStore {
    async fn due(
        &self,
        shards: Option<&[ShardId]>,
        until: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<Due>> {
        let limit = i64::try_from(limit.clamp(1, MAX_DUE_PAGE)).unwrap_or(1000);
        let shards: Option<Vec<i16>> = shards.map(|list| {
            list.iter()
                .filter_map(|s| i16::try_from(s.0).ok())
                .collect()
        });
        observe("due", async {
            let rows: Vec<(Uuid, Uuid, i64)> = sqlx::query_as(
                "SELECT tenant_id, conversation_id, due_us FROM conversations \
                 WHERE due_us IS NOT NULL AND due_us <= $1 \
                 AND ($2::smallint[] IS NULL OR shard = ANY($2)) \
                 ORDER BY due_us LIMIT $3",
            )
            .bind(until.as_microsecond())
            .bind(shards)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
            rows.into_iter()
                .map(|(tenant, conversation, due_us)| {
                    Ok(Due {
                        tenant: TenantId(tenant),
                        conversation: ConversationId(conversation),
                        at: Timestamp::from_microsecond(due_us)
                            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    })
                })
                .collect()
        })
        .await
    }

    async fn forget_due(&self, due: &Due) -> StoreResult<()> {
        observe("forget_due", async {
            sqlx::query(
                "UPDATE conversations SET due_us = NULL \
                 WHERE tenant_id = $1 AND conversation_id = $2 AND due_us = $3",
            )
            .bind(due.tenant.0)
            .bind(due.conversation.0)
            .bind(due.at.as_microsecond())
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(db_error)
        })
        .await
    }
}
