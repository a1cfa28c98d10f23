//! The connections aggregate: a tenant's channel numbers and accounts, with their sealed credentials.

use super::StoreResult;
use crate::ids::{ConnectionId, TenantId};
use crate::records::{Connection, Provider};
use async_trait::async_trait;

/// Channel connections.
#[async_trait]
pub trait ConnectionStore: Send + Sync + 'static {
    /// Fails with `Conflict` when another connection already owns the provider address.
    async fn create_connection(&self, connection: &Connection) -> StoreResult<()>;
    async fn connection(&self, id: ConnectionId) -> StoreResult<Option<Connection>>;
    /// Replaces a connection's mutable fields (name, status, credentials); the caller keeps its
    /// tenant, provider and address unchanged. Fails with `Conflict` when the connection was removed
    /// meanwhile (an update never brings a removed connection back) or when its stored `version` is no
    /// longer the one `connection` carries (another update landed since it was read: read it again and
    /// reapply the change). A stored update bumps the version.
    async fn update_connection(&self, connection: &Connection) -> StoreResult<()>;
    /// Deletes a connection and frees its provider address; its conversations and messages stay.
    async fn remove_connection(&self, connection: &Connection) -> StoreResult<()>;
    /// A tenant's connections.
    async fn connections(&self, tenant: TenantId) -> StoreResult<Vec<Connection>>;
    /// The connection that owns a provider address (WhatsApp `phone_number_id`).
    async fn connection_by_address(
        &self,
        provider: Provider,
        address: &str,
    ) -> StoreResult<Option<Connection>>;
}
