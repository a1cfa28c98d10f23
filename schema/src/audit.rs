//! The audit log: what people (and API keys) did in a tenant, appended per tenant and hash-chained so
//! that an entry altered, removed or moved afterwards is detected by [`ChainCheck`].
//!
//! Each entry's hash is SHA-256 over a domain tag, the previous entry's hash (zeros before the first),
//! its number and the canonical JSON of its [`AuditRecord`] (fields in declaration order, details in
//! key order: the same bytes on every backend). The store numbers entries and links them, one
//! append at a time per tenant, and keeps the chain's head (`AuditHead`) beside it.
//!
//! **Architecture Invariant:** an audit entry is never updated or deleted by Conversa; an erasure
//! (LGPD) is itself an entry that names what was erased by id, never by the erased data.
//!
//! What a chain proves, exactly: an entry whose stored fields changed no longer hashes to its stored
//! hash; an entry removed or moved breaks the numbering or the next entry's link. Someone able to
//! rewrite every entry from a point on (and the head) can forge a consistent chain: publishing the
//! head hash elsewhere (`conversa audit verify` prints it) anchors what was there.

use crate::ids::{AgentId, TenantId};
use crate::records::AgentRole;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The hash before a tenant's first entry.
pub const GENESIS: [u8; 32] = [0; 32];

/// At most this many details per entry, each key and value at most `MAX_DETAIL_BYTES`.
pub const MAX_DETAILS: usize = 16;
pub const MAX_DETAIL_BYTES: usize = 512;

/// At most this many entries per page read from a store.
pub const MAX_AUDIT_PAGE: usize = 500;

/// Entries per CQL partition (`seq / AUDIT_BUCKET`): a tenant's log spreads over bounded partitions.
pub const AUDIT_BUCKET: u64 = 65_536;

/// What was done: a stable dotted name, the filter auditors use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum AuditAction {
    #[serde(rename = "auth.sign_in")]
    SignIn,
    #[serde(rename = "auth.sign_in_failed")]
    SignInFailed,
    #[serde(rename = "auth.sign_out")]
    SignOut,
    #[serde(rename = "auth.session_revoked")]
    SessionRevoked,
    #[serde(rename = "auth.password_changed")]
    PasswordChanged,
    #[serde(rename = "auth.credentials_set")]
    CredentialsSet,
    #[serde(rename = "auth.api_key_created")]
    ApiKeyCreated,
    #[serde(rename = "role.permissions_changed")]
    RolePermissionsChanged,
    #[serde(rename = "user.created")]
    UserCreated,
    #[serde(rename = "user.changed")]
    UserChanged,
    #[serde(rename = "ticket.changed")]
    TicketChanged,
    #[serde(rename = "message.deleted")]
    MessageDeleted,
    #[serde(rename = "conversation.deleted")]
    ConversationDeleted,
    #[serde(rename = "config.changed")]
    ConfigChanged,
    #[serde(rename = "connection.created")]
    ConnectionCreated,
    #[serde(rename = "connection.removed")]
    ConnectionRemoved,
    #[serde(rename = "contact.exported")]
    ContactExported,
    #[serde(rename = "contact.erased")]
    ContactErased,
    #[serde(rename = "tenant.changed")]
    TenantChanged,
}

impl AuditAction {
    pub const ALL: [AuditAction; 19] = [
        Self::SignIn,
        Self::SignInFailed,
        Self::SignOut,
        Self::SessionRevoked,
        Self::PasswordChanged,
        Self::CredentialsSet,
        Self::ApiKeyCreated,
        Self::RolePermissionsChanged,
        Self::UserCreated,
        Self::UserChanged,
        Self::TicketChanged,
        Self::MessageDeleted,
        Self::ConversationDeleted,
        Self::ConfigChanged,
        Self::ConnectionCreated,
        Self::ConnectionRemoved,
        Self::ContactExported,
        Self::ContactErased,
        Self::TenantChanged,
    ];

    /// The wire name (`auth.sign_in`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SignIn => "auth.sign_in",
            Self::SignInFailed => "auth.sign_in_failed",
            Self::SignOut => "auth.sign_out",
            Self::SessionRevoked => "auth.session_revoked",
            Self::PasswordChanged => "auth.password_changed",
            Self::CredentialsSet => "auth.credentials_set",
            Self::ApiKeyCreated => "auth.api_key_created",
            Self::RolePermissionsChanged => "role.permissions_changed",
            Self::UserCreated => "user.created",
            Self::UserChanged => "user.changed",
            Self::TicketChanged => "ticket.changed",
            Self::MessageDeleted => "message.deleted",
            Self::ConversationDeleted => "conversation.deleted",
            Self::ConfigChanged => "config.changed",
            Self::ConnectionCreated => "connection.created",
            Self::ConnectionRemoved => "connection.removed",
            Self::ContactExported => "contact.exported",
            Self::ContactErased => "contact.erased",
            Self::TenantChanged => "tenant.changed",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }
}

/// Who did it: a user of the tenant; or, with `agent_id` and `role` empty, the platform's operator
/// (provisioning) or nobody signed in (a failed sign-in).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditActor {
    pub agent_id: Option<AgentId>,
    pub role: Option<AgentRole>,
}

impl AuditActor {
    pub const OPERATOR: AuditActor = AuditActor {
        agent_id: None,
        role: None,
    };

    pub fn agent(agent: &crate::records::Agent) -> Self {
        Self {
            agent_id: Some(agent.id),
            role: Some(agent.role),
        }
    }
}

/// One thing done, as the caller records it (the store numbers and chains it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditRecord {
    pub tenant_id: TenantId,
    pub at: Timestamp,
    pub actor: AuditActor,
    pub action: AuditAction,
    /// What it was done to, by id (`conversation:<uuid>`, `role:agent`, `session:<uuid>`).
    pub target: String,
    /// Ids and names that say what changed (never message text or a contact's data).
    #[schema(value_type = BTreeMap<String, String>)]
    pub details: BTreeMap<String, String>,
}

impl AuditRecord {
    pub fn new(
        tenant_id: TenantId,
        actor: AuditActor,
        action: AuditAction,
        target: impl Into<String>,
    ) -> Self {
        Self {
            tenant_id,
            at: Timestamp::now(),
            actor,
            action,
            target: bounded(target.into()),
            details: BTreeMap::new(),
        }
    }

    /// Adds a detail; past `MAX_DETAILS` it is dropped, and long keys and values are cut.
    pub fn detail(mut self, key: &str, value: impl Into<String>) -> Self {
        if self.details.len() < MAX_DETAILS {
            self.details
                .insert(bounded(key.to_owned()), bounded(value.into()));
        }
        self
    }

    /// The bytes the chain hashes: the record's JSON (struct fields in order, details sorted).
    pub fn canonical(&self) -> Vec<u8> {
        // A record of strings, ids and a timestamp always serialises.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// Cuts a string to `MAX_DETAIL_BYTES` on a character boundary.
fn bounded(mut value: String) -> String {
    if value.len() > MAX_DETAIL_BYTES {
        let mut end = MAX_DETAIL_BYTES;
        while !value.is_char_boundary(end) {
            end -= 1;
        }
        value.truncate(end);
    }
    value
}

/// A stored entry: the record, its number in the tenant's log and its place in the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub seq: u64,
    pub record: AuditRecord,
    pub prev_hash: [u8; 32],
    pub hash: [u8; 32],
}

impl AuditEntry {
    /// Numbers and links a record after the chain's current head.
    pub fn chain(head: &AuditHead, record: AuditRecord) -> Self {
        let seq = head.seq + 1;
        let hash = entry_hash(&head.hash, seq, &record.canonical());
        Self {
            seq,
            record,
            prev_hash: head.hash,
            hash,
        }
    }

    pub fn head(&self) -> AuditHead {
        AuditHead {
            seq: self.seq,
            hash: self.hash,
        }
    }
}

/// The last entry of a tenant's chain (seq 0 and `GENESIS` before the first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditHead {
    pub seq: u64,
    pub hash: [u8; 32],
}

impl AuditHead {
    pub const EMPTY: AuditHead = AuditHead {
        seq: 0,
        hash: GENESIS,
    };
}

/// SHA-256 of an entry: domain tag, previous hash, number, canonical record.
pub fn entry_hash(prev_hash: &[u8; 32], seq: u64, canonical: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(b"conversa-audit-v1\n");
    hasher.update(prev_hash);
    hasher.update(seq.to_be_bytes());
    hasher.update(canonical);
    hasher.finalize().into()
}

/// What breaks a chain, at the first entry where it shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChainBreak {
    /// The entry's fields do not hash to its stored hash: it was altered.
    #[error("entry {seq} was altered: its fields do not hash to its stored hash")]
    Altered { seq: u64 },
    /// The numbering skips or repeats: entries were removed or moved.
    #[error("entry {expected} is missing or moved (found {found} in its place)")]
    Missing { expected: u64, found: u64 },
    /// The entry does not link to the one before it: an entry before it was replaced or moved.
    #[error("entry {seq} does not link to entry {}", .seq - 1)]
    Unlinked { seq: u64 },
    /// The log ends before the recorded head: its last entries were removed.
    #[error("the log ends at entry {last} but its head records entry {head}")]
    Truncated { last: u64, head: u64 },
    /// The log's last entry is the head's number with another hash.
    #[error("the head does not match entry {seq}")]
    HeadMismatch { seq: u64 },
}

/// Checks a tenant's entries in order, one page at a time.
#[derive(Clone, Debug)]
pub struct ChainCheck {
    last: AuditHead,
}

impl Default for ChainCheck {
    fn default() -> Self {
        Self {
            last: AuditHead::EMPTY,
        }
    }
}

impl ChainCheck {
    /// Checks the next entry (entries must come in stored seq order).
    pub fn next(&mut self, entry: &AuditEntry) -> Result<(), ChainBreak> {
        let expected = self.last.seq + 1;
        if entry.seq != expected {
            return Err(ChainBreak::Missing {
                expected,
                found: entry.seq,
            });
        }
        if entry_hash(&entry.prev_hash, entry.seq, &entry.record.canonical()) != entry.hash {
            return Err(ChainBreak::Altered { seq: entry.seq });
        }
        if entry.prev_hash != self.last.hash {
            return Err(ChainBreak::Unlinked { seq: entry.seq });
        }
        self.last = entry.head();
        Ok(())
    }

    /// Ends the check against the stored head. The head may lag the log (a writer stopped between
    /// the entry and the head), never lead it.
    pub fn finish(self, head: Option<AuditHead>) -> Result<AuditHead, ChainBreak> {
        let head = head.unwrap_or(AuditHead::EMPTY);
        if head.seq > self.last.seq {
            return Err(ChainBreak::Truncated {
                last: self.last.seq,
                head: head.seq,
            });
        }
        if head.seq == self.last.seq && head.hash != self.last.hash {
            return Err(ChainBreak::HeadMismatch { seq: head.seq });
        }
        Ok(self.last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: usize) -> Vec<AuditEntry> {
        let tenant = TenantId::new();
        let mut head = AuditHead::EMPTY;
        (0..n)
            .map(|i| {
                let record = AuditRecord::new(
                    tenant,
                    AuditActor::OPERATOR,
                    AuditAction::ConfigChanged,
                    format!("department:{i}"),
                );
                let entry = AuditEntry::chain(&head, record);
                head = entry.head();
                entry
            })
            .collect()
    }

    fn check(entries: &[AuditEntry], head: Option<AuditHead>) -> Result<AuditHead, ChainBreak> {
        let mut check = ChainCheck::default();
        for entry in entries {
            check.next(entry)?;
        }
        check.finish(head)
    }

    #[test]
    fn an_untouched_chain_verifies_to_its_head() {
        let entries = chain(5);
        let head = entries[4].head();
        assert_eq!(check(&entries, Some(head)), Ok(head));
        assert_eq!(check(&[], None), Ok(AuditHead::EMPTY));
    }

    #[test]
    fn an_altered_field_is_caught_at_its_entry() {
        let mut entries = chain(4);
        entries[2].record.target = "department:other".into();
        let head = entries[3].head();
        assert_eq!(
            check(&entries, Some(head)),
            Err(ChainBreak::Altered { seq: 3 })
        );
    }

    #[test]
    fn a_removed_entry_is_caught() {
        let mut entries = chain(4);
        entries.remove(1);
        let head = entries[2].head();
        assert_eq!(
            check(&entries, Some(head)),
            Err(ChainBreak::Missing {
                expected: 2,
                found: 3
            })
        );
    }

    #[test]
    fn entries_swapped_with_their_numbers_are_caught() {
        let mut entries = chain(4);
        let (first, second) = (entries[1].record.clone(), entries[2].record.clone());
        entries[1].record = second;
        entries[2].record = first;
        assert_eq!(
            check(&entries, Some(entries[3].head())),
            Err(ChainBreak::Altered { seq: 2 })
        );
    }

    #[test]
    fn an_entry_rehashed_after_a_change_no_longer_links() {
        let mut entries = chain(4);
        entries[1].record.target = "forged".into();
        entries[1].hash = entry_hash(&entries[1].prev_hash, 2, &entries[1].record.canonical());
        assert_eq!(
            check(&entries, Some(entries[3].head())),
            Err(ChainBreak::Unlinked { seq: 3 })
        );
    }

    #[test]
    fn removing_the_last_entries_is_caught_by_the_head() {
        let mut entries = chain(4);
        let head = entries[3].head();
        entries.truncate(2);
        assert_eq!(
            check(&entries, Some(head)),
            Err(ChainBreak::Truncated { last: 2, head: 4 })
        );
    }

    #[test]
    fn a_head_lagging_the_log_is_not_a_break() {
        let entries = chain(3);
        assert_eq!(
            check(&entries, Some(entries[1].head())),
            Ok(entries[2].head())
        );
    }

    #[test]
    fn details_are_bounded_and_sorted_in_the_hashed_bytes() {
        let tenant = TenantId::new();
        let mut record = AuditRecord::new(
            tenant,
            AuditActor::OPERATOR,
            AuditAction::SignIn,
            "x".repeat(999),
        );
        assert_eq!(record.target.len(), MAX_DETAIL_BYTES);
        for i in 0..40 {
            record = record.detail(&format!("k{i:02}"), "é".repeat(300));
        }
        assert_eq!(record.details.len(), MAX_DETAILS);
        assert!(record.details.values().all(|v| v.len() <= MAX_DETAIL_BYTES));
        let a = record.clone().detail("z", "1").canonical();
        let b = record.detail("z", "1").canonical();
        assert_eq!(a, b);
    }

    #[test]
    fn every_action_parses_from_its_wire_name() {
        for action in AuditAction::ALL {
            assert_eq!(AuditAction::parse(action.as_str()), Some(action));
            assert_eq!(
                serde_json::to_value(action).ok(),
                Some(serde_json::Value::String(action.as_str().into()))
            );
        }
    }
}
