//! `GET /api/v1/ws`: the agent WebSocket. The token is checked before the upgrade (401 JSON otherwise);
//! the protocol is documented in `schema::ws`.
//!
//! One socket = one task: it reads client frames, subscribes, replays, forwards live events, and
//! writes what it queued (`outbox.rs`: a bounded queue of `ws_send_queue` frames, written whenever the
//! task has nothing else to do). When the queue is full, or the tenant's bus buffer overflows for this
//! subscriber, the agent is a slow consumer: the socket closes with `CLOSE_SLOW_CONSUMER` (4008) and the
//! agent resumes by seq; it never stalls anyone else. A peer that stops reading is found by the outbox:
//! a flush that waits on it for `ws_write_timeout` closes the socket with 4008 too. A close frame jumps
//! the queue; closing takes at most two seconds. Node shutdown closes with 1001.

mod heartbeat;
mod outbox;
pub mod presence;
mod replay;

use crate::AppState;
use crate::auth::WebSocketAgent;
use axum::extract::State;
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures::StreamExt;
use heartbeat::Heartbeat;
use outbox::{Outgoing, WriteError};
use schema::bus::{BusItem, Published};
use schema::events::EventEnvelope;
use schema::records::Agent;
use schema::visibility::{ConnectionScope, Viewer};
use schema::ws::{
    CLOSE_CREDENTIAL_ENDED, CLOSE_GOING_AWAY, CLOSE_PROTOCOL_ERROR, CLOSE_SLOW_CONSUMER,
    ClientFrame, PROTOCOL_VERSION, ResumeFrom, ServerFrame,
};
use schema::{ConversationId, Seq};
use std::collections::{HashMap, VecDeque};

/// Longest a socket waits after a replay for its queue to drain before live events start.
const REPLAY_SETTLE: std::time::Duration = std::time::Duration::from_secs(10);
/// Largest client frame accepted.
const MAX_CLIENT_FRAME: usize = 256 * 1024;
/// Read buffer of one socket, allocated whole when the socket opens. Agents send tiny frames (a ping
/// is 15 bytes, a presence change under 40); a larger one, a resume with many positions, grows the
/// buffer as it arrives, once per connection. So 512 bytes instead of tungstenite's 8 KiB saves
/// 7.5 KiB on every connected agent.
const READ_BUFFER: usize = 512;
/// How much a socket gathers before writing (not allocated up front). A batch of queued frames is
/// written in pieces of this size, then flushed; tungstenite keeps the buffer's room afterwards, so a
/// socket that has had a busy moment holds up to this much plus its largest frame, for its life.
const WRITE_BUFFER: usize = 2 * 1024;
/// Most bytes a socket may hold unwritten before a send fails (the peer stopped reading).
const MAX_WRITE_BUFFER: usize = 1024 * 1024;

/// The socket's outbox over its sending half.
type Outbox = outbox::Outbox<futures::stream::SplitSink<WebSocket, WsMessage>>;

/// `GET /api/v1/ws`.
#[utoipa::path(get, path = "/api/v1/ws", tag = "websocket", operation_id = "websocket",
    description = "The agent's live socket: events of the tenant's conversations as JSON frames, resume with `{\"type\": \"resume\", …}`, presence frames. The token goes in `?token=` or the bearer header. See the README for the frames.",
    params(("token" = Option<String>, Query, description = "the agent token (browsers cannot set headers on a WebSocket)")),
    responses((status = 101, description = "switching to the WebSocket protocol"),
        (status = 401, description = "no or unknown token", body = schema::api::ErrorBody, content_type = "application/problem+json"),
        (status = 503, description = "too many sockets on this node", body = schema::api::ErrorBody, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn upgrade(
    State(state): State<AppState>,
    WebSocketAgent(agent, token): WebSocketAgent,
    permit: Option<axum::Extension<crate::server::ConnectionPermit>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    upgrade
        .max_message_size(MAX_CLIENT_FRAME)
        // Agents send tiny frames and we flush every frame: tungstenite's 128 KiB default buffers
        // would cost ~256 KiB per idle socket. The outgoing queue, not this buffer, bounds backlog.
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_write_buffer_size(MAX_WRITE_BUFFER)
        .on_upgrade(move |socket| {
            // The socket task's future lives as long as the socket: what it starts with is boxed
            // once, not copied into axum's task, this closure and `run` side by side, and the
            // socket is split before the future exists, so no dead copy of it stays in there.
            let opened = Box::new(Opened {
                state,
                agent,
                token,
                _permit: permit,
            });
            let (sink, stream) = socket.split();
            run(opened, sink, stream)
        })
}

/// What a socket starts with.
struct Opened {
    state: AppState,
    agent: Agent,
    token: [u8; 32],
    /// Held until the socket ends: it counts against the listener's connection limit.
    _permit: Option<axum::Extension<crate::server::ConnectionPermit>>,
}

/// Counts the socket in `conversa_ws_connections` while it lives, however its task ends.
struct Counted;

impl Counted {
    fn new() -> Self {
        metrics::gauge!("conversa_ws_connections").increment(1.0);
        Counted
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        metrics::gauge!("conversa_ws_connections").decrement(1.0);
    }
}

/// Why the socket ended (for logs).
#[derive(Debug)]
enum End {
    ClientLeft,
    SlowConsumer,
    ProtocolError,
    Shutdown,
    /// The bus ended this tenant's subscription: events may have been missed on the way here (a gap
    /// between nodes), so the agent must resume from the store.
    Resync,
    /// The socket's token expired or was revoked.
    CredentialEnded,
    /// Nothing came from the client, not even a pong, for two ping intervals.
    Silent,
}

/// The socket's task: serves the agent until the socket ends, then closes it. The socket stops
/// counting as connected when it stops serving; its close frame then gets up to two seconds behind
/// what was already written (a slow consumer that reads again in that time learns why it was cut).
async fn run(
    opened: Box<Opened>,
    sink: futures::stream::SplitSink<WebSocket, WsMessage>,
    stream: futures::stream::SplitStream<WebSocket>,
) {
    let mut outbox = Outbox::new(
        sink,
        opened.state.config.ws_send_queue,
        opened.state.config.ws_write_timeout,
    );
    let end = {
        let _counted = Counted::new();
        serve(&opened, &mut outbox, stream).await
    };
    tracing::debug!(agent = %opened.agent.id, ?end, "agent socket closing");
    Box::pin(outbox.close(close_frame(end))).await;
}

/// Serves the agent: its state machine lives as long as the socket, sized by the largest thing it
/// holds across an await, so every await that is rare or belongs to another phase (the replay, the
/// viewer's read, presence, the token check) is boxed: an idle socket then carries only the live
/// phase's own state. Returns why the socket ends; everything it held (the bus subscription, the
/// presence) is let go before the socket closes.
async fn serve(
    opened: &Opened,
    outbox: &mut Outbox,
    mut stream: futures::stream::SplitStream<WebSocket>,
) -> End {
    let Opened {
        state,
        agent,
        token,
        ..
    } = opened;
    // A token of its own: every `select!` below polls it, and polling the node's root token from
    // every socket would take one shared lock for every event on every socket.
    let done = state.shutdown.child_token();
    let ready = ServerFrame::Ready {
        protocol: PROTOCOL_VERSION,
        tenant_id: agent.tenant_id,
        agent_id: agent.id,
    };
    let _ = outbox.push(Outgoing::frame(ready));

    // Phase 1: wait for `subscribe` (answer pings meanwhile). Its timer is boxed and dropped after
    // this phase, not kept for the socket's life.
    let mut deadline = Box::pin(tokio::time::sleep(state.config.ws_subscribe_timeout));
    let resume = loop {
        let frame = tokio::select! {
            _ = done.cancelled() => return End::Shutdown,
            _ = deadline.as_mut() => return End::ProtocolError,
            written = outbox.flush(), if outbox.busy() => match written {
                Ok(()) => continue,
                Err(error) => return ended(error),
            },
            frame = stream.next() => frame,
        };
        match client_frame(frame) {
            Ok(Some(ClientFrame::Subscribe { resume })) => break resume,
            // Presence starts with the live phase.
            Ok(Some(ClientFrame::Presence { .. })) => {}
            Ok(Some(ClientFrame::Ping)) => {
                let _ = outbox.push(Outgoing::frame(ServerFrame::Pong));
            }
            Ok(None) => {}
            Err(end) => return end,
        }
    };

    drop(deadline);

    // What this socket's user may see (`schema::visibility`: connections, notes, deleted
    // messages), as the tenant has it when the socket subscribes; a change reaches open sockets when
    // they reconnect.
    let viewer = match Box::pin(crate::permissions::viewer(state, agent)).await {
        Ok(viewer) => viewer,
        Err(_) => return End::Resync,
    };

    // Phase 2: subscribe first, then replay from the store, so nothing falls between the two.
    let mut live = state.bus.subscribe(agent.tenant_id);
    // What the client already has: its resume positions, then whatever the replay sends. A live event
    // at or below these is a duplicate (it may have been read over REST, or replayed from the store
    // before its own publication reached this socket).
    let mut delivered: HashMap<ConversationId, Seq> = resume
        .as_ref()
        .map(|r| r.positions.clone())
        .unwrap_or_default();
    // Live events published while the replay runs (it may take as long as the client takes to read
    // it) are held here, not left in the bus subscription, whose small buffer a busy tenant would
    // overflow and cut the agent into a reconnect loop. Bounded by `ws_max_replay`.
    let mut held: VecDeque<BusItem> = VecDeque::new();
    let replayed = match resume {
        Some(resume) => {
            let result = {
                let mut replay = Box::pin(replay_into(
                    state,
                    agent,
                    &viewer,
                    resume,
                    outbox,
                    &mut delivered,
                ));
                let hold_max = state.config.ws_max_replay.max(1);
                let mut bus_open = true;
                loop {
                    tokio::select! {
                        _ = done.cancelled() => break Err(End::Shutdown),
                        result = replay.as_mut() => break result,
                        item = live.next(), if bus_open => match item {
                            Some(_) if held.len() >= hold_max => break Err(End::SlowConsumer),
                            Some(item) => held.push_back(item),
                            None => bus_open = false,
                        },
                    }
                }
            };
            match result {
                Ok(n) => n,
                Err(end) => return end,
            }
        }
        None => 0,
    };
    // A long replay leaves the queue full: wait for room (not a slow consumer yet). Until the backlog
    // has drained below half (or `REPLAY_SETTLE` passed), live events wait for room too instead of
    // being refused; after that, live events never wait.
    let subscribed = Outgoing::frame(ServerFrame::Subscribed { replayed });
    if let Err(error) = Box::pin(outbox.push_waiting(subscribed)).await {
        return ended(error);
    }
    let half = outbox.limit() / 2;
    let mut settle = Some(tokio::time::Instant::now() + REPLAY_SETTLE);
    let live_item = async |item: BusItem,
                           outbox: &mut Outbox,
                           settle: &mut Option<tokio::time::Instant>,
                           delivered: &mut HashMap<ConversationId, Seq>|
           -> Result<(), End> {
        match item {
            BusItem::Event(published) => {
                if settle.is_some_and(|until| {
                    outbox.room() >= half || tokio::time::Instant::now() >= until
                }) {
                    *settle = None;
                }
                forward(outbox, delivered, published, *settle, &viewer).await
            }
            // Notices about a connection go only to those who see it.
            BusItem::Notice(notice)
                if notice.is_for(agent.role)
                    && notice
                        .connection()
                        .is_none_or(|c| viewer.sees_connection(c)) =>
            {
                outbox
                    .push(Outgoing::frame(ServerFrame::from(notice.as_ref())))
                    .map_err(ended)
            }
            BusItem::Notice(_) => Ok(()),
            BusItem::Lagged { missed } => {
                tracing::warn!(agent = %agent.id, missed, "agent socket lagged behind the bus");
                Err(End::SlowConsumer)
            }
        }
    };
    while let Some(item) = held.pop_front() {
        if let Err(end) = live_item(item, outbox, &mut settle, &mut delivered).await {
            return end;
        }
    }

    // Phase 3: live, and present (online or away) while it lasts.
    let store = state.store.as_ref();
    // Leaves even if this task unwinds: the agent must not stay online with no socket.
    let mut presence_guard = presence::Present::new(state, agent);
    Box::pin(state.presence.join(store, agent.tenant_id, agent.id)).await;
    // One timer per socket for pings, silence and the token's expiry, revocation or sign-out.
    let mut heartbeat = Heartbeat::new(
        state.config.ws_ping_interval,
        state.config.ws_credential_check,
    );
    // Biased, the write last: the socket takes every event and client frame that is already there
    // and then writes what it queued in one flush (a batch at most), instead of one write per event.
    let end = loop {
        tokio::select! {
            biased;
            _ = done.cancelled() => break End::Shutdown,
            item = live.next(), if !outbox.batch_ready() => match item {
                Some(item) => {
                    if let Err(end) = live_item(item, outbox, &mut settle, &mut delivered).await { break end; }
                }
                None => break End::Resync,
            },
            due = heartbeat.tick() => {
                if due.silent { break End::Silent; }
                if due.ping && outbox.push(Outgoing::Ping).is_err() { break End::SlowConsumer; }
                // A store that cannot answer keeps the socket (the next check decides).
                if due.credential_check
                    && matches!(Box::pin(crate::auth::still_valid(state, *token)).await, Ok(false))
                {
                    break End::CredentialEnded;
                }
            }
            frame = stream.next() => match heartbeat.heard(client_frame(frame)) {
                Ok(Some(ClientFrame::Ping)) => {
                    if outbox.push(Outgoing::frame(ServerFrame::Pong)).is_err() { break End::SlowConsumer; }
                }
                Ok(Some(ClientFrame::Subscribe { .. })) => {
                    let error = ServerFrame::Error { code: "already_subscribed".into(), message: "reconnect to resume again".into() };
                    let _ = outbox.push(Outgoing::frame(error));
                }
                Ok(Some(ClientFrame::Presence { status })) => {
                    Box::pin(state.presence.set(store, agent.tenant_id, agent.id, status)).await;
                }
                Ok(None) => {}
                Err(end) => break end,
            },
            written = outbox.flush(), if outbox.busy() => {
                if let Err(error) = written { break ended(error); }
            }
        }
    };
    Box::pin(presence_guard.leave()).await;
    end
}

/// Why the outbox could not take or write a frame, as the socket's end.
fn ended(error: WriteError) -> End {
    match error {
        WriteError::Full => End::SlowConsumer,
        WriteError::Stalled => {
            tracing::info!("agent socket stopped reading; closing it as a slow consumer");
            End::SlowConsumer
        }
        WriteError::Closed => End::ClientLeft,
    }
}

/// Sends one live event unless the replay (or the client's own resume position) already covered it.
/// While `settle` runs, waits for room until then; otherwise a full queue is a slow consumer.
async fn forward(
    outbox: &mut Outbox,
    delivered: &mut HashMap<ConversationId, Seq>,
    published: Published,
    settle: Option<tokio::time::Instant>,
    viewer: &Viewer,
) -> Result<(), End> {
    let envelope = &published.envelope;
    // A user limited to one connection gets no event of another's conversations.
    let seen = match envelope.connection_id {
        Some(connection) => viewer.sees_connection(connection),
        None => viewer.scope == ConnectionScope::Any,
    };
    if !seen {
        return Ok(());
    }
    if let Some(seen) = delivered.get(&envelope.conversation_id) {
        if envelope.seq <= *seen {
            return Ok(());
        }
        delivered.remove(&envelope.conversation_id);
    }
    // A note this user may not read goes as its own frame, its text removed (the shared encoding
    // carries it).
    let item = match viewer.event(None, envelope) {
        Some(hidden) => Outgoing::frame(ServerFrame::Event(Box::new(hidden))),
        None => Outgoing::Live(published),
    };
    let Some(until) = settle else {
        return outbox.push(item).map_err(ended);
    };
    match tokio::time::timeout_at(until, outbox.push_waiting(item)).await {
        Ok(result) => result.map_err(ended),
        Err(_) => Err(End::SlowConsumer),
    }
}

async fn replay_into(
    state: &AppState,
    agent: &Agent,
    viewer: &Viewer,
    resume: ResumeFrom,
    outbox: &mut Outbox,
    delivered: &mut HashMap<ConversationId, Seq>,
) -> Result<u64, End> {
    let max_replay = state.config.ws_max_replay;
    let failed = |reason: &str, max_replay: usize| {
        Outgoing::frame(ServerFrame::ResumeFailed {
            reason: reason.into(),
            max_replay: max_replay as u64,
        })
    };
    let (unseen, behind, conversations) =
        match replay::plan(state, agent.tenant_id, viewer, &resume, max_replay).await {
            Ok(replay::Plan::Replay {
                unseen,
                behind,
                conversations,
            }) => (unseen, behind, conversations),
            Ok(replay::Plan::TooFarBehind) => {
                let _ = outbox
                    .push_waiting(failed("too_far_behind", max_replay))
                    .await;
                return Ok(0);
            }
            Err(error) => {
                tracing::error!(%error, "resume failed on the store");
                let _ = outbox.push_waiting(failed("store_unavailable", 0)).await;
                return Ok(0);
            }
        };
    let mut sent = 0u64;
    // The replay streams out a batch at a time, at the pace the client reads (it may exceed the
    // live queue: it waits for the client instead of dropping), so a replaying socket never holds
    // much more than a batch.
    let mut send = async |envelope: EventEnvelope, outbox: &mut Outbox| -> Result<(), End> {
        let envelope = viewer
            .event(conversations.get(&envelope.conversation_id), &envelope)
            .unwrap_or(envelope);
        delivered.insert(envelope.conversation_id, envelope.seq);
        sent += 1;
        outbox
            .push_waiting(Outgoing::frame(ServerFrame::Event(Box::new(envelope))))
            .await
            .map_err(ended)?;
        if outbox.batch_ready() {
            outbox.flush().await.map_err(ended)?;
        }
        Ok(())
    };
    for envelope in unseen {
        send(envelope, outbox).await?;
    }
    for (conversation, mut after, last) in behind {
        while after < last {
            let page = match state
                .store
                .events(agent.tenant_id, conversation, after, replay::REPLAY_PAGE)
                .await
            {
                Ok(page) => page,
                Err(error) => {
                    // Part of the replay left already; every event carries its seq, so the client keeps
                    // what it got and reloads the rest.
                    tracing::error!(%error, "resume stopped on the store");
                    let _ = outbox.push_waiting(failed("store_unavailable", 0)).await;
                    return Err(End::ClientLeft);
                }
            };
            let Some(tail) = page.last() else { break };
            after = tail.seq;
            for envelope in page {
                send(envelope, outbox).await?;
            }
        }
    }
    Ok(sent)
}

/// Reads one client frame: `Ok(None)` for control frames, `Err` when the socket must end.
fn client_frame(frame: Option<Result<WsMessage, axum::Error>>) -> Result<Option<ClientFrame>, End> {
    match frame {
        None | Some(Err(_)) | Some(Ok(WsMessage::Close(_))) => Err(End::ClientLeft),
        Some(Ok(WsMessage::Text(text))) => serde_json::from_str(text.as_str())
            .map(Some)
            .map_err(|_| End::ProtocolError),
        Some(Ok(WsMessage::Binary(_))) => Err(End::ProtocolError),
        Some(Ok(_)) => Ok(None),
    }
}

/// The close frame for `end`, if the peer is still there to receive one.
fn close_frame(end: End) -> Option<(u16, &'static str)> {
    match end {
        End::ClientLeft => None,
        End::SlowConsumer => {
            metrics::counter!("conversa_ws_slow_consumer_disconnects_total").increment(1);
            Some(SLOW_CONSUMER_CLOSE)
        }
        End::ProtocolError => Some((CLOSE_PROTOCOL_ERROR, "protocol error")),
        End::Shutdown => Some((CLOSE_GOING_AWAY, "node shutting down: reconnect and resume")),
        End::Resync => Some((
            CLOSE_GOING_AWAY,
            "events may have been missed: reconnect and resume by seq",
        )),
        End::CredentialEnded => Some((
            CLOSE_CREDENTIAL_ENDED,
            "the token expired or was revoked: refresh, then reconnect and resume",
        )),
        End::Silent => Some((CLOSE_GOING_AWAY, "no answer to pings")),
    }
}

const SLOW_CONSUMER_CLOSE: (u16, &str) = (
    CLOSE_SLOW_CONSUMER,
    "slow consumer: reconnect and resume by seq",
);
