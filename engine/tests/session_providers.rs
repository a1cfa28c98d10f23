//! End to end on the real binary with the WhatsApp Web gateways (Evolution API, Z-API), against a local
//! fake of both: pairing by QR code reaches admins (and only admins) live, session state is stored and
//! pushed, messages come in and replies go out through the instance's credentials, statuses follow, and
//! a post without the connection's URL secret, for another instance or to a paused connection is refused
//! and stores nothing.

mod support;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::fake_wweb::FakeWweb;
use support::sessions::{add_session, admin_agent, evolution, post_webhook};
use support::{ADMIN_TOKEN, Agent, Node, api_get, api_post, provision};

fn evolution_text(id: &str, text: &str) -> Value {
    evolution(
        "messages.upsert",
        json!({"key": {"remoteJid": "5511988887777@s.whatsapp.net", "fromMe": false, "id": id},
               "pushName": "Maria Silva", "status": "DELIVERY_ACK", "message": {"conversation": text},
               "messageType": "conversation", "messageTimestamp": 1717689097,
               "instanceId": "af6c5b7c", "source": "android"}),
    )
}

/// Frames until one of `kind` arrives (others are collected too).
async fn frames_until(agent: &mut Agent, kind: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    while let Some(frame) = agent.next_frame().await {
        let done = frame["type"] == kind;
        seen.push(frame);
        if done {
            return seen;
        }
    }
    panic!("socket ended before a {kind} frame: {seen:?}");
}

#[tokio::test]
async fn evolution_number_pairs_by_qr_then_exchanges_messages_and_statuses() {
    let fake = FakeWweb::start().await;
    let node = Node::start().await;
    let tenant = provision(&node, "evolution").await;
    let session = add_session(
        &node,
        &tenant.tenant_id,
        json!({"name": "Loja", "provider": "evolution", "server_url": fake.base,
               "instance": "acme-main", "api_key": "evo-key-1"}),
    )
    .await;
    assert!(
        session
            .webhook_path
            .starts_with(&format!("/webhooks/evolution/{}/", session.connection_id))
    );
    let (_, listed) = api_get(&node, &tenant.agent_token, "/api/v1/connections").await;
    let status_of = |listed: &Value| {
        listed.as_array().and_then(|all| {
            all.iter()
                .find(|c| c["id"] == session.connection_id.as_str())
                .map(|c| c["status"].clone())
        })
    };
    assert_eq!(status_of(&listed), Some(json!("connecting")));

    let admin_token = admin_agent(&node, &tenant.tenant_id).await;
    let (mut admin, _) = Agent::connect(&node, &admin_token, None).await;
    let (mut agent, _) = Agent::connect(&node, &tenant.agent_token, None).await;

    // Pairing: the QR code reaches the admin; the agent only sees the state change.
    let qr = evolution(
        "qrcode.updated",
        json!({"qrcode": {"instance": "acme-main", "pairingCode": null, "code": "2@y8eK",
               "base64": "data:image/png;base64,iVBORw0KGgo"}}),
    );
    let (status, body) = post_webhook(&node, &session.webhook_path, &qr).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let frames = frames_until(&mut admin, "connection_qr").await;
    let qr_frame = frames.last().expect("qr frame");
    assert_eq!(qr_frame["qr_code"], "data:image/png;base64,iVBORw0KGgo");
    assert_eq!(qr_frame["connection_id"], session.connection_id.as_str());
    let update = frames_until(&mut agent, "connection_updated").await;
    assert_eq!(
        update.last().expect("update")["connection"]["status"],
        "qr_required"
    );
    // Evolution re-posts the same code: nothing changed, so nobody is told again.
    assert_eq!(
        post_webhook(&node, &session.webhook_path, &qr).await.0,
        StatusCode::OK
    );

    let open = evolution(
        "connection.update",
        json!({"instance": "acme-main", "state": "open", "statusReason": 200}),
    );
    assert_eq!(
        post_webhook(&node, &session.webhook_path, &open).await.0,
        StatusCode::OK
    );
    let update = frames_until(&mut agent, "connection_updated").await;
    assert_eq!(
        update.last().expect("update")["connection"]["status"],
        "connected"
    );
    assert!(
        !update.iter().any(|f| f["type"] == "connection_qr"),
        "agents never receive QR codes"
    );
    let admin_frames = frames_until(&mut admin, "connection_updated").await;
    assert_eq!(
        admin_frames
            .iter()
            .map(|f| (f["type"].clone(), f["connection"]["status"].clone()))
            .collect::<Vec<_>>(),
        vec![(json!("connection_updated"), json!("connected"))],
        "the repeated QR code was announced again"
    );

    // A message in, once, even when Evolution retries it.
    let inbound = evolution_text("3EB0C431C26A1916E07A", "Olá, tudo bem?");
    let (status, body) = post_webhook(&node, &session.webhook_path, &inbound).await;
    assert_eq!(
        (status, body["messages_stored"].clone()),
        (StatusCode::OK, json!(1)),
        "{body}"
    );
    let (_, retry) = post_webhook(&node, &session.webhook_path, &inbound).await;
    assert_eq!(retry["messages_stored"], 0);
    let events = agent.events_until(|e| e.len() >= 2).await;
    assert_eq!(
        events[1]["data"]["message"]["content"]["body"],
        "Olá, tudo bem?"
    );
    assert_eq!(
        events[1]["data"]["message"]["provider_message_id"],
        "3EB0C431C26A1916E07A"
    );
    let conversation = events[0]["conversation_id"]
        .as_str()
        .expect("id")
        .to_string();

    // A reply out through the instance's API key, quoting nothing, then its statuses.
    let (status, sent) = api_post(
        &node,
        &tenant.agent_token,
        &format!("/api/v1/conversations/{conversation}/messages"),
        json!({"text": "Tudo ótimo! Como posso ajudar?"}),
    )
    .await;
    assert_eq!(status, 202, "{sent}");
    let events = agent.events_until(|e| e.len() >= 2).await;
    assert_eq!(events[1]["data"]["status"], "accepted");
    let sends: Vec<_> = fake
        .received()
        .into_iter()
        .filter(|r| r.action == "message/sendText")
        .collect();
    assert_eq!(sends.len(), 1);
    assert_eq!(sends[0].instance, "acme-main");
    assert_eq!(sends[0].credential, "evo-key-1");
    assert_eq!(
        sends[0].body,
        json!({"number": "5511988887777", "text": "Tudo ótimo! Como posso ajudar?"})
    );
    let id = sends[0].message_id.clone();
    assert_eq!(events[1]["data"]["provider_message_id"], id.as_str());
    for raw in ["READ", "DELIVERY_ACK"] {
        let update = evolution(
            "messages.update",
            json!({"keyId": id, "remoteJid": "5511988887777@s.whatsapp.net", "fromMe": true,
                   "status": raw, "instanceId": "af6c5b7c", "messageId": "clx1"}),
        );
        assert_eq!(
            post_webhook(&node, &session.webhook_path, &update).await.0,
            StatusCode::OK
        );
    }
    let events = agent.events_until(|e| !e.is_empty()).await;
    assert_eq!(events[0]["data"]["status"], "read");
    assert!(
        agent
            .receives_nothing_within(std::time::Duration::from_millis(300))
            .await,
        "a late delivered never moves it back"
    );

    // WhatsApp Web has no templates: refused up front, nothing stored or sent.
    let (status, refused) = api_post(
        &node,
        &tenant.agent_token,
        &format!("/api/v1/conversations/{conversation}/messages"),
        json!({"template": {"name": "pedido", "language": "pt_BR"}}),
    )
    .await;
    assert_eq!(status, 422, "{refused}");
    agent.close().await;
    admin.close().await;
}

#[tokio::test]
async fn zapi_number_exchanges_messages_media_and_reports_disconnects() {
    let fake = FakeWweb::start().await;
    let node = Node::start_with(
        None,
        vec![
            ("CONVERSA_ZAPI__API_BASE".into(), fake.base.clone()),
            (
                "CONVERSA_ACTORS__SESSION_RECONNECT_MIN_MS".into(),
                "100".into(),
            ),
            (
                "CONVERSA_ACTORS__SESSION_RECONNECT_MAX_MS".into(),
                "400".into(),
            ),
        ],
    )
    .await;
    let tenant = provision(&node, "zapi").await;
    let session = add_session(
        &node,
        &tenant.tenant_id,
        json!({"name": "Z", "provider": "zapi", "instance_id": "A20DA9C0183A2D35A260F53F5D2B9244",
               "instance_token": "inst-token-9", "client_token": "account-token-7"}),
    )
    .await;
    let (mut agent, _) = Agent::connect(&node, &tenant.agent_token, None).await;
    let connected = json!({"type": "ConnectedCallback", "connected": true, "momment": 1717689097000_i64,
                           "instanceId": "A20DA9C0183A2D35A260F53F5D2B9244", "phone": "554499999999"});
    assert_eq!(
        post_webhook(&node, &session.webhook_path, &connected)
            .await
            .0,
        StatusCode::OK
    );
    let update = frames_until(&mut agent, "connection_updated").await;
    assert_eq!(
        update.last().expect("update")["connection"]["status"],
        "connected"
    );

    let file_url = format!("{}/files/IMG1", fake.base);
    fake.add_media("IMG1", "image/jpeg", b"\xff\xd8\xff jpeg bytes".to_vec());
    let image = json!({"isGroup": false, "isNewsletter": false, "instanceId": "A20DA9C0183A2D35A260F53F5D2B9244",
        "messageId": "3EB0ZIMG", "phone": "5544999999999", "fromMe": false, "momment": 1632228638000_i64,
        "status": "RECEIVED", "chatName": "Maria", "senderName": "Maria", "broadcast": false,
        "type": "ReceivedCallback",
        "image": {"mimeType": "image/jpeg", "imageUrl": file_url, "caption": "Comprovante"}});
    let (status, body) = post_webhook(&node, &session.webhook_path, &image).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let events = agent.events_until(|e| e.len() >= 2).await;
    let message = &events[1]["data"]["message"];
    assert_eq!(message["content"]["type"], "media");
    let conversation = events[0]["conversation_id"]
        .as_str()
        .expect("id")
        .to_string();
    let seq = message["seq"].as_u64().expect("seq");
    let media = reqwest::Client::new()
        .get(node.url(&format!(
            "/api/v1/conversations/{conversation}/messages/{seq}/media"
        )))
        .bearer_auth(&tenant.agent_token)
        .send()
        .await
        .expect("media GET");
    assert_eq!(media.status(), StatusCode::OK);
    assert_eq!(
        media.bytes().await.expect("bytes").as_ref(),
        b"\xff\xd8\xff jpeg bytes"
    );

    let (status, sent) = api_post(
        &node,
        &tenant.agent_token,
        &format!("/api/v1/conversations/{conversation}/messages"),
        json!({"text": "Recebido, obrigado!"}),
    )
    .await;
    assert_eq!(status, 202, "{sent}");
    let events = agent.events_until(|e| e.len() >= 2).await;
    assert_eq!(events[1]["data"]["status"], "accepted");
    let send = fake
        .received()
        .into_iter()
        .find(|r| r.action == "send-text")
        .expect("send-text");
    assert_eq!(
        (send.instance.as_str(), send.token.as_str()),
        ("A20DA9C0183A2D35A260F53F5D2B9244", "inst-token-9")
    );
    assert_eq!(send.credential, "account-token-7");
    assert_eq!(
        send.body,
        json!({"phone": "5544999999999", "message": "Recebido, obrigado!"})
    );
    let status_callback = json!({"instanceId": "A20DA9C0183A2D35A260F53F5D2B9244", "status": "READ",
        "ids": [send.message_id], "momment": 1632234699000_i64, "phone": "5544999999999",
        "type": "MessageStatusCallback", "isGroup": false});
    assert_eq!(
        post_webhook(&node, &session.webhook_path, &status_callback)
            .await
            .0,
        StatusCode::OK
    );
    let events = agent.events_until(|e| !e.is_empty()).await;
    assert_eq!(events[0]["data"]["status"], "read");

    let dropped = json!({"momment": 1580163342, "error": "Device has been disconnected",
                         "disconnected": true, "type": "DisconnectedCallback",
                         "instanceId": "A20DA9C0183A2D35A260F53F5D2B9244"});
    assert_eq!(
        post_webhook(&node, &session.webhook_path, &dropped).await.0,
        StatusCode::OK
    );
    let update = frames_until(&mut agent, "connection_updated").await;
    assert_eq!(
        update.last().expect("update")["connection"]["status"],
        "disconnected"
    );

    // While the session stays down the node keeps asking Z-API to restart it, backing off; once a
    // webhook says it is back, it stops.
    let restarts = || {
        fake.received()
            .iter()
            .filter(|r| r.action == "restart")
            .map(|r| (r.token.clone(), r.credential.clone()))
            .collect::<Vec<_>>()
    };
    support::eventually("three restart attempts while disconnected", || async {
        (restarts().len() >= 3).then_some(())
    })
    .await;
    assert!(
        restarts()
            .iter()
            .all(|(token, client)| token == "inst-token-9" && client == "account-token-7")
    );
    assert_eq!(
        post_webhook(&node, &session.webhook_path, &connected)
            .await
            .0,
        StatusCode::OK
    );
    let update = frames_until(&mut agent, "connection_updated").await;
    assert_eq!(
        update.last().expect("update")["connection"]["status"],
        "connected"
    );
    // The loop ends at its next attempt, and no attempt is left on its way: every restart the node
    // started has been answered. From then on nothing can ask Z-API again until a new disconnect.
    support::eventually("the reconnect loop ended", || async {
        let loops = support::metric(&node, "conversa_session_reconnect_loops").await;
        let calls = support::metric(&node, "conversa_session_reconnects_total").await;
        (loops == 0.0 && calls as usize == restarts().len()).then_some(())
    })
    .await;
    agent.close().await;
}

#[tokio::test]
async fn session_webhook_without_its_secret_for_another_instance_or_paused_stores_nothing() {
    let fake = FakeWweb::start().await;
    let node = Node::start().await;
    let tenant = provision(&node, "guarded").await;
    let session = add_session(
        &node,
        &tenant.tenant_id,
        json!({"name": "Loja", "provider": "evolution", "server_url": fake.base,
               "instance": "acme-main", "api_key": "evo-key-1"}),
    )
    .await;
    let inbound = evolution_text("3EB0GUARD", "oi");
    let wrong_secret = format!(
        "/webhooks/evolution/{}/{}",
        session.connection_id,
        "0".repeat(64)
    );
    let (status, body) = post_webhook(&node, &wrong_secret, &inbound).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["code"], "unauthorized");
    let wrong_route = session.webhook_path.replace("/evolution/", "/zapi/");
    assert_eq!(
        post_webhook(&node, &wrong_route, &inbound).await.0,
        StatusCode::NOT_FOUND
    );
    let mut other_instance = inbound.clone();
    other_instance["instance"] = json!("someone-else");
    let (status, body) = post_webhook(&node, &session.webhook_path, &other_instance).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let mut no_instance = inbound.clone();
    no_instance
        .as_object_mut()
        .expect("envelope")
        .remove("instance");
    let (status, body) = post_webhook(&node, &session.webhook_path, &no_instance).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a payload naming no instance: {body}"
    );
    let (status, body) = post_webhook(&node, &session.webhook_path, &json!({"no": "event"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    let response = reqwest::Client::new()
        .patch(node.url(&format!(
            "/api/v1/admin/tenants/{}/connections/{}",
            tenant.tenant_id, session.connection_id
        )))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"status": "paused"}))
        .send()
        .await
        .expect("PATCH");
    assert_eq!(response.status(), StatusCode::OK);
    let (status, body) = post_webhook(&node, &session.webhook_path, &inbound).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    let (_, inbox) = api_get(&node, &tenant.agent_token, "/api/v1/conversations").await;
    assert_eq!(
        inbox["items"].as_array().map(Vec::len),
        Some(0),
        "nothing was stored: {inbox}"
    );
}

#[tokio::test]
async fn echo_of_our_own_send_that_overtakes_the_answer_is_not_a_second_message() {
    let fake = FakeWweb::start().await;
    let node = Node::start_with(
        None,
        vec![("CONVERSA_ZAPI__API_BASE".into(), fake.base.clone())],
    )
    .await;
    let tenant = provision(&node, "echo").await;
    let session = add_session(
        &node,
        &tenant.tenant_id,
        json!({"name": "Z", "provider": "zapi", "instance_id": "ECHOINSTANCE",
               "instance_token": "inst-token", "client_token": "account-token"}),
    )
    .await;
    let inbound = json!({"instanceId": "ECHOINSTANCE", "messageId": "3EB0IN", "phone": "5544999999999",
        "fromMe": false, "momment": 1632228638000_i64, "status": "RECEIVED", "senderName": "Maria",
        "type": "ReceivedCallback", "text": {"message": "Oi"}});
    assert_eq!(
        post_webhook(&node, &session.webhook_path, &inbound).await.0,
        StatusCode::OK
    );
    let (_, inbox) = api_get(&node, &tenant.agent_token, "/api/v1/conversations").await;
    let conversation = inbox["items"][0]["id"]
        .as_str()
        .expect("conversation")
        .to_string();

    fake.echo_before_answering(&node.url(&session.webhook_path));
    let (status, sent) = api_post(
        &node,
        &tenant.agent_token,
        &format!("/api/v1/conversations/{conversation}/messages"),
        json!({"text": "Olá, Maria!"}),
    )
    .await;
    assert_eq!(status, 202, "{sent}");
    let send = support::eventually("the reply was sent", || async {
        fake.received()
            .into_iter()
            .find(|r| r.action == "send-text")
    })
    .await;
    // Wait until the late answer was applied too: the reply carries the provider's id.
    let history = support::eventually("the reply got its provider id", || async {
        let history = support::all_messages(&node, &tenant.agent_token, &conversation).await;
        history
            .iter()
            .any(|m| m["provider_message_id"] == send.message_id.as_str())
            .then_some(history)
    })
    .await;
    let replies: Vec<_> = history
        .iter()
        .filter(|m| m["direction"] == "outbound")
        .collect();
    assert_eq!(
        replies.len(),
        1,
        "one reply, not a second copy from its echo: {history:?}"
    );
    assert_eq!(replies[0]["status"], "sent");
}

/// The phone's owner types exactly the reply's text while the reply waits for the gateway's answer: the
/// reply is not taken for sent on that guess, and the phone's message is kept as a message of its own.
#[tokio::test]
async fn the_phone_typing_a_replys_text_neither_sends_the_reply_nor_is_lost() {
    let fake = FakeWweb::start().await;
    let node = Node::start_with(
        None,
        vec![("CONVERSA_ZAPI__API_BASE".into(), fake.base.clone())],
    )
    .await;
    let tenant = provision(&node, "same-text").await;
    let session = add_session(
        &node,
        &tenant.tenant_id,
        json!({"name": "Z", "provider": "zapi", "instance_id": "SAMETEXT",
               "instance_token": "inst-token", "client_token": "account-token"}),
    )
    .await;
    let inbound = json!({"instanceId": "SAMETEXT", "messageId": "3EB0IN2", "phone": "5544999990000",
        "fromMe": false, "momment": 1632228638000_i64, "status": "RECEIVED", "senderName": "Maria",
        "type": "ReceivedCallback", "text": {"message": "Oi"}});
    assert_eq!(
        post_webhook(&node, &session.webhook_path, &inbound).await.0,
        StatusCode::OK
    );
    let (_, inbox) = api_get(&node, &tenant.agent_token, "/api/v1/conversations").await;
    let conversation = inbox["items"][0]["id"]
        .as_str()
        .expect("conversation")
        .to_string();

    fake.phone_types_the_same_before_answering(&node.url(&session.webhook_path));
    let (status, sent) = api_post(
        &node,
        &tenant.agent_token,
        &format!("/api/v1/conversations/{conversation}/messages"),
        json!({"text": "Bom dia!"}),
    )
    .await;
    assert_eq!(status, 202, "{sent}");
    let history = support::eventually(
        "the reply was answered and the phone's message stored",
        || async {
            let history = support::all_messages(&node, &tenant.agent_token, &conversation).await;
            let outbound = history
                .iter()
                .filter(|m| m["direction"] == "outbound")
                .count();
            let answered = history
                .iter()
                .any(|m| m["id"] == sent["id"] && m["status"] != "pending");
            (outbound >= 2 && answered).then_some(history)
        },
    )
    .await;
    let reply = history.iter().find(|m| m["id"] == sent["id"]).unwrap();
    let send = fake
        .received()
        .into_iter()
        .find(|r| r.action == "send-text")
        .expect("the reply went out");
    assert_eq!(
        reply["provider_message_id"],
        send.message_id.as_str(),
        "{history:?}"
    );
    assert_eq!(reply["status"], "accepted");
    let typed = format!("3EB0PHONE{}", send.message_id);
    assert!(
        history
            .iter()
            .any(|m| m["provider_message_id"] == typed.as_str() && m["direction"] == "outbound"),
        "the phone's own message was lost: {history:?}"
    );
}
