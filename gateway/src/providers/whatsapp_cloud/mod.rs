//! Meta's WhatsApp Business Cloud API.
//!
//! - [`webhook`]: `X-Hub-Signature-256` verification and the webhook payload (`object` →
//!   `entry[]` → `changes[]` → `value.messages[]` / `value.statuses[]`), batched entries included.
//! - [`content`]: each documented message type → `MessageContent`.
//! - [`client`]: `POST {graph_base}/{version}/{phone_number_id}/messages` with the connection's token.

pub mod client;
pub mod content;
pub mod webhook;
