//! Entry points for the fuzz targets in `gateway/fuzz/` (run with `cargo +nightly fuzz`, see
//! `deploy/scripts/fuzz.sh`) and for `gateway/tests/fuzz_corpus.rs`, which replays every seed and every
//! input that ever crashed through them on the stable toolchain. Each takes raw bytes as they would
//! arrive from the network and runs them through the same parsing and checks the node runs; none may
//! panic, whatever the bytes.

use crate::providers::{evolution, messenger, whatsapp_cloud, zapi};
use schema::channel::Outbound;
use schema::inbound::InboundEvent;
use schema::records::MessageContent;

/// A WhatsApp Cloud API webhook body: parse, then the edge's bounds.
pub fn whatsapp_webhook(data: &[u8]) {
    if let Ok(parsed) = whatsapp_cloud::webhook::parse(data) {
        for mut batch in parsed.batches {
            check(&mut batch.events);
        }
    }
}

/// A Messenger or Instagram webhook body (the first byte picks which object is expected).
pub fn messenger_webhook(data: &[u8]) {
    let (object, body) = match data.split_first() {
        Some((first, rest)) if first % 2 == 0 => ("page", rest),
        Some((_, rest)) => ("instagram", rest),
        None => return,
    };
    if let Ok(parsed) = messenger::webhook::parse(body, object) {
        for mut batch in parsed.batches {
            check(&mut batch.events);
        }
    }
}

/// An Evolution API webhook envelope.
pub fn evolution_webhook(data: &[u8]) {
    if let Ok(mut parsed) = evolution::webhook::parse(data) {
        check(&mut parsed.events);
    }
}

/// A Z-API callback.
pub fn zapi_webhook(data: &[u8]) {
    if let Ok(mut parsed) = zapi::webhook::parse(data) {
        check(&mut parsed.events);
    }
}

/// A frame from an agent's WebSocket.
pub fn ws_client_frame(data: &[u8]) {
    let _ = serde_json::from_slice::<schema::ws::ClientFrame>(data);
}

/// The REST bodies: a reply (parsed, validated as the conversation actor does, and built into each
/// provider's request body) and the admin's connection requests.
pub fn rest_bodies(data: &[u8]) {
    if let Ok(request) = serde_json::from_slice::<schema::api::SendMessageRequest>(data)
        && let Ok(crate::http::conversations::Requested::Content(content)) =
            crate::http::conversations::requested_content(request)
    {
        outbound(content);
    }
    let _ = serde_json::from_slice::<schema::api::CreateConnectionRequest>(data);
    let _ = serde_json::from_slice::<schema::api::UpdateConnectionRequest>(data);
    let _ = serde_json::from_slice::<schema::api::CreateTenantRequest>(data);
    let _ = serde_json::from_slice::<schema::api::CreateAgentRequest>(data);
}

fn outbound(content: MessageContent) {
    if actors::policy::validate_outbound(&content).is_err() {
        return;
    }
    let message = Outbound {
        to: "5511999990000".into(),
        content,
        reply_to: None,
        reference: None,
        message_tag: None,
    };
    let _ = whatsapp_cloud::client::payload(&message);
    let _ = messenger::client::payload(&message);
    let _ = zapi::client::request(&message);
}

fn check(events: &mut [InboundEvent]) {
    let _ = schema::limits::check_inbound(events);
}
