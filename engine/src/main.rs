//! The `conversa` binary: parses the command line, loads the configuration and runs a node. Everything
//! else lives in the `engine` library.

use anyhow::Context;
use clap::{Parser, Subcommand};
use engine::config::Config;
use engine::node::{self, RunOptions};
use std::net::SocketAddr;
use std::path::PathBuf;

/// mimalloc instead of glibc's malloc: it returns freed memory to the system (a passivated
/// conversation's memory does not stay in the process, as it did in glibc's per-thread arenas) and
/// allocates the many small, short-lived objects of a turn faster.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "conversa",
    version,
    about = "Conversa: real-time omnichannel messaging engine"
)]
struct Cli {
    /// TOML configuration file (values are overridden by CONVERSA_* variables and by flags).
    #[arg(long, global = true, env = "CONVERSA_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a node.
    Serve {
        /// Address to listen on (port 0 picks a free port; the chosen address is printed).
        #[arg(long)]
        http_addr: Option<SocketAddr>,
        /// Data directory of the embedded store.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Create a demo tenant, WhatsApp connection and agent, and print their credentials.
        #[arg(long)]
        demo: bool,
        /// Print startup information as JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Apply the configured backend's pending schema migrations and exit (idempotent; nodes also do
    /// it on start unless `storage.migrate_on_start` is false).
    Migrate,
    /// Print the effective configuration (secrets included: do not paste it anywhere).
    Config,
    /// Cluster membership and shard ownership, read from the shared store.
    Cluster {
        #[command(subcommand)]
        command: ClusterCommand,
    },
    /// The tenants' audit logs, read from the configured store.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recompute every entry's hash and link and compare the end with the stored head; exits 1 if
    /// any entry was altered, removed or reordered (with the embedded store, stop the node first).
    Verify {
        /// Only this tenant (default: every tenant).
        #[arg(long)]
        tenant: Option<uuid::Uuid>,
        /// Data directory of the embedded store.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ClusterCommand {
    /// The live members and how many shards each holds (and which are free).
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut config = Config::load(cli.config.as_deref()).context("loading configuration")?;
    match cli.command {
        Command::Config => {
            println!("{}", toml_like(&config)?);
            Ok(())
        }
        Command::Migrate => {
            engine::telemetry::init_logging(&config.log);
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(engine::storage::migrate(&config.storage))?;
            println!("migrations applied ({:?} backend)", config.storage.backend);
            Ok(())
        }
        Command::Cluster {
            command: ClusterCommand::Status { json },
        } => {
            engine::telemetry::init_logging(&config.log);
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let status = runtime.block_on(engine::cluster::status::read(&config))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{status}");
            }
            Ok(())
        }
        Command::Audit {
            command:
                AuditCommand::Verify {
                    tenant,
                    data_dir,
                    json,
                },
        } => {
            if let Some(dir) = data_dir {
                config.storage.embedded.data_dir = dir;
            }
            engine::telemetry::init_logging(&config.log);
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let verdicts =
                runtime.block_on(engine::audit::run(&config, tenant.map(schema::TenantId)))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&verdicts)?);
            } else {
                for verdict in &verdicts {
                    println!("{verdict}");
                }
            }
            if verdicts.iter().all(|v| v.holds()) {
                Ok(())
            } else {
                std::process::exit(1)
            }
        }
        Command::Serve {
            http_addr,
            data_dir,
            demo,
            json,
        } => {
            if let Some(addr) = http_addr {
                config.http.addr = addr;
            }
            if let Some(dir) = data_dir {
                config.storage.embedded.data_dir = dir;
            }
            engine::telemetry::init_logging(&config.log);
            for name in Config::ignored_env() {
                tracing::warn!(%name, "ignoring an environment variable that names no configuration key");
            }
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let metrics =
                    engine::telemetry::init_metrics().context("installing the metrics recorder")?;
                node::run(
                    config,
                    RunOptions { demo, json },
                    metrics,
                    shutdown_signal(),
                )
                .await
            })
        }
    }
}

fn toml_like(config: &Config) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(config)?)
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
