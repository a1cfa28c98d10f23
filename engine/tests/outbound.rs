//! Outbound through the connection-session actor against a scripted fake Graph API: transient failures
//! (5xx, 429, timeouts) are retried with backoff until accepted or out of attempts; validation errors fail
//! at once with Meta's error; a failing connection never holds up another; free text outside WhatsApp's
//! 24-hour window is refused before anything is stored or sent.

mod support;

use serde_json::{Value, json};
use std::time::Duration;
use support::fake_graph::{FakeGraph, Reply, meta_error};
use support::{Agent, Node, Tenant, api_get, api_post, provision, whatsapp};

/// Fast retries so the suite stays quick; the policy is the same as in production.
fn fast_retries(max_attempts: u32) -> Vec<(String, String)> {
    vec![
        ("CONVERSA_ACTORS__OUTBOUND_RETRY_MIN_MS".into(), "20".into()),
        (
            "CONVERSA_ACTORS__OUTBOUND_RETRY_MAX_MS".into(),
            "100".into(),
        ),
        (
            "CONVERSA_ACTORS__OUTBOUND_MAX_ATTEMPTS".into(),
            max_attempts.to_string(),
        ),
        ("CONVERSA_WHATSAPP__TIMEOUT_SECS".into(), "1".into()),
    ]
}

/// An inbound message from `contact`, then the agent's reply; returns (conversation id, reply).
async fn reply(
    node: &Node,
    tenant: &Tenant,
    agent: &mut Agent,
    contact: &str,
    text: &str,
) -> (String, Value) {
    let wamid = format!("wamid.in.{contact}.{}", tenant.phone_number_id);
    let payload = whatsapp::webhook(
        &tenant.phone_number_id,
        vec![whatsapp::text(contact, &wamid, "oi")],
        vec![],
    );
    assert_eq!(whatsapp::post(node, tenant, &payload).await.0, 200);
    let is_inbound = |e: &Value| e["data"]["message"]["provider_message_id"] == wamid.as_str();
    let events = agent.events_until(|e| e.iter().any(is_inbound)).await;
    let inbound = events.iter().find(|e| is_inbound(e)).unwrap();
    let conversation = inbound["conversation_id"].as_str().unwrap().to_string();
    let (status, sent) = api_post(
        node,
        &tenant.agent_token,
        &format!("/api/v1/conversations/{conversation}/messages"),
        json!({"text": text}),
    )
    .await;
    assert_eq!(status, 202, "{sent}");
    (conversation, sent)
}

/// A Meta timestamp (Unix seconds) `hours` ago: outside the 24-hour window when over 24.
fn hours_ago(hours: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    (now - hours * 3600).to_string()
}

/// Waits for the `message.status_updated` of `message_id` that ends its send (accepted or failed).
async fn final_status(agent: &mut Agent, message_id: &str) -> Value {
    let events = agent
        .events_until(|e| {
            e.iter().any(|e| {
                e["event"] == "message.status_updated"
                    && e["data"]["message_id"] == message_id
                    && (e["data"]["status"] == "accepted" || e["data"]["status"] == "failed")
            })
        })
        .await;
    events
        .into_iter()
        .rev()
        .find(|e| e["data"]["message_id"] == message_id)
        .unwrap()["data"]
        .clone()
}

#[tokio::test]
async fn transient_provider_errors_are_retried_until_accepted() {
    let graph = FakeGraph::start().await;
    let node = Node::start_with(Some(graph.base.clone()), fast_retries(5)).await;
    let tenant = provision(&node, "retry-ok").await;
    graph.script(
        &tenant.phone_number_id,
        vec![
            Reply::Error(503, meta_error(2, "Service temporarily unavailable", "")),
            Reply::Error(
                429,
                meta_error(
                    130429,
                    "Rate limit hit",
                    "Cloud API message throughput has been reached.",
                ),
            ),
        ],
    );
    let (mut agent, _) = Agent::connect(&node, &tenant.agent_token, None).await;
    let (_, sent) = reply(&node, &tenant, &mut agent, "5511900000001", "tentando").await;
    let status = final_status(&mut agent, sent["id"].as_str().unwrap()).await;
    assert_eq!(status["status"], "accepted", "{status}");
    assert_eq!(
        graph.requests_for(&tenant.phone_number_id),
        3,
        "503, 429, then success"
    );
}

/// A request that reached the provider and got no answer (a read timeout, a 500) may have been sent:
/// it is never retried, so the customer never gets the message twice; the agent sees why it failed.
#[tokio::test]
async fn a_send_that_may_have_reached_the_provider_is_not_retried() {
    let graph = FakeGraph::start().await;
    let node = Node::start_with(Some(graph.base.clone()), fast_retries(5)).await;
    let tenant = provision(&node, "maybe-sent").await;
    graph.script(
        &tenant.phone_number_id,
        vec![
            Reply::Hang(Duration::from_secs(5)),
            Reply::Error(500, meta_error(1, "An unknown error occurred", "")),
        ],
    );
    let (mut agent, _) = Agent::connect(&node, &tenant.agent_token, None).await;
    let (_, timed_out) = reply(&node, &tenant, &mut agent, "5511900000011", "talvez").await;
    let status = final_status(&mut agent, timed_out["id"].as_str().unwrap()).await;
    assert_eq!(status["status"], "failed", "{status}");
    assert!(
        status["error"]["title"]
            .as_str()
            .unwrap()
            .starts_with("outcome unknown"),
        "{status}"
    );
    assert_eq!(
        graph.requests_for(&tenant.phone_number_id),
        1,
        "a read timeout is not retried"
    );
    let (_, server_error) = reply(&node, &tenant, &mut agent, "5511900000012", "de novo").await;
    let status = final_status(&mut agent, server_error["id"].as_str().unwrap()).await;
    assert_eq!(status["status"], "failed", "{status}");
    assert_eq!(
        graph.requests_for(&tenant.phone_number_id),
        2,
        "a 500 is not retried"
    );
}

#[tokio::test]
async fn validation_errors_fail_at_once_with_the_providers_error() {
    let graph = FakeGraph::start().await;
    let node = Node::start_with(Some(graph.base.clone()), fast_retries(5)).await;
    let tenant = provision(&node, "rejected").await;
    graph.script(
        &tenant.phone_number_id,
        vec![Reply::Error(
            400,
            meta_error(
                131030,
                "(#131030) Recipient phone number not in allowed list",
                "Recipient phone number not in allowed list",
            ),
        )],
    );
    let (mut agent, _) = Agent::connect(&node, &tenant.agent_token, None).await;
    let (conversation, sent) = reply(&node, &tenant, &mut agent, "5511900000002", "não vai").await;
    let status = final_status(&mut agent, sent["id"].as_str().unwrap()).await;
    assert_eq!(status["status"], "failed");
    assert_eq!(status["error"]["code"], 131030);
    assert_eq!(
        status["error"]["detail"],
        "Recipient phone number not in allowed list"
    );
    assert_eq!(
        graph.requests_for(&tenant.phone_number_id),
        1,
        "a 4xx is never retried"
    );
    let (_, history) = api_get(
        &node,
        &tenant.agent_token,
        &format!("/api/v1/conversations/{conversation}/messages"),
    )
    .await;
    assert_eq!(history["items"][1]["status"], "failed");
    assert_eq!(history["items"][1]["error"]["code"], 131030);
}

#[tokio::test]
async fn persistent_outage_ends_failed_after_the_last_attempt() {
    let graph = FakeGraph::start().await;
    let node = Node::start_with(Some(graph.base.clone()), fast_retries(3)).await;
    let tenant = provision(&node, "outage").await;
    let outage = vec![Reply::Error(503, meta_error(2, "Service temporarily unavailable", "")); 10];
    graph.script(&tenant.phone_number_id, outage);
    let (mut agent, _) = Agent::connect(&node, &tenant.agent_token, None).await;
    let (_, sent) = reply(&node, &tenant, &mut agent, "5511900000003", "fora do ar").await;
    let status = final_status(&mut agent, sent["id"].as_str().unwrap()).await;
    assert_eq!(status["status"], "failed");
    assert_eq!(status["error"]["title"], "provider unavailable");
    assert_eq!(
        graph.requests_for(&tenant.phone_number_id),
        3,
        "exactly max_attempts"
    );
}

#[tokio::test]
async fn a_failing_connection_does_not_hold_up_another() {
    let graph = FakeGraph::start().await;
    let mut env = fast_retries(6);
    env[0].1 = "300".into();
    env[1].1 = "1000".into();
    let node = Node::start_with(Some(graph.base.clone()), env).await;
    let failing = provision(&node, "two-numbers").await;
    let healthy = support::add_connection(&node, &failing).await;
    graph.script(
        &failing.phone_number_id,
        vec![Reply::Error(503, meta_error(2, "down", "")); 10],
    );
    let (mut agent, _) = Agent::connect(&node, &failing.agent_token, None).await;

    let (_, stuck) = reply(
        &node,
        &failing,
        &mut agent,
        "5511900000004",
        "pela conexão ruim",
    )
    .await;
    let (_, quick) = reply(
        &node,
        &healthy,
        &mut agent,
        "5511900000005",
        "pela conexão boa",
    )
    .await;
    let (stuck, quick) = (
        stuck["id"].as_str().unwrap().to_string(),
        quick["id"].as_str().unwrap().to_string(),
    );
    let events = agent
        .events_until(|e| {
            e.iter().any(|e| {
                e["data"]["message_id"] == stuck.as_str() && e["data"]["status"] == "failed"
            })
        })
        .await;
    let position = |id: &str, status: &str| {
        events
            .iter()
            .position(|e| e["data"]["message_id"] == id && e["data"]["status"] == status)
    };
    let accepted =
        position(&quick, "accepted").expect("the healthy connection's reply was accepted");
    let failed = position(&stuck, "failed").expect("the failing connection's reply failed");
    assert!(
        accepted < failed,
        "the healthy reply waited for the failing connection's retries"
    );
}

#[tokio::test]
async fn reply_outside_the_24_hour_window_is_refused_before_anything_is_sent() {
    let graph = FakeGraph::start().await;
    let node = Node::start_with(Some(graph.base.clone()), Vec::new()).await;
    let tenant = provision(&node, "window").await;
    let day_ago = hours_ago(25);
    let old = json!({"from": "5511900000006", "id": "wamid.OLD", "timestamp": day_ago, "type": "text",
                     "text": {"body": "ontem"}});
    let payload = whatsapp::webhook(&tenant.phone_number_id, vec![old], vec![]);
    assert_eq!(whatsapp::post(&node, &tenant, &payload).await.0, 200);
    let (_, inbox) = api_get(&node, &tenant.agent_token, "/api/v1/conversations").await;
    let conversation = inbox["items"][0]["id"].as_str().unwrap().to_string();
    let (status, body) = api_post(
        &node,
        &tenant.agent_token,
        &format!("/api/v1/conversations/{conversation}/messages"),
        json!({"text": "tarde demais"}),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("customer_service_window_closed")),
        "{body}"
    );
    assert_eq!(graph.requests().len(), 0);
    let messages = support::all_messages(&node, &tenant.agent_token, &conversation).await;
    assert_eq!(
        messages.len(),
        1,
        "nothing was stored for the refused reply"
    );
}

#[tokio::test]
async fn templates_go_out_after_the_window_and_buttons_and_reactions_inside_it() {
    let graph = FakeGraph::start().await;
    let node = Node::start_with(Some(graph.base.clone()), Vec::new()).await;
    let tenant = provision(&node, "rich").await;
    let (mut agent, _) = Agent::connect(&node, &tenant.agent_token, None).await;

    // A contact who wrote 25 hours ago: only a template may go out.
    let day_ago = hours_ago(25);
    let old = json!({"from": "5511900000007", "id": "wamid.OLD7", "timestamp": day_ago, "type": "text", "text": {"body": "oi"}});
    assert_eq!(
        whatsapp::post(
            &node,
            &tenant,
            &whatsapp::webhook(&tenant.phone_number_id, vec![old], vec![])
        )
        .await
        .0,
        200
    );
    let (_, inbox) = api_get(&node, &tenant.agent_token, "/api/v1/conversations").await;
    let stale = inbox["items"][0]["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/conversations/{stale}/messages");
    let template = json!({"template": {"name": "retomar_atendimento", "language": "pt_BR", "body_parameters": ["Ana"]}});
    let (status, sent) = api_post(&node, &tenant.agent_token, &path, template).await;
    assert_eq!(status, 202, "{sent}");
    let done = final_status(&mut agent, sent["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "accepted");
    let request = graph.requests().last().unwrap().body.clone();
    assert_eq!(request["type"], "template");
    assert_eq!(request["template"]["name"], "retomar_atendimento");
    assert_eq!(
        request["template"]["components"][0]["parameters"][0]["text"],
        "Ana"
    );
    let (status, body) = api_post(
        &node,
        &tenant.agent_token,
        &path,
        json!({"interactive": {"body": "Posso ajudar?",
        "buttons": [{"id": "sim", "title": "Sim"}]}}),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("customer_service_window_closed")),
        "{body}"
    );

    // A fresh contact: buttons and a reaction to the contact's message.
    let (conversation, _) = reply(&node, &tenant, &mut agent, "5511900000008", "olá").await;
    let path = format!("/api/v1/conversations/{conversation}/messages");
    let buttons = json!({"interactive": {"body": "Resolvido?", "buttons": [{"id": "sim", "title": "Sim"}, {"id": "nao", "title": "Não"}]}});
    let (status, sent) = api_post(&node, &tenant.agent_token, &path, buttons).await;
    assert_eq!(status, 202, "{sent}");
    final_status(&mut agent, sent["id"].as_str().unwrap()).await;
    let request = graph.requests().last().unwrap().body.clone();
    assert_eq!(
        request["interactive"]["action"]["buttons"][1]["reply"]["title"],
        "Não"
    );

    let (status, sent) = api_post(
        &node,
        &tenant.agent_token,
        &path,
        json!({"reaction": {"seq": 2, "emoji": "👍"}}),
    )
    .await;
    assert_eq!(status, 202, "{sent}");
    final_status(&mut agent, sent["id"].as_str().unwrap()).await;
    let request = graph.requests().last().unwrap().body.clone();
    assert_eq!(request["type"], "reaction");
    assert_eq!(
        request["reaction"]["message_id"],
        "wamid.in.5511900000008.".to_string() + &tenant.phone_number_id
    );

    // What WhatsApp would refuse is refused here, before anything is stored.
    let four = json!({"interactive": {"body": "Escolha", "buttons": [{"id": "1", "title": "a"}, {"id": "2", "title": "b"},
        {"id": "3", "title": "c"}, {"id": "4", "title": "d"}]}});
    let two_kinds = json!({"text": "oi", "template": {"name": "x", "language": "pt_BR"}});
    for bad in [
        four,
        two_kinds,
        json!({}),
        json!({"reaction": {"seq": 999, "emoji": "👍"}}),
    ] {
        let (status, body) = api_post(&node, &tenant.agent_token, &path, bad.clone()).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (422, Some("invalid_message")),
            "{bad} → {body}"
        );
    }
}

#[tokio::test]
async fn reply_acknowledged_before_a_crash_is_sent_after_the_restart() {
    let graph = FakeGraph::start().await;
    let mut node = Node::start_with(Some(graph.base.clone()), fast_retries(3)).await;
    let tenant = provision(&node, "outbox").await;
    // The provider takes a minute to answer the first send: the node dies while it waits.
    graph.script(
        &tenant.phone_number_id,
        vec![Reply::Hang(Duration::from_secs(60))],
    );
    let (mut agent, _) = Agent::connect(&node, &tenant.agent_token, None).await;
    let (conversation, sent) =
        reply(&node, &tenant, &mut agent, "5511900000009", "não se perca").await;
    support::eventually("the send reached the provider", || async {
        (graph.requests_for(&tenant.phone_number_id) > 0).then_some(())
    })
    .await;
    node.kill9().await;

    let node = node.restart().await;
    let path = format!("/api/v1/conversations/{conversation}/messages");
    let message = support::eventually("the pending reply was resent", || async {
        let (_, history) = api_get(&node, &tenant.agent_token, &path).await;
        history["items"]
            .as_array()?
            .iter()
            .find(|m| m["id"] == sent["id"])
            .filter(|m| m["status"] != "pending")
            .cloned()
    })
    .await;
    assert_eq!(message["status"], "accepted", "{message}");
    assert_eq!(
        graph.requests_for(&tenant.phone_number_id),
        2,
        "sent again once after the restart"
    );
}

#[tokio::test]
async fn marking_a_conversation_read_sends_the_read_receipt_for_the_newest_inbound_message() {
    let graph = FakeGraph::start().await;
    let node = Node::start_with(Some(graph.base.clone()), Vec::new()).await;
    let tenant = provision(&node, "read").await;
    let payload = whatsapp::webhook(
        &tenant.phone_number_id,
        vec![
            whatsapp::text("5511900000010", "wamid.R1", "um"),
            whatsapp::text("5511900000010", "wamid.R2", "dois"),
        ],
        vec![],
    );
    assert_eq!(whatsapp::post(&node, &tenant, &payload).await.0, 200);
    let (_, inbox) = api_get(&node, &tenant.agent_token, "/api/v1/conversations").await;
    let conversation = inbox["items"][0]["id"].as_str().unwrap().to_string();
    let response = reqwest::Client::new()
        .post(node.url(&format!("/api/v1/conversations/{conversation}/read")))
        .bearer_auth(&tenant.agent_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let request = graph.requests().last().unwrap().clone();
    assert_eq!(
        request.body,
        json!({"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.R2"})
    );
}

#[tokio::test]
async fn media_by_url_goes_out_in_each_providers_shape_and_only_over_https() {
    let graph = FakeGraph::start().await;
    let node = Node::start_with(Some(graph.base.clone()), Vec::new()).await;
    let tenant = provision(&node, "media-out").await;
    let (mut agent, _) = Agent::connect(&node, &tenant.agent_token, None).await;
    let (conversation, _) = reply(&node, &tenant, &mut agent, "5511900000011", "olá").await;
    let path = format!("/api/v1/conversations/{conversation}/messages");
    let document = json!({"media": {"kind": "document", "url": "https://files.example.com/boleto.pdf",
                                    "caption": "Seu boleto", "filename": "boleto.pdf"}});
    let (status, sent) = api_post(&node, &tenant.agent_token, &path, document).await;
    assert_eq!(status, 202, "{sent}");
    assert_eq!(sent["content"]["type"], "media_link");
    final_status(&mut agent, sent["id"].as_str().unwrap()).await;
    let request = graph.requests().last().unwrap().body.clone();
    assert_eq!(request["type"], "document");
    assert_eq!(
        request["document"],
        json!({"link": "https://files.example.com/boleto.pdf", "caption": "Seu boleto",
                                            "filename": "boleto.pdf"})
    );
    for bad in [
        json!({"media": {"kind": "image", "url": "http://10.0.0.1/x.png"}}),
        json!({"media": {"kind": "audio", "url": "https://files.example.com/a.ogg", "caption": "no"}}),
    ] {
        let (status, body) = api_post(&node, &tenant.agent_token, &path, bad.clone()).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (422, Some("invalid_message")),
            "{bad} → {body}"
        );
    }
}

/// A provider answering 2xx with an id no provider would use (70 KB) accepted the message, but its
/// statuses could never be matched and the id would bloat every index: the reply ends `failed`, once,
/// instead of being resent forever.
#[tokio::test]
async fn an_unusable_message_id_in_the_send_answer_fails_the_reply_without_a_resend() {
    let graph = FakeGraph::start().await;
    let node = Node::start_with(Some(graph.base.clone()), fast_retries(5)).await;
    let tenant = provision(&node, "long-id").await;
    graph.script(
        &tenant.phone_number_id,
        vec![Reply::AcceptAs(format!("wamid.{}", "x".repeat(70_000)))],
    );
    let (mut agent, _) = Agent::connect(&node, &tenant.agent_token, None).await;
    let (_, sent) = reply(&node, &tenant, &mut agent, "5511900000013", "id gigante").await;
    let status = final_status(&mut agent, sent["id"].as_str().unwrap()).await;
    assert_eq!(status["status"], "failed", "{status}");
    assert_eq!(status["error"]["title"], "unusable message id");
    assert_eq!(graph.requests_for(&tenant.phone_number_id), 1);
}
