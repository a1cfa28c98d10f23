//! Bad input gets a clear error (status + JSON body) or is kept as `unsupported`; never a panic, never
//! silent loss, and the node keeps serving afterwards.

mod support;

use serde_json::json;
use support::{Node, api_get, api_post, provision, whatsapp};

#[tokio::test]
async fn malformed_oversized_and_mistyped_webhooks_get_clear_errors_and_store_nothing() {
    let node = Node::start().await;
    let tenant = provision(&node, "bad").await;
    let signed = |body: &[u8]| Some(whatsapp::signature(&tenant.app_secret, body));

    let garbage = b"{\"object\": \"whatsapp_business_account\", \"entry\": [".to_vec();
    let (status, body) = whatsapp::post_raw(
        &node,
        &tenant.connection_id,
        "application/json",
        signed(&garbage),
        garbage.clone(),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("malformed_payload")),
        "{body}"
    );

    let wrong_object = serde_json::to_vec(&json!({"object": "page", "entry": []})).unwrap();
    let (status, _) = whatsapp::post_raw(
        &node,
        &tenant.connection_id,
        "application/json",
        signed(&wrong_object),
        wrong_object.clone(),
    )
    .await;
    assert_eq!(status, 400);

    let huge = vec![b' '; 4 * 1024 * 1024];
    let (status, body) = whatsapp::post_raw(
        &node,
        &tenant.connection_id,
        "application/json",
        signed(&huge),
        huge.clone(),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (413, Some("body_too_large")),
        "{body}"
    );

    let payload = serde_json::to_vec(&whatsapp::webhook(
        &tenant.phone_number_id,
        vec![whatsapp::text("1", "wamid.T", "x")],
        vec![],
    ))
    .unwrap();
    let (status, body) = whatsapp::post_raw(
        &node,
        &tenant.connection_id,
        "text/plain",
        signed(&payload),
        payload.clone(),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (415, Some("unsupported_media_type")),
        "{body}"
    );

    let unknown_number = whatsapp::webhook(
        "pn-nobody",
        vec![whatsapp::text("1", "wamid.N", "x")],
        vec![],
    );
    let (status, body) = whatsapp::post(&node, &tenant, &unknown_number).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("unknown_phone_number_id")),
        "{body}"
    );

    let (status, body) = whatsapp::post_raw(
        &node,
        "not-a-uuid",
        "application/json",
        signed(&payload),
        payload.clone(),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("unknown_connection")),
        "{body}"
    );
    let unknown_connection = "0192f1d6-0000-7000-8000-000000000000";
    let (status, _) = whatsapp::post_raw(
        &node,
        unknown_connection,
        "application/json",
        signed(&payload),
        payload,
    )
    .await;
    assert_eq!(status, 404);

    assert!(
        support::all_conversations(&node, &tenant.agent_token)
            .await
            .is_empty()
    );
    assert_eq!(
        reqwest::get(node.url("/healthz")).await.unwrap().status(),
        200,
        "node still serves"
    );
}

#[tokio::test]
async fn unknown_message_types_are_kept_as_unsupported_with_their_payload() {
    let node = Node::start().await;
    let tenant = provision(&node, "unsupported").await;
    let order = json!({"from": "5511955554444", "id": "wamid.ST1", "timestamp": "1763900000", "type": "order",
                       "order": {"catalog_id": "998877", "product_items": [{"product_retailer_id": "sku-1", "quantity": 2}]}});
    let brand_new = json!({"from": "5511955554444", "id": "wamid.NEW1", "timestamp": "1763900001", "type": "hologram",
                           "hologram": {"depth": 3}});
    let payload = whatsapp::webhook(&tenant.phone_number_id, vec![order, brand_new], vec![]);
    let (status, body) = whatsapp::post(&node, &tenant, &payload).await;
    assert_eq!(
        (status, body["messages_stored"].as_u64()),
        (200, Some(2)),
        "{body}"
    );
    let conversations = support::all_conversations(&node, &tenant.agent_token).await;
    let messages = support::all_messages(
        &node,
        &tenant.agent_token,
        conversations[0]["id"].as_str().unwrap(),
    )
    .await;
    assert_eq!(messages[0]["content"]["type"], "unsupported");
    assert_eq!(messages[0]["content"]["provider_type"], "order");
    assert_eq!(
        messages[0]["content"]["raw"]["order"]["catalog_id"],
        "998877"
    );
    assert_eq!(messages[1]["content"]["type"], "unsupported");
    assert_eq!(messages[1]["content"]["provider_type"], "hologram");
    assert_eq!(messages[1]["content"]["raw"]["hologram"]["depth"], 3);
}

#[tokio::test]
async fn bad_rest_requests_get_json_errors() {
    let node = Node::start().await;
    let tenant = provision(&node, "rest").await;
    let payload = whatsapp::webhook(
        &tenant.phone_number_id,
        vec![whatsapp::text("5511", "wamid.R", "x")],
        vec![],
    );
    assert_eq!(whatsapp::post(&node, &tenant, &payload).await.0, 200);
    let (_, inbox) = api_get(&node, &tenant.agent_token, "/api/v1/conversations").await;
    let id = inbox["items"][0]["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/conversations/{id}/messages");

    let (status, body) = api_post(&node, &tenant.agent_token, &path, json!({"txt": "typo"})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("malformed_json")),
        "{body}"
    );
    let (status, body) = api_post(&node, &tenant.agent_token, &path, json!({"text": "   "})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("invalid_message")),
        "{body}"
    );
    let (status, body) = api_post(
        &node,
        &tenant.agent_token,
        &path,
        json!({"text": "x".repeat(5000)}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = api_get(
        &node,
        &tenant.agent_token,
        "/api/v1/conversations?cursor=%%%",
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = api_get(
        &node,
        &tenant.agent_token,
        "/api/v1/conversations?limit=100000",
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_limit")),
        "{body}"
    );
    let (status, body) = api_get(&node, &tenant.agent_token, "/api/v1/nothing-here").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("route_not_found")),
        "{body}"
    );
}

#[tokio::test]
async fn retried_reply_with_the_same_client_message_id_is_sent_once() {
    let graph = support::fake_graph::FakeGraph::start().await;
    let node = Node::start_with(Some(graph.base.clone()), Vec::new()).await;
    let tenant = provision(&node, "idempotent-send").await;
    let payload = whatsapp::webhook(
        &tenant.phone_number_id,
        vec![whatsapp::text("5511", "wamid.I", "x")],
        vec![],
    );
    assert_eq!(whatsapp::post(&node, &tenant, &payload).await.0, 200);
    let (_, inbox) = api_get(&node, &tenant.agent_token, "/api/v1/conversations").await;
    let id = inbox["items"][0]["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/conversations/{id}/messages");
    let request = json!({"text": "uma vez só", "client_message_id": "agent-7-msg-1"});
    let (s1, first) = api_post(&node, &tenant.agent_token, &path, request.clone()).await;
    let (s2, second) = api_post(&node, &tenant.agent_token, &path, request).await;
    assert_eq!((s1, s2), (202, 202));
    assert_eq!(first["id"], second["id"]);
    // The header form names the send the same way.
    let keyed = |key: &str| {
        reqwest::Client::new()
            .post(node.url(&path))
            .bearer_auth(&tenant.agent_token)
            .header("idempotency-key", key)
            .json(&json!({"text": "pela chave"}))
            .send()
    };
    let h1: serde_json::Value = keyed("agent-7-msg-2").await.unwrap().json().await.unwrap();
    let h2: serde_json::Value = keyed("agent-7-msg-2").await.unwrap().json().await.unwrap();
    assert_eq!(h1["id"], h2["id"], "{h1} {h2}");
    let conflicting = reqwest::Client::new()
        .post(node.url(&path))
        .bearer_auth(&tenant.agent_token)
        .header("idempotency-key", "one")
        .json(&json!({"text": "x", "client_message_id": "another"}))
        .send()
        .await
        .unwrap();
    assert_eq!(conflicting.status(), 400);
    let messages = support::all_messages(&node, &tenant.agent_token, &id).await;
    assert_eq!(
        messages
            .iter()
            .filter(|m| m["direction"] == "outbound")
            .count(),
        2
    );
}

/// Meta documents POSTs of up to 3 MB: a 2.5 MB batch is stored whole, never refused (Meta would
/// re-send the same bytes for days and they would never get in).
#[tokio::test]
async fn a_webhook_as_large_as_meta_documents_is_stored_whole() {
    let node = Node::start().await;
    let tenant = provision(&node, "big-batch").await;
    let text = "m".repeat(4000);
    let messages = (0..625)
        .map(|i| whatsapp::text("5511922220000", &format!("wamid.BIG{i}"), &text))
        .collect();
    let payload = whatsapp::webhook(&tenant.phone_number_id, messages, vec![]);
    assert!(serde_json::to_vec(&payload).unwrap().len() > 2_500_000);
    let (status, answer) = whatsapp::post(&node, &tenant, &payload).await;
    assert_eq!(
        (status, answer["messages_stored"].as_u64()),
        (200, Some(625)),
        "{answer}"
    );
}

/// An id no provider would send (a 70 KB message id, a 2 KB status id, an empty sender) is refused with
/// 400 at the edge, before it can become a storage key: never a panic, never a 503 retried forever.
#[tokio::test]
async fn over_long_or_empty_ids_are_refused_with_400_and_store_nothing() {
    let node = Node::start().await;
    let tenant = provision(&node, "long-ids").await;
    let cases = [
        whatsapp::webhook(
            &tenant.phone_number_id,
            vec![whatsapp::text("5511", &"w".repeat(70_000), "x")],
            vec![],
        ),
        whatsapp::webhook(
            &tenant.phone_number_id,
            vec![whatsapp::text("5511", &"w".repeat(1_025), "x")],
            vec![],
        ),
        whatsapp::webhook(
            &tenant.phone_number_id,
            vec![],
            vec![whatsapp::status("5511", &"s".repeat(2_000), "delivered")],
        ),
        whatsapp::webhook(
            &tenant.phone_number_id,
            vec![whatsapp::text("", "wamid.EMPTY", "x")],
            vec![],
        ),
    ];
    for payload in cases {
        let (status, body) = whatsapp::post(&node, &tenant, &payload).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("malformed_payload")),
            "{body}"
        );
    }
    assert!(
        support::all_conversations(&node, &tenant.agent_token)
            .await
            .is_empty()
    );
}
