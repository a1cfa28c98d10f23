//! Provider webhook routes: `/webhooks/whatsapp/{connection_id}` (WhatsApp Cloud API),
//! `/webhooks/meta/{connection_id}` (Messenger pages and Instagram accounts), and for the session
//! providers, which sign nothing, `/webhooks/evolution/{connection_id}/{secret}` and
//! `/webhooks/zapi/{connection_id}/{secret}`. `GET` answers Meta's verification handshake; `POST`
//! verifies, parses, routes every event to its conversation actor and answers 200 only when all of
//! them are durable.
//!
//! Order of checks (each refusal stores nothing): content type (415) → connection exists on this route
//! (404) → paused (409) → the URL secret compared in constant time (401, session providers) → body size
//! and read time (413, 408) → signature (401, Meta) → in-flight limit (503: only authenticated webhooks
//! hold one of the shared permits) → payload shape (400) → every account in the payload
//! (`phone_number_id`, page id, Instagram id) belongs to this tenant (404). A session provider's change of state (connected,
//! dropped, a QR code to scan) is stored on the connection and pushed to the tenant's sockets. Events
//! are grouped per conversation (order kept within one) and the conversations are ingested
//! concurrently. Any failure answers 503: providers retry, and the retry is deduplicated by the
//! provider's message id, so a partial success is never a partial loss.

use crate::AppState;
use crate::error::{ApiError, read_body_budgeted, require_json};
use crate::http::parse_id;
use crate::http::problems::{BadRequest, NotFound, Unavailable};
use crate::providers::messenger;
use schema::api::ErrorBody;

mod session;
use crate::providers::whatsapp_cloud::webhook::{self, WebhookError};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::future::join_all;
use schema::command::{Command, Reply};
use schema::inbound::InboundEvent;
use schema::records::{Connection, ConnectionStatus, Provider};
use schema::{ConnectionId, ConversationId, TenantId};
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

/// Which webhook route a request came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    /// `/webhooks/whatsapp/…`: WhatsApp Cloud API payloads.
    Whatsapp,
    /// `/webhooks/meta/…`: Messenger Platform payloads (Messenger and Instagram).
    Meta,
    /// `/webhooks/evolution/…/{secret}`: Evolution API envelopes.
    Evolution,
    /// `/webhooks/zapi/…/{secret}`: Z-API callbacks.
    Zapi,
}

impl Route {
    fn serves(self, provider: Provider) -> bool {
        match self {
            Route::Whatsapp => provider == Provider::WhatsappCloud,
            Route::Meta => matches!(provider, Provider::Messenger | Provider::Instagram),
            Route::Evolution => provider == Provider::Evolution,
            Route::Zapi => provider == Provider::Zapi,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Route::Whatsapp => "whatsapp_cloud",
            Route::Meta => "meta",
            Route::Evolution => "evolution",
            Route::Zapi => "zapi",
        }
    }
}

/// Query of Meta's verification handshake.
#[derive(Deserialize)]
pub struct Handshake {
    #[serde(rename = "hub.mode")]
    mode: Option<String>,
    #[serde(rename = "hub.verify_token")]
    verify_token: Option<String>,
    #[serde(rename = "hub.challenge")]
    challenge: Option<String>,
}

/// `GET /webhooks/{whatsapp|meta}/{connection_id}`: echoes `hub.challenge` when the verify token
/// matches (the handshake is the same for every Meta provider).
#[utoipa::path(
    get,
    path = "/webhooks/whatsapp/{connection_id}",
    tag = "webhooks",
    operation_id = "whatsapp_verify",
    params(
        ("connection_id" = Uuid, Path, description = "connection id"),
        ("hub.mode" = String, Query),
        ("hub.verify_token" = String, Query),
        ("hub.challenge" = String, Query),
    ),
    responses(
        (status = 200, description = "the echoed hub.challenge", body = String, content_type = "text/plain"),
        (status = 403, description = "wrong verify token", body = ErrorBody, content_type = "application/problem+json"),
        NotFound,
    ),
)]
pub async fn verify(
    State(state): State<AppState>,
    Path(connection_id): Path<String>,
    Query(handshake): Query<Handshake>,
) -> Result<impl IntoResponse, ApiError> {
    let connection = connection(&state, &connection_id, None).await?;
    let token_ok = handshake
        .verify_token
        .as_deref()
        .zip(connection.meta())
        .is_some_and(|(t, meta)| crate::auth::secrets_match(t, &meta.verify_token));
    match (handshake.mode.as_deref(), token_ok, handshake.challenge) {
        (Some("subscribe"), true, Some(challenge)) => Ok(challenge),
        _ => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "verification_failed",
            "hub.mode or hub.verify_token is wrong",
        )),
    }
}

/// `GET /webhooks/meta/{connection_id}`: the same handshake, for Messenger and Instagram.
#[utoipa::path(
    get,
    path = "/webhooks/meta/{connection_id}",
    tag = "webhooks",
    operation_id = "meta_verify",
    params(
        ("connection_id" = Uuid, Path, description = "connection id"),
        ("hub.mode" = String, Query),
        ("hub.verify_token" = String, Query),
        ("hub.challenge" = String, Query),
    ),
    responses(
        (status = 200, description = "the echoed hub.challenge", body = String, content_type = "text/plain"),
        (status = 403, description = "wrong verify token", body = ErrorBody, content_type = "application/problem+json"),
        NotFound,
    ),
)]
pub async fn verify_meta(
    state: State<AppState>,
    connection_id: Path<String>,
    handshake: Query<Handshake>,
) -> Result<impl IntoResponse, ApiError> {
    verify(state, connection_id, handshake).await
}

/// `POST /webhooks/whatsapp/{connection_id}`.
#[utoipa::path(
    post,
    path = "/webhooks/whatsapp/{connection_id}",
    tag = "webhooks",
    operation_id = "whatsapp_webhook",
    params(
        ("connection_id" = Uuid, Path, description = "connection id"),
        ("X-Hub-Signature-256" = String, Header, description = "sha256=<HMAC of the body with the app secret>"),
    ),
    request_body(content = Object, description = "a WhatsApp Cloud API webhook (entry[].changes[].value)"),
    responses(
        (status = 200, description = "durably stored (or a duplicate)"),
        (status = 401, description = "bad signature or secret", body = ErrorBody, content_type = "application/problem+json"),
        NotFound,
        BadRequest,
        (status = 413, description = "body too large", body = ErrorBody, content_type = "application/problem+json"),
        Unavailable,
    ),
)]
pub async fn receive(
    State(state): State<AppState>,
    Path(connection_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    receive_on(Route::Whatsapp, state, connection_id, None, headers, body).await
}

/// `POST /webhooks/meta/{connection_id}` (Messenger and Instagram).
#[utoipa::path(
    post,
    path = "/webhooks/meta/{connection_id}",
    tag = "webhooks",
    operation_id = "meta_webhook",
    params(
        ("connection_id" = Uuid, Path, description = "connection id"),
        ("X-Hub-Signature-256" = String, Header, description = "sha256=<HMAC of the body with the app secret>"),
    ),
    request_body(content = Object, description = "a Messenger or Instagram webhook (entry[].messaging[])"),
    responses(
        (status = 200, description = "durably stored (or a duplicate)"),
        (status = 401, description = "bad signature or secret", body = ErrorBody, content_type = "application/problem+json"),
        NotFound,
        BadRequest,
        (status = 413, description = "body too large", body = ErrorBody, content_type = "application/problem+json"),
        Unavailable,
    ),
)]
pub async fn receive_meta(
    State(state): State<AppState>,
    Path(connection_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    receive_on(Route::Meta, state, connection_id, None, headers, body).await
}

/// `POST /webhooks/evolution/{connection_id}/{secret}`.
#[utoipa::path(
    post,
    path = "/webhooks/evolution/{connection_id}/{secret}",
    tag = "webhooks",
    operation_id = "evolution_webhook",
    params(
        ("connection_id" = Uuid, Path, description = "connection id"),
        ("secret" = String, Path, description = "the connection's webhook secret"),
    ),
    request_body(content = Object, description = "an Evolution API event (messages.upsert, messages.update, connection.update, qrcode.updated)"),
    responses(
        (status = 200, description = "durably stored (or a duplicate, or an event that changes nothing)"),
        (status = 401, description = "bad signature or secret", body = ErrorBody, content_type = "application/problem+json"),
        NotFound,
        BadRequest,
        (status = 413, description = "body too large", body = ErrorBody, content_type = "application/problem+json"),
        Unavailable,
    ),
)]
pub async fn receive_evolution(
    State(state): State<AppState>,
    Path((connection_id, secret)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    receive_on(
        Route::Evolution,
        state,
        connection_id,
        Some(secret),
        headers,
        body,
    )
    .await
}

/// `POST /webhooks/zapi/{connection_id}/{secret}`.
#[utoipa::path(
    post,
    path = "/webhooks/zapi/{connection_id}/{secret}",
    tag = "webhooks",
    operation_id = "zapi_webhook",
    params(
        ("connection_id" = Uuid, Path, description = "connection id"),
        ("secret" = String, Path, description = "the connection's webhook secret"),
    ),
    request_body(content = Object, description = "a Z-API callback (ReceivedCallback, MessageStatusCallback, …)"),
    responses(
        (status = 200, description = "durably stored (or a duplicate, or an event that changes nothing)"),
        (status = 401, description = "bad signature or secret", body = ErrorBody, content_type = "application/problem+json"),
        NotFound,
        BadRequest,
        (status = 413, description = "body too large", body = ErrorBody, content_type = "application/problem+json"),
        Unavailable,
    ),
)]
pub async fn receive_zapi(
    State(state): State<AppState>,
    Path((connection_id, secret)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    receive_on(
        Route::Zapi,
        state,
        connection_id,
        Some(secret),
        headers,
        body,
    )
    .await
}

/// Every answer carries `x-request-id` (the caller's, when it sent a sane one), which also tags the
/// logs of the actor turns and fan-out it caused.
async fn receive_on(
    route: Route,
    state: AppState,
    connection_id: String,
    secret: Option<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let received_at = Instant::now();
    let request_id = request_id(&headers);
    let span = tracing::info_span!("webhook", provider = route.label(), %request_id, connection = %connection_id);
    let outcome = receive_inner(
        route,
        &state,
        WebhookUrl {
            connection_id: &connection_id,
            secret: secret.as_deref(),
        },
        &headers,
        body,
        received_at,
        &request_id,
    )
    .instrument(span.clone())
    .await;
    let label = match &outcome {
        Ok(_) => "ok",
        Err(e) => e.code,
    };
    metrics::counter!("conversa_webhooks_received_total", "provider" => route.label(), "outcome" => label)
        .increment(1);
    metrics::histogram!("conversa_webhook_duration_seconds", "provider" => route.label())
        .record(received_at.elapsed().as_secs_f64());
    let mut response = match outcome {
        Ok(answer) => answer.into_response(),
        Err(error) => {
            span.in_scope(|| {
                tracing::info!(
                    code = error.code,
                    status = error.status.as_u16(),
                    "webhook refused"
                )
            });
            error.into_response()
        }
    };
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

const REQUEST_ID_HEADER: &str = "x-request-id";

/// The caller's `x-request-id` if it is short and plain, else a new one.
fn request_id(headers: &HeaderMap) -> Arc<str> {
    headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        })
        .map(Arc::from)
        .unwrap_or_else(|| Arc::from(uuid::Uuid::now_v7().simple().to_string()))
}

/// What a webhook URL names: the connection, and for session providers the secret.
#[derive(Clone, Copy)]
struct WebhookUrl<'a> {
    connection_id: &'a str,
    secret: Option<&'a str>,
}

async fn receive_inner(
    route: Route,
    state: &AppState,
    url: WebhookUrl<'_>,
    headers: &HeaderMap,
    body: Body,
    received_at: Instant,
    request_id: &Arc<str>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    require_json(headers)?;
    let connection = connection(state, url.connection_id, Some(route)).await?;
    if connection.status == ConnectionStatus::Paused {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "connection_paused",
            "this connection is paused",
        ));
    }
    if matches!(route, Route::Evolution | Route::Zapi) {
        // The URL's secret authenticates before the body is even read.
        session::authenticate(&connection, url.secret)?;
    }
    // Read under this request's own size and time limits, before any shared capacity is held: a
    // slow or unsigned client never takes a permit from a real provider.
    let (body, _buffered) = read_body_budgeted(
        body,
        state.config.webhook_body_limit,
        state.config.body_read_timeout,
        &state.webhook_body_budget,
    )
    .await?;
    if matches!(route, Route::Evolution | Route::Zapi) {
        let _permit = webhook_permit(state)?;
        return session::receive(state, connection, &body, received_at, request_id).await;
    }
    let signature = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok());
    // The route only serves Meta providers, so this never fails; an empty key must never verify.
    let app_secret = connection
        .meta()
        .map(|m| m.app_secret.as_str())
        .filter(|secret| !secret.is_empty())
        .ok_or_else(|| ApiError::unauthorized("this connection has no app secret".to_string()))?;
    webhook::verify_signature(app_secret, &body, signature).map_err(|e| match e {
        WebhookError::MissingSignature | WebhookError::BadSignature => {
            ApiError::unauthorized(e.to_string())
        }
        WebhookError::Malformed(detail) => ApiError::bad_request("malformed_payload", detail),
    })?;
    let _permit = webhook_permit(state)?;
    let parsed = match connection.provider {
        Provider::WhatsappCloud => webhook::parse(&body),
        Provider::Messenger => messenger::webhook::parse(&body, "page"),
        Provider::Instagram => messenger::webhook::parse(&body, "instagram"),
        // Never reached: `Route::serves` admits only Meta providers here.
        Provider::Evolution | Provider::Zapi => {
            Err(WebhookError::Malformed("not a Meta connection".into()))
        }
    }
    .map_err(|e| ApiError::bad_request("malformed_payload", e.to_string()))?;
    let mut parsed = parsed;
    for batch in &mut parsed.batches {
        within_limits(&mut batch.events)?;
    }

    // Resolve every number before touching any conversation: all or nothing.
    let mut numbers: HashMap<String, Connection> = HashMap::new();
    for batch in &parsed.batches {
        if numbers.contains_key(&batch.account_id) {
            continue;
        }
        let owner = if batch.account_id == connection.address() {
            Some(connection.clone())
        } else {
            state
                .store
                .connection_by_address(connection.provider, &batch.account_id)
                .await?
        };
        match owner {
            Some(owner) if owner.tenant_id == connection.tenant_id => {
                numbers.insert(batch.account_id.clone(), owner);
            }
            _ => {
                let (code, field) = match route {
                    Route::Whatsapp => ("unknown_phone_number_id", "phone_number_id"),
                    _ => ("unknown_account_id", "account"),
                };
                return Err(ApiError::not_found(
                    code,
                    format!(
                        "{field} {} is not a connection of this tenant",
                        batch.account_id
                    ),
                ));
            }
        }
    }

    let batches = parsed
        .batches
        .into_iter()
        .filter_map(|batch| Some((numbers.get(&batch.account_id)?.clone(), batch.events)))
        .collect();
    let (stored, duplicates, statuses) = ingest(
        state,
        connection.tenant_id,
        batches,
        received_at,
        request_id,
    )
    .await?;
    Ok(axum::Json(json!({
        "status": "ok",
        "messages_stored": stored,
        "duplicates": duplicates,
        "statuses_applied": statuses,
        "ignored_changes": parsed.ignored,
    })))
}

/// Refuses a payload with an id or address over its bound (or empty) with 400, before anything is
/// stored: such a value would become a storage key or a conversation, and no provider sends one.
pub(super) fn within_limits(events: &mut [InboundEvent]) -> Result<(), ApiError> {
    schema::limits::check_inbound(events)
        .map_err(|e| ApiError::bad_request("malformed_payload", e.to_string()))
}

/// One of the node's `max_inflight_webhooks` permits, taken only once a webhook is authenticated.
fn webhook_permit(state: &AppState) -> Result<tokio::sync::SemaphorePermit<'_>, ApiError> {
    state
        .webhook_permits
        .try_acquire()
        .map_err(|_| ApiError::unavailable("overloaded", "too many webhooks in flight; retry"))
}

/// Groups events per conversation (payload order kept within one), ingests the conversations
/// concurrently, and answers how many messages were stored, were duplicates, and statuses applied.
pub(super) async fn ingest(
    state: &AppState,
    tenant: TenantId,
    batches: Vec<(Connection, Vec<InboundEvent>)>,
    received_at: Instant,
    request_id: &Arc<str>,
) -> Result<(usize, usize, usize), ApiError> {
    let mut groups: Vec<(Connection, ConversationId, Vec<InboundEvent>)> = Vec::new();
    let mut index: HashMap<ConversationId, usize> = HashMap::new();
    for (owner, events) in batches {
        for event in events {
            let conversation =
                ConversationId::for_contact(tenant, owner.id, event.contact_address());
            let slot = *index.entry(conversation).or_insert_with(|| {
                groups.push((owner.clone(), conversation, Vec::new()));
                groups.len() - 1
            });
            groups[slot].2.push(event);
        }
    }
    let results = join_all(groups.into_iter().map(|(owner, conversation, events)| {
        let command = Command::Ingest {
            tenant,
            connection: owner.id,
            conversation,
            events,
            request_id: request_id.to_string(),
        };
        state.commands.execute(command, received_at)
    }))
    .await;
    let (mut stored, mut duplicates, mut statuses) = (0, 0, 0);
    for result in results {
        let report = match result.map_err(ApiError::from)? {
            Reply::Ingested(report) => report,
            _ => {
                return Err(ApiError::internal(
                    "an ingest was answered as something else",
                ));
            }
        };
        stored += report.messages_stored;
        duplicates += report.duplicates;
        statuses += report.statuses_applied;
    }
    Ok((stored, duplicates, statuses))
}

/// How long a webhook may use a connection read before: a change made on this node applies at once;
/// one made on another node of a cluster (a pause, a rotated secret) within this time.
pub const WEBHOOK_CONNECTION_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// The connection a webhook URL names, if it exists and (for `POST`) is served by this route. Read
/// (and its secrets decrypted) at most once a second per node: every webhook names one.
async fn connection(
    state: &AppState,
    raw_id: &str,
    route: Option<Route>,
) -> Result<Connection, ApiError> {
    let unknown = || {
        ApiError::not_found(
            "unknown_connection",
            "no connection with this id on this route",
        )
    };
    let id: ConnectionId = parse_id(raw_id, "unknown_connection")?;
    let connection = state
        .webhook_connections
        .get(id, || async {
            state.store.connection(id).await?.ok_or_else(unknown)
        })
        .await?;
    route
        .is_none_or(|r| r.serves(connection.provider))
        .then(|| Connection::clone(&connection))
        .ok_or_else(unknown)
}
