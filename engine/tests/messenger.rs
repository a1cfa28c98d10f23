//! Messenger pages and Instagram accounts through `/webhooks/meta/{connection}`: signed messaging
//! webhooks become conversations, replies go out through the Send API (a local fake), delivery and read
//! receipts move them forward, echoes of messages sent elsewhere are kept, and payloads of the wrong
//! kind or route are refused.

mod support;

use serde_json::{Value, json};
use support::fake_graph::FakeGraph;
use support::{ADMIN_TOKEN, Agent, Node, Tenant, api_get, api_post, provision, whatsapp};

/// Adds a Messenger or Instagram connection to `tenant`; returns it as a `Tenant` aimed at it.
async fn meta_connection(node: &Node, tenant: &Tenant, provider: &str, account: &str) -> Tenant {
    let created: Value = reqwest::Client::new()
        .post(node.url(&format!("/api/v1/admin/tenants/{}/connections", tenant.tenant_id)))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"name": provider, "provider": provider, "account_id": account, "verify_token": "v",
                      "app_secret": format!("secret-{account}"), "access_token": format!("page-token-{account}")}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        created["webhook_path"],
        format!(
            "/webhooks/meta/{}",
            created["connection_id"].as_str().unwrap()
        )
    );
    Tenant {
        connection_id: created["connection_id"].as_str().unwrap().to_string(),
        phone_number_id: account.to_string(),
        app_secret: format!("secret-{account}"),
        ..tenant.clone()
    }
}

async fn post_meta(node: &Node, connection: &Tenant, payload: &Value) -> (u16, Value) {
    let body = serde_json::to_vec(payload).unwrap();
    let response = reqwest::Client::new()
        .post(node.url(&format!("/webhooks/meta/{}", connection.connection_id)))
        .header("content-type", "application/json")
        .header(
            "x-hub-signature-256",
            whatsapp::signature(&connection.app_secret, &body),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn messaging(object: &str, account: &str, items: Vec<Value>) -> Value {
    json!({"object": object, "entry": [{"id": account, "time": now_ms(), "messaging": items}]})
}

#[tokio::test]
async fn messenger_conversation_round_trip_with_receipts_and_echoes() {
    let graph = FakeGraph::start().await;
    let node = Node::start_with(Some(graph.base.clone()), Vec::new()).await;
    let tenant = provision(&node, "messenger").await;
    let page = meta_connection(&node, &tenant, "messenger", "PAGE1").await;
    let (mut agent, _) = Agent::connect(&node, &tenant.agent_token, None).await;

    let inbound = json!({"sender": {"id": "PSID7"}, "recipient": {"id": "PAGE1"}, "timestamp": now_ms(),
                         "message": {"mid": "m_in_1", "text": "Meu pedido chegou quebrado"}});
    let (status, body) = post_meta(
        &node,
        &page,
        &messaging("page", "PAGE1", vec![inbound.clone()]),
    )
    .await;
    assert_eq!(
        (status, body["messages_stored"].as_u64()),
        (200, Some(1)),
        "{body}"
    );
    assert_eq!(
        post_meta(&node, &page, &messaging("page", "PAGE1", vec![inbound]))
            .await
            .1["duplicates"],
        1
    );
    let events = agent.events_until(|e| e.len() >= 2).await;
    let conversation = events[1]["conversation_id"].as_str().unwrap().to_string();
    assert_eq!(
        events[1]["data"]["message"]["content"]["body"],
        "Meu pedido chegou quebrado"
    );

    let (status, sent) = api_post(
        &node,
        &tenant.agent_token,
        &format!("/api/v1/conversations/{conversation}/messages"),
        json!({"text": "Sinto muito! Vamos trocar."}),
    )
    .await;
    assert_eq!(status, 202, "{sent}");
    agent
        .events_until(|e| e.iter().any(|e| e["data"]["status"] == "accepted"))
        .await;
    let request = graph.requests().last().unwrap().clone();
    assert_eq!(request.phone_number_id, "PAGE1");
    assert_eq!(request.authorization, "Bearer page-token-PAGE1");
    assert_eq!(
        request.body,
        json!({"recipient": {"id": "PSID7"}, "messaging_type": "RESPONSE",
               "message": {"text": "Sinto muito! Vamos trocar.", "metadata": sent["id"]}})
    );
    let mid = request.wamid.clone();

    // Delivery names the mid; Messenger's read receipt names a time; an echo from Meta's inbox is kept.
    let later = now_ms() + 1_000;
    let items = vec![
        json!({"sender": {"id": "PSID7"}, "recipient": {"id": "PAGE1"}, "timestamp": later, "delivery": {"mids": [mid], "watermark": later}}),
        json!({"sender": {"id": "PSID7"}, "recipient": {"id": "PAGE1"}, "timestamp": later, "read": {"watermark": later}}),
        json!({"sender": {"id": "PAGE1"}, "recipient": {"id": "PSID7"}, "timestamp": later,
               "message": {"mid": "m_echo_9", "is_echo": true, "text": "Respondido pelo celular"}}),
    ];
    let (status, body) = post_meta(&node, &page, &messaging("page", "PAGE1", items)).await;
    assert_eq!(status, 200, "{body}");
    let messages = support::all_messages(&node, &tenant.agent_token, &conversation).await;
    assert_eq!(messages.len(), 3);
    assert_eq!(messages[1]["status"], "read", "{:?}", messages[1]);
    assert_eq!(messages[2]["direction"], "outbound");
    assert_eq!(messages[2]["status"], "sent");
    assert_eq!(messages[2]["content"]["body"], "Respondido pelo celular");
}

#[tokio::test]
async fn instagram_webhooks_need_an_instagram_connection_and_the_meta_route() {
    let node = Node::start().await;
    let tenant = provision(&node, "instagram").await;
    let ig = meta_connection(&node, &tenant, "instagram", "IG1").await;
    let item = json!({"sender": {"id": "IGSID"}, "recipient": {"id": "IG1"}, "timestamp": now_ms(),
                      "message": {"mid": "ig_m_1", "attachments": [{"type": "image", "payload": {"url": "https://cdn.example/x.jpg"}}]}});
    let (status, body) = post_meta(
        &node,
        &ig,
        &messaging("instagram", "IG1", vec![item.clone()]),
    )
    .await;
    assert_eq!(
        (status, body["messages_stored"].as_u64()),
        (200, Some(1)),
        "{body}"
    );
    let (status, body) = post_meta(&node, &ig, &messaging("page", "IG1", vec![item.clone()])).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("malformed_payload")),
        "a page payload on an Instagram connection: {body}"
    );
    let (status, body) = post_meta(
        &node,
        &ig,
        &messaging("instagram", "OTHER", vec![item.clone()]),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("unknown_account_id")),
        "{body}"
    );
    let raw = serde_json::to_vec(&messaging("instagram", "IG1", vec![item])).unwrap();
    let signature = Some(whatsapp::signature(&ig.app_secret, &raw));
    let (status, _) =
        whatsapp::post_raw(&node, &ig.connection_id, "application/json", signature, raw).await;
    assert_eq!(
        status, 404,
        "an Instagram connection is not served on the WhatsApp route"
    );
    let (_, inbox) = api_get(&node, &tenant.agent_token, "/api/v1/conversations").await;
    assert_eq!(inbox["items"][0]["last_message_preview"], "[image]");
}
