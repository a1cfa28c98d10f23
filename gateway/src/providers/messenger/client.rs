//! The Send API body for Messenger and Instagram: `POST {graph_base}/{version}/{account_id}/messages`
//! with `{"recipient":{"id":…},"messaging_type":"RESPONSE","message":{…}}`; the answer's `message_id`
//! is the provider id. Text and quick replies (our reply buttons) map directly; templates are a
//! WhatsApp concept and reactions are not sent this way, so both are refused before any request.

use schema::channel::{Outbound, SendError};
use schema::records::{MessageContent, ProviderError};
use serde_json::{Value, json};

/// The request bodies for one outbound message, in the order they are sent: one, or for media with a
/// caption two (the attachment, then the caption as text: the Send API's `message` holds text or an
/// attachment, never both).
pub fn payloads(message: &Outbound) -> Result<Vec<Value>, SendError> {
    let first = payload(message)?;
    let caption = match &message.content {
        MessageContent::MediaLink {
            caption: Some(caption),
            ..
        } if !caption.trim().is_empty() => caption,
        _ => return Ok(vec![first]),
    };
    let mut text = envelope(message, json!({"text": caption}));
    if let Some(reference) = &message.reference {
        // Its echo names the same reply, as a part of it (never taken for another message).
        text["message"]["metadata"] = json!(format!("{reference}{CAPTION_SUFFIX}"));
    }
    Ok(vec![first, text])
}

/// Appended to our reference on the second part (the caption) of a media reply.
pub const CAPTION_SUFFIX: &str = "#caption";

/// The request body for one outbound message (without a media caption; see `payloads`).
pub fn payload(message: &Outbound) -> Result<Value, SendError> {
    let body = match &message.content {
        MessageContent::Text { body } => json!({"text": body}),
        MessageContent::Interactive { body, buttons } => {
            let replies: Vec<Value> = buttons
                .iter()
                .map(|b| json!({"content_type": "text", "title": b.title, "payload": b.id}))
                .collect();
            json!({"text": body, "quick_replies": replies})
        }
        MessageContent::MediaLink { kind, url, .. } => {
            let kind = match kind {
                schema::records::MediaKind::Document => "file",
                schema::records::MediaKind::Sticker => "image",
                other => other.as_str(),
            };
            json!({"attachment": {"type": kind, "payload": {"url": url, "is_reusable": true}}})
        }
        other => {
            return Err(SendError::Rejected(ProviderError {
                code: None,
                title: "cannot send this content".into(),
                detail: Some(format!(
                    "{} is not sent through the Messenger Send API",
                    other.preview()
                )),
            }));
        }
    };
    let mut body = envelope(message, body);
    if let Some(reference) = &message.reference {
        // Echoed back in the `message_echoes` webhook: how the echo finds its reply exactly.
        body["message"]["metadata"] = json!(reference);
    }
    Ok(body)
}

/// `{"recipient", "messaging_type", "message"}`, tagged when the send is outside the 24-hour window.
fn envelope(message: &Outbound, body: Value) -> Value {
    match &message.message_tag {
        Some(tag) => json!({"recipient": {"id": message.to}, "messaging_type": "MESSAGE_TAG",
                            "tag": tag, "message": body}),
        None => {
            json!({"recipient": {"id": message.to}, "messaging_type": "RESPONSE", "message": body})
        }
    }
}

/// The provider id in a Send API answer.
pub fn message_id(answer: &Value) -> Option<String> {
    answer
        .get("message_id")
        .and_then(Value::as_str)
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use schema::records::ReplyButton;

    #[test]
    fn text_and_quick_replies_follow_the_send_api() {
        let text = payload(&Outbound {
            to: "PSID".into(),
            content: MessageContent::Text { body: "Oi".into() },
            reply_to: None,
            reference: None,
            message_tag: None,
        })
        .unwrap();
        assert_eq!(
            text,
            json!({"recipient": {"id": "PSID"}, "messaging_type": "RESPONSE", "message": {"text": "Oi"}})
        );
        let buttons = payload(&Outbound {
            to: "PSID".into(),
            content: MessageContent::Interactive {
                body: "Resolvido?".into(),
                buttons: vec![ReplyButton {
                    id: "yes".into(),
                    title: "Sim".into(),
                }],
            },
            reply_to: None,
            reference: None,
            message_tag: None,
        })
        .unwrap();
        assert_eq!(buttons["message"]["quick_replies"][0]["payload"], "yes");
        let template = Outbound {
            to: "PSID".into(),
            content: MessageContent::Template {
                name: "t".into(),
                language: "pt_BR".into(),
                body_parameters: vec![],
            },
            reply_to: None,
            reference: None,
            message_tag: None,
        };
        assert!(matches!(payload(&template), Err(SendError::Rejected(_))));
        let file = payload(&Outbound {
            to: "PSID".into(),
            content: MessageContent::MediaLink {
                kind: schema::records::MediaKind::Document,
                url: "https://x.example/a.pdf".into(),
                caption: None,
                filename: None,
            },
            reply_to: None,
            reference: None,
            message_tag: None,
        })
        .unwrap();
        assert_eq!(file["message"]["attachment"]["type"], "file");
        assert_eq!(
            file["message"]["attachment"]["payload"]["url"],
            "https://x.example/a.pdf"
        );
        assert_eq!(
            message_id(&json!({"recipient_id": "PSID", "message_id": "m_1"})).as_deref(),
            Some("m_1")
        );
        let referenced = payload(&Outbound {
            to: "PSID".into(),
            content: MessageContent::Text { body: "Oi".into() },
            reply_to: None,
            reference: Some("0192f1d6-0000-7000-8000-000000000001".into()),
            message_tag: None,
        })
        .unwrap();
        assert_eq!(
            referenced["message"]["metadata"],
            "0192f1d6-0000-7000-8000-000000000001"
        );
    }

    #[test]
    fn a_captioned_image_goes_as_the_image_then_its_caption_and_a_tag_marks_late_answers() {
        let message = Outbound {
            to: "IGSID".into(),
            content: MessageContent::MediaLink {
                kind: schema::records::MediaKind::Image,
                url: "https://x.example/a.jpg".into(),
                caption: Some("Comprovante".into()),
                filename: None,
            },
            reply_to: None,
            reference: Some("ref".into()),
            message_tag: Some("HUMAN_AGENT".into()),
        };
        let bodies = payloads(&message).unwrap();
        assert_eq!(bodies.len(), 2);
        assert_eq!(bodies[0]["message"]["attachment"]["type"], "image");
        assert_eq!(bodies[1]["message"]["text"], "Comprovante");
        assert_eq!(bodies[1]["message"]["metadata"], "ref#caption");
        for body in &bodies {
            assert_eq!(body["messaging_type"], "MESSAGE_TAG");
            assert_eq!(body["tag"], "HUMAN_AGENT");
        }
    }
}
