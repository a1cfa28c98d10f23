//! End to end on the real binary (issue 14): quick replies (Chatwoot's canned responses) managed by
//! supervisors, searched by agents, rendered for a conversation with its variables (a department's
//! reply winning over the tenant's), and kept per tenant.

mod support;

use serde_json::{Value, json};
use support::{Node, Tenant, add_agent, api_get, api_post, api_request, provision, whatsapp};

async fn first_conversation(node: &Node, tenant: &Tenant, from: &str, name: &str) -> String {
    let mut message = whatsapp::text(from, "wamid.Q1", "Oi");
    message["from"] = json!(from);
    let mut payload = whatsapp::webhook(&tenant.phone_number_id, vec![message], vec![]);
    payload["entry"][0]["changes"][0]["value"]["contacts"] =
        json!([{"profile": {"name": name}, "wa_id": from}]);
    let (status, body) = whatsapp::post(node, tenant, &payload).await;
    assert_eq!(status, 200, "{body}");
    let (_, page) = api_get(node, &tenant.agent_token, "/api/v1/conversations").await;
    page["items"][0]["id"]
        .as_str()
        .expect("conversation")
        .to_string()
}

#[tokio::test]
async fn quick_replies_are_managed_searched_rendered_and_kept_per_tenant() {
    let node = Node::start().await;
    let a = provision(&node, "qr-a").await;
    let b = provision(&node, "qr-b").await;
    let (_, supervisor) = add_agent(&node, &a, "Sol", "supervisor").await;
    let (_, b_supervisor) = add_agent(&node, &b, "Bia", "supervisor").await;
    let post = |token: String, body: Value| {
        let node = &node;
        async move {
            api_request(
                node,
                &token,
                reqwest::Method::POST,
                "/api/v1/canned_responses",
                Some(body),
            )
            .await
        }
    };

    let (status, greeting) = post(supervisor.clone(), json!({"short_code": "/saudacao",
        "content": "Olá, {{contact.name}}! Sou {{agent.name}}, do ticket #{{ticket.number}}. {{pedido}}"})).await;
    assert_eq!(status, 201, "{greeting}");
    let (status, _) = post(
        supervisor.clone(),
        json!({"short_code": "/saudacao", "content": "de novo"}),
    )
    .await;
    assert_eq!(status, 409, "the shortcut is taken in the tenant's scope");
    let (status, body) = post(
        a.agent_token.clone(),
        json!({"short_code": "/x", "content": "x"}),
    )
    .await;
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")));
    for bad in [
        json!({"short_code": "saudacao", "content": "x"}),
        json!({"short_code": "/Maiúscula", "content": "x"}),
        json!({"short_code": "/x", "content": "  "}),
        json!({"short_code": "/x", "content": "x", "team_id": "nao-existe"}),
    ] {
        let (status, body) = post(supervisor.clone(), bad.clone()).await;
        assert_eq!(status, 422, "{bad}: {body}");
    }

    // A department's own reply with the same shortcut wins inside that department.
    let (status, _) = api_post(
        &node,
        &supervisor,
        "/api/v1/departments",
        json!({"key": "vendas", "name": "Vendas",
        "connections": [a.connection_id]}),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = post(
        supervisor.clone(),
        json!({"short_code": "/saudacao", "team_id": "vendas",
        "content": "Vendas: olá {{contact.name}} ({{department.name}})"}),
    )
    .await;
    assert_eq!(status, 201);

    let (status, found) = api_get(
        &node,
        &a.agent_token,
        "/api/v1/canned_responses?search=SAUDA",
    )
    .await;
    assert_eq!((status, found.as_array().map(Vec::len)), (200, Some(2)));
    let (_, none) = api_get(
        &node,
        &a.agent_token,
        "/api/v1/canned_responses?search=inexistente",
    )
    .await;
    assert_eq!(none, json!([]));

    let conversation = first_conversation(&node, &a, "5511988880001", "Maria").await;
    let (status, rendered) = api_post(
        &node,
        &a.agent_token,
        &format!("/api/v1/conversations/{conversation}/canned_responses/render"),
        json!({"short_code": "/saudacao"}),
    )
    .await;
    assert_eq!(status, 200, "{rendered}");
    assert_eq!(rendered["text"], "Vendas: olá Maria (Vendas)");
    assert_eq!(rendered["missing"], json!([]));

    // The tenant-wide one, once the department's is gone: unknown variables stay visible.
    let department_reply = found
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["team"] == "vendas")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _) = api_request(
        &node,
        &supervisor,
        reqwest::Method::DELETE,
        &format!("/api/v1/canned_responses/{department_reply}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (_, rendered) = api_post(
        &node,
        &a.agent_token,
        &format!("/api/v1/conversations/{conversation}/canned_responses/render"),
        json!({"short_code": "/saudacao"}),
    )
    .await;
    assert_eq!(
        rendered["text"],
        "Olá, Maria! Sou agent, do ticket #1. {{pedido}}"
    );
    assert_eq!(rendered["missing"], json!(["pedido"]));
    let (status, _) = api_post(
        &node,
        &a.agent_token,
        &format!("/api/v1/conversations/{conversation}/canned_responses/render"),
        json!({"short_code": "/nada"}),
    )
    .await;
    assert_eq!(status, 404);

    // Edited whole; another tenant sees, renders and changes none of it.
    let id = greeting["id"].as_str().unwrap();
    let (status, edited) = api_request(
        &node,
        &supervisor,
        reqwest::Method::PUT,
        &format!("/api/v1/canned_responses/{id}"),
        Some(json!({"short_code": "/oi", "content": "Oi!"})),
    )
    .await;
    assert_eq!((status, edited["short_code"].as_str()), (200, Some("/oi")));
    let (_, b_list) = api_get(&node, &b.agent_token, "/api/v1/canned_responses").await;
    assert_eq!(b_list, json!([]));
    for method in [reqwest::Method::PUT, reqwest::Method::DELETE] {
        let body = (method == reqwest::Method::PUT)
            .then(|| json!({"short_code": "/oi", "content": "tomado"}));
        let (status, _) = api_request(
            &node,
            &b_supervisor,
            method,
            &format!("/api/v1/canned_responses/{id}"),
            body,
        )
        .await;
        assert_eq!(status, 404);
    }
    let (status, _) = api_post(
        &node,
        &b.agent_token,
        &format!("/api/v1/conversations/{conversation}/canned_responses/render"),
        json!({"short_code": "/oi"}),
    )
    .await;
    assert_eq!(status, 404, "another tenant's conversation");
}
