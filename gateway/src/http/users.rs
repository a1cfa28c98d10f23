//! The tenant's users, as its members see them and its admins change them:
//!
//! - `GET /api/v1/users`: every user of the tenant (id, name, role, default connection), for every
//!   member (assigning and transferring need them).
//! - `PATCH /api/v1/users/{id}` `{"name"?, "role"?, "default_connection"?}` (tenant admins): a
//!   user's name, role and default connection (`null` clears it). A role limited to its own
//!   connection sees only the default connection's conversations (`schema::visibility`). An admin
//!   cannot change their own role, so a tenant always keeps the admin who is changing it. Audited
//!   as `user.changed`.
//!
//! A change applies to API keys and older agent tokens from their next request, to access tokens
//! when they are refreshed (at most 15 minutes), and to open sockets when they reconnect.

use crate::AppState;
use crate::audit;
use crate::auth::AuthenticatedAgent;
use crate::error::ApiError;
use crate::http::admin::json_body;
use crate::http::parse_id;
use crate::http::problems::{BadRequest, NotFound, Refused, Unauthorized, Unavailable};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use schema::audit::AuditAction;
use schema::records::{Agent, AgentRole};
use schema::{AgentId, ConnectionId};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Most users listed (a plan's user limit is far below it).
const MAX_USERS: usize = 5_000;
/// Longest name, in characters.
const MAX_NAME_CHARS: usize = 100;

/// The routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(change))
}

/// A user as the tenant sees them.
#[derive(Serialize, utoipa::ToSchema)]
pub struct User {
    pub id: AgentId,
    pub name: String,
    pub role: AgentRole,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_connection: Option<ConnectionId>,
    pub created_at: jiff::Timestamp,
}

impl From<Agent> for User {
    fn from(agent: Agent) -> Self {
        Self {
            id: agent.id,
            name: agent.name,
            role: agent.role,
            default_connection: agent.default_connection,
            created_at: agent.created_at,
        }
    }
}

/// `GET /api/v1/users`.
#[utoipa::path(
    get,
    path = "/api/v1/users",
    tag = "account",
    operation_id = "users_list",
    responses(
        (status = 200, description = "the tenant's users, by name", body = Vec<User>),
        Unauthorized,
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn list(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
) -> Result<axum::Json<Vec<User>>, ApiError> {
    let mut users = state.store.agents(agent.tenant_id, MAX_USERS).await?;
    users.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.0.cmp(&b.id.0)));
    Ok(axum::Json(users.into_iter().map(User::from).collect()))
}

/// What `PATCH` changes; absent fields stay as they are.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserChange {
    name: Option<String>,
    role: Option<AgentRole>,
    /// A connection of the tenant, or `null` for none.
    #[serde(default, with = "crate::http::double_option")]
    #[schema(value_type = Option<ConnectionId>)]
    default_connection: Option<Option<ConnectionId>>,
}

/// `PATCH /api/v1/users/{id}`.
#[utoipa::path(
    patch,
    path = "/api/v1/users/{id}",
    tag = "account",
    operation_id = "users_change",
    params(("id" = Uuid, Path, description = "user id")),
    request_body = UserChange,
    responses(
        (status = 200, description = "the user after the change", body = User),
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
    AuthenticatedAgent(admin): AuthenticatedAgent,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::Json<User>, ApiError> {
    if admin.role != AgentRole::Admin {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only tenant admins change users",
        ));
    }
    crate::auth::require_session_for_setup(&state, &admin, &headers).await?;
    let id: AgentId = parse_id(&id, "user_not_found")?;
    let request: UserChange = json_body(&state, &headers, body).await?;
    let not_found = || ApiError::not_found("user_not_found", "no such user in this tenant");
    let mut user = state
        .store
        .agent(admin.tenant_id, id)
        .await?
        .ok_or_else(not_found)?;
    let unprocessable = |code: &'static str, detail: &'static str| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail)
    };
    if let Some(name) = request.name {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
            return Err(unprocessable(
                "invalid_name",
                "a name has 1 to 100 characters",
            ));
        }
        user.name = name.to_owned();
    }
    if let Some(role) = request.role {
        if user.id == admin.id && role != user.role {
            return Err(unprocessable(
                "own_role",
                "an admin cannot change their own role: another admin can",
            ));
        }
        user.role = role;
    }
    if let Some(connection) = request.default_connection {
        if let Some(connection) = connection
            && state
                .store
                .connection(connection)
                .await?
                .is_none_or(|c| c.tenant_id != admin.tenant_id)
        {
            return Err(unprocessable(
                "unknown_connection",
                "default_connection is not a connection of this tenant",
            ));
        }
        user.default_connection = connection;
    }
    if !state.store.update_agent(&user).await? {
        return Err(not_found());
    }
    let entry = audit::by(
        &admin,
        AuditAction::UserChanged,
        format!("user:{}", user.id),
    )
    .detail("role", user.role.as_str())
    .detail(
        "default_connection",
        user.default_connection
            .map(|c| c.to_string())
            .unwrap_or_default(),
    );
    audit::record(&state, entry).await;
    Ok(axum::Json(User::from(user)))
}
