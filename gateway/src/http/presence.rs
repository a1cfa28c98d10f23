//! `GET /api/v1/presence`: the tenant's agents who are connected now, online or away (everyone else
//! is offline). Any agent of the tenant reads it.

use crate::AppState;
use crate::auth::AuthenticatedAgent;
use crate::error::ApiError;
use crate::http::problems::{Unauthorized, Unavailable};
use axum::extract::State;
use jiff::Timestamp;
use schema::presence::Presence;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

/// `GET /api/v1/presence`.
#[utoipa::path(
    get,
    path = "/api/v1/presence",
    tag = "presence",
    operation_id = "presence_list",
    responses(
        (status = 200, description = "the tenant's agents' presence", body = Vec<Presence>),
        Unauthorized,
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn list(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
) -> Result<axum::Json<Vec<Presence>>, ApiError> {
    let now = Timestamp::now();
    let mut present: Vec<Presence> = state
        .store
        .presence(agent.tenant_id)
        .await?
        .into_iter()
        .filter(|p| p.until > now)
        .collect();
    present.sort_by_key(|p| p.agent);
    Ok(axum::Json(present))
}
