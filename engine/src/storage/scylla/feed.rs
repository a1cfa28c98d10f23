//! The CQL tenant feed and ticket numbers (migration 0003), and the due index (migration 0005). Feed rows are written by the turn's batch
//! (`commit.rs`) and point at events; a reader lists them by commit time, only below the settle
//! horizon, and only when the event they point at is the one stored there (see
//! `schema::store::feed`). Ticket numbers move forward by compare-and-set.

use super::{ScyllaStore, applied, driver_error};
use crate::storage::observe;
use async_trait::async_trait;
use jiff::Timestamp;
use schema::cluster::ShardId;
use schema::store::{
    ConversationStore, Due, FeedCursor, FeedPage, FeedStore, MAX_DUE_PAGE, MAX_FEED_PAGE,
    StoreError, StoreResult, TimerStore,
};
use schema::{ConversationId, TenantId};
use scylla::value::Row;
use uuid::Uuid;

const HOUR_US: i64 = 3_600_000_000;
/// How far back a reader starting from nothing looks: the rows' time to live.
const RETENTION_US: i64 = 30 * 24 * HOUR_US;
/// Attempts to move a ticket counter under contention before giving up (nothing taken): with N
/// takers at once a taker can lose up to N − 1 rounds, so this covers bursts of about a hundred new
/// tickets of one tenant at one instant.
const TICKET_ATTEMPTS: u32 = 128;

/// The feed partition of a commit time.
pub(super) fn feed_hour(at_us: i64) -> i64 {
    at_us.div_euclid(HOUR_US)
}

/// A cursor is `<at_us>:<conversation>:<seq>` of the last row passed.
fn parse_cursor(cursor: &FeedCursor) -> StoreResult<(i64, Uuid, i64)> {
    let invalid =
        || StoreError::Invalid(format!("{:?} is not a feed cursor of this store", cursor.0));
    let mut parts = cursor.0.splitn(3, ':');
    let at = parts
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(invalid)?;
    let id = parts
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(invalid)?;
    let seq = parts
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(invalid)?;
    Ok((at, id, seq))
}

fn cursor_of((at, id, seq): (i64, Uuid, i64)) -> FeedCursor {
    FeedCursor(format!("{at}:{id}:{seq}"))
}

impl ScyllaStore {
    pub(super) async fn take_ticket_number(&self, tenant: TenantId) -> StoreResult<u64> {
        observe("next_ticket_number", async {
            let s = &self.statements;
            let rows: Vec<(Option<i64>,)> =
                self.rows(&s.select_ticket_counter, (tenant.0,)).await?;
            let mut last = rows.into_iter().next().and_then(|(l,)| l);
            for attempt in 0..TICKET_ATTEMPTS {
                let answer: Vec<Row> = match last {
                    None => self.rows(&s.insert_ticket_counter, (tenant.0,)).await?,
                    Some(last) => {
                        self.rows(&s.bump_ticket_counter, (last + 1, tenant.0, last))
                            .await?
                    }
                };
                if applied(&answer) {
                    let taken = last.map_or(1, |l| l + 1);
                    return u64::try_from(taken)
                        .map_err(|_| StoreError::Corrupt(format!("ticket number {taken}")));
                }
                // Someone else moved it: the refusal carries the row as it is now, `last` in its
                // last column (after `[applied]`, and the key for a refused insert).
                last = answer
                    .first()
                    .and_then(|row| row.columns.last())
                    .and_then(|c| c.as_ref())
                    .and_then(|c| c.as_bigint());
                // Contending takers spread out, so one of them wins each round.
                let ceiling = 2u64 << attempt.min(5);
                let pause = rand::random_range(0..ceiling);
                tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
            }
            Err(StoreError::Unavailable(format!(
                "ticket counter of tenant {tenant} is contended; nothing was taken"
            )))
        })
        .await
    }
}

#[async_trait]
impl FeedStore for ScyllaStore {
    async fn feed(
        &self,
        tenant: TenantId,
        after: Option<&FeedCursor>,
        limit: usize,
    ) -> StoreResult<FeedPage> {
        let horizon = Timestamp::now().as_microsecond() - self.feed_settle_us;
        let mut position = match after {
            Some(cursor) => parse_cursor(cursor)?,
            None => (horizon - RETENTION_US, Uuid::nil(), -1),
        };
        let limit = limit.clamp(1, MAX_FEED_PAGE);
        observe("feed", async {
            let hours: Vec<(i64,)> = self
                .rows(
                    &self.statements.select_feed_hours,
                    (tenant.0, feed_hour(position.0), feed_hour(horizon)),
                )
                .await?;
            let mut events = Vec::with_capacity(limit);
            let mut complete = true;
            for (hour,) in hours {
                let want = limit - events.len();
                let (at, id, seq) = if feed_hour(position.0) == hour {
                    position
                } else {
                    (i64::MIN, Uuid::nil(), -1)
                };
                let rows: Vec<(i64, Uuid, i64)> = self
                    .rows(
                        &self.statements.select_feed,
                        (
                            tenant.0,
                            hour,
                            at,
                            id,
                            seq,
                            horizon,
                            i32::try_from(want).unwrap_or(i32::MAX),
                        ),
                    )
                    .await?;
                let full = rows.len() >= want;
                for row in rows {
                    position = row;
                    if let Some(event) = self.pointed(tenant, row).await? {
                        events.push(event);
                    }
                }
                if full {
                    complete = false;
                    break;
                }
            }
            // Everything below the horizon is read: the next page starts there (an idle tenant's
            // cursor moves on instead of walking the same hours again).
            if complete && position.0 < horizon {
                position = (horizon - 1, Uuid::max(), i64::MAX);
            }
            Ok(FeedPage {
                events,
                next: Some(cursor_of(position)),
            })
        })
        .await
    }
}

impl ScyllaStore {
    /// The event a feed row points at, if the stored event at that seq is the one the row was written
    /// with (same commit time); `None` for a row of a turn that never landed.
    async fn pointed(
        &self,
        tenant: TenantId,
        (at, id, seq): (i64, Uuid, i64),
    ) -> StoreResult<Option<schema::events::EventEnvelope>> {
        let seq = u64::try_from(seq).map_err(driver_error)?;
        let found = self
            .events(tenant, ConversationId(id), seq.saturating_sub(1), 1)
            .await?;
        Ok(found
            .into_iter()
            .next()
            .filter(|e| e.seq == seq && e.at.as_microsecond() == at))
    }
}

/// Days (since the epoch) a sweep leaves in `due_days` even when empty: a turn computes due times at
/// or after its clock, so no row can land in a day older than this (with clock skew to spare).
const DUE_DAYS_KEPT: i32 = 2;

#[async_trait]
impl TimerStore for ScyllaStore {
    async fn due(
        &self,
        shards: Option<&[ShardId]>,
        until: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<Due>> {
        let limit = limit.clamp(1, MAX_DUE_PAGE);
        let until_us = until.as_microsecond();
        let today = super::day_of(until_us);
        observe("due", async {
            let s = &self.statements;
            let days: Vec<(i32, i32)> = self.rows(&s.select_due_days, (today,)).await?;
            let mut due = Vec::new();
            for (day, shard) in days {
                let mine = shards.is_none_or(|list| {
                    u16::try_from(shard).is_ok_and(|shard| list.contains(&ShardId(shard)))
                });
                if !mine {
                    continue;
                }
                let want = i32::try_from(limit).unwrap_or(i32::MAX);
                let rows: Vec<(i64, Uuid, Uuid)> = self
                    .rows(&s.select_due, (shard, day, until_us, want))
                    .await?;
                if rows.is_empty() && day < today - DUE_DAYS_KEPT {
                    self.execute(&s.delete_due_day, (day, shard)).await?;
                }
                for (at, tenant, conversation) in rows {
                    due.push(Due {
                        tenant: TenantId(tenant),
                        conversation: ConversationId(conversation),
                        at: Timestamp::from_microsecond(at).map_err(driver_error)?,
                    });
                }
            }
            due.sort_by_key(|d| d.at);
            due.truncate(limit);
            Ok(due)
        })
        .await
    }

    async fn forget_due(&self, due: &Due) -> StoreResult<()> {
        let at = due.at.as_microsecond();
        let shard = i32::from(ShardId::of(&due.conversation.0).0);
        observe(
            "forget_due",
            self.execute(
                &self.statements.delete_due,
                (
                    shard,
                    super::day_of(at),
                    at,
                    due.tenant.0,
                    due.conversation.0,
                ),
            ),
        )
        .await
    }
}
