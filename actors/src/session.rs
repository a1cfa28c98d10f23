//! The connection-session actor: owns one channel connection's outbound side (one WhatsApp number).
//!
//! Receives `Send` casts from conversation actors; runs each provider call in its own task, at most
//! `session_concurrency` at once per connection (a slow provider delays only its own connection), and
//! casts the answer back to the conversation actor through the `Directory` (never awaiting it, so the
//! two can never deadlock). The connection record is loaded in `pre_start`.
//!
//! Every attempt waits for the connection's rate limiter (a GCRA bucket from `governor`:
//! `outbound_rate_per_second` for Meta providers, `session_rate_per_second` for WhatsApp Web
//! sessions). Transient failures (429, 5xx, timeouts, unreachable) are retried with exponential
//! backoff and jitter (`backon`) up to `outbound_max_attempts`; a rejection (other 4xx) is final at
//! once. The final answer — the provider's id, or `failed` with its error — goes back to the
//! conversation.
//!
//! WhatsApp Web sessions (Evolution, Z-API) can drop. When a webhook reports that, the gateway asks
//! this actor to reconnect: it pokes the provider (`ChannelClient::reconnect`) with exponential
//! backoff and jitter (`reconnect_min` … `reconnect_max`) for as long as the stored connection stays
//! `disconnected`, and stops as soon as it is anything else (connected again, waiting for a QR scan,
//! paused, removed, or `error`: a pairing that gave up needs a person, not a loop). One loop per
//! connection: a second request while one runs is a no-op, and the attempt count only starts over
//! once the session has been seen connected, so a flapping session keeps backing off.
//!
//! A send already queued here is not queued twice (the outbox sweep may hand over a reply still
//! waiting behind a long backlog).
//!
//! Supervision: a failure in `pre_start` (unknown or paused connection) refuses the spawn; a panic is
//! restarted lazily by the tenant supervisor on the next send, with the connection reloaded.

use crate::directory::Directory;
use backon::{ExponentialBuilder, Retryable};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use schema::channel::{Outbound, SendError};
use schema::command::Command;
use schema::records::{Connection, ConnectionStatus, ProviderError};
use schema::{ConnectionId, ConversationId, Seq, TenantId};
use std::collections::HashSet;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use tokio::sync::Semaphore;

/// The actor (stateless config).
pub struct SessionActor;

/// Startup arguments.
pub struct SessionArgs {
    pub tenant: TenantId,
    pub connection: ConnectionId,
    pub directory: Arc<Directory>,
}

/// Live state.
pub struct SessionState {
    tenant: TenantId,
    connection: Arc<Connection>,
    directory: Arc<Directory>,
    in_flight: Arc<Semaphore>,
    rate: Arc<DefaultDirectRateLimiter>,
    /// Sends of this connection queued or in flight; over `max_queued_sends`, a reply stays in the
    /// outbox for the sweep instead of spawning yet another waiting task.
    queued: Arc<AtomicUsize>,
    /// Set when the actor stops (paused, credentials changed, shutdown): sends still waiting for a
    /// permit then give up instead of going out through the old session. They stay `pending`, so the
    /// outbox sweep hands them to the next session actor.
    stopped: Arc<AtomicBool>,
    /// Whether a reconnect loop is running.
    reconnecting: bool,
    /// Attempts since the session was last seen `connected`: a session that flaps keeps backing off
    /// instead of starting again from the shortest pause.
    reconnect_attempt: u32,
}

/// Messages of the session actor.
pub enum SessionMsg {
    /// Send the message stored at `seq` in `conversation`.
    Send {
        conversation: ConversationId,
        seq: Seq,
        outbound: Outbound,
    },
    /// Send a read receipt (after the connection's rate limiter, like a send); answers the provider's
    /// refusal or failure as text.
    MarkRead {
        to: String,
        provider_message_id: String,
        reply: ractor::RpcReplyPort<Result<(), String>>,
    },
    /// A webhook said the WhatsApp Web session dropped: start the reconnect loop unless it runs.
    ReconnectRequested,
    /// The loop's next attempt (`attempt` counts from 0).
    ReconnectAttempt { attempt: u32 },
}

/// Why a session cannot start.
#[derive(Debug, thiserror::Error)]
enum SessionStartError {
    #[error("connection {0} does not exist in tenant {1}")]
    UnknownConnection(ConnectionId, TenantId),
    #[error("connection {0} is paused")]
    Paused(ConnectionId),
}

impl Actor for SessionActor {
    type Msg = SessionMsg;
    type State = SessionState;
    type Arguments = SessionArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let services = args.directory.services();
        let connection = services
            .store
            .connection(args.connection)
            .await?
            .filter(|c| c.tenant_id == args.tenant)
            .ok_or(SessionStartError::UnknownConnection(
                args.connection,
                args.tenant,
            ))?;
        if connection.status == schema::records::ConnectionStatus::Paused {
            return Err(SessionStartError::Paused(args.connection).into());
        }
        let in_flight = Arc::new(Semaphore::new(services.config.session_concurrency.max(1)));
        let per_second = if connection.provider.has_session() {
            services.config.session_rate_per_second
        } else {
            services.config.outbound_rate_per_second
        };
        let per_second = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
        let rate = Arc::new(RateLimiter::direct(Quota::per_second(per_second)));
        metrics::gauge!("conversa_actors_live", "kind" => "session").increment(1.0);
        Ok(SessionState {
            tenant: args.tenant,
            connection: Arc::new(connection),
            directory: args.directory,
            in_flight,
            rate,
            queued: Arc::default(),
            stopped: Arc::default(),
            reconnecting: false,
            reconnect_attempt: 0,
        })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        state.stopped.store(true, Ordering::Release);
        if state.reconnecting {
            metrics::gauge!("conversa_session_reconnect_loops").decrement(1.0);
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SessionMsg::Send {
                conversation,
                seq,
                outbound,
            } => {
                let max_queued = state.directory.services().config.max_queued_sends.max(1);
                if state.queued.load(Ordering::Acquire) >= max_queued {
                    // Still `pending` in the store: the outbox sweep hands it over again later.
                    metrics::counter!("conversa_outbound_deferred_total").increment(1);
                    tracing::warn!(connection = %state.connection.id, %conversation, seq, "send queue full; the reply waits in the outbox");
                    return Ok(());
                }
                let Some(slot) =
                    InFlightSlot::take(&state.directory, &state.queued, (conversation, seq))
                else {
                    tracing::debug!(%conversation, seq, "send already in flight; not sending twice");
                    return Ok(());
                };
                let stopped = Arc::clone(&state.stopped);
                let in_flight = Arc::clone(&state.in_flight);
                let connection = Arc::clone(&state.connection);
                let directory = Arc::clone(&state.directory);
                let tenant = state.tenant;
                let rate = Arc::clone(&state.rate);
                // The task waits for its permit, not this mailbox, so a backlog of sends never holds
                // up a reconnect; tokio's semaphore is fair, so sends still start in the order they came.
                tokio::spawn(async move {
                    // Held to the end, whatever happens: the slot frees itself when dropped.
                    let _slot = slot;
                    let Ok(permit) = in_flight.acquire_owned().await else {
                        return;
                    };
                    // Stopped, or (in a cluster) the connection moved to another node meanwhile: the
                    // reply stays pending and its new owner's session sends it.
                    if stopped.load(Ordering::Acquire)
                        || directory.serves_connection(connection.id).is_err()
                    {
                        return;
                    }
                    let answer = send_with_retries(&directory, &connection, &rate, &outbound).await;
                    drop(permit);
                    deliver(
                        &directory,
                        tenant,
                        conversation,
                        seq,
                        recorded_answer(answer),
                    )
                    .await;
                });
            }
            SessionMsg::MarkRead {
                to,
                provider_message_id,
                reply,
            } => {
                let (rate, connection) = (Arc::clone(&state.rate), Arc::clone(&state.connection));
                let channel = Arc::clone(&state.directory.services().channel);
                let wait = state.directory.services().config.call_timeout;
                // Aside, like a send: the limiter's wait never holds this mailbox, and a receipt that
                // cannot get a slot before its caller gives up is dropped, not sent late.
                tokio::spawn(async move {
                    if tokio::time::timeout(wait, rate.until_ready())
                        .await
                        .is_err()
                    {
                        let _ =
                            reply.send(Err("the number's rate limit left no slot in time".into()));
                        return;
                    }
                    let answer = channel
                        .mark_read(&connection, &to, &provider_message_id)
                        .await
                        .map_err(|e| e.to_string());
                    let _ = reply.send(answer);
                });
            }
            SessionMsg::ReconnectRequested => {
                if !state.reconnecting {
                    state.reconnecting = true;
                    metrics::gauge!("conversa_session_reconnect_loops").increment(1.0);
                    let attempt = state.reconnect_attempt;
                    let _ = myself.cast(SessionMsg::ReconnectAttempt { attempt });
                }
            }
            SessionMsg::ReconnectAttempt { attempt } => {
                let services = state.directory.services();
                let current = match services.store.connection(state.connection.id).await {
                    Ok(current) => current,
                    Err(error) => {
                        // A store blip must not end the loop: no webhook restarts it while the
                        // session is down.
                        tracing::warn!(connection = %state.connection.id, %error, "reconnect: store unavailable; trying later");
                        let pause = reconnect_pause(&services.config, attempt);
                        myself.send_after(pause, move || SessionMsg::ReconnectAttempt { attempt });
                        return Ok(());
                    }
                };
                let current = current.filter(|c| c.tenant_id == state.tenant);
                let connected = current
                    .as_ref()
                    .is_some_and(|c| c.status == ConnectionStatus::Connected);
                let down = current
                    .as_ref()
                    .is_some_and(|c| c.status == ConnectionStatus::Disconnected);
                let Some(connection) = current.filter(|_| down) else {
                    state.reconnecting = false;
                    metrics::gauge!("conversa_session_reconnect_loops").decrement(1.0);
                    state.reconnect_attempt = if connected { 0 } else { attempt };
                    tracing::info!(connection = %state.connection.id, attempt, "session is not down; reconnect loop ends");
                    return Ok(());
                };
                let channel = Arc::clone(&services.channel);
                let provider = connection.provider.as_str();
                // The provider call runs aside: a slow provider never blocks this mailbox's sends.
                tokio::spawn(async move {
                    let outcome = match channel.reconnect(&connection).await {
                        Ok(()) => "requested",
                        Err(error) => {
                            tracing::warn!(connection = %connection.id, %error, "session reconnect failed");
                            "failed"
                        }
                    };
                    metrics::counter!("conversa_session_reconnects_total", "provider" => provider, "outcome" => outcome)
                        .increment(1);
                });
                let pause = reconnect_pause(&services.config, attempt);
                myself.send_after(pause, move || SessionMsg::ReconnectAttempt {
                    attempt: attempt.saturating_add(1),
                });
            }
        }
        Ok(())
    }
}

/// Exponential backoff with full jitter in the upper half: `min · 2^attempt`, capped at `max`.
fn reconnect_pause(config: &crate::ActorConfig, attempt: u32) -> std::time::Duration {
    let base = config
        .reconnect_min
        .saturating_mul(2u32.saturating_pow(attempt.min(20)))
        .min(config.reconnect_max);
    let jitter = rand::random::<f64>() * 0.5 + 0.5;
    base.mul_f64(jitter)
}

/// Sends handed to a session and not yet answered, node-wide, by `(conversation, seq)`: the outbox
/// sweep may hand over a reply still waiting here (a slow number, a long backlog) or whose answer is
/// still being delivered, and it must not go twice, even through a restarted session actor.
#[derive(Default)]
pub struct InFlight(std::sync::Mutex<HashSet<(ConversationId, Seq)>>);

impl InFlight {
    pub(crate) fn contains(&self, conversation: ConversationId, seq: Seq) -> bool {
        self.0
            .lock()
            .map(|set| set.contains(&(conversation, seq)))
            .unwrap_or(false)
    }

    /// Sends in flight on this node.
    pub fn len(&self) -> usize {
        self.0.lock().map(|set| set.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A send's place in the in-flight set and in its session's count, freed when dropped (also if the
/// task panics), so a reply the sweep hands over again is never refused forever.
struct InFlightSlot {
    directory: Arc<Directory>,
    queued: Arc<AtomicUsize>,
    key: (ConversationId, Seq),
}

impl InFlightSlot {
    /// The slot, or `None` when this send is already in flight.
    fn take(
        directory: &Arc<Directory>,
        queued: &Arc<AtomicUsize>,
        key: (ConversationId, Seq),
    ) -> Option<InFlightSlot> {
        let fresh = directory
            .outbound()
            .0
            .lock()
            .map(|mut set| set.insert(key))
            .unwrap_or(true);
        fresh.then(|| {
            queued.fetch_add(1, Ordering::AcqRel);
            metrics::gauge!("conversa_outbound_in_flight").increment(1.0);
            InFlightSlot {
                directory: Arc::clone(directory),
                queued: Arc::clone(queued),
                key,
            }
        })
    }
}

impl Drop for InFlightSlot {
    fn drop(&mut self) {
        if let Ok(mut set) = self.directory.outbound().0.lock() {
            set.remove(&self.key);
        }
        self.queued.fetch_sub(1, Ordering::AcqRel);
        metrics::gauge!("conversa_outbound_in_flight").decrement(1.0);
    }
}

/// Sends one message: rate-limited attempts, transient failures retried with backoff and jitter.
async fn send_with_retries(
    directory: &Directory,
    connection: &Connection,
    rate: &DefaultDirectRateLimiter,
    outbound: &Outbound,
) -> Result<String, SendError> {
    let config = &directory.services().config;
    let channel = Arc::clone(&directory.services().channel);
    let provider = connection.provider.as_str();
    let policy = ExponentialBuilder::default()
        .with_min_delay(config.outbound_retry_min)
        .with_max_delay(config.outbound_retry_max)
        .with_max_times(config.outbound_max_attempts.saturating_sub(1) as usize)
        .with_jitter();
    let attempt = || async {
        rate.until_ready().await;
        channel.send(connection, outbound).await
    };
    let answer = attempt
        .retry(policy)
        .sleep(tokio::time::sleep)
        .when(|error| matches!(error, SendError::Transient(_)))
        .notify(|error, pause| {
            metrics::counter!("conversa_outbound_retries_total", "provider" => provider).increment(1);
            tracing::debug!(connection = %connection.id, %error, ?pause, "provider send failed; retrying");
        })
        .await;
    let outcome = match &answer {
        Ok(_) => "accepted",
        Err(SendError::Rejected(_)) => "rejected",
        Err(SendError::Transient(_)) => "unavailable",
        Err(SendError::Unknown(_)) => "unknown",
    };
    metrics::counter!("conversa_outbound_sends_total", "provider" => provider, "outcome" => outcome).increment(1);
    answer
}

/// Longest provider message id kept: longer ids (none of the providers documents one over ~200
/// bytes) would bloat every index they are keyed in, so such an answer counts as a failed send.
pub const MAX_PROVIDER_MESSAGE_ID: usize = schema::limits::MAX_PROVIDER_ID_BYTES;

/// The provider's answer as the conversation records it.
fn recorded_answer(answer: Result<String, SendError>) -> Result<String, ProviderError> {
    match answer {
        Ok(id) if id.is_empty() || id.len() > MAX_PROVIDER_MESSAGE_ID => Err(ProviderError {
            code: None,
            title: "unusable message id".into(),
            detail: Some(format!(
                "the provider accepted the message but answered an id of {} bytes (at most {MAX_PROVIDER_MESSAGE_ID}): its statuses cannot be matched",
                id.len()
            )),
        }),
        Ok(id) => Ok(id),
        Err(error) => Err(provider_error(error)),
    }
}

/// Hands the provider's answer to the conversation's actor (wherever its owner runs it) and waits for
/// it to be recorded, respawning the actor if it passivated or failed meanwhile. The send stays in flight (so no sweep sends it
/// again) until the answer is recorded or `DELIVERY_TRIES` are spent; recording it twice is harmless.
async fn deliver(
    directory: &Arc<Directory>,
    tenant: TenantId,
    conversation: ConversationId,
    seq: Seq,
    answer: Result<String, ProviderError>,
) {
    const DELIVERY_TRIES: u32 = 40;
    const FIRST_PAUSE: std::time::Duration = std::time::Duration::from_millis(50);
    const LONGEST_PAUSE: std::time::Duration = std::time::Duration::from_secs(30);
    let mut pause = FIRST_PAUSE;
    for _ in 0..DELIVERY_TRIES {
        // Recorded by the conversation's owner: this node's actor, or another node's in a cluster.
        let command = Command::RecordAnswer {
            tenant,
            conversation,
            seq,
            answer: answer.clone(),
        };
        match crate::router::route(directory, command, std::time::Instant::now()).await {
            Ok(_) => return,
            Err(error) => {
                tracing::warn!(%conversation, seq, %error, "provider answer not recorded yet; retrying")
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(LONGEST_PAUSE);
    }
    // The reply stays `pending` in the outbox: the sweep hands it over again, and it may go twice.
    metrics::counter!("conversa_provider_answers_lost_total").increment(1);
    tracing::error!(%conversation, seq, "provider answer could not be recorded; the outbox will resend");
}

fn provider_error(error: SendError) -> ProviderError {
    match error {
        SendError::Rejected(e) => e,
        SendError::Transient(detail) => ProviderError {
            code: None,
            title: "provider unavailable".into(),
            detail: Some(detail),
        },
        // Not retried: the provider may have the message. The agent decides whether to send again.
        SendError::Unknown(detail) => ProviderError {
            code: None,
            title: "outcome unknown: the provider may have received this message".into(),
            detail: Some(detail),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnect_pauses_grow_to_the_cap_and_keep_jitter_within_half() {
        let config = crate::ActorConfig {
            reconnect_min: std::time::Duration::from_secs(5),
            reconnect_max: std::time::Duration::from_secs(300),
            ..crate::ActorConfig::default()
        };
        let first = reconnect_pause(&config, 0);
        assert!(
            first >= std::time::Duration::from_millis(2500)
                && first <= std::time::Duration::from_secs(5)
        );
        let third = reconnect_pause(&config, 2);
        assert!(
            third >= std::time::Duration::from_secs(10)
                && third <= std::time::Duration::from_secs(20)
        );
        let late = reconnect_pause(&config, 40);
        assert!(
            late >= std::time::Duration::from_secs(150)
                && late <= std::time::Duration::from_secs(300)
        );
    }
}
