//! `GET /api/v1/connections`: what an agent sees of the tenant's channel connections (status, no
//! secrets), for choosing where to start a conversation. Admins change them under `/api/v1/admin`.

use crate::AppState;
use crate::auth::AuthenticatedAgent;
use crate::error::ApiError;
use axum::extract::State;
use schema::api::{ConnectionView, ErrorBody};

/// `GET /api/v1/connections`: the tenant's channel connections and their status (no secrets).
#[utoipa::path(
    get,
    path = "/api/v1/connections",
    tag = "connections",
    operation_id = "connections_list",
    responses(
        (status = 200, description = "the tenant's connections, no secrets", body = Vec<ConnectionView>),
        (status = 401, description = "no or unknown bearer token", body = ErrorBody, content_type = "application/problem+json"),
        (status = 503, description = "store or owner unavailable; the detail says whether to retry", body = ErrorBody, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])),
)]
pub async fn connections(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
) -> Result<axum::Json<Vec<schema::api::ConnectionView>>, ApiError> {
    let connections = state.store.connections(agent.tenant_id).await?;
    Ok(axum::Json(
        connections
            .iter()
            .map(schema::api::ConnectionView::from)
            .collect(),
    ))
}
