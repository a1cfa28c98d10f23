//! Soft deletion as conversation turns (`schema::helpdesk::deletion`): deleting a message marks it
//! and records `message.deleted`; deleting the conversation first cancels its open ticket (an
//! ordinary ticket change, so SLA clocks and queues follow) and then records `conversation.deleted`,
//! which hides every message up to it. Content is never rewritten: who may see deleted messages
//! still reads it (`schema::visibility`).

use super::{ConversationError, ConversationState};
use crate::turn::Turn;
use schema::AgentId;
use schema::command::Deleting;
use schema::helpdesk::change::TicketChange;
use schema::helpdesk::deletion;
use schema::helpdesk::ticket::is_closed;
use schema::records::{Conversation, ConversationStatus};

impl ConversationState {
    pub(super) async fn delete(
        &mut self,
        by: AgentId,
        what: Deleting,
    ) -> Result<Conversation, ConversationError> {
        let Some(conversation) = self.conversation.clone() else {
            return Err(ConversationError::NotFound);
        };
        match what {
            Deleting::Message { seq } => {
                if seq == 0 || seq > conversation.last_seq {
                    return Err(ConversationError::Invalid(format!(
                        "no message at seq {seq} in this conversation"
                    )));
                }
                let Some(mut message) = self
                    .store()
                    .message(self.tenant, self.id, seq)
                    .await
                    .map_err(super::store_error)?
                else {
                    return Err(ConversationError::Invalid(format!(
                        "no message at seq {seq} in this conversation"
                    )));
                };
                let mut turn = Turn::new(conversation, false);
                let event =
                    deletion::delete_message(&mut turn.conversation, &mut message, by, turn.now)
                        .map_err(|refused| ConversationError::Invalid(refused.to_string()))?;
                let Some(event) = event else {
                    return Ok(turn.conversation);
                };
                turn.push(event);
                turn.messages.push(message);
                self.commit(turn, None).await?;
            }
            Deleting::Conversation => {
                if !is_closed(conversation.status) {
                    self.change_ticket(
                        Some(by),
                        TicketChange::Status {
                            status: ConversationStatus::Cancelled,
                            skip_survey: false,
                        },
                    )
                    .await?;
                }
                let Some(conversation) = self.conversation.clone() else {
                    return Err(ConversationError::NotFound);
                };
                let mut turn = Turn::new(conversation, false);
                let Some(event) =
                    deletion::delete_conversation(&mut turn.conversation, by, turn.now)
                else {
                    return Ok(turn.conversation);
                };
                turn.push(event);
                self.commit(turn, None).await?;
                metrics::counter!("conversa_conversations_deleted_total").increment(1);
            }
        }
        self.conversation
            .clone()
            .ok_or_else(|| ConversationError::Store("conversation missing after commit".into()))
    }
}
