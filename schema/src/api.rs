//! REST wire types for `/api/v1`: request bodies, pages and the RFC 7807-style error body.

use crate::ids::{AgentId, ConnectionId, TenantId};
use serde::{Deserialize, Serialize};

/// Every HTTP error: a stable machine `code`, the HTTP `status`, and a human `title`/`detail`
/// (`application/problem+json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub code: String,
    pub status: u16,
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A page of items with an opaque cursor for the next one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass back as `?cursor=` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// `POST /api/v1/conversations/{id}/messages`: exactly one of `text`, `template`, `interactive`,
/// `reaction`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendMessageRequest {
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub template: Option<TemplateRequest>,
    #[serde(default)]
    pub interactive: Option<InteractiveRequest>,
    #[serde(default)]
    pub reaction: Option<ReactionRequest>,
    #[serde(default)]
    pub media: Option<MediaRequest>,
    #[serde(default)]
    pub list: Option<ListRequest>,
    /// Idempotency key: retrying with the same key returns the first message instead of sending twice.
    #[serde(default)]
    pub client_message_id: Option<String>,
}

/// An approved template with its body parameters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateRequest {
    pub name: String,
    pub language: String,
    #[serde(default)]
    pub body_parameters: Vec<String>,
}

/// Text with reply buttons.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InteractiveRequest {
    pub body: String,
    pub buttons: Vec<crate::records::ReplyButton>,
}

/// A list message: a body, the label of the button that opens the list, and its sections.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ListRequest {
    pub body: String,
    pub button: String,
    pub sections: Vec<crate::records::ListSection>,
}

/// Media by public https URL: `image`, `audio`, `video`, `document` or `sticker`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MediaRequest {
    pub kind: crate::records::MediaKind,
    pub url: String,
    #[serde(default)]
    pub caption: Option<String>,
    #[serde(default)]
    pub filename: Option<String>,
}

/// A reaction to the message at `seq` in the same conversation (an empty emoji removes it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReactionRequest {
    pub seq: crate::ids::Seq,
    pub emoji: String,
}

/// `POST /api/v1/admin/tenants`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenantRequest {
    pub name: String,
}

/// `POST /api/v1/admin/tenants/{tenant}/connections`. Its `Debug` output redacts every credential.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateConnectionRequest {
    pub name: String,
    /// `whatsapp_cloud` (the default), `messenger`, `instagram`, `evolution` or `zapi`.
    #[serde(default)]
    pub provider: Option<crate::records::Provider>,
    /// Meta providers: WhatsApp `phone_number_id` (also accepted under that name), Messenger page id or
    /// Instagram professional account id.
    #[serde(default, alias = "phone_number_id")]
    pub account_id: Option<String>,
    /// Meta providers.
    #[serde(default)]
    pub verify_token: Option<String>,
    /// Meta providers.
    #[serde(default)]
    pub app_secret: Option<String>,
    /// Meta providers.
    #[serde(default)]
    pub access_token: Option<String>,
    /// Evolution: the server's base URL (`https://…`; `http://` is accepted for a server on the same
    /// private network, and then carries the API key in clear).
    #[serde(default)]
    pub server_url: Option<String>,
    /// Evolution: the instance name.
    #[serde(default)]
    pub instance: Option<String>,
    /// Evolution: the instance's API key.
    #[serde(default)]
    pub api_key: Option<String>,
    /// Z-API: the instance id.
    #[serde(default)]
    pub instance_id: Option<String>,
    /// Z-API: the instance token.
    #[serde(default)]
    pub instance_token: Option<String>,
    /// Z-API: the account security token (`Client-Token`), when enabled.
    #[serde(default)]
    pub client_token: Option<String>,
    /// Instagram through a Facebook Page (Facebook Login): the page id sends go to. Leave unset for
    /// Instagram Login (sends go to graph.instagram.com with the Instagram account id).
    #[serde(default)]
    pub page_id: Option<String>,
    /// Messenger and Instagram: the app has the Human Agent permission (answers up to 7 days after the
    /// contact's last message, tagged `HUMAN_AGENT`).
    #[serde(default)]
    pub human_agent_tag: Option<bool>,
}

/// `PATCH /api/v1/admin/tenants/{tenant}/connections/{id}`: every field optional. Its `Debug` output
/// redacts every credential.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateConnectionRequest {
    #[serde(default)]
    pub name: Option<String>,
    /// `paused` or `connected`.
    #[serde(default)]
    pub status: Option<crate::records::ConnectionStatus>,
    #[serde(default)]
    pub verify_token: Option<String>,
    #[serde(default)]
    pub app_secret: Option<String>,
    #[serde(default)]
    pub access_token: Option<String>,
    /// Evolution: a new API key.
    #[serde(default)]
    pub api_key: Option<String>,
    /// Z-API: a new instance token.
    #[serde(default)]
    pub instance_token: Option<String>,
    /// Z-API: a new account security token.
    #[serde(default)]
    pub client_token: Option<String>,
    /// Messenger and Instagram: whether the app has the Human Agent permission.
    #[serde(default)]
    pub human_agent_tag: Option<bool>,
}

/// `Some("<redacted>")` for a secret that is set.
fn redacted(secret: &Option<String>) -> Option<&'static str> {
    secret.as_ref().map(|_| "<redacted>")
}

impl std::fmt::Debug for CreateConnectionRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateConnectionRequest")
            .field("name", &self.name)
            .field("provider", &self.provider)
            .field("account_id", &self.account_id)
            .field("verify_token", &redacted(&self.verify_token))
            .field("app_secret", &redacted(&self.app_secret))
            .field("access_token", &redacted(&self.access_token))
            .field("server_url", &self.server_url)
            .field("instance", &self.instance)
            .field("api_key", &redacted(&self.api_key))
            .field("instance_id", &self.instance_id)
            .field("instance_token", &redacted(&self.instance_token))
            .field("client_token", &redacted(&self.client_token))
            .field("page_id", &self.page_id)
            .field("human_agent_tag", &self.human_agent_tag)
            .finish()
    }
}

impl std::fmt::Debug for UpdateConnectionRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpdateConnectionRequest")
            .field("name", &self.name)
            .field("status", &self.status)
            .field("verify_token", &redacted(&self.verify_token))
            .field("app_secret", &redacted(&self.app_secret))
            .field("access_token", &redacted(&self.access_token))
            .field("api_key", &redacted(&self.api_key))
            .field("instance_token", &redacted(&self.instance_token))
            .field("client_token", &redacted(&self.client_token))
            .field("human_agent_tag", &self.human_agent_tag)
            .finish()
    }
}

/// What pairs a session connection's phone now (`GET /api/v1/connections/{id}/qr`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConnectionPairing {
    pub connection_id: ConnectionId,
    pub status: crate::records::ConnectionStatus,
    /// The QR code to scan (a `data:` image URL, or the code's text); `null` when there is none.
    pub qr_code: Option<String>,
}

/// A connection as agents and admins see it: never its secrets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConnectionView {
    pub id: ConnectionId,
    pub tenant_id: TenantId,
    pub name: String,
    pub provider: crate::records::Provider,
    pub status: crate::records::ConnectionStatus,
    pub account_id: String,
    pub created_at: jiff::Timestamp,
}

impl From<&crate::records::Connection> for ConnectionView {
    fn from(c: &crate::records::Connection) -> Self {
        Self {
            id: c.id,
            tenant_id: c.tenant_id,
            name: c.name.clone(),
            provider: c.provider,
            status: c.status,
            account_id: c.address().to_string(),
            created_at: c.created_at,
        }
    }
}

/// `POST /api/v1/admin/tenants/{tenant}/agents`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAgentRequest {
    pub name: String,
    #[serde(default)]
    pub role: Option<crate::records::AgentRole>,
}

/// Answer to agent creation: the token is shown once and stored only hashed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreatedAgent {
    pub agent_id: AgentId,
    pub tenant_id: TenantId,
    pub token: String,
}

/// Answer to connection creation: where Meta must be pointed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreatedConnection {
    pub connection_id: ConnectionId,
    pub tenant_id: TenantId,
    /// Path of the webhook route for this connection: `/webhooks/whatsapp/{id}`, `/webhooks/meta/{id}`,
    /// or for Evolution and Z-API `/webhooks/{evolution|zapi}/{id}/{secret}` (they sign nothing, so the
    /// secret in the path is what authenticates their posts: keep it private).
    pub webhook_path: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_of_connection_requests_never_shows_a_credential() {
        let create = CreateConnectionRequest {
            name: "Sales".into(),
            app_secret: Some("app-secret-value".into()),
            access_token: Some("access-token-value".into()),
            api_key: Some("api-key-value".into()),
            ..Default::default()
        };
        let update = UpdateConnectionRequest {
            client_token: Some("client-token-value".into()),
            ..Default::default()
        };
        let printed = format!("{create:?} {update:?}");
        for secret in [
            "app-secret-value",
            "access-token-value",
            "api-key-value",
            "client-token-value",
        ] {
            assert!(!printed.contains(secret), "{printed}");
        }
        assert!(printed.contains("Sales"));
    }
}
