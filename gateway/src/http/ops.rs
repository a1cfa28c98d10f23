//! Operations endpoints: `/metrics` (Prometheus text), `/healthz` (the process answers), `/readyz` (the
//! store answers a read; the body also says whether the bus reaches Redis and, in a cluster, how many
//! shards the node serves).

use crate::AppState;
use crate::error::ApiError;
use crate::http::problems::Unavailable;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::json;

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    operation_id = "healthz",
    responses(
        (status = 200, description = "the process is up", body = String, content_type = "text/plain"),
    ),
)]
pub async fn healthz() -> impl IntoResponse {
    axum::Json(json!({"status": "ok"}))
}

#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    operation_id = "readyz",
    responses(
        (status = 200, description = "ready: store, bus and cluster state", body = Object),
        Unavailable,
    ),
)]
pub async fn readyz(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    if state.shutdown.is_cancelled() {
        return Err(ApiError::unavailable(
            "shutting_down",
            "the node is shutting down",
        ));
    }
    state.store.ping().await?;
    // Redis and shard ownership are reported, not required: a node without Redis still ingests and
    // serves its own agents, and a cluster member forwards what it does not own.
    let mut body = json!({"status": "ready", "bus": {"connected": state.bus.connected()}});
    if let Some(placement) = state.directory.placement() {
        body["cluster"] = json!({"shards_served": placement.local_shards()});
    }
    Ok(axum::Json(body))
}

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    operation_id = "metrics",
    responses(
        (status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain"),
    ),
)]
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
