//! PostgreSQL tenancy records (migration 0014): plans, accounts and flags stored whole as JSON, usage
//! one row per tenant, month and meter (each meter writes only its own row).

use super::{PostgresStore, db_error};
use crate::storage::codec::{from_json, to_json};
use crate::storage::observe;
use async_trait::async_trait;
use schema::TenantId;
use schema::features::FeatureFlags;
use schema::mail::SmtpAccount;
use schema::store::{StoreResult, TenancyStore};
use schema::tenancy::{MAX_PLANS_READ, MeteredUsage, Plan, TenantAccount};
use uuid::Uuid;

fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn column(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[async_trait]
impl TenancyStore for PostgresStore {
    async fn plans(&self) -> StoreResult<Vec<Plan>> {
        observe("plans", async {
            let bodies: Vec<String> =
                sqlx::query_scalar("SELECT body::text FROM plans ORDER BY name LIMIT $1")
                    .bind(column(MAX_PLANS_READ as u64))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_error)?;
            bodies.iter().map(|b| from_json(b)).collect()
        })
        .await
    }

    async fn put_plan(&self, plan: &Plan) -> StoreResult<()> {
        observe("put_plan", async {
            sqlx::query(
                "INSERT INTO plans (name, body) VALUES ($1, $2::json) \
                 ON CONFLICT (name) DO UPDATE SET body = EXCLUDED.body",
            )
            .bind(&plan.name)
            .bind(to_json(plan)?)
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(db_error)
        })
        .await
    }

    async fn tenant_account(&self, tenant: TenantId) -> StoreResult<Option<TenantAccount>> {
        observe(
            "tenant_account",
            self.body(
                sqlx::query_scalar("SELECT body::text FROM tenant_accounts WHERE tenant_id = $1")
                    .bind(tenant.0),
            ),
        )
        .await
    }

    async fn put_tenant_account(&self, account: &TenantAccount) -> StoreResult<()> {
        observe("put_tenant_account", async {
            sqlx::query(
                "INSERT INTO tenant_accounts (tenant_id, body) VALUES ($1, $2::json) \
                 ON CONFLICT (tenant_id) DO UPDATE SET body = EXCLUDED.body",
            )
            .bind(account.tenant_id.0)
            .bind(to_json(account)?)
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(db_error)
        })
        .await
    }

    async fn feature_flags(&self, tenant: TenantId) -> StoreResult<Option<FeatureFlags>> {
        observe(
            "feature_flags",
            self.body(
                sqlx::query_scalar("SELECT body::text FROM feature_flags WHERE tenant_id = $1")
                    .bind(tenant.0),
            ),
        )
        .await
    }

    async fn put_feature_flags(&self, tenant: TenantId, flags: &FeatureFlags) -> StoreResult<()> {
        observe("put_feature_flags", async {
            sqlx::query(
                "INSERT INTO feature_flags (tenant_id, body) VALUES ($1, $2::json) \
                 ON CONFLICT (tenant_id) DO UPDATE SET body = EXCLUDED.body",
            )
            .bind(tenant.0)
            .bind(to_json(flags)?)
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(db_error)
        })
        .await
    }

    async fn smtp_account(&self, tenant: TenantId) -> StoreResult<Option<SmtpAccount>> {
        let stored: Option<SmtpAccount> = observe(
            "smtp_account",
            self.body(
                sqlx::query_scalar("SELECT body::text FROM smtp_accounts WHERE tenant_id = $1")
                    .bind(tenant.0),
            ),
        )
        .await?;
        stored.map(|a| self.secrets.open_smtp(a)).transpose()
    }

    async fn put_smtp_account(
        &self,
        tenant: TenantId,
        account: Option<&SmtpAccount>,
    ) -> StoreResult<()> {
        observe("put_smtp_account", async {
            match account {
                Some(account) => sqlx::query(
                    "INSERT INTO smtp_accounts (tenant_id, body) VALUES ($1, $2::json) \
                     ON CONFLICT (tenant_id) DO UPDATE SET body = EXCLUDED.body",
                )
                .bind(tenant.0)
                .bind(to_json(&self.secrets.seal_smtp(account)?)?),
                None => {
                    sqlx::query("DELETE FROM smtp_accounts WHERE tenant_id = $1").bind(tenant.0)
                }
            }
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(db_error)
        })
        .await
    }

    async fn put_usage(
        &self,
        tenant: TenantId,
        month: i32,
        meter: Uuid,
        usage: &MeteredUsage,
    ) -> StoreResult<()> {
        observe("put_usage", async {
            // A meter's figure only grows: GREATEST keeps a late retry from lowering it.
            sqlx::query(
                "INSERT INTO usage (tenant_id, month, meter, conversations, messages) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, month, meter) DO UPDATE SET \
                 conversations = GREATEST(usage.conversations, EXCLUDED.conversations), \
                 messages = GREATEST(usage.messages, EXCLUDED.messages)",
            )
            .bind(tenant.0)
            .bind(month)
            .bind(meter)
            .bind(column(usage.conversations))
            .bind(column(usage.messages))
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(db_error)
        })
        .await
    }

    async fn usage(&self, tenant: TenantId, month: i32) -> StoreResult<MeteredUsage> {
        observe("usage", async {
            let (conversations, messages): (Option<i64>, Option<i64>) = sqlx::query_as(
                "SELECT sum(conversations)::bigint, sum(messages)::bigint FROM usage \
                 WHERE tenant_id = $1 AND month = $2",
            )
            .bind(tenant.0)
            .bind(month)
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)?;
            Ok(MeteredUsage {
                conversations: count(conversations.unwrap_or(0)),
                messages: count(messages.unwrap_or(0)),
            })
        })
        .await
    }
}
