//! Bootstrap and shutdown of one node. Start order: telemetry → store → bus → provider clients → actors
//! → HTTP listener. Stop order is the reverse, under one deadline: stop accepting and close agent sockets
//! (1001) → drain in-flight HTTP requests → stop actors (kill after the deadline) → flush and close the
//! store.

use crate::config::Config;
use crate::{bus, demo, storage};
use anyhow::Context;
use gateway::providers::channels::Channels;
use gateway::providers::evolution::EvolutionClient;
use gateway::providers::graph::{GraphClient, GraphConfig};
use gateway::providers::zapi::ZapiClient;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How the binary was asked to run.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    pub demo: bool,
    /// Print startup information as JSON lines on stdout (for scripts and tests).
    pub json: bool,
}

/// Runs a node until `shutdown` resolves, then stops it gracefully.
pub async fn run(
    config: Config,
    options: RunOptions,
    metrics: PrometheusHandle,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let upkeep = {
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tick.tick().await;
                metrics.run_upkeep();
            }
        })
    };

    if config.storage.backend != crate::config::StorageBackend::Embedded
        && config.security.secret_key.is_none()
    {
        // A key file per node would leave each node unable to open the others' sealed credentials.
        anyhow::bail!(
            "storage backend {:?} is shared by several nodes: set security.secret_key \
             (CONVERSA_SECURITY__SECRET_KEY, base64 of 32 bytes) to the same key on every node",
            config.storage.backend
        );
    }
    let secrets = storage::secrets::SecretBox::from_config(
        config.security.secret_key.as_deref(),
        &config.storage.embedded.data_dir,
    )
    .context("loading the key that seals provider secrets")?;
    let opened = storage::open(&config.storage, secrets, config.storage.migrate_on_start.0)
        .await
        .context("opening the message store")?;
    let store = Arc::clone(&opened.store);
    let event_bus: Arc<dyn schema::bus::EventBus> = match &config.redis.url {
        // Between nodes: Redis streams (the bus drives `conversa_bus_connected` from its connection).
        Some(url) => bus::redis::RedisBus::start(bus::redis::RedisBusConfig {
            url: url.clone(),
            stream_max_len: config.redis.stream_max_len,
            backlog_max: config.redis.backlog_max,
            capacity: config.bus_capacity,
        })
        .context("configuring the Redis bus (redis.url)")?,
        None => {
            // The in-process bus cannot disconnect.
            metrics::gauge!("conversa_bus_connected").set(1.0);
            Arc::new(bus::in_process::InProcessBus::new(config.bus_capacity))
        }
    };
    let channel = Arc::new(Channels {
        graph: GraphClient::new(GraphConfig {
            graph_base: config.whatsapp.graph_base.clone(),
            instagram_base: config.instagram.graph_base.clone(),
            api_version: config.whatsapp.api_version.clone(),
            timeout: Duration::from_secs(config.whatsapp.timeout_secs.max(1)),
        })
        .context("building the Graph API client")?,
        evolution: EvolutionClient::new(Duration::from_secs(config.evolution.timeout_secs.max(1)))
            .context("building the Evolution API client")?,
        zapi: ZapiClient::new(
            config.zapi.api_base.clone(),
            config.zapi.media_hosts.clone(),
            Duration::from_secs(config.zapi.timeout_secs.max(1)),
        )
        .context("building the Z-API client")?,
    });
    if let Some(problem) = config.smtp.account().as_ref().and_then(|a| a.problem()) {
        anyhow::bail!("the [smtp] account is not usable: {problem}");
    }
    let usage = Arc::new(actors::usage::UsageMeter::default());
    let services = actors::Services {
        store: Arc::clone(&store),
        bus: Arc::clone(&event_bus),
        channel,
        config: config.actor_config(),
        usage: Arc::clone(&usage),
    };
    let directory = actors::node_supervisor::start(services)
        .await
        .context("starting the actor system")?;
    let cluster = match config.cluster.enabled {
        true => Some(
            cluster_mode(&config, opened.cluster.clone(), &directory)
                .await
                .context("joining the cluster")?,
        ),
        false => None,
    };
    let router = Arc::new(actors::Router::new(Arc::clone(&directory)));
    let max_connections = connection_budget(config.http.max_connections);
    let cluster_stop = CancellationToken::new();
    let cluster_release = CancellationToken::new();
    let cluster_tasks = cluster.map(|c| {
        announce(
            &options,
            json!({"event": "cluster", "node": c.keeper.member.node.to_string(), "rpc_url": c.keeper.member.rpc_url}),
            &format!("cluster member {} at {}", c.keeper.member.node, c.keeper.member.rpc_url),
        );
        let keeper = c.keeper.spawn(cluster_stop.clone(), cluster_release.clone());
        let rpc = gateway::cluster::rpc_routes(
            Arc::clone(&router) as Arc<dyn schema::command::Commands>,
            c.secret,
            config.gateway.webhook_body_limit.saturating_mul(2),
            Duration::from_secs(config.gateway.body_read_timeout_secs.max(1)),
        );
        let stop = cluster_release.clone();
        let limits = config.server_limits(max_connections.min(crate::open_files::CLUSTER_CONNECTIONS));
        let server = tokio::spawn(async move {
            gateway::server::serve(c.listener, rpc, limits, stop.cancelled_owned(), Duration::from_secs(5))
                .await;
        });
        (keeper, server)
    });
    let outbox_sweep = spawn_outbox_sweep(Arc::clone(&directory));
    let timer_sweep = spawn_timer_sweep(Arc::clone(&directory));
    let usage_stop = CancellationToken::new();
    let usage_flush = spawn_usage_flush(
        Arc::clone(&store),
        Arc::clone(&usage),
        Duration::from_millis(config.gateway.usage_refresh_ms.max(10)),
        usage_stop.clone(),
    );

    let listener = gateway::server::bind(config.http.addr)
        .with_context(|| format!("binding {}", config.http.addr))?;
    let addr = listener.local_addr()?;
    announce(
        &options,
        json!({"event": "listening", "addr": addr.to_string()}),
        &format!("conversa listening on http://{addr}"),
    );
    if options.demo {
        let credentials = demo::provision(store.as_ref(), &config.storage.embedded.data_dir, addr)
            .await
            .context("provisioning the demo tenant")?;
        let mut value = serde_json::to_value(&credentials)?;
        value["event"] = json!("demo");
        let human = format!(
            "demo ready:\n  webhook URL   {}\n  verify token  {}\n  app secret    {}\n  phone_number_id {}\n  agent token   {}\n  REST          {}\n  WebSocket     {}?token=<agent token>",
            credentials.webhook_url,
            credentials.verify_token,
            credentials.app_secret,
            credentials.phone_number_id,
            credentials.agent_token,
            credentials.api_base,
            credentials.ws_url
        );
        announce(&options, value, &human);
    }

    let cancel = CancellationToken::new();
    let readiness = spawn_readiness_gauge(Arc::clone(&store), cancel.clone());
    let state = gateway::AppState::new(
        Arc::clone(&router),
        event_bus,
        metrics,
        config.gateway_config(),
        cancel.clone(),
    );
    let app = gateway::http::router(state);
    let stop_accepting = cancel.clone();
    let deadline = Duration::from_secs(config.shutdown_deadline_secs.max(1));
    let started_stopping = Arc::new(std::sync::OnceLock::new());
    let stop_clock = Arc::clone(&started_stopping);
    let cut = gateway::server::serve(
        listener,
        app,
        config.server_limits(max_connections),
        async move {
            shutdown.await;
            let _ = stop_clock.set(std::time::Instant::now());
            tracing::info!("shutdown requested: closing sockets and draining requests");
            stop_accepting.cancel();
        },
        // HTTP may use half the deadline; the actors and the store share the rest.
        deadline / 2,
    )
    .await;
    if cut > 0 {
        tracing::warn!(
            connections = cut,
            "shutdown cut HTTP connections still open at the deadline"
        );
    }
    let deadline = started_stopping
        .get()
        .map_or(deadline, |at| deadline.saturating_sub(at.elapsed()));
    tracing::info!("HTTP drained; stopping actors");
    // In a cluster: serve no shard from here on (forwarded commands are answered "shard moving", and
    // peers wait for the next owners), drain the actors, then release the leases and leave.
    cluster_stop.cancel();
    directory.shutdown(deadline).await;
    cluster_release.cancel();
    if let Some((keeper, server)) = cluster_tasks {
        // Releases the leases (their shards move at once instead of after a lease) and leaves.
        let _ = tokio::time::timeout(Duration::from_secs(5), keeper).await;
        let _ = server.await;
    }
    // The actors are stopped: a last flush stores what they counted.
    usage_stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), usage_flush).await;
    readiness.abort();
    outbox_sweep.abort();
    timer_sweep.abort();
    metrics::gauge!("conversa_ready").set(0.0);
    (opened.closer)()
        .await
        .context("closing the message store")?;
    upkeep.abort();
    tracing::info!("node stopped");
    Ok(())
}

/// A cluster member's parts, ready to run.
struct ClusterMode {
    keeper: crate::cluster::keeper::Keeper,
    listener: tokio::net::TcpListener,
    secret: Arc<str>,
}

/// Checks what cluster mode needs (a shared store with leases, Redis, a secret), binds the RPC
/// listener and puts the directory under the shard table.
async fn cluster_mode(
    config: &Config,
    store: Option<Arc<dyn schema::cluster::ClusterStore>>,
    directory: &Arc<actors::Directory>,
) -> anyhow::Result<ClusterMode> {
    let c = &config.cluster;
    let Some(store) = store else {
        anyhow::bail!(
            "cluster mode needs a store every node shares, with shard leases: set storage.backend to \
             \"postgres\" or \"scylla\" (the {:?} backend belongs to one machine)",
            config.storage.backend
        );
    };
    if config.redis.url.is_none() {
        anyhow::bail!(
            "cluster mode needs redis.url: events reach agents on other nodes through Redis"
        );
    }
    let secret: Arc<str> = match &c.secret {
        Some(secret) if secret.len() >= 32 => Arc::from(secret.as_str()),
        _ => anyhow::bail!(
            "cluster mode needs cluster.secret (CONVERSA_CLUSTER__SECRET), the same on every node, at \
             least 32 characters"
        ),
    };
    let listener = gateway::server::bind(c.listen)
        .with_context(|| format!("binding the cluster listener {}", c.listen))?;
    let bound = listener.local_addr()?;
    let rpc_url = match &c.advertise_url {
        Some(url) => url.clone(),
        None if bound.ip().is_unspecified() => anyhow::bail!(
            "cluster.listen {bound} names no address other nodes can use: set cluster.advertise_url"
        ),
        None => format!("http://{bound}"),
    };
    let node = schema::cluster::NodeId::new();
    let table = Arc::new(crate::cluster::ShardTable::new(node));
    let call_timeout = Duration::from_secs(config.actors.call_timeout_secs.max(1));
    let forwarder = gateway::cluster::HttpForwarder::new(
        Arc::clone(&secret),
        call_timeout + Duration::from_secs(5),
    )
    .context("building the node-to-node client")?;
    directory.join_cluster(Arc::clone(&table) as _, Arc::new(forwarder));
    let name = c
        .name
        .clone()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "conversa".into());
    let now = jiff::Timestamp::now();
    Ok(ClusterMode {
        keeper: crate::cluster::keeper::Keeper {
            store,
            directory: Arc::clone(directory),
            table,
            member: schema::cluster::Member {
                node,
                name,
                rpc_url,
                started_at: now,
                heartbeat_at: now,
            },
            lease: c.lease(),
            max_moves_per_round: c.max_moves_per_round.max(1),
        },
        listener,
        secret,
    })
}

/// How often pending replies are swept, and how old one must be to be resent: well past the longest
/// retry schedule (5 attempts, pauses up to 30 s, 15 s request timeouts), so a reply still on its way is
/// not sent twice.
const OUTBOX_SWEEP_EVERY: Duration = Duration::from_secs(60);
const OUTBOX_SWEEP_AGE: jiff::SignedDuration = jiff::SignedDuration::from_mins(5);

/// Resends replies a previous process left `pending` (everything created before this start), then
/// every minute those older than `OUTBOX_SWEEP_AGE` that are not in flight here (deferred by a full
/// session queue, or whose hand-over was lost with a stopped actor).
fn spawn_outbox_sweep(directory: Arc<actors::Directory>) -> tokio::task::JoinHandle<()> {
    let started = jiff::Timestamp::now();
    tokio::spawn(async move {
        let mut cutoff = started;
        loop {
            match directory.recover_outbox(cutoff).await {
                Ok(0) => {}
                Ok(resent) => {
                    tracing::info!(resent, "pending replies handed back to their sessions")
                }
                Err(error) => tracing::error!(%error, "outbox sweep failed"),
            }
            tokio::time::sleep(OUTBOX_SWEEP_EVERY).await;
            cutoff = jiff::Timestamp::now()
                .checked_sub(OUTBOX_SWEEP_AGE)
                .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        }
    })
}

/// Writes what this node's meter counted every `every` (each figure the meter's running total for
/// its tenant and month, so a retried write is harmless), and once more when stopped.
fn spawn_usage_flush(
    store: Arc<dyn schema::store::Store>,
    usage: Arc<actors::usage::UsageMeter>,
    every: Duration,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let stopping = tokio::select! {
                _ = tokio::time::sleep(every) => false,
                _ = stop.cancelled() => true,
            };
            for (tenant, month, figure) in usage.take_changed() {
                if let Err(error) = store.put_usage(tenant, month, usage.id, &figure).await {
                    tracing::warn!(%tenant, month, %error, "usage not stored; retrying");
                    usage.restore(tenant, month);
                }
            }
            usage.prune(schema::tenancy::month_of(jiff::Timestamp::now()));
            if stopping {
                break;
            }
        }
    })
}

/// How often the node sweeps the due index (snoozes ending, SLA targets coming due): a clock fires
/// within about this long after its time.
const TIMER_SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Fires due clocks every `TIMER_SWEEP_EVERY`, from the store's due index (so clocks outlive actors,
/// restarts and, in a cluster, the node that started them).
fn spawn_timer_sweep(directory: Arc<actors::Directory>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(TIMER_SWEEP_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match directory.fire_due_timers(jiff::Timestamp::now()).await {
                Ok(0) => {}
                Ok(fired) => tracing::debug!(fired, "due timers fired"),
                Err(error) => tracing::warn!(%error, "timer sweep failed"),
            }
        }
    })
}

/// Keeps `conversa_ready` equal to what `/readyz` would answer (1: store answers and not shutting down),
/// so alerts see readiness without probing the node from outside.
fn spawn_readiness_gauge(
    store: Arc<dyn schema::store::Store>,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            let ready = tokio::time::timeout(Duration::from_secs(4), store.ping())
                .await
                .is_ok_and(|r| r.is_ok());
            metrics::gauge!("conversa_ready").set(if ready { 1.0 } else { 0.0 });
        }
        metrics::gauge!("conversa_ready").set(0.0);
    })
}

fn announce(options: &RunOptions, value: serde_json::Value, human: &str) {
    if options.json {
        println!("{value}");
    } else {
        println!("{human}");
    }
}

/// Raises the open-file limit and says how many connections the listener may then hold.
fn connection_budget(configured: Option<usize>) -> usize {
    let limits = crate::open_files::raise();
    let (budget, lowered) = crate::open_files::connection_budget(limits, configured);
    match limits {
        Some(l) => tracing::info!(
            soft_before = l.soft_before,
            soft = l.soft,
            hard = l.hard,
            max_connections = budget,
            "open-file limit raised to the hard limit"
        ),
        None => tracing::info!(
            max_connections = budget,
            "open-file limit unknown on this platform"
        ),
    }
    if lowered {
        tracing::warn!(
            configured = configured.unwrap_or_default(),
            max_connections = budget,
            "http.max_connections is more than the open-file limit leaves; lowered (raise LimitNOFILE, see deploy/README.md)"
        );
    }
    budget
}
