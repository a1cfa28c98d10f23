//! The actor tree in-process, on the real embedded store: a conversation actor that panics is replaced
//! by a fresh one rebuilt from the store, a poison message is refused after a bounded number of
//! attempts instead of crash-looping, an idle conversation passivates and comes back with its seq, a
//! failed spawn never leaves two actors for one conversation, and commits whose outcome the store does
//! not tell are settled (answered, published once) or left for the next actor to publish.
//!
//! The only test-specific part is a wrapper around the real store that injects faults at the port: a
//! panic when asked to commit a message whose text is `POISON` (so the panic happens inside the
//! conversation actor's `handle`, as a bug would), a conversation load held and then failed, commits
//! that fail after writing or without writing, failing event reads, and a lookup held until released.

mod support;

use actors::{ActorConfig, Directory, RouteError, Services};
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
use support::faulty_store::{Faults, FaultyStore, LoadFault};

struct Fixture {
    directory: Arc<Directory>,
    load_fault: Arc<LoadFault>,
    faults: Arc<Faults>,
    bus: Arc<InProcessBus>,
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
            page_id: None,
            human_agent: false,
        }),
        qr_code: None,
        created_at: Timestamp::now(),
        version: 0,
    };
    store.create_connection(&connection).await.unwrap();
    let load_fault = Arc::new(LoadFault::default());
    let faults = Arc::new(Faults::default());
    let bus = Arc::new(InProcessBus::new(64));
    let services = Services {
        store: Arc::new(FaultyStore(
            Arc::clone(&store),
            Arc::clone(&load_fault),
            Arc::clone(&faults),
        )),
        bus: Arc::clone(&bus) as Arc<dyn schema::bus::EventBus>,
        // Unreachable on purpose: these tests send nothing out.
        channel: Arc::new(
            GraphClient::new(GraphConfig {
                graph_base: "http://127.0.0.1:9".into(),
                ..Default::default()
            })
            .unwrap(),
        ),
        config,
        usage: Default::default(),
    };
    let directory = actors::node_supervisor::start(services).await.unwrap();
    Fixture {
        directory,
        load_fault,
        faults,
        bus,
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
        reference: None,
        forwarded: false,
        sender: None,
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
                self.connection.id,
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

    // The actor count drops to zero once it has passivated.
    support::eventually("the conversation actor passivated", || async {
        (f.directory.live_counts().1 == 0).then_some(())
    })
    .await;

    f.ingest("wamid.2", "dois").await.unwrap();
    assert_eq!(f.directory.live_counts().1, 1);
    assert_eq!(f.seqs().await, vec![1, 2, 3]);
    f.directory.shutdown(Duration::from_secs(5)).await;
}

/// Two callers race for a conversation whose first spawn fails on a store blip: the waiter's retry
/// must land its actor where later lookups find it, so the conversation never gets a second actor.
#[tokio::test]
async fn a_failed_spawn_never_leaves_a_second_actor_for_the_same_conversation() {
    let f = fixture(ActorConfig::default()).await;
    f.load_fault
        .armed
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let (tenant, id) = (f.tenant, f.conversation());
    let first = tokio::spawn({
        let directory = Arc::clone(&f.directory);
        async move { directory.conversation(tenant, id).await }
    });
    f.load_fault.entered.notified().await;
    let second = tokio::spawn({
        let directory = Arc::clone(&f.directory);
        async move { directory.conversation(tenant, id).await }
    });
    // On this single-threaded runtime, yielding lets the second caller run until it waits on the
    // first caller's spawn.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    f.load_fault.release.notify_one();
    let first = first.await.unwrap();
    assert!(matches!(first, Err(RouteError::Spawn(_))), "got {first:?}");
    let second = second.await.unwrap().expect("the waiter spawned the actor");
    let later = f.directory.conversation(tenant, id).await.unwrap();
    assert_eq!(
        later.get_id(),
        second.get_id(),
        "a later lookup found another actor: two live actors serve one conversation"
    );
    assert_eq!(f.directory.live_counts().1, 1);
    f.directory.shutdown(Duration::from_secs(5)).await;
}

/// Seqs of the events published on the bus until `count` have arrived.
async fn published(
    live: &mut futures::stream::BoxStream<'static, schema::bus::BusItem>,
    count: usize,
) -> Vec<EventEnvelope> {
    let mut seen = Vec::new();
    while seen.len() < count {
        match tokio::time::timeout(Duration::from_secs(20), futures::StreamExt::next(live)).await {
            Ok(Some(schema::bus::BusItem::Event(published))) => {
                seen.push((*published.envelope).clone())
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => panic!("only {} of {count} events were published", seen.len()),
        }
    }
    seen
}

#[tokio::test]
async fn a_commit_written_but_answered_with_an_error_is_acknowledged_and_published_once() {
    let f = fixture(ActorConfig::default()).await;
    let mut live = schema::bus::EventBus::subscribe(f.bus.as_ref(), f.tenant);
    f.faults
        .write_then_fail
        .store(1, std::sync::atomic::Ordering::SeqCst);
    let report = f.ingest("wamid.1", "um").await.expect("settled as written");
    assert_eq!(report.messages_stored, 1);
    let events = published(&mut live, 2).await;
    assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(f.seqs().await, vec![1, 2]);
    // The provider's retry is a duplicate, not a second message.
    let again = f.ingest("wamid.1", "um").await.unwrap();
    assert_eq!((again.messages_stored, again.duplicates), (0, 1));
    f.directory.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_commit_that_failed_unwritten_is_retried_identically_and_stored_once() {
    let f = fixture(ActorConfig::default()).await;
    f.ingest("wamid.1", "um").await.unwrap();
    f.faults
        .fail_unwritten
        .store(2, std::sync::atomic::Ordering::SeqCst);
    let report = f
        .ingest("wamid.2", "dois")
        .await
        .expect("the identical retry landed");
    assert_eq!(report.messages_stored, 1);
    assert_eq!(f.seqs().await, vec![1, 2, 3]);
    f.directory.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_turn_left_unsettled_says_so_and_the_next_actor_publishes_what_was_stored() {
    let f = fixture(ActorConfig {
        turn_deadline: Duration::from_millis(300),
        ..Default::default()
    })
    .await;
    let mut live = schema::bus::EventBus::subscribe(f.bus.as_ref(), f.tenant);
    f.faults
        .write_then_fail
        .store(1, std::sync::atomic::Ordering::SeqCst);
    f.faults
        .events_down
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let unknown = f.ingest("wamid.1", "um").await.unwrap_err();
    assert!(
        !unknown.outcome_known(),
        "the caller must not be told nothing was done: {unknown:?}"
    );
    f.faults
        .events_down
        .store(false, std::sync::atomic::Ordering::SeqCst);
    // The next actor for the conversation (started by the next message, or by the directory on its
    // own a few seconds later) publishes the stored turn.
    f.directory
        .conversation(f.tenant, f.conversation())
        .await
        .unwrap();
    let events = published(&mut live, 2).await;
    assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2]);
    let again = f.ingest("wamid.1", "um").await.unwrap();
    assert_eq!((again.messages_stored, again.duplicates), (0, 1));
    f.directory.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn events_are_stamped_when_committed_not_when_their_turn_started() {
    let f = fixture(ActorConfig::default()).await;
    f.ingest("wamid.1", "um").await.unwrap();
    f.faults
        .hold_lookup
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let turn = tokio::spawn({
        let directory = Arc::clone(&f.directory);
        let (tenant, connection, id) = (f.tenant, f.connection.clone(), f.conversation());
        async move {
            directory
                .ingest(
                    tenant,
                    connection.id,
                    id,
                    text("wamid.2", "dois"),
                    Instant::now(),
                    "r".into(),
                )
                .await
        }
    });
    f.faults.lookup_entered.notified().await;
    // The turn has started and waits on the store; everything it commits happens after this instant.
    let after_start = Timestamp::now();
    f.faults.release_lookup.notify_one();
    turn.await.unwrap().unwrap();
    let events = f
        .store
        .events(f.tenant, f.conversation(), 2, 10)
        .await
        .unwrap();
    assert!(!events.is_empty());
    assert!(
        events.iter().all(|e| e.at >= after_start),
        "an event carries its turn's start time: {:?} < {after_start}",
        events.iter().map(|e| e.at).min()
    );
    f.directory.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_request_whose_caller_gave_up_is_never_applied() {
    let f = fixture(ActorConfig {
        call_timeout: Duration::from_secs(1),
        ..Default::default()
    })
    .await;
    f.ingest("wamid.1", "um").await.unwrap();
    f.faults
        .hold_lookup
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let slow = tokio::spawn({
        let directory = Arc::clone(&f.directory);
        let (tenant, connection, id) = (f.tenant, f.connection.clone(), f.conversation());
        async move {
            directory
                .ingest(
                    tenant,
                    connection.id,
                    id,
                    text("wamid.2", "dois"),
                    Instant::now(),
                    "a".into(),
                )
                .await
        }
    });
    f.faults.lookup_entered.notified().await;
    // Queued behind the held turn; its caller gives up after the call timeout.
    let queued = f.ingest("wamid.3", "três").await;
    assert!(matches!(queued, Err(RouteError::Timeout(_))), "{queued:?}");
    f.faults.release_lookup.notify_one();
    let slow = slow.await.unwrap();
    assert!(matches!(slow, Err(RouteError::Timeout(_))), "{slow:?}");
    // The held turn completes (its outcome was "unknown", and it happened); the expired one was
    // skipped, so it is stored only when the provider retries it.
    let stored = |wamid: &'static str| {
        let store = Arc::clone(&f.store);
        let (tenant, id) = (f.tenant, f.conversation());
        async move {
            store
                .message_ref(tenant, id, &MessageKey::Provider(wamid.into()))
                .await
                .unwrap()
                .is_some()
        }
    };
    support::eventually("the held turn completed", || async {
        stored("wamid.2").await.then_some(())
    })
    .await;
    // One more request through the same mailbox proves the expired one was handled (skipped) first.
    f.ingest("wamid.4", "quatro").await.unwrap();
    assert!(
        !stored("wamid.3").await,
        "a request whose caller gave up was applied"
    );
    let retried = f.ingest("wamid.3", "três").await.unwrap();
    assert_eq!(retried.messages_stored, 1);
    f.directory.shutdown(Duration::from_secs(5)).await;
}

/// An echo that names our reply by the reference sent with it (Messenger `metadata`) is matched to that
/// reply exactly, even before the send call answers; an echo of the same text without the reference is
/// not taken for it.
#[tokio::test]
async fn an_echo_is_matched_to_its_reply_by_reference_never_by_text() {
    let f = fixture(ActorConfig {
        // The provider is unreachable: the send keeps retrying, unanswered, for the whole test.
        outbound_max_attempts: 1_000,
        outbound_retry_min: Duration::from_secs(60),
        outbound_retry_max: Duration::from_secs(60),
        ..Default::default()
    })
    .await;
    f.ingest("wamid.1", "oi").await.unwrap();
    let reply = f
        .directory
        .send(
            f.tenant,
            f.conversation(),
            schema::AgentId::new(),
            MessageContent::Text {
                body: "Bom dia".into(),
            },
            None,
        )
        .await
        .unwrap();
    let echo = |mid: &str, reference: Option<String>| {
        vec![InboundEvent::Echo(InboundMessage {
            provider_message_id: mid.into(),
            from: Contact {
                address: "5511999990000".into(),
                name: None,
            },
            sent_at: Timestamp::now(),
            content: MessageContent::Text {
                body: "Bom dia".into(),
            },
            reply_to: None,
            reference,
            forwarded: false,
            sender: None,
        })]
    };
    let ingest = |events| {
        f.directory.ingest(
            f.tenant,
            f.connection.id,
            f.conversation(),
            events,
            Instant::now(),
            "echo".into(),
        )
    };
    // Same text, no reference: held, the reply untouched.
    ingest(echo("m_typed", None)).await.unwrap();
    let stored = f
        .store
        .message(f.tenant, f.conversation(), reply.seq)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (stored.status, stored.provider_message_id.as_deref()),
        (MessageStatus::Pending, None)
    );
    // Named by reference: this is the reply.
    ingest(echo("m_ours", Some(reply.id.to_string())))
        .await
        .unwrap();
    let stored = f
        .store
        .message(f.tenant, f.conversation(), reply.seq)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (stored.status, stored.provider_message_id.as_deref()),
        (MessageStatus::Sent, Some("m_ours"))
    );
    f.directory.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_node_at_its_live_conversation_bound_refuses_another_with_nothing_done() {
    let f = fixture(ActorConfig {
        max_live_conversations: 1,
        ..Default::default()
    })
    .await;
    f.ingest("wamid.1", "um").await.unwrap();
    let other = ConversationId::for_contact(f.tenant, f.connection.id, "5511888880000");
    let mut event = text("wamid.2", "outro");
    if let InboundEvent::Message(m) = &mut event[0] {
        m.from.address = "5511888880000".into();
    }
    let refused = f
        .directory
        .ingest(
            f.tenant,
            f.connection.id,
            other,
            event,
            Instant::now(),
            "r".into(),
        )
        .await;
    assert!(
        matches!(&refused, Err(e @ RouteError::Overloaded) if e.outcome_known()),
        "{refused:?}"
    );
    // The conversation already alive keeps working.
    assert_eq!(
        f.ingest("wamid.3", "três").await.unwrap().messages_stored,
        1
    );
    f.directory.shutdown(Duration::from_secs(5)).await;
}

/// A key left behind by a turn whose commit was never completed (the CQL large-turn path writes keys
/// before the conversation row) points at a seq a later turn reused for another message: the
/// provider's retry of the lost message must be stored, not taken for a duplicate.
#[tokio::test]
async fn a_stale_key_from_an_unfinished_turn_never_swallows_the_providers_retry() {
    let f = fixture(ActorConfig::default()).await;
    f.ingest("wamid.1", "um").await.unwrap();
    let stored = f
        .store
        .conversation(f.tenant, f.conversation())
        .await
        .unwrap()
        .unwrap();
    // What two unfinished turns left: only the keys of their messages, at seqs 3 and 5.
    let key = |wamid: &str, seq| {
        (
            MessageKey::Provider(wamid.into()),
            MessageRef {
                message_id: schema::MessageId::new(),
                seq,
            },
        )
    };
    let leftover = ConversationCommit {
        conversation: stored.clone(),
        previous: Some(InboxPosition::of(&stored)),
        events: Vec::new(),
        messages: Vec::new(),
        message_keys: vec![key("wamid.LOST-A", 3), key("wamid.LOST-B", 5)],
        search_terms: Vec::new(),
        fence: None,
        write_by: None,
    };
    f.store.commit(leftover).await.unwrap();
    // Another message takes seq 3; the retry of A finds its key naming seq 3, where another message is.
    assert_eq!(
        f.ingest("wamid.2", "dois").await.unwrap().messages_stored,
        1
    );
    let a = f.ingest("wamid.LOST-A", "perdida").await.unwrap();
    assert_eq!((a.messages_stored, a.duplicates), (1, 0), "A was lost");
    // B's key names seq 5, past anything stored.
    let b = f.ingest("wamid.LOST-B", "perdida").await.unwrap();
    assert_eq!((b.messages_stored, b.duplicates), (1, 0), "B was lost");
    let again = f.ingest("wamid.LOST-B", "perdida").await.unwrap();
    assert_eq!(
        (again.messages_stored, again.duplicates),
        (0, 1),
        "once stored for real, the retry is a duplicate"
    );
    f.directory.shutdown(Duration::from_secs(5)).await;
}
