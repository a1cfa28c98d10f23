//! The embedded store's due index (`due time | tenant | conversation`, moved by each turn's commit)
//! and the tenant feed (`tenant | position`, numbered by the committer in commit order).

use super::*;

#[async_trait]
impl TimerStore for EmbeddedStore {
    /// The index is by time alone (one machine serves every shard); `shards` filters what it reads.
    async fn due(
        &self,
        shards: Option<&[ShardId]>,
        until: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<Due>> {
        let limit = limit.clamp(1, MAX_DUE_PAGE);
        let end = keys::due_prefix(
            until
                .checked_add(jiff::SignedDuration::from_micros(1))
                .unwrap_or(until),
        );
        let shards = shards.map(<[ShardId]>::to_vec);
        self.read("due", move |t| {
            let mut due = Vec::new();
            for entry in t.due.range(..end) {
                if due.len() >= limit {
                    break;
                }
                let key = entry.key().map_err(unavailable)?;
                let (at, tenant, conversation) = keys::due_parts(&key)
                    .ok_or_else(|| StoreError::Corrupt("short due key".into()))?;
                if shards
                    .as_ref()
                    .is_some_and(|list| !list.contains(&ShardId::of(&conversation.0)))
                {
                    continue;
                }
                due.push(Due {
                    tenant,
                    conversation,
                    at,
                });
            }
            Ok(due)
        })
        .await
    }

    async fn forget_due(&self, due: &Due) -> StoreResult<()> {
        let key = keys::due(due.at, due.tenant, due.conversation);
        self.write(Write::Remove("due", key)).await
    }
}

#[async_trait]
impl FeedStore for EmbeddedStore {
    async fn feed(
        &self,
        tenant: TenantId,
        after: Option<&FeedCursor>,
        limit: usize,
    ) -> StoreResult<FeedPage> {
        let after = match after {
            None => 0,
            Some(cursor) => cursor.0.parse::<u64>().map_err(|_| {
                StoreError::Invalid(format!("{:?} is not a feed cursor of this store", cursor.0))
            })?,
        };
        let limit = limit.min(MAX_FEED_PAGE);
        self.read("feed", move |t| {
            let start = keys::feed(tenant, after.saturating_add(1));
            let end = keys::after_prefix(tenant.as_bytes());
            let mut events = Vec::new();
            let mut last = after;
            for entry in t.feed.range(start..end).take(limit) {
                let (key, value) = entry.into_inner().map_err(unavailable)?;
                last = keys::feed_position(&key)
                    .ok_or_else(|| StoreError::Corrupt("short feed key".into()))?;
                events.push(decode::<EventEnvelope>(&value)?);
            }
            let next = (last > 0).then(|| FeedCursor(last.to_string()));
            Ok(FeedPage { events, next })
        })
        .await
    }
}
