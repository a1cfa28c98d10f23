//! CQL accounts, connections and departments: tenants, agents with their token index, connections
//! with the provider address each claims by a lightweight transaction, departments by key.

use super::{ScyllaStore, applied};
use crate::storage::codec::{from_json, to_json};
use crate::storage::observe;
use async_trait::async_trait;
use schema::permission::RolePermissions;
use schema::records::{Agent, Connection, Department, Provider, Tenant};
use schema::store::{AccountStore, ConnectionStore, DepartmentStore, StoreError, StoreResult};
use schema::{AgentId, ConnectionId, TenantId};
use scylla::value::Row;
use uuid::Uuid;

#[async_trait]
impl AccountStore for ScyllaStore {
    async fn create_tenant(&self, tenant: &Tenant) -> StoreResult<()> {
        observe("create_tenant", async {
            self.execute(
                &self.statements.insert_tenant,
                (tenant.id.0, to_json(tenant)?),
            )
            .await
        })
        .await
    }

    async fn tenant(&self, id: TenantId) -> StoreResult<Option<Tenant>> {
        observe("tenant", self.body(&self.statements.select_tenant, (id.0,))).await
    }

    async fn tenants(&self, after: Option<TenantId>, limit: usize) -> StoreResult<Vec<Tenant>> {
        observe("tenants", async {
            let limit = super::limit_to_db(limit);
            match after {
                Some(after) => {
                    self.bodies(&self.statements.select_tenants_after, (after.0, limit))
                        .await
                }
                None => self.bodies(&self.statements.select_tenants, (limit,)).await,
            }
        })
        .await
    }

    async fn create_agent(&self, agent: &Agent, token_sha256: [u8; 32]) -> StoreResult<()> {
        observe("create_agent", async {
            let body = to_json(agent)?;
            self.execute(
                &self.statements.insert_agent,
                (agent.id.0, agent.tenant_id.0, body.clone()),
            )
            .await?;
            self.execute(
                &self.statements.insert_tenant_agent,
                (agent.tenant_id.0, agent.id.0, body.clone()),
            )
            .await?;
            self.execute(
                &self.statements.insert_agent_token,
                (token_sha256.to_vec(), agent.id.0, agent.tenant_id.0, body),
            )
            .await
        })
        .await
    }

    async fn update_agent(&self, agent: &Agent) -> StoreResult<bool> {
        if self.agent(agent.tenant_id, agent.id).await?.is_none() {
            return Ok(false);
        }
        observe("update_agent", async {
            let body = to_json(agent)?;
            self.execute(
                &self.statements.insert_agent,
                (agent.id.0, agent.tenant_id.0, body.clone()),
            )
            .await?;
            self.execute(
                &self.statements.insert_tenant_agent,
                (agent.tenant_id.0, agent.id.0, body),
            )
            .await?;
            Ok(true)
        })
        .await
    }

    async fn agent_by_token(&self, token_sha256: [u8; 32]) -> StoreResult<Option<Agent>> {
        observe(
            "agent_by_token",
            self.body(
                &self.statements.select_agent_token,
                (token_sha256.to_vec(),),
            ),
        )
        .await
    }

    async fn agent(&self, tenant: TenantId, id: AgentId) -> StoreResult<Option<Agent>> {
        observe("agent", async {
            let rows: Vec<(Option<Uuid>, Option<String>)> =
                self.rows(&self.statements.select_agent, (id.0,)).await?;
            match rows.into_iter().next() {
                Some((Some(owner), Some(body))) if owner == tenant.0 => from_json(&body).map(Some),
                _ => Ok(None),
            }
        })
        .await
    }

    async fn agents(&self, tenant: TenantId, limit: usize) -> StoreResult<Vec<Agent>> {
        observe(
            "agents",
            self.bodies(
                &self.statements.select_tenant_agents,
                (tenant.0, super::limit_to_db(limit)),
            ),
        )
        .await
    }

    async fn role_permissions(&self, tenant: TenantId) -> StoreResult<Option<RolePermissions>> {
        observe(
            "role_permissions",
            self.body(&self.statements.select_role_permissions, (tenant.0,)),
        )
        .await
    }

    async fn put_role_permissions(
        &self,
        tenant: TenantId,
        permissions: &RolePermissions,
    ) -> StoreResult<()> {
        observe(
            "put_role_permissions",
            self.execute(
                &self.statements.insert_role_permissions,
                (tenant.0, to_json(permissions)?),
            ),
        )
        .await
    }
}

#[async_trait]
impl ConnectionStore for ScyllaStore {
    async fn create_connection(&self, connection: &Connection) -> StoreResult<()> {
        observe("create_connection", async {
            let s = &self.statements;
            let sealed = self.secrets.seal_connection(connection)?;
            let (provider, address) = (connection.provider.as_str(), connection.claim_key());
            let claim: Vec<Row> = self
                .rows(
                    &s.claim_address,
                    (provider, address.as_str(), connection.id.0),
                )
                .await?;
            if !applied(&claim) {
                return Err(StoreError::Conflict(format!(
                    "phone_number_id {address} already belongs to a connection"
                )));
            }
            let written = async {
                self.execute(
                    &s.insert_connection,
                    (connection.id.0, connection.tenant_id.0, to_json(&sealed)?),
                )
                .await?;
                self.execute(
                    &s.insert_tenant_connection,
                    (connection.tenant_id.0, connection.id.0),
                )
                .await
            }
            .await;
            if written.is_err() {
                // Give the address back so a retried create is not refused for a connection that
                // never came to exist.
                let _ = self
                    .rows::<Row>(&s.release_address, (provider, address, connection.id.0))
                    .await;
            }
            written
        })
        .await
    }

    async fn connection(&self, id: ConnectionId) -> StoreResult<Option<Connection>> {
        let stored: Option<Connection> = observe(
            "connection",
            self.body(&self.statements.select_connection, (id.0,)),
        )
        .await?;
        stored.map(|c| self.secrets.open_connection(c)).transpose()
    }

    async fn update_connection(&self, connection: &Connection) -> StoreResult<()> {
        observe("update_connection", async {
            let conflict = || {
                StoreError::Conflict(format!(
                    "connection {} was removed or changed meanwhile",
                    connection.id
                ))
            };
            // A compare-and-set on the stored body (admin and session-state path, never per
            // message): the body read must carry the version the update names, and the write
            // applies only if that body is still there: neither a removal nor another update is
            // overwritten.
            let stored: Vec<(String,)> = self
                .rows(&self.statements.select_connection, (connection.id.0,))
                .await?;
            let Some((stored_body,)) = stored.into_iter().next() else {
                return Err(conflict());
            };
            let stored_version = from_json::<Connection>(&stored_body)?.version;
            if stored_version != connection.version {
                return Err(conflict());
            }
            let mut next = self.secrets.seal_connection(connection)?;
            next.version = connection.version + 1;
            let done: Vec<Row> = self
                .rows(
                    &self.statements.update_connection,
                    (to_json(&next)?, connection.id.0, stored_body),
                )
                .await?;
            if applied(&done) {
                Ok(())
            } else {
                Err(conflict())
            }
        })
        .await
    }

    async fn remove_connection(&self, connection: &Connection) -> StoreResult<()> {
        observe("remove_connection", async {
            let s = &self.statements;
            self.execute(
                &s.delete_tenant_connection,
                (connection.tenant_id.0, connection.id.0),
            )
            .await?;
            self.execute(&s.delete_connection, (connection.id.0,))
                .await?;
            self.rows::<Row>(
                &s.release_address,
                (
                    connection.provider.as_str(),
                    connection.claim_key(),
                    connection.id.0,
                ),
            )
            .await
            .map(drop)
        })
        .await
    }

    async fn connections(&self, tenant: TenantId) -> StoreResult<Vec<Connection>> {
        let ids: Vec<(Uuid,)> = observe(
            "connections",
            self.rows(&self.statements.select_tenant_connections, (tenant.0,)),
        )
        .await?;
        let mut out = Vec::with_capacity(ids.len());
        for (id,) in ids {
            if let Some(connection) = self.connection(ConnectionId(id)).await?
                && connection.tenant_id == tenant
            {
                out.push(connection);
            }
        }
        Ok(out)
    }

    async fn connection_by_address(
        &self,
        provider: Provider,
        address: &str,
    ) -> StoreResult<Option<Connection>> {
        let ids: Vec<(Option<Uuid>,)> = observe(
            "connection_by_address",
            self.rows(
                &self.statements.select_address,
                (provider.as_str(), address),
            ),
        )
        .await?;
        match ids.into_iter().next().and_then(|(id,)| id) {
            Some(id) => self.connection(ConnectionId(id)).await,
            None => Ok(None),
        }
    }
}

#[async_trait]
impl DepartmentStore for ScyllaStore {
    async fn create_department(&self, department: &Department) -> StoreResult<()> {
        observe("create_department", async {
            let answer: Vec<Row> = self
                .rows(
                    &self.statements.create_department,
                    (
                        department.tenant_id.0,
                        department.key.clone(),
                        to_json(department)?,
                    ),
                )
                .await?;
            if !applied(&answer) {
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
            self.execute(
                &self.statements.insert_department,
                (
                    department.tenant_id.0,
                    department.key.clone(),
                    to_json(department)?,
                ),
            )
            .await
        })
        .await
    }

    async fn department(&self, tenant: TenantId, key: &str) -> StoreResult<Option<Department>> {
        observe(
            "department",
            self.body(&self.statements.select_department, (tenant.0, key)),
        )
        .await
    }

    async fn departments(&self, tenant: TenantId) -> StoreResult<Vec<Department>> {
        observe(
            "departments",
            self.bodies(&self.statements.select_departments, (tenant.0,)),
        )
        .await
    }

    async fn remove_department(&self, tenant: TenantId, key: &str) -> StoreResult<()> {
        observe(
            "remove_department",
            self.execute(&self.statements.delete_department, (tenant.0, key)),
        )
        .await
    }
}
