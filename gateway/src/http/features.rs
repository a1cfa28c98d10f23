//! What a tenant's users read of their account: its feature flags (`GET /api/v1/features`, every
//! user; `PUT` for tenant admins, the role) and its plan with this month's usage
//! (`GET /api/v1/account`).

use crate::AppState;
use crate::audit;
use crate::auth::AuthenticatedAgent;
use crate::error::ApiError;
use crate::http::admin::json_body;
use crate::http::problems::{BadRequest, Unauthorized, Unavailable};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use schema::api::ErrorBody;
use schema::audit::AuditAction;
use schema::features::FeatureFlags;
use schema::permission::Permission;
use schema::records::AgentRole;
use schema::tenancy::{Plan, Usage};
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(flags, change_flags))
        .routes(routes!(account))
}

/// `GET /api/v1/features`: the tenant's flags.
#[utoipa::path(
    get,
    path = "/api/v1/features",
    tag = "account",
    operation_id = "features_get",
    responses(
        (status = 200, description = "the tenant's feature flags", body = FeatureFlags),
        Unauthorized,
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn flags(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
) -> Result<axum::Json<FeatureFlags>, ApiError> {
    let view = state
        .tenancy
        .view(state.store.as_ref(), agent.tenant_id)
        .await?;
    Ok(axum::Json(view.flags.clone()))
}

/// `PUT /api/v1/features`: `{"groups": true, …}` changes the named flags (tenant admins).
#[utoipa::path(
    put,
    path = "/api/v1/features",
    tag = "account",
    operation_id = "features_change",
    request_body = FeatureFlags,
    responses(
        (status = 200, description = "the flags now", body = FeatureFlags),
        BadRequest,
        Unauthorized,
        (status = 403, description = "only tenant admins change flags", body = ErrorBody, content_type = "application/problem+json"),
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn change_flags(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::Json<FeatureFlags>, ApiError> {
    // Admins change any flag; a role given `manage_admin_security` may turn admin security on or
    // off, and only an admin or such a role may touch it at all.
    let permissions = state
        .permissions
        .of(state.store.as_ref(), agent.tenant_id)
        .await?;
    let secures = permissions.allows(agent.role, Permission::ManageAdminSecurity);
    let forbidden = |why: &'static str| ApiError::new(StatusCode::FORBIDDEN, "forbidden", why);
    if agent.role != AgentRole::Admin && !secures {
        return Err(forbidden("only tenant admins change feature flags"));
    }
    crate::auth::require_session_for_setup(&state, &agent, &headers).await?;
    let patch: serde_json::Map<String, serde_json::Value> =
        json_body(&state, &headers, body).await?;
    if agent.role != AgentRole::Admin && patch.keys().any(|k| k != "admin_security") {
        return Err(forbidden(
            "only tenant admins change feature flags other than admin_security",
        ));
    }
    if patch.contains_key("admin_security") && !secures {
        return Err(forbidden("your role may not manage admin security"));
    }
    let store = state.store.as_ref();
    let current = store
        .feature_flags(agent.tenant_id)
        .await?
        .unwrap_or_default();
    let changed = current
        .patched(&patch)
        .map_err(|e| ApiError::bad_request("invalid_flags", e.to_string()))?;
    let changing = state.directory.departments_changing(agent.tenant_id);
    let stored = store.put_feature_flags(agent.tenant_id, &changed).await;
    drop(changing);
    state.tenancy.forget(agent.tenant_id);
    stored?;
    if changed.automatic_distribution && !current.automatic_distribution {
        // Tickets left waiting by hand while it was off join their departments' queues.
        for department in store.departments(agent.tenant_id).await? {
            if department.distribution != schema::helpdesk::distribution::Mode::Manual {
                crate::http::departments::requeue_waiting(&state, &department);
            }
        }
    }
    let mut entry = audit::by(&agent, AuditAction::ConfigChanged, "features");
    for (name, value) in &patch {
        entry = entry.detail(name, value.to_string());
    }
    audit::record(&state, entry).await;
    Ok(axum::Json(changed))
}

/// The tenant's plan and what it uses of it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AccountView {
    pub plan: Plan,
    pub usage: Usage,
}

/// `GET /api/v1/account`: the tenant's plan and this month's usage (tenant admins).
#[utoipa::path(
    get,
    path = "/api/v1/account",
    tag = "account",
    operation_id = "account_get",
    responses(
        (status = 200, description = "the plan and its usage", body = AccountView),
        Unauthorized,
        (status = 403, description = "only tenant admins", body = ErrorBody, content_type = "application/problem+json"),
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn account(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
) -> Result<axum::Json<AccountView>, ApiError> {
    if agent.role != AgentRole::Admin {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only tenant admins see the account's plan",
        ));
    }
    let store = state.store.as_ref();
    let view = state.tenancy.view(store, agent.tenant_id).await?;
    let usage = state.tenancy.usage(store, agent.tenant_id).await?;
    Ok(axum::Json(AccountView {
        plan: view.plan.clone(),
        usage,
    }))
}
