//! The audit log end to end on the real binary (issue 15): what people and the operator do is
//! appended to the tenant's hash-chained log; auditors and admins read it with filters, other roles
//! and other tenants cannot; and `conversa audit verify`, run on the stopped node's embedded store,
//! passes, then names the entry someone altered on disk.

mod support;

use serde_json::{Value, json};
use std::process::Output;
use support::{
    ADMIN_TOKEN, Node, add_agent, api_get, api_post, api_request, customer_writes, eventually,
    provision,
};

async fn set_credentials(node: &Node, tenant: &str, agent: &str, email: &str) {
    let status = reqwest::Client::new()
        .put(node.url(&format!(
            "/api/v1/admin/tenants/{tenant}/agents/{agent}/credentials"
        )))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"email": email, "password": "correct horse battery"}))
        .send()
        .await
        .expect("request")
        .status()
        .as_u16();
    assert_eq!(status, 204);
}

async fn sign_in(node: &Node, email: &str, password: &str) -> u16 {
    reqwest::Client::new()
        .post(node.url("/api/v1/auth/sign_in"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("request")
        .status()
        .as_u16()
}

fn actions(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["action"].as_str().expect("action").to_string())
        .collect()
}

async fn verify(node: &Node) -> (Output, Value) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_conversa"))
        .args(["audit", "verify", "--json", "--data-dir"])
        .arg(&node.data_dir)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .expect("run conversa audit verify");
    let verdicts = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    (output, verdicts)
}

fn verdict<'a>(verdicts: &'a Value, tenant: &str) -> &'a Value {
    verdicts
        .as_array()
        .expect("verdicts")
        .iter()
        .find(|v| v["tenant_id"] == tenant)
        .expect("a verdict for the tenant")
}

#[tokio::test]
async fn actions_are_audited_read_by_auditors_only_and_a_tampered_entry_fails_verify() {
    let mut node = Node::start().await;
    let tenant = provision(&node, "audited").await;
    let other = provision(&node, "other").await;
    let (admin_id, admin) = add_agent(&node, &tenant, "Ana", "admin").await;
    let (_, auditor) = add_agent(&node, &tenant, "Audi", "auditor").await;
    let (_, other_admin) = add_agent(&node, &other, "Olga", "admin").await;

    let email = format!("ana-{}@example.com", uuid::Uuid::now_v7().simple());
    set_credentials(&node, &tenant.tenant_id, &admin_id, &email).await;
    assert_eq!(sign_in(&node, &email, "wrong password!").await, 401);
    // A failure is recorded off the answer's path (it must not answer slower than an unknown email).
    eventually("the failed sign-in is recorded", || async {
        let (_, log) = api_get(&node, &auditor, "/api/v1/audit?action=auth.sign_in_failed").await;
        (!actions(&log).is_empty()).then_some(())
    })
    .await;
    assert_eq!(sign_in(&node, &email, "correct horse battery").await, 200);
    let (status, _) = api_request(
        &node,
        &admin,
        reqwest::Method::PUT,
        "/api/v1/roles/bot",
        Some(json!({"permissions": ["reply"]})),
    )
    .await;
    assert_eq!(status, 200);
    customer_writes(&node, &tenant, "5511977776666", "wamid.AUD1", "Oi").await;
    let (_, inbox) = api_get(&node, &admin, "/api/v1/conversations").await;
    let conversation = inbox["items"][0]["id"].as_str().expect("id").to_string();
    let (status, _) = api_post(
        &node,
        &admin,
        &format!("/api/v1/conversations/{conversation}/assignments"),
        json!({"assignee_id": admin_id}),
    )
    .await;
    assert_eq!(status, 200);

    // Newest first, everything the tenant's people and the operator did, chained entry to entry.
    let (status, log) = api_get(&node, &auditor, "/api/v1/audit").await;
    assert_eq!(status, 200, "{log}");
    assert_eq!(
        actions(&log),
        [
            "ticket.changed",
            "role.permissions_changed",
            "auth.sign_in",
            "auth.sign_in_failed",
            "auth.credentials_set",
            "user.created",
            "user.created",
            "user.created",
            "connection.created",
        ]
    );
    let items = log["items"].as_array().expect("items");
    for pair in items.windows(2) {
        assert_eq!(
            pair[0]["prev_hash"], pair[1]["hash"],
            "each entry links to the one before"
        );
        assert_eq!(
            pair[0]["seq"].as_u64(),
            pair[1]["seq"].as_u64().map(|s| s + 1)
        );
    }
    assert_eq!(items[0]["target"], format!("conversation:{conversation}"));
    assert_eq!(items[0]["details"]["change"], "assign");
    assert_eq!(items[0]["actor"]["agent_id"], admin_id.as_str());
    assert_eq!(items[1]["target"], "role:bot");
    assert_eq!(items[1]["details"]["permissions"], "reply");
    assert!(
        !log.to_string().contains("Oi") && !log.to_string().contains("correct horse"),
        "no message text or password in the log"
    );

    // Filters, and pages that continue where the last one stopped.
    let (_, signed) = api_get(&node, &auditor, "/api/v1/audit?action=auth.sign_in").await;
    assert_eq!(actions(&signed), ["auth.sign_in"]);
    let (_, by_admin) = api_get(&node, &auditor, &format!("/api/v1/audit?actor={admin_id}")).await;
    assert_eq!(
        actions(&by_admin),
        ["ticket.changed", "role.permissions_changed", "auth.sign_in"]
    );
    let (_, users) = api_get(&node, &auditor, "/api/v1/audit?target=user:&limit=2").await;
    assert_eq!(
        actions(&users),
        ["auth.sign_in_failed", "auth.credentials_set"]
    );
    let cursor = users["next_cursor"].as_str().expect("more pages");
    let (_, rest) = api_get(
        &node,
        &auditor,
        &format!("/api/v1/audit?target=user:&limit=2&cursor={cursor}"),
    )
    .await;
    assert_eq!(actions(&rest), ["user.created", "user.created"]);
    let (status, bad) = api_get(&node, &auditor, "/api/v1/audit?action=nope").await;
    assert_eq!(
        (status, bad["code"].as_str()),
        (400, Some("invalid_action"))
    );

    // Agents may not read it; another tenant's admin reads only its own tenant's log.
    let (status, _) = api_get(&node, &tenant.agent_token, "/api/v1/audit").await;
    assert_eq!(status, 403);
    let (status, theirs) = api_get(&node, &other_admin, "/api/v1/audit").await;
    assert_eq!(status, 200);
    assert_eq!(
        actions(&theirs),
        ["user.created", "user.created", "connection.created"]
    );

    // Offline verification of every tenant's chain on the stopped node's store.
    assert!(node.terminate().await, "the node stops cleanly");
    let (output, verdicts) = verify(&node).await;
    assert!(output.status.success(), "{verdicts}");
    let ours = verdict(&verdicts, &tenant.tenant_id);
    assert_eq!(ours["entries"], 9);
    assert_eq!(ours["head_hash"], items[0]["hash"]);

    // Someone with the disk changes who the third entry was about.
    tamper_embedded_entry(&node, &tenant.tenant_id, 3);
    let (output, verdicts) = verify(&node).await;
    assert_eq!(output.status.code(), Some(1), "{verdicts}");
    let ours = verdict(&verdicts, &tenant.tenant_id);
    assert_eq!(ours["broken"], json!({"kind": "altered", "seq": 3}));
    assert!(verdict(&verdicts, &other.tenant_id)["broken"].is_null());
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_conversa"))
        .args(["audit", "verify", "--data-dir"])
        .arg(&node.data_dir)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .expect("run verify");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("BROKEN: entry 3 was altered"), "{text}");
}

/// Rewrites one stored audit entry's target straight in the embedded store's files.
fn tamper_embedded_entry(node: &Node, tenant: &str, seq: u64) {
    let db = fjall::Database::builder(node.data_dir.join("fjall"))
        .open()
        .expect("open the node's store");
    let audit = db
        .keyspace("audit", fjall::KeyspaceCreateOptions::default)
        .expect("audit keyspace");
    let tenant: uuid::Uuid = tenant.parse().expect("tenant id");
    let mut key = tenant.as_bytes().to_vec();
    key.extend_from_slice(&seq.to_be_bytes());
    let stored = audit.get(&key).expect("read").expect("the entry exists");
    let mut entry: Value = serde_json::from_slice(&stored).expect("entry json");
    entry["record"]["target"] = json!("user:someone-else");
    audit
        .insert(key, serde_json::to_vec(&entry).expect("json"))
        .expect("write");
    db.persist(fjall::PersistMode::SyncAll).expect("persist");
}
