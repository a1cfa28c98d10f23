//! End to end on the real binary (issue 14): clocks kept in the store's due index, not in actors — an
//! SLA target missed after the node was killed between its start and its time, SLA targets met by an
//! agent's reply and by resolution, and a snooze that ends when its time comes.
//!
//! The targets are seconds long so the node's own clock reaches them during the test; the tests wait
//! for the outcome (`eventually`, bounded), never for a fixed time, and assert what happened, never
//! when. The deadline arithmetic itself is tested with fixed instants in `schema::helpdesk::sla`.

mod support;

use serde_json::{Value, json};
use support::{Node, Tenant, add_agent, api_get, api_post, customer_writes, eventually, provision};

/// A department fed by the tenant's connection, with these SLA targets.
async fn department_with_sla(node: &Node, tenant: &Tenant, sla: Value) {
    let (_, supervisor) = add_agent(node, tenant, "Sol", "supervisor").await;
    let (status, body) = api_post(
        node,
        &supervisor,
        "/api/v1/departments",
        json!({"key": "suporte", "name": "Suporte", "connections": [tenant.connection_id], "sla": sla}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
}

/// The only conversation of the tenant.
async fn only_conversation(node: &Node, tenant: &Tenant) -> String {
    let (_, page) = api_get(node, &tenant.agent_token, "/api/v1/conversations").await;
    page["items"][0]["id"]
        .as_str()
        .expect("a conversation")
        .to_string()
}

/// The conversation's events named `name`.
async fn events_named(node: &Node, tenant: &Tenant, conversation: &str, name: &str) -> Vec<Value> {
    let (_, page) = api_get(
        node,
        &tenant.agent_token,
        &format!("/api/v1/conversations/{conversation}/events?limit=200"),
    )
    .await;
    page["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter(|e| e["event"] == name)
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn an_sla_target_is_missed_from_the_store_after_the_node_was_killed_before_its_time() {
    let node = Node::start().await;
    let tenant = provision(&node, "sla-restart").await;
    department_with_sla(&node, &tenant, json!({"first_response": "PT5S"})).await;
    customer_writes(&node, &tenant, "5511977770001", "wamid.S1", "Socorro!").await;
    let conversation = only_conversation(&node, &tenant).await;
    let (_, started) = api_get(
        &node,
        &tenant.agent_token,
        &format!("/api/v1/conversations/{conversation}"),
    )
    .await;
    assert_eq!(
        started["sla"]["first_response"]["state"], "active",
        "{started}"
    );
    assert!(
        events_named(&node, &tenant, &conversation, "ticket.sla_missed")
            .await
            .is_empty(),
        "the clock is still running when the node is killed"
    );

    // Killed with the clock running: no actor, no in-memory timer survives.
    let mut node = node;
    node.kill9().await;
    let node = node.restart().await;
    let missed = eventually("the first response is missed", || async {
        events_named(&node, &tenant, &conversation, "ticket.sla_missed")
            .await
            .into_iter()
            .next()
    })
    .await;
    assert_eq!(missed["data"]["target"], "first_response");
    assert_eq!(
        missed["data"]["due"],
        started["sla"]["first_response"]["due"]
    );
    let (_, after) = api_get(
        &node,
        &tenant.agent_token,
        &format!("/api/v1/conversations/{conversation}"),
    )
    .await;
    assert_eq!(after["sla"]["first_response"]["state"], "missed");
    assert_eq!(
        events_named(&node, &tenant, &conversation, "ticket.sla_missed")
            .await
            .len(),
        1,
        "missed once"
    );
}

#[tokio::test]
async fn an_agent_reply_and_a_resolution_in_time_meet_their_targets() {
    let graph = support::fake_graph::FakeGraph::start().await;
    let node = Node::start_with(Some(graph.base.clone()), Vec::new()).await;
    let tenant = provision(&node, "sla-hit").await;
    department_with_sla(
        &node,
        &tenant,
        json!({"first_response": "PT1H", "resolution": "PT8H"}),
    )
    .await;
    customer_writes(&node, &tenant, "5511977770002", "wamid.S2", "Oi").await;
    let conversation = only_conversation(&node, &tenant).await;

    let (status, _) = api_post(
        &node,
        &tenant.agent_token,
        &format!("/api/v1/conversations/{conversation}/messages"),
        json!({"text": "Olá! Como posso ajudar?"}),
    )
    .await;
    assert_eq!(status, 202);
    let hit = events_named(&node, &tenant, &conversation, "ticket.sla_hit").await;
    assert_eq!(hit.len(), 1);
    assert_eq!(hit[0]["data"]["target"], "first_response");

    let (status, _) = api_post(
        &node,
        &tenant.agent_token,
        &format!("/api/v1/conversations/{conversation}/toggle_status"),
        json!({"status": "resolved"}),
    )
    .await;
    assert_eq!(status, 200);
    let hit = events_named(&node, &tenant, &conversation, "ticket.sla_hit").await;
    assert_eq!(hit.len(), 2);
    assert_eq!(hit[1]["data"]["target"], "resolution");
    let (_, after) = api_get(
        &node,
        &tenant.agent_token,
        &format!("/api/v1/conversations/{conversation}"),
    )
    .await;
    assert_eq!(after["sla"]["first_response"]["state"], "hit");
    assert_eq!(after["sla"]["resolution"]["state"], "hit");
}

#[tokio::test]
async fn a_snooze_ends_by_itself_when_its_time_comes() {
    let node = Node::start().await;
    let tenant = provision(&node, "snooze").await;
    customer_writes(
        &node,
        &tenant,
        "5511977770003",
        "wamid.S3",
        "Me chama depois",
    )
    .await;
    let conversation = only_conversation(&node, &tenant).await;
    let until = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(2);
    let (status, body) = api_post(
        &node,
        &tenant.agent_token,
        &format!("/api/v1/conversations/{conversation}/toggle_status"),
        json!({"status": "snoozed", "snoozed_until": until.to_string()}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let woken = eventually("the snooze ends", || async {
        events_named(&node, &tenant, &conversation, "ticket.snoozed")
            .await
            .into_iter()
            .find(|e| e["data"]["until"].is_null())
    })
    .await;
    assert!(woken["data"]["by"].is_null(), "ended by the clock: {woken}");
    let (_, after) = api_get(
        &node,
        &tenant.agent_token,
        &format!("/api/v1/conversations/{conversation}"),
    )
    .await;
    assert!(
        after.get("snoozed_until").is_none_or(Value::is_null),
        "{after}"
    );
}
