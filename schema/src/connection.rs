//! Channel connections: which provider a connection speaks to, its lifecycle status, and its
//! provider settings (address and credentials, sealed at rest by the store). Re-exported from
//! `records`, where the rest of what Conversa stores lives.

use crate::ids::{ConnectionId, TenantId};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// The channel provider behind a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    /// Meta's WhatsApp Business Cloud API.
    WhatsappCloud,
    /// A Facebook page through the Messenger Platform.
    Messenger,
    /// An Instagram professional account through Instagram messaging.
    Instagram,
    /// A WhatsApp number paired to a self-hosted Evolution API instance (Baileys, WhatsApp Web).
    Evolution,
    /// A WhatsApp number paired to a Z-API instance (WhatsApp Web, hosted).
    Zapi,
}

impl Provider {
    /// Stable label for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::WhatsappCloud => "whatsapp_cloud",
            Provider::Messenger => "messenger",
            Provider::Instagram => "instagram",
            Provider::Evolution => "evolution",
            Provider::Zapi => "zapi",
        }
    }

    /// Whether the provider keeps a WhatsApp Web session that must be paired (QR code) and can drop.
    pub fn has_session(self) -> bool {
        matches!(self, Provider::Evolution | Provider::Zapi)
    }
}

/// Lifecycle state of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStatus {
    Connecting,
    QrRequired,
    Connected,
    Disconnected,
    Error,
    /// Administratively paused: webhooks are refused, nothing is sent.
    Paused,
}

impl ConnectionStatus {
    /// The wire name (`connecting`, `qr_required`, …), also a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionStatus::Connecting => "connecting",
            ConnectionStatus::QrRequired => "qr_required",
            ConnectionStatus::Connected => "connected",
            ConnectionStatus::Disconnected => "disconnected",
            ConnectionStatus::Error => "error",
            ConnectionStatus::Paused => "paused",
        }
    }
}

/// Credentials and address of a Meta channel (WhatsApp Cloud API number, Messenger page, Instagram
/// professional account): all three share the app-secret webhook signature, the verify-token handshake
/// and a bearer token for the Graph API. `Debug` shows no secret, so a record in a log never leaks one.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaSettings {
    /// WhatsApp `phone_number_id`, Messenger page id or Instagram account id: where webhooks say the
    /// event happened and where sends go.
    #[serde(alias = "phone_number_id")]
    pub account_id: String,
    /// The token Meta echoes in the `GET` verification handshake.
    pub verify_token: String,
    /// The Meta app secret that signs webhooks (`X-Hub-Signature-256`).
    pub app_secret: String,
    /// System-user or page access token for the send API.
    pub access_token: String,
    /// Instagram through a Facebook Page (Facebook Login): the page whose `/{page}/messages` sends go
    /// to on the Graph API. Unset for Instagram Login: sends go to `/{account_id}/messages` on
    /// graph.instagram.com. Unused by the other providers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_id: Option<String>,
    /// Messenger and Instagram: the app has Meta's Human Agent permission, so a person may answer up
    /// to 7 days after the contact's last message (sent with the `HUMAN_AGENT` tag) instead of 24 hours.
    #[serde(default)]
    pub human_agent: bool,
}

impl std::fmt::Debug for MetaSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetaSettings")
            .field("account_id", &self.account_id)
            .field("verify_token", &"<redacted>")
            .field("app_secret", &"<redacted>")
            .field("access_token", &"<redacted>")
            .field("page_id", &self.page_id)
            .field("human_agent", &self.human_agent)
            .finish()
    }
}

/// Credentials and address of an Evolution API instance. Evolution signs no webhook, so its posts are
/// authenticated by `webhook_token`, a secret we generate and put in the webhook URL we give it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvolutionSettings {
    /// Base URL of the Evolution API server (self-hosted), e.g. `https://evo.example.com`.
    pub server_url: String,
    /// The instance name: where webhooks say the event happened and where sends go.
    pub instance: String,
    /// The instance's API key (`apikey` header).
    pub api_key: String,
    pub webhook_token: String,
}

/// Credentials and address of a Z-API instance. Z-API signs no webhook either: `webhook_token` is in
/// the callback URLs we give it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZapiSettings {
    pub instance_id: String,
    /// The instance token, part of every Z-API URL.
    pub instance_token: String,
    /// The account security token (`Client-Token` header), when the account enables it.
    #[serde(default)]
    pub client_token: Option<String>,
    pub webhook_token: String,
}

/// A connection's provider settings, by provider family.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ChannelSettings {
    /// WhatsApp Cloud API, Messenger, Instagram.
    Meta(MetaSettings),
    Evolution(EvolutionSettings),
    Zapi(ZapiSettings),
}

impl ChannelSettings {
    /// The provider address webhooks are routed by (phone_number_id, page id, instance name or id).
    pub fn address(&self) -> &str {
        match self {
            ChannelSettings::Meta(m) => &m.account_id,
            ChannelSettings::Evolution(e) => &e.instance,
            ChannelSettings::Zapi(z) => &z.instance_id,
        }
    }

    pub fn meta(&self) -> Option<&MetaSettings> {
        match self {
            ChannelSettings::Meta(m) => Some(m),
            _ => None,
        }
    }

    /// Every secret, for sealing at rest and opening again.
    pub fn secrets_mut(&mut self) -> Vec<&mut String> {
        match self {
            ChannelSettings::Meta(m) => {
                vec![&mut m.verify_token, &mut m.app_secret, &mut m.access_token]
            }
            ChannelSettings::Evolution(e) => vec![&mut e.api_key, &mut e.webhook_token],
            ChannelSettings::Zapi(z) => {
                let mut secrets = vec![&mut z.instance_token, &mut z.webhook_token];
                if let Some(token) = z.client_token.as_mut() {
                    secrets.push(token);
                }
                secrets
            }
        }
    }
}

impl std::fmt::Debug for ChannelSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChannelSettings::Meta(m) => m.fmt(f),
            ChannelSettings::Evolution(e) => f
                .debug_struct("EvolutionSettings")
                .field("server_url", &e.server_url)
                .field("instance", &e.instance)
                .field("api_key", &"<redacted>")
                .field("webhook_token", &"<redacted>")
                .finish(),
            ChannelSettings::Zapi(z) => f
                .debug_struct("ZapiSettings")
                .field("instance_id", &z.instance_id)
                .field("instance_token", &"<redacted>")
                .field(
                    "client_token",
                    &z.client_token.as_ref().map(|_| "<redacted>"),
                )
                .field("webhook_token", &"<redacted>")
                .finish(),
        }
    }
}

/// One channel connection (one WhatsApp number = one session).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    pub id: ConnectionId,
    pub tenant_id: TenantId,
    pub provider: Provider,
    pub name: String,
    pub status: ConnectionStatus,
    /// Stored as `meta` before other provider families existed; still read under that name.
    #[serde(alias = "meta", alias = "whatsapp")]
    pub settings: ChannelSettings,
    /// The latest QR code to pair a session provider's number (a `data:image/png;base64,…` URI or
    /// the raw code), while the session waits for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qr_code: Option<String>,
    pub created_at: Timestamp,
    /// Bumped by every stored update: an update names the version it read and is refused if another
    /// landed meanwhile (an admin's pause racing a session webhook never loses either change).
    #[serde(default)]
    pub version: u64,
}

impl Connection {
    /// Meta credentials, for the providers that use them.
    pub fn meta(&self) -> Option<&MetaSettings> {
        self.settings.meta()
    }

    pub fn address(&self) -> &str {
        self.settings.address()
    }

    /// What must be unique among all connections of one provider, across tenants: the Meta account
    /// id, the Z-API instance id, and for Evolution the instance *on its server* (instance names are
    /// only unique per Evolution server, and two tenants may each run one with an instance `main`).
    pub fn claim_key(&self) -> String {
        match &self.settings {
            ChannelSettings::Evolution(e) => format!(
                "{}#{}",
                e.server_url.trim_end_matches('/').to_ascii_lowercase(),
                e.instance
            ),
            other => other.address().to_string(),
        }
    }
}
