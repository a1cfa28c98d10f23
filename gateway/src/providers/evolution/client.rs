//! The Evolution API send side: `POST {server_url}/message/{sendText|sendMedia|sendWhatsAppAudio|
//! sendSticker|sendReaction}/{instance}` with the instance's `apikey` header; the new message's id is
//! the answer's `key.id`. Read marks go to `/chat/markMessageAsRead/{instance}`; a message's media is
//! fetched as base64 from `/chat/getBase64FromMediaMessage/{instance}` by the message id. WhatsApp Web
//! has no templates, and Baileys' buttons and lists are not delivered reliably, so those are refused
//! with a clear error instead of being sent and lost.

use crate::providers::http::refused;
use schema::channel::{MediaError, MediaStream, Outbound, SendError};
use schema::records::{EvolutionSettings, MediaKind, MessageContent, ProviderError};
use serde_json::{Value, json};

/// The JID of an address: people are digits, anything else (a group) is already a JID.
fn jid(address: &str) -> String {
    if address.contains('@') {
        address.to_string()
    } else {
        format!("{address}@s.whatsapp.net")
    }
}

fn url(settings: &EvolutionSettings, action: &str) -> String {
    format!(
        "{}/{action}/{}",
        settings.server_url.trim_end_matches('/'),
        settings.instance
    )
}

/// The endpoint and body of a send.
pub fn request(
    settings: &EvolutionSettings,
    message: &Outbound,
) -> Result<(String, Value), SendError> {
    let number = message.to.clone();
    let quoted = message
        .reply_to
        .as_ref()
        .map(|id| json!({"key": {"id": id}}));
    let (action, mut body) = match &message.content {
        MessageContent::Text { body } => {
            ("message/sendText", json!({"number": number, "text": body}))
        }
        MessageContent::MediaLink {
            kind: MediaKind::Audio,
            url,
            ..
        } => (
            "message/sendWhatsAppAudio",
            json!({"number": number, "audio": url}),
        ),
        MessageContent::MediaLink {
            kind: MediaKind::Sticker,
            url,
            ..
        } => (
            "message/sendSticker",
            json!({"number": number, "sticker": url}),
        ),
        MessageContent::MediaLink {
            kind,
            url,
            caption,
            filename,
        } => (
            "message/sendMedia",
            json!({"number": number, "mediatype": kind.as_str(), "media": url,
                   "caption": caption, "fileName": filename}),
        ),
        MessageContent::Reaction { target, emoji } => (
            "message/sendReaction",
            // Agents react to the contact's messages, so the target is not ours (`fromMe: false`).
            json!({"key": {"remoteJid": jid(&message.to), "fromMe": false, "id": target},
                   "reaction": emoji}),
        ),
        other => {
            return Err(SendError::Rejected(ProviderError {
                code: None,
                title: "not supported by Evolution API".into(),
                detail: Some(format!(
                    "{} messages cannot be sent through a WhatsApp Web session; send text or media",
                    content_name(other)
                )),
            }));
        }
    };
    if let (Some(quoted), Some(map)) = (quoted, body.as_object_mut())
        && !matches!(message.content, MessageContent::Reaction { .. })
    {
        map.insert("quoted".into(), quoted);
    }
    Ok((url(settings, action), body))
}

fn content_name(content: &MessageContent) -> &'static str {
    match content {
        MessageContent::Template { .. } => "template",
        MessageContent::Interactive { .. } => "button",
        MessageContent::InteractiveList { .. } => "list",
        _ => "these",
    }
}

/// Posts to Evolution and returns its JSON answer (at most `max_answer` bytes), or the error mapped to
/// retry or not.
pub async fn post(
    http: &reqwest::Client,
    settings: &EvolutionSettings,
    url: &str,
    body: &Value,
    max_answer: usize,
) -> Result<Value, SendError> {
    let response = http
        .post(url)
        .header("apikey", &settings.api_key)
        .json(body)
        .send()
        .await
        .map_err(crate::providers::http::unanswered)?;
    let status = response.status();
    let answer = crate::providers::http::json_capped(response, max_answer)
        .await
        // Even a 2xx whose body cannot be read whole counts as done: retrying would act twice.
        .unwrap_or(serde_json::Value::Null);
    if status.is_success() {
        return Ok(answer);
    }
    // Evolution answers `{status, error, response: {message: [...]}}`.
    let detail = answer.pointer("/response/message").map(|m| match m {
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
            .collect::<Vec<_>>()
            .join("; "),
        other => other
            .as_str()
            .map_or_else(|| other.to_string(), str::to_string),
    });
    let error = ProviderError {
        code: Some(i64::from(status.as_u16())),
        title: answer
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("error"))
            .to_string(),
        detail,
    };
    Err(refused(status, error))
}

/// The new message's id in a send answer.
pub fn message_id(answer: &Value) -> Option<String> {
    answer
        .pointer("/key/id")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// The body that marks one of the contact's messages read.
pub fn read_body(to: &str, provider_message_id: &str) -> Value {
    json!({"readMessages": [{"remoteJid": jid(to), "fromMe": false, "id": provider_message_id}]})
}

pub fn read_url(settings: &EvolutionSettings) -> String {
    url(settings, "chat/markMessageAsRead")
}

/// Fetches a message's media (Evolution answers it base64-encoded, whole) within `max_bytes`.
pub async fn fetch_media(
    http: &reqwest::Client,
    settings: &EvolutionSettings,
    message_id: &str,
    max_bytes: u64,
) -> Result<MediaStream, MediaError> {
    let body = json!({"message": {"key": {"id": message_id}}, "convertToMp4": false});
    let response = http
        .post(url(settings, "chat/getBase64FromMediaMessage"))
        .header("apikey", &settings.api_key)
        .json(&body)
        .send()
        .await
        .map_err(|e| MediaError::Unavailable(e.without_url().to_string()))?;
    match response.status().as_u16() {
        200..=299 => super::media::stream(response, None, max_bytes).await,
        400 | 404 => Err(MediaError::NotFound),
        status => Err(MediaError::Unavailable(format!(
            "getBase64FromMediaMessage answered {status}"
        ))),
    }
}
