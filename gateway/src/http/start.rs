//! `POST /api/v1/conversations`: an agent starts a conversation from our side, with a contact on one
//! of the tenant's connections, by sending its first message (a template where the channel requires
//! one: WhatsApp's Cloud API delivers nothing else to a contact who has not written within 24 hours;
//! 422 `customer_service_window_closed` otherwise). The conversation is the one the contact's own
//! messages would open (the id derives from tenant, connection and address), so a reply from the
//! contact lands in it; when it exists the message simply goes into it.

use crate::AppState;
use crate::auth::AuthenticatedAgent;
use crate::auth::require;
use crate::error::ApiError;
use crate::http::admin::json_body;
use crate::http::conversations::{Requested, requested_content};
use crate::http::problems::{BadRequest, NotFound, Refused, Unauthorized, Unavailable};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use schema::api::ErrorBody;
use schema::api::SendMessageRequest;
use schema::command::{Command, Reply};
use schema::permission::Permission;
use schema::records::{ConnectionStatus, Contact, Provider};
use schema::{ConnectionId, ConversationId};
use serde::{Deserialize, Serialize};
use std::time::Instant;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRequest {
    connection_id: ConnectionId,
    contact: ContactRequest,
    message: SendMessageRequest,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = StartContact)]
#[serde(deny_unknown_fields)]
pub struct ContactRequest {
    /// An existing contact (`/api/v1/contacts`): its address on the connection's channel is used.
    id: Option<schema::ContactId>,
    /// Or a new contact's address on the channel: a phone number for WhatsApp (`+55 11 98888-7777`
    /// or digits), the page- or account-scoped id for Messenger and Instagram.
    address: Option<String>,
    name: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Started {
    pub conversation_id: ConversationId,
    pub message: schema::records::Message,
}

/// `POST /api/v1/conversations` `{"connection_id", "contact": {"id"} | {"address", "name"?},
/// "message": {…}}`
/// → 202 with the conversation and the stored `pending` message.
#[utoipa::path(
    post,
    path = "/api/v1/conversations",
    tag = "conversations",
    operation_id = "conversations_start",
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "same as message.client_message_id"),
    ),
    request_body = StartRequest,
    responses(
        (status = 202, description = "the conversation and its first message, pending", body = Started),
        Unauthorized,
        BadRequest,
        NotFound,
        (status = 409, description = "connection paused", body = ErrorBody, content_type = "application/problem+json"),
        Refused,
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn start(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    require(&state, &agent, Permission::Reply).await?;
    let mut request: StartRequest = json_body(&state, &headers, body).await?;
    // The same idempotency rules as a reply: a retry with the same key answers with the stored
    // message instead of sending again.
    if let Some(key) = headers.get("idempotency-key") {
        let key = key.to_str().map_err(|_| {
            ApiError::bad_request(
                "invalid_client_message_id",
                "Idempotency-Key must be visible ASCII",
            )
        })?;
        match &request.message.client_message_id {
            Some(id) if id != key => {
                return Err(ApiError::bad_request(
                    "invalid_client_message_id",
                    "Idempotency-Key and client_message_id differ: send one, or the same in both",
                ));
            }
            _ => request.message.client_message_id = Some(key.to_string()),
        }
    }
    if request
        .message
        .client_message_id
        .as_ref()
        .is_some_and(|k| k.is_empty() || k.len() > 128)
    {
        return Err(ApiError::bad_request(
            "invalid_client_message_id",
            "client_message_id (or Idempotency-Key) must have 1 to 128 bytes",
        ));
    }
    let viewer = crate::permissions::viewer(&state, &agent).await?;
    let connection = state
        .store
        .connection(request.connection_id)
        .await?
        .filter(|c| c.tenant_id == agent.tenant_id && viewer.sees_connection(c.id))
        .ok_or_else(|| {
            ApiError::not_found("connection_not_found", "no such connection in this tenant")
        })?;
    if connection.status == ConnectionStatus::Paused {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "connection_paused",
            "this connection is paused",
        ));
    }
    let (address, name) = match (request.contact.id, request.contact.address) {
        (Some(id), None) => {
            let contact = state
                .store
                .contact(agent.tenant_id, id)
                .await?
                .ok_or_else(|| {
                    ApiError::not_found("contact_not_found", "no such contact in this tenant")
                })?;
            let channel = schema::contact::Channel::of(connection.provider);
            let address = contact
                .addresses
                .iter()
                .find(|a| a.channel == channel)
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "contact_has_no_address",
                        format!("the contact has no {} address", channel.as_str()),
                    )
                })?;
            (address.address.clone(), contact.name.clone())
        }
        (None, Some(address)) => (contact_address(connection.provider, &address)?, None),
        _ => {
            return Err(ApiError::bad_request(
                "invalid_contact",
                "name the contact by id or by address, one of the two",
            ));
        }
    };
    let name = request
        .contact
        .name
        .or(name)
        .map(|n| n.trim().chars().take(128).collect::<String>())
        .filter(|n| !n.is_empty());
    let content = match requested_content(request.message.clone())? {
        Requested::Content(content) => content,
        Requested::Reaction(_) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_message",
                "a conversation cannot start with a reaction",
            ));
        }
    };
    let conversation = ConversationId::for_contact(agent.tenant_id, connection.id, &address);
    // A new conversation counts against the monthly limit, a message to an existing one only as a
    // message, and a retry of a stored start against nothing.
    let exists = state
        .store
        .conversation(agent.tenant_id, conversation)
        .await?
        .is_some();
    let key = request.message.client_message_id.as_deref();
    crate::tenancy::require_room_to_send(&state, agent.tenant_id, conversation, key, exists)
        .await?;
    let command = Command::Start {
        tenant: agent.tenant_id,
        connection: connection.id,
        conversation,
        contact: Contact { address, name },
        agent: agent.id,
        content,
        client_message_id: request.message.client_message_id,
    };
    let message = match state.commands.execute(command, Instant::now()).await? {
        Reply::Sent(message) => *message,
        _ => return Err(ApiError::internal("a start was answered as something else")),
    };
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(Started {
            conversation_id: conversation,
            message,
        }),
    ))
}

/// The contact's address as the provider's webhooks name it: WhatsApp numbers as digits only (8 to
/// 15, with the country code), other channels' ids as given.
fn contact_address(provider: Provider, raw: &str) -> Result<String, ApiError> {
    let invalid = |detail: &str| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_contact",
            detail.to_string(),
        )
    };
    match provider {
        Provider::WhatsappCloud | Provider::Evolution | Provider::Zapi => {
            let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
            let allowed = raw
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')' | '.'));
            if !allowed || !(8..=15).contains(&digits.len()) {
                return Err(invalid(
                    "a WhatsApp contact is a phone number with its country code (8 to 15 digits)",
                ));
            }
            Ok(digits)
        }
        Provider::Messenger | Provider::Instagram => {
            let id = raw.trim();
            if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(invalid("a Messenger or Instagram contact is its scoped id"));
            }
            Ok(id.to_string())
        }
    }
}
