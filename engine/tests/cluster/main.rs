//! Real nodes in cluster mode on one shared store (PostgreSQL, or the ScyllaDB backend on a Cassandra
//! node) with Redis between them, all started by the test suite (the servers by the project's
//! scripts): shards leased with epochs, commands forwarded to their owner, events fanned out through
//! Redis.
//!
//! - `conversa cluster status` lists the three members and the 256 shards between them.
//! - Webhooks sprayed at every node reach agents on every node once each, in per-conversation seq
//!   order, and an agent's reply sent through a node that does not own the conversation is stored by
//!   the owner.
//! - Replies to one number, sent through every node for conversations owned by every node, all leave
//!   through the one node that owns the connection (one rate limiter, one session), each once, and
//!   each provider answer is recorded on its conversation's owner.
//! - A node killed with SIGKILL mid-run: its shards are taken over by the others (the time it took is
//!   printed, not asserted), nothing a webhook was answered 200 for is lost or doubled, and an agent
//!   resuming by seq gets every event.
//!
//! Webhooks are retried on 503 as providers do (a shard between owners answers "nothing was done").

#[path = "../store_contract/services.rs"]
#[allow(dead_code)]
mod services;
#[path = "../support/mod.rs"]
mod support;

mod faults;
mod harness;
mod routing;
