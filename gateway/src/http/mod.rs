//! The HTTP router: every route of the node and the layers around them.

pub mod admin;
pub mod contacts;
pub mod conversations;
pub mod departments;
pub mod inbox;
pub mod media;
pub mod ops;
pub mod presence;
pub mod quick_replies;
pub mod start;
pub mod tickets;
pub mod webhooks;

use crate::AppState;
use crate::error::ApiError;
use axum::Router;
use axum::routing::{get, post};

/// All routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route(
            "/webhooks/meta/{connection_id}",
            get(webhooks::verify).post(webhooks::receive_meta),
        )
        .route(
            "/webhooks/whatsapp/{connection_id}",
            get(webhooks::verify).post(webhooks::receive),
        )
        .route(
            "/webhooks/evolution/{connection_id}/{secret}",
            post(webhooks::receive_evolution),
        )
        .route(
            "/webhooks/zapi/{connection_id}/{secret}",
            post(webhooks::receive_zapi),
        )
        .route(
            "/api/v1/conversations",
            get(conversations::list).post(start::start),
        )
        .route("/api/v1/conversations/counts", get(inbox::counts))
        .route("/api/v1/conversations/{id}", get(conversations::get_one))
        .route(
            "/api/v1/conversations/{id}/messages",
            get(conversations::messages).post(conversations::send),
        )
        .route(
            "/api/v1/conversations/{id}/events",
            get(conversations::events),
        )
        .route(
            "/api/v1/conversations/{id}/messages/{seq}/media",
            get(media::download),
        )
        .route(
            "/api/v1/conversations/{id}/read",
            post(conversations::mark_read),
        )
        .route("/api/v1/ws", get(crate::ws::upgrade))
        .route("/api/v1/admin/tenants", post(admin::create_tenant))
        .route(
            "/api/v1/admin/tenants/{tenant}/connections",
            post(admin::create_connection).get(admin::list_connections),
        )
        .route(
            "/api/v1/admin/tenants/{tenant}/connections/{id}",
            axum::routing::patch(admin::update_connection).delete(admin::remove_connection),
        )
        .route("/api/v1/connections", get(conversations::connections))
        .route(
            "/api/v1/admin/tenants/{tenant}/agents",
            post(admin::create_agent),
        )
        .merge(tickets::routes())
        .merge(departments::routes())
        .merge(quick_replies::routes())
        .merge(contacts::routes())
        .merge(presence::routes())
        .fallback(not_found)
        .layer(axum::middleware::map_response(nosniff))
        .with_state(state)
}

/// Every answer says its content type is final: no browser guesses HTML out of a JSON or media body.
async fn nosniff(mut response: axum::response::Response) -> axum::response::Response {
    response
        .headers_mut()
        .entry(axum::http::header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(axum::http::HeaderValue::from_static("nosniff"));
    response
}

async fn not_found() -> ApiError {
    ApiError::not_found("route_not_found", "no such route")
}

/// Parses a path segment as an id, answering 404 (not 400: an unparsable id names nothing that exists).
pub(crate) fn parse_id<T: std::str::FromStr>(raw: &str, code: &'static str) -> Result<T, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::not_found(code, format!("{raw:?} is not a valid id")))
}
