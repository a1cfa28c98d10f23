//! Shared end-to-end test support: starts the real `conversa` binary on a free port with a temporary
//! data directory, provisions tenants through the admin API, signs webhooks the way Meta does, connects
//! agents with tokio-tungstenite, and runs a fake Graph API (the only part that is not ours).
//! Readiness is awaited by reading the node's `listening` line and polling, never by fixed sleeps.

#![allow(dead_code)]

pub mod browser;
pub mod fake_graph;
pub mod fake_wweb;
pub mod faulty_store;
pub mod sessions;
pub mod smtp_sink;
pub mod whatsapp;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const ADMIN_TOKEN: &str = "test-admin-token";
/// Upper bound for anything a test waits for; generous because CI machines are slow, never a sleep.
pub const WAIT: Duration = Duration::from_secs(20);

/// A running node process.
pub struct Node {
    child: Child,
    pub addr: String,
    pub data_dir: PathBuf,
    graph_base: Option<String>,
    extra_env: Vec<(String, String)>,
    temp: Option<std::sync::Arc<tempfile::TempDir>>,
}

impl Node {
    /// A node on a fresh data directory.
    pub async fn start() -> Node {
        Self::start_with(None, Vec::new()).await
    }

    /// A node whose WhatsApp client talks to `graph_base`, with extra environment.
    pub async fn start_with(graph_base: Option<String>, extra_env: Vec<(String, String)>) -> Node {
        let temp = std::sync::Arc::new(tempfile::tempdir().expect("temp dir"));
        let data_dir = temp.path().join("data");
        let mut node = Self::spawn(&data_dir, graph_base, extra_env).await;
        node.temp = Some(temp);
        node
    }

    async fn spawn(
        data_dir: &Path,
        graph_base: Option<String>,
        extra_env: Vec<(String, String)>,
    ) -> Node {
        let mut command = Command::new(env!("CARGO_BIN_EXE_conversa"));
        command
            .args([
                "serve",
                "--json",
                "--http-addr",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(data_dir)
            .env("CONVERSA_GATEWAY__ADMIN_TOKEN", ADMIN_TOKEN)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        if let Some(base) = &graph_base {
            command.env("CONVERSA_WHATSAPP__GRAPH_BASE", base);
        }
        for (key, value) in &extra_env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("spawn conversa");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let addr = tokio::time::timeout(WAIT, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(value) = serde_json::from_str::<Value>(&line)
                    && value["event"] == "listening"
                {
                    return value["addr"].as_str().map(str::to_string);
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .expect("node printed its listening address");
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let node = Node {
            child,
            addr,
            data_dir: data_dir.to_path_buf(),
            graph_base,
            extra_env,
            temp: None,
        };
        node.wait_ready().await;
        node
    }

    async fn wait_ready(&self) {
        let client = reqwest::Client::new();
        let url = self.url("/readyz");
        eventually("the node became ready", || async {
            client
                .get(&url)
                .send()
                .await
                .ok()
                .filter(|r| r.status().is_success())
                .map(|_| ())
        })
        .await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// SIGKILL: no graceful shutdown, no flush.
    pub async fn kill9(&mut self) {
        self.child.start_kill().expect("kill");
        let _ = self.child.wait().await;
    }

    /// SIGSTOP (`true`) or SIGCONT (`false`): the process freezes with everything it holds, as under a
    /// long GC pause or a VM migration, and later runs on as if no time had passed.
    pub fn pause(&self, paused: bool) {
        let pid = self.child.id().expect("pid");
        let signal = if paused { "-STOP" } else { "-CONT" };
        let status = std::process::Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {signal} {pid}");
    }

    /// SIGTERM, waiting for a clean exit; returns whether it exited successfully.
    pub async fn terminate(&mut self) -> bool {
        let pid = self.child.id().expect("pid") as i32;
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        matches!(tokio::time::timeout(WAIT, self.child.wait()).await, Ok(Ok(status)) if status.success())
    }

    /// Starts a new process on the same data directory (after `kill9` or `terminate`).
    pub async fn restart(self) -> Node {
        let temp = self.temp.clone();
        let mut next = Self::spawn(
            &self.data_dir,
            self.graph_base.clone(),
            self.extra_env.clone(),
        )
        .await;
        next.temp = temp;
        drop(self);
        next
    }
}

/// Polls `probe` until it yields a value, for at most `WAIT`: the one readiness wait the end-to-end
/// tests share (a condition the node reaches on its own, checked every few milliseconds; never a fixed
/// pause that assumes how long something takes).
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    const EVERY: Duration = Duration::from_millis(20);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting: {what}"
        );
        tokio::time::sleep(EVERY).await;
    }
}

/// The sum of a metric over all its label sets, read from `/metrics`.
pub async fn metric(node: &Node, name: &str) -> f64 {
    let text = reqwest::get(node.url("/metrics"))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A provisioned tenant: one WhatsApp number and one agent.
#[derive(Clone, Debug)]
pub struct Tenant {
    pub tenant_id: String,
    pub connection_id: String,
    pub phone_number_id: String,
    pub app_secret: String,
    pub verify_token: String,
    pub agent_token: String,
}

/// Creates a tenant, a WhatsApp connection and an agent through the admin API.
pub async fn provision(node: &Node, name: &str) -> Tenant {
    let client = reqwest::Client::new();
    let admin = |path: &str, body: Value| {
        client
            .post(node.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
    };
    let tenant: Value = admin("/api/v1/admin/tenants", json!({"name": name}))
        .await
        .expect("create tenant")
        .json()
        .await
        .expect("tenant json");
    let tenant_id = tenant["id"].as_str().expect("tenant id").to_string();
    let phone_number_id = format!("pn-{}", uuid_like());
    let app_secret = format!("secret-{}", uuid_like());
    let connection: Value = admin(
        &format!("/api/v1/admin/tenants/{tenant_id}/connections"),
        json!({"name": "main", "phone_number_id": phone_number_id, "verify_token": "verify-me",
               "app_secret": app_secret, "access_token": format!("token-{name}")}),
    )
    .await
    .expect("create connection")
    .json()
    .await
    .expect("connection json");
    let agent: Value = admin(
        &format!("/api/v1/admin/tenants/{tenant_id}/agents"),
        json!({"name": "agent"}),
    )
    .await
    .expect("create agent")
    .json()
    .await
    .expect("agent json");
    Tenant {
        tenant_id,
        connection_id: connection["connection_id"]
            .as_str()
            .expect("connection id")
            .to_string(),
        phone_number_id,
        app_secret,
        verify_token: "verify-me".into(),
        agent_token: agent["token"].as_str().expect("token").to_string(),
    }
}

/// Creates another user of the tenant with `role` (`agent`, `supervisor`, `admin`, …); returns its
/// id and token.
pub async fn add_agent(node: &Node, tenant: &Tenant, name: &str, role: &str) -> (String, String) {
    let created: Value = reqwest::Client::new()
        .post(node.url(&format!(
            "/api/v1/admin/tenants/{}/agents",
            tenant.tenant_id
        )))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"name": name, "role": role}))
        .send()
        .await
        .expect("create agent")
        .json()
        .await
        .expect("agent json");
    (
        created["agent_id"].as_str().expect("agent id").to_string(),
        created["token"].as_str().expect("token").to_string(),
    )
}

/// Adds a second WhatsApp connection to `tenant`; returns a copy of it aimed at the new number.
pub async fn add_connection(node: &Node, tenant: &Tenant) -> Tenant {
    let phone_number_id = format!("pn-{}", uuid_like());
    let app_secret = format!("secret-{}", uuid_like());
    let connection: Value = reqwest::Client::new()
        .post(node.url(&format!("/api/v1/admin/tenants/{}/connections", tenant.tenant_id)))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"name": "second", "phone_number_id": phone_number_id, "verify_token": "verify-me",
                      "app_secret": app_secret, "access_token": "token-second"}))
        .send()
        .await
        .expect("create connection")
        .json()
        .await
        .expect("connection json");
    Tenant {
        connection_id: connection["connection_id"]
            .as_str()
            .expect("connection id")
            .to_string(),
        phone_number_id,
        app_secret,
        ..tenant.clone()
    }
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// GET with the agent's token; returns status and JSON body.
pub async fn api_get(node: &Node, token: &str, path: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .get(node.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("GET");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// POST JSON with the agent's token; returns status and JSON body.
pub async fn api_post(node: &Node, token: &str, path: &str, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(node.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("POST");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A request with the agent's token and an optional JSON body; returns status and JSON body.
pub async fn api_request(
    node: &Node,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut builder = reqwest::Client::new()
        .request(method, node.url(path))
        .bearer_auth(token);
    if let Some(body) = body {
        builder = builder.json(&body);
    }
    let response = builder.send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The contact `from` writes `text` to the tenant's WhatsApp number (message id `wamid`); the
/// webhook must be answered 200.
pub async fn customer_writes(node: &Node, tenant: &Tenant, from: &str, wamid: &str, text: &str) {
    let payload = whatsapp::webhook(
        &tenant.phone_number_id,
        vec![whatsapp::text(from, wamid, text)],
        vec![],
    );
    let (status, body) = whatsapp::post(node, tenant, &payload).await;
    assert_eq!(status, 200, "{body}");
}

/// Every message of a conversation, oldest first (follows pagination).
pub async fn all_messages(node: &Node, token: &str, conversation: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after = 0u64;
    loop {
        let (status, page) = api_get(
            node,
            token,
            &format!("/api/v1/conversations/{conversation}/messages?after={after}&limit=200"),
        )
        .await;
        assert_eq!(status, 200, "history: {page}");
        let items = page["items"].as_array().cloned().unwrap_or_default();
        if let Some(last) = items.last() {
            after = last["seq"].as_u64().expect("seq");
        }
        let done = page["next_cursor"].is_null();
        out.extend(items);
        if done {
            return out;
        }
    }
}

/// Every conversation in the agent's inbox (follows pagination).
pub async fn all_conversations(node: &Node, token: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/conversations?limit=50&cursor={c}"),
            None => "/api/v1/conversations?limit=50".to_string(),
        };
        let (status, page) = api_get(node, token, &path).await;
        assert_eq!(status, 200, "inbox: {page}");
        out.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return out,
        }
    }
}

/// An agent's WebSocket.
pub struct Agent {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Agent {
    /// Connects, waits for `ready`, subscribes (optionally resuming) and waits for `subscribed`;
    /// returns the socket and the events replayed before `subscribed`.
    pub async fn connect(node: &Node, token: &str, resume: Option<Value>) -> (Agent, Vec<Value>) {
        let url = format!("ws://{}/api/v1/ws?token={token}", node.addr);
        let (socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("ws connect");
        let mut agent = Agent { socket };
        let ready = agent.next_frame().await.expect("ready frame");
        assert_eq!(ready["type"], "ready", "first frame: {ready}");
        let mut subscribe = json!({"type": "subscribe"});
        if let Some(resume) = resume {
            subscribe["resume"] = resume;
        }
        agent.send(subscribe).await;
        let mut replayed = Vec::new();
        loop {
            let frame = agent.next_frame().await.expect("frame before subscribed");
            match frame["type"].as_str() {
                Some("event") => replayed.push(frame),
                Some("subscribed") => return (agent, replayed),
                _ => panic!("unexpected frame while subscribing: {frame}"),
            }
        }
    }

    /// Wraps an already connected socket (for tests that drive the handshake themselves).
    pub fn from_socket(socket: WebSocketStream<MaybeTlsStream<TcpStream>>) -> Agent {
        Agent { socket }
    }

    pub async fn send(&mut self, frame: Value) {
        self.socket
            .send(WsMessage::Text(frame.to_string().into()))
            .await
            .expect("ws send");
    }

    /// The next text frame as JSON, or `None` if the socket closed or nothing came within `WAIT`.
    pub async fn next_frame(&mut self) -> Option<Value> {
        loop {
            let message = tokio::time::timeout(WAIT, self.socket.next())
                .await
                .ok()??
                .ok()?;
            match message {
                WsMessage::Text(text) => return serde_json::from_str(text.as_str()).ok(),
                WsMessage::Close(_) => return None,
                _ => continue,
            }
        }
    }

    /// Collects event frames until `done` says the list is complete.
    pub async fn events_until(&mut self, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let mut events = Vec::new();
        while !done(&events) {
            let frame = self
                .next_frame()
                .await
                .unwrap_or_else(|| panic!("socket ended; got {events:?}"));
            if frame["type"] == "event" {
                events.push(frame);
            }
        }
        events
    }

    /// Whether any frame arrives within `window` (used to show that nothing leaks to this agent;
    /// a bounded wait for absence, not a timing assertion).
    /// Pings and pongs are not frames of the protocol and do not count.
    pub async fn receives_nothing_within(&mut self, window: Duration) -> bool {
        tokio::time::timeout(window, async {
            while let Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) = self.socket.next().await {
            }
        })
        .await
        .is_err()
    }

    /// The raw socket, for tests that read frames themselves.
    pub fn into_inner(self) -> WebSocketStream<MaybeTlsStream<TcpStream>> {
        self.socket
    }

    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}

/// `conversa_*` names appearing in a text (PromQL inside YAML or JSON).
pub fn referenced_series(text: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(pos) = text[i..].find("conversa_") {
        let start = i + pos;
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        let before_ok =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        if before_ok {
            names.insert(text[start..end].to_string());
        }
        i = end;
    }
    names
}

/// Series a node exports only in cluster mode (leases, forwards, the bus between nodes).
pub fn only_in_cluster_mode(name: &str) -> bool {
    name.starts_with("conversa_cluster_") || name.starts_with("conversa_bus_remote_")
}
