//! PostgreSQL sign-in records (migration 0011). Setting credentials is one transaction: the user's
//! other email is released and the new one claimed, refused when another user holds it.

use super::{PostgresStore, db_error};
use crate::storage::codec::{from_json, to_json};
use crate::storage::observe;
use async_trait::async_trait;
use schema::account::{Credentials, Grant, GrantKind, Session};
use schema::store::{CredentialStore, StoreError, StoreResult};
use schema::{AgentId, TenantId};
use uuid::Uuid;

#[async_trait]
impl CredentialStore for PostgresStore {
    async fn set_credentials(&self, credentials: &Credentials) -> StoreResult<()> {
        observe("set_credentials", async {
            let mut tx = self.pool.begin().await.map_err(db_error)?;
            sqlx::query(
                "DELETE FROM credentials WHERE tenant_id = $1 AND agent_id = $2 AND email <> $3",
            )
            .bind(credentials.tenant_id.0)
            .bind(credentials.agent_id.0)
            .bind(&credentials.email)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
            let done = sqlx::query(
                "INSERT INTO credentials (email, tenant_id, agent_id, body) VALUES ($1, $2, $3, $4::json) \
                 ON CONFLICT (email) DO UPDATE SET body = EXCLUDED.body \
                 WHERE credentials.tenant_id = EXCLUDED.tenant_id \
                 AND credentials.agent_id = EXCLUDED.agent_id",
            )
            .bind(&credentials.email)
            .bind(credentials.tenant_id.0)
            .bind(credentials.agent_id.0)
            .bind(to_json(credentials)?)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
            if done.rows_affected() == 0 {
                return Err(StoreError::Conflict(format!(
                    "email {} belongs to another user",
                    credentials.email
                )));
            }
            tx.commit().await.map_err(db_error)
        })
        .await
    }

    async fn credentials_by_email(&self, email: &str) -> StoreResult<Option<Credentials>> {
        observe(
            "credentials_by_email",
            self.body(
                sqlx::query_scalar("SELECT body::text FROM credentials WHERE email = $1")
                    .bind(email.to_string()),
            ),
        )
        .await
    }

    async fn credentials_of(
        &self,
        tenant: TenantId,
        agent: AgentId,
    ) -> StoreResult<Option<Credentials>> {
        observe(
            "credentials_of",
            self.body(
                sqlx::query_scalar(
                    "SELECT body::text FROM credentials WHERE tenant_id = $1 AND agent_id = $2",
                )
                .bind(tenant.0)
                .bind(agent.0),
            ),
        )
        .await
    }

    async fn put_grant(&self, token_sha256: [u8; 32], grant: &Grant) -> StoreResult<()> {
        observe("put_grant", async {
            sqlx::query(
                "INSERT INTO grants (token_sha256, body) VALUES ($1, $2::json) \
                 ON CONFLICT (token_sha256) DO UPDATE SET body = EXCLUDED.body",
            )
            .bind(token_sha256.to_vec())
            .bind(to_json(grant)?)
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(db_error)
        })
        .await
    }

    async fn grant(&self, token_sha256: [u8; 32]) -> StoreResult<Option<Grant>> {
        observe(
            "grant",
            self.body(
                sqlx::query_scalar("SELECT body::text FROM grants WHERE token_sha256 = $1")
                    .bind(token_sha256.to_vec()),
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
            let done = sqlx::query(
                "UPDATE grants SET body = $2::json WHERE token_sha256 = $1 \
                 AND body->>'kind' = $3",
            )
            .bind(token_sha256.to_vec())
            .bind(to_json(spent)?)
            .bind(expected.as_str())
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
            Ok(done.rows_affected() == 1)
        })
        .await
    }

    async fn remove_grants(&self, tokens_sha256: &[[u8; 32]]) -> StoreResult<()> {
        observe("remove_grants", async {
            let tokens: Vec<Vec<u8>> = tokens_sha256.iter().map(|t| t.to_vec()).collect();
            // A token issued before grants existed has only its `agent_tokens` row.
            sqlx::query(
                "WITH legacy AS (DELETE FROM agent_tokens WHERE token_sha256 = ANY($1)) \
                 DELETE FROM grants WHERE token_sha256 = ANY($1)",
            )
            .bind(tokens)
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(db_error)
        })
        .await
    }

    async fn put_session(&self, session: &Session) -> StoreResult<()> {
        observe("put_session", async {
            sqlx::query(
                "INSERT INTO sessions (tenant_id, agent_id, id, body) VALUES ($1, $2, $3, $4::json) \
                 ON CONFLICT (tenant_id, agent_id, id) DO UPDATE SET body = EXCLUDED.body",
            )
            .bind(session.tenant_id.0)
            .bind(session.agent_id.0)
            .bind(session.id)
            .bind(to_json(session)?)
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(db_error)
        })
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
            self.body(
                sqlx::query_scalar(
                    "SELECT body::text FROM sessions WHERE tenant_id = $1 AND agent_id = $2 AND id = $3",
                )
                .bind(tenant.0)
                .bind(agent.0)
                .bind(id),
            ),
        )
        .await
    }

    async fn sessions(&self, tenant: TenantId, agent: AgentId) -> StoreResult<Vec<Session>> {
        observe("sessions", async {
            let bodies: Vec<String> = sqlx::query_scalar(
                "SELECT body::text FROM sessions WHERE tenant_id = $1 AND agent_id = $2",
            )
            .bind(tenant.0)
            .bind(agent.0)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
            bodies.iter().map(|b| from_json(b)).collect()
        })
        .await
    }

    async fn remove_session(&self, tenant: TenantId, agent: AgentId, id: Uuid) -> StoreResult<()> {
        observe("remove_session", async {
            sqlx::query("DELETE FROM sessions WHERE tenant_id = $1 AND agent_id = $2 AND id = $3")
                .bind(tenant.0)
                .bind(agent.0)
                .bind(id)
                .execute(&self.pool)
                .await
                .map(drop)
                .map_err(db_error)
        })
        .await
    }
}
