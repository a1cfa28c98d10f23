//! End to end on the real binary: a signed WhatsApp webhook reaches a live agent socket, and a reply goes
//! out through the Cloud API (a local fake) and follows its statuses to `read`.

mod support;

use serde_json::json;
use support::fake_graph::FakeGraph;
use support::{Agent, Node, api_get, api_post, provision, whatsapp};

#[tokio::test]
async fn webhook_message_reaches_agent_and_reply_follows_statuses_to_read() {
    let graph = FakeGraph::start().await;
    let node = Node::start_with(Some(graph.base.clone()), Vec::new()).await;
    let tenant = provision(&node, "acme").await;
    let (mut agent, replayed) = Agent::connect(&node, &tenant.agent_token, None).await;
    assert!(replayed.is_empty());

    let payload = whatsapp::webhook(
        &tenant.phone_number_id,
        vec![whatsapp::text(
            "5511988887777",
            "wamid.IN1",
            "Oi, meu pedido atrasou",
        )],
        vec![],
    );
    let (status, body) = whatsapp::post(&node, &tenant, &payload).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["messages_stored"], 1);

    let events = agent.events_until(|e| e.len() >= 2).await;
    assert_eq!(events[0]["event"], "conversation.created");
    assert_eq!(events[0]["seq"], 1);
    assert_eq!(events[1]["event"], "message.created");
    assert_eq!(events[1]["seq"], 2);
    assert_eq!(
        events[1]["data"]["message"]["content"]["body"],
        "Oi, meu pedido atrasou"
    );
    assert_eq!(events[1]["data"]["message"]["direction"], "inbound");
    let conversation = events[0]["conversation_id"].as_str().unwrap().to_string();
    assert_eq!(events[1]["conversation_id"], conversation.as_str());
    assert_eq!(
        events[0]["data"]["conversation"]["contact"]["address"],
        "5511988887777"
    );

    // Reply through REST: stored pending, sent to the Graph API, accepted with the returned wamid.
    let (status, sent) = api_post(
        &node,
        &tenant.agent_token,
        &format!("/api/v1/conversations/{conversation}/messages"),
        json!({"text": "Vou verificar agora!"}),
    )
    .await;
    assert_eq!(status, 202, "{sent}");
    assert_eq!(sent["status"], "pending");
    assert_eq!(sent["seq"], 3);
    let events = agent.events_until(|e| e.len() >= 2).await;
    assert_eq!(events[0]["event"], "message.created");
    assert_eq!(events[0]["data"]["message"]["direction"], "outbound");
    assert_eq!(events[1]["event"], "message.status_updated");
    assert_eq!(events[1]["data"]["status"], "accepted");
    let requests = graph.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].phone_number_id, tenant.phone_number_id);
    assert_eq!(requests[0].authorization, "Bearer token-acme");
    assert_eq!(requests[0].body["to"], "5511988887777");
    assert_eq!(requests[0].body["text"]["body"], "Vou verificar agora!");
    let wamid = requests[0].wamid.clone();
    assert_eq!(events[1]["data"]["provider_message_id"], wamid.as_str());

    // Meta reports sent, delivered, read (read before a late delivered: never backwards).
    for kind in ["sent", "read", "delivered"] {
        let payload = whatsapp::webhook(
            &tenant.phone_number_id,
            vec![],
            vec![whatsapp::status("5511988887777", &wamid, kind)],
        );
        let (status, body) = whatsapp::post(&node, &tenant, &payload).await;
        assert_eq!(status, 200, "{body}");
    }
    let events = agent.events_until(|e| e.len() >= 2).await;
    let statuses: Vec<_> = events
        .iter()
        .map(|e| e["data"]["status"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(statuses, ["sent", "read"]);
    assert_eq!(events[1]["seq"], 6);

    let (status, history) = api_get(
        &node,
        &tenant.agent_token,
        &format!("/api/v1/conversations/{conversation}/messages"),
    )
    .await;
    assert_eq!(status, 200);
    let items = history["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[1]["status"], "read");
    assert_eq!(items[1]["provider_message_id"], wamid.as_str());
    agent.close().await;
}

#[tokio::test]
async fn retried_webhook_does_not_duplicate_message() {
    let node = Node::start().await;
    let tenant = provision(&node, "retry").await;
    let payload = whatsapp::webhook(
        &tenant.phone_number_id,
        vec![
            whatsapp::text("5511900000001", "wamid.R1", "primeira"),
            whatsapp::text("5511900000001", "wamid.R2", "segunda"),
        ],
        vec![],
    );
    let (_, first) = whatsapp::post(&node, &tenant, &payload).await;
    assert_eq!(first["messages_stored"], 2);
    // Meta retries the same delivery, concurrently too.
    let retries =
        futures::future::join_all((0..4).map(|_| whatsapp::post(&node, &tenant, &payload))).await;
    for (status, body) in retries {
        assert_eq!(status, 200);
        assert_eq!(body["messages_stored"], 0);
        assert_eq!(body["duplicates"], 2);
    }
    let conversations = support::all_conversations(&node, &tenant.agent_token).await;
    assert_eq!(conversations.len(), 1);
    let id = conversations[0]["id"].as_str().unwrap();
    let messages = support::all_messages(&node, &tenant.agent_token, id).await;
    let bodies: Vec<_> = messages
        .iter()
        .map(|m| m["content"]["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["primeira", "segunda"]);
}

#[tokio::test]
async fn batched_webhook_stores_every_message_of_every_entry() {
    let node = Node::start().await;
    let tenant = provision(&node, "batch").await;
    let mut payload = whatsapp::webhook(
        &tenant.phone_number_id,
        vec![
            whatsapp::text("5511000000001", "wamid.B1", "a"),
            whatsapp::text("5511000000002", "wamid.B2", "b"),
        ],
        vec![],
    );
    let second = whatsapp::webhook(
        &tenant.phone_number_id,
        vec![whatsapp::text("5511000000001", "wamid.B3", "c")],
        vec![],
    );
    payload["entry"]
        .as_array_mut()
        .unwrap()
        .push(second["entry"][0].clone());
    let (status, body) = whatsapp::post(&node, &tenant, &payload).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["messages_stored"], 3);
    let conversations = support::all_conversations(&node, &tenant.agent_token).await;
    assert_eq!(conversations.len(), 2);
    let mut counts: Vec<u64> = conversations
        .iter()
        .map(|c| c["message_count"].as_u64().unwrap())
        .collect();
    counts.sort();
    assert_eq!(counts, [1, 2]);
}

#[tokio::test]
async fn meta_verification_handshake_echoes_challenge_only_for_the_right_token() {
    let node = Node::start().await;
    let tenant = provision(&node, "verify").await;
    let client = reqwest::Client::new();
    let url = |token: &str| {
        node.url(&format!(
            "/webhooks/whatsapp/{}?hub.mode=subscribe&hub.verify_token={token}&hub.challenge=1158201444",
            tenant.connection_id
        ))
    };
    let ok = client.get(url(&tenant.verify_token)).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "1158201444");
    let wrong = client.get(url("nope")).send().await.unwrap();
    assert_eq!(wrong.status(), 403);
}

#[tokio::test]
async fn node_exposes_health_readiness_and_prometheus_metrics() {
    let node = Node::start().await;
    let tenant = provision(&node, "metrics").await;
    let payload = whatsapp::webhook(
        &tenant.phone_number_id,
        vec![whatsapp::text("1", "wamid.M1", "x")],
        vec![],
    );
    assert_eq!(whatsapp::post(&node, &tenant, &payload).await.0, 200);
    let client = reqwest::Client::new();
    assert_eq!(
        client
            .get(node.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        client
            .get(node.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let text = client
        .get(node.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        "conversa_webhooks_received_total{provider=\"whatsapp_cloud\",outcome=\"ok\"} 1",
        "conversa_messages_ingested_total 1",
        "conversa_ingest_latency_seconds_bucket",
        "conversa_store_operation_seconds_bucket{op=\"commit\"",
        "conversa_actors_live{kind=\"conversation\"} 1",
    ] {
        assert!(text.contains(needle), "missing {needle} in:\n{text}");
    }
}

#[tokio::test]
async fn graceful_shutdown_exits_cleanly_and_keeps_data() {
    let node = Node::start().await;
    let tenant = provision(&node, "shutdown").await;
    let payload = whatsapp::webhook(
        &tenant.phone_number_id,
        vec![whatsapp::text("1", "wamid.S1", "x")],
        vec![],
    );
    assert_eq!(whatsapp::post(&node, &tenant, &payload).await.0, 200);
    let mut node = node;
    assert!(node.terminate().await, "SIGTERM exits with status 0");
    let node = node.restart().await;
    assert_eq!(
        support::all_conversations(&node, &tenant.agent_token)
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn webhook_answers_carry_the_callers_request_id_or_a_new_one() {
    let node = Node::start().await;
    let tenant = provision(&node, "request-id").await;
    let payload = whatsapp::webhook(
        &tenant.phone_number_id,
        vec![whatsapp::text("1", "wamid.Q1", "x")],
        vec![],
    );
    let body = serde_json::to_vec(&payload).unwrap();
    let post = |request_id: Option<&'static str>| {
        let mut request = reqwest::Client::new()
            .post(node.url(&format!("/webhooks/whatsapp/{}", tenant.connection_id)))
            .header("content-type", "application/json")
            .header(
                "x-hub-signature-256",
                whatsapp::signature(&tenant.app_secret, &body),
            )
            .body(body.clone());
        if let Some(id) = request_id {
            request = request.header("x-request-id", id);
        }
        request.send()
    };
    let echoed = post(Some("meta-retry-42")).await.unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "meta-retry-42");
    let generated = post(Some("not valid: spaces")).await.unwrap();
    let id = generated.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(!id.is_empty() && id != "not valid: spaces");
}
