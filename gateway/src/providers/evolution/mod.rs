//! Evolution API (self-hosted, Baileys / WhatsApp Web): webhooks in (`webhook.rs`), sends out
//! (`client.rs`), behind `schema::channel::ChannelClient` as [`EvolutionClient`]. Each connection names
//! its own server (`server_url`), instance and API key.

pub mod client;
mod media;
pub mod webhook;

use async_trait::async_trait;
use schema::channel::{ChannelClient, MediaError, MediaStream, Outbound, SendError};
use schema::records::{ChannelSettings, Connection, EvolutionSettings, ProviderError};
use std::time::Duration;

/// The Evolution client (one per node, pooled).
pub struct EvolutionClient {
    http: reqwest::Client,
}

impl EvolutionClient {
    pub fn new(timeout: Duration) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5))
            // A redirect could bounce the node to an address nobody allowed it to reach (a media URL
            // pointing at an internal service): never follow one.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self { http })
    }

    /// `GET /instance/connect/{instance}` and its JSON answer.
    async fn connect(&self, connection: &Connection) -> Result<serde_json::Value, SendError> {
        let settings = settings(connection)?;
        let url = format!(
            "{}/instance/connect/{}",
            settings.server_url.trim_end_matches('/'),
            settings.instance
        );
        let response = self
            .http
            .get(&url)
            .header("apikey", &settings.api_key)
            .send()
            .await
            .map_err(crate::providers::http::unanswered)?;
        let status = response.status();
        let answer =
            crate::providers::http::json_capped(response, crate::providers::http::ANSWER_MAX)
                .await
                // Even a 2xx whose body cannot be read whole counts as done: retrying would act twice.
                .unwrap_or(serde_json::Value::Null);
        // Evolution answers its own failures here with 200 and `{"error": true, "message": …}`.
        if !status.is_success() || answer.get("error").and_then(|e| e.as_bool()) == Some(true) {
            return Err(SendError::Transient(format!(
                "instance/connect answered {status}: {}",
                answer
                    .get("message")
                    .map(|m| m.to_string())
                    .unwrap_or_default()
            )));
        }
        Ok(answer)
    }
}

fn settings(connection: &Connection) -> Result<&EvolutionSettings, SendError> {
    match &connection.settings {
        ChannelSettings::Evolution(settings) => Ok(settings),
        _ => Err(SendError::Rejected(ProviderError {
            code: None,
            title: "not an Evolution connection".into(),
            detail: None,
        })),
    }
}

#[async_trait]
impl ChannelClient for EvolutionClient {
    async fn fetch_media(
        &self,
        connection: &Connection,
        media_id: &str,
        max_bytes: u64,
    ) -> Result<MediaStream, MediaError> {
        let settings = settings(connection).map_err(|e| MediaError::Unavailable(e.to_string()))?;
        client::fetch_media(&self.http, settings, media_id, max_bytes).await
    }

    async fn mark_read(
        &self,
        connection: &Connection,
        to: &str,
        provider_message_id: &str,
    ) -> Result<(), SendError> {
        let settings = settings(connection)?;
        let body = client::read_body(to, provider_message_id);
        client::post(
            &self.http,
            settings,
            &client::read_url(settings),
            &body,
            crate::providers::http::ANSWER_MAX,
        )
        .await
        .map(drop)
    }

    async fn send(&self, connection: &Connection, message: &Outbound) -> Result<String, SendError> {
        let settings = settings(connection)?;
        let (url, body) = client::request(settings, message)?;
        let answer = client::post(
            &self.http,
            settings,
            &url,
            &body,
            crate::providers::http::ANSWER_MAX,
        )
        .await?;
        // A 2xx means the message went: never retry it (that would send it again), even when the
        // answer does not say under which id.
        Ok(client::message_id(&answer).unwrap_or_else(super::unknown_id))
    }

    /// `GET /instance/connect/{instance}`: restarts the session; when the number must be paired again,
    /// Evolution answers (and posts `qrcode.updated` with) a new QR code.
    async fn reconnect(&self, connection: &Connection) -> Result<(), SendError> {
        self.connect(connection).await.map(drop)
    }

    /// The same call, for the QR code image it answers (`base64`; the code's raw text cannot be
    /// scanned from a screen without drawing it); a paired instance answers with its state instead.
    async fn pairing_code(&self, connection: &Connection) -> Result<Option<String>, SendError> {
        let answer = self.connect(connection).await?;
        Ok(answer
            .get("base64")
            .and_then(serde_json::Value::as_str)
            .filter(|v| v.starts_with("data:image/"))
            .map(str::to_string))
    }
}
