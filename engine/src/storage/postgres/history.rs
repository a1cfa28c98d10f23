//! PostgreSQL LGPD rewrite of a conversation's history (`ConversationStore::rewrite_history`): the
//! events, their copies in `tenant_feed`, the messages and the search rows, in one transaction.

use super::{PostgresStore, db_error};
use crate::storage::codec::to_json;
use schema::events::EventEnvelope;
use schema::records::Message;
use schema::store::StoreResult;
use schema::{ConversationId, Seq, TenantId};

fn seq(value: Seq) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl PostgresStore {
    pub(super) async fn rewrite(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        events: &[EventEnvelope],
        messages: &[Message],
        unindex: &[(String, i32)],
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        if !events.is_empty() {
            let seqs: Vec<i64> = events.iter().map(|e| seq(e.seq)).collect();
            let bodies: Vec<String> = events.iter().map(to_json).collect::<StoreResult<_>>()?;
            // One statement per table: the feed has no index by conversation, so this scans the
            // tenant's feed once per page of events (and holds the feed back meanwhile).
            for sql in [
                "UPDATE conversation_events AS t SET body = v.body::json \
                 FROM unnest($3::bigint[], $4::text[]) AS v(seq, body) \
                 WHERE t.tenant_id = $1 AND t.conversation_id = $2 AND t.seq = v.seq",
                "UPDATE tenant_feed AS t SET body = v.body::json \
                 FROM unnest($3::bigint[], $4::text[]) AS v(seq, body) \
                 WHERE t.tenant_id = $1 AND t.conversation_id = $2 AND t.seq = v.seq",
            ] {
                sqlx::query(sql)
                    .bind(tenant.0)
                    .bind(conversation.0)
                    .bind(&seqs)
                    .bind(&bodies)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
            }
        }
        for message in messages {
            sqlx::query(
                "UPDATE messages SET body = $4::json \
                 WHERE tenant_id = $1 AND conversation_id = $2 AND seq = $3",
            )
            .bind(tenant.0)
            .bind(conversation.0)
            .bind(seq(message.seq))
            .bind(to_json(message)?)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        }
        for (term, month) in unindex {
            sqlx::query(
                "DELETE FROM message_terms \
                 WHERE tenant_id = $1 AND term = $2 AND month = $3 AND conversation_id = $4",
            )
            .bind(tenant.0)
            .bind(term)
            .bind(month)
            .bind(conversation.0)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)
    }
}
