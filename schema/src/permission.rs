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
    // The rest of the catalogue: stored and served to clients per tenant; each is enforced by the
    // feature it governs once that feature exists (deleting, the dashboard, downloads, surveys, AI
    // agents are not built yet).
    DeleteConversations,
    DeleteMessages,
    SeeDeletedMessages,
    SeeDashboard,
    SeeAllResolved,
    /// A restriction: only the user's own default connection.
    OnlyOwnConnection,
    ForceDownload,
    ShowDownloadConfirmation,
    ManageAdminSecurity,
    CloseWithoutSurvey,
    ConfigureConnections,
    ConfigureAiAgents,
    /// Read the tenant's audit log (admins and auditors by default).
    ReadAuditLog,
}

/// Every permission, in catalogue order.
pub const ALL: [Permission; 19] = [
    Permission::Reply,
    Permission::ManageTickets,
    Permission::EditContacts,
    Permission::ReadFeed,
    Permission::ManageHelpdesk,
    Permission::SeeInternalNotes,
    Permission::DeleteConversations,
    Permission::DeleteMessages,
    Permission::SeeDeletedMessages,
    Permission::SeeDashboard,
    Permission::SeeAllResolved,
    Permission::OnlyOwnConnection,
    Permission::ForceDownload,
    Permission::ShowDownloadConfirmation,
    Permission::ManageAdminSecurity,
    Permission::CloseWithoutSurvey,
    Permission::ConfigureConnections,
    Permission::ConfigureAiAgents,
    Permission::ReadAuditLog,
];

/// A tenant's permissions per role, where its admins changed the defaults. Admins always keep
/// every permission (a tenant cannot lock itself out).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolePermissions {
    pub roles: std::collections::BTreeMap<AgentRole, std::collections::BTreeSet<Permission>>,
}

impl RolePermissions {
    /// Whether `role` has `permission` in this tenant.
    pub fn allows(&self, role: AgentRole, permission: Permission) -> bool {
        if role == AgentRole::Admin {
            return permission != Permission::OnlyOwnConnection;
        }
        match self.roles.get(&role) {
            Some(set) => set.contains(&permission),
            None => may(role, permission),
        }
    }

    /// The permissions `role` has in this tenant, in catalogue order.
    pub fn of(&self, role: AgentRole) -> Vec<Permission> {
        ALL.into_iter().filter(|p| self.allows(role, *p)).collect()
    }
}

impl Permission {
    /// The wire name (`reply`, `manage_tickets`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Reply => "reply",
            Permission::ManageTickets => "manage_tickets",
            Permission::EditContacts => "edit_contacts",
            Permission::ReadFeed => "read_feed",
            Permission::ManageHelpdesk => "manage_helpdesk",
            Permission::SeeInternalNotes => "see_internal_notes",
            Permission::DeleteConversations => "delete_conversations",
            Permission::DeleteMessages => "delete_messages",
            Permission::SeeDeletedMessages => "see_deleted_messages",
            Permission::SeeDashboard => "see_dashboard",
            Permission::SeeAllResolved => "see_all_resolved",
            Permission::OnlyOwnConnection => "only_own_connection",
            Permission::ForceDownload => "force_download",
            Permission::ShowDownloadConfirmation => "show_download_confirmation",
            Permission::ManageAdminSecurity => "manage_admin_security",
            Permission::CloseWithoutSurvey => "close_without_survey",
            Permission::ConfigureConnections => "configure_connections",
            Permission::ConfigureAiAgents => "configure_ai_agents",
            Permission::ReadAuditLog => "read_audit_log",
        }
    }

    /// What the permission lets its holder do, for error messages.
    pub fn describe(self) -> &'static str {
        match self {
            Permission::Reply => "send messages",
            Permission::ManageTickets => "change tickets",
            Permission::EditContacts => "change contacts",
            Permission::ReadFeed => "read the feed",
            Permission::ManageHelpdesk => "manage departments, quick replies and contact merges",
            Permission::SeeInternalNotes => "see internal notes",
            Permission::DeleteConversations => "delete conversations",
            Permission::DeleteMessages => "delete messages",
            Permission::SeeDeletedMessages => "see deleted messages",
            Permission::SeeDashboard => "see the dashboard",
            Permission::SeeAllResolved => "see all resolved conversations",
            Permission::OnlyOwnConnection => "see only their own connection",
            Permission::ForceDownload => "force downloads",
            Permission::ShowDownloadConfirmation => "confirm downloads",
            Permission::ManageAdminSecurity => "manage admin security",
            Permission::CloseWithoutSurvey => "close without the satisfaction survey",
            Permission::ConfigureConnections => "configure connections",
            Permission::ConfigureAiAgents => "configure AI agents",
            Permission::ReadAuditLog => "read the audit log",
        }
    }
}

/// Whether `role` has `permission` by default.
pub fn may(role: AgentRole, permission: Permission) -> bool {
    use Permission::*;
    match role {
        AgentRole::Admin => permission != OnlyOwnConnection,
        AgentRole::Supervisor => !matches!(
            permission,
            OnlyOwnConnection
                | ShowDownloadConfirmation
                | ManageAdminSecurity
                | ConfigureConnections
                | ConfigureAiAgents
                | DeleteConversations
                | ReadAuditLog
        ),
        AgentRole::Agent => matches!(
            permission,
            Reply
                | ManageTickets
                | EditContacts
                | SeeInternalNotes
                | SeeAllResolved
                | ShowDownloadConfirmation
        ),
        // Reads everything, changes nothing.
        AgentRole::Auditor => matches!(
            permission,
            ReadFeed
                | SeeInternalNotes
                | SeeDeletedMessages
                | SeeDashboard
                | SeeAllResolved
                | ReadAuditLog
        ),
        // Integrations: answer, route and record, never configure.
        AgentRole::Bot => matches!(
            permission,
            Reply | ManageTickets | EditContacts | ReadFeed | SeeAllResolved
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_permission_s_name_is_its_wire_name() {
        for permission in ALL {
            assert_eq!(
                serde_json::to_value(permission).ok(),
                Some(serde_json::Value::String(permission.as_str().into()))
            );
        }
    }

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
    fn a_tenant_s_choice_replaces_a_role_s_defaults_but_never_the_admin_s() {
        let mut tenant = RolePermissions::default();
        tenant.roles.insert(
            AgentRole::Agent,
            [Permission::ManageTickets].into_iter().collect(),
        );
        tenant.roles.insert(AgentRole::Admin, Default::default());
        assert!(!tenant.allows(AgentRole::Agent, Permission::Reply));
        assert!(tenant.allows(AgentRole::Agent, Permission::ManageTickets));
        assert!(tenant.allows(AgentRole::Admin, Permission::ManageHelpdesk));
        assert!(
            tenant.allows(AgentRole::Bot, Permission::Reply),
            "defaults elsewhere"
        );
        assert_eq!(tenant.of(AgentRole::Agent), vec![Permission::ManageTickets]);
    }
}
