//! End to end on the real binary (issue 15): the satisfaction survey behind the `service_rating`
//! flag. Resolving a ticket asks the customer for a score (sent through the provider), a score rates
//! the ticket without reopening it, anything else is an ordinary message, and only roles with
//! `close_without_survey` may resolve without asking.

mod support;

use serde_json::{Value, json};
use support::fake_graph::FakeGraph;
use support::{
    Node, Tenant, add_agent, all_conversations, all_messages, api_get, api_request,
    customer_writes, eventually, provision,
};

async fn resolve(node: &Node, token: &str, conversation: &str, skip_survey: bool) -> (u16, Value) {
    api_request(
        node,
        token,
        reqwest::Method::POST,
        &format!("/api/v1/conversations/{conversation}/toggle_status"),
        Some(json!({"status": "resolved", "skip_survey": skip_survey})),
    )
    .await
}

fn asked(graph: &FakeGraph, tenant: &Tenant) -> usize {
    graph
        .requests()
        .iter()
        .filter(|r| r.phone_number_id == tenant.phone_number_id)
        .filter(|r| {
            r.body["text"]["body"]
                .as_str()
                .is_some_and(|b| b.contains("de 1 (ruim) a 5"))
        })
        .count()
}

#[tokio::test]
async fn a_resolved_ticket_asks_for_a_score_and_the_score_rates_it_without_reopening() {
    let graph = FakeGraph::start().await;
    let node = Node::start_with(Some(graph.base.clone()), Vec::new()).await;
    let tenant = provision(&node, "survey").await;
    let (_, admin) = add_agent(&node, &tenant, "Ada", "admin").await;
    let (_, supervisor) = add_agent(&node, &tenant, "Sol", "supervisor").await;
    let agent = tenant.agent_token.clone();
    customer_writes(
        &node,
        &tenant,
        "5511970000501",
        "wamid.S1",
        "meu pedido atrasou",
    )
    .await;
    let conversation = all_conversations(&node, &agent).await[0]["id"]
        .as_str()
        .expect("id")
        .to_string();

    // Off (the default): resolving asks nothing.
    let (status, body) = resolve(&node, &agent, &conversation, false).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(all_messages(&node, &agent, &conversation).await.len(), 1);

    // On: the next resolution asks, through the provider.
    let (status, _) = api_request(
        &node,
        &admin,
        reqwest::Method::PUT,
        "/api/v1/features",
        Some(json!({"service_rating": true})),
    )
    .await;
    assert_eq!(status, 200);
    customer_writes(
        &node,
        &tenant,
        "5511970000501",
        "wamid.S2",
        "ainda não chegou",
    )
    .await;
    let (status, body) = resolve(&node, &agent, &conversation, false).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("resolved")),
        "{body}"
    );
    let history = all_messages(&node, &agent, &conversation).await;
    let question = history.last().expect("the question");
    assert_eq!(question["direction"], "outbound");
    assert!(question["sent_by"].is_null(), "{question}");
    eventually("the question reaches the provider", || async {
        (asked(&graph, &tenant) == 1).then_some(())
    })
    .await;

    // The score rates the ticket; it stays resolved.
    customer_writes(&node, &tenant, "5511970000501", "wamid.S3", "5").await;
    let (_, now) = api_get(
        &node,
        &agent,
        &format!("/api/v1/conversations/{conversation}"),
    )
    .await;
    assert_eq!(now["status"], "resolved", "{now}");
    assert_eq!(now["rating"]["score"], 5, "{now}");
    let (_, events) = api_get(
        &node,
        &agent,
        &format!("/api/v1/conversations/{conversation}/events?limit=200"),
    )
    .await;
    let rated: Vec<&Value> = events["items"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["event"] == "ticket.rated")
        .collect();
    assert_eq!(rated.len(), 1, "{events}");
    assert_eq!(rated[0]["data"]["score"], 5);

    // Anything after it is an ordinary message: the ticket opens again.
    customer_writes(&node, &tenant, "5511970000501", "wamid.S4", "5").await;
    let (_, now) = api_get(
        &node,
        &agent,
        &format!("/api/v1/conversations/{conversation}"),
    )
    .await;
    assert_ne!(now["status"], "resolved", "{now}");

    // Resolving without the survey takes `close_without_survey`: supervisors have it, agents not.
    let (status, body) = resolve(&node, &agent, &conversation, true).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")));
    let (status, body) = resolve(&node, &supervisor, &conversation, true).await;
    assert_eq!(status, 200, "{body}");
    // The question is stored in the same commit as the resolution: the history shows it or not.
    let questions = all_messages(&node, &agent, &conversation)
        .await
        .iter()
        .filter(|m| {
            m["content"]["body"]
                .as_str()
                .is_some_and(|b| b.contains("de 1 (ruim) a 5"))
        })
        .count();
    assert_eq!(questions, 1, "no second question");
}
