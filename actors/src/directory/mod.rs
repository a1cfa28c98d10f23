//! The one lookup from entity key to running actor, and the request helpers built on it.
//!
//! Gateway handlers call `Directory::ingest` / `send`; actors call `Directory::conversation` /
//! `session` to reach each other. A missing actor is spawned under its tenant supervisor; concurrent
//! lookups of the same key wait on one spawn (a `OnceCell` per key), so a key never gets two actors.
//! Tenant supervisors remove entries when their children exit (see `tenant_supervisor.rs`).
//!
//! **Architecture Invariant:** entries are keyed by (tenant, entity): a request carrying tenant A can
//! never reach an actor of tenant B, even with B's conversation id.

pub(crate) mod departments;
mod helpdesk;
pub(crate) mod idle;

pub(crate) use helpdesk::Reservation;
mod outbox;
mod placement;
mod timers;

use crate::conversation::{
    ConversationActor, ConversationArgs, ConversationError, ConversationMsg,
};
use crate::node_supervisor::NodeMsg;
use crate::session::{SessionActor, SessionArgs, SessionMsg};
use crate::tenant_supervisor::{TenantArgs, TenantSupervisor};
use crate::ticket::Ticket;
use dashmap::DashMap;
use ractor::rpc::CallResult;
use ractor::{Actor, ActorCell, ActorId, ActorRef};
use schema::Seq;
use schema::bus::EventBus;
use schema::channel::ChannelClient;
use schema::cluster::ShardId;
use schema::command::CommandError;
use schema::inbound::InboundEvent;
use schema::records::{Message, MessageContent};
use schema::store::{Store, StoreError};
use schema::{AgentId, ConnectionId, ConversationId, TenantId};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{OnceCell, Semaphore};

/// Tunables of the actor system; defaults suit one node.
#[derive(Clone, Debug)]
pub struct ActorConfig {
    /// A conversation actor with no message for this long stops; its state stays in the store.
    pub idle_timeout: Duration,
    /// How often an actor checks whether it is idle.
    pub idle_check_interval: Duration,
    /// Longest a caller waits for an actor's answer (includes the durable commit). A turn still
    /// running then may complete: the caller answers "outcome unknown", never "nothing was done".
    pub call_timeout: Duration,
    /// Longest one turn may take from its start to its events' publication, retries of an ambiguous
    /// commit included. Kept well under the resume clock margin (`schema::ws::RESUME_CLOCK_MARGIN_SECS`)
    /// so an event stamped at commit is published before a resume window can pass it.
    pub turn_deadline: Duration,
    /// Requests to conversation actors queued or running on the node at once; more are refused with
    /// nothing done (webhooks answer 503 and the provider retries).
    pub max_actor_requests: usize,
    /// Provider sends queued or in flight per connection; a reply over the bound stays `pending` in the
    /// outbox and the sweep hands it over later.
    pub max_queued_sends: usize,
    /// Conversation actors alive at once on the node (each costs memory until it passivates); a request
    /// for yet another conversation is refused with nothing done while the node is at the bound.
    pub max_live_conversations: usize,
    /// How often one request is retried on a fresh actor after its actor died under it.
    pub max_delivery_attempts: u32,
    /// Provider calls in flight per connection.
    pub session_concurrency: usize,
    /// Sends per second per connection of the Meta providers (WhatsApp Cloud API: 80 per number by
    /// default, Meta's documented throughput).
    pub outbound_rate_per_second: u32,
    /// Sends per second per WhatsApp Web session (Evolution, Z-API). Neither documents a limit, but
    /// WhatsApp bans numbers that send like machines, and Z-API itself paces its queue 1–3 s apart: one a
    /// second by default.
    pub session_rate_per_second: u32,
    /// Attempts per outbound message, the first included; only transient failures are retried.
    pub outbound_max_attempts: u32,
    /// First and longest pause between attempts (exponential, with jitter).
    pub outbound_retry_min: Duration,
    pub outbound_retry_max: Duration,
    /// First and longest pause between attempts to bring a dropped WhatsApp Web session back
    /// (Evolution, Z-API): exponential, with jitter, for as long as the session stays down.
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
}

impl Default for ActorConfig {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(300),
            idle_check_interval: Duration::from_secs(30),
            call_timeout: Duration::from_secs(10),
            turn_deadline: Duration::from_secs(20),
            max_actor_requests: 8192,
            max_queued_sends: 1000,
            max_live_conversations: 100_000,
            max_delivery_attempts: 3,
            session_concurrency: 16,
            outbound_rate_per_second: 80,
            session_rate_per_second: 1,
            outbound_max_attempts: 5,
            outbound_retry_min: Duration::from_millis(500),
            outbound_retry_max: Duration::from_secs(30),
            reconnect_min: Duration::from_secs(5),
            reconnect_max: Duration::from_secs(300),
        }
    }
}

/// The ports the actors work through.
#[derive(Clone)]
pub struct Services {
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn EventBus>,
    pub channel: Arc<dyn ChannelClient>,
    pub config: ActorConfig,
    /// Counts what this node's conversations store (plan limits).
    pub usage: Arc<crate::usage::UsageMeter>,
}

/// Why a request could not be delivered or answered. [`RouteError::outcome_known`] says whether the
/// caller may tell its client "nothing was done".
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error(transparent)]
    Conversation(#[from] ConversationError),
    #[error("actor could not be started: {0}")]
    Spawn(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("the request stopped its actor {0} times and was refused")]
    Poisoned(u32),
    #[error("too many requests in flight on this node")]
    Overloaded,
    #[error("the node is shutting down")]
    ShuttingDown,
    /// The request reached an actor that stopped under it, and could not be retried: it may have
    /// been applied.
    #[error("the request's actor stopped and it could not be retried: {0}")]
    Interrupted(String),
    /// A provider call that stores nothing here (a read receipt) failed.
    #[error("the provider refused or failed: {0}")]
    Provider(String),
    /// In a cluster: this node does not hold the shard's lease (it moved, or is moving).
    #[error("shard {0} is not served by this node")]
    NotOwner(ShardId),
    /// In a cluster: the command was forwarded to its owner, which answered this (or could not be
    /// reached: then `NothingDone` when the request surely never arrived, `OutcomeUnknown` otherwise).
    #[error("owner node: {0}")]
    Remote(CommandError),
}

impl RouteError {
    /// `true` when the request surely changed nothing; `false` when it may have been (or may still be)
    /// applied: a timed-out call whose turn can still complete, a commit whose outcome the store did not
    /// tell, a request that stopped its actor after it may have committed.
    pub fn outcome_known(&self) -> bool {
        match self {
            RouteError::Timeout(_) | RouteError::Poisoned(_) | RouteError::Interrupted(_) => false,
            RouteError::Conversation(error) => error.outcome_known(),
            RouteError::Spawn(_)
            | RouteError::Overloaded
            | RouteError::ShuttingDown
            | RouteError::NotOwner(_)
            | RouteError::Provider(_) => true,
            RouteError::Remote(error) => error.outcome_known(),
        }
    }

    /// The answer as the wire carries it between nodes.
    pub fn to_command_error(&self) -> CommandError {
        match self {
            RouteError::Conversation(ConversationError::NotFound) => CommandError::NotFound,
            RouteError::Conversation(ConversationError::Invalid(why)) => {
                CommandError::Invalid(why.clone())
            }
            RouteError::Conversation(ConversationError::WindowClosed(why)) => {
                CommandError::WindowClosed(why.clone())
            }
            RouteError::Overloaded => CommandError::Overloaded,
            RouteError::NotOwner(_) => CommandError::ShardMoving(self.to_string()),
            RouteError::Provider(why) => CommandError::ProviderFailed(why.clone()),
            RouteError::Remote(error) => error.clone(),
            other if other.outcome_known() => CommandError::NothingDone(other.to_string()),
            other => CommandError::OutcomeUnknown(other.to_string()),
        }
    }
}

pub use schema::command::IngestReport;

/// Which entity an actor serves; kept per actor id so exits can be matched to registry entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Entity {
    Tenant(TenantId),
    Conversation(TenantId, ConversationId),
    Session(TenantId, ConnectionId),
}

impl Entity {
    pub(crate) fn kind(self) -> &'static str {
        match self {
            Entity::Tenant(_) => "tenant",
            Entity::Conversation(..) => "conversation",
            Entity::Session(..) => "session",
        }
    }
}

type Slot<M> = Arc<OnceCell<ActorRef<M>>>;

/// Entity key → running actor.
pub struct Directory {
    services: Services,
    root: ActorRef<NodeMsg>,
    tenants: DashMap<TenantId, Slot<()>>,
    conversations: DashMap<(TenantId, ConversationId), Slot<ConversationMsg>>,
    sessions: DashMap<(TenantId, ConnectionId), Slot<SessionMsg>>,
    live: DashMap<ActorId, Entity>,
    /// Permits for requests to conversation actors (see `ticket.rs`).
    requests: Arc<Semaphore>,
    /// Conversations whose last turn's commit outcome was unknown when its actor stopped: the seq up to
    /// which events were published. The next actor publishes what the store holds beyond it.
    unsettled: DashMap<(TenantId, ConversationId), Seq>,
    /// Sends handed to a session and not yet answered (kept here, not in the session actor, so a
    /// restarted session does not send again what its predecessor still has in flight).
    outbound: crate::session::InFlight,
    /// Replies being handed to a connection owned by another node (each a background task); over the
    /// bound a reply waits in the outbox for the sweep.
    remote_deliveries: Arc<Semaphore>,
    /// In a cluster: which shards this node serves, and how to reach the others (set once at start).
    cluster: std::sync::OnceLock<placement::ClusterLink>,
    /// Due conversations whose firing failed, with when the sweep may try again (see `timers.rs`).
    timer_backoff: timers::Backoff,
    /// Distribution's state on this node (see `helpdesk.rs`).
    distribution: helpdesk::Distribution,
    /// Departments as last read, shared by the node's conversations (see `departments.rs`).
    departments: departments::Departments,
}

impl Directory {
    pub(crate) fn new(services: Services, root: ActorRef<NodeMsg>) -> Self {
        Self {
            root,
            tenants: DashMap::new(),
            conversations: DashMap::new(),
            sessions: DashMap::new(),
            live: DashMap::new(),
            requests: Arc::new(Semaphore::new(services.config.max_actor_requests.max(1))),
            unsettled: DashMap::new(),
            outbound: Default::default(),
            cluster: std::sync::OnceLock::new(),
            timer_backoff: Default::default(),
            distribution: Default::default(),
            departments: Default::default(),
            remote_deliveries: Arc::new(Semaphore::new(services.config.max_queued_sends.max(1))),
            services,
        }
    }

    pub fn services(&self) -> &Services {
        &self.services
    }

    pub(crate) fn departments(&self) -> &departments::Departments {
        &self.departments
    }

    /// Hold across a write of the tenant's departments or feature flags: when dropped, the node
    /// forgets its reads of them, so its conversations read them again on their next turn (other
    /// nodes within `departments::FRESH_FOR`). Dropped whatever the write's outcome, even when the
    /// request is cancelled mid-write: a failed or abandoned write may still have landed.
    pub fn departments_changing(&self, tenant: TenantId) -> departments::Changing<'_> {
        self.departments.changing(tenant)
    }

    /// Number of live actors of each kind (tenant, conversation, session).
    pub fn live_counts(&self) -> (usize, usize, usize) {
        (
            self.tenants.len(),
            self.conversations.len(),
            self.sessions.len(),
        )
    }

    /// Delivers one webhook's events for one conversation and waits until they are durable.
    pub async fn ingest(
        self: &Arc<Self>,
        tenant: TenantId,
        connection_id: ConnectionId,
        conversation: ConversationId,
        events: Vec<InboundEvent>,
        received_at: Instant,
        request_id: Arc<str>,
    ) -> Result<IngestReport, RouteError> {
        self.request(tenant, conversation, |reply, ticket| {
            ConversationMsg::Ingest {
                connection_id,
                events: events.clone(),
                received_at,
                request_id: Arc::clone(&request_id),
                ticket,
                reply,
            }
        })
        .await
    }

    /// Queues an agent's reply; answers with the stored `pending` message.
    pub async fn send(
        self: &Arc<Self>,
        tenant: TenantId,
        conversation: ConversationId,
        agent: AgentId,
        content: MessageContent,
        client_message_id: Option<String>,
    ) -> Result<Message, RouteError> {
        self.request(tenant, conversation, |reply, ticket| {
            ConversationMsg::Send {
                agent,
                content: content.clone(),
                client_message_id: client_message_id.clone(),
                ticket,
                reply,
            }
        })
        .await
    }

    /// Calls a conversation actor, retrying on a fresh actor when the one it reached died under it.
    /// Refused with nothing done when the node already has `max_actor_requests` in flight.
    async fn request<T, F>(
        self: &Arc<Self>,
        tenant: TenantId,
        conversation: ConversationId,
        build: F,
    ) -> Result<T, RouteError>
    where
        T: Send + 'static,
        F: Fn(ractor::RpcReplyPort<Result<T, ConversationError>>, Ticket) -> ConversationMsg,
    {
        let permit = Arc::clone(&self.requests)
            .try_acquire_owned()
            .map_err(|_| {
                metrics::counter!("conversa_actor_requests_refused_total").increment(1);
                RouteError::Overloaded
            })?;
        let attempts = self.services.config.max_delivery_attempts.max(1);
        let timeout = self.services.config.call_timeout;
        let ticket = Ticket::new(tokio::time::Instant::now() + timeout, permit);
        // Whether an attempt reached an actor that then died under it (it may have committed).
        let mut reached = false;
        for _ in 0..attempts {
            let actor = match self.conversation(tenant, conversation).await {
                Ok(actor) => actor,
                // The retry cannot run here (the shard moved away meanwhile, or the spawn failed):
                // the attempt that reached the dead actor may have been applied.
                Err(error) if reached => return Err(RouteError::Interrupted(error.to_string())),
                Err(error) => return Err(error),
            };
            // ractor mailboxes have no length: requests waiting on conversation actors are the backlog.
            let backlog = metrics::gauge!("conversa_actor_requests_in_flight");
            backlog.increment(1.0);
            let answer = actor
                .call(|reply| build(reply, ticket.clone()), Some(timeout))
                .await;
            backlog.decrement(1.0);
            match answer {
                Ok(CallResult::Success(answer)) => return answer.map_err(RouteError::from),
                Ok(CallResult::Timeout) => return Err(RouteError::Timeout(timeout)),
                // The actor stopped (passivation, panic, store failure) before answering: the request
                // was not applied, or was applied durably and will be found as a duplicate. Retry.
                Ok(CallResult::SenderError) | Err(_) => {
                    reached = true;
                    self.forget(Entity::Conversation(tenant, conversation), actor.get_id());
                }
            }
            if ticket.expired() {
                return Err(RouteError::Timeout(timeout));
            }
        }
        metrics::counter!("conversa_poison_messages_total").increment(1);
        tracing::error!(%tenant, %conversation, attempts, "request refused: it stopped its actor every time");
        Err(RouteError::Poisoned(attempts))
    }

    /// The running actor of a conversation, spawned (state loaded from the store) if needed.
    pub async fn conversation(
        self: &Arc<Self>,
        tenant: TenantId,
        id: ConversationId,
    ) -> Result<ActorRef<ConversationMsg>, RouteError> {
        if self.conversations.len() >= self.services.config.max_live_conversations.max(1)
            && !self.conversations.contains_key(&(tenant, id))
        {
            metrics::counter!("conversa_conversation_spawns_refused_total").increment(1);
            return Err(RouteError::Overloaded);
        }
        let fence = self.fence_for(id)?;
        let args = ConversationArgs {
            tenant,
            id,
            directory: Arc::clone(self),
            fence,
        };
        self.child(
            &self.conversations,
            (tenant, id),
            Entity::Conversation(tenant, id),
            ConversationActor,
            args,
        )
        .await
    }

    /// The running session actor of a connection, spawned if needed.
    pub async fn session(
        self: &Arc<Self>,
        tenant: TenantId,
        id: ConnectionId,
    ) -> Result<ActorRef<SessionMsg>, RouteError> {
        self.serves_connection(id)?;
        let args = SessionArgs {
            tenant,
            connection: id,
            directory: Arc::clone(self),
        };
        self.child(
            &self.sessions,
            (tenant, id),
            Entity::Session(tenant, id),
            SessionActor,
            args,
        )
        .await
    }

    /// Looks up `key` in `map`, spawning `actor` under the tenant's supervisor when it is not running.
    /// Concurrent callers for one key share a single spawn; after a failed spawn the next waiter tries
    /// again on the same slot, and the last one to fail leaves no entry behind.
    async fn child<K, A>(
        self: &Arc<Self>,
        map: &DashMap<(TenantId, K), Slot<A::Msg>>,
        key: (TenantId, K),
        entity: Entity,
        actor: A,
        args: A::Arguments,
    ) -> Result<ActorRef<A::Msg>, RouteError>
    where
        K: std::hash::Hash + Eq + Copy,
        A: Actor,
    {
        let slot = slot(map, key);
        let spawned = slot
            .get_or_try_init(|| async {
                let supervisor = self.tenant(key.0).await?;
                let (actor, _) = Actor::spawn_linked(None, actor, args, supervisor)
                    .await
                    .map_err(|e| RouteError::Spawn(e.to_string()))?;
                self.live.insert(actor.get_id(), entity);
                Ok(actor)
            })
            .await
            .cloned();
        if spawned.is_err() {
            drop(slot);
            release_failed(map, &key);
            return spawned;
        }
        let still_registered = map
            .get(&key)
            .is_some_and(|current| Arc::ptr_eq(current.value(), &slot));
        if let Ok(actor) = &spawned
            && !still_registered
        {
            // Removed while it started (`stop_session` after the connection changed): it must not live
            // on unseen beside the next one, with what it loaded before the change.
            actor.stop(Some("its entry was removed while it started".into()));
            return Err(RouteError::Spawn(
                "the entity changed while its actor started; retry".into(),
            ));
        }
        spawned
    }

    async fn tenant(self: &Arc<Self>, tenant: TenantId) -> Result<ActorCell, RouteError> {
        let slot = slot(&self.tenants, tenant);
        let directory = Arc::clone(self);
        let spawned = slot
            .get_or_try_init(|| async move {
                let args = TenantArgs {
                    tenant,
                    directory: Arc::clone(&directory),
                };
                let (actor, _) =
                    Actor::spawn_linked(None, TenantSupervisor, args, directory.root.get_cell())
                        .await
                        .map_err(|e| RouteError::Spawn(e.to_string()))?;
                directory
                    .live
                    .insert(actor.get_id(), Entity::Tenant(tenant));
                Ok(actor)
            })
            .await
            .map(|actor| actor.get_cell());
        if spawned.is_err() {
            drop(slot);
            release_failed(&self.tenants, &tenant);
        }
        spawned
    }

    /// Called by supervisors when a child exits (stopped, panicked or failed): drops its entry so the
    /// next lookup spawns a fresh actor. Returns the entity the actor served.
    pub(crate) fn actor_exited(&self, actor: ActorId) -> Option<Entity> {
        let (_, entity) = self.live.remove(&actor)?;
        self.forget(entity, actor);
        metrics::gauge!("conversa_actors_live", "kind" => entity.kind()).decrement(1.0);
        Some(entity)
    }

    /// Drops a conversation's entry if it still points at `actor` (which was found stopping).
    pub(crate) fn forget_conversation(&self, tenant: TenantId, id: ConversationId, actor: ActorId) {
        self.forget(Entity::Conversation(tenant, id), actor);
    }

    /// Drops the entry for `entity` if it still points at `actor` (never a newer actor).
    fn forget(&self, entity: Entity, actor: ActorId) {
        fn same<M>(slot: &Slot<M>, actor: ActorId) -> bool {
            slot.get().is_some_and(|a| a.get_id() == actor)
        }
        match entity {
            Entity::Tenant(id) => {
                self.tenants.remove_if(&id, |_, s| same(s, actor));
            }
            Entity::Conversation(tenant, id) => {
                self.conversations
                    .remove_if(&(tenant, id), |_, s| same(s, actor));
            }
            Entity::Session(tenant, id) => {
                self.sessions
                    .remove_if(&(tenant, id), |_, s| same(s, actor));
            }
        }
    }

    /// Stops every actor: children first (conversations finish their current turn), then supervisors.
    pub async fn shutdown(&self, deadline: Duration) {
        let started = Instant::now();
        let tenants: Vec<ActorRef<()>> = self
            .tenants
            .iter()
            .filter_map(|e| e.value().get().cloned())
            .collect();
        for tenant in &tenants {
            let left = deadline.saturating_sub(started.elapsed());
            tenant
                .stop_children_and_wait(Some("node shutdown".into()), Some(left))
                .await;
        }
        let left = deadline.saturating_sub(started.elapsed());
        if self
            .root
            .stop_and_wait(Some("node shutdown".into()), Some(left))
            .await
            .is_err()
        {
            tracing::warn!("actors did not stop within the shutdown deadline; killing");
            self.root.kill();
        }
    }
}

fn slot<K: std::hash::Hash + Eq + Copy, M>(map: &DashMap<K, Slot<M>>, key: K) -> Slot<M> {
    // The shard lock is held only to clone the Arc; the spawn itself happens outside it.
    Arc::clone(map.entry(key).or_default().value())
}

/// After a failed spawn (the caller has dropped its handle on the slot): removes the still-empty slot,
/// unless another caller holds it. Such a caller is waiting to run its own initialiser on that same
/// slot, and the actor it spawns must land in the map, not in an orphaned slot that the next lookup
/// would not find (and would spawn a second actor beside). Handles are only cloned under the shard
/// lock that `remove_if` holds, so the count cannot grow while it is checked; the last caller whose
/// spawn fails removes the slot.
fn release_failed<K: std::hash::Hash + Eq, M>(map: &DashMap<K, Slot<M>>, key: &K) {
    map.remove_if(key, |_, s| s.get().is_none() && Arc::strong_count(s) == 1);
}

impl From<StoreError> for RouteError {
    fn from(e: StoreError) -> Self {
        RouteError::Conversation(ConversationError::Store(e.to_string()))
    }
}
