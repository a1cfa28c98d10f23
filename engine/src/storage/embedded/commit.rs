//! The embedded store's single writer: a thread that takes every write waiting in the bounded queue (up
//! to `group_commit_max`), checks each against the store and the writes before it in the group (seq
//! continuity, address uniqueness), stages the valid ones into one atomic fjall batch, fsyncs once and
//! answers every writer. One thread means group commit and race-free checks without locks.

use super::{Tables, address_key, encode, get, unavailable};
use crate::storage::keys;
use fjall::PersistMode;
use schema::records::{
    Agent, Connection, Conversation, Department, Direction, Message, MessageStatus, Tenant,
};
use schema::store::{ConversationCommit, InboxPosition, StoreError, StoreResult};
use schema::{ConversationId, Seq, TenantId};
use std::collections::{HashMap, HashSet};
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// A write for the committer thread.
pub(super) enum Write {
    Commit(Box<ConversationCommit>),
    Tenant(Tenant),
    Connection(Connection),
    UpdateConnection(Connection),
    RemoveConnection(Connection),
    Agent(Agent, [u8; 32]),
    /// Take the tenant's next ticket number (answered with it).
    TicketNumber(TenantId),
    Department(Department),
    CreateDepartment(Department),
    RemoveDepartment(TenantId, String),
    /// A plain record write to a keyspace of no other table's concern (quick replies).
    Put(&'static str, Vec<u8>, Vec<u8>),
    Remove(&'static str, Vec<u8>),
    /// Create the contact of an address unless the address is held.
    EnsureContact(Box<schema::contact::ContactRecord>),
    /// Contact writes applied together or not at all.
    Contacts(TenantId, Vec<schema::contact::ContactWrite>),
    /// A user's email and password hash (the email claimed).
    Credentials(Box<schema::account::Credentials>),
    /// Spend a refresh token: answered 1 if it was still a refresh grant, else 0.
    SpendGrant(
        [u8; 32],
        schema::account::GrantKind,
        Box<schema::account::Grant>,
    ),
    /// Overwrite (or, with `None`, remove) rows of the history's tables: an LGPD erasure.
    Rewrite(Vec<HistoryRow>),
    /// Append to a tenant's audit log (answered with the entry's number).
    Audit(Box<schema::audit::AuditRecord>),
}

impl Write {
    /// The store operation it is counted under when it fails.
    pub(super) fn op(&self) -> &'static str {
        match self {
            Self::Commit(_) => "commit",
            Self::Tenant(_) => "create_tenant",
            Self::Connection(_) => "create_connection",
            Self::UpdateConnection(_) => "update_connection",
            Self::RemoveConnection(_) => "remove_connection",
            Self::Agent(..) => "create_agent",
            Self::TicketNumber(_) => "next_ticket_number",
            Self::Department(_) => "put_department",
            Self::CreateDepartment(_) => "create_department",
            Self::Put(..) => "put",
            Self::Remove(..) => "remove",
            Self::RemoveDepartment(..) => "remove_department",
            Self::EnsureContact(_) => "ensure_contact",
            Self::Contacts(..) => "write_contacts",
            Self::Credentials(_) => "set_credentials",
            Self::SpendGrant(..) => "spend_grant",
            Self::Audit(_) => "append_audit",
            Self::Rewrite(_) => "rewrite_history",
        }
    }
}

/// One row of a history table to overwrite (`Some`) or remove (`None`).
pub(super) type HistoryRow = (&'static str, Vec<u8>, Option<Vec<u8>>);

pub(super) struct Pending {
    pub(super) write: Write,
    /// The write's answer: the number taken for `TicketNumber`, 0 for every other write.
    pub(super) done: oneshot::Sender<StoreResult<u64>>,
}

/// What the writes of one group have taken so far, over what is stored: the next write of the group
/// continues from it.
#[derive(Default)]
struct Taken {
    last_seqs: HashMap<(TenantId, ConversationId), Seq>,
    claimed_addresses: Vec<Vec<u8>>,
    /// Last feed position per tenant.
    feed_heads: HashMap<TenantId, u64>,
    /// Last ticket number per tenant.
    tickets: HashMap<TenantId, u64>,
    contacts: super::contacts::ContactsTaken,
    /// Active-ticket counts per counter key.
    counts: HashMap<Vec<u8>, u64>,
    /// Audit chain heads per tenant.
    audit_heads: HashMap<TenantId, schema::audit::AuditHead>,
    /// Search-term keys staged by the group.
    terms: HashSet<Vec<u8>>,
}

/// What committed groups left, kept for the committer's lifetime (it is the only writer): each
/// conversation's last seq and each tenant's feed head, so a commit need not read and decode the
/// stored conversation, nor scan the feed, to continue from them; and the search-term keys written
/// lately, so a word a conversation already used this month is not inserted again (the key is the
/// whole entry: inserting it again changes nothing but costs the memtable an insert). Learned only
/// from groups whose batch was written; forgotten whole when it grows past its bound or a history
/// rewrite runs (an erasure is the only write that removes term keys).
#[derive(Default)]
struct Known {
    last_seqs: HashMap<(TenantId, ConversationId), Seq>,
    feed_heads: HashMap<TenantId, u64>,
    terms: HashSet<Vec<u8>>,
}

/// Conversations whose last seq the committer remembers at most (about 5 MiB).
const KNOWN_MAX: usize = 100_000;

/// Search-term keys the committer remembers at most (about 100 bytes each: 6.5 MiB).
const KNOWN_TERMS_MAX: usize = 65_536;

impl Known {
    fn learn(&mut self, taken: &mut Taken) {
        if self.last_seqs.len() + taken.last_seqs.len() > KNOWN_MAX {
            self.last_seqs.clear();
            self.feed_heads.clear();
        }
        self.last_seqs.extend(&taken.last_seqs);
        self.feed_heads.extend(&taken.feed_heads);
        if self.terms.len() + taken.terms.len() > KNOWN_TERMS_MAX {
            self.terms.clear();
        }
        self.terms.extend(taken.terms.drain());
    }
}

pub(super) fn run_committer(
    tables: Tables,
    mut receiver: mpsc::Receiver<Pending>,
    group_max: usize,
) {
    let mut known = Known::default();
    let keeper = super::memtables::Keeper::start(written_per_message(&tables));
    let mut group = Vec::with_capacity(group_max);
    while let Some(first) = receiver.blocking_recv() {
        group.push(first);
        while group.len() < group_max {
            match receiver.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        let started = Instant::now();
        let size = group.len();
        commit_group(&tables, &mut group, &mut known);
        metrics::histogram!("conversa_store_group_commit_seconds")
            .record(started.elapsed().as_secs_f64());
        metrics::histogram!("conversa_store_group_commit_size").record(size as f64);
        keeper.written();
    }
}

/// The keyspaces a conversation commit writes: their memtables fill fastest, and freeing one under
/// fjall's lock held every write behind it (`memtables`).
fn written_per_message(tables: &Tables) -> Vec<fjall::Keyspace> {
    [
        &tables.conversations,
        &tables.inbox,
        &tables.inbox_views,
        &tables.due,
        &tables.events,
        &tables.messages,
        &tables.message_keys,
        &tables.outbox,
        &tables.feed,
        &tables.message_terms,
        &tables.counters,
    ]
    .into_iter()
    .cloned()
    .collect()
}

/// Validates each write against the store and the writes before it in the group, writes the valid ones
/// in one batch, fsyncs, and answers every writer.
fn commit_group(tables: &Tables, group: &mut Vec<Pending>, known: &mut Known) {
    let mut batch = tables.db.batch().durability(Some(PersistMode::SyncAll));
    let mut accepted = Vec::with_capacity(group.len());
    let mut taken = Taken::default();
    let mut rewrites = false;
    for pending in group.drain(..) {
        rewrites |= matches!(pending.write, Write::Rewrite(_));
        match stage(tables, &mut batch, pending.write, &mut taken, known) {
            Ok(value) => accepted.push((pending.done, value)),
            Err(error) => {
                let _ = pending.done.send(Err(error));
            }
        }
    }
    let outcome = batch.commit().map_err(|e| e.to_string());
    if rewrites {
        *known = Known::default();
    } else if outcome.is_ok() {
        known.learn(&mut taken);
    }
    for (done, value) in accepted {
        let answer = match &outcome {
            Ok(()) => Ok(value),
            Err(error) => Err(StoreError::Unavailable(error.clone())),
        };
        let _ = done.send(answer);
    }
}

fn stage(
    tables: &Tables,
    batch: &mut fjall::OwnedWriteBatch,
    write: Write,
    taken: &mut Taken,
    known: &Known,
) -> StoreResult<u64> {
    let Taken {
        last_seqs,
        claimed_addresses,
        feed_heads,
        tickets,
        contacts,
        counts,
        audit_heads,
        terms,
    } = taken;
    match write {
        Write::Commit(commit) => {
            let conversation = &commit.conversation;
            let (tenant, id) = (conversation.tenant_id, conversation.id);
            let conversation_key = keys::conversation(tenant, id);
            let remembered = last_seqs
                .get(&(tenant, id))
                .or_else(|| known.last_seqs.get(&(tenant, id)));
            let stored = match remembered {
                Some(seq) => *seq,
                None => get::<Conversation>(&tables.conversations, &conversation_key)?
                    .map_or(0, |c| c.last_seq),
            };
            // A commit with events must start right after the stored seq; one without events (a
            // status that only touched `early_statuses`) must not move it.
            let expected_first = stored + 1;
            let continues = match commit.events.first() {
                Some(first) => first.seq == expected_first,
                None => conversation.last_seq == stored,
            };
            if !continues {
                let first = commit
                    .events
                    .first()
                    .map_or(conversation.last_seq, |e| e.seq);
                return Err(StoreError::SeqConflict {
                    conversation: id,
                    stored,
                    first,
                });
            }
            super::super::codec::validate_commit(&commit)?;
            if commit.fence.is_some() {
                // One machine has no shards to fence; cluster mode refuses this backend at start.
                return Err(StoreError::Unsupported("fenced commits (cluster mode)"));
            }
            // Encode everything before touching the shared batch: a failure here must leave no half of
            // this commit in the group.
            let mut puts: Vec<(&fjall::Keyspace, Vec<u8>, Vec<u8>)> = Vec::new();
            let mut removes: Vec<(&fjall::Keyspace, Vec<u8>)> = Vec::new();
            puts.push((
                &tables.conversations,
                conversation_key,
                encode(conversation)?,
            ));
            if let Some(previous) = &commit.previous {
                if let Some(due) = previous.due {
                    removes.push((&tables.due, keys::due(due, tenant, id)));
                }
                removes.push((
                    &tables.inbox,
                    keys::inbox(tenant, previous.last_activity_at, id),
                ));
                for view in previous.views() {
                    let key = keys::inbox_view(tenant, &view.key(), previous.last_activity_at, id);
                    removes.push((&tables.inbox_views, key));
                }
            }
            puts.push((
                &tables.inbox,
                keys::inbox(tenant, conversation.last_activity_at, id),
                Vec::new(),
            ));
            if let Some(due) = conversation.next_due() {
                puts.push((&tables.due, keys::due(due, tenant, id), Vec::new()));
            }
            for view in InboxPosition::of(conversation).views() {
                let key = keys::inbox_view(tenant, &view.key(), conversation.last_activity_at, id);
                puts.push((&tables.inbox_views, key, Vec::new()));
            }
            // Each event is encoded once, for its stream and for the tenant's feed (this thread is
            // the store's one writer: its time is everyone's).
            let encoded = commit
                .events
                .iter()
                .map(encode)
                .collect::<StoreResult<Vec<_>>>()?;
            for (event, bytes) in commit.events.iter().zip(&encoded) {
                puts.push((
                    &tables.events,
                    keys::stream(tenant, id, event.seq),
                    bytes.clone(),
                ));
            }
            for message in &commit.messages {
                let key = keys::stream(tenant, id, message.seq);
                // Only outbound messages are ever rewritten (their status moves), so only they pay
                // for reading the stored version.
                if message.direction == Direction::Outbound
                    && get::<Message>(&tables.messages, &key)?
                        .is_some_and(|stored| stored.status.rank() > message.status.rank())
                {
                    continue;
                }
                puts.push((&tables.messages, key.clone(), encode(message)?));
                if message.direction == Direction::Outbound {
                    if message.status == MessageStatus::Pending {
                        puts.push((&tables.outbox, key, Vec::new()));
                    } else {
                        removes.push((&tables.outbox, key));
                    }
                }
            }
            for (key, reference) in &commit.message_keys {
                puts.push((
                    &tables.message_keys,
                    keys::message_key(tenant, id, key),
                    encode(reference)?,
                ));
            }
            if !commit.events.is_empty() {
                let remembered = feed_heads
                    .get(&tenant)
                    .or_else(|| known.feed_heads.get(&tenant));
                let head = match remembered {
                    Some(head) => *head,
                    None => last_feed_position(tables, tenant)?,
                };
                let mut position = head;
                for bytes in encoded {
                    position += 1;
                    puts.push((&tables.feed, keys::feed(tenant, position), bytes));
                }
                feed_heads.insert(tenant, position);
            }
            let month = schema::helpdesk::search::month_of(conversation.last_activity_at);
            let mut new_terms = Vec::new();
            for term in &commit.search_terms {
                let key = keys::message_term(tenant, term, month, id);
                if known.terms.contains(&key) || terms.contains(&key) {
                    continue;
                }
                new_terms.push(key.clone());
                puts.push((&tables.message_terms, key, Vec::new()));
            }
            let (left, entered) = InboxPosition::count_moves(
                commit.previous.as_ref(),
                &InboxPosition::of(conversation),
            );
            let mut moved_counts = Vec::new();
            for (view, entering) in left
                .iter()
                .map(|v| (v, false))
                .chain(entered.iter().map(|v| (v, true)))
            {
                let key = keys::active_count(tenant, &view.key());
                let current = match counts.get(&key) {
                    Some(count) => *count,
                    None => get::<u64>(&tables.counters, &key)?.unwrap_or(0),
                };
                // Saturating: a conversation stored before counts existed leaves views it was never
                // counted in.
                let next = match entering {
                    true => current + 1,
                    false => current.saturating_sub(1),
                };
                puts.push((&tables.counters, key.clone(), encode(&next)?));
                moved_counts.push((key, next));
            }
            counts.extend(moved_counts);
            terms.extend(new_terms);
            last_seqs.insert((tenant, id), conversation.last_seq);
            // Removals first: a turn without events removes and re-inserts the same inbox key.
            for (keyspace, key) in removes {
                batch.remove(keyspace, key);
            }
            for (keyspace, key, value) in puts {
                batch.insert(keyspace, key, value);
            }
        }
        Write::Tenant(tenant) => {
            batch.insert(
                &tables.tenants,
                tenant.id.as_bytes().to_vec(),
                encode(&tenant)?,
            );
        }
        Write::Connection(connection) => {
            let address = address_key(connection.provider, &connection.claim_key());
            if claimed_addresses.contains(&address)
                || tables
                    .connection_addresses
                    .contains_key(&address)
                    .map_err(unavailable)?
            {
                return Err(StoreError::Conflict(format!(
                    "phone_number_id {} already belongs to a connection",
                    connection.address()
                )));
            }
            claimed_addresses.push(address.clone());
            batch.insert(
                &tables.tenant_connections,
                keys::tenant_connection(connection.tenant_id, connection.id),
                [],
            );
            batch.insert(
                &tables.connection_addresses,
                address,
                connection.id.as_bytes().to_vec(),
            );
            batch.insert(
                &tables.connections,
                connection.id.as_bytes().to_vec(),
                encode(&connection)?,
            );
        }
        Write::UpdateConnection(connection) => {
            // An update racing a removal must not bring the connection back, nor overwrite another
            // update it did not see (this thread is the only writer: the check and the write are one).
            let stored: Option<Connection> = get(&tables.connections, connection.id.as_bytes())?;
            let Some(stored) = stored else {
                return Err(StoreError::Conflict(format!(
                    "connection {} was removed",
                    connection.id
                )));
            };
            if stored.version != connection.version {
                return Err(StoreError::Conflict(format!(
                    "connection {} changed meanwhile",
                    connection.id
                )));
            }
            let mut next = connection.clone();
            next.version += 1;
            batch.insert(
                &tables.connections,
                connection.id.as_bytes().to_vec(),
                encode(&next)?,
            );
        }
        Write::RemoveConnection(connection) => {
            let address = address_key(connection.provider, &connection.claim_key());
            batch.remove(&tables.connection_addresses, address);
            batch.remove(&tables.connections, connection.id.as_bytes().to_vec());
            batch.remove(
                &tables.tenant_connections,
                keys::tenant_connection(connection.tenant_id, connection.id),
            );
        }
        Write::Agent(agent, token_sha256) => {
            batch.insert(
                &tables.agents,
                agent.id.as_bytes().to_vec(),
                encode(&agent)?,
            );
            batch.insert(&tables.tokens, token_sha256.to_vec(), encode(&agent)?);
        }
        Write::Department(department) => {
            batch.insert(
                &tables.departments,
                keys::counter(department.tenant_id, &department.key),
                encode(&department)?,
            );
        }
        Write::CreateDepartment(department) => {
            let key = keys::counter(department.tenant_id, &department.key);
            let mut claim = b"department:".to_vec();
            claim.extend_from_slice(&key);
            if claimed_addresses.contains(&claim)
                || tables.departments.contains_key(&key).map_err(unavailable)?
            {
                return Err(StoreError::Conflict(format!(
                    "department {} exists",
                    department.key
                )));
            }
            claimed_addresses.push(claim);
            batch.insert(&tables.departments, key, encode(&department)?);
        }
        Write::RemoveDepartment(tenant, key) => {
            batch.remove(&tables.departments, keys::counter(tenant, &key));
        }
        Write::Put(table, key, value) => {
            batch.insert(tables.plain(table)?, key, value);
        }
        Write::Remove(table, key) => {
            batch.remove(tables.plain(table)?, key);
        }
        Write::EnsureContact(contact) => {
            super::contacts::stage_ensure(tables, batch, &contact, contacts)?;
        }
        Write::Contacts(tenant, writes) => {
            super::contacts::stage_writes(tables, batch, tenant, &writes, contacts)?;
        }
        Write::Credentials(credentials) => {
            super::credentials::stage_credentials(tables, batch, &credentials, claimed_addresses)?;
        }
        Write::SpendGrant(token, expected, spent) => {
            return super::credentials::stage_spend(
                tables,
                batch,
                token,
                expected,
                &spent,
                claimed_addresses,
            );
        }
        Write::Rewrite(rows) => {
            for (table, key, value) in rows {
                let keyspace = tables.history(table)?;
                match value {
                    Some(value) => batch.insert(keyspace, key, value),
                    None => batch.remove(keyspace, key),
                }
            }
        }
        Write::Audit(record) => {
            return super::audit::stage_append(tables, batch, *record, audit_heads);
        }
        Write::TicketNumber(tenant) => {
            let key = keys::counter(tenant, "ticket");
            let last = match tickets.get(&tenant) {
                Some(last) => *last,
                None => get::<u64>(&tables.counters, &key)?.unwrap_or(0),
            };
            let next = last + 1;
            batch.insert(&tables.counters, key, encode(&next)?);
            tickets.insert(tenant, next);
            return Ok(next);
        }
    }
    Ok(0)
}

/// The position of the tenant's newest feed entry (0 for an empty feed).
fn last_feed_position(tables: &Tables, tenant: TenantId) -> StoreResult<u64> {
    let Some(entry) = tables.feed.prefix(tenant.as_bytes()).next_back() else {
        return Ok(0);
    };
    let key = entry.key().map_err(unavailable)?;
    keys::feed_position(&key).ok_or_else(|| StoreError::Corrupt("short feed key".into()))
}
