//! The in-process bus: one bounded `tokio::sync::broadcast` channel per tenant. Publishing never blocks;
//! a subscriber that falls more than `capacity` events behind gets `BusItem::Lagged` and must resume from
//! the store (the WebSocket closes it as a slow consumer).

use dashmap::DashMap;
use futures::stream::{self, BoxStream, StreamExt};
use schema::TenantId;
use schema::bus::{BusItem, BusMessage, EventBus, Published, TenantNotice};
use std::sync::Arc;
use tokio::sync::broadcast;

/// One node's bus.
pub struct InProcessBus {
    capacity: usize,
    topics: DashMap<TenantId, broadcast::Sender<BusMessage>>,
}

impl InProcessBus {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            topics: DashMap::new(),
        }
    }
}

impl InProcessBus {
    /// Ends every local subscription of `tenant`: their streams end, so agent sockets close (1001) and
    /// resume from the store. For when events of the tenant may have been missed on the way here.
    pub fn reset(&self, tenant: TenantId) {
        self.topics.remove(&tenant);
    }

    fn send(&self, tenant: TenantId, message: BusMessage) {
        let Some(topic) = self.topics.get(&tenant).map(|t| t.clone()) else {
            return;
        };
        if topic.send(message).is_err() {
            // Nobody listens any more: drop the topic unless someone subscribed meanwhile.
            self.topics
                .remove_if(&tenant, |_, t| t.receiver_count() == 0);
        }
    }
}

impl EventBus for InProcessBus {
    fn publish(&self, event: Published) {
        let tenant = event.envelope.tenant_id;
        self.send(tenant, BusMessage::Event(event));
        metrics::counter!("conversa_bus_published_total").increment(1);
    }

    fn notify(&self, tenant: TenantId, notice: TenantNotice) {
        self.send(tenant, BusMessage::Notice(Arc::new(notice)));
    }

    fn subscribe(&self, tenant: TenantId) -> BoxStream<'static, BusItem> {
        let receiver = self
            .topics
            .entry(tenant)
            .or_insert_with(|| broadcast::channel(self.capacity).0)
            .subscribe();
        stream::unfold(receiver, |mut receiver| async move {
            match receiver.recv().await {
                Ok(BusMessage::Event(event)) => Some((BusItem::Event(event), receiver)),
                Ok(BusMessage::Notice(notice)) => Some((BusItem::Notice(notice), receiver)),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    Some((BusItem::Lagged { missed }, receiver))
                }
                Err(broadcast::error::RecvError::Closed) => None,
            }
        })
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;
    use schema::events::{ConversationEvent, EventEnvelope};
    use schema::records::MessageStatus;
    use schema::{ConversationId, MessageId};
    use std::time::Instant;

    fn event(tenant: TenantId, seq: u64) -> Published {
        Published::new(
            EventEnvelope {
                connection_id: None,
                tenant_id: tenant,
                conversation_id: ConversationId::new(),
                seq,
                at: Timestamp::now(),
                event: ConversationEvent::MessageStatusUpdated {
                    message_id: MessageId::new(),
                    status: MessageStatus::Sent,
                    provider_message_id: None,
                    error: None,
                },
            },
            Instant::now(),
            None,
        )
    }

    #[tokio::test]
    async fn subscribers_get_only_their_tenants_events() {
        let bus = InProcessBus::new(16);
        let (a, b) = (TenantId::new(), TenantId::new());
        let mut sub_a = bus.subscribe(a);
        let _sub_b = bus.subscribe(b);
        bus.publish(event(b, 1));
        bus.publish(event(a, 2));
        let Some(BusItem::Event(got)) = sub_a.next().await else {
            panic!("no event")
        };
        assert_eq!((got.envelope.tenant_id, got.envelope.seq), (a, 2));
    }

    #[tokio::test]
    async fn a_subscriber_that_falls_behind_is_told_it_lagged() {
        let bus = InProcessBus::new(2);
        let tenant = TenantId::new();
        let mut sub = bus.subscribe(tenant);
        for seq in 1..=5 {
            bus.publish(event(tenant, seq));
        }
        assert!(matches!(
            sub.next().await,
            Some(BusItem::Lagged { missed: 3 })
        ));
    }
}
