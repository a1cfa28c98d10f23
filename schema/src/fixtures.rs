//! Builders for the records a conversation actor commits, so the storage contract suite and the
//! storage benchmark read as the turns they model (a first inbound message, an agent's reply, a status
//! update) rather than as struct literals. Behind the `fixtures` feature: never in a release build.

use crate::events::{ConversationEvent, EventEnvelope};
use crate::ids::{AgentId, ConnectionId, ConversationId, MessageId, TenantId};
use crate::records::{
    Agent, AgentRole, ChannelSettings, Connection, ConnectionStatus, Contact, Conversation,
    ConversationStatus, Direction, Message, MessageContent, MessageStatus, MetaSettings, Priority,
    Provider, Tenant,
};
use crate::store::{ConversationCommit, InboxPosition, MessageKey, MessageRef};
use jiff::{SignedDuration, Timestamp};
use std::collections::BTreeMap;

pub fn tenant() -> Tenant {
    Tenant {
        id: TenantId::new(),
        name: "Padaria São João".into(),
        created_at: Timestamp::now(),
    }
}

pub fn connection(tenant: TenantId, address: &str) -> Connection {
    Connection {
        id: ConnectionId::new(),
        tenant_id: tenant,
        provider: Provider::WhatsappCloud,
        name: "Atendimento".into(),
        status: ConnectionStatus::Connected,
        settings: ChannelSettings::Meta(MetaSettings {
            account_id: address.into(),
            verify_token: "verify-me".into(),
            app_secret: "app-secret".into(),
            access_token: "EAAG-token".into(),
            page_id: None,
            human_agent: false,
        }),
        qr_code: None,
        created_at: Timestamp::now(),
        version: 0,
    }
}

pub fn agent(tenant: TenantId) -> Agent {
    Agent {
        default_connection: None,
        id: AgentId::new(),
        tenant_id: tenant,
        name: "Ana".into(),
        role: AgentRole::Agent,
        created_at: Timestamp::now(),
    }
}

/// A conversation as one actor holds it between turns.
#[derive(Clone)]
pub struct Live {
    pub conversation: Conversation,
    /// The position of the last turn built: the `previous` of the next one (`None` before the first).
    committed: Option<InboxPosition>,
}

impl Live {
    pub fn new(tenant: TenantId, contact: &str) -> Live {
        let connection = ConnectionId::new();
        let now = Timestamp::now();
        Live {
            conversation: Conversation {
                survey: None,
                rating: None,
                id: ConversationId::for_contact(tenant, connection, contact),
                tenant_id: tenant,
                connection_id: connection,
                contact: Contact {
                    address: contact.into(),
                    name: Some("Cliente".into()),
                },
                status: ConversationStatus::Open,
                priority: Priority::Normal,
                assignee: None,
                team: None,
                tags: Vec::new(),
                ticket_number: 1,
                ticket_opened_at: Some(now),
                snoozed_until: None,
                out_of_hours_replied_at: None,
                sla: Default::default(),
                distribute_at: None,
                distribute_attempts: 0,
                answer_by: None,
                last_seq: 0,
                created_at: now,
                last_activity_at: now,
                last_inbound_at: None,
                message_count: 0,
                last_message_preview: None,
                early_statuses: BTreeMap::new(),
                held_echoes: Vec::new(),
                stamp_us: 0,
                deleted: None,
                deleted_through: 0,
                deleted_seqs: Default::default(),
            },
            committed: None,
        }
    }

    pub fn tenant(&self) -> TenantId {
        self.conversation.tenant_id
    }

    pub fn id(&self) -> ConversationId {
        self.conversation.id
    }

    fn envelope(&mut self, at: Timestamp, event: ConversationEvent) -> EventEnvelope {
        self.conversation.last_seq += 1;
        // As the actor stamps every commit: growing whatever the clock says.
        let clock = Timestamp::now().as_microsecond();
        self.conversation.stamp_us = clock.max(self.conversation.stamp_us + 1);
        EventEnvelope {
            connection_id: Some(self.conversation.connection_id),
            tenant_id: self.conversation.tenant_id,
            conversation_id: self.conversation.id,
            seq: self.conversation.last_seq,
            at,
            event,
        }
    }

    /// The contact wrote `text` (provider id `provider_id`) at `at`.
    pub fn inbound(&mut self, provider_id: &str, text: &str, at: Timestamp) -> ConversationCommit {
        let previous = self.committed.take();
        let mut events = Vec::new();
        if previous.is_none() {
            let created = ConversationEvent::ConversationCreated {
                conversation: self.conversation.clone(),
            };
            events.push(self.envelope(at, created));
        }
        let message = Message {
            deleted: None,
            id: MessageId::new(),
            tenant_id: self.conversation.tenant_id,
            conversation_id: self.conversation.id,
            seq: self.conversation.last_seq + 1,
            direction: Direction::Inbound,
            content: MessageContent::Text { body: text.into() },
            status: MessageStatus::Received,
            provider_message_id: Some(provider_id.into()),
            reply_to: None,
            sent_by: None,
            client_message_id: None,
            error: None,
            created_at: at,
            updated_at: at,
            forwarded: false,
            sender: None,
        };
        let created = ConversationEvent::MessageCreated {
            message: message.clone(),
        };
        events.push(self.envelope(at, created));
        self.conversation.last_activity_at = at;
        self.conversation.last_inbound_at = Some(at);
        self.conversation.message_count += 1;
        self.conversation.last_message_preview = Some(text.chars().take(80).collect());
        self.committed = Some(InboxPosition::of(&self.conversation));
        ConversationCommit {
            conversation: self.conversation.clone(),
            previous,
            events,
            fence: None,
            write_by: None,
            message_keys: vec![(
                MessageKey::Provider(provider_id.into()),
                MessageRef {
                    message_id: message.id,
                    seq: message.seq,
                },
            )],
            messages: vec![message],
            search_terms: crate::helpdesk::search::words(text).into_iter().collect(),
        }
    }

    /// An agent queued a reply (`pending`, so it enters the outbox). Needs a started conversation.
    pub fn reply(&mut self, client_id: &str, text: &str) -> (ConversationCommit, Message) {
        let at = later_than(self.conversation.last_activity_at);
        let previous = self.committed.take();
        let message = Message {
            deleted: None,
            id: MessageId::new(),
            tenant_id: self.conversation.tenant_id,
            conversation_id: self.conversation.id,
            seq: self.conversation.last_seq + 1,
            direction: Direction::Outbound,
            content: MessageContent::Text { body: text.into() },
            status: MessageStatus::Pending,
            provider_message_id: None,
            reply_to: None,
            sent_by: Some(AgentId::new()),
            client_message_id: Some(client_id.into()),
            error: None,
            created_at: at,
            updated_at: at,
            forwarded: false,
            sender: None,
        };
        let event = ConversationEvent::MessageCreated {
            message: message.clone(),
        };
        let events = vec![self.envelope(at, event)];
        self.conversation.last_activity_at = at;
        self.conversation.message_count += 1;
        self.committed = Some(InboxPosition::of(&self.conversation));
        let commit = ConversationCommit {
            conversation: self.conversation.clone(),
            previous,
            events,
            fence: None,
            write_by: None,
            message_keys: vec![(
                MessageKey::Client(client_id.into()),
                MessageRef {
                    message_id: message.id,
                    seq: message.seq,
                },
            )],
            messages: vec![message.clone()],
            search_terms: crate::helpdesk::search::words(text).into_iter().collect(),
        };
        (commit, message)
    }

    /// The provider reported `status` for `message`. Deliberately applies no ordering policy (the
    /// actor does): the contract is about what the store keeps when it is handed a stale status.
    pub fn status(&mut self, message: &Message, status: MessageStatus) -> ConversationCommit {
        let at = later_than(self.conversation.last_activity_at);
        let mut updated = message.clone();
        updated.status = status;
        updated.updated_at = at;
        if updated.provider_message_id.is_none() {
            updated.provider_message_id = Some(format!("wamid.{}", message.id));
        }
        let event = ConversationEvent::MessageStatusUpdated {
            message_id: message.id,
            status,
            provider_message_id: updated.provider_message_id.clone(),
            error: None,
        };
        let events = vec![self.envelope(at, event)];
        let previous = self.committed.take();
        self.conversation.last_activity_at = at;
        let key = MessageKey::Provider(updated.provider_message_id.clone().unwrap_or_default());
        self.committed = Some(InboxPosition::of(&self.conversation));
        ConversationCommit {
            conversation: self.conversation.clone(),
            previous,
            events,
            fence: None,
            write_by: None,
            message_keys: vec![(
                key,
                MessageRef {
                    message_id: updated.id,
                    seq: updated.seq,
                },
            )],
            messages: vec![updated],
            search_terms: Vec::new(),
        }
    }
}

/// One microsecond after `at`: activity times must strictly grow within a conversation.
pub fn later_than(at: Timestamp) -> Timestamp {
    let now = Timestamp::now();
    if now > at {
        now
    } else {
        at.checked_add(SignedDuration::from_micros(1)).unwrap_or(at)
    }
}

pub fn text_of(message: &Message) -> &str {
    match &message.content {
        MessageContent::Text { body } => body,
        _ => "",
    }
}
