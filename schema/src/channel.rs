//! The outbound channel port: how a connection-session actor hands a message to its provider. Provider
//! clients live in `gateway` (every byte that crosses the network edge); actors only see this trait.

use crate::records::{Connection, MessageContent, ProviderError};
use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};

/// An outbound message as the provider needs it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Outbound {
    /// The contact's provider address.
    pub to: String,
    /// Text, template, interactive buttons or reaction (validated by the conversation actor).
    pub content: MessageContent,
    /// Provider id of the message being replied to, if any.
    pub reply_to: Option<String>,
    /// Our id of the message, for providers that echo a reference back with the message they sent
    /// (Messenger and Instagram `metadata`).
    pub reference: Option<String>,
    /// Messenger and Instagram: the message tag that lets it go outside the 24-hour window
    /// (`HUMAN_AGENT`, up to 7 days, when the connection has the permission).
    pub message_tag: Option<String>,
}

/// Why a send failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The provider refused the message; retrying will not help (4xx, validation).
    #[error("rejected by provider: {0:?}")]
    Rejected(ProviderError),
    /// The message surely did not reach the provider (no connection, 429, 503); a retry may succeed
    /// and cannot send it twice.
    #[error("provider unavailable: {0}")]
    Transient(String),
    /// The request may have reached the provider but no usable answer came back (a read timeout, a
    /// connection lost after the request was written, 500/502/504): retrying could send the message
    /// twice, so it is not retried.
    #[error("outcome unknown: {0}")]
    Unknown(String),
}

/// A media file on its way from the provider, streamed.
pub struct MediaStream {
    pub content_type: Option<String>,
    /// Size the provider announced, if it did.
    pub length: Option<u64>,
    pub body: BoxStream<'static, Result<Bytes, String>>,
}

/// Why a media file cannot be fetched.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The provider does not know the media id (expired: WhatsApp keeps media for 30 days).
    #[error("media not found at the provider")]
    NotFound,
    /// Larger than the limit the caller set.
    #[error("media is {0} bytes, over the limit")]
    TooLarge(u64),
    #[error("provider unavailable: {0}")]
    Unavailable(String),
}

/// Sends messages through one provider.
#[async_trait]
pub trait ChannelClient: Send + Sync + 'static {
    /// Starts downloading a media file by the provider's media id, with the connection's credentials;
    /// refuses files over `max_bytes` before streaming when the provider announces their size.
    async fn fetch_media(
        &self,
        connection: &Connection,
        media_id: &str,
        max_bytes: u64,
    ) -> Result<MediaStream, MediaError>;

    /// Tells the provider the business has read the contact's messages up to `provider_message_id`
    /// (WhatsApp blue ticks; Messenger `mark_seen` for the contact `to`).
    async fn mark_read(
        &self,
        connection: &Connection,
        to: &str,
        provider_message_id: &str,
    ) -> Result<(), SendError>;

    /// Sends a message and returns the provider's message id.
    async fn send(&self, connection: &Connection, message: &Outbound) -> Result<String, SendError>;

    /// Asks a session provider (Evolution, Z-API) to bring a dropped WhatsApp Web session back; the
    /// provider reports the outcome through its webhooks (connected, or a QR code to scan). Providers
    /// without a session have nothing to do.
    async fn reconnect(&self, _connection: &Connection) -> Result<(), SendError> {
        Ok(())
    }

    /// Asks a session provider for the QR code that pairs the connection's phone now (an image as
    /// a `data:` URL, or the code's text); `None` when there is nothing to scan (already paired, or
    /// a provider without sessions).
    async fn pairing_code(&self, _connection: &Connection) -> Result<Option<String>, SendError> {
        Ok(None)
    }
}
