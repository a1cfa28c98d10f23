//! `reconnect-storm`: agent sockets that keep dropping (abruptly, at random moments) and resuming by seq
//! while webhooks keep arriving. Every agent checks, per conversation, that the seqs it receives across
//! all its connections are exactly 1, 2, 3, … with no gap and no duplicate; at the end each agent
//! resumes once more and must hold every conversation's last seq as the store has it.

use crate::common::{self, NodeArgs, Target};
use anyhow::bail;
use futures::StreamExt;
use rand::Rng;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(clap::Args, Clone, Debug)]
pub struct ReconnectArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    /// Agent sockets that keep reconnecting.
    #[arg(long, default_value_t = 50)]
    pub agents: usize,
    /// Webhooks per second.
    #[arg(long, default_value_t = 100)]
    pub rate: u64,
    /// Seconds of sending.
    #[arg(long, default_value_t = 20)]
    pub duration: u64,
    /// Conversations the messages are spread over.
    #[arg(long, default_value_t = 200)]
    pub conversations: u64,
    /// Longest a connection lives before it is dropped, in milliseconds (uniform from a tenth of it).
    #[arg(long, default_value_t = 3000)]
    pub max_lifetime_ms: u64,
}

/// What one agent knows, carried across its connections.
#[derive(Default)]
struct AgentState {
    positions: HashMap<String, u64>,
    since: Option<Value>,
    gaps: u64,
    duplicates: u64,
    received: u64,
    replayed: u64,
    reconnects: u64,
    resume_failed: u64,
    final_resumes: u64,
    /// Told once, when the first connection is subscribed, so sending starts only after every agent
    /// listens (events before an agent's first subscribe are, by protocol, not its to receive).
    ready: Option<tokio::sync::mpsc::Sender<()>>,
}

impl AgentState {
    fn resume(&self) -> Option<Value> {
        self.since
            .as_ref()
            .map(|since| json!({"since": since, "positions": self.positions}))
    }

    fn on_event(&mut self, frame: &Value) {
        let conversation = frame["conversation_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let seq = frame["seq"].as_u64().unwrap_or_default();
        let last = self.positions.get(&conversation).copied().unwrap_or(0);
        if seq <= last {
            self.duplicates += 1;
            return;
        }
        if seq != last + 1 {
            self.gaps += 1;
        }
        self.received += 1;
        self.positions.insert(conversation, seq);
        self.since = Some(frame["at"].clone());
    }
}

/// One connection: subscribe (resuming), read until `until` or until the node closes it.
async fn connect_once(
    target: &Target,
    state: &mut AgentState,
    until: Instant,
) -> anyhow::Result<()> {
    let mut socket = target.agent_socket(state.resume()).await?;
    let mut replaying = true;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        let Ok(next) = tokio::time::timeout(left, socket.next()).await else {
            return Ok(());
        };
        let Some(Ok(message)) = next else {
            return Ok(());
        };
        let Some(frame) = common::frame_json(&message) else {
            continue;
        };
        match frame["type"].as_str() {
            Some("event") => {
                if replaying {
                    state.replayed += 1;
                }
                state.on_event(&frame);
            }
            Some("subscribed") => {
                replaying = false;
                if let Some(ready) = state.ready.take() {
                    let _ = ready.send(()).await;
                }
            }
            Some("resume_failed") => state.resume_failed += 1,
            _ => {}
        }
    }
    // Dropping the socket here closes the TCP connection without a close handshake.
}

pub async fn run(args: ReconnectArgs) -> anyhow::Result<()> {
    if args.agents == 0 || args.rate == 0 || args.duration == 0 || args.conversations == 0 {
        bail!("agents, rate, duration and conversations must be positive");
    }
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    let target = Arc::new(common::provision(&http, &args.node).await?);
    let sending = Arc::new(AtomicBool::new(true));
    let max_lifetime = args.max_lifetime_ms.max(10);

    let mut agents = Vec::with_capacity(args.agents);
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(args.agents);
    let (truth_tx, truth_rx) =
        tokio::sync::watch::channel::<Option<Arc<HashMap<String, u64>>>>(None);
    for _ in 0..args.agents {
        let (target, sending) = (Arc::clone(&target), Arc::clone(&sending));
        let ready = Some(ready_tx.clone());
        let mut truth_rx = truth_rx.clone();
        agents.push(tokio::spawn(async move {
            let mut state = AgentState {
                ready,
                ..AgentState::default()
            };
            while sending.load(Ordering::Relaxed) {
                let lifetime = rand::rng().random_range(max_lifetime / 10..=max_lifetime);
                let _ = connect_once(
                    &target,
                    &mut state,
                    Instant::now() + Duration::from_millis(lifetime),
                )
                .await;
                state.reconnects += 1;
            }
            // Sending is over and every webhook was answered: resume until this agent holds every
            // conversation's stored last seq (all agents at once), for at most 60 s.
            let truth = loop {
                if let Some(truth) = truth_rx.borrow_and_update().clone() {
                    break truth;
                }
                if truth_rx.changed().await.is_err() {
                    return state;
                }
            };
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline
                && !truth
                    .iter()
                    .all(|(c, last)| state.positions.get(c) == Some(last))
            {
                let until = Instant::now() + Duration::from_secs(2);
                let _ = connect_once(&target, &mut state, until).await;
                state.final_resumes += 1;
            }
            state
        }));
    }

    drop(ready_tx);
    for _ in 0..args.agents {
        if tokio::time::timeout(Duration::from_secs(30), ready_rx.recv())
            .await
            .is_err()
        {
            bail!("agents did not all subscribe within 30 s");
        }
    }

    let total = args.rate * args.duration;
    let acked = Arc::new(AtomicU64::new(0));
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::new();
    for i in 0..total {
        tick.tick().await;
        let (http, target, acked) = (http.clone(), Arc::clone(&target), Arc::clone(&acked));
        let contact = format!("55{:011}", i % args.conversations);
        tasks.push(tokio::spawn(async move {
            if target
                .post_text(&http, &contact, &format!("wamid.storm.{i}"), "storm")
                .await
                == 200
            {
                acked.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    futures::future::join_all(tasks).await;
    sending.store(false, Ordering::Relaxed);

    // The truth: every conversation's last seq, from the store through REST.
    let truth = Arc::new(last_seqs(&http, &target).await?);
    let _ = truth_tx.send(Some(Arc::clone(&truth)));
    let mut totals = AgentState::default();
    let mut caught_up = 0usize;
    for agent in agents {
        let state = agent.await?;
        if truth
            .iter()
            .all(|(c, last)| state.positions.get(c) == Some(last))
        {
            caught_up += 1;
        }
        totals.gaps += state.gaps;
        totals.duplicates += state.duplicates;
        totals.received += state.received;
        totals.replayed += state.replayed;
        totals.reconnects += state.reconnects;
        totals.resume_failed += state.resume_failed;
        totals.final_resumes += state.final_resumes;
    }
    let report = json!({
        "scenario": "reconnect-storm",
        "agents": args.agents,
        "webhooks_acked": acked.load(Ordering::Relaxed),
        "conversations": truth.len(),
        "reconnects": totals.reconnects,
        "events_received": totals.received,
        "events_replayed_on_resume": totals.replayed,
        "gaps": totals.gaps,
        "duplicates": totals.duplicates,
        "resume_failed": totals.resume_failed,
        "agents_caught_up": caught_up,
        "final_resumes": totals.final_resumes,
    });
    let lines = vec![
        "scenario               reconnect-storm".to_string(),
        format!(
            "agents                 {} ({} reconnects in all)",
            args.agents, totals.reconnects
        ),
        format!(
            "webhooks               {} acked over {} conversations",
            report["webhooks_acked"],
            truth.len()
        ),
        format!(
            "events                 {} received, {} of them replayed on resume",
            totals.received, totals.replayed
        ),
        format!(
            "gaps / duplicates      {} / {}",
            totals.gaps, totals.duplicates
        ),
        format!("resume_failed          {}", totals.resume_failed),
        format!(
            "agents caught up       {caught_up} of {} (hold every conversation's stored last seq; {} resumes after sending stopped)",
            args.agents, totals.final_resumes
        ),
    ];
    common::finish(
        &report,
        &lines,
        args.node.out.as_deref(),
        "reconnect-storm-report.json",
    )
}

async fn last_seqs(
    http: &reqwest::Client,
    target: &Target,
) -> anyhow::Result<HashMap<String, u64>> {
    let mut truth = HashMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{}/api/v1/conversations?limit=200", target.node);
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: Value = http
            .get(url)
            .bearer_auth(&target.agent_token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        for conversation in page["items"].as_array().into_iter().flatten() {
            if let (Some(id), Some(seq)) = (
                conversation["id"].as_str(),
                conversation["last_seq"].as_u64(),
            ) {
                truth.insert(id.to_string(), seq);
            }
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return Ok(truth),
        }
    }
}
