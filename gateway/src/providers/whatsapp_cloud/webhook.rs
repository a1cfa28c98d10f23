//! Inbound side of the WhatsApp Cloud API: signature check and payload parsing.
//!
//! Parsing is total: every message becomes an `InboundEvent`; types not understood yet are kept as
//! `MessageContent::Unsupported` with the raw object. Only a payload that is not a WhatsApp webhook at all,
//! or a message without the fields needed to store it once (`id`, `from`), is an error.

use hmac::{Hmac, Mac};
use jiff::Timestamp;
use schema::inbound::{InboundEvent, InboundMessage, InboundStatus};
use schema::records::{Contact, MessageStatus, ProviderError};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use sha2::Sha256;

/// Why a webhook body was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebhookError {
    #[error("missing X-Hub-Signature-256 header")]
    MissingSignature,
    #[error("X-Hub-Signature-256 does not match the body")]
    BadSignature,
    #[error("malformed webhook payload: {0}")]
    Malformed(String),
}

/// Longest provider message id accepted (real ones are under 100 bytes): ids become storage keys.
pub const MAX_PROVIDER_ID: usize = 512;

/// Checks `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app_secret, raw body)>` in constant time.
pub fn verify_signature(
    app_secret: &str,
    body: &[u8],
    header: Option<&str>,
) -> Result<(), WebhookError> {
    let header = header.ok_or(WebhookError::MissingSignature)?;
    let hex_digest = header
        .trim()
        .strip_prefix("sha256=")
        .ok_or(WebhookError::BadSignature)?;
    let expected = hex::decode(hex_digest).map_err(|_| WebhookError::BadSignature)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(app_secret.as_bytes())
        .map_err(|_| WebhookError::BadSignature)?;
    mac.update(body);
    mac.verify_slice(&expected)
        .map_err(|_| WebhookError::BadSignature)
}

/// Signs a body the way Meta does (used by tests, the load generator and the docs).
pub fn sign(app_secret: &str, body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(app_secret.as_bytes()) else {
        return String::new();
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

pub use crate::providers::{AccountEvents, ParsedWebhook};

#[derive(Deserialize)]
struct Payload<'a> {
    object: String,
    #[serde(default, borrow)]
    entry: Vec<Entry<'a>>,
}

#[derive(Deserialize)]
struct Entry<'a> {
    #[serde(default, borrow)]
    changes: Vec<Change<'a>>,
}

/// A change's `value` stays raw (checked to be JSON, not built into a tree) until its `field` says
/// how to read it: then one pass over its bytes into typed structs (each message object still as a
/// `Value`, which `content` reads), not a `Value` tree of the whole value and a second pass. A change
/// of another field is skipped unread: its bytes are only scanned, so a lone surrogate escape or an
/// out-of-range number in it no longer refuses the webhook. A repeated key inside a messages value
/// is refused (the tree kept the last one); Meta sends neither.
#[derive(Deserialize)]
struct Change<'a> {
    field: String,
    #[serde(default, borrow)]
    value: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ChangeValue {
    metadata: Metadata,
    #[serde(default)]
    contacts: Vec<WaContact>,
    #[serde(default)]
    messages: Vec<Value>,
    #[serde(default)]
    statuses: Vec<WaStatus>,
}

#[derive(Deserialize)]
struct Metadata {
    phone_number_id: String,
}

/// A contact of the payload. Since 2026 Meta may omit `wa_id` (and the message's `from`) for a user
/// known only by username: `user_id` (the business-scoped user id, BSUID) is always there.
#[derive(Deserialize)]
struct WaContact {
    #[serde(default)]
    wa_id: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    profile: Option<Profile>,
}

#[derive(Deserialize)]
struct Profile {
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
struct WaStatus {
    id: String,
    status: String,
    #[serde(default)]
    timestamp: Option<String>,
    /// Omitted when the message went to a BSUID and Meta cannot share the phone number.
    #[serde(default)]
    recipient_id: Option<String>,
    #[serde(default)]
    recipient_user_id: Option<String>,
    #[serde(default)]
    errors: Vec<WaError>,
}

#[derive(Deserialize)]
struct WaError {
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    error_data: Option<WaErrorData>,
}

#[derive(Deserialize)]
struct WaErrorData {
    #[serde(default)]
    details: Option<String>,
}

/// Parses a webhook body (already signature-checked).
pub fn parse(body: &[u8]) -> Result<ParsedWebhook, WebhookError> {
    let payload: Payload<'_> =
        serde_json::from_slice(body).map_err(|e| WebhookError::Malformed(e.to_string()))?;
    if payload.object != "whatsapp_business_account" {
        return Err(WebhookError::Malformed(format!(
            "unexpected object {:?}",
            payload.object
        )));
    }
    let mut parsed = ParsedWebhook::default();
    for change in payload.entry.into_iter().flat_map(|e| e.changes) {
        if change.field != "messages" {
            parsed.ignored += 1;
            continue;
        }
        let raw = change.value.map_or("null", RawValue::get);
        let value: ChangeValue = serde_json::from_str(raw)
            .map_err(|e| WebhookError::Malformed(format!("messages change: {e}")))?;
        let mut events = Vec::with_capacity(value.messages.len() + value.statuses.len());
        for raw in value.messages {
            events.push(InboundEvent::Message(parse_message(raw, &value.contacts)?));
        }
        for status in value.statuses {
            if let Some(status) = parse_status(status) {
                events.push(InboundEvent::Status(status));
            }
        }
        parsed.batches.push(AccountEvents {
            account_id: value.metadata.phone_number_id,
            events,
        });
    }
    Ok(parsed)
}

fn parse_message(raw: Value, contacts: &[WaContact]) -> Result<InboundMessage, WebhookError> {
    let field = |name: &str| raw.get(name).and_then(Value::as_str).map(str::to_string);
    let id = field("id")
        .filter(|id| id.len() <= MAX_PROVIDER_ID)
        .ok_or_else(|| {
            WebhookError::Malformed("message without an id (or one over 512 bytes)".into())
        })?;
    // The phone number when Meta shares it (a conversation keeps the address it started with), else
    // the sender's BSUID: never an empty address, which would file every such sender together.
    let phone = field("from").filter(|f| !f.is_empty());
    let user_id = field("from_user_id").filter(|f| !f.is_empty());
    let from = phone.clone().or(user_id.clone()).ok_or_else(|| {
        WebhookError::Malformed(format!("message {id} has neither from nor from_user_id"))
    })?;
    let kind = field("type").unwrap_or_else(|| "unknown".into());
    let name = contacts
        .iter()
        .find(|c| {
            (phone.is_some() && c.wa_id == phone) || (user_id.is_some() && c.user_id == user_id)
        })
        .or_else(|| (contacts.len() == 1).then(|| &contacts[0]))
        .and_then(|c| c.profile.as_ref())
        .and_then(|p| p.name.clone());
    let sent_at = field("timestamp")
        .as_deref()
        .and_then(parse_timestamp)
        .unwrap_or_else(Timestamp::now);
    let reply_to = raw
        .pointer("/context/id")
        .and_then(Value::as_str)
        .map(str::to_string);
    let raw_forwarded = ["/context/forwarded", "/context/frequently_forwarded"]
        .iter()
        .any(|p| raw.pointer(p).and_then(Value::as_bool) == Some(true));
    let content = super::content::content(&kind, raw);
    Ok(InboundMessage {
        provider_message_id: id,
        from: Contact {
            address: from,
            name,
        },
        sent_at,
        content,
        reply_to,
        reference: None,
        forwarded: raw_forwarded,
        sender: None,
    })
}

fn parse_status(status: WaStatus) -> Option<InboundStatus> {
    let value = match status.status.as_str() {
        "sent" => MessageStatus::Sent,
        "delivered" => MessageStatus::Delivered,
        "read" => MessageStatus::Read,
        "failed" => MessageStatus::Failed,
        other => {
            tracing::debug!(status = other, "ignoring WhatsApp status kind");
            return None;
        }
    };
    let error = status.errors.into_iter().next().map(|e| ProviderError {
        code: e.code,
        title: e
            .title
            .or(e.message)
            .unwrap_or_else(|| "unknown error".into()),
        detail: e.error_data.and_then(|d| d.details),
    });
    let recipient = status
        .recipient_id
        .filter(|r| !r.is_empty())
        .or(status.recipient_user_id.filter(|r| !r.is_empty()))?;
    Some(InboundStatus {
        provider_message_id: status.id,
        recipient,
        status: value,
        at: status
            .timestamp
            .as_deref()
            .and_then(parse_timestamp)
            .unwrap_or_else(Timestamp::now),
        error,
    })
}

/// Meta sends Unix seconds as a string.
fn parse_timestamp(seconds: &str) -> Option<Timestamp> {
    Timestamp::from_second(seconds.parse().ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use schema::records::MessageContent;

    const DOCUMENTED_TEXT: &str = r#"{
      "object": "whatsapp_business_account",
      "entry": [{
        "id": "102290129340398",
        "changes": [{
          "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
            "contacts": [{"profile": {"name": "Sheena Nelson"}, "wa_id": "16505551234"}],
            "messages": [{
              "from": "16505551234", "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
              "timestamp": "1749416383", "type": "text", "text": {"body": "Does it come in another color?"}
            }]
          },
          "field": "messages"
        }]
      }]
    }"#;

    #[test]
    fn documented_text_message_parses_with_contact_name() {
        let parsed = parse(DOCUMENTED_TEXT.as_bytes()).unwrap();
        assert_eq!(parsed.batches.len(), 1);
        assert_eq!(parsed.batches[0].account_id, "106540352242922");
        let InboundEvent::Message(m) = &parsed.batches[0].events[0] else {
            panic!("not a message")
        };
        assert_eq!(m.from.address, "16505551234");
        assert_eq!(m.from.name.as_deref(), Some("Sheena Nelson"));
        assert_eq!(
            m.content,
            MessageContent::Text {
                body: "Does it come in another color?".into()
            }
        );
        assert_eq!(m.sent_at.as_second(), 1_749_416_383);
    }

    /// Meta's documented payload of a user known only by username (May 2026): no `from`, no `wa_id`.
    #[test]
    fn a_sender_known_only_by_username_is_keyed_by_their_user_id() {
        let body = r#"{"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{
          "field": "messages", "value": {"messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
            "contacts": [{"profile": {"name": "Sheena Nelson", "username": "@realsheenanelson"},
                          "user_id": "US.13491208655302741918", "parent_user_id": "US.ENT.11815799212886844830"}],
            "messages": [{"from_user_id": "US.13491208655302741918", "from_parent_user_id": "US.ENT.11815799212886844830",
                          "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
                          "timestamp": "1749416383", "type": "text", "text": {"body": "Does it come in another color?"}}],
            "statuses": [{"id": "wamid.OUT", "status": "delivered", "timestamp": "1749416390",
                          "recipient_user_id": "US.13491208655302741918"}]}}]}]}"#;
        let parsed = parse(body.as_bytes()).unwrap();
        let events = &parsed.batches[0].events;
        let InboundEvent::Message(m) = &events[0] else {
            panic!("not a message")
        };
        assert_eq!(m.from.address, "US.13491208655302741918");
        assert_eq!(m.from.name.as_deref(), Some("Sheena Nelson"));
        let InboundEvent::Status(s) = &events[1] else {
            panic!("not a status")
        };
        assert_eq!(s.recipient, "US.13491208655302741918");
    }

    #[test]
    fn forwarded_messages_and_full_contact_cards_keep_what_meta_sent() {
        let body = DOCUMENTED_TEXT.replace(
            r#""type": "text", "text": {"body": "Does it come in another color?"}"#,
            r#""type": "contacts", "context": {"forwarded": true}, "contacts": [{"name": {"formatted_name": "Ana Souza"},
               "phones": [{"phone": "+55 11 99999-0000", "wa_id": "5511999990000"}],
               "emails": [{"email": "ana@example.com", "type": "WORK"}], "org": {"company": "Acme"},
               "urls": [{"url": "https://acme.example", "type": "WORK"}]}]"#,
        );
        let parsed = parse(body.as_bytes()).unwrap();
        let InboundEvent::Message(m) = &parsed.batches[0].events[0] else {
            panic!("not a message")
        };
        assert!(m.forwarded);
        let MessageContent::Contacts { contacts } = &m.content else {
            panic!("{:?}", m.content)
        };
        assert_eq!(contacts[0].emails, vec!["ana@example.com".to_string()]);
        assert_eq!(contacts[0].organization.as_deref(), Some("Acme"));
        assert_eq!(contacts[0].urls, vec!["https://acme.example".to_string()]);
    }

    #[test]
    fn a_message_with_no_sender_at_all_is_refused() {
        let body = DOCUMENTED_TEXT.replace(r#""from": "16505551234", "#, r#""from": "", "#);
        assert!(parse(body.as_bytes()).is_err());
    }

    #[test]
    fn unknown_message_type_is_kept_as_unsupported_with_raw_payload() {
        let body = DOCUMENTED_TEXT.replace(
            r#""type": "text", "text": {"body": "Does it come in another color?"}"#,
            r#""type": "system", "system": {"body": "customer changed number", "wa_id": "1234"}"#,
        );
        let parsed = parse(body.as_bytes()).unwrap();
        let InboundEvent::Message(m) = &parsed.batches[0].events[0] else {
            panic!("not a message")
        };
        let MessageContent::Unsupported { provider_type, raw } = &m.content else {
            panic!("not unsupported")
        };
        assert_eq!(provider_type, "system");
        assert_eq!(raw["system"]["wa_id"], "1234");
    }

    #[test]
    fn batched_entries_and_statuses_all_parse() {
        let body = r#"{"object":"whatsapp_business_account","entry":[
          {"id":"1","changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"A"},
             "messages":[{"from":"1","id":"m1","timestamp":"1","type":"text","text":{"body":"a"}},
                         {"from":"2","id":"m2","timestamp":"2","type":"text","text":{"body":"b"}}]}}]},
          {"id":"2","changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"B"},
             "statuses":[{"id":"wamid.1","status":"failed","timestamp":"3","recipient_id":"9",
               "errors":[{"code":131047,"title":"Re-engagement message","error_data":{"details":"24h"}}]},
               {"id":"wamid.2","status":"deleted","timestamp":"3","recipient_id":"9"}]}}]},
          {"id":"3","changes":[{"field":"account_update","value":{}}]}]}"#;
        let parsed = parse(body.as_bytes()).unwrap();
        assert_eq!(parsed.ignored, 1);
        assert_eq!(parsed.batches[0].events.len(), 2);
        assert_eq!(
            parsed.batches[1].events.len(),
            1,
            "unknown status kinds are skipped"
        );
        let InboundEvent::Status(s) = &parsed.batches[1].events[0] else {
            panic!("not a status")
        };
        assert_eq!(s.status, MessageStatus::Failed);
        assert_eq!(s.error.as_ref().and_then(|e| e.code), Some(131047));
        assert_eq!(
            s.error.as_ref().and_then(|e| e.detail.clone()).as_deref(),
            Some("24h")
        );
    }

    #[test]
    fn signature_must_match_body_and_secret() {
        let body = DOCUMENTED_TEXT.as_bytes();
        let good = sign("secret", body);
        assert_eq!(verify_signature("secret", body, Some(&good)), Ok(()));
        assert_eq!(
            verify_signature("other", body, Some(&good)),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify_signature("secret", b"{}", Some(&good)),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify_signature("secret", body, None),
            Err(WebhookError::MissingSignature)
        );
        assert_eq!(
            verify_signature("secret", body, Some("sha256=zz")),
            Err(WebhookError::BadSignature)
        );
    }

    #[test]
    fn non_whatsapp_objects_and_messages_without_id_are_malformed() {
        assert!(matches!(
            parse(br#"{"object":"page","entry":[]}"#),
            Err(WebhookError::Malformed(_))
        ));
        let body = r#"{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages",
          "value":{"metadata":{"phone_number_id":"A"},"messages":[{"from":"1","type":"text"}]}}]}]}"#;
        assert!(matches!(
            parse(body.as_bytes()),
            Err(WebhookError::Malformed(_))
        ));
    }

    /// The change's value is read from its raw bytes: escapes in it are still decoded, a missing one
    /// is refused, and a change of another field is counted as ignored without being read.
    #[test]
    fn a_change_value_is_read_from_its_raw_bytes() {
        let body = r#"{"object":"whatsapp_business_account","entry":[{"changes":[
          {"field":"account_update","value":{"anything":[1,2,{"x":null}]}},
          {"field":"messages","value":{"metadata":{"phone_number_id":"A\u0042"},
            "messages":[{"from":"1","id":"w1","type":"text","text":{"body":"caf\u00e9 \"ok\""}}]}}]}]}"#;
        let parsed = parse(body.as_bytes()).unwrap();
        assert_eq!(parsed.ignored, 1);
        assert_eq!(parsed.batches[0].account_id, "AB");
        let InboundEvent::Message(m) = &parsed.batches[0].events[0] else {
            panic!("not a message")
        };
        assert_eq!(
            m.content,
            MessageContent::Text {
                body: "café \"ok\"".into()
            }
        );
        let without_value =
            br#"{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages"}]}]}"#;
        assert!(matches!(
            parse(without_value),
            Err(WebhookError::Malformed(_))
        ));
    }
}
