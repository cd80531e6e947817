//! Accepting and serving HTTP/1.1 connections with limits that `axum::serve` does not offer: a
//! cap on connections served at once (WebSockets included), a time limit on a request's head
//! from its first byte, and an idle time after which a kept-alive connection is closed. Bodies
//! are limited per request by `http::body`.
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;
use tower_service::Service;

use crate::config::ConnectionLimits;

/// Serves `app` on `listener` until `shutdown` completes, then lets the connections finish what
/// they are answering and returns once they have.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop, stopped) = watch::channel(false);
    let limits = Arc::new(limits);
    tokio::pin!(shutdown);
    loop {
        // A connection is accepted only with a free slot; the next ones wait in the backlog.
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => slot.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let (app, limits, stopped) = (app.clone(), Arc::clone(&limits), stopped.clone());
        tokio::spawn(async move { connection(stream, slot, app, &limits, stopped).await });
    }
    drop(listener);
    let _ = stop.send(true);
    // Every slot back means every connection has ended; WebSockets, which do not end when asked,
    // are given 30 s (or the head timeout, if longer).
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(limits.header_read_timeout.max(Duration::from_secs(30)), slots.acquire_many(all)).await;
    Ok(())
}

/// One connection: requests one after another (HTTP/1.1 keep-alive), WebSocket upgrades, and
/// a watch that closes it once it has been idle for `idle_timeout` or the server stops. Its
/// slot goes with the stream, so an upgraded connection (a WebSocket) holds it until it closes.
async fn connection(
    stream: TcpStream,
    slot: OwnedSemaphorePermit,
    app: Router,
    limits: &ConnectionLimits,
    mut stopped: watch::Receiver<bool>,
) {
    let activity = Arc::new(Activity::new());
    // The peer's address, for handlers that answer loopback peers only (`/metrics`).
    let peer = stream.peer_addr().ok().map(axum::extract::ConnectInfo);
    let io = TokioIo::new(Watched {
        inner: stream,
        activity: Arc::clone(&activity),
        _slot: slot,
    });
    let busy = Arc::clone(&activity);
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let request_started = busy.begin();
        let mut app = app.clone();
        async move {
            let _request = request_started;
            let mut request = request.map(Body::new);
            if let Some(peer) = peer {
                request.extensions_mut().insert(peer);
            }
            // A Router is always ready (its `poll_ready` returns `Ready` at once).
            app.call(request).await
        }
    });
    // hyper's own header timeout also runs while a kept-alive connection waits for its next
    // request, which would make it the idle timeout as well; the watch below keeps them apart.
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.header_read_timeout(None).keep_alive(true);
    let conn = builder.serve_connection(io, service).with_upgrades();
    tokio::pin!(conn);
    let tick = (limits.header_read_timeout.min(limits.idle_timeout).min(Duration::from_secs(1)) / 2).max(Duration::from_millis(10));
    let mut closing = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            changed = stopped.changed(), if !closing => {
                if changed.is_err() || *stopped.borrow() {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
            () = tokio::time::sleep(tick), if closing => {
                // A response that stopped moving (its client stopped reading) is not waited for.
                if activity.silent_for() >= limits.idle_timeout {
                    tracing::debug!("dropping a connection whose response stalled");
                    return;
                }
            }
            () = tokio::time::sleep(tick), if !closing => {
                if let Some(why) = activity.overdue(limits) {
                    tracing::debug!(?why, "closing a connection");
                    if why == Overdue::Head {
                        // A half-sent head is not waited for: the connection is dropped.
                        return;
                    }
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// What a connection is doing, for the watch: when it last moved a byte, how many of its
/// requests are being answered, and when the head of the next request began to arrive.
struct Activity {
    started: Instant,
    last_millis: AtomicU64,
    /// Milliseconds after `started` of the first byte read while no request was being answered;
    /// `NONE` when none was.
    head_started_millis: AtomicU64,
    in_flight: AtomicUsize,
}

const NONE: u64 = u64::MAX;

/// Why the watch closes a connection.
#[derive(Debug, PartialEq, Eq)]
enum Overdue {
    Idle,
    Head,
}

impl Activity {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            last_millis: AtomicU64::new(0),
            // A new connection is waiting for its first head from the start.
            head_started_millis: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        }
    }

    /// How long since a byte last went either way, whatever the connection is doing.
    fn silent_for(&self) -> Duration {
        let last = self.last_millis.load(Ordering::Relaxed);
        Duration::from_millis(self.now_millis().saturating_sub(last))
    }

    fn now_millis(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(NONE - 1)
    }

    fn touch(&self) {
        self.last_millis.store(self.now_millis(), Ordering::Relaxed);
    }

    fn read(&self) {
        let now = self.now_millis();
        self.last_millis.store(now, Ordering::Relaxed);
        if self.in_flight.load(Ordering::Relaxed) == 0 {
            let _ = self
                .head_started_millis
                .compare_exchange(NONE, now, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    /// Whether the connection has waited too long: for a request's head to be completed, or
    /// idle between requests. Never while a request is being answered (its body and its
    /// execution have limits of their own).
    fn overdue(&self, limits: &ConnectionLimits) -> Option<Overdue> {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let now = self.now_millis();
        let head = self.head_started_millis.load(Ordering::Relaxed);
        if head != NONE {
            let waited = Duration::from_millis(now.saturating_sub(head));
            return (waited >= limits.header_read_timeout).then_some(Overdue::Head);
        }
        let idle = Duration::from_millis(now.saturating_sub(self.last_millis.load(Ordering::Relaxed)));
        (idle >= limits.idle_timeout).then_some(Overdue::Idle)
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.head_started_millis.store(NONE, Ordering::Relaxed);
        InFlight(Arc::clone(self))
    }
}

/// A request being answered; the connection is neither idle nor reading a head while one exists.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A stream that notes when bytes last went through it, holding its connection's slot.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
    _slot: OwnedSemaphorePermit,
}

impl AsyncRead for Watched {
    fn poll_read(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = std::pin::Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.read();
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let result = std::pin::Pin::new(&mut this.inner).poll_write(cx, data);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        result
    }

    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let result = std::pin::Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
