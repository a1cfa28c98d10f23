//! End to end on the real binary (issue 15, part): the route × role matrix. Each role's default
//! permissions decide, on every route that changes something or reads the feed, whether it is let
//! through (any answer but 403) or refused with 403 `forbidden`; auditors change nothing.

mod support;

use serde_json::{Value, json};
use support::fake_graph::FakeGraph;
use support::{Agent, Node, add_agent, api_get, api_request, customer_writes, provision};

const ROLES: [&str; 5] = ["admin", "supervisor", "agent", "auditor", "bot"];

#[tokio::test]
async fn each_role_is_let_through_or_refused_on_each_route_as_its_permissions_say() {
    // Meta's Graph API, faked: sends and read receipts reach a provider that answers.
    let graph = FakeGraph::start().await;
    let node = Node::start_with(Some(graph.base.clone()), Vec::new()).await;
    let tenant = provision(&node, "matrix").await;
    customer_writes(&node, &tenant, "5511970000001", "wamid.P1", "Oi").await;
    let (_, inbox) = api_get(&node, &tenant.agent_token, "/api/v1/conversations").await;
    let conversation = inbox["items"][0]["id"].as_str().expect("id").to_string();
    let mut tokens = Vec::new();
    for role in ROLES {
        let (_, token) = add_agent(&node, &tenant, role, role).await;
        tokens.push((role, token));
    }
    let c = format!("/api/v1/conversations/{conversation}");
    // (method, path, body, the roles let through)
    let routes: Vec<(reqwest::Method, String, Option<Value>, &[&str])> = vec![
        (
            reqwest::Method::GET,
            "/api/v1/conversations".into(),
            None,
            &ROLES,
        ),
        (reqwest::Method::GET, format!("{c}/messages"), None, &ROLES),
        (
            reqwest::Method::GET,
            "/api/v1/contacts".into(),
            None,
            &ROLES,
        ),
        (
            reqwest::Method::POST,
            format!("{c}/messages"),
            Some(json!({"text": "Olá"})),
            &["admin", "supervisor", "agent", "bot"],
        ),
        (
            reqwest::Method::POST,
            format!("{c}/read"),
            None,
            &["admin", "supervisor", "agent", "bot"],
        ),
        (
            reqwest::Method::POST,
            format!("{c}/toggle_priority"),
            Some(json!({"priority": "high"})),
            &["admin", "supervisor", "agent", "bot"],
        ),
        (
            reqwest::Method::POST,
            format!("{c}/notes"),
            Some(json!({"content": "nota"})),
            &["admin", "supervisor", "agent", "bot"],
        ),
        (
            reqwest::Method::POST,
            format!("{c}/labels"),
            Some(json!({"add": ["vip"]})),
            &["admin", "supervisor", "agent", "bot"],
        ),
        (
            reqwest::Method::POST,
            "/api/v1/contacts".into(),
            Some(json!({"name": "Cliente"})),
            &["admin", "supervisor", "agent", "bot"],
        ),
        (
            reqwest::Method::GET,
            "/api/v1/feed".into(),
            None,
            &["admin", "supervisor", "auditor", "bot"],
        ),
        (
            reqwest::Method::GET,
            "/api/v1/audit".into(),
            None,
            &["admin", "auditor"],
        ),
        (
            reqwest::Method::POST,
            "/api/v1/canned_responses".into(),
            Some(json!({"short_code": "/oi", "content": "Olá"})),
            &["admin", "supervisor"],
        ),
        (
            reqwest::Method::POST,
            "/api/v1/departments".into(),
            Some(json!({"key": "vendas", "name": "Vendas"})),
            &["admin", "supervisor"],
        ),
    ];
    for (method, path, body, allowed) in &routes {
        for (role, token) in &tokens {
            let (status, answer) =
                api_request(&node, token, method.clone(), path, body.clone()).await;
            if allowed.contains(role) {
                assert_ne!(status, 403, "{role} refused on {method} {path}: {answer}");
                assert!(status < 500, "{role} on {method} {path}: {status} {answer}");
            } else {
                assert_eq!(
                    (status, answer["code"].as_str()),
                    (403, Some("forbidden")),
                    "{role} let through on {method} {path}: {answer}"
                );
            }
        }
    }

    // A transfer's note is as internal as a note.
    let (status, answer) = api_request(
        &node,
        &tokens[0].1,
        reqwest::Method::POST,
        &format!("{c}/transfer"),
        Some(json!({"team_id": "vendas", "note": "motivo secreto"})),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    // Internal notes: every role sees the note event, only those who may read notes see its text.
    for (role, token) in &tokens {
        let (_, all) = api_get(&node, token, &format!("{c}/events?limit=200")).await;
        let shows_transfer_note = all.to_string().contains("motivo secreto");
        assert_eq!(
            shows_transfer_note,
            *role != "bot",
            "{role}: the transfer's note"
        );
        let (status, events) = api_get(&node, token, &format!("{c}/events")).await;
        assert_eq!(status, 200, "{role}: {events}");
        let notes: Vec<&Value> = events["items"]
            .as_array()
            .expect("events")
            .iter()
            .filter(|e| e["event"] == "ticket.note_added")
            .collect();
        assert!(!notes.is_empty(), "{role} sees the note event");
        for note in notes {
            let body = note["data"]["note"]["body"].as_str().unwrap_or_default();
            match *role {
                "bot" => assert!(body.is_empty(), "a bot read a note: {note}"),
                _ => assert_eq!(body, "nota", "{role}: {note}"),
            }
        }
        let (_, replayed) = Agent::connect(
            &node,
            token,
            Some(json!({"positions": {}, "since": (jiff::Timestamp::now() - jiff::SignedDuration::from_mins(10)).to_string()})),
        )
        .await;
        let replayed_notes: Vec<&Value> = replayed
            .iter()
            .filter(|f| f["event"] == "ticket.note_added")
            .collect();
        assert!(
            !replayed_notes.is_empty(),
            "{role}: the replay carries the note events"
        );
        for event in replayed_notes {
            let text = event.to_string();
            match *role {
                "bot" => assert!(
                    !text.contains("nota"),
                    "a bot read a note on its socket: {text}"
                ),
                _ => assert!(text.contains("nota"), "{role}: {text}"),
            }
        }
    }
}

#[tokio::test]
async fn a_tenant_admin_changes_what_a_role_may_do_in_that_tenant_only() {
    let node = Node::start().await;
    let tenant = provision(&node, "roles").await;
    let other = provision(&node, "roles-other").await;
    customer_writes(&node, &tenant, "5511970000002", "wamid.R1", "Oi").await;
    customer_writes(&node, &other, "5511970000003", "wamid.R2", "Oi").await;
    let (_, admin) = add_agent(&node, &tenant, "Ada", "admin").await;
    let (_, supervisor) = add_agent(&node, &tenant, "Sol", "supervisor").await;
    let first = |token: String| {
        let node = &node;
        async move {
            let (_, inbox) = api_get(node, &token, "/api/v1/conversations").await;
            inbox["items"][0]["id"].as_str().expect("id").to_string()
        }
    };
    let mine = first(tenant.agent_token.clone()).await;
    let theirs = first(other.agent_token.clone()).await;
    let put = |token: &str, role: &str, body: Value| {
        let (node, token, path) = (&node, token.to_string(), format!("/api/v1/roles/{role}"));
        async move { api_request(node, &token, reqwest::Method::PUT, &path, Some(body)).await }
    };
    // An agent may note but not reply, and no longer reads notes.
    let (status, set) = put(&admin, "agent", json!({"permissions": ["manage_tickets"]})).await;
    assert_eq!(status, 200, "{set}");
    assert_eq!(set, json!(["manage_tickets"]));
    let (_, roles) = api_get(&node, &tenant.agent_token, "/api/v1/roles").await;
    assert_eq!(roles["agent"], json!(["manage_tickets"]));
    assert!(roles["admin"].as_array().is_some_and(|a| a.len() > 10));
    let send = |token: String, conversation: String| {
        let node = &node;
        async move {
            api_request(
                node,
                &token,
                reqwest::Method::POST,
                &format!("/api/v1/conversations/{conversation}/messages"),
                Some(json!({"text": "Olá"})),
            )
            .await
        }
    };
    let (status, refused) = send(tenant.agent_token.clone(), mine.clone()).await;
    assert_eq!((status, refused["code"].as_str()), (403, Some("forbidden")));
    let (status, _) = api_request(
        &node,
        &tenant.agent_token,
        reqwest::Method::POST,
        &format!("/api/v1/conversations/{mine}/notes"),
        Some(json!({"content": "segredo"})),
    )
    .await;
    assert_eq!(status, 201);
    let (_, events) = api_get(
        &node,
        &tenant.agent_token,
        &format!("/api/v1/conversations/{mine}/events"),
    )
    .await;
    assert!(
        !events.to_string().contains("segredo"),
        "the agent may no longer read notes: {events}"
    );
    let (_, events) = api_get(
        &node,
        &admin,
        &format!("/api/v1/conversations/{mine}/events"),
    )
    .await;
    assert!(events.to_string().contains("segredo"), "the admin may");
    // Another tenant keeps the defaults.
    let (status, answer) = send(other.agent_token.clone(), theirs).await;
    assert_ne!(status, 403, "{answer}");
    // Only admins change roles; admins keep everything; names are checked.
    let (status, _) = put(&supervisor, "agent", json!({"permissions": []})).await;
    assert_eq!(status, 403);
    let (status, _) = put(&admin, "admin", json!({"permissions": []})).await;
    assert_eq!(status, 422);
    let (status, _) = put(&admin, "owner", json!({"permissions": []})).await;
    assert_eq!(status, 404);
    let (status, _) = put(&admin, "agent", json!({"permissions": ["fly"]})).await;
    assert_eq!(status, 400);
    // Back to replying.
    let (status, _) = put(
        &admin,
        "agent",
        json!({"permissions": ["reply", "manage_tickets"]}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, answer) = send(tenant.agent_token.clone(), mine).await;
    assert_ne!(status, 403, "{answer}");
}
