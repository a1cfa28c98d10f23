//! One timer per agent socket for what must happen on a period: a WebSocket ping every
//! `ping_interval` (so proxies and NATs never see the socket idle, and a vanished client is noticed),
//! closing the socket after two intervals without a frame from the client (a pong counts), and the
//! token check every `credential_check`. The timer ticks at the shorter of the two periods and the
//! rest is counted in ticks, so a socket costs one timer entry, not three.

use std::time::Duration;
use tokio::time::{Interval, MissedTickBehavior};

/// What a tick asks the socket to do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Due {
    pub(super) ping: bool,
    pub(super) credential_check: bool,
    /// Two ping intervals passed with nothing from the client.
    pub(super) silent: bool,
}

pub(super) struct Heartbeat {
    interval: Interval,
    ping_every: u64,
    check_every: u64,
    ticks: u64,
    /// The tick count when the client last sent anything.
    heard_at: u64,
}

impl Heartbeat {
    pub(super) fn new(ping_interval: Duration, credential_check: Duration) -> Self {
        let period = ping_interval
            .min(credential_check)
            .max(Duration::from_millis(10));
        let ticks_of = |d: Duration| (d.as_millis() / period.as_millis()).max(1) as u64;
        let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Self {
            interval,
            ping_every: ticks_of(ping_interval),
            check_every: ticks_of(credential_check),
            ticks: 0,
            heard_at: 0,
        }
    }

    /// Waits for the next tick and says what is due at it.
    pub(super) async fn tick(&mut self) -> Due {
        self.interval.tick().await;
        self.ticks += 1;
        Due {
            ping: self.ticks.is_multiple_of(self.ping_every),
            credential_check: self.ticks.is_multiple_of(self.check_every),
            silent: self.ticks - self.heard_at > 2 * self.ping_every,
        }
    }

    /// Notes that the client sent something (any frame, a pong included), passing `frame` through.
    pub(super) fn heard<T>(&mut self, frame: T) -> T {
        self.heard_at = self.ticks;
        frame
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PING: Duration = Duration::from_secs(30);
    const CHECK: Duration = Duration::from_secs(60);

    #[tokio::test(start_paused = true)]
    async fn pings_every_interval_and_checks_the_token_on_its_own_period() {
        let mut heartbeat = Heartbeat::new(PING, CHECK);
        let mut seen = Vec::new();
        for _ in 0..4 {
            let due = heartbeat.tick().await;
            heartbeat.heard(());
            seen.push((due.ping, due.credential_check, due.silent));
        }
        assert_eq!(
            seen,
            [
                (true, false, false),
                (true, true, false),
                (true, false, false),
                (true, true, false)
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_silent_for_two_ping_intervals_is_declared_gone() {
        let mut heartbeat = Heartbeat::new(PING, CHECK);
        let first = heartbeat.tick().await;
        let second = heartbeat.tick().await;
        assert!(
            !first.silent && !second.silent,
            "two intervals is the grace"
        );
        assert!(heartbeat.tick().await.silent);
    }

    #[tokio::test(start_paused = true)]
    async fn any_frame_from_the_client_restarts_the_silence_count() {
        let mut heartbeat = Heartbeat::new(PING, CHECK);
        heartbeat.tick().await;
        heartbeat.tick().await;
        heartbeat.heard(());
        assert!(!heartbeat.tick().await.silent);
        assert!(!heartbeat.tick().await.silent);
        assert!(heartbeat.tick().await.silent);
    }

    #[tokio::test(start_paused = true)]
    async fn a_token_check_shorter_than_the_ping_sets_the_tick() {
        let mut heartbeat = Heartbeat::new(PING, Duration::from_secs(1));
        let started = tokio::time::Instant::now();
        let due = heartbeat.tick().await;
        assert_eq!(started.elapsed(), Duration::from_secs(1));
        assert!(due.credential_check && !due.ping);
        let mut last = due;
        for _ in 1..30 {
            last = heartbeat.tick().await;
            heartbeat.heard(());
        }
        assert_eq!(started.elapsed(), PING);
        assert!(last.ping && last.credential_check && !last.silent);
    }
}
