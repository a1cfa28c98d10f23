//! HTTP helpers every provider client shares: streaming a media file with a size limit, and mapping a
//! provider's error answer to a retryable or final `SendError` (429 and 5xx may pass with a retry;
//! other 4xx will not).

use futures::StreamExt;
use schema::channel::{MediaError, MediaStream, SendError};
use schema::records::ProviderError;

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

/// Maps a non-2xx answer: 429 and 5xx are transient, anything else a final rejection with `error`.
pub(crate) fn refused(status: reqwest::StatusCode, error: ProviderError) -> SendError {
    if status.as_u16() == 429 || status.is_server_error() {
        SendError::Transient(format!("{status}: {}", error.title))
    } else {
        SendError::Rejected(error)
    }
}
