//! The embedded store's tenancy records: `plans` (name → plan), `tenant_accounts` and
//! `feature_flags` and `smtp_accounts` (tenant → record, the SMTP password sealed), and `usage` (`tenant | month | meter` → figure), each written
//! whole through the committer.

use super::commit::Write;
use super::{EmbeddedStore, collect, encode, get};
use async_trait::async_trait;
use schema::TenantId;
use schema::features::FeatureFlags;
use schema::mail::SmtpAccount;
use schema::store::{StoreResult, TenancyStore};
use schema::tenancy::{MeteredUsage, Plan, TenantAccount};
use uuid::Uuid;

fn month_prefix(tenant: TenantId, month: i32) -> Vec<u8> {
    let mut key = tenant.as_bytes().to_vec();
    key.extend_from_slice(&month.to_be_bytes());
    key
}

#[async_trait]
impl TenancyStore for EmbeddedStore {
    async fn plans(&self) -> StoreResult<Vec<Plan>> {
        self.read("plans", |t| collect(t.plans.iter())).await
    }

    async fn put_plan(&self, plan: &Plan) -> StoreResult<()> {
        let key = plan.name.as_bytes().to_vec();
        self.write(Write::Put("plans", key, encode(plan)?)).await
    }

    async fn tenant_account(&self, tenant: TenantId) -> StoreResult<Option<TenantAccount>> {
        self.read("tenant_account", move |t| {
            get(&t.tenant_accounts, tenant.as_bytes())
        })
        .await
    }

    async fn put_tenant_account(&self, account: &TenantAccount) -> StoreResult<()> {
        let key = account.tenant_id.as_bytes().to_vec();
        self.write(Write::Put("tenant_accounts", key, encode(account)?))
            .await
    }

    async fn feature_flags(&self, tenant: TenantId) -> StoreResult<Option<FeatureFlags>> {
        self.read_point("feature_flags", move |t| {
            get(&t.feature_flags, tenant.as_bytes())
        })
    }

    async fn put_feature_flags(&self, tenant: TenantId, flags: &FeatureFlags) -> StoreResult<()> {
        let key = tenant.as_bytes().to_vec();
        self.write(Write::Put("feature_flags", key, encode(flags)?))
            .await
    }

    async fn smtp_account(&self, tenant: TenantId) -> StoreResult<Option<SmtpAccount>> {
        let stored: Option<SmtpAccount> = self
            .read("smtp_account", move |t| {
                get(&t.smtp_accounts, tenant.as_bytes())
            })
            .await?;
        stored.map(|a| self.secrets.open_smtp(a)).transpose()
    }

    async fn put_smtp_account(
        &self,
        tenant: TenantId,
        account: Option<&SmtpAccount>,
    ) -> StoreResult<()> {
        let key = tenant.as_bytes().to_vec();
        match account {
            Some(account) => {
                let sealed = self.secrets.seal_smtp(account)?;
                self.write(Write::Put("smtp_accounts", key, encode(&sealed)?))
                    .await
            }
            None => self.write(Write::Remove("smtp_accounts", key)).await,
        }
    }

    async fn put_usage(
        &self,
        tenant: TenantId,
        month: i32,
        meter: Uuid,
        usage: &MeteredUsage,
    ) -> StoreResult<()> {
        let mut key = month_prefix(tenant, month);
        key.extend_from_slice(meter.as_bytes());
        self.write(Write::Put("usage", key, encode(usage)?)).await
    }

    async fn usage(&self, tenant: TenantId, month: i32) -> StoreResult<MeteredUsage> {
        self.read("usage", move |t| {
            let meters: Vec<MeteredUsage> = collect(t.usage.prefix(month_prefix(tenant, month)))?;
            let mut total = MeteredUsage::default();
            for meter in meters {
                total += meter;
            }
            Ok(total)
        })
        .await
    }
}
