//! `GET /api/v1/audit`: the tenant's audit log, newest first, for roles with `read_audit_log`
//! (admins and auditors by default), filtered by action, actor, target and time. Each entry carries
//! its hash and its link, so a reader can check the chain they were shown.
//!
//! A request reads at most `SCAN_BUDGET` entries of the log; when its filters match few of them it
//! answers with what it found and a cursor to go on from.

use crate::AppState;
use crate::auth::{AuthenticatedAgent, require};
use crate::error::ApiError;
use crate::http::problems::{BadRequest, Unauthorized, Unavailable};
use axum::extract::{Query, State};
use jiff::Timestamp;
use schema::AgentId;
use schema::api::{ErrorBody, Page};
use schema::audit::{AuditAction, AuditActor, AuditEntry, MAX_AUDIT_PAGE};
use schema::permission::Permission;
use schema::store::SeqWindow;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 200;
/// Entries one request reads at most.
const SCAN_BUDGET: usize = 5_000;
/// How far an entry's time may run ahead of the entry after it (appends of several nodes); a
/// `since` scan stops only past it.
const CLOCK_SLACK: jiff::SignedDuration = jiff::SignedDuration::from_secs(60);

/// The audit route.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only this action (`auth.sign_in`, `ticket.changed`, …).
    action: Option<String>,
    /// Only what this user did.
    actor: Option<AgentId>,
    /// Only entries whose target starts with this (`conversation:`, `role:agent`).
    target: Option<String>,
    /// Only entries at or after this time (RFC 3339).
    since: Option<Timestamp>,
    /// Only entries before this time (RFC 3339).
    until: Option<Timestamp>,
    cursor: Option<String>,
    limit: Option<usize>,
}

/// One entry as the API shows it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AuditEntryView {
    pub seq: u64,
    pub at: Timestamp,
    pub actor: AuditActor,
    pub action: AuditAction,
    pub target: String,
    pub details: BTreeMap<String, String>,
    /// SHA-256 of the entry, hex.
    pub hash: String,
    /// The hash of the entry before it, hex (zeros for the first).
    pub prev_hash: String,
}

impl From<AuditEntry> for AuditEntryView {
    fn from(entry: AuditEntry) -> Self {
        Self {
            seq: entry.seq,
            at: entry.record.at,
            actor: entry.record.actor,
            action: entry.record.action,
            target: entry.record.target,
            details: entry.record.details,
            hash: hex::encode(entry.hash),
            prev_hash: hex::encode(entry.prev_hash),
        }
    }
}

struct Filter {
    action: Option<AuditAction>,
    actor: Option<AgentId>,
    target: Option<String>,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
}

impl Filter {
    fn matches(&self, entry: &AuditEntry) -> bool {
        let record = &entry.record;
        self.action.is_none_or(|a| record.action == a)
            && self.actor.is_none_or(|a| record.actor.agent_id == Some(a))
            && self
                .target
                .as_deref()
                .is_none_or(|t| record.target.starts_with(t))
            && self.since.is_none_or(|s| record.at >= s)
            && self.until.is_none_or(|u| record.at < u)
    }

    /// Whether entries numbered before this one can no longer match `since`.
    fn past_since(&self, entry: &AuditEntry) -> bool {
        self.since.is_some_and(|s| {
            s.checked_sub(CLOCK_SLACK)
                .is_ok_and(|bound| entry.record.at < bound)
        })
    }
}

/// `GET /api/v1/audit`: the audit log, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    tag = "audit",
    operation_id = "audit_list",
    params(AuditQuery),
    responses(
        (status = 200, description = "matching entries, newest first", body = Page<AuditEntryView>),
        BadRequest,
        Unauthorized,
        (status = 403, description = "the role may not read the audit log", body = ErrorBody, content_type = "application/problem+json"),
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn list(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
    Query(query): Query<AuditQuery>,
) -> Result<axum::Json<Page<AuditEntryView>>, ApiError> {
    require(&state, &agent, Permission::ReadAuditLog).await?;
    let limit = match query.limit.unwrap_or(DEFAULT_PAGE) {
        n @ 1..=MAX_PAGE => n,
        _ => {
            return Err(ApiError::bad_request(
                "invalid_limit",
                format!("limit must be 1 to {MAX_PAGE}"),
            ));
        }
    };
    let action = match query.action.as_deref() {
        Some(name) => Some(AuditAction::parse(name).ok_or_else(|| {
            ApiError::bad_request("invalid_action", format!("no audit action {name:?}"))
        })?),
        None => None,
    };
    let mut before = match query.cursor.as_deref() {
        Some(cursor) => cursor
            .parse::<u64>()
            .ok()
            .filter(|s| *s > 0)
            .ok_or_else(|| ApiError::bad_request("invalid_cursor", "cursor is not one we gave"))?,
        None => u64::MAX,
    };
    let filter = Filter {
        action,
        actor: query.actor,
        target: query.target,
        since: query.since,
        until: query.until,
    };
    let mut items = Vec::new();
    let mut scanned = 0;
    loop {
        let page = state
            .store
            .audit_entries(agent.tenant_id, SeqWindow::Before(before), MAX_AUDIT_PAGE)
            .await?;
        let Some(first) = page.first().map(|e| e.seq) else {
            return Ok(axum::Json(Page {
                items,
                next_cursor: None,
            }));
        };
        for entry in page.into_iter().rev() {
            scanned += 1;
            before = entry.seq;
            if filter.past_since(&entry) {
                return Ok(axum::Json(Page {
                    items,
                    next_cursor: None,
                }));
            }
            if filter.matches(&entry) {
                items.push(AuditEntryView::from(entry));
            }
            if items.len() == limit || scanned >= SCAN_BUDGET {
                let next_cursor = (before > 1).then(|| before.to_string());
                return Ok(axum::Json(Page { items, next_cursor }));
            }
        }
        if first <= 1 {
            return Ok(axum::Json(Page {
                items,
                next_cursor: None,
            }));
        }
    }
}
