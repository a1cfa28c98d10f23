//! CQL audit log (migration 0012). CQL has no multi-row transaction, so an append is a sequence of
//! lightweight transactions over the head row and the entry's row:
//!
//! 1. read the head at SERIAL consistency (creating it `IF NOT EXISTS` on a tenant's first entry);
//! 2. if an entry already follows the head (its writer stopped before moving the head), move the head
//!    to it `IF seq = ?` and start again;
//! 3. claim the next number: insert the chained entry `IF NOT EXISTS` (losing to another writer starts
//!    again);
//! 4. move the head to it `IF seq = ?` (if that fails, another writer has already moved it on).
//!
//! So every entry is linked to the entry numbered before it, whichever node wrote either, and the
//! head never leads the log. Contention is bounded by `APPEND_ATTEMPTS`. Every step is a
//! lightweight transaction at SERIAL consistency (the session's profile), so this holds across data
//! centres too.

use super::{ScyllaStore, applied, corrupt, limit_to_db};
use crate::storage::codec::{from_json, to_json};
use crate::storage::observe;
use async_trait::async_trait;
use schema::TenantId;
use schema::audit::{AUDIT_BUCKET, AuditEntry, AuditHead, AuditRecord, GENESIS, MAX_AUDIT_PAGE};
use schema::store::{AuditStore, SeqWindow, StoreError, StoreResult};
use scylla::statement::Consistency;
use scylla::value::Row;

/// Attempts of one append before it answers `Unavailable` (each lost race is another writer's
/// success, so this bounds a burst of concurrent appends to one tenant).
const APPEND_ATTEMPTS: usize = 64;

type EntryRow = (i64, String, Vec<u8>, Vec<u8>);

fn to_db(value: u64) -> StoreResult<i64> {
    i64::try_from(value).map_err(|_| StoreError::Invalid("audit seq out of range".into()))
}

fn from_db(value: i64) -> StoreResult<u64> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt("negative audit seq".into()))
}

fn hash_of(bytes: &[u8]) -> StoreResult<[u8; 32]> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt("an audit hash is not 32 bytes".into()))
}

fn bucket_of(seq: u64) -> StoreResult<i64> {
    to_db(seq / AUDIT_BUCKET)
}

fn entry(row: EntryRow) -> StoreResult<AuditEntry> {
    let (seq, body, prev_hash, hash) = row;
    Ok(AuditEntry {
        seq: from_db(seq)?,
        record: from_json(&body)?,
        prev_hash: hash_of(&prev_hash)?,
        hash: hash_of(&hash)?,
    })
}

impl ScyllaStore {
    async fn serial_head(&self, tenant: TenantId) -> StoreResult<Option<AuditHead>> {
        let mut statement = self.statements.select_audit_head.clone();
        statement.set_consistency(Consistency::Serial);
        let rows: Vec<(Option<i64>, Option<Vec<u8>>)> = self.rows(&statement, (tenant.0,)).await?;
        match rows.into_iter().next() {
            Some((seq, hash)) => Ok(Some(AuditHead {
                seq: from_db(seq.unwrap_or(0))?,
                hash: hash_of(&hash.unwrap_or_else(|| GENESIS.to_vec()))?,
            })),
            None => Ok(None),
        }
    }

    async fn serial_entry(&self, tenant: TenantId, seq: u64) -> StoreResult<Option<AuditEntry>> {
        let mut statement = self.statements.select_audit_entry.clone();
        statement.set_consistency(Consistency::Serial);
        let rows: Vec<EntryRow> = self
            .rows(&statement, (tenant.0, bucket_of(seq)?, to_db(seq)?))
            .await?;
        rows.into_iter().next().map(entry).transpose()
    }

    async fn move_head(&self, tenant: TenantId, from: u64, to: &AuditHead) -> StoreResult<()> {
        let _: Vec<Row> = self
            .rows(
                &self.statements.move_audit_head,
                (to_db(to.seq)?, to.hash.to_vec(), tenant.0, to_db(from)?),
            )
            .await?;
        Ok(())
    }

    async fn audit_page_after(
        &self,
        tenant: TenantId,
        after: u64,
        limit: usize,
    ) -> StoreResult<Vec<AuditEntry>> {
        // The head may lag the log by entries in the next partition (or be missing, or at 0, while
        // its first entry's writer has not moved it yet).
        let last_bucket = self.audit_head(tenant).await?.map_or(0, |h| h.seq) / AUDIT_BUCKET + 1;
        let mut page = Vec::new();
        let mut bucket = after.saturating_add(1) / AUDIT_BUCKET;
        while page.len() < limit && bucket <= last_bucket {
            let rows: Vec<EntryRow> = self
                .rows(
                    &self.statements.select_audit_after,
                    (
                        tenant.0,
                        to_db(bucket)?,
                        to_db(after)?,
                        limit_to_db(limit - page.len()),
                    ),
                )
                .await?;
            for row in rows {
                page.push(entry(row)?);
            }
            bucket += 1;
        }
        Ok(page)
    }

    async fn audit_page_before(
        &self,
        tenant: TenantId,
        before: u64,
        limit: usize,
    ) -> StoreResult<Vec<AuditEntry>> {
        // Entries past a lagging head sit at most in the head's next partition: nothing is read
        // past it, however far a caller's `before` points.
        let head = self.audit_head(tenant).await?.map_or(0, |h| h.seq);
        let before = before.min((head / AUDIT_BUCKET + 2) * AUDIT_BUCKET);
        let mut page = Vec::new();
        let Some(mut bucket) = before.checked_sub(1).map(|s| s / AUDIT_BUCKET) else {
            return Ok(page);
        };
        loop {
            let rows: Vec<EntryRow> = self
                .rows(
                    &self.statements.select_audit_before,
                    (
                        tenant.0,
                        to_db(bucket)?,
                        to_db(before)?,
                        limit_to_db(limit - page.len()),
                    ),
                )
                .await?;
            for row in rows {
                page.push(entry(row)?);
            }
            if page.len() >= limit || bucket == 0 {
                break;
            }
            bucket -= 1;
        }
        page.reverse();
        Ok(page)
    }
}

#[async_trait]
impl AuditStore for ScyllaStore {
    async fn append_audit(&self, record: &AuditRecord) -> StoreResult<u64> {
        observe("append_audit", async {
            let tenant = record.tenant_id;
            let body = to_json(record)?;
            for _ in 0..APPEND_ATTEMPTS {
                let Some(head) = self.serial_head(tenant).await? else {
                    let _: Vec<Row> = self
                        .rows(
                            &self.statements.create_audit_head,
                            (tenant.0, GENESIS.to_vec()),
                        )
                        .await?;
                    continue;
                };
                if let Some(next) = self.serial_entry(tenant, head.seq + 1).await? {
                    self.move_head(tenant, head.seq, &next.head()).await?;
                    continue;
                }
                let entry = AuditEntry::chain(&head, record.clone());
                let claimed: Vec<Row> = self
                    .rows(
                        &self.statements.claim_audit_entry,
                        (
                            tenant.0,
                            bucket_of(entry.seq)?,
                            to_db(entry.seq)?,
                            body.as_str(),
                            entry.prev_hash.to_vec(),
                            entry.hash.to_vec(),
                        ),
                    )
                    .await?;
                if !applied(&claimed) {
                    continue;
                }
                // The entry is stored: a failure to move the head now is not a failed append (the
                // head may lag; the next append or read catches it up), and answering one would
                // make the caller append the record again.
                if let Err(error) = self.move_head(tenant, head.seq, &entry.head()).await {
                    tracing::warn!(%tenant, seq = entry.seq, %error, "audit head left behind");
                }
                return Ok(entry.seq);
            }
            Err(StoreError::Unavailable(format!(
                "audit log of tenant {tenant}: {APPEND_ATTEMPTS} appends lost to concurrent writers"
            )))
        })
        .await
    }

    async fn audit_entries(
        &self,
        tenant: TenantId,
        window: SeqWindow,
        limit: usize,
    ) -> StoreResult<Vec<AuditEntry>> {
        observe("audit_entries", async {
            let limit = limit.clamp(1, MAX_AUDIT_PAGE);
            match window {
                SeqWindow::After(after) => self.audit_page_after(tenant, after, limit).await,
                SeqWindow::Before(before) => self.audit_page_before(tenant, before, limit).await,
            }
        })
        .await
    }

    async fn audit_head(&self, tenant: TenantId) -> StoreResult<Option<AuditHead>> {
        observe("audit_head", async {
            let rows: Vec<(Option<i64>, Option<Vec<u8>>)> = self
                .rows(&self.statements.select_audit_head, (tenant.0,))
                .await?;
            match rows.into_iter().next() {
                Some((Some(seq), Some(hash))) if seq > 0 => Ok(Some(AuditHead {
                    seq: from_db(seq)?,
                    hash: hash_of(&hash).map_err(|_| corrupt("audit head hash"))?,
                })),
                _ => Ok(None),
            }
        })
        .await
    }
}
