//! `GET /api/v1/connections`: what an agent sees of the tenant's channel connections (status, no
//! secrets), for choosing where to start a conversation. Admins change them under `/api/v1/admin`.

use crate::AppState;
use crate::auth::AuthenticatedAgent;
use crate::error::ApiError;
use crate::http::problems::{Unauthorized, Unavailable};
use axum::extract::State;
use schema::api::ConnectionView;

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
) -> Result<axum::Json<Vec<schema::api::ConnectionView>>, ApiError> {
    let viewer = crate::permissions::viewer(&state, &agent).await?;
    let connections = state.store.connections(agent.tenant_id).await?;
    Ok(axum::Json(
        connections
            .iter()
            .filter(|c| viewer.sees_connection(c.id))
            .map(schema::api::ConnectionView::from)
            .collect(),
    ))
}
