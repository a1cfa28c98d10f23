//! `conversa audit verify`: walks each tenant's audit log in number order, recomputing every entry's
//! hash and link (`schema::audit::ChainCheck`), and compares the end with the stored head. Reads
//! straight from the configured store; no node needs to be up (the embedded store must not be open by
//! a running node).

use crate::config::Config;
use crate::storage;
use schema::TenantId;
use schema::audit::{AuditHead, ChainBreak, ChainCheck, MAX_AUDIT_PAGE};
use schema::store::{SeqWindow, Store, StoreResult};
use serde::Serialize;
use std::fmt;

/// Tenants read per page while verifying all of them.
const TENANT_PAGE: usize = 500;

/// One tenant's verdict.
#[derive(Debug, Serialize)]
pub struct TenantVerdict {
    pub tenant_id: TenantId,
    /// Entries checked.
    pub entries: u64,
    /// The last entry's number and hash (hex), when the chain holds: publish it to anchor the log.
    pub head_seq: Option<u64>,
    pub head_hash: Option<String>,
    /// The first break found, when it does not.
    pub broken: Option<ChainBreak>,
    /// An entry that could not even be decoded (altered beyond parsing), reported as a break.
    pub unreadable: Option<String>,
}

impl TenantVerdict {
    pub fn holds(&self) -> bool {
        self.broken.is_none() && self.unreadable.is_none()
    }
}

impl fmt::Display for TenantVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.broken, &self.unreadable, &self.head_hash) {
            (Some(broken), _, _) => write!(f, "tenant {}: BROKEN: {broken}", self.tenant_id),
            (_, Some(error), _) => write!(
                f,
                "tenant {}: BROKEN: an entry after {} cannot be read: {error}",
                self.tenant_id, self.entries
            ),
            (None, None, Some(hash)) => write!(
                f,
                "tenant {}: ok, {} entries, head {} {hash}",
                self.tenant_id,
                self.entries,
                self.head_seq.unwrap_or(0)
            ),
            (None, None, None) => write!(f, "tenant {}: ok, no entries", self.tenant_id),
        }
    }
}

/// Verifies one tenant's chain. `Err` only when the store cannot be read at all.
pub async fn verify_tenant(store: &dyn Store, tenant: TenantId) -> StoreResult<TenantVerdict> {
    let mut verdict = TenantVerdict {
        tenant_id: tenant,
        entries: 0,
        head_seq: None,
        head_hash: None,
        broken: None,
        unreadable: None,
    };
    // The head is read before the entries: on a shared store nodes keep appending while this runs,
    // and a head read last could be past the entries read (a lagging head is fine, a leading one is
    // a cut log).
    let head = store.audit_head(tenant).await?;
    let mut check = ChainCheck::default();
    let mut after = 0;
    loop {
        let page = match store
            .audit_entries(tenant, SeqWindow::After(after), MAX_AUDIT_PAGE)
            .await
        {
            Ok(page) => page,
            Err(schema::store::StoreError::Corrupt(error)) => {
                verdict.unreadable = Some(error);
                return Ok(verdict);
            }
            Err(error) => return Err(error),
        };
        let Some(last) = page.last().map(|e| e.seq) else {
            break;
        };
        for entry in &page {
            if let Err(broken) = check.next(entry) {
                verdict.broken = Some(broken);
                return Ok(verdict);
            }
            verdict.entries += 1;
        }
        after = last;
    }
    match check.finish(head) {
        Ok(head) if head == AuditHead::EMPTY => {}
        Ok(head) => {
            verdict.head_seq = Some(head.seq);
            verdict.head_hash = Some(hex::encode(head.hash));
        }
        Err(broken) => verdict.broken = Some(broken),
    }
    Ok(verdict)
}

/// Verifies one tenant, or every tenant of the store.
pub async fn verify(
    store: &dyn Store,
    tenant: Option<TenantId>,
) -> StoreResult<Vec<TenantVerdict>> {
    if let Some(tenant) = tenant {
        return Ok(vec![verify_tenant(store, tenant).await?]);
    }
    let mut verdicts = Vec::new();
    let mut after = None;
    loop {
        let page = store.tenants(after, TENANT_PAGE).await?;
        let Some(last) = page.last().map(|t| t.id) else {
            break;
        };
        for tenant in &page {
            verdicts.push(verify_tenant(store, tenant.id).await?);
        }
        after = Some(last);
    }
    Ok(verdicts)
}

/// Opens the configured store and verifies.
pub async fn run(config: &Config, tenant: Option<TenantId>) -> StoreResult<Vec<TenantVerdict>> {
    let secrets = storage::secrets::SecretBox::from_config(
        config.security.secret_key.as_deref(),
        &config.storage.embedded.data_dir,
    )?;
    let opened = storage::open(&config.storage, secrets, false).await?;
    let verdicts = verify(opened.store.as_ref(), tenant).await;
    let _ = (opened.closer)().await;
    verdicts
}
