//! The storage benchmark (a benchmark, not a test): appends conversation turns straight into a backend
//! through the store port, in process, the way conversation actors do, and reports appends/s and append
//! latency at each concurrency (one conversation per writer), and on the shared backends with and without
//! the cluster's fence on every commit (what fencing costs per commit). Every append is durable when it returns,
//! as the port requires, so the figures include each backend's fsync or replication.

use crate::common;
use clap::{Args, ValueEnum};
use engine::config::{StorageBackend, StorageConfig};
use engine::storage::secrets::SecretBox;
use schema::TenantId;
use schema::cluster::{ClusterStore, Fence, NodeId, ShardId};
use schema::fixtures::Live;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Backend {
    Embedded,
    Postgres,
    Scylla,
}

#[derive(Args)]
pub struct StorageArgs {
    /// Which backend to measure.
    #[arg(long, value_enum, default_value = "embedded")]
    backend: Backend,
    /// Concurrent writers to measure, one conversation each.
    #[arg(long, value_delimiter = ',', default_value = "1,64,512")]
    concurrency: Vec<usize>,
    /// Seconds per concurrency level.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Embedded only: run with group commit on, off, or both.
    #[arg(long, value_delimiter = ',', default_value = "on,off")]
    group_commit: Vec<String>,
    /// PostgreSQL and CQL: measure plain commits, fenced commits (cluster mode: every commit carries
    /// its shard lease's epoch, checked by the store), or both side by side.
    #[arg(long, value_delimiter = ',', default_value = "off,on")]
    fence: Vec<String>,
    /// Embedded: data directory (a fresh temporary one by default).
    #[arg(long)]
    data_dir: Option<std::path::PathBuf>,
    /// PostgreSQL URL.
    #[arg(
        long,
        default_value = "postgres://conversa:conversa@127.0.0.1:5432/conversa"
    )]
    postgres_url: String,
    /// CQL contact points, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "127.0.0.1:9042")]
    scylla_nodes: Vec<String>,
    /// Keyspace (created with replication factor 1 if missing).
    #[arg(long, default_value = "conversa_bench")]
    keyspace: String,
    /// CQL consistency.
    #[arg(long, default_value = "local_quorum")]
    consistency: String,
    /// Where to write the JSON report.
    #[arg(long)]
    out: Option<String>,
}

pub async fn run(args: StorageArgs) -> anyhow::Result<()> {
    let temp = tempfile_dir(args.data_dir.as_deref())?;
    // (group commit for embedded, fenced for the shared backends)
    let modes: Vec<(Option<bool>, bool)> = match args.backend {
        Backend::Embedded => args
            .group_commit
            .iter()
            .map(|m| (Some(m.trim() != "off"), false))
            .collect(),
        _ => args
            .fence
            .iter()
            .map(|f| (None, f.trim() == "on"))
            .collect(),
    };
    let mut results = Vec::new();
    let mut lines = vec![format!(
        "{:<10} {:<12} {:<7} {:>6} {:>12} {:>10} {:>10} {:>10}",
        "backend", "group commit", "fenced", "conc.", "appends/s", "p50 ms", "p99 ms", "max ms"
    )];
    for (mode, fenced) in modes {
        let mut config = StorageConfig::default();
        match args.backend {
            Backend::Embedded => {
                config.embedded.data_dir = temp.join(format!(
                    "data-{}",
                    if mode == Some(false) { "off" } else { "on" }
                ));
                config.embedded.group_commit = mode.unwrap_or(true);
            }
            Backend::Postgres => {
                config.backend = StorageBackend::Postgres;
                config.postgres.url = args.postgres_url.clone();
                config.postgres.max_connections = 64;
            }
            Backend::Scylla => {
                config.backend = StorageBackend::Scylla;
                config.scylla.nodes = args.scylla_nodes.clone();
                config.scylla.keyspace = args.keyspace.clone();
                config.scylla.consistency = args.consistency.clone();
                config.scylla.create_keyspace_replication =
                    Some("{'class': 'SimpleStrategy', 'replication_factor': 1}".into());
            }
        }
        let opened = engine::storage::open(&config, SecretBox::new(&[1; 32]), true).await?;
        let fences = match (fenced, &opened.cluster) {
            (true, Some(cluster)) => Some(Fences::take(cluster.as_ref()).await?),
            (true, None) => anyhow::bail!("this backend has no shard leases to fence with"),
            (false, _) => None,
        };
        for &writers in &args.concurrency {
            let (appends, histogram, elapsed) = measure(
                Arc::clone(&opened.store),
                writers,
                Duration::from_secs(args.seconds),
                fences.clone(),
            )
            .await?;
            let rate = appends as f64 / elapsed.as_secs_f64();
            let latency = common::percentiles(&histogram);
            let group = match mode {
                Some(true) => "on",
                Some(false) => "off",
                None => "n/a",
            };
            lines.push(format!(
                "{:<10} {:<12} {:<7} {:>6} {:>12.0} {:>10} {:>10} {:>10}",
                format!("{:?}", args.backend).to_lowercase(),
                group,
                if fenced { "yes" } else { "no" },
                writers,
                rate,
                latency["p50_ms"],
                latency["p99_ms"],
                latency["max_ms"]
            ));
            results.push(json!({
                "backend": format!("{:?}", args.backend).to_lowercase(),
                "group_commit": group,
                "fenced": fenced,
                "concurrency": writers,
                "appends": appends,
                "seconds": elapsed.as_secs_f64(),
                "appends_per_s": rate,
                "append_latency": latency,
            }));
        }
        if let (Some(fences), Some(cluster)) = (&fences, &opened.cluster) {
            fences.release(cluster.as_ref()).await?;
        }
        (opened.closer)().await?;
    }
    let report: Value = json!({"scenario": "storage", "results": results});
    common::finish(&report, &lines, args.out.as_deref(), "storage-report.json")
}

/// Every shard's lease, taken for the benchmark: each commit carries its conversation's fence.
#[derive(Clone)]
struct Fences {
    node: NodeId,
    epochs: Arc<HashMap<ShardId, u64>>,
}

impl Fences {
    async fn take(cluster: &dyn ClusterStore) -> anyhow::Result<Fences> {
        let node = NodeId::new();
        let mut epochs = HashMap::new();
        for lease in cluster.leases().await? {
            if !lease.is_free() {
                anyhow::bail!(
                    "shard {} is leased by a running node: benchmark on a database of its own",
                    lease.shard
                );
            }
            let taken = cluster
                .acquire(lease.shard, node, lease.epoch, Duration::from_secs(600))
                .await?
                .ok_or_else(|| anyhow::anyhow!("shard {} taken meanwhile", lease.shard))?;
            epochs.insert(taken.shard, taken.epoch);
        }
        Ok(Fences {
            node,
            epochs: Arc::new(epochs),
        })
    }

    fn of(&self, conversation: schema::ConversationId) -> Option<Fence> {
        let shard = ShardId::of(&conversation.0);
        self.epochs.get(&shard).map(|epoch| Fence {
            shard,
            epoch: *epoch,
        })
    }

    async fn release(&self, cluster: &dyn ClusterStore) -> anyhow::Result<()> {
        for (shard, epoch) in self.epochs.iter() {
            cluster.release(*shard, self.node, *epoch).await?;
        }
        Ok(())
    }
}

/// Runs `writers` conversations appending inbound turns back to back for `window`.
async fn measure(
    store: Arc<dyn schema::store::Store>,
    writers: usize,
    window: Duration,
    fences: Option<Fences>,
) -> anyhow::Result<(u64, hdrhistogram::Histogram<u64>, Duration)> {
    let tenant = TenantId::new();
    let started = Instant::now();
    let deadline = started + window;
    let tasks = (0..writers).map(|n| {
        let store = Arc::clone(&store);
        let fences = fences.clone();
        tokio::spawn(async move {
            let mut live = Live::new(tenant, &format!("55119{n:08}"));
            let fence = fences.as_ref().and_then(|f| f.of(live.id()));
            let mut histogram = common::latency_histogram();
            let mut turn = 0u64;
            let text = "Olá! Gostaria de saber o status do meu pedido, por favor.";
            while Instant::now() < deadline {
                let mut commit = live.inbound(
                    &format!("wamid.bench.{n}.{turn}"),
                    text,
                    jiff::Timestamp::now(),
                );
                commit.fence = fence;
                let begun = Instant::now();
                store.commit(commit).await?;
                common::record(&mut histogram, begun.elapsed());
                turn += 1;
            }
            anyhow::Ok((turn, histogram))
        })
    });
    let mut total = 0;
    let mut merged = common::latency_histogram();
    for task in futures::future::join_all(tasks).await {
        let (appends, histogram) = task??;
        total += appends;
        merged.add(&histogram)?;
    }
    Ok((total, merged, started.elapsed()))
}

fn tempfile_dir(given: Option<&std::path::Path>) -> anyhow::Result<std::path::PathBuf> {
    match given {
        Some(dir) => Ok(dir.to_path_buf()),
        None => {
            let dir =
                std::env::temp_dir().join(format!("conversa-storage-bench-{}", std::process::id()));
            std::fs::create_dir_all(&dir)?;
            Ok(dir)
        }
    }
}
