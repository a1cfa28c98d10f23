//! The helpdesk's storage contract (issue 14): the durable per-tenant feed appended by every commit,
//! ticket numbers, and agents found only within their tenant. Run on every backend.

use crate::backends::Backend;
use futures::future::join_all;
use jiff::{SignedDuration, Timestamp};
use schema::fixtures::{self, Live};
use schema::store::{FeedCursor, StoreError};
use schema::{ConversationId, Seq, TenantId};
use std::collections::{HashMap, HashSet};

/// A case: its name (used in the test name) and its body.
pub type CaseFn = for<'a> fn(&'a Backend) -> futures::future::BoxFuture<'a, ()>;

macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        pub const CASES: &[(&str, CaseFn)] = &[$((stringify!($name), |b| Box::pin($name(b)))),*];
    };
}

cases!(
    the_feed_lists_every_committed_event_once_in_each_conversations_order,
    the_feed_holds_nothing_of_a_refused_turn_and_refuses_a_foreign_cursor,
    ticket_numbers_are_unique_per_tenant_under_concurrency,
    an_agent_is_found_only_in_its_own_tenant,
    departments_are_kept_whole_per_tenant_listed_by_key_replaced_and_removed,
    the_due_index_follows_each_commit_and_lists_by_shard_and_time,
    quick_replies_are_kept_whole_per_tenant_replaced_and_removed,
    presence_is_kept_per_tenant_renewed_and_removed,
    the_mine_view_lists_an_agents_active_tickets_only,
    the_priority_tag_and_unassigned_views_follow_each_change,
);

/// A commit time just behind the clock (the CQL feed lists entries older than its settle window,
/// set to zero for the contract).
fn recently(n: i64) -> Timestamp {
    Timestamp::now() - SignedDuration::from_secs(60) + SignedDuration::from_millis(n)
}

/// Reads a tenant's whole feed, `page` events at a time.
async fn read_feed(b: &Backend, tenant: TenantId, page: usize) -> Vec<(ConversationId, Seq)> {
    let store = b.store().await;
    let mut cursor: Option<FeedCursor> = None;
    let mut read = Vec::new();
    for _ in 0..10_000 {
        let got = store
            .feed(tenant, cursor.as_ref(), page)
            .await
            .expect("feed page");
        let empty = got.events.is_empty();
        for event in got.events {
            assert_eq!(event.tenant_id, tenant, "the feed answered another tenant");
            read.push((event.conversation_id, event.seq));
        }
        if got.next.is_some() {
            cursor = got.next;
        }
        if empty {
            return read;
        }
    }
    panic!("the feed never ended");
}

async fn the_feed_lists_every_committed_event_once_in_each_conversations_order(b: &Backend) {
    let store = b.store().await;
    let tenant = TenantId::new();
    let other = TenantId::new();
    let writers = (0..6).map(|n| {
        let store = store.clone();
        async move {
            let mut live = Live::new(tenant, &format!("55119400{n:05}"));
            let mut written = Vec::new();
            for turn in 0..3 {
                // Each conversation's turns an hour apart: the CQL feed's walk crosses its hour
                // partitions mid-page.
                let at = recently(n) - SignedDuration::from_hours(2 - turn);
                let commit = live.inbound(&format!("wamid.F{n}.{turn}"), "feed", at);
                written.extend(commit.events.iter().map(|e| (e.conversation_id, e.seq)));
                store.commit(commit).await.expect("commit");
            }
            written
        }
    });
    let written: Vec<(ConversationId, Seq)> =
        join_all(writers).await.into_iter().flatten().collect();
    let mut elsewhere = Live::new(other, "5511940099999");
    store
        .commit(elsewhere.inbound("wamid.OTHER", "outro", recently(0)))
        .await
        .expect("other tenant's commit");

    let read = read_feed(b, tenant, 4).await;
    let unique: HashSet<_> = read.iter().copied().collect();
    assert_eq!(unique.len(), read.len(), "an event was listed twice");
    assert_eq!(
        unique,
        written.iter().copied().collect::<HashSet<_>>(),
        "the feed lists exactly the committed events"
    );
    let mut last: HashMap<ConversationId, Seq> = HashMap::new();
    for (conversation, seq) in &read {
        let before = last.insert(*conversation, *seq).unwrap_or(0);
        assert!(*seq > before, "a conversation's events out of order");
    }
    assert_eq!(
        read_feed(b, other, 10).await,
        vec![(elsewhere.id(), 1), (elsewhere.id(), 2)]
    );
}

async fn the_feed_holds_nothing_of_a_refused_turn_and_refuses_a_foreign_cursor(b: &Backend) {
    let store = b.store().await;
    let tenant = TenantId::new();
    let mut live = Live::new(tenant, "5511940100000");
    store
        .commit(live.inbound("wamid.R1", "primeira", recently(0)))
        .await
        .expect("first turn");
    // A turn that does not follow the stored seq (a second writer) is refused whole.
    let mut stale = live.clone();
    stale.conversation.last_seq += 5;
    let refused = store
        .commit(stale.inbound("wamid.R2", "fora de ordem", recently(1)))
        .await;
    if b.checks_seq_atomically {
        assert!(
            matches!(refused, Err(StoreError::SeqConflict { .. })),
            "{refused:?}"
        );
    }
    let read = read_feed(b, tenant, 10).await;
    assert_eq!(read, vec![(live.id(), 1), (live.id(), 2)]);

    for foreign in ["", "banana", "1:2:3:4:5", "-1"] {
        let answer = store
            .feed(tenant, Some(&FeedCursor(foreign.into())), 10)
            .await;
        assert!(
            matches!(answer, Err(StoreError::Invalid(_))),
            "cursor {foreign:?}: {answer:?}"
        );
    }
}

async fn ticket_numbers_are_unique_per_tenant_under_concurrency(b: &Backend) {
    let store = b.store().await;
    let tenant = TenantId::new();
    let takers = (0..40).map(|_| {
        let store = store.clone();
        async move { store.next_ticket_number(tenant).await.expect("number") }
    });
    let mut numbers: Vec<u64> = join_all(takers).await;
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=40).collect::<Vec<_>>());
    assert_eq!(
        store
            .next_ticket_number(TenantId::new())
            .await
            .expect("number"),
        1,
        "another tenant counts on its own"
    );
    assert_eq!(store.next_ticket_number(tenant).await.expect("number"), 41);
}

async fn an_agent_is_found_only_in_its_own_tenant(b: &Backend) {
    let store = b.store().await;
    let (tenant, other) = (fixtures::tenant(), fixtures::tenant());
    store.create_tenant(&tenant).await.expect("tenant");
    store.create_tenant(&other).await.expect("tenant");
    let agent = fixtures::agent(tenant.id);
    let mut hash = [0u8; 32];
    hash[..16].copy_from_slice(agent.id.as_bytes());
    store.create_agent(&agent, hash).await.expect("agent");
    assert_eq!(
        store.agent(tenant.id, agent.id).await.expect("read"),
        Some(agent.clone())
    );
    assert_eq!(store.agent(other.id, agent.id).await.expect("read"), None);
    assert_eq!(
        store
            .agent(tenant.id, schema::AgentId::new())
            .await
            .expect("read"),
        None
    );
}

async fn departments_are_kept_whole_per_tenant_listed_by_key_replaced_and_removed(b: &Backend) {
    use schema::helpdesk::hours::BusinessHours;
    use schema::records::{Department, OutOfHours};
    let store = b.store().await;
    let (tenant, other) = (TenantId::new(), TenantId::new());
    let department = |tenant: TenantId, key: &str| Department {
        tenant_id: tenant,
        key: key.into(),
        name: format!("Departamento {key} — ação"),
        members: vec![schema::AgentId::new()],
        connections: vec![schema::ConnectionId::new()],
        hours: Some(BusinessHours::always()),
        out_of_hours: OutOfHours::default(),
        reopen: schema::helpdesk::ticket::ReopenPolicy::NewTicket,
        sla: Default::default(),
        distribution: Default::default(),
        agent_capacity: 3,
        reassign_after_secs: Some(600),
        created_at: Timestamp::UNIX_EPOCH,
        updated_at: Timestamp::UNIX_EPOCH,
    };
    let (vendas, financeiro) = (
        department(tenant, "vendas"),
        department(tenant, "financeiro"),
    );
    store.create_department(&vendas).await.expect("create");
    assert!(
        matches!(
            store.create_department(&vendas).await,
            Err(StoreError::Conflict(_))
        ),
        "a key is created once"
    );
    store.put_department(&financeiro).await.expect("put");
    store
        .put_department(&department(other, "vendas"))
        .await
        .expect("another tenant's department with the same key");
    let listed = store.departments(tenant).await.expect("list");
    assert_eq!(
        listed,
        vec![financeiro.clone(), vendas.clone()],
        "whole, by key"
    );
    assert_eq!(
        store.department(tenant, "vendas").await.expect("read"),
        Some(vendas.clone())
    );
    assert_eq!(
        store.department(tenant, "ausente").await.expect("read"),
        None
    );

    let mut renamed = vendas.clone();
    renamed.name = "Vendas N2".into();
    renamed.members.clear();
    store.put_department(&renamed).await.expect("replace");
    assert_eq!(
        store.department(tenant, "vendas").await.expect("read"),
        Some(renamed)
    );
    store
        .remove_department(tenant, "vendas")
        .await
        .expect("remove");
    assert_eq!(
        store.department(tenant, "vendas").await.expect("read"),
        None
    );
    assert_eq!(
        store.departments(tenant).await.expect("list"),
        vec![financeiro]
    );
    assert_eq!(
        store.departments(other).await.expect("list").len(),
        1,
        "the other tenant's department stays"
    );
}

async fn the_due_index_follows_each_commit_and_lists_by_shard_and_time(b: &Backend) {
    use schema::cluster::ShardId;
    let store = b.store().await;
    let tenant = TenantId::new();
    let mut live = Live::new(tenant, "5511970000001");
    // A far-future time keeps other cases' timers out of the window this case reads.
    let first = Timestamp::from_second(4_000_000_000).expect("time");
    let later = first + SignedDuration::from_hours(30);
    let id = live.id();
    let mine = |due: &[schema::store::Due]| {
        due.iter()
            .filter(|d| d.conversation == id && d.tenant == tenant)
            .map(|d| d.at)
            .collect::<Vec<_>>()
    };
    let shard = ShardId::of(&live.id().0);
    let other_shard = ShardId((shard.0 + 1) % schema::cluster::SHARDS);

    live.conversation.snoozed_until = Some(first);
    store
        .commit(live.inbound("wamid.D1", "adiado", recently(0)))
        .await
        .expect("commit with a clock");
    let until_first = store.due(None, first, 1000).await.expect("due");
    assert_eq!(mine(&until_first), vec![first]);
    assert!(
        mine(
            &store
                .due(None, first - SignedDuration::from_micros(1), 1000)
                .await
                .expect("due")
        )
        .is_empty(),
        "not due before its time"
    );
    assert_eq!(
        mine(&store.due(Some(&[shard]), first, 1000).await.expect("due")),
        vec![first]
    );
    assert!(
        mine(
            &store
                .due(Some(&[other_shard]), first, 1000)
                .await
                .expect("due")
        )
        .is_empty(),
        "another shard's sweep does not see it"
    );

    // The next turn moves it; the one after removes it.
    live.conversation.snoozed_until = Some(later);
    store
        .commit(live.inbound("wamid.D2", "mais tarde", recently(1)))
        .await
        .expect("commit moving the clock");
    assert_eq!(
        mine(&store.due(None, later, 1000).await.expect("due")),
        vec![later],
        "only at its new time"
    );
    live.conversation.snoozed_until = None;
    store
        .commit(live.inbound("wamid.D3", "acordou", recently(2)))
        .await
        .expect("commit ending the clock");
    assert!(mine(&store.due(None, later, 1000).await.expect("due")).is_empty());

    // An entry can be forgotten (one naming no stored conversation is, by the sweep).
    live.conversation.snoozed_until = Some(first);
    store
        .commit(live.inbound("wamid.D4", "de novo", recently(3)))
        .await
        .expect("commit with a clock again");
    let listed = store.due(None, first, 1000).await.expect("due");
    let entry = listed
        .iter()
        .find(|d| d.conversation == id)
        .copied()
        .expect("listed");
    store.forget_due(&entry).await.expect("forget");
    assert!(mine(&store.due(None, first, 1000).await.expect("due")).is_empty());
}

async fn quick_replies_are_kept_whole_per_tenant_replaced_and_removed(b: &Backend) {
    use schema::records::QuickReply;
    let store = b.store().await;
    let (tenant, other) = (TenantId::new(), TenantId::new());
    let reply = |tenant: TenantId, code: &str| QuickReply {
        id: uuid::Uuid::now_v7(),
        tenant_id: tenant,
        short_code: code.into(),
        content: "Olá, {{contact.name}}! 👋".into(),
        team: Some("vendas".into()),
        created_at: Timestamp::UNIX_EPOCH,
        updated_at: Timestamp::UNIX_EPOCH,
    };
    let (hello, bye) = (reply(tenant, "/oi"), reply(tenant, "/tchau"));
    store.put_quick_reply(&hello).await.expect("put");
    store.put_quick_reply(&bye).await.expect("put");
    store
        .put_quick_reply(&reply(other, "/oi"))
        .await
        .expect("put");
    let mut listed = store.quick_replies(tenant).await.expect("list");
    listed.sort_by_key(|r| r.id);
    let mut expected = vec![hello.clone(), bye.clone()];
    expected.sort_by_key(|r| r.id);
    assert_eq!(listed, expected);
    assert_eq!(
        store.quick_reply(other, hello.id).await.expect("read"),
        None,
        "not across tenants"
    );
    let mut edited = hello.clone();
    edited.content = "Oi!".into();
    edited.team = None;
    store.put_quick_reply(&edited).await.expect("replace");
    assert_eq!(
        store.quick_reply(tenant, hello.id).await.expect("read"),
        Some(edited)
    );
    store
        .remove_quick_reply(tenant, hello.id)
        .await
        .expect("remove");
    assert_eq!(store.quick_replies(tenant).await.expect("list"), vec![bye]);
    assert_eq!(store.quick_replies(other).await.expect("list").len(), 1);
}

async fn presence_is_kept_per_tenant_renewed_and_removed(b: &Backend) {
    use schema::presence::{Presence, PresenceStatus};
    let store = b.store().await;
    let (tenant, other) = (TenantId::new(), TenantId::new());
    let (ana, bia) = (schema::AgentId::new(), schema::AgentId::new());
    let until = Timestamp::now() + SignedDuration::from_secs(60);
    let online = |agent| Presence {
        agent,
        status: PresenceStatus::Online,
        until,
    };
    store.put_presence(tenant, &online(ana)).await.expect("put");
    store.put_presence(tenant, &online(bia)).await.expect("put");
    store.put_presence(other, &online(ana)).await.expect("put");
    let away = Presence {
        status: PresenceStatus::Away,
        ..online(bia)
    };
    store.put_presence(tenant, &away).await.expect("renew");
    let mut listed = store.presence(tenant).await.expect("list");
    listed.sort_by_key(|p| p.agent);
    let mut expected = vec![online(ana), away];
    expected.sort_by_key(|p| p.agent);
    assert_eq!(listed, expected);
    store.remove_presence(tenant, ana).await.expect("remove");
    assert_eq!(store.presence(tenant).await.expect("list"), vec![away]);
    assert_eq!(store.presence(other).await.expect("list").len(), 1);
}

async fn the_mine_view_lists_an_agents_active_tickets_only(b: &Backend) {
    use schema::records::ConversationStatus;
    use schema::store::InboxView;
    let store = b.store().await;
    let tenant = TenantId::new();
    let ana = schema::AgentId::new();
    let mut active = Live::new(tenant, "5511990000001");
    active.conversation.assignee = Some(ana);
    active.conversation.status = ConversationStatus::InProgress;
    store
        .commit(active.inbound("wamid.M1", "ativo", recently(0)))
        .await
        .expect("commit");
    let mut done = Live::new(tenant, "5511990000002");
    done.conversation.assignee = Some(ana);
    store
        .commit(done.inbound("wamid.M2", "primeiro", recently(1)))
        .await
        .expect("commit");
    let mine = |list: Vec<schema::records::Conversation>| {
        list.into_iter().map(|c| c.id).collect::<HashSet<_>>()
    };
    let listed = store
        .inbox(tenant, &InboxView::Mine(ana), None, 10)
        .await
        .expect("mine");
    assert_eq!(mine(listed), [active.id(), done.id()].into_iter().collect());
    // Resolved: it leaves the agent's queue (but stays in the assignee view).
    done.conversation.status = ConversationStatus::Resolved;
    store
        .commit(done.inbound("wamid.M3", "resolvido", recently(2)))
        .await
        .expect("commit");
    let listed = store
        .inbox(tenant, &InboxView::Mine(ana), None, 10)
        .await
        .expect("mine");
    assert_eq!(mine(listed), [active.id()].into_iter().collect());
    let all = store
        .inbox(tenant, &InboxView::Assignee(ana), None, 10)
        .await
        .expect("assignee");
    assert_eq!(all.len(), 2);
}

async fn the_priority_tag_and_unassigned_views_follow_each_change(b: &Backend) {
    use schema::records::Priority;
    use schema::store::InboxView;
    let store = b.store().await;
    let tenant = TenantId::new();
    let ids = |list: Vec<schema::records::Conversation>| {
        list.into_iter().map(|c| c.id).collect::<HashSet<_>>()
    };
    let listed = |view: InboxView| {
        let store = store.clone();
        async move { ids(store.inbox(tenant, &view, None, 20).await.expect("view")) }
    };
    let mut urgent = Live::new(tenant, "5511991000001");
    urgent.conversation.priority = Priority::Urgent;
    urgent.conversation.tags = vec!["vip".into(), "boleto".into()];
    store
        .commit(urgent.inbound("wamid.V1", "urgente", recently(0)))
        .await
        .expect("commit");
    let mut plain = Live::new(tenant, "5511991000002");
    store
        .commit(plain.inbound("wamid.V2", "normal", recently(1)))
        .await
        .expect("commit");
    let both: HashSet<_> = [urgent.id(), plain.id()].into_iter().collect();
    assert_eq!(listed(InboxView::Unassigned).await, both);
    assert_eq!(
        listed(InboxView::Priority(Priority::Urgent)).await,
        [urgent.id()].into_iter().collect()
    );
    assert_eq!(
        listed(InboxView::Priority(Priority::Normal)).await,
        [plain.id()].into_iter().collect()
    );
    assert_eq!(
        listed(InboxView::Tag("boleto".into())).await,
        [urgent.id()].into_iter().collect()
    );

    // Assigned, tag removed, priority lowered: each view follows.
    urgent.conversation.assignee = Some(schema::AgentId::new());
    urgent.conversation.tags = vec!["vip".into()];
    urgent.conversation.priority = Priority::Low;
    store
        .commit(urgent.inbound("wamid.V3", "mudou", recently(2)))
        .await
        .expect("commit");
    assert_eq!(
        listed(InboxView::Unassigned).await,
        [plain.id()].into_iter().collect()
    );
    assert!(listed(InboxView::Tag("boleto".into())).await.is_empty());
    assert_eq!(
        listed(InboxView::Tag("vip".into())).await,
        [urgent.id()].into_iter().collect()
    );
    assert!(
        listed(InboxView::Priority(Priority::Urgent))
            .await
            .is_empty()
    );
    assert_eq!(
        listed(InboxView::Priority(Priority::Low)).await,
        [urgent.id()].into_iter().collect()
    );
}
