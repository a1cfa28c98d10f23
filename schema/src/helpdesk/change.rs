//! How a change to a ticket ([`TicketChange`]: assign, transfer, status, priority, tags, snooze, note)
//! turns into the events recorded on the conversation, with who made it. Pure rules, over the state
//! machine of [`super::ticket`]; what a customer's message and the clocks do is in
//! [`super::lifecycle`].

use super::ticket::{TransitionRefused, is_closed, transition};
use crate::events::ConversationEvent;
use crate::ids::{AgentId, NoteId};
use crate::records::{Conversation, ConversationStatus, Note, Priority};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

/// Most tags one ticket carries.
pub const MAX_TAGS: usize = 32;
/// Longest tag, in characters.
pub const MAX_TAG_CHARS: usize = 48;
/// Longest internal note or transfer note, in bytes.
pub const MAX_NOTE_BYTES: usize = 8 * 1024;
/// Longest department key, in characters.
pub const MAX_TEAM_CHARS: usize = 64;
/// Furthest a ticket can be snoozed.
pub const MAX_SNOOZE: SignedDuration = SignedDuration::from_hours(24 * 90);

/// A change an agent (or the system) makes to a ticket.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum TicketChange {
    /// Give the ticket to an agent, or take it off its agent (`None`).
    Assign {
        assignee: Option<AgentId>,
    },
    /// Move the ticket to a department and/or an agent; to a department alone, it waits there
    /// unassigned.
    Transfer {
        agent: Option<AgentId>,
        team: Option<String>,
        note: Option<String>,
    },
    Status {
        status: ConversationStatus,
        /// Resolve without asking the customer for a score (`close_without_survey`).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        skip_survey: bool,
    },
    Priority {
        priority: Priority,
    },
    /// Add and remove tags (normalised: trimmed, lower case).
    Tags {
        #[serde(default)]
        add: Vec<String>,
        #[serde(default)]
        remove: Vec<String>,
    },
    /// Snooze until a time in the future, or wake (`None`).
    Snooze {
        until: Option<Timestamp>,
    },
    /// An internal note; its id comes with the request.
    Note {
        id: NoteId,
        body: String,
    },
}

/// Why a change is refused: nothing is recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeRefused {
    #[error(transparent)]
    Transition(#[from] TransitionRefused),
    #[error("the ticket is {}: reopen it first", .0.as_str())]
    Closed(ConversationStatus),
    #[error("{0}")]
    Invalid(String),
}

/// Applies `change`, made by `by` (`None`: the system) at `now`, to the ticket of `conversation`:
/// updates its fields and returns the events to record, in order. A change that changes nothing
/// (assigning the current agent, the current priority, tags already there) returns no event, so a
/// retried request is harmless.
pub fn apply(
    conversation: &mut Conversation,
    change: TicketChange,
    by: Option<AgentId>,
    now: Timestamp,
) -> Result<Vec<ConversationEvent>, ChangeRefused> {
    let closed = is_closed(conversation.status);
    let mut events = Vec::new();
    match change {
        TicketChange::Assign { assignee } => match (assignee, conversation.assignee) {
            (Some(next), previous) if previous != Some(next) => {
                conversation.assignee = Some(next);
                events.push(ConversationEvent::Assigned {
                    assignee: next,
                    previous,
                    by,
                });
            }
            (None, Some(previous)) => {
                conversation.assignee = None;
                events.push(ConversationEvent::Unassigned { previous, by });
            }
            _ => {}
        },
        TicketChange::Transfer { agent, team, note } => {
            if closed {
                return Err(ChangeRefused::Closed(conversation.status));
            }
            if agent.is_none() && team.is_none() {
                return Err(ChangeRefused::Invalid(
                    "a transfer names an agent, a department or both".into(),
                ));
            }
            let team = team.map(|t| team_key(&t)).transpose()?;
            let note = note.map(|n| note_text(&n)).transpose()?;
            let to_team = team.clone().or_else(|| conversation.team.clone());
            // To a department alone, the ticket waits in its queue for the next agent.
            let to_agent = agent;
            if to_team == conversation.team && to_agent == conversation.assignee {
                return Ok(events);
            }
            events.push(ConversationEvent::Transferred {
                from_agent: conversation.assignee,
                to_agent,
                from_team: conversation.team.clone(),
                to_team: to_team.clone(),
                note,
                by,
            });
            conversation.team = to_team;
            conversation.assignee = to_agent;
        }
        TicketChange::Status { status, .. } => {
            if status == conversation.status {
                return Ok(events);
            }
            transition(conversation.status, status)?;
            events.push(ConversationEvent::StatusChanged {
                from: conversation.status,
                to: status,
                by,
            });
            conversation.status = status;
            if is_closed(status) && conversation.snoozed_until.take().is_some() {
                events.push(ConversationEvent::Snoozed { until: None, by });
            }
        }
        TicketChange::Priority { priority } => {
            if priority != conversation.priority {
                events.push(ConversationEvent::PriorityChanged {
                    from: conversation.priority,
                    to: priority,
                    by,
                });
                conversation.priority = priority;
            }
        }
        TicketChange::Tags { add, remove } => {
            if add.len() + remove.len() > 2 * MAX_TAGS {
                return Err(ChangeRefused::Invalid(format!(
                    "a ticket carries at most {MAX_TAGS} tags"
                )));
            }
            let add = add.iter().map(|t| tag(t)).collect::<Result<Vec<_>, _>>()?;
            let remove = remove
                .iter()
                .map(|t| tag(t))
                .collect::<Result<Vec<_>, _>>()?;
            let mut tags = conversation.tags.clone();
            let removed: Vec<String> =
                remove
                    .into_iter()
                    .filter(|t| tags.contains(t))
                    .fold(Vec::new(), |mut acc, t| {
                        if !acc.contains(&t) {
                            acc.push(t);
                        }
                        acc
                    });
            tags.retain(|t| !removed.contains(t));
            let mut added = Vec::new();
            for t in add {
                if !tags.contains(&t) {
                    tags.push(t.clone());
                    added.push(t);
                }
            }
            if tags.len() > MAX_TAGS {
                return Err(ChangeRefused::Invalid(format!(
                    "a ticket carries at most {MAX_TAGS} tags"
                )));
            }
            if !added.is_empty() || !removed.is_empty() {
                conversation.tags = tags.clone();
                events.push(ConversationEvent::Tagged {
                    added,
                    removed,
                    tags,
                    by,
                });
            }
        }
        TicketChange::Snooze { until } => {
            if let Some(until) = until {
                if closed {
                    return Err(ChangeRefused::Closed(conversation.status));
                }
                if until <= now || until.duration_since(now) > MAX_SNOOZE {
                    return Err(ChangeRefused::Invalid(
                        "snooze until a time in the future, at most 90 days away".into(),
                    ));
                }
            }
            if until != conversation.snoozed_until {
                conversation.snoozed_until = until;
                events.push(ConversationEvent::Snoozed { until, by });
            }
        }
        TicketChange::Note { id, body } => {
            let Some(author) = by else {
                return Err(ChangeRefused::Invalid("a note has an author".into()));
            };
            let body = note_text(&body)?;
            events.push(ConversationEvent::NoteAdded {
                note: Note { id, body, author },
            });
        }
    }
    // Only a change of agent moves the status with it: an explicit status change stands as asked.
    if events.iter().any(|e| {
        matches!(
            e,
            ConversationEvent::Assigned { .. }
                | ConversationEvent::Unassigned { .. }
                | ConversationEvent::Transferred { .. }
        )
    }) {
        follow_assignee(conversation, by, &mut events);
    }
    Ok(events)
}

/// An agent taking an open ticket is attending it (`in_progress`); a ticket in progress that loses its
/// agent goes back to the queue (`open`). Waiting and closed tickets keep their status.
fn follow_assignee(
    conversation: &mut Conversation,
    by: Option<AgentId>,
    events: &mut Vec<ConversationEvent>,
) {
    use ConversationStatus::{InProgress, Open};
    let to = match (conversation.status, conversation.assignee) {
        (Open, Some(_)) => InProgress,
        (InProgress, None) => Open,
        _ => return,
    };
    events.push(ConversationEvent::StatusChanged {
        from: conversation.status,
        to,
        by,
    });
    conversation.status = to;
}

/// A tag as stored: trimmed, lower case, letters, digits, `-`, `_`, `:` or `.`.
pub fn tag(raw: &str) -> Result<String, ChangeRefused> {
    let tag = raw.trim().to_lowercase();
    let valid = !tag.is_empty()
        && tag.chars().count() <= MAX_TAG_CHARS
        && tag
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ':' | '.'));
    if valid {
        Ok(tag)
    } else {
        Err(ChangeRefused::Invalid(format!(
            "a tag is 1 to {MAX_TAG_CHARS} letters, digits, '-', '_', ':' or '.'"
        )))
    }
}

/// A department key: 1 to 64 characters of letters, digits, `-`, `_` or `.`.
pub fn team_key(raw: &str) -> Result<String, ChangeRefused> {
    let valid = !raw.is_empty()
        && raw.chars().count() <= MAX_TEAM_CHARS
        && raw
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(raw.to_owned())
    } else {
        Err(ChangeRefused::Invalid(format!(
            "a department is 1 to {MAX_TEAM_CHARS} letters, digits, '-', '_' or '.'"
        )))
    }
}

fn note_text(raw: &str) -> Result<String, ChangeRefused> {
    let text = raw.trim();
    if text.is_empty() || text.len() > MAX_NOTE_BYTES {
        return Err(ChangeRefused::Invalid(format!(
            "a note is 1 to {MAX_NOTE_BYTES} bytes of text"
        )));
    }
    Ok(text.to_owned())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ConversationStatus::*;

    pub(crate) fn ticket() -> Conversation {
        let tenant = crate::TenantId::new();
        let connection = crate::ConnectionId::new();
        Conversation {
            survey: None,
            rating: None,
            id: crate::ConversationId::for_contact(tenant, connection, "5511999990000"),
            tenant_id: tenant,
            connection_id: connection,
            contact: crate::records::Contact {
                address: "5511999990000".into(),
                name: None,
            },
            status: Open,
            priority: Priority::Normal,
            assignee: None,
            team: None,
            tags: Vec::new(),
            ticket_number: 1,
            ticket_opened_at: Some(Timestamp::UNIX_EPOCH),
            snoozed_until: None,
            out_of_hours_replied_at: None,
            sla: Default::default(),
            distribute_at: None,
            distribute_attempts: 0,
            answer_by: None,
            last_seq: 2,
            created_at: Timestamp::UNIX_EPOCH,
            last_activity_at: Timestamp::UNIX_EPOCH,
            last_inbound_at: None,
            message_count: 1,
            last_message_preview: None,
            early_statuses: Default::default(),
            held_echoes: Vec::new(),
            stamp_us: 0,
            deleted: None,
            deleted_through: 0,
            deleted_seqs: Default::default(),
        }
    }

    pub(crate) const NOW: Timestamp = Timestamp::UNIX_EPOCH;

    #[test]
    fn assigning_records_the_previous_agent_and_a_repeat_changes_nothing() {
        let (mut t, a, b) = (ticket(), AgentId::new(), AgentId::new());
        let change = TicketChange::Assign { assignee: Some(a) };
        let events = apply(&mut t, change.clone(), Some(b), NOW).unwrap();
        assert_eq!(
            events,
            vec![
                ConversationEvent::Assigned {
                    assignee: a,
                    previous: None,
                    by: Some(b)
                },
                ConversationEvent::StatusChanged {
                    from: Open,
                    to: InProgress,
                    by: Some(b)
                }
            ],
            "an agent taking an open ticket is attending it"
        );
        assert!(apply(&mut t, change, Some(b), NOW).unwrap().is_empty());
        let events = apply(&mut t, TicketChange::Assign { assignee: None }, None, NOW).unwrap();
        assert_eq!(
            events,
            vec![
                ConversationEvent::Unassigned {
                    previous: a,
                    by: None
                },
                ConversationEvent::StatusChanged {
                    from: InProgress,
                    to: Open,
                    by: None
                }
            ],
            "back in the queue"
        );
        assert_eq!(t.assignee, None);
    }

    #[test]
    fn a_transfer_to_a_department_alone_leaves_the_ticket_unassigned_in_its_queue() {
        let (mut t, a) = (ticket(), AgentId::new());
        t.assignee = Some(a);
        t.status = InProgress;
        t.team = Some("vendas".into());
        let events = apply(
            &mut t,
            TicketChange::Transfer {
                agent: None,
                team: Some("suporte".into()),
                note: Some("  cliente quer 2ª via  ".into()),
            },
            Some(a),
            NOW,
        )
        .unwrap();
        assert_eq!(t.assignee, None);
        assert_eq!(t.team.as_deref(), Some("suporte"));
        assert_eq!(t.status, Open, "waiting in the new department's queue");
        assert!(matches!(
            &events[..],
            [ConversationEvent::Transferred { from_agent: Some(f), to_agent: None, from_team: Some(ft), to_team: Some(tt), note: Some(n), .. }, ConversationEvent::StatusChanged { .. }]
                if *f == a && ft == "vendas" && tt == "suporte" && n == "cliente quer 2ª via"
        ));
    }

    #[test]
    fn a_closed_ticket_refuses_transfers_and_snoozes_but_reopens() {
        let mut t = ticket();
        t.status = Resolved;
        let transfer = TicketChange::Transfer {
            agent: Some(AgentId::new()),
            team: None,
            note: None,
        };
        assert_eq!(
            apply(&mut t, transfer, None, NOW),
            Err(ChangeRefused::Closed(Resolved))
        );
        let snooze = TicketChange::Snooze {
            until: Some(NOW + SignedDuration::from_hours(1)),
        };
        assert_eq!(
            apply(&mut t, snooze, None, NOW),
            Err(ChangeRefused::Closed(Resolved))
        );
        let reopen = apply(
            &mut t,
            TicketChange::Status {
                status: Open,
                skip_survey: false,
            },
            None,
            NOW,
        )
        .unwrap();
        assert_eq!(reopen.len(), 1);
        assert_eq!(t.status, Open);
    }

    #[test]
    fn resolving_wakes_a_snoozed_ticket_and_a_refused_transition_changes_nothing() {
        let mut t = ticket();
        t.snoozed_until = Some(NOW + SignedDuration::from_hours(1));
        let events = apply(
            &mut t,
            TicketChange::Status {
                status: Resolved,
                skip_survey: false,
            },
            None,
            NOW,
        )
        .unwrap();
        assert_eq!(events.len(), 2, "status change, then the snooze ends");
        assert_eq!(t.snoozed_until, None);
        let before = t.clone();
        assert!(
            apply(
                &mut t,
                TicketChange::Status {
                    status: Waiting,
                    skip_survey: false
                },
                None,
                NOW
            )
            .is_err()
        );
        assert_eq!(t, before);
    }

    #[test]
    fn tags_are_normalised_deduplicated_and_bounded() {
        let mut t = ticket();
        let events = apply(
            &mut t,
            TicketChange::Tags {
                add: vec![" VIP ".into(), "vip".into(), "boleto".into()],
                remove: vec!["absent".into()],
            },
            None,
            NOW,
        )
        .unwrap();
        assert_eq!(t.tags, vec!["vip".to_string(), "boleto".to_string()]);
        assert_eq!(events.len(), 1);
        assert!(tag("no spaces allowed").is_err());
        assert!(tag("").is_err());
        let many = (0..=MAX_TAGS).map(|i| format!("t{i}")).collect();
        let before = t.clone();
        assert!(
            apply(
                &mut t,
                TicketChange::Tags {
                    add: many,
                    remove: vec![]
                },
                None,
                NOW
            )
            .is_err()
        );
        assert_eq!(t, before);
    }

    #[test]
    fn a_snooze_must_be_in_the_future_and_within_ninety_days() {
        let mut t = ticket();
        for until in [NOW, NOW + MAX_SNOOZE + SignedDuration::from_secs(1)] {
            let change = TicketChange::Snooze { until: Some(until) };
            assert!(apply(&mut t, change, None, NOW).is_err());
        }
        let until = NOW + SignedDuration::from_hours(2);
        let change = TicketChange::Snooze { until: Some(until) };
        assert_eq!(apply(&mut t, change, None, NOW).unwrap().len(), 1);
        assert_eq!(t.snoozed_until, Some(until));
    }

    #[test]
    fn a_note_needs_an_author_and_text() {
        let mut t = ticket();
        let note = |body: &str| TicketChange::Note {
            id: NoteId::new(),
            body: body.into(),
        };
        assert!(apply(&mut t, note("oi"), None, NOW).is_err());
        assert!(apply(&mut t, note("   "), Some(AgentId::new()), NOW).is_err());
        assert_eq!(
            apply(&mut t, note("ligar amanhã"), Some(AgentId::new()), NOW)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn an_explicit_status_change_stands_as_asked_and_is_not_undone_by_the_assignee_rule() {
        let mut t = ticket();
        let events = apply(
            &mut t,
            TicketChange::Status {
                status: InProgress,
                skip_survey: false,
            },
            None,
            NOW,
        )
        .unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(t.status, InProgress);
        t.assignee = Some(AgentId::new());
        let events = apply(
            &mut t,
            TicketChange::Status {
                status: Open,
                skip_survey: false,
            },
            None,
            NOW,
        )
        .unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(t.status, Open);
    }
}
