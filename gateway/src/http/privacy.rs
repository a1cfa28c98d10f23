//! LGPD (Brazil's data-protection law), for tenant admins:
//!
//! - `GET /api/v1/contacts/{id}/export`: everything the tenant holds about one contact as one JSON
//!   document, streamed a page at a time: the contact, then each of its conversations with every
//!   message and internal note. A store failure part way cuts the body short (the JSON does not
//!   parse), never a silent gap.
//! - `POST /api/v1/contacts/{id}/erase`: each of the contact's conversations is erased by its owner
//!   (`Command::Erase`, `schema::privacy`), then the contact record is deleted. If a conversation
//!   fails, the contact is kept and the answer says to repeat the erasure (every step is idempotent).
//!
//! Both are recorded in the audit log by the contact's id alone.

use crate::AppState;
use crate::audit;
use crate::auth::AuthenticatedAgent;
use crate::error::ApiError;
use crate::http::contacts::{contact_conversations, existing};
use crate::http::problems::{NotFound, Unauthorized, Unavailable};
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use schema::TenantId;
use schema::api::ErrorBody;
use schema::audit::AuditAction;
use schema::command::Command;
use schema::contact::ContactWrite;
use schema::events::ConversationEvent;
use schema::records::{AgentRole, Conversation};
use schema::store::{SeqWindow, Store};
use serde::Serialize;
use std::sync::Arc;
use std::time::Instant;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Messages and events read per store page.
const PAGE: usize = 200;
/// Chunks buffered between the reader and the client.
const CHUNKS: usize = 8;

/// The routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(export))
        .routes(routes!(erase))
}

/// `GET /api/v1/contacts/{id}/export`: everything about one contact.
#[utoipa::path(
    get,
    path = "/api/v1/contacts/{id}/export",
    tag = "contacts",
    operation_id = "contacts_export",
    params(("id" = Uuid, Path, description = "contact id")),
    responses(
        (status = 200, description = "`{format, exported_at, contact, conversations: [{conversation, messages, notes}]}`", content_type = "application/json"),
        Unauthorized,
        (status = 403, description = "only tenant admins export", body = ErrorBody, content_type = "application/problem+json"),
        NotFound,
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn export(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    if agent.role != AgentRole::Admin {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only tenant admins export a contact's data",
        ));
    }
    crate::auth::require_session_for_setup(&state, &agent, &headers).await?;
    let contact = existing(&state, &agent, &id).await?;
    let conversations = contact_conversations(&state, agent.tenant_id, &contact).await?;
    let entry = audit::by(
        &agent,
        AuditAction::ContactExported,
        format!("contact:{}", contact.id),
    )
    .detail("conversations", conversations.len().to_string());
    audit::record(&state, entry).await;

    let head = serde_json::json!({
        "format": "conversa.contact-export.v1",
        "exported_at": jiff::Timestamp::now(),
        "contact": contact,
    });
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(CHUNKS);
    let store = Arc::clone(&state.store);
    let tenant = agent.tenant_id;
    tokio::spawn(async move {
        if let Err(error) = write_export(store.as_ref(), tenant, head, conversations, &sender).await
        {
            tracing::warn!(%tenant, %error, "contact export cut short");
            let _ = sender.send(Err(std::io::Error::other(error))).await;
        }
    });
    let stream = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    });
    let mut response = Body::from_stream(stream).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"contact-export.json\""),
    );
    Ok(response)
}

/// What an erasure did.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Erased {
    pub contact_id: schema::ContactId,
    /// Conversations whose history was rewritten.
    pub conversations: usize,
}

/// `POST /api/v1/contacts/{id}/erase`: erases the contact and what its conversations hold of them.
#[utoipa::path(
    post,
    path = "/api/v1/contacts/{id}/erase",
    tag = "contacts",
    operation_id = "contacts_erase",
    params(("id" = Uuid, Path, description = "contact id")),
    responses(
        (status = 200, description = "erased", body = Erased),
        Unauthorized,
        (status = 403, description = "only tenant admins erase", body = ErrorBody, content_type = "application/problem+json"),
        NotFound,
        (status = 503, description = "not finished (the contact is kept): repeat the erasure", body = ErrorBody, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])),
)]
pub async fn erase(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
) -> Result<axum::Json<Erased>, ApiError> {
    if agent.role != AgentRole::Admin {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only tenant admins erase a contact's data",
        ));
    }
    crate::auth::require_session_for_setup(&state, &agent, &headers).await?;
    let contact = existing(&state, &agent, &id).await?;
    let conversations = contact_conversations(&state, agent.tenant_id, &contact).await?;
    let unfinished = |done: usize, error: &dyn std::fmt::Display| {
        tracing::warn!(tenant = %agent.tenant_id, contact = %contact.id, %error, "erasure not finished");
        ApiError::unavailable(
            "erasure_unfinished",
            format!(
                "{done} of {} conversations were erased and the contact is kept; repeat the \
                 erasure to finish it (repeating is safe)",
                conversations.len()
            ),
        )
    };
    for (done, conversation) in conversations.iter().enumerate() {
        let command = Command::Erase {
            tenant: agent.tenant_id,
            conversation: conversation.id,
        };
        if let Err(error) = state.commands.execute(command, Instant::now()).await {
            let entry = audit::by(
                &agent,
                AuditAction::ContactErased,
                format!("contact:{}", contact.id),
            )
            .detail("unfinished", format!("{done} of {}", conversations.len()));
            audit::record(&state, entry).await;
            return Err(unfinished(done, &error));
        }
    }
    let write = ContactWrite {
        before: Some(contact.clone()),
        after: None,
    };
    if let Err(error) = state.store.write_contacts(agent.tenant_id, &[write]).await {
        let entry = audit::by(
            &agent,
            AuditAction::ContactErased,
            format!("contact:{}", contact.id),
        )
        .detail("unfinished", "the contact record");
        audit::record(&state, entry).await;
        return Err(unfinished(conversations.len(), &error));
    }
    let entry = audit::by(
        &agent,
        AuditAction::ContactErased,
        format!("contact:{}", contact.id),
    )
    .detail("conversations", conversations.len().to_string());
    audit::record(&state, entry).await;
    Ok(axum::Json(Erased {
        contact_id: contact.id,
        conversations: conversations.len(),
    }))
}

/// One conversation's part of the document, written before its messages.
#[derive(Serialize)]
struct NoteView<'a> {
    seq: u64,
    at: jiff::Timestamp,
    note: &'a schema::records::Note,
}

async fn write_export(
    store: &dyn Store,
    tenant: TenantId,
    head: serde_json::Value,
    conversations: Vec<Conversation>,
    out: &tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
) -> Result<(), String> {
    let send = |bytes: Vec<u8>| async move {
        out.send(Ok(Bytes::from(bytes)))
            .await
            .map_err(|_| "the client went away".to_string())
    };
    // The head object without its closing brace, then the conversations array.
    let mut opening = to_json(&head)?;
    opening.pop();
    opening.extend_from_slice(b",\"conversations\":[");
    send(opening).await?;
    for (i, conversation) in conversations.iter().enumerate() {
        let mut part = Vec::new();
        if i > 0 {
            part.push(b',');
        }
        part.extend_from_slice(b"{\"conversation\":");
        part.extend(to_json(conversation)?);
        part.extend_from_slice(b",\"messages\":[");
        send(part).await?;
        let mut after = 0;
        let mut first = true;
        loop {
            let page = store
                .messages(tenant, conversation.id, SeqWindow::After(after), PAGE)
                .await
                .map_err(|e| e.to_string())?;
            let Some(last) = page.last().map(|m| m.seq) else {
                break;
            };
            let mut chunk = Vec::new();
            for message in &page {
                if !first {
                    chunk.push(b',');
                }
                first = false;
                chunk.extend(to_json(message)?);
            }
            send(chunk).await?;
            after = last;
        }
        send(b"],\"notes\":[".to_vec()).await?;
        let (mut after, mut first) = (0, true);
        loop {
            let page = store
                .events(tenant, conversation.id, after, PAGE)
                .await
                .map_err(|e| e.to_string())?;
            let Some(last) = page.last().map(|e| e.seq) else {
                break;
            };
            let mut chunk = Vec::new();
            for envelope in &page {
                if let ConversationEvent::NoteAdded { note } = &envelope.event {
                    if !first {
                        chunk.push(b',');
                    }
                    first = false;
                    let view = NoteView {
                        seq: envelope.seq,
                        at: envelope.at,
                        note,
                    };
                    chunk.extend(to_json(&view)?);
                }
            }
            if !chunk.is_empty() {
                send(chunk).await?;
            }
            after = last;
        }
        send(b"]}".to_vec()).await?;
    }
    send(b"]}".to_vec()).await
}

fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, String> {
    serde_json::to_vec(value).map_err(|e| e.to_string())
}
