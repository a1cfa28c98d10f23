//! The WhatsApp Cloud API request body for an outbound message (`type` = `text`, `template`,
//! `interactive` or `reaction`), in the documented shape. The HTTP client that posts it to
//! `{graph_base}/{api_version}/{phone_number_id}/messages` is `providers::graph::GraphClient`.

use schema::channel::{Outbound, SendError};
use schema::records::{MessageContent, ProviderError};
use serde_json::{Value, json};

/// The documented request body for one outbound message.
pub fn payload(message: &Outbound) -> Result<Value, SendError> {
    let mut body = json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
    });
    // A phone number goes in `to`; a business-scoped user id (`US.1349…`: a country code, a period,
    // then the id) in `recipient`, the field Meta dedicates to BSUIDs since February 2026.
    if is_user_id(&message.to) {
        body["recipient"] = json!(message.to);
    } else {
        body["to"] = json!(message.to);
    }
    let (kind, object) = match &message.content {
        MessageContent::Text { body } => ("text", json!({"preview_url": false, "body": body})),
        MessageContent::Template {
            name,
            language,
            body_parameters,
        } => {
            let mut template = json!({"name": name, "language": {"code": language}});
            if !body_parameters.is_empty() {
                let parameters: Vec<Value> = body_parameters
                    .iter()
                    .map(|p| json!({"type": "text", "text": p}))
                    .collect();
                template["components"] = json!([{"type": "body", "parameters": parameters}]);
            }
            ("template", template)
        }
        MessageContent::Interactive { body, buttons } => {
            let buttons: Vec<Value> = buttons
                .iter()
                .map(|b| json!({"type": "reply", "reply": {"id": b.id, "title": b.title}}))
                .collect();
            (
                "interactive",
                json!({"type": "button", "body": {"text": body}, "action": {"buttons": buttons}}),
            )
        }
        MessageContent::InteractiveList {
            body,
            button,
            sections,
        } => (
            "interactive",
            json!({"type": "list", "body": {"text": body}, "action": {"button": button, "sections": sections}}),
        ),
        MessageContent::MediaLink {
            kind,
            url,
            caption,
            filename,
        } => {
            let mut media = json!({"link": url});
            if let Some(caption) = caption {
                media["caption"] = json!(caption);
            }
            if let (schema::records::MediaKind::Document, Some(filename)) = (kind, filename) {
                media["filename"] = json!(filename);
            }
            (kind.as_str(), media)
        }
        MessageContent::Reaction { target, emoji } => {
            ("reaction", json!({"message_id": target, "emoji": emoji}))
        }
        other => {
            return Err(SendError::Rejected(ProviderError {
                code: None,
                title: "cannot send this content".into(),
                detail: Some(format!(
                    "{} messages are not sent through the Cloud API here",
                    other.preview()
                )),
            }));
        }
    };
    body["type"] = json!(kind);
    body[kind] = object;
    if let Some(reply_to) = &message.reply_to {
        body["context"] = json!({"message_id": reply_to});
    }
    Ok(body)
}

/// Whether a WhatsApp address is a business-scoped user id rather than a phone number (digits only).
fn is_user_id(address: &str) -> bool {
    address.contains('.')
}

#[cfg(test)]
mod tests {
    use super::*;
    use schema::records::ReplyButton;

    #[test]
    fn a_reply_to_a_username_user_names_their_user_id_as_recipient() {
        let body = payload(&Outbound {
            to: "US.13491208655302741918".into(),
            content: MessageContent::Text { body: "oi".into() },
            reply_to: None,
            reference: None,
            message_tag: None,
        })
        .unwrap();
        assert_eq!(body["recipient"], "US.13491208655302741918");
        assert!(body.get("to").is_none());
        assert_eq!(
            outbound(MessageContent::Text { body: "oi".into() })["to"],
            "5511999990000"
        );
    }

    fn outbound(content: MessageContent) -> Value {
        payload(&Outbound {
            to: "5511999990000".into(),
            content,
            reply_to: None,
            reference: None,
            message_tag: None,
        })
        .unwrap()
    }

    #[test]
    fn payloads_follow_the_documented_shapes() {
        let text = outbound(MessageContent::Text { body: "Oi".into() });
        assert_eq!(text["type"], "text");
        assert_eq!(text["text"]["body"], "Oi");
        assert_eq!(text["messaging_product"], "whatsapp");

        let template = outbound(MessageContent::Template {
            name: "pedido_enviado".into(),
            language: "pt_BR".into(),
            body_parameters: vec!["Ana".into(), "#1234".into()],
        });
        assert_eq!(template["type"], "template");
        assert_eq!(template["template"]["language"]["code"], "pt_BR");
        assert_eq!(template["template"]["components"][0]["type"], "body");
        assert_eq!(
            template["template"]["components"][0]["parameters"][1]["text"],
            "#1234"
        );
        let bare = outbound(MessageContent::Template {
            name: "ola".into(),
            language: "pt_BR".into(),
            body_parameters: vec![],
        });
        assert!(bare["template"].get("components").is_none());

        let buttons = outbound(MessageContent::Interactive {
            body: "Resolvido?".into(),
            buttons: vec![ReplyButton {
                id: "yes".into(),
                title: "Sim".into(),
            }],
        });
        assert_eq!(buttons["interactive"]["type"], "button");
        assert_eq!(
            buttons["interactive"]["action"]["buttons"][0]["reply"]["id"],
            "yes"
        );

        let list = outbound(MessageContent::InteractiveList {
            body: "Escolha um plano".into(),
            button: "Ver planos".into(),
            sections: vec![schema::records::ListSection {
                title: "Planos".into(),
                rows: vec![schema::records::ListRow {
                    id: "pro".into(),
                    title: "Pro".into(),
                    description: Some("R$ 99".into()),
                }],
            }],
        });
        assert_eq!(list["interactive"]["type"], "list");
        assert_eq!(list["interactive"]["action"]["button"], "Ver planos");
        assert_eq!(
            list["interactive"]["action"]["sections"][0]["rows"][0]["id"],
            "pro"
        );
        let reaction = outbound(MessageContent::Reaction {
            target: "wamid.X".into(),
            emoji: "👍".into(),
        });
        assert_eq!(reaction["reaction"]["message_id"], "wamid.X");
    }

    #[test]
    fn inbound_only_content_is_refused_not_sent() {
        let location = Outbound {
            to: "1".into(),
            content: MessageContent::Location {
                latitude: 0.0,
                longitude: 0.0,
                name: None,
                address: None,
            },
            reply_to: None,
            reference: None,
            message_tag: None,
        };
        assert!(matches!(payload(&location), Err(SendError::Rejected(_))));
    }
}
