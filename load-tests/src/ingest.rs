//! `ingest`: signed WhatsApp webhooks at a fixed rate (open loop: the schedule never waits for answers)
//! over N conversations, one agent socket subscribed. Measures webhook ack latency (sent → 200 = durable),
//! end-to-end latency (sent → `message.created` on the agent socket), throughput, HTTP outcomes, events
//! not received / duplicated / out of seq order, and the node's resident memory.

use crate::common::{self, NodeArgs};
use anyhow::bail;
use futures::StreamExt;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(clap::Args, Clone, Debug)]
pub struct IngestArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    /// Webhooks per second.
    #[arg(long, default_value_t = 200)]
    pub rate: u64,
    /// Seconds of sending.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Distinct contacts (conversations) the messages are spread over.
    #[arg(long, default_value_t = 1000)]
    pub conversations: u64,
    /// Send a webhook again after a 503 or a transport error, up to this many times (1 s, 2 s, 4 s …
    /// later), as the providers do; 0 counts a refusal as final.
    #[arg(long, default_value_t = 0)]
    pub resend: u32,
}

/// What the agent socket observed.
#[derive(Default)]
struct Observed {
    seen: HashSet<String>,
    duplicates: u64,
    seq_gaps: u64,
    last_seq: HashMap<String, u64>,
    closed_with: Option<u16>,
}

pub async fn run(args: IngestArgs) -> anyhow::Result<()> {
    if args.rate == 0 || args.duration == 0 || args.conversations == 0 {
        bail!("rate, duration and conversations must be positive");
    }
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(512)
        .build()?;
    let target = Arc::new(common::provision(&http, &args.node).await?);
    let rss_before = args.node.node_pid.and_then(common::resident_kib);
    let sent_at: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let e2e = Arc::new(Mutex::new(common::latency_histogram()));
    let observed: Arc<Mutex<Observed>> = Arc::default();

    let mut socket = target.agent_socket(None).await?;
    let reader = {
        let (sent_at, e2e, observed) = (
            Arc::clone(&sent_at),
            Arc::clone(&e2e),
            Arc::clone(&observed),
        );
        tokio::spawn(async move {
            while let Some(Ok(message)) = socket.next().await {
                if let tokio_tungstenite::tungstenite::Message::Close(frame) = &message {
                    observed.lock().expect("observed").closed_with =
                        frame.as_ref().map(|f| u16::from(f.code));
                    break;
                }
                let Some(frame) = common::frame_head(&message) else {
                    continue;
                };
                if frame.kind != "event" {
                    continue;
                }
                let conversation = frame
                    .conversation_id
                    .as_deref()
                    .unwrap_or_default()
                    .to_string();
                let seq = frame.seq.unwrap_or_default();
                let mut obs = observed.lock().expect("observed");
                let last = obs.last_seq.insert(conversation, seq).unwrap_or(0);
                if seq != last + 1 {
                    obs.seq_gaps += 1;
                }
                let Some(wamid) = frame.created_wamid() else {
                    continue;
                };
                if !obs.seen.insert(wamid.to_string()) {
                    obs.duplicates += 1;
                    continue;
                }
                if let Some(at) = sent_at.lock().expect("sent").get(wamid) {
                    common::record(&mut e2e.lock().expect("e2e"), at.elapsed());
                }
            }
        })
    };

    let total = args.rate * args.duration;
    let sent = common::open_loop(
        &http,
        args.rate,
        total,
        args.resend,
        Arc::clone(&sent_at),
        |i| common::Outgoing {
            target: Arc::clone(&target),
            contact: format!("55{:011}", i % args.conversations),
            wamid: format!("wamid.load.{i}"),
            text: format!("load message {i}"),
        },
    )
    .await;
    let common::OpenLoop {
        ack,
        statuses,
        acked,
        resends,
        send_window,
    } = sent;

    // Let the socket catch up (bounded), then compare.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let acked_n = acked.len();
        let settled = {
            let obs = observed.lock().expect("observed");
            obs.seen.len() >= acked_n || obs.closed_with.is_some()
        };
        if settled || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    reader.abort();
    let obs = observed.lock().expect("observed");
    let not_received = acked.iter().filter(|w| !obs.seen.contains(*w)).count();
    let rss_after = args.node.node_pid.and_then(common::resident_kib);
    let per_conversation = match (rss_before, rss_after) {
        (Some(b), Some(a)) => Some(a.saturating_sub(b) as f64 / args.conversations as f64),
        _ => None,
    };
    let report = json!({
        "scenario": "ingest",
        "target_rate_per_s": args.rate,
        "duration_s": args.duration,
        "conversations": args.conversations,
        "sent": total,
        "send_window_s": send_window.as_secs_f64(),
        "acked_per_s": acked.len() as f64 / send_window.as_secs_f64(),
        "http_outcomes": statuses,
        "resends": resends,
        "ack_latency": common::percentiles(&ack),
        "end_to_end_latency": common::percentiles(&e2e.lock().expect("e2e")),
        "not_received_events": not_received,
        "agent_socket_closed_with": obs.closed_with,
        "duplicate_events": obs.duplicates,
        "seq_gaps": obs.seq_gaps,
        "node_rss_kib_before": rss_before,
        "node_rss_kib_after": rss_after,
        // An upper bound: the delta also holds the store's memtables and cache, not only actors.
        "node_kib_per_conversation_upper_bound": per_conversation,
    });
    let mut lines = vec![
        "scenario               ingest".to_string(),
        format!(
            "target rate            {}/s for {}s over {} conversations",
            args.rate, args.duration, args.conversations
        ),
        format!(
            "acked throughput       {:.1}/s",
            report["acked_per_s"].as_f64().unwrap_or_default()
        ),
        format!(
            "http outcomes          {} (last answer of each; {resends} resends)",
            report["http_outcomes"]
        ),
        common::latency_line("ack latency", &report["ack_latency"]),
        common::latency_line("end-to-end", &report["end_to_end_latency"]),
        format!(
            "not recv / dup / gaps  {} / {} / {}",
            not_received, obs.duplicates, obs.seq_gaps
        ),
    ];
    if let Some(code) = obs.closed_with {
        lines.push(format!(
            "agent socket           closed by the node with {code} (4008 = slow consumer; later events stay durable and resumable)"
        ));
    }
    if let Some(kib) = per_conversation {
        lines.push(format!("per live conversation  ≤ {kib:.1} KiB (RSS delta / conversations; includes store memory)"));
    }
    if let (Some(before), Some(after)) = (rss_before, rss_after) {
        lines.push(format!(
            "node RSS               {:.1} → {:.1} MiB",
            before as f64 / 1024.0,
            after as f64 / 1024.0
        ));
    }
    common::finish(
        &report,
        &lines,
        args.node.out.as_deref(),
        "ingest-report.json",
    )
}
