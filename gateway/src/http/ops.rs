//! Operations endpoints: `/metrics` (Prometheus text), `/healthz` (the process answers), `/readyz` (the
//! store answers a read).

use crate::AppState;
use crate::error::ApiError;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::json;

pub async fn healthz() -> impl IntoResponse {
    axum::Json(json!({"status": "ok"}))
}

pub async fn readyz(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    if state.shutdown.is_cancelled() {
        return Err(ApiError::unavailable(
            "shutting_down",
            "the node is shutting down",
        ));
    }
    state.store.ping().await?;
    Ok(axum::Json(json!({"status": "ready"})))
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let (tenants, conversations, sessions) = state.directory.live_counts();
    metrics::gauge!("conversa_actor_registry_entries", "kind" => "tenant").set(tenants as f64);
    metrics::gauge!("conversa_actor_registry_entries", "kind" => "conversation")
        .set(conversations as f64);
    metrics::gauge!("conversa_actor_registry_entries", "kind" => "session").set(sessions as f64);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
