//! The backends under contract, each opened through `engine::storage::open` exactly as a node opens
//! it: embedded on a temporary directory, PostgreSQL and Cassandra (through the ScyllaDB backend) on
//! the throwaway servers of [`crate::services`], or a real ScyllaDB cluster named by
//! `CONVERSA_SCYLLA_NODES`.

use crate::services::Service;
use engine::config::{StorageBackend, StorageConfig};
use engine::storage::secrets::SecretBox;
use engine::storage::{self, OpenedStore};
use schema::cluster::ClusterStore;
use schema::store::Store;
use std::sync::Arc;
use tokio::sync::Mutex;

/// The key the contract seals secrets with; fixed so a reopened store can open what it sealed.
pub const SECRET_KEY: [u8; 32] = [7; 32];

/// One backend: its configuration, the server behind it (if any) and the store opened on it.
pub struct Backend {
    pub name: &'static str,
    pub config: StorageConfig,
    pub service: Option<Arc<Service>>,
    /// Whether two concurrent commits at the same seq are told apart by the store itself (embedded:
    /// one writer thread; PostgreSQL: a conditional upsert). The CQL backend relies on the single
    /// owning actor instead (no lightweight transaction on the hot path).
    pub checks_seq_atomically: bool,
    opened: Mutex<Option<OpenedStore>>,
    _temp: Option<tempfile::TempDir>,
}

impl Backend {
    pub fn embedded() -> Backend {
        let temp = tempfile::tempdir().expect("temp dir");
        let mut config = StorageConfig::default();
        config.embedded.data_dir = temp.path().join("data");
        Backend::new("embedded", config, None, Some(temp))
    }

    pub fn postgres(service: Arc<Service>, database: &str) -> Backend {
        let mut config = StorageConfig {
            backend: StorageBackend::Postgres,
            ..StorageConfig::default()
        };
        config.postgres.url = postgres_url(&service, database);
        Backend::new("postgres", config, Some(service), None)
    }

    /// A fresh keyspace on `nodes` (created by the migration, replication factor 1 for one node).
    pub fn scylla(
        name: &'static str,
        nodes: Vec<String>,
        keyspace: &str,
        service: Option<Arc<Service>>,
    ) -> Backend {
        let mut config = StorageConfig {
            backend: StorageBackend::Scylla,
            ..StorageConfig::default()
        };
        config.scylla.nodes = nodes;
        config.scylla.keyspace = keyspace.into();
        // One node: QUORUM of one replica (the node refuses anything below a quorum). A real cluster
        // keeps the LOCAL_QUORUM default.
        if service.is_some() {
            config.scylla.consistency = "quorum".into();
        }
        config.scylla.create_keyspace_replication =
            Some("{'class': 'SimpleStrategy', 'replication_factor': 1}".into());
        // The contract's writers have all returned before it reads the feed: nothing is still in
        // flight, so the settle window a live cluster needs would only slow the cases down.
        config.scylla.feed_settle_ms = 0;
        Backend::new(name, config, service, None)
    }

    fn new(
        name: &'static str,
        config: StorageConfig,
        service: Option<Arc<Service>>,
        temp: Option<tempfile::TempDir>,
    ) -> Backend {
        Backend {
            name,
            checks_seq_atomically: config.backend != StorageBackend::Scylla,
            config,
            service,
            opened: Mutex::new(None),
            _temp: temp,
        }
    }

    /// The open store, opening (and migrating) it on first use.
    pub async fn store(&self) -> Arc<dyn Store> {
        let mut opened = self.opened.lock().await;
        if opened.is_none() {
            let store = storage::open(&self.config, SecretBox::new(&SECRET_KEY), true)
                .await
                .unwrap_or_else(|e| panic!("opening the {} store: {e}", self.name));
            *opened = Some(store);
        }
        Arc::clone(&opened.as_ref().expect("opened above").store)
    }

    /// The backend's membership and lease store, if it has one (opening the store on first use).
    pub async fn cluster(&self) -> Option<Arc<dyn ClusterStore>> {
        self.store().await;
        let opened = self.opened.lock().await;
        opened.as_ref().and_then(|o| o.cluster.clone())
    }

    /// Closes the store, kills and restarts the server process (or, for the embedded store, which
    /// lives in this process, closes and reopens its files), and opens the store again.
    pub async fn restart(&self) {
        let mut opened = self.opened.lock().await;
        if let Some(store) = opened.take() {
            let _ = (store.closer)().await;
        }
        if let Some(service) = &self.service {
            let service = Arc::clone(service);
            tokio::task::spawn_blocking(move || service.restart())
                .await
                .expect("restart task")
                .unwrap_or_else(|e| panic!("restarting the server: {e}"));
        }
        drop(opened);
        self.store().await;
    }

    /// Closes the store (end of the run).
    pub async fn close(&self) {
        if let Some(store) = self.opened.lock().await.take() {
            let _ = (store.closer)().await;
        }
    }
}

pub fn postgres_url(service: &Service, database: &str) -> String {
    format!(
        "postgres://conversa:conversa@127.0.0.1:{}/{database}",
        service.port
    )
}

/// The node-facing environment that selects `backend` (used by the end-to-end runs on the binary).
pub fn node_env(config: &StorageConfig) -> Vec<(String, String)> {
    use base64::Engine;
    let mut env = vec![(
        "CONVERSA_SECURITY__SECRET_KEY".to_string(),
        base64::engine::general_purpose::STANDARD.encode(SECRET_KEY),
    )];
    match config.backend {
        StorageBackend::Embedded => {}
        StorageBackend::Postgres => {
            env.push(("CONVERSA_STORAGE__BACKEND".into(), "postgres".into()));
            env.push((
                "CONVERSA_STORAGE__POSTGRES__URL".into(),
                config.postgres.url.clone(),
            ));
        }
        StorageBackend::Scylla => {
            let scylla = &config.scylla;
            let nodes = scylla
                .nodes
                .iter()
                .map(|n| format!("\"{n}\""))
                .collect::<Vec<_>>()
                .join(",");
            env.push(("CONVERSA_STORAGE__BACKEND".into(), "scylla".into()));
            env.push((
                "CONVERSA_STORAGE__SCYLLA__NODES".into(),
                format!("[{nodes}]"),
            ));
            env.push((
                "CONVERSA_STORAGE__SCYLLA__KEYSPACE".into(),
                scylla.keyspace.clone(),
            ));
            env.push((
                "CONVERSA_STORAGE__SCYLLA__CONSISTENCY".into(),
                scylla.consistency.clone(),
            ));
            if let Some(replication) = &scylla.create_keyspace_replication {
                env.push((
                    "CONVERSA_STORAGE__SCYLLA__CREATE_KEYSPACE_REPLICATION".into(),
                    replication.clone(),
                ));
            }
        }
    }
    env
}
