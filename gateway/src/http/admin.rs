//! `/api/v1/admin/…`: provisioning with the operator's admin token — tenants, WhatsApp connections and
//! agents (whose token is shown once). The same functions back `conversa serve --demo`.

use crate::AppState;
use crate::auth::{Admin, new_agent_token};
use crate::error::{ApiError, parse_json, read_body, require_json};
use crate::http::parse_id;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use jiff::Timestamp;
use schema::api::{
    ConnectionView, CreateAgentRequest, CreateConnectionRequest, CreateTenantRequest, CreatedAgent,
    CreatedConnection, UpdateConnectionRequest,
};
use schema::bus::TenantNotice;
use schema::records::{
    Agent, AgentRole, Connection, ConnectionStatus, MetaSettings, Provider, Tenant,
};
use schema::store::{MessageStore, StoreError};
use schema::{AgentId, ConnectionId, TenantId};

/// `POST /api/v1/admin/tenants`.
pub async fn create_tenant(
    State(state): State<AppState>,
    _admin: Admin,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    let request: CreateTenantRequest = json_body(&state, &headers, body).await?;
    let tenant = provision_tenant(state.store.as_ref(), request)
        .await
        .map_err(provision_error)?;
    Ok((StatusCode::CREATED, axum::Json(tenant)))
}

/// `POST /api/v1/admin/tenants/{tenant}/connections`.
pub async fn create_connection(
    State(state): State<AppState>,
    _admin: Admin,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    let tenant = existing_tenant(&state, &tenant).await?;
    let request: CreateConnectionRequest = json_body(&state, &headers, body).await?;
    let created = provision_connection(state.store.as_ref(), tenant, request)
        .await
        .map_err(provision_error)?;
    if let Some(connection) = state.store.connection(created.connection_id).await? {
        let view = ConnectionView::from(&connection);
        state
            .bus
            .notify(tenant, TenantNotice::ConnectionUpdated(view));
    }
    Ok((StatusCode::CREATED, axum::Json(created)))
}

/// `POST /api/v1/admin/tenants/{tenant}/agents`.
pub async fn create_agent(
    State(state): State<AppState>,
    _admin: Admin,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    let tenant = existing_tenant(&state, &tenant).await?;
    let request: CreateAgentRequest = json_body(&state, &headers, body).await?;
    let created = provision_agent(state.store.as_ref(), tenant, request)
        .await
        .map_err(provision_error)?;
    Ok((StatusCode::CREATED, axum::Json(created)))
}

/// Why provisioning failed.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("invalid field: {0}")]
    Invalid(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Creates a tenant.
pub async fn provision_tenant(
    store: &dyn MessageStore,
    request: CreateTenantRequest,
) -> Result<Tenant, ProvisionError> {
    let name = non_empty(request.name, "name")?;
    let tenant = Tenant {
        id: TenantId::new(),
        name,
        created_at: Timestamp::now(),
    };
    store.create_tenant(&tenant).await?;
    Ok(tenant)
}

/// Creates a WhatsApp Cloud API connection for `tenant`.
pub async fn provision_connection(
    store: &dyn MessageStore,
    tenant: TenantId,
    request: CreateConnectionRequest,
) -> Result<CreatedConnection, ProvisionError> {
    let connection = Connection {
        id: ConnectionId::new(),
        tenant_id: tenant,
        provider: request.provider.unwrap_or(Provider::WhatsappCloud),
        name: non_empty(request.name, "name")?,
        status: ConnectionStatus::Connected,
        meta: MetaSettings {
            account_id: non_empty(request.account_id, "account_id")?,
            verify_token: non_empty(request.verify_token, "verify_token")?,
            app_secret: non_empty(request.app_secret, "app_secret")?,
            access_token: request.access_token,
        },
        created_at: Timestamp::now(),
    };
    store.create_connection(&connection).await?;
    Ok(CreatedConnection {
        connection_id: connection.id,
        tenant_id: tenant,
        webhook_path: match connection.provider {
            Provider::WhatsappCloud => format!("/webhooks/whatsapp/{}", connection.id),
            Provider::Messenger | Provider::Instagram => {
                format!("/webhooks/meta/{}", connection.id)
            }
        },
    })
}

/// Creates an agent of `tenant` and its first token.
pub async fn provision_agent(
    store: &dyn MessageStore,
    tenant: TenantId,
    request: CreateAgentRequest,
) -> Result<CreatedAgent, ProvisionError> {
    let agent = Agent {
        id: AgentId::new(),
        tenant_id: tenant,
        name: non_empty(request.name, "name")?,
        role: request.role.unwrap_or(AgentRole::Agent),
        created_at: Timestamp::now(),
    };
    let (token, hash) = new_agent_token();
    store.create_agent(&agent, hash).await?;
    Ok(CreatedAgent {
        agent_id: agent.id,
        tenant_id: tenant,
        token,
    })
}

async fn json_body<T: serde::de::DeserializeOwned>(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<T, ApiError> {
    require_json(headers)?;
    parse_json(&read_body(body, state.config.api_body_limit).await?)
}

async fn existing_tenant(state: &AppState, raw: &str) -> Result<TenantId, ApiError> {
    let id: TenantId = parse_id(raw, "tenant_not_found")?;
    match state.store.tenant(id).await? {
        Some(_) => Ok(id),
        None => Err(ApiError::not_found("tenant_not_found", "no such tenant")),
    }
}

fn non_empty(value: String, field: &'static str) -> Result<String, ProvisionError> {
    let trimmed = value.trim();
    if trimmed.is_empty() || trimmed.len() > 256 {
        Err(ProvisionError::Invalid(field))
    } else {
        Ok(trimmed.to_string())
    }
}

fn provision_error(e: ProvisionError) -> ApiError {
    match e {
        ProvisionError::Invalid(field) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            format!("{field} must have 1 to 256 characters"),
        ),
        ProvisionError::Store(StoreError::Conflict(detail)) => {
            ApiError::new(StatusCode::CONFLICT, "conflict", detail)
        }
        ProvisionError::Store(other) => ApiError::from(other),
    }
}

/// `GET /api/v1/admin/tenants/{tenant}/connections`.
pub async fn list_connections(
    State(state): State<AppState>,
    _admin: Admin,
    Path(tenant): Path<String>,
) -> Result<axum::Json<Vec<ConnectionView>>, ApiError> {
    let tenant = existing_tenant(&state, &tenant).await?;
    let connections = state.store.connections(tenant).await?;
    Ok(axum::Json(
        connections.iter().map(ConnectionView::from).collect(),
    ))
}

/// `PATCH /api/v1/admin/tenants/{tenant}/connections/{id}`: rename, pause/resume, rotate credentials.
/// The session actor is restarted so the change applies to the next send.
pub async fn update_connection(
    State(state): State<AppState>,
    _admin: Admin,
    Path((tenant, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::Json<ConnectionView>, ApiError> {
    let mut connection = tenant_connection(&state, &tenant, &id).await?;
    let request: UpdateConnectionRequest = json_body(&state, &headers, body).await?;
    let field = |value: String, name| non_empty(value, name).map_err(provision_error);
    if let Some(name) = request.name {
        connection.name = field(name, "name")?;
    }
    if let Some(status) = request.status {
        if !matches!(
            status,
            ConnectionStatus::Paused | ConnectionStatus::Connected
        ) {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_status",
                "status can be set to paused or connected",
            ));
        }
        connection.status = status;
    }
    if let Some(token) = request.verify_token {
        connection.meta.verify_token = field(token, "verify_token")?;
    }
    if let Some(secret) = request.app_secret {
        connection.meta.app_secret = field(secret, "app_secret")?;
    }
    if let Some(token) = request.access_token {
        connection.meta.access_token = token;
    }
    state.store.update_connection(&connection).await?;
    state
        .directory
        .stop_session(connection.tenant_id, connection.id);
    let view = ConnectionView::from(&connection);
    let notice = TenantNotice::ConnectionUpdated(view.clone());
    state.bus.notify(connection.tenant_id, notice);
    Ok(axum::Json(view))
}

/// `DELETE /api/v1/admin/tenants/{tenant}/connections/{id}`: webhooks for it are refused from now on;
/// its conversations and messages stay readable.
pub async fn remove_connection(
    State(state): State<AppState>,
    _admin: Admin,
    Path((tenant, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let connection = tenant_connection(&state, &tenant, &id).await?;
    state.store.remove_connection(&connection).await?;
    state
        .directory
        .stop_session(connection.tenant_id, connection.id);
    let notice = TenantNotice::ConnectionRemoved {
        connection_id: connection.id,
    };
    state.bus.notify(connection.tenant_id, notice);
    Ok(StatusCode::NO_CONTENT)
}

async fn tenant_connection(
    state: &AppState,
    tenant: &str,
    id: &str,
) -> Result<Connection, ApiError> {
    let tenant = existing_tenant(state, tenant).await?;
    let id: ConnectionId = parse_id(id, "connection_not_found")?;
    state
        .store
        .connection(id)
        .await?
        .filter(|c| c.tenant_id == tenant)
        .ok_or_else(|| {
            ApiError::not_found("connection_not_found", "no such connection in this tenant")
        })
}
