//! A read-through cache with a time to live: what every request of a tenant needs (its permissions,
//! its account and flags), and the connection every webhook names, is read from the store at most
//! once per TTL per node. A change made on this node applies at once (`forget`); on other nodes
//! within the TTL.

use crate::error::ApiError;
use dashmap::DashMap;
use schema::TenantId;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Entries kept at once; past it the cache starts over.
const MAX_ENTRIES: usize = 10_000;

/// The cache of one kind of per-tenant record.
pub type TenantCache<V> = ReadCache<TenantId, V>;

/// The cache of one kind of record, by its key.
pub struct ReadCache<K, V> {
    ttl: Duration,
    entries: DashMap<K, (Instant, Arc<V>)>,
    /// Grows with every `forget`: a read that started before one does not store what it read.
    generation: AtomicU64,
}

impl<K: Copy + Eq + Hash, V> ReadCache<K, V> {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: DashMap::new(),
            generation: AtomicU64::new(0),
        }
    }

    /// The record: cached, or loaded now (and kept unless a `forget` happened meanwhile).
    pub async fn get<F, Fut>(&self, tenant: K, load: F) -> Result<Arc<V>, ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, ApiError>>,
    {
        if let Some(entry) = self.entries.get(&tenant)
            && entry.0.elapsed() < self.ttl
        {
            return Ok(Arc::clone(&entry.1));
        }
        let (read_at, generation) = (Instant::now(), self.generation.load(Ordering::SeqCst));
        let value = Arc::new(load().await?);
        if self.entries.len() >= MAX_ENTRIES {
            self.entries.clear();
        }
        // Checked while holding the entry's shard: a `forget` that began before the check is seen
        // here, and one that begins after it waits for the insert and then removes it.
        let entry = self.entries.entry(tenant);
        if self.generation.load(Ordering::SeqCst) == generation {
            entry.insert((read_at, Arc::clone(&value)));
        }
        Ok(value)
    }

    /// Forgets every entry (after a change that concerns many of them).
    pub fn forget_all(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.entries.clear();
    }

    /// Forgets one entry (after a change on this node).
    pub fn forget(&self, tenant: K) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.entries.remove(&tenant);
    }
}
