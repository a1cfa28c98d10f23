//! `/api/v1/roles…`: what each role may do in the tenant. Every user reads it (clients show or hide
//! what a role cannot use); a tenant admin (the role, never a delegated permission) changes a role's
//! set. Admins
//! always keep every permission, so a tenant cannot lock itself out. A change applies at once on the
//! node that made it and within seconds on the others (`permissions::TTL`); open sockets take it
//! when they reconnect.

use crate::AppState;
use crate::auth::AuthenticatedAgent;
use crate::error::ApiError;
use crate::http::admin::json_body;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use schema::api::ErrorBody;
use schema::permission::Permission;
use schema::records::AgentRole;
use serde::Deserialize;
use std::collections::BTreeMap;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The role routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(replace))
}

const ROLES: [AgentRole; 5] = [
    AgentRole::Admin,
    AgentRole::Supervisor,
    AgentRole::Agent,
    AgentRole::Auditor,
    AgentRole::Bot,
];

/// `GET /api/v1/roles`: each role's permissions in this tenant.
#[utoipa::path(
    get,
    path = "/api/v1/roles",
    tag = "roles",
    operation_id = "roles_list",
    responses(
        (status = 200, description = "each role's permissions", body = BTreeMap<String, Vec<Permission>>),
        (status = 401, description = "no or unknown token", body = ErrorBody, content_type = "application/problem+json"),
        (status = 503, description = "store unavailable", body = ErrorBody, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])),
)]
pub async fn list(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
) -> Result<axum::Json<BTreeMap<AgentRole, Vec<Permission>>>, ApiError> {
    let permissions = state
        .permissions
        .of(state.store.as_ref(), agent.tenant_id)
        .await?;
    Ok(axum::Json(
        ROLES
            .into_iter()
            .map(|role| (role, permissions.of(role)))
            .collect(),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleRequest {
    /// The role's whole set.
    permissions: Vec<Permission>,
}

/// `PUT /api/v1/roles/{role}`: replaces a role's permissions in this tenant.
#[utoipa::path(
    put,
    path = "/api/v1/roles/{role}",
    tag = "roles",
    operation_id = "roles_replace",
    params(("role" = String, Path, description = "supervisor, agent, auditor or bot")),
    request_body = RoleRequest,
    responses(
        (status = 200, description = "the role's permissions now", body = Vec<Permission>),
        (status = 400, description = "an unknown permission", body = ErrorBody, content_type = "application/problem+json"),
        (status = 401, description = "no or unknown token", body = ErrorBody, content_type = "application/problem+json"),
        (status = 403, description = "only tenant admins change roles", body = ErrorBody, content_type = "application/problem+json"),
        (status = 404, description = "no such role", body = ErrorBody, content_type = "application/problem+json"),
        (status = 422, description = "admins keep every permission", body = ErrorBody, content_type = "application/problem+json"),
        (status = 503, description = "store unavailable", body = ErrorBody, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])),
)]
pub async fn replace(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
    Path(role): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::Json<Vec<Permission>>, ApiError> {
    // Tenant admins only: a delegated permission must not let a role raise itself.
    if agent.role != AgentRole::Admin {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only tenant admins change roles",
        ));
    }
    crate::auth::require_session_for_setup(&state, &agent, &headers).await?;
    let role: AgentRole = serde_json::from_value(serde_json::Value::String(role))
        .map_err(|_| ApiError::not_found("role_not_found", "no such role"))?;
    if role == AgentRole::Admin {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "admin_role_fixed",
            "admins keep every permission",
        ));
    }
    let request: RoleRequest = json_body(&state, &headers, body).await?;
    let mut permissions = state
        .store
        .role_permissions(agent.tenant_id)
        .await?
        .unwrap_or_default();
    permissions
        .roles
        .insert(role, request.permissions.into_iter().collect());
    state
        .store
        .put_role_permissions(agent.tenant_id, &permissions)
        .await?;
    state.permissions.forget(agent.tenant_id);
    let now = permissions.of(role);
    let names: Vec<&str> = now.iter().map(|p| p.as_str()).collect();
    let entry = crate::audit::by(
        &agent,
        schema::audit::AuditAction::RolePermissionsChanged,
        format!("role:{}", role.as_str()),
    )
    .detail("permissions", names.join(","));
    crate::audit::record(&state, entry).await;
    Ok(axum::Json(now))
}
