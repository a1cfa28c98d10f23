//! Node configuration: defaults for one machine, overridden by a TOML file, then by `CONVERSA_*`
//! environment variables (`__` separates sections: `CONVERSA_HTTP__ADDR`,
//! `CONVERSA_STORAGE__EMBEDDED__DATA_DIR`, `CONVERSA_GATEWAY__ADMIN_TOKEN`), then by command-line flags.

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::Path;

mod cluster;
mod storage;
pub use cluster::ClusterConfig;
pub use storage::{
    EmbeddedConfig, MigrateOnStart, PostgresConfig, ScyllaConfig, StorageBackend, StorageConfig,
};

/// The whole configuration.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub http: HttpConfig,
    pub storage: StorageConfig,
    pub actors: ActorsConfig,
    pub gateway: GatewaySection,
    pub whatsapp: WhatsappConfig,
    pub instagram: InstagramConfig,
    pub evolution: EvolutionConfig,
    pub zapi: ZapiConfig,
    pub security: SecurityConfig,
    pub redis: RedisConfig,
    pub cluster: ClusterConfig,
    pub log: LogConfig,
    /// The platform's SMTP account (tenants may set their own); unset: no email is sent.
    pub smtp: SmtpSection,
    /// Longest a graceful shutdown may take before actors are killed.
    pub shutdown_deadline_secs: u64,
    /// Events buffered per tenant topic for each subscriber before it counts as lagging.
    pub bus_capacity: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            http: HttpConfig::default(),
            storage: StorageConfig::default(),
            actors: ActorsConfig::default(),
            gateway: GatewaySection::default(),
            whatsapp: WhatsappConfig::default(),
            instagram: InstagramConfig::default(),
            evolution: EvolutionConfig::default(),
            zapi: ZapiConfig::default(),
            security: SecurityConfig::default(),
            redis: RedisConfig::default(),
            cluster: ClusterConfig::default(),
            log: LogConfig::default(),
            smtp: SmtpSection::default(),
            shutdown_deadline_secs: 20,
            bus_capacity: 4096,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    pub addr: SocketAddr,
    /// Open HTTP connections at once, agent sockets included. Unset: what the open-file limit leaves
    /// (see `open_files`); a number above that is lowered at start, with a warning.
    pub max_connections: Option<usize>,
    /// Longest a client may take to send a request head (slow clients are cut, never waited on).
    pub header_read_timeout_secs: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        let d = gateway::server::ServerLimits::default();
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_connections: None,
            header_read_timeout_secs: d.header_read_timeout.as_secs(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ActorsConfig {
    pub idle_timeout_secs: u64,
    pub idle_check_interval_secs: u64,
    pub call_timeout_secs: u64,
    /// Longest one conversation turn may take, ambiguous-commit retries included; at most 25 s so it
    /// stays under the 30 s resume clock margin.
    pub turn_deadline_ms: u64,
    pub max_delivery_attempts: u32,
    pub max_actor_requests: usize,
    pub max_queued_sends: usize,
    pub max_live_conversations: usize,
    pub session_concurrency: usize,
    pub outbound_rate_per_second: u32,
    pub session_rate_per_second: u32,
    pub outbound_max_attempts: u32,
    pub outbound_retry_min_ms: u64,
    pub outbound_retry_max_ms: u64,
    pub session_reconnect_min_ms: u64,
    pub session_reconnect_max_ms: u64,
}

impl Default for ActorsConfig {
    fn default() -> Self {
        let d = actors::ActorConfig::default();
        Self {
            idle_timeout_secs: d.idle_timeout.as_secs(),
            idle_check_interval_secs: d.idle_check_interval.as_secs(),
            call_timeout_secs: d.call_timeout.as_secs(),
            turn_deadline_ms: d.turn_deadline.as_millis() as u64,
            max_delivery_attempts: d.max_delivery_attempts,
            max_actor_requests: d.max_actor_requests,
            max_queued_sends: d.max_queued_sends,
            max_live_conversations: d.max_live_conversations,
            session_concurrency: d.session_concurrency,
            outbound_rate_per_second: d.outbound_rate_per_second,
            session_rate_per_second: d.session_rate_per_second,
            outbound_max_attempts: d.outbound_max_attempts,
            outbound_retry_min_ms: d.outbound_retry_min.as_millis() as u64,
            outbound_retry_max_ms: d.outbound_retry_max.as_millis() as u64,
            session_reconnect_min_ms: d.reconnect_min.as_millis() as u64,
            session_reconnect_max_ms: d.reconnect_max.as_millis() as u64,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewaySection {
    /// Enables `/api/v1/admin`; keep it secret.
    pub admin_token: Option<String>,
    pub webhook_body_limit: usize,
    pub api_body_limit: usize,
    pub media_max_bytes: u64,
    pub max_inflight_webhooks: usize,
    pub ws_send_queue: usize,
    pub ws_max_replay: usize,
    pub ws_subscribe_timeout_secs: u64,
    /// How often an open agent socket checks that its token still works (expiry, revocation).
    pub ws_credential_check_secs: u64,
    /// How often an agent socket is pinged; one silent for two of these is closed as gone.
    pub ws_ping_interval_secs: u64,
    /// Longest a client may take to send a request body.
    pub body_read_timeout_secs: u64,
    /// Bytes of webhook bodies buffered at once before they are authenticated.
    pub webhook_body_budget: usize,
    /// Longest one frame may take to reach an agent's socket before the agent is cut as a slow
    /// consumer (close code 4008).
    pub ws_write_timeout_secs: u64,
    /// How often each node stores what it metered (new conversations and messages per tenant and
    /// month) and the gateway reads usage back for monthly plan limits.
    pub usage_refresh_ms: u64,
    /// Where people reach the console: the base of links sent by email.
    pub public_url: String,
}

impl Default for GatewaySection {
    fn default() -> Self {
        let d = gateway::GatewayConfig::default();
        Self {
            admin_token: None,
            webhook_body_limit: d.webhook_body_limit,
            api_body_limit: d.api_body_limit,
            media_max_bytes: d.media_max_bytes,
            max_inflight_webhooks: d.max_inflight_webhooks,
            ws_send_queue: d.ws_send_queue,
            ws_max_replay: d.ws_max_replay,
            ws_subscribe_timeout_secs: d.ws_subscribe_timeout.as_secs(),
            ws_credential_check_secs: d.ws_credential_check.as_secs(),
            ws_ping_interval_secs: d.ws_ping_interval.as_secs(),
            body_read_timeout_secs: d.body_read_timeout.as_secs(),
            webhook_body_budget: d.webhook_body_budget,
            ws_write_timeout_secs: d.ws_write_timeout.as_secs(),
            usage_refresh_ms: d.usage_refresh.as_millis() as u64,
            public_url: d.public_url,
        }
    }
}

/// `[smtp]`: the platform's SMTP account.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpSection {
    /// Unset: the platform sends no email (tenants may still set their own account).
    pub host: Option<String>,
    /// 587 (STARTTLS) when unset.
    pub port: Option<u16>,
    /// `start_tls` (default), `tls` or `none` (a relay on the same network only).
    pub security: schema::mail::SmtpSecurity,
    pub username: Option<String>,
    pub password: Option<String>,
    pub from_email: String,
    pub from_name: Option<String>,
}

impl std::fmt::Debug for SmtpSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSection")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("from_email", &self.from_email)
            .finish()
    }
}

impl SmtpSection {
    /// The account, when a host is set.
    pub fn account(&self) -> Option<schema::mail::SmtpAccount> {
        let host = self.host.clone().filter(|h| !h.is_empty())?;
        Some(schema::mail::SmtpAccount {
            host,
            port: self.port.unwrap_or(587),
            security: self.security,
            username: self.username.clone(),
            password: self.password.clone(),
            from_email: self.from_email.clone(),
            from_name: self.from_name.clone(),
        })
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WhatsappConfig {
    /// Base URL of the Graph API (tests aim it at a local fake).
    pub graph_base: String,
    pub api_version: String,
    pub timeout_secs: u64,
}

impl Default for WhatsappConfig {
    fn default() -> Self {
        let d = gateway::providers::graph::GraphConfig::default();
        Self {
            graph_base: d.graph_base,
            api_version: d.api_version,
            timeout_secs: d.timeout.as_secs(),
        }
    }
}

/// The bus between nodes. Unset `url`: events reach this node's sockets only (one node).
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://host:port` (may carry a password: never logged).
    pub url: Option<String>,
    /// Entries kept per tenant stream (approximately).
    pub stream_max_len: usize,
    /// Entries a node keeps while Redis is unreachable before giving the oldest up (as a gap, which
    /// makes the affected agents resume from the store).
    pub backlog_max: usize,
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &self.url.as_ref().map(|_| "<redacted>"))
            .field("stream_max_len", &self.stream_max_len)
            .field("backlog_max", &self.backlog_max)
            .finish()
    }
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: None,
            stream_max_len: 100_000,
            backlog_max: 100_000,
        }
    }
}

/// Instagram connections without a Facebook Page (Instagram Login) send through their own Graph host;
/// version and timeout are `whatsapp`'s.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InstagramConfig {
    /// Base URL of the Instagram Graph API (tests aim it at a local fake).
    pub graph_base: String,
}

impl Default for InstagramConfig {
    fn default() -> Self {
        Self {
            graph_base: gateway::providers::graph::GraphConfig::default().instagram_base,
        }
    }
}

/// Evolution API: each connection names its own server, so only the client's timeout is here.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvolutionConfig {
    pub timeout_secs: u64,
}

impl Default for EvolutionConfig {
    fn default() -> Self {
        Self { timeout_secs: 15 }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ZapiConfig {
    /// Base URL of the Z-API REST API (tests aim it at a local fake).
    pub api_base: String,
    /// Domains Z-API serves media files from: the only https hosts the media endpoint fetches.
    pub media_hosts: Vec<String>,
    pub timeout_secs: u64,
}

impl Default for ZapiConfig {
    fn default() -> Self {
        Self {
            api_base: "https://api.z-api.io".into(),
            media_hosts: vec!["z-api.io".into()],
            timeout_secs: 15,
        }
    }
}

#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecurityConfig {
    /// Base64 of the 32-byte AES-256-GCM key that seals provider secrets at rest
    /// (`CONVERSA_SECURITY__SECRET_KEY`). Unset: a key is created in `<data_dir>/secret.key`.
    pub secret_key: Option<String>,
}

impl std::fmt::Debug for SecurityConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let key = if self.secret_key.is_some() {
            "<set>"
        } else {
            "<unset>"
        };
        f.debug_struct("SecurityConfig")
            .field("secret_key", &key)
            .finish()
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    /// `tracing` filter, e.g. `info,conversa=debug`; `RUST_LOG` wins when set.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            filter: "info,lsm_tree=warn,fjall=warn,ractor=warn".into(),
        }
    }
}

impl Config {
    /// Defaults ← `file` (if given) ← `CONVERSA_*` environment.
    pub fn load(file: Option<&Path>) -> Result<Self, Box<figment::Error>> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        figment
            .merge(
                Env::prefixed(ENV_PREFIX)
                    .filter(|key| is_config_key(&key.as_str().to_ascii_lowercase()))
                    .split("__"),
            )
            .extract()
            .map_err(Box::new)
    }

    /// `CONVERSA_*` variables of the environment that name no configuration key (a script's own
    /// variable, a typo): the node ignores them, and says so once logging runs.
    pub fn ignored_env() -> Vec<String> {
        std::env::vars_os()
            .filter_map(|(key, _)| key.into_string().ok())
            .filter(|key| {
                key.strip_prefix(ENV_PREFIX)
                    .is_some_and(|rest| !is_config_key(&rest.to_ascii_lowercase()))
            })
            .filter(|key| !NOT_CONFIG_BUT_OURS.contains(&key.as_str()))
            .collect()
    }

    pub fn actor_config(&self) -> actors::ActorConfig {
        let a = &self.actors;
        actors::ActorConfig {
            idle_timeout: secs(a.idle_timeout_secs),
            idle_check_interval: secs(a.idle_check_interval_secs.max(1)),
            call_timeout: secs(a.call_timeout_secs.max(1)),
            turn_deadline: std::time::Duration::from_millis(
                a.turn_deadline_ms
                    .clamp(1, MAX_TURN_DEADLINE.as_millis() as u64),
            ),
            max_delivery_attempts: a.max_delivery_attempts.max(1),
            max_actor_requests: a.max_actor_requests.max(1),
            max_queued_sends: a.max_queued_sends.max(1),
            max_live_conversations: a.max_live_conversations.max(1),
            session_concurrency: a.session_concurrency.max(1),
            outbound_rate_per_second: a.outbound_rate_per_second.max(1),
            session_rate_per_second: a.session_rate_per_second.max(1),
            outbound_max_attempts: a.outbound_max_attempts.max(1),
            outbound_retry_min: std::time::Duration::from_millis(a.outbound_retry_min_ms.max(1)),
            outbound_retry_max: std::time::Duration::from_millis(
                a.outbound_retry_max_ms.max(a.outbound_retry_min_ms).max(1),
            ),
            reconnect_min: std::time::Duration::from_millis(a.session_reconnect_min_ms.max(1)),
            reconnect_max: std::time::Duration::from_millis(
                a.session_reconnect_max_ms
                    .max(a.session_reconnect_min_ms)
                    .max(1),
            ),
        }
    }

    pub fn gateway_config(&self) -> gateway::GatewayConfig {
        let g = &self.gateway;
        gateway::GatewayConfig {
            admin_token: g.admin_token.clone().filter(|t| !t.is_empty()),
            webhook_body_limit: g.webhook_body_limit,
            api_body_limit: g.api_body_limit,
            media_max_bytes: g.media_max_bytes,
            max_inflight_webhooks: g.max_inflight_webhooks,
            ws_send_queue: g.ws_send_queue,
            ws_max_replay: g.ws_max_replay,
            ws_subscribe_timeout: secs(g.ws_subscribe_timeout_secs.max(1)),
            ws_credential_check: secs(g.ws_credential_check_secs.max(1)),
            ws_ping_interval: secs(g.ws_ping_interval_secs.max(1)),
            body_read_timeout: secs(g.body_read_timeout_secs.max(1)),
            webhook_body_budget: g.webhook_body_budget,
            ws_write_timeout: secs(g.ws_write_timeout_secs.max(1)),
            usage_refresh: std::time::Duration::from_millis(g.usage_refresh_ms.max(10)),
            smtp: self.smtp.account(),
            public_url: g.public_url.trim_end_matches('/').to_owned(),
        }
    }

    /// The listener's limits, with `max_connections` the budget `open_files` allows.
    pub fn server_limits(&self, max_connections: usize) -> gateway::server::ServerLimits {
        gateway::server::ServerLimits {
            max_connections: max_connections.max(1),
            header_read_timeout: secs(self.http.header_read_timeout_secs.max(1)),
        }
    }
}

/// A turn must publish well inside the resume clock margin (`schema::ws::RESUME_CLOCK_MARGIN_SECS`).
const MAX_TURN_DEADLINE: std::time::Duration =
    std::time::Duration::from_secs(schema::ws::RESUME_CLOCK_MARGIN_SECS as u64 * 5 / 6);

/// Prefix of the variables that configure a node.
const ENV_PREFIX: &str = "CONVERSA_";

/// Variables with the prefix that are read elsewhere (the command line's `--config`).
const NOT_CONFIG_BUT_OURS: &[&str] = &["CONVERSA_CONFIG"];

/// Whether `key` (lower case, prefix stripped, sections joined by `__`) starts with a section or
/// top-level key of `Config`. Only those reach the configuration: any other `CONVERSA_*` variable
/// (the scripts' `CONVERSA_CACHE`, the tests' `CONVERSA_SCYLLA_NODES`) is not the node's business and
/// must never stop it from starting.
fn is_config_key(key: &str) -> bool {
    const TOP_LEVEL: &[&str] = &[
        "http",
        "storage",
        "actors",
        "gateway",
        "whatsapp",
        "instagram",
        "evolution",
        "zapi",
        "security",
        "redis",
        "cluster",
        "log",
        "smtp",
        "shutdown_deadline_secs",
        "bus_capacity",
    ];
    let first = key.split("__").next().unwrap_or_default();
    TOP_LEVEL.contains(&first)
}

fn secs(n: u64) -> std::time::Duration {
    std::time::Duration::from_secs(n)
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closure error type is figment's own
mod tests {
    use super::*;

    #[test]
    fn file_then_environment_override_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "conversa.toml",
                "[http]\naddr = \"0.0.0.0:9000\"\n[storage.embedded]\ngroup_commit = false\n",
            )?;
            jail.set_env("CONVERSA_HTTP__ADDR", "127.0.0.1:9100");
            let config =
                Config::load(Some(Path::new("conversa.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(config.http.addr.port(), 9100);
            assert!(!config.storage.embedded.group_commit);
            assert_eq!(config.bus_capacity, 4096);
            Ok(())
        });
    }

    #[test]
    fn variables_of_the_scripts_and_strays_do_not_stop_the_node() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("CONVERSA_CACHE", "/tmp/cache");
            jail.set_env("CONVERSA_SCYLLA_NODES", "127.0.0.1:9042");
            jail.set_env("CONVERSA_WHATEVER__X", "1");
            jail.set_env("CONVERSA_BUS_CAPACITY", "77");
            let config = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(config.bus_capacity, 77);
            let ignored = Config::ignored_env();
            assert!(ignored.contains(&"CONVERSA_CACHE".to_string()));
            assert!(ignored.contains(&"CONVERSA_WHATEVER__X".to_string()));
            assert!(!ignored.contains(&"CONVERSA_BUS_CAPACITY".to_string()));
            Ok(())
        });
    }

    #[test]
    fn a_misspelt_key_inside_a_known_section_is_still_refused() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("CONVERSA_HTTP__ADRESS", "127.0.0.1:1");
            assert!(Config::load(None).is_err());
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_are_rejected() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("conversa.toml", "[http]\nadress = \"0.0.0.0:9000\"\n")?;
            assert!(Config::load(Some(Path::new("conversa.toml"))).is_err());
            Ok(())
        });
    }
}
