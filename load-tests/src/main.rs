//! Conversa's load generator: drives a running node over the network the way production does and prints
//! what it measured (a table on stdout, the same figures as JSON). It never asserts a timing.
//!
//! Scenario built so far:
//! - `ingest`: signed WhatsApp webhooks at a fixed rate (open loop: the send schedule does not slow down
//!   when the node does) over N conversations, with one agent socket subscribed; measures webhook ack
//!   latency, end-to-end latency webhook sent → `message.created` received by the agent, throughput,
//!   HTTP errors, lost and duplicated events and seq gaps, and optionally the node's resident memory.
//!
//! `fanout`, `soak` and `reconnect-storm` are not built yet (see `load-tests/README.md`).

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message as WsMessage;

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
    Ingest(IngestArgs),
}

#[derive(Parser, Clone)]
struct IngestArgs {
    /// Base URL of the node.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    node: String,
    /// The node's admin token (to provision a tenant for the run).
    #[arg(long, env = "CONVERSA_GATEWAY__ADMIN_TOKEN")]
    admin_token: String,
    /// Webhooks per second.
    #[arg(long, default_value_t = 200)]
    rate: u64,
    /// Seconds of sending.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Distinct contacts (conversations) the messages are spread over.
    #[arg(long, default_value_t = 1000)]
    conversations: u64,
    /// PID of the node, to report its resident memory (same machine only).
    #[arg(long)]
    node_pid: Option<u32>,
    /// Where to write the JSON report.
    #[arg(long, default_value = "ingest-report.json")]
    out: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().scenario {
        Scenario::Ingest(args) => ingest(args).await,
    }
}

struct Target {
    connection_id: String,
    phone_number_id: String,
    app_secret: String,
    agent_token: String,
}

async fn provision(http: &reqwest::Client, args: &IngestArgs) -> anyhow::Result<Target> {
    let admin = |path: String, body: Value| {
        http.post(format!("{}{path}", args.node))
            .bearer_auth(&args.admin_token)
            .json(&body)
            .send()
    };
    let run = uuid::Uuid::new_v4().simple().to_string();
    let tenant: Value = admin(
        "/api/v1/admin/tenants".into(),
        json!({"name": format!("load-{run}")}),
    )
    .await?
    .error_for_status()?
    .json()
    .await?;
    let tenant_id = tenant["id"].as_str().context("tenant id")?;
    let phone_number_id = format!("load-{run}");
    let app_secret = format!("secret-{run}");
    let connection: Value = admin(
        format!("/api/v1/admin/tenants/{tenant_id}/connections"),
        json!({"name": "load", "phone_number_id": phone_number_id, "verify_token": "v",
               "app_secret": app_secret, "access_token": "unused"}),
    )
    .await?
    .error_for_status()?
    .json()
    .await?;
    let agent: Value = admin(
        format!("/api/v1/admin/tenants/{tenant_id}/agents"),
        json!({"name": "load agent"}),
    )
    .await?
    .error_for_status()?
    .json()
    .await?;
    Ok(Target {
        connection_id: connection["connection_id"]
            .as_str()
            .context("connection id")?
            .to_string(),
        phone_number_id,
        app_secret,
        agent_token: agent["token"].as_str().context("agent token")?.to_string(),
    })
}

/// What the agent socket observed.
#[derive(Default)]
struct Observed {
    seen: HashSet<String>,
    duplicates: u64,
    seq_gaps: u64,
    last_seq: HashMap<String, u64>,
    /// Close code if the node closed the agent socket (4008 = slow consumer).
    closed_with: Option<u16>,
}

async fn ingest(args: IngestArgs) -> anyhow::Result<()> {
    if args.rate == 0 || args.duration == 0 {
        bail!("rate and duration must be positive");
    }
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(512)
        .build()?;
    let target = Arc::new(provision(&http, &args).await?);
    let sent_at: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let e2e = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(
        1, 60_000_000, 3,
    )?));
    let observed: Arc<Mutex<Observed>> = Arc::default();

    // The agent: subscribe, then record every message.created.
    let ws_url = format!(
        "{}/api/v1/ws?token={}",
        args.node.replacen("http", "ws", 1),
        target.agent_token
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(ws_url)
        .await
        .context("agent socket")?;
    socket
        .send(WsMessage::Text(
            json!({"type": "subscribe"}).to_string().into(),
        ))
        .await?;
    let reader = {
        let (sent_at, e2e, observed) = (
            Arc::clone(&sent_at),
            Arc::clone(&e2e),
            Arc::clone(&observed),
        );
        tokio::spawn(async move {
            while let Some(Ok(message)) = socket.next().await {
                let WsMessage::Text(text) = message else {
                    continue;
                };
                let Ok(frame) = serde_json::from_str::<Value>(text.as_str()) else {
                    continue;
                };
                if frame["type"] != "event" {
                    continue;
                }
                let conversation = frame["conversation_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let seq = frame["seq"].as_u64().unwrap_or_default();
                let mut obs = observed.lock().expect("observed");
                let last = obs.last_seq.insert(conversation, seq).unwrap_or(0);
                if seq != last + 1 {
                    obs.seq_gaps += 1;
                }
                if frame["event"] != "message.created" {
                    continue;
                }
                let Some(wamid) = frame["data"]["message"]["provider_message_id"].as_str() else {
                    continue;
                };
                if !obs.seen.insert(wamid.to_string()) {
                    obs.duplicates += 1;
                    continue;
                }
                if let Some(at) = sent_at.lock().expect("sent").get(wamid) {
                    let _ = e2e
                        .lock()
                        .expect("e2e")
                        .record(at.elapsed().as_micros() as u64);
                }
            }
        })
    };

    // Open-loop sender.
    let ack = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(
        1, 60_000_000, 3,
    )?));
    let statuses: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let total = args.rate * args.duration;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        tick.tick().await;
        let (http, target) = (http.clone(), Arc::clone(&target));
        let (sent_at, ack, statuses, acked) = (
            Arc::clone(&sent_at),
            Arc::clone(&ack),
            Arc::clone(&statuses),
            Arc::clone(&acked),
        );
        let node = args.node.clone();
        let contact = format!("55{:011}", i % args.conversations);
        tasks.push(tokio::spawn(async move {
            let wamid = format!("wamid.load.{i}");
            let body = webhook(&target.phone_number_id, &contact, &wamid, i);
            let signature = sign(&target.app_secret, &body);
            let start = Instant::now();
            sent_at.lock().expect("sent").insert(wamid.clone(), start);
            let result = http
                .post(format!("{node}/webhooks/whatsapp/{}", target.connection_id))
                .header("content-type", "application/json")
                .header("x-hub-signature-256", signature)
                .body(body)
                .send()
                .await;
            let label = match result {
                Ok(r) if r.status().is_success() => {
                    let _ = ack
                        .lock()
                        .expect("ack")
                        .record(start.elapsed().as_micros() as u64);
                    acked.lock().expect("acked").push(wamid);
                    "200".to_string()
                }
                Ok(r) => r.status().as_u16().to_string(),
                Err(_) => "transport_error".to_string(),
            };
            *statuses.lock().expect("statuses").entry(label).or_default() += 1;
        }));
    }
    let send_window = started.elapsed();
    futures::future::join_all(tasks).await;

    // Let the socket catch up (bounded), then compare.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let acked_n = acked.lock().expect("acked").len();
        let seen_n = observed.lock().expect("observed").seen.len();
        if seen_n >= acked_n || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    reader.abort();
    let acked = acked.lock().expect("acked").clone();
    let obs = observed.lock().expect("observed");
    let lost = acked.iter().filter(|w| !obs.seen.contains(*w)).count();
    let rss_kib = args.node_pid.and_then(resident_kib);
    let percentiles = |h: &Histogram<u64>| {
        json!({"count": h.len(), "p50_ms": ms(h.value_at_quantile(0.50)), "p90_ms": ms(h.value_at_quantile(0.90)),
               "p99_ms": ms(h.value_at_quantile(0.99)), "p999_ms": ms(h.value_at_quantile(0.999)), "max_ms": ms(h.max())})
    };
    let report = json!({
        "scenario": "ingest",
        "target_rate_per_s": args.rate,
        "duration_s": args.duration,
        "conversations": args.conversations,
        "sent": total,
        "send_window_s": send_window.as_secs_f64(),
        "acked_per_s": acked.len() as f64 / send_window.as_secs_f64(),
        "http_outcomes": *statuses.lock().expect("statuses"),
        "ack_latency": percentiles(&ack.lock().expect("ack")),
        "end_to_end_latency": percentiles(&e2e.lock().expect("e2e")),
        "not_received_events": lost,
        "agent_socket_closed_with": obs.closed_with,
        "duplicate_events": obs.duplicates,
        "seq_gaps": obs.seq_gaps,
        "node_rss_kib": rss_kib,
    });
    print_table(&report);
    std::fs::write(&args.out, serde_json::to_vec_pretty(&report)?)?;
    println!("report written to {}", args.out);
    Ok(())
}

fn webhook(phone_number_id: &str, contact: &str, wamid: &str, i: u64) -> Vec<u8> {
    let payload = json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{"field": "messages",
        "value": {"messaging_product": "whatsapp", "metadata": {"display_phone_number": "0", "phone_number_id": phone_number_id},
          "contacts": [{"profile": {"name": "Load"}, "wa_id": contact}],
          "messages": [{"from": contact, "id": wamid, "timestamp": "1763900000", "type": "text", "text": {"body": format!("load message {i}")}}]}}]}]});
    serde_json::to_vec(&payload).unwrap_or_default()
}

fn sign(secret: &str, body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

fn resident_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

fn print_table(report: &Value) {
    println!("scenario           ingest");
    println!(
        "target rate        {}/s for {}s over {} conversations",
        report["target_rate_per_s"], report["duration_s"], report["conversations"]
    );
    println!(
        "acked throughput   {:.1}/s",
        report["acked_per_s"].as_f64().unwrap_or_default()
    );
    println!("http outcomes      {}", report["http_outcomes"]);
    for (name, key) in [
        ("ack latency", "ack_latency"),
        ("end-to-end", "end_to_end_latency"),
    ] {
        let h = &report[key];
        println!(
            "{name:<18} p50 {} ms  p90 {} ms  p99 {} ms  p99.9 {} ms  max {} ms  (n={})",
            h["p50_ms"], h["p90_ms"], h["p99_ms"], h["p999_ms"], h["max_ms"], h["count"]
        );
    }
    println!(
        "not recv/dup/gaps  {} / {} / {}",
        report["not_received_events"], report["duplicate_events"], report["seq_gaps"]
    );
    if let Some(code) = report["agent_socket_closed_with"].as_u64() {
        println!(
            "agent socket       closed by the node with code {code} (4008 = slow consumer; later events stay durable and resumable)"
        );
    }
    if let Some(rss) = report["node_rss_kib"].as_u64() {
        println!("node RSS           {:.1} MiB", rss as f64 / 1024.0);
    }
}
