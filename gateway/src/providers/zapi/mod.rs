//! Z-API (hosted WhatsApp Web sessions): callbacks in (`webhook.rs`), sends out (`client.rs`), behind
//! `schema::channel::ChannelClient` as [`ZapiClient`]. Media arrive as Z-API file URLs (kept 30 days),
//! which the media endpoint streams on without exposing them.

pub mod client;
pub mod webhook;

use async_trait::async_trait;
use schema::channel::{ChannelClient, MediaError, MediaStream, Outbound, SendError};
use schema::records::{ChannelSettings, Connection, ProviderError, ZapiSettings};
use serde_json::json;
use std::time::Duration;

/// The Z-API client (one per node, pooled); `api_base` is `https://api.z-api.io` in production.
pub struct ZapiClient {
    http: reqwest::Client,
    api_base: String,
}

impl ZapiClient {
    pub fn new(api_base: String, timeout: Duration) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5))
            .build()?;
        Ok(Self { http, api_base })
    }
}

fn settings(connection: &Connection) -> Result<&ZapiSettings, SendError> {
    match &connection.settings {
        ChannelSettings::Zapi(settings) => Ok(settings),
        _ => Err(SendError::Rejected(ProviderError {
            code: None,
            title: "not a Z-API connection".into(),
            detail: None,
        })),
    }
}

#[async_trait]
impl ChannelClient for ZapiClient {
    async fn fetch_media(
        &self,
        connection: &Connection,
        media_id: &str,
        max_bytes: u64,
    ) -> Result<MediaStream, MediaError> {
        settings(connection).map_err(|e| MediaError::Unavailable(e.to_string()))?;
        // The reference is the file's URL, taken from an authenticated callback.
        if !(media_id.starts_with("https://") || media_id.starts_with("http://")) {
            return Err(MediaError::NotFound);
        }
        crate::providers::http::download(&self.http, media_id, None, None, max_bytes).await
    }

    async fn mark_read(
        &self,
        connection: &Connection,
        to: &str,
        provider_message_id: &str,
    ) -> Result<(), SendError> {
        let settings = settings(connection)?;
        let url = client::url(&self.api_base, settings, "read-message");
        let body = json!({"phone": to, "messageId": provider_message_id});
        client::post(&self.http, settings, &url, &body)
            .await
            .map(drop)
    }

    async fn send(&self, connection: &Connection, message: &Outbound) -> Result<String, SendError> {
        let settings = settings(connection)?;
        let (method, body) = client::request(message)?;
        let url = client::url(&self.api_base, settings, &method);
        let answer = client::post(&self.http, settings, &url, &body).await?;
        client::message_id(&answer)
            .ok_or_else(|| SendError::Transient("answer without messageId".into()))
    }

    /// `GET /restart`: restarts the instance; a number that was logged out needs a QR scan in
    /// Z-API's panel instead, which the disconnected state already shows.
    async fn reconnect(&self, connection: &Connection) -> Result<(), SendError> {
        let settings = settings(connection)?;
        let mut request = self
            .http
            .get(client::url(&self.api_base, settings, "restart"));
        if let Some(token) = &settings.client_token {
            request = request.header("Client-Token", token);
        }
        let response = request
            .send()
            .await
            .map_err(|e| SendError::Transient(format!("request failed: {}", e.without_url())))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(SendError::Transient(format!(
                "restart answered {}",
                response.status()
            )))
        }
    }
}
