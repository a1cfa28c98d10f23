//! The actor tree in-process, on the real embedded store: a conversation actor that panics is replaced
//! by a fresh one rebuilt from the store, a poison message is refused after a bounded number of
//! attempts instead of crash-looping, and an idle conversation passivates and comes back with its seq.
//!
//! The only test-specific part is a wrapper around the real store that panics when it is asked to commit
//! a message whose text is `POISON` — a fault injected at the port, so the panic happens inside the
//! conversation actor's `handle`, as a bug would.

use actors::{ActorConfig, Directory, RouteError, Services};
use async_trait::async_trait;
use engine::bus::in_process::InProcessBus;
use engine::config::EmbeddedConfig;
use engine::storage::embedded::EmbeddedStore;
use engine::storage::secrets::SecretBox;
use gateway::providers::graph::{GraphClient, GraphConfig};
use jiff::Timestamp;
use schema::events::EventEnvelope;
use schema::inbound::{InboundEvent, InboundMessage};
use schema::records::*;
use schema::store::*;
use schema::{ConnectionId, ConversationId, Seq, TenantId};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct PoisonOnCommit(Arc<EmbeddedStore>);

#[async_trait]
impl MessageStore for PoisonOnCommit {
    async fn ping(&self) -> StoreResult<()> {
        self.0.ping().await
    }
    async fn create_tenant(&self, t: &Tenant) -> StoreResult<()> {
        self.0.create_tenant(t).await
    }
    async fn tenant(&self, id: TenantId) -> StoreResult<Option<Tenant>> {
        self.0.tenant(id).await
    }
    async fn create_connection(&self, c: &Connection) -> StoreResult<()> {
        self.0.create_connection(c).await
    }
    async fn connection(&self, id: ConnectionId) -> StoreResult<Option<Connection>> {
        self.0.connection(id).await
    }
    async fn update_connection(&self, c: &Connection) -> StoreResult<()> {
        self.0.update_connection(c).await
    }
    async fn remove_connection(&self, c: &Connection) -> StoreResult<()> {
        self.0.remove_connection(c).await
    }
    async fn connections(&self, t: TenantId) -> StoreResult<Vec<Connection>> {
        self.0.connections(t).await
    }
    async fn connection_by_address(&self, p: Provider, a: &str) -> StoreResult<Option<Connection>> {
        self.0.connection_by_address(p, a).await
    }
    async fn create_agent(&self, a: &Agent, h: [u8; 32]) -> StoreResult<()> {
        self.0.create_agent(a, h).await
    }
    async fn agent_by_token(&self, h: [u8; 32]) -> StoreResult<Option<Agent>> {
        self.0.agent_by_token(h).await
    }
    async fn conversation(
        &self,
        t: TenantId,
        id: ConversationId,
    ) -> StoreResult<Option<Conversation>> {
        self.0.conversation(t, id).await
    }
    async fn commit(&self, commit: ConversationCommit) -> StoreResult<()> {
        let poisoned = commit
            .messages
            .iter()
            .any(|m| matches!(&m.content, MessageContent::Text { body } if body == "POISON"));
        assert!(
            !poisoned,
            "injected fault: poison message reached the store"
        );
        self.0.commit(commit).await
    }
    async fn pending_outbound(
        &self,
        l: usize,
    ) -> StoreResult<Vec<(TenantId, ConversationId, Seq)>> {
        self.0.pending_outbound(l).await
    }
    async fn message_ref(
        &self,
        t: TenantId,
        c: ConversationId,
        k: &MessageKey,
    ) -> StoreResult<Option<MessageRef>> {
        self.0.message_ref(t, c, k).await
    }
    async fn message(
        &self,
        t: TenantId,
        c: ConversationId,
        s: Seq,
    ) -> StoreResult<Option<Message>> {
        self.0.message(t, c, s).await
    }
    async fn messages(
        &self,
        t: TenantId,
        c: ConversationId,
        w: SeqWindow,
        l: usize,
    ) -> StoreResult<Vec<Message>> {
        self.0.messages(t, c, w, l).await
    }
    async fn events(
        &self,
        t: TenantId,
        c: ConversationId,
        a: Seq,
        l: usize,
    ) -> StoreResult<Vec<EventEnvelope>> {
        self.0.events(t, c, a, l).await
    }
    async fn inbox(
        &self,
        t: TenantId,
        v: &InboxView,
        c: Option<InboxCursor>,
        l: usize,
    ) -> StoreResult<Vec<Conversation>> {
        self.0.inbox(t, v, c, l).await
    }
    async fn active_since(
        &self,
        t: TenantId,
        s: Timestamp,
        l: usize,
    ) -> StoreResult<Vec<Conversation>> {
        self.0.active_since(t, s, l).await
    }
}

struct Fixture {
    directory: Arc<Directory>,
    store: Arc<EmbeddedStore>,
    tenant: TenantId,
    connection: Connection,
    _dir: tempfile::TempDir,
}

async fn fixture(config: ActorConfig) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        EmbeddedStore::open(
            &EmbeddedConfig {
                data_dir: dir.path().to_path_buf(),
                ..Default::default()
            },
            SecretBox::new(&[9; 32]),
        )
        .unwrap(),
    );
    let tenant = TenantId::new();
    let connection = Connection {
        id: ConnectionId::new(),
        tenant_id: tenant,
        provider: Provider::WhatsappCloud,
        name: "n".into(),
        status: ConnectionStatus::Connected,
        settings: ChannelSettings::Meta(MetaSettings {
            account_id: "pn".into(),
            verify_token: "v".into(),
            app_secret: "s".into(),
            access_token: "t".into(),
        }),
        qr_code: None,
        created_at: Timestamp::now(),
    };
    store.create_connection(&connection).await.unwrap();
    let services = Services {
        store: Arc::new(PoisonOnCommit(Arc::clone(&store))),
        bus: Arc::new(InProcessBus::new(64)),
        // Unreachable on purpose: these tests send nothing out.
        channel: Arc::new(
            GraphClient::new(GraphConfig {
                graph_base: "http://127.0.0.1:9".into(),
                ..Default::default()
            })
            .unwrap(),
        ),
        config,
    };
    let directory = actors::node_supervisor::start(services).await.unwrap();
    Fixture {
        directory,
        store,
        tenant,
        connection,
        _dir: dir,
    }
}

fn text(wamid: &str, body: &str) -> Vec<InboundEvent> {
    vec![InboundEvent::Message(InboundMessage {
        provider_message_id: wamid.into(),
        from: Contact {
            address: "5511999990000".into(),
            name: None,
        },
        sent_at: Timestamp::now(),
        content: MessageContent::Text { body: body.into() },
        reply_to: None,
    })]
}

impl Fixture {
    fn conversation(&self) -> ConversationId {
        ConversationId::for_contact(self.tenant, self.connection.id, "5511999990000")
    }

    async fn ingest(&self, wamid: &str, body: &str) -> Result<actors::IngestReport, RouteError> {
        self.directory
            .ingest(
                self.tenant,
                &self.connection,
                self.conversation(),
                text(wamid, body),
                Instant::now(),
                wamid.into(),
            )
            .await
    }

    async fn seqs(&self) -> Vec<Seq> {
        self.store
            .events(self.tenant, self.conversation(), 0, 100)
            .await
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect()
    }
}

#[tokio::test]
async fn poison_message_is_refused_after_bounded_restarts_and_the_conversation_recovers() {
    let f = fixture(ActorConfig {
        max_delivery_attempts: 3,
        ..Default::default()
    })
    .await;
    assert_eq!(
        f.ingest("wamid.1", "antes").await.unwrap().messages_stored,
        1
    );

    let refused = f.ingest("wamid.2", "POISON").await;
    assert!(
        matches!(refused, Err(RouteError::Poisoned(3))),
        "got {refused:?}"
    );

    // A fresh actor, rebuilt from the store, carries on with the next seq; nothing was half-written.
    assert_eq!(
        f.ingest("wamid.3", "depois").await.unwrap().messages_stored,
        1
    );
    assert_eq!(f.seqs().await, vec![1, 2, 3]);
    let again = f.ingest("wamid.1", "antes").await.unwrap();
    assert_eq!((again.messages_stored, again.duplicates), (0, 1));
    f.directory.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn idle_conversation_passivates_and_resumes_from_the_store() {
    let config = ActorConfig {
        idle_timeout: Duration::from_millis(200),
        idle_check_interval: Duration::from_millis(50),
        ..Default::default()
    };
    let f = fixture(config).await;
    f.ingest("wamid.1", "um").await.unwrap();
    assert_eq!(f.directory.live_counts().1, 1);

    // Readiness-style wait: the actor count drops to zero once it has passivated.
    let deadline = Instant::now() + Duration::from_secs(20);
    while f.directory.live_counts().1 != 0 {
        assert!(
            Instant::now() < deadline,
            "conversation actor never passivated"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    f.ingest("wamid.2", "dois").await.unwrap();
    assert_eq!(f.directory.live_counts().1, 1);
    assert_eq!(f.seqs().await, vec![1, 2, 3]);
    f.directory.shutdown(Duration::from_secs(5)).await;
}
