//! `GET /api/v1/conversations/{id}/messages/{seq}/media`: the file of a media message, fetched from the
//! provider with the connection's credentials and streamed to the agent (size-limited, content type
//! kept). The provider's token and temporary URL never leave the node. Only raster images, audio and
//! video are served inline; every other type is an attachment, under `nosniff` and a sandboxing CSP.
//! `?download=true` asks for any file as an attachment (saved, not shown): only roles with
//! `force_download` may (403 otherwise). A deleted message's file goes only to those who see deleted
//! messages.

use crate::AppState;
use crate::auth::AuthenticatedAgent;
use crate::error::ApiError;
use crate::http::parse_id;
use crate::http::problems::{NotFound, Unauthorized, Unavailable};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use schema::Seq;
use schema::api::ErrorBody;
use schema::channel::MediaError;
use schema::permission::Permission;
use schema::records::{MediaKind, MessageContent};

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DownloadQuery {
    /// `true`: served as an attachment whatever its type (needs `force_download`).
    #[serde(default)]
    download: bool,
}

#[utoipa::path(
    get,
    path = "/api/v1/conversations/{id}/messages/{seq}/media",
    tag = "conversations",
    operation_id = "media_download",
    params(
        ("id" = Uuid, Path, description = "conversation id"),
        ("seq" = u64, Path, description = "the message's seq"),
        DownloadQuery,
    ),
    responses(
        (status = 200, description = "the file, with its checked content type", body = Vec<u8>, content_type = "application/octet-stream"),
        Unauthorized,
        NotFound,
        (status = 403, description = "the role may not force downloads", body = ErrorBody, content_type = "application/problem+json"),
        (status = 502, description = "the provider failed", body = ErrorBody, content_type = "application/problem+json"),
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn download(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
    Path((id, seq)): Path<(String, String)>,
    Query(query): Query<DownloadQuery>,
) -> Result<Response, ApiError> {
    if query.download {
        crate::auth::require(&state, &agent, Permission::ForceDownload).await?;
    }
    let (conversation, viewer) = crate::http::conversations::seen(&state, &agent, &id).await?;
    let seq: Seq = parse_id(&seq, "message_not_found")?;
    let message = state
        .store
        .message(agent.tenant_id, conversation.id, seq)
        .await?
        .ok_or_else(|| ApiError::not_found("message_not_found", "no message at this seq"))?;
    // A deleted message's file goes only to those who may see deleted messages.
    let message = viewer.message(&conversation, message);
    // Groups' files only where the tenant shows them.
    if schema::inbound::is_group_address(&conversation.contact.address) {
        crate::tenancy::require_feature(&state, agent.tenant_id, |f| f.group_media, "group_media")
            .await?;
    }
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
    // Never render what a sender chose in our origin: only media types a browser shows without running
    // anything are inline; everything else (HTML, SVG, PDF, …) is a download, and the CSP forbids
    // scripts, plugins and same-origin access even if something slips through.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; media-src 'self'; img-src 'self'; sandbox"),
    );
    let disposition = match query.download {
        true => attachment(filename.as_deref()),
        false => disposition(kind, &content_type, filename.as_deref()),
    };
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// Media types shown inline: raster images, audio and video. Anything else is an attachment.
const INLINE_TYPES: &[&str] = &[
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "audio/ogg",
    "audio/mpeg",
    "audio/aac",
    "audio/mp4",
    "audio/amr",
    "video/mp4",
    "video/3gpp",
];

/// `inline` only for an allow-listed type of a non-document message; otherwise `attachment`, with
/// the file's name when it has one.
fn disposition(kind: MediaKind, content_type: &str, filename: Option<&str>) -> String {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let inline = kind != MediaKind::Document && INLINE_TYPES.contains(&essence.as_str());
    match inline {
        true => "inline".to_string(),
        false => attachment(filename),
    }
}

/// `attachment`, with the file's name when it has one.
fn attachment(filename: Option<&str>) -> String {
    match filename {
        Some(name) => format!("attachment; filename=\"{}\"", safe_filename(name)),
        None => "attachment".to_string(),
    }
}

/// A filename safe inside a quoted header value.
fn safe_filename(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .filter(|c| !matches!(c, '"' | '\\' | '/'))
        .take(120)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_and_svg_from_a_sender_are_downloads_never_inline() {
        for content_type in [
            "text/html",
            "TEXT/HTML; charset=utf-8",
            "image/svg+xml",
            "application/pdf",
        ] {
            assert_eq!(
                disposition(MediaKind::Image, content_type, None),
                "attachment"
            );
        }
        assert_eq!(
            disposition(MediaKind::Image, "text/html", Some("x.html")),
            "attachment; filename=\"x.html\""
        );
    }

    #[test]
    fn photos_audio_and_video_are_inline_but_documents_never() {
        assert_eq!(disposition(MediaKind::Image, "image/jpeg", None), "inline");
        assert_eq!(
            disposition(MediaKind::Audio, "audio/ogg; codecs=opus", None),
            "inline"
        );
        assert_eq!(disposition(MediaKind::Video, "video/mp4", None), "inline");
        assert_eq!(
            disposition(MediaKind::Document, "image/png", None),
            "attachment"
        );
    }
}
