//! How a conversation turn becomes durable and visible: events stamped at commit, one atomic write, an
//! ambiguous outcome settled by re-reading and retrying the identical commit until the turn deadline,
//! publication only after durability, and an unsettled turn left for the next actor to publish. Also
//! how the actor answers its caller and decides to restart from the store.

use super::{ConversationError, ConversationState, store_error};
use crate::directory::Directory;
use crate::turn::Turn;
use jiff::Timestamp;
use ractor::{ActorProcessingErr, RpcReplyPort};
use schema::bus::Published;
use schema::contact::{Channel, ContactAddress, ContactRecord};
use schema::events::ConversationEvent;
use schema::records::Conversation;
use schema::store::{ConversationCommit, Store, StoreError};
use schema::{ConversationId, TenantId};
use std::sync::Arc;
use std::time::Instant;

impl ConversationState {
    /// Commits a turn: its events are stamped now, written at once, and published only once durable.
    /// A failure that may have written the turn anyway (a timeout, a lost answer) is settled by
    /// re-reading and retrying the identical commit until the turn deadline; only then is the outcome
    /// reported unknown (and left for the next actor to publish).
    pub(super) async fn commit(
        &mut self,
        mut turn: Turn,
        request_id: Option<Arc<str>>,
    ) -> Result<(), ConversationError> {
        let started = Instant::now();
        if turn.previous.is_none() {
            // A new conversation: its customer has a contact before anything of it is stored.
            self.ensure_contact(&turn.conversation).await?;
        }
        turn.stamp(Timestamp::now());
        let commit = ConversationCommit {
            conversation: turn.conversation.clone(),
            previous: turn.previous,
            events: turn.events.clone(),
            messages: turn.messages,
            message_keys: turn.keys,
            search_terms: turn.search_terms.into_iter().collect(),
            fence: self.fence,
            write_by: self
                .fence
                .and_then(|f| self.directory.placement()?.serving_until(f.shard)),
        };
        let store = Arc::clone(&self.directory.services().store);
        let deadline = self.turn_deadline;
        let first = tokio::time::timeout_at(deadline, store.commit(commit.clone())).await;
        match first {
            Ok(Ok(())) => {}
            Ok(Err(error @ (StoreError::SeqConflict { .. } | StoreError::Fenced(_)))) => {
                // Refused before anything was written: another writer, a stale cache, or a shard
                // that moved to another node.
                if matches!(error, StoreError::Fenced(_)) {
                    metrics::counter!("conversa_cluster_fencing_refusals_total").increment(1);
                }
                return Err(store_error(error));
            }
            Ok(Err(error)) => settle(store.as_ref(), &commit, deadline, error.to_string()).await?,
            Err(_) => settle(store.as_ref(), &commit, deadline, "commit timed out".into()).await?,
        }
        metrics::histogram!("conversa_store_operation_seconds", "op" => "commit")
            .record(started.elapsed().as_secs_f64());
        let durable_at = Instant::now();
        let messages = turn
            .events
            .iter()
            .filter(|e| matches!(e.event, ConversationEvent::MessageCreated { .. }))
            .count() as u64;
        self.directory.services().usage.record(
            self.tenant,
            Timestamp::now(),
            commit.previous.is_none(),
            messages,
        );
        self.conversation = Some(turn.conversation);
        let bus = &self.directory.services().bus;
        for envelope in turn.events {
            bus.publish(Published::new(envelope, durable_at, request_id.clone()));
        }
        Ok(())
    }

    /// Creates the contact of a new conversation's customer unless their address has one (a read when
    /// it has; idempotent, so a retried first turn creates nothing twice).
    async fn ensure_contact(&self, conversation: &Conversation) -> Result<(), ConversationError> {
        let store = self.store();
        let Some(connection) = store
            .connection(conversation.connection_id)
            .await
            .map_err(store_error)?
        else {
            // Removed while its webhook was in flight: the message is still stored; only the
            // channel of the address is unknown, so no contact is made for it.
            tracing::warn!(connection = %conversation.connection_id, "no contact for a conversation of a removed connection");
            return Ok(());
        };
        let address = ContactAddress::new(
            Channel::of(connection.provider),
            conversation.contact.address.clone(),
        );
        let contact = ContactRecord::for_address(
            conversation.tenant_id,
            address,
            conversation.contact.name.clone(),
            Timestamp::now(),
        );
        store.ensure_contact(&contact).await.map_err(store_error)
    }

    /// Answers the caller, then fails the actor if the store failed: its cached state may no longer
    /// match what is stored, so the next message rebuilds it from the store.
    pub(super) fn answer<T: Send + 'static>(
        &self,
        reply: RpcReplyPort<Result<T, ConversationError>>,
        result: Result<T, ConversationError>,
    ) -> Result<(), ActorProcessingErr> {
        let error = result.as_ref().err().cloned();
        let _ = reply.send(result);
        match error {
            Some(error) => self.answer_nobody(&error),
            None => Ok(()),
        }
    }

    /// Fails the actor after a store failure (see `answer`); an unsettled commit is first handed to the
    /// directory so the next actor publishes whatever of it was stored.
    pub(super) fn answer_nobody(
        &self,
        error: &ConversationError,
    ) -> Result<(), ActorProcessingErr> {
        match error {
            ConversationError::Unsettled(_) => {
                let published = self.conversation.as_ref().map_or(0, |c| c.last_seq);
                self.directory
                    .turn_unsettled(self.tenant, self.id, published);
                Err("commit outcome unknown; restarting from the store".into())
            }
            ConversationError::Store(_) => {
                Err("store commit failed; restarting from the store".into())
            }
            _ => Ok(()),
        }
    }
}

/// Learns whether an ambiguous commit was written, retrying the identical commit (same ids, seqs and
/// stamps, so writing it twice is writing it once) until it is known or `deadline` passes.
async fn settle(
    store: &dyn Store,
    commit: &ConversationCommit,
    deadline: tokio::time::Instant,
    first_error: String,
) -> Result<(), ConversationError> {
    const FIRST_PAUSE: std::time::Duration = std::time::Duration::from_millis(20);
    const LONGEST_PAUSE: std::time::Duration = std::time::Duration::from_secs(2);
    metrics::counter!("conversa_commits_unsettled_total").increment(1);
    tracing::warn!(conversation = %commit.conversation.id, error = %first_error, "commit outcome unknown; settling it");
    let tenant = commit.conversation.tenant_id;
    let id = commit.conversation.id;
    let mut pause = FIRST_PAUSE;
    loop {
        if tokio::time::Instant::now() + pause >= deadline {
            return Err(ConversationError::Unsettled(first_error));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(LONGEST_PAUSE);
        if let Some(last) = commit.events.last() {
            let at_seq =
                tokio::time::timeout_at(deadline, store.events(tenant, id, last.seq - 1, 1));
            match at_seq.await {
                Ok(Ok(found)) => match found.first() {
                    // Ours: the same seq with the same commit stamp (nanoseconds). Compared on
                    // identity, not whole bodies, which a float's round trip could make differ.
                    Some(stored) if stored.seq == last.seq && stored.at == last.at => {
                        return Ok(());
                    }
                    // Another event holds our seq: our commit was not written and cannot be.
                    Some(_) => {
                        return Err(ConversationError::Store(format!(
                            "seq {} of conversation {id} holds another turn's event",
                            last.seq
                        )));
                    }
                    None => {}
                },
                Ok(Err(_)) | Err(_) => continue,
            }
        }
        match tokio::time::timeout_at(deadline, store.commit(commit.clone())).await {
            Ok(Ok(())) => return Ok(()),
            // The shard moved on: this node may not write again. Whether the earlier, ambiguous attempt
            // landed is told by the event at its seq; when it is not there yet it may still land (a
            // CQL batch is replayed from its batchlog), so the outcome is unknown, never "nothing".
            Ok(Err(StoreError::Fenced(_))) => {
                metrics::counter!("conversa_cluster_fencing_refusals_total").increment(1);
                let last = commit.events.last().map(|e| (e.seq, e.at));
                let found = store
                    .events(tenant, id, last.map_or(0, |l| l.0 - 1), 1)
                    .await;
                return match (found, last) {
                    (Ok(found), Some((seq, at)))
                        if found.first().is_some_and(|e| e.seq == seq && e.at == at) =>
                    {
                        Ok(())
                    }
                    _ => Err(ConversationError::Unsettled(first_error)),
                };
            }
            Ok(Err(_)) | Err(_) => {}
        }
    }
}

/// After an actor stopped with a turn unsettled: publishes the events the store holds past what was
/// published then (at most one turn's worth), so a committed turn never stays unpublished.
pub(super) async fn publish_unsettled(
    directory: &Directory,
    tenant: TenantId,
    id: ConversationId,
    stored: Option<&Conversation>,
) -> Result<(), StoreError> {
    let Some(published) = directory.unsettled_since(tenant, id) else {
        return Ok(());
    };
    let last_seq = stored.map_or(0, |c| c.last_seq);
    let store = &directory.services().store;
    let bus = &directory.services().bus;
    if last_seq <= published {
        // Nothing of the turn is stored (yet): its write may still land. Keep the mark; the next actor
        // (after this one stops, or after a seq conflict shows the write landed) publishes it.
        return Ok(());
    }
    let mut after = published;
    while after < last_seq {
        let page = store.events(tenant, id, after, 500).await?;
        let Some(tail) = page.last() else { break };
        after = tail.seq;
        let now = Instant::now();
        for envelope in page.into_iter().filter(|e| e.seq <= last_seq) {
            bus.publish(Published::new(envelope, now, None));
        }
    }
    directory.settled(tenant, id, published);
    Ok(())
}
