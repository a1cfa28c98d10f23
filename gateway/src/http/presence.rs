//! `GET /api/v1/presence`: the tenant's agents who are connected now, online or away (everyone else
//! is offline). Any agent of the tenant reads it.

use crate::AppState;
use crate::auth::AuthenticatedAgent;
use crate::error::ApiError;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use jiff::Timestamp;
use schema::presence::Presence;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/presence", get(list))
}

/// `GET /api/v1/presence`.
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
