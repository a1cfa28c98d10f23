//! PostgreSQL accounts, connections and departments: tenants, agents with their token hashes,
//! connections with the provider address each owns (a unique constraint), departments by key.

use super::{PostgresStore, db_error};
use crate::storage::codec::{from_json, to_json};
use crate::storage::observe;
use async_trait::async_trait;
use schema::permission::RolePermissions;
use schema::records::{Agent, Connection, Department, Provider, Tenant};
use schema::store::{AccountStore, ConnectionStore, DepartmentStore, StoreError, StoreResult};
use schema::{AgentId, ConnectionId, TenantId};

#[async_trait]
impl AccountStore for PostgresStore {
    async fn create_tenant(&self, tenant: &Tenant) -> StoreResult<()> {
        observe("create_tenant", async {
            sqlx::query(
                "INSERT INTO tenants (tenant_id, body) VALUES ($1, $2::json) \
                 ON CONFLICT (tenant_id) DO UPDATE SET body = EXCLUDED.body",
            )
            .bind(tenant.id.0)
            .bind(to_json(tenant)?)
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(db_error)
        })
        .await
    }

    async fn tenant(&self, id: TenantId) -> StoreResult<Option<Tenant>> {
        observe(
            "tenant",
            self.body(
                sqlx::query_scalar("SELECT body::text FROM tenants WHERE tenant_id = $1")
                    .bind(id.0),
            ),
        )
        .await
    }

    async fn tenants(&self, after: Option<TenantId>, limit: usize) -> StoreResult<Vec<Tenant>> {
        observe("tenants", async {
            let bodies: Vec<String> = sqlx::query_scalar(
                "SELECT body::text FROM tenants WHERE $1::uuid IS NULL OR tenant_id > $1 \
                 ORDER BY tenant_id LIMIT $2",
            )
            .bind(after.map(|t| t.0))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
            bodies.iter().map(|b| from_json(b)).collect()
        })
        .await
    }

    async fn create_agent(&self, agent: &Agent, token_sha256: [u8; 32]) -> StoreResult<()> {
        observe("create_agent", async {
            let mut tx = self.pool.begin().await.map_err(db_error)?;
            sqlx::query(
                "INSERT INTO agents (agent_id, tenant_id, body) VALUES ($1, $2, $3::json) \
                 ON CONFLICT (agent_id) DO UPDATE SET body = EXCLUDED.body",
            )
            .bind(agent.id.0)
            .bind(agent.tenant_id.0)
            .bind(to_json(agent)?)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
            sqlx::query(
                "INSERT INTO agent_tokens (token_sha256, agent_id, tenant_id) VALUES ($1, $2, $3)",
            )
            .bind(&token_sha256[..])
            .bind(agent.id.0)
            .bind(agent.tenant_id.0)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
            tx.commit().await.map_err(db_error)
        })
        .await
    }

    async fn update_agent(&self, agent: &Agent) -> StoreResult<bool> {
        observe("update_agent", async {
            let done = sqlx::query(
                "UPDATE agents SET body = $3::json WHERE agent_id = $1 AND tenant_id = $2",
            )
            .bind(agent.id.0)
            .bind(agent.tenant_id.0)
            .bind(to_json(agent)?)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
            Ok(done.rows_affected() == 1)
        })
        .await
    }

    async fn agent_by_token(&self, token_sha256: [u8; 32]) -> StoreResult<Option<Agent>> {
        observe(
            "agent_by_token",
            self.body(
                sqlx::query_scalar(
                    "SELECT a.body::text FROM agent_tokens t JOIN agents a \
                     ON a.agent_id = t.agent_id AND a.tenant_id = t.tenant_id \
                     WHERE t.token_sha256 = $1",
                )
                .bind(token_sha256.to_vec()),
            ),
        )
        .await
    }

    async fn agent(&self, tenant: TenantId, id: AgentId) -> StoreResult<Option<Agent>> {
        observe(
            "agent",
            self.body(
                sqlx::query_scalar(
                    "SELECT body::text FROM agents WHERE agent_id = $1 AND tenant_id = $2",
                )
                .bind(id.0)
                .bind(tenant.0),
            ),
        )
        .await
    }

    async fn agents(&self, tenant: TenantId, limit: usize) -> StoreResult<Vec<Agent>> {
        observe("agents", async {
            let bodies: Vec<String> =
                sqlx::query_scalar("SELECT body::text FROM agents WHERE tenant_id = $1 LIMIT $2")
                    .bind(tenant.0)
                    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_error)?;
            bodies.iter().map(|b| from_json(b)).collect()
        })
        .await
    }

    async fn role_permissions(&self, tenant: TenantId) -> StoreResult<Option<RolePermissions>> {
        observe(
            "role_permissions",
            self.body(
                sqlx::query_scalar("SELECT body::text FROM role_permissions WHERE tenant_id = $1")
                    .bind(tenant.0),
            ),
        )
        .await
    }

    async fn put_role_permissions(
        &self,
        tenant: TenantId,
        permissions: &RolePermissions,
    ) -> StoreResult<()> {
        observe("put_role_permissions", async {
            sqlx::query(
                "INSERT INTO role_permissions (tenant_id, body) VALUES ($1, $2::json) \
                 ON CONFLICT (tenant_id) DO UPDATE SET body = EXCLUDED.body",
            )
            .bind(tenant.0)
            .bind(to_json(permissions)?)
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(db_error)
        })
        .await
    }
}

#[async_trait]
impl ConnectionStore for PostgresStore {
    async fn create_connection(&self, connection: &Connection) -> StoreResult<()> {
        observe("create_connection", async {
            let sealed = self.secrets.seal_connection(connection)?;
            sqlx::query(
                "INSERT INTO connections (connection_id, tenant_id, provider, address, body) \
                 VALUES ($1, $2, $3, $4, $5::json)",
            )
            .bind(connection.id.0)
            .bind(connection.tenant_id.0)
            .bind(connection.provider.as_str())
            .bind(connection.claim_key())
            .bind(to_json(&sealed)?)
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(|e| match db_error(e) {
                StoreError::Conflict(_) => StoreError::Conflict(format!(
                    "phone_number_id {} already belongs to a connection",
                    connection.address()
                )),
                other => other,
            })
        })
        .await
    }

    async fn connection(&self, id: ConnectionId) -> StoreResult<Option<Connection>> {
        let stored: Option<Connection> = observe(
            "connection",
            self.body(
                sqlx::query_scalar("SELECT body::text FROM connections WHERE connection_id = $1")
                    .bind(id.0),
            ),
        )
        .await?;
        stored.map(|c| self.secrets.open_connection(c)).transpose()
    }

    async fn update_connection(&self, connection: &Connection) -> StoreResult<()> {
        observe("update_connection", async {
            let sealed = self.secrets.seal_connection(connection)?;
            let mut next = sealed;
            next.version = connection.version + 1;
            // One statement: the version it read must still be the stored one.
            let done = sqlx::query(
                "UPDATE connections SET body = $3::json WHERE connection_id = $1 AND tenant_id = $2 \
                 AND COALESCE((body->>'version')::bigint, 0) = $4",
            )
            .bind(connection.id.0)
            .bind(connection.tenant_id.0)
            .bind(to_json(&next)?)
            .bind(i64::try_from(connection.version).unwrap_or(i64::MAX))
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
            if done.rows_affected() == 0 {
                return Err(StoreError::Conflict(format!(
                    "connection {} was removed or changed meanwhile",
                    connection.id
                )));
            }
            Ok(())
        })
        .await
    }

    async fn remove_connection(&self, connection: &Connection) -> StoreResult<()> {
        observe("remove_connection", async {
            sqlx::query("DELETE FROM connections WHERE connection_id = $1 AND tenant_id = $2")
                .bind(connection.id.0)
                .bind(connection.tenant_id.0)
                .execute(&self.pool)
                .await
                .map(drop)
                .map_err(db_error)
        })
        .await
    }

    async fn connections(&self, tenant: TenantId) -> StoreResult<Vec<Connection>> {
        let stored: Vec<Connection> = observe(
            "connections",
            self.bodies(
                sqlx::query_scalar(
                    "SELECT body::text FROM connections WHERE tenant_id = $1 ORDER BY connection_id",
                )
                .bind(tenant.0),
            ),
        )
        .await?;
        stored
            .into_iter()
            .map(|c| self.secrets.open_connection(c))
            .collect()
    }

    async fn connection_by_address(
        &self,
        provider: Provider,
        address: &str,
    ) -> StoreResult<Option<Connection>> {
        let stored: Option<Connection> = observe(
            "connection_by_address",
            self.body(
                sqlx::query_scalar(
                    "SELECT body::text FROM connections WHERE provider = $1 AND address = $2",
                )
                .bind(provider.as_str())
                .bind(address),
            ),
        )
        .await?;
        stored.map(|c| self.secrets.open_connection(c)).transpose()
    }
}

#[async_trait]
impl DepartmentStore for PostgresStore {
    async fn create_department(&self, department: &Department) -> StoreResult<()> {
        observe("create_department", async {
            let done = sqlx::query(
                "INSERT INTO departments (tenant_id, key, body) VALUES ($1, $2, $3::json) \
                 ON CONFLICT (tenant_id, key) DO NOTHING",
            )
            .bind(department.tenant_id.0)
            .bind(&department.key)
            .bind(to_json(department)?)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
            if done.rows_affected() == 0 {
                return Err(StoreError::Conflict(format!(
                    "department {} exists",
                    department.key
                )));
            }
            Ok(())
        })
        .await
    }

    async fn put_department(&self, department: &Department) -> StoreResult<()> {
        observe("put_department", async {
            sqlx::query(
                "INSERT INTO departments (tenant_id, key, body) VALUES ($1, $2, $3::json) \
                 ON CONFLICT (tenant_id, key) DO UPDATE SET body = EXCLUDED.body",
            )
            .bind(department.tenant_id.0)
            .bind(&department.key)
            .bind(to_json(department)?)
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(db_error)
        })
        .await
    }

    async fn department(&self, tenant: TenantId, key: &str) -> StoreResult<Option<Department>> {
        observe(
            "department",
            self.body(
                sqlx::query_scalar(
                    "SELECT body::text FROM departments WHERE tenant_id = $1 AND key = $2",
                )
                .bind(tenant.0)
                .bind(key.to_owned()),
            ),
        )
        .await
    }

    async fn departments(&self, tenant: TenantId) -> StoreResult<Vec<Department>> {
        observe(
            "departments",
            self.bodies(
                sqlx::query_scalar(
                    "SELECT body::text FROM departments WHERE tenant_id = $1 ORDER BY key",
                )
                .bind(tenant.0),
            ),
        )
        .await
    }

    async fn remove_department(&self, tenant: TenantId, key: &str) -> StoreResult<()> {
        observe("remove_department", async {
            sqlx::query("DELETE FROM departments WHERE tenant_id = $1 AND key = $2")
                .bind(tenant.0)
                .bind(key)
                .execute(&self.pool)
                .await
                .map(drop)
                .map_err(db_error)
        })
        .await
    }
}
