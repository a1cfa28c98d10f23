//! CQL LGPD rewrite of a conversation's history (`ConversationStore::rewrite_history`): events and
//! messages overwritten in place (a message row with a write time past any status update's, so it
//! stays as rewritten), search rows deleted. The feed's rows only point at the events, so they need
//! nothing. The writes are idempotent and the search rows are deleted before the events that name
//! their words are rewritten, so a rewrite that fails part way is finished by running it again.
//! Two limits: an erased message's row is written at the current time, past the rank timestamps of
//! status updates, so its status no longer moves; and an event's overwrite carries the owner's
//! clock, so an owner whose clock runs behind the node that first wrote the event can lose it.

use super::{ScyllaStore, bucket, seq_to_db};
use crate::storage::codec::to_json;
use schema::events::EventEnvelope;
use schema::records::{Direction, Message};
use schema::store::StoreResult;
use schema::{ConversationId, TenantId};

impl ScyllaStore {
    pub(super) async fn rewrite(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        events: &[EventEnvelope],
        messages: &[Message],
        unindex: &[(String, i32)],
    ) -> StoreResult<()> {
        let s = &self.statements;
        // The search rows go first: they are found from the events' words, which the events'
        // rewrite removes, so a repeat after a failure part way still finds them.
        for (term, month) in unindex {
            self.execute(
                &s.delete_message_term,
                (tenant.0, term.as_str(), *month, conversation.0),
            )
            .await?;
        }
        for event in events {
            self.execute(
                &s.insert_event,
                (
                    tenant.0,
                    conversation.0,
                    bucket(event.seq)?,
                    seq_to_db(event.seq)?,
                    to_json(event)?,
                ),
            )
            .await?;
        }
        // Later than the rank timestamps status updates write with (`created_at` µs + rank).
        let now_us = jiff::Timestamp::now().as_microsecond();
        for message in messages {
            let direction = match message.direction {
                Direction::Inbound => "inbound",
                Direction::Outbound => "outbound",
            };
            let written_at = now_us.max(message.created_at.as_microsecond() + 1_000);
            self.execute(
                &s.insert_message,
                (
                    tenant.0,
                    conversation.0,
                    bucket(message.seq)?,
                    seq_to_db(message.seq)?,
                    message.id.0,
                    direction,
                    format!("{:?}", message.status).to_lowercase(),
                    to_json(message)?,
                    written_at,
                ),
            )
            .await?;
        }
        Ok(())
    }
}
