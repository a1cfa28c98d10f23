//! Key layouts of the embedded store: partition key first, clustering key after, fixed-width and
//! big-endian so byte order is query order (the same shape as the CQL tables will have).

use jiff::Timestamp;
use schema::store::MessageKey;
use schema::{ConnectionId, ConversationId, Seq, TenantId};

/// `tenant | conversation`: one conversation record.
pub fn conversation(tenant: TenantId, conversation: ConversationId) -> Vec<u8> {
    let mut key = Vec::with_capacity(32);
    key.extend_from_slice(tenant.as_bytes());
    key.extend_from_slice(conversation.as_bytes());
    key
}

/// `tenant | conversation | seq`: one event or message of a conversation's stream.
pub fn stream(tenant: TenantId, conversation_id: ConversationId, seq: Seq) -> Vec<u8> {
    let mut key = conversation(tenant, conversation_id);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// `tenant | conversation | kind | key`: an idempotency key of a message.
pub fn message_key(tenant: TenantId, conversation_id: ConversationId, key: &MessageKey) -> Vec<u8> {
    let mut out = conversation(tenant, conversation_id);
    let (kind, value) = match key {
        MessageKey::Provider(v) => (b'p', v),
        MessageKey::Client(v) => (b'c', v),
    };
    out.push(kind);
    out.extend_from_slice(value.as_bytes());
    out
}

/// `tenant | position`: one entry of a tenant's feed.
pub fn feed(tenant: TenantId, position: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(24);
    key.extend_from_slice(tenant.as_bytes());
    key.extend_from_slice(&position.to_be_bytes());
    key
}

/// `tenant | seq`: one entry of a tenant's audit log (laid out like the feed).
pub fn audit(tenant: TenantId, seq: u64) -> Vec<u8> {
    feed(tenant, seq)
}

/// The position in a feed key.
pub fn feed_position(key: &[u8]) -> Option<u64> {
    let bytes: [u8; 8] = key.get(16..24)?.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

/// `tenant | term | 0 | month (offset, big-endian) | conversation`: the message search index.
pub fn message_term(
    tenant: TenantId,
    term: &str,
    month: i32,
    conversation: ConversationId,
) -> Vec<u8> {
    let mut key = message_term_prefix(tenant, term, month);
    key.extend_from_slice(conversation.as_bytes());
    key
}

/// The keys of one word's month in the message search index.
pub fn message_term_prefix(tenant: TenantId, term: &str, month: i32) -> Vec<u8> {
    let mut key = Vec::with_capacity(16 + term.len() + 5 + 16);
    key.extend_from_slice(tenant.as_bytes());
    key.extend_from_slice(term.as_bytes());
    key.push(0);
    key.extend_from_slice(&((month as i64 - i64::from(i32::MIN)) as u32).to_be_bytes());
    key
}

/// `tenant | active:<view>`: the count of active tickets in a view, in the counters table.
pub fn active_count(tenant: TenantId, view: &str) -> Vec<u8> {
    counter(tenant, &format!("active:{view}"))
}

/// `due µs (offset so byte order is time order) | tenant | conversation`: the due index.
pub fn due(at: Timestamp, tenant: TenantId, conversation: ConversationId) -> Vec<u8> {
    let mut key = due_prefix(at);
    key.extend_from_slice(tenant.as_bytes());
    key.extend_from_slice(conversation.as_bytes());
    key
}

/// The first 8 bytes of a due key: entries at `at` sort right after every earlier one.
pub fn due_prefix(at: Timestamp) -> Vec<u8> {
    let offset = (at.as_microsecond() as i128 - i128::from(i64::MIN)) as u64;
    offset.to_be_bytes().to_vec()
}

/// The time, tenant and conversation of a due key.
pub fn due_parts(key: &[u8]) -> Option<(Timestamp, TenantId, ConversationId)> {
    let offset = u64::from_be_bytes(key.get(0..8)?.try_into().ok()?);
    let micros = i64::try_from(i128::from(offset) + i128::from(i64::MIN)).ok()?;
    let at = Timestamp::from_microsecond(micros).ok()?;
    let tenant = TenantId::from_bytes(key.get(8..24)?.try_into().ok()?);
    let conversation = ConversationId::from_bytes(key.get(24..40)?.try_into().ok()?);
    Some((at, tenant, conversation))
}

/// `tenant | name`: one of a tenant's counters, or a department by key.
pub fn counter(tenant: TenantId, name: &str) -> Vec<u8> {
    let mut key = tenant.as_bytes().to_vec();
    key.extend_from_slice(name.as_bytes());
    key
}

/// `tenant | connection`: the index of a tenant's connections.
pub fn tenant_connection(tenant: TenantId, connection: ConnectionId) -> Vec<u8> {
    let mut key = Vec::with_capacity(32);
    key.extend_from_slice(tenant.as_bytes());
    key.extend_from_slice(connection.as_bytes());
    key
}

/// `tenant | (u64::MAX - activity µs) | conversation`: the inbox, newest activity first.
pub fn inbox(tenant: TenantId, activity: Timestamp, conversation: ConversationId) -> Vec<u8> {
    let mut key = Vec::with_capacity(40);
    key.extend_from_slice(tenant.as_bytes());
    key.extend_from_slice(&inverted_micros(activity).to_be_bytes());
    key.extend_from_slice(conversation.as_bytes());
    key
}

/// `tenant | view key length | view key | (u64::MAX − activity µs) | conversation`: one filtered view
/// of the inbox (`InboxView::key`), newest activity first.
pub fn inbox_view(
    tenant: TenantId,
    view: &str,
    activity: Timestamp,
    conversation: ConversationId,
) -> Vec<u8> {
    let mut key = inbox_view_prefix(tenant, view);
    key.extend_from_slice(&inverted_micros(activity).to_be_bytes());
    key.extend_from_slice(conversation.as_bytes());
    key
}

/// Every key of one view starts with this.
pub fn inbox_view_prefix(tenant: TenantId, view: &str) -> Vec<u8> {
    let bytes = view.as_bytes();
    let mut key = Vec::with_capacity(16 + 2 + bytes.len() + 24);
    key.extend_from_slice(tenant.as_bytes());
    key.extend_from_slice(&u16::try_from(bytes.len()).unwrap_or(u16::MAX).to_be_bytes());
    key.extend_from_slice(bytes);
    key
}

/// The smallest inbox key of `tenant` for activity at or before `activity` (newest-first order).
pub fn inbox_from(tenant: TenantId, activity: Timestamp) -> Vec<u8> {
    let mut key = Vec::with_capacity(24);
    key.extend_from_slice(tenant.as_bytes());
    key.extend_from_slice(&inverted_micros(activity).to_be_bytes());
    key
}

/// A key greater than every key that starts with `prefix` (keys here are at most `prefix + 64` bytes).
pub fn after_prefix(prefix: &[u8]) -> Vec<u8> {
    let mut key = prefix.to_vec();
    key.extend_from_slice(&[0xff; 65]);
    key
}

/// The key right after `key` in byte order (for exclusive starts).
pub fn successor(key: &[u8]) -> Vec<u8> {
    let mut next = key.to_vec();
    next.push(0);
    next
}

/// Reads the conversation id at the end of an inbox or inbox view key.
pub fn inbox_conversation(key: &[u8]) -> Option<ConversationId> {
    let bytes: [u8; 16] = key.get(key.len().checked_sub(16)?..)?.try_into().ok()?;
    Some(ConversationId::from_bytes(bytes))
}

fn inverted_micros(at: Timestamp) -> u64 {
    let micros = u64::try_from(at.as_microsecond()).unwrap_or(0);
    u64::MAX - micros
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newer_activity_sorts_first_in_the_inbox() {
        let tenant = TenantId::new();
        let older = inbox(
            tenant,
            Timestamp::from_second(100).unwrap(),
            ConversationId::new(),
        );
        let newer = inbox(
            tenant,
            Timestamp::from_second(200).unwrap(),
            ConversationId::new(),
        );
        assert!(newer < older);
    }

    #[test]
    fn stream_keys_sort_by_seq() {
        let (t, c) = (TenantId::new(), ConversationId::new());
        assert!(stream(t, c, 9) < stream(t, c, 10));
        assert!(stream(t, c, 255) < stream(t, c, 256));
    }

    #[test]
    fn inbox_key_yields_its_conversation() {
        let (t, c) = (TenantId::new(), ConversationId::new());
        assert_eq!(inbox_conversation(&inbox(t, Timestamp::now(), c)), Some(c));
    }
}
