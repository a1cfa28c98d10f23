//! People invited and passwords reset by email (issue 15):
//!
//! - `POST /api/v1/invitations` (tenant admins): creates the user (within the plan's user limit) and
//!   emails a link that sets their password within 7 days (`POST /auth/invitations/accept`, which
//!   signs them in);
//! - `POST /api/v1/auth/password_reset`: always 202 (an unknown email looks the same); a known one
//!   gets a link valid for an hour, at most 3 per 15 minutes per node; `…/confirm` sets the password
//!   and ends every sign-in of the user;
//! - `GET/PUT/DELETE /api/v1/smtp` (tenant admins): the tenant's own SMTP account, its password
//!   sealed at rest and never served back; without one, mail goes through the platform's.
//!
//! Each link's token is single-use (spent with a compare-and-set) and refused once the user has set
//! a password after it was issued.

use crate::AppState;
use crate::audit;
use crate::auth::{AuthenticatedAgent, new_agent_token, token_hash};
use crate::error::ApiError;
use crate::http::admin::json_body;
use crate::http::auth::SignedIn;
use crate::http::problems::{BadRequest, Unauthorized, Unavailable};
use crate::mail;
use crate::sign_in::{issue, new_session, revoke};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use jiff::{SignedDuration, Timestamp};
use schema::AgentId;
use schema::account::{
    Credentials, Grant, GrantKind, SessionKind, normalized_email, password_problem,
};
use schema::api::ErrorBody;
use schema::audit::{AuditAction, AuditActor, AuditRecord};
use schema::mail::{SmtpAccount, SmtpAccountView};
use schema::records::{Agent, AgentRole};
use schema::tenancy::Limit;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

/// How long an invitation link works.
const INVITATION_TTL: SignedDuration = SignedDuration::from_hours(24 * 7);
/// How long a password reset link works.
const RESET_TTL: SignedDuration = SignedDuration::from_hours(1);

/// The routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(invite))
        .routes(routes!(accept))
        .routes(routes!(request_reset))
        .routes(routes!(confirm_reset))
        .routes(routes!(smtp, put_smtp, remove_smtp))
}

fn admins_only(agent: &Agent, what: &str) -> Result<(), ApiError> {
    match agent.role {
        AgentRole::Admin => Ok(()),
        _ => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("only tenant admins {what}"),
        )),
    }
}

/// Stores the grant of a single-use token whose SHA-256 is `hash`.
async fn put_single_use(
    state: &AppState,
    hash: [u8; 32],
    kind: GrantKind,
    agent: &Agent,
    email: &str,
    ttl: SignedDuration,
) -> Result<(), ApiError> {
    let grant = Grant {
        kind,
        agent: agent.clone(),
        session: Uuid::nil(),
        expires_at: Some(Timestamp::now() + ttl),
        email: Some(email.to_owned()),
    };
    state.store.put_grant(hash, &grant).await?;
    Ok(())
}

/// Takes a single-use token: its grant if it is of `kind`, unexpired, issued after the user last set
/// a password, and not taken before (spent now).
async fn take(
    state: &AppState,
    token: &str,
    kind: GrantKind,
    ttl: SignedDuration,
) -> Result<Grant, ApiError> {
    let invalid = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_link",
            "this link is unknown, used or expired; ask for a new one",
        )
    };
    let hash = token_hash(token);
    let grant = state.store.grant(hash).await?.ok_or_else(invalid)?;
    let Some(expires_at) = grant.expires_at.filter(|at| Timestamp::now() < *at) else {
        return Err(invalid());
    };
    if grant.kind != kind {
        return Err(invalid());
    }
    let issued_at = expires_at - ttl;
    let credentials = state
        .store
        .credentials_of(grant.agent.tenant_id, grant.agent.id)
        .await?;
    if credentials.is_some_and(|c| c.updated_at >= issued_at) {
        return Err(invalid());
    }
    // A suspended tenant's link is refused before it is spent: it works once the tenant is resumed.
    crate::tenancy::require_active(state, grant.agent.tenant_id).await?;
    let mut spent = grant.clone();
    spent.kind = GrantKind::Spent;
    if !state.store.spend_grant(hash, kind, &spent).await? {
        return Err(invalid());
    }
    Ok(grant)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteRequest {
    email: String,
    name: String,
    /// `agent` when absent; never `admin`… unless an admin invites one.
    role: Option<AgentRole>,
}

/// The invited user.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Invited {
    pub agent_id: AgentId,
    pub email: String,
    pub expires_at: Timestamp,
}

/// `POST /api/v1/invitations` → 201: the user, invited by email.
#[utoipa::path(
    post,
    path = "/api/v1/invitations",
    tag = "auth",
    operation_id = "invitations_create",
    request_body = InviteRequest,
    responses(
        (status = 201, description = "the user, invited (the SMTP server took the email)", body = Invited),
        BadRequest,
        Unauthorized,
        (status = 403, description = "only tenant admins invite", body = ErrorBody, content_type = "application/problem+json"),
        (status = 409, description = "the email belongs to a user", body = ErrorBody, content_type = "application/problem+json"),
        (status = 422, description = "no SMTP account, or the plan's user limit", body = ErrorBody, content_type = "application/problem+json"),
        (status = 503, description = "the email could not be sent (nothing was done) or the user not stored", body = ErrorBody, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])),
)]
pub async fn invite(
    State(state): State<AppState>,
    AuthenticatedAgent(admin): AuthenticatedAgent,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, axum::Json<Invited>), ApiError> {
    admins_only(&admin, "invite users")?;
    crate::auth::require_session_for_setup(&state, &admin, &headers).await?;
    let request: InviteRequest = json_body(&state, &headers, body).await?;
    let email = normalized_email(&request.email)
        .ok_or_else(|| ApiError::bad_request("invalid_email", "email is not an address"))?;
    let name = request.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 128 {
        return Err(ApiError::bad_request(
            "invalid_name",
            "name is 1 to 128 characters",
        ));
    }
    if state.store.credentials_by_email(&email).await?.is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "email_taken",
            "this email belongs to a user",
        ));
    }
    let Some(account) = mail::account_for(&state, admin.tenant_id).await? else {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "smtp_not_configured",
            "neither this account nor the platform has an SMTP account to send the invitation",
        ));
    };
    crate::tenancy::require_room(&state, admin.tenant_id, Limit::Users).await?;
    let agent = Agent {
        default_connection: None,
        id: AgentId::new(),
        tenant_id: admin.tenant_id,
        name,
        role: request.role.unwrap_or(AgentRole::Agent),
        created_at: Timestamp::now(),
    };
    let tenant_name = state
        .store
        .tenant(admin.tenant_id)
        .await?
        .map_or_else(String::new, |t| t.name);
    // The email goes first: a user is created only once their invitation has left, so a failed
    // send leaves nothing behind and may simply be retried.
    let (token, hash) = new_agent_token();
    let link = format!("{}/#/invitation?token={token}", state.config.public_url);
    if let Err(error) = mail::send(&account, &mail::invitation(&email, &tenant_name, &link)).await {
        tracing::warn!(tenant = %admin.tenant_id, %error, "invitation not sent");
        return Err(ApiError::unavailable(
            "mail_failed",
            format!("the invitation could not be sent ({error}); nothing was done, retry"),
        ));
    }
    // Its grant before the user: a grant without a user signs nobody in.
    put_single_use(
        &state,
        hash,
        GrantKind::Invitation,
        &agent,
        &email,
        INVITATION_TTL,
    )
    .await?;
    let (_, unusable) = new_agent_token();
    state.store.create_agent(&agent, unusable).await.map_err(|error| {
        tracing::warn!(tenant = %admin.tenant_id, %error, "invited user not stored");
        ApiError::unavailable(
            "store_unavailable",
            "the invitation was emailed but the user could not be stored: its link will not work; invite again",
        )
    })?;
    let entry = audit::by(
        &admin,
        AuditAction::UserCreated,
        format!("user:{}", agent.id),
    )
    .detail("role", agent.role.as_str())
    .detail("invited", "true");
    audit::record(&state, entry).await;
    Ok((
        StatusCode::CREATED,
        axum::Json(Invited {
            agent_id: agent.id,
            email,
            expires_at: Timestamp::now() + INVITATION_TTL,
        }),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenPassword {
    token: String,
    password: String,
}

/// Sets a user's password from a link's grant; returns their credentials as stored.
async fn set_password(
    state: &AppState,
    grant: &Grant,
    email: String,
    password: String,
) -> Result<(), ApiError> {
    let credentials = Credentials {
        tenant_id: grant.agent.tenant_id,
        agent_id: grant.agent.id,
        email,
        password_phc: state.sign_in.hash(password).await?,
        updated_at: Timestamp::now(),
    };
    match state.store.set_credentials(&credentials).await {
        Ok(()) => Ok(()),
        Err(schema::store::StoreError::Conflict(detail)) => {
            Err(ApiError::new(StatusCode::CONFLICT, "email_taken", detail))
        }
        Err(error) => Err(error.into()),
    }
}

/// `POST /api/v1/auth/invitations/accept`: sets the invited user's password and signs them in.
#[utoipa::path(
    post,
    path = "/api/v1/auth/invitations/accept",
    tag = "auth",
    operation_id = "invitations_accept",
    request_body = TokenPassword,
    responses(
        (status = 200, description = "signed in", body = SignedIn),
        (status = 400, description = "a weak password", body = ErrorBody, content_type = "application/problem+json"),
        (status = 401, description = "unknown, used or expired link", body = ErrorBody, content_type = "application/problem+json"),
        (status = 409, description = "the email was taken meanwhile", body = ErrorBody, content_type = "application/problem+json"),
        Unavailable,
    ),
)]
pub async fn accept(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::Json<SignedIn>, ApiError> {
    let request: TokenPassword = json_body(&state, &headers, body).await?;
    if let Some(problem) = password_problem(&request.password) {
        return Err(ApiError::bad_request("weak_password", problem));
    }
    let grant = take(
        &state,
        &request.token,
        GrantKind::Invitation,
        INVITATION_TTL,
    )
    .await?;
    crate::tenancy::require_active(&state, grant.agent.tenant_id).await?;
    let email = grant.email.clone().unwrap_or_default();
    set_password(&state, &grant, email, request.password).await?;
    let agent = state
        .store
        .agent(grant.agent.tenant_id, grant.agent.id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("the invited user no longer exists"))?;
    let session = new_session(&agent, SessionKind::SignIn, Some("invitation".into()));
    let (session, issued) = issue(state.store.as_ref(), &agent, session, None).await?;
    let entry = audit::by(
        &agent,
        AuditAction::CredentialsSet,
        format!("user:{}", agent.id),
    )
    .detail("by", "invitation");
    audit::record(&state, entry).await;
    Ok(axum::Json(SignedIn::of(issued, &session, agent)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    email: String,
}

/// `POST /api/v1/auth/password_reset` → 202, whether or not the email is known.
#[utoipa::path(
    post,
    path = "/api/v1/auth/password_reset",
    tag = "auth",
    operation_id = "password_reset_request",
    request_body = ResetRequest,
    responses(
        (status = 202, description = "if the email is a user's, a link is on its way"),
        BadRequest,
        Unavailable,
    ),
)]
pub async fn request_reset(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let request: ResetRequest = json_body(&state, &headers, body).await?;
    let Some(email) = normalized_email(&request.email) else {
        return Ok(StatusCode::ACCEPTED);
    };
    // Off the answer's path (a known email answers like an unknown one), a bounded number at once:
    // past it the request is dropped, as a throttled one is.
    let Ok(permit) = Arc::clone(&state.sign_in.reset_permits).try_acquire_owned() else {
        tracing::warn!("too many password resets in flight; one dropped");
        return Ok(StatusCode::ACCEPTED);
    };
    let state = state.clone();
    tokio::spawn(async move {
        if let Err(error) = send_reset(&state, &email).await {
            tracing::warn!(%error, "password reset not sent");
        }
        drop(permit);
    });
    Ok(StatusCode::ACCEPTED)
}

async fn send_reset(state: &AppState, email: &str) -> Result<(), ApiError> {
    let Some(credentials) = state.store.credentials_by_email(email).await? else {
        return Ok(());
    };
    if !state.sign_in.reset_allowed(email, Timestamp::now()) {
        return Ok(());
    }
    let tenant = credentials.tenant_id;
    let Some(agent) = state.store.agent(tenant, credentials.agent_id).await? else {
        return Ok(());
    };
    let Some(account) = mail::account_for(state, tenant).await? else {
        return Ok(());
    };
    let (token, hash) = new_agent_token();
    put_single_use(
        state,
        hash,
        GrantKind::PasswordReset,
        &agent,
        email,
        RESET_TTL,
    )
    .await?;
    let link = format!("{}/#/reset?token={token}", state.config.public_url);
    mail::send(&account, &mail::password_reset(email, &link))
        .await
        .map_err(|e| ApiError::unavailable("mail_failed", e.to_string()))
}

/// `POST /api/v1/auth/password_reset/confirm` → 204: the new password; every sign-in ends.
#[utoipa::path(
    post,
    path = "/api/v1/auth/password_reset/confirm",
    tag = "auth",
    operation_id = "password_reset_confirm",
    request_body = TokenPassword,
    responses(
        (status = 204, description = "the password is set; sign in with it"),
        (status = 400, description = "a weak password", body = ErrorBody, content_type = "application/problem+json"),
        (status = 401, description = "unknown, used or expired link", body = ErrorBody, content_type = "application/problem+json"),
        Unavailable,
    ),
)]
pub async fn confirm_reset(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let request: TokenPassword = json_body(&state, &headers, body).await?;
    if let Some(problem) = password_problem(&request.password) {
        return Err(ApiError::bad_request("weak_password", problem));
    }
    let grant = take(&state, &request.token, GrantKind::PasswordReset, RESET_TTL).await?;
    let (tenant, agent) = (grant.agent.tenant_id, grant.agent.id);
    let email = match state.store.credentials_of(tenant, agent).await? {
        Some(current) => current.email,
        None => grant.email.clone().unwrap_or_default(),
    };
    set_password(&state, &grant, email, request.password).await?;
    for session in state.store.sessions(tenant, agent).await? {
        if session.kind == SessionKind::SignIn {
            revoke(state.store.as_ref(), &session).await?;
        }
    }
    let entry = AuditRecord::new(
        tenant,
        AuditActor::agent(&grant.agent),
        AuditAction::PasswordChanged,
        format!("user:{agent}"),
    )
    .detail("step", "reset");
    audit::record(&state, entry).await;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/smtp`: the tenant's own SMTP account (no password), or 404.
#[utoipa::path(
    get,
    path = "/api/v1/smtp",
    tag = "account",
    operation_id = "smtp_get",
    responses(
        (status = 200, description = "the tenant's SMTP account", body = SmtpAccountView),
        Unauthorized,
        (status = 403, description = "only tenant admins", body = ErrorBody, content_type = "application/problem+json"),
        (status = 404, description = "the tenant sends through the platform's account", body = ErrorBody, content_type = "application/problem+json"),
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn smtp(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
) -> Result<axum::Json<SmtpAccountView>, ApiError> {
    admins_only(&agent, "see the SMTP account")?;
    let account = state
        .store
        .smtp_account(agent.tenant_id)
        .await?
        .ok_or_else(|| ApiError::not_found("smtp_not_configured", "no SMTP account of its own"))?;
    Ok(axum::Json(SmtpAccountView::from(&account)))
}

/// `PUT /api/v1/smtp`: the tenant's own SMTP account; a missing password keeps the stored one.
#[utoipa::path(
    put,
    path = "/api/v1/smtp",
    tag = "account",
    operation_id = "smtp_put",
    request_body = SmtpAccount,
    responses(
        (status = 200, description = "the account as stored (no password)", body = SmtpAccountView),
        BadRequest,
        Unauthorized,
        (status = 403, description = "only tenant admins", body = ErrorBody, content_type = "application/problem+json"),
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn put_smtp(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::Json<SmtpAccountView>, ApiError> {
    admins_only(&agent, "change the SMTP account")?;
    crate::auth::require_session_for_setup(&state, &agent, &headers).await?;
    let mut account: SmtpAccount = json_body(&state, &headers, body).await?;
    if let Some(problem) = account.problem() {
        return Err(ApiError::bad_request("invalid_smtp_account", problem));
    }
    if account.password.is_none()
        && let Some(stored) = state.store.smtp_account(agent.tenant_id).await?
    {
        // The stored password goes only to the server it was given for.
        let same_server = stored.host == account.host
            && stored.port == account.port
            && stored.security == account.security
            && stored.username == account.username;
        if !same_server && stored.password.is_some() {
            return Err(ApiError::bad_request(
                "password_required",
                "give the password again when the server, its security or the user changes",
            ));
        }
        account.password = stored.password;
    }
    state
        .store
        .put_smtp_account(agent.tenant_id, Some(&account))
        .await?;
    let entry = audit::by(&agent, AuditAction::ConfigChanged, "smtp")
        .detail("host", account.host.clone())
        .detail("change", "replaced");
    audit::record(&state, entry).await;
    Ok(axum::Json(SmtpAccountView::from(&account)))
}

/// `DELETE /api/v1/smtp` → 204: the tenant sends through the platform's account again.
#[utoipa::path(
    delete,
    path = "/api/v1/smtp",
    tag = "account",
    operation_id = "smtp_remove",
    responses(
        (status = 204, description = "removed"),
        Unauthorized,
        (status = 403, description = "only tenant admins", body = ErrorBody, content_type = "application/problem+json"),
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn remove_smtp(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    admins_only(&agent, "change the SMTP account")?;
    crate::auth::require_session_for_setup(&state, &agent, &headers).await?;
    state.store.put_smtp_account(agent.tenant_id, None).await?;
    let entry = audit::by(&agent, AuditAction::ConfigChanged, "smtp").detail("change", "removed");
    audit::record(&state, entry).await;
    Ok(StatusCode::NO_CONTENT)
}
