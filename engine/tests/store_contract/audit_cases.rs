//! The audit log (issue 15) on every backend: entries numbered and chained per tenant, concurrent
//! appends forming one unbroken chain, pages in both directions, tenants listed once over pages; and
//! on the shared backends, `conversa audit verify` (the real binary) passing on an untouched log and
//! naming the row someone altered with the database's own tools. (The embedded store's tampering
//! test is `tests/audit.rs`: its files can be opened only once the node has stopped.)

use crate::backends::{Backend, node_env};
use engine::config::StorageBackend;
use schema::TenantId;
use schema::audit::{AuditAction, AuditActor, AuditRecord, ChainCheck};
use schema::records::Tenant;
use schema::store::SeqWindow;
use serde_json::Value;

/// A case: its name (used in the test name) and its body.
pub type CaseFn = for<'a> fn(&'a Backend) -> futures::future::BoxFuture<'a, ()>;

macro_rules! cases {
    ($list:ident: $($name:ident),* $(,)?) => {
        pub const $list: &[(&str, CaseFn)] = &[$((stringify!($name), |b| Box::pin($name(b)))),*];
    };
}

cases!(CASES:
    appends_are_numbered_and_chained_per_tenant,
    concurrent_appends_form_one_unbroken_chain,
    audit_pages_read_forward_and_back,
    every_tenant_is_listed_once_over_pages,
);

cases!(SHARED_CASES: audit_verify_names_a_row_altered_in_the_database);

fn record(tenant: TenantId, i: usize) -> AuditRecord {
    AuditRecord::new(
        tenant,
        AuditActor::OPERATOR,
        AuditAction::ConfigChanged,
        format!("department:{i}"),
    )
    .detail("change", "created")
}

async fn chain_of(b: &Backend, tenant: TenantId) -> Vec<schema::audit::AuditEntry> {
    b.store()
        .await
        .audit_entries(tenant, SeqWindow::After(0), 500)
        .await
        .expect("entries")
}

async fn appends_are_numbered_and_chained_per_tenant(b: &Backend) {
    let store = b.store().await;
    let (tenant, other) = (TenantId::new(), TenantId::new());
    assert_eq!(store.audit_head(tenant).await.expect("head"), None);
    for i in 0..3 {
        assert_eq!(
            store
                .append_audit(&record(tenant, i))
                .await
                .expect("append"),
            i as u64 + 1
        );
    }
    assert_eq!(
        store.append_audit(&record(other, 9)).await.expect("append"),
        1
    );
    let entries = chain_of(b, tenant).await;
    assert_eq!(entries.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3]);
    let expected = record(tenant, 1);
    assert_eq!(
        (&entries[1].record.target, &entries[1].record.details),
        (&expected.target, &expected.details)
    );
    let mut check = ChainCheck::default();
    for entry in &entries {
        check.next(entry).expect("linked");
    }
    let head = store.audit_head(tenant).await.expect("head");
    assert_eq!(check.finish(head), Ok(entries[2].head()));
    let theirs = chain_of(b, other).await;
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0].record.target, "department:9");
}

async fn concurrent_appends_form_one_unbroken_chain(b: &Backend) {
    let store = b.store().await;
    let tenant = TenantId::new();
    let appends = (0..16).map(|i| {
        let store = store.clone();
        async move {
            store
                .append_audit(&record(tenant, i))
                .await
                .expect("append")
        }
    });
    let mut seqs = futures::future::join_all(appends).await;
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=16).collect::<Vec<u64>>());
    let entries = chain_of(b, tenant).await;
    let mut check = ChainCheck::default();
    for entry in &entries {
        check.next(entry).expect("one chain");
    }
    let head = store.audit_head(tenant).await.expect("head");
    assert_eq!(check.finish(head).map(|h| h.seq), Ok(16));
}

async fn audit_pages_read_forward_and_back(b: &Backend) {
    let store = b.store().await;
    let tenant = TenantId::new();
    for i in 0..5 {
        store
            .append_audit(&record(tenant, i))
            .await
            .expect("append");
    }
    let seqs =
        |page: Vec<schema::audit::AuditEntry>| page.iter().map(|e| e.seq).collect::<Vec<_>>();
    let newest = store
        .audit_entries(tenant, SeqWindow::Before(u64::MAX), 2)
        .await
        .expect("page");
    assert_eq!(seqs(newest), [4, 5]);
    let before = store
        .audit_entries(tenant, SeqWindow::Before(4), 2)
        .await
        .expect("page");
    assert_eq!(seqs(before), [2, 3]);
    let after = store
        .audit_entries(tenant, SeqWindow::After(3), 10)
        .await
        .expect("page");
    assert_eq!(seqs(after), [4, 5]);
    let none = store
        .audit_entries(TenantId::new(), SeqWindow::Before(u64::MAX), 10)
        .await
        .expect("page");
    assert!(none.is_empty());
}

async fn every_tenant_is_listed_once_over_pages(b: &Backend) {
    let store = b.store().await;
    let mut ours = Vec::new();
    for i in 0..5 {
        let tenant = Tenant {
            id: TenantId::new(),
            name: format!("listed {i}"),
            created_at: jiff::Timestamp::now(),
        };
        store.create_tenant(&tenant).await.expect("tenant");
        ours.push(tenant.id);
    }
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store.tenants(after, 2).await.expect("page");
        assert!(page.len() <= 2);
        let Some(last) = page.last().map(|t| t.id) else {
            break;
        };
        seen.extend(page.iter().map(|t| t.id));
        after = Some(last);
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "no tenant twice");
    assert!(ours.iter().all(|t| seen.contains(t)), "every tenant listed");
}

async fn run_verify(b: &Backend, tenant: TenantId) -> (Option<i32>, Value) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_conversa"))
        .args(["audit", "verify", "--json", "--tenant", &tenant.to_string()])
        .envs(node_env(&b.config))
        .env("RUST_LOG", "warn")
        .output()
        .await
        .expect("run conversa audit verify");
    let verdicts: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    (output.status.code(), verdicts)
}

async fn audit_verify_names_a_row_altered_in_the_database(b: &Backend) {
    let store = b.store().await;
    let tenant = TenantId::new();
    for i in 0..3 {
        store
            .append_audit(&record(tenant, i))
            .await
            .expect("append");
    }
    let (code, verdicts) = run_verify(b, tenant).await;
    assert_eq!(code, Some(0), "{verdicts}");
    assert_eq!(verdicts[0]["entries"], 3);

    match b.config.backend {
        StorageBackend::Postgres => {
            let pool = sqlx::PgPool::connect(&b.config.postgres.url)
                .await
                .expect("connect");
            // The table refuses changes; someone who can disable its trigger changes a row anyway.
            let refused = sqlx::query("UPDATE audit_log SET body = body WHERE tenant_id = $1")
                .bind(tenant.0)
                .execute(&pool)
                .await;
            assert!(refused.is_err(), "the audit log is append-only");
            let mut tx = pool.begin().await.expect("tx");
            for sql in [
                "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only",
                "UPDATE audit_log SET body = replace(body, 'department:1', 'department:7') \
                 WHERE tenant_id = $1 AND seq = 2",
                "ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only",
            ] {
                sqlx::query(sql)
                    .bind(tenant.0)
                    .execute(&mut *tx)
                    .await
                    .expect(sql);
            }
            tx.commit().await.expect("commit");
        }
        StorageBackend::Scylla => {
            let session = scylla::client::session_builder::SessionBuilder::new()
                .known_nodes(&b.config.scylla.nodes)
                .build()
                .await
                .expect("connect");
            let keyspace = &b.config.scylla.keyspace;
            let select = format!(
                "SELECT body FROM {keyspace}.audit_log WHERE tenant_id = ? AND bucket = 0 AND seq = 2"
            );
            let rows = session
                .query_unpaged(select, (tenant.0,))
                .await
                .expect("select")
                .into_rows_result()
                .expect("rows");
            let (body,): (String,) = rows.first_row().expect("the entry");
            let update = format!(
                "UPDATE {keyspace}.audit_log SET body = ? WHERE tenant_id = ? AND bucket = 0 AND seq = 2"
            );
            session
                .query_unpaged(
                    update,
                    (body.replace("department:1", "department:7"), tenant.0),
                )
                .await
                .expect("update");
        }
        StorageBackend::Embedded => unreachable!("shared backends only"),
    }
    let (code, verdicts) = run_verify(b, tenant).await;
    assert_eq!(code, Some(1), "{verdicts}");
    assert_eq!(verdicts[0]["broken"]["kind"], "altered");
    assert_eq!(verdicts[0]["broken"]["seq"], 2);
}
