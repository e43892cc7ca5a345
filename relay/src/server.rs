//! The connection layer under the router: accepts TCP connections, refuses a
//! peer beyond its connection cap, serves each connection with hyper (HTTP/1.1,
//! and HTTP/2 with prior knowledge) with a header-read timeout and an idle
//! timeout, and drains on shutdown.
//!
//! Why not `axum::serve`: it has no header-read or idle timeout and no per-peer
//! cap, so slow or idle clients could hold sockets (and file descriptors) for
//! ever and starve everyone else, `/health` included.
//!
//! - **Header-read timeout** (hyper's HTTP/1 `header_read_timeout`): a request
//!   head must arrive whole within it. On a kept-alive HTTP/1.1 connection the
//!   wait for the next request counts too, so it is also the idle time allowed
//!   between requests.
//! - **Idle timeout**: a connection on which no byte has moved either way for
//!   this long is shut down gracefully (an in-flight request still gets its
//!   answer); one that still moves nothing for a grace period after that is
//!   dropped. This covers HTTP/2, stalled readers and stalled writers alike.
//! - **Per-IP cap**: at most N open connections per client address (IPv6 grouped
//!   by /64); a connection beyond it is closed at once, before any byte is read.
//!   Connections from a trusted proxy (`--trusted-proxies`) are not capped per
//!   peer (they carry everyone's requests); WebSockets through it are capped
//!   per client address instead (`ws.rs`), and the proxy limits its clients'
//!   connections itself (`deploy/nginx.conf`).
//! - **Global cap**: at most `--max-connections` open connections in all.
//! - **Pre-authentication budget**: a WebSocket may read at most
//!   [`PREAUTH_BYTES`] before its `auth` frame is accepted (the socket's
//!   [`ReadBudget`]); beyond, the connection fails, so unauthenticated sockets
//!   cannot make the relay buffer large frames.
//! - **Client address**: every request carries a [`ClientAddr`] (the peer, or
//!   the client a trusted proxy names; `clientip.rs`).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

pub use crate::clientip::ClientAddr;
use crate::clientip::TrustedProxies;

/// Bytes a WebSocket may read before it is authenticated.
pub const PREAUTH_BYTES: i64 = 16 * 1024;

/// Connection limits (see the module docs and `docs/config.md`).
#[derive(Debug, Clone)]
pub struct ConnLimits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    /// 0: no cap.
    pub max_per_ip: u32,
    /// Open connections in all; 0: no cap.
    pub max_total: u32,
    /// Whose forwarding headers are believed.
    pub trusted: Arc<TrustedProxies>,
}

/// How long a connection that was asked to close, and still moves no byte, is kept.
const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// How long shutdown waits for open connections to finish.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);

/// Raises this process's soft open-files limit to its hard limit and returns the
/// new soft limit. Each connection is a file descriptor; the soft limit a process
/// inherits (often 1,024) would otherwise cap the relay at about that many clients.
pub fn raise_open_files_limit() -> std::io::Result<u64> {
    #[cfg(unix)]
    {
        rlimit::increase_nofile_limit(u64::MAX)
    }
    #[cfg(not(unix))]
    {
        Ok(0)
    }
}

/// The address a per-IP cap or limit counts under: IPv4 as is (IPv4-mapped
/// IPv6 too), IPv6 by its /64, which one subscriber typically holds whole.
pub fn peer_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Open connections per peer key.
#[derive(Default)]
pub struct PeerCounts(Mutex<HashMap<IpAddr, u32>>);

/// One counted connection; uncounted when the last holder drops it. Every
/// request carries a [`ConnectionSlot`], so a connection upgraded to a WebSocket
/// stays counted for as long as the socket's task keeps that value.
pub struct PeerSlot {
    counts: Arc<PeerCounts>,
    key: IpAddr,
}

impl PeerCounts {
    /// A slot for `ip` unless `max` (0: no cap) are taken already.
    pub fn try_acquire(self: &Arc<Self>, ip: IpAddr, max: u32) -> Option<PeerSlot> {
        let key = peer_key(ip);
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = map.entry(key).or_insert(0);
        if max != 0 && *n >= max {
            return None;
        }
        *n += 1;
        Some(PeerSlot {
            counts: Arc::clone(self),
            key,
        })
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut map = self
            .counts
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = map.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.key);
            }
        }
    }
}

/// One connection counted against the global cap.
pub struct TotalSlot(Arc<AtomicUsize>);

impl TotalSlot {
    fn try_acquire(count: &Arc<AtomicUsize>, max: u32) -> Option<Self> {
        let max = if max == 0 { usize::MAX } else { max as usize };
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Self(Arc::clone(count)))
    }
}

impl Drop for TotalSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The slots of the connection a request came on (a request extension): its
/// place in the global count and, for a direct client, in its address's count.
#[derive(Clone)]
pub struct ConnectionSlot(pub Arc<(TotalSlot, Option<PeerSlot>)>);

/// How many more bytes the connection may read; negative: no limit. Set by the
/// WebSocket gateway to [`PREAUTH_BYTES`] until the socket is authenticated.
#[derive(Clone, Default)]
pub struct ReadBudget(Arc<AtomicI64>);

impl ReadBudget {
    fn unlimited() -> Self {
        Self(Arc::new(AtomicI64::new(-1)))
    }
    /// Allows `bytes` more to be read, then fails the connection.
    pub fn limit(&self, bytes: i64) {
        self.0.store(bytes, Ordering::Release);
    }
    /// Lifts the limit.
    pub fn lift(&self) {
        self.0.store(-1, Ordering::Release);
    }
    /// Spends `n` bytes; false when the budget is exceeded.
    fn spend(&self, n: usize) -> bool {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        let mut cur = self.0.load(Ordering::Acquire);
        loop {
            if cur < 0 {
                return true;
            }
            let left = cur - n;
            match self
                .0
                .compare_exchange(cur, left.max(0), Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return left >= 0,
                Err(now) => cur = now,
            }
        }
    }
}

/// When a byte last moved on a connection, in milliseconds since `epoch`.
struct Activity {
    epoch: Instant,
    last_ms: AtomicU64,
    any: std::sync::atomic::AtomicBool,
}

impl Activity {
    fn new() -> Self {
        Self {
            epoch: Instant::now(),
            last_ms: AtomicU64::new(0),
            any: std::sync::atomic::AtomicBool::new(false),
        }
    }
    /// Whether any byte moved yet.
    fn any(&self) -> bool {
        self.any.load(Ordering::Relaxed)
    }
    fn touch(&self) {
        self.any.store(true, Ordering::Relaxed);
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }
    fn last(&self) -> Instant {
        self.epoch + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
}

/// A TCP stream that records when bytes move, and enforces a read budget.
struct TrackedIo {
    inner: TcpStream,
    activity: Arc<Activity>,
    budget: ReadBudget,
}

impl AsyncRead for TrackedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len().saturating_sub(before);
        if matches!(res, Poll::Ready(Ok(()))) && read > 0 {
            self.activity.touch();
            if !self.budget.spend(read) {
                metrics::counter!("sotto_connections_closed_total", "reason" => "preauth_bytes")
                    .increment(1);
                return Poll::Ready(Err(std::io::Error::other(
                    "read beyond the pre-authentication budget",
                )));
            }
        }
        res
    }
}

impl AsyncWrite for TrackedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let res = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(res, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        res
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let res = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(res, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        res
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Whether an accept error means the process is out of descriptors or memory:
/// back off instead of spinning (the other errors concern one connection only).
fn is_resource_exhaustion(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(23 | 24 | 105 | 12))
}

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting
/// and waits (at most 10 s) for open connections to finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let counts = Arc::new(PeerCounts::default());
    let total = Arc::new(AtomicUsize::new(0));
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    // No HTTP/2 keep-alive pings: they would count as traffic and keep idle
    // connections open for ever; a dead or idle peer is closed by the idle timeout.
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(64);
    let builder = Arc::new(builder);
    // Every connection task holds a receiver; `closed()` tells when all are gone.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        // Reap finished connection tasks.
        while tasks.try_join_next().is_some() {}
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    if is_resource_exhaustion(&e) {
                        metrics::counter!("sotto_accept_errors_total").increment(1);
                        tracing::warn!(error = %e, "cannot accept a connection; backing off");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    continue;
                }
            },
        };
        let Some(total_slot) = TotalSlot::try_acquire(&total, limits.max_total) else {
            metrics::counter!("sotto_connections_refused_total", "reason" => "total").increment(1);
            tracing::debug!(%peer, "connection refused: global connection cap");
            drop(stream);
            continue;
        };
        // A trusted proxy carries many clients: it is not capped per peer.
        let peer_slot = if limits.trusted.trusts(peer.ip()) {
            None
        } else {
            let Some(slot) = counts.try_acquire(peer.ip(), limits.max_per_ip) else {
                metrics::counter!("sotto_connections_refused_total", "reason" => "per_ip")
                    .increment(1);
                tracing::debug!(%peer, "connection refused: per-IP connection cap");
                drop(stream);
                continue;
            };
            Some(slot)
        };
        let _ = stream.set_nodelay(true);
        let builder = Arc::clone(&builder);
        let router = router.clone();
        let stop = stop_rx.clone();
        let slot = ConnectionSlot(Arc::new((total_slot, peer_slot)));
        let limits = limits.clone();
        tasks.spawn(async move {
            serve_connection(stream, peer, slot, router, &builder, limits, stop).await;
        });
    }
    drop(stop_rx);
    let _ = stop_tx.send(true);
    drop(listener);
    if tokio::time::timeout(DRAIN_LIMIT, stop_tx.closed())
        .await
        .is_err()
    {
        tracing::warn!("shutdown: connections still open after the drain limit; closing them");
    }
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    Ok(())
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    slot: ConnectionSlot,
    router: Router,
    builder: &hyper_util::server::conn::auto::Builder<TokioExecutor>,
    limits: ConnLimits,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    metrics::gauge!("sotto_http_connections").increment(1.0);
    let activity = Arc::new(Activity::new());
    let budget = ReadBudget::unlimited();
    let io = TokioIo::new(TrackedIo {
        inner: stream,
        activity: Arc::clone(&activity),
        budget: budget.clone(),
    });
    let trusted = Arc::clone(&limits.trusted);
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let mut req = req.map(axum::body::Body::new);
        let client = trusted.client(peer.ip(), req.headers());
        req.extensions_mut().insert(ConnectInfo(peer));
        req.extensions_mut().insert(client);
        req.extensions_mut().insert(slot.clone());
        req.extensions_mut().insert(budget.clone());
        let router = router.clone();
        async move { Ok::<_, Infallible>(router.oneshot(req).await.into_response_infallible()) }
    });
    let conn = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(conn);
    // Set once the connection was asked to close: the deadline to drop it by.
    let mut closing: Option<Instant> = None;
    loop {
        // Until the first byte, the header-read timeout applies (hyper's own timer
        // starts only once the protocol is detected).
        let quiet_limit = if activity.any() {
            limits.idle_timeout
        } else {
            limits.header_read_timeout
        };
        let deadline = match closing {
            Some(at) => at.max(activity.last() + CLOSE_GRACE),
            None => activity.last() + quiet_limit,
        };
        tokio::select! {
            res = conn.as_mut() => {
                if let Err(e) = res {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                break;
            }
            changed = stop.changed(), if closing.is_none() => {
                let _ = changed;
                conn.as_mut().graceful_shutdown();
                closing = Some(Instant::now() + CLOSE_GRACE);
            }
            () = tokio::time::sleep_until(deadline.into()) => {
                let now = Instant::now();
                match closing {
                    None if now >= activity.last() + quiet_limit => {
                        metrics::counter!("sotto_connections_closed_total", "reason" => "idle").increment(1);
                        conn.as_mut().graceful_shutdown();
                        closing = Some(now + CLOSE_GRACE);
                    }
                    Some(at) if now >= at && now >= activity.last() + CLOSE_GRACE => {
                        tracing::debug!(%peer, "dropping a connection that does not close");
                        break;
                    }
                    _ => {}
                }
            }
        }
    }
    metrics::gauge!("sotto_http_connections").decrement(1.0);
}

/// `Router::oneshot` cannot fail; this unwraps its `Result<_, Infallible>`.
trait IntoResponseInfallible {
    fn into_response_infallible(self) -> axum::response::Response;
}

impl IntoResponseInfallible for Result<axum::response::Response, Infallible> {
    fn into_response_infallible(self) -> axum::response::Response {
        match self {
            Ok(r) => r,
            Err(never) => match never {},
        }
    }
}
