//! Storage backends behind the `schema::store::Store` port, chosen by `storage.backend` in one
//! `match` in [`open`]: embedded (fjall, one machine), PostgreSQL, and ScyllaDB (any CQL cluster).
//! Every backend passes the same contract suite (`engine/tests/store_contract/`).

mod codec;
pub mod embedded;
mod keys;
pub mod postgres;
pub mod scylla;
pub mod secrets;

use crate::config::{StorageBackend, StorageConfig};
use schema::cluster::ClusterStore;
use schema::store::{Store, StoreError, StoreResult};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

/// Closes a store: flushes what it holds and releases its connections.
pub type Closer = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = StoreResult<()>> + Send>> + Send>;

/// A running store and the handle that flushes and closes it on shutdown.
pub struct OpenedStore {
    pub store: Arc<dyn Store>,
    /// Membership and shard leases, on the backends several nodes can share (PostgreSQL, CQL).
    pub cluster: Option<Arc<dyn ClusterStore>>,
    pub closer: Closer,
}

/// Opens the configured backend; `secrets` seals provider credentials before they are written. With
/// `migrate`, pending schema migrations are applied first (idempotent).
pub async fn open(
    config: &StorageConfig,
    secrets: secrets::SecretBox,
    migrate: bool,
) -> Result<OpenedStore, StoreError> {
    match config.backend {
        StorageBackend::Embedded => {
            let store = Arc::new(embedded::EmbeddedStore::open(&config.embedded, secrets)?);
            let closing = Arc::clone(&store);
            Ok(OpenedStore {
                store,
                cluster: None,
                closer: Box::new(move || {
                    Box::pin(async move {
                        tokio::task::spawn_blocking(move || closing.close())
                            .await
                            .map_err(|e| StoreError::Unavailable(e.to_string()))?
                    })
                }),
            })
        }
        StorageBackend::Postgres => {
            let store =
                Arc::new(postgres::PostgresStore::connect(&config.postgres, secrets).await?);
            if migrate {
                store.migrate().await?;
            }
            let closing = Arc::clone(&store);
            Ok(OpenedStore {
                cluster: Some(Arc::clone(&store) as Arc<dyn ClusterStore>),
                store,
                closer: Box::new(move || {
                    Box::pin(async move {
                        closing.close().await;
                        Ok(())
                    })
                }),
            })
        }
        StorageBackend::Scylla => {
            let store =
                Arc::new(scylla::ScyllaStore::connect(&config.scylla, secrets, migrate).await?);
            Ok(OpenedStore {
                cluster: Some(Arc::clone(&store) as Arc<dyn ClusterStore>),
                store,
                // The driver closes its connections when the session is dropped.
                closer: Box::new(|| Box::pin(async { Ok(()) })),
            })
        }
    }
}

/// Applies the configured backend's pending migrations (the embedded store has none: its tables are
/// created when it opens).
pub async fn migrate(config: &StorageConfig) -> StoreResult<()> {
    match config.backend {
        StorageBackend::Embedded => Ok(()),
        StorageBackend::Postgres => {
            // Migrations never touch sealed values, so a throwaway key is enough to connect.
            let store = postgres::PostgresStore::connect(
                &config.postgres,
                secrets::SecretBox::new(&[0; 32]),
            )
            .await?;
            let result = store.migrate().await;
            store.close().await;
            result
        }
        StorageBackend::Scylla => {
            scylla::ScyllaStore::connect(&config.scylla, secrets::SecretBox::new(&[0; 32]), true)
                .await
                .map(drop)
        }
    }
}

/// Times one store operation and counts its failures (conflicts are answers, not faults).
pub(crate) async fn observe<T>(
    op: &'static str,
    operation: impl Future<Output = StoreResult<T>>,
) -> StoreResult<T> {
    let started = Instant::now();
    let result = operation.await;
    metrics::histogram!("conversa_store_operation_seconds", "op" => op)
        .record(started.elapsed().as_secs_f64());
    if let Err(error) = &result {
        count_error(op, error);
    }
    result
}

/// Counts failures that point at the store itself; conflicts are answers, not faults.
pub(crate) fn count_error(op: &'static str, error: &StoreError) {
    let kind = match error {
        StoreError::Unavailable(_) => "unavailable",
        StoreError::Corrupt(_) => "corrupt",
        StoreError::SeqConflict { .. } => "seq_conflict",
        StoreError::Fenced(_) => "fenced",
        StoreError::Unsupported(_) => "unsupported",
        StoreError::Conflict(_) | StoreError::Invalid(_) => return,
    };
    metrics::counter!("conversa_store_errors_total", "op" => op, "kind" => kind).increment(1);
}
