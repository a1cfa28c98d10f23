//! The walking skeleton on each shared backend: the real `conversa` binary, configured for the backend,
//! takes a signed webhook to a live agent socket, sends a reply through the fake Graph API and follows
//! its statuses, then is SIGKILLed and restarted and still has everything.

use crate::support::fake_graph::FakeGraph;
use crate::support::{Agent, Node, api_get, api_post, provision, whatsapp};
use serde_json::json;

pub async fn webhook_to_socket_to_reply_survives_node_kill(env: Vec<(String, String)>) {
    let graph = FakeGraph::start().await;
    let node = Node::start_with(Some(graph.base.clone()), env).await;
    let tenant = provision(&node, "backend").await;
    let (mut agent, _) = Agent::connect(&node, &tenant.agent_token, None).await;

    let payload = whatsapp::webhook(
        &tenant.phone_number_id,
        vec![whatsapp::text(
            "5511988887777",
            "wamid.NODE1",
            "Oi, tudo bem?",
        )],
        vec![],
    );
    let (status, body) = whatsapp::post(&node, &tenant, &payload).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["messages_stored"], 1);
    let (status, retry) = whatsapp::post(&node, &tenant, &payload).await;
    assert_eq!(status, 200, "{retry}");
    assert_eq!(
        retry["messages_stored"], 0,
        "a retried webhook stores nothing new"
    );

    let events = agent.events_until(|e| e.len() >= 2).await;
    assert_eq!(events[1]["event"], "message.created");
    let since = events[0]["at"].clone();
    let conversation = events[0]["conversation_id"]
        .as_str()
        .expect("conversation id")
        .to_string();

    let (status, sent) = api_post(
        &node,
        &tenant.agent_token,
        &format!("/api/v1/conversations/{conversation}/messages"),
        json!({"text": "Tudo ótimo!"}),
    )
    .await;
    assert_eq!(status, 202, "{sent}");
    let events = agent.events_until(|e| e.len() >= 2).await;
    assert_eq!(events[1]["data"]["status"], "accepted");
    let wamid = graph.requests()[0].wamid.clone();
    for kind in ["read", "delivered"] {
        let payload = whatsapp::webhook(
            &tenant.phone_number_id,
            vec![],
            vec![whatsapp::status("5511988887777", &wamid, kind)],
        );
        let (status, body) = whatsapp::post(&node, &tenant, &payload).await;
        assert_eq!(status, 200, "{body}");
    }
    let events = agent.events_until(|e| !e.is_empty()).await;
    assert_eq!(events[0]["data"]["status"], "read");
    let last_seq = events[0]["seq"].as_u64().expect("seq");
    agent.close().await;

    let mut node = node;
    node.kill9().await;
    let node = node.restart().await;
    let path = format!("/api/v1/conversations/{conversation}/messages");
    let (status, history) = api_get(&node, &tenant.agent_token, &path).await;
    assert_eq!(status, 200, "{history}");
    let items = history["items"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["content"]["body"], "Oi, tudo bem?");
    assert_eq!(items[1]["status"], "read");

    // Resume from the start of the conversation replays exactly what was committed.
    let resume = json!({"since": since, "positions": { conversation.clone(): 0 }});
    let (agent, replayed) = Agent::connect(&node, &tenant.agent_token, Some(resume)).await;
    let seqs: Vec<u64> = replayed
        .iter()
        .filter(|e| e["conversation_id"] == conversation.as_str())
        .filter_map(|e| e["seq"].as_u64())
        .collect();
    assert_eq!(seqs, (1..=last_seq).collect::<Vec<_>>());
    agent.close().await;
}
