//! The session providers' half of the webhook route (Evolution API, Z-API). They sign nothing, so a
//! post is authenticated by the secret in its URL (generated when the connection was created, compared
//! in constant time), and the instance the payload names must be the connection's. Besides messages
//! and statuses, these webhooks report the WhatsApp Web session: its state is stored on the connection
//! and pushed to the tenant's sockets, and a QR code to scan goes to the tenant's admins.

use super::ingest;
use crate::AppState;
use crate::error::ApiError;
use crate::providers::session::{SessionChange, SessionWebhook};
use crate::providers::{evolution, zapi};
use schema::ConnectionId;
use schema::api::ConnectionView;
use schema::bus::TenantNotice;
use schema::command::Command;
use schema::inbound::InboundEvent;
use schema::records::{ChannelSettings, Connection, ConnectionStatus, Provider};
use schema::store::StoreError;
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

/// Checks the secret in the webhook URL against the connection's (constant time; an empty one never
/// matches).
pub(super) fn authenticate(connection: &Connection, secret: Option<&str>) -> Result<(), ApiError> {
    let expected = match &connection.settings {
        ChannelSettings::Evolution(e) => e.webhook_token.as_str(),
        ChannelSettings::Zapi(z) => z.webhook_token.as_str(),
        ChannelSettings::Meta(_) => "",
    };
    if expected.is_empty() || !secret.is_some_and(|s| crate::auth::secrets_match(s, expected)) {
        return Err(ApiError::unauthorized("wrong webhook secret"));
    }
    Ok(())
}

/// Parses and ingests an authenticated session-provider webhook.
pub(super) async fn receive(
    state: &AppState,
    connection: Connection,
    body: &[u8],
    received_at: Instant,
    request_id: &Arc<str>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let mut parsed: SessionWebhook = match connection.provider {
        Provider::Evolution => evolution::webhook::parse(body),
        Provider::Zapi => zapi::webhook::parse(body),
        _ => return Err(ApiError::unauthorized("not a session provider connection")),
    }
    .map_err(|e| ApiError::bad_request("malformed_payload", e.to_string()))?;
    super::within_limits(&mut parsed.events)?;
    match &parsed.instance {
        // Every Evolution envelope and Z-API callback names its instance: one that does not is not
        // theirs.
        None => {
            return Err(ApiError::bad_request(
                "malformed_payload",
                "the payload names no instance",
            ));
        }
        Some(instance) if instance != connection.address() => {
            return Err(ApiError::not_found(
                "unknown_account_id",
                format!("instance {instance} is not this connection's"),
            ));
        }
        Some(_) => {}
    }
    if let Some(change) = parsed.session {
        apply(state, connection.id, change).await?;
    }
    let tenant = connection.tenant_id;
    // Groups are a feature a tenant turns on: until then their messages are acknowledged, counted
    // as ignored and not stored.
    if parsed.events.iter().any(InboundEvent::is_group) {
        let view = state.tenancy.view(state.store.as_ref(), tenant).await?;
        if !view.flags.groups {
            let before = parsed.events.len();
            parsed.events.retain(|e| !e.is_group());
            parsed.ignored += before - parsed.events.len();
        }
    }
    let (stored, duplicates, statuses) = ingest(
        state,
        tenant,
        vec![(connection, parsed.events)],
        received_at,
        request_id,
    )
    .await?;
    Ok(axum::Json(json!({
        "status": "ok",
        "messages_stored": stored,
        "duplicates": duplicates,
        "statuses_applied": statuses,
        "ignored_changes": parsed.ignored,
    })))
}

/// Stores the session's new state on the connection and tells the tenant's sockets. The record is read
/// again here and written under its version, so an admin's pause or credential change made while this
/// webhook was in flight is never overwritten (the write fails and the change is decided again on what
/// is stored); a connection paused or removed meanwhile is left alone.
async fn apply(state: &AppState, id: ConnectionId, change: SessionChange) -> Result<(), ApiError> {
    const TRIES: usize = 5;
    let mut tries = 0;
    let (connection, qr) = loop {
        tries += 1;
        let Some(mut connection) = state.store.connection(id).await? else {
            return Ok(());
        };
        if connection.status == ConnectionStatus::Paused {
            return Ok(());
        }
        let qr = match &change {
            SessionChange::Status(status) => {
                if connection.status == *status && connection.qr_code.is_none() {
                    return Ok(());
                }
                connection.status = *status;
                // Only a session waiting to be paired has a QR code worth keeping.
                connection.qr_code = None;
                None
            }
            SessionChange::Qr(code) => {
                if connection.status == ConnectionStatus::QrRequired
                    && connection.qr_code.as_deref() == Some(code.as_str())
                {
                    // The same code again (a provider retry): nothing changed, nobody is told twice.
                    return Ok(());
                }
                connection.status = ConnectionStatus::QrRequired;
                connection.qr_code = Some(code.clone());
                Some(code.clone())
            }
        };
        let updated = state.store.update_connection(&connection).await;
        state.webhook_connections.forget(connection.id);
        match updated {
            Ok(()) => break (connection, qr),
            // Removed, or changed (an admin's pause, a credential rotation) between the read and the
            // write: read it again and decide on what is stored now.
            Err(StoreError::Conflict(_)) if tries < TRIES => continue,
            Err(StoreError::Conflict(_)) => {
                return Err(ApiError::unavailable(
                    "connection_busy",
                    "the connection kept changing; nothing was stored, retry",
                ));
            }
            Err(other) => return Err(other.into()),
        }
    };
    metrics::counter!(
        "conversa_session_state_changes_total",
        "provider" => connection.provider.as_str(),
        "status" => connection.status.as_str()
    )
    .increment(1);
    tracing::info!(connection = %connection.id, status = connection.status.as_str(), "session state changed");
    let tenant = connection.tenant_id;
    state.bus.notify(
        tenant,
        TenantNotice::ConnectionUpdated(ConnectionView::from(&connection)),
    );
    if connection.status == ConnectionStatus::Disconnected {
        state
            .session_command(Command::Reconnect {
                tenant,
                connection: connection.id,
            })
            .await;
    }
    if let Some(qr_code) = qr {
        state.bus.notify(
            tenant,
            TenantNotice::ConnectionQr {
                connection_id: connection.id,
                qr_code,
            },
        );
    }
    Ok(())
}
