//! I/O helpers: a stream trait object and an activity-tracking wrapper that drives idle timeouts
//! and byte counts without touching the data.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Anything a connection can run over.
pub trait AsyncStream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> AsyncStream for T {}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Milliseconds since the first call, a cheap monotonic clock for activity stamps.
pub fn now_ms() -> u64 {
    epoch().elapsed().as_millis() as u64
}

/// Shared activity state of one connection.
#[derive(Debug)]
pub struct Activity {
    last_ms: AtomicU64,
    /// When the first byte of a request head arrived with no request in flight (0: none
    /// pending). Cleared when the head is complete. Drives the header-read timeout.
    head_started_ms: AtomicU64,
    /// The connection began with the HTTP/2 preface (no head-read deadline applies).
    http2: std::sync::atomic::AtomicBool,
    first_read: std::sync::atomic::AtomicBool,
    /// Requests (streams) in flight on this connection.
    pub inflight: AtomicUsize,
    pub read: AtomicU64,
    pub written: AtomicU64,
    /// Why the connection was cut with requests in flight (for their flow records).
    cut: std::sync::OnceLock<String>,
}

impl Activity {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            last_ms: AtomicU64::new(now_ms()),
            head_started_ms: AtomicU64::new(0),
            http2: std::sync::atomic::AtomicBool::new(false),
            first_read: std::sync::atomic::AtomicBool::new(true),
            inflight: AtomicUsize::new(0),
            read: AtomicU64::new(0),
            written: AtomicU64::new(0),
            cut: std::sync::OnceLock::new(),
        })
    }

    fn touch(&self) {
        self.last_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// A request head is complete: its request is now in flight.
    pub fn request_started(&self) {
        self.inflight.fetch_add(1, Ordering::AcqRel);
        self.head_started_ms.store(0, Ordering::Relaxed);
    }

    pub fn request_finished(&self) {
        self.inflight.fetch_sub(1, Ordering::AcqRel);
    }

    fn on_read(&self, data: &[u8]) {
        let now = now_ms();
        self.last_ms.store(now, Ordering::Relaxed);
        self.read.fetch_add(data.len() as u64, Ordering::Relaxed);
        // Load first: only the connection's first read pays for the read-modify-write.
        if self.first_read.load(Ordering::Relaxed)
            && self.first_read.swap(false, Ordering::Relaxed)
            && data.starts_with(b"PRI * HTTP/2.0")
        {
            self.http2.store(true, Ordering::Relaxed);
        }
        if self.inflight.load(Ordering::Acquire) == 0
            && self.head_started_ms.load(Ordering::Relaxed) == 0
        {
            // `max(1)`: 0 means "no head pending".
            self.head_started_ms.store(now.max(1), Ordering::Relaxed);
        }
    }

    /// How long until a pending HTTP/1 request head overruns `limit`; `None` when no head is
    /// pending (or on HTTP/2, whose idle streams are governed by the idle timeout).
    pub fn head_remaining(&self, limit: Duration) -> Option<Duration> {
        let started = self.head_started_ms.load(Ordering::Relaxed);
        if started == 0
            || self.http2.load(Ordering::Relaxed)
            || self.inflight.load(Ordering::Acquire) > 0
        {
            return None;
        }
        Some(limit.saturating_sub(Duration::from_millis(now_ms().saturating_sub(started))))
    }

    /// How long until this connection has been idle for `limit`; zero when it already has.
    /// A connection with requests in flight is never idle.
    pub fn idle_remaining(&self, limit: Duration) -> Duration {
        if self.inflight.load(Ordering::Acquire) > 0 {
            return limit;
        }
        limit.saturating_sub(self.still())
    }

    /// Time since the last byte moved.
    fn still(&self) -> Duration {
        Duration::from_millis(now_ms().saturating_sub(self.last_ms.load(Ordering::Relaxed)))
    }

    /// How long until a connection with requests in flight has moved no bytes for `limit`
    /// (a stalled stream); `None` when no request is in flight.
    pub fn stall_remaining(&self, limit: Duration) -> Option<Duration> {
        if self.inflight.load(Ordering::Acquire) == 0 {
            return None;
        }
        Some(limit.saturating_sub(self.still()))
    }

    /// Records why the connection is being cut with requests in flight; the first reason
    /// stays.
    pub fn cut(&self, reason: String) {
        let _ = self.cut.set(reason);
    }

    /// Why the connection was cut, if it was.
    pub fn cut_reason(&self) -> Option<&str> {
        self.cut.get().map(String::as_str)
    }
}

/// Wraps a stream, recording the time of the last byte and the byte counts in [`Activity`].
pub struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> Tracked<S> {
    pub fn new(inner: S, activity: Arc<Activity>) -> Self {
        Self { inner, activity }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.on_read(&buf.filled()[before..]);
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = r {
            self.activity.written.fetch_add(n as u64, Ordering::Relaxed);
            self.activity.touch();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = r {
            self.activity.written.fetch_add(n as u64, Ordering::Relaxed);
            self.activity.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A stream whose first bytes were already read: they are read again first.
pub struct Prefixed<S> {
    prefix: bytes::Bytes,
    inner: S,
}

impl<S> Prefixed<S> {
    pub fn new(prefix: bytes::Bytes, inner: S) -> Self {
        Self { prefix, inner }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            let head = self.prefix.split_to(n);
            buf.put_slice(&head);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
