//! `GET /api/v1/conversations/{id}/messages/{seq}/media`: the file of a media message, fetched from the
//! provider with the connection's credentials and streamed to the agent (size-limited, content type
//! kept). The provider's token and temporary URL never leave the node.

use crate::AppState;
use crate::auth::AuthenticatedAgent;
use crate::error::ApiError;
use crate::http::parse_id;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use schema::channel::MediaError;
use schema::records::{MediaKind, MessageContent};
use schema::{ConversationId, Seq};

pub async fn download(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
    Path((id, seq)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let conversation: ConversationId = parse_id(&id, "conversation_not_found")?;
    let seq: Seq = parse_id(&seq, "message_not_found")?;
    let conversation = state
        .store
        .conversation(agent.tenant_id, conversation)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(
                "conversation_not_found",
                "no such conversation in this tenant",
            )
        })?;
    let message = state
        .store
        .message(agent.tenant_id, conversation.id, seq)
        .await?
        .ok_or_else(|| ApiError::not_found("message_not_found", "no message at this seq"))?;
    let MessageContent::Media {
        kind,
        media_id,
        mime_type,
        filename,
        ..
    } = message.content
    else {
        return Err(ApiError::not_found("no_media", "this message has no media"));
    };
    let connection = state
        .store
        .connection(conversation.connection_id)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "connection_removed",
                "the connection was removed",
            )
        })?;
    let limit = state.config.media_max_bytes;
    let media = state
        .directory
        .services()
        .channel
        .fetch_media(&connection, &media_id, limit)
        .await
        .map_err(|e| match e {
            MediaError::NotFound => ApiError::not_found(
                "media_expired",
                "the provider no longer has this file (WhatsApp keeps media 30 days)",
            ),
            MediaError::TooLarge(size) => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "media_too_large",
                format!("the file has {size} bytes; the limit is {limit}"),
            ),
            MediaError::Unavailable(detail) => {
                tracing::warn!(%detail, "media download failed");
                ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "provider_unavailable",
                    "the provider did not deliver the file; retry",
                )
            }
        })?;
    let content_type = media
        .content_type
        .or(mime_type)
        .unwrap_or_else(|| "application/octet-stream".into());
    let mut response = Response::new(Body::from_stream(media.body));
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    if let Some(length) = media.length {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=300"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    let disposition = match (kind, filename) {
        (MediaKind::Document, Some(name)) => {
            format!("attachment; filename=\"{}\"", safe_filename(&name))
        }
        (MediaKind::Document, None) => "attachment".to_string(),
        _ => "inline".to_string(),
    };
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// A filename safe inside a quoted header value.
fn safe_filename(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .filter(|c| !matches!(c, '"' | '\\' | '/'))
        .take(120)
        .collect()
}
