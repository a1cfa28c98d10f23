//! Departments (teams): who works a queue of tickets, which connections feed it, when it is open, what
//! it answers out of hours, and what a customer's message does to a closed ticket. A ticket names its
//! department by key in `Conversation::team` (Chatwoot's `team_id`). Re-exported from `records`.

use crate::helpdesk::distribution::Mode;
use crate::helpdesk::hours::BusinessHours;
use crate::helpdesk::sla::SlaPolicy;
use crate::helpdesk::ticket::ReopenPolicy;
use crate::ids::{AgentId, ConnectionId, TenantId};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

/// Most departments one tenant keeps.
pub const MAX_DEPARTMENTS: usize = 200;
/// Most members of one department.
pub const MAX_MEMBERS: usize = 500;
/// Most connections feeding one department.
pub const MAX_CONNECTIONS: usize = 100;
/// Most holidays listed.
pub const MAX_HOLIDAYS: usize = 400;
/// Most opening windows per weekday.
pub const MAX_WINDOWS_PER_DAY: usize = 8;
/// Longest name, in characters.
pub const MAX_NAME_CHARS: usize = 128;
/// Longest out-of-hours message, in characters (WhatsApp takes 4,096).
pub const MAX_MESSAGE_CHARS: usize = 1024;

/// The out-of-hours reply when a department sets none: Brazilian Portuguese, the platform's first
/// market.
pub const DEFAULT_OUT_OF_HOURS_MESSAGE: &str = "Olá! No momento estamos fora do horário de atendimento. \
Recebemos sua mensagem e responderemos assim que retomarmos o atendimento.";

/// A department of a tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Department {
    pub tenant_id: TenantId,
    /// The key tickets carry as their `team` (`financeiro`): 1–64 letters, digits, `-`, `_`, `.`.
    pub key: String,
    pub name: String,
    /// Agents who work its queue.
    #[serde(default)]
    pub members: Vec<AgentId>,
    /// Connections whose new conversations enter this department.
    #[serde(default)]
    pub connections: Vec<ConnectionId>,
    /// Opening hours; `None`: always open.
    #[serde(default)]
    pub hours: Option<BusinessHours>,
    #[serde(default)]
    pub out_of_hours: OutOfHours,
    /// What a customer's message does to a resolved or cancelled ticket.
    #[serde(default)]
    pub reopen: ReopenPolicy,
    /// Response and resolution targets (applied by the SLA timers).
    #[serde(default)]
    pub sla: SlaPolicy,
    /// How new tickets find an agent.
    #[serde(default)]
    pub distribution: Mode,
    /// Most active tickets a member holds before distribution passes them over (0: no limit). A
    /// supervisor's manual assignment may go past it.
    #[serde(default)]
    pub agent_capacity: u32,
    /// A ticket distribution gave to an agent who has not replied within this many seconds goes to
    /// another; `None`: it stays.
    #[serde(default)]
    pub reassign_after_secs: Option<u64>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// The automatic reply to a customer who writes while the department is closed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct OutOfHours {
    pub enabled: bool,
    pub message: String,
    /// At most one reply per conversation within this many seconds.
    pub every_secs: u64,
}

impl Default for OutOfHours {
    fn default() -> Self {
        Self {
            enabled: true,
            message: DEFAULT_OUT_OF_HOURS_MESSAGE.into(),
            every_secs: 24 * 3600,
        }
    }
}

impl OutOfHours {
    pub fn every(&self) -> SignedDuration {
        SignedDuration::from_secs(i64::try_from(self.every_secs).unwrap_or(i64::MAX))
    }
}

impl Department {
    /// Whether the department is closed at `at` (a department without hours never is).
    pub fn closed_at(&self, at: Timestamp) -> bool {
        self.hours
            .as_ref()
            .is_some_and(|hours| !hours.is_open(at).unwrap_or(true))
    }

    /// Checks every bound and rule; the message says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        crate::helpdesk::change::team_key(&self.key).map_err(|e| e.to_string())?;
        let name_chars = self.name.trim().chars().count();
        if name_chars == 0 || name_chars > MAX_NAME_CHARS {
            return Err(format!("name must have 1 to {MAX_NAME_CHARS} characters"));
        }
        if self.members.len() > MAX_MEMBERS {
            return Err(format!("a department has at most {MAX_MEMBERS} members"));
        }
        if self.connections.len() > MAX_CONNECTIONS {
            return Err(format!(
                "a department is fed by at most {MAX_CONNECTIONS} connections"
            ));
        }
        if let Some(hours) = &self.hours {
            if hours.holidays.len() > MAX_HOLIDAYS {
                return Err(format!("at most {MAX_HOLIDAYS} holidays"));
            }
            if hours.weekly.iter().any(|d| d.len() > MAX_WINDOWS_PER_DAY) {
                return Err(format!(
                    "at most {MAX_WINDOWS_PER_DAY} opening windows per day"
                ));
            }
            hours.validate().map_err(|e| e.to_string())?;
        }
        let message_chars = self.out_of_hours.message.trim().chars().count();
        if self.out_of_hours.enabled && (message_chars == 0 || message_chars > MAX_MESSAGE_CHARS) {
            return Err(format!(
                "the out-of-hours message must have 1 to {MAX_MESSAGE_CHARS} characters"
            ));
        }
        if self.out_of_hours.every_secs < 60 || self.out_of_hours.every_secs > 30 * 24 * 3600 {
            return Err("out_of_hours.every_secs must be 60 s to 30 days".into());
        }
        if self.agent_capacity > 10_000 {
            return Err("agent_capacity is at most 10000".into());
        }
        if self
            .reassign_after_secs
            .is_some_and(|s| s == 0 || s > 7 * 24 * 3600)
        {
            return Err("reassign_after_secs is 1 second to 7 days".into());
        }
        let sla = &self.sla;
        let longest = SignedDuration::from_hours(24 * 365);
        for threshold in [sla.first_response, sla.next_response, sla.resolution]
            .into_iter()
            .flatten()
        {
            if threshold < SignedDuration::from_secs(1) || threshold > longest {
                return Err("an SLA threshold is 1 second to 365 days".into());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpdesk::hours::Window;
    use jiff::civil::time;

    fn department() -> Department {
        Department {
            tenant_id: TenantId::new(),
            key: "financeiro".into(),
            name: "Financeiro".into(),
            members: Vec::new(),
            connections: Vec::new(),
            hours: None,
            out_of_hours: OutOfHours::default(),
            reopen: ReopenPolicy::Reopen,
            sla: SlaPolicy::default(),
            distribution: Mode::Manual,
            agent_capacity: 0,
            reassign_after_secs: None,
            created_at: Timestamp::UNIX_EPOCH,
            updated_at: Timestamp::UNIX_EPOCH,
        }
    }

    #[test]
    fn a_department_without_hours_is_never_closed_and_one_with_closed_days_is() {
        let mut d = department();
        assert!(!d.closed_at(Timestamp::UNIX_EPOCH));
        d.hours = Some(BusinessHours {
            time_zone: "America/Sao_Paulo".into(),
            weekly: vec![Vec::new(); 7],
            holidays: Vec::new(),
        });
        assert!(d.closed_at(Timestamp::UNIX_EPOCH));
        assert!(d.validate().is_ok());
    }

    #[test]
    fn validation_names_what_is_wrong() {
        let mut d = department();
        d.key = "com espaço".into();
        assert!(d.validate().is_err());
        let mut d = department();
        d.out_of_hours.message = "  ".into();
        assert!(d.validate().unwrap_err().contains("out-of-hours"));
        let mut d = department();
        d.out_of_hours.every_secs = 1;
        assert!(d.validate().is_err());
        let mut d = department();
        let window = Window {
            start: time(9, 0, 0, 0),
            end: time(10, 0, 0, 0),
        };
        d.hours = Some(BusinessHours {
            time_zone: "Mars/Olympus".into(),
            weekly: vec![vec![window]; 7],
            holidays: Vec::new(),
        });
        assert!(d.validate().unwrap_err().contains("time zone"));
    }
}
