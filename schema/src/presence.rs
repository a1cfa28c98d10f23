//! Agents' presence: online or away while a WebSocket of theirs is open on some node, offline
//! otherwise. Each node writes the presence of the agents connected to it with an expiry and
//! renews it while they stay ([`HEARTBEAT_SECS`]), so presence is cluster-wide and a node that dies
//! takes its agents offline within [`EXPIRES_AFTER_SECS`].

use crate::ids::AgentId;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// How often a node renews the presence of the agents connected to it.
pub const HEARTBEAT_SECS: i64 = 20;
/// How long a presence holds without renewal.
pub const EXPIRES_AFTER_SECS: i64 = 60;

/// What an agent says of themselves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PresenceStatus {
    /// Takes new tickets.
    Online,
    /// Connected, but takes no new tickets.
    Away,
}

/// An agent's presence, valid until `until`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Presence {
    pub agent: AgentId,
    pub status: PresenceStatus,
    pub until: Timestamp,
}

impl Presence {
    /// Whether the agent takes new tickets at `now`.
    pub fn available_at(&self, now: Timestamp) -> bool {
        self.status == PresenceStatus::Online && self.until > now
    }
}
