//! The node's open-file budget. Every agent socket and webhook connection holds a descriptor, so the
//! process's `RLIMIT_NOFILE` bounds how many agents one node can serve. At start the node raises its
//! soft limit to the hard one (as Go's runtime and nginx's `worker_rlimit_nofile` do: the soft limit
//! of 1,024 most shells hand out is a leftover of `select(2)`, which tokio never uses), then keeps
//! [`RESERVED`] descriptors for what is not a client (store files, provider HTTP, Redis, PostgreSQL,
//! cluster peers) and lets the listener take the rest. The hard limit is the operator's: systemd's
//! `LimitNOFILE`, the container runtime's, or `ulimit -Hn` (see `deploy/README.md`).

/// Descriptors kept back from the listener (a quarter of a limit smaller than four times this): the
/// embedded store keeps up to 900 table files open, the cluster listener takes up to
/// [`CLUSTER_CONNECTIONS`], and the rest is outbound HTTP to providers, Redis and PostgreSQL.
pub const RESERVED: u64 = 4_096;

/// Connections the cluster listener (forwarded commands from peer nodes) holds at most, out of
/// [`RESERVED`].
pub const CLUSTER_CONNECTIONS: usize = 1_024;

/// The open-file limits before and after the raise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenFiles {
    pub soft_before: u64,
    pub soft: u64,
    pub hard: u64,
}

/// Raises the soft open-file limit to the hard limit. `None` where the platform has no such limit or
/// the limit cannot be read; the node then keeps its configured connection cap.
pub fn raise() -> Option<OpenFiles> {
    #[cfg(unix)]
    {
        let (soft_before, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).ok()?;
        let soft = rlimit::increase_nofile_limit(hard).unwrap_or(soft_before);
        Some(OpenFiles {
            soft_before,
            soft,
            hard,
        })
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// How many connections the listener may hold open: the configured number, or everything the soft
/// limit leaves after [`RESERVED`] (or a quarter of a small limit); a configured number above that is lowered (accepting past the
/// limit would fail `accept(2)` with EMFILE and starve the store of descriptors). The second value is
/// set when the configured number was lowered.
pub fn connection_budget(limits: Option<OpenFiles>, configured: Option<usize>) -> (usize, bool) {
    let room = limits.map(|l| {
        let reserved = RESERVED.min(l.soft / 4);
        usize::try_from(l.soft - reserved).unwrap_or(usize::MAX)
    });
    match (configured, room) {
        (Some(wanted), Some(room)) if wanted > room => (room.max(1), true),
        (Some(wanted), _) => (wanted.max(1), false),
        (None, Some(room)) => (room.max(1), false),
        (None, None) => (DEFAULT_WITHOUT_LIMIT, false),
    }
}

/// The cap where the open-file limit cannot be read.
pub const DEFAULT_WITHOUT_LIMIT: usize = 10_000;

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(soft: u64) -> Option<OpenFiles> {
        Some(OpenFiles {
            soft_before: 1_024,
            soft,
            hard: soft,
        })
    }

    #[test]
    fn the_listener_gets_what_the_limit_leaves_after_the_reserve() {
        assert_eq!(connection_budget(limits(20_000), None), (15_904, false));
        assert_eq!(
            connection_budget(limits(1_048_576), None),
            (1_044_480, false)
        );
    }

    #[test]
    fn a_configured_cap_above_the_limit_is_lowered_and_said() {
        assert_eq!(
            connection_budget(limits(20_000), Some(50_000)),
            (15_904, true)
        );
        assert_eq!(
            connection_budget(limits(20_000), Some(5_000)),
            (5_000, false)
        );
    }

    #[test]
    fn a_small_limit_keeps_a_quarter_back() {
        assert_eq!(connection_budget(limits(1_024), None), (768, false));
        assert_eq!(connection_budget(limits(8_192), None), (6_144, false));
        assert_eq!(connection_budget(limits(0), None), (1, false));
    }

    #[test]
    fn without_a_readable_limit_the_configured_cap_or_a_default_applies() {
        assert_eq!(connection_budget(None, Some(7)), (7, false));
        assert_eq!(
            connection_budget(None, None),
            (DEFAULT_WITHOUT_LIMIT, false)
        );
    }

    #[test]
    fn raising_never_lowers_the_soft_limit() {
        if let Some(l) = raise() {
            assert!(l.soft >= l.soft_before && l.soft <= l.hard, "{l:?}");
        }
    }
}
