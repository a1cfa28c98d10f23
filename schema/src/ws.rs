//! The agent WebSocket protocol, version 1: JSON text frames, each with a `type`.
//!
//! ```text
//! client → server   {"type":"subscribe"}                                   live events of my tenant
//!                   {"type":"subscribe","resume":{"since":"<at of the last event seen>",
//!                                                 "positions":{"<conversation id>":<last seq seen>}}}
//!                   {"type":"ping"}
//! server → client   {"type":"ready","protocol":1,"tenant_id":…,"agent_id":…}   on connect
//!                   {"type":"event","tenant_id":…,"conversation_id":…,"seq":…,"at":…,"event":"message.created","data":{…}}
//!                   {"type":"subscribed","replayed":<n>}                     replay done, live from here
//!                   {"type":"resume_failed","reason":"too_far_behind","max_replay":<n>}
//!                   {"type":"error","code":…,"message":…}   {"type":"pong"}
//!                   {"type":"connection_updated","connection":{…}}   {"type":"connection_removed",…}
//!                   (tenant-wide notices: live only, never replayed; reload them with GET /connections)
//! ```
//!
//! Resume: the server replays, from the store, every event of every conversation active since
//! `since - RESUME_CLOCK_MARGIN` with a seq above the client's position (or, for a conversation the
//! client does not list, with `at >= since - margin`), then switches to live events with no gap and no
//! duplicate. If that is more than `max_replay` events the server says `resume_failed` instead of sending a
//! partial replay; the client then reloads through REST.

use crate::events::EventEnvelope;
use crate::ids::{AgentId, ConversationId, Seq, TenantId};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Protocol version announced in `ready`.
pub const PROTOCOL_VERSION: u32 = 1;

/// Close code: the client sent something that is not a protocol frame.
pub const CLOSE_PROTOCOL_ERROR: u16 = 4002;
/// Close code: the client did not read fast enough and its bounded queue overflowed; resume by seq.
pub const CLOSE_SLOW_CONSUMER: u16 = 4008;
/// Close code: the socket's token expired or was revoked (checked every minute); refresh or sign in,
/// then reconnect and resume by seq.
pub const CLOSE_CREDENTIAL_ENDED: u16 = 4001;
/// Close code (standard): the node is shutting down; reconnect and resume.
pub const CLOSE_GOING_AWAY: u16 = 1001;

/// How far before `since` the server looks for activity, to cover events committed before `since` but
/// published after it (commit latency is bounded well below this).
pub const RESUME_CLOCK_MARGIN_SECS: i64 = 30;

/// What the client knew when it lost the connection.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ResumeFrom {
    /// `at` of the last event the client received.
    pub since: Timestamp,
    /// Last seq seen per conversation.
    #[serde(default)]
    pub positions: HashMap<ConversationId, Seq>,
}

/// Frames from the agent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    Subscribe {
        #[serde(default)]
        resume: Option<ResumeFrom>,
    },
    Ping,
    /// The agent says whether they take new tickets (`online`) or not (`away`).
    Presence {
        status: crate::presence::PresenceStatus,
    },
}

/// Frames to the agent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    Ready {
        protocol: u32,
        tenant_id: TenantId,
        agent_id: AgentId,
    },
    Event(Box<EventEnvelope>),
    Subscribed {
        replayed: u64,
    },
    ResumeFailed {
        reason: String,
        max_replay: u64,
    },
    Error {
        code: String,
        message: String,
    },
    Pong,
    /// A connection of the tenant was created or changed (status, name): live only, not replayed.
    ConnectionUpdated {
        connection: crate::api::ConnectionView,
    },
    /// A connection of the tenant was removed: live only, not replayed.
    ConnectionRemoved {
        connection_id: crate::ids::ConnectionId,
    },
    /// The QR code that pairs a session provider's number (admins and supervisors only; live only).
    ConnectionQr {
        connection_id: crate::ids::ConnectionId,
        qr_code: String,
    },
}

impl From<&crate::bus::TenantNotice> for ServerFrame {
    fn from(notice: &crate::bus::TenantNotice) -> Self {
        match notice {
            crate::bus::TenantNotice::ConnectionUpdated(connection) => {
                ServerFrame::ConnectionUpdated {
                    connection: connection.clone(),
                }
            }
            crate::bus::TenantNotice::ConnectionRemoved { connection_id } => {
                ServerFrame::ConnectionRemoved {
                    connection_id: *connection_id,
                }
            }
            crate::bus::TenantNotice::ConnectionQr {
                connection_id,
                qr_code,
            } => ServerFrame::ConnectionQr {
                connection_id: *connection_id,
                qr_code: qr_code.clone(),
            },
        }
    }
}

/// The JSON of `ServerFrame::Event(envelope)`, without cloning the envelope.
pub fn encode_event_frame(envelope: &EventEnvelope) -> Vec<u8> {
    #[derive(Serialize)]
    struct EventFrame<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        #[serde(flatten)]
        envelope: &'a EventEnvelope,
    }
    serde_json::to_vec(&EventFrame {
        kind: "event",
        envelope,
    })
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::ConversationEvent;
    use crate::ids::MessageId;
    use crate::records::MessageStatus;

    #[test]
    fn event_frame_carries_type_event_name_and_seq() {
        let frame = ServerFrame::Event(Box::new(EventEnvelope {
            connection_id: None,
            tenant_id: TenantId::new(),
            conversation_id: ConversationId::new(),
            seq: 3,
            at: Timestamp::UNIX_EPOCH,
            event: ConversationEvent::MessageStatusUpdated {
                message_id: MessageId::new(),
                status: MessageStatus::Sent,
                provider_message_id: None,
                error: None,
            },
        }));
        let text = serde_json::to_string(&frame).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["type"], "event");
        assert_eq!(json["event"], "message.status_updated");
        assert_eq!(json["seq"], 3);
        assert_eq!(serde_json::from_str::<ServerFrame>(&text).unwrap(), frame);
    }

    #[test]
    fn shared_event_encoding_matches_the_server_frame() {
        let envelope = EventEnvelope {
            connection_id: None,
            tenant_id: TenantId::new(),
            conversation_id: ConversationId::new(),
            seq: 9,
            at: Timestamp::UNIX_EPOCH,
            event: ConversationEvent::MessageStatusUpdated {
                message_id: MessageId::new(),
                status: MessageStatus::Read,
                provider_message_id: Some("wamid.Z".into()),
                error: None,
            },
        };
        let shared: serde_json::Value =
            serde_json::from_slice(&encode_event_frame(&envelope)).unwrap();
        let framed = serde_json::to_value(ServerFrame::Event(Box::new(envelope))).unwrap();
        assert_eq!(shared, framed);
    }

    #[test]
    fn subscribe_without_resume_parses() {
        let frame: ClientFrame = serde_json::from_str(r#"{"type":"subscribe"}"#).unwrap();
        assert_eq!(frame, ClientFrame::Subscribe { resume: None });
    }
}
