//! The Conversa node: configuration, storage backends, pub/sub, bootstrap and shutdown. The `conversa`
//! binary (`main.rs`) is a thin CLI over [`node::run`].
//!
//! ```text
//! config.rs            defaults ← TOML file ← CONVERSA_* env ← flags
//! node.rs              start in order (telemetry, store, bus, actors, HTTP), stop in reverse
//! storage/embedded/   fjall backend with group commit (the default)
//! bus/in_process.rs    per-tenant broadcast topics
//! telemetry.rs         tracing subscriber and the Prometheus recorder
//! demo.rs              `serve --demo`: a ready-to-try tenant, number and agent
//! ```

pub mod bus;
pub mod config;
pub mod demo;
pub mod node;
pub mod storage;
pub mod telemetry;
