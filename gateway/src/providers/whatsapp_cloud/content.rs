//! WhatsApp message objects → provider-neutral `MessageContent`, one arm per documented type: text,
//! image/audio/video/document/sticker (as media references), location, contacts, interactive button
//! and list replies, template quick-reply buttons, reactions. Anything else, or a known type whose
//! object does not have the fields we need, becomes `Unsupported` with the raw object: kept, never
//! dropped, never an error.

use schema::records::{MediaKind, MessageContent, SharedContact};
use serde_json::Value;

/// The content of one message object of type `kind`.
pub fn content(kind: &str, raw: Value) -> MessageContent {
    known(kind, &raw).unwrap_or(MessageContent::Unsupported {
        provider_type: kind.to_string(),
        raw,
    })
}

fn known(kind: &str, raw: &Value) -> Option<MessageContent> {
    let text = |v: &Value, pointer: &str| {
        v.pointer(pointer)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let object = raw.get(kind)?;
    Some(match kind {
        "text" => MessageContent::Text {
            body: text(object, "/body")?,
        },
        "image" | "audio" | "video" | "document" | "sticker" => MessageContent::Media {
            kind: match kind {
                "image" => MediaKind::Image,
                "audio" => MediaKind::Audio,
                "video" => MediaKind::Video,
                "document" => MediaKind::Document,
                _ => MediaKind::Sticker,
            },
            media_id: text(object, "/id")?,
            mime_type: text(object, "/mime_type"),
            sha256: text(object, "/sha256"),
            caption: text(object, "/caption"),
            filename: text(object, "/filename"),
            voice: object
                .get("voice")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            animated: object
                .get("animated")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        },
        "location" => MessageContent::Location {
            latitude: object.get("latitude").and_then(Value::as_f64)?,
            longitude: object.get("longitude").and_then(Value::as_f64)?,
            name: text(object, "/name"),
            address: text(object, "/address"),
        },
        "contacts" => MessageContent::Contacts {
            contacts: object
                .as_array()?
                .iter()
                .map(|card| {
                    let list = |field: &str, key: &str| -> Vec<String> {
                        card.get(field)
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                            .filter_map(|item| text(item, key))
                            .collect()
                    };
                    SharedContact {
                        name: text(card, "/name/formatted_name").unwrap_or_default(),
                        phones: card
                            .get("phones")
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                            .filter_map(|p| text(p, "/phone").or_else(|| text(p, "/wa_id")))
                            .collect(),
                        emails: list("emails", "/email"),
                        organization: text(card, "/org/company"),
                        urls: list("urls", "/url"),
                    }
                })
                .collect(),
        },
        "interactive" => {
            let reply_kind = text(object, "/type")?;
            let reply = object.get(&reply_kind)?;
            MessageContent::InteractiveReply {
                id: text(reply, "/id")?,
                title: text(reply, "/title").unwrap_or_default(),
                description: text(reply, "/description"),
                kind: reply_kind,
            }
        }
        "button" => MessageContent::InteractiveReply {
            kind: "button".into(),
            id: text(object, "/payload").unwrap_or_default(),
            title: text(object, "/text")?,
            description: None,
        },
        "reaction" => MessageContent::Reaction {
            target: text(object, "/message_id")?,
            emoji: text(object, "/emoji").unwrap_or_default(),
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message(kind: &str, object: Value) -> MessageContent {
        let mut raw = json!({"from": "16505551234", "id": "wamid.X", "timestamp": "1749416383", "type": kind});
        raw[kind] = object;
        content(kind, raw)
    }

    #[test]
    fn media_messages_keep_their_reference_and_metadata() {
        let image = message(
            "image",
            json!({"caption": "nota fiscal", "mime_type": "image/jpeg",
            "sha256": "abc=", "id": "1479537139650973"}),
        );
        assert_eq!(
            image,
            MessageContent::Media {
                kind: MediaKind::Image,
                media_id: "1479537139650973".into(),
                mime_type: Some("image/jpeg".into()),
                sha256: Some("abc=".into()),
                caption: Some("nota fiscal".into()),
                filename: None,
                voice: false,
                animated: false,
            }
        );
        let voice = message(
            "audio",
            json!({"mime_type": "audio/ogg; codecs=opus", "sha256": "s", "id": "a1", "voice": true}),
        );
        assert!(matches!(
            voice,
            MessageContent::Media {
                kind: MediaKind::Audio,
                voice: true,
                ..
            }
        ));
        let document = message(
            "document",
            json!({"filename": "boleto.pdf", "mime_type": "application/pdf", "id": "d1"}),
        );
        assert!(
            matches!(document, MessageContent::Media { kind: MediaKind::Document, filename: Some(ref f), .. } if f == "boleto.pdf")
        );
        let sticker = message(
            "sticker",
            json!({"mime_type": "image/webp", "id": "s1", "animated": true}),
        );
        assert!(matches!(
            sticker,
            MessageContent::Media {
                kind: MediaKind::Sticker,
                animated: true,
                ..
            }
        ));
    }

    #[test]
    fn location_contacts_replies_and_reactions_parse() {
        assert_eq!(
            message(
                "location",
                json!({"latitude": -23.5505, "longitude": -46.6333, "name": "Sé", "address": "Praça da Sé"})
            ),
            MessageContent::Location {
                latitude: -23.5505,
                longitude: -46.6333,
                name: Some("Sé".into()),
                address: Some("Praça da Sé".into())
            }
        );
        let contacts = message(
            "contacts",
            json!([{"name": {"formatted_name": "Ana Souza", "first_name": "Ana"},
            "phones": [{"phone": "+55 11 99999-0000", "wa_id": "5511999990000", "type": "CELL"}]}]),
        );
        assert_eq!(
            contacts,
            MessageContent::Contacts {
                contacts: vec![SharedContact {
                    name: "Ana Souza".into(),
                    phones: vec!["+55 11 99999-0000".into()],
                    ..SharedContact::default()
                }]
            }
        );
        let list = message(
            "interactive",
            json!({"type": "list_reply",
            "list_reply": {"id": "plan-pro", "title": "Plano Pro", "description": "R$ 99/mês"}}),
        );
        assert_eq!(
            list,
            MessageContent::InteractiveReply {
                kind: "list_reply".into(),
                id: "plan-pro".into(),
                title: "Plano Pro".into(),
                description: Some("R$ 99/mês".into())
            }
        );
        let button = message(
            "interactive",
            json!({"type": "button_reply", "button_reply": {"id": "yes", "title": "Sim"}}),
        );
        assert!(
            matches!(button, MessageContent::InteractiveReply { ref kind, .. } if kind == "button_reply")
        );
        let quick = message(
            "button",
            json!({"payload": "STOP", "text": "Parar promoções"}),
        );
        assert!(matches!(quick, MessageContent::InteractiveReply { ref id, .. } if id == "STOP"));
        let reaction = message(
            "reaction",
            json!({"message_id": "wamid.TARGET", "emoji": "👍"}),
        );
        assert_eq!(
            reaction,
            MessageContent::Reaction {
                target: "wamid.TARGET".into(),
                emoji: "👍".into()
            }
        );
    }

    #[test]
    fn unknown_types_and_known_types_missing_fields_are_kept_as_unsupported() {
        let unknown = message("order", json!({"catalog_id": "c1", "product_items": []}));
        assert!(
            matches!(unknown, MessageContent::Unsupported { ref provider_type, ref raw }
            if provider_type == "order" && raw["order"]["catalog_id"] == "c1")
        );
        let broken_image = message("image", json!({"caption": "no id"}));
        assert!(
            matches!(broken_image, MessageContent::Unsupported { ref provider_type, .. } if provider_type == "image")
        );
        let meta_unsupported = content(
            "unsupported",
            json!({"type": "unsupported", "errors": [{"code": 131051}]}),
        );
        assert!(matches!(
            meta_unsupported,
            MessageContent::Unsupported { .. }
        ));
    }
}
