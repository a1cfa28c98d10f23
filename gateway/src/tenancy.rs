//! The platform's rules as the gateway applies them: a suspended tenant's users are refused
//! (`403 tenant_suspended`, sign-in included, and open sockets close at their next token check),
//! requests that would cross the tenant's plan limits are refused (`422 plan_limit_reached`), and
//! features a tenant turned off are refused (`422 feature_disabled`). A customer's message is never
//! refused: webhooks of a suspended or over-limit tenant are stored (and counted as overage).
//!
//! The tenant's account, plan and flags are read at most every [`TTL`] per node (at once after a
//! change on this node); monthly usage at most every `GatewayConfig::usage_refresh`, and each node
//! stores its own count as often, so a monthly limit can be passed by what the tenant's nodes store
//! within about two such intervals.

use crate::AppState;
use crate::cache::TenantCache;
use crate::error::ApiError;
use axum::http::StatusCode;
use schema::TenantId;
use schema::features::FeatureFlags;
use schema::store::Store;
use schema::tenancy::{Limit, LimitReached, MeteredUsage, Plan, TenantAccount, Usage, month_of};
use std::sync::Arc;
use std::time::Duration;

/// How long a tenant's account, plan and flags are kept before they are read again.
pub const TTL: Duration = Duration::from_secs(10);
/// Most users or connections counted for a limit (a plan's limits are far below it).
pub const MAX_COUNTED: usize = 100_000;

/// A tenant as the platform sees it.
#[derive(Debug)]
pub struct TenantView {
    pub account: TenantAccount,
    /// The account's plan (the built-in unlimited one when the default is not stored, or when the
    /// account names a plan that is not stored).
    pub plan: Plan,
    pub flags: FeatureFlags,
}

/// The caches.
pub struct Tenancy {
    views: TenantCache<TenantView>,
    usage: TenantCache<(i32, MeteredUsage)>,
}

impl Tenancy {
    pub fn new(usage_refresh: Duration) -> Self {
        Self {
            views: TenantCache::new(TTL),
            usage: TenantCache::new(usage_refresh),
        }
    }

    /// The tenant's account, plan and flags.
    pub async fn view(
        &self,
        store: &dyn Store,
        tenant: TenantId,
    ) -> Result<Arc<TenantView>, ApiError> {
        self.views
            .get(tenant, || async {
                let account = store
                    .tenant_account(tenant)
                    .await?
                    .unwrap_or_else(|| TenantAccount::new(tenant));
                let plan = plan_named(store, &account.plan).await?;
                let flags = store.feature_flags(tenant).await?.unwrap_or_default();
                Ok(TenantView {
                    account,
                    plan,
                    flags,
                })
            })
            .await
    }

    /// Forgets what this node holds of the tenant (after a change on this node).
    pub fn forget(&self, tenant: TenantId) {
        self.views.forget(tenant);
        self.usage.forget(tenant);
    }

    /// Forgets every tenant's account, plan and flags (after a plan changed).
    pub fn forget_all(&self) {
        self.views.forget_all();
    }

    /// This month's metered usage of the tenant.
    async fn metered(&self, store: &dyn Store, tenant: TenantId) -> Result<MeteredUsage, ApiError> {
        let month = month_of(jiff::Timestamp::now());
        let cached = self
            .usage
            .get(tenant, || async {
                Ok((month, store.usage(tenant, month).await?))
            })
            .await?;
        if cached.0 == month {
            return Ok(cached.1);
        }
        // A new month began since the figure was read.
        self.usage.forget(tenant);
        Ok(store.usage(tenant, month).await?)
    }

    /// Everything the tenant uses that its plan limits.
    pub async fn usage(&self, store: &dyn Store, tenant: TenantId) -> Result<Usage, ApiError> {
        let metered = self.metered(store, tenant).await?;
        Ok(Usage {
            users: store.agents(tenant, MAX_COUNTED).await?.len() as u64,
            connections: store.connections(tenant).await?.len() as u64,
            conversations_this_month: metered.conversations,
            messages_this_month: metered.messages,
        })
    }
}

/// The stored plan of this name, or the built-in unlimited plan.
pub async fn plan_named(store: &dyn Store, name: &str) -> Result<Plan, ApiError> {
    let stored = store.plans().await?.into_iter().find(|p| p.name == name);
    Ok(stored.unwrap_or_else(|| Plan {
        name: name.to_owned(),
        ..Plan::unlimited()
    }))
}

/// Refuses a suspended tenant's users.
pub async fn require_active(state: &AppState, tenant: TenantId) -> Result<(), ApiError> {
    let view = state.tenancy.view(state.store.as_ref(), tenant).await?;
    match &view.account.suspended {
        Some(_) => Err(suspended()),
        None => Ok(()),
    }
}

pub fn suspended() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "tenant_suspended",
        "this account is suspended; contact the platform's operator",
    )
}

/// Refuses a request that would add one more of `limit` past the tenant's plan.
pub async fn require_room(
    state: &AppState,
    tenant: TenantId,
    limit: Limit,
) -> Result<(), ApiError> {
    let store = state.store.as_ref();
    let view = state.tenancy.view(store, tenant).await?;
    if view.plan.limits.of(limit).is_none() {
        return Ok(());
    }
    let used = match limit {
        Limit::Users => store.agents(tenant, MAX_COUNTED).await?.len() as u64,
        Limit::Connections => store.connections(tenant).await?.len() as u64,
        Limit::ConversationsPerMonth => state.tenancy.metered(store, tenant).await?.conversations,
        Limit::MessagesPerMonth => state.tenancy.metered(store, tenant).await?.messages,
    };
    view.plan
        .limits
        .check(&view.plan.name, limit, used)
        .map_err(|reached| {
            metrics::counter!("conversa_plan_limit_refusals_total", "limit" => limit.as_str())
                .increment(1);
            limit_error(&reached)
        })
}

/// Refuses an agent's send past the monthly message limit (and, for a conversation that does not
/// exist yet, past the conversation limit), unless it repeats a stored send: a retry is answered with
/// what was stored, whatever the plan says now.
pub async fn require_room_to_send(
    state: &AppState,
    tenant: TenantId,
    conversation: schema::ConversationId,
    client_message_id: Option<&str>,
    exists: bool,
) -> Result<(), ApiError> {
    if exists && let Some(key) = client_message_id {
        let key = schema::store::MessageKey::Client(key.to_owned());
        if state
            .store
            .message_ref(tenant, conversation, &key)
            .await?
            .is_some()
        {
            return Ok(());
        }
    }
    require_room(state, tenant, Limit::MessagesPerMonth).await?;
    if !exists {
        require_room(state, tenant, Limit::ConversationsPerMonth).await?;
    }
    Ok(())
}

fn limit_error(reached: &LimitReached) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "plan_limit_reached",
        reached.to_string(),
    )
}

/// Refuses a feature the tenant turned off.
pub async fn require_feature(
    state: &AppState,
    tenant: TenantId,
    on: impl FnOnce(&FeatureFlags) -> bool,
    name: &str,
) -> Result<(), ApiError> {
    let view = state.tenancy.view(state.store.as_ref(), tenant).await?;
    match on(&view.flags) {
        true => Ok(()),
        false => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "feature_disabled",
            format!("the feature {name:?} is turned off for this account"),
        )),
    }
}
