//! Signing in: a user's credentials (an email and an argon2id password hash), the grants a bearer
//! token carries (a sign-in's short access token and its refresh token, or an API key), the sessions
//! that group them so a person can list and revoke them, and the throttle on failed sign-ins. Pure
//! rules, no I/O: the gateway hashes and checks passwords, the store keeps what is here.
//!
//! **Architecture Invariant:** a bearer token is stored only as its SHA-256; what it may do comes from
//! its grant (kind, agent, expiry), checked on every request, and revoking a session removes every
//! grant it holds.

use crate::ids::{AgentId, TenantId};
use crate::records::Agent;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use uuid::Uuid;

/// How long an access token lasts.
pub const ACCESS_TTL: SignedDuration = SignedDuration::from_mins(15);
/// How long a sign-in lasts without being refreshed.
pub const REFRESH_TTL: SignedDuration = SignedDuration::from_hours(24 * 30);
/// The longest an API key may last.
pub const MAX_API_KEY_DAYS: i64 = 730;
/// Most live sessions (sign-ins and API keys) of one user; the oldest sign-in goes first.
pub const MAX_SESSIONS: usize = 50;
/// Shortest and longest password, in characters.
pub const PASSWORD_CHARS: std::ops::RangeInclusive<usize> = 10..=128;

/// A user's sign-in credentials.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    pub tenant_id: TenantId,
    pub agent_id: AgentId,
    /// Lower case; unique across the platform (it names the user at sign-in).
    pub email: String,
    /// The argon2id hash in PHC string form.
    pub password_phc: String,
    pub updated_at: Timestamp,
}

/// What a bearer token is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GrantKind {
    /// A sign-in's access token: the API and the WebSocket, for [`ACCESS_TTL`].
    Access,
    /// A sign-in's refresh token: only `POST /auth/refresh`, once.
    Refresh,
    /// A refresh token already exchanged: presenting it again means it leaked, and ends its session.
    Spent,
    /// An API key: the API and the WebSocket, until it expires or is revoked.
    ApiKey,
    /// An invitation emailed to a new user: sets their password once (`Grant::email` is theirs).
    Invitation,
    /// A password reset emailed to a user: sets a new password once.
    PasswordReset,
}

impl GrantKind {
    /// The stored name (`access`, `refresh`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            GrantKind::Access => "access",
            GrantKind::Refresh => "refresh",
            GrantKind::Spent => "spent",
            GrantKind::ApiKey => "api_key",
            GrantKind::Invitation => "invitation",
            GrantKind::PasswordReset => "password_reset",
        }
    }
}

/// What one token grants, stored under the token's SHA-256.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub kind: GrantKind,
    pub agent: Agent,
    /// The session holding it.
    pub session: Uuid,
    pub expires_at: Option<Timestamp>,
    /// For an invitation: the email the new user signs in with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

impl Grant {
    /// Whether it lets its holder call the API at `now`.
    pub fn authorizes(&self, now: Timestamp) -> bool {
        matches!(self.kind, GrantKind::Access | GrantKind::ApiKey)
            && self.expires_at.is_none_or(|at| now < at)
    }
}

/// What a session is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SessionKind {
    SignIn,
    ApiKey,
}

/// A sign-in or an API key, with the hashes of the tokens it holds now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub agent_id: AgentId,
    pub kind: SessionKind,
    /// What the user called it (an API key), or the browser that signed in.
    pub label: Option<String>,
    pub created_at: Timestamp,
    /// The last sign-in or refresh.
    pub renewed_at: Timestamp,
    /// When it ends unless renewed (a sign-in's refresh token, an API key's expiry).
    pub expires_at: Option<Timestamp>,
    /// SHA-256 (hex) of every token whose grant names this session (current and spent ones), so a
    /// revocation removes them all. Bounded: a refresh replaces the previous pair.
    pub tokens: Vec<String>,
}

/// Lower-cased and trimmed; `None` unless it looks like an address.
pub fn normalized_email(raw: &str) -> Option<String> {
    let email = raw.trim().to_lowercase();
    let (local, domain) = email.split_once('@')?;
    let ok = email.len() <= 254
        && !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    ok.then_some(email)
}

/// Why a password is refused, if it is.
pub fn password_problem(password: &str) -> Option<String> {
    let chars = password.chars().count();
    if !PASSWORD_CHARS.contains(&chars) {
        return Some(format!(
            "a password has {} to {} characters",
            PASSWORD_CHARS.start(),
            PASSWORD_CHARS.end()
        ));
    }
    if password
        .chars()
        .all(|c| c == password.chars().next().unwrap_or(c))
    {
        return Some("a password is not one character repeated".into());
    }
    None
}

/// Failed sign-ins per key (an email, a client address) in a sliding window: after `limit`
/// failures the key waits until the window has passed since the oldest. Time is passed in, so the
/// rule is tested with fixed instants.
#[derive(Debug)]
pub struct Throttle {
    limit: usize,
    window: SignedDuration,
    max_keys: usize,
    failures: HashMap<String, Vec<Timestamp>>,
}

impl Throttle {
    pub fn new(limit: usize, window: SignedDuration, max_keys: usize) -> Self {
        Self {
            limit: limit.max(1),
            window,
            max_keys,
            failures: HashMap::new(),
        }
    }

    /// `Some(until)` when `key` must wait before trying again.
    pub fn blocked_until(&mut self, key: &str, now: Timestamp) -> Option<Timestamp> {
        let window = self.window;
        let recent = self.failures.get_mut(key)?;
        recent.retain(|at| now.duration_since(*at) < window);
        match recent.len() >= self.limit {
            true => recent.first().map(|oldest| *oldest + window),
            false => None,
        }
    }

    /// Counts a failure of `key`. Bounded: when full, keys with no recent failure are dropped, and if
    /// none is, the key whose last failure is oldest.
    pub fn failed(&mut self, key: &str, now: Timestamp) {
        if !self.failures.contains_key(key) && self.failures.len() >= self.max_keys {
            let window = self.window;
            self.failures.retain(|_, at| {
                at.last()
                    .is_some_and(|last| now.duration_since(*last) < window)
            });
            if self.failures.len() >= self.max_keys
                && let Some(quietest) = self
                    .failures
                    .iter()
                    .min_by_key(|(_, at)| at.last().copied())
                    .map(|(k, _)| k.clone())
            {
                self.failures.remove(&quietest);
            }
        }
        let recent = self.failures.entry(key.to_string()).or_default();
        recent.push(now);
        let excess = recent.len().saturating_sub(self.limit);
        recent.drain(..excess);
    }

    /// Forgets `key`'s failures (a successful sign-in).
    pub fn succeeded(&mut self, key: &str) {
        self.failures.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::UNIX_EPOCH + SignedDuration::from_secs(secs)
    }

    #[test]
    fn five_failures_block_a_key_until_the_window_passes_the_oldest() {
        let mut throttle = Throttle::new(5, SignedDuration::from_mins(15), 100);
        for n in 0..5 {
            assert_eq!(throttle.blocked_until("ana@x.com", at(n)), None);
            throttle.failed("ana@x.com", at(n));
        }
        assert_eq!(throttle.blocked_until("ana@x.com", at(10)), Some(at(900)));
        assert_eq!(throttle.blocked_until("bia@x.com", at(10)), None, "per key");
        assert_eq!(throttle.blocked_until("ana@x.com", at(901)), None);
        throttle.failed("ana@x.com", at(902));
        throttle.succeeded("ana@x.com");
        assert_eq!(throttle.blocked_until("ana@x.com", at(903)), None);
    }

    #[test]
    fn a_full_throttle_makes_room_by_dropping_the_quietest_keys() {
        let mut throttle = Throttle::new(2, SignedDuration::from_secs(60), 2);
        throttle.failed("a", at(0));
        throttle.failed("b", at(0));
        throttle.failed("c", at(100));
        assert!(throttle.failures.contains_key("c"), "quiet keys made room");
        assert!(!throttle.failures.contains_key("a"));
    }

    #[test]
    fn grants_authorize_only_access_and_api_keys_before_they_expire() {
        let agent = Agent {
            default_connection: None,
            id: AgentId::new(),
            tenant_id: TenantId::new(),
            name: "Ana".into(),
            role: crate::records::AgentRole::Agent,
            created_at: at(0),
        };
        let grant = |kind, expires_at| Grant {
            kind,
            agent: agent.clone(),
            session: Uuid::nil(),
            expires_at,
            email: None,
        };
        assert!(grant(GrantKind::Access, Some(at(10))).authorizes(at(9)));
        assert!(!grant(GrantKind::Access, Some(at(10))).authorizes(at(10)));
        assert!(grant(GrantKind::ApiKey, None).authorizes(at(1_000_000)));
        assert!(!grant(GrantKind::Refresh, None).authorizes(at(0)));
        assert!(!grant(GrantKind::Spent, None).authorizes(at(0)));
    }

    #[test]
    fn emails_and_passwords_are_checked() {
        assert_eq!(
            normalized_email(" Ana@Example.COM ").as_deref(),
            Some("ana@example.com")
        );
        assert_eq!(normalized_email("ana@localhost"), None);
        assert!(password_problem("short").is_some());
        assert!(password_problem("aaaaaaaaaaaa").is_some());
        assert!(password_problem("correct horse battery").is_none());
    }
}
