//! The outbound channel port: how a connection-session actor hands a message to its provider. Provider
//! clients live in `gateway` (every byte that crosses the network edge); actors only see this trait.

use crate::records::{Connection, ProviderError};
use async_trait::async_trait;

/// An outbound message as the provider needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboundText {
    /// The contact's provider address.
    pub to: String,
    pub body: String,
    /// Provider id of the message being replied to, if any.
    pub reply_to: Option<String>,
}

/// Why a send failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The provider refused the message; retrying will not help (4xx, validation).
    #[error("rejected by provider: {0:?}")]
    Rejected(ProviderError),
    /// The provider could not be reached or answered 429/5xx; a retry may succeed.
    #[error("provider unavailable: {0}")]
    Transient(String),
}

/// Sends messages through one provider.
#[async_trait]
pub trait ChannelClient: Send + Sync + 'static {
    /// Sends a text and returns the provider's message id.
    async fn send_text(
        &self,
        connection: &Connection,
        message: &OutboundText,
    ) -> Result<String, SendError>;
}
