//! End to end on the real binary (issue 14): a ticket's life through the REST routes agents know from
//! Chatwoot — numbered on its first message, assigned, prioritised, tagged, noted, transferred to a
//! department, snoozed and woken, resolved and reopened by the customer — with every change live on
//! the agent's WebSocket, in the conversation's history and in the tenant's durable feed; and none of
//! it reachable from another tenant.

mod support;

use serde_json::{Value, json};
use std::time::Duration;
use support::{Agent, Node, add_agent, api_get, api_post, customer_writes, provision};

/// Events until one named `name` arrives; returns it.
async fn next_named(agent: &mut Agent, name: &str) -> Value {
    let events = agent
        .events_until(|e| e.last().is_some_and(|e| e["event"] == name))
        .await;
    events.last().cloned().expect("the event")
}

async fn ticket(
    node: &Node,
    token: &str,
    conversation: &str,
    route: &str,
    body: Value,
) -> (u16, Value) {
    api_post(
        node,
        token,
        &format!("/api/v1/conversations/{conversation}/{route}"),
        body,
    )
    .await
}

#[tokio::test]
async fn a_ticket_lives_from_first_message_through_transfer_resolution_and_reopen() {
    let node = Node::start().await;
    let tenant = provision(&node, "helpdesk").await;
    let token = tenant.agent_token.clone();
    let (ana, _) = add_agent(&node, &tenant, "Ana", "agent").await;
    let (_, supervisor) = add_agent(&node, &tenant, "Sol", "supervisor").await;
    let (mut socket, _) = Agent::connect(&node, &token, None).await;

    // Two contacts: two tickets, numbered in order.
    customer_writes(
        &node,
        &tenant,
        "5511911110001",
        "wamid.H1",
        "Oi, preciso da 2ª via",
    )
    .await;
    let created = next_named(&mut socket, "conversation.created").await;
    let conversation = created["conversation_id"].as_str().expect("id").to_string();
    assert_eq!(created["data"]["conversation"]["ticket_number"], 1);
    customer_writes(&node, &tenant, "5511911110002", "wamid.H2", "Bom dia").await;
    let second = next_named(&mut socket, "conversation.created").await;
    assert_eq!(second["data"]["conversation"]["ticket_number"], 2);

    // Assigned to Ana: she is attending it.
    let (status, after) = ticket(
        &node,
        &token,
        &conversation,
        "assignments",
        json!({"assignee_id": ana}),
    )
    .await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(after["assignee"], ana.as_str());
    assert_eq!(after["status"], "in_progress");
    let assigned = next_named(&mut socket, "ticket.assigned").await;
    assert_eq!(assigned["data"]["assignee"], ana.as_str());
    assert!(
        assigned["data"]["by"].is_string(),
        "who assigned it: {assigned}"
    );
    let moved = next_named(&mut socket, "ticket.status_changed").await;
    assert_eq!(
        (moved["data"]["from"].as_str(), moved["data"]["to"].as_str()),
        (Some("open"), Some("in_progress"))
    );
    // The same assignment again changes nothing and records nothing.
    let (status, again) = ticket(
        &node,
        &token,
        &conversation,
        "assignments",
        json!({"assignee_id": ana}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(again["last_seq"], after["last_seq"]);

    let (status, after) = ticket(
        &node,
        &token,
        &conversation,
        "toggle_priority",
        json!({"priority": "urgent"}),
    )
    .await;
    assert_eq!((status, after["priority"].as_str()), (200, Some("urgent")));
    next_named(&mut socket, "ticket.priority_changed").await;

    let (status, after) = ticket(
        &node,
        &token,
        &conversation,
        "labels",
        json!({"labels": ["VIP", "boleto"]}),
    )
    .await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(after["tags"], json!(["vip", "boleto"]));
    let (_, after) = ticket(
        &node,
        &token,
        &conversation,
        "labels",
        json!({"labels": ["vip"]}),
    )
    .await;
    assert_eq!(after["tags"], json!(["vip"]));
    let tagged = next_named(&mut socket, "ticket.tagged").await;
    assert_eq!(tagged["data"]["added"], json!(["vip", "boleto"]));
    let tagged = next_named(&mut socket, "ticket.tagged").await;
    assert_eq!(tagged["data"]["removed"], json!(["boleto"]));

    // The inbox views follow: by priority, by tag, the agent's own; not among the unassigned.
    let listed = |query: &'static str| {
        let (node, token) = (&node, token.clone());
        async move {
            let (status, page) =
                api_get(node, &token, &format!("/api/v1/conversations?{query}")).await;
            assert_eq!(status, 200, "{query}: {page}");
            page["items"]
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|c| c["id"].as_str().map(str::to_string))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        }
    };
    assert_eq!(listed("priority=urgent").await, vec![conversation.clone()]);
    assert_eq!(listed("tag=VIP").await, vec![conversation.clone()]);
    assert!(listed("tag=boleto").await.is_empty());
    assert!(!listed("unassigned=true").await.contains(&conversation));
    assert!(
        listed("unassigned=true")
            .await
            .contains(&second["conversation_id"].as_str().unwrap().to_string())
    );
    let (status, body) = api_get(
        &node,
        &token,
        "/api/v1/conversations?priority=urgent&tag=vip",
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("one_filter_at_most"))
    );

    let (status, note) = ticket(
        &node,
        &token,
        &conversation,
        "notes",
        json!({"content": "Cliente VIP, ligar se preciso"}),
    )
    .await;
    assert_eq!(status, 201, "{note}");
    let noted = next_named(&mut socket, "ticket.note_added").await;
    assert_eq!(noted["data"]["note"]["id"], note["id"]);
    assert_eq!(
        noted["data"]["note"]["body"],
        "Cliente VIP, ligar se preciso"
    );

    // To the finance department's queue, with a note: unassigned, open again. A department that does
    // not exist is refused.
    let (status, refused) = ticket(
        &node,
        &token,
        &conversation,
        "transfer",
        json!({"team_id": "nao-existe"}),
    )
    .await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (422, Some("unknown_department"))
    );
    let (status, created) = api_post(
        &node,
        &supervisor,
        "/api/v1/departments",
        json!({"key": "financeiro", "name": "Financeiro"}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let (status, after) = ticket(
        &node,
        &token,
        &conversation,
        "transfer",
        json!({"team_id": "financeiro", "note": "2ª via de boleto"}),
    )
    .await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(
        (
            after["team"].as_str(),
            after["assignee"].is_null(),
            after["status"].as_str()
        ),
        (Some("financeiro"), true, Some("open"))
    );
    let transferred = next_named(&mut socket, "ticket.transferred").await;
    assert_eq!(transferred["data"]["from_agent"], ana.as_str());
    assert_eq!(transferred["data"]["to_team"], "financeiro");
    assert_eq!(transferred["data"]["note"], "2ª via de boleto");

    // Snoozed; the customer's next message wakes it.
    let until = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(2);
    let (status, after) = ticket(
        &node,
        &token,
        &conversation,
        "toggle_status",
        json!({"status": "snoozed", "snoozed_until": until.to_string()}),
    )
    .await;
    assert_eq!(status, 200, "{after}");
    assert!(after["snoozed_until"].is_string());
    next_named(&mut socket, "ticket.snoozed").await;
    customer_writes(&node, &tenant, "5511911110001", "wamid.H3", "Alô?").await;
    let woken = next_named(&mut socket, "ticket.snoozed").await;
    assert!(woken["data"]["until"].is_null(), "{woken}");

    // Resolved; a closed ticket refuses what only an open one can do.
    let (status, after) = ticket(
        &node,
        &token,
        &conversation,
        "toggle_status",
        json!({"status": "resolved"}),
    )
    .await;
    assert_eq!((status, after["status"].as_str()), (200, Some("resolved")));
    let (status, refused) = ticket(
        &node,
        &token,
        &conversation,
        "toggle_status",
        json!({"status": "waiting"}),
    )
    .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["code"], "invalid_change");
    let (status, _) = ticket(
        &node,
        &token,
        &conversation,
        "transfer",
        json!({"assignee_id": ana}),
    )
    .await;
    assert_eq!(status, 422);

    // The customer writes again: the same ticket reopens (the default reopen policy).
    customer_writes(
        &node,
        &tenant,
        "5511911110001",
        "wamid.H4",
        "Ainda não chegou",
    )
    .await;
    let reopened = next_named(&mut socket, "ticket.status_changed").await;
    let reopened = if reopened["data"]["to"] == "open" {
        reopened
    } else {
        next_named(&mut socket, "ticket.status_changed").await
    };
    assert_eq!(
        (
            reopened["data"]["from"].as_str(),
            reopened["data"]["to"].as_str()
        ),
        (Some("resolved"), Some("open"))
    );
    assert!(
        reopened["data"]["by"].is_null(),
        "reopened by the customer: {reopened}"
    );
    let (_, now) = api_get(
        &node,
        &token,
        &format!("/api/v1/conversations/{conversation}"),
    )
    .await;
    assert_eq!(
        (now["status"].as_str(), now["ticket_number"].as_u64()),
        (Some("open"), Some(1))
    );

    // The history holds every change, in order, with the agent who made it.
    let (status, history) = api_get(
        &node,
        &token,
        &format!("/api/v1/conversations/{conversation}/events?limit=200"),
    )
    .await;
    assert_eq!(status, 200);
    let names: Vec<&str> = history["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    for name in [
        "ticket.assigned",
        "ticket.priority_changed",
        "ticket.tagged",
        "ticket.note_added",
        "ticket.transferred",
        "ticket.snoozed",
        "ticket.status_changed",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }

    // The durable feed holds the tenant's events of both conversations, for the supervisor only.
    let (status, page) = api_get(&node, &supervisor, "/api/v1/feed?limit=1000").await;
    assert_eq!(status, 200, "{page}");
    let fed: Vec<(String, u64)> = page["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            (
                e["conversation_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                e["seq"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let last_seq = now["last_seq"].as_u64().expect("last seq");
    for seq in 1..=last_seq {
        assert!(
            fed.contains(&(conversation.clone(), seq)),
            "seq {seq} missing from the feed"
        );
    }
    assert!(
        fed.iter().any(|(c, _)| c != &conversation),
        "the second conversation is in the feed"
    );
    let cursor = page["next"].as_str().expect("cursor");
    let (_, rest) = api_get(&node, &supervisor, &format!("/api/v1/feed?cursor={cursor}")).await;
    assert_eq!(rest["events"], json!([]), "nothing after the end");
    let (status, forbidden) = api_get(&node, &token, "/api/v1/feed").await;
    assert_eq!(status, 403, "{forbidden}");
    let (status, bad) = api_get(&node, &supervisor, "/api/v1/feed?cursor=not-a-cursor").await;
    assert_eq!(
        (status, bad["code"].as_str()),
        (400, Some("invalid_request"))
    );
}

#[tokio::test]
async fn ticket_changes_refuse_bad_input_with_problem_details() {
    let node = Node::start().await;
    let tenant = provision(&node, "bad-input").await;
    let token = tenant.agent_token.clone();
    let (mut socket, _) = Agent::connect(&node, &token, None).await;
    customer_writes(&node, &tenant, "5511922220001", "wamid.B1", "Oi").await;
    let created = next_named(&mut socket, "conversation.created").await;
    let conversation = created["conversation_id"].as_str().expect("id").to_string();

    let cases = [
        ("toggle_status", json!({"status": "closed"}), 422),
        (
            "toggle_status",
            json!({"status": "snoozed", "snoozed_until": "2001-01-01T00:00:00Z"}),
            422,
        ),
        ("toggle_priority", json!({"priority": "whenever"}), 400),
        ("labels", json!({"labels": ["não pode ter espaço"]}), 422),
        ("labels", json!({"labels": ["a"], "add": ["b"]}), 422),
        ("assignments", json!({}), 422),
        ("assignments", json!({"assignee_id": "not-a-uuid"}), 400),
        (
            "assignments",
            json!({"assignee_id": uuid::Uuid::now_v7().to_string()}),
            422,
        ),
        ("transfer", json!({"note": "para ninguém"}), 422),
        ("transfer", json!({"team_id": "com espaço"}), 422),
        ("notes", json!({"content": "   "}), 422),
        ("notes", json!({"content": "x".repeat(9000)}), 422),
        ("notes", json!({"body": "campo errado"}), 400),
    ];
    for (route, body, expected) in cases {
        let response = reqwest::Client::new()
            .post(node.url(&format!("/api/v1/conversations/{conversation}/{route}")))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .expect("POST");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert_eq!(status, expected, "{route} {body}");
        assert_eq!(content_type, "application/problem+json", "{route} {body}");
    }
    let (status, _) = ticket(
        &node,
        &token,
        &uuid::Uuid::now_v7().to_string(),
        "toggle_priority",
        json!({"priority": "high"}),
    )
    .await;
    assert_eq!(status, 404, "an unknown conversation");
    let (_, unchanged) = api_get(
        &node,
        &token,
        &format!("/api/v1/conversations/{conversation}"),
    )
    .await;
    assert_eq!(
        unchanged["last_seq"], 2,
        "no refused change recorded anything"
    );
    assert_eq!(unchanged["priority"], "normal");
}

#[tokio::test]
async fn ticket_routes_events_and_the_feed_never_cross_tenants() {
    let node = Node::start().await;
    let a = provision(&node, "tenant-a").await;
    let b = provision(&node, "tenant-b").await;
    let (a_agent, _) = add_agent(&node, &a, "Ana", "agent").await;
    let (_, b_supervisor) = add_agent(&node, &b, "Bia", "supervisor").await;
    let (mut a_socket, _) = Agent::connect(&node, &a.agent_token, None).await;
    let (mut b_socket, _) = Agent::connect(&node, &b.agent_token, None).await;
    customer_writes(&node, &a, "5511933330001", "wamid.T1", "Oi A").await;
    let created = next_named(&mut a_socket, "conversation.created").await;
    let a_conversation = created["conversation_id"].as_str().expect("id").to_string();
    customer_writes(&node, &b, "5511933330002", "wamid.T2", "Oi B").await;
    let b_created = next_named(&mut b_socket, "conversation.created").await;
    let b_conversation = b_created["conversation_id"]
        .as_str()
        .expect("id")
        .to_string();
    next_named(&mut b_socket, "message.created").await;
    assert_eq!(
        b_created["data"]["conversation"]["ticket_number"], 1,
        "each tenant numbers its own tickets"
    );

    // B's agent cannot touch A's ticket, whatever the route (not even with B's own department).
    let (status, _) = api_post(
        &node,
        &b_supervisor,
        "/api/v1/departments",
        json!({"key": "x", "name": "X"}),
    )
    .await;
    assert_eq!(status, 201);
    for (route, body) in [
        ("assignments", json!({"assignee_id": null})),
        ("transfer", json!({"team_id": "x"})),
        ("toggle_status", json!({"status": "resolved"})),
        ("toggle_priority", json!({"priority": "low"})),
        ("labels", json!({"labels": ["x"]})),
        ("notes", json!({"content": "x"})),
    ] {
        let (status, body) = ticket(&node, &b.agent_token, &a_conversation, route, body).await;
        assert_eq!(status, 404, "{route}: {body}");
    }
    // Nor give its own ticket to A's agent.
    let (status, body) = ticket(
        &node,
        &b.agent_token,
        &b_conversation,
        "assignments",
        json!({"assignee_id": a_agent}),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("unknown_agent"))
    );

    // A's change reaches A's socket only, and A's feed only.
    let (status, _) = ticket(
        &node,
        &a.agent_token,
        &a_conversation,
        "toggle_priority",
        json!({"priority": "high"}),
    )
    .await;
    assert_eq!(status, 200);
    next_named(&mut a_socket, "ticket.priority_changed").await;
    assert!(
        b_socket
            .receives_nothing_within(Duration::from_millis(500))
            .await,
        "B saw A's event"
    );
    let (_, page) = api_get(&node, &b_supervisor, "/api/v1/feed?limit=1000").await;
    let events = page["events"].as_array().expect("events");
    assert!(!events.is_empty());
    assert!(
        events
            .iter()
            .all(|e| e["tenant_id"] == b.tenant_id.as_str()),
        "B's feed holds another tenant's events"
    );
}

#[tokio::test]
async fn ticket_numbers_continue_after_a_restart_and_are_never_reused() {
    let node = Node::start().await;
    let tenant = provision(&node, "restart").await;
    customer_writes(&node, &tenant, "5511944440001", "wamid.N1", "um").await;
    customer_writes(&node, &tenant, "5511944440002", "wamid.N2", "dois").await;
    let mut node = node;
    assert!(node.terminate().await, "the node drains and stops");
    let node = node.restart().await;
    customer_writes(&node, &tenant, "5511944440003", "wamid.N3", "três").await;
    let (_, page) = api_get(&node, &tenant.agent_token, "/api/v1/conversations").await;
    let mut numbers: Vec<u64> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|c| c["ticket_number"].as_u64())
        .collect();
    numbers.sort_unstable();
    assert_eq!(numbers, vec![1, 2, 3]);
}
