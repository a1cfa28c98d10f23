//! Business hours: weekly opening windows in a time zone, plus holidays; whether a department is open
//! at an instant, when it next opens, and how much open time lies between two instants (what SLA
//! clocks "in business hours" count). The time zone database is bundled into the binary (jiff's
//! `tzdb-bundle-always`), so an answer never depends on the host's zoneinfo.
//!
//! Pure arithmetic, no clock: every function takes the instants it reasons about.

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

/// Longest stretch searched for an opening (a department closed for longer never "opens").
const SEARCH_DAYS: i64 = 400;

/// One opening window within a day, `start` inclusive, `end` exclusive (`end` after `start`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Window {
    #[schema(value_type = String, example = "08:00")]
    pub start: Time,
    #[schema(value_type = String, example = "18:00")]
    pub end: Time,
}

/// A department's opening hours.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BusinessHours {
    /// IANA name (`America/Sao_Paulo`).
    pub time_zone: String,
    /// Windows per weekday, Monday first (7 entries; an empty list is a closed day).
    pub weekly: Vec<Vec<Window>>,
    /// Whole days closed (in the department's time zone).
    pub holidays: Vec<Date>,
}

/// Why hours cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HoursError {
    #[error("unknown time zone {0:?}")]
    UnknownTimeZone(String),
    #[error("business hours need 7 weekdays (Monday first), got {0}")]
    Weekdays(usize),
    #[error("a window must end after it starts ({start} to {end})")]
    EmptyWindow { start: Time, end: Time },
    #[error("windows of one day overlap")]
    Overlap,
    #[error("date arithmetic out of range")]
    Range,
}

impl BusinessHours {
    /// Open around the clock, every day, in UTC.
    pub fn always() -> BusinessHours {
        let all_day = vec![Window {
            start: Time::midnight(),
            end: Time::MAX,
        }];
        BusinessHours {
            time_zone: "UTC".into(),
            weekly: vec![all_day; 7],
            holidays: Vec::new(),
        }
    }

    /// The time zone, after checking the whole definition.
    pub fn validate(&self) -> Result<TimeZone, HoursError> {
        let zone = bundled_tzdb()
            .get(&self.time_zone)
            .map_err(|_| HoursError::UnknownTimeZone(self.time_zone.clone()))?;
        if self.weekly.len() != 7 {
            return Err(HoursError::Weekdays(self.weekly.len()));
        }
        for day in &self.weekly {
            let mut sorted = day.clone();
            sorted.sort_by_key(|w| w.start);
            for window in &sorted {
                if window.end <= window.start {
                    return Err(HoursError::EmptyWindow {
                        start: window.start,
                        end: window.end,
                    });
                }
            }
            if sorted.windows(2).any(|pair| pair[1].start < pair[0].end) {
                return Err(HoursError::Overlap);
            }
        }
        Ok(zone)
    }

    /// The open intervals of one civil day, as instants (DST gaps and folds resolved the usual way:
    /// a time that does not exist moves forward, an ambiguous one takes its first occurrence).
    fn intervals_on(
        &self,
        zone: &TimeZone,
        date: Date,
    ) -> Result<Vec<(Timestamp, Timestamp)>, HoursError> {
        if self.holidays.contains(&date) {
            return Ok(Vec::new());
        }
        let index = weekday_index(date.weekday());
        let mut intervals = Vec::new();
        for window in &self.weekly[index] {
            let start = instant(zone, date, window.start)?;
            // `Time::MAX` closes at the next midnight.
            let end = if window.end == Time::MAX {
                let next = date.tomorrow().map_err(|_| HoursError::Range)?;
                instant(zone, next, Time::midnight())?
            } else {
                instant(zone, date, window.end)?
            };
            if end > start {
                intervals.push((start, end));
            }
        }
        intervals.sort();
        Ok(intervals)
    }

    /// Whether the department is open at `at`.
    pub fn is_open(&self, at: Timestamp) -> Result<bool, HoursError> {
        let zone = self.validate()?;
        let date = at.to_zoned(zone.clone()).date();
        // A window may start the day before in local terms and still cover `at` across DST; the
        // day itself and its neighbour are enough.
        for day in [date.yesterday().map_err(|_| HoursError::Range)?, date] {
            if self
                .intervals_on(&zone, day)?
                .iter()
                .any(|(s, e)| *s <= at && at < *e)
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The first instant at or after `at` when the department is open (`at` itself when open), or
    /// `None` if it stays closed for the search horizon (400 days).
    pub fn next_open(&self, at: Timestamp) -> Result<Option<Timestamp>, HoursError> {
        let zone = self.validate()?;
        let mut date = at
            .to_zoned(zone.clone())
            .date()
            .yesterday()
            .map_err(|_| HoursError::Range)?;
        for _ in 0..SEARCH_DAYS {
            for (start, end) in self.intervals_on(&zone, date)? {
                if end > at {
                    return Ok(Some(start.max(at)));
                }
            }
            date = date.tomorrow().map_err(|_| HoursError::Range)?;
        }
        Ok(None)
    }

    /// Open time between `from` and `to` (zero when `to` is not after `from`).
    pub fn open_between(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<SignedDuration, HoursError> {
        if to <= from {
            return Ok(SignedDuration::ZERO);
        }
        let zone = self.validate()?;
        let mut date = from
            .to_zoned(zone.clone())
            .date()
            .yesterday()
            .map_err(|_| HoursError::Range)?;
        let last = to.to_zoned(zone.clone()).date();
        let mut total = SignedDuration::ZERO;
        while date <= last {
            for (start, end) in self.intervals_on(&zone, date)? {
                let (s, e) = (start.max(from), end.min(to));
                if e > s {
                    total += e.duration_since(s);
                }
            }
            date = date.tomorrow().map_err(|_| HoursError::Range)?;
        }
        Ok(total)
    }

    /// The instant when `amount` of open time has passed since `from` (an SLA deadline counted in
    /// business hours), or `None` beyond the search horizon.
    pub fn after_open_time(
        &self,
        from: Timestamp,
        amount: SignedDuration,
    ) -> Result<Option<Timestamp>, HoursError> {
        let zone = self.validate()?;
        let mut left = amount.max(SignedDuration::ZERO);
        let mut date = from
            .to_zoned(zone.clone())
            .date()
            .yesterday()
            .map_err(|_| HoursError::Range)?;
        for _ in 0..SEARCH_DAYS {
            for (start, end) in self.intervals_on(&zone, date)? {
                let s = start.max(from);
                if end <= s {
                    continue;
                }
                let available = end.duration_since(s);
                if available >= left {
                    return s.checked_add(left).map(Some).map_err(|_| HoursError::Range);
                }
                left -= available;
            }
            date = date.tomorrow().map_err(|_| HoursError::Range)?;
        }
        Ok(None)
    }
}

/// The time zone database compiled into the binary (jiff's copy of IANA's), never the host's
/// `/usr/share/zoneinfo`: the same hours give the same answers on every node.
fn bundled_tzdb() -> &'static jiff::tz::TimeZoneDatabase {
    static DB: std::sync::OnceLock<jiff::tz::TimeZoneDatabase> = std::sync::OnceLock::new();
    DB.get_or_init(jiff::tz::TimeZoneDatabase::bundled)
}

fn weekday_index(weekday: Weekday) -> usize {
    usize::try_from(weekday.to_monday_zero_offset()).unwrap_or(0)
}

fn instant(zone: &TimeZone, date: Date, time: Time) -> Result<Timestamp, HoursError> {
    date.to_datetime(time)
        .to_zoned(zone.clone())
        .map(|z| z.timestamp())
        .map_err(|_| HoursError::Range)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::{date, time};

    /// Monday to Friday 08:00–18:00, Saturday 09:00–13:00, in São Paulo (UTC−3, no DST since 2019).
    fn sao_paulo() -> BusinessHours {
        let weekday = vec![Window {
            start: time(8, 0, 0, 0),
            end: time(18, 0, 0, 0),
        }];
        let saturday = vec![Window {
            start: time(9, 0, 0, 0),
            end: time(13, 0, 0, 0),
        }];
        let mut weekly = vec![weekday; 5];
        weekly.push(saturday);
        weekly.push(Vec::new());
        BusinessHours {
            time_zone: "America/Sao_Paulo".into(),
            weekly,
            holidays: vec![date(2026, 12, 25)],
        }
    }

    fn at(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    #[test]
    fn open_inside_a_window_and_closed_outside_in_local_time() {
        let hours = sao_paulo();
        // Tuesday 2026-12-01 10:00 in São Paulo is 13:00 UTC.
        assert!(hours.is_open(at("2026-12-01T13:00:00Z")).unwrap());
        // 18:00 local (21:00 UTC) is the window's end: closed.
        assert!(!hours.is_open(at("2026-12-01T21:00:00Z")).unwrap());
        // Sunday: closed all day.
        assert!(!hours.is_open(at("2026-12-06T15:00:00Z")).unwrap());
    }

    #[test]
    fn a_holiday_is_closed_and_the_next_opening_skips_it() {
        let hours = sao_paulo();
        // Friday 2026-12-25 (Christmas) at 10:00 local.
        assert!(!hours.is_open(at("2026-12-25T13:00:00Z")).unwrap());
        // Next opening: Saturday 26th 09:00 local = 12:00 UTC.
        assert_eq!(
            hours.next_open(at("2026-12-25T13:00:00Z")).unwrap(),
            Some(at("2026-12-26T12:00:00Z"))
        );
    }

    #[test]
    fn open_time_between_counts_only_windows() {
        let hours = sao_paulo();
        // Friday 17:00 local → Monday 09:00 local: 1 h Friday + 4 h Saturday + 1 h Monday.
        let open = hours
            .open_between(at("2026-12-04T20:00:00Z"), at("2026-12-07T12:00:00Z"))
            .unwrap();
        assert_eq!(open, SignedDuration::from_hours(6));
    }

    #[test]
    fn a_deadline_in_business_hours_waits_over_the_weekend() {
        let hours = sao_paulo();
        // 2 business hours from Saturday 12:00 local: 1 h Saturday, then Monday 08:00 + 1 h.
        let due = hours
            .after_open_time(at("2026-12-05T15:00:00Z"), SignedDuration::from_hours(2))
            .unwrap();
        assert_eq!(due, Some(at("2026-12-07T12:00:00Z")));
    }

    #[test]
    fn daylight_saving_shifts_the_utc_window_not_the_local_one() {
        // New York: 09:00–17:00 every day. Before the March 8 2026 change it is UTC−5, after UTC−4.
        let window = vec![Window {
            start: time(9, 0, 0, 0),
            end: time(17, 0, 0, 0),
        }];
        let hours = BusinessHours {
            time_zone: "America/New_York".into(),
            weekly: vec![window; 7],
            holidays: Vec::new(),
        };
        // 13:30 UTC is 08:30 EST before the change (closed) and 09:30 EDT after it (open).
        assert!(!hours.is_open(at("2026-03-07T13:30:00Z")).unwrap());
        assert!(hours.is_open(at("2026-03-09T13:30:00Z")).unwrap());
    }

    #[test]
    fn bad_definitions_are_refused_with_a_reason() {
        let mut hours = sao_paulo();
        hours.time_zone = "Mars/Olympus".into();
        assert!(matches!(
            hours.validate(),
            Err(HoursError::UnknownTimeZone(_))
        ));
        let mut hours = sao_paulo();
        hours.weekly.pop();
        assert!(matches!(hours.validate(), Err(HoursError::Weekdays(6))));
        let mut hours = sao_paulo();
        hours.weekly[0].push(Window {
            start: time(17, 0, 0, 0),
            end: time(19, 0, 0, 0),
        });
        assert!(matches!(hours.validate(), Err(HoursError::Overlap)));
    }

    #[test]
    fn always_open_is_open_at_any_instant() {
        let hours = BusinessHours::always();
        assert!(hours.is_open(at("2026-12-25T03:00:00Z")).unwrap());
        assert_eq!(
            hours
                .open_between(at("2026-12-25T00:00:00Z"), at("2026-12-26T00:00:00Z"))
                .unwrap(),
            SignedDuration::from_hours(24)
        );
    }
}
