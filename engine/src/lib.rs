//! The Conversa node: configuration, storage backends, pub/sub, bootstrap and shutdown. The `conversa`
//! binary (`main.rs`) is a thin CLI over [`node::run`].
//!
//! ```text
//! config.rs            defaults ← TOML file ← CONVERSA_* env ← flags
//! node.rs              start in order (telemetry, store, bus, actors, HTTP), stop in reverse
//! storage/embedded/   fjall backend with group commit (the default)
//! bus/                 per-tenant broadcast topics in process; Redis streams between nodes
//! cluster/             cluster mode: the lease keeper and the shard table the router consults
//! telemetry.rs         tracing subscriber and the Prometheus recorder
//! demo.rs              `serve --demo`: a ready-to-try tenant, number and agent
//! ```

pub mod audit;
pub mod bus;
pub mod cluster;
pub mod config;
pub mod demo;
pub mod node;
pub mod open_files;
pub mod storage;
pub mod telemetry;
