//! HTTP helpers every provider client shares: streaming a media file with a size limit, reading a JSON
//! answer with a size limit (a provider, possibly one a tenant runs itself, must not be able to make
//! the node buffer gigabytes), and mapping a provider's error answer to a retryable, unknown or final
//! `SendError` (only what surely did not reach the provider is retried).

use futures::StreamExt;
use schema::channel::{MediaError, MediaStream, SendError};
use schema::records::ProviderError;
use serde_json::Value;

/// Largest JSON answer read from a send, read-mark or session call.
pub(crate) const ANSWER_MAX: usize = 256 * 1024;

/// Reads a JSON answer of at most `max` bytes: `Null` when it is not JSON, an error when it is longer.
pub(crate) async fn json_capped(
    mut response: reqwest::Response,
    max: usize,
) -> Result<Value, String> {
    if response.content_length().is_some_and(|n| n > max as u64) {
        return Err(format!("answer over {max} bytes"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| e.without_url().to_string())?
    {
        if body.len() + chunk.len() > max {
            return Err(format!("answer over {max} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// Streams a file from `url` (with `token` as bearer when given), refusing files over `max_bytes`
/// before the stream when their size is announced and during it when not.
pub(crate) async fn download(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    fallback_type: Option<String>,
    max_bytes: u64,
) -> Result<MediaStream, MediaError> {
    let mut request = http.get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let file = request
        .send()
        .await
        .map_err(|e| MediaError::Unavailable(e.to_string()))?;
    match file.status().as_u16() {
        200..=299 => {}
        404 | 410 => return Err(MediaError::NotFound),
        status => {
            return Err(MediaError::Unavailable(format!(
                "media download answered {status}"
            )));
        }
    }
    let content_type = file
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or(fallback_type);
    let length = file.content_length();
    if let Some(length) = length.filter(|l| *l > max_bytes) {
        return Err(MediaError::TooLarge(length));
    }
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

/// Maps a non-2xx answer. 429 and 503 say the provider did not take the request (transient: retried);
/// other 5xx (500, 502, 504) leave open whether it acted (unknown: not retried, so nothing goes twice);
/// anything else is a final rejection with `error`.
pub(crate) fn refused(status: reqwest::StatusCode, error: ProviderError) -> SendError {
    match status.as_u16() {
        429 | 503 => SendError::Transient(format!("{status}: {}", error.title)),
        _ if status.is_server_error() => SendError::Unknown(format!("{status}: {}", error.title)),
        _ => SendError::Rejected(error),
    }
}

/// Maps a request that got no answer: one that never connected surely did not reach the provider
/// (transient: retried); one that failed later (a read timeout, a reset after the request was written)
/// may have, so it is not retried.
pub(crate) fn unanswered(error: reqwest::Error) -> SendError {
    let surely_not_sent = error.is_connect() || error.is_builder();
    let detail = error.without_url().to_string();
    if surely_not_sent {
        SendError::Transient(format!("request failed: {detail}"))
    } else {
        SendError::Unknown(format!("no answer: {detail}"))
    }
}
