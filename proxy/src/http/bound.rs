//! An HTTP/1.x downstream connection's own upstream HTTP/1.1 connection.
//!
//! The pooled client (`hyper_util`'s legacy `Client`) runs every upstream connection as a task
//! of its own, so one proxied request crosses four tasks: the downstream connection, the pool
//! checkout, the upstream connection and the response channel back. An HTTP/1.x downstream
//! connection carries one request at a time, so it can instead hold one upstream connection
//! and drive it from its own task ([`Bound::poll_drive`], polled by `HttpProxy::serve` next to
//! the downstream connection): request, response and body then pass between the two
//! connections without waking another task.
//!
//! Between downstream connections, idle upstream connections wait in an [`IdlePool`] so a
//! client that opens a connection per request does not cost the upstream one as well.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use hyper::client::conn::http1::SendRequest;

use super::body::RequestBody;

/// An upstream connection's I/O future (hyper's `Connection`), boxed: one allocation per
/// upstream connection, not per request.
type ConnFuture = Pin<Box<dyn Future<Output = hyper::Result<()>> + Send>>;

/// One upstream HTTP/1.1 connection: the handle requests go in by and the future that does
/// its I/O.
pub struct Upstream {
    pub sender: SendRequest<RequestBody>,
    conn: ConnFuture,
}

impl Upstream {
    pub fn new<F>(sender: SendRequest<RequestBody>, conn: F) -> Self
    where
        F: Future<Output = hyper::Result<()>> + Send + 'static,
    {
        Self {
            sender,
            conn: Box::pin(conn),
        }
    }

    /// Whether the connection can take a request now: open and idle. Polls its I/O once, with
    /// a waker that does nothing, so a close the upstream sent while nobody was polling (in
    /// the idle pool) is seen before a request is handed to it.
    fn usable(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        match self.conn.as_mut().poll(&mut cx) {
            Poll::Ready(_) => false,
            Poll::Pending => self.sender.is_ready() && !self.sender.is_closed(),
        }
    }
}

#[derive(Default)]
struct Slot {
    /// `None` while a request is being handed over (between `take` and `put`), or when the
    /// connection has none.
    sender: Option<SendRequest<RequestBody>>,
    conn: Option<ConnFuture>,
    /// The connection task's waker, while there is no upstream connection to drive.
    waker: Option<Waker>,
}

/// The upstream connection bound to one downstream connection.
#[derive(Default)]
pub struct Bound {
    slot: Mutex<Slot>,
}

impl Bound {
    fn lock(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drives the bound upstream connection's I/O. Ready when that connection has ended (the
    /// caller polls again for the next one); pending while there is none.
    pub fn poll_drive(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = self.lock();
        let Some(conn) = s.conn.as_mut() else {
            s.waker = Some(cx.waker().clone());
            return Poll::Pending;
        };
        match conn.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(r) => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "upstream connection ended with an error");
                }
                s.conn = None;
                s.sender = None;
                Poll::Ready(())
            }
        }
    }

    /// The bound connection's sender, when the connection is open.
    pub fn take_open(&self) -> Option<SendRequest<RequestBody>> {
        let mut s = self.lock();
        match &s.sender {
            Some(tx) if !tx.is_closed() => s.sender.take(),
            _ => None,
        }
    }

    /// Binds `up` (replacing an ended or idle connection) and returns its sender.
    pub fn bind(&self, up: Upstream) -> SendRequest<RequestBody> {
        let mut s = self.lock();
        s.conn = Some(up.conn);
        s.sender = None;
        if let Some(w) = s.waker.take() {
            w.wake();
        }
        up.sender
    }

    /// Gives the sender back after a request was handed to it.
    pub fn put(&self, sender: SendRequest<RequestBody>) {
        let mut s = self.lock();
        if s.conn.is_some() {
            s.sender = Some(sender);
        }
    }

    /// Unbinds the connection for reuse by another downstream connection, if it is idle.
    pub fn release(&self) -> Option<Upstream> {
        let mut s = self.lock();
        let (sender, conn) = (s.sender.take()?, s.conn.take()?);
        let mut up = Upstream { sender, conn };
        up.usable().then_some(up)
    }
}

/// How long an upstream connection may wait unused in the pool (as the pooled client).
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Idle upstream connections at most kept per listener (as the pooled client).
const MAX_IDLE: usize = 256;

/// An idle upstream connection that can tell whether it is still worth reusing.
pub trait Reusable {
    /// Open and idle (checked before each reuse).
    fn usable(&mut self) -> bool;
}

impl Reusable for Upstream {
    fn usable(&mut self) -> bool {
        Upstream::usable(self)
    }
}

/// Idle upstream connections between downstream connections, newest last (hyper's
/// [`Upstream`] here, the native engine's in `h1::conn`).
pub struct IdlePool<U = Upstream> {
    idle: Mutex<Vec<(Instant, U)>>,
}

impl<U> Default for IdlePool<U> {
    fn default() -> Self {
        Self {
            idle: Mutex::default(),
        }
    }
}

impl<U: Reusable> IdlePool<U> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(Instant, U)>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The most recently used idle connection that is still open.
    pub fn take(&self) -> Option<U> {
        let mut idle = self.lock();
        let now = Instant::now();
        while let Some((since, mut up)) = idle.pop() {
            if now.duration_since(since) < IDLE_TIMEOUT && up.usable() {
                return Some(up);
            }
        }
        None
    }

    pub fn put(&self, up: U) {
        let mut idle = self.lock();
        let now = Instant::now();
        // Oldest first (`put` appends, `take` pops the newest): the expired are a prefix.
        let expired = idle.partition_point(|(since, _)| now.duration_since(*since) >= IDLE_TIMEOUT);
        idle.drain(..expired);
        if idle.len() >= MAX_IDLE {
            idle.remove(0);
        }
        idle.push((now, up));
    }
}
