//! Webhook authenticity and tenant isolation: unsigned or wrongly signed webhooks are refused with 401 and
//! store nothing; an agent of tenant A cannot list, read, send into or receive events of tenant B.

mod support;

use serde_json::json;
use std::time::Duration;
use support::{Agent, Node, api_get, api_post, provision, whatsapp};

#[tokio::test]
async fn unsigned_or_wrongly_signed_webhooks_are_refused_and_store_nothing() {
    let node = Node::start().await;
    let tenant = provision(&node, "signed").await;
    let payload = whatsapp::webhook(
        &tenant.phone_number_id,
        vec![whatsapp::text("5511", "wamid.X", "x")],
        vec![],
    );
    let body = serde_json::to_vec(&payload).unwrap();
    let cases = [
        None,
        Some(whatsapp::signature("not-the-app-secret", &body)),
        Some("sha256=".to_string() + &"0".repeat(64)),
        Some("md5=abc".to_string()),
    ];
    for signature in cases {
        let (status, answer) = whatsapp::post_raw(
            &node,
            &tenant.connection_id,
            "application/json",
            signature.clone(),
            body.clone(),
        )
        .await;
        assert_eq!(status, 401, "signature {signature:?}: {answer}");
        assert_eq!(answer["code"], "unauthorized");
    }
    // Signed with another tenant's secret is just as wrong.
    let other = provision(&node, "other").await;
    let forged = Some(whatsapp::signature(&other.app_secret, &body));
    assert_eq!(
        whatsapp::post_raw(
            &node,
            &tenant.connection_id,
            "application/json",
            forged,
            body
        )
        .await
        .0,
        401
    );
    assert!(
        support::all_conversations(&node, &tenant.agent_token)
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn tenant_a_cannot_read_send_into_or_subscribe_to_tenant_b() {
    let node = Node::start().await;
    let a = provision(&node, "tenant-a").await;
    let b = provision(&node, "tenant-b").await;
    let (mut agent_a, _) = Agent::connect(&node, &a.agent_token, None).await;
    let (mut agent_b, _) = Agent::connect(&node, &b.agent_token, None).await;

    let payload = whatsapp::webhook(
        &b.phone_number_id,
        vec![whatsapp::text("5511977776666", "wamid.B1", "segredo de B")],
        vec![],
    );
    assert_eq!(whatsapp::post(&node, &b, &payload).await.0, 200);
    let events = agent_b.events_until(|e| e.len() >= 2).await;
    let b_conversation = events[0]["conversation_id"].as_str().unwrap().to_string();

    // REST: not listed, not readable, not writable — and indistinguishable from "does not exist".
    let (_, inbox) = api_get(&node, &a.agent_token, "/api/v1/conversations").await;
    assert_eq!(inbox["items"].as_array().unwrap().len(), 0);
    for path in [
        format!("/api/v1/conversations/{b_conversation}"),
        format!("/api/v1/conversations/{b_conversation}/messages"),
        format!("/api/v1/conversations/{b_conversation}/events"),
    ] {
        let (status, body) = api_get(&node, &a.agent_token, &path).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_eq!(body["code"], "conversation_not_found");
    }
    let (status, _) = api_post(
        &node,
        &a.agent_token,
        &format!("/api/v1/conversations/{b_conversation}/messages"),
        json!({"text": "intruso"}),
    )
    .await;
    assert_eq!(status, 404);

    // Webhooks: A's connection cannot carry B's number.
    let smuggled = whatsapp::webhook(
        &b.phone_number_id,
        vec![whatsapp::text("5511", "wamid.S1", "x")],
        vec![],
    );
    let (status, body) = whatsapp::post(&node, &a, &smuggled).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["code"], "unknown_phone_number_id");

    // WebSocket: A saw nothing of B's traffic; B's history has only its own message.
    assert!(
        agent_a
            .receives_nothing_within(Duration::from_millis(300))
            .await,
        "tenant A received B's event"
    );
    let (_, history) = api_get(
        &node,
        &b.agent_token,
        &format!("/api/v1/conversations/{b_conversation}/messages"),
    )
    .await;
    assert_eq!(history["items"].as_array().unwrap().len(), 1);

    // A resume naming B's conversation replays nothing of it.
    let resume = json!({"since": "2020-01-01T00:00:00Z", "positions": {b_conversation.clone(): 0}});
    let (_, replayed) = Agent::connect(&node, &a.agent_token, Some(resume)).await;
    assert!(replayed.is_empty(), "{replayed:?}");
}

#[tokio::test]
async fn bad_tokens_are_refused_before_the_websocket_upgrade() {
    let node = Node::start().await;
    let _tenant = provision(&node, "ws-auth").await;
    for url in [
        format!("ws://{}/api/v1/ws", node.addr),
        format!("ws://{}/api/v1/ws?token=cva_forged", node.addr),
    ] {
        match tokio_tungstenite::connect_async(url.as_str()).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 401)
            }
            other => panic!(
                "{url}: expected HTTP 401, got {:?}",
                other.map(|(_, r)| r.status())
            ),
        }
    }
    let (status, body) = api_get(&node, "cva_forged", "/api/v1/conversations").await;
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")));
}

#[tokio::test]
async fn admin_api_requires_the_admin_token() {
    let node = Node::start().await;
    let tenant = provision(&node, "admin").await;
    let (status, _) = api_post(
        &node,
        &tenant.agent_token,
        "/api/v1/admin/tenants",
        json!({"name": "x"}),
    )
    .await;
    assert_eq!(status, 401);
}
