//! A change to a connection (`PATCH` by the operator or a tenant admin), applied to the record as
//! read from the store: rename, pause or resume, rotate credentials, the Human Agent tag. Pure: the
//! caller writes it under the stored version (`admin::change_connection`).

use crate::error::ApiError;
use crate::http::admin::{non_empty, provision_error};
use axum::http::StatusCode;
use schema::api::UpdateConnectionRequest;
use schema::records::{ChannelSettings, Connection, ConnectionStatus, Provider};

/// Applies a PATCH to a connection as read from the store.
pub(crate) fn apply_update(
    connection: &mut Connection,
    request: &UpdateConnectionRequest,
) -> Result<(), ApiError> {
    let field = |value: String, name| non_empty(value, name).map_err(provision_error);
    if let Some(name) = request.name.clone() {
        connection.name = field(name, "name")?;
    }
    if let Some(status) = request.status {
        if !matches!(
            status,
            ConnectionStatus::Paused | ConnectionStatus::Connected
        ) {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_status",
                "status can be set to paused or connected",
            ));
        }
        // A WhatsApp Web session's real state is only known from its provider's next webhook.
        connection.status =
            if status == ConnectionStatus::Connected && connection.provider.has_session() {
                ConnectionStatus::Connecting
            } else {
                status
            };
    }
    let credentials = [
        (request.verify_token.clone(), "verify_token"),
        (request.app_secret.clone(), "app_secret"),
        (request.access_token.clone(), "access_token"),
        (request.api_key.clone(), "api_key"),
        (request.instance_token.clone(), "instance_token"),
        (request.client_token.clone(), "client_token"),
    ];
    for (value, name) in credentials {
        let Some(value) = value else { continue };
        let value = field(value, name)?;
        let slot = match (&mut connection.settings, name) {
            (ChannelSettings::Meta(m), "verify_token") => &mut m.verify_token,
            (ChannelSettings::Meta(m), "app_secret") => &mut m.app_secret,
            (ChannelSettings::Meta(m), "access_token") => &mut m.access_token,
            (ChannelSettings::Evolution(e), "api_key") => &mut e.api_key,
            (ChannelSettings::Zapi(z), "instance_token") => &mut z.instance_token,
            (ChannelSettings::Zapi(z), "client_token") => z.client_token.get_or_insert_default(),
            _ => {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_field",
                    format!(
                        "{name} does not apply to a {} connection",
                        connection.provider.as_str()
                    ),
                ));
            }
        };
        *slot = value;
    }
    if let Some(human_agent) = request.human_agent_tag {
        match (&mut connection.settings, connection.provider) {
            (ChannelSettings::Meta(m), Provider::Messenger | Provider::Instagram) => {
                m.human_agent = human_agent;
            }
            _ => {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_field",
                    "human_agent_tag applies to Messenger and Instagram connections",
                ));
            }
        }
    }
    Ok(())
}
