//! CQL tenancy records (migration 0013): plans in one small partition, accounts and flags one row per
//! tenant, usage one row per meter in the tenant's month partition. A meter's flusher writes its row
//! one write at a time, so its figure only grows.

use super::{ScyllaStore, limit_to_db};
use crate::storage::codec::to_json;
use crate::storage::observe;
use async_trait::async_trait;
use schema::TenantId;
use schema::features::FeatureFlags;
use schema::mail::SmtpAccount;
use schema::store::{StoreResult, TenancyStore};
use schema::tenancy::{MAX_PLANS_READ, MeteredUsage, Plan, TenantAccount};
use uuid::Uuid;

fn column(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[async_trait]
impl TenancyStore for ScyllaStore {
    async fn plans(&self) -> StoreResult<Vec<Plan>> {
        observe(
            "plans",
            self.bodies(
                &self.statements.select_plans,
                (limit_to_db(MAX_PLANS_READ),),
            ),
        )
        .await
    }

    async fn put_plan(&self, plan: &Plan) -> StoreResult<()> {
        observe(
            "put_plan",
            self.execute(
                &self.statements.insert_plan,
                (plan.name.as_str(), to_json(plan)?),
            ),
        )
        .await
    }

    async fn tenant_account(&self, tenant: TenantId) -> StoreResult<Option<TenantAccount>> {
        observe(
            "tenant_account",
            self.body(&self.statements.select_tenant_account, (tenant.0,)),
        )
        .await
    }

    async fn put_tenant_account(&self, account: &TenantAccount) -> StoreResult<()> {
        observe(
            "put_tenant_account",
            self.execute(
                &self.statements.insert_tenant_account,
                (account.tenant_id.0, to_json(account)?),
            ),
        )
        .await
    }

    async fn feature_flags(&self, tenant: TenantId) -> StoreResult<Option<FeatureFlags>> {
        observe(
            "feature_flags",
            self.body(&self.statements.select_feature_flags, (tenant.0,)),
        )
        .await
    }

    async fn put_feature_flags(&self, tenant: TenantId, flags: &FeatureFlags) -> StoreResult<()> {
        observe(
            "put_feature_flags",
            self.execute(
                &self.statements.insert_feature_flags,
                (tenant.0, to_json(flags)?),
            ),
        )
        .await
    }

    async fn smtp_account(&self, tenant: TenantId) -> StoreResult<Option<SmtpAccount>> {
        let stored: Option<SmtpAccount> = observe(
            "smtp_account",
            self.body(&self.statements.select_smtp_account, (tenant.0,)),
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
                Some(account) => {
                    let sealed = to_json(&self.secrets.seal_smtp(account)?)?;
                    self.execute(&self.statements.insert_smtp_account, (tenant.0, sealed))
                        .await
                }
                None => {
                    self.execute(&self.statements.delete_smtp_account, (tenant.0,))
                        .await
                }
            }
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
        observe(
            "put_usage",
            self.execute(
                &self.statements.insert_usage,
                (
                    tenant.0,
                    month,
                    meter,
                    column(usage.conversations),
                    column(usage.messages),
                ),
            ),
        )
        .await
    }

    async fn usage(&self, tenant: TenantId, month: i32) -> StoreResult<MeteredUsage> {
        observe("usage", async {
            let rows: Vec<(Option<i64>, Option<i64>)> = self
                .rows(&self.statements.select_usage, (tenant.0, month))
                .await?;
            let mut total = MeteredUsage::default();
            for (conversations, messages) in rows {
                total += MeteredUsage {
                    conversations: u64::try_from(conversations.unwrap_or(0)).unwrap_or(0),
                    messages: u64::try_from(messages.unwrap_or(0)).unwrap_or(0),
                };
            }
            Ok(total)
        })
        .await
    }
}
