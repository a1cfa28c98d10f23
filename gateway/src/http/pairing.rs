//! `GET /api/v1/connections/{id}/qr`: the QR code that pairs a session connection's phone (Evolution
//! API, Z-API), for the admins and supervisors who get the live `connection_qr` notices. The notices
//! are live only; this route is how a screen opened later (or a Z-API connection, whose provider
//! posts no QR webhook) gets the code: the one Evolution last pushed, else the provider's own answer.
//! A paired or paused connection has nothing to scan, and the provider is not called. Asking
//! Evolution restarts its pairing, so the provider is asked once per connection at a time, and its
//! answer is kept for 20 seconds (about how long a code lives) for every viewer.

use crate::AppState;
use crate::auth::AuthenticatedAgent;
use crate::error::ApiError;
use crate::http::parse_id;
use crate::http::problems::{NotFound, Unauthorized, Unavailable};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use dashmap::DashMap;
use schema::ConnectionId;
use schema::api::ConnectionPairing;
use schema::records::{ConnectionStatus, Provider};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// How long the provider may take to answer before the caller hears it is unavailable.
const PROVIDER_WAIT: Duration = Duration::from_secs(10);
/// How long a provider's answer is given to every viewer before it is asked again.
const KEPT_FOR: Duration = Duration::from_secs(20);
/// Connections remembered at most (more are forgotten all at once: they are asked again).
const MAX_REMEMBERED: usize = 10_000;

/// The codes providers last gave, per connection; a lock per connection makes concurrent viewers
/// wait for one provider call instead of each making its own.
#[derive(Default)]
pub struct PairingCodes(DashMap<ConnectionId, Slot>);

/// One connection's last answer from its provider (when, and the code), behind its lock.
type Slot = Arc<Mutex<Option<(Instant, Option<String>)>>>;

impl PairingCodes {
    fn slot(&self, id: ConnectionId) -> Slot {
        if self.0.len() >= MAX_REMEMBERED && !self.0.contains_key(&id) {
            self.0.clear();
        }
        Arc::clone(&self.0.entry(id).or_default())
    }
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(pairing))
}

/// `GET /api/v1/connections/{id}/qr`: the code to scan now, or `null`.
#[utoipa::path(
    get,
    path = "/api/v1/connections/{id}/qr",
    tag = "connections",
    operation_id = "connections_qr",
    params(("id" = Uuid, Path, description = "connection id")),
    responses(
        (status = 200, description = "the QR code to scan now, or null", body = ConnectionPairing),
        Unauthorized,
        (status = 403, description = "only admins and supervisors pair phones", body = schema::api::ErrorBody, content_type = "application/problem+json"),
        NotFound,
        (status = 502, description = "the provider did not give a code; nothing changed, ask again", body = schema::api::ErrorBody, content_type = "application/problem+json"),
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn pairing(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
    Path(id): Path<String>,
) -> Result<axum::Json<ConnectionPairing>, ApiError> {
    if !schema::bus::pairs_phones(agent.role) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only admins and supervisors pair phones",
        ));
    }
    let viewer = crate::permissions::viewer(&state, &agent).await?;
    let id: ConnectionId = parse_id(&id, "connection_not_found")?;
    let connection = state
        .store
        .connection(id)
        .await?
        .filter(|c| c.tenant_id == agent.tenant_id && viewer.sees_connection(c.id))
        .ok_or_else(|| {
            ApiError::not_found("connection_not_found", "no such connection in this tenant")
        })?;
    let answer = |qr_code| ConnectionPairing {
        connection_id: connection.id,
        status: connection.status,
        qr_code,
    };
    let session = matches!(connection.provider, Provider::Evolution | Provider::Zapi);
    let paired = matches!(
        connection.status,
        ConnectionStatus::Connected | ConnectionStatus::Paused
    );
    if !session || paired {
        return Ok(axum::Json(answer(None)));
    }
    if let Some(code) = connection.qr_code.clone() {
        return Ok(axum::Json(answer(Some(code))));
    }
    let slot = state.pairing.slot(connection.id);
    let mut kept = slot.lock().await;
    if let Some((at, code)) = kept.as_ref()
        && at.elapsed() < KEPT_FOR
    {
        return Ok(axum::Json(answer(code.clone())));
    }
    let asked = tokio::time::timeout(PROVIDER_WAIT, state.channel.pairing_code(&connection)).await;
    match asked {
        Ok(Ok(code)) => {
            *kept = Some((Instant::now(), code.clone()));
            Ok(axum::Json(answer(code)))
        }
        Ok(Err(error)) => {
            tracing::warn!(connection = %connection.id, %error, "the provider gave no QR code");
            Err(provider_silent())
        }
        Err(_) => Err(provider_silent()),
    }
}

fn provider_silent() -> ApiError {
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        "provider_unavailable",
        "the provider did not give a QR code; nothing changed, ask again",
    )
}
