//! `/api/v1/auth/api_keys`: API keys, tokens that act as their user until they expire or are revoked
//! (`DELETE /auth/sessions/{id}`). The token an admin gets when creating a user is one too.

use crate::AppState;
use crate::audit;
use crate::auth::{AuthenticatedAgent, new_agent_token};
use crate::error::ApiError;
use crate::http::admin::json_body;
use crate::http::auth::{label, live_sessions};
use crate::sign_in::new_session;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use jiff::{SignedDuration, Timestamp};
use schema::account::{GrantKind, MAX_API_KEY_DAYS, MAX_SESSIONS, SessionKind};
use schema::api::ErrorBody;
use schema::audit::AuditAction;
use schema::records::Agent;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

/// The API key route.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_api_key))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyRequest {
    /// What the key is for.
    label: String,
    /// 1 to 730 days; 365 when absent.
    expires_in_days: Option<i64>,
}

/// A new API key, shown once.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedApiKey {
    pub token: String,
    pub session_id: Uuid,
    pub expires_at: Timestamp,
}

/// `POST /api/v1/auth/api_keys` → 201: a key acting as the caller until it expires or is revoked
/// (`DELETE /auth/sessions/{session_id}`).
#[utoipa::path(
    post,
    path = "/api/v1/auth/api_keys",
    tag = "auth",
    operation_id = "auth_create_api_key",
    request_body = ApiKeyRequest,
    responses(
        (status = 201, description = "the key (shown once)", body = CreatedApiKey),
        (status = 400, description = "malformed request", body = ErrorBody, content_type = "application/problem+json"),
        (status = 401, description = "no or unknown token", body = ErrorBody, content_type = "application/problem+json"),
        (status = 422, description = "too many sessions", body = ErrorBody, content_type = "application/problem+json"),
        (status = 503, description = "store unavailable", body = ErrorBody, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])),
)]
pub async fn create_api_key(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    let request: ApiKeyRequest = json_body(&state, &headers, body).await?;
    let days = request.expires_in_days.unwrap_or(365);
    if !(1..=MAX_API_KEY_DAYS).contains(&days) {
        return Err(ApiError::bad_request(
            "invalid_expiry",
            format!("expires_in_days is 1 to {MAX_API_KEY_DAYS}"),
        ));
    }
    let Some(label) = label(Some(request.label)) else {
        return Err(ApiError::bad_request("invalid_label", "label is required"));
    };
    if live_sessions(&state, &agent).await?.len() >= MAX_SESSIONS {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "too_many_sessions",
            format!("a user has at most {MAX_SESSIONS} sessions; revoke one"),
        ));
    }
    let (token, session_id, expires_at) = grant_api_key(
        state.store.as_ref(),
        &agent,
        label,
        SignedDuration::from_hours(24 * days),
    )
    .await?;
    let entry = audit::by(
        &agent,
        AuditAction::ApiKeyCreated,
        format!("session:{session_id}"),
    )
    .detail("expires_at", expires_at.to_string());
    audit::record(&state, entry).await;
    Ok((
        StatusCode::CREATED,
        axum::Json(CreatedApiKey {
            token,
            session_id,
            expires_at,
        }),
    ))
}

/// Stores a new API key of `agent` lasting `ttl` (its grant and its session); returns the token
/// (shown once), the session and the expiry.
pub async fn grant_api_key(
    store: &dyn schema::store::Store,
    agent: &Agent,
    label: String,
    ttl: SignedDuration,
) -> Result<(String, Uuid, Timestamp), ApiError> {
    let (token, hash) = new_agent_token();
    let (session, expires_at) = store_api_key(store, agent, hash, label, ttl).await?;
    Ok((token, session, expires_at))
}

/// Stores the grant and session of an API key whose token hashes to `hash`.
pub async fn store_api_key(
    store: &dyn schema::store::Store,
    agent: &Agent,
    hash: [u8; 32],
    label: String,
    ttl: SignedDuration,
) -> Result<(Uuid, Timestamp), ApiError> {
    let mut session = new_session(agent, SessionKind::ApiKey, Some(label));
    let expires_at = Timestamp::now() + ttl;
    session.expires_at = Some(expires_at);
    session.tokens = vec![hex::encode(hash)];
    let grant = schema::account::Grant {
        kind: GrantKind::ApiKey,
        agent: agent.clone(),
        session: session.id,
        expires_at: Some(expires_at),
        email: None,
    };
    store.put_grant(hash, &grant).await?;
    store.put_session(&session).await?;
    Ok((session.id, expires_at))
}
