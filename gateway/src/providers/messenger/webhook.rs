//! Inbound Messenger and Instagram messaging webhooks. Each `messaging` item becomes an event:
//! a customer's message (text, attachments — one event per attachment —, quick replies), an echo of a
//! message the page sent, delivery receipts (`delivery.mids`), read receipts (`read.mid` on Instagram,
//! `read.watermark` on Messenger), postbacks (button taps) and reactions. Items of other kinds are
//! counted as ignored; nothing a customer sent is dropped: unknown message shapes stay `Unsupported`.

use super::super::{AccountEvents, ParsedWebhook};
use crate::providers::whatsapp_cloud::webhook::{MAX_PROVIDER_ID, WebhookError};
use jiff::Timestamp;
use schema::inbound::{InboundEvent, InboundMessage, InboundStatus};
use schema::records::{Contact, MediaKind, MessageContent, MessageStatus};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
struct Payload {
    object: String,
    #[serde(default)]
    entry: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    id: String,
    #[serde(default)]
    messaging: Vec<Value>,
    #[serde(default)]
    changes: Vec<Value>,
}

/// Parses a webhook whose `object` must be `expected_object` (`page` or `instagram`).
pub fn parse(body: &[u8], expected_object: &str) -> Result<ParsedWebhook, WebhookError> {
    let payload: Payload =
        serde_json::from_slice(body).map_err(|e| WebhookError::Malformed(e.to_string()))?;
    if payload.object != expected_object {
        return Err(WebhookError::Malformed(format!(
            "expected object {expected_object:?}, got {:?}",
            payload.object
        )));
    }
    let mut parsed = ParsedWebhook::default();
    for entry in payload.entry {
        parsed.ignored += entry.changes.len();
        let mut events = Vec::with_capacity(entry.messaging.len());
        for item in entry.messaging {
            let before = events.len();
            item_events(&entry.id, &item, &mut events)?;
            if events.len() == before {
                parsed.ignored += 1;
            }
        }
        parsed.batches.push(AccountEvents {
            account_id: entry.id,
            events,
        });
    }
    Ok(parsed)
}

fn item_events(
    account: &str,
    item: &Value,
    out: &mut Vec<InboundEvent>,
) -> Result<(), WebhookError> {
    let text = |v: &Value, p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_string);
    let sender = text(item, "/sender/id")
        .ok_or_else(|| WebhookError::Malformed("messaging item without sender".into()))?;
    let recipient = text(item, "/recipient/id").unwrap_or_else(|| account.to_string());
    let at = item
        .get("timestamp")
        .and_then(Value::as_i64)
        .and_then(|ms| Timestamp::from_millisecond(ms).ok())
        .unwrap_or_else(Timestamp::now);
    if let Some(message) = item.get("message") {
        let mid = text(message, "/mid")
            .filter(|mid| mid.len() <= MAX_PROVIDER_ID)
            .ok_or_else(|| {
                WebhookError::Malformed("message without a mid (or one over 512 bytes)".into())
            })?;
        let echo = message
            .get("is_echo")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        // For an echo the page is the sender and the contact is the recipient.
        let contact = if echo { recipient } else { sender };
        if message.get("is_deleted").and_then(Value::as_bool) == Some(true) {
            // The contact unsent a message (Instagram): it stays in the history, marked deleted.
            out.push(InboundEvent::Deleted {
                contact,
                provider_message_id: mid,
                at,
            });
            return Ok(());
        }
        // An inline reply names the message; a reply to the business's story names the story.
        let reply_to = text(message, "/reply_to/mid")
            .or_else(|| text(message, "/reply_to/story/id").map(|id| format!("story:{id}")));
        // Our own send's reference, echoed back (bounded: it is only ever one of our ids).
        let reference = text(message, "/metadata")
            .filter(|m| echo && m.len() <= schema::limits::MAX_PROVIDER_ID_BYTES);
        if reference
            .as_deref()
            .is_some_and(|r| r.ends_with(super::client::CAPTION_SUFFIX))
        {
            // The caption we sent after a media reply: part of that reply, not a message of its own.
            return Ok(());
        }
        for (index, content) in contents(message).into_iter().enumerate() {
            // One event per attachment; the first keeps the provider's id so receipts find it.
            let provider_message_id = if index == 0 {
                mid.clone()
            } else {
                format!("{mid}#{index}")
            };
            let inbound = InboundMessage {
                provider_message_id,
                from: Contact {
                    address: contact.clone(),
                    name: None,
                },
                sent_at: at,
                content,
                reply_to: reply_to.clone(),
                reference: if index == 0 { reference.clone() } else { None },
                forwarded: false,
                sender: None,
            };
            out.push(if echo {
                InboundEvent::Echo(inbound)
            } else {
                InboundEvent::Message(inbound)
            });
        }
    } else if let Some(delivery) = item.get("delivery") {
        let mids: Vec<&str> = delivery
            .get("mids")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if mids.is_empty()
            && let Some(watermark) = delivery.get("watermark").and_then(Value::as_i64)
        {
            // `mids` is optional: without it, everything sent before the watermark was delivered.
            out.push(InboundEvent::DeliveredUpTo {
                contact: sender.clone(),
                watermark: Timestamp::from_millisecond(watermark).unwrap_or(at),
            });
        }
        for mid in mids {
            out.push(InboundEvent::Status(InboundStatus {
                provider_message_id: mid.to_string(),
                recipient: sender.clone(),
                status: MessageStatus::Delivered,
                at,
                error: None,
            }));
        }
    } else if let Some(read) = item.get("read") {
        if let Some(mid) = text(read, "/mid") {
            out.push(InboundEvent::Status(InboundStatus {
                provider_message_id: mid,
                recipient: sender,
                status: MessageStatus::Read,
                at,
                error: None,
            }));
        } else if let Some(watermark) = read.get("watermark").and_then(Value::as_i64) {
            let watermark = Timestamp::from_millisecond(watermark).unwrap_or(at);
            out.push(InboundEvent::ReadUpTo {
                contact: sender,
                watermark,
            });
        }
    } else if let Some(postback) = item.get("postback") {
        let id = text(postback, "/mid")
            .unwrap_or_else(|| format!("postback.{sender}.{}", at.as_millisecond()));
        out.push(InboundEvent::Message(InboundMessage {
            provider_message_id: id,
            from: Contact {
                address: sender,
                name: None,
            },
            sent_at: at,
            content: MessageContent::InteractiveReply {
                kind: "postback".into(),
                id: text(postback, "/payload").unwrap_or_default(),
                title: text(postback, "/title").unwrap_or_default(),
                description: None,
            },
            reply_to: None,
            reference: None,
            forwarded: false,
            sender: None,
        }));
    } else if let Some(reaction) = item.get("reaction") {
        let target = text(reaction, "/mid").unwrap_or_default();
        let emoji = if text(reaction, "/action").as_deref() == Some("unreact") {
            String::new()
        } else {
            text(reaction, "/emoji")
                .or_else(|| text(reaction, "/reaction"))
                .unwrap_or_default()
        };
        out.push(InboundEvent::Message(InboundMessage {
            provider_message_id: format!("reaction.{target}.{sender}.{}", at.as_millisecond()),
            from: Contact {
                address: sender,
                name: None,
            },
            sent_at: at,
            content: MessageContent::Reaction { target, emoji },
            reply_to: None,
            reference: None,
            forwarded: false,
            sender: None,
        }));
    }
    Ok(())
}

/// The contents of a `message` object: its text, quick reply, or each attachment.
fn contents(message: &Value) -> Vec<MessageContent> {
    let text = message.get("text").and_then(Value::as_str);
    if let Some(quick) = message
        .pointer("/quick_reply/payload")
        .and_then(Value::as_str)
    {
        return vec![MessageContent::InteractiveReply {
            kind: "quick_reply".into(),
            id: quick.to_string(),
            title: text.unwrap_or_default().to_string(),
            description: None,
        }];
    }
    let attachments: Vec<MessageContent> = message
        .get("attachments")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(attachment)
        .collect();
    match (text, attachments.is_empty()) {
        (Some(body), true) => vec![MessageContent::Text {
            body: body.to_string(),
        }],
        (Some(body), false) => {
            let mut all = vec![MessageContent::Text {
                body: body.to_string(),
            }];
            all.extend(attachments);
            all
        }
        (None, false) => attachments,
        (None, true) => vec![MessageContent::Unsupported {
            provider_type: "message".into(),
            raw: message.clone(),
        }],
    }
}

fn attachment(item: &Value) -> MessageContent {
    let kind = item
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("unknown");
    let url = item.pointer("/payload/url").and_then(Value::as_str);
    let media_kind = match kind {
        // A story that mentions the business: its CDN URL (valid about a day), shown as an image.
        "image" | "story_mention" => Some(MediaKind::Image),
        "video" => Some(MediaKind::Video),
        "audio" => Some(MediaKind::Audio),
        "file" => Some(MediaKind::Document),
        _ => None,
    };
    match (media_kind, url) {
        // Messenger hands out a CDN URL instead of a media id: it is the reference the media
        // endpoint fetches.
        (Some(kind), Some(url)) => MessageContent::Media {
            kind,
            media_id: url.to_string(),
            mime_type: None,
            sha256: None,
            caption: (item.get("type").and_then(Value::as_str) == Some("story_mention"))
                .then(|| "story mention".to_string()),
            filename: None,
            voice: false,
            animated: false,
        },
        _ => MessageContent::Unsupported {
            provider_type: kind.to_string(),
            raw: item.clone(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instagram(items: serde_json::Value) -> Vec<InboundEvent> {
        let body = serde_json::json!({"object": "instagram", "entry": [{"id": "IG1", "time": 1, "messaging": items}]});
        parse(body.to_string().as_bytes(), "instagram")
            .unwrap()
            .batches
            .remove(0)
            .events
    }

    #[test]
    fn instagram_unsend_story_reply_and_story_mention_keep_what_they_say() {
        let events = instagram(serde_json::json!([
            {"sender": {"id": "IGSID"}, "recipient": {"id": "IG1"}, "timestamp": 1700000000000_i64,
             "message": {"mid": "ig_m_0", "is_deleted": true}},
            {"sender": {"id": "IGSID"}, "recipient": {"id": "IG1"}, "timestamp": 1700000000000_i64,
             "message": {"mid": "ig_m_1", "text": "amei", "reply_to": {"story": {"url": "https://cdn.example/s", "id": "st1"}}}},
            {"sender": {"id": "IGSID"}, "recipient": {"id": "IG1"}, "timestamp": 1700000000000_i64,
             "message": {"mid": "ig_m_2", "attachments": [{"type": "story_mention", "payload": {"url": "https://cdn.example/m"}}]}}
        ]));
        assert!(
            matches!(&events[0], InboundEvent::Deleted { provider_message_id, .. } if provider_message_id == "ig_m_0")
        );
        let InboundEvent::Message(reply) = &events[1] else {
            panic!("{:?}", events[1])
        };
        assert_eq!(reply.reply_to.as_deref(), Some("story:st1"));
        let InboundEvent::Message(mention) = &events[2] else {
            panic!("{:?}", events[2])
        };
        assert!(
            matches!(&mention.content, MessageContent::Media { media_id, .. } if media_id == "https://cdn.example/m")
        );
    }

    #[test]
    fn a_delivery_with_only_a_watermark_delivers_everything_before_it() {
        let body = serde_json::json!({"object": "page", "entry": [{"id": "PAGE1", "time": 1, "messaging": [
            {"sender": {"id": "PSID"}, "recipient": {"id": "PAGE1"}, "timestamp": 1700000000000_i64,
             "delivery": {"watermark": 1700000000000_i64}}]}]});
        let events = parse(body.to_string().as_bytes(), "page")
            .unwrap()
            .batches
            .remove(0)
            .events;
        assert!(
            matches!(&events[0], InboundEvent::DeliveredUpTo { contact, .. } if contact == "PSID")
        );
    }

    #[test]
    fn the_echo_of_a_media_replys_caption_is_part_of_it_not_a_message() {
        let body = serde_json::json!({"object": "page", "entry": [{"id": "PAGE1", "time": 1, "messaging": [
            {"sender": {"id": "PAGE1"}, "recipient": {"id": "PSID"}, "timestamp": 1700000000000_i64,
             "message": {"mid": "m_c", "is_echo": true, "metadata": "0192f1d6-0000-7000-8000-000000000001#caption", "text": "legenda"}}]}]});
        let parsed = parse(body.to_string().as_bytes(), "page").unwrap();
        assert!(parsed.batches[0].events.is_empty());
    }

    const PAGE_MESSAGE: &str = r#"{"object":"page","entry":[{"id":"PAGE_ID","time":1458692752478,"messaging":[
      {"sender":{"id":"PSID"},"recipient":{"id":"PAGE_ID"},"timestamp":1458692752478,
       "message":{"mid":"m_AG5Hz2U","text":"Olá, tudo bem?"}}]}]}"#;

    #[test]
    fn page_text_message_parses() {
        let parsed = parse(PAGE_MESSAGE.as_bytes(), "page").unwrap();
        assert_eq!(parsed.batches[0].account_id, "PAGE_ID");
        let InboundEvent::Message(m) = &parsed.batches[0].events[0] else {
            panic!("not a message")
        };
        assert_eq!(m.provider_message_id, "m_AG5Hz2U");
        assert_eq!(m.from.address, "PSID");
        assert_eq!(
            m.content,
            MessageContent::Text {
                body: "Olá, tudo bem?".into()
            }
        );
        assert_eq!(m.sent_at.as_millisecond(), 1_458_692_752_478);
        assert!(
            parse(PAGE_MESSAGE.as_bytes(), "instagram").is_err(),
            "the object must match the connection"
        );
    }

    #[test]
    fn attachments_echoes_deliveries_and_reads_parse() {
        let body = r#"{"object":"instagram","entry":[{"id":"IG_ID","time":1,"messaging":[
          {"sender":{"id":"IGSID"},"recipient":{"id":"IG_ID"},"timestamp":1700000000000,
           "message":{"mid":"m_1","attachments":[{"type":"image","payload":{"url":"https://cdn.example/1.jpg"}},
                                                 {"type":"story_mention","payload":{"url":"https://cdn.example/s"}}]}},
          {"sender":{"id":"IG_ID"},"recipient":{"id":"IGSID"},"timestamp":1700000000001,
           "message":{"mid":"m_2","text":"respondido pelo app","is_echo":true}},
          {"sender":{"id":"IGSID"},"recipient":{"id":"IG_ID"},"timestamp":1700000000002,"read":{"mid":"m_2"}},
          {"sender":{"id":"IGSID"},"recipient":{"id":"IG_ID"},"timestamp":1700000000003,"delivery":{"mids":["m_3","m_4"],"watermark":1}},
          {"sender":{"id":"IGSID"},"recipient":{"id":"IG_ID"},"timestamp":1700000000004,"read":{"watermark":1700000000000}},
          {"sender":{"id":"IGSID"},"recipient":{"id":"IG_ID"},"timestamp":1700000000005,"optin":{"ref":"x"}}]}]}"#;
        let parsed = parse(body.as_bytes(), "instagram").unwrap();
        let events = &parsed.batches[0].events;
        assert_eq!(parsed.ignored, 1, "the optin item");
        let InboundEvent::Message(image) = &events[0] else {
            panic!("image")
        };
        assert!(
            matches!(&image.content, MessageContent::Media { kind: MediaKind::Image, media_id, .. } if media_id == "https://cdn.example/1.jpg")
        );
        let InboundEvent::Message(story) = &events[1] else {
            panic!("story")
        };
        assert_eq!(story.provider_message_id, "m_1#1");
        assert!(
            matches!(&story.content, MessageContent::Media { caption: Some(c), .. } if c == "story mention"),
            "a story mention is the story's media, not unsupported: {:?}",
            story.content
        );
        let InboundEvent::Echo(echo) = &events[2] else {
            panic!("echo")
        };
        assert_eq!(
            echo.from.address, "IGSID",
            "an echo belongs to the contact's conversation"
        );
        assert!(
            matches!(&events[3], InboundEvent::Status(s) if s.status == MessageStatus::Read && s.provider_message_id == "m_2")
        );
        assert!(
            matches!(&events[4], InboundEvent::Status(s) if s.status == MessageStatus::Delivered && s.provider_message_id == "m_3")
        );
        assert!(matches!(&events[5], InboundEvent::Status(s) if s.provider_message_id == "m_4"));
        assert!(matches!(&events[6], InboundEvent::ReadUpTo { contact, .. } if contact == "IGSID"));
    }

    #[test]
    fn quick_replies_and_postbacks_are_interactive_replies() {
        let body = r#"{"object":"page","entry":[{"id":"P","messaging":[
          {"sender":{"id":"U"},"recipient":{"id":"P"},"timestamp":1,"message":{"mid":"m_q","text":"Sim","quick_reply":{"payload":"YES"}}},
          {"sender":{"id":"U"},"recipient":{"id":"P"},"timestamp":2,"postback":{"mid":"m_p","title":"Falar com atendente","payload":"HUMAN"}}]}]}"#;
        let parsed = parse(body.as_bytes(), "page").unwrap();
        let events = &parsed.batches[0].events;
        assert!(
            matches!(&events[0], InboundEvent::Message(m) if matches!(&m.content, MessageContent::InteractiveReply { id, .. } if id == "YES"))
        );
        assert!(
            matches!(&events[1], InboundEvent::Message(m) if matches!(&m.content, MessageContent::InteractiveReply { kind, id, .. } if kind == "postback" && id == "HUMAN"))
        );
    }
}
