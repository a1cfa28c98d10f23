//! `PUT /api/v1/admin/tenants/{tenant}/agents/{agent}/credentials` (the operator's admin token): sets a
//! user's email and password, and ends the user's sign-ins (a reset).

use crate::AppState;
use crate::auth::Admin;
use crate::error::ApiError;
use crate::http::admin::json_body;
use crate::sign_in::revoke;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use jiff::Timestamp;
use schema::account::{SessionKind, normalized_email, password_problem};
use schema::api::ErrorBody;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The credentials route.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(set_credentials))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialsRequest {
    email: String,
    password: String,
}

/// `PUT /api/v1/admin/tenants/{tenant}/agents/{agent}/credentials` (admin token): sets a user's
/// email and password; 409 `email_taken` when another user has the email.
#[utoipa::path(
    put,
    path = "/api/v1/admin/tenants/{tenant}/agents/{agent}/credentials",
    tag = "admin",
    operation_id = "agents_set_credentials",
    params(
        ("tenant" = Uuid, Path, description = "tenant id"),
        ("agent" = Uuid, Path, description = "agent id"),
    ),
    request_body = CredentialsRequest,
    responses(
        (status = 204, description = "set"),
        (status = 400, description = "not an email, or a weak password", body = ErrorBody, content_type = "application/problem+json"),
        (status = 401, description = "no or wrong admin token", body = ErrorBody, content_type = "application/problem+json"),
        (status = 404, description = "admin API disabled, or no such agent in the tenant", body = ErrorBody, content_type = "application/problem+json"),
        (status = 409, description = "another user has the email", body = ErrorBody, content_type = "application/problem+json"),
        (status = 503, description = "store unavailable", body = ErrorBody, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])),
)]
pub async fn set_credentials(
    State(state): State<AppState>,
    _admin: Admin,
    Path((tenant, agent)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let not_found = || ApiError::not_found("agent_not_found", "no such agent in this tenant");
    let tenant: schema::TenantId = tenant.parse().map_err(|_| not_found())?;
    let agent: schema::AgentId = agent.parse().map_err(|_| not_found())?;
    let request: CredentialsRequest = json_body(&state, &headers, body).await?;
    let agent = state
        .store
        .agent(tenant, agent)
        .await?
        .ok_or_else(not_found)?;
    let email = normalized_email(&request.email)
        .ok_or_else(|| ApiError::bad_request("invalid_email", "email is not an address"))?;
    if let Some(problem) = password_problem(&request.password) {
        return Err(ApiError::bad_request("weak_password", problem));
    }
    let credentials = schema::account::Credentials {
        tenant_id: agent.tenant_id,
        agent_id: agent.id,
        email,
        password_phc: state.sign_in.hash(request.password).await?,
        updated_at: Timestamp::now(),
    };
    match state.store.set_credentials(&credentials).await {
        Ok(()) => {}
        Err(schema::store::StoreError::Conflict(detail)) => {
            return Err(ApiError::new(StatusCode::CONFLICT, "email_taken", detail));
        }
        Err(error) => return Err(error.into()),
    }
    // A reset password ends every sign-in of the user (API keys stay: they are revoked on purpose).
    for session in state.store.sessions(agent.tenant_id, agent.id).await? {
        if session.kind == SessionKind::SignIn {
            revoke(state.store.as_ref(), &session).await?;
        }
    }
    let entry = crate::audit::by_operator(
        agent.tenant_id,
        schema::audit::AuditAction::CredentialsSet,
        format!("user:{}", agent.id),
    );
    crate::audit::record(&state, entry).await;
    Ok(StatusCode::NO_CONTENT)
}
