//! Storage backends behind the `schema::store::MessageStore` port. The backend is chosen in one `match`
//! in [`open`]; ScyllaDB and PostgreSQL join it in the storage issue.

pub mod embedded;
mod keys;
pub mod secrets;

use crate::config::StorageConfig;
use schema::store::{MessageStore, StoreError};
use std::sync::Arc;

/// A running store and the handle that flushes and closes it on shutdown.
pub struct OpenedStore {
    pub store: Arc<dyn MessageStore>,
    pub closer: Box<dyn FnOnce() -> Result<(), StoreError> + Send>,
}

/// Opens the configured backend; `secrets` seals provider credentials before they are written.
pub fn open(
    config: &StorageConfig,
    secrets: secrets::SecretBox,
) -> Result<OpenedStore, StoreError> {
    match config.backend {
        crate::config::StorageBackend::Embedded => {
            let store = Arc::new(embedded::EmbeddedStore::open(&config.embedded, secrets)?);
            let closing = Arc::clone(&store);
            Ok(OpenedStore {
                store,
                closer: Box::new(move || closing.close()),
            })
        }
    }
}
