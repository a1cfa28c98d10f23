//! The sign-in aggregate: users' credentials (found by email), the grants of bearer tokens (found by
//! the token's SHA-256) and the sessions that hold them (listed per user).

use super::StoreResult;
use crate::account::{Credentials, Grant, Session};
use crate::ids::{AgentId, TenantId};
use async_trait::async_trait;
use uuid::Uuid;

/// Credentials, grants and sessions.
#[async_trait]
pub trait CredentialStore: Send + Sync + 'static {
    /// Sets a user's email and password hash, replacing their previous ones; `Conflict` when the
    /// email belongs to another user (nothing is written then).
    async fn set_credentials(&self, credentials: &Credentials) -> StoreResult<()>;
    async fn credentials_by_email(&self, email: &str) -> StoreResult<Option<Credentials>>;
    async fn credentials_of(
        &self,
        tenant: TenantId,
        agent: AgentId,
    ) -> StoreResult<Option<Credentials>>;
    /// Stores what the token with this SHA-256 grants (replacing what it granted).
    async fn put_grant(&self, token_sha256: [u8; 32], grant: &Grant) -> StoreResult<()>;
    async fn grant(&self, token_sha256: [u8; 32]) -> StoreResult<Option<Grant>>;
    /// Replaces a single-use token's grant with `spent` only if it is still of kind `expected` (a
    /// refresh token, an invitation, a password reset), in one atomic step: of two uses of one token,
    /// exactly one gets `true`.
    async fn spend_grant(
        &self,
        token_sha256: [u8; 32],
        expected: crate::account::GrantKind,
        spent: &Grant,
    ) -> StoreResult<bool>;
    /// Removes the grants of these tokens, and the `AccountStore::create_agent` token rows of the
    /// same hashes, so a revoked token authenticates nothing.
    async fn remove_grants(&self, tokens_sha256: &[[u8; 32]]) -> StoreResult<()>;
    /// Creates or replaces a session.
    async fn put_session(&self, session: &Session) -> StoreResult<()>;
    async fn session(
        &self,
        tenant: TenantId,
        agent: AgentId,
        id: Uuid,
    ) -> StoreResult<Option<Session>>;
    /// The user's sessions, in no particular order (at most `account::MAX_SESSIONS`, a bound the
    /// gateway keeps).
    async fn sessions(&self, tenant: TenantId, agent: AgentId) -> StoreResult<Vec<Session>>;
    async fn remove_session(&self, tenant: TenantId, agent: AgentId, id: Uuid) -> StoreResult<()>;
}
