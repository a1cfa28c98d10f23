//! End to end on the real binary (issue 15): admin security. With the tenant's `admin_security`
//! flag on, changes to the tenant's setup take a signed-in session: API keys and agent tokens are
//! refused (403 `session_required`). Turning it on or off takes `manage_admin_security`, which a
//! tenant admin may give another role, and that role changes no other flag.

mod support;

use serde_json::{Value, json};
use support::{ADMIN_TOKEN, Node, add_agent, api_request, provision};

async fn put(node: &Node, token: &str, path: &str, body: Value) -> (u16, Value) {
    api_request(node, token, reqwest::Method::PUT, path, Some(body)).await
}

#[tokio::test]
async fn with_admin_security_on_setup_changes_take_a_signed_in_session() {
    let node = Node::start().await;
    let tenant = provision(&node, "admin-security").await;
    let (admin_id, admin_token) = add_agent(&node, &tenant, "Ada", "admin").await;
    let (_, supervisor) = add_agent(&node, &tenant, "Sol", "supervisor").await;
    let (status, body) = put(
        &node,
        &supervisor,
        "/api/v1/features",
        json!({"admin_security": true}),
    )
    .await;
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")));

    // The admin lets supervisors manage admin security; they turn it on and change nothing else.
    let (_, roles) = support::api_get(&node, &admin_token, "/api/v1/roles").await;
    let mut supervisors = roles["supervisor"].as_array().cloned().expect("supervisor");
    supervisors.push(json!("manage_admin_security"));
    let (status, body) = put(
        &node,
        &admin_token,
        "/api/v1/roles/supervisor",
        json!({"permissions": supervisors}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = put(
        &node,
        &supervisor,
        "/api/v1/features",
        json!({"groups": true}),
    )
    .await;
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")));
    let (status, flags) = put(
        &node,
        &supervisor,
        "/api/v1/features",
        json!({"admin_security": true}),
    )
    .await;
    assert_eq!(
        (status, flags["admin_security"].as_bool()),
        (200, Some(true)),
        "{flags}"
    );

    // Now an agent token (and an API key) may not change the setup; a signed-in session may.
    let bot_roles = json!({"permissions": roles["bot"].clone()});
    let (status, body) = put(&node, &admin_token, "/api/v1/roles/bot", bot_roles.clone()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("session_required")),
        "{body}"
    );
    let status = reqwest::Client::new()
        .put(node.url(&format!(
            "/api/v1/admin/tenants/{}/agents/{admin_id}/credentials",
            tenant.tenant_id
        )))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"email": "ada@example.com", "password": "correct horse battery"}))
        .send()
        .await
        .expect("credentials")
        .status();
    assert!(status.is_success(), "{status}");
    let signed: Value = reqwest::Client::new()
        .post(node.url("/api/v1/auth/sign_in"))
        .json(&json!({"email": "ada@example.com", "password": "correct horse battery"}))
        .send()
        .await
        .expect("sign in")
        .json()
        .await
        .expect("json");
    let session = signed["access_token"]
        .as_str()
        .expect("access token")
        .to_string();
    let (status, body) = put(&node, &session, "/api/v1/roles/bot", bot_roles.clone()).await;
    assert_eq!(status, 200, "{body}");
    let (status, key) = api_request(
        &node,
        &session,
        reqwest::Method::POST,
        "/api/v1/auth/api_keys",
        Some(json!({"label": "script"})),
    )
    .await;
    assert_eq!(status, 201, "{key}");
    let key = key["token"].as_str().expect("key").to_string();
    let (status, body) = put(&node, &key, "/api/v1/features", json!({"groups": true})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("session_required"))
    );
    // Reading and working stay open to every credential.
    let (status, _) = support::api_get(&node, &key, "/api/v1/conversations").await;
    assert_eq!(status, 200);
    // Off again, from the session: the agent token works again.
    let (status, _) = put(
        &node,
        &session,
        "/api/v1/features",
        json!({"admin_security": false}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = put(&node, &admin_token, "/api/v1/roles/bot", bot_roles).await;
    assert_eq!(status, 200, "{body}");
}
