//! Provider modules. Each owns both directions of one provider: parsing and verifying its webhooks into
//! `schema::inbound` events, and its send API behind `schema::channel::ChannelClient`.

pub mod channels;
pub mod evolution;
pub mod graph;
pub(crate) mod http;
pub mod messenger;
pub mod session;
pub mod whatsapp_cloud;
pub mod zapi;

use schema::inbound::InboundEvent;

/// The id kept for a message a provider accepted (2xx) without saying its id: unique, and matching no
/// status the provider will report.
pub(crate) fn unknown_id() -> String {
    tracing::warn!("provider accepted a message without returning its id");
    format!("unknown:{}", uuid::Uuid::now_v7())
}

/// The events of one webhook, per business account they happened on (WhatsApp `phone_number_id`,
/// Messenger page id, Instagram account id).
#[derive(Debug, Default, PartialEq)]
pub struct ParsedWebhook {
    pub batches: Vec<AccountEvents>,
    /// Parts of the payload acknowledged but not stored (account updates, fields we do not serve).
    pub ignored: usize,
}

/// Events for one business account, in payload order.
#[derive(Debug, PartialEq)]
pub struct AccountEvents {
    pub account_id: String,
    pub events: Vec<InboundEvent>,
}
