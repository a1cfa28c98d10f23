//! Record encoding shared by the backends: records are stored whole as JSON next to the few columns a
//! query needs, so a record gains a field without a migration, and every backend reads the same bytes
//! the same way. Also the column conversions the backends share (seqs, epochs, shards, microseconds).

use jiff::Timestamp;
use schema::store::{MessageKey, StoreError, StoreResult};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub fn to_json<T: Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub fn from_json<T: DeserializeOwned>(text: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Microseconds since the epoch: the exact ordering value of activity times (CQL `timestamp` keeps only
/// milliseconds, which would reorder conversations active within the same millisecond).
pub fn micros(at: Timestamp) -> i64 {
    at.as_microsecond()
}

/// The `(kind, value)` columns of an idempotency key.
pub fn key_columns(key: &MessageKey) -> (&'static str, &str) {
    match key {
        MessageKey::Provider(value) => ("provider", value),
        MessageKey::Client(value) => ("client", value),
    }
}

/// Longest idempotency key accepted; provider ids are far shorter, a longer one is hostile input.
pub const MAX_MESSAGE_KEY: usize = 1024;

pub fn seq_to_db(seq: schema::Seq) -> StoreResult<i64> {
    i64::try_from(seq).map_err(|_| StoreError::Corrupt(format!("seq {seq} out of range")))
}

pub fn seq_from_db(seq: i64) -> StoreResult<schema::Seq> {
    schema::Seq::try_from(seq).map_err(|_| StoreError::Corrupt(format!("negative seq {seq}")))
}

/// Checks that a commit stays inside its own conversation and carries no oversized key; every backend
/// runs it before writing anything.
pub fn validate_commit(commit: &schema::store::ConversationCommit) -> StoreResult<()> {
    let conversation = &commit.conversation;
    let (tenant, id) = (conversation.tenant_id, conversation.id);
    if commit
        .events
        .iter()
        .any(|e| e.tenant_id != tenant || e.conversation_id != id)
        || commit
            .messages
            .iter()
            .any(|m| m.tenant_id != tenant || m.conversation_id != id)
    {
        return Err(StoreError::Conflict(
            "commit mixes conversations or tenants".into(),
        ));
    }
    if commit
        .message_keys
        .iter()
        .any(|(key, _)| key_columns(key).1.len() > MAX_MESSAGE_KEY)
    {
        return Err(StoreError::Conflict(format!(
            "a message key is longer than {MAX_MESSAGE_KEY} bytes"
        )));
    }
    Ok(())
}

/// The seq the stored conversation must have for this commit to follow it: the one before its first
/// event, or (for a commit without events) the one it carries.
pub fn expected_stored_seq(commit: &schema::store::ConversationCommit) -> schema::Seq {
    match commit.events.first() {
        Some(first) => first.seq.saturating_sub(1),
        None => commit.conversation.last_seq,
    }
}

/// A duration as the backends store it: whole microseconds (saturating).
pub fn duration_micros(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

/// A stored microsecond time (out of range reads as the epoch: only lease and heartbeat times).
pub fn timestamp_from_micros(us: i64) -> Timestamp {
    Timestamp::from_microsecond(us).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// A stored shard number, checked against the shard count.
pub fn shard_from_db(shard: i32) -> StoreResult<schema::cluster::ShardId> {
    u16::try_from(shard)
        .ok()
        .filter(|s| *s < schema::cluster::SHARDS)
        .map(schema::cluster::ShardId)
        .ok_or_else(|| StoreError::Corrupt(format!("shard {shard} out of range")))
}

pub fn epoch_from_db(epoch: i64) -> StoreResult<u64> {
    u64::try_from(epoch).map_err(|_| StoreError::Corrupt(format!("negative epoch {epoch}")))
}

pub fn epoch_to_db(epoch: u64) -> i64 {
    i64::try_from(epoch).unwrap_or(i64::MAX)
}
