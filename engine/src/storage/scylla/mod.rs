//! The ScyllaDB backend (any CQL cluster: ScyllaDB in production, Apache Cassandra 5.0 in the tests),
//! on the `scylla` driver: prepared statements, token-aware (and on ScyllaDB shard-aware) routing,
//! configurable consistency (`LOCAL_QUORUM` by default), client-side monotonic write timestamps, a
//! request timeout, and reads bounded by partition (seq buckets, inbox days) and `LIMIT`.
//!
//! One actor turn is one logged batch: atomic across the conversation's tables (the batchlog replays a
//! half-applied batch). A turn too large for Cassandra's 50 KiB batch limit is written statement by
//! statement instead, the conversation row last: every write is keyed by ids the turn already has, so
//! a retry after a failure rewrites the same rows. Until the conversation row lands, what such a turn
//! wrote is invisible: reads drop events and messages past the stored `last_seq`, a message key past
//! it is not found (so a provider's retry stores the message instead of taking it for a duplicate),
//! and inbox rows whose time is not the conversation's are skipped.
//!
//! Without lightweight transactions the seq check is a read before the write, which turns a placement
//! bug into an error but cannot stop two truly concurrent writers: the single owning actor is what
//! keeps `seq` correct here (schema crate, store port). Statuses never move backwards without any read:
//! a message row is written with the timestamp `created_at + rank`, so the highest status wins.

mod accounts;
mod audit;
mod cluster;
mod commit;
mod connect;
mod contacts;
mod credentials;
mod feed;
mod history;
mod migrate;
mod presence;
mod quick_replies;
mod reads;
mod statements;
mod tenancy;

use feed::feed_hour;

use super::codec::epoch_to_db;
use super::codec::{
    expected_stored_seq, from_json, key_columns, micros, seq_from_db, seq_to_db, to_json,
    validate_commit,
};
use super::observe;
use super::secrets::SecretBox;
use crate::config::ScyllaConfig;
use async_trait::async_trait;
use futures::future::try_join_all;
use jiff::Timestamp;
use schema::cluster::Fence;
use schema::events::EventEnvelope;
use schema::records::{Conversation, Direction, Message, MessageStatus};
use schema::store::{
    ConversationCommit, ConversationStore, InboxCursor, InboxPosition, InboxView, MessageKey,
    MessageRef, SeqWindow, StoreError, StoreResult,
};
use schema::{ConversationId, MessageId, Seq, TenantId};
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::policies::load_balancing::DefaultPolicy;
use scylla::policies::timestamp_generator::MonotonicTimestampGenerator;
use scylla::serialize::row::SerializeRow;
use scylla::statement::Consistency;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use scylla::value::Row;
use statements::Statements;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Events and messages per partition: a conversation's stream is split every 4,096 seqs.
const BUCKET: u64 = 4096;
/// Outbox shards: a recovery scan reads this many small partitions.
pub(super) const OUTBOX_SHARDS: i32 = 64;
/// Turns whose encoded size is above this are written statement by statement (Cassandra refuses
/// logged batches over 50 KiB by default).
const BATCH_BYTES: usize = 40 * 1024;

/// The ScyllaDB store.
pub struct ScyllaStore {
    session: Session,
    statements: Statements,
    secrets: SecretBox,
    /// See `ScyllaConfig::feed_settle_ms`.
    feed_settle_us: i64,
}

/// One statement of a turn with its values.
type Write<'a> = (&'a PreparedStatement, Box<dyn SerializeRow + Send + Sync>);

impl ScyllaStore {
    /// Connects to the cluster, applies migrations when `migrate` is set, and prepares every
    /// statement (so a missing table fails here, at start, not on the first webhook).
    pub async fn connect(
        config: &ScyllaConfig,
        secrets: SecretBox,
        migrate: bool,
    ) -> StoreResult<Self> {
        let session = connect::session(config).await?;
        if migrate {
            migrate::run(
                &session,
                &config.keyspace,
                config.create_keyspace_replication.as_deref(),
            )
            .await?;
        }
        let statements = Statements::prepare(&session, &config.keyspace)
            .await
            .map_err(|e| {
                StoreError::Unavailable(format!("{e} (has `conversa migrate` been run?)"))
            })?;
        Ok(Self {
            session,
            statements,
            secrets,
            feed_settle_us: i64::try_from(config.feed_settle_ms)
                .unwrap_or(i64::MAX / 1000)
                .saturating_mul(1000),
        })
    }

    async fn rows<R>(
        &self,
        statement: &PreparedStatement,
        values: impl SerializeRow,
    ) -> StoreResult<Vec<R>>
    where
        R: for<'f> scylla::deserialize::row::DeserializeRow<'f, 'f>,
    {
        let result = self
            .session
            .execute_unpaged(statement, values)
            .await
            .map_err(driver_error)?
            .into_rows_result()
            .map_err(driver_error)?;
        result
            .rows::<R>()
            .map_err(driver_error)?
            .map(|row| row.map_err(corrupt))
            .collect()
    }

    async fn bodies<T: serde::de::DeserializeOwned>(
        &self,
        statement: &PreparedStatement,
        values: impl SerializeRow,
    ) -> StoreResult<Vec<T>> {
        let rows: Vec<(String,)> = self.rows(statement, values).await?;
        rows.iter().map(|(body,)| from_json(body)).collect()
    }

    async fn body<T: serde::de::DeserializeOwned>(
        &self,
        statement: &PreparedStatement,
        values: impl SerializeRow,
    ) -> StoreResult<Option<T>> {
        Ok(self.bodies(statement, values).await?.into_iter().next())
    }

    async fn execute(
        &self,
        statement: &PreparedStatement,
        values: impl SerializeRow,
    ) -> StoreResult<()> {
        self.session
            .execute_unpaged(statement, values)
            .await
            .map(drop)
            .map_err(driver_error)
    }

    async fn last_seq(&self, tenant: TenantId, id: ConversationId) -> StoreResult<Option<Seq>> {
        let rows: Vec<(Option<i64>,)> = self
            .rows(&self.statements.select_last_seq, (tenant.0, id.0))
            .await?;
        rows.into_iter()
            .next()
            .map(|(seq,)| seq_from_db(seq.unwrap_or(0)))
            .transpose()
    }
}

fn bucket(seq: Seq) -> StoreResult<i64> {
    seq_to_db(seq / BUCKET)
}

/// The day (since the epoch, UTC) of a time in microseconds: the inbox partition.
fn day_of(micros: i64) -> i32 {
    i32::try_from(micros.div_euclid(86_400_000_000)).unwrap_or(i32::MAX)
}

fn clamp_seq(seq: Seq) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

fn limit_to_db(limit: usize) -> i32 {
    i32::try_from(limit).unwrap_or(i32::MAX).max(1)
}

pub(super) fn driver_error(error: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

fn corrupt(error: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(error.to_string())
}

/// Whether a lightweight transaction's first column, `[applied]`, is true.
fn applied(rows: &[Row]) -> bool {
    rows.first()
        .and_then(|row| row.columns.first())
        .and_then(|c| c.as_ref())
        .and_then(|c| c.as_boolean())
        .unwrap_or(false)
}

#[async_trait]
impl ConversationStore for ScyllaStore {
    async fn rewrite_history(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        events: &[EventEnvelope],
        messages: &[Message],
        unindex: &[(String, i32)],
    ) -> StoreResult<()> {
        observe(
            "rewrite_history",
            self.rewrite(tenant, conversation, events, messages, unindex),
        )
        .await
    }

    async fn ping(&self) -> StoreResult<()> {
        observe("ping", async {
            self.session
                .query_unpaged("SELECT release_version FROM system.local", ())
                .await
                .map(drop)
                .map_err(driver_error)
        })
        .await
    }

    async fn conversation(
        &self,
        tenant: TenantId,
        id: ConversationId,
    ) -> StoreResult<Option<Conversation>> {
        observe("conversation", async {
            let (stored, reserved) = futures::future::try_join(
                self.body::<Conversation>(&self.statements.select_conversation, (tenant.0, id.0)),
                self.fence_seq(tenant, id),
            )
            .await?;
            // In cluster mode a turn reserves its seqs before writing its rows: an owner that
            // stopped in between leaves seqs nobody may reuse, so the next turn follows them.
            Ok(stored.map(|mut conversation| {
                if let Some(reserved) = reserved {
                    conversation.last_seq = conversation.last_seq.max(reserved);
                }
                conversation
            }))
        })
        .await
    }

    async fn reserved_seq(&self, tenant: TenantId, id: ConversationId) -> StoreResult<Seq> {
        observe("reserved_seq", async {
            Ok(self.fence_seq(tenant, id).await?.unwrap_or(0))
        })
        .await
    }

    async fn commit(&self, commit: ConversationCommit) -> StoreResult<()> {
        observe("commit", self.commit_turn(&commit)).await
    }

    async fn pending_outbound(
        &self,
        limit: usize,
    ) -> StoreResult<Vec<(TenantId, ConversationId, Seq)>> {
        observe("pending_outbound", async {
            let mut out = Vec::new();
            for shard in 0..OUTBOX_SHARDS {
                if out.len() >= limit {
                    break;
                }
                let want = limit_to_db(limit - out.len());
                let rows: Vec<(Uuid, Uuid, i64)> = self
                    .rows(&self.statements.select_outbox, (shard, want))
                    .await?;
                for (tenant, conversation, seq) in rows {
                    out.push((
                        TenantId(tenant),
                        ConversationId(conversation),
                        seq_from_db(seq)?,
                    ));
                }
            }
            Ok(out)
        })
        .await
    }

    async fn message_ref(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        key: &MessageKey,
    ) -> StoreResult<Option<MessageRef>> {
        let (kind, value) = key_columns(key);
        observe("message_ref", async {
            let rows: Vec<(Uuid, i64)> = self
                .rows(
                    &self.statements.select_message_key,
                    (tenant.0, conversation.0, kind, value),
                )
                .await?;
            let Some((message_id, seq)) = rows.into_iter().next() else {
                return Ok(None);
            };
            let seq = seq_from_db(seq)?;
            // A key written by a turn that never completed (a large turn is written statement by
            // statement) points past the stored last seq: the message is not there, so a provider's
            // retry must store it, not be taken for a duplicate.
            if self.last_seq(tenant, conversation).await?.unwrap_or(0) < seq {
                return Ok(None);
            }
            Ok(Some(MessageRef {
                message_id: MessageId(message_id),
                seq,
            }))
        })
        .await
    }

    async fn message(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        seq: Seq,
    ) -> StoreResult<Option<Message>> {
        observe("message", async {
            self.body(
                &self.statements.select_message,
                (tenant.0, conversation.0, bucket(seq)?, clamp_seq(seq)),
            )
            .await
        })
        .await
    }

    async fn messages(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        window: SeqWindow,
        limit: usize,
    ) -> StoreResult<Vec<Message>> {
        let statement = match window {
            SeqWindow::After(_) => &self.statements.select_messages_after,
            SeqWindow::Before(_) => &self.statements.select_messages_before,
        };
        observe(
            "messages",
            self.stream(
                statement,
                tenant,
                conversation,
                window,
                limit,
                |m: &Message| m.seq,
            ),
        )
        .await
    }

    async fn events(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        after: Seq,
        limit: usize,
    ) -> StoreResult<Vec<EventEnvelope>> {
        observe(
            "events",
            self.stream(
                &self.statements.select_events_after,
                tenant,
                conversation,
                SeqWindow::After(after),
                limit,
                |e: &EventEnvelope| e.seq,
            ),
        )
        .await
    }

    async fn inbox(
        &self,
        tenant: TenantId,
        view: &InboxView,
        cursor: Option<InboxCursor>,
        limit: usize,
    ) -> StoreResult<Vec<Conversation>> {
        observe("inbox", self.listed(tenant, view, cursor, None, limit)).await
    }

    async fn active_since(
        &self,
        tenant: TenantId,
        since: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<Conversation>> {
        observe(
            "active_since",
            self.listed(tenant, &InboxView::All, None, Some(micros(since)), limit),
        )
        .await
    }

    async fn count_active(&self, tenant: TenantId, views: &[InboxView]) -> StoreResult<Vec<u64>> {
        observe("count_active", async {
            let mut counts = Vec::with_capacity(views.len());
            for view in views {
                let rows: Vec<(i64,)> = self
                    .rows(&self.statements.count_active_view, (tenant.0, view.key()))
                    .await?;
                counts.push(
                    rows.first()
                        .map_or(0, |(n,)| u64::try_from(*n).unwrap_or(0)),
                );
            }
            Ok(counts)
        })
        .await
    }

    async fn search_messages(
        &self,
        tenant: TenantId,
        term: &str,
        month: i32,
        after: Option<ConversationId>,
        limit: usize,
    ) -> StoreResult<Vec<ConversationId>> {
        observe("search_messages", async {
            let s = &self.statements;
            let rows: Vec<(Uuid,)> = match after {
                None => {
                    self.rows(
                        &s.search_message_terms,
                        (tenant.0, term, month, limit_to_db(limit)),
                    )
                    .await?
                }
                Some(after) => {
                    self.rows(
                        &s.search_message_terms_after,
                        (tenant.0, term, month, after.0, limit_to_db(limit)),
                    )
                    .await?
                }
            };
            Ok(rows.into_iter().map(|(id,)| ConversationId(id)).collect())
        })
        .await
    }

    async fn has_message_term(
        &self,
        tenant: TenantId,
        term: &str,
        month: i32,
        conversation: ConversationId,
    ) -> StoreResult<bool> {
        observe("has_message_term", async {
            let rows: Vec<(Uuid,)> = self
                .rows(
                    &self.statements.has_message_term,
                    (tenant.0, term, month, conversation.0),
                )
                .await?;
            Ok(!rows.is_empty())
        })
        .await
    }

    async fn next_ticket_number(&self, tenant: TenantId) -> StoreResult<u64> {
        self.take_ticket_number(tenant).await
    }
}
