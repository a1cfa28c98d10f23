//! The outgoing side of one agent socket, driven by the socket's own task: frames wait in a bounded
//! queue of `ws_send_queue`, and the task writes them into the WebSocket whenever it is not busy with
//! the client, the bus or its timer, up to `WRITE_BATCH` frames per flush.
//!
//! There is no writer task and no channel between two tasks. The socket's one task polls the client,
//! the bus, its heartbeat and this outbox together, so an event costs one wake-up, not two, and a
//! socket holds no channel blocks: the queue allocates as frames arrive and gives its room back once
//! it has drained after a burst. A flush that waits on the peer for `write_timeout` means the peer
//! stopped reading (a slow consumer); its timer exists only while a flush is waiting.
//!
//! Writing is cancel-safe: a frame leaves the queue only when the sink has taken it, and the sink
//! keeps what it has taken, so the socket's `select!` may drop a flush half-way and start another.

use axum::extract::ws::{CloseFrame, Message as WsMessage, Utf8Bytes};
use futures::{Sink, SinkExt};
use schema::bus::Published;
use schema::ws::ServerFrame;
use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// Most frames one flush carries.
const WRITE_BATCH: usize = 32;
/// Room (in frames) a drained queue keeps; a larger one, left by a burst, is given back.
const KEPT_ROOM: usize = 16;
/// Longest the close frame (and the TCP close after it) may take to leave.
const CLOSE_WRITE: Duration = Duration::from_secs(1);

/// What the socket writes.
pub(super) enum Outgoing {
    /// A frame built for this socket (control frames, replayed events). Boxed: every queued item
    /// is as large as the largest variant.
    Frame(Box<ServerFrame>),
    /// A live event, encoded once for all sockets, with when it became durable and which request
    /// caused it.
    Live(Published),
    /// A WebSocket ping (the browser answers it with a pong by itself).
    Ping,
}

impl Outgoing {
    pub(super) fn frame(frame: ServerFrame) -> Self {
        Outgoing::Frame(Box::new(frame))
    }
}

/// Why a frame cannot be written.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum WriteError {
    /// The queue is full: the agent reads slower than its events arrive.
    Full,
    /// A flush waited `write_timeout` on the peer: it stopped reading.
    Stalled,
    /// The connection failed or is closed.
    Closed,
}

/// Frames waiting for one socket, and the socket's sending half.
pub(super) struct Outbox<S> {
    sink: S,
    queue: VecDeque<Outgoing>,
    limit: usize,
    write_timeout: Duration,
    /// Frames went into the sink since its last complete flush.
    unflushed: bool,
    /// Runs while a write or flush waits on the peer, from the moment it started waiting.
    stall: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S> Outbox<S>
where
    S: Sink<WsMessage> + Unpin,
{
    /// An empty outbox of at most `limit` frames (at least one).
    pub(super) fn new(sink: S, limit: usize, write_timeout: Duration) -> Self {
        Self {
            sink,
            queue: VecDeque::new(),
            limit: limit.max(1),
            write_timeout,
            unflushed: false,
            stall: None,
        }
    }

    /// Queues `item`, or refuses it when the queue is full.
    pub(super) fn push(&mut self, item: Outgoing) -> Result<(), WriteError> {
        if self.queue.len() >= self.limit {
            return Err(WriteError::Full);
        }
        self.queue.push_back(item);
        Ok(())
    }

    /// Queues `item`, first writing out everything queued if the queue is full.
    pub(super) async fn push_waiting(&mut self, item: Outgoing) -> Result<(), WriteError> {
        if self.queue.len() >= self.limit {
            self.flush().await?;
        }
        self.push(item)
    }

    /// Free places in the queue.
    pub(super) fn room(&self) -> usize {
        self.limit - self.queue.len()
    }

    /// The queue's size.
    pub(super) fn limit(&self) -> usize {
        self.limit
    }

    /// Something is queued or not yet flushed.
    pub(super) fn busy(&self) -> bool {
        !self.queue.is_empty() || self.unflushed
    }

    /// A whole batch is queued and the peer is not what holds it up: write it before taking more.
    /// (While a flush waits on the peer, the queue keeps taking frames up to its limit.)
    pub(super) fn batch_ready(&self) -> bool {
        self.queue.len() >= WRITE_BATCH && self.stall.is_none()
    }

    /// Writes everything queued and flushes it; done once the peer has taken all of it.
    pub(super) async fn flush(&mut self) -> Result<(), WriteError> {
        poll_fn(|cx| self.poll_flush(cx)).await
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), WriteError>> {
        loop {
            let mut fed = 0;
            while fed < WRITE_BATCH && !self.queue.is_empty() {
                match Pin::new(&mut self.sink).poll_ready(cx) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(_)) => return Poll::Ready(Err(WriteError::Closed)),
                    Poll::Pending => return self.wait_for_peer(cx),
                }
                let Some(item) = self.queue.pop_front() else {
                    break;
                };
                fed += 1;
                let Some((message, durable_at)) = encode(item) else {
                    continue;
                };
                if Pin::new(&mut self.sink).start_send(message).is_err() {
                    return Poll::Ready(Err(WriteError::Closed));
                }
                self.unflushed = true;
                // A live frame's fan-out latency ends as it is handed to the socket, just before the
                // batch's flush.
                if let Some(durable_at) = durable_at {
                    metrics::histogram!("conversa_fanout_latency_seconds")
                        .record(durable_at.elapsed().as_secs_f64());
                }
            }
            if self.unflushed {
                match Pin::new(&mut self.sink).poll_flush(cx) {
                    Poll::Ready(Ok(())) => {
                        self.unflushed = false;
                        self.stall = None;
                    }
                    Poll::Ready(Err(_)) => return Poll::Ready(Err(WriteError::Closed)),
                    Poll::Pending => return self.wait_for_peer(cx),
                }
            }
            if self.queue.is_empty() {
                if self.queue.capacity() > KEPT_ROOM {
                    self.queue = VecDeque::new();
                }
                return Poll::Ready(Ok(()));
            }
        }
    }

    /// The peer is not taking what we write: pending, until that has lasted `write_timeout`.
    fn wait_for_peer(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), WriteError>> {
        let timeout = self.write_timeout;
        let stall = self
            .stall
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match stall.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(WriteError::Stalled)),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Ends the socket: what is still queued is dropped, the close frame (if the peer is still there
    /// to get one) goes out after whatever the sink already holds, then the connection closes. Each
    /// of the two steps gets at most `CLOSE_WRITE`.
    pub(super) async fn close(mut self, frame: Option<(u16, &'static str)>) {
        self.queue.clear();
        if let Some((code, reason)) = frame {
            let close = CloseFrame {
                code,
                reason: reason.into(),
            };
            let _ =
                tokio::time::timeout(CLOSE_WRITE, self.sink.send(WsMessage::Close(Some(close))))
                    .await;
        }
        let _ = tokio::time::timeout(CLOSE_WRITE, self.sink.close()).await;
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// The far end of a socket: takes frames while `reading`, and counts flushes.
    #[derive(Default)]
    struct PeerState {
        reading: bool,
        frames: Vec<String>,
        flushes: usize,
    }

    #[derive(Clone, Default)]
    struct Peer(Arc<Mutex<PeerState>>);

    impl Peer {
        fn reading() -> Self {
            let peer = Peer::default();
            peer.set_reading(true);
            peer
        }
        fn set_reading(&self, reading: bool) {
            self.0.lock().expect("peer").reading = reading;
        }
        fn frames(&self) -> Vec<String> {
            self.0.lock().expect("peer").frames.clone()
        }
        fn flushes(&self) -> usize {
            self.0.lock().expect("peer").flushes
        }
        fn ready(&self) -> Poll<Result<(), ()>> {
            match self.0.lock().expect("peer").reading {
                true => Poll::Ready(Ok(())),
                false => Poll::Pending,
            }
        }
    }

    impl Sink<WsMessage> for Peer {
        type Error = ();
        fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
            self.ready()
        }
        fn start_send(self: Pin<&mut Self>, item: WsMessage) -> Result<(), ()> {
            let text = match item {
                WsMessage::Text(text) => text.to_string(),
                other => format!("{other:?}"),
            };
            self.0.lock().expect("peer").frames.push(text);
            Ok(())
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
            let ready = self.ready();
            if ready.is_ready() {
                self.0.lock().expect("peer").flushes += 1;
            }
            ready
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
            Poll::Ready(Ok(()))
        }
    }

    const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

    fn error(code: usize) -> Outgoing {
        Outgoing::frame(ServerFrame::Error {
            code: code.to_string(),
            message: String::new(),
        })
    }

    fn codes(frames: &[String]) -> Vec<String> {
        frames
            .iter()
            .map(|f| {
                let value: serde_json::Value = serde_json::from_str(f).expect("json frame");
                value["code"].as_str().unwrap_or_default().to_owned()
            })
            .collect()
    }

    /// An outbox of `limit` frames for `peer`, holding error frames numbered by `frames`.
    fn queued(peer: &Peer, limit: usize, frames: std::ops::Range<usize>) -> Outbox<Peer> {
        let mut outbox = Outbox::new(peer.clone(), limit, WRITE_TIMEOUT);
        for i in frames {
            outbox.push(error(i)).expect("room");
        }
        outbox
    }

    #[tokio::test(start_paused = true)]
    async fn queued_frames_go_out_in_order_at_most_32_per_flush() {
        let peer = Peer::reading();
        let mut outbox = queued(&peer, 100, 0..40);
        outbox.flush().await.expect("flushed");
        let expected: Vec<String> = (0..40).map(|i| i.to_string()).collect();
        assert_eq!(codes(&peer.frames()), expected);
        assert_eq!(peer.flushes(), 2, "40 frames are two batches");
        assert!(!outbox.busy());
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_queue_refuses_the_next_frame_and_waiting_makes_room() {
        let peer = Peer::reading();
        let mut outbox = queued(&peer, 3, 0..3);
        assert_eq!(outbox.push(error(3)), Err(WriteError::Full));
        assert_eq!(outbox.room(), 0);
        outbox
            .push_waiting(error(3))
            .await
            .expect("room after a flush");
        outbox.flush().await.expect("flushed");
        assert_eq!(codes(&peer.frames()), ["0", "1", "2", "3"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_stops_reading_stalls_the_outbox_after_the_write_timeout() {
        let peer = Peer::default();
        let mut outbox = Outbox::new(peer.clone(), 10, WRITE_TIMEOUT);
        outbox.push(error(0)).expect("room");
        let early = tokio::time::timeout(WRITE_TIMEOUT / 2, outbox.flush()).await;
        assert!(early.is_err(), "still waiting on the peer");
        // The wait counts from when it began, across flushes dropped half-way.
        let started = tokio::time::Instant::now();
        assert_eq!(outbox.flush().await, Err(WriteError::Stalled));
        assert_eq!(started.elapsed(), WRITE_TIMEOUT / 2);
        assert!(peer.frames().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_flush_dropped_half_way_loses_and_repeats_nothing() {
        let peer = Peer::default();
        let mut outbox = queued(&peer, 10, 0..3);
        let dropped = tokio::time::timeout(Duration::from_secs(1), outbox.flush()).await;
        assert!(dropped.is_err());
        peer.set_reading(true);
        outbox.flush().await.expect("flushed");
        assert_eq!(codes(&peer.frames()), ["0", "1", "2"]);
        // A flush that completes ends the stall: the next wait starts a fresh timer.
        peer.set_reading(false);
        outbox.push(error(3)).expect("room");
        let started = tokio::time::Instant::now();
        assert_eq!(outbox.flush().await, Err(WriteError::Stalled));
        assert_eq!(started.elapsed(), WRITE_TIMEOUT);
    }

    #[tokio::test(start_paused = true)]
    async fn a_whole_batch_goes_out_first_unless_the_peer_holds_it_up() {
        let peer = Peer::default();
        let mut outbox = queued(&peer, 100, 0..WRITE_BATCH - 1);
        assert!(!outbox.batch_ready());
        outbox.push(error(WRITE_BATCH)).expect("room");
        assert!(outbox.batch_ready());
        // The peer does not read: the queue takes more while the flush waits.
        let waiting = tokio::time::timeout(Duration::from_secs(1), outbox.flush()).await;
        assert!(waiting.is_err());
        assert!(!outbox.batch_ready());
    }

    #[tokio::test(start_paused = true)]
    async fn a_drained_queue_gives_back_the_room_a_burst_took() {
        let peer = Peer::reading();
        let mut outbox = queued(&peer, 1000, 0..500);
        assert!(outbox.queue.capacity() >= 500);
        outbox.flush().await.expect("flushed");
        assert!(outbox.queue.capacity() <= KEPT_ROOM);
        assert_eq!(peer.frames().len(), 500);
    }

    #[tokio::test(start_paused = true)]
    async fn closing_drops_what_is_queued_and_sends_the_close_frame() {
        let peer = Peer::reading();
        let mut outbox = Outbox::new(peer.clone(), 10, WRITE_TIMEOUT);
        outbox.push(error(0)).expect("room");
        outbox.close(Some((4008, "slow consumer"))).await;
        let frames = peer.frames();
        assert_eq!(frames.len(), 1, "only the close frame: {frames:?}");
        assert!(frames[0].contains("4008"), "{frames:?}");
    }
}
