//! The platform operator's API (`/api/v1/admin/…`, the admin token): plans and their limits, every
//! tenant with its plan, standing and usage, changing a tenant's plan, suspending and resuming it.
//! Changes to a tenant are recorded in its audit log and apply at once on this node, within
//! `tenancy::TTL` on the others.

use crate::AppState;
use crate::audit;
use crate::auth::Admin;
use crate::error::ApiError;
use crate::http::admin::{existing_tenant, json_body};
use crate::http::problems::{BadRequest, NotFound, Unavailable};
use crate::tenancy::plan_named;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use jiff::Timestamp;
use schema::TenantId;
use schema::api::{ErrorBody, Page};
use schema::audit::AuditAction;
use schema::records::Tenant;
use schema::tenancy::{
    DEFAULT_PLAN, MAX_PLANS, MAX_REASON_CHARS, Plan, PlanLimits, Suspension, TenantAccount, Usage,
};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 200;

/// The operator's routes other than `GET /admin/tenants` (which shares its path with provisioning).
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_plans))
        .routes(routes!(put_plan))
        .routes(routes!(tenant_summary))
        .routes(routes!(change_plan))
        .routes(routes!(suspend))
        .routes(routes!(resume))
}

/// A tenant as the operator sees it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TenantSummary {
    pub tenant: Tenant,
    pub account: TenantAccount,
    pub plan: Plan,
    pub usage: Usage,
}

async fn summary(state: &AppState, tenant: Tenant) -> Result<TenantSummary, ApiError> {
    let store = state.store.as_ref();
    let view = state.tenancy.view(store, tenant.id).await?;
    let usage = state.tenancy.usage(store, tenant.id).await?;
    Ok(TenantSummary {
        tenant,
        account: view.account.clone(),
        plan: view.plan.clone(),
        usage,
    })
}

async fn summary_of(state: &AppState, raw: &str) -> Result<TenantSummary, ApiError> {
    let id = existing_tenant(state, raw).await?;
    let tenant = state
        .store
        .tenant(id)
        .await?
        .ok_or_else(|| ApiError::not_found("tenant_not_found", "no such tenant"))?;
    summary(state, tenant).await
}

/// `GET /api/v1/admin/plans`: every plan (the built-in unlimited `default` unless stored).
#[utoipa::path(
    get,
    path = "/api/v1/admin/plans",
    tag = "platform",
    operation_id = "plans_list",
    responses(
        (status = 200, description = "every plan", body = Vec<Plan>),
        (status = 401, description = "no or wrong admin token", body = ErrorBody, content_type = "application/problem+json"),
        NotFound,
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn list_plans(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<axum::Json<Vec<Plan>>, ApiError> {
    let mut plans = state.store.plans().await?;
    if !plans.iter().any(|p| p.name == DEFAULT_PLAN) {
        plans.insert(0, Plan::unlimited());
    }
    Ok(axum::Json(plans))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanRequest {
    #[schema(value_type = PlanLimits)]
    limits: serde_json::Map<String, serde_json::Value>,
}

/// `PUT /api/v1/admin/plans/{name}`: creates or replaces a plan; its tenants are held to it at once
/// on this node, within `tenancy::TTL` on the others.
#[utoipa::path(
    put,
    path = "/api/v1/admin/plans/{name}",
    tag = "platform",
    operation_id = "plans_put",
    params(("name" = String, Path, description = "1–64 of a-z, 0-9, - and _")),
    request_body = PlanRequest,
    responses(
        (status = 200, description = "the plan", body = Plan),
        (status = 401, description = "no or wrong admin token", body = ErrorBody, content_type = "application/problem+json"),
        (status = 422, description = "too many plans", body = ErrorBody, content_type = "application/problem+json"),
        BadRequest,
        NotFound,
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn put_plan(
    State(state): State<AppState>,
    _admin: Admin,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::Json<Plan>, ApiError> {
    if !Plan::valid_name(&name) {
        return Err(ApiError::bad_request(
            "invalid_plan_name",
            "a plan name is 1 to 64 of a-z, 0-9, - and _",
        ));
    }
    let request: PlanRequest = json_body(&state, &headers, body).await?;
    if let Some(name) = PlanLimits::unknown_field(&request.limits) {
        return Err(ApiError::bad_request(
            "invalid_limits",
            format!("{name:?} is not a limit"),
        ));
    }
    let limits: PlanLimits = serde_json::from_value(serde_json::Value::Object(request.limits))
        .map_err(|e| ApiError::bad_request("invalid_limits", e.to_string()))?;
    let plans = state.store.plans().await?;
    if plans.len() >= MAX_PLANS && !plans.iter().any(|p| p.name == name) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "too_many_plans",
            format!("the platform has at most {MAX_PLANS} plans"),
        ));
    }
    let plan = Plan {
        name,
        limits,
        updated_at: Timestamp::now(),
    };
    state.store.put_plan(&plan).await?;
    state.tenancy.forget_all();
    Ok(axum::Json(plan))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TenantsQuery {
    cursor: Option<TenantId>,
    limit: Option<usize>,
}

/// `GET /api/v1/admin/tenants`: every tenant with its plan, standing and usage, a page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/admin/tenants",
    tag = "platform",
    operation_id = "tenants_list",
    params(TenantsQuery),
    responses(
        (status = 200, description = "a page of tenants", body = Page<TenantSummary>),
        (status = 401, description = "no or wrong admin token", body = ErrorBody, content_type = "application/problem+json"),
        BadRequest,
        NotFound,
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn list_tenants(
    State(state): State<AppState>,
    _admin: Admin,
    Query(query): Query<TenantsQuery>,
) -> Result<axum::Json<Page<TenantSummary>>, ApiError> {
    let limit = match query.limit.unwrap_or(DEFAULT_PAGE) {
        n @ 1..=MAX_PAGE => n,
        _ => {
            return Err(ApiError::bad_request(
                "invalid_limit",
                format!("limit must be 1 to {MAX_PAGE}"),
            ));
        }
    };
    let tenants = state.store.tenants(query.cursor, limit).await?;
    let next_cursor = (tenants.len() == limit)
        .then(|| tenants.last().map(|t| t.id.to_string()))
        .flatten();
    let mut items = Vec::with_capacity(tenants.len());
    for tenant in tenants {
        items.push(summary(&state, tenant).await?);
    }
    Ok(axum::Json(Page { items, next_cursor }))
}

/// `GET /api/v1/admin/tenants/{tenant}`: one tenant with its plan, standing and usage.
#[utoipa::path(
    get,
    path = "/api/v1/admin/tenants/{tenant}",
    tag = "platform",
    operation_id = "tenants_get",
    params(("tenant" = Uuid, Path, description = "tenant id")),
    responses(
        (status = 200, description = "the tenant", body = TenantSummary),
        (status = 401, description = "no or wrong admin token", body = ErrorBody, content_type = "application/problem+json"),
        NotFound,
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn tenant_summary(
    State(state): State<AppState>,
    _admin: Admin,
    Path(tenant): Path<String>,
) -> Result<axum::Json<TenantSummary>, ApiError> {
    summary_of(&state, &tenant).await.map(axum::Json)
}

/// Changes a tenant's account, records it, and applies it on this node at once.
async fn change_account(
    state: &AppState,
    raw: &str,
    change: impl FnOnce(&mut TenantAccount) -> Result<String, ApiError>,
) -> Result<TenantSummary, ApiError> {
    let id = existing_tenant(state, raw).await?;
    let mut account = state
        .store
        .tenant_account(id)
        .await?
        .unwrap_or_else(|| TenantAccount::new(id));
    let what = change(&mut account)?;
    account.updated_at = Timestamp::now();
    state.store.put_tenant_account(&account).await?;
    state.tenancy.forget(id);
    let entry = audit::by_operator(id, AuditAction::TenantChanged, format!("tenant:{id}"))
        .detail("change", what)
        .detail("plan", account.plan.clone());
    audit::record(state, entry).await;
    summary_of(state, raw).await
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePlanRequest {
    plan: String,
}

/// `PUT /api/v1/admin/tenants/{tenant}/plan`: moves the tenant to a stored plan (or `default`).
#[utoipa::path(
    put,
    path = "/api/v1/admin/tenants/{tenant}/plan",
    tag = "platform",
    operation_id = "tenants_change_plan",
    params(("tenant" = Uuid, Path, description = "tenant id")),
    request_body = ChangePlanRequest,
    responses(
        (status = 200, description = "the tenant on its new plan", body = TenantSummary),
        (status = 401, description = "no or wrong admin token", body = ErrorBody, content_type = "application/problem+json"),
        (status = 422, description = "no such plan", body = ErrorBody, content_type = "application/problem+json"),
        BadRequest,
        NotFound,
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn change_plan(
    State(state): State<AppState>,
    _admin: Admin,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::Json<TenantSummary>, ApiError> {
    let request: ChangePlanRequest = json_body(&state, &headers, body).await?;
    let stored = state
        .store
        .plans()
        .await?
        .iter()
        .any(|p| p.name == request.plan);
    if !stored && request.plan != DEFAULT_PLAN {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_plan",
            format!("there is no plan {:?}", request.plan),
        ));
    }
    // Read now so a plan that vanished in between is not half-applied.
    plan_named(state.store.as_ref(), &request.plan).await?;
    change_account(&state, &tenant, |account| {
        account.plan = request.plan;
        Ok("plan".into())
    })
    .await
    .map(axum::Json)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SuspendRequest {
    reason: String,
}

/// `POST /api/v1/admin/tenants/{tenant}/suspend`: the tenant's users are refused (403
/// `tenant_suspended`) and its sockets close; its customers' messages are still stored.
#[utoipa::path(
    post,
    path = "/api/v1/admin/tenants/{tenant}/suspend",
    tag = "platform",
    operation_id = "tenants_suspend",
    params(("tenant" = Uuid, Path, description = "tenant id")),
    request_body = SuspendRequest,
    responses(
        (status = 200, description = "the tenant, suspended", body = TenantSummary),
        (status = 401, description = "no or wrong admin token", body = ErrorBody, content_type = "application/problem+json"),
        BadRequest,
        NotFound,
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn suspend(
    State(state): State<AppState>,
    _admin: Admin,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::Json<TenantSummary>, ApiError> {
    let request: SuspendRequest = json_body(&state, &headers, body).await?;
    let reason = request.reason.trim().to_owned();
    if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
        return Err(ApiError::bad_request(
            "invalid_reason",
            format!("reason is 1 to {MAX_REASON_CHARS} characters"),
        ));
    }
    change_account(&state, &tenant, |account| {
        account.suspended = Some(Suspension {
            at: Timestamp::now(),
            reason,
        });
        Ok("suspended".into())
    })
    .await
    .map(axum::Json)
}

/// `POST /api/v1/admin/tenants/{tenant}/resume`: lifts a suspension.
#[utoipa::path(
    post,
    path = "/api/v1/admin/tenants/{tenant}/resume",
    tag = "platform",
    operation_id = "tenants_resume",
    params(("tenant" = Uuid, Path, description = "tenant id")),
    responses(
        (status = 200, description = "the tenant, active", body = TenantSummary),
        (status = 401, description = "no or wrong admin token", body = ErrorBody, content_type = "application/problem+json"),
        NotFound,
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn resume(
    State(state): State<AppState>,
    _admin: Admin,
    Path(tenant): Path<String>,
) -> Result<axum::Json<TenantSummary>, ApiError> {
    change_account(&state, &tenant, |account| {
        account.suspended = None;
        Ok("resumed".into())
    })
    .await
    .map(axum::Json)
}
