//! Z-API webhooks into provider-neutral events. Z-API posts one JSON object per callback, told apart by
//! `type`: `ReceivedCallback` (a message, or with `fromMe` one the business sent from elsewhere),
//! `MessageStatusCallback` (statuses of the business's messages, several ids at once),
//! `ConnectedCallback` and `DisconnectedCallback` (the session). Z-API signs nothing: the route
//! authenticates a post by the secret in its URL before this parser runs.

use crate::providers::session::{
    SessionChange, SessionWebhook, SessionWebhookError, address_of_jid, str_at,
};
use jiff::Timestamp;
use schema::inbound::{InboundEvent, InboundMessage, InboundStatus};
use schema::records::{
    ConnectionStatus, Contact, MediaKind, MessageContent, MessageStatus, SharedContact,
};
use serde_json::Value;

/// Parses one callback body.
pub fn parse(body: &[u8]) -> Result<SessionWebhook, SessionWebhookError> {
    let callback: Value = serde_json::from_slice(body)
        .map_err(|e| SessionWebhookError::Malformed(format!("not JSON: {e}")))?;
    // The docs spell it both `ReceivedCallback` and `ReceivedCallBack`.
    let kind = str_at(&callback, "type")
        .ok_or_else(|| SessionWebhookError::Malformed("missing `type`".into()))?
        .to_ascii_lowercase();
    let mut parsed = SessionWebhook {
        instance: str_at(&callback, "instanceId").map(str::to_string),
        ..SessionWebhook::default()
    };
    match kind.as_str() {
        "receivedcallback" if callback.get("notification").is_some_and(|n| !n.is_null()) => {
            // Group joins, revokes, missed calls, profile changes: not messages.
            parsed.ignored += 1;
        }
        "receivedcallback" => match message(&callback)? {
            Some(event) => parsed.events.push(event),
            None => parsed.ignored += 1,
        },
        "messagestatuscallback" => {
            let statuses = statuses(&callback)?;
            if statuses.is_empty() {
                parsed.ignored += 1;
            }
            parsed.events.extend(statuses);
        }
        "connectedcallback" => {
            parsed.session = Some(SessionChange::Status(ConnectionStatus::Connected));
        }
        "disconnectedcallback" => {
            parsed.session = Some(SessionChange::Status(ConnectionStatus::Disconnected));
        }
        _ => parsed.ignored += 1,
    }
    Ok(parsed)
}

fn message(callback: &Value) -> Result<Option<InboundEvent>, SessionWebhookError> {
    let id = str_at(callback, "messageId")
        .ok_or_else(|| SessionWebhookError::Malformed("message without `messageId`".into()))?;
    let phone = str_at(callback, "phone")
        .ok_or_else(|| SessionWebhookError::Malformed("message without `phone`".into()))?;
    if callback.get("isNewsletter").and_then(Value::as_bool) == Some(true)
        || callback.get("broadcast").and_then(Value::as_bool) == Some(true)
        || phone == "status@broadcast"
    {
        // Channel posts and status stories are not conversations with a contact.
        return Ok(None);
    }
    let from_me = callback
        .get("fromMe")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let named = |key: &str| {
        str_at(callback, key)
            .filter(|n| !n.is_empty())
            .map(str::to_string)
    };
    let group =
        callback.get("isGroup").and_then(Value::as_bool) == Some(true) || phone.ends_with("-group");
    // In a group the chat is the group (`chatName`) and `participantPhone` the member who wrote.
    let (name, sender) = if group {
        let sender = str_at(callback, "participantPhone")
            .filter(|_| !from_me)
            .map(|p| Contact {
                address: address_of_jid(p),
                name: named("senderName"),
            });
        (named("chatName"), sender)
    } else {
        (named("senderName").or_else(|| named("chatName")), None)
    };
    let inbound = InboundMessage {
        provider_message_id: id.to_string(),
        from: Contact {
            // Groups arrive as `…-group` or a JID; people as bare digits.
            address: address_of_jid(phone),
            name: if from_me { None } else { name },
        },
        sent_at: millis(callback.get("momment")),
        content: content(callback),
        reply_to: str_at(callback, "referenceMessageId").map(str::to_string),
        reference: None,
        forwarded: false,
        sender,
    };
    Ok(Some(if from_me {
        InboundEvent::Echo(inbound)
    } else {
        InboundEvent::Message(inbound)
    }))
}

/// The content of a received callback: exactly one of its content objects is present.
fn content(callback: &Value) -> MessageContent {
    let media = |kind: MediaKind, part: &Value, url_key: &str| MessageContent::Media {
        kind,
        // Z-API hands out the file at a URL of its own; that URL is the reference we keep and
        // fetch through the media endpoint (no credential is needed for it).
        media_id: str_at(part, url_key).unwrap_or_default().to_string(),
        mime_type: str_at(part, "mimeType").map(str::to_string),
        sha256: None,
        caption: str_at(part, "caption").map(str::to_string),
        filename: str_at(part, "fileName").map(str::to_string),
        voice: part.get("ptt").and_then(Value::as_bool).unwrap_or(false),
        animated: part
            .get("isAnimated")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    };
    if let Some(body) = callback.pointer("/text/message").and_then(Value::as_str) {
        MessageContent::Text {
            body: body.to_string(),
        }
    } else if let Some(part) = callback.get("image") {
        media(MediaKind::Image, part, "imageUrl")
    } else if let Some(part) = callback.get("audio") {
        media(MediaKind::Audio, part, "audioUrl")
    } else if let Some(part) = callback.get("video") {
        media(MediaKind::Video, part, "videoUrl")
    } else if let Some(part) = callback.get("document") {
        media(MediaKind::Document, part, "documentUrl")
    } else if let Some(part) = callback.get("sticker") {
        media(MediaKind::Sticker, part, "stickerUrl")
    } else if let Some(part) = callback.get("location") {
        match (
            part.get("latitude").and_then(Value::as_f64),
            part.get("longitude").and_then(Value::as_f64),
        ) {
            (Some(latitude), Some(longitude)) => MessageContent::Location {
                latitude,
                longitude,
                name: str_at(part, "name").map(str::to_string),
                address: str_at(part, "address").map(str::to_string),
            },
            _ => unsupported("location", callback),
        }
    } else if let Some(part) = callback.get("contact") {
        MessageContent::Contacts {
            contacts: vec![SharedContact {
                name: str_at(part, "displayName").unwrap_or_default().to_string(),
                phones: part
                    .get("phones")
                    .and_then(Value::as_array)
                    .map(|phones| {
                        phones
                            .iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
                ..SharedContact::default()
            }],
        }
    } else if let Some(part) = callback.get("reaction") {
        MessageContent::Reaction {
            target: part
                .pointer("/referencedMessage/messageId")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            emoji: str_at(part, "value").unwrap_or_default().to_string(),
        }
    } else if let Some(part) = callback.get("buttonsResponseMessage") {
        MessageContent::InteractiveReply {
            kind: "button_reply".into(),
            id: str_at(part, "buttonId").unwrap_or_default().to_string(),
            title: str_at(part, "message").unwrap_or_default().to_string(),
            description: None,
        }
    } else if let Some(part) = callback.get("listResponseMessage") {
        MessageContent::InteractiveReply {
            kind: "list_reply".into(),
            id: str_at(part, "selectedRowId")
                .unwrap_or_default()
                .to_string(),
            title: str_at(part, "title").unwrap_or_default().to_string(),
            description: str_at(part, "message").map(str::to_string),
        }
    } else {
        unsupported("unknown", callback)
    }
}

fn unsupported(provider_type: &str, callback: &Value) -> MessageContent {
    MessageContent::Unsupported {
        provider_type: provider_type.to_string(),
        raw: callback.clone(),
    }
}

/// A status callback names several message ids that moved to one status.
fn statuses(callback: &Value) -> Result<Vec<InboundEvent>, SessionWebhookError> {
    let raw = str_at(callback, "status")
        .ok_or_else(|| SessionWebhookError::Malformed("status callback without `status`".into()))?;
    let status = match raw {
        "SENT" => MessageStatus::Sent,
        "RECEIVED" => MessageStatus::Delivered,
        "READ" | "PLAYED" => MessageStatus::Read,
        // READ_BY_ME and anything new: receipts of the contact's messages, nothing to move.
        _ => return Ok(Vec::new()),
    };
    let phone = str_at(callback, "phone").unwrap_or_default();
    let at = millis(callback.get("momment"));
    let ids = callback
        .get("ids")
        .and_then(Value::as_array)
        .ok_or_else(|| SessionWebhookError::Malformed("status callback without `ids`".into()))?;
    Ok(ids
        .iter()
        .filter_map(Value::as_str)
        .map(|id| {
            InboundEvent::Status(InboundStatus {
                provider_message_id: id.to_string(),
                recipient: address_of_jid(phone),
                status,
                at,
                error: None,
            })
        })
        .collect())
}

/// `momment` (Z-API's spelling): milliseconds since the epoch in most callbacks, seconds in some
/// examples, so read by magnitude; now when absent.
fn millis(value: Option<&Value>) -> Timestamp {
    value
        .and_then(Value::as_i64)
        .and_then(|n| {
            if n < 100_000_000_000 {
                n.checked_mul(1000)
            } else {
                Some(n)
            }
        })
        .and_then(|ms| Timestamp::from_millisecond(ms).ok())
        .unwrap_or_else(Timestamp::now)
}

#[cfg(test)]
mod tests;
