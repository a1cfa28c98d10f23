//! The embedded store's accounts, connections and departments: tenants, agents with their token
//! index, connections with the provider addresses they own, departments by key. Writes go through the
//! committer like turns.

use super::commit::Write;
use super::{EmbeddedStore, address_key, collect, get, unavailable};
use crate::storage::keys;
use async_trait::async_trait;
use schema::permission::RolePermissions;
use schema::records::{Agent, Connection, Department, Provider, Tenant};
use schema::store::{AccountStore, ConnectionStore, DepartmentStore, StoreResult};
use schema::{AgentId, ConnectionId, TenantId};

#[async_trait]
impl AccountStore for EmbeddedStore {
    async fn create_tenant(&self, tenant: &Tenant) -> StoreResult<()> {
        self.write(Write::Tenant(tenant.clone())).await
    }

    async fn tenant(&self, id: TenantId) -> StoreResult<Option<Tenant>> {
        self.read("tenant", move |t| get(&t.tenants, id.as_bytes()))
            .await
    }

    async fn tenants(&self, after: Option<TenantId>, limit: usize) -> StoreResult<Vec<Tenant>> {
        self.read("tenants", move |t| match after {
            Some(after) => {
                let start = keys::successor(after.as_bytes());
                collect(t.tenants.range(start..).take(limit))
            }
            None => collect(t.tenants.iter().take(limit)),
        })
        .await
    }

    async fn create_agent(&self, agent: &Agent, token_sha256: [u8; 32]) -> StoreResult<()> {
        self.write(Write::Agent(agent.clone(), token_sha256)).await
    }

    async fn agent_by_token(&self, token_sha256: [u8; 32]) -> StoreResult<Option<Agent>> {
        self.read("agent_by_token", move |t| get(&t.tokens, token_sha256))
            .await
    }

    async fn agent(&self, tenant: TenantId, id: AgentId) -> StoreResult<Option<Agent>> {
        let agent: Option<Agent> = self
            .read("agent", move |t| get(&t.agents, id.as_bytes()))
            .await?;
        Ok(agent.filter(|a| a.tenant_id == tenant))
    }

    async fn update_agent(&self, agent: &Agent) -> StoreResult<bool> {
        if self.agent(agent.tenant_id, agent.id).await?.is_none() {
            return Ok(false);
        }
        let value = super::encode(agent)?;
        self.write(Write::Put("agents", agent.id.as_bytes().to_vec(), value))
            .await?;
        Ok(true)
    }

    async fn agents(&self, tenant: TenantId, limit: usize) -> StoreResult<Vec<Agent>> {
        // Agents are keyed by id alone: a scan of every agent, fine at the embedded store's scale.
        self.read("agents", move |t| {
            let all: Vec<Agent> = collect(t.agents.iter())?;
            Ok(all
                .into_iter()
                .filter(|a| a.tenant_id == tenant)
                .take(limit)
                .collect())
        })
        .await
    }

    async fn role_permissions(&self, tenant: TenantId) -> StoreResult<Option<RolePermissions>> {
        self.read("role_permissions", move |t| {
            get(&t.role_permissions, tenant.as_bytes())
        })
        .await
    }

    async fn put_role_permissions(
        &self,
        tenant: TenantId,
        permissions: &RolePermissions,
    ) -> StoreResult<()> {
        let value = super::encode(permissions)?;
        self.write(Write::Put(
            "role_permissions",
            tenant.as_bytes().to_vec(),
            value,
        ))
        .await
    }
}

#[async_trait]
impl ConnectionStore for EmbeddedStore {
    async fn create_connection(&self, connection: &Connection) -> StoreResult<()> {
        let sealed = self.secrets.seal_connection(connection)?;
        self.write(Write::Connection(sealed)).await
    }

    async fn connection(&self, id: ConnectionId) -> StoreResult<Option<Connection>> {
        let stored: Option<Connection> = self
            .read("connection", move |t| get(&t.connections, id.as_bytes()))
            .await?;
        stored.map(|c| self.secrets.open_connection(c)).transpose()
    }

    async fn update_connection(&self, connection: &Connection) -> StoreResult<()> {
        let sealed = self.secrets.seal_connection(connection)?;
        self.write(Write::UpdateConnection(sealed)).await
    }

    async fn remove_connection(&self, connection: &Connection) -> StoreResult<()> {
        self.write(Write::RemoveConnection(connection.clone()))
            .await
    }

    async fn connections(&self, tenant: TenantId) -> StoreResult<Vec<Connection>> {
        let stored: Vec<Connection> = self
            .read("connections", move |t| {
                let mut out = Vec::new();
                for entry in t.tenant_connections.prefix(tenant.as_bytes()) {
                    let key = entry.key().map_err(unavailable)?;
                    let Some(id) = key.get(16..32) else { continue };
                    if let Some(connection) = get::<Connection>(&t.connections, id)? {
                        out.push(connection);
                    }
                }
                Ok(out)
            })
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
        let address = address_key(provider, address);
        let stored: Option<Connection> = self
            .read("connection_by_address", move |t| {
                match t.connection_addresses.get(&address).map_err(unavailable)? {
                    Some(id) => get(&t.connections, &id),
                    None => Ok(None),
                }
            })
            .await?;
        stored.map(|c| self.secrets.open_connection(c)).transpose()
    }
}

#[async_trait]
impl DepartmentStore for EmbeddedStore {
    async fn create_department(&self, department: &Department) -> StoreResult<()> {
        self.write(Write::CreateDepartment(department.clone()))
            .await
    }

    async fn put_department(&self, department: &Department) -> StoreResult<()> {
        self.write(Write::Department(department.clone())).await
    }

    async fn department(&self, tenant: TenantId, key: &str) -> StoreResult<Option<Department>> {
        let key = keys::counter(tenant, key);
        self.read_point("department", move |t| get(&t.departments, key))
    }

    async fn departments(&self, tenant: TenantId) -> StoreResult<Vec<Department>> {
        self.read("departments", move |t| {
            collect(t.departments.prefix(tenant.as_bytes()))
        })
        .await
    }

    async fn remove_department(&self, tenant: TenantId, key: &str) -> StoreResult<()> {
        self.write(Write::RemoveDepartment(tenant, key.to_owned()))
            .await
    }
}
