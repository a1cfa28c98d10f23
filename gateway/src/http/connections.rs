//! The tenant's channel connections, as its users see and configure them:
//!
//! - `GET /api/v1/connections`: every member, for choosing where to start a conversation (status,
//!   no secrets; a user limited to its own connection sees that one).
//! - `POST /api/v1/connections`, `PATCH /api/v1/connections/{id}`, `DELETE /api/v1/connections/{id}`
//!   (`configure_connections`, admins by default): create one within the plan, rename, pause or
//!   resume it, rotate its credentials, remove it. The same functions back the operator's
//!   `/api/v1/admin/tenants/{tenant}/connections`; each is audited as its caller. A connection that
//!   names a server URL (Evolution API) is the operator's alone to create: the node would call
//!   wherever a tenant pointed it.

use crate::AppState;
use crate::audit;
use crate::auth::{AuthenticatedAgent, require};
use crate::error::ApiError;
use crate::http::admin::{add_connection, change_connection, drop_connection, json_body};
use crate::http::parse_id;
use crate::http::problems::{BadRequest, NotFound, Refused, Unauthorized, Unavailable};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use schema::ConnectionId;
use schema::api::{
    ConnectionView, CreateConnectionRequest, CreatedConnection, UpdateConnectionRequest,
};
use schema::audit::AuditAction;
use schema::permission::Permission;
use schema::records::{Agent, Connection};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes that change connections (the list is registered with the inbox routes).
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(change, remove))
}

/// `GET /api/v1/connections`: the tenant's channel connections and their status (no secrets).
#[utoipa::path(
    get,
    path = "/api/v1/connections",
    tag = "connections",
    operation_id = "connections_list",
    responses(
        (status = 200, description = "the tenant's connections, no secrets", body = Vec<ConnectionView>),
        Unauthorized,
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn connections(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
) -> Result<axum::Json<Vec<ConnectionView>>, ApiError> {
    let viewer = crate::permissions::viewer(&state, &agent).await?;
    let connections = state.store.connections(agent.tenant_id).await?;
    Ok(axum::Json(
        connections
            .iter()
            .filter(|c| viewer.sees_connection(c.id))
            .map(ConnectionView::from)
            .collect(),
    ))
}

/// `POST /api/v1/connections`: as the operator's, for the caller's tenant.
#[utoipa::path(
    post,
    path = "/api/v1/connections",
    tag = "connections",
    operation_id = "connections_tenant_create",
    request_body = CreateConnectionRequest,
    responses(
        (status = 201, description = "the connection and its webhook URL", body = CreatedConnection),
        Unauthorized,
        BadRequest,
        Refused,
        (status = 409, description = "the provider address belongs to a connection", body = schema::api::ErrorBody, content_type = "application/problem+json"),
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
    require(&state, &agent, Permission::ConfigureConnections).await?;
    crate::auth::require_session_for_setup(&state, &agent, &headers).await?;
    let request: CreateConnectionRequest = json_body(&state, &headers, body).await?;
    // A server URL makes this node call wherever it points (with the key it is given): only the
    // platform's operator names one.
    if request.server_url.is_some() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "operator_only",
            "a connection to a self-hosted server (Evolution API) is set up by the platform's operator",
        ));
    }
    let created = add_connection(&state, agent.tenant_id, request).await?;
    let entry = audit::by(
        &agent,
        AuditAction::ConnectionCreated,
        format!("connection:{}", created.connection_id),
    );
    audit::record(&state, entry).await;
    Ok((StatusCode::CREATED, axum::Json(created)))
}

/// `PATCH /api/v1/connections/{id}`: rename, pause or resume, rotate credentials.
#[utoipa::path(
    patch,
    path = "/api/v1/connections/{id}",
    tag = "connections",
    operation_id = "connections_tenant_update",
    params(("id" = Uuid, Path, description = "connection id")),
    request_body = UpdateConnectionRequest,
    responses(
        (status = 200, description = "the connection after the change", body = ConnectionView),
        Unauthorized,
        BadRequest,
        NotFound,
        Refused,
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn change(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::Json<ConnectionView>, ApiError> {
    require(&state, &agent, Permission::ConfigureConnections).await?;
    crate::auth::require_session_for_setup(&state, &agent, &headers).await?;
    let request: UpdateConnectionRequest = json_body(&state, &headers, body).await?;
    let connection = own(&state, &agent, &id).await?;
    let connection = change_connection(&state, connection, &request).await?;
    let entry = audit::by(
        &agent,
        AuditAction::ConfigChanged,
        format!("connection:{}", connection.id),
    )
    .detail("status", connection.status.as_str());
    audit::record(&state, entry).await;
    Ok(axum::Json(ConnectionView::from(&connection)))
}

/// `DELETE /api/v1/connections/{id}`: its webhooks are refused from now on; its conversations and
/// messages stay readable.
#[utoipa::path(
    delete,
    path = "/api/v1/connections/{id}",
    tag = "connections",
    operation_id = "connections_tenant_remove",
    params(("id" = Uuid, Path, description = "connection id")),
    responses(
        (status = 204, description = "removed"),
        Unauthorized,
        NotFound,
        Refused,
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn remove(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    require(&state, &agent, Permission::ConfigureConnections).await?;
    crate::auth::require_session_for_setup(&state, &agent, &headers).await?;
    let connection = own(&state, &agent, &id).await?;
    drop_connection(&state, &connection).await?;
    let entry = audit::by(
        &agent,
        AuditAction::ConnectionRemoved,
        format!("connection:{}", connection.id),
    );
    audit::record(&state, entry).await;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's tenant's connection named by a path segment (404 for another tenant's).
async fn own(state: &AppState, agent: &Agent, raw: &str) -> Result<Connection, ApiError> {
    let id: ConnectionId = parse_id(raw, "connection_not_found")?;
    state
        .store
        .connection(id)
        .await?
        .filter(|c| c.tenant_id == agent.tenant_id)
        .ok_or_else(|| {
            ApiError::not_found("connection_not_found", "no such connection in this tenant")
        })
}
