//! `/api/v1/auth…`: signing in with an email and a password, refreshing, signing out, a user's
//! sessions (sign-ins and API keys, which `api_keys.rs` makes) with revocation and password change. Access tokens last
//! 15 minutes and refresh tokens 30 days; a refresh token works once, and presenting a spent one again
//! ends its session (it leaked). Five failed sign-ins of an email make it wait 15 minutes (per node).
//! An admin sets a user's email and password under `/api/v1/admin`.

use crate::AppState;
use crate::audit;
use crate::auth::{AuthenticatedAgent, bearer_from_headers, token_hash};
use crate::error::ApiError;
use crate::http::admin::json_body;
use crate::sign_in::{Issued, grant_of, issue, new_session, revoke};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use jiff::Timestamp;
use schema::account::{
    GrantKind, MAX_SESSIONS, Session, SessionKind, normalized_email, password_problem,
};
use schema::api::ErrorBody;
use schema::audit::{AuditAction, AuditActor, AuditRecord};
use schema::records::Agent;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

/// The sign-in routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(sign_in))
        .routes(routes!(refresh))
        .routes(routes!(sign_out))
        .routes(routes!(sessions))
        .routes(routes!(revoke_session))
        .routes(routes!(change_password))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInRequest {
    email: String,
    password: String,
    /// What to call this sign-in in the session list (the browser, the device).
    label: Option<String>,
}

/// The tokens of a sign-in (shown once) and who signed in.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SignedIn {
    pub access_token: String,
    pub access_expires_at: Timestamp,
    pub refresh_token: String,
    pub refresh_expires_at: Timestamp,
    pub session_id: Uuid,
    pub agent: Agent,
}

impl SignedIn {
    pub(crate) fn of(issued: Issued, session: &Session, agent: Agent) -> Self {
        Self {
            access_token: issued.access_token,
            access_expires_at: issued.access_expires_at,
            refresh_token: issued.refresh_token,
            refresh_expires_at: issued.refresh_expires_at,
            session_id: session.id,
            agent,
        }
    }
}

pub(crate) fn label(raw: Option<String>) -> Option<String> {
    raw.map(|l| l.trim().chars().take(100).collect::<String>())
        .filter(|l| !l.is_empty())
}

fn refused() -> ApiError {
    ApiError::unauthorized("wrong email or password")
}

/// `POST /api/v1/auth/sign_in`.
#[utoipa::path(
    post,
    path = "/api/v1/auth/sign_in",
    tag = "auth",
    operation_id = "auth_sign_in",
    request_body = SignInRequest,
    responses(
        (status = 200, description = "signed in", body = SignedIn),
        (status = 400, description = "malformed request", body = ErrorBody, content_type = "application/problem+json"),
        (status = 401, description = "wrong email or password", body = ErrorBody, content_type = "application/problem+json"),
        (status = 429, description = "too many failed attempts; Retry-After says when to try again", body = ErrorBody, content_type = "application/problem+json"),
        (status = 503, description = "overloaded or store unavailable; nothing was done", body = ErrorBody, content_type = "application/problem+json"),
    ),
)]
pub async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::response::Response, ApiError> {
    let request: SignInRequest = json_body(&state, &headers, body).await?;
    let Some(email) = normalized_email(&request.email) else {
        return Err(refused());
    };
    if request.password.chars().count() > 1024 {
        return Err(refused());
    }
    let now = Timestamp::now();
    if let Err(until) = state.sign_in.attempt(&email, now) {
        let wait = until.duration_since(now).as_secs().max(1);
        let mut response = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            format!("too many failed sign-ins for this email; try again in {wait} s"),
        )
        .into_response();
        if let Ok(value) = wait.to_string().parse() {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, value);
        }
        return Ok(response);
    }
    let credentials = state.store.credentials_by_email(&email).await?;
    let phc = credentials.as_ref().map(|c| c.password_phc.clone());
    if !state.sign_in.verify(request.password, phc).await? {
        state.sign_in.failed();
        if let Some(known) = &credentials {
            let entry = AuditRecord::new(
                known.tenant_id,
                AuditActor::OPERATOR,
                AuditAction::SignInFailed,
                format!("user:{}", known.agent_id),
            );
            // Recorded off the answer's path: a known email must not answer slower than an
            // unknown one (the decoy hash keeps them alike).
            let state = state.clone();
            tokio::spawn(async move { audit::record(&state, entry).await });
        }
        return Err(refused());
    }
    let Some(credentials) = credentials else {
        return Err(refused());
    };
    // The user's current email only: a row an interrupted change of email left behind (CQL) does
    // not sign in.
    let current = state
        .store
        .credentials_of(credentials.tenant_id, credentials.agent_id)
        .await?;
    if current.is_none_or(|c| c.email != email) {
        state.sign_in.failed();
        return Err(refused());
    }
    let agent = state
        .store
        .agent(credentials.tenant_id, credentials.agent_id)
        .await?
        .ok_or_else(refused)?;
    state.sign_in.succeeded(&email);
    // Only a user who proved their password learns that their account is suspended.
    crate::tenancy::require_active(&state, agent.tenant_id).await?;
    let mut existing = live_sessions(&state, &agent).await?;
    if existing.len() >= MAX_SESSIONS {
        // The oldest sign-in makes room (API keys are kept: they are revoked on purpose).
        existing.retain(|s| s.kind == SessionKind::SignIn);
        existing.sort_by_key(|s| s.renewed_at);
        if let Some(oldest) = existing.first() {
            revoke(state.store.as_ref(), oldest).await?;
            let entry = audit::by(
                &agent,
                AuditAction::SessionRevoked,
                format!("session:{}", oldest.id),
            )
            .detail("reason", "session_limit");
            audit::record(&state, entry).await;
        }
    }
    let session = new_session(&agent, SessionKind::SignIn, label(request.label));
    let (session, issued) = issue(state.store.as_ref(), &agent, session, None).await?;
    let entry = audit::by(
        &agent,
        AuditAction::SignIn,
        format!("session:{}", session.id),
    );
    audit::record(&state, entry).await;
    Ok(axum::Json(SignedIn::of(issued, &session, agent)).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    refresh_token: String,
}

/// `POST /api/v1/auth/refresh`: a new access and refresh token; the one presented is spent.
#[utoipa::path(
    post,
    path = "/api/v1/auth/refresh",
    tag = "auth",
    operation_id = "auth_refresh",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "the new tokens", body = SignedIn),
        (status = 400, description = "malformed request", body = ErrorBody, content_type = "application/problem+json"),
        (status = 401, description = "unknown, expired or already used refresh token (a reused one ends its session: refresh_token_reused)", body = ErrorBody, content_type = "application/problem+json"),
        (status = 503, description = "store unavailable", body = ErrorBody, content_type = "application/problem+json"),
    ),
)]
pub async fn refresh(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::Json<SignedIn>, ApiError> {
    let request: RefreshRequest = json_body(&state, &headers, body).await?;
    let store = state.store.as_ref();
    let unknown = || ApiError::unauthorized("unknown or expired refresh token; sign in");
    let grant = grant_of(store, &request.refresh_token)
        .await?
        .ok_or_else(unknown)?;
    crate::tenancy::require_active(&state, grant.agent.tenant_id).await?;
    let session = store
        .session(grant.agent.tenant_id, grant.agent.id, grant.session)
        .await?
        .ok_or_else(unknown)?;
    let reused = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "refresh_token_reused",
            "this refresh token was already used: the session is ended; sign in again",
        )
    };
    let spent_hash = token_hash(&request.refresh_token);
    match grant.kind {
        GrantKind::Refresh if grant.expires_at.is_none_or(|at| Timestamp::now() < at) => {
            // Spent in one atomic step: of two refreshes with this token, one wins and the other
            // is a reuse.
            let mut spent = grant.clone();
            spent.kind = GrantKind::Spent;
            if !store
                .spend_grant(spent_hash, GrantKind::Refresh, &spent)
                .await?
            {
                revoke(store, &session).await?;
                reuse_ended(&state, &session).await;
                return Err(reused());
            }
        }
        GrantKind::Spent => {
            revoke(store, &session).await?;
            reuse_ended(&state, &session).await;
            return Err(reused());
        }
        _ => return Err(unknown()),
    }
    // Revoked meanwhile (sign-out, password change): nothing is issued.
    let session = store
        .session(session.tenant_id, session.agent_id, session.id)
        .await?
        .ok_or_else(unknown)?;
    // The agent as stored now (a changed role or name applies from the next access token).
    let agent = store
        .agent(grant.agent.tenant_id, grant.agent.id)
        .await?
        .ok_or_else(unknown)?;
    let (session, issued) = issue(store, &agent, session, Some(spent_hash)).await?;
    Ok(axum::Json(SignedIn::of(issued, &session, agent)))
}

/// The user's sessions that have not expired; expired ones are removed on the way.
pub(crate) async fn live_sessions(
    state: &AppState,
    agent: &Agent,
) -> Result<Vec<Session>, ApiError> {
    let now = Timestamp::now();
    let mut live = Vec::new();
    for session in state.store.sessions(agent.tenant_id, agent.id).await? {
        match session.expires_at.is_some_and(|at| at <= now) {
            true => revoke(state.store.as_ref(), &session).await?,
            false => live.push(session),
        }
    }
    Ok(live)
}

/// The session of the token a request came with.
async fn current_session(state: &AppState, headers: &HeaderMap) -> Result<Option<Uuid>, ApiError> {
    let Some(token) = bearer_from_headers(headers) else {
        return Ok(None);
    };
    Ok(grant_of(state.store.as_ref(), &token)
        .await?
        .map(|g| g.session))
}

/// `POST /api/v1/auth/sign_out`: ends the session of the token used.
#[utoipa::path(
    post,
    path = "/api/v1/auth/sign_out",
    tag = "auth",
    operation_id = "auth_sign_out",
    responses(
        (status = 204, description = "signed out: the session's tokens no longer work"),
        (status = 401, description = "no or unknown token", body = ErrorBody, content_type = "application/problem+json"),
        (status = 503, description = "store unavailable", body = ErrorBody, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])),
)]
pub async fn sign_out(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    match current_session(&state, &headers).await? {
        Some(id) => {
            if let Some(session) = state.store.session(agent.tenant_id, agent.id, id).await? {
                revoke(state.store.as_ref(), &session).await?;
                let entry = audit::by(&agent, AuditAction::SignOut, format!("session:{id}"));
                audit::record(&state, entry).await;
            }
        }
        // A token made before sessions existed: removed by itself.
        None => {
            if let Some(token) = bearer_from_headers(&headers) {
                state.store.remove_grants(&[token_hash(&token)]).await?;
            }
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

/// A session as its user sees it (never a token).
#[derive(Serialize, utoipa::ToSchema)]
pub struct SessionView {
    pub id: Uuid,
    pub kind: SessionKind,
    pub label: Option<String>,
    pub created_at: Timestamp,
    pub renewed_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    /// The session of the token this request came with.
    pub current: bool,
}

/// `GET /api/v1/auth/sessions`: the caller's sign-ins and API keys, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/auth/sessions",
    tag = "auth",
    operation_id = "auth_sessions",
    responses(
        (status = 200, description = "the caller's sessions", body = Vec<SessionView>),
        (status = 401, description = "no or unknown token", body = ErrorBody, content_type = "application/problem+json"),
        (status = 503, description = "store unavailable", body = ErrorBody, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])),
)]
pub async fn sessions(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
    headers: HeaderMap,
) -> Result<axum::Json<Vec<SessionView>>, ApiError> {
    let current = current_session(&state, &headers).await?;
    let now = Timestamp::now();
    let _ = now;
    let mut list: Vec<SessionView> = live_sessions(&state, &agent)
        .await?
        .into_iter()
        .map(|s| SessionView {
            current: Some(s.id) == current,
            id: s.id,
            kind: s.kind,
            label: s.label,
            created_at: s.created_at,
            renewed_at: s.renewed_at,
            expires_at: s.expires_at,
        })
        .collect();
    list.sort_by_key(|s| std::cmp::Reverse(s.created_at));
    Ok(axum::Json(list))
}

/// `DELETE /api/v1/auth/sessions/{id}`: ends one of the caller's sessions (a sign-in elsewhere, an
/// API key).
#[utoipa::path(
    delete,
    path = "/api/v1/auth/sessions/{id}",
    tag = "auth",
    operation_id = "auth_revoke_session",
    params(("id" = Uuid, Path, description = "session id")),
    responses(
        (status = 204, description = "revoked: its tokens no longer work"),
        (status = 401, description = "no or unknown token", body = ErrorBody, content_type = "application/problem+json"),
        (status = 404, description = "no such session of the caller", body = ErrorBody, content_type = "application/problem+json"),
        (status = 503, description = "store unavailable", body = ErrorBody, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])),
)]
pub async fn revoke_session(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let not_found = || ApiError::not_found("session_not_found", "no such session of yours");
    let id: Uuid = id.parse().map_err(|_| not_found())?;
    let session = state
        .store
        .session(agent.tenant_id, agent.id, id)
        .await?
        .ok_or_else(not_found)?;
    revoke(state.store.as_ref(), &session).await?;
    let entry = audit::by(&agent, AuditAction::SessionRevoked, format!("session:{id}"));
    audit::record(&state, entry).await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordRequest {
    current_password: String,
    new_password: String,
}

/// `POST /api/v1/auth/password`: with the current password; every other sign-in of the user ends.
#[utoipa::path(
    post,
    path = "/api/v1/auth/password",
    tag = "auth",
    operation_id = "auth_change_password",
    request_body = PasswordRequest,
    responses(
        (status = 204, description = "changed; the user's other sign-ins are ended"),
        (status = 400, description = "malformed request or a weak new password", body = ErrorBody, content_type = "application/problem+json"),
        (status = 401, description = "no token, or the current password is wrong", body = ErrorBody, content_type = "application/problem+json"),
        (status = 503, description = "store unavailable", body = ErrorBody, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])),
)]
pub async fn change_password(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let current = current_session(&state, &headers).await?;
    let request: PasswordRequest = json_body(&state, &headers, body).await?;
    if let Some(problem) = password_problem(&request.new_password) {
        return Err(ApiError::bad_request("weak_password", problem));
    }
    let mut credentials = state
        .store
        .credentials_of(agent.tenant_id, agent.id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("this user has no password; ask an admin"))?;
    let now = Timestamp::now();
    if let Err(until) = state.sign_in.attempt(&credentials.email, now) {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            format!("too many failed attempts; try again after {until}"),
        ));
    }
    let phc = Some(credentials.password_phc.clone());
    if !state.sign_in.verify(request.current_password, phc).await? {
        state.sign_in.failed();
        return Err(ApiError::unauthorized("the current password is wrong"));
    }
    state.sign_in.succeeded(&credentials.email);
    credentials.password_phc = state.sign_in.hash(request.new_password).await?;
    credentials.updated_at = now;
    state.store.set_credentials(&credentials).await?;
    for session in state.store.sessions(agent.tenant_id, agent.id).await? {
        if session.kind == SessionKind::SignIn && Some(session.id) != current {
            revoke(state.store.as_ref(), &session).await?;
        }
    }
    let entry = audit::by(
        &agent,
        AuditAction::PasswordChanged,
        format!("user:{}", agent.id),
    );
    audit::record(&state, entry).await;
    Ok(StatusCode::NO_CONTENT)
}

/// A reused refresh token ended its session: counted, and recorded as revoked (by nobody signed in:
/// whoever presented the token may not be its user).
async fn reuse_ended(state: &AppState, session: &Session) {
    metrics::counter!("conversa_refresh_reuse_total").increment(1);
    let entry = AuditRecord::new(
        session.tenant_id,
        AuditActor::OPERATOR,
        AuditAction::SessionRevoked,
        format!("session:{}", session.id),
    )
    .detail("reason", "refresh_token_reused");
    audit::record(state, entry).await;
}
