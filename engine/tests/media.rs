//! Media messages: the file is fetched from the provider with the connection's token and streamed to
//! the agent with its content type; other tenants cannot fetch it, files over the limit are refused,
//! and expired media says so.

mod support;

use serde_json::{Value, json};
use support::fake_graph::FakeGraph;
use support::{Node, Tenant, api_get, provision, whatsapp};

async fn media_message(
    node: &Node,
    tenant: &Tenant,
    wamid: &str,
    kind: &str,
    object: Value,
) -> String {
    let mut message =
        json!({"from": "5511966665555", "id": wamid, "timestamp": whatsapp::now(), "type": kind});
    message[kind] = object;
    let payload = whatsapp::webhook(&tenant.phone_number_id, vec![message], vec![]);
    assert_eq!(whatsapp::post(node, tenant, &payload).await.0, 200);
    let (_, inbox) = api_get(node, &tenant.agent_token, "/api/v1/conversations").await;
    inbox["items"][0]["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn agent_downloads_media_through_the_node_with_its_content_type() {
    let graph = FakeGraph::start().await;
    let node = Node::start_with(
        Some(graph.base.clone()),
        vec![("CONVERSA_GATEWAY__MEDIA_MAX_BYTES".into(), "4096".into())],
    )
    .await;
    let tenant = provision(&node, "media").await;
    let other = provision(&node, "media-other").await;
    let jpeg: Vec<u8> = (0..2048u32).map(|i| (i % 251) as u8).collect();
    graph.add_media(
        "1479537139650973",
        "image/jpeg",
        jpeg.clone(),
        "token-media",
    );
    graph.add_media(
        "big-file",
        "application/pdf",
        vec![0; 10_000],
        "token-media",
    );
    graph.add_media(
        "html-page",
        "text/html",
        b"<script>alert(document.cookie)</script>".to_vec(),
        "token-media",
    );
    let conversation = media_message(&node, &tenant, "wamid.IMG", "image",
        json!({"id": "1479537139650973", "mime_type": "image/jpeg", "sha256": "x", "caption": "comprovante"})).await;
    media_message(
        &node,
        &tenant,
        "wamid.DOC",
        "document",
        json!({"id": "big-file", "mime_type": "application/pdf", "filename": "contrato.pdf"}),
    )
    .await;
    media_message(
        &node,
        &tenant,
        "wamid.OLD",
        "audio",
        json!({"id": "expired-id", "mime_type": "audio/ogg"}),
    )
    .await;

    media_message(
        &node,
        &tenant,
        "wamid.HTML",
        "image",
        json!({"id": "html-page", "mime_type": "image/jpeg"}),
    )
    .await;

    let messages = support::all_messages(&node, &tenant.agent_token, &conversation).await;
    assert_eq!(messages[0]["content"]["type"], "media");
    assert_eq!(messages[0]["content"]["kind"], "image");
    let url = |seq: &Value| {
        node.url(&format!(
            "/api/v1/conversations/{conversation}/messages/{seq}/media"
        ))
    };
    let client = reqwest::Client::new();

    let image = client
        .get(url(&messages[0]["seq"]))
        .bearer_auth(&tenant.agent_token)
        .send()
        .await
        .unwrap();
    assert_eq!(image.status(), 200);
    assert_eq!(image.headers()["content-type"], "image/jpeg");
    assert_eq!(image.headers()["content-disposition"], "inline");
    assert_eq!(image.headers()["x-content-type-options"], "nosniff");
    assert!(
        image.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("sandbox")
    );
    assert_eq!(image.bytes().await.unwrap().to_vec(), jpeg);

    // A sender's HTML (labelled an image in the webhook, served as text/html by the provider) is a
    // download under a sandboxing CSP, never a page in the API's origin.
    let html = client
        .get(url(&messages[3]["seq"]))
        .bearer_auth(&tenant.agent_token)
        .send()
        .await
        .unwrap();
    assert_eq!(html.status(), 200);
    assert_eq!(html.headers()["content-disposition"], "attachment");
    assert_eq!(html.headers()["x-content-type-options"], "nosniff");
    assert!(
        html.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );

    let too_big = client
        .get(url(&messages[1]["seq"]))
        .bearer_auth(&tenant.agent_token)
        .send()
        .await
        .unwrap();
    assert_eq!(too_big.status(), 413);
    let expired = client
        .get(url(&messages[2]["seq"]))
        .bearer_auth(&tenant.agent_token)
        .send()
        .await
        .unwrap();
    let expired: Value = expired.json().await.unwrap();
    assert_eq!(expired["code"], "media_expired");

    let foreign = client
        .get(url(&messages[0]["seq"]))
        .bearer_auth(&other.agent_token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        foreign.status(),
        404,
        "another tenant cannot fetch the file"
    );
    // A file URL that redirects is not followed: a redirect could point the node anywhere.
    graph.add_media(
        "redirect-internal",
        "image/jpeg",
        jpeg.clone(),
        "token-media",
    );
    media_message(
        &node,
        &tenant,
        "wamid.REDIR",
        "image",
        json!({"id": "redirect-internal", "mime_type": "image/jpeg"}),
    )
    .await;
    let messages = support::all_messages(&node, &tenant.agent_token, &conversation).await;
    let redirected = client
        .get(url(&messages[4]["seq"]))
        .bearer_auth(&tenant.agent_token)
        .send()
        .await
        .unwrap();
    assert_eq!(redirected.status(), 502, "a redirect was followed");

    let (status, body) = api_get(
        &node,
        &tenant.agent_token,
        &format!("/api/v1/conversations/{conversation}/messages/99/media"),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("message_not_found"))
    );
}
