//! LGPD erasure's storage step on every backend (issue 15): a rewritten history keeps its seqs, its
//! events, feed entries and messages no longer carry the erased words, and search no longer finds
//! them.

use crate::backends::Backend;
use jiff::Timestamp;
use schema::events::EventEnvelope;
use schema::fixtures::Live;
use schema::privacy;
use schema::records::Message;
use schema::store::{SeqWindow, Store};
use schema::{ConversationId, TenantId};

/// A conversation's stored events and messages, and what the erasure makes of them.
struct History {
    events: Vec<EventEnvelope>,
    messages: Vec<Message>,
    erased_events: Vec<EventEnvelope>,
    erased_messages: Vec<Message>,
}

impl History {
    async fn read(store: &dyn Store, tenant: TenantId, id: ConversationId) -> Self {
        let events = store.events(tenant, id, 0, 100).await.expect("events");
        let messages = store
            .messages(tenant, id, SeqWindow::After(0), 100)
            .await
            .expect("messages");
        let erased_events = events.iter().filter_map(privacy::erase_event).collect();
        let erased_messages = messages.iter().map(privacy::erase_message).collect();
        Self {
            events,
            messages,
            erased_events,
            erased_messages,
        }
    }
}

/// A case: its name (used in the test name) and its body.
pub type CaseFn = for<'a> fn(&'a Backend) -> futures::future::BoxFuture<'a, ()>;

pub const CASES: &[(&str, CaseFn)] = &[
    (
        "a_rewritten_history_keeps_its_seqs_and_loses_its_words",
        |b| Box::pin(a_rewritten_history_keeps_its_seqs_and_loses_its_words(b)),
    ),
    (
        "a_word_written_again_after_an_erasure_is_found_again",
        |b| Box::pin(a_word_written_again_after_an_erasure_is_found_again(b)),
    ),
];

/// The erasure removes the word's index rows; the same word in a later message of the same month must
/// be indexed again (a backend that remembers which words it already indexed must forget them).
async fn a_word_written_again_after_an_erasure_is_found_again(b: &Backend) {
    let store = b.store().await;
    let tenant = TenantId::new();
    let mut live = Live::new(tenant, "5511900002222");
    let id = live.id();
    let first = live.inbound("wamid.W1", "segredo", Timestamp::now());
    let month = schema::helpdesk::search::month_of(first.conversation.last_activity_at);
    store.commit(first).await.expect("commit");
    let History {
        erased_events,
        erased_messages,
        ..
    } = History::read(store.as_ref(), tenant, id).await;
    store
        .rewrite_history(
            tenant,
            id,
            &erased_events,
            &erased_messages,
            &[("segredo".to_string(), month)],
        )
        .await
        .expect("rewrite");
    let found = store
        .search_messages(tenant, "segredo", month, None, 10)
        .await
        .expect("search");
    assert!(found.is_empty(), "{found:?}");

    let again = live.inbound("wamid.W2", "segredo", Timestamp::now());
    let month_again = schema::helpdesk::search::month_of(again.conversation.last_activity_at);
    store.commit(again).await.expect("commit again");
    let found = store
        .search_messages(tenant, "segredo", month_again, None, 10)
        .await
        .expect("search");
    assert_eq!(found, [id], "the word is indexed again");
}

async fn a_rewritten_history_keeps_its_seqs_and_loses_its_words(b: &Backend) {
    let store = b.store().await;
    let tenant = TenantId::new();
    let mut live = Live::new(tenant, "5511900001111");
    let id = live.id();
    let mut commit = live.inbound("wamid.P1", "segredo guardado", Timestamp::now());
    commit.search_terms = vec!["segredo".into(), "guardado".into()];
    let month = schema::helpdesk::search::month_of(commit.conversation.last_activity_at);
    store.commit(commit).await.expect("commit");
    let found = store
        .search_messages(tenant, "segredo", month, None, 10)
        .await
        .expect("search");
    assert_eq!(found, [id]);

    let History {
        events,
        messages,
        erased_events,
        erased_messages,
    } = History::read(store.as_ref(), tenant, id).await;
    let unindex = vec![
        ("segredo".to_string(), month),
        ("guardado".to_string(), month),
    ];
    for _ in 0..2 {
        store
            .rewrite_history(tenant, id, &erased_events, &erased_messages, &unindex)
            .await
            .expect("rewrite (twice: the same)");
    }

    let after = store.events(tenant, id, 0, 100).await.expect("events");
    assert_eq!(
        after.iter().map(|e| e.seq).collect::<Vec<_>>(),
        events.iter().map(|e| e.seq).collect::<Vec<_>>()
    );
    let text = serde_json::to_string(&after).unwrap_or_default();
    assert!(
        !text.contains("segredo") && !text.contains("Cliente"),
        "{text}"
    );
    let stored = store
        .messages(tenant, id, SeqWindow::After(0), 100)
        .await
        .expect("messages");
    assert_eq!(stored.len(), messages.len());
    assert!(stored.iter().all(privacy::is_erased));
    let found = store
        .search_messages(tenant, "segredo", month, None, 10)
        .await
        .expect("search");
    assert!(found.is_empty(), "{found:?}");

    let mut cursor = None;
    let mut feed = Vec::new();
    loop {
        let page = store
            .feed(tenant, cursor.as_ref(), 100)
            .await
            .expect("feed");
        let done = page.events.is_empty();
        feed.extend(page.events);
        cursor = page.next;
        if done {
            break;
        }
    }
    assert!(!feed.is_empty(), "the feed lists the conversation");
    let text = serde_json::to_string(&feed).unwrap_or_default();
    assert!(
        !text.contains("segredo"),
        "the feed's copies are rewritten too: {text}"
    );
}
