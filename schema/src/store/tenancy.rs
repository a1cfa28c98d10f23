//! The tenancy aggregate: the platform's plans, each tenant's account (plan, suspension), feature
//! flags and SMTP account (its password sealed), and metered usage per tenant, month and meter (a node process counts its own and writes
//! only its own row, so meters never contend).

use super::StoreResult;
use crate::features::FeatureFlags;
use crate::ids::TenantId;
use crate::tenancy::{MeteredUsage, Plan, TenantAccount};
use async_trait::async_trait;
use uuid::Uuid;

/// Plans, accounts, flags and usage.
#[async_trait]
pub trait TenancyStore: Send + Sync + 'static {
    /// Every stored plan (at most `tenancy::MAX_PLANS_READ`; the gateway keeps to `MAX_PLANS`).
    async fn plans(&self) -> StoreResult<Vec<Plan>>;
    /// Creates or replaces a plan.
    async fn put_plan(&self, plan: &Plan) -> StoreResult<()>;
    /// The tenant's account; `None` for a tenant nobody changed (default plan, active).
    async fn tenant_account(&self, tenant: TenantId) -> StoreResult<Option<TenantAccount>>;
    async fn put_tenant_account(&self, account: &TenantAccount) -> StoreResult<()>;
    /// The tenant's flags; `None` when it changed none (the defaults).
    async fn feature_flags(&self, tenant: TenantId) -> StoreResult<Option<FeatureFlags>>;
    async fn put_feature_flags(&self, tenant: TenantId, flags: &FeatureFlags) -> StoreResult<()>;
    /// The tenant's own SMTP account (its password opened); `None`: it sends through the platform's.
    async fn smtp_account(&self, tenant: TenantId)
    -> StoreResult<Option<crate::mail::SmtpAccount>>;
    /// Stores (password sealed) or removes (`None`) the tenant's SMTP account.
    async fn put_smtp_account(
        &self,
        tenant: TenantId,
        account: Option<&crate::mail::SmtpAccount>,
    ) -> StoreResult<()>;
    /// Sets what `meter` counted for the tenant in `month` (`yyyymm`), replacing its previous
    /// figure (a meter's figure only grows, so a retried write is harmless).
    async fn put_usage(
        &self,
        tenant: TenantId,
        month: i32,
        meter: Uuid,
        usage: &MeteredUsage,
    ) -> StoreResult<()>;
    /// The sum of every meter's figure for the tenant in `month`.
    async fn usage(&self, tenant: TenantId, month: i32) -> StoreResult<MeteredUsage>;
}
