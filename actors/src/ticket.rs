//! The ticket every request to a conversation actor carries: the caller's deadline and one of the
//! node's request permits.
//!
//! ractor mailboxes are unbounded, so the bound is ours: [`Directory`](crate::Directory) hands out at
//! most `max_actor_requests` permits, and a permit is released only when every message carrying it has
//! been dropped (handled, skipped or lost with a stopped actor) — not when its caller stops waiting. A
//! request whose caller has given up is skipped when it reaches the front of the mailbox: a webhook
//! already answered 503 (the provider retries) and an agent already told "outcome unknown" is not
//! surprised by a reply sent long after.

use std::sync::Arc;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

/// Deadline and permit of one request (shared by its retries on fresh actors).
#[derive(Clone, Debug)]
pub struct Ticket {
    deadline: Instant,
    _permit: Option<Arc<OwnedSemaphorePermit>>,
}

impl Ticket {
    pub(crate) fn new(deadline: Instant, permit: OwnedSemaphorePermit) -> Self {
        Self {
            deadline,
            _permit: Some(Arc::new(permit)),
        }
    }

    /// A ticket that holds no permit (tests, internal requests).
    pub fn unbounded(deadline: Instant) -> Self {
        Self {
            deadline,
            _permit: None,
        }
    }

    /// Whether the caller has stopped waiting.
    pub fn expired(&self) -> bool {
        Instant::now() >= self.deadline
    }
}
