//! The language every Conversa crate speaks: ids, records, events, commands, wire frames and the ports
//! (traits) that the live system talks through.
//!
//! Layout, following one message's path:
//! - [`ids`]: typed identifiers (tenant, connection, conversation, message, agent) and `Seq`.
//! - [`records`]: what is stored — tenants, connections, agents, departments, conversations, messages.
//! - [`inbound`]: provider-neutral events that a provider webhook is parsed into at the gateway.
//! - [`events`]: what happened to a conversation, each with its per-conversation `seq`; fanned out to agents.
//! - [`ws`]: the versioned WebSocket protocol (client and server frames, close codes).
//! - [`api`]: REST request/response bodies and the JSON error body.
//! - [`command`]: what the gateway asks of conversations, as data a router can forward to the owner.
//! - [`cluster`]: shards, leases and fences, and the placement rule.
//! - [`helpdesk`]: the helpdesk's pure rules (ticket statuses, business hours, SLA, distribution,
//!   quick replies).
//! - [`store`], [`bus`], [`channel`]: the ports implemented by `engine` (storage, pub/sub) and `gateway`
//!   (provider clients).
//!
//! **Architecture Invariant:** this crate does no I/O and depends on no runtime; it only describes.

pub mod account;
pub mod api;
pub mod audit;
pub mod bus;
pub mod channel;
pub mod cluster;
pub mod command;
pub mod connection;
pub mod contact;
pub mod department;
pub mod events;
pub mod features;
#[cfg(feature = "fixtures")]
pub mod fixtures;
pub mod helpdesk;
pub mod ids;
pub mod inbound;
pub mod limits;
pub mod mail;
pub mod permission;
pub mod presence;
pub mod privacy;
pub mod quick_reply;
pub mod records;
pub mod store;
pub mod tenancy;
pub mod visibility;
pub mod ws;

pub use ids::{AgentId, ConnectionId, ContactId, ConversationId, MessageId, NoteId, Seq, TenantId};
