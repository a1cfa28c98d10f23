//! Meta's WhatsApp Business Cloud API.
//!
//! - [`webhook`]: `X-Hub-Signature-256` verification and the webhook payload (`object` →
//!   `entry[]` → `changes[]` → `value.messages[]` / `value.statuses[]`), batched entries included.
//! - [`content`]: each documented message type → `MessageContent`.
//! - [`client`]: the request body of each outbound message kind (posted by `providers::graph`).

pub mod client;
pub mod content;
pub mod webhook;
