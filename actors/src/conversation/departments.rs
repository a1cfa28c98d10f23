//! What a conversation's department decides: which department a new conversation enters (the one its
//! connection feeds), what a customer's message does to a closed ticket (its reopen policy), and the
//! automatic reply to a customer who writes while it is closed (at most once per conversation per
//! period, sent as a stored `pending` reply in the same turn as the message, so it goes through the
//! outbox like any reply).
//!
//! One read of a department serves the node's conversations for [`FRESH_FOR`] (the directory's
//! [`Departments`](crate::directory::departments::Departments));
//! an edit through this node reaches them on their next turn, one through another node within that
//! time; so does the tenant's `automatic_distribution` flag (off: every department distributes by
//! hand). Which department a new conversation enters is read afresh for each.

use super::{ConversationError, ConversationState, store_error};
use crate::turn::Turn;
use schema::MessageId;
use schema::helpdesk::distribution::Mode;
use schema::records::{Department, Direction, Message, MessageContent, MessageStatus};
use schema::{ConnectionId, TenantId};
use std::sync::Arc;

#[cfg(doc)]
use crate::directory::departments::FRESH_FOR;

impl ConversationState {
    /// The department with this key (`None` for no key, or one that was removed): the node's shared
    /// read while it is younger than [`FRESH_FOR`], else a read from the store. Not a bound on reads:
    /// actors that miss at once each read, and an edit on this node forgets the tenant's reads.
    pub(super) async fn department(
        &self,
        key: Option<&str>,
    ) -> Result<Option<Arc<Department>>, ConversationError> {
        let Some(key) = key else {
            return Ok(None);
        };
        if let Some(read) = self.directory.departments().get(self.tenant, key) {
            return Ok(read);
        }
        self.read_department(key).await
    }

    /// The department with this key, read from the store now (and kept for the node).
    pub(super) async fn read_department(
        &self,
        key: &str,
    ) -> Result<Option<Arc<Department>>, ConversationError> {
        let reading = self.directory.departments().start_reading();
        let department = self
            .store()
            .department(self.tenant, key)
            .await
            .map_err(store_error)?;
        let department = self.as_the_tenant_runs_it(department).await?.map(Arc::new);
        self.directory
            .departments()
            .keep(reading, self.tenant, key, department.clone());
        Ok(department)
    }

    /// A tenant that turned automatic distribution off has every department distribute by hand.
    async fn as_the_tenant_runs_it(
        &self,
        mut department: Option<Department>,
    ) -> Result<Option<Department>, ConversationError> {
        if let Some(distributing) = department
            .as_mut()
            .filter(|d| d.distribution != Mode::Manual)
        {
            let flags = self
                .store()
                .feature_flags(self.tenant)
                .await
                .map_err(store_error)?
                .unwrap_or_default();
            if !flags.automatic_distribution {
                distributing.distribution = Mode::Manual;
            }
        }
        Ok(department)
    }

    /// The department a new conversation on `connection` enters: the one that lists the connection
    /// (the first by key when several do), or none. Read from the store every time (a new
    /// conversation keeps the department it enters), and kept for the node by its key.
    pub(super) async fn entry_department(
        &self,
        connection: ConnectionId,
    ) -> Result<Option<Arc<Department>>, ConversationError> {
        let reading = self.directory.departments().start_reading();
        let departments = self
            .store()
            .departments(self.tenant)
            .await
            .map_err(store_error)?;
        let mut feeding: Vec<Department> = departments
            .into_iter()
            .filter(|d| d.connections.contains(&connection))
            .collect();
        feeding.sort_by(|a, b| a.key.cmp(&b.key));
        let entry = self
            .as_the_tenant_runs_it(feeding.into_iter().next())
            .await?
            .map(Arc::new);
        if let Some(department) = &entry {
            self.directory.departments().keep(
                reading,
                self.tenant,
                &department.key,
                Some(Arc::clone(department)),
            );
        }
        Ok(entry)
    }
}

/// Adds the department's out-of-hours reply to the turn when the department is closed now and the
/// contact has not had one within its period; returns the stored `pending` reply to dispatch after
/// the commit.
pub(super) fn out_of_hours_reply(
    turn: &mut Turn,
    tenant: TenantId,
    department: &Department,
) -> Option<Message> {
    let rule = &department.out_of_hours;
    let now = turn.now;
    let recently = turn
        .conversation
        .out_of_hours_replied_at
        .is_some_and(|at| now.duration_since(at) < rule.every());
    if !rule.enabled || recently || !department.closed_at(now) {
        return None;
    }
    turn.conversation.out_of_hours_replied_at = Some(now);
    metrics::counter!("conversa_closed_department_replies_total").increment(1);
    Some(turn.add_message(Message {
        deleted: None,
        id: MessageId::new(),
        tenant_id: tenant,
        conversation_id: turn.conversation.id,
        seq: 0,
        direction: Direction::Outbound,
        content: MessageContent::Text {
            body: rule.message.trim().to_owned(),
        },
        status: MessageStatus::Pending,
        provider_message_id: None,
        reply_to: None,
        sent_by: None,
        client_message_id: None,
        error: None,
        created_at: now,
        updated_at: now,
        forwarded: false,
        sender: None,
    }))
}
