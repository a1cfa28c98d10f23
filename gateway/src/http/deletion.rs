//! Soft deletion (`schema::helpdesk::deletion`), run by the conversation's owner
//! ([`Command::Delete`]) and audited:
//!
//! - `DELETE /api/v1/conversations/{id}/messages/{seq}` (`delete_messages`): the message stays
//!   stored and in its place; those who may not see deleted messages see
//!   `{"type": "unsupported", "provider_type": "deleted"}` instead of it.
//! - `DELETE /api/v1/conversations/{id}` (`delete_conversations`): the open ticket is cancelled and
//!   every message so far deleted; the conversation leaves the inbox of those who may not see
//!   deleted messages until someone writes in it again.
//!
//! Both answer 204, and repeating them changes nothing. Nothing is sent to the customer: WhatsApp
//! keeps its own copy.

use crate::AppState;
use crate::audit;
use crate::auth::{AuthenticatedAgent, require};
use crate::error::ApiError;
use crate::http::conversations::conversation;
use crate::http::parse_id;
use crate::http::problems::{NotFound, Refused, Unauthorized, Unavailable};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use schema::Seq;
use schema::audit::AuditAction;
use schema::command::{Command, CommandError, Deleting, Reply};
use schema::permission::Permission;
use schema::records::Agent;
use std::time::Instant;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The route that deletes a message (the conversation's is registered beside its `GET`).
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(delete_message))
}

/// `DELETE …/messages/{seq}`.
#[utoipa::path(
    delete,
    path = "/api/v1/conversations/{id}/messages/{seq}",
    tag = "conversations",
    operation_id = "messages_delete",
    params(
        ("id" = Uuid, Path, description = "conversation id"),
        ("seq" = u64, Path, description = "the message's seq"),
    ),
    responses(
        (status = 204, description = "deleted (or it was already)"),
        Unauthorized,
        NotFound,
        Refused,
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn delete_message(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
    Path((id, seq)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    require(&state, &agent, Permission::DeleteMessages).await?;
    let seq: Seq = parse_id(&seq, "message_not_found")?;
    let conversation = conversation(&state, &agent, &id).await?;
    delete(
        &state,
        &agent,
        conversation.id,
        Deleting::Message { seq },
        AuditAction::MessageDeleted,
        format!("conversation:{}/message:{seq}", conversation.id),
    )
    .await
}

/// `DELETE /api/v1/conversations/{id}`.
#[utoipa::path(
    delete,
    path = "/api/v1/conversations/{id}",
    tag = "conversations",
    operation_id = "conversations_delete",
    params(
        ("id" = Uuid, Path, description = "conversation id"),
    ),
    responses(
        (status = 204, description = "deleted (or it was already)"),
        Unauthorized,
        NotFound,
        Refused,
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn delete_conversation(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    require(&state, &agent, Permission::DeleteConversations).await?;
    let conversation = conversation(&state, &agent, &id).await?;
    delete(
        &state,
        &agent,
        conversation.id,
        Deleting::Conversation,
        AuditAction::ConversationDeleted,
        format!("conversation:{}", conversation.id),
    )
    .await
}

async fn delete(
    state: &AppState,
    agent: &Agent,
    conversation: schema::ConversationId,
    what: Deleting,
    action: AuditAction,
    target: String,
) -> Result<StatusCode, ApiError> {
    let command = Command::Delete {
        tenant: agent.tenant_id,
        conversation,
        by: agent.id,
        what,
    };
    match state.commands.execute(command, Instant::now()).await {
        Ok(Reply::Ticket(_)) => {
            audit::record(state, audit::by(agent, action, target)).await;
            Ok(StatusCode::NO_CONTENT)
        }
        Ok(_) => Err(ApiError::internal(
            "a deletion was answered as something else",
        )),
        Err(CommandError::Invalid(detail)) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_deletion",
            detail,
        )),
        Err(error) => Err(error.into()),
    }
}
