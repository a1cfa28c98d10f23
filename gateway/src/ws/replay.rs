//! Resume: which stored events an agent missed while disconnected (see `schema::ws` for the rule).
//!
//! Planning reads only the tenant's recently active conversations: for a conversation the client
//! knows, the number it missed is exact (`last_seq - position`), so the `max_replay` check costs no
//! event reads; conversations it does not know are read (usually few) and filtered by time. The plan
//! either refuses (`too_far_behind`, before anything is sent) or is streamed conversation by
//! conversation, page by page, so the first missed event leaves as soon as it is read.

use crate::AppState;
use jiff::{SignedDuration, Timestamp};
use schema::events::EventEnvelope;
use schema::records::Conversation;
use schema::store::StoreError;
use schema::visibility::Viewer;
use schema::ws::{RESUME_CLOCK_MARGIN_SECS, ResumeFrom};
use schema::{ConversationId, Seq, TenantId};
use std::collections::HashMap;

/// Conversations one resume looks at before giving up as `too_far_behind`.
const MAX_RESUME_CONVERSATIONS: usize = 2_000;
/// Events read per store call while replaying.
pub const REPLAY_PAGE: usize = 500;

/// The answer to a resume.
pub enum Plan {
    /// More than the limit: the client must reload instead of getting a partial replay.
    TooFarBehind,
    Replay {
        /// Missed events of conversations the client did not know, already read.
        unseen: Vec<EventEnvelope>,
        /// Conversations the client knows and is behind in: (id, its position, stored last seq).
        behind: Vec<(ConversationId, Seq, Seq)>,
        /// The replayed conversations as stored (which of their messages are deleted).
        conversations: HashMap<ConversationId, Conversation>,
    },
}

/// Decides what a resume replays, or that it cannot.
pub async fn plan(
    state: &AppState,
    tenant: TenantId,
    viewer: &Viewer,
    resume: &ResumeFrom,
    max_replay: usize,
) -> Result<Plan, StoreError> {
    let window_start = resume
        .since
        .checked_sub(SignedDuration::from_secs(RESUME_CLOCK_MARGIN_SECS))
        .unwrap_or(Timestamp::UNIX_EPOCH);
    let active = state
        .store
        .active_since(tenant, window_start, MAX_RESUME_CONVERSATIONS + 1)
        .await?;
    if active.len() > MAX_RESUME_CONVERSATIONS {
        return Ok(Plan::TooFarBehind);
    }
    let max_replay = max_replay as u64;
    let mut total = 0u64;
    let mut behind = Vec::new();
    let mut unknown = Vec::new();
    let mut conversations = HashMap::new();
    // Conversations the user may not see are not replayed (nor counted).
    for conversation in active.into_iter().filter(|c| viewer.sees_events_of(c)) {
        match resume.positions.get(&conversation.id) {
            Some(&position) if conversation.last_seq > position => {
                total += conversation.last_seq - position;
                behind.push((conversation.id, position, conversation.last_seq));
            }
            Some(_) => continue,
            None => unknown.push(conversation.clone()),
        }
        conversations.insert(conversation.id, conversation);
        if total > max_replay {
            return Ok(Plan::TooFarBehind);
        }
    }
    let mut unseen = Vec::new();
    for conversation in unknown {
        let mut after = 0;
        loop {
            let page = state
                .store
                .events(tenant, conversation.id, after, REPLAY_PAGE)
                .await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            let full = page.len() == REPLAY_PAGE;
            // A conversation the client never saw: only what happened inside the window.
            unseen.extend(page.into_iter().filter(|e| e.at >= window_start));
            if total + unseen.len() as u64 > max_replay {
                return Ok(Plan::TooFarBehind);
            }
            if !full || after >= conversation.last_seq {
                break;
            }
        }
    }
    Ok(Plan::Replay {
        unseen,
        behind,
        conversations,
    })
}
