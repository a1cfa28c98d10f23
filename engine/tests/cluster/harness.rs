//! The cluster under test: a shared store (PostgreSQL or Cassandra), Redis and N real nodes in cluster
//! mode, started by the project's scripts; helpers that deliver webhooks as a provider would (retrying
//! a 503) and read what agents got.

use crate::services::{Kind, Service};
use crate::support::{Node, Tenant, eventually, metric, whatsapp};
use base64::Engine;
use serde_json::Value;
use std::collections::HashMap;

const SECRET: &str = "cluster-secret-for-tests-0123456789abcdef";

/// A shared store, Redis and `n` cluster nodes on them.
pub struct Cluster {
    pub nodes: Vec<Node>,
    /// The environment every node runs with (also what `conversa cluster status` needs).
    pub env: Vec<(String, String)>,
    pub lease_ms: u64,
    redis: std::sync::Arc<Service>,
    _store: Service,
}

/// Which shared store the nodes use.
#[derive(Clone, Copy)]
pub enum Store {
    Postgres,
    /// The ScyllaDB backend on a throwaway Apache Cassandra node.
    Cassandra,
}

impl Cluster {
    pub async fn start(n: usize) -> Cluster {
        Self::start_on(Store::Postgres, n, None).await
    }

    /// `n` nodes on `store` whose WhatsApp client talks to `graph_base`.
    pub async fn start_on(store: Store, n: usize, graph_base: Option<String>) -> Cluster {
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
            redis: std::sync::Arc::new(redis),
            _store: server,
        };
        cluster
            .settled(&cluster.nodes.iter().collect::<Vec<_>>())
            .await;
        cluster
    }

    /// `conversa cluster status --json`, run as an operator would, against the shared store.
    pub async fn status(&self) -> Value {
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

    /// Kills Redis at once (waits until its port is free).
    pub async fn kill_redis(&self) {
        let redis = std::sync::Arc::clone(&self.redis);
        tokio::task::spawn_blocking(move || redis.kill())
            .await
            .unwrap();
    }

    /// Starts Redis again on the same port (empty: it keeps nothing).
    pub async fn start_redis(&self) {
        let redis = std::sync::Arc::clone(&self.redis);
        tokio::task::spawn_blocking(move || redis.launch().expect("redis started again"))
            .await
            .unwrap();
    }

    /// Waits until `nodes` between them own all 256 shards, at any one moment.
    pub async fn all_owned(&self, nodes: &[&Node]) {
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
    pub async fn settled(&self, nodes: &[&Node]) {
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
                if total != 256.0 || owned.contains(&0.0) {
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
pub async fn deliver(node: &Node, tenant: &Tenant, contact: &str, wamid: &str, text: &str) {
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
pub fn by_conversation(events: &[Value]) -> HashMap<String, Vec<u64>> {
    let mut seqs: HashMap<String, Vec<u64>> = HashMap::new();
    for event in events {
        let conversation = event["conversation_id"].as_str().expect("conversation id");
        let seq = event["seq"].as_u64().expect("seq");
        seqs.entry(conversation.to_string()).or_default().push(seq);
    }
    seqs
}
