//! The PostgreSQL backend: for deployments that already run PostgreSQL. A sqlx connection pool, the
//! versioned migrations of `schema/postgres/` (sqlx's migrator: checksummed, applied under an advisory
//! lock, so every node may run them on start), and one transaction per actor turn.
//!
//! Durability is PostgreSQL's own: a commit returns once its WAL record is flushed
//! (`synchronous_commit` stays on), and concurrent commits share WAL flushes, which is the group commit
//! the embedded backend does by hand. Tenant isolation: every conversation query names `tenant_id` as
//! the leading column of the key it uses, so a wrong tenant finds nothing. Row-level security is not
//! enabled: it needs a `SET` per transaction to name the tenant, and the node connects as one role that
//! serves every tenant, so it would add a round trip without narrowing what the role can reach.

use super::codec::{
    expected_stored_seq, from_json, key_columns, micros, seq_from_db, seq_to_db, to_json,
    validate_commit,
};
use super::observe;
use super::secrets::SecretBox;
use crate::config::PostgresConfig;
use async_trait::async_trait;
use jiff::Timestamp;
use schema::events::EventEnvelope;
use schema::records::{Conversation, Direction, Message, MessageStatus};
use schema::store::{
    ConversationCommit, ConversationStore, InboxCursor, InboxView, MessageKey, MessageRef,
    SeqWindow, StoreError, StoreResult,
};
use schema::{ConversationId, MessageId, Seq, TenantId};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};
use std::str::FromStr;
use std::time::Duration;
use uuid::Uuid;

mod accounts;
mod audit;
mod cluster;
mod commit;
mod contacts;
mod credentials;
mod feed;
mod history;
mod presence;
mod quick_replies;
mod search;
mod tenancy;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../schema/postgres");

/// The PostgreSQL store.
pub struct PostgresStore {
    pool: PgPool,
    secrets: SecretBox,
}

impl PostgresStore {
    /// Connects the pool (the first connection is opened now, so a wrong URL fails at start).
    pub async fn connect(config: &PostgresConfig, secrets: SecretBox) -> StoreResult<Self> {
        let statement_timeout = format!("{}ms", config.statement_timeout_ms);
        let options = PgConnectOptions::from_str(&config.url)
            .map_err(|e| StoreError::Unavailable(format!("postgres url: {e}")))?
            .application_name("conversa")
            // A session whose client stops mid-transaction (a node paused or cut off mid-commit) is
            // ended by the server after 5 s, so the share lock its commit holds on a shard lease
            // cannot hold a takeover (or the taker's renewals) hostage.
            .options([
                ("statement_timeout", statement_timeout.as_str()),
                ("idle_in_transaction_session_timeout", "5000"),
            ]);
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections.max(1))
            .acquire_timeout(Duration::from_millis(config.acquire_timeout_ms))
            .connect_with(options)
            .await
            .map_err(db_error)?;
        Ok(Self { pool, secrets })
    }

    /// Applies the migrations not yet applied; idempotent.
    pub async fn migrate(&self) -> StoreResult<()> {
        MIGRATOR
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Unavailable(format!("postgres migration: {e}")))
    }

    /// Waits for checked-out connections to return, then closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn bodies<T: serde::de::DeserializeOwned>(
        &self,
        query: sqlx::query::QueryScalar<'_, Postgres, String, sqlx::postgres::PgArguments>,
    ) -> StoreResult<Vec<T>> {
        let rows = query.fetch_all(&self.pool).await.map_err(db_error)?;
        rows.iter().map(|body| from_json(body)).collect()
    }

    async fn body<T: serde::de::DeserializeOwned>(
        &self,
        query: sqlx::query::QueryScalar<'_, Postgres, String, sqlx::postgres::PgArguments>,
    ) -> StoreResult<Option<T>> {
        let row = query.fetch_optional(&self.pool).await.map_err(db_error)?;
        row.as_deref().map(from_json).transpose()
    }
}

#[async_trait]
impl ConversationStore for PostgresStore {
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
            sqlx::query("SELECT 1")
                .execute(&self.pool)
                .await
                .map(drop)
                .map_err(db_error)
        })
        .await
    }

    async fn conversation(
        &self,
        tenant: TenantId,
        id: ConversationId,
    ) -> StoreResult<Option<Conversation>> {
        observe(
            "conversation",
            self.body(
                sqlx::query_scalar(
                    "SELECT body::text FROM conversations WHERE tenant_id = $1 AND conversation_id = $2",
                )
                .bind(tenant.0)
                .bind(id.0),
            ),
        )
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
            let rows: Vec<(Uuid, Uuid, i64)> = sqlx::query_as(
                "SELECT tenant_id, conversation_id, seq FROM outbox \
                 ORDER BY queued_us, tenant_id, conversation_id, seq LIMIT $1",
            )
            .bind(limit_to_db(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
            rows.into_iter()
                .map(|(t, c, s)| Ok((TenantId(t), ConversationId(c), seq_from_db(s)?)))
                .collect()
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
            let row: Option<(Uuid, i64)> = sqlx::query_as(
                "SELECT message_id, seq FROM message_keys \
                 WHERE tenant_id = $1 AND conversation_id = $2 AND kind = $3 AND key = $4",
            )
            .bind(tenant.0)
            .bind(conversation.0)
            .bind(kind)
            .bind(value)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
            row.map(|(message_id, seq)| {
                Ok(MessageRef {
                    message_id: MessageId(message_id),
                    seq: seq_from_db(seq)?,
                })
            })
            .transpose()
        })
        .await
    }

    async fn message(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        seq: Seq,
    ) -> StoreResult<Option<Message>> {
        observe(
            "message",
            self.body(
                sqlx::query_scalar(
                    "SELECT body::text FROM messages \
                     WHERE tenant_id = $1 AND conversation_id = $2 AND seq = $3",
                )
                .bind(tenant.0)
                .bind(conversation.0)
                .bind(clamp_seq(seq)),
            ),
        )
        .await
    }

    async fn messages(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        window: SeqWindow,
        limit: usize,
    ) -> StoreResult<Vec<Message>> {
        let (sql, bound) = match window {
            SeqWindow::After(seq) => (
                "SELECT body::text FROM messages WHERE tenant_id = $1 AND conversation_id = $2 \
                 AND seq > $3 ORDER BY seq ASC LIMIT $4",
                seq,
            ),
            SeqWindow::Before(seq) => (
                "SELECT body::text FROM messages WHERE tenant_id = $1 AND conversation_id = $2 \
                 AND seq < $3 ORDER BY seq DESC LIMIT $4",
                seq,
            ),
        };
        let mut page: Vec<Message> = observe(
            "messages",
            self.bodies(
                sqlx::query_scalar(sql)
                    .bind(tenant.0)
                    .bind(conversation.0)
                    .bind(clamp_seq(bound))
                    .bind(limit_to_db(limit)),
            ),
        )
        .await?;
        if matches!(window, SeqWindow::Before(_)) {
            page.reverse();
        }
        Ok(page)
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
            self.bodies(
                sqlx::query_scalar(
                    "SELECT body::text FROM conversation_events \
                     WHERE tenant_id = $1 AND conversation_id = $2 AND seq > $3 \
                     ORDER BY seq ASC LIMIT $4",
                )
                .bind(tenant.0)
                .bind(conversation.0)
                .bind(clamp_seq(after))
                .bind(limit_to_db(limit)),
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
        // No cursor is the cursor before everything: one statement shape per view.
        let (after_us, after_id) = cursor.map_or((i64::MAX, Uuid::nil()), |c| {
            (micros(c.last_activity_at), c.conversation_id.0)
        });
        let filter = match view {
            InboxView::All => "",
            InboxView::Status(_) => "AND status = $5 ",
            InboxView::Assignee(_) => "AND assignee = $5 ",
            // The agent's active tickets (the conversations_by_assignee index, then the status).
            InboxView::Mine(_) => "AND assignee = $5 AND status NOT IN ('resolved', 'cancelled') ",
            InboxView::Team(_) => "AND team = $5 ",
            InboxView::Unassigned => {
                "AND assignee IS NULL AND status NOT IN ('resolved', 'cancelled') "
            }
            InboxView::Priority(_) => "AND priority = $5 ",
            InboxView::Tag(_) => "AND tags @> ARRAY[$5] ",
        };
        // Only constant fragments are spliced in; every value is bound.
        let sql = format!(
            "SELECT body::text FROM conversations WHERE tenant_id = $1 {filter}\
             AND (last_activity_us < $3 OR (last_activity_us = $3 AND conversation_id > $4)) \
             ORDER BY last_activity_us DESC, conversation_id ASC LIMIT $2"
        );
        let query = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(tenant.0)
            .bind(limit_to_db(limit))
            .bind(after_us)
            .bind(after_id);
        let query = match view {
            InboxView::All => query,
            InboxView::Status(status) => query.bind(status.as_str()),
            InboxView::Assignee(agent) | InboxView::Mine(agent) => query.bind(agent.0),
            InboxView::Team(team) | InboxView::Tag(team) => query.bind(team.clone()),
            InboxView::Unassigned => query,
            InboxView::Priority(priority) => query.bind(priority.as_str()),
        };
        observe("inbox", self.bodies(query)).await
    }

    async fn count_active(&self, tenant: TenantId, views: &[InboxView]) -> StoreResult<Vec<u64>> {
        self.count_active_views(tenant, views).await
    }

    async fn search_messages(
        &self,
        tenant: TenantId,
        term: &str,
        month: i32,
        after: Option<ConversationId>,
        limit: usize,
    ) -> StoreResult<Vec<ConversationId>> {
        self.search_message_terms(tenant, term, month, after, limit)
            .await
    }

    async fn has_message_term(
        &self,
        tenant: TenantId,
        term: &str,
        month: i32,
        conversation: ConversationId,
    ) -> StoreResult<bool> {
        self.has_term(tenant, term, month, conversation).await
    }

    async fn active_since(
        &self,
        tenant: TenantId,
        since: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<Conversation>> {
        observe(
            "active_since",
            self.bodies(
                sqlx::query_scalar(
                    "SELECT body::text FROM conversations WHERE tenant_id = $1 \
                     AND last_activity_us >= $2 \
                     ORDER BY last_activity_us DESC, conversation_id ASC LIMIT $3",
                )
                .bind(tenant.0)
                .bind(micros(since))
                .bind(limit_to_db(limit)),
            ),
        )
        .await
    }

    async fn next_ticket_number(&self, tenant: TenantId) -> StoreResult<u64> {
        self.take_ticket_number(tenant).await
    }
}

/// Seqs are u64 in the domain and bigint here; `Seq::MAX` ("the newest") becomes `i64::MAX`.
fn clamp_seq(seq: Seq) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

fn limit_to_db(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// Unique and foreign-key violations are answers (`Conflict`); everything else may pass with a retry.
fn db_error(error: sqlx::Error) -> StoreError {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() || db.is_foreign_key_violation() => {
            StoreError::Conflict(db.message().to_string())
        }
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
            StoreError::Corrupt(error.to_string())
        }
        _ => StoreError::Unavailable(error.to_string()),
    }
}
