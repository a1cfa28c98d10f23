//! CQL sign-in records (migration 0010). An email is claimed with a compare-and-set (`IF NOT EXISTS`,
//! or `IF agent_id` for the same user), then the user's email row is moved and the previous email
//! released (`IF agent_id`); a failure in between leaves the previous email still naming the user,
//! which the next change of email releases. Grants are written with a TTL to their expiry.

use super::{ScyllaStore, applied};
use crate::storage::codec::{from_json, to_json};
use crate::storage::observe;
use async_trait::async_trait;
use schema::account::{Credentials, Grant, GrantKind, Session};
use schema::store::{CredentialStore, StoreError, StoreResult};
use schema::{AgentId, TenantId};
use scylla::value::Row;
use uuid::Uuid;

/// A grant without an expiry lives as long as CQL allows a TTL (20 years).
const LONGEST_TTL_SECS: i32 = 630_720_000;

/// A grant's TTL: until its expiry and a minute, or the longest CQL allows.
fn ttl_of(grant: &Grant) -> i32 {
    match grant.expires_at {
        Some(at) => {
            let secs = at.duration_since(jiff::Timestamp::now()).as_secs() + 60;
            i32::try_from(secs.max(1))
                .unwrap_or(LONGEST_TTL_SECS)
                .min(LONGEST_TTL_SECS)
        }
        None => LONGEST_TTL_SECS,
    }
}

#[async_trait]
impl CredentialStore for ScyllaStore {
    async fn set_credentials(&self, credentials: &Credentials) -> StoreResult<()> {
        observe("set_credentials", async {
            let s = &self.statements;
            let body = to_json(credentials)?;
            let email = credentials.email.as_str();
            let agent = credentials.agent_id.0;
            let claimed: Vec<Row> = self
                .rows(
                    &s.claim_email,
                    (email, credentials.tenant_id.0, agent, body.as_str()),
                )
                .await?;
            if !applied(&claimed) {
                let updated: Vec<Row> = self
                    .rows(&s.update_credentials, (body.as_str(), email, agent))
                    .await?;
                if !applied(&updated) {
                    return Err(StoreError::Conflict(format!(
                        "email {email} belongs to another user"
                    )));
                }
            }
            let previous: Vec<(Option<String>,)> = self
                .rows(&s.select_agent_email, (credentials.tenant_id.0, agent))
                .await?;
            self.execute(
                &s.insert_agent_email,
                (credentials.tenant_id.0, agent, email),
            )
            .await?;
            if let Some((Some(previous),)) = previous.into_iter().next()
                && previous != email
            {
                self.rows::<Row>(&s.release_email, (previous, agent))
                    .await?;
            }
            Ok(())
        })
        .await
    }

    async fn credentials_by_email(&self, email: &str) -> StoreResult<Option<Credentials>> {
        observe("credentials_by_email", async {
            let rows: Vec<(Option<Uuid>, Option<String>)> = self
                .rows(&self.statements.select_credentials, (email,))
                .await?;
            match rows.into_iter().next() {
                Some((_, Some(body))) => from_json(&body).map(Some),
                _ => Ok(None),
            }
        })
        .await
    }

    async fn credentials_of(
        &self,
        tenant: TenantId,
        agent: AgentId,
    ) -> StoreResult<Option<Credentials>> {
        let rows: Vec<(Option<String>,)> = self
            .rows(&self.statements.select_agent_email, (tenant.0, agent.0))
            .await?;
        let Some((Some(email),)) = rows.into_iter().next() else {
            return Ok(None);
        };
        let found = self.credentials_by_email(&email).await?;
        Ok(found.filter(|c| c.tenant_id == tenant && c.agent_id == agent))
    }

    async fn put_grant(&self, token_sha256: [u8; 32], grant: &Grant) -> StoreResult<()> {
        let kind = serde_json::to_value(grant.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        observe(
            "put_grant",
            self.execute(
                &self.statements.insert_grant,
                (token_sha256.to_vec(), kind, to_json(grant)?, ttl_of(grant)),
            ),
        )
        .await
    }

    async fn spend_grant(
        &self,
        token_sha256: [u8; 32],
        expected: GrantKind,
        spent: &Grant,
    ) -> StoreResult<bool> {
        observe("spend_grant", async {
            let done: Vec<Row> = self
                .rows(
                    &self.statements.spend_grant,
                    (
                        ttl_of(spent),
                        spent.kind.as_str(),
                        to_json(spent)?,
                        token_sha256.to_vec(),
                        expected.as_str(),
                    ),
                )
                .await?;
            Ok(applied(&done))
        })
        .await
    }

    async fn grant(&self, token_sha256: [u8; 32]) -> StoreResult<Option<Grant>> {
        observe(
            "grant",
            self.body(&self.statements.select_grant, (token_sha256.to_vec(),)),
        )
        .await
    }

    async fn remove_grants(&self, tokens_sha256: &[[u8; 32]]) -> StoreResult<()> {
        observe("remove_grants", async {
            for token in tokens_sha256 {
                self.execute(&self.statements.delete_grant, (token.to_vec(),))
                    .await?;
                // A token issued before grants existed has only its `agent_tokens` row.
                self.execute(&self.statements.delete_agent_token, (token.to_vec(),))
                    .await?;
            }
            Ok(())
        })
        .await
    }

    async fn put_session(&self, session: &Session) -> StoreResult<()> {
        observe(
            "put_session",
            self.execute(
                &self.statements.insert_session,
                (
                    session.tenant_id.0,
                    session.agent_id.0,
                    session.id,
                    to_json(session)?,
                ),
            ),
        )
        .await
    }

    async fn session(
        &self,
        tenant: TenantId,
        agent: AgentId,
        id: Uuid,
    ) -> StoreResult<Option<Session>> {
        observe(
            "session",
            self.body(&self.statements.select_session, (tenant.0, agent.0, id)),
        )
        .await
    }

    async fn sessions(&self, tenant: TenantId, agent: AgentId) -> StoreResult<Vec<Session>> {
        observe(
            "sessions",
            self.bodies(&self.statements.select_sessions, (tenant.0, agent.0)),
        )
        .await
    }

    async fn remove_session(&self, tenant: TenantId, agent: AgentId, id: Uuid) -> StoreResult<()> {
        observe(
            "remove_session",
            self.execute(&self.statements.delete_session, (tenant.0, agent.0, id)),
        )
        .await
    }
}
