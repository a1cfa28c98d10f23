//! The embedded backend: fjall (an LSM tree, one keyspace per table) under the node's data directory.
//! The default for one machine; no external service.
//!
//! Writes go through one committer thread that takes every write waiting in its bounded queue (up to
//! `group_commit_max`), checks them, writes them as one atomic fjall batch and fsyncs once before
//! answering all of them: group commit, so durability costs one fsync per group instead of one per
//! webhook. Being the only writer also makes the uniqueness checks (provider address, per-conversation
//! seq) race-free. Reads run on tokio's blocking pool, never on an async worker thread.

mod accounts;
mod audit;
mod commit;
mod contacts;
mod credentials;
mod history;
mod memtables;
mod presence;
mod quick_replies;
mod search;
mod tenancy;
mod timers;

use super::count_error;
use super::keys;
use super::secrets::SecretBox;
use crate::config::EmbeddedConfig;
use async_trait::async_trait;
use commit::{Pending, Write, run_committer};
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use jiff::Timestamp;
use schema::cluster::ShardId;
use schema::events::EventEnvelope;
use schema::records::{Conversation, Message, Provider};
use schema::store::{
    ConversationCommit, ConversationStore, Due, FeedCursor, FeedPage, FeedStore, InboxCursor,
    InboxView, MAX_DUE_PAGE, MAX_FEED_PAGE, MessageKey, MessageRef, SeqWindow, StoreError,
    StoreResult, TimerStore,
};
use schema::{ConversationId, Seq, TenantId};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// Writes waiting for the committer; a full queue makes writers wait (backpressure).
const WRITE_QUEUE: usize = 4096;

/// The tables.
#[derive(Clone)]
struct Tables {
    db: Database,
    tenants: Keyspace,
    connections: Keyspace,
    connection_addresses: Keyspace,
    tenant_connections: Keyspace,
    agents: Keyspace,
    tokens: Keyspace,
    conversations: Keyspace,
    inbox: Keyspace,
    inbox_views: Keyspace,
    events: Keyspace,
    messages: Keyspace,
    message_keys: Keyspace,
    outbox: Keyspace,
    /// `tenant | position`: the tenant's feed, numbered by the committer in commit order.
    feed: Keyspace,
    /// `tenant | name`: per-tenant counters (ticket numbers).
    counters: Keyspace,
    /// `tenant | key`: departments.
    departments: Keyspace,
    /// `due time | tenant | conversation`: the due index.
    due: Keyspace,
    /// `tenant | id`: quick replies.
    quick_replies: Keyspace,
    /// `tenant | agent`: presence.
    presence: Keyspace,
    /// `tenant | id`: contacts; `tenant | channel:address` → id; `tenant | term | 0 | id`.
    contacts: Keyspace,
    contact_addresses: Keyspace,
    contact_terms: Keyspace,
    /// `tenant | term | 0 | month | conversation`: the message search index.
    message_terms: Keyspace,
    /// Sign-in: `email` → credentials, `tenant | agent` → email, `token SHA-256` → grant,
    /// `tenant | agent | id` → session.
    credentials: Keyspace,
    agent_emails: Keyspace,
    grants: Keyspace,
    sessions: Keyspace,
    /// `tenant` → the tenant's permissions per role.
    role_permissions: Keyspace,
    /// `tenant | seq` → audit entry; `tenant` → the audit chain's head.
    audit: Keyspace,
    audit_heads: Keyspace,
    /// Tenancy: `name` → plan; `tenant` → account, flags; `tenant | month | meter` → usage.
    plans: Keyspace,
    tenant_accounts: Keyspace,
    feature_flags: Keyspace,
    smtp_accounts: Keyspace,
    usage: Keyspace,
}

impl Tables {
    /// A keyspace of a conversation's history, rewritten by `Write::Rewrite`.
    fn history(&self, name: &str) -> StoreResult<&Keyspace> {
        match name {
            "events" => Ok(&self.events),
            "messages" => Ok(&self.messages),
            "feed" => Ok(&self.feed),
            "message_terms" => Ok(&self.message_terms),
            other => Err(StoreError::Unavailable(format!("no history table {other}"))),
        }
    }

    /// A keyspace written by `Write::Put` / `Write::Remove`.
    fn plain(&self, name: &str) -> StoreResult<&Keyspace> {
        match name {
            "quick_replies" => Ok(&self.quick_replies),
            "due" => Ok(&self.due),
            "presence" => Ok(&self.presence),
            "grants" => Ok(&self.grants),
            "tokens" => Ok(&self.tokens),
            "sessions" => Ok(&self.sessions),
            "role_permissions" => Ok(&self.role_permissions),
            "plans" => Ok(&self.plans),
            "tenant_accounts" => Ok(&self.tenant_accounts),
            "feature_flags" => Ok(&self.feature_flags),
            "smtp_accounts" => Ok(&self.smtp_accounts),
            "usage" => Ok(&self.usage),
            "agents" => Ok(&self.agents),
            other => Err(StoreError::Unavailable(format!("no plain table {other}"))),
        }
    }
}

/// The embedded store.
pub struct EmbeddedStore {
    tables: Tables,
    secrets: SecretBox,
    writes: Mutex<Option<mpsc::Sender<Pending>>>,
    committer: Mutex<Option<JoinHandle<()>>>,
}

impl EmbeddedStore {
    /// Opens (or creates) the store under `config.data_dir` and starts its committer thread.
    pub fn open(config: &EmbeddedConfig, secrets: SecretBox) -> StoreResult<Self> {
        std::fs::create_dir_all(&config.data_dir).map_err(unavailable)?;
        let db = Database::builder(config.data_dir.join("fjall"))
            .cache_size(config.cache_bytes)
            .worker_threads(config.background_thread_count())
            .open()
            .map_err(unavailable)?;
        let memtable = config.memtable_bytes.max(1024 * 1024);
        let compaction = fjall::compaction::Leveled::default()
            .with_table_target_size(config.table_target_bytes.max(1024 * 1024));
        let compaction = std::sync::Arc::new(compaction);
        let options = move || {
            KeyspaceCreateOptions::default()
                .max_memtable_size(memtable)
                .compaction_strategy(compaction.clone())
        };
        let open = |name: &str| db.keyspace(name, options.clone()).map_err(unavailable);
        let tables = Tables {
            tenants: open("tenants")?,
            connections: open("connections")?,
            connection_addresses: open("connection_addresses")?,
            tenant_connections: open("tenant_connections")?,
            agents: open("agents")?,
            tokens: open("tokens")?,
            conversations: open("conversations")?,
            inbox: open("inbox")?,
            inbox_views: open("inbox_views")?,
            events: open("events")?,
            messages: open("messages")?,
            message_keys: open("message_keys")?,
            outbox: open("outbox")?,
            feed: open("feed")?,
            counters: open("counters")?,
            departments: open("departments")?,
            due: open("due")?,
            quick_replies: open("quick_replies")?,
            presence: open("presence")?,
            contacts: open("contacts")?,
            contact_addresses: open("contact_addresses")?,
            contact_terms: open("contact_terms")?,
            message_terms: open("message_terms")?,
            credentials: open("credentials")?,
            agent_emails: open("agent_emails")?,
            grants: open("grants")?,
            sessions: open("sessions")?,
            role_permissions: open("role_permissions")?,
            audit: open("audit")?,
            audit_heads: open("audit_heads")?,
            plans: open("plans")?,
            tenant_accounts: open("tenant_accounts")?,
            feature_flags: open("feature_flags")?,
            smtp_accounts: open("smtp_accounts")?,
            usage: open("usage")?,
            db,
        };
        let (sender, receiver) = mpsc::channel(WRITE_QUEUE);
        let committer_tables = tables.clone();
        let group_max = if config.group_commit {
            config.group_commit_max.max(1)
        } else {
            1
        };
        let committer = std::thread::Builder::new()
            .name("conversa-committer".into())
            .spawn(move || run_committer(committer_tables, receiver, group_max))
            .map_err(unavailable)?;
        Ok(Self {
            tables,
            secrets,
            writes: Mutex::new(Some(sender)),
            committer: Mutex::new(Some(committer)),
        })
    }

    /// Stops accepting writes, lets the committer finish what it has, and fsyncs.
    pub fn close(&self) -> StoreResult<()> {
        drop(self.writes.lock().map_err(unavailable)?.take());
        if let Some(handle) = self.committer.lock().map_err(unavailable)?.take() {
            let _ = handle.join();
        }
        self.tables
            .db
            .persist(PersistMode::SyncAll)
            .map_err(unavailable)
    }

    async fn write(&self, write: Write) -> StoreResult<()> {
        self.write_for(write).await.map(drop)
    }

    /// Queues a write for the committer and waits for its answer (a number taken, or 0).
    async fn write_for(&self, write: Write) -> StoreResult<u64> {
        let op = write.op();
        let result = self.enqueue(write).await;
        if let Err(error) = &result {
            count_error(op, error);
        }
        result
    }

    async fn enqueue(&self, write: Write) -> StoreResult<u64> {
        let sender = self
            .writes
            .lock()
            .map_err(unavailable)?
            .clone()
            .ok_or_else(|| StoreError::Unavailable("store is closed".into()))?;
        let (done, answer) = oneshot::channel();
        sender
            .send(Pending { write, done })
            .await
            .map_err(|_| StoreError::Unavailable("committer stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("committer stopped".into()))?
    }

    /// Runs a point read (one key) on the calling thread. Answered from a memtable, the block cache
    /// or a bloom filter it takes microseconds, far less than a trip through the blocking pool (two
    /// thread hand-offs per read, most of the node's system time under load); a miss reads one
    /// block from disk. Scans and multi-key reads stay on the blocking pool (`read`).
    fn read_point<T, F>(&self, op: &'static str, read: F) -> StoreResult<T>
    where
        F: FnOnce(&Tables) -> StoreResult<T>,
    {
        let started = Instant::now();
        let result = read(&self.tables);
        metrics::histogram!("conversa_store_operation_seconds", "op" => op)
            .record(started.elapsed().as_secs_f64());
        if let Err(error) = &result {
            count_error(op, error);
        }
        result
    }

    /// Runs a read on the blocking pool.
    async fn read<T, F>(&self, op: &'static str, read: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Tables) -> StoreResult<T> + Send + 'static,
    {
        let tables = self.tables.clone();
        let started = Instant::now();
        let result = tokio::task::spawn_blocking(move || read(&tables))
            .await
            .map_err(|e| StoreError::Unavailable(format!("read task failed: {e}")))?;
        metrics::histogram!("conversa_store_operation_seconds", "op" => op)
            .record(started.elapsed().as_secs_f64());
        if let Err(error) = &result {
            count_error(op, error);
        }
        result
    }
}

#[async_trait]
impl ConversationStore for EmbeddedStore {
    async fn ping(&self) -> StoreResult<()> {
        self.read("ping", |t| {
            t.tenants
                .first_key_value()
                .map_or(Ok(()), |g| g.key().map(drop))
                .map_err(unavailable)
        })
        .await
    }

    async fn conversation(
        &self,
        tenant: TenantId,
        id: ConversationId,
    ) -> StoreResult<Option<Conversation>> {
        self.read_point("conversation", move |t| {
            get(&t.conversations, keys::conversation(tenant, id))
        })
    }

    async fn commit(&self, commit: ConversationCommit) -> StoreResult<()> {
        self.write(Write::Commit(Box::new(commit))).await
    }

    async fn pending_outbound(
        &self,
        limit: usize,
    ) -> StoreResult<Vec<(TenantId, ConversationId, Seq)>> {
        self.read("pending_outbound", move |t| {
            let mut pending = Vec::new();
            for entry in t.outbox.iter().take(limit) {
                let key = entry.key().map_err(unavailable)?;
                let parsed = (|| {
                    let tenant = TenantId::from_bytes(key.get(0..16)?.try_into().ok()?);
                    let conversation =
                        ConversationId::from_bytes(key.get(16..32)?.try_into().ok()?);
                    let seq = Seq::from_be_bytes(key.get(32..40)?.try_into().ok()?);
                    Some((tenant, conversation, seq))
                })();
                pending.push(parsed.ok_or_else(|| StoreError::Corrupt("short outbox key".into()))?);
            }
            Ok(pending)
        })
        .await
    }

    async fn message_ref(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        key: &MessageKey,
    ) -> StoreResult<Option<MessageRef>> {
        let key = keys::message_key(tenant, conversation, key);
        self.read_point("message_ref", move |t| get(&t.message_keys, key))
    }

    async fn message(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        seq: Seq,
    ) -> StoreResult<Option<Message>> {
        self.read("message", move |t| {
            get(&t.messages, keys::stream(tenant, conversation, seq))
        })
        .await
    }

    async fn messages(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        window: SeqWindow,
        limit: usize,
    ) -> StoreResult<Vec<Message>> {
        self.read("messages", move |t| {
            let prefix = keys::conversation(tenant, conversation);
            match window {
                SeqWindow::After(seq) => {
                    let start = keys::stream(tenant, conversation, seq.saturating_add(1));
                    let end = keys::after_prefix(&prefix);
                    collect(t.messages.range(start..end).take(limit))
                }
                SeqWindow::Before(seq) => {
                    let end = keys::stream(tenant, conversation, seq);
                    let mut page: Vec<Message> =
                        collect(t.messages.range(prefix..end).rev().take(limit))?;
                    page.reverse();
                    Ok(page)
                }
            }
        })
        .await
    }

    async fn events(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        after: Seq,
        limit: usize,
    ) -> StoreResult<Vec<EventEnvelope>> {
        self.read("events", move |t| {
            let start = keys::stream(tenant, conversation, after.saturating_add(1));
            let end = keys::after_prefix(&keys::conversation(tenant, conversation));
            collect(t.events.range(start..end).take(limit))
        })
        .await
    }

    async fn rewrite_history(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        events: &[EventEnvelope],
        messages: &[Message],
        unindex: &[(String, i32)],
    ) -> StoreResult<()> {
        self.rewrite(tenant, conversation, events, messages, unindex)
            .await
    }

    async fn count_active(&self, tenant: TenantId, views: &[InboxView]) -> StoreResult<Vec<u64>> {
        search::count_active(self, tenant, views).await
    }

    async fn search_messages(
        &self,
        tenant: TenantId,
        term: &str,
        month: i32,
        after: Option<ConversationId>,
        limit: usize,
    ) -> StoreResult<Vec<ConversationId>> {
        search::search_messages(self, tenant, term, month, after, limit).await
    }

    async fn has_message_term(
        &self,
        tenant: TenantId,
        term: &str,
        month: i32,
        conversation: ConversationId,
    ) -> StoreResult<bool> {
        let key = keys::message_term(tenant, term, month, conversation);
        self.read("has_message_term", move |t| {
            t.message_terms.contains_key(key).map_err(unavailable)
        })
        .await
    }

    async fn inbox(
        &self,
        tenant: TenantId,
        view: &InboxView,
        cursor: Option<InboxCursor>,
        limit: usize,
    ) -> StoreResult<Vec<Conversation>> {
        if *view != InboxView::All {
            let view = view.key();
            return self
                .read("inbox_view", move |t| {
                    let prefix = keys::inbox_view_prefix(tenant, &view);
                    let start = match cursor {
                        Some(c) => keys::successor(&keys::inbox_view(
                            tenant,
                            &view,
                            c.last_activity_at,
                            c.conversation_id,
                        )),
                        None => prefix.clone(),
                    };
                    let end = keys::after_prefix(&prefix);
                    inbox_page(t, tenant, t.inbox_views.range(start..end), limit, None)
                })
                .await;
        }
        self.read("inbox", move |t| {
            let start = match cursor {
                Some(c) => {
                    keys::successor(&keys::inbox(tenant, c.last_activity_at, c.conversation_id))
                }
                None => tenant.as_bytes().to_vec(),
            };
            let end = keys::after_prefix(tenant.as_bytes());
            inbox_page(t, tenant, t.inbox.range(start..end), limit, None)
        })
        .await
    }

    async fn active_since(
        &self,
        tenant: TenantId,
        since: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<Conversation>> {
        self.read("active_since", move |t| {
            let end = keys::after_prefix(&keys::inbox_from(tenant, since));
            inbox_page(
                t,
                tenant,
                t.inbox.range(tenant.as_bytes().to_vec()..end),
                limit,
                Some(since),
            )
        })
        .await
    }

    async fn next_ticket_number(&self, tenant: TenantId) -> StoreResult<u64> {
        self.write_for(Write::TicketNumber(tenant)).await
    }
}

fn inbox_page(
    tables: &Tables,
    tenant: TenantId,
    entries: impl Iterator<Item = fjall::Guard>,
    limit: usize,
    since: Option<Timestamp>,
) -> StoreResult<Vec<Conversation>> {
    let mut page = Vec::with_capacity(limit.min(256));
    for entry in entries {
        if page.len() >= limit {
            break;
        }
        let key = entry.key().map_err(unavailable)?;
        let id = keys::inbox_conversation(&key)
            .ok_or_else(|| StoreError::Corrupt("short inbox key".into()))?;
        let conversation: Conversation =
            get(&tables.conversations, keys::conversation(tenant, id))?.ok_or_else(|| {
                StoreError::Corrupt(format!("inbox names missing conversation {id}"))
            })?;
        if since.is_some_and(|s| conversation.last_activity_at < s) {
            break;
        }
        page.push(conversation);
    }
    Ok(page)
}

fn address_key(provider: Provider, address: &str) -> Vec<u8> {
    let mut key = provider.as_str().as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(address.as_bytes());
    key
}

fn get<T: DeserializeOwned>(keyspace: &Keyspace, key: impl AsRef<[u8]>) -> StoreResult<Option<T>> {
    match keyspace.get(key).map_err(unavailable)? {
        Some(bytes) => decode(&bytes).map(Some),
        None => Ok(None),
    }
}

fn collect<T: DeserializeOwned>(
    entries: impl Iterator<Item = fjall::Guard>,
) -> StoreResult<Vec<T>> {
    entries
        .map(|entry| decode(&entry.value().map_err(unavailable)?))
        .collect()
}

fn encode<T: Serialize>(value: &T) -> StoreResult<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> StoreResult<T> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl Drop for EmbeddedStore {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

#[cfg(test)]
mod tests;
