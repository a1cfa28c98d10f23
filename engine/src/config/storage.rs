//! The storage section of the configuration: which backend, and each backend's settings (secrets
//! redacted from `Debug`).

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StorageBackend {
    /// fjall under `data_dir`: one machine, no external service.
    #[default]
    Embedded,
    /// A PostgreSQL server (`storage.postgres.url`).
    Postgres,
    /// A ScyllaDB (or Cassandra) cluster (`storage.scylla.nodes`).
    Scylla,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    pub backend: StorageBackend,
    /// Apply pending schema migrations when the node starts (what `conversa migrate` does); they are
    /// idempotent, so every node may do it.
    pub migrate_on_start: MigrateOnStart,
    pub embedded: EmbeddedConfig,
    pub postgres: PostgresConfig,
    pub scylla: ScyllaConfig,
}

/// A bool that defaults to `true`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MigrateOnStart(pub bool);

impl Default for MigrateOnStart {
    fn default() -> Self {
        Self(true)
    }
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PostgresConfig {
    /// `postgres://user:password@host:port/database` (may carry a password: never logged).
    pub url: String,
    pub max_connections: u32,
    /// Longest a request waits for a pooled connection.
    pub acquire_timeout_ms: u64,
    /// Server-side limit on any one statement.
    pub statement_timeout_ms: u64,
}

impl std::fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("url", &"<redacted>")
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout_ms", &self.acquire_timeout_ms)
            .field("statement_timeout_ms", &self.statement_timeout_ms)
            .finish()
    }
}

impl Default for PostgresConfig {
    fn default() -> Self {
        Self {
            url: "postgres://conversa:conversa@127.0.0.1:5432/conversa".into(),
            max_connections: 32,
            acquire_timeout_ms: 5_000,
            statement_timeout_ms: 10_000,
        }
    }
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScyllaConfig {
    /// Contact points, `host:port`.
    pub nodes: Vec<String>,
    pub keyspace: String,
    /// `local_quorum` (default), `quorum`, `local_one`, `one`, `all`.
    pub consistency: String,
    /// The local datacenter for DC-aware, token-aware load balancing; unset = any.
    pub local_datacenter: Option<String>,
    /// Client-side timeout of one request.
    pub request_timeout_ms: u64,
    pub username: Option<String>,
    pub password: Option<String>,
    /// When set, `migrate` creates the keyspace with this replication map if it is missing, e.g.
    /// `{'class': 'NetworkTopologyStrategy', 'dc1': 3}`; what follows the map goes into the statement
    /// too, so a ScyllaDB cluster in cluster mode adds ` AND tablets = {'enabled': false}` (keyspaces
    /// on tablets did not support lightweight transactions up to ScyllaDB 2025.3). Unset: the
    /// operator creates it.
    pub create_keyspace_replication: Option<String>,
    /// How old a feed entry must be before readers list it (CQL has no commit order; see
    /// `schema::store::feed`): longer than a turn may take to write, plus the clock skew between
    /// nodes. Lowering it risks readers passing an entry before it lands.
    pub feed_settle_ms: u64,
}

impl std::fmt::Debug for ScyllaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScyllaConfig")
            .field("nodes", &self.nodes)
            .field("keyspace", &self.keyspace)
            .field("consistency", &self.consistency)
            .field("local_datacenter", &self.local_datacenter)
            .field("request_timeout_ms", &self.request_timeout_ms)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field(
                "create_keyspace_replication",
                &self.create_keyspace_replication,
            )
            .field("feed_settle_ms", &self.feed_settle_ms)
            .finish()
    }
}

impl Default for ScyllaConfig {
    fn default() -> Self {
        Self {
            nodes: vec!["127.0.0.1:9042".into()],
            keyspace: "conversa".into(),
            consistency: "local_quorum".into(),
            local_datacenter: None,
            request_timeout_ms: 5_000,
            username: None,
            password: None,
            create_keyspace_replication: None,
            feed_settle_ms: u64::try_from(schema::store::FEED_SETTLE_SECS).unwrap_or(30) * 1000,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmbeddedConfig {
    pub data_dir: PathBuf,
    /// Batch concurrent writes under one fsync.
    pub group_commit: bool,
    /// Most writes in one group.
    pub group_commit_max: usize,
    /// Block cache size.
    pub cache_bytes: u64,
    /// Memtable size per table (ten tables): bounds memory held by unflushed writes. fjall's own
    /// default, 64 MiB, would let one node hold up to 640 MiB of memtables.
    pub memtable_bytes: u64,
    /// fjall's flush and compaction threads. Unset: fjall's own default, one per core up to 4. Never
    /// fewer than [`MIN_BACKGROUND_THREADS`], whatever is set or however few the cores.
    pub background_threads: Option<usize>,
    /// Target size of a table file written by compaction (fjall's leveled `target_size`; its own
    /// default, 64 MiB, is 4 times this). fjall builds the last table of a compaction and fsyncs it
    /// with the table's version lock held, so every write to that table waits: at 64 MiB those waits
    /// were 50–100 ms and set the webhook→agent p99 of minute-long runs (`load-tests/README.md`).
    /// Applies to the tables a data directory creates; one created before keeps the size it had.
    pub table_target_bytes: u64,
}

/// The fewest flush and compaction threads the store runs. In fjall 3.1.13 a thread that seals a
/// memtable queues the flush with a blocking send into the threads' own bounded queue (1,000
/// messages): with one thread and a full queue (writers queue a rotation on every commit to a table
/// over its memtable size, so a long compaction fills it) that thread waits on itself for ever, and
/// nothing is flushed again. A second thread drains the queue. One thread gave a lower webhook→agent
/// p99 on 2 cores (`load-tests/README.md`), but is not offered for that reason.
pub const MIN_BACKGROUND_THREADS: usize = 2;

impl EmbeddedConfig {
    /// fjall's flush and compaction threads: as configured, else one per core up to 4 (fjall's
    /// default); at least [`MIN_BACKGROUND_THREADS`].
    pub fn background_thread_count(&self) -> usize {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        self.background_threads
            .unwrap_or(cores.min(4))
            .max(MIN_BACKGROUND_THREADS)
    }
}

impl Default for EmbeddedConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./conversa-data"),
            group_commit: true,
            group_commit_max: 512,
            cache_bytes: 64 * 1024 * 1024,
            memtable_bytes: 8 * 1024 * 1024,
            background_threads: None,
            table_target_bytes: 16 * 1024 * 1024,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::EmbeddedConfig;

    #[test]
    fn background_threads_follow_the_cores_up_to_four_and_never_fall_below_two() {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let unset = EmbeddedConfig::default();
        assert_eq!(unset.background_thread_count(), cores.clamp(2, 4));
        for (configured, runs) in [(0, 2), (1, 2), (3, 3), (6, 6)] {
            let config = EmbeddedConfig {
                background_threads: Some(configured),
                ..EmbeddedConfig::default()
            };
            assert_eq!(config.background_thread_count(), runs, "{configured} set");
        }
    }
}
