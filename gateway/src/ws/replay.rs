//! Resume: which stored events an agent missed while disconnected (see `schema::ws` for the rule).

use crate::AppState;
use jiff::{SignedDuration, Timestamp};
use schema::TenantId;
use schema::events::EventEnvelope;
use schema::store::StoreError;
use schema::ws::{RESUME_CLOCK_MARGIN_SECS, ResumeFrom};

/// Conversations one resume looks at before giving up as `too_far_behind`.
const MAX_RESUME_CONVERSATIONS: usize = 2_000;

/// The answer to a resume.
pub enum Replay {
    /// Exactly the missed events, in seq order per conversation.
    Events(Vec<EventEnvelope>),
    /// More than the limit: the client must reload instead of getting a partial replay.
    TooFarBehind,
}

/// Collects every event the client has not seen, or says it is too far behind.
pub async fn missed_events(
    state: &AppState,
    tenant: TenantId,
    resume: &ResumeFrom,
    max_replay: usize,
) -> Result<Replay, StoreError> {
    let window_start = resume
        .since
        .checked_sub(SignedDuration::from_secs(RESUME_CLOCK_MARGIN_SECS))
        .unwrap_or(Timestamp::UNIX_EPOCH);
    let active = state
        .store
        .active_since(tenant, window_start, MAX_RESUME_CONVERSATIONS + 1)
        .await?;
    if active.len() > MAX_RESUME_CONVERSATIONS {
        return Ok(Replay::TooFarBehind);
    }
    let mut missed = Vec::new();
    for conversation in active {
        let known = resume.positions.get(&conversation.id).copied();
        let after = known.unwrap_or(0);
        if conversation.last_seq <= after {
            continue;
        }
        let pending = (conversation.last_seq - after) as usize;
        if known.is_some() && missed.len() + pending > max_replay {
            return Ok(Replay::TooFarBehind);
        }
        let mut cursor = after;
        loop {
            let page = state
                .store
                .events(tenant, conversation.id, cursor, 500)
                .await?;
            let Some(last) = page.last() else { break };
            cursor = last.seq;
            let full = page.len() == 500;
            // A conversation the client never saw: only what happened inside the window.
            missed.extend(
                page.into_iter()
                    .filter(|e| known.is_some() || e.at >= window_start),
            );
            if missed.len() > max_replay {
                return Ok(Replay::TooFarBehind);
            }
            if !full || cursor >= conversation.last_seq {
                break;
            }
        }
    }
    Ok(Replay::Events(missed))
}
