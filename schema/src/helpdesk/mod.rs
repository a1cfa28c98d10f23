//! The helpdesk's rules, without a runtime (issue 14): the ticket state machine, business hours and
//! SLA arithmetic, distribution choice and quick-reply rendering. Actors and the gateway call these;
//! they are tested here with fixed instants, never the clock.

pub mod change;
pub mod deletion;
pub mod distribution;
pub mod hours;
pub mod lifecycle;
pub mod quick_reply;
pub mod search;
pub mod sla;
pub mod survey;
pub mod ticket;
