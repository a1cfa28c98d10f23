//! Two nodes on one PostgreSQL store with Redis between them (real servers, started by the project's
//! scripts): an agent connected to one node receives, once and in seq order, the events of webhooks
//! that another node ingested, and still does when Redis is killed and restarted between two
//! webhooks (the ingesting node keeps them and sends them once Redis is back).
//!
//! Placement (which node owns a conversation) is not built yet: here each conversation's webhooks go
//! to one node, as a deployment without it must.

#[path = "store_contract/services.rs"]
#[allow(dead_code)]
mod services;
mod support;

use base64::Engine;
use serde_json::Value;
use services::{Kind, Service};
use support::{Agent, Node, provision, whatsapp};

/// PostgreSQL and Redis started, and two nodes on them: one that ingests, one that serves an agent.
struct TwoNodes {
    ingesting: Node,
    serving: Node,
    redis: std::sync::Arc<Service>,
    _postgres: Service,
}

impl TwoNodes {
    async fn start(extra_env: Vec<(String, String)>) -> TwoNodes {
        let (postgres, redis) =
            tokio::task::spawn_blocking(|| (start(Kind::Postgres), start(Kind::Redis)))
                .await
                .unwrap();
        let key = base64::engine::general_purpose::STANDARD.encode([42u8; 32]);
        let mut env = vec![
            (
                "CONVERSA_STORAGE__BACKEND".to_string(),
                "postgres".to_string(),
            ),
            (
                "CONVERSA_STORAGE__POSTGRES__URL".into(),
                format!(
                    "postgres://conversa:conversa@127.0.0.1:{}/conversa",
                    postgres.port
                ),
            ),
            ("CONVERSA_SECURITY__SECRET_KEY".into(), key),
            (
                "CONVERSA_REDIS__URL".into(),
                format!("redis://127.0.0.1:{}", redis.port),
            ),
        ];
        env.extend(extra_env);
        TwoNodes {
            ingesting: Node::start_with(None, env.clone()).await,
            serving: Node::start_with(None, env).await,
            redis: std::sync::Arc::new(redis),
            _postgres: postgres,
        }
    }

    /// Kills Redis at once (waits until its port is free).
    async fn kill_redis(&self) {
        let redis = std::sync::Arc::clone(&self.redis);
        tokio::task::spawn_blocking(move || redis.kill())
            .await
            .unwrap();
    }

    /// Starts Redis again on the same port (empty: it keeps nothing).
    async fn start_redis(&self) {
        let redis = std::sync::Arc::clone(&self.redis);
        tokio::task::spawn_blocking(move || redis.launch().expect("redis started again"))
            .await
            .unwrap();
    }
}

fn start(kind: Kind) -> Service {
    Service::start(kind).unwrap_or_else(|e| panic!("{kind:?} did not start: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_on_one_node_gets_every_event_another_node_ingested_across_a_redis_restart() {
    let nodes = TwoNodes::start(Vec::new()).await;
    let (ingesting, serving) = (&nodes.ingesting, &nodes.serving);
    let tenant = provision(ingesting, "two-nodes").await;
    let (mut agent, _) = Agent::connect(serving, &tenant.agent_token, None).await;
    // The serving node follows the tenant's stream once the agent subscribed: shown by a first
    // event arriving (its reader starts from the stream's newest entry).
    let post = |wamid: &str, text: &str| {
        whatsapp::webhook(
            &tenant.phone_number_id,
            vec![whatsapp::text("5511977770000", wamid, text)],
            vec![],
        )
    };
    assert_eq!(
        whatsapp::post(ingesting, &tenant, &post("wamid.N1", "um"))
            .await
            .0,
        200
    );
    let first = agent.events_until(|e| e.len() >= 2).await;
    assert_eq!(
        kinds(&first),
        vec!["conversation.created", "message.created"]
    );

    // Redis dies; the ingesting node still answers 200 and keeps the events for later.
    nodes.kill_redis().await;
    assert_eq!(
        whatsapp::post(ingesting, &tenant, &post("wamid.N2", "dois"))
            .await
            .0,
        200
    );
    assert_eq!(
        whatsapp::post(ingesting, &tenant, &post("wamid.N3", "três"))
            .await
            .0,
        200
    );
    nodes.start_redis().await;
    let rest = agent.events_until(|e| e.len() >= 2).await;
    assert_eq!(kinds(&rest), vec!["message.created", "message.created"]);
    let seqs: Vec<u64> = first
        .iter()
        .chain(rest.iter())
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, vec![1, 2, 3, 4], "every event once, in order");
    assert!(
        agent
            .receives_nothing_within(std::time::Duration::from_millis(300))
            .await,
        "nothing twice"
    );
}

/// When a node had to give events up (its backlog while Redis was away was too small), the agents of
/// that tenant on other nodes are not left with a silent hole: their sockets close, and the resume by seq
/// brings exactly what they missed from the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_a_node_gave_up_reach_agents_elsewhere_through_their_resume() {
    let nodes = TwoNodes::start(vec![(
        // Keeps two entries while Redis is away: a third is given up (as a gap).
        "CONVERSA_REDIS__BACKLOG_MAX".to_string(),
        "2".to_string(),
    )])
    .await;
    let (ingesting, serving) = (&nodes.ingesting, &nodes.serving);
    let tenant = provision(ingesting, "gap").await;
    let (mut agent, _) = Agent::connect(serving, &tenant.agent_token, None).await;
    let post = |wamid: &str| {
        whatsapp::webhook(
            &tenant.phone_number_id,
            vec![whatsapp::text("5511966660000", wamid, "oi")],
            vec![],
        )
    };
    assert_eq!(
        whatsapp::post(ingesting, &tenant, &post("wamid.G1"))
            .await
            .0,
        200
    );
    let seen = agent.events_until(|e| e.len() >= 2).await;
    let conversation = seen[0]["conversation_id"].as_str().unwrap().to_string();
    let since = seen[1]["at"].clone();

    nodes.kill_redis().await;
    for wamid in ["wamid.G2", "wamid.G3", "wamid.G4"] {
        assert_eq!(
            whatsapp::post(ingesting, &tenant, &post(wamid)).await.0,
            200
        );
    }
    nodes.start_redis().await;
    // The serving node learns of the gap and closes the tenant's sockets (the frames before the close,
    // if any, are events after the gap, which the resume below sends again and the client dedupes).
    let mut raw = agent.into_inner();
    let close = tokio::time::timeout(support::WAIT, async {
        use futures::StreamExt;
        while let Some(Ok(message)) = raw.next().await {
            if let tokio_tungstenite::tungstenite::Message::Close(frame) = message {
                return frame.map(|f| u16::from(f.code));
            }
        }
        None
    })
    .await
    .expect("the socket of the tenant with a gap was closed");
    assert_eq!(close, Some(1001), "closed as 'reconnect and resume'");
    // ...and the resume brings what it missed, in order.
    let resume = serde_json::json!({"since": since, "positions": {conversation.clone(): 2}});
    let (_, replayed) = Agent::connect(serving, &tenant.agent_token, Some(resume)).await;
    let seqs: Vec<u64> = replayed
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, vec![3, 4, 5]);
}

fn kinds(events: &[Value]) -> Vec<&str> {
    events.iter().filter_map(|e| e["event"].as_str()).collect()
}
