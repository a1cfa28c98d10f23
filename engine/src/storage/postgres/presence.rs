//! PostgreSQL presence (migration 0007): one row per connected agent.

use super::{PostgresStore, db_error};
use crate::storage::codec::to_json;
use crate::storage::observe;
use async_trait::async_trait;
use schema::presence::Presence;
use schema::store::{PresenceStore, StoreResult};
use schema::{AgentId, TenantId};

#[async_trait]
impl PresenceStore for PostgresStore {
    async fn put_presence(&self, tenant: TenantId, presence: &Presence) -> StoreResult<()> {
        observe("put_presence", async {
            sqlx::query(
                "INSERT INTO presence (tenant_id, agent_id, body) VALUES ($1, $2, $3::json) \
                 ON CONFLICT (tenant_id, agent_id) DO UPDATE SET body = EXCLUDED.body",
            )
            .bind(tenant.0)
            .bind(presence.agent.0)
            .bind(to_json(presence)?)
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(db_error)
        })
        .await
    }

    async fn remove_presence(&self, tenant: TenantId, agent: AgentId) -> StoreResult<()> {
        observe("remove_presence", async {
            sqlx::query("DELETE FROM presence WHERE tenant_id = $1 AND agent_id = $2")
                .bind(tenant.0)
                .bind(agent.0)
                .execute(&self.pool)
                .await
                .map(drop)
                .map_err(db_error)
        })
        .await
    }

    async fn presence(&self, tenant: TenantId) -> StoreResult<Vec<Presence>> {
        observe(
            "presence",
            self.bodies(
                sqlx::query_scalar("SELECT body::text FROM presence WHERE tenant_id = $1")
                    .bind(tenant.0),
            ),
        )
        .await
    }
}
