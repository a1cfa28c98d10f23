//! WhatsApp groups through Evolution API on the real binary (issue 15): behind the tenant's `groups`
//! flag (off by default: their messages are acknowledged and not stored), a group is a conversation of
//! its own, apart from its members' one-to-one conversations, and each message shows the member who
//! wrote it. A group's ticket is transferred only with the `transfer_groups` flag.

mod support;

use serde_json::{Value, json};
use support::fake_wweb::FakeWweb;
use support::{ADMIN_TOKEN, Node, add_agent, all_messages, api_get, api_request, provision};

async fn post(node: &Node, path: &str, body: &Value, bearer: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::Client::new().post(node.url(path)).json(body);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("POST");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn upsert(id: &str, remote: &str, participant: Option<&str>, name: &str, text: &str) -> Value {
    let mut key = json!({"remoteJid": remote, "fromMe": false, "id": id});
    if let Some(participant) = participant {
        key["participant"] = json!(participant);
    }
    json!({"event": "messages.upsert", "instance": "grupos", "data": {
        "key": key, "pushName": name, "message": {"conversation": text},
        "messageType": "conversation", "messageTimestamp": 1717689097}})
}

#[tokio::test]
async fn group_messages_wait_for_the_flag_then_form_their_own_conversation_with_each_sender() {
    let fake = FakeWweb::start().await;
    let node = Node::start().await;
    let tenant = provision(&node, "grupos").await;
    let (_, admin) = add_agent(&node, &tenant, "Ana", "admin").await;
    let (status, created) = post(
        &node,
        &format!("/api/v1/admin/tenants/{}/connections", tenant.tenant_id),
        &json!({"name": "Grupos", "provider": "evolution", "server_url": fake.base,
                "instance": "grupos", "api_key": "evo-key"}),
        Some(ADMIN_TOKEN),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let webhook = created["webhook_path"].as_str().expect("path").to_string();
    let group = "120363025246125888@g.us";

    // Off by default: acknowledged, not stored.
    let first = upsert(
        "G0",
        group,
        Some("5511977776666@s.whatsapp.net"),
        "Ana",
        "cedo demais",
    );
    let (status, answer) = post(&node, &webhook, &first, None).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (
            answer["messages_stored"].as_u64(),
            answer["ignored_changes"].as_u64()
        ),
        (Some(0), Some(1))
    );

    let (status, _) = api_request(
        &node,
        &admin,
        reqwest::Method::PUT,
        "/api/v1/features",
        Some(json!({"groups": true})),
    )
    .await;
    assert_eq!(status, 200);
    for (id, participant, name, text) in [
        (
            "G1",
            "5511977776666@s.whatsapp.net",
            "Ana",
            "Bom dia, grupo",
        ),
        ("G2", "5511966665555@s.whatsapp.net", "Bia", "Bom dia!"),
    ] {
        let (status, answer) = post(
            &node,
            &webhook,
            &upsert(id, group, Some(participant), name, text),
            None,
        )
        .await;
        assert_eq!(
            (status, answer["messages_stored"].as_u64()),
            (200, Some(1)),
            "{answer}"
        );
    }
    // Ana also writes to the business alone: that is another conversation.
    let alone = upsert(
        "P1",
        "5511977776666@s.whatsapp.net",
        None,
        "Ana",
        "Oi, só eu",
    );
    let (status, _) = post(&node, &webhook, &alone, None).await;
    assert_eq!(status, 200);

    let (_, inbox) = api_get(&node, &admin, "/api/v1/conversations").await;
    let items = inbox["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "{inbox}");
    let group_conversation = items
        .iter()
        .find(|c| c["contact"]["address"] == group)
        .expect("the group's conversation");
    assert!(
        group_conversation["contact"]["name"].is_null(),
        "a member's name is not the group's"
    );
    let id = group_conversation["id"].as_str().expect("id");
    let messages = all_messages(&node, &admin, id).await;
    let senders: Vec<(&str, &str, &str)> = messages
        .iter()
        .map(|m| {
            (
                m["sender"]["address"].as_str().unwrap_or(""),
                m["sender"]["name"].as_str().unwrap_or(""),
                m["content"]["body"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        senders,
        [
            ("5511977776666", "Ana", "Bom dia, grupo"),
            ("5511966665555", "Bia", "Bom dia!")
        ]
    );
    let alone = items
        .iter()
        .find(|c| c["contact"]["address"] == "5511977776666")
        .expect("Ana's own conversation");
    let messages = all_messages(&node, &admin, alone["id"].as_str().expect("id")).await;
    assert!(
        messages[0]["sender"].is_null(),
        "a one-to-one message has no separate sender"
    );

    // A group's ticket is transferred only once the tenant allows it.
    let (status, body) = api_request(
        &node,
        &admin,
        reqwest::Method::POST,
        "/api/v1/departments",
        Some(json!({"key": "vendas", "name": "Vendas"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let transfer = format!("/api/v1/conversations/{id}/transfer");
    let to_sales = json!({"team_id": "vendas"});
    let (status, body) = api_request(
        &node,
        &admin,
        reqwest::Method::POST,
        &transfer,
        Some(to_sales.clone()),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("feature_disabled")),
        "{body}"
    );
    let (status, _) = api_request(
        &node,
        &admin,
        reqwest::Method::PUT,
        "/api/v1/features",
        Some(json!({"transfer_groups": true})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = api_request(
        &node,
        &admin,
        reqwest::Method::POST,
        &transfer,
        Some(to_sales),
    )
    .await;
    assert_eq!(
        (status, body["team"].as_str()),
        (200, Some("vendas")),
        "{body}"
    );
}
