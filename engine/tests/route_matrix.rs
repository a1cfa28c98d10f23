//! End to end on the real binary (issue 15): the whole route × role matrix. Every operation the
//! OpenAPI document lists is classified here (a route added without a row fails the test), and
//! every tenant route is called with each role's token: the roles whose default permissions allow
//! it are let through (neither 401 nor 403), the others refused with 403 `forbidden`. Operator routes
//! refuse every tenant user; public routes need no token. The WebSocket's events per role are in
//! `permissions.rs` (notes) and `visibility.rs` (deleted messages, connections).

mod support;

use serde_json::{Value, json};
use std::collections::BTreeSet;
use support::fake_graph::FakeGraph;
use support::{Node, add_agent, api_get, api_request, customer_writes, provision};

const ALL: &[&str] = &["admin", "supervisor", "agent", "auditor", "bot"];
/// Reply, change tickets, edit contacts.
const WORKERS: &[&str] = &["admin", "supervisor", "agent", "bot"];
const HELPDESK: &[&str] = &["admin", "supervisor"];
const FEED: &[&str] = &["admin", "supervisor", "auditor", "bot"];
const AUDIT: &[&str] = &["admin", "auditor"];
const ADMIN: &[&str] = &["admin"];
const DASHBOARD: &[&str] = &["admin", "supervisor", "auditor"];

/// Who a route is for.
enum Access {
    /// No token needed (webhooks, sign-in, health).
    Public,
    /// The platform operator's token only.
    Operator,
    /// Tenant users of these roles.
    Roles(&'static [&'static str]),
}

#[tokio::test]
async fn every_route_lets_through_or_refuses_each_role_as_its_permissions_say() {
    let graph = FakeGraph::start().await;
    let node = Node::start_with(Some(graph.base.clone()), Vec::new()).await;
    let tenant = provision(&node, "route-matrix").await;
    customer_writes(&node, &tenant, "5511970000401", "wamid.M1", "Oi").await;
    let mut tokens = Vec::new();
    let mut ids = Vec::new();
    for role in ALL {
        let (id, token) = add_agent(&node, &tenant, role, role).await;
        tokens.push((*role, token));
        ids.push((*role, id));
    }
    let admin = tokens[0].1.clone();
    let (_, inbox) = api_get(&node, &admin, "/api/v1/conversations").await;
    let conversation = inbox["items"][0]["id"].as_str().expect("id").to_string();
    let (_, contact) = api_get(
        &node,
        &admin,
        &format!("/api/v1/conversations/{conversation}/contact"),
    )
    .await;
    let contact = contact["id"].as_str().expect("contact id").to_string();
    let (status, other) = api_request(
        &node,
        &admin,
        reqwest::Method::POST,
        "/api/v1/contacts",
        Some(json!({"name": "Outro"})),
    )
    .await;
    assert_eq!(status, 201, "{other}");
    let other = other["id"].as_str().expect("contact id").to_string();
    let (status, body) = api_request(
        &node,
        &admin,
        reqwest::Method::POST,
        "/api/v1/departments",
        Some(json!({"key": "vendas", "name": "Vendas"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, canned) = api_request(
        &node,
        &admin,
        reqwest::Method::POST,
        "/api/v1/canned_responses",
        Some(json!({"short_code": "/oi", "content": "Olá"})),
    )
    .await;
    assert_eq!(status, 201, "{canned}");
    let canned = canned["id"].as_str().expect("canned id").to_string();
    let bot_id = ids[4].1.clone();
    let (_, roles) = api_get(&node, &admin, "/api/v1/roles").await;

    let c = format!("/api/v1/conversations/{conversation}");
    let k = format!("/api/v1/contacts/{contact}");
    let t = format!("/api/v1/admin/tenants/{}", tenant.tenant_id);
    let n = &tenant.connection_id;
    use reqwest::Method as M;
    // (method, OpenAPI path, the path called, body, who may). Routes that end something for the
    // caller or remove what later rows use come last.
    let routes: Vec<(M, &str, String, Option<Value>, Access)> = vec![
        (
            M::GET,
            "/api/v1/conversations",
            "/api/v1/conversations".into(),
            None,
            Access::Roles(ALL),
        ),
        (
            M::POST,
            "/api/v1/conversations",
            "/api/v1/conversations".into(),
            Some(
                json!({"connection_id": n, "contact": {"address": "5511970000499"}, "message": {"text": "Olá"}}),
            ),
            Access::Roles(WORKERS),
        ),
        (
            M::GET,
            "/api/v1/conversations/counts",
            "/api/v1/conversations/counts".into(),
            None,
            Access::Roles(ALL),
        ),
        (
            M::GET,
            "/api/v1/conversations/{id}",
            c.clone(),
            None,
            Access::Roles(ALL),
        ),
        (
            M::GET,
            "/api/v1/conversations/{id}/messages",
            format!("{c}/messages"),
            None,
            Access::Roles(ALL),
        ),
        (
            M::POST,
            "/api/v1/conversations/{id}/messages",
            format!("{c}/messages"),
            Some(json!({"text": "Olá"})),
            Access::Roles(WORKERS),
        ),
        (
            M::GET,
            "/api/v1/conversations/{id}/events",
            format!("{c}/events"),
            None,
            Access::Roles(ALL),
        ),
        (
            M::POST,
            "/api/v1/conversations/{id}/read",
            format!("{c}/read"),
            None,
            Access::Roles(WORKERS),
        ),
        (
            M::GET,
            "/api/v1/conversations/{id}/messages/{seq}/media",
            format!("{c}/messages/2/media"),
            None,
            Access::Roles(ALL),
        ),
        (
            M::GET,
            "/api/v1/conversations/{id}/contact",
            format!("{c}/contact"),
            None,
            Access::Roles(ALL),
        ),
        (
            M::POST,
            "/api/v1/conversations/{id}/assignments",
            format!("{c}/assignments"),
            Some(json!({"assignee_id": null})),
            Access::Roles(WORKERS),
        ),
        (
            M::POST,
            "/api/v1/conversations/{id}/transfer",
            format!("{c}/transfer"),
            Some(json!({"team_id": "vendas"})),
            Access::Roles(WORKERS),
        ),
        (
            M::POST,
            "/api/v1/conversations/{id}/toggle_status",
            format!("{c}/toggle_status"),
            Some(json!({"status": "in_progress"})),
            Access::Roles(WORKERS),
        ),
        (
            M::POST,
            "/api/v1/conversations/{id}/toggle_priority",
            format!("{c}/toggle_priority"),
            Some(json!({"priority": "high"})),
            Access::Roles(WORKERS),
        ),
        (
            M::POST,
            "/api/v1/conversations/{id}/labels",
            format!("{c}/labels"),
            Some(json!({"add": ["vip"]})),
            Access::Roles(WORKERS),
        ),
        (
            M::POST,
            "/api/v1/conversations/{id}/notes",
            format!("{c}/notes"),
            Some(json!({"content": "nota"})),
            Access::Roles(WORKERS),
        ),
        (
            M::POST,
            "/api/v1/conversations/{id}/canned_responses/render",
            format!("{c}/canned_responses/render"),
            Some(json!({"short_code": "/oi"})),
            Access::Roles(WORKERS),
        ),
        (
            M::GET,
            "/api/v1/dashboard",
            "/api/v1/dashboard".into(),
            None,
            Access::Roles(DASHBOARD),
        ),
        (
            M::GET,
            "/api/v1/feed",
            "/api/v1/feed".into(),
            None,
            Access::Roles(FEED),
        ),
        (
            M::GET,
            "/api/v1/audit",
            "/api/v1/audit".into(),
            None,
            Access::Roles(AUDIT),
        ),
        (
            M::POST,
            "/api/v1/connections",
            "/api/v1/connections".into(),
            Some(json!({"name": "x"})),
            Access::Roles(ADMIN),
        ),
        (
            M::PATCH,
            "/api/v1/connections/{id}",
            format!("/api/v1/connections/{n}"),
            Some(json!({"name": "main"})),
            Access::Roles(ADMIN),
        ),
        (
            M::GET,
            "/api/v1/connections",
            "/api/v1/connections".into(),
            None,
            Access::Roles(ALL),
        ),
        (
            M::GET,
            "/api/v1/connections/{id}/qr",
            format!("/api/v1/connections/{n}/qr"),
            None,
            Access::Roles(HELPDESK),
        ),
        (
            M::GET,
            "/api/v1/contacts",
            "/api/v1/contacts".into(),
            None,
            Access::Roles(ALL),
        ),
        (
            M::POST,
            "/api/v1/contacts",
            "/api/v1/contacts".into(),
            Some(json!({"name": "Cliente"})),
            Access::Roles(WORKERS),
        ),
        (
            M::GET,
            "/api/v1/contacts/{id}",
            k.clone(),
            None,
            Access::Roles(ALL),
        ),
        (
            M::PATCH,
            "/api/v1/contacts/{id}",
            k.clone(),
            Some(json!({"name": "Cliente"})),
            Access::Roles(WORKERS),
        ),
        (
            M::POST,
            "/api/v1/contacts/{id}/notes",
            format!("{k}/notes"),
            Some(json!({"body": "nota"})),
            Access::Roles(WORKERS),
        ),
        (
            M::GET,
            "/api/v1/contacts/{id}/conversations",
            format!("{k}/conversations"),
            None,
            Access::Roles(ALL),
        ),
        (
            M::GET,
            "/api/v1/contacts/{id}/export",
            format!("{k}/export"),
            None,
            Access::Roles(ADMIN),
        ),
        (
            M::GET,
            "/api/v1/departments",
            "/api/v1/departments".into(),
            None,
            Access::Roles(ALL),
        ),
        (
            M::POST,
            "/api/v1/departments",
            "/api/v1/departments".into(),
            Some(json!({"key": "suporte", "name": "Suporte"})),
            Access::Roles(HELPDESK),
        ),
        (
            M::GET,
            "/api/v1/departments/{key}",
            "/api/v1/departments/vendas".into(),
            None,
            Access::Roles(ALL),
        ),
        (
            M::PUT,
            "/api/v1/departments/{key}",
            "/api/v1/departments/vendas".into(),
            Some(json!({"name": "Vendas"})),
            Access::Roles(HELPDESK),
        ),
        (
            M::GET,
            "/api/v1/canned_responses",
            "/api/v1/canned_responses".into(),
            None,
            Access::Roles(ALL),
        ),
        (
            M::POST,
            "/api/v1/canned_responses",
            "/api/v1/canned_responses".into(),
            Some(json!({"short_code": "/tchau", "content": "Tchau"})),
            Access::Roles(HELPDESK),
        ),
        (
            M::PUT,
            "/api/v1/canned_responses/{id}",
            format!("/api/v1/canned_responses/{canned}"),
            Some(json!({"short_code": "/oi", "content": "Olá!"})),
            Access::Roles(HELPDESK),
        ),
        (
            M::GET,
            "/api/v1/features",
            "/api/v1/features".into(),
            None,
            Access::Roles(ALL),
        ),
        (
            M::PUT,
            "/api/v1/features",
            "/api/v1/features".into(),
            Some(json!({})),
            Access::Roles(ADMIN),
        ),
        (
            M::GET,
            "/api/v1/account",
            "/api/v1/account".into(),
            None,
            Access::Roles(ADMIN),
        ),
        (
            M::POST,
            "/api/v1/invitations",
            "/api/v1/invitations".into(),
            Some(json!({"email": "nova@example.com", "name": "Nova"})),
            Access::Roles(ADMIN),
        ),
        (
            M::GET,
            "/api/v1/smtp",
            "/api/v1/smtp".into(),
            None,
            Access::Roles(ADMIN),
        ),
        (
            M::PUT,
            "/api/v1/smtp",
            "/api/v1/smtp".into(),
            Some(json!({})),
            Access::Roles(ADMIN),
        ),
        (
            M::GET,
            "/api/v1/presence",
            "/api/v1/presence".into(),
            None,
            Access::Roles(ALL),
        ),
        (
            M::GET,
            "/api/v1/roles",
            "/api/v1/roles".into(),
            None,
            Access::Roles(ALL),
        ),
        (
            M::PUT,
            "/api/v1/roles/{role}",
            "/api/v1/roles/bot".into(),
            Some(json!({"permissions": roles["bot"].clone()})),
            Access::Roles(ADMIN),
        ),
        (
            M::GET,
            "/api/v1/users",
            "/api/v1/users".into(),
            None,
            Access::Roles(ALL),
        ),
        (
            M::PATCH,
            "/api/v1/users/{id}",
            format!("/api/v1/users/{bot_id}"),
            Some(json!({"name": "bot"})),
            Access::Roles(ADMIN),
        ),
        (
            M::GET,
            "/api/v1/ws",
            "/api/v1/ws".into(),
            None,
            Access::Roles(ALL),
        ),
        (
            M::GET,
            "/api/v1/auth/sessions",
            "/api/v1/auth/sessions".into(),
            None,
            Access::Roles(ALL),
        ),
        (
            M::POST,
            "/api/v1/auth/api_keys",
            "/api/v1/auth/api_keys".into(),
            Some(json!({"label": "matrix"})),
            Access::Roles(ALL),
        ),
        (
            M::POST,
            "/api/v1/auth/password",
            "/api/v1/auth/password".into(),
            Some(json!({"current_password": "x", "new_password": "y"})),
            Access::Roles(ALL),
        ),
        (
            M::DELETE,
            "/api/v1/auth/sessions/{id}",
            "/api/v1/auth/sessions/018f0000-0000-7000-8000-000000000009".into(),
            None,
            Access::Roles(ALL),
        ),
        (
            M::DELETE,
            "/api/v1/conversations/{id}/messages/{seq}",
            format!("{c}/messages/1"),
            None,
            Access::Roles(HELPDESK),
        ),
        (
            M::POST,
            "/api/v1/contacts/{id}/merge",
            format!("{k}/merge"),
            Some(json!({"from": other})),
            Access::Roles(HELPDESK),
        ),
        (
            M::DELETE,
            "/api/v1/canned_responses/{id}",
            format!("/api/v1/canned_responses/{canned}"),
            None,
            Access::Roles(HELPDESK),
        ),
        (
            M::DELETE,
            "/api/v1/departments/{key}",
            "/api/v1/departments/suporte".into(),
            None,
            Access::Roles(HELPDESK),
        ),
        (
            M::DELETE,
            "/api/v1/smtp",
            "/api/v1/smtp".into(),
            None,
            Access::Roles(ADMIN),
        ),
        (
            M::POST,
            "/api/v1/contacts/{id}/erase",
            format!("{k}/erase"),
            None,
            Access::Roles(ADMIN),
        ),
        (
            M::DELETE,
            "/api/v1/contacts/{id}",
            k.clone(),
            None,
            Access::Roles(HELPDESK),
        ),
        (
            M::DELETE,
            "/api/v1/conversations/{id}",
            c.clone(),
            None,
            Access::Roles(ADMIN),
        ),
        (
            M::DELETE,
            "/api/v1/connections/{id}",
            format!("/api/v1/connections/{n}"),
            None,
            Access::Roles(ADMIN),
        ),
        (
            M::POST,
            "/api/v1/auth/sign_out",
            "/api/v1/auth/sign_out".into(),
            None,
            Access::Roles(ALL),
        ),
        // The operator's routes.
        (
            M::POST,
            "/api/v1/admin/tenants",
            "/api/v1/admin/tenants".into(),
            Some(json!({"name": "x"})),
            Access::Operator,
        ),
        (
            M::GET,
            "/api/v1/admin/tenants",
            "/api/v1/admin/tenants".into(),
            None,
            Access::Operator,
        ),
        (
            M::GET,
            "/api/v1/admin/tenants/{tenant}",
            t.clone(),
            None,
            Access::Operator,
        ),
        (
            M::POST,
            "/api/v1/admin/tenants/{tenant}/connections",
            format!("{t}/connections"),
            Some(json!({})),
            Access::Operator,
        ),
        (
            M::GET,
            "/api/v1/admin/tenants/{tenant}/connections",
            format!("{t}/connections"),
            None,
            Access::Operator,
        ),
        (
            M::PATCH,
            "/api/v1/admin/tenants/{tenant}/connections/{id}",
            format!("{t}/connections/{n}"),
            Some(json!({})),
            Access::Operator,
        ),
        (
            M::DELETE,
            "/api/v1/admin/tenants/{tenant}/connections/{id}",
            format!("{t}/connections/{n}"),
            None,
            Access::Operator,
        ),
        (
            M::POST,
            "/api/v1/admin/tenants/{tenant}/agents",
            format!("{t}/agents"),
            Some(json!({"name": "x"})),
            Access::Operator,
        ),
        (
            M::PUT,
            "/api/v1/admin/tenants/{tenant}/agents/{agent}/credentials",
            format!("{t}/agents/{bot_id}/credentials"),
            Some(json!({})),
            Access::Operator,
        ),
        (
            M::GET,
            "/api/v1/admin/plans",
            "/api/v1/admin/plans".into(),
            None,
            Access::Operator,
        ),
        (
            M::PUT,
            "/api/v1/admin/plans/{name}",
            "/api/v1/admin/plans/pro".into(),
            Some(json!({})),
            Access::Operator,
        ),
        (
            M::PUT,
            "/api/v1/admin/tenants/{tenant}/plan",
            format!("{t}/plan"),
            Some(json!({"plan": "pro"})),
            Access::Operator,
        ),
        (
            M::POST,
            "/api/v1/admin/tenants/{tenant}/suspend",
            format!("{t}/suspend"),
            Some(json!({})),
            Access::Operator,
        ),
        (
            M::POST,
            "/api/v1/admin/tenants/{tenant}/resume",
            format!("{t}/resume"),
            None,
            Access::Operator,
        ),
        // Public: they authenticate by other means (signatures, passwords, single-use links).
        (
            M::POST,
            "/api/v1/auth/sign_in",
            String::new(),
            None,
            Access::Public,
        ),
        (
            M::POST,
            "/api/v1/auth/refresh",
            String::new(),
            None,
            Access::Public,
        ),
        (
            M::POST,
            "/api/v1/auth/invitations/accept",
            String::new(),
            None,
            Access::Public,
        ),
        (
            M::POST,
            "/api/v1/auth/password_reset",
            String::new(),
            None,
            Access::Public,
        ),
        (
            M::POST,
            "/api/v1/auth/password_reset/confirm",
            String::new(),
            None,
            Access::Public,
        ),
        (M::GET, "/", String::new(), None, Access::Public),
        (
            M::GET,
            "/console/{path}",
            String::new(),
            None,
            Access::Public,
        ),
        (M::GET, "/healthz", String::new(), None, Access::Public),
        (M::GET, "/readyz", String::new(), None, Access::Public),
        (M::GET, "/metrics", String::new(), None, Access::Public),
        (
            M::GET,
            "/webhooks/whatsapp/{connection_id}",
            String::new(),
            None,
            Access::Public,
        ),
        (
            M::POST,
            "/webhooks/whatsapp/{connection_id}",
            String::new(),
            None,
            Access::Public,
        ),
        (
            M::GET,
            "/webhooks/meta/{connection_id}",
            String::new(),
            None,
            Access::Public,
        ),
        (
            M::POST,
            "/webhooks/meta/{connection_id}",
            String::new(),
            None,
            Access::Public,
        ),
        (
            M::POST,
            "/webhooks/evolution/{connection_id}/{secret}",
            String::new(),
            None,
            Access::Public,
        ),
        (
            M::POST,
            "/webhooks/zapi/{connection_id}/{secret}",
            String::new(),
            None,
            Access::Public,
        ),
    ];

    // Every operation the node documents has a row, and every row is documented.
    let document: Value = reqwest::get(node.url("/api/v1/openapi.json"))
        .await
        .expect("openapi")
        .json()
        .await
        .expect("openapi json");
    let mut documented = BTreeSet::new();
    for (path, operations) in document["paths"].as_object().expect("paths") {
        for method in operations.as_object().expect("operations").keys() {
            documented.insert(format!("{} {path}", method.to_uppercase()));
        }
    }
    let classified: BTreeSet<String> = routes
        .iter()
        .map(|(method, path, ..)| format!("{method} {path}"))
        .collect();
    assert_eq!(classified.len(), routes.len(), "a route is listed twice");
    assert_eq!(
        documented.difference(&classified).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "routes without a row in the matrix"
    );
    assert_eq!(
        classified.difference(&documented).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "rows for routes the node does not document"
    );

    for (method, template, path, body, access) in &routes {
        match access {
            Access::Public => continue,
            Access::Operator => {
                for (role, token) in &tokens {
                    let (status, answer) =
                        api_request(&node, token, method.clone(), path, body.clone()).await;
                    assert!(
                        status == 401 || status == 403,
                        "{role} reached the operator's {method} {template}: {status} {answer}"
                    );
                }
            }
            Access::Roles(allowed) => {
                for (role, token) in &tokens {
                    let (status, answer) =
                        api_request(&node, token, method.clone(), path, body.clone()).await;
                    if allowed.contains(role) {
                        assert!(
                            status != 401 && status != 403,
                            "{role} refused on {method} {template}: {status} {answer}"
                        );
                        assert!(
                            status < 500 || status == 503 && template.contains("invitations"),
                            "{role} on {method} {template}: {status} {answer}"
                        );
                    } else {
                        assert_eq!(
                            (status, answer["code"].as_str()),
                            (403, Some("forbidden")),
                            "{role} let through on {method} {template}: {answer}"
                        );
                    }
                }
            }
        }
    }
}
