//! The agent WebSocket served in process (the real gateway router and listener on the real embedded
//! store and in-process bus), for what only a test holding the bus can make happen on cue: an event
//! published after a socket subscribed whose seq the client already had (read over REST, or named in
//! its resume positions) is not sent again.

use actors::{ActorConfig, Services};
use engine::bus::in_process::InProcessBus;
use engine::config::EmbeddedConfig;
use engine::storage::embedded::EmbeddedStore;
use engine::storage::secrets::SecretBox;
use futures::{SinkExt, StreamExt};
use gateway::providers::graph::{GraphClient, GraphConfig};
use jiff::Timestamp;
use schema::bus::{EventBus, Published};
use schema::events::{ConversationEvent, EventEnvelope};
use schema::inbound::{InboundEvent, InboundMessage};
use schema::records::*;
use schema::store::{AccountStore, ConversationStore};
use schema::{AgentId, ConnectionId, ConversationId, TenantId};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::faulty_store::{Faults, FaultyStore, LoadFault};
use tokio_tungstenite::tungstenite::Message as WsMessage;

mod support;

const WAIT: Duration = Duration::from_secs(20);

/// The node's parts in process: the real embedded store (behind the fault-injecting wrapper), bus,
/// actors, router and listener, plus one agent's token.
struct Harness {
    store: Arc<EmbeddedStore>,
    faults: Arc<Faults>,
    bus: Arc<InProcessBus>,
    directory: Arc<actors::Directory>,
    addr: std::net::SocketAddr,
    tenant: TenantId,
    token: String,
    cancel: tokio_util::sync::CancellationToken,
    server: tokio::task::JoinHandle<usize>,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn start(gateway: gateway::GatewayConfig, bus_capacity: usize) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(
            EmbeddedStore::open(
                &EmbeddedConfig {
                    data_dir: dir.path().to_path_buf(),
                    ..Default::default()
                },
                SecretBox::new(&[7; 32]),
            )
            .unwrap(),
        );
        let faults = Arc::new(Faults::default());
        let bus = Arc::new(InProcessBus::new(bus_capacity));
        let services = Services {
            store: Arc::new(FaultyStore(
                Arc::clone(&store),
                Arc::new(LoadFault::default()),
                Arc::clone(&faults),
            )),
            bus: Arc::clone(&bus) as Arc<dyn EventBus>,
            channel: Arc::new(
                GraphClient::new(GraphConfig {
                    graph_base: "http://127.0.0.1:9".into(),
                    ..Default::default()
                })
                .unwrap(),
            ),
            config: ActorConfig::default(),
            usage: Default::default(),
        };
        let directory = actors::node_supervisor::start(services).await.unwrap();
        let tenant = TenantId::new();
        let agent = Agent {
            default_connection: None,
            id: AgentId::new(),
            tenant_id: tenant,
            name: "Ana".into(),
            role: AgentRole::Agent,
            created_at: Timestamp::now(),
        };
        let (token, hash) = gateway::auth::new_agent_token();
        store.create_agent(&agent, hash).await.unwrap();
        let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
            .build_recorder()
            .handle();
        let cancel = tokio_util::sync::CancellationToken::new();
        let state = gateway::AppState::new(
            Arc::new(actors::Router::new(Arc::clone(&directory))),
            Arc::clone(&bus) as Arc<dyn EventBus>,
            metrics,
            gateway,
            cancel.clone(),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(gateway::server::serve(
            listener,
            gateway::http::router(state),
            gateway::server::ServerLimits::default(),
            {
                let cancel = cancel.clone();
                async move { cancel.cancelled().await }
            },
            Duration::from_secs(5),
        ));
        Harness {
            store,
            faults,
            bus,
            directory,
            addr,
            tenant,
            token,
            cancel,
            server,
            _dir: dir,
        }
    }

    /// One webhook's worth of `count` text messages from one contact; returns the conversation.
    async fn ingest(&self, contact: &str, count: usize) -> ConversationId {
        let connection = ConnectionId::from_bytes([1; 16]);
        let conversation = ConversationId::for_contact(self.tenant, connection, contact);
        let record = Connection {
            id: connection,
            tenant_id: self.tenant,
            provider: Provider::WhatsappCloud,
            name: "n".into(),
            status: ConnectionStatus::Connected,
            settings: ChannelSettings::Meta(MetaSettings {
                account_id: "pn".into(),
                verify_token: "v".into(),
                app_secret: "s".into(),
                access_token: "t".into(),
                page_id: None,
                human_agent: false,
            }),
            qr_code: None,
            created_at: Timestamp::now(),
            version: 0,
        };
        let messages = (0..count)
            .map(|i| {
                InboundEvent::Message(InboundMessage {
                    provider_message_id: format!("wamid.{contact}.{i}"),
                    from: Contact {
                        address: contact.into(),
                        name: None,
                    },
                    sent_at: Timestamp::now(),
                    content: MessageContent::Text { body: "oi".into() },
                    reply_to: None,
                    reference: None,
                    forwarded: false,
                    sender: None,
                })
            })
            .collect();
        self.directory
            .ingest(
                self.tenant,
                record.id,
                conversation,
                messages,
                Instant::now(),
                "r".into(),
            )
            .await
            .unwrap();
        conversation
    }

    async fn socket(
        &self,
    ) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>
    {
        let url = format!("ws://{}/api/v1/ws?token={}", self.addr, self.token);
        let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        assert_eq!(next_text(&mut socket).await["type"], "ready");
        socket
    }

    async fn stop(self) {
        self.cancel.cancel();
        let _ = self.server.await;
        self.directory.shutdown(Duration::from_secs(5)).await;
    }
}

#[tokio::test]
async fn a_live_event_the_client_already_had_is_not_sent_again() {
    let h = Harness::start(gateway::GatewayConfig::default(), 64).await;
    // A conversation with two events (created, message).
    let conversation = h.ingest("5511999990000", 1).await;
    let stored = h.store.events(h.tenant, conversation, 0, 10).await.unwrap();
    assert_eq!(stored.len(), 2);

    // The client has both (say, read over REST) and resumes naming seq 2.
    let mut socket = h.socket().await;
    let resume = json!({"type": "subscribe", "resume": {"since": Timestamp::now(),
                        "positions": {conversation.to_string(): 2}}});
    socket
        .send(WsMessage::Text(resume.to_string().into()))
        .await
        .unwrap();
    let subscribed = next_text(&mut socket).await;
    assert_eq!(subscribed["type"], "subscribed", "{subscribed}");
    assert_eq!(subscribed["replayed"], 0);

    // Seq 2's publication reaches the bus only now (its turn published late), then seq 3 comes.
    h.bus
        .publish(Published::new(stored[1].clone(), Instant::now(), None));
    let later = EventEnvelope {
        connection_id: None,
        tenant_id: h.tenant,
        conversation_id: conversation,
        seq: 3,
        at: Timestamp::now(),
        event: ConversationEvent::MessageStatusUpdated {
            message_id: schema::MessageId::new(),
            status: MessageStatus::Read,
            provider_message_id: None,
            error: None,
        },
    };
    h.bus.publish(Published::new(later, Instant::now(), None));
    let first = next_text(&mut socket).await;
    assert_eq!(
        first["seq"], 3,
        "the client was sent an event it already had: {first}"
    );
    h.stop().await;
}

/// The next text frame as JSON.
async fn next_text<S>(socket: &mut S) -> Value
where
    S: futures::Stream<Item = Result<WsMessage, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let frame = tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("a frame in time")
            .expect("socket open")
            .expect("frame");
        match frame {
            WsMessage::Text(text) => {
                return serde_json::from_str(text.as_str()).expect("json frame");
            }
            WsMessage::Close(close) => panic!("the node closed the socket: {close:?}"),
            _ => {}
        }
    }
}

/// A busy tenant publishes more events while a resume's replay runs than the bus keeps for one
/// subscriber: the socket holds them (bounded) while replaying and delivers them after it, instead of
/// lagging, closing with 4008 and sending the agent into a resume that lags again.
#[tokio::test]
async fn events_published_during_a_long_replay_reach_the_agent_without_a_reconnect() {
    let h = Harness::start(gateway::GatewayConfig::default(), 16).await;
    let conversation = h.ingest("5511999990001", 5).await;
    let mut socket = h.socket().await;
    // The replay's store read is held while 40 events are published (the bus keeps 16).
    h.faults
        .hold_events
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let resume = json!({"type": "subscribe", "resume": {"since": Timestamp::now(),
                        "positions": {conversation.to_string(): 0}}});
    socket
        .send(WsMessage::Text(resume.to_string().into()))
        .await
        .unwrap();
    h.faults.events_entered.notified().await;
    for seq in 100..140 {
        let event = EventEnvelope {
            connection_id: None,
            tenant_id: h.tenant,
            conversation_id: ConversationId::new(),
            seq,
            at: Timestamp::now(),
            event: ConversationEvent::MessageStatusUpdated {
                message_id: schema::MessageId::new(),
                status: MessageStatus::Delivered,
                provider_message_id: None,
                error: None,
            },
        };
        h.bus.publish(Published::new(event, Instant::now(), None));
        // Events arrive one after another, not in one burst larger than the bus buffer: the socket's
        // task gets to run between them (this test runs on one thread).
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
    }
    h.faults.release_events.notify_one();
    let mut replayed = 0;
    loop {
        let frame = next_text(&mut socket).await;
        match frame["type"].as_str() {
            Some("event") => replayed += 1,
            Some("subscribed") => break,
            other => panic!("unexpected {other:?}: {frame}"),
        }
    }
    assert_eq!(
        replayed, 6,
        "the stored conversation: created and five messages"
    );
    for expected in 100..140 {
        let frame = next_text(&mut socket).await;
        assert_eq!(frame["seq"], expected, "{frame}");
    }
    h.stop().await;
}
