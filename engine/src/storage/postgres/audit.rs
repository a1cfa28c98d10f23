//! PostgreSQL audit log (migration 0013): an append locks the tenant's head row (`FOR UPDATE`), so
//! appends of one tenant from every node are numbered and chained one at a time, and writes the entry
//! and the new head in the same transaction.

use super::{PostgresStore, db_error};
use crate::storage::codec::{from_json, to_json};
use crate::storage::observe;
use async_trait::async_trait;
use schema::TenantId;
use schema::audit::{AuditEntry, AuditHead, AuditRecord, MAX_AUDIT_PAGE};
use schema::store::{AuditStore, SeqWindow, StoreError, StoreResult};

fn hash_of(bytes: &[u8]) -> StoreResult<[u8; 32]> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt("an audit hash is not 32 bytes".into()))
}

fn seq_of(value: i64) -> StoreResult<u64> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt("negative audit seq".into()))
}

fn column(value: u64) -> StoreResult<i64> {
    i64::try_from(value).map_err(|_| StoreError::Invalid("audit seq out of range".into()))
}

type Row = (i64, String, Vec<u8>, Vec<u8>);

fn entry(row: Row) -> StoreResult<AuditEntry> {
    let (seq, body, prev_hash, hash) = row;
    Ok(AuditEntry {
        seq: seq_of(seq)?,
        record: from_json(&body)?,
        prev_hash: hash_of(&prev_hash)?,
        hash: hash_of(&hash)?,
    })
}

#[async_trait]
impl AuditStore for PostgresStore {
    async fn append_audit(&self, record: &AuditRecord) -> StoreResult<u64> {
        observe("append_audit", async {
            let tenant = record.tenant_id.0;
            let mut tx = self.pool.begin().await.map_err(db_error)?;
            sqlx::query(
                "INSERT INTO audit_heads (tenant_id, seq, hash) VALUES ($1, 0, $2) \
                 ON CONFLICT (tenant_id) DO NOTHING",
            )
            .bind(tenant)
            .bind(&schema::audit::GENESIS[..])
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
            let (seq, hash): (i64, Vec<u8>) =
                sqlx::query_as("SELECT seq, hash FROM audit_heads WHERE tenant_id = $1 FOR UPDATE")
                    .bind(tenant)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db_error)?;
            let head = AuditHead {
                seq: seq_of(seq)?,
                hash: hash_of(&hash)?,
            };
            let entry = AuditEntry::chain(&head, record.clone());
            sqlx::query(
                "INSERT INTO audit_log (tenant_id, seq, body, prev_hash, hash) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(tenant)
            .bind(column(entry.seq)?)
            .bind(to_json(&entry.record)?)
            .bind(&entry.prev_hash[..])
            .bind(&entry.hash[..])
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
            sqlx::query("UPDATE audit_heads SET seq = $2, hash = $3 WHERE tenant_id = $1")
                .bind(tenant)
                .bind(column(entry.seq)?)
                .bind(&entry.hash[..])
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
            tx.commit().await.map_err(db_error)?;
            Ok(entry.seq)
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
            let limit = i64::try_from(limit.min(MAX_AUDIT_PAGE)).unwrap_or(1);
            let rows: Vec<Row> = match window {
                SeqWindow::After(seq) => {
                    sqlx::query_as(
                        "SELECT seq, body, prev_hash, hash FROM audit_log \
                         WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                    )
                    .bind(tenant.0)
                    .bind(i64::try_from(seq).unwrap_or(i64::MAX))
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await
                }
                SeqWindow::Before(seq) => {
                    sqlx::query_as(
                        "SELECT seq, body, prev_hash, hash FROM (SELECT seq, body, prev_hash, hash \
                         FROM audit_log WHERE tenant_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3) \
                         AS page ORDER BY seq",
                    )
                    .bind(tenant.0)
                    .bind(i64::try_from(seq).unwrap_or(i64::MAX))
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await
                }
            }
            .map_err(db_error)?;
            rows.into_iter().map(entry).collect()
        })
        .await
    }

    async fn audit_head(&self, tenant: TenantId) -> StoreResult<Option<AuditHead>> {
        observe("audit_head", async {
            let row: Option<(i64, Vec<u8>)> =
                sqlx::query_as("SELECT seq, hash FROM audit_heads WHERE tenant_id = $1")
                    .bind(tenant.0)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_error)?;
            match row {
                Some((0, _)) | None => Ok(None),
                Some((seq, hash)) => Ok(Some(AuditHead {
                    seq: seq_of(seq)?,
                    hash: hash_of(&hash)?,
                })),
            }
        })
        .await
    }
}
