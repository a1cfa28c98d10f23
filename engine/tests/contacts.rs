//! End to end on the real binary (issue 14): contacts. A customer who writes gets one contact across
//! the tenant's numbers; agents find it by name or phone, edit it (versioned), add notes and list its
//! conversations; a supervisor merges two contacts and the conversations follow; every route stays
//! within its tenant and refuses bad input with problem+json.

mod support;

use serde_json::{Value, json};
use support::{
    Node, Tenant, add_agent, add_connection, api_get, api_post, api_request, provision, whatsapp,
};

async fn writes_with_name(node: &Node, tenant: &Tenant, from: &str, wamid: &str, name: &str) {
    let mut payload = whatsapp::webhook(
        &tenant.phone_number_id,
        vec![whatsapp::text(from, wamid, "Olá")],
        vec![],
    );
    payload["entry"][0]["changes"][0]["value"]["contacts"] =
        json!([{"profile": {"name": name}, "wa_id": from}]);
    let (status, body) = whatsapp::post(node, tenant, &payload).await;
    assert_eq!(status, 200, "{body}");
}

async fn patch(node: &Node, token: &str, path: &str, body: Value) -> (u16, Value) {
    api_request(node, token, reqwest::Method::PATCH, path, Some(body)).await
}

async fn search(node: &Node, token: &str, query: &str) -> Vec<Value> {
    let path = format!("/api/v1/contacts?search={}", urlencode(query));
    let (status, page) = api_get(node, token, &path).await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().expect("items").clone()
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn a_customer_gets_one_contact_found_edited_and_merged_with_its_conversations() {
    let node = Node::start().await;
    let a = provision(&node, "contacts-a").await;
    let a2 = add_connection(&node, &a).await;
    let (_, supervisor) = add_agent(&node, &a, "Sol", "supervisor").await;
    let (_, auditor) = add_agent(&node, &a, "Audi", "auditor").await;
    let token = a.agent_token.clone();

    // One customer writes to both numbers of the tenant: one contact, two conversations.
    writes_with_name(&node, &a, "5511987650001", "wamid.C1", "João Pereira").await;
    writes_with_name(&node, &a2, "5511987650001", "wamid.C2", "João Pereira").await;
    let found = search(&node, &token, "joão").await;
    assert_eq!(found.len(), 1, "{found:?}");
    let joao = found[0].clone();
    assert_eq!(joao["name"], "João Pereira");
    assert_eq!(
        joao["addresses"],
        json!([{"channel": "whatsapp", "address": "5511987650001"}])
    );
    let joao_id = joao["id"].as_str().expect("id").to_string();
    assert_eq!(
        search(&node, &token, "(11) 98765-0001").await.len(),
        1,
        "by phone as typed"
    );
    assert_eq!(
        search(&node, &token, "pereira jo").await.len(),
        1,
        "every word matches"
    );
    assert!(search(&node, &token, "pereira maria").await.is_empty());
    let (_, conversations) = api_get(
        &node,
        &token,
        &format!("/api/v1/contacts/{joao_id}/conversations"),
    )
    .await;
    let conversations = conversations.as_array().expect("list").clone();
    assert_eq!(conversations.len(), 2, "one per number");
    let conversation = conversations[0]["id"].as_str().expect("id");
    let (status, of_conversation) = api_get(
        &node,
        &token,
        &format!("/api/v1/conversations/{conversation}/contact"),
    )
    .await;
    assert_eq!((status, &of_conversation["id"]), (200, &json!(joao_id)));

    // An agent records a customer before they write; the address is then theirs alone.
    let (status, maria) = api_post(
        &node,
        &token,
        "/api/v1/contacts",
        json!({"name": "Maria Souza", "email": "Maria@Example.com",
               "addresses": [{"channel": "whatsapp", "address": "5511987650002"}],
               "tags": ["VIP"], "custom_fields": {"plan": "gold", "seats": 3}}),
    )
    .await;
    assert_eq!(status, 201, "{maria}");
    assert_eq!(maria["email"], "maria@example.com");
    assert_eq!(maria["tags"], json!(["vip"]));
    let maria_id = maria["id"].as_str().expect("id").to_string();
    let (status, taken) = api_post(
        &node,
        &token,
        "/api/v1/contacts",
        json!({"name": "Outra", "addresses": [{"channel": "whatsapp", "address": "5511987650002"}]}),
    )
    .await;
    assert_eq!(
        (status, taken["code"].as_str()),
        (409, Some("address_taken"))
    );
    writes_with_name(&node, &a, "5511987650002", "wamid.C3", "Mari").await;
    let (_, maria_now) = api_get(&node, &token, &format!("/api/v1/contacts/{maria_id}")).await;
    assert_eq!(
        maria_now["name"], "Maria Souza",
        "her first message made no new contact"
    );
    assert_eq!(search(&node, &token, "mari").await.len(), 1);

    // Edits: versioned, key by key, checked.
    let path = format!("/api/v1/contacts/{maria_id}");
    let (status, edited) = patch(
        &node,
        &token,
        &path,
        json!({"version": 1, "custom_fields": {"seats": null, "city": "Recife"}}),
    )
    .await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(
        edited["custom_fields"],
        json!({"plan": "gold", "city": "Recife"})
    );
    assert_eq!(edited["version"], 2);
    let (status, stale) = patch(&node, &token, &path, json!({"version": 1, "name": "X"})).await;
    assert_eq!(
        (status, stale["code"].as_str()),
        (409, Some("version_conflict"))
    );
    let (status, bad) = patch(&node, &token, &path, json!({"email": "not-mail"})).await;
    assert_eq!(
        (status, bad["code"].as_str()),
        (400, Some("invalid_contact"))
    );
    let (status, _) = patch(&node, &auditor, &path, json!({"name": "X"})).await;
    assert_eq!(status, 403, "auditors change nothing");
    let (status, note) = api_post(
        &node,
        &token,
        &format!("{path}/notes"),
        json!({"body": "Prefere contato à tarde"}),
    )
    .await;
    assert_eq!(status, 201, "{note}");

    // A supervisor merges Maria into João: her number and its conversation follow.
    let merge_path = format!("/api/v1/contacts/{joao_id}/merge");
    let (status, _) = api_post(&node, &token, &merge_path, json!({"from": maria_id})).await;
    assert_eq!(status, 403, "agents do not merge");
    let (status, merged) =
        api_post(&node, &supervisor, &merge_path, json!({"from": maria_id})).await;
    assert_eq!(status, 200, "{merged}");
    assert_eq!(merged["name"], "João Pereira");
    assert_eq!(merged["email"], "maria@example.com");
    assert_eq!(merged["addresses"].as_array().map(Vec::len), Some(2));
    assert_eq!(merged["notes"].as_array().map(Vec::len), Some(1));
    let (status, _) = api_get(&node, &token, &path).await;
    assert_eq!(status, 404, "the merged contact is gone");
    let (_, conversations) = api_get(
        &node,
        &token,
        &format!("/api/v1/contacts/{joao_id}/conversations"),
    )
    .await;
    assert_eq!(conversations.as_array().map(Vec::len), Some(3));
    assert_eq!(search(&node, &token, "5511987650002").await.len(), 1);

    // Another tenant sees none of it.
    let b = provision(&node, "contacts-b").await;
    let (_, b_supervisor) = add_agent(&node, &b, "Bia", "supervisor").await;
    assert!(search(&node, &b.agent_token, "joao").await.is_empty());
    let (_, listed) = api_get(&node, &b.agent_token, "/api/v1/contacts").await;
    assert_eq!(listed["items"], json!([]));
    for path in [
        format!("/api/v1/contacts/{joao_id}"),
        format!("/api/v1/contacts/{joao_id}/conversations"),
        format!("/api/v1/conversations/{conversation}/contact"),
    ] {
        let (status, body) = api_get(&node, &b.agent_token, &path).await;
        assert_eq!(status, 404, "{path}: {body}");
    }
    let (status, _) = patch(
        &node,
        &b_supervisor,
        &format!("/api/v1/contacts/{joao_id}"),
        json!({"name": "X"}),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = api_post(&node, &b_supervisor, &merge_path, json!({"from": joao_id})).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn contact_routes_refuse_bad_input_with_problem_json() {
    let node = Node::start().await;
    let a = provision(&node, "contacts-bad").await;
    let token = a.agent_token.clone();
    for (path, code) in [
        ("/api/v1/contacts?search=a", "invalid_search"),
        ("/api/v1/contacts?limit=0", "invalid_limit"),
        ("/api/v1/contacts?cursor=nope", "invalid_cursor"),
        ("/api/v1/contacts?search=ana&cursor=zzz", "invalid_cursor"),
    ] {
        let (status, body) = api_get(&node, &token, path).await;
        assert_eq!((status, body["code"].as_str()), (400, Some(code)), "{path}");
    }
    for body in [
        json!({"name": "Ana", "unknown": 1}),
        json!({"addresses": [{"channel": "whatsapp", "address": "12ab"}]}),
        json!({"addresses": [{"channel": "telegram", "address": "1"}]}),
        json!({"name": "Ana", "custom_fields": {"Bad Key": 1}}),
        json!({"name": "Ana", "custom_fields": {"nested": {"a": 1}}}),
        json!({}),
    ] {
        let (status, answer) = api_post(&node, &token, "/api/v1/contacts", body.clone()).await;
        assert!((400..500).contains(&status), "{body}: {status}");
        assert!(answer["code"].is_string(), "{body}: {answer}");
    }
    let (status, _) = api_get(&node, &token, "/api/v1/contacts/not-an-id").await;
    assert_eq!(status, 404);
}
