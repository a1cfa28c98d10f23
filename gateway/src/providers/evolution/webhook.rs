//! Evolution API (v2, Baileys) webhooks into provider-neutral events. Every post is one envelope
//! `{event, instance, data, date_time, …}`; the events served are `messages.upsert` (messages, and our
//! messages typed on the phone, with `key.fromMe`), `send.message` (messages sent through the API:
//! echoes of our own sends), `messages.update` (delivery statuses), `connection.update` (session
//! state) and `qrcode.updated` (a QR code to pair the number). Event names are accepted in
//! both spellings Evolution uses (`messages.upsert`, `MESSAGES_UPSERT`). Evolution signs nothing: the
//! route authenticates a post by the secret in its URL before this parser runs.

use crate::providers::session::{
    SessionChange, SessionWebhook, SessionWebhookError, address_of_jid, str_at,
};
use jiff::Timestamp;
use schema::inbound::{InboundEvent, InboundMessage, InboundStatus};
use schema::records::{
    ConnectionStatus, Contact, MediaKind, MessageContent, MessageStatus, ProviderError,
    SharedContact,
};
use serde_json::Value;

/// Parses one webhook body.
pub fn parse(body: &[u8]) -> Result<SessionWebhook, SessionWebhookError> {
    let envelope: Value = serde_json::from_slice(body)
        .map_err(|e| SessionWebhookError::Malformed(format!("not JSON: {e}")))?;
    let event = envelope
        .get("event")
        .and_then(Value::as_str)
        .ok_or_else(|| SessionWebhookError::Malformed("missing `event`".into()))?
        .to_ascii_lowercase()
        .replace('_', ".");
    let data = envelope.get("data").cloned().unwrap_or(Value::Null);
    let mut parsed = SessionWebhook {
        instance: str_at(&envelope, "instance").map(str::to_string),
        ..SessionWebhook::default()
    };
    match event.as_str() {
        "messages.upsert" | "send.message" => {
            // One message per post in v2; some setups batch them in an array.
            for item in as_list(data) {
                match message(&item)? {
                    Some(event) => parsed.events.push(event),
                    None => parsed.ignored += 1,
                }
            }
        }
        "messages.update" => {
            for item in as_list(data) {
                match status(&item) {
                    Some(status) => parsed.events.push(InboundEvent::Status(status)),
                    None => parsed.ignored += 1,
                }
            }
        }
        "connection.update" => {
            let state = data.get("state").and_then(Value::as_str).unwrap_or("");
            parsed.session = match state {
                "open" => Some(SessionChange::Status(ConnectionStatus::Connected)),
                "connecting" => Some(SessionChange::Status(ConnectionStatus::Connecting)),
                "close" => Some(SessionChange::Status(ConnectionStatus::Disconnected)),
                // The QR code limit was reached: someone must start pairing again.
                "refused" => Some(SessionChange::Status(ConnectionStatus::Error)),
                _ => {
                    parsed.ignored += 1;
                    None
                }
            };
        }
        "qrcode.updated" => {
            let qr = data.get("qrcode").unwrap_or(&data);
            let code = qr
                .get("base64")
                .and_then(Value::as_str)
                .or_else(|| qr.get("code").and_then(Value::as_str))
                .filter(|c| !c.is_empty());
            parsed.session = Some(match code {
                Some(code) => SessionChange::Qr(code.to_string()),
                // `{message: "QR code limit reached…", statusCode: 500}`: pairing gave up.
                None => SessionChange::Status(ConnectionStatus::Error),
            });
        }
        _ => parsed.ignored += 1,
    }
    Ok(parsed)
}

fn as_list(data: Value) -> Vec<Value> {
    match data {
        Value::Array(items) => items,
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

/// A `messages.upsert` item: a message from the contact, or an echo of one the business sent.
fn message(item: &Value) -> Result<Option<InboundEvent>, SessionWebhookError> {
    let key = item
        .get("key")
        .ok_or_else(|| SessionWebhookError::Malformed("message without `key`".into()))?;
    let id = str_at(key, "id")
        .ok_or_else(|| SessionWebhookError::Malformed("message without `key.id`".into()))?;
    let jid = str_at(key, "remoteJid")
        .ok_or_else(|| SessionWebhookError::Malformed("message without `key.remoteJid`".into()))?;
    // A contact addressed by its privacy id (`…@lid`) carries its phone JID beside it.
    let jid = match str_at(key, "remoteJidAlt") {
        Some(alt) if jid.ends_with("@lid") && alt.ends_with("@s.whatsapp.net") => alt,
        _ => jid,
    };
    if jid == "status@broadcast" {
        // Contacts' status stories, not a conversation.
        return Ok(None);
    }
    let from_me = key.get("fromMe").and_then(Value::as_bool).unwrap_or(false);
    let message = item.get("message").cloned().unwrap_or(Value::Null);
    let provider_type = str_at(item, "messageType").unwrap_or("unknown");
    let (content, quoted) = content(&message, provider_type, id);
    // Since v2.2 the quote context sits beside the message, not inside it.
    let reply_to = item
        .pointer("/contextInfo/stanzaId")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or(quoted);
    let push_name = if from_me {
        None
    } else {
        str_at(item, "pushName").map(str::to_string)
    };
    // In a group the chat is the group and `participant` the member who wrote (its phone JID beside
    // a `…@lid` one); the group's own name is not in the message.
    let group = jid.ends_with("@g.us");
    let sender = if group && !from_me {
        let participant = match (str_at(key, "participant"), str_at(key, "participantAlt")) {
            (Some(lid), Some(alt)) if lid.ends_with("@lid") && alt.ends_with("@s.whatsapp.net") => {
                Some(alt)
            }
            (participant, _) => participant,
        };
        participant.map(|p| Contact {
            address: address_of_jid(p),
            name: push_name.clone(),
        })
    } else {
        None
    };
    let inbound = InboundMessage {
        provider_message_id: id.to_string(),
        from: Contact {
            address: address_of_jid(jid),
            name: if group { None } else { push_name },
        },
        sent_at: timestamp(item.get("messageTimestamp")),
        content,
        reply_to,
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

/// The content of a Baileys message object, and the id of the message it quotes.
fn content(message: &Value, provider_type: &str, id: &str) -> (MessageContent, Option<String>) {
    let reply_to = message
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
        .find_map(|part| part.pointer("/contextInfo/stanzaId"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let text = |s: &str| MessageContent::Text {
        body: s.to_string(),
    };
    let media = |kind: MediaKind, part: &Value| MessageContent::Media {
        kind,
        // Evolution serves a message's media by the message id (`getBase64FromMediaMessage`).
        media_id: id.to_string(),
        mime_type: str_at(part, "mimetype").map(str::to_string),
        sha256: str_at(part, "fileSha256").map(str::to_string),
        caption: str_at(part, "caption").map(str::to_string),
        filename: str_at(part, "fileName").map(str::to_string),
        voice: part.get("ptt").and_then(Value::as_bool).unwrap_or(false),
        animated: part
            .get("isAnimated")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    };
    let content = if let Some(body) = str_at(message, "conversation") {
        text(body)
    } else if let Some(body) = message
        .pointer("/extendedTextMessage/text")
        .and_then(Value::as_str)
    {
        text(body)
    } else if let Some(part) = message.get("imageMessage") {
        media(MediaKind::Image, part)
    } else if let Some(part) = message.get("audioMessage") {
        media(MediaKind::Audio, part)
    } else if let Some(part) = message.get("videoMessage") {
        media(MediaKind::Video, part)
    } else if let Some(part) = message
        .get("documentMessage")
        .or_else(|| message.pointer("/documentWithCaptionMessage/message/documentMessage"))
    {
        media(MediaKind::Document, part)
    } else if let Some(part) = message.get("stickerMessage") {
        media(MediaKind::Sticker, part)
    } else if let Some(part) = message.get("locationMessage") {
        match (
            part.get("degreesLatitude").and_then(Value::as_f64),
            part.get("degreesLongitude").and_then(Value::as_f64),
        ) {
            (Some(latitude), Some(longitude)) => MessageContent::Location {
                latitude,
                longitude,
                name: str_at(part, "name").map(str::to_string),
                address: str_at(part, "address").map(str::to_string),
            },
            _ => unsupported(provider_type, message),
        }
    } else if let Some(part) = message.get("contactMessage") {
        MessageContent::Contacts {
            contacts: vec![shared_contact(part)],
        }
    } else if let Some(list) = message
        .pointer("/contactsArrayMessage/contacts")
        .and_then(Value::as_array)
    {
        MessageContent::Contacts {
            contacts: list.iter().map(shared_contact).collect(),
        }
    } else if let Some(part) = message.get("reactionMessage") {
        MessageContent::Reaction {
            target: part
                .pointer("/key/id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            emoji: str_at(part, "text").unwrap_or_default().to_string(),
        }
    } else if let Some(part) = message.get("buttonsResponseMessage") {
        MessageContent::InteractiveReply {
            kind: "button_reply".into(),
            id: str_at(part, "selectedButtonId")
                .unwrap_or_default()
                .to_string(),
            title: str_at(part, "selectedDisplayText")
                .unwrap_or_default()
                .to_string(),
            description: None,
        }
    } else if let Some(part) = message.get("listResponseMessage") {
        MessageContent::InteractiveReply {
            kind: "list_reply".into(),
            id: part
                .pointer("/singleSelectReply/selectedRowId")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            title: str_at(part, "title").unwrap_or_default().to_string(),
            description: str_at(part, "description").map(str::to_string),
        }
    } else {
        unsupported(provider_type, message)
    };
    (content, reply_to)
}

fn unsupported(provider_type: &str, message: &Value) -> MessageContent {
    MessageContent::Unsupported {
        provider_type: provider_type.to_string(),
        raw: message.clone(),
    }
}

/// A contact card: its display name and the phone numbers of its vCard (`TEL…:+55 11 …`, with the
/// WhatsApp id when present: `TEL;waid=5511…:+55 11 …`).
fn shared_contact(part: &Value) -> SharedContact {
    let vcard = str_at(part, "vcard").unwrap_or_default();
    let phones = vcard
        .lines()
        .filter(|line| line.to_ascii_uppercase().starts_with("TEL") || line.contains(".TEL"))
        .filter_map(|line| {
            let waid = line
                .split(';')
                .find_map(|p| p.strip_prefix("waid="))
                .and_then(|p| p.split(':').next());
            waid.map(str::to_string)
                .or_else(|| line.rsplit(':').next().map(|n| n.trim().to_string()))
        })
        .filter(|n| !n.is_empty())
        .collect();
    SharedContact {
        name: str_at(part, "displayName").unwrap_or_default().to_string(),
        phones,
        ..SharedContact::default()
    }
}

/// A `messages.update` item: the status of a message the business sent.
fn status(item: &Value) -> Option<InboundStatus> {
    let id = str_at(item, "keyId").or_else(|| item.pointer("/key/id").and_then(Value::as_str))?;
    let jid = str_at(item, "remoteJid")
        .or_else(|| item.pointer("/key/remoteJid").and_then(Value::as_str))?;
    let from_me = item
        .get("fromMe")
        .or_else(|| item.pointer("/key/fromMe"))
        .and_then(Value::as_bool)
        .unwrap_or(true);
    if !from_me {
        // Receipts of the contact's own messages (our read marks): nothing to move.
        return None;
    }
    let raw = str_at(item, "status")
        .or_else(|| item.pointer("/update/status").and_then(Value::as_str))?;
    let status = match raw {
        "SERVER_ACK" => MessageStatus::Sent,
        "DELIVERY_ACK" => MessageStatus::Delivered,
        "READ" | "PLAYED" => MessageStatus::Read,
        "ERROR" => MessageStatus::Failed,
        _ => return None,
    };
    Some(InboundStatus {
        provider_message_id: id.to_string(),
        recipient: address_of_jid(jid),
        status,
        at: Timestamp::now(),
        error: (status == MessageStatus::Failed).then(|| ProviderError {
            code: None,
            title: "Evolution reported an error delivering the message".into(),
            detail: None,
        }),
    })
}

/// `messageTimestamp`: seconds, as a number or a string (Baileys' Long), or now when absent.
fn timestamp(value: Option<&Value>) -> Timestamp {
    let seconds = match value {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    };
    seconds
        .and_then(|s| Timestamp::from_second(s).ok())
        .unwrap_or_else(Timestamp::now)
}

#[cfg(test)]
mod tests;
