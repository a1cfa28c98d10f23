//! The quick replies aggregate: a tenant's quick replies, each stored whole by id.

use super::StoreResult;
use crate::ids::TenantId;
use crate::records::QuickReply;
use async_trait::async_trait;
use uuid::Uuid;

/// Quick replies.
#[async_trait]
pub trait QuickReplyStore: Send + Sync + 'static {
    /// Creates or replaces the quick reply `(tenant_id, id)`.
    async fn put_quick_reply(&self, reply: &QuickReply) -> StoreResult<()>;
    async fn quick_reply(&self, tenant: TenantId, id: Uuid) -> StoreResult<Option<QuickReply>>;
    /// The tenant's quick replies (at most `schema::quick_reply::MAX_QUICK_REPLIES`, a bound the API
    /// keeps), in no particular order.
    async fn quick_replies(&self, tenant: TenantId) -> StoreResult<Vec<QuickReply>>;
    async fn remove_quick_reply(&self, tenant: TenantId, id: Uuid) -> StoreResult<()>;
}
