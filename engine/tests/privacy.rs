//! LGPD export on the real binary (issue 15): a tenant admin downloads everything held about one
//! contact as one JSON document (the contact, its conversations, every message and internal note);
//! other roles and other tenants cannot, and the audit log records the export without its data.

mod support;

use serde_json::{Value, json};
use support::{Node, add_agent, api_get, api_post, customer_writes, provision};

async fn export(node: &Node, token: &str, contact: &str) -> (u16, String) {
    let response = reqwest::Client::new()
        .get(node.url(&format!("/api/v1/contacts/{contact}/export")))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

#[tokio::test]
async fn an_admin_exports_everything_about_one_contact_as_json() {
    let node = Node::start().await;
    let tenant = provision(&node, "lgpd").await;
    let other = provision(&node, "outra").await;
    let (_, admin) = add_agent(&node, &tenant, "Ana", "admin").await;
    let (_, other_admin) = add_agent(&node, &other, "Olga", "admin").await;
    customer_writes(&node, &tenant, "5511912345678", "wamid.E1", "Meu CPF é 123").await;
    customer_writes(&node, &tenant, "5511912345678", "wamid.E2", "Obrigado").await;
    customer_writes(&node, &tenant, "5511900000000", "wamid.E3", "Outro cliente").await;
    let (_, inbox) = api_get(&node, &admin, "/api/v1/conversations").await;
    let conversation = inbox["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|c| c["contact"]["address"] == "5511912345678")
        .expect("the conversation")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let (status, _) = api_post(
        &node,
        &admin,
        &format!("/api/v1/conversations/{conversation}/notes"),
        json!({"content": "cliente pediu seus dados"}),
    )
    .await;
    assert_eq!(status, 201);
    let (_, contact) = api_get(
        &node,
        &admin,
        &format!("/api/v1/conversations/{conversation}/contact"),
    )
    .await;
    let contact_id = contact["id"].as_str().expect("contact id").to_string();

    let (status, body) = export(&node, &admin, &contact_id).await;
    assert_eq!(status, 200, "{body}");
    let document: Value = serde_json::from_str(&body).expect("the export is one JSON document");
    assert_eq!(document["format"], "conversa.contact-export.v1");
    assert_eq!(document["contact"]["id"], contact_id.as_str());
    let conversations = document["conversations"].as_array().expect("conversations");
    assert_eq!(conversations.len(), 1, "only this contact's conversations");
    let texts: Vec<&str> = conversations[0]["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["content"]["body"].as_str())
        .collect();
    assert_eq!(texts, ["Meu CPF é 123", "Obrigado"]);
    assert_eq!(
        conversations[0]["notes"][0]["note"]["body"],
        "cliente pediu seus dados"
    );

    let (status, _) = export(&node, &tenant.agent_token, &contact_id).await;
    assert_eq!(status, 403, "agents do not export");
    let (status, _) = export(&node, &other_admin, &contact_id).await;
    assert_eq!(
        status, 404,
        "another tenant's contact does not exist for them"
    );
    let (_, log) = api_get(&node, &admin, "/api/v1/audit?action=contact.exported").await;
    let entry = &log["items"][0];
    assert_eq!(entry["target"], format!("contact:{contact_id}"));
    assert!(
        !log.to_string().contains("CPF"),
        "the log keeps no exported data"
    );
}

#[tokio::test]
async fn after_an_erase_nothing_of_the_contact_is_readable_through_any_route() {
    let node = Node::start().await;
    let tenant = provision(&node, "apagar").await;
    let (_, admin) = add_agent(&node, &tenant, "Ana", "admin").await;
    let (_, auditor) = add_agent(&node, &tenant, "Audi", "auditor").await;
    let mut payload = support::whatsapp::webhook(
        &tenant.phone_number_id,
        vec![support::whatsapp::text(
            "5511912345678",
            "wamid.X1",
            "Meu CPF é 123 e o pedido atrasou",
        )],
        vec![],
    );
    payload["entry"][0]["changes"][0]["value"]["contacts"][0]["profile"]["name"] =
        json!("Maria Segredo");
    let (status, body) = support::whatsapp::post(&node, &tenant, &payload).await;
    assert_eq!(status, 200, "{body}");
    customer_writes(
        &node,
        &tenant,
        "5511900000000",
        "wamid.X2",
        "pedido de outro cliente",
    )
    .await;
    let (_, inbox) = api_get(&node, &admin, "/api/v1/conversations").await;
    let id_of = |address: &str| {
        inbox["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|c| c["contact"]["address"] == address)
            .expect("the conversation")["id"]
            .as_str()
            .expect("id")
            .to_string()
    };
    let (erased, kept) = (id_of("5511912345678"), id_of("5511900000000"));
    let (status, _) = api_post(
        &node,
        &admin,
        &format!("/api/v1/conversations/{erased}/notes"),
        json!({"content": "Maria mora na rua X"}),
    )
    .await;
    assert_eq!(status, 201);
    let (_, contact) = api_get(
        &node,
        &admin,
        &format!("/api/v1/conversations/{erased}/contact"),
    )
    .await;
    let contact_id = contact["id"].as_str().expect("contact id").to_string();
    let erase_path = format!("/api/v1/contacts/{contact_id}/erase");
    let (status, _) = api_post(&node, &tenant.agent_token, &erase_path, json!({})).await;
    assert_eq!(status, 403, "agents do not erase");

    // Before: each of those routes shows it (so the checks below can fail).
    for path in [
        format!("/api/v1/conversations/{erased}/messages"),
        format!("/api/v1/conversations/{erased}/events"),
        "/api/v1/feed?limit=1000".to_string(),
        "/api/v1/conversations?q=atrasou".to_string(),
        "/api/v1/contacts?search=maria".to_string(),
    ] {
        let (_, body) = api_get(&node, &admin, &path).await;
        assert!(
            body.to_string().contains("CPF") || body.to_string().contains("Maria"),
            "{path} showed it before: {body}"
        );
    }

    let (status, done) = api_post(&node, &admin, &erase_path, json!({})).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["conversations"], 1);

    // Every route that could show it: history, events, the conversation, the inbox, the feed,
    // search, the contact, the export, and a socket resuming from the start.
    let secrets = ["CPF", "Maria", "atrasou", "rua X"];
    let mut seen = Vec::new();
    for path in [
        format!("/api/v1/conversations/{erased}/messages"),
        format!("/api/v1/conversations/{erased}/events"),
        format!("/api/v1/conversations/{erased}"),
        "/api/v1/conversations".to_string(),
        "/api/v1/feed?limit=1000".to_string(),
        "/api/v1/conversations?q=atrasou".to_string(),
        "/api/v1/contacts?search=maria".to_string(),
    ] {
        let (status, body) = api_get(&node, &admin, &path).await;
        assert_eq!(status, 200, "{path}: {body}");
        seen.push((path, body.to_string()));
    }
    for (path, body) in &seen {
        for secret in secrets {
            assert!(
                !body.contains(secret),
                "{path} still shows {secret:?}: {body}"
            );
        }
    }
    let (_, search) = api_get(&node, &admin, "/api/v1/conversations?q=atrasou").await;
    assert_eq!(
        search["items"],
        json!([]),
        "the erased words are not searchable"
    );
    let (_, search) = api_get(&node, &admin, "/api/v1/conversations?q=pedido").await;
    let found: Vec<&str> = search["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert_eq!(
        found,
        [kept.as_str()],
        "only the other customer's words are found"
    );
    let (status, _) = api_get(&node, &admin, &format!("/api/v1/contacts/{contact_id}")).await;
    assert_eq!(status, 404);
    let (status, _) = export(&node, &admin, &contact_id).await;
    assert_eq!(status, 404);
    let resume = json!({"since": "2020-01-01T00:00:00Z", "positions": {erased.clone(): 0}});
    let (agent, replayed) = support::Agent::connect(&node, &admin, Some(resume)).await;
    assert!(
        !replayed.is_empty(),
        "the history is still there, without its words"
    );
    let replayed = serde_json::to_string(&replayed).unwrap_or_default();
    for secret in secrets {
        assert!(!replayed.contains(secret), "a resume replays {secret:?}");
    }
    agent.close().await;
    let (_, messages) = api_get(
        &node,
        &admin,
        &format!("/api/v1/conversations/{erased}/messages"),
    )
    .await;
    assert!(
        messages["items"]
            .as_array()
            .expect("items")
            .iter()
            .all(|m| m["content"]["provider_type"] == "erased"),
        "{messages}"
    );
    // The other customer is untouched; the erasure is audited without the data.
    let (_, other) = api_get(
        &node,
        &admin,
        &format!("/api/v1/conversations/{kept}/messages"),
    )
    .await;
    assert_eq!(
        other["items"][0]["content"]["body"],
        "pedido de outro cliente"
    );
    let (_, log) = api_get(&node, &auditor, "/api/v1/audit?action=contact.erased").await;
    assert_eq!(log["items"][0]["target"], format!("contact:{contact_id}"));
    for secret in secrets {
        assert!(!log.to_string().contains(secret));
    }
}
