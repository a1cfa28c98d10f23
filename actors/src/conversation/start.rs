//! A conversation started from our side: an agent writes first to a contact (a template where the
//! channel requires one: WhatsApp's Cloud API delivers nothing else to a contact who has not written
//! within 24 hours). The message is checked before anything is stored; then one turn creates the
//! conversation with its ticket (numbered, in the department the connection feeds, assigned to the
//! agent, so it is in progress) and a second sends the message as an ordinary reply. When the
//! conversation exists (the contact wrote before, or it was started already) only the message goes.

use super::{ConversationError, ConversationState, store_error};
use crate::policy::validate_outbound;
use crate::turn::{Turn, conversation_with};
use schema::events::ConversationEvent;
use schema::helpdesk::change::{self, TicketChange};
use schema::records::{Contact, Message, MessageContent};
use schema::{AgentId, ConnectionId};

/// Who starts the conversation, with whom, on which connection.
#[derive(Clone, Debug)]
pub struct Opening {
    pub connection: ConnectionId,
    pub contact: Contact,
    pub agent: AgentId,
}

impl ConversationState {
    pub(super) async fn start(
        &mut self,
        opening: Opening,
        content: MessageContent,
        client_message_id: Option<String>,
    ) -> Result<Message, ConversationError> {
        if self.conversation.is_none() {
            if matches!(content, MessageContent::Reaction { .. }) {
                return Err(ConversationError::Invalid(
                    "a conversation cannot start with a reaction".into(),
                ));
            }
            let needs_window = validate_outbound(&content)?;
            let mut draft =
                conversation_with(self.tenant, self.id, opening.connection, opening.contact);
            // Refused now (free text on a channel whose window never opened), before anything is
            // stored.
            self.channel_allows(&draft, &content, needs_window).await?;
            draft.ticket_number = self
                .store()
                .next_ticket_number(self.tenant)
                .await
                .map_err(store_error)?;
            draft.ticket_opened_at = Some(draft.created_at);
            draft.team = self
                .entry_department(opening.connection)
                .await?
                .map(|d| d.key.clone());
            draft.last_seq = self.reserved_seq;
            let mut turn = Turn::new(draft, true);
            let conversation = turn.conversation.clone();
            turn.push(ConversationEvent::ConversationCreated { conversation });
            let assign = TicketChange::Assign {
                assignee: Some(opening.agent),
            };
            let events = change::apply(
                &mut turn.conversation,
                assign,
                Some(opening.agent),
                turn.now,
            )
            .map_err(|refused| ConversationError::Invalid(refused.to_string()))?;
            for event in events {
                turn.push(event);
            }
            self.commit(turn, None).await?;
            metrics::counter!("conversa_conversations_started_total").increment(1);
        }
        self.send(opening.agent, content, client_message_id).await
    }
}
