//! The embedded store's sign-in records: `credentials` (`email` → credentials), `agent_emails`
//! (`tenant | agent` → email), `grants` (`token SHA-256` → grant) and `sessions` (`tenant | agent |
//! id` → session). An email changes hands only in the committer, which checks and claims it in one
//! step.

use super::commit::Write;
use super::{EmbeddedStore, Tables, collect, encode, get};
use async_trait::async_trait;
use schema::account::{Credentials, Grant, GrantKind, Session};
use schema::store::{CredentialStore, StoreError, StoreResult};
use schema::{AgentId, TenantId};
use uuid::Uuid;

fn agent_key(tenant: TenantId, agent: AgentId) -> Vec<u8> {
    let mut key = tenant.as_bytes().to_vec();
    key.extend_from_slice(agent.as_bytes());
    key
}

fn session_key(tenant: TenantId, agent: AgentId, id: Uuid) -> Vec<u8> {
    let mut key = agent_key(tenant, agent);
    key.extend_from_slice(id.as_bytes());
    key
}

/// Checks and stages `Credentials`: the email must be free or the same user's; the user's previous
/// email is released. `claimed` holds the emails earlier writes of the group took.
pub(super) fn stage_credentials(
    tables: &Tables,
    batch: &mut fjall::OwnedWriteBatch,
    credentials: &Credentials,
    claimed: &mut Vec<Vec<u8>>,
) -> StoreResult<()> {
    let email_key = credentials.email.as_bytes().to_vec();
    let mut claim = b"email:".to_vec();
    claim.extend_from_slice(&email_key);
    let holder: Option<Credentials> = get(&tables.credentials, &email_key)?;
    let taken_by_other =
        holder.is_some_and(|h| h.agent_id != credentials.agent_id) || claimed.contains(&claim);
    if taken_by_other {
        return Err(StoreError::Conflict(format!(
            "email {} belongs to another user",
            credentials.email
        )));
    }
    let agent = agent_key(credentials.tenant_id, credentials.agent_id);
    if let Some(previous) = get::<String>(&tables.agent_emails, &agent)?
        && previous != credentials.email
    {
        batch.remove(&tables.credentials, previous.into_bytes());
    }
    claimed.push(claim);
    batch.insert(&tables.credentials, email_key, encode(credentials)?);
    batch.insert(&tables.agent_emails, agent, encode(&credentials.email)?);
    Ok(())
}

/// Checks and stages `SpendGrant`: 1 when the grant was still of the expected kind (now spent),
/// else 0.
pub(super) fn stage_spend(
    tables: &Tables,
    batch: &mut fjall::OwnedWriteBatch,
    token_sha256: [u8; 32],
    expected: GrantKind,
    spent: &Grant,
    claimed: &mut Vec<Vec<u8>>,
) -> StoreResult<u64> {
    let mut claim = b"spend:".to_vec();
    claim.extend_from_slice(&token_sha256);
    let stored: Option<Grant> = get(&tables.grants, token_sha256)?;
    let unspent = stored.is_some_and(|g| g.kind == expected);
    if !unspent || claimed.contains(&claim) {
        return Ok(0);
    }
    claimed.push(claim);
    batch.insert(&tables.grants, token_sha256.to_vec(), encode(spent)?);
    Ok(1)
}

#[async_trait]
impl CredentialStore for EmbeddedStore {
    async fn set_credentials(&self, credentials: &Credentials) -> StoreResult<()> {
        self.write(Write::Credentials(Box::new(credentials.clone())))
            .await
    }

    async fn credentials_by_email(&self, email: &str) -> StoreResult<Option<Credentials>> {
        let key = email.as_bytes().to_vec();
        self.read("credentials_by_email", move |t| get(&t.credentials, key))
            .await
    }

    async fn credentials_of(
        &self,
        tenant: TenantId,
        agent: AgentId,
    ) -> StoreResult<Option<Credentials>> {
        self.read("credentials_of", move |t| {
            match get::<String>(&t.agent_emails, agent_key(tenant, agent))? {
                Some(email) => get(&t.credentials, email.as_bytes()),
                None => Ok(None),
            }
        })
        .await
    }

    async fn put_grant(&self, token_sha256: [u8; 32], grant: &Grant) -> StoreResult<()> {
        self.write(Write::Put("grants", token_sha256.to_vec(), encode(grant)?))
            .await
    }

    async fn grant(&self, token_sha256: [u8; 32]) -> StoreResult<Option<Grant>> {
        self.read("grant", move |t| get(&t.grants, token_sha256))
            .await
    }

    async fn spend_grant(
        &self,
        token_sha256: [u8; 32],
        expected: GrantKind,
        spent: &Grant,
    ) -> StoreResult<bool> {
        let write = Write::SpendGrant(token_sha256, expected, Box::new(spent.clone()));
        Ok(self.write_for(write).await? == 1)
    }

    async fn remove_grants(&self, tokens_sha256: &[[u8; 32]]) -> StoreResult<()> {
        for token in tokens_sha256 {
            self.write(Write::Remove("grants", token.to_vec())).await?;
            self.write(Write::Remove("tokens", token.to_vec())).await?;
        }
        Ok(())
    }

    async fn put_session(&self, session: &Session) -> StoreResult<()> {
        let key = session_key(session.tenant_id, session.agent_id, session.id);
        self.write(Write::Put("sessions", key, encode(session)?))
            .await
    }

    async fn session(
        &self,
        tenant: TenantId,
        agent: AgentId,
        id: Uuid,
    ) -> StoreResult<Option<Session>> {
        self.read("session", move |t| {
            get(&t.sessions, session_key(tenant, agent, id))
        })
        .await
    }

    async fn sessions(&self, tenant: TenantId, agent: AgentId) -> StoreResult<Vec<Session>> {
        self.read("sessions", move |t| {
            collect(t.sessions.prefix(agent_key(tenant, agent)))
        })
        .await
    }

    async fn remove_session(&self, tenant: TenantId, agent: AgentId, id: Uuid) -> StoreResult<()> {
        self.write(Write::Remove("sessions", session_key(tenant, agent, id)))
            .await
    }
}
