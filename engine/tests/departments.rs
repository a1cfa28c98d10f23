//! End to end on the real binary (issue 14): departments managed by supervisors and validated; a new
//! conversation enters the department its connection feeds; a closed department answers the customer
//! once per period (a stored reply sent through the Cloud API fake), an open one does not; a
//! department that starts new tickets gives a returning customer a new number; and none of it crosses
//! tenants.
//!
//! "Closed" and "open" are fixed by the hours themselves (no opening window on any day; no hours at
//! all), so the outcome never depends on when the test runs; the hours arithmetic itself is tested
//! with fixed instants in `schema::helpdesk::hours`.

mod support;

use serde_json::{Value, json};
use support::fake_graph::FakeGraph;
use support::{
    Agent, Node, Tenant, add_agent, all_messages, api_get, api_post, api_request, customer_writes,
    provision,
};

const CLOSED_MESSAGE: &str = "Estamos fechados agora; respondemos amanhã às 8h.";

/// Hours with no opening window on any day: closed whenever the test runs.
fn never_open() -> Value {
    json!({"time_zone": "America/Sao_Paulo", "weekly": [[], [], [], [], [], [], []], "holidays": []})
}

/// The outbound messages of the contact's conversation, from the inbox.
async fn outbound_texts(node: &Node, token: &str) -> Vec<String> {
    let (_, page) = api_get(node, token, "/api/v1/conversations").await;
    let mut texts = Vec::new();
    for conversation in page["items"].as_array().expect("items") {
        let id = conversation["id"].as_str().expect("id");
        for message in all_messages(node, token, id).await {
            if message["direction"] == "outbound" {
                texts.push(
                    message["content"]["body"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                );
            }
        }
    }
    texts
}

#[tokio::test]
async fn departments_are_managed_by_supervisors_validated_and_kept_per_tenant() {
    let node = Node::start().await;
    let a = provision(&node, "dept-a").await;
    let b = provision(&node, "dept-b").await;
    let (ana, _) = add_agent(&node, &a, "Ana", "agent").await;
    let (_, supervisor) = add_agent(&node, &a, "Sol", "supervisor").await;
    let (b_agent, _) = add_agent(&node, &b, "Bia", "agent").await;
    let (_, b_supervisor) = add_agent(&node, &b, "Beto", "supervisor").await;
    let post = |token: &str, body: Value| {
        let token = token.to_string();
        let node = &node;
        async move {
            api_request(
                node,
                &token,
                reqwest::Method::POST,
                "/api/v1/departments",
                Some(body),
            )
            .await
        }
    };

    let body = json!({"key": "suporte", "name": "Suporte", "members": [ana],
                      "connections": [a.connection_id], "hours": never_open(), "reopen": "new_ticket"});
    let (status, created) = post(&supervisor, body.clone()).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["members"], json!([ana]));
    assert_eq!(
        created["out_of_hours"]["enabled"], true,
        "on by default, with the pt-BR text"
    );
    let (status, _) = post(&supervisor, body.clone()).await;
    assert_eq!(status, 409, "the key is taken");
    let (status, refused) = post(&a.agent_token, json!({"key": "vendas", "name": "Vendas"})).await;
    assert_eq!((status, refused["code"].as_str()), (403, Some("forbidden")));

    for (bad, code) in [
        (
            json!({"key": "com espaço", "name": "X"}),
            "invalid_department",
        ),
        (json!({"key": "x", "name": ""}), "invalid_department"),
        (
            json!({"key": "x", "name": "X", "hours": {"time_zone": "Mars/Olympus", "weekly": [[], [], [], [], [], [], []], "holidays": []}}),
            "invalid_department",
        ),
        (
            json!({"key": "x", "name": "X", "hours": {"time_zone": "UTC", "weekly": [[]], "holidays": []}}),
            "invalid_department",
        ),
        (
            json!({"key": "x", "name": "X", "out_of_hours": {"enabled": true, "message": " ", "every_secs": 3600}}),
            "invalid_department",
        ),
        (
            json!({"key": "x", "name": "X", "members": [b_agent]}),
            "unknown_agent",
        ),
        (
            json!({"key": "x", "name": "X", "connections": [b.connection_id]}),
            "unknown_connection",
        ),
        (json!({"name": "sem chave"}), "invalid_department"),
    ] {
        let (status, answer) = post(&supervisor, bad.clone()).await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (422, Some(code)),
            "{bad}"
        );
    }
    let (status, _) = post(&supervisor, json!({"key": "x", "name": "X", "surprise": 1})).await;
    assert_eq!(status, 400, "unknown fields are refused");

    // Read by any agent of the tenant; replaced whole; removed.
    let (status, listed) = api_get(&node, &a.agent_token, "/api/v1/departments").await;
    assert_eq!((status, listed.as_array().map(Vec::len)), (200, Some(1)));
    let (status, replaced) = api_request(
        &node,
        &supervisor,
        reqwest::Method::PUT,
        "/api/v1/departments/suporte",
        Some(json!({"name": "Suporte N1", "reopen": "reopen"})),
    )
    .await;
    assert_eq!(status, 200, "{replaced}");
    assert_eq!(
        (
            replaced["name"].as_str(),
            replaced["members"].as_array().map(Vec::len)
        ),
        (Some("Suporte N1"), Some(0))
    );
    assert_eq!(replaced["created_at"], created["created_at"]);
    let (status, _) = api_request(
        &node,
        &supervisor,
        reqwest::Method::PUT,
        "/api/v1/departments/suporte",
        Some(json!({"key": "outra", "name": "Outra"})),
    )
    .await;
    assert_eq!(status, 422, "a key cannot change");

    // Another tenant sees none of it, and may use the same key for its own.
    let (_, b_list) = api_get(&node, &b.agent_token, "/api/v1/departments").await;
    assert_eq!(b_list, json!([]));
    let (status, _) = api_get(&node, &b.agent_token, "/api/v1/departments/suporte").await;
    assert_eq!(status, 404);
    for method in [reqwest::Method::PUT, reqwest::Method::DELETE] {
        let body = (method == reqwest::Method::PUT).then(|| json!({"name": "tomada"}));
        let (status, _) = api_request(
            &node,
            &b_supervisor,
            method,
            "/api/v1/departments/suporte",
            body,
        )
        .await;
        assert_eq!(status, 404);
    }
    let (status, _) = post(
        &b_supervisor,
        json!({"key": "suporte", "name": "Suporte de B"}),
    )
    .await;
    assert_eq!(status, 201);
    let (_, still) = api_get(&node, &a.agent_token, "/api/v1/departments/suporte").await;
    assert_eq!(still["name"], "Suporte N1");

    let (status, _) = api_request(
        &node,
        &supervisor,
        reqwest::Method::DELETE,
        "/api/v1/departments/suporte",
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = api_get(&node, &a.agent_token, "/api/v1/departments/suporte").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_closed_department_answers_once_per_period_and_an_open_one_does_not() {
    let graph = FakeGraph::start().await;
    let node = Node::start_with(Some(graph.base.clone()), Vec::new()).await;
    let closed = provision(&node, "closed").await;
    let open = provision(&node, "open").await;
    let (_, closed_supervisor) = add_agent(&node, &closed, "Sol", "supervisor").await;
    let (_, open_supervisor) = add_agent(&node, &open, "Lua", "supervisor").await;
    let (status, _) = api_post(&node, &closed_supervisor, "/api/v1/departments", json!({
        "key": "plantao", "name": "Plantão", "connections": [closed.connection_id], "hours": never_open(),
        "out_of_hours": {"enabled": true, "message": CLOSED_MESSAGE, "every_secs": 3600}})).await;
    assert_eq!(status, 201);
    let (status, _) = api_post(
        &node,
        &open_supervisor,
        "/api/v1/departments",
        json!({
        "key": "sempre", "name": "Sempre aberto", "connections": [open.connection_id]}),
    )
    .await;
    assert_eq!(status, 201);
    let (mut socket, _) = Agent::connect(&node, &closed.agent_token, None).await;

    customer_writes(
        &node,
        &closed,
        "5511955550001",
        "wamid.O1",
        "Oi, tem alguém?",
    )
    .await;
    let events = socket
        .events_until(|e| e.iter().any(|e| e["event"] == "message.status_updated"))
        .await;
    assert_eq!(
        events[0]["data"]["conversation"]["team"], "plantao",
        "entered its connection's department"
    );
    let reply = events
        .iter()
        .find(|e| {
            e["event"] == "message.created" && e["data"]["message"]["direction"] == "outbound"
        })
        .expect("the out-of-hours reply is stored");
    assert_eq!(reply["data"]["message"]["content"]["body"], CLOSED_MESSAGE);
    assert!(
        reply["data"]["message"]["sent_by"].is_null(),
        "sent by the system"
    );
    let sent = graph.requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].body["text"]["body"], CLOSED_MESSAGE);

    // Within the period, the customer's next messages get no second reply (it would be stored in the
    // same turn as the message, before the webhook's 200).
    customer_writes(&node, &closed, "5511955550001", "wamid.O2", "Alô?").await;
    customer_writes(&node, &closed, "5511955550001", "wamid.O3", "???").await;
    assert_eq!(
        outbound_texts(&node, &closed.agent_token).await,
        vec![CLOSED_MESSAGE.to_string()]
    );

    // An always-open department answers nothing by itself.
    customer_writes(&node, &open, "5511955550002", "wamid.O4", "Bom dia").await;
    assert_eq!(
        outbound_texts(&node, &open.agent_token).await,
        Vec::<String>::new()
    );
    let (_, conversations) = api_get(
        &node,
        &open.agent_token,
        "/api/v1/conversations?team=sempre",
    )
    .await;
    assert_eq!(
        conversations["items"].as_array().map(Vec::len),
        Some(1),
        "listed in its department's view"
    );
    assert_eq!(graph.requests().len(), 1);
}

#[tokio::test]
async fn a_department_that_starts_new_tickets_gives_a_returning_customer_a_new_number() {
    let node = Node::start().await;
    let tenant = provision(&node, "new-ticket").await;
    let (_, supervisor) = add_agent(&node, &tenant, "Sol", "supervisor").await;
    let (status, _) = api_post(&node, &supervisor, "/api/v1/departments", json!({
        "key": "vendas", "name": "Vendas", "connections": [tenant.connection_id], "reopen": "new_ticket"})).await;
    assert_eq!(status, 201);
    let (mut socket, _) = Agent::connect(&node, &tenant.agent_token, None).await;
    customer_writes(&node, &tenant, "5511966660001", "wamid.V1", "Quero comprar").await;
    let events = socket.events_until(|e| e.len() >= 2).await;
    let conversation = events[0]["conversation_id"]
        .as_str()
        .expect("id")
        .to_string();
    assert_eq!(events[0]["data"]["conversation"]["ticket_number"], 1);

    let (status, _) = api_post(
        &node,
        &tenant.agent_token,
        &format!("/api/v1/conversations/{conversation}/toggle_status"),
        json!({"status": "resolved"}),
    )
    .await;
    assert_eq!(status, 200);
    customer_writes(
        &node,
        &tenant,
        "5511966660001",
        "wamid.V2",
        "Voltei, quero mais",
    )
    .await;
    let events = socket
        .events_until(|e| e.iter().any(|e| e["event"] == "ticket.opened"))
        .await;
    let opened = events
        .iter()
        .find(|e| e["event"] == "ticket.opened")
        .expect("a new ticket");
    assert_eq!(opened["data"]["number"], 2);
    assert!(opened["data"]["by"].is_null());
    let (_, now) = api_get(
        &node,
        &tenant.agent_token,
        &format!("/api/v1/conversations/{conversation}"),
    )
    .await;
    assert_eq!(
        (
            now["ticket_number"].as_u64(),
            now["status"].as_str(),
            now["team"].as_str()
        ),
        (Some(2), Some("open"), Some("vendas"))
    );
}

/// The conversation's ticket number and status.
async fn ticket_of(node: &Node, token: &str, conversation: &str) -> (Option<u64>, Option<String>) {
    let (_, now) = api_get(
        node,
        token,
        &format!("/api/v1/conversations/{conversation}"),
    )
    .await;
    (
        now["ticket_number"].as_u64(),
        now["status"].as_str().map(str::to_owned),
    )
}

async fn resolve(node: &Node, token: &str, conversation: &str) {
    let path = format!("/api/v1/conversations/{conversation}/toggle_status");
    let (status, _) = api_post(node, token, &path, json!({"status": "resolved"})).await;
    assert_eq!(status, 200);
}

/// A tenant whose connection feeds the department `vendas`, its supervisor's token, and the agent's
/// socket.
async fn sales_fed_by_its_connection(node: &Node, name: &str) -> (Tenant, String, Agent) {
    let tenant = provision(node, name).await;
    let (_, supervisor) = add_agent(node, &tenant, "Sol", "supervisor").await;
    let (status, _) = api_post(
        node,
        &supervisor,
        "/api/v1/departments",
        json!({"key": "vendas", "name": "Vendas", "connections": [tenant.connection_id]}),
    )
    .await;
    assert_eq!(status, 201);
    let (socket, _) = Agent::connect(node, &tenant.agent_token, None).await;
    (tenant, supervisor, socket)
}

#[tokio::test]
async fn an_edit_reaches_a_live_conversation_of_the_department_on_its_next_message() {
    let node = Node::start().await;
    let (tenant, supervisor, mut socket) = sales_fed_by_its_connection(&node, "edited").await;
    let token = tenant.agent_token.clone();
    customer_writes(&node, &tenant, "5511977770001", "wamid.E1", "Oi").await;
    let events = socket.events_until(|e| e.len() >= 2).await;
    let conversation = events[0]["conversation_id"].as_str().expect("id");
    let open = |number: u64| (Some(number), Some("open".to_owned()));
    assert_eq!(ticket_of(&node, &token, conversation).await, open(1));

    // The default policy reopens the same ticket; the conversation's actor has read it.
    resolve(&node, &token, conversation).await;
    customer_writes(&node, &tenant, "5511977770001", "wamid.E2", "Voltei").await;
    assert_eq!(ticket_of(&node, &token, conversation).await, open(1));

    // The supervisor switches the department to new tickets; the very next message follows it, with
    // the actor still live (not once the department's read has gone stale).
    let (status, _) = api_request(
        &node,
        &supervisor,
        reqwest::Method::PUT,
        "/api/v1/departments/vendas",
        Some(json!({
        "name": "Vendas", "connections": [tenant.connection_id], "reopen": "new_ticket"})),
    )
    .await;
    assert_eq!(status, 200);
    resolve(&node, &token, conversation).await;
    customer_writes(
        &node,
        &tenant,
        "5511977770001",
        "wamid.E3",
        "Voltei de novo",
    )
    .await;
    assert_eq!(ticket_of(&node, &token, conversation).await, open(2));
}

#[tokio::test]
async fn a_connection_moved_to_another_department_sends_its_next_new_conversation_there() {
    let node = Node::start().await;
    let (tenant, supervisor, mut socket) = sales_fed_by_its_connection(&node, "moved").await;
    customer_writes(&node, &tenant, "5511988880001", "wamid.M1", "Oi").await;
    let events = socket.events_until(|e| e.len() >= 2).await;
    assert_eq!(events[0]["data"]["conversation"]["team"], "vendas");

    // The connection moves to a new department: the next new conversation enters it at once.
    let (status, _) = api_request(
        &node,
        &supervisor,
        reqwest::Method::PUT,
        "/api/v1/departments/vendas",
        Some(json!({"name": "Vendas", "connections": []})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = api_post(
        &node,
        &supervisor,
        "/api/v1/departments",
        json!({
        "key": "suporte", "name": "Suporte", "connections": [tenant.connection_id]}),
    )
    .await;
    assert_eq!(status, 201);
    customer_writes(
        &node,
        &tenant,
        "5511988880002",
        "wamid.M2",
        "Preciso de ajuda",
    )
    .await;
    let events = socket
        .events_until(|e| {
            e.iter()
                .any(|e| e["data"]["conversation"]["contact"]["address"] == "5511988880002")
        })
        .await;
    let opened = events
        .iter()
        .find(|e| e["data"]["conversation"]["contact"]["address"] == "5511988880002")
        .expect("the new conversation");
    assert_eq!(opened["data"]["conversation"]["team"], "suporte");
}
