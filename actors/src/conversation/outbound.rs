//! The outbound half of a conversation turn: an agent's reply is validated (`policy.rs`), stored as
//! `pending` (which puts it in the store's outbox) and cast to the connection's session actor; the
//! provider's answer comes back as `ProviderAccepted` / `ProviderFailed`; after a restart the outbox
//! hands still-pending replies back through `Resend`.

use super::{ConversationError, ConversationState};
use crate::policy::{channel_allows, validate_outbound};
use crate::session::SessionMsg;
use crate::turn::{Turn, store_echo, upsert};
use jiff::Timestamp;
use schema::records::{
    Direction, Message, MessageContent, MessageStatus, ProviderError, StatusChange,
};
use schema::store::{MessageKey, MessageRef};
use schema::{AgentId, MessageId, Seq};

impl ConversationState {
    pub(super) async fn send(
        &mut self,
        agent: AgentId,
        content: MessageContent,
        client_message_id: Option<String>,
    ) -> Result<Message, ConversationError> {
        let Some(conversation) = self.conversation.clone() else {
            return Err(ConversationError::NotFound);
        };
        let needs_window = validate_outbound(&content)?;
        // A retry of a send already stored answers with it, whatever changed since.
        let key = client_message_id.clone().map(MessageKey::Client);
        if let Some(key) = &key
            && let Some(found) = self.lookup(key).await?
        {
            return self.load_message(found.seq).await;
        }
        // What the channel carries, and its window: refused now, before anything is stored (Meta
        // would refuse it later, after a 202).
        let message_tag = self
            .channel_allows(&conversation, &content, needs_window)
            .await?;
        if let MessageContent::Reaction { target, .. } = &content
            && self
                .lookup(&MessageKey::Provider(target.clone()))
                .await?
                .is_none()
        {
            return Err(ConversationError::Invalid(
                "the reacted message is not in this conversation".into(),
            ));
        }
        let mut turn = Turn::new(conversation, false);
        let now = turn.now;
        let message = turn.add_message(Message {
            deleted: None,
            id: MessageId::new(),
            tenant_id: self.tenant,
            conversation_id: self.id,
            seq: 0,
            direction: Direction::Outbound,
            content: content.clone(),
            status: MessageStatus::Pending,
            provider_message_id: None,
            reply_to: None,
            sent_by: Some(agent),
            client_message_id,
            error: None,
            created_at: now,
            updated_at: now,
            forwarded: false,
            sender: None,
        });
        if let Some(key) = key {
            turn.keys.push((
                key,
                MessageRef {
                    message_id: message.id,
                    seq: message.seq,
                },
            ));
        }
        // An agent's reply meets the running response clocks (a reaction is not a reply), and the
        // assigned agent replying ends the wait for them.
        if !matches!(content, MessageContent::Reaction { .. }) {
            if turn.conversation.assignee == Some(agent) {
                turn.conversation.answer_by = None;
            }
            let outcomes = turn.conversation.sla.agent_replied(now);
            super::ticket::push_outcomes(&mut turn, outcomes);
        }
        self.commit(turn, None).await?;
        self.dispatch(&message, message_tag).await;
        Ok(message)
    }

    /// Hands a just-committed `pending` reply to its connection's session. The reply is stored (and
    /// in the outbox) whatever happens here; when no session can take it, it is marked failed so it
    /// does not stay `pending` without saying so (the outbox sweep retries it if that update is lost).
    pub(super) async fn dispatch(&mut self, message: &Message, message_tag: Option<&'static str>) {
        let Some(conversation) = &self.conversation else {
            return;
        };
        let connection = conversation.connection_id;
        let send = SessionMsg::Send {
            conversation: self.id,
            seq: message.seq,
            outbound: schema::channel::Outbound {
                to: conversation.contact.address.clone(),
                content: message.content.clone(),
                reply_to: None,
                reference: Some(message.id.to_string()),
                message_tag: message_tag.map(str::to_string),
            },
        };
        if !self
            .directory
            .hand_to_session(self.tenant, connection, send)
            .await
        {
            tracing::error!(conversation = %self.id, seq = message.seq, "session actor unavailable");
            if let Err(error) = self
                .provider_answered(message.seq, Err(connection_unavailable()))
                .await
            {
                tracing::error!(conversation = %self.id, seq = message.seq, %error, "could not mark the reply failed");
            }
        }
    }

    /// Re-dispatches a stored outbound message that is still `pending`; `true` when it was handed to
    /// its session.
    pub(super) async fn resend(
        &mut self,
        seq: Seq,
        created_before: Timestamp,
    ) -> Result<bool, ConversationError> {
        let Some(conversation) = self.conversation.clone() else {
            return Ok(false);
        };
        let message = self.load_message(seq).await?;
        // A reply created after the cutoff may still be on its first trip to the provider.
        if message.direction != Direction::Outbound
            || message.status != MessageStatus::Pending
            || message.created_at >= created_before
        {
            return Ok(false);
        }
        tracing::info!(conversation = %self.id, seq, "resending a pending reply from the outbox");
        // The window is judged again now: a reply it no longer admits fails with the reason.
        let needs_window = validate_outbound(&message.content).unwrap_or(true);
        let message_tag = match self
            .channel_allows(&conversation, &message.content, needs_window)
            .await
        {
            Ok(tag) => tag,
            Err(ConversationError::WindowClosed(why)) | Err(ConversationError::Invalid(why)) => {
                let refused = ProviderError {
                    code: None,
                    title: "not sent".into(),
                    detail: Some(why),
                };
                self.provider_answered(seq, Err(refused)).await?;
                return Ok(false);
            }
            Err(other) => return Err(other),
        };
        let send = SessionMsg::Send {
            conversation: self.id,
            seq,
            outbound: schema::channel::Outbound {
                to: conversation.contact.address.clone(),
                content: message.content,
                reply_to: None,
                reference: Some(message.id.to_string()),
                message_tag: message_tag.map(str::to_string),
            },
        };
        if self
            .directory
            .hand_to_session(self.tenant, conversation.connection_id, send)
            .await
        {
            return Ok(true);
        }
        self.provider_answered(seq, Err(connection_unavailable()))
            .await?;
        Ok(false)
    }

    /// Records the provider's answer to a send: its message id, or the final failure. An answer already
    /// recorded (a redelivery) changes nothing and writes nothing.
    pub(super) async fn provider_answered(
        &mut self,
        seq: Seq,
        answer: Result<String, ProviderError>,
    ) -> Result<(), ConversationError> {
        let Some(conversation) = self.conversation.clone() else {
            return Ok(());
        };
        let mut turn = Turn::new(conversation, false);
        let mut message = self.load_message(seq).await?;
        let now = turn.now;
        match answer {
            Ok(provider_id) => {
                let change = StatusChange {
                    status: MessageStatus::Accepted,
                    at: now,
                    error: None,
                };
                if !turn.advance(&mut message, change, Some(provider_id.clone())) {
                    return Ok(());
                }
                // Meta may report `sent`/`delivered` before the send call answers: apply what waited.
                if let Some(early) = turn.conversation.early_statuses.remove(&provider_id) {
                    turn.advance(&mut message, early, None);
                }
                // Its echo came first and was held: the send is confirmed sent by it.
                let held = &mut turn.conversation.held_echoes;
                if let Some(at) = held
                    .iter()
                    .position(|e| e.provider_message_id == provider_id)
                {
                    let echo = held.remove(at);
                    let sent = StatusChange {
                        status: MessageStatus::Sent,
                        at: echo.sent_at,
                        error: None,
                    };
                    turn.advance(&mut message, sent, None);
                }
                let reference = MessageRef {
                    message_id: message.id,
                    seq,
                };
                turn.keys
                    .push((MessageKey::Provider(provider_id), reference));
            }
            Err(error) => {
                let change = StatusChange {
                    status: MessageStatus::Failed,
                    at: now,
                    error: Some(error),
                };
                if !turn.advance(&mut message, change, None) {
                    return Ok(());
                }
            }
        }
        upsert(&mut turn.messages, message);
        self.release_held_echoes(&mut turn).await?;
        self.commit(turn, None).await
    }

    /// Stores every held echo that no reply still waiting for its provider id could own any more:
    /// it was typed elsewhere (on the phone), not sent by us.
    async fn release_held_echoes(&self, turn: &mut Turn) -> Result<(), ConversationError> {
        let held = std::mem::take(&mut turn.conversation.held_echoes);
        for echo in held {
            if self.pending_twin(turn, &echo).await?.is_some() {
                turn.conversation.held_echoes.push(echo);
            } else {
                store_echo(turn, &echo);
            }
        }
        Ok(())
    }
}

impl ConversationState {
    /// `policy::channel_allows` for this conversation's connection, as stored now.
    pub(super) async fn channel_allows(
        &self,
        conversation: &schema::records::Conversation,
        content: &MessageContent,
        needs_window: bool,
    ) -> Result<Option<&'static str>, ConversationError> {
        let connection = self
            .store()
            .connection(conversation.connection_id)
            .await
            .map_err(|e| ConversationError::Store(e.to_string()))?
            .ok_or_else(|| ConversationError::Invalid("the connection was removed".into()))?;
        let human_agent = connection.meta().is_some_and(|m| m.human_agent);
        let since = conversation
            .last_inbound_at
            .map(|at| Timestamp::now().duration_since(at));
        channel_allows(
            connection.provider,
            human_agent,
            content,
            needs_window,
            since,
        )
    }
}

fn connection_unavailable() -> ProviderError {
    ProviderError {
        code: None,
        title: "connection unavailable".into(),
        detail: Some("the connection's session could not be started".into()),
    }
}
