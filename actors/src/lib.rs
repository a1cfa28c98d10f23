//! The live system of one Conversa node: a supervision tree of `ractor` actors, addressed by entity key.
//!
//! ```text
//! NodeSupervisor                      node_supervisor.rs — one per node; parent of every tenant
//! └── TenantSupervisor (per tenant)   tenant_supervisor.rs — spawned on first use, never passivated yet
//!     ├── ConversationActor (per conversation)   conversation/ — virtual: created on first message,
//!     │                                           stopped after `idle_timeout`, rebuilt from the store
//!     └── SessionActor (per connection)           session.rs — owns the provider's outbound side
//! ```
//!
//! Callers never hold an `ActorRef`: they go through [`Directory`], the one lookup from entity key
//! (tenant, conversation, connection) to a running actor, which spawns it under the right supervisor when
//! it is not running. The gateway does not call it directly: it hands a [`schema::command::Command`] to
//! the [`Router`], which runs it here when this node owns the conversation's shard and forwards it to the
//! owner otherwise (see [`placement`]).
//!
//! Supervision (written down once, here and in `tenant_supervisor.rs`): a child that panics or returns an
//! error is not restarted eagerly. Its registry entry is dropped, `conversa_actor_restarts_total` counts it,
//! and the next message for the same key spawns a fresh actor whose state is rebuilt from the store. A
//! caller whose request was in flight retries it on the fresh actor, at most `max_delivery_attempts`
//! times; a message that kills its actor that often is a poison message: it is refused with
//! [`RouteError::Poisoned`] (the webhook answers 5xx so the provider keeps it and retries later, nothing
//! acknowledged is lost) and counted in `conversa_poison_messages_total`.
//!
//! **Architecture Invariant:** a conversation has at most one live actor on a node, and only that actor
//! writes the conversation's events; this is what makes the per-conversation `seq` gap-free without
//! storage-level locks.
//!
//! **Architecture Invariant:** no actor awaits a call to another actor that could call it back
//! (conversation → session is a `cast`; a session's send *task*, never the session actor itself, calls
//! the conversation with the provider's answer and waits for it to be recorded), so no mailbox
//! deadlocks.

pub mod conversation;
pub mod directory;
pub mod node_supervisor;
pub mod placement;
pub mod policy;
pub mod router;
pub mod session;
pub mod tenant_supervisor;
pub mod ticket;
mod turn;
pub mod usage;

pub use directory::{ActorConfig, Directory, RouteError, Services};
pub use router::Router;
pub use schema::command::IngestReport;
