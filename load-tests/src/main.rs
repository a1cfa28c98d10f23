//! Conversa's load generator: drives a running node over the network the way production does and prints
//! what it measured (a table on stdout, the same figures as JSON). It never asserts a timing.
//!
//! ```text
//! common.rs     provisioning, signed webhooks, agent sockets, histograms, report output
//! ingest.rs     webhooks at a fixed rate → ack and end-to-end latency, loss, duplicates, seq gaps
//! fanout.rs     thousands of agent sockets, every event to all → memory per socket, fan-out latency
//! soak.rs       hours of mixed load (webhooks, replies, statuses) → memory over time
//! reconnect.rs  agents dropping and resuming by seq under load → no gap, no duplicate
//! cluster.rs    the same webhook load on 1 node and on 3 (it starts them) → throughput, p99, loss
//! closed_loop.rs durable ingest vs a bare axum server (it starts both), wrk closed loop → ratio
//! storage.rs    appends straight into a store backend (in process) → appends/s, append latency
//! ```

mod closed_loop;
mod cluster;
mod common;
mod fanout;
mod ingest;
mod reconnect;
mod soak;
mod storage;

use clap::{Parser, Subcommand};

/// The generator shares the cores with the node it measures, so it uses the node's allocator too
/// (glibc's malloc and free were a tenth of its time with 100 sockets).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "load-tests",
    about = "Load scenarios against a running Conversa node"
)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// Webhooks at a fixed rate; latency to the agent, loss, duplicates.
    Ingest(ingest::IngestArgs),
    /// Many agent sockets, every event to all; memory per socket and fan-out latency.
    Fanout(fanout::FanoutArgs),
    /// Long mixed load with replies and statuses; memory over time.
    Soak(soak::SoakArgs),
    /// Agents that keep dropping and resuming by seq; gaps and duplicates.
    ReconnectStorm(reconnect::ReconnectArgs),
    /// The same webhook load against 1 node and against a 3-node cluster (started here), side by side.
    Cluster(cluster::ClusterArgs),
    /// Appends straight into a store backend (embedded, postgres, scylla) at several concurrencies.
    Storage(storage::StorageArgs),
    /// Durable ingest against a bare axum server in the same run (wrk, closed loop): the ratio.
    ClosedLoop(closed_loop::ClosedLoopArgs),
    /// The bare axum server `closed-loop` compares the node with (started by it).
    #[command(hide = true)]
    Baseline {
        #[arg(long, default_value = "127.0.0.1:0")]
        addr: String,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // The baseline runs its own runtime, like any bare server; the scenarios share this one.
    if let Scenario::Baseline { addr } = &cli.scenario {
        return closed_loop::serve_baseline(addr);
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(scenario(cli.scenario))
}

async fn scenario(scenario: Scenario) -> anyhow::Result<()> {
    match scenario {
        Scenario::Ingest(args) => ingest::run(args).await,
        Scenario::Fanout(args) => fanout::run(args).await,
        Scenario::Soak(args) => soak::run(args).await,
        Scenario::ReconnectStorm(args) => reconnect::run(args).await,
        Scenario::Storage(args) => storage::run(args).await,
        Scenario::Cluster(args) => cluster::run(args).await,
        Scenario::ClosedLoop(args) => closed_loop::run(args).await,
        Scenario::Baseline { .. } => Ok(()),
    }
}
