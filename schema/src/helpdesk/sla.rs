//! SLA arithmetic: when a target (first response, next response, resolution) is due, counted in
//! wall-clock time or in business hours, the state of one target at an instant, and a ticket's
//! clocks ([`TicketSla`]) as the ticket lives: started when it opens, met by an agent's reply or its
//! resolution, missed when their time passes. Pure: the caller passes the instants.

use super::hours::{BusinessHours, HoursError};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

/// A department's SLA policy; an absent threshold is not tracked. Thresholds are ISO 8601 durations
/// on the wire (`"PT15M"`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct SlaPolicy {
    #[schema(value_type = Option<String>, example = "PT15M")]
    pub first_response: Option<SignedDuration>,
    #[schema(value_type = Option<String>, example = "PT1H")]
    pub next_response: Option<SignedDuration>,
    #[schema(value_type = Option<String>, example = "PT24H")]
    pub resolution: Option<SignedDuration>,
    /// Count only time inside the department's business hours.
    pub only_during_business_hours: bool,
}

/// One SLA target's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SlaState {
    /// Running; breached at `due` unless met first. `due` is `None` when business hours never open
    /// within the search horizon.
    Active { due: Option<Timestamp> },
    /// Met at this instant, before its due time.
    Hit { at: Timestamp },
    /// Not met by its due time.
    Missed { due: Timestamp },
}

/// When a target of `threshold` started at `started` is due.
pub fn due(
    started: Timestamp,
    threshold: SignedDuration,
    hours: Option<&BusinessHours>,
) -> Result<Option<Timestamp>, HoursError> {
    match hours {
        Some(hours) => hours.after_open_time(started, threshold),
        None => Ok(started.checked_add(threshold).ok()),
    }
}

/// The state at `now` of a target due at `due`, met at `met` (if it was).
pub fn state(due: Option<Timestamp>, met: Option<Timestamp>, now: Timestamp) -> SlaState {
    match (due, met) {
        (Some(due), Some(met)) if met > due => SlaState::Missed { due },
        (_, Some(met)) => SlaState::Hit { at: met },
        (Some(due), None) if now >= due => SlaState::Missed { due },
        (due, None) => SlaState::Active { due },
    }
}

/// One of a ticket's SLA targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SlaTarget {
    FirstResponse,
    NextResponse,
    Resolution,
}

impl SlaTarget {
    pub fn as_str(self) -> &'static str {
        match self {
            SlaTarget::FirstResponse => "first_response",
            SlaTarget::NextResponse => "next_response",
            SlaTarget::Resolution => "resolution",
        }
    }
}

/// A ticket's SLA clocks; a target its department does not track stays `None`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketSla {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_response: Option<SlaState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_response: Option<SlaState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<SlaState>,
    /// Whether an agent replied since the customer last wrote: only then does the customer's next
    /// message start a next-response clock.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub agent_answered: bool,
}

/// What happened to a clock, to be recorded as an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, utoipa::ToSchema)]
pub enum SlaOutcome {
    Hit { target: SlaTarget, at: Timestamp },
    Missed { target: SlaTarget, due: Timestamp },
}

fn started(
    threshold: Option<SignedDuration>,
    policy: &SlaPolicy,
    hours: Option<&BusinessHours>,
    now: Timestamp,
) -> Option<SlaState> {
    let hours = hours.filter(|_| policy.only_during_business_hours);
    // Hours that cannot be used (already validated when stored) count as wall-clock time.
    let due = due(now, threshold?, hours).unwrap_or_else(|_| now.checked_add(threshold?).ok());
    Some(SlaState::Active { due })
}

impl TicketSla {
    /// The clocks of a ticket opening (or reopening) at `now`: first response and resolution.
    pub fn start(policy: &SlaPolicy, hours: Option<&BusinessHours>, now: Timestamp) -> TicketSla {
        TicketSla {
            first_response: started(policy.first_response, policy, hours, now),
            next_response: None,
            resolution: started(policy.resolution, policy, hours, now),
            agent_answered: false,
        }
    }

    /// An agent reopened the ticket at `now`: resolution runs again; the response clocks wait for
    /// the customer to write.
    pub fn reopened_by_agent(
        policy: &SlaPolicy,
        hours: Option<&BusinessHours>,
        now: Timestamp,
    ) -> TicketSla {
        TicketSla {
            resolution: started(policy.resolution, policy, hours, now),
            agent_answered: true,
            ..TicketSla::default()
        }
    }

    fn slots(&mut self) -> [(SlaTarget, &mut Option<SlaState>); 3] {
        [
            (SlaTarget::FirstResponse, &mut self.first_response),
            (SlaTarget::NextResponse, &mut self.next_response),
            (SlaTarget::Resolution, &mut self.resolution),
        ]
    }

    /// The customer wrote at `now`: when an agent had answered since the customer last wrote (and
    /// no response clock runs), a next-response clock starts. A customer writing again before any
    /// answer starts nothing: the running (or already missed) clock stands for it.
    pub fn customer_wrote(
        &mut self,
        policy: &SlaPolicy,
        hours: Option<&BusinessHours>,
        now: Timestamp,
    ) {
        let running = [&self.first_response, &self.next_response]
            .into_iter()
            .any(|slot| matches!(slot, Some(SlaState::Active { .. })));
        if self.agent_answered
            && !running
            && let Some(next) = started(policy.next_response, policy, hours, now)
        {
            self.next_response = Some(next);
        }
        self.agent_answered = false;
    }

    /// An agent replied at `now`: the running response clocks are met (or missed, when their time
    /// had already passed and no sweep had recorded it yet).
    pub fn agent_replied(&mut self, now: Timestamp) -> Vec<SlaOutcome> {
        self.agent_answered = true;
        let mut outcomes = Vec::new();
        for (target, slot) in self.slots() {
            if target != SlaTarget::Resolution {
                settle(target, slot, now, &mut outcomes);
            }
        }
        outcomes
    }

    /// The ticket closed at `now`: resolved, resolution is met (or missed); cancelled, it stops
    /// unsettled. Response clocks stop unsettled either way.
    pub fn closed(&mut self, now: Timestamp, resolved: bool) -> Vec<SlaOutcome> {
        let mut outcomes = Vec::new();
        if resolved {
            settle(
                SlaTarget::Resolution,
                &mut self.resolution,
                now,
                &mut outcomes,
            );
        } else if matches!(self.resolution, Some(SlaState::Active { .. })) {
            self.resolution = None;
        }
        for slot in [&mut self.first_response, &mut self.next_response] {
            if matches!(slot, Some(SlaState::Active { .. })) {
                *slot = None;
            }
        }
        outcomes
    }

    /// Clocks whose time has come at `now` are missed.
    pub fn fire(&mut self, now: Timestamp) -> Vec<SlaOutcome> {
        let mut outcomes = Vec::new();
        for (target, slot) in self.slots() {
            if let Some(SlaState::Active { due: Some(due) }) = *slot
                && due <= now
            {
                *slot = Some(SlaState::Missed { due });
                outcomes.push(SlaOutcome::Missed { target, due });
            }
        }
        outcomes
    }

    /// When the next running clock is due.
    pub fn next_due(&self) -> Option<Timestamp> {
        [&self.first_response, &self.next_response, &self.resolution]
            .into_iter()
            .filter_map(|slot| match slot {
                Some(SlaState::Active { due }) => *due,
                _ => None,
            })
            .min()
    }

    pub fn is_empty(&self) -> bool {
        self.first_response.is_none()
            && self.next_response.is_none()
            && self.resolution.is_none()
            && !self.agent_answered
    }
}

fn settle(
    target: SlaTarget,
    slot: &mut Option<SlaState>,
    now: Timestamp,
    outcomes: &mut Vec<SlaOutcome>,
) {
    let Some(SlaState::Active { due }) = *slot else {
        return;
    };
    let settled = state(due, Some(now), now);
    *slot = Some(settled);
    outcomes.push(match settled {
        SlaState::Missed { due } => SlaOutcome::Missed { target, due },
        _ => SlaOutcome::Hit { target, at: now },
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpdesk::hours::Window;
    use jiff::civil::time;

    fn at(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    fn office() -> BusinessHours {
        let day = vec![Window {
            start: time(9, 0, 0, 0),
            end: time(17, 0, 0, 0),
        }];
        let mut weekly = vec![day; 5];
        weekly.push(Vec::new());
        weekly.push(Vec::new());
        BusinessHours {
            time_zone: "UTC".into(),
            weekly,
            holidays: Vec::new(),
        }
    }

    #[test]
    fn wall_clock_targets_are_due_after_the_threshold() {
        let due = due(
            at("2026-12-04T16:30:00Z"),
            SignedDuration::from_hours(1),
            None,
        )
        .unwrap();
        assert_eq!(due, Some(at("2026-12-04T17:30:00Z")));
    }

    #[test]
    fn business_hour_targets_pause_overnight_and_over_the_weekend() {
        // Friday 16:30 + 1 business hour: 30 min Friday, 30 min Monday from 09:00.
        let due = due(
            at("2026-12-04T16:30:00Z"),
            SignedDuration::from_hours(1),
            Some(&office()),
        )
        .unwrap();
        assert_eq!(due, Some(at("2026-12-07T09:30:00Z")));
    }

    #[test]
    fn a_target_is_hit_missed_or_active_by_when_it_was_met() {
        let due_at = Some(at("2026-12-04T17:00:00Z"));
        let before = at("2026-12-04T16:00:00Z");
        let after = at("2026-12-04T18:00:00Z");
        assert_eq!(
            state(due_at, None, before),
            SlaState::Active { due: due_at }
        );
        assert_eq!(
            state(due_at, Some(before), after),
            SlaState::Hit { at: before }
        );
        assert_eq!(
            state(due_at, None, after),
            SlaState::Missed {
                due: at("2026-12-04T17:00:00Z")
            }
        );
        assert_eq!(
            state(due_at, Some(after), after),
            SlaState::Missed {
                due: at("2026-12-04T17:00:00Z")
            }
        );
    }

    fn policy() -> SlaPolicy {
        SlaPolicy {
            first_response: Some(SignedDuration::from_mins(15)),
            next_response: Some(SignedDuration::from_mins(30)),
            resolution: Some(SignedDuration::from_hours(8)),
            only_during_business_hours: false,
        }
    }

    #[test]
    fn a_ticket_starts_first_response_and_resolution_and_an_agent_reply_meets_the_first() {
        let t0 = at("2026-12-04T10:00:00Z");
        let mut sla = TicketSla::start(&policy(), None, t0);
        assert_eq!(sla.next_due(), Some(at("2026-12-04T10:15:00Z")));
        assert!(sla.next_response.is_none());
        let replied = at("2026-12-04T10:05:00Z");
        assert_eq!(
            sla.agent_replied(replied),
            vec![SlaOutcome::Hit {
                target: SlaTarget::FirstResponse,
                at: replied
            }]
        );
        assert_eq!(
            sla.next_due(),
            Some(at("2026-12-04T18:00:00Z")),
            "resolution remains"
        );
        // The customer writes again: the next response is due in 30 min.
        sla.customer_wrote(&policy(), None, at("2026-12-04T11:00:00Z"));
        assert_eq!(sla.next_due(), Some(at("2026-12-04T11:30:00Z")));
        // A second message does not restart it.
        sla.customer_wrote(&policy(), None, at("2026-12-04T11:20:00Z"));
        assert_eq!(sla.next_due(), Some(at("2026-12-04T11:30:00Z")));
    }

    #[test]
    fn clocks_past_due_are_missed_once_and_a_late_reply_is_a_miss() {
        let t0 = at("2026-12-04T10:00:00Z");
        let mut sla = TicketSla::start(&policy(), None, t0);
        assert!(sla.fire(at("2026-12-04T10:14:59Z")).is_empty());
        let missed = sla.fire(at("2026-12-04T10:15:00Z"));
        assert_eq!(
            missed,
            vec![SlaOutcome::Missed {
                target: SlaTarget::FirstResponse,
                due: at("2026-12-04T10:15:00Z")
            }]
        );
        assert!(sla.fire(at("2026-12-04T10:16:00Z")).is_empty(), "once");
        assert!(
            sla.agent_replied(at("2026-12-04T10:20:00Z")).is_empty(),
            "already missed"
        );

        let mut late = TicketSla::start(&policy(), None, t0);
        assert!(matches!(
            late.agent_replied(at("2026-12-04T10:30:00Z"))[..],
            [SlaOutcome::Missed {
                target: SlaTarget::FirstResponse,
                ..
            }]
        ));
    }

    #[test]
    fn closing_meets_resolution_and_stops_the_response_clocks() {
        let mut sla = TicketSla::start(&policy(), None, at("2026-12-04T10:00:00Z"));
        let closed = sla.closed(at("2026-12-04T12:00:00Z"), true);
        assert_eq!(closed.len(), 1);
        assert!(matches!(
            closed[0],
            SlaOutcome::Hit {
                target: SlaTarget::Resolution,
                ..
            }
        ));
        assert_eq!(sla.first_response, None);
        assert_eq!(sla.next_due(), None);
    }

    #[test]
    fn business_hour_clocks_pause_when_the_department_is_closed() {
        let mut business = policy();
        business.only_during_business_hours = true;
        let sla = TicketSla::start(&business, Some(&office()), at("2026-12-04T16:50:00Z"));
        assert_eq!(sla.next_due(), Some(at("2026-12-07T09:05:00Z")));
        let wall = TicketSla::start(&policy(), Some(&office()), at("2026-12-04T16:50:00Z"));
        assert_eq!(wall.next_due(), Some(at("2026-12-04T17:05:00Z")));
    }

    #[test]
    fn a_next_response_clock_starts_only_after_an_agent_answered() {
        let mut sla = TicketSla::start(&policy(), None, at("2026-12-04T10:00:00Z"));
        sla.fire(at("2026-12-04T10:15:00Z"));
        // Nobody answered: the customer's follow-ups start no new clock (the miss stands).
        sla.customer_wrote(&policy(), None, at("2026-12-04T10:20:00Z"));
        assert_eq!(sla.next_response, None);
        sla.agent_replied(at("2026-12-04T10:25:00Z"));
        sla.customer_wrote(&policy(), None, at("2026-12-04T10:40:00Z"));
        assert!(matches!(sla.next_response, Some(SlaState::Active { .. })));
    }

    #[test]
    fn cancelling_stops_resolution_unmet_and_an_agent_reopen_restarts_only_resolution() {
        let mut sla = TicketSla::start(&policy(), None, at("2026-12-04T10:00:00Z"));
        assert!(sla.closed(at("2026-12-04T11:00:00Z"), false).is_empty());
        assert_eq!(sla.resolution, None);
        let reopened = TicketSla::reopened_by_agent(&policy(), None, at("2026-12-04T12:00:00Z"));
        assert_eq!(reopened.first_response, None);
        assert_eq!(reopened.next_due(), Some(at("2026-12-04T20:00:00Z")));
    }
}
