//! Node-to-node RPC: how a command reaches the node that owns its conversation. The receiving side is a
//! router served on the cluster listener (`POST /cluster/v1/commands`, the cluster secret as a bearer
//! token, the body a `schema::command::Command` as JSON); the sending side is [`HttpForwarder`], the
//! `actors::placement::Forwarder` the router uses.
//!
//! The answer is always 200 with `{"ok": Reply}` or `{"err": CommandError}` once the command ran (or
//! was refused) on the owner; 400, 401, 408, 413 and 415 are the owner refusing it unread; any other
//! status is taken as an unknown outcome (a proxy in between may answer after the owner ran it). A forward whose
//! answer is lost (a timeout, a broken connection after the request was sent) is reported as an
//! unknown outcome, never as "nothing was done": the owner may have committed it.
//!
//! **Architecture Invariant:** the tenant travels inside the command as the sending node authenticated
//! it; the cluster listener accepts nothing without the shared secret, and must not be exposed beyond
//! the cluster's network.

use crate::auth::secrets_match;
use crate::error::{ApiError, read_body};
use actors::placement::Forwarder;
use async_trait::async_trait;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::routing::post;
use schema::command::{Command, CommandError, Commands, Reply};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// Path of the command endpoint on the cluster listener.
pub const COMMANDS_PATH: &str = "/cluster/v1/commands";

/// What the owner answers.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    Ok(Reply),
    Err(CommandError),
}

#[derive(Clone)]
struct RpcState {
    commands: Arc<dyn Commands>,
    secret: Arc<str>,
    body_limit: usize,
    body_timeout: Duration,
}

/// The cluster listener's routes. `body_limit` bounds a forwarded command (a webhook's events for one
/// conversation are at most a webhook body).
pub fn rpc_routes(
    commands: Arc<dyn Commands>,
    secret: Arc<str>,
    body_limit: usize,
    body_timeout: Duration,
) -> axum::Router {
    axum::Router::new()
        .route(COMMANDS_PATH, post(receive))
        .with_state(RpcState {
            commands,
            secret,
            body_limit,
            body_timeout,
        })
}

async fn receive(
    State(state): State<RpcState>,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::Json<Answer>, ApiError> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !secrets_match(given, &state.secret) {
        metrics::counter!("conversa_cluster_rpc_refused_total").increment(1);
        return Err(ApiError::unauthorized("missing or wrong cluster secret"));
    }
    let bytes = read_body(body, state.body_limit, state.body_timeout).await?;
    let command: Command = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request("invalid_command", e.to_string()))?;
    let answer = match state.commands.execute_here(command).await {
        Ok(reply) => Answer::Ok(reply),
        Err(error) => Answer::Err(error),
    };
    Ok(axum::Json(answer))
}

/// Forwards commands over HTTP to the owner's cluster listener.
pub struct HttpForwarder {
    client: reqwest::Client,
    secret: Arc<str>,
}

impl HttpForwarder {
    /// `timeout` bounds one forward from connect to answer: longer than the owner's own call timeout,
    /// so the owner answers "unknown" itself before this side gives up.
    pub fn new(secret: Arc<str>, timeout: Duration) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .build()?;
        Ok(Self { client, secret })
    }
}

#[async_trait]
impl Forwarder for HttpForwarder {
    async fn forward(&self, rpc_url: &str, command: &Command) -> Result<Reply, CommandError> {
        let url = format!("{}{COMMANDS_PATH}", rpc_url.trim_end_matches('/'));
        let sent = self
            .client
            .post(url)
            .bearer_auth(&self.secret)
            .json(command)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            // Never connected: the owner cannot have seen the command.
            Err(error) if error.is_connect() => {
                return Err(CommandError::NothingDone(format!(
                    "the owning node is unreachable: {error}"
                )));
            }
            Err(error) => {
                return Err(CommandError::OutcomeUnknown(format!(
                    "the owning node did not answer: {error}"
                )));
            }
        };
        let status = response.status();
        if !status.is_success() {
            // The owner's own refusals at its door (secret, malformed, too large, too slow) mean the
            // command never ran; any other status may come from something in between (a proxy's
            // 502/504) after the owner ran it.
            let refused = matches!(status.as_u16(), 400 | 401 | 408 | 413 | 415);
            let detail = format!("the owning node answered the forward with {status}");
            return Err(if refused {
                CommandError::NothingDone(detail)
            } else {
                CommandError::OutcomeUnknown(detail)
            });
        }
        match response.json::<Answer>().await {
            Ok(Answer::Ok(reply)) => Ok(reply),
            Ok(Answer::Err(error)) => Err(error),
            Err(error) => Err(CommandError::OutcomeUnknown(format!(
                "the owning node's answer was lost: {error}"
            ))),
        }
    }
}
