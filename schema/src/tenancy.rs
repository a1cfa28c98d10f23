//! The platform's side of a tenant: the plan it is on (limits on users, connections, conversations and
//! messages per month), whether it is suspended, and its metered usage. Pure rules: the gateway
//! checks a request against [`PlanLimits::check`] before doing what would cross a limit.
//!
//! What is refused when a limit is reached: creating a user or a connection, an agent's send, and an
//! agent starting a conversation. A customer's message is never refused: it is stored and counted
//! (an overage), so nothing a customer sends is lost over a billing limit.

use crate::ids::TenantId;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// The plan a tenant without a stored account is on; unlimited unless the operator stores a plan
/// of this name.
pub const DEFAULT_PLAN: &str = "default";
/// At most this many plans (checked before a write: concurrent writes can pass it by a few).
pub const MAX_PLANS: usize = 100;
/// Plans read at most (well past [`MAX_PLANS`], so one passed by a race is still found).
pub const MAX_PLANS_READ: usize = 1_000;
pub const MAX_PLAN_NAME: usize = 64;
pub const MAX_REASON_CHARS: usize = 500;

/// What a plan allows; `None` is no limit.
///
/// Read leniently (a limit a newer version stored is ignored by an older one, so nodes of two
/// versions share plans); the operator's request is checked strictly (`PlanLimits::unknown_field`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct PlanLimits {
    pub users: Option<u64>,
    pub connections: Option<u64>,
    pub conversations_per_month: Option<u64>,
    pub messages_per_month: Option<u64>,
}

/// A named set of limits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Plan {
    pub name: String,
    pub limits: PlanLimits,
    pub updated_at: Timestamp,
}

impl Plan {
    /// The built-in default plan: no limits.
    pub fn unlimited() -> Self {
        Self {
            name: DEFAULT_PLAN.into(),
            limits: PlanLimits::default(),
            updated_at: Timestamp::UNIX_EPOCH,
        }
    }

    /// Whether a plan name is well formed: 1–64 of `a-z 0-9 - _`.
    pub fn valid_name(name: &str) -> bool {
        !name.is_empty()
            && name.len() <= MAX_PLAN_NAME
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    }
}

/// Why a tenant is suspended, and since when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Suspension {
    pub at: Timestamp,
    pub reason: String,
}

/// The operator's record of a tenant: its plan and whether it is suspended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TenantAccount {
    pub tenant_id: TenantId,
    pub plan: String,
    pub suspended: Option<Suspension>,
    pub updated_at: Timestamp,
}

impl TenantAccount {
    /// A tenant nobody changed: the default plan, active.
    pub fn new(tenant_id: TenantId) -> Self {
        Self {
            tenant_id,
            plan: DEFAULT_PLAN.into(),
            suspended: None,
            updated_at: Timestamp::UNIX_EPOCH,
        }
    }
}

/// What one meter (a node's process) counted for a tenant in a month; a tenant's usage is the sum of
/// its meters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MeteredUsage {
    pub conversations: u64,
    pub messages: u64,
}

impl std::ops::AddAssign for MeteredUsage {
    fn add_assign(&mut self, other: Self) {
        self.conversations += other.conversations;
        self.messages += other.messages;
    }
}

/// A tenant's usage against its plan.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Usage {
    pub users: u64,
    pub connections: u64,
    pub conversations_this_month: u64,
    pub messages_this_month: u64,
}

/// Each limit a plan carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    Users,
    Connections,
    ConversationsPerMonth,
    MessagesPerMonth,
}

impl Limit {
    pub const ALL: [Limit; 4] = [
        Limit::Users,
        Limit::Connections,
        Limit::ConversationsPerMonth,
        Limit::MessagesPerMonth,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Limit::Users => "users",
            Limit::Connections => "connections",
            Limit::ConversationsPerMonth => "conversations_per_month",
            Limit::MessagesPerMonth => "messages_per_month",
        }
    }
}

/// A request that would cross a limit.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the plan {plan:?} allows {allowed} {}; {used} are used", .limit.as_str())]
pub struct LimitReached {
    pub plan: String,
    pub limit: Limit,
    pub allowed: u64,
    pub used: u64,
}

impl PlanLimits {
    /// The first name in a request's `limits` object that is not a limit.
    pub fn unknown_field(limits: &serde_json::Map<String, serde_json::Value>) -> Option<String> {
        limits
            .keys()
            .find(|k| !Limit::ALL.iter().any(|l| l.as_str() == k.as_str()))
            .cloned()
    }

    pub fn of(&self, limit: Limit) -> Option<u64> {
        match limit {
            Limit::Users => self.users,
            Limit::Connections => self.connections,
            Limit::ConversationsPerMonth => self.conversations_per_month,
            Limit::MessagesPerMonth => self.messages_per_month,
        }
    }

    /// Whether one more of `limit` fits, with `used` already used.
    pub fn check(&self, plan: &str, limit: Limit, used: u64) -> Result<(), LimitReached> {
        match self.of(limit) {
            Some(allowed) if used >= allowed => Err(LimitReached {
                plan: plan.to_owned(),
                limit,
                allowed,
                used,
            }),
            _ => Ok(()),
        }
    }
}

/// The month a time falls in (UTC), as `yyyymm`: the period of monthly limits.
pub fn month_of(at: Timestamp) -> i32 {
    let date = at.to_zoned(jiff::tz::TimeZone::UTC).date();
    i32::from(date.year()) * 100 + i32::from(date.month())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_refuses_the_request_that_would_cross_it_and_none_means_unlimited() {
        let limits = PlanLimits {
            users: Some(2),
            ..PlanLimits::default()
        };
        assert!(limits.check("starter", Limit::Users, 1).is_ok());
        let refused = limits.check("starter", Limit::Users, 2);
        assert_eq!(
            refused.as_ref().map_err(ToString::to_string),
            Err("the plan \"starter\" allows 2 users; 2 are used".to_string())
        );
        assert!(
            limits
                .check("starter", Limit::MessagesPerMonth, u64::MAX - 1)
                .is_ok()
        );
    }

    #[test]
    fn months_are_utc_calendar_months() {
        let at: Timestamp = "2026-11-30T23:59:59-03:00".parse().expect("time");
        assert_eq!(month_of(at), 202612);
        let at: Timestamp = "2026-01-01T00:00:00Z".parse().expect("time");
        assert_eq!(month_of(at), 202601);
    }

    #[test]
    fn plan_names_are_short_slugs() {
        assert!(Plan::valid_name("pro-2026"));
        assert!(!Plan::valid_name(""));
        assert!(!Plan::valid_name("Pro"));
        assert!(!Plan::valid_name(&"a".repeat(65)));
    }
}
