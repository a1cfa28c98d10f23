//! The connection-session actor: owns one channel connection's outbound side (one WhatsApp number).
//!
//! Receives `Send` casts from conversation actors; runs each provider call in its own task, at most
//! `session_concurrency` at once per connection (a slow provider delays only its own connection), and
//! casts the answer back to the conversation actor through the `Directory` (never awaiting it, so the
//! two can never deadlock). The connection record is loaded in `pre_start`.
//!
//! Every attempt waits for the connection's rate limiter (`outbound_rate_per_second`, a GCRA bucket from
//! `governor`). Transient failures (429, 5xx, timeouts, unreachable) are retried with exponential backoff
//! and jitter (`backon`) up to `outbound_max_attempts`; a rejection (other 4xx) is final at once. The
//! final answer — the provider's id, or `failed` with its error — goes back to the conversation.
//!
//! Not yet here (channels issue): a durable outbox that resends `pending` messages after a crash, and
//! the connection status lifecycle.

use crate::conversation::ConversationMsg;
use crate::directory::Directory;
use backon::{ExponentialBuilder, Retryable};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use schema::channel::{Outbound, SendError};
use schema::records::{Connection, ProviderError};
use schema::{ConnectionId, ConversationId, Seq, TenantId};
use std::num::NonZeroU32;
use std::sync::Arc;
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
}

/// Messages of the session actor.
pub enum SessionMsg {
    /// Send the message stored at `seq` in `conversation`.
    Send {
        conversation: ConversationId,
        seq: Seq,
        outbound: Outbound,
    },
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
        let per_second =
            NonZeroU32::new(services.config.outbound_rate_per_second).unwrap_or(NonZeroU32::MIN);
        let rate = Arc::new(RateLimiter::direct(Quota::per_second(per_second)));
        metrics::gauge!("conversa_actors_live", "kind" => "session").increment(1.0);
        Ok(SessionState {
            tenant: args.tenant,
            connection: Arc::new(connection),
            directory: args.directory,
            in_flight,
            rate,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SessionMsg::Send {
                conversation,
                seq,
                outbound,
            } => {
                // Waiting for a permit here is the backpressure: sends queue in this mailbox.
                let permit = Arc::clone(&state.in_flight).acquire_owned().await?;
                let connection = Arc::clone(&state.connection);
                let directory = Arc::clone(&state.directory);
                let tenant = state.tenant;
                let rate = Arc::clone(&state.rate);
                tokio::spawn(async move {
                    let answer = send_with_retries(&directory, &connection, &rate, &outbound).await;
                    drop(permit);
                    deliver(&directory, tenant, conversation, seq_answer(seq, answer)).await;
                });
            }
        }
        Ok(())
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
    };
    metrics::counter!("conversa_outbound_sends_total", "provider" => provider, "outcome" => outcome).increment(1);
    answer
}

fn seq_answer(seq: Seq, answer: Result<String, SendError>) -> ConversationMsg {
    match answer {
        Ok(provider_message_id) => ConversationMsg::ProviderAccepted {
            seq,
            provider_message_id,
        },
        Err(error) => ConversationMsg::ProviderFailed {
            seq,
            error: provider_error(error),
        },
    }
}

/// Hands the provider's answer to the conversation actor, respawning it if it passivated meanwhile.
async fn deliver(
    directory: &Arc<Directory>,
    tenant: TenantId,
    conversation: ConversationId,
    answer: ConversationMsg,
) {
    let mut answer = Some(answer);
    for attempt in 0..directory.services().config.max_delivery_attempts.max(1) {
        let Some(message) = answer.take() else { return };
        match directory.conversation(tenant, conversation).await {
            Ok(actor) => match actor.cast(message) {
                Ok(()) => return,
                Err(ractor::MessagingErr::SendErr(back)) => {
                    // The actor is stopping: drop its entry so the next lookup starts a fresh one.
                    directory.forget_conversation(tenant, conversation, actor.get_id());
                    tokio::time::sleep(std::time::Duration::from_millis(
                        20 * (u64::from(attempt) + 1),
                    ))
                    .await;
                    answer = Some(back);
                }
                Err(_) => return,
            },
            Err(error) => {
                tracing::error!(%conversation, %error, "provider answer could not be delivered");
                return;
            }
        }
    }
    // Not lost: the reply is still `pending` in the outbox, and the outbox sweep sends it again.
    tracing::error!(%conversation, "provider answer not delivered: conversation actor kept stopping");
}

fn provider_error(error: SendError) -> ProviderError {
    match error {
        SendError::Rejected(e) => e,
        SendError::Transient(detail) => ProviderError {
            code: None,
            title: "provider unavailable".into(),
            detail: Some(detail),
        },
    }
}
