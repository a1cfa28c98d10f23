//! The Z-API send side: `POST {base}/instances/{instance_id}/token/{instance_token}/{send-text|
//! send-image|send-audio|send-video|send-document/{ext}|send-sticker|send-reaction|read-message}` with
//! the account's `Client-Token` header when it has one. The WhatsApp id of a sent message is the
//! answer's `messageId` (what status callbacks name in `ids`; `zaapId` is Z-API's own). The URL carries
//! the instance token, so it is never logged. Like Evolution, a WhatsApp Web session has no templates
//! and no reliable buttons or lists: those are refused clearly.

use crate::providers::http::refused;
use schema::channel::{Outbound, SendError};
use schema::records::{MediaKind, MessageContent, ProviderError, ZapiSettings};
use serde_json::{Value, json};

/// The URL of one Z-API method for this instance.
pub fn url(base: &str, settings: &ZapiSettings, method: &str) -> String {
    format!(
        "{}/instances/{}/token/{}/{method}",
        base.trim_end_matches('/'),
        settings.instance_id,
        settings.instance_token
    )
}

/// The method and body of a send.
pub fn request(message: &Outbound) -> Result<(String, Value), SendError> {
    let phone = &message.to;
    let (method, mut body) = match &message.content {
        MessageContent::Text { body } => (
            "send-text".to_string(),
            json!({"phone": phone, "message": body}),
        ),
        MessageContent::MediaLink {
            kind,
            url,
            caption,
            filename,
        } => match kind {
            MediaKind::Image => (
                "send-image".into(),
                json!({"phone": phone, "image": url, "caption": caption}),
            ),
            MediaKind::Video => (
                "send-video".into(),
                json!({"phone": phone, "video": url, "caption": caption}),
            ),
            MediaKind::Audio => ("send-audio".into(), json!({"phone": phone, "audio": url})),
            MediaKind::Sticker => (
                "send-sticker".into(),
                json!({"phone": phone, "sticker": url}),
            ),
            MediaKind::Document => (
                format!("send-document/{}", extension(filename.as_deref(), url)),
                json!({"phone": phone, "document": url, "fileName": filename, "caption": caption}),
            ),
        },
        MessageContent::Reaction { target, emoji } if emoji.is_empty() => (
            "send-remove-reaction".into(),
            json!({"phone": phone, "messageId": target}),
        ),
        MessageContent::Reaction { target, emoji } => (
            "send-reaction".into(),
            json!({"phone": phone, "reaction": emoji, "messageId": target}),
        ),
        other => {
            return Err(SendError::Rejected(ProviderError {
                code: None,
                title: "not supported by Z-API".into(),
                detail: Some(format!(
                    "{} messages cannot be sent through a WhatsApp Web session; send text or media",
                    match other {
                        MessageContent::Template { .. } => "template",
                        MessageContent::Interactive { .. } => "button",
                        MessageContent::InteractiveList { .. } => "list",
                        _ => "these",
                    }
                )),
            }));
        }
    };
    if let (Some(reply_to), Some(map)) = (&message.reply_to, body.as_object_mut())
        && !matches!(message.content, MessageContent::Reaction { .. })
    {
        // A reply: Z-API quotes the message named by `messageId`.
        map.insert("messageId".into(), json!(reply_to));
    }
    Ok((method, body))
}

/// The document's extension for `send-document/{ext}`: from its file name, else its URL, else `pdf`.
fn extension(filename: Option<&str>, url: &str) -> String {
    let from = |name: &str| {
        let name = name.split(['?', '#']).next().unwrap_or(name);
        name.rsplit_once('.')
            .map(|(_, ext)| ext.to_ascii_lowercase())
            .filter(|ext| {
                !ext.is_empty() && ext.len() <= 8 && ext.chars().all(|c| c.is_ascii_alphanumeric())
            })
    };
    filename
        .and_then(from)
        .or_else(|| url.rsplit('/').next().and_then(from))
        .unwrap_or_else(|| "pdf".into())
}

/// Posts to Z-API and returns the JSON answer, or the error mapped to retry or not.
pub async fn post(
    http: &reqwest::Client,
    settings: &ZapiSettings,
    url: &str,
    body: &Value,
) -> Result<Value, SendError> {
    let mut request = http.post(url).json(body);
    if let Some(token) = &settings.client_token {
        request = request.header("Client-Token", token);
    }
    let response = request
        .send()
        .await
        // reqwest's error would print the URL, which holds the instance token.
        .map_err(crate::providers::http::unanswered)?;
    let status = response.status();
    let answer = crate::providers::http::json_capped(response, crate::providers::http::ANSWER_MAX)
        .await
        // Even a 2xx whose body cannot be read whole counts as done: retrying would act twice.
        .unwrap_or(serde_json::Value::Null);
    if status.is_success() {
        return Ok(answer);
    }
    let error = ProviderError {
        code: Some(i64::from(status.as_u16())),
        title: answer
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("error"))
            .to_string(),
        detail: answer
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_string),
    };
    Err(refused(status, error))
}

/// The WhatsApp id in a send answer.
pub fn message_id(answer: &Value) -> Option<String> {
    answer
        .get("messageId")
        .or_else(|| answer.get("id"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_extension_comes_from_the_file_name_then_the_url() {
        assert_eq!(extension(Some("boleto.PDF"), "https://x/y"), "pdf");
        assert_eq!(
            extension(None, "https://files.example.com/a/nota.xlsx?sig=1"),
            "xlsx"
        );
        assert_eq!(extension(None, "https://files.example.com/download"), "pdf");
    }

    #[test]
    fn a_reply_quotes_by_message_id_and_templates_are_refused() {
        let reply = Outbound {
            to: "5511999999999".into(),
            content: MessageContent::Text { body: "oi".into() },
            reply_to: Some("3EB0ABC".into()),
            reference: None,
            message_tag: None,
        };
        let (method, body) = request(&reply).expect("text");
        assert_eq!(method, "send-text");
        assert_eq!(body["messageId"], "3EB0ABC");
        let template = Outbound {
            content: MessageContent::Template {
                name: "x".into(),
                language: "pt_BR".into(),
                body_parameters: vec![],
            },
            ..reply
        };
        assert!(matches!(request(&template), Err(SendError::Rejected(_))));
    }
}
