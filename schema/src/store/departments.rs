//! The departments aggregate: a tenant's departments, each stored whole under its key.

use super::StoreResult;
use crate::ids::TenantId;
use crate::records::Department;
use async_trait::async_trait;

/// Departments.
#[async_trait]
pub trait DepartmentStore: Send + Sync + 'static {
    /// Creates the department `(tenant_id, key)`; `Conflict` when one with that key exists (checked
    /// atomically with the write).
    async fn create_department(&self, department: &Department) -> StoreResult<()>;
    /// Creates or replaces the department `(tenant_id, key)`.
    async fn put_department(&self, department: &Department) -> StoreResult<()>;
    async fn department(&self, tenant: TenantId, key: &str) -> StoreResult<Option<Department>>;
    /// The tenant's departments by key (at most `schema::department::MAX_DEPARTMENTS`, a bound the
    /// API keeps).
    async fn departments(&self, tenant: TenantId) -> StoreResult<Vec<Department>>;
    /// Removes a department; its tickets keep the key they carry.
    async fn remove_department(&self, tenant: TenantId, key: &str) -> StoreResult<()>;
}
