//! PostgreSQL quick replies (migration 0006).

use super::{PostgresStore, db_error};
use crate::storage::codec::to_json;
use crate::storage::observe;
use async_trait::async_trait;
use schema::TenantId;
use schema::records::QuickReply;
use schema::store::{QuickReplyStore, StoreResult};
use uuid::Uuid;

#[async_trait]
impl QuickReplyStore for PostgresStore {
    async fn put_quick_reply(&self, reply: &QuickReply) -> StoreResult<()> {
        observe("put_quick_reply", async {
            sqlx::query(
                "INSERT INTO quick_replies (tenant_id, id, body) VALUES ($1, $2, $3::json) \
                 ON CONFLICT (tenant_id, id) DO UPDATE SET body = EXCLUDED.body",
            )
            .bind(reply.tenant_id.0)
            .bind(reply.id)
            .bind(to_json(reply)?)
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(db_error)
        })
        .await
    }

    async fn quick_reply(&self, tenant: TenantId, id: Uuid) -> StoreResult<Option<QuickReply>> {
        observe(
            "quick_reply",
            self.body(
                sqlx::query_scalar(
                    "SELECT body::text FROM quick_replies WHERE tenant_id = $1 AND id = $2",
                )
                .bind(tenant.0)
                .bind(id),
            ),
        )
        .await
    }

    async fn quick_replies(&self, tenant: TenantId) -> StoreResult<Vec<QuickReply>> {
        observe(
            "quick_replies",
            self.bodies(
                sqlx::query_scalar("SELECT body::text FROM quick_replies WHERE tenant_id = $1")
                    .bind(tenant.0),
            ),
        )
        .await
    }

    async fn remove_quick_reply(&self, tenant: TenantId, id: Uuid) -> StoreResult<()> {
        observe("remove_quick_reply", async {
            sqlx::query("DELETE FROM quick_replies WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.0)
                .bind(id)
                .execute(&self.pool)
                .await
                .map(drop)
                .map_err(db_error)
        })
        .await
    }
}
