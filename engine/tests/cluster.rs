//! Three real nodes in cluster mode on one shared store (PostgreSQL, or the ScyllaDB backend on a
//! Cassandra node) with Redis between them (servers started by the project's scripts): shards leased with epochs, commands forwarded to their owner, events
//! fanned out through Redis.
//!
//! - `conversa cluster status` lists the three members and the 256 shards between them.
//! - Webhooks sprayed at every node reach agents on every node once each, in per-conversation seq
//!   order, and an agent's reply sent through a node that does not own the conversation is stored by
//!   the owner.
//! - Replies to one number, sent through every node for conversations owned by every node, all leave
//!   through the one node that owns the connection (one rate limiter, one session), each once, and
//!   each provider answer is recorded on its conversation's owner.
//! - A node killed with SIGKILL mid-run: its shards are taken over by the others (the time it took is
//!   printed, not asserted), nothing a webhook was answered 200 for is lost or doubled, and an agent
//!   resuming by seq gets every event.
//!
//! Webhooks are retried on 503 as providers do (a shard between owners answers "nothing was done").

#[path = "store_contract/services.rs"]
#[allow(dead_code)]
mod services;
mod support;

use base64::Engine;
use serde_json::{Value, json};
use services::{Kind, Service};
use std::collections::HashMap;
use support::fake_graph::FakeGraph;
use support::{
    Agent, Node, Tenant, all_messages, api_post, eventually, metric, provision, whatsapp,
};

const SECRET: &str = "cluster-secret-for-tests-0123456789abcdef";

/// A shared store, Redis and `n` cluster nodes on them.
struct Cluster {
    nodes: Vec<Node>,
    /// The environment every node runs with (also what `conversa cluster status` needs).
    env: Vec<(String, String)>,
    lease_ms: u64,
    _redis: Service,
    _store: Service,
}

/// Which shared store the nodes use.
#[derive(Clone, Copy)]
enum Store {
    Postgres,
    /// The ScyllaDB backend on a throwaway Apache Cassandra node.
    Cassandra,
}

impl Cluster {
    async fn start(n: usize) -> Cluster {
        Self::start_on(Store::Postgres, n, None).await
    }

    /// `n` nodes on `store` whose WhatsApp client talks to `graph_base`.
    async fn start_on(store: Store, n: usize, graph_base: Option<String>) -> Cluster {
        let kind = match store {
            Store::Postgres => Kind::Postgres,
            Store::Cassandra => Kind::Cassandra,
        };
        let (server, redis) =
            tokio::task::spawn_blocking(move || (start(kind), start(Kind::Redis)))
                .await
                .unwrap();
        let key = base64::engine::general_purpose::STANDARD.encode([42u8; 32]);
        let backend: Vec<(&str, String)> = match store {
            Store::Postgres => vec![
                ("CONVERSA_STORAGE__BACKEND", "postgres".to_string()),
                (
                    "CONVERSA_STORAGE__POSTGRES__URL",
                    format!(
                        "postgres://conversa:conversa@127.0.0.1:{}/conversa",
                        server.port
                    ),
                ),
            ],
            Store::Cassandra => vec![
                ("CONVERSA_STORAGE__BACKEND", "scylla".to_string()),
                (
                    "CONVERSA_STORAGE__SCYLLA__NODES",
                    format!("[\"127.0.0.1:{}\"]", server.port),
                ),
                ("CONVERSA_STORAGE__SCYLLA__KEYSPACE", "cluster_test".into()),
                // One Cassandra node: a quorum of one replica.
                ("CONVERSA_STORAGE__SCYLLA__CONSISTENCY", "quorum".into()),
                (
                    "CONVERSA_STORAGE__SCYLLA__CREATE_KEYSPACE_REPLICATION",
                    "{'class': 'SimpleStrategy', 'replication_factor': 1}".into(),
                ),
            ],
        };
        let lease_ms = match store {
            Store::Postgres => "3000",
            Store::Cassandra => "6000",
        };
        let env: Vec<(String, String)> = backend
            .into_iter()
            .chain([
                ("CONVERSA_SECURITY__SECRET_KEY", key),
                (
                    "CONVERSA_REDIS__URL",
                    format!("redis://127.0.0.1:{}", redis.port),
                ),
                ("CONVERSA_CLUSTER__ENABLED", "true".into()),
                ("CONVERSA_CLUSTER__LISTEN", "127.0.0.1:0".into()),
                ("CONVERSA_CLUSTER__SECRET", SECRET.into()),
                // Short leases so a lost node's shards move within seconds (rounds every lease/3); on
                // the one Cassandra node of the tests, where every lease change is a Paxos round on 2
                // cores, a little longer.
                ("CONVERSA_CLUSTER__LEASE_MS", lease_ms.into()),
                ("CONVERSA_CLUSTER__MAX_MOVES_PER_ROUND", "128".into()),
            ])
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let mut nodes = Vec::new();
        for _ in 0..n {
            nodes.push(Node::start_with(graph_base.clone(), env.clone()).await);
        }
        let cluster = Cluster {
            nodes,
            env,
            lease_ms: lease_ms.parse().expect("lease"),
            _redis: redis,
            _store: server,
        };
        cluster
            .settled(&cluster.nodes.iter().collect::<Vec<_>>())
            .await;
        cluster
    }

    /// `conversa cluster status --json`, run as an operator would, against the shared store.
    async fn status(&self) -> Value {
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_conversa"))
            .args(["cluster", "status", "--json"])
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("RUST_LOG", "warn")
            .output()
            .await
            .expect("run conversa cluster status");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("status JSON")
    }

    /// Waits until `nodes` between them own all 256 shards, at any one moment.
    async fn all_owned(&self, nodes: &[&Node]) {
        eventually("the live nodes own every shard between them", || async {
            let mut total = 0.0;
            for node in nodes {
                total += metric(node, "conversa_cluster_shards_owned").await;
            }
            (total == 256.0).then_some(())
        })
        .await;
    }

    /// Waits until `nodes` between them own all 256 shards, each some, and keep the same split for two
    /// keeper rounds (the handoffs between them are over).
    async fn settled(&self, nodes: &[&Node]) {
        let round = std::time::Duration::from_millis(self.lease_ms / 3);
        let last: std::sync::Mutex<Option<(Vec<f64>, std::time::Instant)>> = Default::default();
        eventually(
            "the live nodes own every shard between them, steadily",
            || async {
                let mut owned = Vec::new();
                for node in nodes {
                    owned.push(metric(node, "conversa_cluster_shards_owned").await);
                }
                let total: f64 = owned.iter().sum();
                if total != 256.0 || owned.iter().any(|o| *o == 0.0) {
                    *last.lock().unwrap() = None;
                    return None;
                }
                let mut last = last.lock().unwrap();
                match last.as_ref() {
                    Some((seen, since)) if *seen == owned => {
                        (since.elapsed() >= round * 2).then_some(())
                    }
                    _ => {
                        *last = Some((owned, std::time::Instant::now()));
                        None
                    }
                }
            },
        )
        .await;
    }
}

fn start(kind: Kind) -> Service {
    Service::start(kind).unwrap_or_else(|e| panic!("{kind:?} did not start: {e}"))
}

/// Posts one inbound message until a node answers 200, as a provider retries a 5xx; other answers
/// fail the test.
async fn deliver(node: &Node, tenant: &Tenant, contact: &str, wamid: &str, text: &str) {
    let payload = whatsapp::webhook(
        &tenant.phone_number_id,
        vec![whatsapp::text(contact, wamid, text)],
        vec![],
    );
    eventually("the webhook was acknowledged", || async {
        let (status, body) = whatsapp::post(node, tenant, &payload).await;
        assert!(
            status == 200 || status == 503,
            "webhook answered {status}: {body}"
        );
        (status == 200).then_some(())
    })
    .await;
}

/// Events by conversation, checking none arrives twice or out of order.
fn by_conversation(events: &[Value]) -> HashMap<String, Vec<u64>> {
    let mut seqs: HashMap<String, Vec<u64>> = HashMap::new();
    for event in events {
        let conversation = event["conversation_id"].as_str().expect("conversation id");
        let seq = event["seq"].as_u64().expect("seq");
        seqs.entry(conversation.to_string()).or_default().push(seq);
    }
    seqs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_sprayed_at_three_nodes_reach_agents_on_every_node_once_in_order() {
    sprayed_webhooks_reach_every_agent_once_in_order(Store::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_cassandra_webhooks_sprayed_at_three_nodes_reach_agents_on_every_node_once_in_order() {
    sprayed_webhooks_reach_every_agent_once_in_order(Store::Cassandra).await;
}

async fn sprayed_webhooks_reach_every_agent_once_in_order(store: Store) {
    const CONTACTS: usize = 9;
    const MESSAGES: usize = 4;
    let cluster = Cluster::start_on(store, 3, None).await;
    let nodes = &cluster.nodes;
    let status = cluster.status().await;
    let members = status["members"].as_array().expect("members");
    assert_eq!(members.len(), 3, "{status}");
    assert!(
        members.iter().all(|m| m["shards"].as_u64() > Some(0)),
        "{status}"
    );
    let held: u64 = members.iter().filter_map(|m| m["shards"].as_u64()).sum();
    assert_eq!((held, &status["free_shards"]), (256, &json!(0)), "{status}");

    let tenant = provision(&nodes[0], "cluster").await;
    let mut agents = Vec::new();
    for node in nodes {
        agents.push(Agent::connect(node, &tenant.agent_token, None).await.0);
    }

    // Each message goes to another node than the one before, whoever owns its conversation.
    let mut sent = 0;
    for m in 0..MESSAGES {
        for c in 0..CONTACTS {
            let node = &nodes[sent % nodes.len()];
            let contact = format!("55119{c:08}");
            deliver(node, &tenant, &contact, &format!("wamid.S{c}.{m}"), "oi").await;
            sent += 1;
        }
    }
    // Per conversation: `conversation.created`, then one `message.created` per message.
    let expected = CONTACTS * (MESSAGES + 1);
    for (i, agent) in agents.iter_mut().enumerate() {
        let events = agent.events_until(|e| e.len() >= expected).await;
        let seqs = by_conversation(&events);
        assert_eq!(seqs.len(), CONTACTS, "agent on node {i}: {seqs:?}");
        for (conversation, seqs) in &seqs {
            let want: Vec<u64> = (1..=(MESSAGES as u64 + 1)).collect();
            assert_eq!(
                seqs, &want,
                "agent on node {i}, conversation {conversation}"
            );
        }
        assert!(
            agent
                .receives_nothing_within(std::time::Duration::from_millis(300))
                .await,
            "agent on node {i} got an event twice"
        );
    }
    let mut forwards = 0.0;
    for node in nodes {
        forwards += metric(node, "conversa_cluster_forwards_total").await;
    }
    assert!(forwards > 0.0, "no webhook was forwarded to another node");

    // A reply through each node: stored once by the owner, whichever node took it.
    let (status, page) =
        support::api_get(&nodes[0], &tenant.agent_token, "/api/v1/conversations").await;
    assert_eq!(status, 200);
    let conversation = page["items"][0]["id"]
        .as_str()
        .expect("a conversation")
        .to_string();
    for (i, node) in nodes.iter().enumerate() {
        let (status, body) = api_post(
            node,
            &tenant.agent_token,
            &format!("/api/v1/conversations/{conversation}/messages"),
            json!({"text": format!("resposta {i}"), "client_message_id": format!("r-{i}")}),
        )
        .await;
        assert_eq!(status, 202, "reply through node {i}: {body}");
    }
    let messages = all_messages(&nodes[1], &tenant.agent_token, &conversation).await;
    let replies: Vec<&Value> = messages
        .iter()
        .filter(|m| m["direction"] == "outbound")
        .collect();
    assert_eq!(replies.len(), 3, "{messages:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_nodes_shards_move_and_nothing_acknowledged_is_lost_or_doubled() {
    const CONTACTS: usize = 12;
    let mut cluster = Cluster::start(3).await;
    let tenant = provision(&cluster.nodes[0], "failover").await;
    let contact = |c: usize| format!("55118{c:08}");
    for c in 0..CONTACTS {
        let node = &cluster.nodes[c % 3];
        deliver(
            node,
            &tenant,
            &contact(c),
            &format!("wamid.K{c}.0"),
            "antes",
        )
        .await;
    }

    let killed_at = std::time::Instant::now();
    cluster.nodes[2].kill9().await;
    // Keep delivering through the survivors while the dead node's shards are without an owner: each
    // webhook is retried until an owner takes it (503 until then, nothing done).
    for c in 0..CONTACTS {
        let node = &cluster.nodes[c % 2];
        deliver(
            node,
            &tenant,
            &contact(c),
            &format!("wamid.K{c}.1"),
            "depois",
        )
        .await;
    }
    let survivors: Vec<&Node> = cluster.nodes[..2].iter().collect();
    cluster.all_owned(&survivors).await;
    println!(
        "shards of the killed node served again within {:.1} s (lease 3 s)",
        killed_at.elapsed().as_secs_f64()
    );
    cluster.settled(&survivors).await;
    // The provider retries a message that was already acknowledged: nothing doubles.
    for c in 0..CONTACTS {
        deliver(
            &cluster.nodes[0],
            &tenant,
            &contact(c),
            &format!("wamid.K{c}.0"),
            "antes",
        )
        .await;
    }

    let (_, page) = support::api_get(
        &cluster.nodes[1],
        &tenant.agent_token,
        "/api/v1/conversations?limit=100",
    )
    .await;
    let conversations = page["items"].as_array().expect("items").clone();
    assert_eq!(conversations.len(), CONTACTS);
    let mut positions = serde_json::Map::new();
    for conversation in &conversations {
        let id = conversation["id"].as_str().expect("id");
        let messages = all_messages(&cluster.nodes[1], &tenant.agent_token, id).await;
        let texts: Vec<&str> = messages
            .iter()
            .filter_map(|m| m["content"]["body"].as_str())
            .collect();
        assert_eq!(texts, vec!["antes", "depois"], "conversation {id}");
        positions.insert(id.to_string(), json!(0));
    }
    // An agent that knew none of it resumes from seq 0 everywhere: every event, in order, once.
    let since = json!("2020-01-01T00:00:00Z");
    let (_, replayed) = Agent::connect(
        &cluster.nodes[0],
        &tenant.agent_token,
        Some(json!({"since": since, "positions": positions})),
    )
    .await;
    let replayed = by_conversation(&replayed);
    assert_eq!(replayed.len(), CONTACTS);
    for (conversation, seqs) in replayed {
        assert_eq!(seqs, vec![1, 2, 3], "conversation {conversation}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_to_one_number_leave_through_its_one_owner_each_once() {
    const CONTACTS: usize = 9;
    let graph = FakeGraph::start().await;
    let cluster = Cluster::start_on(Store::Postgres, 3, Some(graph.base.clone())).await;
    let nodes = &cluster.nodes;
    let tenant = provision(&nodes[0], "one-number").await;
    for c in 0..CONTACTS {
        let contact = format!("55117{c:08}");
        deliver(
            &nodes[c % 3],
            &tenant,
            &contact,
            &format!("wamid.R{c}"),
            "oi",
        )
        .await;
    }
    let (_, page) = support::api_get(
        &nodes[0],
        &tenant.agent_token,
        "/api/v1/conversations?limit=100",
    )
    .await;
    let conversations: Vec<String> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|c| c["id"].as_str().expect("id").to_string())
        .collect();
    assert_eq!(conversations.len(), CONTACTS);
    for (i, conversation) in conversations.iter().enumerate() {
        let (status, body) = api_post(
            &nodes[(i + 1) % 3],
            &tenant.agent_token,
            &format!("/api/v1/conversations/{conversation}/messages"),
            json!({"text": format!("resposta {i}"), "client_message_id": format!("c-{i}")}),
        )
        .await;
        assert_eq!(status, 202, "{body}");
    }
    // Every reply reaches the provider once...
    let sent = eventually("every reply reached the provider", || async {
        let sent = graph.requests_for(&tenant.phone_number_id);
        (sent >= CONTACTS).then_some(sent)
    })
    .await;
    let mut bodies: Vec<String> = graph
        .requests()
        .iter()
        .filter_map(|r| r.body["text"]["body"].as_str().map(str::to_string))
        .collect();
    bodies.sort();
    bodies.dedup();
    assert_eq!(
        (sent, bodies.len()),
        (CONTACTS, CONTACTS),
        "a reply went twice or not at all"
    );
    // ...from one node only: the connection's owner.
    let mut sending_nodes = 0;
    for node in nodes {
        if metric(node, "conversa_outbound_sends_total").await > 0.0 {
            sending_nodes += 1;
        }
    }
    assert_eq!(
        sending_nodes, 1,
        "the number's sends left through several nodes"
    );
    // The provider's answers were recorded on the conversations' owners.
    for conversation in &conversations {
        eventually("the reply is marked sent", || async {
            let messages = all_messages(&nodes[2], &tenant.agent_token, conversation).await;
            messages
                .iter()
                .any(|m| m["direction"] == "outbound" && m["provider_message_id"].is_string())
                .then_some(())
        })
        .await;
    }
}
