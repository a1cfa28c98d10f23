//! `GET /api/v1/ws`: the agent WebSocket. The token is checked before the upgrade (401 JSON otherwise);
//! the protocol is documented in `schema::ws`.
//!
//! One socket = a reader (this task: client frames, subscribe, replay, live forwarding) and a writer task
//! fed by a bounded queue of `ws_send_queue` frames. When the queue is full, or the tenant's bus buffer
//! overflows for this subscriber, the agent is a slow consumer: the socket closes with
//! `CLOSE_SLOW_CONSUMER` (4008) and the agent resumes by seq; it never stalls anyone else. A peer that
//! stops reading is found by the writer: a frame that cannot be written within `ws_write_timeout` closes
//! the socket with 4008 too. A close frame jumps the queue; a writer that cannot finish within a few
//! seconds is aborted. Either half ending ends both; node shutdown closes with 1001.

mod heartbeat;
pub mod presence;
mod replay;

use crate::AppState;
use crate::auth::WebSocketAgent;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message as WsMessage, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use heartbeat::Heartbeat;
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
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

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
/// Longest the close frame (and the TCP close after it) may take to leave.
const CLOSE_WRITE: std::time::Duration = std::time::Duration::from_secs(1);
/// Longest a closing socket waits for its writer before aborting it.
const WRITER_DRAIN: std::time::Duration = std::time::Duration::from_secs(3);

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
        .on_upgrade(move |socket| async move {
            // Held until the socket ends: it counts against the listener's connection limit.
            let _permit = permit;
            metrics::gauge!("conversa_ws_connections").increment(1.0);
            run(state, agent, token, socket).await;
            metrics::gauge!("conversa_ws_connections").decrement(1.0);
        })
}

/// What the writer task sends.
enum Outgoing {
    /// A frame built for this socket (control frames, replayed events). Boxed: the queue allocates
    /// its first 32 slots up front, so every socket pays for the largest variant 32 times.
    Frame(Box<ServerFrame>),
    /// A live event, encoded once for all sockets, with when it became durable and which request
    /// caused it.
    Live(Published),
    /// A WebSocket ping (the browser answers it with a pong by itself).
    Ping,
}

impl Outgoing {
    fn frame(frame: ServerFrame) -> Self {
        Outgoing::Frame(Box::new(frame))
    }
}

/// The writer task and the way to make it close the socket ahead of whatever is still queued.
struct Writer {
    closer: oneshot::Sender<(u16, &'static str)>,
    task: tokio::task::JoinHandle<()>,
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

/// The socket's task. Its state machine lives as long as the socket, sized by the largest thing it
/// holds across an await, so every await that is rare or belongs to another phase (the replay, the
/// viewer's read, presence, the token check, closing) is boxed: an idle socket then carries only
/// the live phase's own state.
async fn run(state: AppState, agent: Agent, token: [u8; 32], socket: WebSocket) {
    let (sink, mut stream) = socket.split();
    let (out, queue) = mpsc::channel::<Outgoing>(state.config.ws_send_queue.max(1));
    let done = state.shutdown.child_token();
    let (closer, close_requested) = oneshot::channel();
    let writer = Writer {
        closer,
        task: tokio::spawn(write_loop(
            sink,
            queue,
            close_requested,
            state.config.ws_write_timeout,
            done.clone(),
        )),
    };
    let ready = ServerFrame::Ready {
        protocol: PROTOCOL_VERSION,
        tenant_id: agent.tenant_id,
        agent_id: agent.id,
    };
    let _ = out.try_send(Outgoing::frame(ready));

    // Phase 1: wait for `subscribe` (answer pings meanwhile). Its timer is boxed and dropped after
    // this phase, not kept for the socket's life.
    let mut deadline = Box::pin(tokio::time::sleep(state.config.ws_subscribe_timeout));
    let resume = loop {
        let frame = tokio::select! {
            _ = done.cancelled() => return Box::pin(close(out, End::Shutdown, writer)).await,
            _ = deadline.as_mut() => return Box::pin(close(out, End::ProtocolError, writer)).await,
            frame = stream.next() => frame,
        };
        match client_frame(frame) {
            Ok(Some(ClientFrame::Subscribe { resume })) => break resume,
            // Presence starts with the live phase.
            Ok(Some(ClientFrame::Presence { .. })) => {}
            Ok(Some(ClientFrame::Ping)) => {
                let _ = out.try_send(Outgoing::frame(ServerFrame::Pong));
            }
            Ok(None) => {}
            Err(end) => {
                return Box::pin(close(out, end, writer)).await;
            }
        }
    };

    drop(deadline);

    // What this socket's user may see (`schema::visibility`: connections, notes, deleted
    // messages), as the tenant has it when the socket subscribes; a change reaches open sockets when
    // they reconnect.
    let viewer = match Box::pin(crate::permissions::viewer(&state, &agent)).await {
        Ok(viewer) => viewer,
        Err(_) => return Box::pin(close(out, End::Resync, writer)).await,
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
                    &state,
                    &agent,
                    &viewer,
                    resume,
                    &out,
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
                Err(end) => return Box::pin(close(out, end, writer)).await,
            }
        }
        None => 0,
    };
    // A long replay leaves the queue full: wait for room (not a slow consumer yet). Until the backlog
    // has drained below half (or `REPLAY_SETTLE` passed), live events wait for room too instead of
    // being refused; after that, live events never wait.
    if out
        .send(Outgoing::frame(ServerFrame::Subscribed { replayed }))
        .await
        .is_err()
    {
        return Box::pin(close(out, End::ClientLeft, writer)).await;
    }
    let half = state.config.ws_send_queue.max(1) / 2;
    let mut settle = Some(tokio::time::Instant::now() + REPLAY_SETTLE);
    let live_item = async |item: BusItem,
                           settle: &mut Option<tokio::time::Instant>,
                           delivered: &mut HashMap<ConversationId, Seq>|
           -> Result<(), End> {
        match item {
            BusItem::Event(published) => {
                if settle.is_some_and(|until| {
                    out.capacity() >= half || tokio::time::Instant::now() >= until
                }) {
                    *settle = None;
                }
                forward(&out, delivered, published, *settle, &viewer).await
            }
            // Notices about a connection go only to those who see it.
            BusItem::Notice(notice)
                if notice.is_for(agent.role)
                    && notice
                        .connection()
                        .is_none_or(|c| viewer.sees_connection(c)) =>
            {
                out.try_send(Outgoing::frame(ServerFrame::from(notice.as_ref())))
                    .map_err(|_| End::SlowConsumer)
            }
            BusItem::Notice(_) => Ok(()),
            BusItem::Lagged { missed } => {
                tracing::warn!(agent = %agent.id, missed, "agent socket lagged behind the bus");
                Err(End::SlowConsumer)
            }
        }
    };
    while let Some(item) = held.pop_front() {
        if let Err(end) = live_item(item, &mut settle, &mut delivered).await {
            return Box::pin(close(out, end, writer)).await;
        }
    }

    // Phase 3: live, and present (online or away) while it lasts.
    let store = state.store.as_ref();
    // Leaves even if this task unwinds: the agent must not stay online with no socket.
    let mut presence_guard = presence::Present::new(&state, &agent);
    Box::pin(state.presence.join(store, agent.tenant_id, agent.id)).await;
    // One timer per socket for pings, silence and the token's expiry, revocation or sign-out.
    let mut heartbeat = Heartbeat::new(
        state.config.ws_ping_interval,
        state.config.ws_credential_check,
    );
    let end = loop {
        tokio::select! {
            _ = done.cancelled() => break End::Shutdown,
            due = heartbeat.tick() => {
                if due.silent { break End::Silent; }
                if due.ping && out.try_send(Outgoing::Ping).is_err() { break End::SlowConsumer; }
                // A store that cannot answer keeps the socket (the next check decides).
                if due.credential_check
                    && matches!(Box::pin(crate::auth::still_valid(&state, token)).await, Ok(false))
                {
                    break End::CredentialEnded;
                }
            }
            item = live.next() => match item {
                Some(item) => {
                    if let Err(end) = live_item(item, &mut settle, &mut delivered).await { break end; }
                }
                None => break End::Resync,
            },
            frame = stream.next() => match heartbeat.heard(client_frame(frame)) {
                Ok(Some(ClientFrame::Ping)) => {
                    if out.try_send(Outgoing::frame(ServerFrame::Pong)).is_err() { break End::SlowConsumer; }
                }
                Ok(Some(ClientFrame::Subscribe { .. })) => {
                    let error = ServerFrame::Error { code: "already_subscribed".into(), message: "reconnect to resume again".into() };
                    let _ = out.try_send(Outgoing::frame(error));
                }
                Ok(Some(ClientFrame::Presence { status })) => {
                    Box::pin(state.presence.set(store, agent.tenant_id, agent.id, status)).await;
                }
                Ok(None) => {}
                Err(end) => break end,
            },
        }
    };
    tracing::debug!(agent = %agent.id, ?end, "agent socket closing");
    Box::pin(presence_guard.leave()).await;
    Box::pin(close(out, end, writer)).await;
}

/// Ends a socket: hands the writer the close frame for `end` (it goes out before anything still
/// queued), lets go of the queue, and waits a bounded time for the writer, aborting it after that.
async fn close(out: mpsc::Sender<Outgoing>, end: End, writer: Writer) {
    if let Some(frame) = close_frame(end) {
        let _ = writer.closer.send(frame);
    }
    drop(out);
    let mut task = writer.task;
    if tokio::time::timeout(WRITER_DRAIN, &mut task).await.is_err() {
        task.abort();
    }
}

/// Sends one live event unless the replay (or the client's own resume position) already covered it.
/// While `settle` runs, waits for room until then; otherwise a full queue is a slow consumer.
async fn forward(
    out: &mpsc::Sender<Outgoing>,
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
        return out.try_send(item).map_err(|_| End::SlowConsumer);
    };
    match tokio::time::timeout_at(until, out.send(item)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(End::ClientLeft),
        Err(_) => Err(End::SlowConsumer),
    }
}

async fn replay_into(
    state: &AppState,
    agent: &Agent,
    viewer: &Viewer,
    resume: ResumeFrom,
    out: &mpsc::Sender<Outgoing>,
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
                let _ = out.send(failed("too_far_behind", max_replay)).await;
                return Ok(0);
            }
            Err(error) => {
                tracing::error!(%error, "resume failed on the store");
                let _ = out.send(failed("store_unavailable", 0)).await;
                return Ok(0);
            }
        };
    let mut sent = 0u64;
    // The replay may exceed the live queue: wait for room instead of dropping.
    let mut send = async |envelope: EventEnvelope| {
        let envelope = viewer
            .event(conversations.get(&envelope.conversation_id), &envelope)
            .unwrap_or(envelope);
        delivered.insert(envelope.conversation_id, envelope.seq);
        sent += 1;
        out.send(Outgoing::frame(ServerFrame::Event(Box::new(envelope))))
            .await
            .map_err(|_| End::ClientLeft)
    };
    for envelope in unseen {
        send(envelope).await?;
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
                    let _ = out.send(failed("store_unavailable", 0)).await;
                    return Err(End::ClientLeft);
                }
            };
            let Some(tail) = page.last() else { break };
            after = tail.seq;
            for envelope in page {
                send(envelope).await?;
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

/// Most frames one flush carries.
const WRITE_BATCH: usize = 32;

/// Feeds `first` and whatever else is queued (up to `WRITE_BATCH`) into the socket, then flushes
/// once. A live frame's fan-out latency is recorded as it is handed to the socket, just before the
/// batch's flush.
async fn write_batch(
    sink: &mut futures::stream::SplitSink<WebSocket, WsMessage>,
    queue: &mut mpsc::Receiver<Outgoing>,
    first: Outgoing,
) -> Result<(), axum::Error> {
    let mut item = first;
    let mut fed = 0;
    loop {
        if let Some((message, durable_at)) = encode(item) {
            sink.feed(message).await?;
            if let Some(durable_at) = durable_at {
                metrics::histogram!("conversa_fanout_latency_seconds")
                    .record(durable_at.elapsed().as_secs_f64());
            }
        }
        fed += 1;
        if fed == WRITE_BATCH {
            break;
        }
        match queue.try_recv() {
            Ok(next) => item = next,
            Err(_) => break,
        }
    }
    sink.flush().await
}

/// A queued item as the message to write, with when a live event became durable (`None` for a frame
/// that cannot be encoded, which is skipped).
fn encode(item: Outgoing) -> Option<(WsMessage, Option<std::time::Instant>)> {
    match item {
        Outgoing::Frame(frame) => serde_json::to_string(&frame)
            .ok()
            .map(|text| (WsMessage::Text(text.into()), None)),
        Outgoing::Live(published) => Utf8Bytes::try_from(published.frame())
            .ok()
            .map(|text| (WsMessage::Text(text), Some(published.durable_at))),
        Outgoing::Ping => Some((WsMessage::Ping(Default::default()), None)),
    }
}

const SLOW_CONSUMER_CLOSE: (u16, &str) = (
    CLOSE_SLOW_CONSUMER,
    "slow consumer: reconnect and resume by seq",
);

/// Writes queued frames until the queue ends or a close is requested (which goes out first). What is
/// already queued when a frame is taken (up to `WRITE_BATCH` frames) goes out with it in one flush,
/// so a busy socket costs one write per batch, not per frame; nothing waits for a batch to fill. A
/// batch that does not reach the socket within `write_timeout` means the peer stopped reading: the
/// socket closes with 4008 (if even the close frame cannot be written in time, the connection is
/// dropped).
async fn write_loop(
    mut sink: futures::stream::SplitSink<WebSocket, WsMessage>,
    mut queue: mpsc::Receiver<Outgoing>,
    mut close_requested: oneshot::Receiver<(u16, &'static str)>,
    write_timeout: std::time::Duration,
    done: CancellationToken,
) {
    let close_with = loop {
        let first = tokio::select! {
            biased;
            close = &mut close_requested => break close.ok(),
            item = queue.recv() => match item {
                Some(item) => item,
                None => break None,
            },
        };
        match tokio::time::timeout(write_timeout, write_batch(&mut sink, &mut queue, first)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => break None,
            Err(_) => {
                metrics::counter!("conversa_ws_slow_consumer_disconnects_total").increment(1);
                tracing::info!("agent socket stopped reading; closing it as a slow consumer");
                break Some(SLOW_CONSUMER_CLOSE);
            }
        }
    };
    if let Some((code, reason)) = close_with {
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        let _ = tokio::time::timeout(CLOSE_WRITE, sink.send(WsMessage::Close(Some(frame)))).await;
    }
    let _ = tokio::time::timeout(CLOSE_WRITE, sink.close()).await;
    done.cancel();
}
