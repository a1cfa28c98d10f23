//! The storage contract: what every backend must do, case by case. Each case takes a [`Backend`] and
//! uses fresh tenants, so cases share one server without seeing each other.

use crate::backends::Backend;
use futures::future::join_all;
use jiff::Timestamp;
use schema::fixtures::{self, Live, text_of};
use schema::records::{ConnectionStatus, ConversationStatus, MessageStatus, Provider};
use schema::store::{InboxCursor, InboxView, MessageKey, SeqWindow, StoreError};
use schema::{ConversationId, Seq, TenantId};
use std::collections::HashSet;

/// A case: its name (used in the test name) and its body.
pub type CaseFn = for<'a> fn(&'a Backend) -> futures::future::BoxFuture<'a, ()>;

macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        pub const CASES: &[(&str, CaseFn)] = &[$((stringify!($name), |b| Box::pin($name(b)))),*];
    };
}

// The restart case comes last: it stops and restarts the backend's process.
cases!(
    appended_turn_reads_back_whole,
    same_provider_message_twice_is_stored_once,
    concurrent_duplicate_turns_store_one_and_refuse_the_other,
    commit_that_skips_or_repeats_a_seq_is_refused,
    history_pages_in_both_directions,
    events_after_a_seq_resume_in_order,
    inbox_is_newest_first_with_exact_cursor_paging,
    inbox_views_list_only_their_conversations_and_follow_changes,
    active_since_returns_only_recent_conversations,
    status_never_moves_backwards,
    outbox_holds_pending_replies_until_the_provider_answers,
    tenant_cannot_read_another_tenants_data,
    connections_are_unique_by_address_and_round_trip_their_secrets,
    agent_is_found_by_token_hash_only,
    large_and_unicode_payloads_round_trip,
    many_concurrent_conversations_all_persist,
    data_survives_a_restart_of_the_backend_process,
);

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + seconds).expect("valid timestamp")
}

async fn appended_turn_reads_back_whole(b: &Backend) {
    let store = b.store().await;
    let mut live = Live::new(TenantId::new(), "5511988887777");
    let commit = live.inbound("wamid.A1", "Oi, meu pedido atrasou", at(0));
    store.commit(commit).await.expect("commit");

    let conversation = store
        .conversation(live.tenant(), live.id())
        .await
        .expect("read")
        .expect("conversation exists");
    assert_eq!(conversation, live.conversation);
    let events = store
        .events(live.tenant(), live.id(), 0, 10)
        .await
        .expect("events");
    assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(events[0].event.name(), "conversation.created");
    let message = store
        .message(live.tenant(), live.id(), 2)
        .await
        .expect("read")
        .expect("message at seq 2");
    assert_eq!(text_of(&message), "Oi, meu pedido atrasou");
    let reference = store
        .message_ref(
            live.tenant(),
            live.id(),
            &MessageKey::Provider("wamid.A1".into()),
        )
        .await
        .expect("read")
        .expect("provider id is indexed");
    assert_eq!((reference.message_id, reference.seq), (message.id, 2));
}

async fn same_provider_message_twice_is_stored_once(b: &Backend) {
    // The actor's dedupe: look the provider id up, and only commit when it is unknown.
    let store = b.store().await;
    let mut live = Live::new(TenantId::new(), "5511900000001");
    for _attempt in 0..2 {
        let key = MessageKey::Provider("wamid.RETRY".into());
        if store
            .message_ref(live.tenant(), live.id(), &key)
            .await
            .expect("lookup")
            .is_none()
        {
            let commit = live.inbound("wamid.RETRY", "duplicado?", at(1));
            store.commit(commit).await.expect("commit");
        }
    }
    let messages = store
        .messages(live.tenant(), live.id(), SeqWindow::After(0), 100)
        .await
        .expect("history");
    assert_eq!(messages.len(), 1);
}

async fn concurrent_duplicate_turns_store_one_and_refuse_the_other(b: &Backend) {
    // Two writers racing with the same turn (a placement bug, or a webhook retry racing the first
    // delivery on two nodes): the turn is stored once. Backends with an atomic seq check (embedded,
    // PostgreSQL) also refuse the loser; the CQL backend, which has no LWT on this path, may accept
    // both identical writes.
    let store = b.store().await;
    let mut live = Live::new(TenantId::new(), "5511900000002");
    let commit = live.inbound("wamid.RACE", "primeira", at(2));
    let (first, second) = tokio::join!(store.commit(commit.clone()), store.commit(commit));
    let outcomes = [first, second];
    assert!(
        outcomes
            .iter()
            .all(|r| r.is_ok() || matches!(r, Err(StoreError::SeqConflict { .. }))),
        "{outcomes:?}"
    );
    let accepted = outcomes.iter().filter(|r| r.is_ok()).count();
    if b.checks_seq_atomically {
        assert_eq!(accepted, 1, "exactly one writer wins: {outcomes:?}");
    } else {
        // Without a lightweight transaction both may land; they wrote the same rows, so the
        // conversation still holds the turn once (checked below).
        assert!(accepted >= 1, "{outcomes:?}");
    }
    let events = store
        .events(live.tenant(), live.id(), 0, 100)
        .await
        .expect("events");
    assert_eq!(events.len(), 2);
    let messages = store
        .messages(live.tenant(), live.id(), SeqWindow::After(0), 100)
        .await
        .expect("history");
    assert_eq!(messages.len(), 1);
}

async fn commit_that_skips_or_repeats_a_seq_is_refused(b: &Backend) {
    let store = b.store().await;
    let mut live = Live::new(TenantId::new(), "5511900000003");
    store
        .commit(live.inbound("wamid.S1", "um", at(3)))
        .await
        .expect("first turn");
    let mut ahead = live.clone();
    ahead.conversation.last_seq += 5;
    let gap = ahead.inbound("wamid.S2", "pula", at(4));
    assert!(matches!(
        store.commit(gap).await,
        Err(StoreError::SeqConflict { stored: 2, .. })
    ));
    let mut behind = live.clone();
    behind.conversation.last_seq -= 1;
    let repeat = behind.inbound("wamid.S3", "repete", at(5));
    assert!(matches!(
        store.commit(repeat).await,
        Err(StoreError::SeqConflict { stored: 2, .. })
    ));
    store
        .commit(live.inbound("wamid.S4", "dois", at(6)))
        .await
        .expect("the right next turn still commits");
    let stored = store
        .conversation(live.tenant(), live.id())
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(stored.last_seq, 3);
}

async fn history_pages_in_both_directions(b: &Backend) {
    let store = b.store().await;
    let mut live = Live::new(TenantId::new(), "5511900000004");
    for n in 0..25 {
        store
            .commit(live.inbound(&format!("wamid.H{n}"), &format!("msg {n}"), at(10 + n)))
            .await
            .expect("commit");
    }
    // Seqs: 1 is conversation.created, messages are 2..=26.
    let texts = |page: &[schema::records::Message]| {
        page.iter()
            .map(|m| text_of(m).to_string())
            .collect::<Vec<_>>()
    };
    let (t, c) = (live.tenant(), live.id());
    let first = store
        .messages(t, c, SeqWindow::After(0), 10)
        .await
        .expect("page");
    assert_eq!(
        texts(&first),
        (0..10).map(|n| format!("msg {n}")).collect::<Vec<_>>()
    );
    let next = store
        .messages(t, c, SeqWindow::After(first[9].seq), 10)
        .await
        .expect("page");
    assert_eq!(
        texts(&next),
        (10..20).map(|n| format!("msg {n}")).collect::<Vec<_>>()
    );
    let newest = store
        .messages(t, c, SeqWindow::Before(Seq::MAX), 10)
        .await
        .expect("page");
    assert_eq!(
        texts(&newest),
        (15..25).map(|n| format!("msg {n}")).collect::<Vec<_>>()
    );
    let older = store
        .messages(t, c, SeqWindow::Before(newest[0].seq), 10)
        .await
        .expect("page");
    assert_eq!(
        texts(&older),
        (5..15).map(|n| format!("msg {n}")).collect::<Vec<_>>()
    );
    let oldest = store
        .messages(t, c, SeqWindow::Before(older[0].seq), 10)
        .await
        .expect("page");
    assert_eq!(
        texts(&oldest),
        (0..5).map(|n| format!("msg {n}")).collect::<Vec<_>>()
    );
    let past_end = store
        .messages(t, c, SeqWindow::After(26), 10)
        .await
        .expect("page");
    assert!(past_end.is_empty());
}

async fn events_after_a_seq_resume_in_order(b: &Backend) {
    let store = b.store().await;
    let mut live = Live::new(TenantId::new(), "5511900000005");
    for n in 0..12 {
        store
            .commit(live.inbound(&format!("wamid.E{n}"), "evento", at(40 + n)))
            .await
            .expect("commit");
    }
    let (t, c) = (live.tenant(), live.id());
    let mut seen = Vec::new();
    let mut after = 4;
    loop {
        let page = store.events(t, c, after, 3).await.expect("events");
        if page.is_empty() {
            break;
        }
        after = page.last().map(|e| e.seq).unwrap_or(after);
        seen.extend(page.into_iter().map(|e| e.seq));
    }
    assert_eq!(seen, (5..=13).collect::<Vec<_>>());
}

async fn inbox_is_newest_first_with_exact_cursor_paging(b: &Backend) {
    let store = b.store().await;
    let tenant = TenantId::new();
    // Five conversations; two of them active in the very same microsecond (ties order by id).
    let mut lives: Vec<Live> = (0..5)
        .map(|n| Live::new(tenant, &format!("55119100000{n}")))
        .collect();
    let times = [at(100), at(300), at(200), at(300), at(50)];
    for (live, time) in lives.iter_mut().zip(times) {
        store
            .commit(live.inbound(&format!("wamid.{}", live.id()), "oi", time))
            .await
            .expect("commit");
    }
    // The oldest one gets new activity and must move to the top, and appear only once.
    let moved = lives[4].inbound("wamid.MOVED", "de novo", at(400));
    store.commit(moved).await.expect("commit");

    let mut expected: Vec<(Timestamp, ConversationId)> = lives
        .iter()
        .map(|l| (l.conversation.last_activity_at, l.id()))
        .collect();
    expected.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.0.as_bytes().cmp(b.1.0.as_bytes())));
    let expected: Vec<ConversationId> = expected.into_iter().map(|(_, id)| id).collect();

    let mut listed = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .inbox(tenant, &InboxView::All, cursor, 2)
            .await
            .expect("inbox");
        if page.is_empty() {
            break;
        }
        let last = page.last().expect("non-empty");
        cursor = Some(InboxCursor {
            last_activity_at: last.last_activity_at,
            conversation_id: last.id,
        });
        listed.extend(page.into_iter().map(|c| c.id));
    }
    assert_eq!(listed, expected);
}

async fn inbox_views_list_only_their_conversations_and_follow_changes(b: &Backend) {
    let store = b.store().await;
    let tenant = TenantId::new();
    let agent = schema::AgentId::new();
    let ids = |page: Vec<schema::records::Conversation>| {
        page.into_iter().map(|c| c.id).collect::<Vec<_>>()
    };
    let mut open = Live::new(tenant, "5511940000001");
    let mut mine = Live::new(tenant, "5511940000002");
    mine.conversation.assignee = Some(agent);
    mine.conversation.team = Some("vendas".into());
    let mut resolved = Live::new(tenant, "5511940000003");
    resolved.conversation.status = ConversationStatus::Resolved;
    resolved.conversation.team = Some("vendas".into());
    store
        .commit(open.inbound("wamid.V1", "oi", at(4000)))
        .await
        .expect("commit");
    store
        .commit(mine.inbound("wamid.V2", "oi", at(4001)))
        .await
        .expect("commit");
    store
        .commit(resolved.inbound("wamid.V3", "oi", at(4002)))
        .await
        .expect("commit");

    let list = |view: InboxView| {
        let store = store.clone();
        async move { ids(store.inbox(tenant, &view, None, 10).await.expect("inbox")) }
    };
    assert_eq!(
        list(InboxView::All).await,
        vec![resolved.id(), mine.id(), open.id()]
    );
    assert_eq!(
        list(InboxView::Status(ConversationStatus::Open)).await,
        vec![mine.id(), open.id()]
    );
    assert_eq!(
        list(InboxView::Status(ConversationStatus::Resolved)).await,
        vec![resolved.id()]
    );
    assert_eq!(list(InboxView::Assignee(agent)).await, vec![mine.id()]);
    assert_eq!(
        list(InboxView::Team("vendas".into())).await,
        vec![resolved.id(), mine.id()]
    );
    assert!(list(InboxView::Team("suporte".into())).await.is_empty());
    assert!(
        list(InboxView::Assignee(schema::AgentId::new()))
            .await
            .is_empty()
    );

    // The contact writes again and the ticket is handed to another team: the conversation leaves
    // its old views, joins the new ones, and moves to the top.
    mine.conversation.team = Some("suporte".into());
    mine.conversation.status = ConversationStatus::InProgress;
    store
        .commit(mine.inbound("wamid.V4", "de novo", at(4003)))
        .await
        .expect("commit");
    assert_eq!(
        list(InboxView::Team("vendas".into())).await,
        vec![resolved.id()]
    );
    assert_eq!(
        list(InboxView::Team("suporte".into())).await,
        vec![mine.id()]
    );
    assert_eq!(
        list(InboxView::Status(ConversationStatus::Open)).await,
        vec![open.id()]
    );
    assert_eq!(
        list(InboxView::Status(ConversationStatus::InProgress)).await,
        vec![mine.id()]
    );
    assert_eq!(
        list(InboxView::All).await,
        vec![mine.id(), resolved.id(), open.id()]
    );

    // Cursor paging inside a view; another tenant's view of the same name is empty.
    let first = store
        .inbox(
            tenant,
            &InboxView::Status(ConversationStatus::Resolved),
            None,
            1,
        )
        .await
        .expect("page");
    let cursor = first.last().map(|c| InboxCursor {
        last_activity_at: c.last_activity_at,
        conversation_id: c.id,
    });
    let rest = store
        .inbox(
            tenant,
            &InboxView::Status(ConversationStatus::Resolved),
            cursor,
            10,
        )
        .await
        .expect("page");
    assert!(rest.is_empty());
    let other = store
        .inbox(TenantId::new(), &InboxView::Team("vendas".into()), None, 10)
        .await
        .expect("other tenant");
    assert!(other.is_empty());
}

async fn active_since_returns_only_recent_conversations(b: &Backend) {
    let store = b.store().await;
    let tenant = TenantId::new();
    let mut old = Live::new(tenant, "5511920000001");
    let mut recent = Live::new(tenant, "5511920000002");
    store
        .commit(old.inbound("wamid.OLD", "velha", at(500)))
        .await
        .expect("commit");
    store
        .commit(recent.inbound("wamid.NEW", "nova", at(900)))
        .await
        .expect("commit");
    let active = store
        .active_since(tenant, at(700), 10)
        .await
        .expect("active");
    assert_eq!(
        active.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![recent.id()]
    );
    let both = store
        .active_since(tenant, at(500), 10)
        .await
        .expect("active");
    assert_eq!(both.len(), 2);
}

async fn status_never_moves_backwards(b: &Backend) {
    let store = b.store().await;
    let mut live = Live::new(TenantId::new(), "5511900000006");
    store
        .commit(live.inbound("wamid.IN", "oi", at(1000)))
        .await
        .expect("commit");
    let (commit, reply) = live.reply("client-1", "Olá! Como posso ajudar?");
    store.commit(commit).await.expect("reply");
    store
        .commit(live.status(&reply, MessageStatus::Read))
        .await
        .expect("read");
    // A late `delivered` (and even a stale `pending` rewrite) must not move it back.
    store
        .commit(live.status(&reply, MessageStatus::Delivered))
        .await
        .expect("late delivered is accepted as a turn");
    store
        .commit(live.status(&reply, MessageStatus::Pending))
        .await
        .expect("stale rewrite is accepted as a turn");
    let stored = store
        .message(live.tenant(), live.id(), reply.seq)
        .await
        .expect("read")
        .expect("message");
    assert_eq!(stored.status, MessageStatus::Read);
    let pending = store.pending_outbound(100_000).await.expect("outbox");
    assert!(
        !pending.contains(&(live.tenant(), live.id(), reply.seq)),
        "a stale pending write must not put a read message back in the outbox"
    );
}

async fn outbox_holds_pending_replies_until_the_provider_answers(b: &Backend) {
    let store = b.store().await;
    let mut live = Live::new(TenantId::new(), "5511900000007");
    store
        .commit(live.inbound("wamid.IN", "oi", at(1100)))
        .await
        .expect("commit");
    let (commit, reply) = live.reply("client-7", "resposta");
    store.commit(commit).await.expect("reply");
    let entry = (live.tenant(), live.id(), reply.seq);
    assert!(
        store
            .pending_outbound(100_000)
            .await
            .expect("outbox")
            .contains(&entry)
    );
    let by_client = store
        .message_ref(
            live.tenant(),
            live.id(),
            &MessageKey::Client("client-7".into()),
        )
        .await
        .expect("lookup")
        .expect("client id indexed");
    assert_eq!(by_client.seq, reply.seq);
    store
        .commit(live.status(&reply, MessageStatus::Accepted))
        .await
        .expect("accepted");
    assert!(
        !store
            .pending_outbound(100_000)
            .await
            .expect("outbox")
            .contains(&entry)
    );
}

async fn tenant_cannot_read_another_tenants_data(b: &Backend) {
    let store = b.store().await;
    let mut live = Live::new(TenantId::new(), "5511900000008");
    store
        .commit(live.inbound("wamid.SECRET", "dado do tenant A", at(1200)))
        .await
        .expect("commit");
    let other = TenantId::new();
    let (c, key) = (live.id(), MessageKey::Provider("wamid.SECRET".into()));
    assert!(store.conversation(other, c).await.expect("read").is_none());
    assert!(store.message(other, c, 2).await.expect("read").is_none());
    assert!(
        store
            .messages(other, c, SeqWindow::After(0), 10)
            .await
            .expect("read")
            .is_empty()
    );
    assert!(
        store
            .events(other, c, 0, 10)
            .await
            .expect("read")
            .is_empty()
    );
    assert!(
        store
            .message_ref(other, c, &key)
            .await
            .expect("read")
            .is_none()
    );
    assert!(
        store
            .inbox(other, &InboxView::All, None, 10)
            .await
            .expect("read")
            .is_empty()
    );
    assert!(
        store
            .active_since(other, at(0), 10)
            .await
            .expect("read")
            .is_empty()
    );
    // A commit that names tenant B for A's conversation data is refused, not merged.
    let mut forged = live.inbound("wamid.FORGED", "intruso", at(1201));
    forged.messages[0].tenant_id = other;
    assert!(store.commit(forged).await.is_err());
}

async fn connections_are_unique_by_address_and_round_trip_their_secrets(b: &Backend) {
    let store = b.store().await;
    let tenant = fixtures::tenant();
    store.create_tenant(&tenant).await.expect("tenant");
    assert_eq!(
        store.tenant(tenant.id).await.expect("read"),
        Some(tenant.clone())
    );
    let address = format!("pn-{}", TenantId::new());
    let mut connection = fixtures::connection(tenant.id, &address);
    store.create_connection(&connection).await.expect("create");
    let taken = fixtures::connection(tenant.id, &address);
    assert!(matches!(
        store.create_connection(&taken).await,
        Err(StoreError::Conflict(_))
    ));
    let found = store
        .connection_by_address(Provider::WhatsappCloud, &address)
        .await
        .expect("read")
        .expect("routed by address");
    assert_eq!(found, connection, "secrets open back to what was written");
    assert!(
        store
            .connection_by_address(Provider::Messenger, &address)
            .await
            .expect("read")
            .is_none(),
        "addresses are per provider"
    );
    connection.status = ConnectionStatus::Paused;
    if let schema::records::ChannelSettings::Meta(meta) = &mut connection.settings {
        meta.access_token = "rotated-token".into();
    }
    store.update_connection(&connection).await.expect("update");
    // The update bumped the version; one made from the record read before it is refused, so a
    // session webhook can never revert an admin's pause or credential rotation.
    let stale = connection.clone();
    connection.version += 1;
    assert_eq!(
        store.connection(connection.id).await.expect("read"),
        Some(connection.clone())
    );
    let mut reverting = stale;
    reverting.status = ConnectionStatus::Connected;
    assert!(matches!(
        store.update_connection(&reverting).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store
            .connection(connection.id)
            .await
            .expect("read")
            .map(|c| c.status),
        Some(ConnectionStatus::Paused)
    );
    assert_eq!(
        store.connections(tenant.id).await.expect("list"),
        vec![connection.clone()]
    );
    assert!(
        store
            .connections(TenantId::new())
            .await
            .expect("list")
            .is_empty()
    );
    store.remove_connection(&connection).await.expect("remove");
    // A late update (a session webhook racing the removal) must not bring it back.
    assert!(matches!(
        store.update_connection(&connection).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(
        store
            .connection(connection.id)
            .await
            .expect("read")
            .is_none()
    );
    store
        .create_connection(&taken)
        .await
        .expect("a removed connection frees its address");

    // Evolution instance names are unique per Evolution server only: two tenants may each run an
    // instance `main` on their own server, but one server's instance is claimed once.
    let instance = format!("main-{}", TenantId::new());
    let evolution = |tenant: TenantId, server: &str| {
        let mut c = fixtures::connection(tenant, "unused");
        c.provider = Provider::Evolution;
        c.settings =
            schema::records::ChannelSettings::Evolution(schema::records::EvolutionSettings {
                server_url: server.into(),
                instance: instance.clone(),
                api_key: "evo-key".into(),
                webhook_token: "hook".into(),
            });
        c
    };
    let other = fixtures::tenant();
    store.create_tenant(&other).await.expect("tenant");
    store
        .create_connection(&evolution(tenant.id, "https://evo.acme.example"))
        .await
        .expect("first server's instance");
    store
        .create_connection(&evolution(other.id, "https://evo.other.example/"))
        .await
        .expect("the same instance name on another server");
    assert!(matches!(
        store
            .create_connection(&evolution(other.id, "https://EVO.acme.example/"))
            .await,
        Err(StoreError::Conflict(_))
    ));
}

async fn agent_is_found_by_token_hash_only(b: &Backend) {
    let store = b.store().await;
    let tenant = fixtures::tenant();
    store.create_tenant(&tenant).await.expect("tenant");
    let agent = fixtures::agent(tenant.id);
    let token_hash = *uuid::Uuid::new_v4().as_bytes();
    let mut hash = [0u8; 32];
    hash[..16].copy_from_slice(&token_hash);
    store.create_agent(&agent, hash).await.expect("agent");
    assert_eq!(store.agent_by_token(hash).await.expect("read"), Some(agent));
    hash[31] ^= 1;
    assert!(store.agent_by_token(hash).await.expect("read").is_none());
}

async fn large_and_unicode_payloads_round_trip(b: &Backend) {
    let store = b.store().await;
    let mut live = Live::new(TenantId::new(), "5511900000009");
    let unicode = "Olá, ação! 你好 👋🏽 مرحبا \u{200d} \"aspas\" \\barra\\ \t tab \u{0} nul";
    let large: String = "Conversa é ótima 🚀 ".repeat(3_000);
    store
        .commit(live.inbound("wamid.UNI", unicode, at(1300)))
        .await
        .expect("unicode");
    store
        .commit(live.inbound("wamid.BIG", &large, at(1301)))
        .await
        .expect("64 KiB message");
    let messages = store
        .messages(live.tenant(), live.id(), SeqWindow::After(0), 10)
        .await
        .expect("history");
    assert_eq!(text_of(&messages[0]), unicode);
    assert_eq!(text_of(&messages[1]), large);
    assert!(large.len() > 60_000);
}

async fn many_concurrent_conversations_all_persist(b: &Backend) {
    let store = b.store().await;
    let tenant = TenantId::new();
    let writers = (0..128).map(|n| {
        let store = store.clone();
        async move {
            let mut live = Live::new(tenant, &format!("55119300{n:05}"));
            for turn in 0..4 {
                let id = format!("wamid.C{n}.{turn}");
                store
                    .commit(live.inbound(&id, "concorrente", at(2000 + turn)))
                    .await
                    .expect("commit");
            }
            live.id()
        }
    });
    let ids: HashSet<ConversationId> = join_all(writers).await.into_iter().collect();
    for id in &ids {
        let events = store.events(tenant, *id, 0, 100).await.expect("events");
        assert_eq!(
            events.iter().map(|e| e.seq).collect::<Vec<_>>(),
            (1..=5).collect::<Vec<_>>()
        );
    }
    let mut listed = HashSet::new();
    let mut cursor = None;
    loop {
        let page = store
            .inbox(tenant, &InboxView::All, cursor, 50)
            .await
            .expect("inbox");
        let Some(last) = page.last() else { break };
        cursor = Some(InboxCursor {
            last_activity_at: last.last_activity_at,
            conversation_id: last.id,
        });
        for conversation in page {
            assert!(listed.insert(conversation.id), "listed twice");
        }
    }
    assert_eq!(listed, ids);
}

async fn data_survives_a_restart_of_the_backend_process(b: &Backend) {
    let tenant = fixtures::tenant();
    let mut live = Live::new(tenant.id, "5511900000010");
    let (reply, connection) = {
        let store = b.store().await;
        store.create_tenant(&tenant).await.expect("tenant");
        let connection = fixtures::connection(tenant.id, &format!("pn-{}", TenantId::new()));
        store
            .create_connection(&connection)
            .await
            .expect("connection");
        store
            .commit(live.inbound("wamid.DURABLE", "antes do restart", at(3000)))
            .await
            .expect("commit");
        let (commit, reply) = live.reply("client-durable", "resposta pendente");
        store.commit(commit).await.expect("reply");
        (reply, connection)
    };
    b.restart().await;
    let store = b.store().await;
    let stored = store
        .conversation(tenant.id, live.id())
        .await
        .expect("read after restart")
        .expect("conversation survived");
    assert_eq!(stored.last_seq, 3);
    let messages = store
        .messages(tenant.id, live.id(), SeqWindow::After(0), 10)
        .await
        .expect("history");
    assert_eq!(messages.len(), 2);
    assert!(
        store
            .pending_outbound(100_000)
            .await
            .expect("outbox")
            .contains(&(tenant.id, live.id(), reply.seq)),
        "a pending reply is still in the outbox"
    );
    assert_eq!(
        store.connection(connection.id).await.expect("read"),
        Some(connection)
    );
}
