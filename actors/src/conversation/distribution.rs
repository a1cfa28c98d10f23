//! Automatic distribution: an unassigned ticket of a department that distributes (round robin or
//! least load) waits in the store's due index (`distribute_at`) until the owner's sweep fires it;
//! then the department's online members with room below its capacity are the candidates
//! (`schema::helpdesk::distribution::choose`). Nobody available: it waits again, longer each time.
//! A ticket distribution gave to an agent who does not reply in time (`answer_by`) goes to another
//! who can take it; when nobody else can, it stays and the wait ends.
//!
//! Everything a decision needs is read from the store (presence, each member's load as their active
//! tickets), so it holds across nodes. On one node, decisions for a department are made one at a
//! time and an agent just chosen counts as one more ticket until the commit lands. Two limits, said
//! plainly: tickets of one department distributed at the same instant on two nodes can take an agent
//! past capacity by their number; and round robin continues from the last agent this node chose for
//! the department (per node in a cluster).

use super::{ConversationError, ConversationState, store_error};
use crate::turn::Turn;
use jiff::SignedDuration;
use schema::AgentId;
use schema::helpdesk::change::{self, TicketChange};
use schema::helpdesk::distribution::{Candidate, Mode, choose};
use schema::helpdesk::ticket::is_closed;
use schema::records::Department;
use schema::store::InboxView;

/// First wait before looking again when nobody was available; doubles up to [`LONGEST_WAIT`].
const FIRST_WAIT: SignedDuration = SignedDuration::from_secs(5);
const LONGEST_WAIT: SignedDuration = SignedDuration::from_secs(120);
/// Active tickets counted per member when the department sets no capacity (least load compares up to
/// this many).
const UNCAPPED_COUNT: usize = 200;

/// Puts an unassigned active ticket of a distributing department in the queue (due now), unless it
/// is already there; takes an assigned or closed one out.
pub(super) fn queue(turn: &mut Turn, department: Option<&Department>) {
    let conversation = &mut turn.conversation;
    let distributes = department.is_some_and(|d| d.distribution != Mode::Manual);
    let waiting = conversation.assignee.is_none() && !is_closed(conversation.status);
    if distributes && waiting {
        if conversation.distribute_at.is_none() {
            conversation.distribute_at = Some(turn.now);
            conversation.distribute_attempts = 0;
        }
    } else {
        conversation.distribute_at = None;
        conversation.distribute_attempts = 0;
        // Nobody waits on an agent of a closed ticket, or of a department that no longer
        // distributes.
        if !distributes || is_closed(conversation.status) {
            conversation.answer_by = None;
        }
    }
}

impl ConversationState {
    /// The department changed how it distributes: reads it afresh and, when the ticket waits
    /// unassigned in a department that now distributes, queues it (a turn without events).
    pub(super) async fn requeue(&mut self) -> Result<(), ConversationError> {
        let Some(conversation) = self.conversation.clone() else {
            return Ok(());
        };
        let department = match conversation.team.as_deref() {
            Some(key) => self.read_department(key).await?,
            None => None,
        };
        let mut turn = Turn::new(conversation, false);
        let before = turn.conversation.distribute_at;
        queue(&mut turn, department.as_deref());
        if turn.conversation.distribute_at == before {
            return Ok(());
        }
        self.commit(turn, None).await
    }

    /// Fires the distribution clocks that came due in `turn`: a ticket whose agent did not reply in
    /// time goes to another agent who can take it (it stays when nobody else can), and a waiting
    /// ticket looks for an agent.
    pub(super) async fn distribution_due(
        &mut self,
        turn: &mut Turn,
    ) -> Result<(), ConversationError> {
        let now = turn.now;
        let team = turn.conversation.team.clone();
        let department = self.department(team.as_deref()).await?;
        queue(turn, department.as_deref());
        let Some(department) = department else {
            return Ok(());
        };
        if turn.conversation.answer_by.is_some_and(|by| by <= now) {
            turn.conversation.answer_by = None;
            let current = turn.conversation.assignee;
            if current.is_some()
                && department.reassign_after_secs.is_some()
                && let Some(next) = self.choose_agent(&department, now, current).await?
            {
                let transfer = TicketChange::Assign {
                    assignee: Some(next),
                };
                let events = change::apply(&mut turn.conversation, transfer, None, now)
                    .map_err(|refused| ConversationError::Invalid(refused.to_string()))?;
                for event in events {
                    turn.push(event);
                }
                turn.conversation.answer_by = answer_by(&department, now);
                metrics::counter!("conversa_distribution_reassigned_total").increment(1);
            }
        }
        if turn.conversation.distribute_at.is_some_and(|at| at <= now) {
            match self.choose_agent(&department, now, None).await? {
                Some(agent) => {
                    let assign = TicketChange::Assign {
                        assignee: Some(agent),
                    };
                    let events = change::apply(&mut turn.conversation, assign, None, now)
                        .map_err(|refused| ConversationError::Invalid(refused.to_string()))?;
                    for event in events {
                        turn.push(event);
                    }
                    turn.conversation.distribute_at = None;
                    turn.conversation.distribute_attempts = 0;
                    turn.conversation.answer_by = answer_by(&department, now);
                    metrics::counter!("conversa_distribution_assigned_total").increment(1);
                }
                None => {
                    let attempts = turn.conversation.distribute_attempts.saturating_add(1);
                    let wait = FIRST_WAIT
                        .checked_mul(1 << attempts.saturating_sub(1).min(5))
                        .unwrap_or(LONGEST_WAIT)
                        .min(LONGEST_WAIT);
                    turn.conversation.distribute_attempts = attempts;
                    turn.conversation.distribute_at = Some(now + wait);
                    metrics::counter!("conversa_distribution_waits_total").increment(1);
                }
            }
        }
        Ok(())
    }

    /// The member who gets the next ticket of `department`, other than `besides`: online, with room
    /// below the capacity. Decisions for one department on this node are made one at a time, and
    /// an agent chosen counts as one more ticket until the store shows it (see `Directory`), so
    /// tickets fired together do not pile onto one agent.
    async fn choose_agent(
        &mut self,
        department: &Department,
        now: jiff::Timestamp,
        besides: Option<AgentId>,
    ) -> Result<Option<AgentId>, ConversationError> {
        if department.distribution == Mode::Manual {
            return Ok(None);
        }
        let key = (self.tenant, department.key.clone());
        let lock = self.directory.distribution_lock(&key);
        let _one_at_a_time = lock.lock().await;
        let present: Vec<AgentId> = self
            .store()
            .presence(self.tenant)
            .await
            .map_err(store_error)?
            .into_iter()
            .filter(|p| p.available_at(now))
            .map(|p| p.agent)
            .collect();
        let count_up_to = match department.agent_capacity {
            0 => UNCAPPED_COUNT,
            capacity => usize::try_from(capacity).unwrap_or(UNCAPPED_COUNT),
        };
        // Only members who may open the ticket: a role limited to its own connection takes
        // tickets of that connection alone.
        let permissions = self
            .store()
            .role_permissions(self.tenant)
            .await
            .map_err(store_error)?
            .unwrap_or_default();
        let connection = self.conversation.as_ref().map(|c| c.connection_id);
        let mut candidates = Vec::with_capacity(department.members.len());
        for member in &department.members {
            if Some(*member) == besides || !present.contains(member) {
                continue;
            }
            if let Some(connection) = connection {
                let agent = self
                    .store()
                    .agent(self.tenant, *member)
                    .await
                    .map_err(store_error)?;
                let works_here = agent.is_some_and(|a| {
                    schema::visibility::ConnectionScope::of(&a, &permissions).includes(connection)
                });
                if !works_here {
                    continue;
                }
            }
            let stored = self
                .store()
                .inbox(self.tenant, &InboxView::Mine(*member), None, count_up_to)
                .await
                .map_err(store_error)?
                .len();
            let load = stored.saturating_add(self.directory.reserved_load(self.tenant, *member));
            candidates.push(Candidate {
                agent: *member,
                online: true,
                load: u32::try_from(load).unwrap_or(u32::MAX),
                capacity: department.agent_capacity,
            });
        }
        let chosen = choose(
            department.distribution,
            &candidates,
            self.directory.last_distributed(&key),
        );
        if let Some(agent) = chosen {
            self.directory.distributed(key, agent);
            let reservation = self.directory.reserve_load(self.tenant, agent);
            self.reserved.push(reservation);
        }
        Ok(chosen)
    }
}

/// When the agent distribution chose must have replied by.
fn answer_by(department: &Department, now: jiff::Timestamp) -> Option<jiff::Timestamp> {
    department
        .reassign_after_secs
        .and_then(|secs| i64::try_from(secs).ok())
        .map(|secs| now + SignedDuration::from_secs(secs))
}
