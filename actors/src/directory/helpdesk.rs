//! The directory's helpdesk duties: the requests that start a conversation, requeue a ticket or
//! change one, and distribution's state on this node — the agent round robin chose last per
//! department, one decision at a time per department, and the tickets just given to an agent whose
//! commits have not landed (counted as the agent's until they do).

use super::{Directory, RouteError};
use crate::conversation::ConversationMsg;
use dashmap::DashMap;
use schema::helpdesk::change::TicketChange;
use schema::records::{Conversation, Message, MessageContent};
use schema::{AgentId, ConversationId, TenantId};
use std::sync::Arc;

/// Distribution's state on this node.
#[derive(Default)]
pub(crate) struct Distribution {
    /// The agent round robin chose last, per (tenant, department).
    last: DashMap<(TenantId, String), AgentId>,
    /// One distribution decision at a time per (tenant, department).
    locks: DashMap<(TenantId, String), Arc<tokio::sync::Mutex<()>>>,
    /// Tickets distribution gave an agent whose commits have not landed yet.
    reserved: DashMap<(TenantId, AgentId), usize>,
}

/// One ticket counted for an agent by distribution until its commit lands; released when dropped.
pub(crate) struct Reservation {
    directory: Arc<Directory>,
    tenant: TenantId,
    agent: AgentId,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.directory.release_load(self.tenant, self.agent);
    }
}

impl Directory {
    /// Starts a conversation from our side (or writes into the existing one); answers with the stored
    /// `pending` message.
    pub async fn start(
        self: &Arc<Self>,
        tenant: TenantId,
        conversation: ConversationId,
        opening: crate::conversation::Opening,
        content: MessageContent,
        client_message_id: Option<String>,
    ) -> Result<Message, RouteError> {
        self.request(tenant, conversation, |reply, ticket| {
            ConversationMsg::Start {
                opening: opening.clone(),
                content: content.clone(),
                client_message_id: client_message_id.clone(),
                ticket,
                reply,
            }
        })
        .await
    }

    /// Puts an unassigned waiting ticket in its department's distribution queue (after the
    /// department started distributing).
    pub async fn requeue(
        self: &Arc<Self>,
        tenant: TenantId,
        conversation: ConversationId,
    ) -> Result<(), RouteError> {
        self.request(tenant, conversation, |reply, ticket| {
            ConversationMsg::Requeue { ticket, reply }
        })
        .await
    }

    /// Erases the conversation's contact from its history (LGPD); answered once rewritten.
    pub async fn erase(
        self: &Arc<Self>,
        tenant: TenantId,
        conversation: ConversationId,
    ) -> Result<(), RouteError> {
        self.request(tenant, conversation, |reply, ticket| {
            ConversationMsg::Erase { ticket, reply }
        })
        .await
    }

    /// Deletes a message of the conversation, or the conversation (soft); answers with the
    /// conversation after it.
    pub async fn delete(
        self: &Arc<Self>,
        tenant: TenantId,
        conversation: ConversationId,
        by: AgentId,
        what: schema::command::Deleting,
    ) -> Result<Conversation, RouteError> {
        self.request(tenant, conversation, |reply, ticket| {
            ConversationMsg::Delete {
                by,
                what,
                ticket,
                reply,
            }
        })
        .await
    }

    /// Applies a change to a conversation's ticket; answers with the conversation after it.
    pub async fn change_ticket(
        self: &Arc<Self>,
        tenant: TenantId,
        conversation: ConversationId,
        by: Option<AgentId>,
        change: TicketChange,
    ) -> Result<Conversation, RouteError> {
        self.request(tenant, conversation, |reply, ticket| {
            ConversationMsg::Ticket {
                by,
                change: change.clone(),
                ticket,
                reply,
            }
        })
        .await
    }

    /// The agent round robin chose last for a department on this node.
    pub(crate) fn last_distributed(&self, key: &(TenantId, String)) -> Option<AgentId> {
        self.distribution.last.get(key).map(|entry| *entry.value())
    }

    pub(crate) fn distributed(&self, key: (TenantId, String), agent: AgentId) {
        self.distribution.last.insert(key, agent);
    }

    /// The lock that makes distribution decisions for a department one at a time on this node.
    pub(crate) fn distribution_lock(
        &self,
        key: &(TenantId, String),
    ) -> Arc<tokio::sync::Mutex<()>> {
        Arc::clone(
            self.distribution
                .locks
                .entry(key.clone())
                .or_default()
                .value(),
        )
    }

    /// Tickets just given to `agent` whose commits have not landed.
    pub(crate) fn reserved_load(&self, tenant: TenantId, agent: AgentId) -> usize {
        self.distribution
            .reserved
            .get(&(tenant, agent))
            .map_or(0, |entry| *entry.value())
    }

    /// Counts one more ticket for `agent` until the returned reservation is dropped (after the
    /// turn's commit, or with the actor's state if the turn never finishes).
    pub(crate) fn reserve_load(self: &Arc<Self>, tenant: TenantId, agent: AgentId) -> Reservation {
        *self
            .distribution
            .reserved
            .entry((tenant, agent))
            .or_insert(0) += 1;
        Reservation {
            directory: Arc::clone(self),
            tenant,
            agent,
        }
    }

    fn release_load(&self, tenant: TenantId, agent: AgentId) {
        self.distribution
            .reserved
            .remove_if_mut(&(tenant, agent), |_, count| {
                *count = count.saturating_sub(1);
                *count == 0
            });
    }
}
