//! PostgreSQL inbox counts and message search (migration 0010). A count is an index-only scan of the
//! tenant's active tickets (`conversations_active`), so it costs the work in progress, not the
//! history; the search index is `message_terms`, written by each turn's transaction.

use super::{PostgresStore, db_error, limit_to_db};
use crate::storage::observe;
use schema::store::{InboxView, StoreResult};
use schema::{ConversationId, TenantId};
use uuid::Uuid;

impl PostgresStore {
    pub(super) async fn count_active_views(
        &self,
        tenant: TenantId,
        views: &[InboxView],
    ) -> StoreResult<Vec<u64>> {
        observe("count_active", async {
            let mut counts = Vec::with_capacity(views.len());
            for view in views {
                let filter = match view {
                    InboxView::All => "",
                    InboxView::Status(_) => "AND status = $2",
                    InboxView::Assignee(_) | InboxView::Mine(_) => "AND assignee = $2",
                    InboxView::Team(_) => "AND team = $2",
                    InboxView::Unassigned => "AND assignee IS NULL",
                    InboxView::Priority(_) => "AND priority = $2",
                    InboxView::Tag(_) => "AND tags @> ARRAY[$2]",
                };
                // Only constant fragments are spliced in; every value is bound.
                let sql = format!(
                    "SELECT count(*) FROM conversations WHERE tenant_id = $1 \
                     AND status NOT IN ('resolved', 'cancelled') {filter}"
                );
                let query = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql)).bind(tenant.0);
                let query = match view {
                    InboxView::All | InboxView::Unassigned => query,
                    InboxView::Status(status) => query.bind(status.as_str()),
                    InboxView::Assignee(agent) | InboxView::Mine(agent) => query.bind(agent.0),
                    InboxView::Team(text) | InboxView::Tag(text) => query.bind(text.clone()),
                    InboxView::Priority(priority) => query.bind(priority.as_str()),
                };
                let count = query.fetch_one(&self.pool).await.map_err(db_error)?;
                counts.push(u64::try_from(count).unwrap_or(0));
            }
            Ok(counts)
        })
        .await
    }

    pub(super) async fn search_message_terms(
        &self,
        tenant: TenantId,
        term: &str,
        month: i32,
        after: Option<ConversationId>,
        limit: usize,
    ) -> StoreResult<Vec<ConversationId>> {
        observe("search_messages", async {
            let ids: Vec<Uuid> = sqlx::query_scalar(
                "SELECT conversation_id FROM message_terms WHERE tenant_id = $1 AND term = $2 \
                 AND month = $3 AND conversation_id > $4 ORDER BY conversation_id LIMIT $5",
            )
            .bind(tenant.0)
            .bind(term)
            .bind(month)
            .bind(after.map_or(Uuid::nil(), |a| a.0))
            .bind(limit_to_db(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
            Ok(ids.into_iter().map(ConversationId).collect())
        })
        .await
    }

    pub(super) async fn has_term(
        &self,
        tenant: TenantId,
        term: &str,
        month: i32,
        conversation: ConversationId,
    ) -> StoreResult<bool> {
        observe("has_message_term", async {
            let found: Option<i32> = sqlx::query_scalar(
                "SELECT 1 FROM message_terms WHERE tenant_id = $1 AND term = $2 AND month = $3 \
                 AND conversation_id = $4",
            )
            .bind(tenant.0)
            .bind(term)
            .bind(month)
            .bind(conversation.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
            Ok(found.is_some())
        })
        .await
    }
}
