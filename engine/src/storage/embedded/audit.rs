//! The embedded store's audit log: `audit` (`tenant | seq` → entry) and `audit_heads` (`tenant` →
//! head). The committer chains each entry after the tenant's head, taking earlier appends of the
//! same group into account, and writes the entry and the head in one batch.

use super::commit::Write;
use super::{EmbeddedStore, Tables, collect, encode, get};
use crate::storage::keys;
use async_trait::async_trait;
use schema::TenantId;
use schema::audit::{AuditEntry, AuditHead, AuditRecord, MAX_AUDIT_PAGE};
use schema::store::{AuditStore, SeqWindow, StoreResult};
use std::collections::HashMap;

/// Checks and stages `Write::Audit`: answers the entry's number.
pub(super) fn stage_append(
    tables: &Tables,
    batch: &mut fjall::OwnedWriteBatch,
    record: AuditRecord,
    heads: &mut HashMap<TenantId, AuditHead>,
) -> StoreResult<u64> {
    let tenant = record.tenant_id;
    let head = match heads.get(&tenant) {
        Some(head) => *head,
        None => {
            get::<AuditHead>(&tables.audit_heads, tenant.as_bytes())?.unwrap_or(AuditHead::EMPTY)
        }
    };
    let entry = AuditEntry::chain(&head, record);
    batch.insert(
        &tables.audit,
        keys::audit(tenant, entry.seq),
        encode(&entry)?,
    );
    batch.insert(
        &tables.audit_heads,
        tenant.as_bytes().to_vec(),
        encode(&entry.head())?,
    );
    heads.insert(tenant, entry.head());
    Ok(entry.seq)
}

#[async_trait]
impl AuditStore for EmbeddedStore {
    async fn append_audit(&self, record: &AuditRecord) -> StoreResult<u64> {
        self.write_for(Write::Audit(Box::new(record.clone()))).await
    }

    async fn audit_entries(
        &self,
        tenant: TenantId,
        window: SeqWindow,
        limit: usize,
    ) -> StoreResult<Vec<AuditEntry>> {
        let limit = limit.min(MAX_AUDIT_PAGE);
        self.read("audit_entries", move |t| match window {
            SeqWindow::After(seq) => {
                let start = keys::audit(tenant, seq.saturating_add(1));
                let end = keys::after_prefix(tenant.as_bytes());
                collect(t.audit.range(start..end).take(limit))
            }
            SeqWindow::Before(seq) => {
                let start = tenant.as_bytes().to_vec();
                let end = keys::audit(tenant, seq);
                let mut page: Vec<AuditEntry> =
                    collect(t.audit.range(start..end).rev().take(limit))?;
                page.reverse();
                Ok(page)
            }
        })
        .await
    }

    async fn audit_head(&self, tenant: TenantId) -> StoreResult<Option<AuditHead>> {
        self.read("audit_head", move |t| {
            get(&t.audit_heads, tenant.as_bytes())
        })
        .await
    }
}
