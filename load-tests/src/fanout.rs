//! `fanout`: many agent sockets of one tenant (10,000 by default), every event to every socket.
//! Measures the node's memory per open socket (RSS before and after connecting them), end-to-end latency
//! webhook sent → event on each socket, and per-socket completeness (every socket must see every
//! acknowledged message exactly once).

use crate::common::{self, NodeArgs};
use anyhow::bail;
use futures::StreamExt;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(clap::Args, Clone, Debug)]
pub struct FanoutArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    /// Agent sockets to open (each process needs one file descriptor per socket: check `ulimit -n`).
    #[arg(long, default_value_t = 10_000)]
    pub agents: usize,
    /// Webhooks per second once every socket is subscribed.
    #[arg(long, default_value_t = 20)]
    pub rate: u64,
    /// Seconds of sending.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Sockets opened concurrently while connecting.
    #[arg(long, default_value_t = 200)]
    pub connect_concurrency: usize,
}

pub async fn run(args: FanoutArgs) -> anyhow::Result<()> {
    if args.agents == 0 || args.rate == 0 || args.duration == 0 {
        bail!("agents, rate and duration must be positive");
    }
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    let target = Arc::new(common::provision(&http, &args.node).await?);
    let rss_before = args.node.node_pid.and_then(common::resident_kib);

    // Connect every socket and wait for its `subscribed`. Every webhook's send time is kept by its
    // index (microseconds since `origin`, plus one; 0 = not sent yet), and each reader marks the
    // indexes it saw in a bitset: no lock, string hash or allocation per frame, so the generator, which
    // shares the cores, measures the node rather than itself.
    let total = args.rate * args.duration;
    let origin = Instant::now();
    let sent_at: Arc<Vec<AtomicU64>> = Arc::new((0..total).map(|_| AtomicU64::new(0)).collect());
    let received = Arc::new(AtomicU64::new(0));
    let duplicates = Arc::new(AtomicU64::new(0));
    let closed = Arc::new(AtomicU64::new(0));
    let connect_started = Instant::now();
    let connected = futures::stream::iter(0..args.agents)
        .map(|index| {
            let target = Arc::clone(&target);
            async move { (index, target.agent_socket(None).await) }
        })
        .buffer_unordered(args.connect_concurrency.max(1))
        .collect::<Vec<_>>()
        .await;
    let mut readers = Vec::with_capacity(args.agents);
    let mut failed_connects = 0u64;
    let (subscribed_tx, mut subscribed_rx) = tokio::sync::mpsc::channel::<()>(args.agents);
    // A watch (not a Notify): a reader busy when the stop is sent still sees it on its next wait.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    for (_, socket) in connected {
        let Ok(mut socket) = socket else {
            failed_connects += 1;
            continue;
        };
        let (sent_at, received, duplicates, closed, subscribed, mut stop) = (
            Arc::clone(&sent_at),
            Arc::clone(&received),
            Arc::clone(&duplicates),
            Arc::clone(&closed),
            subscribed_tx.clone(),
            stop_rx.clone(),
        );
        // Each reader keeps its own histogram and counts (no shared lock per frame among thousands of
        // tasks, so the generator measures the node rather than itself) and hands them back at the end.
        readers.push(tokio::spawn(async move {
            let mut latency = common::latency_histogram();
            let mut seen = vec![0u64; (total as usize).div_ceil(64)];
            let mut seen_count = 0u64;
            loop {
                let message = tokio::select! {
                    _ = stop.changed() => break,
                    message = socket.next() => message,
                };
                let Some(Ok(message)) = message else { break };
                if matches!(message, tokio_tungstenite::tungstenite::Message::Close(_)) {
                    closed.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                let Some(frame) = common::frame_head(&message) else {
                    continue;
                };
                if frame.kind == "subscribed" {
                    let _ = subscribed.send(()).await;
                    continue;
                }
                let Some(wamid) = frame.created_wamid() else {
                    continue;
                };
                let Some(index) = wamid
                    .rsplit('.')
                    .next()
                    .and_then(|i| i.parse::<usize>().ok())
                    .filter(|i| *i < total as usize)
                else {
                    continue;
                };
                let (word, bit) = (index / 64, 1u64 << (index % 64));
                if seen[word] & bit != 0 {
                    duplicates.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                seen[word] |= bit;
                seen_count += 1;
                received.fetch_add(1, Ordering::Relaxed);
                let sent = sent_at[index].load(Ordering::Acquire);
                if sent > 0 {
                    let elapsed = origin.elapsed().as_micros() as u64;
                    common::record(
                        &mut latency,
                        Duration::from_micros(elapsed.saturating_sub(sent - 1)),
                    );
                }
            }
            (latency, seen_count)
        }));
    }
    drop(subscribed_tx);
    let open = readers.len();
    for _ in 0..open {
        if tokio::time::timeout(Duration::from_secs(60), subscribed_rx.recv())
            .await
            .is_err()
        {
            break;
        }
    }
    let connect_time = connect_started.elapsed();
    // Give the node's allocator a moment to settle before reading its memory.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_connected = args.node.node_pid.and_then(common::resident_kib);

    // Send at the given rate; every message goes to every socket.
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let acked = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for i in 0..total {
        tick.tick().await;
        let (http, target, sent_at, acked) = (
            http.clone(),
            Arc::clone(&target),
            Arc::clone(&sent_at),
            Arc::clone(&acked),
        );
        tasks.push(tokio::spawn(async move {
            let wamid = format!("wamid.fanout.{i}");
            sent_at[i as usize].store(origin.elapsed().as_micros() as u64 + 1, Ordering::Release);
            if target
                .post_text(&http, &format!("55{:011}", i % 50), &wamid, "fan-out")
                .await
                == 200
            {
                acked.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    futures::future::join_all(tasks).await;
    let acked = acked.load(Ordering::Relaxed);
    let expected = acked * open as u64;
    let deadline = Instant::now() + Duration::from_secs(30);
    while received.load(Ordering::Relaxed) < expected
        && closed.load(Ordering::Relaxed) == 0
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Every socket has now written events (tungstenite keeps a write buffer the size of the largest
    // frame): memory per socket again, sockets still open.
    let rss_after_events = args.node.node_pid.and_then(common::resident_kib);
    let _ = stop_tx.send(true);
    let mut e2e = common::latency_histogram();
    let mut incomplete = 0usize;
    for reader in readers {
        if let Ok((latency, got)) = reader.await {
            let _ = e2e.add(&latency);
            if got < acked {
                incomplete += 1;
            }
        }
    }
    let per_socket = |after: Option<u64>| match (rss_before, after) {
        (Some(b), Some(a)) if open > 0 => Some((a.saturating_sub(b)) as f64 / open as f64),
        _ => None,
    };
    let per_socket_kib = per_socket(rss_connected);
    let per_socket_after_kib = per_socket(rss_after_events);
    let report = json!({
        "scenario": "fanout",
        "agents_requested": args.agents,
        "agents_subscribed": open,
        "failed_connects": failed_connects,
        "connect_seconds": connect_time.as_secs_f64(),
        "webhooks_acked": acked,
        "deliveries_expected": expected,
        "deliveries_received": received.load(Ordering::Relaxed),
        "duplicate_deliveries": duplicates.load(Ordering::Relaxed),
        "sockets_closed_by_node": closed.load(Ordering::Relaxed),
        "sockets_incomplete": incomplete,
        "end_to_end_latency": common::percentiles(&e2e),
        "node_rss_kib_before": rss_before,
        "node_rss_kib_connected": rss_connected,
        "node_kib_per_socket": per_socket_kib,
        "node_rss_kib_after_events": rss_after_events,
        "node_kib_per_socket_after_events": per_socket_after_kib,
    });
    let mut lines = vec![
        "scenario               fanout".to_string(),
        format!(
            "sockets                {open} subscribed of {} ({} failed) in {:.1}s",
            args.agents,
            failed_connects,
            connect_time.as_secs_f64()
        ),
        format!(
            "webhooks               {acked} acked at {}/s for {}s",
            args.rate, args.duration
        ),
        format!(
            "deliveries             {} of {} expected, {} duplicate, {} sockets closed by the node",
            report["deliveries_received"],
            expected,
            report["duplicate_deliveries"],
            report["sockets_closed_by_node"]
        ),
        common::latency_line("end-to-end (all)", &report["end_to_end_latency"]),
    ];
    if let Some(kib) = per_socket_kib {
        lines.push(format!(
            "node memory per socket {kib:.1} KiB (RSS delta / sockets)"
        ));
    }
    if let Some(kib) = per_socket_after_kib {
        lines.push(format!(
            "  after the events     {kib:.1} KiB (sockets still open, each has written every frame)"
        ));
    }
    common::finish(
        &report,
        &lines,
        args.node.out.as_deref(),
        "fanout-report.json",
    )
}
