//! What one user may see of the tenant's conversations, as a pure rule the gateway applies to every
//! read: each route, each WebSocket event (live and replayed), the feed and every inbox view go
//! through one [`Viewer`].
//!
//! - **Connections.** A role with `only_own_connection` sees the conversations of the user's default
//!   connection only (none when the user has no default connection): other conversations answer 404
//!   and their events never reach the user's socket.
//! - **Resolved conversations.** Without `see_all_resolved`, a closed (resolved or cancelled)
//!   conversation is seen only by the agent it is assigned to.
//! - **Deleted.** With the tenant's `show_deleted_messages` flag on, a role with
//!   `see_deleted_messages` sees deleted messages (marked) and deleted conversations; anyone else sees
//!   a deleted message as `{"type": "unsupported", "provider_type": "deleted"}` in its place, and a
//!   deleted conversation not at all until someone writes in it again.
//! - **Notes.** Without `see_internal_notes`, notes and transfer notes lose their text (the event
//!   stays, so seqs have no gap).
//!
//! **Architecture Invariant:** the gateway answers no read of a conversation, its messages or its
//! events without asking the caller's `Viewer` first; a socket forwards no event the viewer does not
//! see.

use crate::events::{ConversationEvent, EventEnvelope};
use crate::features::FeatureFlags;
use crate::helpdesk::deletion::is_deleted;
use crate::helpdesk::ticket::is_closed;
use crate::ids::{AgentId, ConnectionId};
use crate::permission::{Permission, RolePermissions};
use crate::records::{Agent, AgentRole, Conversation, Message, MessageContent, MessageStatus};

/// The `provider_type` a deleted message's content carries for those who may not see it.
pub const DELETED: &str = "deleted";

/// Which connections' conversations a user sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionScope {
    Any,
    /// Only this connection's (the user's default connection).
    Only(ConnectionId),
    /// Restricted to a default connection the user does not have: nothing.
    Nothing,
}

impl ConnectionScope {
    /// The connections `agent` works on under its tenant's `permissions`.
    pub fn of(agent: &Agent, permissions: &RolePermissions) -> Self {
        match (
            permissions.allows(agent.role, Permission::OnlyOwnConnection),
            agent.default_connection,
        ) {
            (false, _) => ConnectionScope::Any,
            (true, Some(connection)) => ConnectionScope::Only(connection),
            (true, None) => ConnectionScope::Nothing,
        }
    }

    /// Whether `connection` is in the scope.
    pub fn includes(self, connection: ConnectionId) -> bool {
        match self {
            ConnectionScope::Any => true,
            ConnectionScope::Only(own) => own == connection,
            ConnectionScope::Nothing => false,
        }
    }
}

/// One user's view of the tenant.
#[derive(Clone, Debug)]
pub struct Viewer {
    pub agent: AgentId,
    pub role: AgentRole,
    pub scope: ConnectionScope,
    notes: bool,
    deleted: bool,
    all_resolved: bool,
}

impl Viewer {
    /// The view of `agent` under its tenant's `permissions` and `flags`.
    pub fn new(agent: &Agent, permissions: &RolePermissions, flags: &FeatureFlags) -> Self {
        let allows = |permission| permissions.allows(agent.role, permission);
        Self {
            agent: agent.id,
            role: agent.role,
            scope: ConnectionScope::of(agent, permissions),
            notes: allows(Permission::SeeInternalNotes),
            deleted: flags.show_deleted_messages && allows(Permission::SeeDeletedMessages),
            all_resolved: allows(Permission::SeeAllResolved),
        }
    }

    /// Whether the user sees deleted messages and conversations.
    pub fn sees_deleted(&self) -> bool {
        self.deleted
    }

    /// Whether the user sees the conversations of `connection` (its scope alone).
    pub fn sees_connection(&self, connection: ConnectionId) -> bool {
        self.scope.includes(connection)
    }

    /// Whether the user sees the conversation at all (its routes, the inbox).
    pub fn sees(&self, conversation: &Conversation) -> bool {
        self.sees_events_of(conversation) && (conversation.deleted.is_none() || self.deleted)
    }

    /// Whether the user gets the conversation's events (the feed, a resume): as [`Viewer::sees`],
    /// except that a deleted conversation's events still come, its messages redacted, so a reader
    /// learns of the deletion (`conversation.deleted`) as a live socket does.
    pub fn sees_events_of(&self, conversation: &Conversation) -> bool {
        self.sees_connection(conversation.connection_id)
            && (self.all_resolved
                || !is_closed(conversation.status)
                || conversation.assignee == Some(self.agent))
    }

    /// The conversation record as the user sees it (its preview hidden while its newest message is
    /// deleted).
    pub fn conversation(&self, mut conversation: Conversation) -> Conversation {
        if !self.deleted && conversation.deleted.is_some() {
            conversation.last_message_preview = None;
        }
        conversation
    }

    /// The message as the user sees it in `conversation`.
    pub fn message(&self, conversation: &Conversation, mut message: Message) -> Message {
        if !self.deleted && hidden(conversation, &message) {
            redact(&mut message);
        }
        message
    }

    /// The event as the user sees it, `None` when it is shown as it is. `conversation` is the
    /// event's conversation as stored (for which messages are deleted); the live path, which sends
    /// events as they are committed, passes `None`.
    pub fn event(
        &self,
        conversation: Option<&Conversation>,
        envelope: &EventEnvelope,
    ) -> Option<EventEnvelope> {
        match &envelope.event {
            ConversationEvent::NoteAdded { note } if !self.notes => {
                let mut hidden = envelope.clone();
                let mut note = note.clone();
                note.body = String::new();
                hidden.event = ConversationEvent::NoteAdded { note };
                Some(hidden)
            }
            ConversationEvent::Transferred { note: Some(_), .. } if !self.notes => {
                let mut hidden = envelope.clone();
                if let ConversationEvent::Transferred { note, .. } = &mut hidden.event {
                    *note = None;
                }
                Some(hidden)
            }
            ConversationEvent::MessageCreated { message }
                if !self.deleted && conversation.is_some_and(|c| hidden(c, message)) =>
            {
                let mut message = message.clone();
                redact(&mut message);
                let mut hidden = envelope.clone();
                hidden.event = ConversationEvent::MessageCreated { message };
                Some(hidden)
            }
            _ => None,
        }
    }
}

/// Whether the message is deleted (by an agent, by the contact, or with its conversation).
fn hidden(conversation: &Conversation, message: &Message) -> bool {
    message.deleted.is_some()
        || message.status == MessageStatus::Deleted
        || is_deleted(conversation, message.seq)
}

fn redact(message: &mut Message) {
    message.content = MessageContent::Unsupported {
        provider_type: DELETED.into(),
        raw: serde_json::Value::Null,
    };
    message.reply_to = None;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpdesk::change::tests::ticket;
    use crate::records::ConversationStatus;

    fn agent(role: AgentRole, default_connection: Option<ConnectionId>) -> Agent {
        Agent {
            id: AgentId::new(),
            tenant_id: crate::TenantId::new(),
            name: "Ana".into(),
            role,
            created_at: jiff::Timestamp::UNIX_EPOCH,
            default_connection,
        }
    }

    fn only_own_connection() -> RolePermissions {
        let mut permissions = RolePermissions::default();
        let mut agent = permissions.of(AgentRole::Agent);
        agent.push(Permission::OnlyOwnConnection);
        permissions
            .roles
            .insert(AgentRole::Agent, agent.into_iter().collect());
        permissions
    }

    #[test]
    fn an_agent_limited_to_its_connection_sees_only_that_connection() {
        let conversation = ticket();
        let permissions = only_own_connection();
        let flags = FeatureFlags::default();
        let own = Viewer::new(
            &agent(AgentRole::Agent, Some(conversation.connection_id)),
            &permissions,
            &flags,
        );
        let other = Viewer::new(
            &agent(AgentRole::Agent, Some(ConnectionId::new())),
            &permissions,
            &flags,
        );
        let none = Viewer::new(&agent(AgentRole::Agent, None), &permissions, &flags);
        let supervisor = Viewer::new(&agent(AgentRole::Supervisor, None), &permissions, &flags);
        assert!(own.sees(&conversation));
        assert!(!other.sees(&conversation));
        assert!(!none.sees(&conversation));
        assert!(supervisor.sees(&conversation));
    }

    #[test]
    fn without_see_all_resolved_only_the_assignee_sees_a_closed_ticket() {
        let mut permissions = RolePermissions::default();
        permissions
            .roles
            .insert(AgentRole::Agent, [Permission::Reply].into_iter().collect());
        let flags = FeatureFlags::default();
        let mine = agent(AgentRole::Agent, None);
        let theirs = agent(AgentRole::Agent, None);
        let mut conversation = ticket();
        conversation.assignee = Some(mine.id);
        conversation.status = ConversationStatus::Resolved;
        assert!(Viewer::new(&mine, &permissions, &flags).sees(&conversation));
        assert!(!Viewer::new(&theirs, &permissions, &flags).sees(&conversation));
        conversation.status = ConversationStatus::Open;
        assert!(Viewer::new(&theirs, &permissions, &flags).sees(&conversation));
    }

    #[test]
    fn deleted_content_needs_both_the_flag_and_the_permission() {
        let permissions = RolePermissions::default();
        let mut conversation = ticket();
        conversation.deleted_seqs.insert(1);
        let message = Message {
            id: crate::MessageId::new(),
            tenant_id: conversation.tenant_id,
            conversation_id: conversation.id,
            seq: 1,
            direction: crate::records::Direction::Inbound,
            content: MessageContent::Text {
                body: "segredo".into(),
            },
            status: MessageStatus::Received,
            provider_message_id: None,
            reply_to: None,
            sent_by: None,
            client_message_id: None,
            error: None,
            created_at: jiff::Timestamp::UNIX_EPOCH,
            updated_at: jiff::Timestamp::UNIX_EPOCH,
            forwarded: false,
            sender: None,
            deleted: None,
        };
        let auditor = agent(AgentRole::Auditor, None);
        let off = FeatureFlags::default();
        let on = FeatureFlags {
            show_deleted_messages: true,
            ..FeatureFlags::default()
        };
        let shown = |viewer: Viewer| {
            viewer.message(&conversation, message.clone()).content == message.content
        };
        assert!(!shown(Viewer::new(&auditor, &permissions, &off)));
        assert!(shown(Viewer::new(&auditor, &permissions, &on)));
        let plain = agent(AgentRole::Agent, None);
        assert!(!shown(Viewer::new(&plain, &permissions, &on)));
        let envelope = EventEnvelope {
            tenant_id: conversation.tenant_id,
            conversation_id: conversation.id,
            connection_id: None,
            seq: 1,
            at: jiff::Timestamp::UNIX_EPOCH,
            event: ConversationEvent::MessageCreated {
                message: message.clone(),
            },
        };
        let viewer = Viewer::new(&plain, &permissions, &on);
        let redacted = viewer.event(Some(&conversation), &envelope);
        assert!(matches!(
            redacted.map(|e| e.event),
            Some(ConversationEvent::MessageCreated { message }) if !crate::records::MessageContent::eq(&message.content, &MessageContent::Text { body: "segredo".into() })
        ));
    }

    #[test]
    fn a_note_s_text_is_hidden_from_roles_that_may_not_see_notes() {
        use crate::events::{ConversationEvent, EventEnvelope};
        let note = crate::records::Note {
            id: crate::NoteId::new(),
            body: "cliente difícil".into(),
            author: crate::AgentId::new(),
        };
        let envelope = EventEnvelope {
            tenant_id: crate::TenantId::new(),
            conversation_id: crate::ConversationId::new(),
            connection_id: None,
            seq: 7,
            at: jiff::Timestamp::UNIX_EPOCH,
            event: ConversationEvent::NoteAdded { note },
        };
        let defaults = RolePermissions::default();
        let flags = FeatureFlags::default();
        let bot = Viewer::new(&agent(AgentRole::Bot, None), &defaults, &flags);
        let agent = Viewer::new(&agent(AgentRole::Agent, None), &defaults, &flags);
        assert_eq!(agent.event(None, &envelope), None);
        let hidden = bot.event(None, &envelope).expect("redacted");
        assert_eq!(hidden.seq, 7);
        match hidden.event {
            ConversationEvent::NoteAdded { note } => assert!(note.body.is_empty()),
            other => panic!("{other:?}"),
        }
        let transfer = EventEnvelope {
            event: ConversationEvent::Transferred {
                from_agent: None,
                to_agent: None,
                from_team: None,
                to_team: Some("vendas".into()),
                note: Some("cliente difícil".into()),
                by: None,
            },
            ..envelope
        };
        assert_eq!(agent.event(None, &transfer), None);
        match bot.event(None, &transfer).map(|e| e.event) {
            Some(ConversationEvent::Transferred { note, to_team, .. }) => {
                assert_eq!((note, to_team.as_deref()), (None, Some("vendas")));
            }
            other => panic!("{other:?}"),
        }
    }
}
