//! The real embedded store behind the storage port, with faults a test can inject at that port: a panic
//! when asked to commit a message whose text is `POISON` (so the panic happens inside the conversation
//! actor's `handle`, as a bug would), a conversation load held and then failed, commits that fail after
//! writing or without writing, failing event reads, and a lookup or an event read held until released.

use async_trait::async_trait;
use engine::storage::embedded::EmbeddedStore;
use jiff::Timestamp;
use schema::contact::{ContactAddress, ContactRecord, ContactWrite};
use schema::events::EventEnvelope;
use schema::records::*;
use schema::store::*;
use schema::{ConnectionId, ContactId, ConversationId, Seq, TenantId};
use std::sync::Arc;

pub struct FaultyStore(pub Arc<EmbeddedStore>, pub Arc<LoadFault>, pub Arc<Faults>);

/// Faults of the commit and read paths, armed by the tests.
#[derive(Default)]
pub struct Faults {
    /// The next this-many commits are written, then answered with an error (a lost acknowledgement).
    pub write_then_fail: std::sync::atomic::AtomicU32,
    /// The next this-many commits fail without writing anything.
    pub fail_unwritten: std::sync::atomic::AtomicU32,
    /// While set, event reads fail.
    pub events_down: std::sync::atomic::AtomicBool,
    /// While set, the next message-key lookup waits for `release_lookup`, after `lookup_entered`.
    pub hold_lookup: std::sync::atomic::AtomicBool,
    pub lookup_entered: tokio::sync::Notify,
    pub release_lookup: tokio::sync::Notify,
    /// While set, the next event read waits for `release_events`, after `events_entered`.
    pub hold_events: std::sync::atomic::AtomicBool,
    pub events_entered: tokio::sync::Notify,
    pub release_events: tokio::sync::Notify,
}

pub fn take_one(counter: &std::sync::atomic::AtomicU32) -> bool {
    counter
        .fetch_update(
            std::sync::atomic::Ordering::SeqCst,
            std::sync::atomic::Ordering::SeqCst,
            |n| n.checked_sub(1),
        )
        .is_ok()
}

/// A fault on the first conversation load: it waits until released, then fails like a store blip.
#[derive(Default)]
pub struct LoadFault {
    pub armed: std::sync::atomic::AtomicBool,
    pub entered: tokio::sync::Notify,
    pub release: tokio::sync::Notify,
}

#[async_trait]
impl AccountStore for FaultyStore {
    async fn create_tenant(&self, t: &Tenant) -> StoreResult<()> {
        self.0.create_tenant(t).await
    }

    async fn tenant(&self, id: TenantId) -> StoreResult<Option<Tenant>> {
        self.0.tenant(id).await
    }

    async fn tenants(&self, a: Option<TenantId>, limit: usize) -> StoreResult<Vec<Tenant>> {
        self.0.tenants(a, limit).await
    }

    async fn create_agent(&self, a: &Agent, h: [u8; 32]) -> StoreResult<()> {
        self.0.create_agent(a, h).await
    }

    async fn update_agent(&self, a: &Agent) -> StoreResult<bool> {
        self.0.update_agent(a).await
    }

    async fn agent_by_token(&self, h: [u8; 32]) -> StoreResult<Option<Agent>> {
        self.0.agent_by_token(h).await
    }

    async fn agent(&self, t: TenantId, id: schema::AgentId) -> StoreResult<Option<Agent>> {
        self.0.agent(t, id).await
    }

    async fn agents(&self, t: TenantId, limit: usize) -> StoreResult<Vec<Agent>> {
        self.0.agents(t, limit).await
    }

    async fn role_permissions(
        &self,
        t: TenantId,
    ) -> StoreResult<Option<schema::permission::RolePermissions>> {
        self.0.role_permissions(t).await
    }

    async fn put_role_permissions(
        &self,
        t: TenantId,
        p: &schema::permission::RolePermissions,
    ) -> StoreResult<()> {
        self.0.put_role_permissions(t, p).await
    }
}

#[async_trait]
impl ConnectionStore for FaultyStore {
    async fn create_connection(&self, c: &Connection) -> StoreResult<()> {
        self.0.create_connection(c).await
    }

    async fn connection(&self, id: ConnectionId) -> StoreResult<Option<Connection>> {
        self.0.connection(id).await
    }

    async fn update_connection(&self, c: &Connection) -> StoreResult<()> {
        self.0.update_connection(c).await
    }

    async fn remove_connection(&self, c: &Connection) -> StoreResult<()> {
        self.0.remove_connection(c).await
    }

    async fn connections(&self, t: TenantId) -> StoreResult<Vec<Connection>> {
        self.0.connections(t).await
    }

    async fn connection_by_address(&self, p: Provider, a: &str) -> StoreResult<Option<Connection>> {
        self.0.connection_by_address(p, a).await
    }
}

#[async_trait]
impl ConversationStore for FaultyStore {
    async fn rewrite_history(
        &self,
        t: TenantId,
        c: ConversationId,
        events: &[EventEnvelope],
        messages: &[Message],
        unindex: &[(String, i32)],
    ) -> StoreResult<()> {
        self.0
            .rewrite_history(t, c, events, messages, unindex)
            .await
    }

    async fn count_active(&self, t: TenantId, views: &[InboxView]) -> StoreResult<Vec<u64>> {
        self.0.count_active(t, views).await
    }

    async fn search_messages(
        &self,
        t: TenantId,
        term: &str,
        month: i32,
        after: Option<ConversationId>,
        limit: usize,
    ) -> StoreResult<Vec<ConversationId>> {
        self.0.search_messages(t, term, month, after, limit).await
    }

    async fn has_message_term(
        &self,
        t: TenantId,
        term: &str,
        month: i32,
        c: ConversationId,
    ) -> StoreResult<bool> {
        self.0.has_message_term(t, term, month, c).await
    }

    async fn ping(&self) -> StoreResult<()> {
        self.0.ping().await
    }

    async fn conversation(
        &self,
        t: TenantId,
        id: ConversationId,
    ) -> StoreResult<Option<Conversation>> {
        if self
            .1
            .armed
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            self.1.entered.notify_one();
            self.1.release.notified().await;
            return Err(StoreError::Unavailable("injected fault: store blip".into()));
        }
        self.0.conversation(t, id).await
    }

    async fn commit(&self, commit: ConversationCommit) -> StoreResult<()> {
        let poisoned = commit
            .messages
            .iter()
            .any(|m| matches!(&m.content, MessageContent::Text { body } if body == "POISON"));
        assert!(
            !poisoned,
            "injected fault: poison message reached the store"
        );
        if take_one(&self.2.fail_unwritten) {
            return Err(StoreError::Unavailable(
                "injected fault: not written".into(),
            ));
        }
        self.0.commit(commit).await?;
        if take_one(&self.2.write_then_fail) {
            return Err(StoreError::Unavailable(
                "injected fault: written, answer lost".into(),
            ));
        }
        Ok(())
    }

    async fn pending_outbound(
        &self,
        l: usize,
    ) -> StoreResult<Vec<(TenantId, ConversationId, Seq)>> {
        self.0.pending_outbound(l).await
    }

    async fn message_ref(
        &self,
        t: TenantId,
        c: ConversationId,
        k: &MessageKey,
    ) -> StoreResult<Option<MessageRef>> {
        if self
            .2
            .hold_lookup
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            self.2.lookup_entered.notify_one();
            self.2.release_lookup.notified().await;
        }
        self.0.message_ref(t, c, k).await
    }

    async fn message(
        &self,
        t: TenantId,
        c: ConversationId,
        s: Seq,
    ) -> StoreResult<Option<Message>> {
        self.0.message(t, c, s).await
    }

    async fn messages(
        &self,
        t: TenantId,
        c: ConversationId,
        w: SeqWindow,
        l: usize,
    ) -> StoreResult<Vec<Message>> {
        self.0.messages(t, c, w, l).await
    }

    async fn events(
        &self,
        t: TenantId,
        c: ConversationId,
        a: Seq,
        l: usize,
    ) -> StoreResult<Vec<EventEnvelope>> {
        if self
            .2
            .hold_events
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            self.2.events_entered.notify_one();
            self.2.release_events.notified().await;
        }
        if self.2.events_down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::Unavailable("injected fault: reads down".into()));
        }
        self.0.events(t, c, a, l).await
    }

    async fn inbox(
        &self,
        t: TenantId,
        v: &InboxView,
        c: Option<InboxCursor>,
        l: usize,
    ) -> StoreResult<Vec<Conversation>> {
        self.0.inbox(t, v, c, l).await
    }

    async fn active_since(
        &self,
        t: TenantId,
        s: Timestamp,
        l: usize,
    ) -> StoreResult<Vec<Conversation>> {
        self.0.active_since(t, s, l).await
    }

    async fn next_ticket_number(&self, t: TenantId) -> StoreResult<u64> {
        self.0.next_ticket_number(t).await
    }
}

#[async_trait]
impl FeedStore for FaultyStore {
    async fn feed(
        &self,
        t: TenantId,
        after: Option<&FeedCursor>,
        l: usize,
    ) -> StoreResult<FeedPage> {
        self.0.feed(t, after, l).await
    }
}

#[async_trait]
impl DepartmentStore for FaultyStore {
    async fn create_department(&self, d: &Department) -> StoreResult<()> {
        self.0.create_department(d).await
    }

    async fn put_department(&self, d: &Department) -> StoreResult<()> {
        self.0.put_department(d).await
    }

    async fn department(&self, t: TenantId, key: &str) -> StoreResult<Option<Department>> {
        self.0.department(t, key).await
    }

    async fn departments(&self, t: TenantId) -> StoreResult<Vec<Department>> {
        self.0.departments(t).await
    }

    async fn remove_department(&self, t: TenantId, key: &str) -> StoreResult<()> {
        self.0.remove_department(t, key).await
    }
}

#[async_trait]
impl TimerStore for FaultyStore {
    async fn due(
        &self,
        shards: Option<&[schema::cluster::ShardId]>,
        until: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<Due>> {
        self.0.due(shards, until, limit).await
    }

    async fn forget_due(&self, due: &Due) -> StoreResult<()> {
        self.0.forget_due(due).await
    }
}

#[async_trait]
impl QuickReplyStore for FaultyStore {
    async fn put_quick_reply(&self, r: &QuickReply) -> StoreResult<()> {
        self.0.put_quick_reply(r).await
    }

    async fn quick_reply(&self, t: TenantId, id: uuid::Uuid) -> StoreResult<Option<QuickReply>> {
        self.0.quick_reply(t, id).await
    }

    async fn quick_replies(&self, t: TenantId) -> StoreResult<Vec<QuickReply>> {
        self.0.quick_replies(t).await
    }

    async fn remove_quick_reply(&self, t: TenantId, id: uuid::Uuid) -> StoreResult<()> {
        self.0.remove_quick_reply(t, id).await
    }
}

#[async_trait]
impl PresenceStore for FaultyStore {
    async fn put_presence(&self, t: TenantId, p: &schema::presence::Presence) -> StoreResult<()> {
        self.0.put_presence(t, p).await
    }

    async fn remove_presence(&self, t: TenantId, a: schema::AgentId) -> StoreResult<()> {
        self.0.remove_presence(t, a).await
    }

    async fn presence(&self, t: TenantId) -> StoreResult<Vec<schema::presence::Presence>> {
        self.0.presence(t).await
    }
}

#[async_trait]
impl ContactStore for FaultyStore {
    async fn contact(&self, t: TenantId, id: ContactId) -> StoreResult<Option<ContactRecord>> {
        self.0.contact(t, id).await
    }

    async fn contact_by_address(
        &self,
        t: TenantId,
        a: &ContactAddress,
    ) -> StoreResult<Option<ContactRecord>> {
        self.0.contact_by_address(t, a).await
    }

    async fn ensure_contact(&self, c: &ContactRecord) -> StoreResult<()> {
        self.0.ensure_contact(c).await
    }

    async fn write_contacts(&self, t: TenantId, w: &[ContactWrite]) -> StoreResult<()> {
        self.0.write_contacts(t, w).await
    }

    async fn contacts(
        &self,
        t: TenantId,
        after: Option<ContactId>,
        limit: usize,
    ) -> StoreResult<Vec<ContactRecord>> {
        self.0.contacts(t, after, limit).await
    }

    async fn search_contacts(
        &self,
        t: TenantId,
        prefix: &str,
        after: Option<&TermCursor>,
        limit: usize,
    ) -> StoreResult<Vec<(String, ContactRecord)>> {
        self.0.search_contacts(t, prefix, after, limit).await
    }
}

#[async_trait]
impl CredentialStore for FaultyStore {
    async fn set_credentials(&self, c: &schema::account::Credentials) -> StoreResult<()> {
        self.0.set_credentials(c).await
    }

    async fn credentials_by_email(
        &self,
        email: &str,
    ) -> StoreResult<Option<schema::account::Credentials>> {
        self.0.credentials_by_email(email).await
    }

    async fn credentials_of(
        &self,
        t: TenantId,
        a: schema::AgentId,
    ) -> StoreResult<Option<schema::account::Credentials>> {
        self.0.credentials_of(t, a).await
    }

    async fn put_grant(&self, token: [u8; 32], g: &schema::account::Grant) -> StoreResult<()> {
        self.0.put_grant(token, g).await
    }

    async fn grant(&self, token: [u8; 32]) -> StoreResult<Option<schema::account::Grant>> {
        self.0.grant(token).await
    }

    async fn spend_grant(
        &self,
        token: [u8; 32],
        expected: schema::account::GrantKind,
        spent: &schema::account::Grant,
    ) -> StoreResult<bool> {
        self.0.spend_grant(token, expected, spent).await
    }

    async fn remove_grants(&self, tokens: &[[u8; 32]]) -> StoreResult<()> {
        self.0.remove_grants(tokens).await
    }

    async fn put_session(&self, s: &schema::account::Session) -> StoreResult<()> {
        self.0.put_session(s).await
    }

    async fn session(
        &self,
        t: TenantId,
        a: schema::AgentId,
        id: uuid::Uuid,
    ) -> StoreResult<Option<schema::account::Session>> {
        self.0.session(t, a, id).await
    }

    async fn sessions(
        &self,
        t: TenantId,
        a: schema::AgentId,
    ) -> StoreResult<Vec<schema::account::Session>> {
        self.0.sessions(t, a).await
    }

    async fn remove_session(
        &self,
        t: TenantId,
        a: schema::AgentId,
        id: uuid::Uuid,
    ) -> StoreResult<()> {
        self.0.remove_session(t, a, id).await
    }
}

#[async_trait]
impl AuditStore for FaultyStore {
    async fn append_audit(&self, r: &schema::audit::AuditRecord) -> StoreResult<u64> {
        self.0.append_audit(r).await
    }

    async fn audit_entries(
        &self,
        t: TenantId,
        w: SeqWindow,
        limit: usize,
    ) -> StoreResult<Vec<AuditEntry>> {
        self.0.audit_entries(t, w, limit).await
    }

    async fn audit_head(&self, t: TenantId) -> StoreResult<Option<schema::audit::AuditHead>> {
        self.0.audit_head(t).await
    }
}

#[async_trait]
impl TenancyStore for FaultyStore {
    async fn plans(&self) -> StoreResult<Vec<schema::tenancy::Plan>> {
        self.0.plans().await
    }

    async fn put_plan(&self, p: &schema::tenancy::Plan) -> StoreResult<()> {
        self.0.put_plan(p).await
    }

    async fn tenant_account(
        &self,
        t: TenantId,
    ) -> StoreResult<Option<schema::tenancy::TenantAccount>> {
        self.0.tenant_account(t).await
    }

    async fn put_tenant_account(&self, a: &schema::tenancy::TenantAccount) -> StoreResult<()> {
        self.0.put_tenant_account(a).await
    }

    async fn feature_flags(
        &self,
        t: TenantId,
    ) -> StoreResult<Option<schema::features::FeatureFlags>> {
        self.0.feature_flags(t).await
    }

    async fn put_feature_flags(
        &self,
        t: TenantId,
        f: &schema::features::FeatureFlags,
    ) -> StoreResult<()> {
        self.0.put_feature_flags(t, f).await
    }

    async fn smtp_account(&self, t: TenantId) -> StoreResult<Option<schema::mail::SmtpAccount>> {
        self.0.smtp_account(t).await
    }

    async fn put_smtp_account(
        &self,
        t: TenantId,
        a: Option<&schema::mail::SmtpAccount>,
    ) -> StoreResult<()> {
        self.0.put_smtp_account(t, a).await
    }

    async fn put_usage(
        &self,
        t: TenantId,
        month: i32,
        meter: uuid::Uuid,
        u: &schema::tenancy::MeteredUsage,
    ) -> StoreResult<()> {
        self.0.put_usage(t, month, meter, u).await
    }

    async fn usage(&self, t: TenantId, month: i32) -> StoreResult<schema::tenancy::MeteredUsage> {
        self.0.usage(t, month).await
    }
}
