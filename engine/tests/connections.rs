//! Connection administration: pausing refuses webhooks (409, nothing stored) and replies until resumed;
//! removing refuses webhooks (404) and frees the number; rotated secrets apply to the next webhook;
//! no listing ever shows a secret. Tenant admins do the same through `/api/v1/connections`.

mod support;

use serde_json::{Value, json};
use support::{ADMIN_TOKEN, Node, Tenant, api_get, api_post, provision, whatsapp};

async fn admin(
    node: &Node,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .request(method, node.url(path))
        .bearer_auth(ADMIN_TOKEN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("admin request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn connection_path(tenant: &Tenant) -> String {
    format!(
        "/api/v1/admin/tenants/{}/connections/{}",
        tenant.tenant_id, tenant.connection_id
    )
}

async fn inbound(node: &Node, tenant: &Tenant, wamid: &str) -> (u16, Value) {
    let payload = whatsapp::webhook(
        &tenant.phone_number_id,
        vec![whatsapp::text("5511933334444", wamid, "oi")],
        vec![],
    );
    whatsapp::post(node, tenant, &payload).await
}

#[tokio::test]
async fn paused_connection_refuses_webhooks_and_replies_until_resumed() {
    let node = Node::start().await;
    let tenant = provision(&node, "pause").await;
    assert_eq!(inbound(&node, &tenant, "wamid.P1").await.0, 200);
    let (_, inbox) = api_get(&node, &tenant.agent_token, "/api/v1/conversations").await;
    let conversation = inbox["items"][0]["id"].as_str().unwrap().to_string();

    let (status, view) = admin(
        &node,
        reqwest::Method::PATCH,
        &connection_path(&tenant),
        Some(json!({"status": "paused"})),
    )
    .await;
    assert_eq!(
        (status, view["status"].as_str()),
        (200, Some("paused")),
        "{view}"
    );
    let (status, body) = inbound(&node, &tenant, "wamid.P2").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("connection_paused")),
        "{body}"
    );
    let reply_path = format!("/api/v1/conversations/{conversation}/messages");
    let (status, body) = api_post(
        &node,
        &tenant.agent_token,
        &reply_path,
        json!({"text": "oi"}),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("connection_paused")),
        "{body}"
    );
    assert_eq!(
        support::all_messages(&node, &tenant.agent_token, &conversation)
            .await
            .len(),
        1,
        "nothing stored while paused"
    );

    let (status, _) = admin(
        &node,
        reqwest::Method::PATCH,
        &connection_path(&tenant),
        Some(json!({"status": "connected"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        inbound(&node, &tenant, "wamid.P2").await.0,
        200,
        "the provider's retry lands after resuming"
    );
    assert_eq!(
        support::all_messages(&node, &tenant.agent_token, &conversation)
            .await
            .len(),
        2
    );
}

#[tokio::test]
async fn removed_connection_refuses_webhooks_and_frees_its_number() {
    let node = Node::start().await;
    let tenant = provision(&node, "remove").await;
    assert_eq!(inbound(&node, &tenant, "wamid.R1").await.0, 200);
    let (status, _) = admin(
        &node,
        reqwest::Method::DELETE,
        &connection_path(&tenant),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, body) = inbound(&node, &tenant, "wamid.R2").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("unknown_connection")),
        "{body}"
    );
    let (_, connections) = api_get(&node, &tenant.agent_token, "/api/v1/connections").await;
    assert_eq!(connections.as_array().map(Vec::len), Some(0));
    assert_eq!(
        support::all_conversations(&node, &tenant.agent_token)
            .await
            .len(),
        1,
        "history stays"
    );
    let (status, _) = admin(
        &node,
        reqwest::Method::POST,
        &format!("/api/v1/admin/tenants/{}/connections", tenant.tenant_id),
        Some(
            json!({"name": "again", "phone_number_id": tenant.phone_number_id, "verify_token": "v",
                    "app_secret": "s", "access_token": "t"}),
        ),
    )
    .await;
    assert_eq!(status, 201, "the number can be connected again");
}

#[tokio::test]
async fn rotated_app_secret_applies_to_the_next_webhook_and_no_listing_shows_secrets() {
    let node = Node::start().await;
    let tenant = provision(&node, "rotate").await;
    let (status, _) = admin(
        &node,
        reqwest::Method::PATCH,
        &connection_path(&tenant),
        Some(json!({"app_secret": "rotated-secret-value", "access_token": "rotated-token-value"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        inbound(&node, &tenant, "wamid.K1").await.0,
        401,
        "the old secret no longer signs"
    );
    let rotated = Tenant {
        app_secret: "rotated-secret-value".into(),
        ..tenant.clone()
    };
    assert_eq!(inbound(&node, &rotated, "wamid.K1").await.0, 200);

    let (_, agent_view) = api_get(&node, &tenant.agent_token, "/api/v1/connections").await;
    let (_, admin_view) = admin(
        &node,
        reqwest::Method::GET,
        &format!("/api/v1/admin/tenants/{}/connections", tenant.tenant_id),
        None,
    )
    .await;
    assert_eq!(agent_view[0]["status"], "connected");
    for view in [agent_view.to_string(), admin_view.to_string()] {
        for secret in ["rotated-secret-value", "rotated-token-value", "verify-me"] {
            assert!(!view.contains(secret), "a listing shows {secret}: {view}");
        }
    }
}

#[tokio::test]
async fn a_tenants_connection_cannot_be_changed_through_another_tenant() {
    let node = Node::start().await;
    let a = provision(&node, "owner").await;
    let b = provision(&node, "other").await;
    let path = format!(
        "/api/v1/admin/tenants/{}/connections/{}",
        b.tenant_id, a.connection_id
    );
    let (status, body) = admin(
        &node,
        reqwest::Method::PATCH,
        &path,
        Some(json!({"status": "paused"})),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("connection_not_found")),
        "{body}"
    );
    assert_eq!(
        inbound(&node, &a, "wamid.T1").await.0,
        200,
        "still connected"
    );
}

#[tokio::test]
async fn agents_see_connection_changes_live_and_other_tenants_do_not() {
    let node = Node::start().await;
    let tenant = provision(&node, "live-status").await;
    let other = provision(&node, "live-status-other").await;
    let (mut agent, _) = support::Agent::connect(&node, &tenant.agent_token, None).await;
    let (mut outsider, _) = support::Agent::connect(&node, &other.agent_token, None).await;
    let (status, _) = admin(
        &node,
        reqwest::Method::PATCH,
        &connection_path(&tenant),
        Some(json!({"status": "paused"})),
    )
    .await;
    assert_eq!(status, 200);
    let frame = agent.next_frame().await.expect("a frame");
    assert_eq!(frame["type"], "connection_updated", "{frame}");
    assert_eq!(frame["connection"]["status"], "paused");
    assert_eq!(frame["connection"]["id"], tenant.connection_id.as_str());
    assert!(
        frame.to_string().find("secret").is_none(),
        "no secret in the notice: {frame}"
    );
    let (status, _) = admin(
        &node,
        reqwest::Method::DELETE,
        &connection_path(&tenant),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let frame = agent.next_frame().await.expect("a frame");
    assert_eq!(frame["type"], "connection_removed");
    assert!(
        outsider
            .receives_nothing_within(std::time::Duration::from_millis(300))
            .await
    );
}

#[tokio::test]
async fn a_tenant_admin_configures_connections_and_other_roles_may_not() {
    let node = Node::start().await;
    let tenant = provision(&node, "tenant-connections").await;
    let (_, admin_token) = support::add_agent(&node, &tenant, "Ada", "admin").await;
    let (_, supervisor) = support::add_agent(&node, &tenant, "Sol", "supervisor").await;
    let request = |token: &str, method: reqwest::Method, path: &str, body: Option<Value>| {
        let (node, token, path) = (&node, token.to_string(), path.to_string());
        async move { support::api_request(node, &token, method, &path, body).await }
    };
    let new = json!({"name": "vendas", "phone_number_id": "pn-tenant-made", "verify_token": "v",
                     "app_secret": "s", "access_token": "t"});
    for token in [&tenant.agent_token, &supervisor] {
        let (status, body) = request(
            token,
            reqwest::Method::POST,
            "/api/v1/connections",
            Some(new.clone()),
        )
        .await;
        assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")));
    }
    // A self-hosted server's URL is the operator's to give: the node would call wherever it points.
    let evolution = json!({"name": "evo", "provider": "evolution", "server_url": "http://169.254.169.254",
                           "instance": "x", "api_key": "k"});
    let (status, body) = request(
        &admin_token,
        reqwest::Method::POST,
        "/api/v1/connections",
        Some(evolution),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("operator_only")),
        "{body}"
    );
    let (status, created) = request(
        &admin_token,
        reqwest::Method::POST,
        "/api/v1/connections",
        Some(new),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["connection_id"].as_str().expect("id").to_string();
    let path = format!("/api/v1/connections/{id}");
    let (status, _) = request(
        &supervisor,
        reqwest::Method::PATCH,
        &path,
        Some(json!({"status": "paused"})),
    )
    .await;
    assert_eq!(status, 403);
    let (status, view) = request(
        &admin_token,
        reqwest::Method::PATCH,
        &path,
        Some(json!({"status": "paused"})),
    )
    .await;
    assert_eq!(
        (status, view["status"].as_str()),
        (200, Some("paused")),
        "{view}"
    );
    assert!(
        !view.to_string().contains("\"t\""),
        "no secret is served back: {view}"
    );
    // Another tenant's connection is not reachable through these routes.
    let other = provision(&node, "tenant-connections-other").await;
    let foreign = format!("/api/v1/connections/{}", other.connection_id);
    let (status, _) = request(&admin_token, reqwest::Method::DELETE, &foreign, None).await;
    assert_eq!(status, 404);
    let paused = Some(json!({"status": "paused"}));
    let (status, _) = request(&admin_token, reqwest::Method::PATCH, &foreign, paused).await;
    assert_eq!(status, 404);
    let (status, _) = request(&admin_token, reqwest::Method::DELETE, &path, None).await;
    assert_eq!(status, 204);
    let (_, listed) = api_get(&node, &admin_token, "/api/v1/connections").await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    // Each change is audited as the admin who made it.
    let (_, audit) = api_get(
        &node,
        &admin_token,
        &format!("/api/v1/audit?target=connection:{id}"),
    )
    .await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(actions.len(), 3, "{audit}");
    for action in ["connection.created", "config.changed", "connection.removed"] {
        assert!(actions.contains(&action), "{action}: {audit}");
    }
}
