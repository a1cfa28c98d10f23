//! CQL quick replies (migration 0006).

use super::ScyllaStore;
use crate::storage::codec::to_json;
use crate::storage::observe;
use async_trait::async_trait;
use schema::TenantId;
use schema::records::QuickReply;
use schema::store::{QuickReplyStore, StoreResult};
use uuid::Uuid;

#[async_trait]
impl QuickReplyStore for ScyllaStore {
    async fn put_quick_reply(&self, reply: &QuickReply) -> StoreResult<()> {
        observe("put_quick_reply", async {
            self.execute(
                &self.statements.insert_quick_reply,
                (reply.tenant_id.0, reply.id, to_json(reply)?),
            )
            .await
        })
        .await
    }

    async fn quick_reply(&self, tenant: TenantId, id: Uuid) -> StoreResult<Option<QuickReply>> {
        observe(
            "quick_reply",
            self.body(&self.statements.select_quick_reply, (tenant.0, id)),
        )
        .await
    }

    async fn quick_replies(&self, tenant: TenantId) -> StoreResult<Vec<QuickReply>> {
        observe(
            "quick_replies",
            self.bodies(&self.statements.select_quick_replies, (tenant.0,)),
        )
        .await
    }

    async fn remove_quick_reply(&self, tenant: TenantId, id: Uuid) -> StoreResult<()> {
        observe(
            "remove_quick_reply",
            self.execute(&self.statements.delete_quick_reply, (tenant.0, id)),
        )
        .await
    }
}
