//! `/api/v1/departments…`: a tenant's departments (Chatwoot's teams) — members, the connections that
//! feed them, business hours with holidays, the out-of-hours reply, the reopen policy, SLA targets and
//! the distribution mode. Every agent of the tenant reads them; admins and supervisors change them.
//! The tenant always comes from the authenticated agent; members and connections must be the
//! tenant's own.

use crate::AppState;
use crate::auth::{AuthenticatedAgent, require};
use crate::error::ApiError;
use crate::http::admin::json_body;
use crate::http::problems::{BadRequest, NotFound, Refused, Unauthorized, Unavailable};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use jiff::Timestamp;
use schema::api::ErrorBody;
use schema::department::MAX_DEPARTMENTS;
use schema::helpdesk::distribution::Mode;
use schema::helpdesk::hours::BusinessHours;
use schema::helpdesk::sla::SlaPolicy;
use schema::helpdesk::ticket::ReopenPolicy;
use schema::permission::Permission;
use schema::records::{Agent, Department, OutOfHours};
use schema::{AgentId, ConnectionId};
use serde::Deserialize;
use std::collections::HashSet;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The department routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, replace, remove))
}

/// A department as a client writes it (the key comes from the body on create, the path on replace).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DepartmentRequest {
    key: Option<String>,
    name: String,
    #[serde(default)]
    members: Vec<AgentId>,
    #[serde(default)]
    connections: Vec<ConnectionId>,
    #[serde(default)]
    hours: Option<BusinessHours>,
    #[serde(default)]
    out_of_hours: OutOfHours,
    #[serde(default)]
    reopen: ReopenPolicy,
    #[serde(default)]
    sla: SlaPolicy,
    #[serde(default)]
    distribution: Mode,
    #[serde(default)]
    agent_capacity: u32,
    #[serde(default)]
    reassign_after_secs: Option<u64>,
}

/// `GET /api/v1/departments`.
#[utoipa::path(
    get,
    path = "/api/v1/departments",
    tag = "departments",
    operation_id = "departments_list",
    responses(
        (status = 200, description = "the tenant's departments by key", body = Vec<Department>),
        Unauthorized,
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn list(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
) -> Result<axum::Json<Vec<Department>>, ApiError> {
    Ok(axum::Json(state.store.departments(agent.tenant_id).await?))
}

/// `GET /api/v1/departments/{key}`.
#[utoipa::path(
    get,
    path = "/api/v1/departments/{key}",
    tag = "departments",
    operation_id = "departments_get",
    params(
        ("key" = String, Path, description = "department key"),
    ),
    responses(
        (status = 200, description = "the department", body = Department),
        Unauthorized,
        NotFound,
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn get_one(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
    Path(key): Path<String>,
) -> Result<axum::Json<Department>, ApiError> {
    existing(&state, &agent, &key).await.map(axum::Json)
}

/// `POST /api/v1/departments` → 201; 409 when the key is taken.
#[utoipa::path(
    post,
    path = "/api/v1/departments",
    tag = "departments",
    operation_id = "departments_create",
    request_body = DepartmentRequest,
    responses(
        (status = 201, description = "the department", body = Department),
        Unauthorized,
        BadRequest,
        (status = 403, description = "only admins and supervisors", body = ErrorBody, content_type = "application/problem+json"),
        (status = 409, description = "the key exists", body = ErrorBody, content_type = "application/problem+json"),
        Refused,
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn create(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    require(&state, &agent, Permission::ManageHelpdesk).await?;
    let request: DepartmentRequest = json_body(&state, &headers, body).await?;
    let Some(key) = request.key.clone() else {
        return Err(invalid("key is required"));
    };
    let current = state.store.departments(agent.tenant_id).await?;
    let exists = || {
        ApiError::new(
            StatusCode::CONFLICT,
            "department_exists",
            format!("a department with key {key:?} exists"),
        )
    };
    if current.iter().any(|d| d.key == key) {
        return Err(exists());
    }
    // The bound is checked before the write: concurrent creations can pass it by a few.
    if current.len() >= MAX_DEPARTMENTS {
        return Err(invalid(format!(
            "a tenant has at most {MAX_DEPARTMENTS} departments"
        )));
    }
    let now = Timestamp::now();
    let department = checked(&state, &agent, key.clone(), request, now, now).await?;
    let changing = state.directory.departments_changing(agent.tenant_id);
    let created = state.store.create_department(&department).await;
    drop(changing);
    match created {
        Ok(()) => {
            crate::audit::config_changed(
                &state,
                &agent,
                format!("department:{}", department.key),
                "created",
            )
            .await;
            if department.distribution != Mode::Manual {
                requeue_waiting(&state, &department);
            }
            Ok((StatusCode::CREATED, axum::Json(department)))
        }
        Err(schema::store::StoreError::Conflict(_)) => Err(exists()),
        Err(error) => Err(error.into()),
    }
}

/// `PUT /api/v1/departments/{key}`: replaces the department whole.
#[utoipa::path(
    put,
    path = "/api/v1/departments/{key}",
    tag = "departments",
    operation_id = "departments_replace",
    params(
        ("key" = String, Path, description = "department key"),
    ),
    request_body = DepartmentRequest,
    responses(
        (status = 200, description = "the department", body = Department),
        Unauthorized,
        BadRequest,
        (status = 403, description = "only admins and supervisors", body = ErrorBody, content_type = "application/problem+json"),
        NotFound,
        Refused,
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn replace(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::Json<Department>, ApiError> {
    require(&state, &agent, Permission::ManageHelpdesk).await?;
    let request: DepartmentRequest = json_body(&state, &headers, body).await?;
    if request.key.as_ref().is_some_and(|k| k != &key) {
        return Err(invalid("a department's key cannot change"));
    }
    let before = existing(&state, &agent, &key).await?;
    let department = checked(
        &state,
        &agent,
        key,
        request,
        before.created_at,
        Timestamp::now(),
    )
    .await?;
    let changing = state.directory.departments_changing(agent.tenant_id);
    let replaced = state.store.put_department(&department).await;
    drop(changing);
    replaced?;
    crate::audit::config_changed(
        &state,
        &agent,
        format!("department:{}", department.key),
        "replaced",
    )
    .await;
    if department.distribution != before.distribution
        || department.members != before.members
        || department.agent_capacity != before.agent_capacity
    {
        requeue_waiting(&state, &department);
    }
    Ok(axum::Json(department))
}

/// `DELETE /api/v1/departments/{key}` → 204; its tickets keep the key they carry.
#[utoipa::path(
    delete,
    path = "/api/v1/departments/{key}",
    tag = "departments",
    operation_id = "departments_remove",
    params(
        ("key" = String, Path, description = "department key"),
    ),
    responses(
        (status = 204, description = "removed"),
        Unauthorized,
        (status = 403, description = "only admins and supervisors", body = ErrorBody, content_type = "application/problem+json"),
        NotFound,
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn remove(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
    Path(key): Path<String>,
) -> Result<StatusCode, ApiError> {
    require(&state, &agent, Permission::ManageHelpdesk).await?;
    existing(&state, &agent, &key).await?;
    let changing = state.directory.departments_changing(agent.tenant_id);
    let removed = state.store.remove_department(agent.tenant_id, &key).await;
    drop(changing);
    removed?;
    crate::audit::config_changed(&state, &agent, format!("department:{key}"), "removed").await;
    Ok(StatusCode::NO_CONTENT)
}

/// The department built from a request, every rule checked: its own bounds, and members and
/// connections that are the tenant's.
async fn checked(
    state: &AppState,
    agent: &Agent,
    key: String,
    request: DepartmentRequest,
    created_at: Timestamp,
    updated_at: Timestamp,
) -> Result<Department, ApiError> {
    let mut department = Department {
        tenant_id: agent.tenant_id,
        key,
        name: request.name.trim().to_owned(),
        members: dedup(request.members),
        connections: dedup(request.connections),
        hours: request.hours,
        out_of_hours: request.out_of_hours,
        reopen: request.reopen,
        sla: request.sla,
        distribution: request.distribution,
        agent_capacity: request.agent_capacity,
        reassign_after_secs: request.reassign_after_secs,
        created_at,
        updated_at,
    };
    department.out_of_hours.message = department.out_of_hours.message.trim().to_owned();
    department.validate().map_err(invalid)?;
    for member in &department.members {
        if state.store.agent(agent.tenant_id, *member).await?.is_none() {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_agent",
                format!("member {member} is not an agent of this tenant"),
            ));
        }
    }
    if !department.connections.is_empty() {
        let own: HashSet<ConnectionId> = state
            .store
            .connections(agent.tenant_id)
            .await?
            .into_iter()
            .map(|c| c.id)
            .collect();
        if let Some(foreign) = department.connections.iter().find(|c| !own.contains(c)) {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_connection",
                format!("connection {foreign} is not a connection of this tenant"),
            ));
        }
    }
    Ok(department)
}

/// Most waiting tickets a department change puts back in the queue at once.
const MAX_REQUEUED: usize = 1000;

/// After a change of how a department distributes (its mode, members or capacity), its unassigned
/// waiting tickets join (or leave) the queue, each through its conversation's owner, in the
/// background: the change itself is already stored. Tickets beyond the newest [`MAX_REQUEUED`] join
/// when next touched.
pub(crate) fn requeue_waiting(state: &AppState, department: &Department) {
    let (state, tenant, key) = (state.clone(), department.tenant_id, department.key.clone());
    tokio::spawn(async move {
        let view = schema::store::InboxView::Team(key.clone());
        let mut cursor = None;
        let mut waiting = Vec::new();
        // Resolved tickets are in the view too: at most this many pages are read.
        for _page in 0..50 {
            if waiting.len() >= MAX_REQUEUED {
                break;
            }
            let page = match state.store.inbox(tenant, &view, cursor, 200).await {
                Ok(page) => page,
                Err(error) => {
                    tracing::warn!(%tenant, department = %key, %error, "waiting tickets not requeued");
                    return;
                }
            };
            let Some(last) = page.last() else { break };
            cursor = Some(schema::store::InboxCursor {
                last_activity_at: last.last_activity_at,
                conversation_id: last.id,
            });
            let full = page.len() == 200;
            waiting.extend(
                page.into_iter()
                    .filter(|c| {
                        c.assignee.is_none() && !schema::helpdesk::ticket::is_closed(c.status)
                    })
                    .map(|c| c.id),
            );
            if !full {
                break;
            }
        }
        waiting.truncate(MAX_REQUEUED);
        let commands = std::sync::Arc::clone(&state.commands);
        futures::StreamExt::for_each_concurrent(
            futures::stream::iter(waiting),
            8,
            |conversation| {
                let commands = std::sync::Arc::clone(&commands);
                async move {
                    let command = schema::command::Command::Requeue {
                        tenant,
                        conversation,
                    };
                    if let Err(error) = commands.execute(command, std::time::Instant::now()).await {
                        tracing::warn!(%tenant, %conversation, %error, "ticket not requeued");
                    }
                }
            },
        )
        .await;
    });
}

async fn existing(state: &AppState, agent: &Agent, key: &str) -> Result<Department, ApiError> {
    state
        .store
        .department(agent.tenant_id, key)
        .await?
        .ok_or_else(|| {
            ApiError::not_found("department_not_found", "no such department in this tenant")
        })
}

fn dedup<T: PartialEq>(items: Vec<T>) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(items.len());
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

fn invalid(detail: impl Into<String>) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_department",
        detail,
    )
}
