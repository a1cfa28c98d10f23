//! The Send API body for Messenger and Instagram: `POST {graph_base}/{version}/{account_id}/messages`
//! with `{"recipient":{"id":…},"messaging_type":"RESPONSE","message":{…}}`; the answer's `message_id`
//! is the provider id. Text and quick replies (our reply buttons) map directly; templates are a
//! WhatsApp concept and reactions are not sent this way, so both are refused before any request.

use schema::channel::{Outbound, SendError};
use schema::records::{MessageContent, ProviderError};
use serde_json::{Value, json};

/// The request body for one outbound message.
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
    let mut body = body;
    if let Some(reference) = &message.reference {
        // Echoed back in the `message_echoes` webhook: how the echo finds its reply exactly.
        body["metadata"] = json!(reference);
    }
    Ok(json!({"recipient": {"id": message.to}, "messaging_type": "RESPONSE", "message": body}))
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
        })
        .unwrap();
        assert_eq!(
            referenced["message"]["metadata"],
            "0192f1d6-0000-7000-8000-000000000001"
        );
    }
}
