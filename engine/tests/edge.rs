//! The edge under attack, on the real binary: slow clients (slowloris headers and bodies) never hold the
//! capacity real webhooks need and are cut by the node's own timers; an agent socket that stops reading
//! is closed with 4008; tokens are read from the query string only on the WebSocket upgrade; stray
//! `CONVERSA_*` variables do not stop a node from starting.

mod support;

use futures::StreamExt;
use serde_json::json;
use support::{ADMIN_TOKEN, Agent, Node, WAIT, api_get, provision, whatsapp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the server closes the connection (EOF or reset); `false` if it stays open for `WAIT`.
async fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buffer = [0u8; 4096];
    tokio::time::timeout(WAIT, async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test]
async fn slow_and_unsigned_clients_never_starve_real_webhooks_and_are_cut() {
    let mut node = Node::start_with(
        None,
        vec![
            ("CONVERSA_HTTP__HEADER_READ_TIMEOUT_SECS".into(), "1".into()),
            (
                "CONVERSA_GATEWAY__BODY_READ_TIMEOUT_SECS".into(),
                "2".into(),
            ),
            ("CONVERSA_GATEWAY__MAX_INFLIGHT_WEBHOOKS".into(), "4".into()),
        ],
    )
    .await;
    let tenant = provision(&node, "slowloris").await;

    // Slow bodies: unsigned POSTs to a real connection that promise 10 KB and send 10 bytes. Many more
    // of them than the node has webhook permits.
    let mut slow_bodies = Vec::new();
    for _ in 0..24 {
        let mut stream = TcpStream::connect(&node.addr).await.unwrap();
        let head = format!(
            "POST /webhooks/whatsapp/{} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 10000\r\n\r\n{{\"object\":",
            tenant.connection_id
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        slow_bodies.push(stream);
    }
    // Slow heads: a request line and half a header block, never finished.
    let mut slow_heads = Vec::new();
    for _ in 0..8 {
        let mut stream = TcpStream::connect(&node.addr).await.unwrap();
        stream
            .write_all(b"POST /webhooks/whatsapp/x HTTP/1.1\r\nhost: x\r\ncontent-ty")
            .await
            .unwrap();
        slow_heads.push(stream);
    }

    // Meanwhile a real, signed webhook is stored.
    let payload = whatsapp::webhook(
        &tenant.phone_number_id,
        vec![whatsapp::text("5511944440000", "wamid.REAL", "ainda aqui")],
        vec![],
    );
    let (status, answer) = whatsapp::post(&node, &tenant, &payload).await;
    assert_eq!(
        (status, answer["messages_stored"].as_u64()),
        (200, Some(1)),
        "{answer}"
    );

    // The node's own timers end both kinds of slow client: a slow body gets 408, a slow head is closed.
    let mut answer = String::new();
    let first = &mut slow_bodies[0];
    let _ = tokio::time::timeout(WAIT, first.read_to_string(&mut answer)).await;
    assert!(
        answer.starts_with("HTTP/1.1 408"),
        "slow body answered: {answer:?}"
    );
    assert!(answer.contains("body_timeout"), "{answer}");
    for stream in &mut slow_heads {
        assert!(
            closed_by_server(stream).await,
            "a half-sent header block kept its connection open"
        );
    }

    // A slow client still connected does not hold up a graceful stop.
    let mut lingering = TcpStream::connect(&node.addr).await.unwrap();
    lingering
        .write_all(b"GET /healthz HTTP/1.1\r\n")
        .await
        .unwrap();
    assert!(
        node.terminate().await,
        "SIGTERM did not stop the node cleanly"
    );
}

#[tokio::test]
async fn an_agent_socket_that_stops_reading_is_closed_with_4008() {
    let node = Node::start_with(
        None,
        vec![
            ("CONVERSA_GATEWAY__WS_WRITE_TIMEOUT_SECS".into(), "1".into()),
            ("CONVERSA_GATEWAY__WS_SEND_QUEUE".into(), "64".into()),
        ],
    )
    .await;
    let tenant = provision(&node, "stalled").await;

    // A client with a tiny receive window that subscribes and then stops reading.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(node.addr.parse().unwrap()).await.unwrap();
    let url = format!("ws://{}/api/v1/ws?token={}", node.addr, tenant.agent_token);
    let (socket, _) =
        tokio_tungstenite::client_async(url, tokio_tungstenite::MaybeTlsStream::Plain(stream))
            .await
            .unwrap();
    let mut agent = Agent::from_socket(socket);
    assert_eq!(agent.next_frame().await.unwrap()["type"], "ready");
    agent.send(json!({"type": "subscribe"})).await;
    assert_eq!(agent.next_frame().await.unwrap()["type"], "subscribed");

    // Events far larger than every buffer between the node and this client: 120 webhooks of 20
    // messages of 4,000 characters each.
    let text = "x".repeat(4000);
    for batch in 0..120 {
        let messages = (0..20)
            .map(|i| whatsapp::text("5511933330000", &format!("wamid.S{batch}.{i}"), &text))
            .collect();
        let payload = whatsapp::webhook(&tenant.phone_number_id, messages, vec![]);
        assert_eq!(whatsapp::post(&node, &tenant, &payload).await.0, 200);
        if socket_count(&node).await == 0 {
            break;
        }
    }
    // Whatever the node managed to write before giving up is read now; then the close frame, which
    // waits (up to two seconds) behind what was written, the socket no longer counted as served.
    let code = tokio::time::timeout(WAIT, async {
        let mut raw = agent.into_inner();
        while let Some(message) = raw.next().await {
            match message {
                Ok(tokio_tungstenite::tungstenite::Message::Close(frame)) => {
                    return frame.map(|f| u16::from(f.code));
                }
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
        None
    })
    .await
    .expect("the stalled socket was never closed");
    assert_eq!(
        code,
        Some(4008),
        "the stalled agent must learn it was a slow consumer"
    );
    assert_eq!(socket_count(&node).await, 0);
}

/// `conversa_ws_connections` from `/metrics`.
async fn socket_count(node: &Node) -> u64 {
    let text = reqwest::get(node.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix("conversa_ws_connections "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

#[tokio::test]
async fn tokens_in_the_query_string_count_only_on_the_websocket_upgrade() {
    let node = Node::start().await;
    let tenant = provision(&node, "query-token").await;
    let client = reqwest::Client::new();

    let rest = client
        .get(node.url(&format!(
            "/api/v1/conversations?token={}",
            tenant.agent_token
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(rest.status(), 401, "an agent token in a REST URL");

    let admin = client
        .post(node.url(&format!("/api/v1/admin/tenants?token={ADMIN_TOKEN}")))
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), 401, "the admin token in a URL");
    assert_eq!(admin.headers()["content-type"], "application/problem+json");
    assert_eq!(admin.headers()["x-content-type-options"], "nosniff");

    // The header still works everywhere, and the WebSocket still takes `?token=`.
    let (status, _) = api_get(&node, &tenant.agent_token, "/api/v1/conversations").await;
    assert_eq!(status, 200);
    let (agent, _) = Agent::connect(&node, &tenant.agent_token, None).await;
    agent.close().await;
}

#[tokio::test]
async fn stray_conversa_variables_do_not_stop_a_node() {
    let node = Node::start_with(
        None,
        vec![
            ("CONVERSA_CACHE".into(), "/tmp/conversa-cache".into()),
            ("CONVERSA_SOMETHING_ELSE".into(), "1".into()),
        ],
    )
    .await;
    let (status, _) = api_get(&node, "none", "/healthz").await;
    assert_eq!(status, 200);
}
