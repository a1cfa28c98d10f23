//! Passivation's clock: one sweep for the whole node, every `idle_check_interval`, asks each live
//! conversation actor to check whether it sat idle for `idle_timeout` (it stops itself if so, and is
//! rebuilt from the store on its next message). One task and one timer for all conversations, where
//! an interval per actor would cost each of them a task and a timer entry for its whole life. The same
//! sweep drops department reads that are no longer fresh (`departments.rs`).

use super::Directory;
use crate::conversation::ConversationMsg;
use std::sync::Weak;
use std::time::Duration;

/// Runs until the directory is dropped.
pub(crate) async fn sweep(directory: Weak<Directory>, every: Duration) {
    let every = every.max(Duration::from_millis(10));
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(directory) = directory.upgrade() else {
            return;
        };
        directory.ask_idle_checks();
        directory.departments().drop_stale();
    }
}

impl Directory {
    /// Casts `IdleCheck` to every live conversation actor (a mailbox send each, never waited on).
    fn ask_idle_checks(&self) {
        for entry in self.conversations.iter() {
            if let Some(actor) = entry.value().get() {
                let _ = actor.cast(ConversationMsg::IdleCheck);
            }
        }
    }
}
