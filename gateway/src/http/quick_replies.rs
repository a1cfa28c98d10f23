//! `/api/v1/canned_responses…`: quick replies in Chatwoot's vocabulary (`short_code`, `content`), for
//! the whole tenant or one department (`team_id`), and their rendering for one conversation
//! (`{{contact.name}}`, `{{contact.phone}}`, `{{agent.name}}`, `{{ticket.number}}`,
//! `{{department.name}}`): a department's reply wins over the tenant's with the same shortcut. Every
//! agent reads and renders them; admins and supervisors change them. The tenant always comes from
//! the authenticated agent.

use crate::AppState;
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
use schema::helpdesk::quick_reply::render;
use schema::permission::Permission;
use schema::quick_reply::MAX_QUICK_REPLIES;
use schema::records::{Agent, QuickReply};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

/// The quick reply routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(replace, remove))
        .routes(routes!(render_for))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuickReplyRequest {
    short_code: String,
    content: String,
    #[serde(default)]
    team_id: Option<String>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Matches the shortcut or the text, ignoring case.
    search: Option<String>,
    /// Only this department's replies and the tenant's.
    team_id: Option<String>,
}

/// `GET /api/v1/canned_responses?search=&team_id=`, by shortcut.
#[utoipa::path(
    get,
    path = "/api/v1/canned_responses",
    tag = "quick replies",
    operation_id = "canned_responses_list",
    params(
        ListQuery,
    ),
    responses(
        (status = 200, description = "quick replies by shortcut", body = Vec<QuickReply>),
        Unauthorized,
        BadRequest,
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn list(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
    Query(query): Query<ListQuery>,
) -> Result<axum::Json<Vec<QuickReply>>, ApiError> {
    let search = query.search.map(|s| s.to_lowercase());
    if search.as_ref().is_some_and(|s| s.chars().count() > 128) {
        return Err(ApiError::bad_request(
            "invalid_search",
            "search has at most 128 characters",
        ));
    }
    let mut replies: Vec<QuickReply> = state
        .store
        .quick_replies(agent.tenant_id)
        .await?
        .into_iter()
        .filter(|r| {
            query
                .team_id
                .as_ref()
                .is_none_or(|team| r.team.is_none() || r.team.as_ref() == Some(team))
        })
        .filter(|r| {
            search.as_ref().is_none_or(|s| {
                r.short_code.contains(s.as_str()) || r.content.to_lowercase().contains(s.as_str())
            })
        })
        .collect();
    replies.sort_by(|a, b| (&a.short_code, &a.team).cmp(&(&b.short_code, &b.team)));
    Ok(axum::Json(replies))
}

/// `POST /api/v1/canned_responses` → 201; 409 when the shortcut is taken in its scope.
#[utoipa::path(
    post,
    path = "/api/v1/canned_responses",
    tag = "quick replies",
    operation_id = "canned_responses_create",
    request_body = QuickReplyRequest,
    responses(
        (status = 201, description = "the quick reply", body = QuickReply),
        Unauthorized,
        BadRequest,
        (status = 403, description = "only admins and supervisors", body = ErrorBody, content_type = "application/problem+json"),
        (status = 409, description = "the shortcut is taken in its scope", body = ErrorBody, content_type = "application/problem+json"),
        Refused,
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn create(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    require(&state, &agent, Permission::ManageHelpdesk).await?;
    let request: QuickReplyRequest = json_body(&state, &headers, body).await?;
    let now = Timestamp::now();
    let reply = checked(&state, &agent, Uuid::now_v7(), request, now, now).await?;
    state.store.put_quick_reply(&reply).await?;
    crate::audit::config_changed(
        &state,
        &agent,
        format!("quick_reply:{}", reply.id),
        "created",
    )
    .await;
    Ok((StatusCode::CREATED, axum::Json(reply)))
}

/// `PUT /api/v1/canned_responses/{id}`: replaces it whole.
#[utoipa::path(
    put,
    path = "/api/v1/canned_responses/{id}",
    tag = "quick replies",
    operation_id = "canned_responses_replace",
    params(
        ("id" = Uuid, Path, description = "quick reply id"),
    ),
    request_body = QuickReplyRequest,
    responses(
        (status = 200, description = "the quick reply", body = QuickReply),
        Unauthorized,
        BadRequest,
        (status = 403, description = "only admins and supervisors", body = ErrorBody, content_type = "application/problem+json"),
        NotFound,
        (status = 409, description = "the shortcut is taken in its scope", body = ErrorBody, content_type = "application/problem+json"),
        Refused,
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn replace(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::Json<QuickReply>, ApiError> {
    require(&state, &agent, Permission::ManageHelpdesk).await?;
    let request: QuickReplyRequest = json_body(&state, &headers, body).await?;
    let before = existing(&state, &agent, &id).await?;
    let reply = checked(
        &state,
        &agent,
        before.id,
        request,
        before.created_at,
        Timestamp::now(),
    )
    .await?;
    state.store.put_quick_reply(&reply).await?;
    crate::audit::config_changed(
        &state,
        &agent,
        format!("quick_reply:{}", reply.id),
        "replaced",
    )
    .await;
    Ok(axum::Json(reply))
}

/// `DELETE /api/v1/canned_responses/{id}` → 204.
#[utoipa::path(
    delete,
    path = "/api/v1/canned_responses/{id}",
    tag = "quick replies",
    operation_id = "canned_responses_remove",
    params(
        ("id" = Uuid, Path, description = "quick reply id"),
    ),
    responses(
        (status = 204, description = "removed"),
        Unauthorized,
        (status = 403, description = "only admins and supervisors", body = ErrorBody, content_type = "application/problem+json"),
        NotFound,
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn remove(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    require(&state, &agent, Permission::ManageHelpdesk).await?;
    let reply = existing(&state, &agent, &id).await?;
    state
        .store
        .remove_quick_reply(agent.tenant_id, reply.id)
        .await?;
    crate::audit::config_changed(
        &state,
        &agent,
        format!("quick_reply:{}", reply.id),
        "removed",
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenderRequest {
    short_code: String,
}

/// A quick reply filled for one conversation; `missing` lists variables that had no value (left in
/// the text as written, so the agent sees them).
#[derive(Serialize, utoipa::ToSchema)]
pub struct RenderedReply {
    pub id: Uuid,
    pub short_code: String,
    pub text: String,
    pub missing: Vec<String>,
}

/// `POST /api/v1/conversations/{id}/canned_responses/render` `{"short_code": "/saudacao"}`.
#[utoipa::path(
    post,
    path = "/api/v1/conversations/{id}/canned_responses/render",
    tag = "quick replies",
    operation_id = "canned_responses_render",
    params(
        ("id" = Uuid, Path, description = "conversation id"),
    ),
    request_body = RenderRequest,
    responses(
        (status = 200, description = "the text filled for the conversation", body = RenderedReply),
        Unauthorized,
        BadRequest,
        NotFound,
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn render_for(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::Json<RenderedReply>, ApiError> {
    require(&state, &agent, Permission::Reply).await?;
    let request: RenderRequest = json_body(&state, &headers, body).await?;
    let conversation = conversation(&state, &agent, &id).await?;
    let replies = state.store.quick_replies(agent.tenant_id).await?;
    let of_team = |team: Option<&String>| {
        replies
            .iter()
            .find(|r| r.short_code == request.short_code && r.team.as_ref() == team)
    };
    let reply = conversation
        .team
        .as_ref()
        .and_then(|team| of_team(Some(team)))
        .or_else(|| of_team(None))
        .ok_or_else(|| {
            ApiError::not_found(
                "quick_reply_not_found",
                format!(
                    "no quick reply {:?} for this conversation",
                    request.short_code
                ),
            )
        })?;
    let department = match &conversation.team {
        Some(team) => state.store.department(agent.tenant_id, team).await?,
        None => None,
    };
    let mut values: BTreeMap<&str, String> = BTreeMap::new();
    if let Some(name) = &conversation.contact.name {
        values.insert("contact.name", name.clone());
    }
    values.insert("contact.phone", conversation.contact.address.clone());
    values.insert("agent.name", agent.name.clone());
    values.insert("ticket.number", conversation.ticket_number.to_string());
    if let Some(department) = department {
        values.insert("department.name", department.name);
    }
    let rendered = render(&reply.content, &values);
    Ok(axum::Json(RenderedReply {
        id: reply.id,
        short_code: reply.short_code.clone(),
        text: rendered.text,
        missing: rendered.missing,
    }))
}

/// The quick reply built from a request, checked: its own rules, its department the tenant's, its
/// shortcut free in its scope, and the tenant's bound.
async fn checked(
    state: &AppState,
    agent: &Agent,
    id: Uuid,
    request: QuickReplyRequest,
    created_at: Timestamp,
    updated_at: Timestamp,
) -> Result<QuickReply, ApiError> {
    let reply = QuickReply {
        id,
        tenant_id: agent.tenant_id,
        short_code: request.short_code,
        content: request.content.trim().to_owned(),
        team: request.team_id,
        created_at,
        updated_at,
    };
    reply.validate().map_err(invalid)?;
    if let Some(team) = &reply.team
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
    let current = state.store.quick_replies(agent.tenant_id).await?;
    if current
        .iter()
        .any(|r| r.id != id && r.short_code == reply.short_code && r.team == reply.team)
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "short_code_taken",
            format!("{} is taken in this scope", reply.short_code),
        ));
    }
    if current.len() >= MAX_QUICK_REPLIES && !current.iter().any(|r| r.id == id) {
        return Err(invalid(format!(
            "a tenant has at most {MAX_QUICK_REPLIES} quick replies"
        )));
    }
    Ok(reply)
}

async fn existing(state: &AppState, agent: &Agent, raw: &str) -> Result<QuickReply, ApiError> {
    let not_found = || ApiError::not_found("quick_reply_not_found", "no such quick reply");
    let id: Uuid = raw.parse().map_err(|_| not_found())?;
    state
        .store
        .quick_reply(agent.tenant_id, id)
        .await?
        .ok_or_else(not_found)
}

fn invalid(detail: impl Into<String>) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_quick_reply",
        detail,
    )
}
