//! The HTTP/1.1 listener: accepts TCP connections and serves the router on each, with the limits
//! `axum::serve` cannot set.
//!
//! ```text
//! accept (after taking one of `max_connections` permits) → TCP_NODELAY → hyper http1 connection
//!   ├── request head must arrive within `header_read_timeout` (else the connection is closed)
//!   ├── idle keep-alive connections are closed after the same time
//!   └── an upgrade (the agent WebSocket) keeps the connection's permit for the socket's life, so
//!       agent sockets count against `max_connections` too
//! shutdown: stop accepting → every connection finishes its in-flight request → closed;
//!           whatever is still open at the deadline is dropped
//! ```
//!
//! Body read time is bounded per route (`error::read_body`); this module bounds what comes before a
//! handler runs, so a client that never finishes its headers (slowloris) holds one socket for at most
//! `header_read_timeout` and never any shared capacity.
//!
//! **Architecture Invariant:** an error on one connection never stops the listener; running out of file
//! descriptors pauses accepting briefly instead of spinning.

use axum::Router;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// One of the listener's connection permits, shared by the connection's task and, after an upgrade,
/// the agent socket that took the connection over; released when both are done.
#[derive(Clone)]
pub struct ConnectionPermit {
    _held: Arc<tokio::sync::OwnedSemaphorePermit>,
}

/// The accept queue asked of `listen(2)`; the kernel caps it at `net.core.somaxconn` (4,096 by
/// default since Linux 5.4). tokio's `TcpListener::bind` asks 128, too few for a few thousand agents
/// reconnecting at once after a deploy.
pub const ACCEPT_BACKLOG: u32 = 4_096;

/// Binds a listener on `addr` with [`ACCEPT_BACKLOG`] (and `SO_REUSEADDR`, as tokio's `bind` does).
pub fn bind(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(ACCEPT_BACKLOG)
}

/// Limits of the listener.
#[derive(Clone, Debug)]
pub struct ServerLimits {
    /// Open connections, agent sockets included; more wait in the kernel's accept backlog.
    pub max_connections: usize,
    /// Longest a client may take to send a request head, and to start the next one on a kept-alive
    /// connection.
    pub header_read_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            // For embedders and tests; the node derives its cap from its open-file limit.
            max_connections: 10_000,
            header_read_timeout: Duration::from_secs(10),
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets in-flight requests finish for
/// at most `drain_deadline`. Returns how many connections were still open when the deadline cut them.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send,
    drain_deadline: Duration,
) -> usize {
    let total = limits.max_connections.max(1);
    let permits = Arc::new(Semaphore::new(total));
    let draining = CancellationToken::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (stream, _peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // EMFILE/ENFILE and aborted handshakes: pause rather than spin on the error.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        metrics::gauge!("conversa_http_connections").increment(1.0);
        if let Err(error) = stream.set_nodelay(true) {
            // Events are small frames that must leave at once: without TCP_NODELAY, Nagle's algorithm
            // and the peer's delayed ACK add up to ~40 ms to fan-out latency.
            tracing::debug!(%error, "could not set TCP_NODELAY");
        }
        // Every request carries its connection's permit, so an upgraded agent socket keeps it after
        // hyper lets go of the connection: sockets count against `max_connections` for their life.
        let permit = ConnectionPermit {
            _held: Arc::new(permit),
        };
        let held = permit.clone();
        let service = TowerToHyperService::new(router.clone().map_request(
            move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(permit.clone());
                request.map(axum::body::Body::new)
            },
        ));
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        let draining = draining.clone();
        tokio::spawn(async move {
            tokio::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                _ = draining.cancelled() => {
                    // Finish the request in flight (if any), then close.
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = ended {
                tracing::debug!(%error, "connection ended with an error");
            }
            drop(held);
            metrics::gauge!("conversa_http_connections").decrement(1.0);
        });
    }
    drop(listener);
    draining.cancel();
    tracing::info!(
        open = permits_in_use(&permits, total),
        "stopped accepting; draining in-flight HTTP requests"
    );
    let all = u32::try_from(total).unwrap_or(u32::MAX);
    match tokio::time::timeout(drain_deadline, permits.acquire_many(all)).await {
        Ok(_) => 0,
        Err(_) => {
            let left = permits_in_use(&permits, total);
            tracing::warn!(
                left,
                "HTTP connections still open at the shutdown deadline; dropping them"
            );
            left
        }
    }
}

fn permits_in_use(permits: &Semaphore, total: usize) -> usize {
    total.saturating_sub(permits.available_permits())
}
