//! `/api/v1/admin/…`: provisioning with the operator's admin token — tenants, WhatsApp connections and
//! agents (whose token is shown once). The same functions back `conversa serve --demo`.

use crate::AppState;
use crate::audit;
use crate::auth::{Admin, new_agent_token};
use crate::error::{ApiError, parse_json, read_body, require_json};
use crate::http::parse_id;
use crate::http::problems::{BadRequest, Unavailable};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use jiff::Timestamp;
use schema::api::ErrorBody;
use schema::api::{
    ConnectionView, CreateAgentRequest, CreateConnectionRequest, CreateTenantRequest, CreatedAgent,
    CreatedConnection, UpdateConnectionRequest,
};
use schema::audit::AuditAction;
use schema::bus::TenantNotice;
use schema::command::Command;
use schema::records::{
    Agent, AgentRole, ChannelSettings, Connection, ConnectionStatus, EvolutionSettings,
    MetaSettings, Provider, Tenant, ZapiSettings,
};
use schema::store::{Store, StoreError};
use schema::{AgentId, ConnectionId, TenantId};

/// `POST /api/v1/admin/tenants`.
#[utoipa::path(
    post,
    path = "/api/v1/admin/tenants",
    tag = "admin",
    operation_id = "tenants_create",
    request_body = CreateTenantRequest,
    responses(
        (status = 201, description = "the tenant", body = Tenant),
        (status = 401, description = "no or wrong admin token", body = ErrorBody, content_type = "application/problem+json"),
        (status = 404, description = "admin API disabled or no such tenant/connection", body = ErrorBody, content_type = "application/problem+json"),
        BadRequest,
        Unavailable,
    ),
    security(("bearer" = [])),
)]
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
#[utoipa::path(
    post,
    path = "/api/v1/admin/tenants/{tenant}/connections",
    tag = "admin",
    operation_id = "connections_create",
    params(
        ("tenant" = Uuid, Path, description = "tenant id"),
    ),
    request_body = CreateConnectionRequest,
    responses(
        (status = 201, description = "the connection and its webhook URL", body = CreatedConnection),
        (status = 401, description = "no or wrong admin token", body = ErrorBody, content_type = "application/problem+json"),
        (status = 404, description = "admin API disabled or no such tenant/connection", body = ErrorBody, content_type = "application/problem+json"),
        BadRequest,
        (status = 409, description = "the provider address belongs to a connection", body = ErrorBody, content_type = "application/problem+json"),
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn create_connection(
    State(state): State<AppState>,
    _admin: Admin,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    let tenant = existing_tenant(&state, &tenant).await?;
    let request: CreateConnectionRequest = json_body(&state, &headers, body).await?;
    let created = add_connection(&state, tenant, request).await?;
    let entry = audit::by_operator(
        tenant,
        AuditAction::ConnectionCreated,
        format!("connection:{}", created.connection_id),
    );
    audit::record(&state, entry).await;
    Ok((StatusCode::CREATED, axum::Json(created)))
}

/// Creates a connection of `tenant` within its plan and tells its sockets (the operator's route and
/// the tenant's own share it; each audits as its caller).
pub(crate) async fn add_connection(
    state: &AppState,
    tenant: TenantId,
    request: CreateConnectionRequest,
) -> Result<CreatedConnection, ApiError> {
    crate::tenancy::require_room(state, tenant, schema::tenancy::Limit::Connections).await?;
    let created = provision_connection(state.store.as_ref(), tenant, request)
        .await
        .map_err(provision_error)?;
    if let Some(connection) = state.store.connection(created.connection_id).await? {
        let view = ConnectionView::from(&connection);
        state
            .bus
            .notify(tenant, TenantNotice::ConnectionUpdated(view));
    }
    Ok(created)
}

/// `POST /api/v1/admin/tenants/{tenant}/agents`.
#[utoipa::path(
    post,
    path = "/api/v1/admin/tenants/{tenant}/agents",
    tag = "admin",
    operation_id = "agents_create",
    params(
        ("tenant" = Uuid, Path, description = "tenant id"),
    ),
    request_body = CreateAgentRequest,
    responses(
        (status = 201, description = "the agent and its token (shown once)", body = CreatedAgent),
        (status = 401, description = "no or wrong admin token", body = ErrorBody, content_type = "application/problem+json"),
        (status = 404, description = "admin API disabled or no such tenant/connection", body = ErrorBody, content_type = "application/problem+json"),
        BadRequest,
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn create_agent(
    State(state): State<AppState>,
    _admin: Admin,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    let tenant = existing_tenant(&state, &tenant).await?;
    let request: CreateAgentRequest = json_body(&state, &headers, body).await?;
    crate::tenancy::require_room(&state, tenant, schema::tenancy::Limit::Users).await?;
    let role = request.role.unwrap_or(AgentRole::Agent);
    let created = provision_agent(state.store.as_ref(), tenant, request)
        .await
        .map_err(provision_error)?;
    let entry = audit::by_operator(
        tenant,
        AuditAction::UserCreated,
        format!("user:{}", created.agent_id),
    )
    .detail("role", role.as_str());
    audit::record(&state, entry).await;
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
    store: &dyn Store,
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

/// Creates a connection of any provider for `tenant`. Session providers (Evolution, Z-API) start as
/// `connecting` until their first connection-state webhook says otherwise.
pub async fn provision_connection(
    store: &dyn Store,
    tenant: TenantId,
    request: CreateConnectionRequest,
) -> Result<CreatedConnection, ProvisionError> {
    let provider = request.provider.unwrap_or(Provider::WhatsappCloud);
    let required = |value: Option<String>, field| non_empty(value.unwrap_or_default(), field);
    let settings = match provider {
        Provider::WhatsappCloud | Provider::Messenger | Provider::Instagram => {
            ChannelSettings::Meta(MetaSettings {
                account_id: required(request.account_id, "account_id")?,
                verify_token: required(request.verify_token, "verify_token")?,
                app_secret: required(request.app_secret, "app_secret")?,
                access_token: request.access_token.unwrap_or_default(),
                page_id: request.page_id.clone(),
                human_agent: request.human_agent_tag.unwrap_or(false),
            })
        }
        Provider::Evolution => {
            let server_url = required(request.server_url, "server_url")?;
            if !(server_url.starts_with("https://") || server_url.starts_with("http://")) {
                return Err(ProvisionError::Invalid("server_url"));
            }
            ChannelSettings::Evolution(EvolutionSettings {
                server_url,
                instance: required(request.instance, "instance")?,
                api_key: required(request.api_key, "api_key")?,
                webhook_token: webhook_token(),
            })
        }
        Provider::Zapi => ChannelSettings::Zapi(ZapiSettings {
            instance_id: required(request.instance_id, "instance_id")?,
            instance_token: required(request.instance_token, "instance_token")?,
            client_token: request
                .client_token
                .map(|t| non_empty(t, "client_token"))
                .transpose()?,
            webhook_token: webhook_token(),
        }),
    };
    let connection = Connection {
        id: ConnectionId::new(),
        tenant_id: tenant,
        provider,
        name: non_empty(request.name, "name")?,
        status: if provider.has_session() {
            ConnectionStatus::Connecting
        } else {
            ConnectionStatus::Connected
        },
        settings,
        qr_code: None,
        created_at: Timestamp::now(),
        version: 0,
    };
    store.create_connection(&connection).await?;
    Ok(CreatedConnection {
        connection_id: connection.id,
        tenant_id: tenant,
        webhook_path: webhook_path(&connection),
    })
}

/// Where the provider must post this connection's webhooks.
pub fn webhook_path(connection: &Connection) -> String {
    match &connection.settings {
        ChannelSettings::Evolution(e) => {
            format!("/webhooks/evolution/{}/{}", connection.id, e.webhook_token)
        }
        ChannelSettings::Zapi(z) => format!("/webhooks/zapi/{}/{}", connection.id, z.webhook_token),
        ChannelSettings::Meta(_) if connection.provider == Provider::WhatsappCloud => {
            format!("/webhooks/whatsapp/{}", connection.id)
        }
        ChannelSettings::Meta(_) => format!("/webhooks/meta/{}", connection.id),
    }
}

/// 256 random bits, hex: the secret in a session provider's webhook URL.
fn webhook_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// Creates an agent of `tenant` and its first token.
pub async fn provision_agent(
    store: &dyn Store,
    tenant: TenantId,
    request: CreateAgentRequest,
) -> Result<CreatedAgent, ProvisionError> {
    let agent = Agent {
        default_connection: None,
        id: AgentId::new(),
        tenant_id: tenant,
        name: non_empty(request.name, "name")?,
        role: request.role.unwrap_or(AgentRole::Agent),
        created_at: Timestamp::now(),
    };
    let (token, hash) = new_agent_token();
    // The agent's row takes the hash of a token nobody holds: the real one is only the grant below,
    // so it ends with its expiry or its revocation on every backend.
    let (_, unusable) = new_agent_token();
    store.create_agent(&agent, unusable).await?;
    // The token is an API key: it expires and its session revokes it.
    crate::http::api_keys::store_api_key(
        store,
        &agent,
        hash,
        "created with the user".into(),
        jiff::SignedDuration::from_hours(24 * 365),
    )
    .await
    .map_err(|e| ProvisionError::Store(schema::store::StoreError::Unavailable(e.detail)))?;
    Ok(CreatedAgent {
        agent_id: agent.id,
        tenant_id: tenant,
        token,
    })
}

/// A JSON request body: the content type checked, read within the API body limit and time, parsed.
pub(crate) async fn json_body<T: serde::de::DeserializeOwned>(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<T, ApiError> {
    require_json(headers)?;
    parse_json(
        &read_body(
            body,
            state.config.api_body_limit,
            state.config.body_read_timeout,
        )
        .await?,
    )
}

pub(crate) async fn existing_tenant(state: &AppState, raw: &str) -> Result<TenantId, ApiError> {
    let id: TenantId = parse_id(raw, "tenant_not_found")?;
    match state.store.tenant(id).await? {
        Some(_) => Ok(id),
        None => Err(ApiError::not_found("tenant_not_found", "no such tenant")),
    }
}

pub(crate) fn non_empty(value: String, field: &'static str) -> Result<String, ProvisionError> {
    let trimmed = value.trim();
    if trimmed.is_empty() || trimmed.len() > 256 {
        Err(ProvisionError::Invalid(field))
    } else {
        Ok(trimmed.to_string())
    }
}

pub(crate) fn provision_error(e: ProvisionError) -> ApiError {
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
#[utoipa::path(
    get,
    path = "/api/v1/admin/tenants/{tenant}/connections",
    tag = "admin",
    operation_id = "connections_admin_list",
    params(
        ("tenant" = Uuid, Path, description = "tenant id"),
    ),
    responses(
        (status = 200, description = "the tenant's connections, no secrets", body = Vec<ConnectionView>),
        (status = 401, description = "no or wrong admin token", body = ErrorBody, content_type = "application/problem+json"),
        (status = 404, description = "admin API disabled or no such tenant/connection", body = ErrorBody, content_type = "application/problem+json"),
        Unavailable,
    ),
    security(("bearer" = [])),
)]
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
#[utoipa::path(
    patch,
    path = "/api/v1/admin/tenants/{tenant}/connections/{id}",
    tag = "admin",
    operation_id = "connections_update",
    params(
        ("tenant" = Uuid, Path, description = "tenant id"),
        ("id" = Uuid, Path, description = "connection id"),
    ),
    request_body = UpdateConnectionRequest,
    responses(
        (status = 200, description = "the connection after the change", body = ConnectionView),
        (status = 401, description = "no or wrong admin token", body = ErrorBody, content_type = "application/problem+json"),
        (status = 404, description = "admin API disabled or no such tenant/connection", body = ErrorBody, content_type = "application/problem+json"),
        BadRequest,
        (status = 409, description = "changed meanwhile", body = ErrorBody, content_type = "application/problem+json"),
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn update_connection(
    State(state): State<AppState>,
    _admin: Admin,
    Path((tenant, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::Json<ConnectionView>, ApiError> {
    let request: UpdateConnectionRequest = json_body(&state, &headers, body).await?;
    let connection = tenant_connection(&state, &tenant, &id).await?;
    let connection = change_connection(&state, connection, &request).await?;
    let entry = audit::by_operator(
        connection.tenant_id,
        AuditAction::ConfigChanged,
        format!("connection:{}", connection.id),
    )
    .detail("status", connection.status.as_str());
    audit::record(&state, entry).await;
    Ok(axum::Json(ConnectionView::from(&connection)))
}

/// Applies a PATCH to `connection`, restarts its session and tells the tenant's sockets; answers
/// with the connection as stored.
pub(crate) async fn change_connection(
    state: &AppState,
    mut connection: Connection,
    request: &UpdateConnectionRequest,
) -> Result<Connection, ApiError> {
    // Read, change, write under the stored version; another update landing in between (a session
    // webhook, a second admin) makes the write fail, and the change is applied again on what is
    // stored now, so neither is lost.
    const TRIES: usize = 5;
    let not_found =
        || ApiError::not_found("connection_not_found", "no such connection in this tenant");
    for attempt in 1..=TRIES {
        super::connection_update::apply_update(&mut connection, request)?;
        let updated = state.store.update_connection(&connection).await;
        state.webhook_connections.forget(connection.id);
        match updated {
            Ok(()) => break,
            Err(StoreError::Conflict(_)) if attempt < TRIES => {
                let tenant = connection.tenant_id;
                connection = state
                    .store
                    .connection(connection.id)
                    .await?
                    .filter(|c| c.tenant_id == tenant)
                    .ok_or_else(not_found)?;
            }
            Err(StoreError::Conflict(_)) => {
                return Err(ApiError::unavailable(
                    "connection_busy",
                    "the connection kept changing while this update was applied; nothing was done, retry",
                ));
            }
            Err(other) => return Err(other.into()),
        }
    }
    let (tenant, id) = (connection.tenant_id, connection.id);
    state
        .session_command(Command::RestartSession {
            tenant,
            connection: id,
        })
        .await;
    if connection.status == ConnectionStatus::Disconnected {
        // Stopping the session ended its reconnect loop; a session still down needs a new one.
        state
            .session_command(Command::Reconnect {
                tenant,
                connection: id,
            })
            .await;
    }
    let view = ConnectionView::from(&connection);
    let notice = TenantNotice::ConnectionUpdated(view);
    state.bus.notify(connection.tenant_id, notice);
    Ok(connection)
}

/// `DELETE /api/v1/admin/tenants/{tenant}/connections/{id}`: webhooks for it are refused from now on;
/// its conversations and messages stay readable.
#[utoipa::path(
    delete,
    path = "/api/v1/admin/tenants/{tenant}/connections/{id}",
    tag = "admin",
    operation_id = "connections_remove",
    params(
        ("tenant" = Uuid, Path, description = "tenant id"),
        ("id" = Uuid, Path, description = "connection id"),
    ),
    responses(
        (status = 204, description = "removed"),
        (status = 401, description = "no or wrong admin token", body = ErrorBody, content_type = "application/problem+json"),
        (status = 404, description = "admin API disabled or no such tenant/connection", body = ErrorBody, content_type = "application/problem+json"),
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn remove_connection(
    State(state): State<AppState>,
    _admin: Admin,
    Path((tenant, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let connection = tenant_connection(&state, &tenant, &id).await?;
    drop_connection(&state, &connection).await?;
    let entry = audit::by_operator(
        connection.tenant_id,
        AuditAction::ConnectionRemoved,
        format!("connection:{}", connection.id),
    );
    audit::record(&state, entry).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes `connection`, stops its session and tells the tenant's sockets.
pub(crate) async fn drop_connection(
    state: &AppState,
    connection: &Connection,
) -> Result<(), ApiError> {
    let removed = state.store.remove_connection(connection).await;
    state.webhook_connections.forget(connection.id);
    removed?;
    state
        .session_command(Command::RestartSession {
            tenant: connection.tenant_id,
            connection: connection.id,
        })
        .await;
    let notice = TenantNotice::ConnectionRemoved {
        connection_id: connection.id,
    };
    state.bus.notify(connection.tenant_id, notice);
    Ok(())
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
