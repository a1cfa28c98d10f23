//! The bus between nodes: one Redis stream per tenant (`conversa:bus:{tenant}`, capped with
//! `XADD MAXLEN ~`), and on each node an in-process bus that its own sockets subscribe to.
//!
//! ```text
//! publish ──▶ local in-process bus (this node's sockets, at once)
//!         └─▶ bounded queue ─▶ publisher task ─XADD─▶ Redis stream of the tenant
//! reader task ─XREAD BLOCK (every tenant with a socket here)─▶ entries of other nodes ─▶ local bus
//! ```
//!
//! Every entry carries its node and a counter per (node, tenant) that grows by one, so a reader sees a
//! gap instead of missing it silently (Centrifugo's offsets, in spirit). While Redis is unreachable the
//! publisher keeps entries in a bounded backlog and writes them, in order, once it is back: nothing is
//! lost to other nodes' agents. If the backlog overflows, the lost tenants get a `gap` entry when Redis
//! returns; a reader that sees a gap (or a counter that jumps) ends its local subscriptions of that
//! tenant, so those agents reconnect and resume from the store by seq: they may see a reconnect, never a
//! silent hole. Redis down never stops a node: it keeps ingesting and serving its own agents, and
//! `conversa_bus_connected` says 0.
//!
//! Delivery between nodes is therefore at least what the store holds (resume fills any gap) and at most
//! once per entry; an event reaches a socket once (sockets drop seqs they already have).

use super::in_process::InProcessBus;
use dashmap::DashMap;
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;
use redis::streams::{StreamReadOptions, StreamReadReply};
use schema::TenantId;
use schema::bus::{BusItem, EventBus, Published, TenantNotice};
use schema::events::EventEnvelope;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, mpsc};

/// Entries queued for the publisher before `publish` drops one (and the tenant's readers see a gap).
const QUEUE: usize = 65_536;
/// Entries written per pipeline.
const PIPELINE: usize = 512;
/// How long a reader's XREAD blocks, and the pause before reconnecting to Redis.
const BLOCK: Duration = Duration::from_secs(1);
const RECONNECT_PAUSE: Duration = Duration::from_millis(500);
/// How far before a tenant's first subscription on this node its stream is read: the clock skew
/// between nodes (and Redis) that the cluster tolerates (README, "Time between nodes").
const FOLLOW_MARGIN_MS: u64 = 10_000;
/// Longest any Redis call may take (a blocked XREAD included); the client's own default, 500 ms, is
/// shorter than the block.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection whose calls give up after `RESPONSE_TIMEOUT`.
async fn connect(client: &redis::Client) -> Option<MultiplexedConnection> {
    let config = redis::AsyncConnectionConfig::new()
        .set_response_timeout(Some(RESPONSE_TIMEOUT))
        .set_connection_timeout(Some(Duration::from_secs(2)));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .ok()
}

/// Settings of the Redis bus.
#[derive(Clone, Debug)]
pub struct RedisBusConfig {
    pub url: String,
    /// Entries kept per tenant stream (approximately).
    pub stream_max_len: usize,
    /// Entries kept while Redis is unreachable before the oldest are given up (as a gap).
    pub backlog_max: usize,
    /// Events buffered per local subscriber (as the in-process bus).
    pub capacity: usize,
}

/// One node's end of the bus.
pub struct RedisBus {
    local: Arc<InProcessBus>,
    outgoing: mpsc::Sender<Outgoing>,
    /// Tenants with a subscriber on this node: the reader follows their streams.
    followed: Arc<DashMap<TenantId, u64>>,
    wake: Arc<Notify>,
    /// Whether Redis answered the last call of the publisher or the reader (both mark it, so a node
    /// with nothing to publish still notices). Also `conversa_bus_connected`.
    connected: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// An entry on its way to Redis.
enum Outgoing {
    Event(TenantId, String),
    Notice(TenantId, String),
    /// `publish` had to drop an entry of this tenant (the queue was full).
    Gap(TenantId),
}

impl RedisBus {
    /// Starts the publisher and reader tasks. Redis need not be up yet: both connect (and reconnect)
    /// on their own.
    pub fn start(config: RedisBusConfig) -> Result<Arc<RedisBus>, redis::RedisError> {
        let client = redis::Client::open(config.url.as_str())?;
        let node: Arc<str> = Arc::from(uuid::Uuid::now_v7().simple().to_string());
        let local = Arc::new(InProcessBus::new(config.capacity));
        let (outgoing, queue) = mpsc::channel(QUEUE);
        let followed: Arc<DashMap<TenantId, u64>> = Arc::default();
        let wake = Arc::new(Notify::new());
        let connected = Arc::new(AtomicBool::new(false));
        metrics::gauge!("conversa_bus_connected").set(0.0);
        let publisher = tokio::spawn(publisher(
            client.clone(),
            Arc::clone(&node),
            Arc::clone(&connected),
            queue,
            config.stream_max_len.max(1),
            config.backlog_max.max(1),
        ));
        let reader = tokio::spawn(reader(
            client,
            node,
            Arc::clone(&local),
            Arc::clone(&followed),
            Arc::clone(&wake),
            Arc::clone(&connected),
        ));
        Ok(Arc::new(RedisBus {
            local,
            outgoing,
            followed,
            wake,
            connected,
            tasks: vec![publisher, reader],
        }))
    }

    fn send(&self, entry: Outgoing) {
        let tenant = match &entry {
            Outgoing::Event(t, _) | Outgoing::Notice(t, _) | Outgoing::Gap(t) => *t,
        };
        if self.outgoing.try_send(entry).is_err() {
            // The publisher is that far behind: other nodes' agents of this tenant must resume.
            metrics::counter!("conversa_bus_dropped_total").increment(1);
            let _ = self.outgoing.try_send(Outgoing::Gap(tenant));
        }
    }
}

impl Drop for RedisBus {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl EventBus for RedisBus {
    fn publish(&self, event: Published) {
        let tenant = event.envelope.tenant_id;
        let body = serde_json::to_string(event.envelope.as_ref());
        self.local.publish(event);
        match body {
            Ok(body) => self.send(Outgoing::Event(tenant, body)),
            Err(error) => tracing::error!(%error, "event not encodable for the bus"),
        }
    }

    fn notify(&self, tenant: TenantId, notice: TenantNotice) {
        let body = serde_json::to_string(&notice);
        self.local.notify(tenant, notice);
        if let Ok(body) = body {
            self.send(Outgoing::Notice(tenant, body));
        }
    }

    fn subscribe(&self, tenant: TenantId) -> futures::stream::BoxStream<'static, BusItem> {
        let stream = self.local.subscribe(tenant);
        // Followed from the moment of the first subscription (see `FOLLOW_MARGIN_MS`), not from
        // whenever the reader gets to it: an event another node publishes in between must not be lost.
        let now_ms = u64::try_from(jiff::Timestamp::now().as_millisecond()).unwrap_or(0);
        if let dashmap::mapref::entry::Entry::Vacant(entry) = self.followed.entry(tenant) {
            entry.insert(now_ms);
            self.wake.notify_one();
        }
        stream
    }

    fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }
}

/// How long an entry took from Redis (its id is Redis's clock in ms) to this node's reader: the
/// Redis lag of the bus. Includes the skew between the two clocks; never negative.
fn record_lag(id: &str) {
    let Some(written_ms) = id.split('-').next().and_then(|ms| ms.parse::<i64>().ok()) else {
        return;
    };
    let lag_ms = (jiff::Timestamp::now().as_millisecond() - written_ms).max(0);
    metrics::histogram!("conversa_bus_remote_lag_seconds").record(lag_ms as f64 / 1000.0);
}

fn stream_key(tenant: TenantId) -> String {
    format!("conversa:bus:{tenant}")
}

/// One entry as written: (tenant, counter, kind, body).
type Entry = (TenantId, u64, &'static str, String);

/// Writes queued entries in order, keeping them (bounded) while Redis is unreachable.
async fn publisher(
    client: redis::Client,
    node: Arc<str>,
    connected: Arc<AtomicBool>,
    mut queue: mpsc::Receiver<Outgoing>,
    stream_max_len: usize,
    backlog_max: usize,
) {
    let mut counters: HashMap<TenantId, u64> = HashMap::new();
    let mut backlog: VecDeque<Entry> = VecDeque::new();
    let mut gaps: HashSet<TenantId> = HashSet::new();
    let mut connection: Option<MultiplexedConnection> = None;
    let mut admit = |outgoing: Outgoing, backlog: &mut VecDeque<Entry>, gaps: &mut HashSet<_>| {
        let (tenant, kind, body) = match outgoing {
            Outgoing::Event(tenant, body) => (tenant, "event", body),
            Outgoing::Notice(tenant, body) => (tenant, "notice", body),
            Outgoing::Gap(tenant) => {
                gaps.insert(tenant);
                return;
            }
        };
        let counter = counters.entry(tenant).or_default();
        *counter += 1;
        backlog.push_back((tenant, *counter, kind, body));
        if backlog.len() > backlog_max
            && let Some((lost, ..)) = backlog.pop_front()
        {
            gaps.insert(lost);
        }
    };
    loop {
        if backlog.is_empty() && gaps.is_empty() {
            match queue.recv().await {
                Some(outgoing) => admit(outgoing, &mut backlog, &mut gaps),
                None => return,
            }
        }
        while let Ok(outgoing) = queue.try_recv() {
            admit(outgoing, &mut backlog, &mut gaps);
        }
        metrics::gauge!("conversa_bus_backlog").set(backlog.len() as f64);
        if connection.is_none() {
            connection = connect(&client).await;
        }
        let Some(conn) = connection.as_mut() else {
            connected.store(false, Ordering::Relaxed);
            metrics::gauge!("conversa_bus_connected").set(0.0);
            tokio::time::sleep(RECONNECT_PAUSE).await;
            continue;
        };
        match write(conn, &node, &mut backlog, &mut gaps, stream_max_len).await {
            Ok(()) => {
                connected.store(true, Ordering::Relaxed);
                metrics::gauge!("conversa_bus_connected").set(1.0);
            }
            Err(error) => {
                tracing::warn!(%error, backlog = backlog.len(), "bus: Redis unreachable; keeping events to send later");
                connected.store(false, Ordering::Relaxed);
                metrics::gauge!("conversa_bus_connected").set(0.0);
                connection = None;
                tokio::time::sleep(RECONNECT_PAUSE).await;
            }
        }
    }
}

/// Writes the gap markers, then the backlog in order, a pipeline at a time; what was written leaves.
async fn write(
    conn: &mut MultiplexedConnection,
    node: &str,
    backlog: &mut VecDeque<Entry>,
    gaps: &mut HashSet<TenantId>,
    stream_max_len: usize,
) -> redis::RedisResult<()> {
    let maxlen = redis::streams::StreamMaxlen::Approx(stream_max_len);
    if !gaps.is_empty() {
        let mut pipe = redis::pipe();
        for tenant in gaps.iter() {
            pipe.xadd_maxlen(
                stream_key(*tenant),
                maxlen,
                "*",
                &[("node", node), ("kind", "gap")],
            )
            .ignore();
        }
        pipe.query_async::<()>(conn).await?;
        metrics::counter!("conversa_bus_gaps_total").increment(gaps.len() as u64);
        gaps.clear();
    }
    while !backlog.is_empty() {
        let take = backlog.len().min(PIPELINE);
        let mut pipe = redis::pipe();
        for (tenant, counter, kind, body) in backlog.iter().take(take) {
            let counter = counter.to_string();
            pipe.xadd_maxlen(
                stream_key(*tenant),
                maxlen,
                "*",
                &[
                    ("node", node),
                    ("n", counter.as_str()),
                    ("kind", kind),
                    ("body", body.as_str()),
                ],
            )
            .ignore();
        }
        pipe.query_async::<()>(conn).await?;
        backlog.drain(..take);
    }
    Ok(())
}

/// Follows the streams of every tenant with a subscriber here and hands other nodes' entries to the
/// local bus.
async fn reader(
    client: redis::Client,
    node: Arc<str>,
    local: Arc<InProcessBus>,
    followed: Arc<DashMap<TenantId, u64>>,
    wake: Arc<Notify>,
    connected: Arc<AtomicBool>,
) {
    // Last stream id read per tenant, and the last counter seen per (node, tenant).
    let mut positions: HashMap<TenantId, String> = HashMap::new();
    let mut counters: HashMap<(String, TenantId), u64> = HashMap::new();
    let mut connection: Option<MultiplexedConnection> = None;
    loop {
        if connection.is_none() {
            connection = connect(&client).await;
        }
        let Some(conn) = connection.as_mut() else {
            tokio::time::sleep(RECONNECT_PAUSE).await;
            continue;
        };
        let tenants: Vec<TenantId> = followed.iter().map(|e| *e.key()).collect();
        if tenants.is_empty() {
            let _ = tokio::time::timeout(BLOCK, wake.notified()).await;
            continue;
        }
        // A newly followed tenant is read from shortly before its first subscription, by the stream's
        // ids (Redis's clock, in ms): the margin covers the clock skew nodes tolerate, so nothing
        // published after the subscription is missed. What it brings from before is a few already
        // stored events, which sockets pass on like any live event (clients keep events by seq).
        for tenant in &tenants {
            if !positions.contains_key(tenant) {
                let since = followed.get(tenant).map_or(0, |e| *e.value());
                positions.insert(
                    *tenant,
                    format!("{}-0", since.saturating_sub(FOLLOW_MARGIN_MS)),
                );
            }
        }
        let keys: Vec<String> = tenants.iter().map(|t| stream_key(*t)).collect();
        let ids: Vec<String> = tenants.iter().map(|t| positions[t].clone()).collect();
        let options = StreamReadOptions::default()
            .block(BLOCK.as_millis() as usize)
            .count(PIPELINE);
        let reply: redis::RedisResult<Option<StreamReadReply>> =
            conn.xread_options(&keys, &ids, &options).await;
        if reply.is_ok() && !connected.swap(true, Ordering::Relaxed) {
            metrics::gauge!("conversa_bus_connected").set(1.0);
        }
        let reply = match reply {
            Ok(Some(reply)) => reply,
            Ok(None) => continue,
            Err(error) => {
                tracing::warn!(%error, "bus: reading from Redis failed; reconnecting");
                // Also seen by a node that has nothing to publish.
                connected.store(false, Ordering::Relaxed);
                metrics::gauge!("conversa_bus_connected").set(0.0);
                connection = None;
                tokio::time::sleep(RECONNECT_PAUSE).await;
                continue;
            }
        };
        for stream in reply.keys {
            let Some(tenant) = tenants.iter().find(|t| stream_key(**t) == stream.key) else {
                continue;
            };
            for entry in stream.ids {
                positions.insert(*tenant, entry.id.clone());
                let field = |name: &str| -> Option<String> {
                    entry
                        .map
                        .get(name)
                        .and_then(|v| redis::from_redis_value_ref::<String>(v).ok())
                };
                let Some(from) = field("node") else { continue };
                if from == *node {
                    continue;
                }
                let kind = field("kind").unwrap_or_default();
                let counter = field("n").and_then(|n| n.parse::<u64>().ok());
                let previous = counters.get(&(from.clone(), *tenant)).copied();
                let jumped = match (previous, counter) {
                    (Some(previous), Some(counter)) => counter != previous + 1,
                    _ => false,
                };
                if let Some(counter) = counter {
                    counters.insert((from.clone(), *tenant), counter);
                }
                if kind == "gap" || jumped {
                    metrics::counter!("conversa_bus_gaps_seen_total").increment(1);
                    tracing::warn!(%tenant, from = %from, "bus: events of this tenant may have been missed; its sockets resume from the store");
                    local.reset(*tenant);
                    if kind == "gap" {
                        continue;
                    }
                }
                let Some(body) = field("body") else { continue };
                match kind.as_str() {
                    "event" => match serde_json::from_str::<EventEnvelope>(&body) {
                        Ok(envelope) => {
                            metrics::counter!("conversa_bus_remote_events_total").increment(1);
                            record_lag(&entry.id);
                            local.publish(Published::new(envelope, Instant::now(), None));
                        }
                        Err(error) => tracing::warn!(%error, "bus: unreadable event entry"),
                    },
                    "notice" => match serde_json::from_str::<TenantNotice>(&body) {
                        Ok(notice) => local.notify(*tenant, notice),
                        Err(error) => tracing::warn!(%error, "bus: unreadable notice entry"),
                    },
                    _ => {}
                }
            }
        }
    }
}
