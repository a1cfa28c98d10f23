//! End to end on the real binary (issue 14): automatic distribution. Presence comes from the agents'
//! WebSockets; a department distributes round robin or by least load among its online members below
//! its capacity; a ticket nobody can take waits and is given out once someone has room; a ticket
//! whose agent does not reply in time goes to another.
//!
//! Distribution runs from the store's due index, so the tests wait (bounded, `eventually`) for the
//! outcome and never for a fixed time.

mod support;

use serde_json::{Value, json};
use support::{Agent, Node, Tenant, add_agent, api_get, api_post, eventually, provision};

async fn customer_writes(node: &Node, tenant: &Tenant, from: &str, wamid: &str) {
    support::customer_writes(node, tenant, from, wamid, "Preciso de ajuda").await;
}

/// The conversation with `contact`.
async fn conversation_of(node: &Node, tenant: &Tenant, contact: &str) -> Value {
    let (_, page) = api_get(node, &tenant.agent_token, "/api/v1/conversations?limit=200").await;
    page["items"]
        .as_array()
        .and_then(|items| {
            items
                .iter()
                .find(|c| c["contact"]["address"] == contact)
                .cloned()
        })
        .unwrap_or(Value::Null)
}

/// Waits until the conversation with `contact` is assigned; returns the agent.
async fn assigned(node: &Node, tenant: &Tenant, contact: &str) -> String {
    eventually(&format!("the ticket of {contact} is assigned"), || async {
        conversation_of(node, tenant, contact).await["assignee"]
            .as_str()
            .map(str::to_string)
    })
    .await
}

/// Waits until the tenant's presence lists exactly `agents` as online.
async fn online(node: &Node, tenant: &Tenant, agents: &[&str]) {
    let mut want: Vec<&str> = agents.to_vec();
    want.sort_unstable();
    eventually("presence shows who is online", || async {
        let (_, list) = api_get(node, &tenant.agent_token, "/api/v1/presence").await;
        let mut now: Vec<String> = list
            .as_array()?
            .iter()
            .filter(|p| p["status"] == "online")
            .filter_map(|p| p["agent"].as_str().map(str::to_string))
            .collect();
        now.sort_unstable();
        (now == want).then_some(())
    })
    .await;
}

async fn department(node: &Node, tenant: &Tenant, body: Value) {
    let (_, supervisor) = add_agent(node, tenant, "Sol", "supervisor").await;
    let (status, created) = api_post(node, &supervisor, "/api/v1/departments", body).await;
    assert_eq!(status, 201, "{created}");
}

#[tokio::test]
async fn round_robin_takes_turns_within_capacity_and_a_waiting_ticket_goes_out_when_room_frees() {
    let node = Node::start().await;
    let tenant = provision(&node, "round-robin").await;
    let (ana, ana_token) = add_agent(&node, &tenant, "Ana", "agent").await;
    let (bia, bia_token) = add_agent(&node, &tenant, "Bia", "agent").await;
    department(
        &node,
        &tenant,
        json!({"key": "suporte", "name": "Suporte", "members": [ana, bia],
        "connections": [tenant.connection_id], "distribution": "round_robin", "agent_capacity": 2}),
    )
    .await;
    let (_ana_socket, _) = Agent::connect(&node, &ana_token, None).await;
    let (_bia_socket, _) = Agent::connect(&node, &bia_token, None).await;
    online(&node, &tenant, &[&ana, &bia]).await;

    // Turns, with room to spare: Ana, Bia, Ana, Bia.
    for (n, expected) in [(1, &ana), (2, &bia), (3, &ana), (4, &bia)] {
        let contact = format!("551198000000{n}");
        customer_writes(&node, &tenant, &contact, &format!("wamid.R{n}")).await;
        assert_eq!(
            &assigned(&node, &tenant, &contact).await,
            expected,
            "ticket {n}"
        );
    }

    // Both at capacity (2): the fifth waits, looking again later.
    customer_writes(&node, &tenant, "5511980000005", "wamid.R5").await;
    let waiting = eventually("the fifth ticket looked for an agent and waits", || async {
        let c = conversation_of(&node, &tenant, "5511980000005").await;
        (c["distribute_attempts"].as_u64().unwrap_or(0) >= 1).then_some(c)
    })
    .await;
    assert!(waiting["assignee"].is_null(), "nobody had room: {waiting}");

    // Ana resolves one of hers: the waiting ticket goes to her.
    let first = conversation_of(&node, &tenant, "5511980000001").await;
    let (status, _) = api_post(
        &node,
        &ana_token,
        &format!(
            "/api/v1/conversations/{}/toggle_status",
            first["id"].as_str().unwrap()
        ),
        json!({"status": "resolved"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(assigned(&node, &tenant, "5511980000005").await, ana);
    let (_, mine) = api_get(&node, &ana_token, "/api/v1/conversations?mine=true").await;
    let mut mine: Vec<&str> = mine["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["contact"]["address"].as_str())
        .collect();
    mine.sort_unstable();
    assert_eq!(
        mine,
        vec!["5511980000003", "5511980000005"],
        "her active tickets"
    );
}

#[tokio::test]
async fn least_load_prefers_the_least_busy_online_member_and_skips_away_and_offline_ones() {
    let node = Node::start().await;
    let tenant = provision(&node, "least-load").await;
    let (ana, ana_token) = add_agent(&node, &tenant, "Ana", "agent").await;
    let (bia, bia_token) = add_agent(&node, &tenant, "Bia", "agent").await;
    let (caio, _) = add_agent(&node, &tenant, "Caio", "agent").await;
    department(
        &node,
        &tenant,
        json!({"key": "vendas", "name": "Vendas", "members": [ana, bia, caio],
        "connections": [tenant.connection_id], "distribution": "least_load"}),
    )
    .await;
    let (_ana_socket, _) = Agent::connect(&node, &ana_token, None).await;
    let (mut bia_socket, _) = Agent::connect(&node, &bia_token, None).await;
    online(&node, &tenant, &[&ana, &bia]).await;

    customer_writes(&node, &tenant, "5511981000001", "wamid.L1").await;
    assert_eq!(
        assigned(&node, &tenant, "5511981000001").await,
        ana,
        "a tie goes to the first member"
    );
    customer_writes(&node, &tenant, "5511981000002", "wamid.L2").await;
    assert_eq!(
        assigned(&node, &tenant, "5511981000002").await,
        bia,
        "the least busy"
    );

    customer_writes(&node, &tenant, "5511981000009", "wamid.L9").await;
    assert_eq!(
        assigned(&node, &tenant, "5511981000009").await,
        ana,
        "a tie again"
    );

    // Bia (one ticket) steps away, Caio never connected: Ana (two) takes the next one.
    bia_socket
        .send(json!({"type": "presence", "status": "away"}))
        .await;
    eventually("Bia is away", || async {
        let (_, list) = api_get(&node, &tenant.agent_token, "/api/v1/presence").await;
        list.as_array()?
            .iter()
            .any(|p| p["agent"] == bia.as_str() && p["status"] == "away")
            .then_some(())
    })
    .await;
    customer_writes(&node, &tenant, "5511981000003", "wamid.L3").await;
    assert_eq!(assigned(&node, &tenant, "5511981000003").await, ana);
}

#[tokio::test]
async fn a_ticket_whose_agent_does_not_reply_in_time_goes_to_another() {
    let node = Node::start().await;
    let tenant = provision(&node, "reassign").await;
    let (ana, ana_token) = add_agent(&node, &tenant, "Ana", "agent").await;
    let (bia, bia_token) = add_agent(&node, &tenant, "Bia", "agent").await;
    department(&node, &tenant, json!({"key": "suporte", "name": "Suporte", "members": [ana, bia],
        "connections": [tenant.connection_id], "distribution": "round_robin", "reassign_after_secs": 5})).await;
    let (_ana_socket, _) = Agent::connect(&node, &ana_token, None).await;
    let (_bia_socket, _) = Agent::connect(&node, &bia_token, None).await;
    online(&node, &tenant, &[&ana, &bia]).await;

    customer_writes(&node, &tenant, "5511982000001", "wamid.A1").await;
    assert_eq!(assigned(&node, &tenant, "5511982000001").await, ana);
    let conversation = conversation_of(&node, &tenant, "5511982000001").await;
    let id = conversation["id"].as_str().unwrap().to_string();
    assert!(
        conversation["answer_by"].is_string(),
        "Ana must reply by then: {conversation}"
    );

    // Ana does not reply: the ticket goes to Bia (the only other one who can take it), by the system.
    let moved = eventually("the ticket goes to another agent", || async {
        let c = conversation_of(&node, &tenant, "5511982000001").await;
        (c["assignee"] == bia.as_str()).then_some(c)
    })
    .await;
    assert!(moved["answer_by"].is_string());
    let (_, events) = api_get(
        &node,
        &tenant.agent_token,
        &format!("/api/v1/conversations/{id}/events?limit=200"),
    )
    .await;
    let moves: Vec<&Value> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "ticket.assigned" && e["data"]["assignee"] == bia.as_str())
        .collect();
    assert_eq!(moves.len(), 1);
    assert_eq!(
        moves[0]["data"]["previous"],
        ana.as_str(),
        "from Ana straight to Bia"
    );
    assert!(moves[0]["data"]["by"].is_null(), "by the system");

    // Bia replies in time: it stays hers.
    let (status, _) = api_post(
        &node,
        &bia_token,
        &format!("/api/v1/conversations/{id}/messages"),
        json!({"text": "Oi, sou a Bia"}),
    )
    .await;
    assert_eq!(status, 202);
    let (_, after) = api_get(
        &node,
        &tenant.agent_token,
        &format!("/api/v1/conversations/{id}"),
    )
    .await;
    assert!(after.get("answer_by").is_none_or(Value::is_null), "{after}");
    assert_eq!(after["assignee"], bia.as_str());
}

#[tokio::test]
async fn a_department_that_starts_distributing_gives_out_the_tickets_already_waiting() {
    let node = Node::start().await;
    let tenant = provision(&node, "switch").await;
    let (ana, ana_token) = add_agent(&node, &tenant, "Ana", "agent").await;
    let (_, supervisor) = add_agent(&node, &tenant, "Sol", "supervisor").await;
    let body = json!({"key": "suporte", "name": "Suporte", "members": [ana],
        "connections": [tenant.connection_id]});
    let (status, _) = api_post(&node, &supervisor, "/api/v1/departments", body.clone()).await;
    assert_eq!(status, 201);
    let (_ana_socket, _) = Agent::connect(&node, &ana_token, None).await;
    online(&node, &tenant, &[&ana]).await;
    customer_writes(&node, &tenant, "5511983000001", "wamid.W1").await;
    let waiting = conversation_of(&node, &tenant, "5511983000001").await;
    assert!(waiting["assignee"].is_null(), "manual: nobody is assigned");

    let mut automatic = body;
    automatic["distribution"] = json!("round_robin");
    automatic.as_object_mut().unwrap().remove("key");
    let (status, changed) = support::api_request(
        &node,
        &supervisor,
        reqwest::Method::PUT,
        "/api/v1/departments/suporte",
        Some(automatic),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(assigned(&node, &tenant, "5511983000001").await, ana);
}
