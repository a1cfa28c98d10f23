//! `/api/v1/conversations…`: the agent's REST view of its tenant's inbox, histories and replies.
//! Every handler takes the tenant from the authenticated agent, never from the request.

use crate::AppState;
use crate::auth::AuthenticatedAgent;
use crate::auth::require;
use crate::error::{ApiError, parse_json, read_body, require_json};
use crate::http::problems::{BadRequest, NotFound, Refused, Unauthorized, Unavailable};
pub(crate) use crate::http::{conversation, seen};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use schema::Seq;
use schema::api::ErrorBody;
use schema::api::{Page, SendMessageRequest};
use schema::command::{Command, Reply};
use schema::events::EventEnvelope;
use schema::permission::Permission;
use schema::records::{Conversation, ConversationStatus, Message, MessageContent};
use schema::store::{InboxCursor, InboxView, SeqWindow};
use serde::Deserialize;
use std::time::Instant;

const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 200;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InboxQuery {
    cursor: Option<String>,
    limit: Option<usize>,
    /// One filter at most: `status` (`open`, `in_progress`, …), `assignee` (agent id) or `team`.
    status: Option<ConversationStatus>,
    assignee: Option<String>,
    team: Option<String>,
    /// `mine=true`: the caller's active tickets.
    #[serde(default)]
    mine: bool,
    /// `unassigned=true`: active tickets nobody is assigned.
    #[serde(default)]
    unassigned: bool,
    priority: Option<schema::records::Priority>,
    tag: Option<String>,
    /// Search by message text (alone: no other filter).
    q: Option<String>,
}

/// `GET /api/v1/conversations?cursor=&limit=[&status=|&assignee=|&team=|&mine=true|&unassigned=true|
/// &priority=|&tag=|&q=]`: newest activity first, the whole inbox or one view of it; `q` searches
/// message text (`http::inbox`).
#[utoipa::path(
    get,
    path = "/api/v1/conversations",
    tag = "conversations",
    operation_id = "conversations_list",
    params(
        InboxQuery,
    ),
    responses(
        (status = 200, description = "a page of the inbox, a view of it, or a text search", body = Page<Conversation>),
        Unauthorized,
        BadRequest,
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn list(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
    Query(query): Query<InboxQuery>,
) -> Result<axum::Json<Page<Conversation>>, ApiError> {
    let limit = page_size(query.limit)?;
    if let Some(q) = &query.q {
        let filtered = query.status.is_some()
            || query.assignee.is_some()
            || query.team.is_some()
            || query.mine
            || query.unassigned
            || query.priority.is_some()
            || query.tag.is_some();
        if filtered {
            return Err(ApiError::bad_request(
                "one_filter_at_most",
                "search by text (q) takes no other filter",
            ));
        }
        let page =
            crate::http::inbox::search(&state, &agent, q, query.cursor.as_deref(), limit).await?;
        return Ok(axum::Json(page));
    }
    let cursor = query.cursor.as_deref().map(decode_cursor).transpose()?;
    let one_at_most = || {
        ApiError::bad_request(
            "one_filter_at_most",
            "filter by status, assignee, team, mine, unassigned, priority or tag, one at a time",
        )
    };
    let mut views: Vec<InboxView> = Vec::new();
    if let Some(status) = query.status {
        views.push(InboxView::Status(status));
    }
    if let Some(assignee) = query.assignee {
        views.push(InboxView::Assignee(assignee.parse().map_err(|_| {
            ApiError::bad_request("invalid_assignee", "assignee must be an agent id")
        })?));
    }
    if let Some(team) = query.team {
        if team.is_empty() || team.len() > 128 {
            return Err(ApiError::bad_request(
                "invalid_team",
                "team must have 1 to 128 characters",
            ));
        }
        views.push(InboxView::Team(team));
    }
    if query.mine {
        views.push(InboxView::Mine(agent.id));
    }
    if query.unassigned {
        views.push(InboxView::Unassigned);
    }
    if let Some(priority) = query.priority {
        views.push(InboxView::Priority(priority));
    }
    if let Some(tag) = query.tag {
        let tag = schema::helpdesk::change::tag(&tag)
            .map_err(|e| ApiError::bad_request("invalid_tag", e.to_string()))?;
        views.push(InboxView::Tag(tag));
    }
    if views.len() > 1 {
        return Err(one_at_most());
    }
    let view = views.pop().unwrap_or(InboxView::All);
    let viewer = crate::permissions::viewer(&state, &agent).await?;
    let items = state
        .store
        .inbox(agent.tenant_id, &view, cursor, limit)
        .await?;
    // The cursor follows the stored page; what the caller may not see is left out of it (a page
    // can come back shorter than `limit`, or empty, with a cursor to go on).
    let next_cursor = (items.len() == limit)
        .then(|| items.last().map(encode_cursor))
        .flatten();
    let items = items
        .into_iter()
        .filter(|c| viewer.sees(c))
        .map(|c| viewer.conversation(c))
        .collect();
    Ok(axum::Json(Page { items, next_cursor }))
}

/// `GET /api/v1/conversations/{id}`.
#[utoipa::path(
    get,
    path = "/api/v1/conversations/{id}",
    tag = "conversations",
    operation_id = "conversations_get",
    params(
        ("id" = Uuid, Path, description = "conversation id"),
    ),
    responses(
        (status = 200, description = "the conversation and its ticket", body = Conversation),
        Unauthorized,
        NotFound,
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn get_one(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
    Path(id): Path<String>,
) -> Result<axum::Json<Conversation>, ApiError> {
    let (conversation, viewer) = seen(&state, &agent, &id).await?;
    Ok(axum::Json(viewer.conversation(conversation)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    after: Option<Seq>,
    before: Option<Seq>,
    limit: Option<usize>,
}

/// `GET /api/v1/conversations/{id}/messages?after=|before=&limit=`: ascending by seq. Without `after`
/// or `before`, the newest page. `next_cursor` continues in the direction asked (a seq).
#[utoipa::path(
    get,
    path = "/api/v1/conversations/{id}/messages",
    tag = "conversations",
    operation_id = "messages_list",
    params(
        ("id" = Uuid, Path, description = "conversation id"),
        HistoryQuery,
    ),
    responses(
        (status = 200, description = "a page of messages, ascending seq", body = Page<Message>),
        Unauthorized,
        BadRequest,
        NotFound,
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn messages(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
    Path(id): Path<String>,
    Query(query): Query<HistoryQuery>,
) -> Result<axum::Json<Page<Message>>, ApiError> {
    let limit = page_size(query.limit)?;
    let (conversation, viewer) = seen(&state, &agent, &id).await?;
    let window = match (query.after, query.before) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                "give `after` or `before`, not both",
            ));
        }
        (Some(after), None) => SeqWindow::After(after),
        (None, Some(before)) => SeqWindow::Before(before),
        (None, None) => SeqWindow::Before(Seq::MAX),
    };
    let items = state
        .store
        .messages(agent.tenant_id, conversation.id, window, limit)
        .await?;
    let next_cursor = if items.len() < limit {
        None
    } else {
        match window {
            SeqWindow::After(_) => items.last().map(|m| m.seq.to_string()),
            SeqWindow::Before(_) => items.first().map(|m| m.seq.to_string()),
        }
    };
    let items = items
        .into_iter()
        .map(|m| viewer.message(&conversation, m))
        .collect();
    Ok(axum::Json(Page { items, next_cursor }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    after: Option<Seq>,
    limit: Option<usize>,
}

/// `GET /api/v1/conversations/{id}/events?after=&limit=`: the event stream, for clients that catch up
/// over REST.
#[utoipa::path(
    get,
    path = "/api/v1/conversations/{id}/events",
    tag = "conversations",
    operation_id = "events_list",
    params(
        ("id" = Uuid, Path, description = "conversation id"),
        EventsQuery,
    ),
    responses(
        (status = 200, description = "events after a seq, ascending", body = Page<EventEnvelope>),
        Unauthorized,
        BadRequest,
        NotFound,
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn events(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
    Path(id): Path<String>,
    Query(query): Query<EventsQuery>,
) -> Result<axum::Json<Page<EventEnvelope>>, ApiError> {
    let limit = page_size(query.limit)?;
    let (conversation, viewer) = seen(&state, &agent, &id).await?;
    let items = state
        .store
        .events(
            agent.tenant_id,
            conversation.id,
            query.after.unwrap_or(0),
            limit,
        )
        .await?;
    let next_cursor = (items.len() == limit)
        .then(|| items.last().map(|e| e.seq.to_string()))
        .flatten();
    let items = items
        .into_iter()
        .map(|e| viewer.event(Some(&conversation), &e).unwrap_or(e))
        .collect();
    Ok(axum::Json(Page { items, next_cursor }))
}

/// `POST /api/v1/conversations/{id}/messages` `{"text": …, "client_message_id": …}` → 202 with the
/// stored `pending` message; its status then moves by `message.status_updated` events.
#[utoipa::path(
    post,
    path = "/api/v1/conversations/{id}/messages",
    tag = "conversations",
    operation_id = "messages_send",
    params(
        ("id" = Uuid, Path, description = "conversation id"),
        ("Idempotency-Key" = Option<String>, Header, description = "same as client_message_id"),
    ),
    request_body = SendMessageRequest,
    responses(
        (status = 202, description = "stored durably, pending: the provider send follows", body = Message),
        Unauthorized,
        BadRequest,
        NotFound,
        Refused,
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn send(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    require(&state, &agent, Permission::Reply).await?;
    require_json(&headers)?;
    let body = read_body(
        body,
        state.config.api_body_limit,
        state.config.body_read_timeout,
    )
    .await?;
    let mut request: SendMessageRequest = parse_json(&body)?;
    // `Idempotency-Key` is the header form of `client_message_id`: either names the send, and a retry
    // with the same one answers with the stored message instead of sending again.
    if let Some(key) = headers.get("idempotency-key") {
        let key = key.to_str().map_err(|_| {
            ApiError::bad_request(
                "invalid_client_message_id",
                "Idempotency-Key must be visible ASCII",
            )
        })?;
        match &request.client_message_id {
            Some(id) if id != key => {
                return Err(ApiError::bad_request(
                    "invalid_client_message_id",
                    "Idempotency-Key and client_message_id differ: send one, or the same in both",
                ));
            }
            _ => request.client_message_id = Some(key.to_string()),
        }
    }
    if request
        .client_message_id
        .as_ref()
        .is_some_and(|k| k.is_empty() || k.len() > 128)
    {
        return Err(ApiError::bad_request(
            "invalid_client_message_id",
            "client_message_id (or Idempotency-Key) must have 1 to 128 bytes",
        ));
    }
    let conversation = conversation(&state, &agent, &id).await?;
    let key = request.client_message_id.as_deref();
    crate::tenancy::require_room_to_send(&state, agent.tenant_id, conversation.id, key, true)
        .await?;
    match state.store.connection(conversation.connection_id).await? {
        Some(c) if c.status == schema::records::ConnectionStatus::Paused => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "connection_paused",
                "this conversation's connection is paused",
            ));
        }
        None => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "connection_removed",
                "this conversation's connection was removed",
            ));
        }
        Some(_) => {}
    }
    let content = outbound_content(&state, &conversation, request.clone()).await?;
    let command = Command::Send {
        tenant: agent.tenant_id,
        conversation: conversation.id,
        agent: agent.id,
        content,
        client_message_id: request.client_message_id,
    };
    let message = match state.commands.execute(command, Instant::now()).await? {
        Reply::Sent(message) => *message,
        _ => return Err(ApiError::internal("a send was answered as something else")),
    };
    Ok((StatusCode::ACCEPTED, axum::Json(message)))
}

/// What a send request asks for: content as it is, or a reaction naming its target by seq.
pub(crate) enum Requested {
    Content(MessageContent),
    Reaction(schema::api::ReactionRequest),
}

/// Parses the one kind of content a send request carries (422 for none or several). Pure: the
/// reaction's target is resolved by `outbound_content`.
pub(crate) fn requested_content(request: SendMessageRequest) -> Result<Requested, ApiError> {
    let invalid =
        |detail: &str| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_message", detail);
    let chosen = [
        request.text.is_some(),
        request.template.is_some(),
        request.interactive.is_some(),
        request.reaction.is_some(),
        request.media.is_some(),
        request.list.is_some(),
    ];
    if chosen.iter().filter(|c| **c).count() != 1 {
        return Err(invalid(
            "give exactly one of text, media, template, interactive, list, reaction",
        ));
    }
    let content = if let Some(body) = request.text {
        MessageContent::Text { body }
    } else if let Some(t) = request.template {
        MessageContent::Template {
            name: t.name,
            language: t.language,
            body_parameters: t.body_parameters,
        }
    } else if let Some(l) = request.list {
        MessageContent::InteractiveList {
            body: l.body,
            button: l.button,
            sections: l.sections,
        }
    } else if let Some(m) = request.media {
        MessageContent::MediaLink {
            kind: m.kind,
            url: m.url,
            caption: m.caption,
            filename: m.filename,
        }
    } else if let Some(i) = request.interactive {
        MessageContent::Interactive {
            body: i.body,
            buttons: i.buttons,
        }
    } else if let Some(reaction) = request.reaction {
        return Ok(Requested::Reaction(reaction));
    } else {
        return Err(invalid("nothing to send"));
    };
    Ok(Requested::Content(content))
}

/// The content the request asks to send; a reaction names its target by seq, resolved here to the
/// provider id WhatsApp needs.
async fn outbound_content(
    state: &AppState,
    conversation: &Conversation,
    request: SendMessageRequest,
) -> Result<MessageContent, ApiError> {
    let reaction = match requested_content(request)? {
        Requested::Content(content) => return Ok(content),
        Requested::Reaction(reaction) => reaction,
    };
    let target = state
        .store
        .message(conversation.tenant_id, conversation.id, reaction.seq)
        .await?
        .and_then(|m| m.provider_message_id)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_message",
                "no message with a provider id at that seq",
            )
        })?;
    Ok(MessageContent::Reaction {
        target,
        emoji: reaction.emoji,
    })
}

fn page_size(limit: Option<usize>) -> Result<usize, ApiError> {
    match limit.unwrap_or(DEFAULT_PAGE) {
        n @ 1..=MAX_PAGE => Ok(n),
        _ => Err(ApiError::bad_request(
            "invalid_limit",
            format!("limit must be 1 to {MAX_PAGE}"),
        )),
    }
}

fn encode_cursor(last: &Conversation) -> String {
    let cursor = InboxCursor {
        last_activity_at: last.last_activity_at,
        conversation_id: last.id,
    };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&cursor).unwrap_or_default())
}

fn decode_cursor(raw: &str) -> Result<InboxCursor, ApiError> {
    URL_SAFE_NO_PAD
        .decode(raw)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| {
            ApiError::bad_request("invalid_cursor", "the cursor is not one this API gave out")
        })
}

/// `POST /api/v1/conversations/{id}/read`: tells the provider the business has read the contact's
/// messages (WhatsApp blue ticks, Messenger "seen"), up to the newest inbound one. Answers 204; nothing
/// is stored, and a failure is reported, not retried (the next read covers it).
#[utoipa::path(
    post,
    path = "/api/v1/conversations/{id}/read",
    tag = "conversations",
    operation_id = "conversations_mark_read",
    params(
        ("id" = Uuid, Path, description = "conversation id"),
    ),
    responses(
        (status = 204, description = "the provider was told"),
        Unauthorized,
        NotFound,
        (status = 502, description = "the provider failed", body = ErrorBody, content_type = "application/problem+json"),
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn mark_read(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    require(&state, &agent, Permission::Reply).await?;
    const SCAN: usize = 50;
    let conversation = conversation(&state, &agent, &id).await?;
    let recent = state
        .store
        .messages(
            agent.tenant_id,
            conversation.id,
            SeqWindow::Before(Seq::MAX),
            SCAN,
        )
        .await?;
    let Some(newest) = recent
        .iter()
        .rev()
        .filter(|m| m.direction == schema::records::Direction::Inbound)
        .find_map(|m| m.provider_message_id.clone())
    else {
        return Ok(StatusCode::NO_CONTENT);
    };
    let connection = state
        .store
        .connection(conversation.connection_id)
        .await?
        .filter(|c| c.status != schema::records::ConnectionStatus::Paused)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "connection_unavailable",
                "the connection is paused or removed",
            )
        })?;
    // Through the connection's session, on whichever node owns it: the number's rate limit applies.
    let command = Command::MarkRead {
        tenant: agent.tenant_id,
        connection: connection.id,
        contact: conversation.contact.address.clone(),
        provider_message_id: newest,
    };
    state.commands.execute(command, Instant::now()).await?;
    Ok(StatusCode::NO_CONTENT)
}
