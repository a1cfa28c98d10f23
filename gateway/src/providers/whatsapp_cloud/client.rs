//! Outbound side of the WhatsApp Cloud API: the send-message call, behind `ChannelClient`.
//!
//! Media: `GET {graph_base}/{api_version}/{media_id}` answers the file's temporary `url`, `mime_type`
//! and `file_size`; the file itself is then fetched from that URL with the same bearer token and
//! streamed on, so neither the token nor the URL ever reaches an agent.
//!
//! `POST {graph_base}/{api_version}/{phone_number_id}/messages` with `Authorization: Bearer
//! <access token>` and `{"messaging_product":"whatsapp","recipient_type":"individual","to":…,"type":"text",
//! "text":{"body":…}}`; the answer's `messages[0].id` is the `wamid`. The base URL is configurable so
//! tests aim it at a local fake. 429 and 5xx are transient; other 4xx are final rejections carrying
//! Meta's error `code`/`message`/`error_data.details`.

use async_trait::async_trait;
use futures::StreamExt;
use schema::channel::{ChannelClient, MediaError, MediaStream, Outbound, SendError};
use schema::records::{Connection, MessageContent, ProviderError};
use serde_json::{Value, json};
use std::time::Duration;

/// Settings of the Cloud API client.
#[derive(Clone, Debug)]
pub struct CloudApiConfig {
    /// `https://graph.facebook.com` in production.
    pub graph_base: String,
    /// Graph API version, e.g. `v23.0`.
    pub api_version: String,
    pub timeout: Duration,
}

impl Default for CloudApiConfig {
    fn default() -> Self {
        Self {
            graph_base: "https://graph.facebook.com".into(),
            api_version: "v23.0".into(),
            timeout: Duration::from_secs(15),
        }
    }
}

/// The client (one per node; connection pooling is shared).
pub struct CloudApiClient {
    http: reqwest::Client,
    config: CloudApiConfig,
}

impl CloudApiClient {
    pub fn new(config: CloudApiConfig) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(Duration::from_secs(5))
            .build()?;
        Ok(Self { http, config })
    }
}

#[async_trait]
impl ChannelClient for CloudApiClient {
    async fn fetch_media(
        &self,
        connection: &Connection,
        media_id: &str,
        max_bytes: u64,
    ) -> Result<MediaStream, MediaError> {
        let url = format!(
            "{}/{}/{}",
            self.config.graph_base.trim_end_matches('/'),
            self.config.api_version,
            media_id
        );
        let token = &connection.meta.access_token;
        let unavailable = |e: reqwest::Error| MediaError::Unavailable(e.to_string());
        let info = self
            .http
            .get(&url)
            .bearer_auth(token)
            .send()
            .await
            .map_err(unavailable)?;
        if info.status().as_u16() == 404 || info.status().as_u16() == 400 {
            return Err(MediaError::NotFound);
        }
        if !info.status().is_success() {
            return Err(MediaError::Unavailable(format!(
                "media lookup answered {}",
                info.status()
            )));
        }
        let info: Value = info.json().await.map_err(unavailable)?;
        let size = info
            .get("file_size")
            .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()));
        if let Some(size) = size.filter(|s| *s > max_bytes) {
            return Err(MediaError::TooLarge(size));
        }
        let file_url = info
            .get("url")
            .and_then(Value::as_str)
            .ok_or_else(|| MediaError::Unavailable("media lookup without url".into()))?;
        let file = self
            .http
            .get(file_url)
            .bearer_auth(token)
            .send()
            .await
            .map_err(unavailable)?;
        if !file.status().is_success() {
            return Err(MediaError::Unavailable(format!(
                "media download answered {}",
                file.status()
            )));
        }
        let content_type = file
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .or_else(|| {
                info.get("mime_type")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            });
        let length = file.content_length().or(size);
        if let Some(length) = length.filter(|l| *l > max_bytes) {
            return Err(MediaError::TooLarge(length));
        }
        // Enforce the limit while streaming too: a provider may not announce the size.
        let mut seen = 0u64;
        let body = file
            .bytes_stream()
            .map(move |chunk| {
                let chunk = chunk.map_err(|e| e.to_string())?;
                seen += chunk.len() as u64;
                if seen > max_bytes {
                    return Err(format!("media exceeds {max_bytes} bytes"));
                }
                Ok(chunk)
            })
            .boxed();
        Ok(MediaStream {
            content_type,
            length,
            body,
        })
    }

    async fn send(&self, connection: &Connection, message: &Outbound) -> Result<String, SendError> {
        let url = format!(
            "{}/{}/{}/messages",
            self.config.graph_base.trim_end_matches('/'),
            self.config.api_version,
            connection.meta.account_id
        );
        let body = payload(message)?;
        let response = self
            .http
            .post(&url)
            .bearer_auth(&connection.meta.access_token)
            .json(&body)
            .send()
            .await
            .map_err(|e| SendError::Transient(format!("request failed: {e}")))?;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return answer
                .pointer("/messages/0/id")
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| SendError::Transient("answer without messages[0].id".into()));
        }
        let error = ProviderError {
            code: answer.pointer("/error/code").and_then(Value::as_i64),
            title: answer
                .pointer("/error/message")
                .and_then(Value::as_str)
                .unwrap_or_else(|| status.canonical_reason().unwrap_or("error"))
                .to_string(),
            detail: answer
                .pointer("/error/error_data/details")
                .and_then(Value::as_str)
                .map(str::to_string),
        };
        if status.as_u16() == 429 || status.is_server_error() {
            Err(SendError::Transient(format!("{status}: {}", error.title)))
        } else {
            Err(SendError::Rejected(error))
        }
    }
}

/// The documented request body for one outbound message.
fn payload(message: &Outbound) -> Result<Value, SendError> {
    let mut body = json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": message.to,
    });
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

#[cfg(test)]
mod tests {
    use super::*;
    use schema::records::ReplyButton;

    fn outbound(content: MessageContent) -> Value {
        payload(&Outbound {
            to: "5511999990000".into(),
            content,
            reply_to: None,
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
        };
        assert!(matches!(payload(&location), Err(SendError::Rejected(_))));
    }
}
