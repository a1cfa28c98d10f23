//! `/api/v1/conversations/{id}/…` ticket routes and the tenant feed, in the vocabulary agents know from
//! Chatwoot: `assignments` (`assignee_id`, `team_id`), `transfer`, `toggle_status` (with
//! `snoozed_until`), `toggle_priority`, `labels` and private `notes`. Each change is a
//! [`Command::Ticket`] run by the conversation's owner, recorded as events on the conversation's
//! stream (live on the WebSocket, in `/events`, in the feed) with the agent who made it, and answered
//! with the conversation after it. A change that changes nothing answers 200 with no event, so a
//! retried request is harmless — except a note: each request adds one, so a retried note can appear
//! twice. `labels` with the whole set is worked out against the ticket as read just before, so a
//! tag change landing in between can be undone by it (`add`/`remove` have no such race).
//!
//! Every handler takes the tenant from the authenticated agent; an assignee must be an agent of that
//! tenant and a department one of its departments (422 otherwise), so a change can never name another
//! tenant's agent or department.

use crate::AppState;
use crate::audit;
use crate::auth::AuthenticatedAgent;
use crate::auth::require;
use crate::error::ApiError;
use crate::http::admin::json_body;
use crate::http::conversations::conversation;
use crate::http::problems::{BadRequest, NotFound, Refused, Unauthorized, Unavailable};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use jiff::Timestamp;
use schema::api::ErrorBody;
use schema::audit::AuditAction;
use schema::command::{Command, CommandError, Reply};
use schema::helpdesk::change::{self, TicketChange};
use schema::permission::Permission;
use schema::records::{Agent, Conversation, ConversationStatus, Note, Priority};
use schema::store::{FeedCursor, FeedPage, MAX_FEED_PAGE};
use schema::visibility::ConnectionScope;
use schema::{AgentId, ConversationId, NoteId};
use serde::Deserialize;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::time::Instant;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The ticket routes and the feed.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(assign))
        .routes(routes!(transfer))
        .routes(routes!(status))
        .routes(routes!(priority))
        .routes(routes!(labels))
        .routes(routes!(note))
        .routes(routes!(feed))
}

/// `{"assignee_id": "<agent>" | null, "team_id": "<department>"}`: an agent (or none), a department,
/// or both (a move to another department is recorded as a transfer).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignmentRequest {
    #[serde(default, with = "crate::http::double_option")]
    assignee_id: Option<Option<AgentId>>,
    team_id: Option<String>,
}

/// `POST …/assignments`.
#[utoipa::path(
    post,
    path = "/api/v1/conversations/{id}/assignments",
    tag = "tickets",
    operation_id = "tickets_assign",
    params(
        ("id" = Uuid, Path, description = "conversation id"),
    ),
    request_body = AssignmentRequest,
    responses(
        (status = 200, description = "the conversation after the change", body = Conversation),
        Unauthorized,
        BadRequest,
        NotFound,
        Refused,
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn assign(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::Json<Conversation>, ApiError> {
    require(&state, &agent, Permission::ManageTickets).await?;
    let request: AssignmentRequest = json_body(&state, &headers, body).await?;
    let change = match (request.assignee_id, request.team_id) {
        (None, None) => {
            return Err(invalid(
                "give assignee_id (an agent id or null), team_id, or both",
            ));
        }
        (Some(assignee), None) => TicketChange::Assign { assignee },
        (assignee, Some(team)) => TicketChange::Transfer {
            agent: assignee.flatten(),
            team: Some(team),
            note: None,
        },
    };
    change_ticket(&state, &agent, &id, change)
        .await
        .map(axum::Json)
}

/// `{"assignee_id": …, "team_id": …, "note": "why"}`: to another agent and/or department.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferRequest {
    assignee_id: Option<AgentId>,
    team_id: Option<String>,
    note: Option<String>,
}

/// `POST …/transfer`.
#[utoipa::path(
    post,
    path = "/api/v1/conversations/{id}/transfer",
    tag = "tickets",
    operation_id = "tickets_transfer",
    params(
        ("id" = Uuid, Path, description = "conversation id"),
    ),
    request_body = TransferRequest,
    responses(
        (status = 200, description = "the conversation after the change", body = Conversation),
        Unauthorized,
        BadRequest,
        NotFound,
        Refused,
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn transfer(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::Json<Conversation>, ApiError> {
    require(&state, &agent, Permission::ManageTickets).await?;
    let request: TransferRequest = json_body(&state, &headers, body).await?;
    let change = TicketChange::Transfer {
        agent: request.assignee_id,
        team: request.team_id,
        note: request.note,
    };
    change_ticket(&state, &agent, &id, change)
        .await
        .map(axum::Json)
}

/// `{"status": "open" | "in_progress" | "waiting" | "resolved" | "cancelled"}`, or
/// `{"status": "snoozed", "snoozed_until": "<RFC 3339>"}` (or `null` to wake it).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusRequest {
    status: String,
    #[serde(default)]
    snoozed_until: Option<Timestamp>,
    /// Resolve without the satisfaction survey (needs `close_without_survey`).
    #[serde(default)]
    skip_survey: bool,
}

/// `POST …/toggle_status`.
#[utoipa::path(
    post,
    path = "/api/v1/conversations/{id}/toggle_status",
    tag = "tickets",
    operation_id = "tickets_status",
    params(
        ("id" = Uuid, Path, description = "conversation id"),
    ),
    request_body = StatusRequest,
    responses(
        (status = 200, description = "the conversation after the change", body = Conversation),
        Unauthorized,
        BadRequest,
        NotFound,
        Refused,
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn status(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::Json<Conversation>, ApiError> {
    require(&state, &agent, Permission::ManageTickets).await?;
    let request: StatusRequest = json_body(&state, &headers, body).await?;
    if request.skip_survey && request.status == "resolved" {
        require(&state, &agent, Permission::CloseWithoutSurvey).await?;
    }
    let change = if request.status == "snoozed" {
        TicketChange::Snooze {
            until: request.snoozed_until,
        }
    } else {
        if request.snoozed_until.is_some() {
            return Err(invalid("snoozed_until goes with status \"snoozed\""));
        }
        let status: ConversationStatus = serde_json::from_value(serde_json::Value::String(
            request.status.clone(),
        ))
        .map_err(|_| {
            invalid(format!(
                "unknown status {:?}: open, in_progress, waiting, resolved, cancelled or snoozed",
                request.status
            ))
        })?;
        TicketChange::Status {
            status,
            skip_survey: request.skip_survey,
        }
    };
    change_ticket(&state, &agent, &id, change)
        .await
        .map(axum::Json)
}

/// `{"priority": "low" | "normal" | "high" | "urgent"}`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriorityRequest {
    priority: Priority,
}

/// `POST …/toggle_priority`.
#[utoipa::path(
    post,
    path = "/api/v1/conversations/{id}/toggle_priority",
    tag = "tickets",
    operation_id = "tickets_priority",
    params(
        ("id" = Uuid, Path, description = "conversation id"),
    ),
    request_body = PriorityRequest,
    responses(
        (status = 200, description = "the conversation after the change", body = Conversation),
        Unauthorized,
        BadRequest,
        NotFound,
        Refused,
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn priority(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::Json<Conversation>, ApiError> {
    require(&state, &agent, Permission::ManageTickets).await?;
    let request: PriorityRequest = json_body(&state, &headers, body).await?;
    let change = TicketChange::Priority {
        priority: request.priority,
    };
    change_ticket(&state, &agent, &id, change)
        .await
        .map(axum::Json)
}

/// `{"labels": [...]}` (the whole set, as Chatwoot takes it) or `{"add": [...], "remove": [...]}`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LabelsRequest {
    labels: Option<Vec<String>>,
    #[serde(default)]
    add: Vec<String>,
    #[serde(default)]
    remove: Vec<String>,
}

/// `POST …/labels`.
#[utoipa::path(
    post,
    path = "/api/v1/conversations/{id}/labels",
    tag = "tickets",
    operation_id = "tickets_labels",
    params(
        ("id" = Uuid, Path, description = "conversation id"),
    ),
    request_body = LabelsRequest,
    responses(
        (status = 200, description = "the conversation after the change", body = Conversation),
        Unauthorized,
        BadRequest,
        NotFound,
        Refused,
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn labels(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::Json<Conversation>, ApiError> {
    require(&state, &agent, Permission::ManageTickets).await?;
    let request: LabelsRequest = json_body(&state, &headers, body).await?;
    let change = match request.labels {
        Some(_) if !request.add.is_empty() || !request.remove.is_empty() => {
            return Err(invalid("give labels (the whole set), or add and remove"));
        }
        Some(labels) => {
            // The whole set: what to add and remove is worked out against the ticket as stored
            // (normalised first, so "VIP" replacing "vip" changes nothing).
            let wanted = labels
                .iter()
                .map(|l| change::tag(l))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| invalid(e.to_string()))?;
            let current = conversation(&state, &agent, &id).await?.tags;
            TicketChange::Tags {
                add: wanted.clone(),
                remove: current
                    .into_iter()
                    .filter(|t| !wanted.contains(t))
                    .collect(),
            }
        }
        None => TicketChange::Tags {
            add: request.add,
            remove: request.remove,
        },
    };
    change_ticket(&state, &agent, &id, change)
        .await
        .map(axum::Json)
}

/// `{"content": "…"}`: a private note, seen by the tenant's agents, never sent to the customer.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = TicketNoteRequest)]
#[serde(deny_unknown_fields)]
pub struct NoteRequest {
    content: String,
}

/// `POST …/notes` → 201 with the note.
#[utoipa::path(
    post,
    path = "/api/v1/conversations/{id}/notes",
    tag = "tickets",
    operation_id = "tickets_note",
    params(
        ("id" = Uuid, Path, description = "conversation id"),
    ),
    request_body = NoteRequest,
    responses(
        (status = 201, description = "the private note", body = Note),
        Unauthorized,
        BadRequest,
        NotFound,
        Refused,
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn note(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    require(&state, &agent, Permission::ManageTickets).await?;
    crate::tenancy::require_feature(
        &state,
        agent.tenant_id,
        |f| f.notes_on_messages,
        "notes_on_messages",
    )
    .await?;
    let request: NoteRequest = json_body(&state, &headers, body).await?;
    let note_id = NoteId::new();
    let change = TicketChange::Note {
        id: note_id,
        body: request.content.clone(),
    };
    change_ticket(&state, &agent, &id, change).await?;
    let note = Note {
        id: note_id,
        body: request.content.trim().to_owned(),
        author: agent.id,
    };
    Ok((StatusCode::CREATED, axum::Json(note)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeedQuery {
    cursor: Option<String>,
    limit: Option<usize>,
}

/// `GET /api/v1/feed?cursor=&limit=`: the tenant's durable event feed, for integrations and reports.
/// Supervisors, admins, auditors and bots read it; an agent's view is its inbox.
#[utoipa::path(
    get,
    path = "/api/v1/feed",
    tag = "tickets",
    operation_id = "feed_read",
    params(
        FeedQuery,
    ),
    responses(
        (status = 200, description = "the tenant's durable feed after the cursor", body = Object),
        Unauthorized,
        BadRequest,
        (status = 403, description = "agents do not read the feed", body = ErrorBody, content_type = "application/problem+json"),
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn feed(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
    Query(query): Query<FeedQuery>,
) -> Result<axum::Json<FeedPage>, ApiError> {
    require(&state, &agent, Permission::ReadFeed).await?;
    let limit = match query.limit.unwrap_or(100) {
        n @ 1..=MAX_FEED_PAGE => n,
        _ => {
            return Err(ApiError::bad_request(
                "invalid_limit",
                format!("limit must be 1 to {MAX_FEED_PAGE}"),
            ));
        }
    };
    let cursor = query.cursor.map(FeedCursor);
    let mut page = state
        .store
        .feed(agent.tenant_id, cursor.as_ref(), limit)
        .await?;
    let viewer = crate::permissions::viewer(&state, &agent).await?;
    // Each conversation of the page is read once: what the reader may see of it, and which of its
    // messages are deleted. Events of conversations left out of the view are dropped (the cursor
    // still passes them).
    let mut conversations: HashMap<ConversationId, Option<Conversation>> = HashMap::new();
    let mut shown = Vec::with_capacity(page.events.len());
    for event in page.events {
        let id = event.conversation_id;
        let conversation = match conversations.entry(id) {
            Entry::Occupied(known) => known.into_mut(),
            Entry::Vacant(unknown) => {
                let stored = state.store.conversation(agent.tenant_id, id).await?;
                unknown.insert(stored.filter(|c| viewer.sees_events_of(c)))
            }
        };
        let Some(conversation) = conversation else {
            continue;
        };
        shown.push(viewer.event(Some(conversation), &event).unwrap_or(event));
    }
    page.events = shown;
    Ok(axum::Json(page))
}

/// Runs a ticket change for the agent's tenant; an assignee must be one of its agents.
async fn change_ticket(
    state: &AppState,
    agent: &Agent,
    raw_id: &str,
    change: TicketChange,
) -> Result<Conversation, ApiError> {
    // Only a conversation the agent sees (its connection, a resolved one it may see).
    let target = conversation(state, agent, raw_id).await?;
    let id: ConversationId = target.id;
    // A group's ticket moves to another department or agent only where the tenant allows it.
    let moves = match &change {
        TicketChange::Transfer { .. } => true,
        // Taking a ticket from its agent to give it to another is a transfer too.
        TicketChange::Assign {
            assignee: Some(next),
        } => target.assignee.is_some_and(|current| current != *next),
        _ => false,
    };
    if moves && schema::inbound::is_group_address(&target.contact.address) {
        crate::tenancy::require_feature(
            state,
            agent.tenant_id,
            |f| f.transfer_groups,
            "transfer_groups",
        )
        .await?;
    }
    let assignee = match &change {
        TicketChange::Assign { assignee } => *assignee,
        TicketChange::Transfer { agent, .. } => *agent,
        _ => None,
    };
    if let Some(assignee) = assignee {
        let Some(assignee) = state.store.agent(agent.tenant_id, assignee).await? else {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_agent",
                "assignee_id is not an agent of this tenant",
            ));
        };
        // A ticket never goes to someone who could not open it.
        let permissions = state
            .permissions
            .of(state.store.as_ref(), agent.tenant_id)
            .await?;
        if !ConnectionScope::of(&assignee, &permissions).includes(target.connection_id) {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "assignee_cannot_see",
                "the assignee works only on another connection",
            ));
        }
    }
    let team = match &change {
        TicketChange::Transfer { team, .. } => team.as_deref(),
        _ => None,
    };
    if let Some(team) = team
        && state
            .store
            .department(agent.tenant_id, team)
            .await?
            .is_none()
    {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_department",
            "team_id is not a department of this tenant",
        ));
    }
    let kind = change_kind(&change);
    let command = Command::Ticket {
        tenant: agent.tenant_id,
        conversation: id,
        by: Some(agent.id),
        change,
    };
    match state.commands.execute(command, Instant::now()).await {
        Ok(Reply::Ticket(conversation)) => {
            if let Some(kind) = kind {
                let entry = audit::by(
                    agent,
                    AuditAction::TicketChanged,
                    format!("conversation:{id}"),
                )
                .detail("change", kind)
                .detail("status", conversation.status.as_str())
                .detail("priority", conversation.priority.as_str())
                .detail(
                    "assignee",
                    conversation
                        .assignee
                        .map(|a| a.to_string())
                        .unwrap_or_default(),
                )
                .detail("team", conversation.team.clone().unwrap_or_default());
                audit::record(state, entry).await;
            }
            Ok(*conversation)
        }
        Ok(_) => Err(ApiError::internal(
            "a ticket change was answered as something else",
        )),
        Err(CommandError::Invalid(detail)) => Err(invalid(detail)),
        Err(error) => Err(error.into()),
    }
}

/// The audited name of a change (`None` for notes: they are content, not a change of the ticket).
fn change_kind(change: &TicketChange) -> Option<&'static str> {
    Some(match change {
        TicketChange::Assign { .. } => "assign",
        TicketChange::Transfer { .. } => "transfer",
        TicketChange::Status { .. } => "status",
        TicketChange::Priority { .. } => "priority",
        TicketChange::Tags { .. } => "tags",
        TicketChange::Snooze { .. } => "snooze",
        TicketChange::Note { .. } => return None,
    })
}

fn invalid(detail: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_change", detail)
}
