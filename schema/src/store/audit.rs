//! The audit aggregate: each tenant's hash-chained log (`schema::audit`), appended one entry at a
//! time per tenant and read in number order.
//!
//! **Architecture Invariant:** appends of one tenant are serialised by the store (the embedded
//! committer; a row lock on PostgreSQL; compare-and-set on CQL), so every entry links to the one
//! numbered before it, whichever node appended it.

use super::{SeqWindow, StoreResult};
use crate::audit::{AuditHead, AuditRecord};
use crate::ids::TenantId;
use async_trait::async_trait;

pub use crate::audit::AuditEntry;

/// The audit log.
#[async_trait]
pub trait AuditStore: Send + Sync + 'static {
    /// Numbers the record after the tenant's last entry, chains it, stores it durably and moves the
    /// head; answers the entry's number.
    async fn append_audit(&self, record: &AuditRecord) -> StoreResult<u64>;
    /// Up to `limit` (at most `audit::MAX_AUDIT_PAGE`) of the tenant's entries in the window, in
    /// ascending number order.
    async fn audit_entries(
        &self,
        tenant: TenantId,
        window: SeqWindow,
        limit: usize,
    ) -> StoreResult<Vec<AuditEntry>>;
    /// The head as the store last recorded it: it may lag the log by entries whose writer stopped
    /// before moving it, never lead it. `None` before the first entry.
    async fn audit_head(&self, tenant: TenantId) -> StoreResult<Option<AuditHead>>;
}
