//! `soak`: steady mixed load for a long time — inbound webhooks, agent replies through REST, and the
//! provider's `sent`/`delivered`/`read` statuses for every reply — while the node's memory is sampled.
//! Replies go to a fake Graph API that this generator serves itself (start the node with
//! `CONVERSA_WHATSAPP__GRAPH_BASE=http://<graph-listen>`); it answers like Meta and remembers each wamid
//! so the statuses can follow.

use crate::common::{self, NodeArgs};
use anyhow::{Context, bail};
use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(clap::Args, Clone, Debug)]
pub struct SoakArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    /// Inbound webhooks per second.
    #[arg(long, default_value_t = 100)]
    pub rate: u64,
    /// Agent replies per second (each followed by three status webhooks).
    #[arg(long, default_value_t = 10)]
    pub reply_rate: u64,
    /// Seconds to run.
    #[arg(long, default_value_t = 300)]
    pub duration: u64,
    /// Conversations the load is spread over.
    #[arg(long, default_value_t = 2000)]
    pub conversations: u64,
    /// Address of the fake Graph API this generator serves.
    #[arg(long, default_value = "127.0.0.1:18099")]
    pub graph_listen: String,
    /// Seconds between memory samples.
    #[arg(long, default_value_t = 5)]
    pub sample_every: u64,
}

/// wamids the fake Graph API handed out, waiting for their statuses: wamid → recipient.
type Accepted = Arc<Mutex<Vec<(String, String)>>>;

pub async fn run(args: SoakArgs) -> anyhow::Result<()> {
    if args.rate == 0 || args.duration == 0 || args.conversations == 0 {
        bail!("rate, duration and conversations must be positive");
    }
    let accepted: Accepted = Arc::default();
    let graph = axum::Router::new()
        .route(
            "/{version}/{phone_number_id}/messages",
            axum::routing::post(fake_send),
        )
        .with_state(Arc::clone(&accepted));
    let listener = tokio::net::TcpListener::bind(&args.graph_listen)
        .await
        .with_context(|| format!("binding the fake Graph API on {}", args.graph_listen))?;
    tokio::spawn(async move { axum::serve(listener, graph).await });

    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let target = Arc::new(common::provision(&http, &args.node).await?);
    let ack = Arc::new(Mutex::new(common::latency_histogram()));
    let reply_latency = Arc::new(Mutex::new(common::latency_histogram()));
    let outcomes: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
    let conversations: Arc<Mutex<Vec<String>>> = Arc::default();
    let statuses_sent = Arc::new(AtomicU64::new(0));
    let mut samples: Vec<(f64, Option<u64>)> = Vec::new();

    let started = Instant::now();
    let end = started + Duration::from_secs(args.duration);
    let mut inbound = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate as f64));
    inbound.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let reply_period = Duration::from_secs_f64(1.0 / args.reply_rate.max(1) as f64);
    let mut replies = tokio::time::interval(reply_period);
    let mut sample = tokio::time::interval(Duration::from_secs(args.sample_every.max(1)));
    let mut i = 0u64;
    while Instant::now() < end {
        tokio::select! {
            _ = inbound.tick() => {
                i += 1;
                let (http, target, ack, outcomes) = (http.clone(), Arc::clone(&target), Arc::clone(&ack), Arc::clone(&outcomes));
                let contact = format!("55{:011}", i % args.conversations);
                tokio::spawn(async move {
                    let start = Instant::now();
                    let status = target.post_text(&http, &contact, &format!("wamid.soak.{i}"), "soak").await;
                    if status == 200 { common::record(&mut ack.lock().expect("ack"), start.elapsed()); }
                    *outcomes.lock().expect("outcomes").entry(format!("webhook {status}")).or_default() += 1;
                });
            }
            _ = replies.tick(), if args.reply_rate > 0 => {
                let (client, agent_target, reply_latency, outcomes, conversations) = (http.clone(), Arc::clone(&target),
                    Arc::clone(&reply_latency), Arc::clone(&outcomes), Arc::clone(&conversations));
                let n = i;
                tokio::spawn(async move {
                    let (http, target) = (client, agent_target);
                    let id = {
                        let list = conversations.lock().expect("conversations");
                        if list.is_empty() { None } else { Some(list[(n as usize) % list.len()].clone()) }
                    };
                    let Some(id) = id else { return };
                    let start = Instant::now();
                    let result = http.post(format!("{}/api/v1/conversations/{id}/messages", target.node))
                        .bearer_auth(&target.agent_token)
                        .json(&json!({"text": format!("reply {n}")}))
                        .send().await;
                    let status = result.map(|r| r.status().as_u16()).unwrap_or(0);
                    if status == 202 { common::record(&mut reply_latency.lock().expect("reply"), start.elapsed()); }
                    *outcomes.lock().expect("outcomes").entry(format!("reply {status}")).or_default() += 1;
                });
                // The provider reports on what it accepted so far.
                let waiting: Vec<(String, String)> = std::mem::take(&mut *accepted.lock().expect("accepted"));
                for (wamid, recipient) in waiting {
                    let (http, target, statuses_sent) = (http.clone(), Arc::clone(&target), Arc::clone(&statuses_sent));
                    tokio::spawn(async move {
                        for status in ["sent", "delivered", "read"] {
                            if target.post_status(&http, &recipient, &wamid, status).await == 200 {
                                statuses_sent.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    });
                }
            }
            _ = sample.tick() => {
                samples.push((started.elapsed().as_secs_f64(), args.node.node_pid.and_then(common::resident_kib)));
                if let Ok(list) = inbox_ids(&http, &target.node, &target.agent_token).await {
                    *conversations.lock().expect("conversations") = list;
                }
            }
        }
    }
    samples.push((
        started.elapsed().as_secs_f64(),
        args.node.node_pid.and_then(common::resident_kib),
    ));
    let rss: Vec<u64> = samples.iter().filter_map(|(_, r)| *r).collect();
    let growth_per_min = match (rss.first(), rss.last()) {
        (Some(first), Some(last)) if args.duration > 0 => {
            Some((*last as f64 - *first as f64) / 1024.0 / (args.duration as f64 / 60.0))
        }
        _ => None,
    };
    let report = json!({
        "scenario": "soak",
        "duration_s": args.duration,
        "inbound_rate_per_s": args.rate,
        "reply_rate_per_s": args.reply_rate,
        "outcomes": *outcomes.lock().expect("outcomes"),
        "status_webhooks_acked": statuses_sent.load(Ordering::Relaxed),
        "webhook_ack_latency": common::percentiles(&ack.lock().expect("ack")),
        "reply_latency": common::percentiles(&reply_latency.lock().expect("reply")),
        "rss_samples": samples.iter().map(|(t, r)| json!({"t_s": t, "rss_kib": r})).collect::<Vec<_>>(),
        "rss_growth_mib_per_min": growth_per_min,
    });
    let mut lines = vec![
        "scenario               soak".to_string(),
        format!(
            "load                   {}/s webhooks, {}/s replies for {}s",
            args.rate, args.reply_rate, args.duration
        ),
        format!("outcomes               {}", report["outcomes"]),
        format!(
            "status webhooks        {} acked",
            report["status_webhooks_acked"]
        ),
        common::latency_line("webhook ack", &report["webhook_ack_latency"]),
        common::latency_line("reply (REST)", &report["reply_latency"]),
    ];
    if let (Some(first), Some(last), Some(max)) = (rss.first(), rss.last(), rss.iter().max()) {
        lines.push(format!(
            "node RSS               {:.1} → {:.1} MiB (max {:.1}), {:+.2} MiB/min",
            *first as f64 / 1024.0,
            *last as f64 / 1024.0,
            *max as f64 / 1024.0,
            growth_per_min.unwrap_or_default()
        ));
    }
    common::finish(
        &report,
        &lines,
        args.node.out.as_deref(),
        "soak-report.json",
    )
}

async fn fake_send(State(accepted): State<Accepted>, Json(body): Json<Value>) -> Json<Value> {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let wamid = format!("wamid.soakout.{}", NEXT.fetch_add(1, Ordering::Relaxed));
    let to = body["to"].as_str().unwrap_or_default().to_string();
    accepted
        .lock()
        .expect("accepted")
        .push((wamid.clone(), to.clone()));
    Json(
        json!({"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}], "messages": [{"id": wamid}]}),
    )
}

async fn inbox_ids(http: &reqwest::Client, node: &str, token: &str) -> anyhow::Result<Vec<String>> {
    let page: Value = http
        .get(format!("{node}/api/v1/conversations?limit=200"))
        .bearer_auth(token)
        .send()
        .await?
        .json()
        .await?;
    Ok(page["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["id"].as_str().map(str::to_string))
        .collect())
}
