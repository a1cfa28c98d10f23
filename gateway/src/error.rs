//! The one error type of every HTTP route: a status, a stable machine code and a human text, rendered
//! as an `application/problem+json` body (`schema::api::ErrorBody`).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use schema::api::ErrorBody;

/// An HTTP error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
        }
    }
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }
    pub fn not_found(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, detail)
    }
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }
    pub fn unavailable(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, detail)
    }
    /// A broken promise inside the node (never the client's fault); logged.
    pub fn internal(detail: &'static str) -> Self {
        tracing::error!(detail, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", detail)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.detail)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            code: self.code.to_string(),
            status: self.status.as_u16(),
            title: self
                .status
                .canonical_reason()
                .unwrap_or("error")
                .to_string(),
            detail: Some(self.detail),
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        response
    }
}

impl From<schema::store::StoreError> for ApiError {
    fn from(e: schema::store::StoreError) -> Self {
        if let schema::store::StoreError::Invalid(detail) = e {
            return ApiError::bad_request("invalid_request", detail);
        }
        tracing::error!(error = %e, "store error");
        ApiError::unavailable("store_unavailable", "the message store failed; retry later")
    }
}

impl From<schema::command::CommandError> for ApiError {
    fn from(e: schema::command::CommandError) -> Self {
        use schema::command::CommandError;
        match e {
            CommandError::NotFound => ApiError::not_found(
                "conversation_not_found",
                "no such conversation in this tenant",
            ),
            CommandError::WindowClosed(why) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "customer_service_window_closed",
                why,
            ),
            CommandError::Invalid(detail) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_message", detail)
            }
            // Routine while a shard changes hands (seconds): counted, not logged per request.
            CommandError::ShardMoving(detail) => {
                ApiError::unavailable("shard_moving", format!("{detail}; nothing was done, retry"))
            }
            CommandError::Overloaded => ApiError::unavailable(
                "overloaded",
                "the node has too many requests in flight; nothing was done, retry",
            ),
            CommandError::ProviderFailed(detail) => {
                tracing::warn!(error = %detail, "provider call failed");
                ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "provider_unavailable",
                    format!("the provider refused or failed: {detail}"),
                )
            }
            CommandError::NothingDone(detail) => {
                tracing::warn!(error = %detail, "request not done");
                ApiError::unavailable("not_durable", format!("{detail}; nothing was done, retry"))
            }
            CommandError::OutcomeUnknown(detail) => {
                tracing::error!(error = %detail, "request outcome unknown");
                ApiError::unavailable(
                    "outcome_unknown",
                    format!(
                        "{detail}; it may have been applied or may still be. Retrying is safe: a \
                         webhook is deduplicated by its provider message id, a send retried with the \
                         same client_message_id (or Idempotency-Key) answers with the stored message"
                    ),
                )
            }
        }
    }
}

/// Reads a request body up to `limit` bytes within `timeout`: 413 beyond the limit, 408 when the client
/// is too slow (a slow body must not hold a handler, or whatever it holds, for long), 400 when the
/// connection broke mid-body.
pub async fn read_body(
    body: axum::body::Body,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<bytes::Bytes, ApiError> {
    let read = tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await;
    match read {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(error)) if is_length_limit(&error) => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("request body is larger than {limit} bytes"),
        )),
        Ok(Err(error)) => Err(ApiError::bad_request(
            "body_unreadable",
            format!("the request body could not be read: {error}"),
        )),
        Err(_) => {
            metrics::counter!("conversa_http_body_timeouts_total").increment(1);
            Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                format!("the request body did not arrive within {timeout:?}"),
            ))
        }
    }
}

/// Reads a webhook body as `read_body` does, but before it is authenticated: every byte buffered takes
/// one permit of the node's `budget` (`gateway.webhook_body_budget`), held with the bytes. A client that
/// sends slowly holds only what it sent; the node never buffers more unauthenticated bytes than the
/// budget, whatever the number of connections (503 `overloaded` beyond it, nothing done).
pub async fn read_body_budgeted(
    body: axum::body::Body,
    limit: usize,
    timeout: std::time::Duration,
    budget: &std::sync::Arc<tokio::sync::Semaphore>,
) -> Result<(bytes::Bytes, Option<tokio::sync::OwnedSemaphorePermit>), ApiError> {
    use http_body_util::BodyExt;
    let read = async {
        let mut body = body;
        let mut buffer = bytes::BytesMut::new();
        let mut held: Option<tokio::sync::OwnedSemaphorePermit> = None;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|error| {
                ApiError::bad_request(
                    "body_unreadable",
                    format!("the request body could not be read: {error}"),
                )
            })?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            if buffer.len() + data.len() > limit {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    format!("request body is larger than {limit} bytes"),
                ));
            }
            let bytes = u32::try_from(data.len()).unwrap_or(u32::MAX);
            let permit = std::sync::Arc::clone(budget)
                .try_acquire_many_owned(bytes)
                .map_err(|_| {
                    metrics::counter!("conversa_webhook_body_budget_exhausted_total").increment(1);
                    ApiError::unavailable(
                        "overloaded",
                        "the node is reading too many webhook bodies; nothing was done, retry",
                    )
                })?;
            match &mut held {
                Some(held) => held.merge(permit),
                None => held = Some(permit),
            }
            buffer.extend_from_slice(&data);
        }
        Ok((buffer.freeze(), held))
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(read) => read,
        Err(_) => {
            metrics::counter!("conversa_http_body_timeouts_total").increment(1);
            Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                format!("the request body did not arrive within {timeout:?}"),
            ))
        }
    }
}

fn is_length_limit(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = source {
        if error.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = error.source();
    }
    false
}

/// Checks that the request says it carries JSON, answering 415 otherwise.
pub fn require_json(headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if is_json {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the body must be application/json",
        ))
    }
}

/// Parses a JSON body into `T`, answering 400 with serde's reason otherwise.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request("malformed_json", e.to_string()))
}
