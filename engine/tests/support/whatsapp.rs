//! WhatsApp Cloud API webhook payloads in the documented shape, signed like Meta signs them.

use super::{Node, Tenant};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

/// `X-Hub-Signature-256` for `body` under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("hmac key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Unix seconds now, as Meta writes timestamps.
pub fn now() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
        .to_string()
}

/// One inbound text message object, sent now.
pub fn text(from: &str, wamid: &str, body: &str) -> Value {
    json!({"from": from, "id": wamid, "timestamp": now(), "type": "text", "text": {"body": body}})
}

/// One status object.
pub fn status(recipient: &str, wamid: &str, status: &str) -> Value {
    json!({"id": wamid, "status": status, "timestamp": now(), "recipient_id": recipient,
           "conversation": {"id": "c1", "origin": {"type": "service"}},
           "pricing": {"billable": true, "pricing_model": "PMP", "category": "service"}})
}

/// A full webhook with `messages` and `statuses` for one number.
pub fn webhook(phone_number_id: &str, messages: Vec<Value>, statuses: Vec<Value>) -> Value {
    let contacts: Vec<Value> = messages
        .iter()
        .filter_map(|m| m["from"].as_str())
        .map(|from| json!({"profile": {"name": format!("Contact {from}")}, "wa_id": from}))
        .collect();
    let mut value = json!({"messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550000000", "phone_number_id": phone_number_id}});
    if !messages.is_empty() {
        value["contacts"] = json!(contacts);
        value["messages"] = json!(messages);
    }
    if !statuses.is_empty() {
        value["statuses"] = json!(statuses);
    }
    json!({"object": "whatsapp_business_account",
           "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": value}]}]})
}

/// Posts a signed webhook to the tenant's connection; returns status and JSON body.
pub async fn post(node: &Node, tenant: &Tenant, payload: &Value) -> (u16, Value) {
    let body = serde_json::to_vec(payload).expect("json");
    post_raw(
        node,
        &tenant.connection_id,
        "application/json",
        Some(signature(&tenant.app_secret, &body)),
        body,
    )
    .await
}

/// Posts raw bytes with the given content type and signature header.
pub async fn post_raw(
    node: &Node,
    connection_id: &str,
    content_type: &str,
    signature: Option<String>,
    body: Vec<u8>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(node.url(&format!("/webhooks/whatsapp/{connection_id}")))
        .header("content-type", content_type)
        .body(body);
    if let Some(signature) = signature {
        request = request.header("x-hub-signature-256", signature);
    }
    let response = request.send().await.expect("webhook POST");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}
