//! Soft deletion of messages and conversations: what a deletion records and which messages it hides.
//! Pure rules; the conversation's owner applies them in a turn, and `visibility` decides who sees a
//! deleted message's content (those with `see_deleted_messages`, when the tenant shows deleted
//! messages).
//!
//! A message is deleted when an agent deletes it, when the contact revokes it on WhatsApp (its
//! status becomes `deleted`), or when its conversation is deleted (every message up to then). A
//! deleted conversation leaves the inbox of those who may not see deleted messages until the contact
//! (or an agent) writes again; its earlier messages stay deleted.

use crate::events::ConversationEvent;
use crate::ids::{AgentId, Seq};
use crate::records::{Conversation, Deletion, Direction, Message, MessageStatus};
use jiff::Timestamp;

/// Most messages one conversation holds deleted one by one (deleting the conversation deletes any
/// number). The record is read on every inbox page.
pub const MAX_DELETED_MESSAGES: usize = 1_024;

/// Why a deletion is refused: nothing is recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeleteRefused {
    #[error(
        "this conversation already has {MAX_DELETED_MESSAGES} deleted messages: delete the conversation instead"
    )]
    TooMany,
    #[error("only a message (not a pending reply) can be deleted: wait for its answer")]
    Pending,
}

/// Whether the message at `seq` is deleted in `conversation`.
pub fn is_deleted(conversation: &Conversation, seq: Seq) -> bool {
    seq <= conversation.deleted_through || conversation.deleted_seqs.contains(&seq)
}

/// Deletes `message` of `conversation`, by `by` at `now`: the event to record, or `None` when it
/// was deleted already (a retried request).
pub fn delete_message(
    conversation: &mut Conversation,
    message: &mut Message,
    by: AgentId,
    now: Timestamp,
) -> Result<Option<ConversationEvent>, DeleteRefused> {
    if message.deleted.is_some() || is_deleted(conversation, message.seq) {
        return Ok(None);
    }
    if message.direction == Direction::Outbound && message.status == MessageStatus::Pending {
        return Err(DeleteRefused::Pending);
    }
    if conversation.deleted_seqs.len() >= MAX_DELETED_MESSAGES {
        return Err(DeleteRefused::TooMany);
    }
    conversation.deleted_seqs.insert(message.seq);
    forget_preview(conversation, message);
    message.deleted = Some(Deletion { by, at: now });
    message.updated_at = now;
    Ok(Some(ConversationEvent::MessageDeleted {
        message_id: message.id,
        seq: message.seq,
        by,
    }))
}

/// The contact revoked `message` (its status became `deleted`): it is hidden like one an agent
/// deleted, while the conversation has room for it.
pub fn revoked(conversation: &mut Conversation, message: &Message) {
    forget_preview(conversation, message);
    if conversation.deleted_seqs.len() < MAX_DELETED_MESSAGES {
        conversation.deleted_seqs.insert(message.seq);
    }
}

/// The inbox preview goes when it shows the deleted message.
fn forget_preview(conversation: &mut Conversation, message: &Message) {
    if conversation.last_message_preview.as_deref() == Some(message.content.preview().as_str()) {
        conversation.last_message_preview = None;
    }
}

/// Deletes the conversation with every message it holds, by `by` at `now`: the event to record, or
/// `None` when it is deleted already and nothing came since.
pub fn delete_conversation(
    conversation: &mut Conversation,
    by: AgentId,
    now: Timestamp,
) -> Option<ConversationEvent> {
    if conversation.deleted.is_some() && conversation.deleted_through == conversation.last_seq {
        return None;
    }
    let through = conversation.last_seq;
    conversation.deleted = Some(Deletion { by, at: now });
    conversation.deleted_through = through;
    // The seqs below the mark are covered by it.
    conversation.deleted_seqs.retain(|seq| *seq > through);
    conversation.last_message_preview = None;
    Some(ConversationEvent::ConversationDeleted { through, by })
}

/// A new message in a deleted conversation brings it back to the inbox (its earlier messages stay
/// deleted).
pub fn revived(conversation: &mut Conversation) {
    conversation.deleted = None;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::MessageContent;

    fn conversation_with(messages: u64) -> Conversation {
        let mut conversation = crate::helpdesk::change::tests::ticket();
        conversation.last_seq = messages;
        conversation
    }

    fn message(conversation: &Conversation, seq: Seq, direction: Direction) -> Message {
        Message {
            id: crate::MessageId::new(),
            tenant_id: conversation.tenant_id,
            conversation_id: conversation.id,
            seq,
            direction,
            content: MessageContent::Text { body: "x".into() },
            status: MessageStatus::Received,
            provider_message_id: None,
            reply_to: None,
            sent_by: None,
            client_message_id: None,
            error: None,
            created_at: Timestamp::UNIX_EPOCH,
            updated_at: Timestamp::UNIX_EPOCH,
            forwarded: false,
            sender: None,
            deleted: None,
        }
    }

    #[test]
    fn deleting_a_message_twice_records_one_event() {
        let mut conversation = conversation_with(3);
        let mut message = message(&conversation, 2, Direction::Inbound);
        let by = AgentId::new();
        let first = delete_message(&mut conversation, &mut message, by, Timestamp::UNIX_EPOCH);
        assert!(matches!(
            first,
            Ok(Some(ConversationEvent::MessageDeleted { seq: 2, .. }))
        ));
        assert!(is_deleted(&conversation, 2));
        assert!(!is_deleted(&conversation, 3));
        let again = delete_message(&mut conversation, &mut message, by, Timestamp::UNIX_EPOCH);
        assert_eq!(again, Ok(None));
    }

    #[test]
    fn a_pending_reply_cannot_be_deleted() {
        let mut conversation = conversation_with(1);
        let mut reply = message(&conversation, 1, Direction::Outbound);
        reply.status = MessageStatus::Pending;
        let refused = delete_message(
            &mut conversation,
            &mut reply,
            AgentId::new(),
            Timestamp::UNIX_EPOCH,
        );
        assert_eq!(refused, Err(DeleteRefused::Pending));
        assert!(conversation.deleted_seqs.is_empty());
    }

    #[test]
    fn individual_deletions_are_bounded() {
        let mut conversation = conversation_with(MAX_DELETED_MESSAGES as u64 + 2);
        conversation.deleted_seqs = (1..=MAX_DELETED_MESSAGES as u64).collect();
        let mut last = message(
            &conversation,
            MAX_DELETED_MESSAGES as u64 + 1,
            Direction::Inbound,
        );
        let refused = delete_message(
            &mut conversation,
            &mut last,
            AgentId::new(),
            Timestamp::UNIX_EPOCH,
        );
        assert_eq!(refused, Err(DeleteRefused::TooMany));
        last.seq += 1;
        revoked(&mut conversation, &last);
        assert_eq!(conversation.deleted_seqs.len(), MAX_DELETED_MESSAGES);
    }

    #[test]
    fn deleting_a_conversation_hides_everything_up_to_then_and_a_new_message_revives_it() {
        let mut conversation = conversation_with(5);
        conversation.deleted_seqs.insert(2);
        let by = AgentId::new();
        let event = delete_conversation(&mut conversation, by, Timestamp::UNIX_EPOCH);
        assert_eq!(
            event,
            Some(ConversationEvent::ConversationDeleted { through: 5, by })
        );
        assert!((1..=5).all(|seq| is_deleted(&conversation, seq)));
        assert!(conversation.deleted_seqs.is_empty());
        assert_eq!(
            delete_conversation(&mut conversation, by, Timestamp::UNIX_EPOCH),
            None
        );
        conversation.last_seq = 7;
        revived(&mut conversation);
        assert!(conversation.deleted.is_none());
        assert!(!is_deleted(&conversation, 6));
        assert!(is_deleted(&conversation, 5));
    }
}
