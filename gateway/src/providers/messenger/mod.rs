//! Messenger Platform: Facebook pages (`object: page`) and Instagram professional accounts
//! (`object: instagram`) share one webhook format (`entry[].messaging[]` with `sender`, `recipient`,
//! `timestamp` and one of `message`, `delivery`, `read`, `postback`, `reaction`), the same
//! `X-Hub-Signature-256` and verify-token handshake as WhatsApp, and the Send API.
//!
//! - [`webhook`]: payload → `InboundEvent`s (messages, echoes, deliveries, reads).
//! - [`client`]: the Send API request body for an outbound message.

pub mod client;
pub mod webhook;
