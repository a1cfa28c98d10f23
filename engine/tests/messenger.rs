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

/// Instagram replies go where Meta documents them: graph.instagram.com/{IG account} for Instagram
/// Login, graph.facebook.com/{page} for an account linked to a page. What Instagram cannot carry is
/// refused before anything is stored; a captioned image goes as the image then its caption; after 24
/// hours a reply needs the Human Agent permission and goes tagged.
#[tokio::test]
async fn instagram_replies_go_where_meta_documents_and_follow_its_window() {
    let graph = FakeGraph::start().await;
    let instagram = FakeGraph::start().await;
    let node = Node::start_with(
        Some(graph.base.clone()),
        vec![(
            "CONVERSA_INSTAGRAM__GRAPH_BASE".into(),
            instagram.base.clone(),
        )],
    )
    .await;
    let tenant = provision(&node, "ig-send").await;
    let ig_login = meta_connection(&node, &tenant, "instagram", "IG1").await;
    let created: Value = reqwest::Client::new()
        .post(node.url(&format!("/api/v1/admin/tenants/{}/connections", tenant.tenant_id)))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"name": "via page", "provider": "instagram", "account_id": "IG2", "page_id": "PAGE9",
                      "verify_token": "v", "app_secret": "secret-IG2", "access_token": "page-token-IG2"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let via_page = Tenant {
        connection_id: created["connection_id"].as_str().unwrap().to_string(),
        phone_number_id: "IG2".into(),
        app_secret: "secret-IG2".into(),
        ..tenant.clone()
    };
    let (mut agent, _) = Agent::connect(&node, &tenant.agent_token, None).await;
    let inbound = |account: &str, sender: &str, mid: &str, at: i64| {
        messaging(
            "instagram",
            account,
            vec![
                json!({"sender": {"id": sender}, "recipient": {"id": account}, "timestamp": at,
                        "message": {"mid": mid, "text": "oi"}}),
            ],
        )
    };
    let conversation_of = |events: &[Value], mid: &str| {
        events
            .iter()
            .find(|e| e["data"]["message"]["provider_message_id"] == mid)
            .map(|e| e["conversation_id"].as_str().unwrap().to_string())
    };
    let reply = |conversation: &str, body: Value| {
        let path = format!("/api/v1/conversations/{conversation}/messages");
        let node = &node;
        let token = tenant.agent_token.clone();
        async move { api_post(node, &token, &path, body).await }
    };

    assert_eq!(
        post_meta(
            &node,
            &ig_login,
            &inbound("IG1", "IGSID1", "ig_in_1", now_ms())
        )
        .await
        .0,
        200
    );
    assert_eq!(
        post_meta(
            &node,
            &via_page,
            &inbound("IG2", "IGSID2", "ig_in_2", now_ms())
        )
        .await
        .0,
        200
    );
    let events = agent
        .events_until(|e| {
            conversation_of(e, "ig_in_1").is_some() && conversation_of(e, "ig_in_2").is_some()
        })
        .await;
    let login_conversation = conversation_of(&events, "ig_in_1").unwrap();
    let page_conversation = conversation_of(&events, "ig_in_2").unwrap();

    assert_eq!(
        reply(&login_conversation, json!({"text": "olá"})).await.0,
        202
    );
    assert_eq!(
        reply(&page_conversation, json!({"text": "olá"})).await.0,
        202
    );
    support::eventually("both replies reached Meta", || async {
        (instagram.requests_for("IG1") == 1 && graph.requests_for("PAGE9") == 1).then_some(())
    })
    .await;
    assert_eq!(
        graph.requests_for("IG1"),
        0,
        "Instagram Login never goes to graph.facebook.com"
    );
    assert_eq!(instagram.requests_for("IG2") + graph.requests_for("IG2"), 0);

    let (status, body) = reply(
        &login_conversation,
        json!({"template": {"name": "hello", "language": "pt_BR"}}),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("invalid_message")),
        "{body}"
    );

    let (status, _) = reply(
        &login_conversation,
        json!({"media": {"kind": "image", "url": "https://x.example/a.jpg", "caption": "Comprovante"}}),
    )
    .await;
    assert_eq!(status, 202);
    support::eventually("the image and its caption went out", || async {
        (instagram.requests_for("IG1") == 3).then_some(())
    })
    .await;
    let parts: Vec<Value> = instagram
        .requests()
        .into_iter()
        .filter(|r| r.phone_number_id == "IG1")
        .map(|r| r.body)
        .collect();
    assert_eq!(parts[1]["message"]["attachment"]["type"], "image");
    assert_eq!(parts[2]["message"]["text"], "Comprovante");

    // A contact who last wrote 30 hours ago: closed without the permission, tagged with it.
    let old = now_ms() - 30 * 3600 * 1000;
    assert_eq!(
        post_meta(&node, &ig_login, &inbound("IG1", "IGSID3", "ig_in_3", old))
            .await
            .0,
        200
    );
    let events = agent
        .events_until(|e| conversation_of(e, "ig_in_3").is_some())
        .await;
    let late = conversation_of(&events, "ig_in_3").unwrap();
    let (status, body) = reply(&late, json!({"text": "desculpe a demora"})).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["code"], "customer_service_window_closed");
    assert!(
        body["detail"].as_str().unwrap().contains("HUMAN_AGENT"),
        "{body}"
    );
    let patched = reqwest::Client::new()
        .patch(node.url(&format!(
            "/api/v1/admin/tenants/{}/connections/{}",
            tenant.tenant_id, ig_login.connection_id
        )))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"human_agent_tag": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    assert_eq!(
        reply(&late, json!({"text": "desculpe a demora"})).await.0,
        202
    );
    support::eventually("the tagged reply went out", || async {
        (instagram.requests_for("IG1") == 4).then_some(())
    })
    .await;
    let tagged = instagram.requests().last().unwrap().body.clone();
    assert_eq!(tagged["messaging_type"], "MESSAGE_TAG");
    assert_eq!(tagged["tag"], "HUMAN_AGENT");
}
