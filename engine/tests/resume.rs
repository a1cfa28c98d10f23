//! Resume after a reconnect: the agent says what it last saw and gets exactly the events it missed,
//! replayed from the store, then live events with no gap and no duplicate.

mod support;

use serde_json::{Value, json};
use support::{Agent, Node, provision, whatsapp};

fn seqs(events: &[Value]) -> Vec<(String, u64)> {
    events
        .iter()
        .map(|e| {
            (
                e["conversation_id"].as_str().unwrap().to_string(),
                e["seq"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn reconnecting_agent_receives_exactly_the_missed_events() {
    let node = Node::start().await;
    let tenant = provision(&node, "resume").await;
    let (mut agent, _) = Agent::connect(&node, &tenant.agent_token, None).await;
    let send = |contact: &'static str, wamid: String| {
        let payload = whatsapp::webhook(
            &tenant.phone_number_id,
            vec![whatsapp::text(contact, &wamid, "x")],
            vec![],
        );
        let node = &node;
        let tenant = &tenant;
        async move { assert_eq!(whatsapp::post(node, tenant, &payload).await.0, 200) }
    };
    send("5511911110001", "wamid.A1".into()).await;
    let seen = agent.events_until(|e| e.len() >= 2).await;
    let known = seen[0]["conversation_id"].as_str().unwrap().to_string();
    let since = seen.last().unwrap()["at"].clone();
    agent.close().await;

    // While away: two more messages in the known conversation, and a brand-new conversation.
    send("5511911110001", "wamid.A2".into()).await;
    send("5511911110001", "wamid.A3".into()).await;
    send("5511911110002", "wamid.B1".into()).await;

    let resume = json!({"since": since, "positions": {known.clone(): 2}});
    let (mut agent, replayed) = Agent::connect(&node, &tenant.agent_token, Some(resume)).await;
    let mut got = seqs(&replayed);
    got.sort();
    let other = replayed
        .iter()
        .find(|e| e["conversation_id"] != known.as_str())
        .unwrap()["conversation_id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut expected = vec![
        (known.clone(), 3),
        (known.clone(), 4),
        (other.clone(), 1),
        (other.clone(), 2),
    ];
    expected.sort();
    assert_eq!(got, expected, "exactly the missed events, each once");

    // Live continues after the replay without a gap.
    send("5511911110001", "wamid.A4".into()).await;
    let live = agent.events_until(|e| !e.is_empty()).await;
    assert_eq!(seqs(&live), vec![(known.clone(), 5)]);
    agent.close().await;
}

#[tokio::test]
async fn resume_with_nothing_missed_replays_nothing() {
    let node = Node::start().await;
    let tenant = provision(&node, "uptodate").await;
    let payload = whatsapp::webhook(
        &tenant.phone_number_id,
        vec![whatsapp::text("5511922220001", "wamid.U1", "x")],
        vec![],
    );
    let (mut agent, _) = Agent::connect(&node, &tenant.agent_token, None).await;
    assert_eq!(whatsapp::post(&node, &tenant, &payload).await.0, 200);
    let seen = agent.events_until(|e| e.len() >= 2).await;
    agent.close().await;
    let conversation = seen[0]["conversation_id"].as_str().unwrap();
    let resume = json!({"since": seen[1]["at"], "positions": {conversation: 2}});
    let (agent, replayed) = Agent::connect(&node, &tenant.agent_token, Some(resume)).await;
    assert!(replayed.is_empty(), "nothing was missed: {replayed:?}");
    agent.close().await;
}

#[tokio::test]
async fn resume_too_far_behind_is_refused_explicitly() {
    let node = Node::start_with(
        None,
        vec![("CONVERSA_GATEWAY__WS_MAX_REPLAY".into(), "3".into())],
    )
    .await;
    let tenant = provision(&node, "behind").await;
    let messages: Vec<_> = (0..5)
        .map(|i| whatsapp::text("5511933330001", &format!("wamid.F{i}"), "x"))
        .collect();
    let payload = whatsapp::webhook(&tenant.phone_number_id, messages, vec![]);
    assert_eq!(whatsapp::post(&node, &tenant, &payload).await.0, 200);
    let (_, conversations) =
        support::api_get(&node, &tenant.agent_token, "/api/v1/conversations").await;
    let id = conversations["items"][0]["id"].as_str().unwrap();
    let resume = json!({"since": "2020-01-01T00:00:00Z", "positions": {id: 0}});
    let url = format!("ws://{}/api/v1/ws?token={}", node.addr, tenant.agent_token);
    let (socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let mut agent = support::Agent::from_socket(socket);
    assert_eq!(agent.next_frame().await.unwrap()["type"], "ready");
    agent
        .send(json!({"type": "subscribe", "resume": resume}))
        .await;
    let answer = agent.next_frame().await.unwrap();
    assert_eq!(answer["type"], "resume_failed", "{answer}");
    assert_eq!(answer["reason"], "too_far_behind");
    assert_eq!(agent.next_frame().await.unwrap()["type"], "subscribed");
}

#[tokio::test]
async fn a_replay_larger_than_the_socket_queue_arrives_whole_and_live_follows() {
    let node = Node::start_with(
        None,
        vec![("CONVERSA_GATEWAY__WS_SEND_QUEUE".into(), "16".into())],
    )
    .await;
    let tenant = provision(&node, "big-replay").await;
    let (mut agent, _) = Agent::connect(&node, &tenant.agent_token, None).await;
    let first = whatsapp::webhook(
        &tenant.phone_number_id,
        vec![whatsapp::text("5511944440001", "wamid.G0", "x")],
        vec![],
    );
    assert_eq!(whatsapp::post(&node, &tenant, &first).await.0, 200);
    let seen = agent.events_until(|e| e.len() >= 2).await;
    let conversation = seen[0]["conversation_id"].as_str().unwrap().to_string();
    let since = seen[1]["at"].clone();
    agent.close().await;

    // 100 messages while away: six times the socket's queue.
    let missed: Vec<_> = (1..=100)
        .map(|i| whatsapp::text("5511944440001", &format!("wamid.G{i}"), "y"))
        .collect();
    assert_eq!(
        whatsapp::post(
            &node,
            &tenant,
            &whatsapp::webhook(&tenant.phone_number_id, missed, vec![])
        )
        .await
        .0,
        200
    );

    let resume = json!({"since": since, "positions": {conversation.clone(): 2}});
    let (mut agent, replayed) = Agent::connect(&node, &tenant.agent_token, Some(resume)).await;
    let got: Vec<u64> = replayed
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(
        got,
        (3..=102).collect::<Vec<u64>>(),
        "every missed event, in order"
    );
    let live = whatsapp::webhook(
        &tenant.phone_number_id,
        vec![whatsapp::text("5511944440001", "wamid.G101", "z")],
        vec![],
    );
    assert_eq!(whatsapp::post(&node, &tenant, &live).await.0, 200);
    let next = agent.events_until(|e| !e.is_empty()).await;
    assert_eq!(
        seqs(&next),
        vec![(conversation, 103)],
        "the socket stayed open and live follows"
    );
}

#[tokio::test]
async fn a_quiet_socket_is_pinged_and_one_that_never_answers_is_closed_as_gone() {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    // Pings every second here (30 s by default); two silent intervals close the socket.
    let ping = (
        "CONVERSA_GATEWAY__WS_PING_INTERVAL_SECS".to_string(),
        "1".to_string(),
    );
    let node = Node::start_with(None, vec![ping]).await;
    let tenant = provision(&node, "heartbeat").await;
    // The silent one subscribes first, then reads nothing (so it answers no ping).
    let (silent, _) = Agent::connect(&node, &tenant.agent_token, None).await;
    let (listening, _) = Agent::connect(&node, &tenant.agent_token, None).await;
    let mut listening = listening.into_inner();
    // Reading answers each ping with a pong (tungstenite does it): four pings and still open.
    let mut pings = 0;
    while pings < 4 {
        let message = tokio::time::timeout(support::WAIT, listening.next())
            .await
            .expect("a ping within the wait")
            .expect("the answering socket stays open")
            .expect("a frame");
        match message {
            Message::Ping(_) => pings += 1,
            Message::Close(frame) => panic!("an answering socket was closed: {frame:?}"),
            _ => {}
        }
    }
    // Four intervals have passed for the silent socket too: the node closed it as gone. Reading it
    // now meets the close frame, or (when tungstenite first tries to answer a queued ping on the
    // closed connection) the error of a connection the node already shut.
    let mut silent = silent.into_inner();
    let ended = loop {
        match tokio::time::timeout(support::WAIT, silent.next()).await {
            Err(_) => panic!("the silent socket is still open"),
            Ok(Some(Ok(Message::Close(frame)))) => break frame.map(|f| f.reason.to_string()),
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(_)) | None) => break None,
        }
    };
    if let Some(reason) = ended {
        assert_eq!(reason, "no answer to pings");
    }
}
