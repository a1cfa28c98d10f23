//! Every byte that crosses Conversa's network edge.
//!
//! ```text
//! providers/whatsapp_cloud/   Meta's Cloud API, both directions: webhook signature + parsing (inbound),
//!                             the send-API client that implements `schema::channel::ChannelClient`
//! http/webhooks.rs            POST/GET /webhooks/whatsapp/{connection_id} → Router (Command::Ingest)
//! http/conversations.rs       /api/v1/conversations… (agent bearer token, tenant-scoped)
//! http/admin.rs               /api/v1/admin/… (admin token): tenants, connections, agents
//! http/ops.rs                 /metrics, /healthz, /readyz
//! ws/                         /api/v1/ws: the agent WebSocket (live events, resume by seq)
//! cluster.rs                  node-to-node RPC: forwarded commands in (cluster secret), the forwarder out
//! server.rs                   the HTTP/1.1 listener: connection limit, header timeout, bounded drain
//! auth.rs, error.rs           bearer tokens; the JSON error body every route answers with
//! fuzzing.rs                  raw-bytes entry points for the fuzz targets in gateway/fuzz/
//! ```
//!
//! **Architecture Invariant:** the gateway writes conversations only through the command port
//! (`schema::command::Commands`, implemented by `actors::Router`, which reaches the owning actor on
//! whichever node holds it); it reads
//! through the `Store` port for queries and never knows which backend is behind it.
//!
//! **Architecture Invariant:** an error on one request or socket never stops the listener: handlers
//! return typed errors, and nothing that came from the network is `unwrap`ped.

pub mod audit;
pub mod auth;
pub mod cache;
pub mod cluster;
pub mod error;
pub mod fuzzing;
pub mod http;
pub mod mail;
pub mod permissions;
pub mod providers;
pub mod server;
pub mod sign_in;
pub mod tenancy;
pub mod ws;

use actors::{Directory, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use schema::bus::EventBus;
use schema::channel::ChannelClient;
use schema::command::Commands;
use schema::store::Store;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Limits and switches of the edge.
#[derive(Clone)]
pub struct GatewayConfig {
    /// Token for `/api/v1/admin`; the admin API answers 404 when unset.
    pub admin_token: Option<String>,
    /// Largest webhook body accepted, in bytes. Meta documents POSTs of up to 3 MB (1,000 updates).
    pub webhook_body_limit: usize,
    /// Largest REST request body.
    pub api_body_limit: usize,
    /// Largest media file streamed to an agent (WhatsApp allows documents up to 100 MB).
    pub media_max_bytes: u64,
    /// Webhook requests processed at once; more get 503 and the provider retries.
    pub max_inflight_webhooks: usize,
    /// Frames queued per agent socket before it counts as a slow consumer and is closed.
    pub ws_send_queue: usize,
    /// Most events one resume replays before answering `resume_failed`.
    pub ws_max_replay: usize,
    /// How long a socket may stay open without subscribing.
    pub ws_subscribe_timeout: Duration,
    /// How often an open socket checks that its token still works.
    pub ws_credential_check: Duration,
    /// How often the node pings an agent socket (a WebSocket ping, answered by the browser itself):
    /// it keeps proxies' and NATs' idle timers from cutting a quiet socket, and a socket that sends
    /// nothing, not even a pong, for two of these is closed as gone.
    pub ws_ping_interval: Duration,
    /// Longest a client may take to send a whole request body (after its head).
    pub body_read_timeout: Duration,
    /// Longest one frame may take to reach an agent's socket before it counts as a slow consumer.
    pub ws_write_timeout: Duration,
    /// Bytes of webhook bodies the node buffers at once before they are authenticated.
    pub webhook_body_budget: usize,
    /// How often metered usage is flushed to the store and read back for plan limits.
    pub usage_refresh: Duration,
    /// The platform's SMTP account, for tenants without their own.
    pub smtp: Option<schema::mail::SmtpAccount>,
    /// Where people reach the console: the base of links sent by email.
    pub public_url: String,
}

impl std::fmt::Debug for GatewayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayConfig")
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "<redacted>"),
            )
            .field("webhook_body_limit", &self.webhook_body_limit)
            .field("api_body_limit", &self.api_body_limit)
            .field("media_max_bytes", &self.media_max_bytes)
            .field("max_inflight_webhooks", &self.max_inflight_webhooks)
            .field("ws_send_queue", &self.ws_send_queue)
            .field("ws_max_replay", &self.ws_max_replay)
            .field("ws_subscribe_timeout", &self.ws_subscribe_timeout)
            .field("ws_credential_check", &self.ws_credential_check)
            .field("ws_ping_interval", &self.ws_ping_interval)
            .field("smtp", &self.smtp.as_ref().map(|s| s.host.as_str()))
            .field("public_url", &self.public_url)
            .field("body_read_timeout", &self.body_read_timeout)
            .field("ws_write_timeout", &self.ws_write_timeout)
            .field("webhook_body_budget", &self.webhook_body_budget)
            .finish()
    }
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            admin_token: None,
            webhook_body_limit: 3 * 1024 * 1024,
            api_body_limit: 64 * 1024,
            media_max_bytes: 100 * 1024 * 1024,
            max_inflight_webhooks: 512,
            ws_send_queue: 1024,
            ws_max_replay: 10_000,
            ws_subscribe_timeout: Duration::from_secs(30),
            ws_credential_check: Duration::from_secs(60),
            ws_ping_interval: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(15),
            ws_write_timeout: Duration::from_secs(10),
            webhook_body_budget: 256 * 1024 * 1024,
            usage_refresh: Duration::from_secs(5),
            smtp: None,
            public_url: "http://localhost:8080".into(),
        }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The command port: this node's actors, or the owner of the entity's shard.
    pub commands: Arc<dyn Commands>,
    /// Provider calls that are not sends (mark as read, media download).
    pub channel: Arc<dyn ChannelClient>,
    /// This node's actors, for operations only (live counts, shards served).
    pub directory: Arc<Directory>,
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn EventBus>,
    pub metrics: PrometheusHandle,
    pub config: Arc<GatewayConfig>,
    pub webhook_permits: Arc<Semaphore>,
    /// Bytes of unauthenticated webhook bodies the node may buffer (see `error::read_body_budgeted`).
    pub webhook_body_budget: Arc<Semaphore>,
    /// Cancelled when the node starts shutting down: sockets close with 1001.
    pub shutdown: CancellationToken,
    /// The agents connected to this node, and their presence.
    pub presence: Arc<ws::presence::PresenceRegistry>,
    /// Password hashing permits and the failed sign-in throttle.
    pub sign_in: Arc<sign_in::SignIn>,
    /// Each tenant's permissions per role, kept for a few seconds.
    pub permissions: Arc<permissions::PermissionCache>,
    /// Each tenant's account, plan, flags and monthly usage, kept for a few seconds.
    pub tenancy: Arc<tenancy::Tenancy>,
    /// The QR codes session providers last gave, one request to a provider at a time.
    pub pairing: Arc<http::pairing::PairingCodes>,
    /// The connections webhooks name, decrypted, for a second (`http::webhooks::WEBHOOK_CONNECTION_TTL`).
    pub webhook_connections:
        Arc<cache::ReadCache<schema::ConnectionId, schema::records::Connection>>,
}

impl AppState {
    /// Runs a command on a connection's session wherever its owner is (restart after a change, start
    /// the reconnect loop). Best effort: the change itself is already stored; a session that cannot be
    /// reached now loads it when it next starts (its owner lost the shard, or stops serving it soon).
    pub async fn session_command(&self, command: schema::command::Command) {
        let kind = command.kind();
        if let Err(error) = self
            .commands
            .execute(command, std::time::Instant::now())
            .await
        {
            tracing::warn!(command = kind, %error, "session command not delivered");
        }
    }

    pub fn new(
        router: Arc<Router>,
        bus: Arc<dyn EventBus>,
        metrics: PrometheusHandle,
        config: GatewayConfig,
        shutdown: CancellationToken,
    ) -> Self {
        let directory = Arc::clone(router.directory());
        let presence = Arc::new(ws::presence::PresenceRegistry::default());
        presence.spawn_renewal(Arc::clone(&directory.services().store), shutdown.clone());
        let tenancy = Arc::new(tenancy::Tenancy::new(config.usage_refresh));
        Self {
            store: Arc::clone(&directory.services().store),
            channel: Arc::clone(&directory.services().channel),
            commands: router,
            directory,
            bus,
            metrics,
            webhook_permits: Arc::new(Semaphore::new(config.max_inflight_webhooks.max(1))),
            webhook_body_budget: Arc::new(Semaphore::new(
                config
                    .webhook_body_budget
                    .clamp(config.webhook_body_limit.max(1), Semaphore::MAX_PERMITS),
            )),
            config: Arc::new(config),
            presence,
            sign_in: Arc::new(sign_in::SignIn::default()),
            permissions: Arc::new(permissions::PermissionCache::default()),
            pairing: Arc::default(),
            webhook_connections: Arc::new(cache::ReadCache::new(
                http::webhooks::WEBHOOK_CONNECTION_TTL,
            )),
            tenancy,
            shutdown,
        }
    }
}
