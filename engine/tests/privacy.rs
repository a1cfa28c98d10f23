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
