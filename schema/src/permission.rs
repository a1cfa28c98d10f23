//! What each role may do: the permissions the API checks, and each role's defaults. A pure rule: the
//! gateway asks [`may`] on every route that changes something or reads beyond the inbox. Per-tenant
//! configuration of these sets (issue 15) will replace the defaults with a stored record per tenant;
//! the checks stay where they are.
//!
//! **Architecture Invariant:** every route that sends, changes a ticket, a contact or the helpdesk's
//! setup, or reads the feed, checks one permission of the caller's role; an auditor changes nothing.

use crate::records::AgentRole;
use serde::{Deserialize, Serialize};

/// One thing a role may do.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Send messages, start conversations, mark as read, fill quick replies.
    Reply,
    /// Assign, transfer, change status and priority, tag, add internal notes.
    ManageTickets,
    /// Create and edit contacts and their notes.
    EditContacts,
    /// Read the tenant's durable feed of events.
    ReadFeed,
    /// Departments, quick replies, merging and deleting contacts.
    ManageHelpdesk,
    /// See internal notes.
    SeeInternalNotes,
}

impl Permission {
    /// What the permission lets its holder do, for error messages.
    pub fn describe(self) -> &'static str {
        match self {
            Permission::Reply => "send messages",
            Permission::ManageTickets => "change tickets",
            Permission::EditContacts => "change contacts",
            Permission::ReadFeed => "read the feed",
            Permission::ManageHelpdesk => "manage departments, quick replies and contact merges",
            Permission::SeeInternalNotes => "see internal notes",
        }
    }
}

/// The event as `role` may see it: an internal note's text is removed for a role without
/// [`Permission::SeeInternalNotes`] (the event stays, so seqs have no gap). `None` when it is
/// shown as it is.
pub fn redacted_for(
    role: AgentRole,
    envelope: &crate::events::EventEnvelope,
) -> Option<crate::events::EventEnvelope> {
    use crate::events::ConversationEvent;
    match &envelope.event {
        ConversationEvent::NoteAdded { note } if !may(role, Permission::SeeInternalNotes) => {
            let mut hidden = envelope.clone();
            let mut note = note.clone();
            note.body = String::new();
            hidden.event = ConversationEvent::NoteAdded { note };
            Some(hidden)
        }
        _ => None,
    }
}

/// Whether `role` has `permission` by default.
pub fn may(role: AgentRole, permission: Permission) -> bool {
    use Permission::*;
    match role {
        AgentRole::Admin | AgentRole::Supervisor => true,
        AgentRole::Agent => matches!(
            permission,
            Reply | ManageTickets | EditContacts | SeeInternalNotes
        ),
        // Reads everything, changes nothing.
        AgentRole::Auditor => matches!(permission, ReadFeed | SeeInternalNotes),
        // Integrations: answer, route and record, never configure.
        AgentRole::Bot => matches!(permission, Reply | ManageTickets | EditContacts | ReadFeed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auditors_change_nothing_and_agents_configure_nothing() {
        for change in [
            Permission::Reply,
            Permission::ManageTickets,
            Permission::EditContacts,
            Permission::ManageHelpdesk,
        ] {
            assert!(!may(AgentRole::Auditor, change), "{change:?}");
        }
        assert!(may(AgentRole::Auditor, Permission::ReadFeed));
        assert!(!may(AgentRole::Agent, Permission::ManageHelpdesk));
        assert!(!may(AgentRole::Agent, Permission::ReadFeed));
        assert!(may(AgentRole::Agent, Permission::Reply));
        assert!(!may(AgentRole::Bot, Permission::ManageHelpdesk));
        assert!(!may(AgentRole::Bot, Permission::SeeInternalNotes));
        assert!(may(AgentRole::Supervisor, Permission::ManageHelpdesk));
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
            seq: 7,
            at: jiff::Timestamp::UNIX_EPOCH,
            event: ConversationEvent::NoteAdded { note },
        };
        assert_eq!(redacted_for(AgentRole::Agent, &envelope), None);
        let hidden = redacted_for(AgentRole::Bot, &envelope).expect("redacted");
        assert_eq!(hidden.seq, 7);
        match hidden.event {
            ConversationEvent::NoteAdded { note } => assert!(note.body.is_empty()),
            other => panic!("{other:?}"),
        }
    }
}
