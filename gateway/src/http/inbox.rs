//! The inbox's badge numbers and search by message text.
//!
//! `GET /api/v1/conversations/counts`: how many active tickets (neither resolved nor cancelled) each
//! view lists, read from counts the store keeps, never by walking the history. For a user limited to
//! one connection the store's counts (the whole tenant's) would tell too much: its numbers come
//! from reading the active inbox, at most [`MAX_SCANNED`] tickets (`partial` says when more were
//! left).
//!
//! `GET /api/v1/conversations?q=`: conversations whose messages have every word of `q` (folded,
//! three characters or more) in one month, newest month first (the last 24 months), by id within a
//! month; each conversation listed once, under the newest month it matches.

use crate::AppState;
use crate::auth::AuthenticatedAgent;
use crate::error::ApiError;
use crate::http::problems::{BadRequest, Unauthorized, Unavailable};
use axum::extract::{Query, State};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::Timestamp;
use schema::api::Page;
use schema::helpdesk::search::{self, SEARCH_MONTHS, month_of};
use schema::records::{Agent, Conversation, ConversationStatus, Priority};
use schema::store::{InboxCursor, InboxView};
use schema::visibility::{ConnectionScope, Viewer};
use schema::{ConversationId, TenantId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Most tags one counts request names.
const MAX_COUNTED_TAGS: usize = 16;
/// Store reads one search request makes at most before answering with what it found and a cursor.
const MAX_SEARCH_CALLS: usize = 1500;
/// Most departments counted (a tenant's first 64 by key).
const MAX_COUNTED_TEAMS: usize = 64;
/// Most active tickets read to count them for a user limited to one connection.
pub const MAX_SCANNED: usize = 2_000;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CountsQuery {
    /// Tags to count too, comma-separated (at most 16).
    tags: Option<String>,
}

/// The badge numbers.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Counts {
    /// Every active ticket.
    pub all: u64,
    /// The caller's active tickets.
    pub mine: u64,
    pub unassigned: u64,
    /// By status: `open`, `in_progress`, `waiting`.
    pub status: BTreeMap<&'static str, u64>,
    /// By priority.
    pub priority: BTreeMap<&'static str, u64>,
    /// By department key.
    pub teams: BTreeMap<String, u64>,
    /// The tags asked for.
    pub tags: BTreeMap<String, u64>,
    /// The numbers stop at the first [`MAX_SCANNED`] active tickets read (users limited to one
    /// connection only).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
}

/// `GET /api/v1/conversations/counts?tags=vip,boleto`.
#[utoipa::path(
    get,
    path = "/api/v1/conversations/counts",
    tag = "conversations",
    operation_id = "conversations_counts",
    params(
        CountsQuery,
    ),
    responses(
        (status = 200, description = "active tickets per view", body = Counts),
        Unauthorized,
        BadRequest,
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn counts(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
    Query(query): Query<CountsQuery>,
) -> Result<axum::Json<Counts>, ApiError> {
    let mut tags = Vec::new();
    for raw in query.tags.iter().flat_map(|t| t.split(',')) {
        let tag = schema::helpdesk::change::tag(raw)
            .map_err(|e| ApiError::bad_request("invalid_tag", e.to_string()))?;
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    if tags.len() > MAX_COUNTED_TAGS {
        return Err(ApiError::bad_request(
            "invalid_tag",
            format!("count at most {MAX_COUNTED_TAGS} tags at once"),
        ));
    }
    counts_of(&state, &agent, tags).await.map(axum::Json)
}

/// The badge numbers `agent` sees, with the given tags counted too.
pub(crate) async fn counts_of(
    state: &AppState,
    agent: &Agent,
    tags: Vec<String>,
) -> Result<Counts, ApiError> {
    let mut teams: Vec<String> = state
        .store
        .departments(agent.tenant_id)
        .await?
        .into_iter()
        .map(|d| d.key)
        .collect();
    teams.sort();
    teams.truncate(MAX_COUNTED_TEAMS);
    let statuses = [
        ConversationStatus::Open,
        ConversationStatus::InProgress,
        ConversationStatus::Waiting,
    ];
    let priorities = [
        Priority::Low,
        Priority::Normal,
        Priority::High,
        Priority::Urgent,
    ];
    let viewer = crate::permissions::viewer(state, agent).await?;
    if viewer.scope != ConnectionScope::Any {
        return scan(state, agent, &viewer, &statuses, &priorities, &teams, &tags).await;
    }
    let mut views = vec![
        InboxView::All,
        InboxView::Mine(agent.id),
        InboxView::Unassigned,
    ];
    views.extend(statuses.iter().map(|s| InboxView::Status(*s)));
    views.extend(priorities.iter().map(|p| InboxView::Priority(*p)));
    views.extend(teams.iter().cloned().map(InboxView::Team));
    views.extend(tags.iter().cloned().map(InboxView::Tag));
    let mut counted = state
        .store
        .count_active(agent.tenant_id, &views)
        .await?
        .into_iter();
    let mut next = || counted.next().unwrap_or(0);
    Ok(Counts {
        all: next(),
        mine: next(),
        unassigned: next(),
        status: statuses.iter().map(|s| (s.as_str(), next())).collect(),
        priority: priorities.iter().map(|p| (p.as_str(), next())).collect(),
        teams: teams.into_iter().map(|t| (t, next())).collect(),
        tags: tags.into_iter().map(|t| (t, next())).collect(),
        partial: false,
    })
}

/// The counts of the active tickets `viewer` sees, by reading them (newest first, at most
/// [`MAX_SCANNED`]).
async fn scan(
    state: &AppState,
    agent: &Agent,
    viewer: &Viewer,
    statuses: &[ConversationStatus],
    priorities: &[Priority],
    teams: &[String],
    tags: &[String],
) -> Result<Counts, ApiError> {
    let mut counts = Counts {
        all: 0,
        mine: 0,
        unassigned: 0,
        status: statuses.iter().map(|s| (s.as_str(), 0)).collect(),
        priority: priorities.iter().map(|p| (p.as_str(), 0)).collect(),
        teams: teams.iter().map(|t| (t.clone(), 0)).collect(),
        tags: tags.iter().map(|t| (t.clone(), 0)).collect(),
        partial: false,
    };
    let mut read = 0;
    for status in statuses {
        let mut cursor = None;
        loop {
            let page = state
                .store
                .inbox(agent.tenant_id, &InboxView::Status(*status), cursor, 200)
                .await?;
            read += page.len();
            for conversation in page.iter().filter(|c| viewer.sees(c)) {
                counts.all += 1;
                counts.mine += u64::from(conversation.assignee == Some(agent.id));
                counts.unassigned += u64::from(conversation.assignee.is_none());
                *counts.status.entry(status.as_str()).or_default() += 1;
                if let Some(n) = counts.priority.get_mut(conversation.priority.as_str()) {
                    *n += 1;
                }
                if let Some(n) = conversation
                    .team
                    .as_ref()
                    .and_then(|t| counts.teams.get_mut(t))
                {
                    *n += 1;
                }
                for tag in &conversation.tags {
                    if let Some(n) = counts.tags.get_mut(tag) {
                        *n += 1;
                    }
                }
            }
            let full = page.len() == 200;
            cursor = page.last().map(|c| InboxCursor {
                last_activity_at: c.last_activity_at,
                conversation_id: c.id,
            });
            if read >= MAX_SCANNED {
                counts.partial = full || *status != statuses[statuses.len() - 1];
                return Ok(counts);
            }
            if !full {
                break;
            }
        }
    }
    Ok(counts)
}

/// Where a search page stopped.
#[derive(Serialize, Deserialize)]
struct SearchCursor {
    month: i32,
    after: Option<ConversationId>,
}

/// Whether `conversation` had every word in `month`; counts its store reads in `calls`.
async fn has_all(
    state: &AppState,
    tenant: TenantId,
    words: &[String],
    month: i32,
    conversation: ConversationId,
    calls: &mut usize,
) -> Result<bool, ApiError> {
    for word in words {
        *calls += 1;
        if !state
            .store
            .has_message_term(tenant, word, month, conversation)
            .await?
        {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `GET /api/v1/conversations?q=&cursor=&limit=`: see the module.
pub async fn search(
    state: &AppState,
    agent: &Agent,
    q: &str,
    cursor: Option<&str>,
    limit: usize,
) -> Result<Page<Conversation>, ApiError> {
    if q.chars().count() > 200 {
        return Err(ApiError::bad_request(
            "invalid_search",
            "q has at most 200 characters",
        ));
    }
    let words = search::query_words(q).ok_or_else(|| {
        ApiError::bad_request("invalid_search", "q needs a word of three characters")
    })?;
    let newest = month_of(Timestamp::now());
    let oldest = newest - SEARCH_MONTHS + 1;
    let mut at = match cursor {
        Some(raw) => URL_SAFE_NO_PAD
            .decode(raw)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<SearchCursor>(&bytes).ok())
            .ok_or_else(|| {
                ApiError::bad_request("invalid_cursor", "the cursor is not one this API gave out")
            })?,
        None => SearchCursor {
            month: newest,
            after: None,
        },
    };
    // A cursor from the future (forged, or a clock that stepped back) starts at this month.
    if at.month > newest {
        at = SearchCursor {
            month: newest,
            after: None,
        };
    }
    let tenant = agent.tenant_id;
    let viewer = crate::permissions::viewer(state, agent).await?;
    let mut items = Vec::new();
    // Store reads this request may make: past it, it answers with what it found and a cursor.
    let mut calls = 0usize;
    'months: while at.month >= oldest && items.len() < limit && calls < MAX_SEARCH_CALLS {
        calls += 1;
        let ids = state
            .store
            .search_messages(tenant, &words[0], at.month, at.after, limit)
            .await?;
        let exhausted = ids.len() < limit;
        for id in ids {
            if calls >= MAX_SEARCH_CALLS {
                break 'months;
            }
            at.after = Some(id);
            if !has_all(state, tenant, &words[1..], at.month, id, &mut calls).await? {
                continue;
            }
            calls += 1;
            let Some(conversation) = state
                .store
                .conversation(tenant, id)
                .await?
                .filter(|c| viewer.sees(c))
            else {
                continue;
            };
            // Listed under the newest month it matches: no month after its last activity has its
            // words, so only those between are looked at.
            let last = month_of(conversation.last_activity_at).min(newest);
            let mut newer = false;
            for month in at.month + 1..=last {
                if has_all(state, tenant, &words, month, id, &mut calls).await? {
                    newer = true;
                    break;
                }
            }
            if !newer {
                items.push(viewer.conversation(conversation));
                if items.len() == limit {
                    break 'months;
                }
            }
        }
        if exhausted {
            at = SearchCursor {
                month: at.month - 1,
                after: None,
            };
        }
    }
    // More may follow unless every month was read to its end.
    let next_cursor = (at.month >= oldest)
        .then(|| serde_json::to_vec(&at).ok())
        .flatten()
        .map(|bytes| URL_SAFE_NO_PAD.encode(bytes));
    Ok(Page { items, next_cursor })
}
