//! The directory in a cluster: which of this node's actors may run (a conversation's or a connection's
//! shard must be held here), the fence conversation commits carry, stopping the actors of shards that
//! moved away, and the session-side requests (hand a send over, reconnect, restart) that reach the
//! connection's owner wherever it is.

use super::{Directory, Entity, RouteError};
use crate::conversation::{ConversationError, ConversationMsg};
use crate::placement::{Forwarder, Owner, Placement};
use crate::session::SessionMsg;
use ractor::ActorRef;
use ractor::rpc::CallResult;
use schema::cluster::{Fence, ShardId};
use schema::command::{Command, CommandError};
use schema::records::ProviderError;
use schema::{ConnectionId, ConversationId, Seq, TenantId};
use std::sync::Arc;
use std::time::Duration;

/// What a cluster member's directory knows of the cluster.
pub(crate) struct ClusterLink {
    pub(crate) placement: Arc<dyn Placement>,
    pub(crate) forwarder: Arc<dyn Forwarder>,
}

impl Directory {
    /// Puts the node in cluster mode: from now on a conversation or session actor starts only on the
    /// owner of its shard (conversations with the lease's fence), and requests for entities owned
    /// elsewhere are forwarded. Set once, before any request.
    pub fn join_cluster(&self, placement: Arc<dyn Placement>, forwarder: Arc<dyn Forwarder>) {
        let _ = self.cluster.set(ClusterLink {
            placement,
            forwarder,
        });
    }

    pub(crate) fn cluster(&self) -> Option<&ClusterLink> {
        self.cluster.get()
    }

    pub fn placement(&self) -> Option<&Arc<dyn Placement>> {
        self.cluster.get().map(|c| &c.placement)
    }

    /// The fence a conversation's commits carry here: `Ok(None)` on a single node, `NotOwner` when this
    /// node does not serve the conversation's shard.
    pub(crate) fn fence_for(
        &self,
        conversation: ConversationId,
    ) -> Result<Option<Fence>, RouteError> {
        let Some(placement) = self.placement() else {
            return Ok(None);
        };
        let shard = ShardId::of(&conversation.0);
        match placement.owner(shard) {
            Owner::Local(fence) => Ok(Some(fence)),
            _ => Err(RouteError::NotOwner(shard)),
        }
    }

    /// `Ok` when this node may run the connection's session (always, on a single node).
    pub fn serves_connection(&self, connection: ConnectionId) -> Result<(), RouteError> {
        let Some(placement) = self.placement() else {
            return Ok(());
        };
        let shard = ShardId::of(&connection.0);
        match placement.owner(shard) {
            Owner::Local(_) => Ok(()),
            _ => Err(RouteError::NotOwner(shard)),
        }
    }

    /// Stops the conversation and session actors of shards this node no longer serves (each finishes
    /// the turn it is in), waiting at most `deadline`; the next request for them goes to the new owner.
    pub async fn evict_shards(&self, shards: &[ShardId], deadline: Duration) {
        let conversations: Vec<ActorRef<ConversationMsg>> = self
            .conversations
            .iter()
            .filter(|entry| shards.contains(&ShardId::of(&entry.key().1.0)))
            .filter_map(|entry| entry.value().get().cloned())
            .collect();
        let sessions: Vec<(TenantId, ConnectionId)> = self
            .sessions
            .iter()
            .filter(|entry| shards.contains(&ShardId::of(&entry.key().1.0)))
            .map(|entry| *entry.key())
            .collect();
        for (tenant, connection) in sessions {
            self.stop_local_session(tenant, connection);
        }
        if conversations.is_empty() {
            return;
        }
        tracing::info!(
            actors = conversations.len(),
            shards = shards.len(),
            "stopping actors of shards moved away"
        );
        let stops = conversations.iter().map(|actor| {
            actor.stop_and_wait(
                Some("its shard moved to another node".into()),
                Some(deadline),
            )
        });
        for (actor, stopped) in conversations
            .iter()
            .zip(futures::future::join_all(stops).await)
        {
            if stopped.is_err() {
                actor.kill();
            }
        }
    }

    /// Hands a stored reply to its connection's session: here when this node owns the connection,
    /// otherwise in the background to the owner (the reply is stored and in the outbox whatever
    /// happens, so it is never lost; the answer comes back as a `RecordAnswer` command). `false` only
    /// when the local session cannot start (the connection is paused or gone).
    pub(crate) async fn hand_to_session(
        self: &Arc<Self>,
        tenant: TenantId,
        connection: ConnectionId,
        send: SessionMsg,
    ) -> bool {
        let local = self.cluster().is_none_or(|c| {
            matches!(
                c.placement.owner(ShardId::of(&connection.0)),
                Owner::Local(_)
            )
        });
        if local {
            return self.hand_to_local_session(tenant, connection, send).await;
        }
        let SessionMsg::Send {
            conversation,
            seq,
            outbound,
        } = send
        else {
            return false;
        };
        let command = Command::Deliver {
            tenant,
            connection,
            conversation,
            seq,
            outbound,
        };
        let Ok(permit) = Arc::clone(&self.remote_deliveries).try_acquire_owned() else {
            // Stored and in the outbox: the sweep hands it over later.
            metrics::counter!("conversa_outbound_deferred_total").increment(1);
            return true;
        };
        let directory = Arc::clone(self);
        tokio::spawn(async move {
            directory.deliver_to_owner(command).await;
            drop(permit);
        });
        true
    }

    /// Retries a hand-over to the connection's owner while the shard has none or the owner cannot be
    /// reached (about 30 s); after that the reply waits in the outbox for the sweep.
    async fn deliver_to_owner(self: Arc<Self>, command: Command) {
        const TRIES: u32 = 20;
        let mut pause = Duration::from_millis(50);
        for _ in 0..TRIES {
            match crate::router::route(&self, command.clone(), std::time::Instant::now()).await {
                Ok(_) => return,
                Err(RouteError::NotOwner(_))
                | Err(RouteError::Remote(CommandError::ShardMoving(_)))
                | Err(RouteError::Remote(CommandError::NothingDone(_))) => {}
                Err(error) => {
                    tracing::warn!(%error, "reply not handed to its connection's owner; the outbox sweep retries it");
                    return;
                }
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
        metrics::counter!("conversa_outbound_deferred_total").increment(1);
        tracing::warn!(
            "no owner took the reply's connection; it waits in the outbox for the sweep"
        );
    }

    /// Casts a send to this node's session actor of the connection, spawning it if needed.
    pub(crate) async fn hand_to_local_session(
        self: &Arc<Self>,
        tenant: TenantId,
        connection: ConnectionId,
        send: SessionMsg,
    ) -> bool {
        let mut send = send;
        for _ in 0..2 {
            let session = match self.session(tenant, connection).await {
                Ok(session) => session,
                Err(error) => {
                    tracing::warn!(%connection, %error, "session actor unavailable");
                    return false;
                }
            };
            match session.cast(send) {
                Ok(()) => return true,
                Err(ractor::MessagingErr::SendErr(back)) => {
                    self.forget(Entity::Session(tenant, connection), session.get_id());
                    send = back;
                }
                Err(_) => return false,
            }
        }
        false
    }

    /// Records a provider's answer on this node's actor of the conversation (one attempt).
    pub(crate) async fn record_answer(
        self: &Arc<Self>,
        tenant: TenantId,
        conversation: ConversationId,
        seq: Seq,
        answer: Result<String, ProviderError>,
    ) -> Result<(), RouteError> {
        let timeout = self.services.config.call_timeout;
        let actor = self.conversation(tenant, conversation).await?;
        let recorded = actor
            .call(
                |reply| ConversationMsg::ProviderAnswered { seq, answer, reply },
                Some(timeout),
            )
            .await;
        match recorded {
            Ok(CallResult::Success(result)) => result.map_err(RouteError::from),
            Ok(CallResult::Timeout) => Err(RouteError::Timeout(timeout)),
            Ok(CallResult::SenderError) | Err(_) => {
                self.forget_conversation(tenant, conversation, actor.get_id());
                Err(RouteError::Conversation(ConversationError::Store(
                    "the conversation's actor stopped before recording the answer".into(),
                )))
            }
        }
    }

    /// Starts (or keeps) this node's session actor's reconnect loop for a dropped WhatsApp Web session.
    /// A paused or removed connection has no session actor, so nothing happens for it.
    pub(crate) async fn reconnect_local_session(
        self: &Arc<Self>,
        tenant: TenantId,
        id: ConnectionId,
    ) {
        match self.session(tenant, id).await {
            Ok(session) => {
                let _ = session.cast(SessionMsg::ReconnectRequested);
            }
            Err(error) => tracing::info!(connection = %id, %error, "no session to reconnect"),
        }
    }

    /// Sends a read receipt through this node's session of the connection (its rate limit applies).
    pub(crate) async fn mark_read_local(
        self: &Arc<Self>,
        tenant: TenantId,
        connection: ConnectionId,
        to: String,
        provider_message_id: String,
    ) -> Result<(), RouteError> {
        let timeout = self.services.config.call_timeout;
        let session = self.session(tenant, connection).await?;
        let answer = session
            .call(
                |reply| SessionMsg::MarkRead {
                    to,
                    provider_message_id,
                    reply,
                },
                Some(timeout),
            )
            .await;
        match answer {
            Ok(CallResult::Success(result)) => result.map_err(RouteError::Provider),
            Ok(CallResult::Timeout) => Err(RouteError::Timeout(timeout)),
            Ok(CallResult::SenderError) | Err(_) => Err(RouteError::Spawn(
                "the connection's session stopped before answering".into(),
            )),
        }
    }

    /// Stops this node's session actor of a connection if it runs, so the next send loads the
    /// connection afresh (after it was paused, edited or removed).
    pub(crate) fn stop_local_session(&self, tenant: TenantId, id: ConnectionId) {
        if let Some((_, slot)) = self.sessions.remove(&(tenant, id))
            && let Some(actor) = slot.get()
        {
            actor.stop(Some("connection changed".into()));
        }
    }
}
