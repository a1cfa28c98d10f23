//! Ticket changes as a conversation turn: an agent's (or the system's) change is checked by the pure
//! rules in `schema::helpdesk::change`, its events are committed like any other turn (so they reach
//! the stream, the tenant's feed and the bus together), and the caller gets the conversation after it.

use super::{ConversationError, ConversationState};
use crate::turn::Turn;
use schema::AgentId;
use schema::helpdesk::change::{self, TicketChange};
use schema::records::Conversation;

impl ConversationState {
    pub(super) async fn change_ticket(
        &mut self,
        by: Option<AgentId>,
        change: TicketChange,
    ) -> Result<Conversation, ConversationError> {
        let Some(conversation) = self.conversation.clone() else {
            return Err(ConversationError::NotFound);
        };
        let mut turn = Turn::new(conversation, false);
        let events = change::apply(&mut turn.conversation, change, by, turn.now)
            .map_err(|refused| ConversationError::Invalid(refused.to_string()))?;
        if events.is_empty() {
            // Nothing changes (a retried request): answered with the stored conversation.
            return Ok(turn.conversation);
        }
        for event in events {
            turn.push(event);
        }
        self.commit(turn, None).await?;
        self.conversation
            .clone()
            .ok_or_else(|| ConversationError::Store("conversation missing after commit".into()))
    }
}
