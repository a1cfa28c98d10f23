//! `GET /api/v1/dashboard`: the tenant's service as it stands, for supervisors (`see_dashboard`,
//! and the tenant's `show_dashboard` flag, else 422 `feature_disabled`): the active tickets by view
//! as the caller sees them (the inbox's badge numbers), each user with their presence and their
//! active tickets, and this month's use of the plan. Read from counts the store keeps, never by
//! walking the history; a user limited to one connection gets the counts of that connection and no
//! per-user loads (they span connections).

use crate::AppState;
use crate::auth::{AuthenticatedAgent, require};
use crate::error::ApiError;
use crate::http::inbox::{Counts, counts_of};
use crate::http::problems::{Refused, Unauthorized, Unavailable};
use axum::extract::State;
use jiff::Timestamp;
use schema::AgentId;
use schema::permission::Permission;
use schema::presence::PresenceStatus;
use schema::records::AgentRole;
use schema::store::InboxView;
use schema::tenancy::Usage;
use schema::visibility::ConnectionScope;
use serde::Serialize;

/// Most users listed.
const MAX_USERS: usize = 500;

/// The dashboard.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Dashboard {
    /// Active tickets by view.
    pub tickets: Counts,
    /// Each user, by name.
    pub users: Vec<UserLoad>,
    /// This month's use of the plan.
    pub usage: Usage,
    /// More users than the first [`MAX_USERS`] listed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub users_partial: bool,
}

/// A user at work.
#[derive(Serialize, utoipa::ToSchema)]
pub struct UserLoad {
    pub id: AgentId,
    pub name: String,
    pub role: AgentRole,
    /// `online`, `away` or `offline`.
    pub presence: &'static str,
    /// Their active tickets (absent for a caller limited to one connection).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_tickets: Option<u64>,
}

/// `GET /api/v1/dashboard`.
#[utoipa::path(
    get,
    path = "/api/v1/dashboard",
    tag = "account",
    operation_id = "dashboard",
    responses(
        (status = 200, description = "the service as it stands", body = Dashboard),
        Unauthorized,
        Refused,
        Unavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn dashboard(
    State(state): State<AppState>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
) -> Result<axum::Json<Dashboard>, ApiError> {
    require(&state, &agent, Permission::SeeDashboard).await?;
    crate::tenancy::require_feature(
        &state,
        agent.tenant_id,
        |f| f.show_dashboard,
        "show_dashboard",
    )
    .await?;
    let store = state.store.as_ref();
    let tickets = counts_of(&state, &agent, Vec::new()).await?;
    let viewer = crate::permissions::viewer(&state, &agent).await?;
    let mut agents = store.agents(agent.tenant_id, MAX_USERS + 1).await?;
    let users_partial = agents.len() > MAX_USERS;
    agents.truncate(MAX_USERS);
    agents.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.0.cmp(&b.id.0)));
    let loads = match viewer.scope {
        ConnectionScope::Any => {
            let views: Vec<InboxView> = agents.iter().map(|a| InboxView::Mine(a.id)).collect();
            Some(store.count_active(agent.tenant_id, &views).await?)
        }
        _ => None,
    };
    let now = Timestamp::now();
    let presence = store.presence(agent.tenant_id).await?;
    let users = agents
        .into_iter()
        .enumerate()
        .map(|(i, user)| {
            let status = presence
                .iter()
                .find(|p| p.agent == user.id && p.until > now)
                .map_or("offline", |p| match p.status {
                    PresenceStatus::Online => "online",
                    PresenceStatus::Away => "away",
                });
            UserLoad {
                id: user.id,
                name: user.name,
                role: user.role,
                presence: status,
                active_tickets: loads.as_ref().and_then(|l| l.get(i).copied()),
            }
        })
        .collect();
    let usage = state.tenancy.usage(store, agent.tenant_id).await?;
    Ok(axum::Json(Dashboard {
        tickets,
        users,
        usage,
        users_partial,
    }))
}
