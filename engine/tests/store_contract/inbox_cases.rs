//! The inbox's badge counts and search by message text (issue 14): counts of active tickets per view
//! that follow every commit, and the message search index written by the same commits. Run on every
//! backend.

use crate::backends::Backend;
use jiff::{SignedDuration, Timestamp};
use schema::fixtures::Live;
use schema::helpdesk::search::month_of;
use schema::records::{ConversationStatus, Priority};
use schema::store::InboxView;
use schema::{AgentId, ConversationId, TenantId};
use std::collections::BTreeSet;

/// A case: its name (used in the test name) and its body.
pub type CaseFn = for<'a> fn(&'a Backend) -> futures::future::BoxFuture<'a, ()>;

macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        pub const CASES: &[(&str, CaseFn)] = &[$((stringify!($name), |b| Box::pin($name(b)))),*];
    };
}

cases!(
    active_counts_follow_each_ticket_into_and_out_of_its_views,
    message_words_find_their_conversations_by_month_and_page_by_id,
);

fn recently(n: i64) -> Timestamp {
    Timestamp::now() - SignedDuration::from_secs(60) + SignedDuration::from_millis(n)
}

async fn active_counts_follow_each_ticket_into_and_out_of_its_views(b: &Backend) {
    let store = b.store().await;
    let (tenant, other) = (TenantId::new(), TenantId::new());
    let ana = AgentId::new();
    let views = [
        InboxView::All,
        InboxView::Status(ConversationStatus::Open),
        InboxView::Status(ConversationStatus::InProgress),
        InboxView::Unassigned,
        InboxView::Mine(ana),
        InboxView::Priority(Priority::Urgent),
        InboxView::Tag("vip".into()),
        InboxView::Team("vendas".into()),
    ];
    let counts = || {
        let store = store.clone();
        let views = views.clone();
        async move { store.count_active(tenant, &views).await.expect("counts") }
    };
    let mut live: Vec<Live> = (0..3)
        .map(|n| Live::new(tenant, &format!("55119920000{n:02}")))
        .collect();
    for (n, conversation) in live.iter_mut().enumerate() {
        conversation.conversation.team = Some("vendas".into());
        let commit = conversation.inbound(&format!("wamid.K{n}"), "oi", recently(n as i64));
        store.commit(commit).await.expect("commit");
    }
    assert_eq!(counts().await, vec![3, 3, 0, 3, 0, 0, 0, 3]);
    // A message that changes no view moves no count.
    let commit = live[0].inbound("wamid.K10", "de novo", recently(10));
    store.commit(commit).await.expect("commit");
    assert_eq!(counts().await, vec![3, 3, 0, 3, 0, 0, 0, 3]);
    // Assigned and in progress, urgent and tagged.
    let first = &mut live[0].conversation;
    first.assignee = Some(ana);
    first.status = ConversationStatus::InProgress;
    first.priority = Priority::Urgent;
    first.tags = vec!["vip".into()];
    let commit = live[0].inbound("wamid.K11", "atendendo", recently(11));
    store.commit(commit).await.expect("commit");
    assert_eq!(counts().await, vec![3, 2, 1, 2, 1, 1, 1, 3]);
    // Resolved: it leaves every count.
    live[0].conversation.status = ConversationStatus::Resolved;
    let commit = live[0].inbound("wamid.K12", "resolvido", recently(12));
    store.commit(commit).await.expect("commit");
    assert_eq!(counts().await, vec![2, 2, 0, 2, 0, 0, 0, 2]);
    assert_eq!(
        store.count_active(other, &views).await.expect("counts"),
        vec![0; 8],
        "not across tenants"
    );
}

async fn message_words_find_their_conversations_by_month_and_page_by_id(b: &Backend) {
    let store = b.store().await;
    let (tenant, other) = (TenantId::new(), TenantId::new());
    let mut expected = BTreeSet::new();
    let at = recently(0);
    let month = month_of(at);
    for n in 0..9 {
        let mut live = Live::new(tenant, &format!("55119930000{n:02}"));
        let text = if n % 3 == 0 {
            "meu boleto venceu"
        } else {
            "meu pedido atrasou"
        };
        let commit = live.inbound(&format!("wamid.S{n}"), text, at);
        store.commit(commit).await.expect("commit");
        if n % 3 != 0 {
            expected.insert(live.id());
        }
    }
    let mut elsewhere = Live::new(other, "5511993000000");
    let commit = elsewhere.inbound("wamid.S99", "pedido", at);
    store.commit(commit).await.expect("commit");
    let mut found: Vec<ConversationId> = Vec::new();
    let mut after = None;
    for _ in 0..100 {
        let page = store
            .search_messages(tenant, "pedido", month, after, 4)
            .await
            .expect("search");
        let Some(last) = page.last() else { break };
        after = Some(*last);
        found.extend(page);
    }
    assert_eq!(found.len(), expected.len(), "each once: {found:?}");
    assert_eq!(found.into_iter().collect::<BTreeSet<_>>(), expected);
    let any = *expected.iter().next().expect("one");
    assert!(
        store
            .has_message_term(tenant, "atrasou", month, any)
            .await
            .expect("has")
    );
    assert!(
        !store
            .has_message_term(tenant, "boleto", month, any)
            .await
            .expect("has")
    );
    assert!(
        store
            .search_messages(tenant, "pedido", month - 1, None, 10)
            .await
            .expect("search")
            .is_empty(),
        "another month"
    );
    assert!(
        !store
            .has_message_term(other, "atrasou", month, any)
            .await
            .expect("has"),
        "not across tenants"
    );
}
