//! Automatic distribution: which agent a new ticket goes to, per the department's mode. Only online
//! members count; least-load respects each agent's capacity; round-robin continues after the last
//! agent chosen. Pure: the caller passes the candidates and their load.

use crate::AgentId;
use serde::{Deserialize, Serialize};

/// A department's distribution mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Nobody is assigned automatically.
    #[default]
    Manual,
    RoundRobin,
    /// The online member with the fewest open tickets, below their capacity.
    LeastLoad,
}

/// A department member as distribution sees them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub agent: AgentId,
    pub online: bool,
    /// Open tickets assigned now.
    pub load: u32,
    /// Most open tickets at once (0 = no limit).
    pub capacity: u32,
}

impl Candidate {
    fn has_room(&self) -> bool {
        self.online && (self.capacity == 0 || self.load < self.capacity)
    }
}

/// The agent a new ticket goes to, or `None` (manual mode, or nobody online with room: the ticket
/// waits unassigned). `last` is the agent round-robin chose last time. Candidates are considered in
/// the order given (the department's member order), so choices are deterministic.
pub fn choose(mode: Mode, candidates: &[Candidate], last: Option<AgentId>) -> Option<AgentId> {
    match mode {
        Mode::Manual => None,
        Mode::RoundRobin => {
            let start = last
                .and_then(|l| candidates.iter().position(|c| c.agent == l))
                .map_or(0, |i| i + 1);
            (0..candidates.len())
                .map(|k| &candidates[(start + k) % candidates.len()])
                .find(|c| c.has_room())
                .map(|c| c.agent)
        }
        Mode::LeastLoad => candidates
            .iter()
            .enumerate()
            .filter(|(_, c)| c.has_room())
            .min_by_key(|(i, c)| (c.load, *i))
            .map(|(_, c)| c.agent),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn agent(n: u128) -> AgentId {
        AgentId(Uuid::from_u128(n))
    }

    fn candidate(n: u128, online: bool, load: u32, capacity: u32) -> Candidate {
        Candidate {
            agent: agent(n),
            online,
            load,
            capacity,
        }
    }

    #[test]
    fn round_robin_continues_after_the_last_choice_and_skips_offline_agents() {
        let team = [
            candidate(1, true, 0, 0),
            candidate(2, false, 0, 0),
            candidate(3, true, 0, 0),
        ];
        assert_eq!(choose(Mode::RoundRobin, &team, None), Some(agent(1)));
        assert_eq!(
            choose(Mode::RoundRobin, &team, Some(agent(1))),
            Some(agent(3))
        );
        assert_eq!(
            choose(Mode::RoundRobin, &team, Some(agent(3))),
            Some(agent(1))
        );
    }

    #[test]
    fn least_load_picks_the_least_busy_with_room_and_respects_capacity() {
        let team = [
            candidate(1, true, 2, 2),
            candidate(2, true, 1, 5),
            candidate(3, true, 1, 0),
        ];
        // Agent 1 is full; 2 and 3 tie on load: the first in member order wins.
        assert_eq!(choose(Mode::LeastLoad, &team, None), Some(agent(2)));
    }

    #[test]
    fn nobody_with_room_leaves_the_ticket_unassigned() {
        let team = [candidate(1, true, 3, 3), candidate(2, false, 0, 0)];
        assert_eq!(choose(Mode::LeastLoad, &team, None), None);
        assert_eq!(choose(Mode::RoundRobin, &team, None), None);
        assert_eq!(choose(Mode::Manual, &team, None), None);
        assert_eq!(choose(Mode::RoundRobin, &[], None), None);
    }
}
