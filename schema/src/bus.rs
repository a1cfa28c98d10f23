//! The pub/sub port: committed conversation events, and tenant-wide notices such as a connection's new
//! status, go out on a per-tenant topic; agent sockets subscribe to their tenant. Implemented in `engine`
//! (in process for one node; through Redis streams between nodes).

use crate::events::EventEnvelope;
use crate::ids::TenantId;
use bytes::Bytes;
use futures::stream::BoxStream;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// An event as carried on the bus: one shared allocation (a clone per agent socket is one reference
/// count, and a socket's queue slot is a pointer), holding the local instant it became durable (for
/// the fan-out latency histogram; it does not cross nodes) and the id of the request that caused it
/// (for logs that follow one webhook from the edge through the actor to the agent sockets).
#[derive(Clone, Debug)]
pub struct Published(Arc<PublishedEvent>);

/// What a [`Published`] shares.
#[derive(Debug)]
pub struct PublishedEvent {
    pub envelope: Arc<EventEnvelope>,
    pub durable_at: Instant,
    pub request_id: Option<Arc<str>>,
    /// The event's WebSocket frame, encoded once by the first socket that sends it and shared by all
    /// the others (with thousands of agents per tenant, encoding per socket dominated fan-out).
    encoded: OnceLock<Bytes>,
}

impl std::ops::Deref for Published {
    type Target = PublishedEvent;

    fn deref(&self) -> &PublishedEvent {
        &self.0
    }
}

impl Published {
    /// A freshly committed event.
    pub fn new(envelope: EventEnvelope, durable_at: Instant, request_id: Option<Arc<str>>) -> Self {
        Self(Arc::new(PublishedEvent {
            envelope: Arc::new(envelope),
            durable_at,
            request_id,
            encoded: OnceLock::new(),
        }))
    }

    /// The `{"type":"event",…}` frame of this event, encoded at most once.
    pub fn frame(&self) -> Bytes {
        self.0
            .encoded
            .get_or_init(|| Bytes::from(crate::ws::encode_event_frame(&self.0.envelope)))
            .clone()
    }
}

/// A tenant-wide notice: state that is not part of any conversation's stream. Not replayed on resume;
/// a client that reconnects reads the current state over REST.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TenantNotice {
    /// A connection was created, paused, resumed, edited or changed status.
    ConnectionUpdated(crate::api::ConnectionView),
    /// A connection was removed.
    ConnectionRemoved {
        connection_id: crate::ids::ConnectionId,
    },
    /// A session provider (Evolution, Z-API) needs its number paired: the QR code to scan. Goes to the
    /// tenant's admins and supervisors only.
    ConnectionQr {
        connection_id: crate::ids::ConnectionId,
        qr_code: String,
    },
}

/// Whether an agent with `role` may see a connection's QR code (whoever scans it pairs a phone to
/// the tenant): admins and supervisors, in the live notice and in `GET /connections/{id}/qr` alike.
pub fn pairs_phones(role: crate::records::AgentRole) -> bool {
    use crate::records::AgentRole;
    matches!(role, AgentRole::Admin | AgentRole::Supervisor)
}

impl TenantNotice {
    /// The connection the notice is about.
    pub fn connection(&self) -> Option<crate::ids::ConnectionId> {
        match self {
            TenantNotice::ConnectionUpdated(view) => Some(view.id),
            TenantNotice::ConnectionRemoved { connection_id }
            | TenantNotice::ConnectionQr { connection_id, .. } => Some(*connection_id),
        }
    }

    /// Whether an agent with `role` receives this notice.
    pub fn is_for(&self, role: crate::records::AgentRole) -> bool {
        match self {
            TenantNotice::ConnectionQr { .. } => pairs_phones(role),
            _ => true,
        }
    }
}

/// What travels on a tenant's topic.
#[derive(Clone, Debug)]
pub enum BusMessage {
    Event(Published),
    Notice(Arc<TenantNotice>),
}

/// What a subscriber receives.
#[derive(Clone, Debug)]
pub enum BusItem {
    Event(Published),
    Notice(Arc<TenantNotice>),
    /// The subscriber fell behind and `missed` events were dropped for it: it must resume from the store.
    Lagged {
        missed: u64,
    },
}

/// Publish/subscribe by tenant. Publishing never blocks; each subscriber has a bounded buffer.
pub trait EventBus: Send + Sync + 'static {
    /// Publish an event that is already durable.
    fn publish(&self, event: Published);
    /// Publish a tenant-wide notice.
    fn notify(&self, tenant: TenantId, notice: TenantNotice);
    /// Every event of `tenant` published from now on.
    fn subscribe(&self, tenant: TenantId) -> BoxStream<'static, BusItem>;
    /// Whether events reach the other nodes right now (always, for a bus that has none).
    fn connected(&self) -> bool {
        true
    }
}
