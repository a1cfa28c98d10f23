//! The embedded store's inbox counts and message search: counts of active tickets per view, kept by
//! the committer in the `counters` table (`tenant | active:<view>`), and the message search index
//! (`tenant | term | 0 | month | conversation`), written by each turn's commit.

use super::{EmbeddedStore, get, unavailable};
use crate::storage::keys;
use schema::store::{InboxView, StoreError, StoreResult};
use schema::{ConversationId, TenantId};

pub(super) async fn count_active(
    store: &EmbeddedStore,
    tenant: TenantId,
    views: &[InboxView],
) -> StoreResult<Vec<u64>> {
    let keys: Vec<Vec<u8>> = views
        .iter()
        .map(|v| keys::active_count(tenant, &v.key()))
        .collect();
    store
        .read("count_active", move |t| {
            keys.iter()
                .map(|key| Ok(get::<u64>(&t.counters, key)?.unwrap_or(0)))
                .collect()
        })
        .await
}

pub(super) async fn search_messages(
    store: &EmbeddedStore,
    tenant: TenantId,
    term: &str,
    month: i32,
    after: Option<ConversationId>,
    limit: usize,
) -> StoreResult<Vec<ConversationId>> {
    let prefix = keys::message_term_prefix(tenant, term, month);
    let start = match after {
        Some(after) => keys::successor(&keys::message_term(tenant, term, month, after)),
        None => prefix.clone(),
    };
    store
        .read("search_messages", move |t| {
            let end = keys::after_prefix(&prefix);
            let mut found = Vec::new();
            for entry in t.message_terms.range(start..end).take(limit) {
                let key = entry.key().map_err(unavailable)?;
                let id = keys::inbox_conversation(&key)
                    .ok_or_else(|| StoreError::Corrupt("short message term key".into()))?;
                found.push(id);
            }
            Ok(found)
        })
        .await
}
