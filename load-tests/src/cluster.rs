//! `cluster`: the same open-loop webhook load against 1 node and against 3 nodes of a cluster, side by
//! side in one run, on this machine. The scenario starts the nodes itself (the `conversa` binary, in
//! cluster mode on the PostgreSQL and Redis it is given), sprays signed webhooks round-robin over the
//! nodes (so about two thirds are forwarded to their owner with 3 nodes), keeps one agent socket on
//! every node, and reports throughput, ack latency, webhook→agent latency over every delivery, and
//! events not received or duplicated per agent. It asserts nothing.

use crate::common::{self, Target};
use anyhow::{Context, bail};
use futures::StreamExt;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

#[derive(clap::Args, Clone, Debug)]
pub struct ClusterArgs {
    /// The `conversa` binary to run (build it with `cargo build --release --bin conversa`).
    #[arg(long, default_value = "target/release/conversa")]
    binary: PathBuf,
    /// A PostgreSQL database the nodes share (each cluster size gets a fresh tenant; migrations run
    /// on start).
    #[arg(long)]
    postgres_url: String,
    /// The Redis the nodes share.
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    /// Cluster sizes to measure, one after the other.
    #[arg(long, value_delimiter = ',', default_value = "1,3")]
    nodes: Vec<usize>,
    /// Webhooks per second (over all nodes).
    #[arg(long, default_value_t = 300)]
    rate: u64,
    /// Seconds of sending per cluster size.
    #[arg(long, default_value_t = 15)]
    duration: u64,
    /// Distinct contacts (conversations).
    #[arg(long, default_value_t = 500)]
    conversations: u64,
    /// Where to write the JSON report.
    #[arg(long)]
    out: Option<String>,
}

const ADMIN: &str = "cluster-load-admin-token";
const SECRET: &str = "cluster-load-secret-0123456789abcdef0123";

/// One running node.
struct NodeProcess {
    child: Child,
    base: String,
}

pub async fn run(args: ClusterArgs) -> anyhow::Result<()> {
    if args.rate == 0 || args.duration == 0 || args.conversations == 0 {
        bail!("rate, duration and conversations must be positive");
    }
    let mut results = Vec::new();
    let mut lines = vec![format!(
        "{:>5} {:>10} {:>14} {:>22} {:>22} {:>16}",
        "nodes", "acked/s", "http", "ack p50 / p99 ms", "e2e p50 / p99 ms", "not recv / dup"
    )];
    for &n in &args.nodes {
        let mut nodes = Vec::new();
        for _ in 0..n.max(1) {
            nodes.push(start_node(&args).await?);
        }
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .build()?;
        settle(&http, &nodes).await?;
        let result = drive(&args, &http, &nodes).await?;
        for mut node in nodes {
            terminate(&mut node.child).await;
        }
        lines.push(format!(
            "{:>5} {:>10.1} {:>14} {:>22} {:>22} {:>16}",
            n,
            result["acked_per_s"].as_f64().unwrap_or_default(),
            result["http_outcomes"].to_string(),
            format!(
                "{} / {}",
                result["ack_latency"]["p50_ms"], result["ack_latency"]["p99_ms"]
            ),
            format!(
                "{} / {}",
                result["end_to_end_latency"]["p50_ms"], result["end_to_end_latency"]["p99_ms"]
            ),
            format!(
                "{} / {}",
                result["not_received_events"], result["duplicate_events"]
            ),
        ));
        results.push(json!({"nodes": n, "result": result}));
    }
    let report = json!({
        "scenario": "cluster",
        "target_rate_per_s": args.rate,
        "duration_s": args.duration,
        "conversations": args.conversations,
        "results": results,
    });
    common::finish(&report, &lines, args.out.as_deref(), "cluster-report.json")
}

async fn start_node(args: &ClusterArgs) -> anyhow::Result<NodeProcess> {
    let data = std::env::temp_dir().join(format!("conversa-cluster-load-{}", uuid::Uuid::new_v4()));
    let mut child = Command::new(&args.binary)
        .args([
            "serve",
            "--json",
            "--http-addr",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(&data)
        .env("CONVERSA_GATEWAY__ADMIN_TOKEN", ADMIN)
        .env("CONVERSA_STORAGE__BACKEND", "postgres")
        .env("CONVERSA_STORAGE__POSTGRES__URL", &args.postgres_url)
        .env(
            "CONVERSA_SECURITY__SECRET_KEY",
            "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
        )
        .env("CONVERSA_REDIS__URL", &args.redis_url)
        .env("CONVERSA_CLUSTER__ENABLED", "true")
        .env("CONVERSA_CLUSTER__LISTEN", "127.0.0.1:0")
        .env("CONVERSA_CLUSTER__SECRET", SECRET)
        .env("CONVERSA_CLUSTER__LEASE_MS", "3000")
        .env("CONVERSA_CLUSTER__MAX_MOVES_PER_ROUND", "128")
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", args.binary.display()))?;
    let stdout = child.stdout.take().context("node stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let addr = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Ok(value) = serde_json::from_str::<Value>(&line)
                && value["event"] == "listening"
            {
                return value["addr"].as_str().map(str::to_string);
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .context("the node did not print its address")?;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(NodeProcess {
        child,
        base: format!("http://{addr}"),
    })
}

/// Waits until the nodes own the 256 shards between them, with the same split for 2 s (rebalancing
/// over), for at most a minute.
async fn settle(http: &reqwest::Client, nodes: &[NodeProcess]) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last: Option<(Vec<f64>, Instant)> = None;
    while Instant::now() < deadline {
        let mut owned = Vec::new();
        for node in nodes {
            let text = http
                .get(format!("{}/metrics", node.base))
                .send()
                .await?
                .text()
                .await?;
            owned.push(
                text.lines()
                    .find_map(|l| l.strip_prefix("conversa_cluster_shards_owned "))
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .unwrap_or(0.0),
            );
        }
        if owned.iter().sum::<f64>() == 256.0 {
            match &last {
                Some((seen, since)) if *seen == owned => {
                    if since.elapsed() >= Duration::from_secs(2) {
                        return Ok(());
                    }
                }
                _ => last = Some((owned, Instant::now())),
            }
        } else {
            last = None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the cluster did not settle within a minute")
}

async fn terminate(child: &mut Child) {
    if let Some(pid) = child.id() {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
    }
    let _ = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;
}

/// What one agent socket saw.
#[derive(Default)]
struct Seen {
    wamids: HashSet<String>,
    duplicates: u64,
}

async fn drive(
    args: &ClusterArgs,
    http: &reqwest::Client,
    nodes: &[NodeProcess],
) -> anyhow::Result<Value> {
    let provisioned = common::provision(
        http,
        &common::NodeArgs {
            node: nodes[0].base.clone(),
            admin_token: ADMIN.into(),
            node_pid: None,
            out: None,
        },
    )
    .await?;
    let targets: Vec<Arc<Target>> = nodes
        .iter()
        .map(|node| {
            Arc::new(Target {
                node: node.base.clone(),
                connection_id: provisioned.connection_id.clone(),
                phone_number_id: provisioned.phone_number_id.clone(),
                app_secret: provisioned.app_secret.clone(),
                agent_token: provisioned.agent_token.clone(),
            })
        })
        .collect();
    let sent_at: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let e2e = Arc::new(Mutex::new(common::latency_histogram()));
    let mut readers = Vec::new();
    let mut seen = Vec::new();
    for target in &targets {
        let mut socket = target.agent_socket(None).await?;
        let observed: Arc<Mutex<Seen>> = Arc::default();
        seen.push(Arc::clone(&observed));
        let (sent_at, e2e) = (Arc::clone(&sent_at), Arc::clone(&e2e));
        readers.push(tokio::spawn(async move {
            while let Some(Ok(message)) = socket.next().await {
                let Some(frame) = common::frame_json(&message) else {
                    continue;
                };
                if frame["type"] != "event" || frame["event"] != "message.created" {
                    continue;
                }
                let Some(wamid) = frame["data"]["message"]["provider_message_id"].as_str() else {
                    continue;
                };
                let mut observed = observed.lock().expect("seen");
                if !observed.wamids.insert(wamid.to_string()) {
                    observed.duplicates += 1;
                    continue;
                }
                if let Some(at) = sent_at.lock().expect("sent").get(wamid) {
                    common::record(&mut e2e.lock().expect("e2e"), at.elapsed());
                }
            }
        }));
    }

    let total = args.rate * args.duration;
    let run = uuid::Uuid::new_v4().simple().to_string();
    let sent = common::open_loop(http, args.rate, total, 0, Arc::clone(&sent_at), |i| {
        common::Outgoing {
            target: Arc::clone(&targets[i as usize % targets.len()]),
            contact: format!("55{:011}", i % args.conversations),
            wamid: format!("wamid.cluster.{run}.{i}"),
            text: "load".into(),
        }
    })
    .await;
    let common::OpenLoop {
        ack,
        statuses,
        acked,
        send_window,
        ..
    } = sent;
    // Let every socket catch up (bounded).
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline
        && seen
            .iter()
            .any(|s| s.lock().expect("seen").wamids.len() < acked.len())
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for reader in readers {
        reader.abort();
    }
    let not_received: usize = seen
        .iter()
        .map(|s| {
            let s = s.lock().expect("seen");
            acked.iter().filter(|w| !s.wamids.contains(*w)).count()
        })
        .sum();
    let duplicates: u64 = seen
        .iter()
        .map(|s| s.lock().expect("seen").duplicates)
        .sum();
    Ok(json!({
        "sent": total,
        "send_window_s": send_window.as_secs_f64(),
        "acked_per_s": acked.len() as f64 / send_window.as_secs_f64(),
        "http_outcomes": statuses,
        "ack_latency": common::percentiles(&ack),
        "end_to_end_latency": common::percentiles(&e2e.lock().expect("e2e")),
        "agents": targets.len(),
        "not_received_events": not_received,
        "duplicate_events": duplicates,
    }))
}
