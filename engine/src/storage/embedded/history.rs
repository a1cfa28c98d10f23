//! The embedded store's LGPD rewrite of a conversation's history (`ConversationStore::rewrite_history`):
//! events, the feed's copies of them, messages and search rows, in one committer batch. The feed keeps
//! whole copies of events by position, so finding this conversation's reads every entry of the
//! tenant's feed (an erasure is rare; its cost grows with the tenant's feed).

use super::commit::Write;
use super::{EmbeddedStore, decode, encode, unavailable};
use crate::storage::keys;
use schema::events::EventEnvelope;
use schema::records::Message;
use schema::store::StoreResult;
use schema::{ConversationId, Seq, TenantId};

impl EmbeddedStore {
    pub(super) async fn rewrite(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        events: &[EventEnvelope],
        messages: &[Message],
        unindex: &[(String, i32)],
    ) -> StoreResult<()> {
        let seqs: std::collections::HashMap<Seq, Vec<u8>> = events
            .iter()
            .map(|e| Ok((e.seq, encode(e)?)))
            .collect::<StoreResult<_>>()?;
        // The feed keeps whole copies of events by position: every entry of the tenant is read to
        // find this conversation's (an erasure is rare; its cost grows with the tenant's feed).
        let wanted = seqs
            .keys()
            .copied()
            .collect::<std::collections::HashSet<Seq>>();
        let feed: Vec<(Vec<u8>, Seq)> = self
            .read("rewrite_history_feed", move |t| {
                let mut found = Vec::new();
                if wanted.is_empty() {
                    return Ok(found);
                }
                for entry in t.feed.prefix(tenant.as_bytes()) {
                    let (key, value) = entry.into_inner().map_err(unavailable)?;
                    let stored: EventEnvelope = decode(&value)?;
                    if stored.conversation_id == conversation && wanted.contains(&stored.seq) {
                        found.push((key.to_vec(), stored.seq));
                    }
                }
                Ok(found)
            })
            .await?;
        let mut rows = Vec::new();
        for (key, seq) in feed {
            if let Some(body) = seqs.get(&seq) {
                rows.push(("feed", key, Some(body.clone())));
            }
        }
        for (seq, body) in &seqs {
            rows.push((
                "events",
                keys::stream(tenant, conversation, *seq),
                Some(body.clone()),
            ));
        }
        for message in messages {
            let key = keys::stream(tenant, conversation, message.seq);
            rows.push(("messages", key, Some(encode(message)?)));
        }
        for (term, month) in unindex {
            let key = keys::message_term(tenant, term, *month, conversation);
            rows.push(("message_terms", key, None));
        }
        if rows.is_empty() {
            return Ok(());
        }
        self.write(Write::Rewrite(rows)).await
    }
}
