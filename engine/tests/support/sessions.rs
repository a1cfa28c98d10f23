//! Session providers' connections (Evolution API, Z-API) in end-to-end tests: created through the
//! operator's API, with an admin user to watch them, and their webhooks posted as the gateways do.

use super::{ADMIN_TOKEN, Node};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A connection of a session provider, created through the admin API.
pub struct Session {
    pub connection_id: String,
    pub webhook_path: String,
}

pub async fn admin_post(node: &Node, path: &str, body: Value) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(node.url(path))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .expect("admin POST");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

pub async fn add_session(node: &Node, tenant_id: &str, body: Value) -> Session {
    let (status, created) = admin_post(
        node,
        &format!("/api/v1/admin/tenants/{tenant_id}/connections"),
        body,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    Session {
        connection_id: created["connection_id"].as_str().expect("id").to_string(),
        webhook_path: created["webhook_path"].as_str().expect("path").to_string(),
    }
}

pub async fn admin_agent(node: &Node, tenant_id: &str) -> String {
    let (_, agent) = admin_post(
        node,
        &format!("/api/v1/admin/tenants/{tenant_id}/agents"),
        json!({"name": "admin", "role": "admin"}),
    )
    .await;
    agent["token"].as_str().expect("token").to_string()
}

pub async fn post_webhook(node: &Node, path: &str, body: &Value) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(node.url(path))
        .json(body)
        .send()
        .await
        .expect("webhook POST");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

pub fn evolution(event: &str, data: Value) -> Value {
    json!({"event": event, "instance": "acme-main", "data": data,
           "destination": "https://example.com", "date_time": "2024-06-06T12:51:37.412Z",
           "server_url": "https://evo.example.com", "apikey": null})
}
