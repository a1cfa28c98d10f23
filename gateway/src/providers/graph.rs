//! The Graph API client shared by every Meta provider (WhatsApp Cloud API, Messenger, Instagram): one
//! pooled HTTP client with timeouts, implementing `schema::channel::ChannelClient`. It picks the
//! request body by the connection's provider (`whatsapp_cloud::client` or `messenger::client`) and
//! maps answers the same way for all: 429 and 5xx are transient, other 4xx final rejections carrying
//! Meta's error `code`, `message` and `error_data.details`.
//!
//! Media: for WhatsApp, `GET {graph_base}/{api_version}/{media_id}` answers the file's temporary `url`,
//! `mime_type` and `file_size`, and the file is fetched from that URL with the same bearer token; for
//! Messenger and Instagram the reference already is a CDN URL, fetched without a token. Either way the
//! file is streamed on and neither token nor URL ever reaches an agent.

use crate::providers::{messenger, whatsapp_cloud};
use async_trait::async_trait;
use schema::channel::{ChannelClient, MediaError, MediaStream, Outbound, SendError};
use schema::records::{Connection, Provider, ProviderError};
use serde_json::Value;
use std::time::Duration;

/// Settings of the Cloud API client.
#[derive(Clone, Debug)]
pub struct GraphConfig {
    /// `https://graph.facebook.com` in production.
    pub graph_base: String,
    /// Graph API version, e.g. `v23.0`.
    pub api_version: String,
    /// `https://graph.instagram.com`: where Instagram connections without a page (Instagram Login)
    /// send.
    pub instagram_base: String,
    pub timeout: Duration,
}

impl Default for GraphConfig {
    fn default() -> Self {
        Self {
            graph_base: "https://graph.facebook.com".into(),
            instagram_base: "https://graph.instagram.com".into(),
            api_version: "v23.0".into(),
            timeout: Duration::from_secs(15),
        }
    }
}

/// The client (one per node; connection pooling is shared).
pub struct GraphClient {
    http: reqwest::Client,
    config: GraphConfig,
}

impl GraphClient {
    pub fn new(config: GraphConfig) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(Duration::from_secs(5))
            // A redirect could bounce the node to an address nobody allowed it to reach (a media URL
            // pointing at an internal service): never follow one.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self { http, config })
    }
}

#[async_trait]
impl ChannelClient for GraphClient {
    async fn fetch_media(
        &self,
        connection: &Connection,
        media_id: &str,
        max_bytes: u64,
    ) -> Result<MediaStream, MediaError> {
        if connection.provider != Provider::WhatsappCloud {
            // The reference came in a Meta-signed webhook, but it is still a URL the node will fetch:
            // only https, so a reference can never point the node at a plain-http internal service.
            if !media_id.starts_with("https://") {
                return Err(MediaError::NotFound);
            }
            return super::http::download(&self.http, media_id, None, None, max_bytes).await;
        }
        let url = format!(
            "{}/{}/{}",
            self.config.graph_base.trim_end_matches('/'),
            self.config.api_version,
            media_id
        );
        let token = &connection
            .meta()
            .ok_or_else(|| MediaError::Unavailable("not a Meta connection".into()))?
            .access_token;
        let unavailable = |e: reqwest::Error| MediaError::Unavailable(e.to_string());
        let info = self
            .http
            .get(&url)
            .bearer_auth(token)
            .send()
            .await
            .map_err(unavailable)?;
        if info.status().as_u16() == 404 || info.status().as_u16() == 400 {
            return Err(MediaError::NotFound);
        }
        if !info.status().is_success() {
            return Err(MediaError::Unavailable(format!(
                "media lookup answered {}",
                info.status()
            )));
        }
        let info: Value = info.json().await.map_err(unavailable)?;
        let size = info
            .get("file_size")
            .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()));
        if let Some(size) = size.filter(|s| *s > max_bytes) {
            return Err(MediaError::TooLarge(size));
        }
        let file_url = info
            .get("url")
            .and_then(Value::as_str)
            .ok_or_else(|| MediaError::Unavailable("media lookup without url".into()))?;
        let mime = info
            .get("mime_type")
            .and_then(Value::as_str)
            .map(str::to_string);
        super::http::download(&self.http, file_url, Some(token), mime, max_bytes).await
    }

    async fn mark_read(
        &self,
        connection: &Connection,
        to: &str,
        provider_message_id: &str,
    ) -> Result<(), SendError> {
        let body = match connection.provider {
            Provider::WhatsappCloud => {
                serde_json::json!({"messaging_product": "whatsapp", "status": "read",
                                                          "message_id": provider_message_id})
            }
            Provider::Messenger | Provider::Instagram => {
                serde_json::json!({"recipient": {"id": to}, "sender_action": "mark_seen"})
            }
            Provider::Evolution | Provider::Zapi => return Err(not_meta()),
        };
        self.post_messages(connection, &body).await.map(drop)
    }

    async fn send(&self, connection: &Connection, message: &Outbound) -> Result<String, SendError> {
        let bodies = match connection.provider {
            Provider::WhatsappCloud => vec![whatsapp_cloud::client::payload(message)?],
            Provider::Messenger | Provider::Instagram => messenger::client::payloads(message)?,
            Provider::Evolution | Provider::Zapi => return Err(not_meta()),
        };
        let mut bodies = bodies.into_iter();
        let first = bodies.next().ok_or_else(not_meta)?;
        let answer = self.post_messages(connection, &first).await?;
        // A media caption on Messenger and Instagram follows as a text of its own. The media already
        // went: a failed caption cannot fail (or resend) the reply, so it is logged and counted.
        for part in bodies {
            if let Err(error) = self.post_messages(connection, &part).await {
                metrics::counter!("conversa_outbound_parts_lost_total").increment(1);
                tracing::warn!(connection = %connection.id, %error, "the caption of a media reply was not sent");
            }
        }
        let id = match connection.provider {
            Provider::WhatsappCloud => answer
                .pointer("/messages/0/id")
                .and_then(Value::as_str)
                .map(str::to_string),
            Provider::Messenger | Provider::Instagram => messenger::client::message_id(&answer),
            Provider::Evolution | Provider::Zapi => None,
        };
        // A 2xx means the message went: never retry it (that would send it again), even when the
        // answer does not say under which id.
        Ok(id.unwrap_or_else(super::unknown_id))
    }
}

impl GraphClient {
    /// `POST {base}/{version}/{id}/messages` (see above for which base and id); maps Meta's answer to success or a transient
    /// or final error.
    async fn post_messages(
        &self,
        connection: &Connection,
        body: &Value,
    ) -> Result<Value, SendError> {
        let meta = connection.meta().ok_or_else(not_meta)?;
        // Instagram through a Facebook Page sends to the page on the Graph API; Instagram Login to the
        // Instagram account on graph.instagram.com (Meta documents no third form).
        let (base, id) = match (connection.provider, &meta.page_id) {
            (Provider::Instagram, Some(page)) => (&self.config.graph_base, page),
            (Provider::Instagram, None) => (&self.config.instagram_base, &meta.account_id),
            _ => (&self.config.graph_base, &meta.account_id),
        };
        let url = format!(
            "{}/{}/{}/messages",
            base.trim_end_matches('/'),
            self.config.api_version,
            id
        );
        let response = self
            .http
            .post(&url)
            .bearer_auth(&meta.access_token)
            .json(body)
            .send()
            .await
            .map_err(crate::providers::http::unanswered)?;
        let status = response.status();
        let answer = super::http::json_capped(response, super::http::ANSWER_MAX)
            .await
            // Even a 2xx whose body cannot be read whole counts as done: retrying would act twice.
            .unwrap_or(serde_json::Value::Null);
        if status.is_success() {
            return Ok(answer);
        }
        let error = ProviderError {
            code: answer.pointer("/error/code").and_then(Value::as_i64),
            title: answer
                .pointer("/error/message")
                .and_then(Value::as_str)
                .unwrap_or_else(|| status.canonical_reason().unwrap_or("error"))
                .to_string(),
            detail: answer
                .pointer("/error/error_data/details")
                .and_then(Value::as_str)
                .map(str::to_string),
        };
        Err(super::http::refused(status, error))
    }
}

/// A non-Meta connection handed to the Graph client: a routing bug, refused without a retry.
fn not_meta() -> SendError {
    SendError::Rejected(ProviderError {
        code: None,
        title: "not a Meta connection".into(),
        detail: None,
    })
}
