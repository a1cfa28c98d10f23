//! SLA arithmetic: when a target (first response, next response, resolution) is due, counted in
//! wall-clock time or in business hours, and the state of one target at an instant. Pure: the caller
//! passes the instants.

use super::hours::{BusinessHours, HoursError};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

/// A department's SLA policy; an absent threshold is not tracked.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaPolicy {
    pub first_response: Option<SignedDuration>,
    pub next_response: Option<SignedDuration>,
    pub resolution: Option<SignedDuration>,
    /// Count only time inside the department's business hours.
    pub only_during_business_hours: bool,
}

/// One SLA target's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
}
