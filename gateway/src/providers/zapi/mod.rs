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
    media_hosts: Vec<String>,
}

impl ZapiClient {
    /// `media_hosts`: domains whose https URLs media references may name (a host matches a domain
    /// or any of its subdomains); URLs under `api_base` are accepted too.
    pub fn new(
        api_base: String,
        media_hosts: Vec<String>,
        timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5))
            // A media URL must not bounce the node to an address it was not allowed to fetch.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            http,
            api_base,
            media_hosts,
        })
    }

    /// Whether the node may fetch this media URL. It comes from a callback anyone holding the
    /// webhook secret can forge, so only Z-API's own file hosts are fetched: never an internal
    /// address (SSRF).
    fn media_allowed(&self, url: &str) -> bool {
        if url.starts_with(&format!("{}/", self.api_base.trim_end_matches('/'))) {
            return true;
        }
        let Ok(parsed) = reqwest::Url::parse(url) else {
            return false;
        };
        let Some(host) = parsed.host_str() else {
            return false;
        };
        parsed.scheme() == "https"
            && self
                .media_hosts
                .iter()
                .any(|domain| host == domain || host.ends_with(&format!(".{domain}")))
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
        if !self.media_allowed(media_id) {
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
        // A 2xx means the message went: never retry it (that would send it again), even when the
        // answer does not say under which id.
        Ok(client::message_id(&answer).unwrap_or_else(super::unknown_id))
    }

    /// `GET /qr-code/image`: the instance's current QR code as a `data:` URL (Z-API renews it about
    /// every 20 seconds and posts no webhook for it, so the console asks again while it waits). A
    /// paired instance answers without a `value`.
    async fn pairing_code(&self, connection: &Connection) -> Result<Option<String>, SendError> {
        let settings = settings(connection)?;
        let mut request = self
            .http
            .get(client::url(&self.api_base, settings, "qr-code/image"));
        if let Some(token) = &settings.client_token {
            request = request.header("Client-Token", token);
        }
        let response = request
            .send()
            .await
            .map_err(crate::providers::http::unanswered)?;
        let status = response.status();
        if !status.is_success() {
            return Err(SendError::Transient(format!(
                "qr-code/image answered {status}"
            )));
        }
        let answer =
            crate::providers::http::json_capped(response, crate::providers::http::ANSWER_MAX)
                .await
                .map_err(|e| SendError::Transient(format!("qr-code/image: {e}")))?;
        Ok(answer
            .get("value")
            .and_then(serde_json::Value::as_str)
            .filter(|v| !v.is_empty())
            .map(str::to_string))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_is_fetched_only_from_z_api_hosts_or_the_configured_base() {
        let client = ZapiClient::new(
            "http://127.0.0.1:9999".into(),
            vec!["z-api.io".into()],
            Duration::from_secs(1),
        )
        .expect("client");
        assert!(client.media_allowed("https://storage.z-api.io/img.jpeg"));
        assert!(client.media_allowed("https://z-api.io/f.pdf"));
        assert!(client.media_allowed("http://127.0.0.1:9999/files/IMG1"));
        assert!(
            !client.media_allowed("http://storage.z-api.io/img.jpeg"),
            "https only"
        );
        assert!(!client.media_allowed("https://z-api.io.evil.example/x"));
        assert!(!client.media_allowed("https://evilz-api.io/x"));
        assert!(!client.media_allowed("http://169.254.169.254/latest/meta-data/"));
        assert!(!client.media_allowed("http://127.0.0.1:99999/x"));
        assert!(!client.media_allowed("not a url"));
    }
}
