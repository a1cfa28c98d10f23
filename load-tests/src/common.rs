//! What every scenario shares: provisioning a tenant through the admin API, building and signing
//! WhatsApp webhooks in Meta's documented shape, agent sockets, latency summaries, the node's memory,
//! and printing/writing the report.

use anyhow::Context;
use hdrhistogram::Histogram;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Flags every scenario takes.
#[derive(clap::Args, Clone, Debug)]
pub struct NodeArgs {
    /// Base URL of the node.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub node: String,
    /// The node's admin token (to provision a tenant for the run).
    #[arg(long, env = "CONVERSA_GATEWAY__ADMIN_TOKEN")]
    pub admin_token: String,
    /// PID of the node, to report its resident memory (same machine only).
    #[arg(long)]
    pub node_pid: Option<u32>,
    /// Where to write the JSON report.
    #[arg(long)]
    pub out: Option<String>,
}

/// A tenant provisioned for one run.
pub struct Target {
    pub node: String,
    pub connection_id: String,
    pub phone_number_id: String,
    pub app_secret: String,
    pub agent_token: String,
}

/// Creates a tenant, one WhatsApp connection and one agent.
pub async fn provision(http: &reqwest::Client, args: &NodeArgs) -> anyhow::Result<Target> {
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
               "app_secret": app_secret, "access_token": "load-token"}),
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
        node: args.node.clone(),
        connection_id: connection["connection_id"]
            .as_str()
            .context("connection id")?
            .to_string(),
        phone_number_id,
        app_secret,
        agent_token: agent["token"].as_str().context("agent token")?.to_string(),
    })
}

impl Target {
    /// Posts one signed text-message webhook; returns the HTTP status (0 on transport error).
    pub async fn post_text(
        &self,
        http: &reqwest::Client,
        contact: &str,
        wamid: &str,
        body: &str,
    ) -> u16 {
        let message = json!({"from": contact, "id": wamid, "timestamp": unix_now(), "type": "text",
                             "text": {"body": body}});
        self.post(
            http,
            json!({"contacts": [{"profile": {"name": "Load"}, "wa_id": contact}],
                               "messages": [message]}),
        )
        .await
    }

    /// Posts one signed status webhook.
    pub async fn post_status(
        &self,
        http: &reqwest::Client,
        recipient: &str,
        wamid: &str,
        status: &str,
    ) -> u16 {
        let status = json!({"id": wamid, "status": status, "timestamp": unix_now(), "recipient_id": recipient});
        self.post(http, json!({"statuses": [status]})).await
    }

    async fn post(&self, http: &reqwest::Client, mut value: Value) -> u16 {
        value["messaging_product"] = json!("whatsapp");
        value["metadata"] =
            json!({"display_phone_number": "0", "phone_number_id": self.phone_number_id});
        let payload = json!({"object": "whatsapp_business_account",
            "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": value}]}]});
        let body = serde_json::to_vec(&payload).unwrap_or_default();
        let result = http
            .post(format!(
                "{}/webhooks/whatsapp/{}",
                self.node, self.connection_id
            ))
            .header("content-type", "application/json")
            .header("x-hub-signature-256", sign(&self.app_secret, &body))
            .body(body)
            .send()
            .await;
        result.map(|r| r.status().as_u16()).unwrap_or(0)
    }

    /// Opens an agent socket (TCP_NODELAY) and sends `subscribe` with an optional resume.
    pub async fn agent_socket(&self, resume: Option<Value>) -> anyhow::Result<AgentSocket> {
        use futures::SinkExt;
        let url = format!(
            "{}/api/v1/ws?token={}",
            self.node.replacen("http", "ws", 1),
            self.agent_token
        );
        // tungstenite zeroes its whole read buffer's spare room on every read (128 KiB by default):
        // with many sockets on the same cores as the node, that memset would be the generator's
        // largest cost. Frames here are a few KiB.
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .read_buffer_size(16 * 1024);
        let (mut socket, _) =
            tokio_tungstenite::connect_async_with_config(url, Some(config), true).await?;
        let mut subscribe = json!({"type": "subscribe"});
        if let Some(resume) = resume {
            subscribe["resume"] = resume;
        }
        socket
            .send(tokio_tungstenite::tungstenite::Message::Text(
                subscribe.to_string().into(),
            ))
            .await?;
        Ok(socket)
    }
}

pub type AgentSocket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Unix seconds now, as Meta writes timestamps (replies need a message inside the 24-hour window).
fn unix_now() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
        .to_string()
}

/// `X-Hub-Signature-256` of a body.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A latency histogram in microseconds, 1 µs to 60 s, 3 significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3)
        .unwrap_or_else(|_| Histogram::new(3).expect("histogram"))
}

/// Records a duration into a microsecond histogram (saturating at its bound).
pub fn record(histogram: &mut Histogram<u64>, elapsed: Duration) {
    histogram.saturating_record(elapsed.as_micros().min(u128::from(u64::MAX)) as u64);
}

/// p50/p90/p99/p99.9/max in milliseconds.
pub fn percentiles(h: &Histogram<u64>) -> Value {
    let ms = |micros: u64| micros as f64 / 1000.0;
    json!({"count": h.len(), "p50_ms": ms(h.value_at_quantile(0.50)), "p90_ms": ms(h.value_at_quantile(0.90)),
           "p99_ms": ms(h.value_at_quantile(0.99)), "p999_ms": ms(h.value_at_quantile(0.999)), "max_ms": ms(h.max())})
}

/// One line of a latency summary.
pub fn latency_line(name: &str, h: &Value) -> String {
    format!(
        "{name:<22} p50 {} ms  p90 {} ms  p99 {} ms  p99.9 {} ms  max {} ms  (n={})",
        h["p50_ms"], h["p90_ms"], h["p99_ms"], h["p999_ms"], h["max_ms"], h["count"]
    )
}

/// Resident memory of a process in KiB, from /proc.
pub fn resident_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// Prints the table lines and writes the JSON report.
pub fn finish(
    report: &Value,
    lines: &[String],
    out: Option<&str>,
    default_out: &str,
) -> anyhow::Result<()> {
    for line in lines {
        println!("{line}");
    }
    let path = out.unwrap_or(default_out);
    std::fs::write(path, serde_json::to_vec_pretty(report)?)?;
    println!("report written to {path}");
    Ok(())
}

/// The text of a WebSocket frame as JSON, if it is one.
/// The fields of a server frame the latency scenarios read, parsed without building a JSON tree: the
/// generator shares the cores with the node, and a `Value` per frame at 100 sockets would measure the
/// generator more than the node.
#[derive(serde::Deserialize)]
pub struct FrameHead<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    pub event: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    pub seq: Option<u64>,
    #[serde(default, borrow)]
    pub conversation_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    pub data: Option<FrameData<'a>>,
}

#[derive(serde::Deserialize)]
pub struct FrameData<'a> {
    #[serde(default, borrow)]
    pub message: Option<FrameMessage<'a>>,
}

#[derive(serde::Deserialize)]
pub struct FrameMessage<'a> {
    #[serde(default, borrow)]
    pub provider_message_id: Option<std::borrow::Cow<'a, str>>,
}

impl FrameHead<'_> {
    /// The provider id of a `message.created` event's message.
    pub fn created_wamid(&self) -> Option<&str> {
        if self.kind != "event" || self.event.as_deref() != Some("message.created") {
            return None;
        }
        self.data
            .as_ref()?
            .message
            .as_ref()?
            .provider_message_id
            .as_deref()
    }
}

/// A text frame's head (`None` for other frames or bodies that are not a frame).
pub fn frame_head(message: &tokio_tungstenite::tungstenite::Message) -> Option<FrameHead<'_>> {
    match message {
        tokio_tungstenite::tungstenite::Message::Text(text) => {
            serde_json::from_str(text.as_str()).ok()
        }
        _ => None,
    }
}

pub fn frame_json(message: &tokio_tungstenite::tungstenite::Message) -> Option<Value> {
    match message {
        tokio_tungstenite::tungstenite::Message::Text(text) => {
            serde_json::from_str(text.as_str()).ok()
        }
        _ => None,
    }
}

/// What an open-loop run of webhooks produced.
pub struct OpenLoop {
    /// Sent → 200 (durable) latency of the acknowledged webhooks.
    pub ack: Histogram<u64>,
    /// HTTP status (or `transport_error`) → count: each webhook's last answer.
    pub statuses: std::collections::HashMap<String, u64>,
    /// Webhooks sent again after a 503 or a transport error (each resend counted).
    pub resends: u64,
    /// Provider ids of the acknowledged messages.
    pub acked: Vec<String>,
    /// How long the schedule took to send everything (answers may still have been arriving).
    pub send_window: Duration,
}

/// One webhook of an open-loop run: where it goes, from which contact, its provider id and text.
pub struct Outgoing {
    pub target: std::sync::Arc<Target>,
    pub contact: String,
    pub wamid: String,
    pub text: String,
}

/// Sends `total` text webhooks at `rate` per second on a fixed schedule that never waits for answers
/// (open loop), the `i`-th built by `message(i)`; records each send's start in `sent_at` (for
/// end-to-end latency) and waits for every answer before returning.
/// Sends `total` webhooks at `rate` per second, never waiting for answers. With `resend` above 0, a
/// webhook answered 503 ("nothing was done, retry") or lost in transport is sent again, as the
/// providers do, up to `resend` times, 1 s after the first refusal and twice as long after each
/// next; its ack latency then runs from its first send.
pub async fn open_loop(
    http: &reqwest::Client,
    rate: u64,
    total: u64,
    resend: u32,
    sent_at: std::sync::Arc<
        std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>,
    >,
    message: impl Fn(u64) -> Outgoing,
) -> OpenLoop {
    use std::sync::{Arc, Mutex};
    let ack = Arc::new(Mutex::new(latency_histogram()));
    let statuses: Arc<Mutex<std::collections::HashMap<String, u64>>> = Arc::default();
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let resends = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(1) as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = std::time::Instant::now();
    let mut tasks = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    for i in 0..total {
        tick.tick().await;
        let Outgoing {
            target,
            contact,
            wamid,
            text,
        } = message(i);
        let (http, sent_at, ack, statuses, acked, resends) = (
            http.clone(),
            Arc::clone(&sent_at),
            Arc::clone(&ack),
            Arc::clone(&statuses),
            Arc::clone(&acked),
            Arc::clone(&resends),
        );
        tasks.push(tokio::spawn(async move {
            let start = std::time::Instant::now();
            sent_at.lock().expect("sent").insert(wamid.clone(), start);
            let mut status = target.post_text(&http, &contact, &wamid, &text).await;
            let mut wait = Duration::from_secs(1);
            for _ in 0..resend {
                if status != 503 && status != 0 {
                    break;
                }
                tokio::time::sleep(wait).await;
                wait *= 2;
                resends.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                status = target.post_text(&http, &contact, &wamid, &text).await;
            }
            if status == 200 {
                record(&mut ack.lock().expect("ack"), start.elapsed());
                acked.lock().expect("acked").push(wamid);
            }
            let label = if status == 0 {
                "transport_error".to_string()
            } else {
                status.to_string()
            };
            *statuses.lock().expect("statuses").entry(label).or_default() += 1;
        }));
    }
    let send_window = started.elapsed();
    futures::future::join_all(tasks).await;
    OpenLoop {
        ack: ack.lock().expect("ack").clone(),
        statuses: std::mem::take(&mut *statuses.lock().expect("statuses")),
        acked: std::mem::take(&mut *acked.lock().expect("acked")),
        resends: resends.load(std::sync::atomic::Ordering::Relaxed),
        send_window,
    }
}
