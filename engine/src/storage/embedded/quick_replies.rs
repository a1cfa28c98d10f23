//! The embedded store's quick replies: `tenant | id` → the reply; writes through the committer.

use super::commit::Write;
use super::{EmbeddedStore, collect, get};
use async_trait::async_trait;
use schema::TenantId;
use schema::records::QuickReply;
use schema::store::{QuickReplyStore, StoreResult};
use uuid::Uuid;

fn key(tenant: TenantId, id: Uuid) -> Vec<u8> {
    let mut key = tenant.as_bytes().to_vec();
    key.extend_from_slice(id.as_bytes());
    key
}

#[async_trait]
impl QuickReplyStore for EmbeddedStore {
    async fn put_quick_reply(&self, reply: &QuickReply) -> StoreResult<()> {
        let key = key(reply.tenant_id, reply.id);
        self.write(Write::Put("quick_replies", key, super::encode(reply)?))
            .await
    }

    async fn quick_reply(&self, tenant: TenantId, id: Uuid) -> StoreResult<Option<QuickReply>> {
        let key = key(tenant, id);
        self.read("quick_reply", move |t| get(&t.quick_replies, key))
            .await
    }

    async fn quick_replies(&self, tenant: TenantId) -> StoreResult<Vec<QuickReply>> {
        self.read("quick_replies", move |t| {
            collect(t.quick_replies.prefix(tenant.as_bytes()))
        })
        .await
    }

    async fn remove_quick_reply(&self, tenant: TenantId, id: Uuid) -> StoreResult<()> {
        self.write(Write::Remove("quick_replies", key(tenant, id)))
            .await
    }
}
