//! One HTTP/1.1 client connection on the native path: heads parsed in place by [`codec`],
//! bodies passed through as bytes, one upstream HTTP/1.1 connection bound to the client
//! connection, and the whole exchange in this one task (no `http::Request`, no channels).
//!
//! What it does not take, it hands to hyper at a request boundary, with the bytes already
//! read ([`Served::HandOff`]): the HTTP/2 preface, HTTP/1.0, `Upgrade`,
//! `Expect: 100-continue`, targets other than origin-form (`CONNECT`, absolute form), and
//! gRPC content types, and requests with a body when a filter of the listener has request
//! body callbacks. Listeners with an HTTP/2 or TLS upstream do not use it. The listener's
//! filters run here otherwise ([`super::filtered`]).
//!
//! Not yet: the request body is sent in full before the response head is read, so an
//! upstream that answers early while a large upload is still coming waits for the upload.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::StatusCode;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::codec::{self, ChunkedScanner, Forwarded, Framing, HeadError, RequestHead};
use super::filtered::OutBody;
use crate::flows::Verdict;
use crate::http::body::{FlowContext, FlowGuard};
use crate::http::bound::Reusable as _;
use crate::http::headers::ClientAddr;
use crate::http::{connect_failure, stalled, Failure, HttpProxy};
use crate::io::{Activity, AsyncStream};
use crate::metrics::UpstreamErrorKind;
use crate::wasm::{BodyKind, Chain};

/// How a connection left the native path.
pub enum Served<S> {
    /// It ended (closed by either side, idle, drained, or refused).
    Closed,
    /// A request hyper serves: the connection and the bytes read from it so far.
    HandOff(S, BytesMut),
}

/// Largest response head taken from an upstream.
const RESPONSE_HEAD_LIMIT: usize = 256 * 1024;
/// Read size of both directions.
pub(super) const READ_SIZE: usize = 8192;

/// An upstream connection and the bytes read from it that were not used yet.
pub struct Upstream {
    pub(super) io: Box<dyn AsyncStream + Sync>,
    pub(super) buf: BytesMut,
}

impl crate::http::bound::Reusable for Upstream {
    /// Open, and has sent nothing unasked (a close or stray bytes make it unusable).
    fn usable(&mut self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let mut probe = [0u8; 1];
        let mut rb = tokio::io::ReadBuf::new(&mut probe);
        std::pin::Pin::new(&mut self.io)
            .poll_read(&mut cx, &mut rb)
            .is_pending()
    }
}

/// What waiting for a request head gave.
// Returned once per head and matched at once; boxing would allocate per request.
#[allow(clippy::large_enum_variant)]
enum HeadRead {
    Head(RequestHead),
    /// Bytes hyper serves (the HTTP/2 preface).
    HandOff,
    /// The connection ended: closed, idle, drained, timed out or refused.
    Closed,
}

/// Why an exchange stopped before its end.
pub(super) enum Stop {
    /// A local response goes to the client; whether the connection can go on after it.
    Fail(Failure, bool),
    /// A filter answered: this head and body go to the client (already counted and
    /// recorded); the connection can go on after it.
    /// Boxed: rare, and it would triple the size of every `Result` carrying a `Stop`.
    Reply(Box<(http::Response<()>, Bytes)>),
    /// Nothing more can be sent (the client went away, or the upstream failed after the
    /// response head): the client connection closes.
    Abort(String),
}

/// Per-connection state.
pub(super) struct Conn<'a, S> {
    pub(super) p: &'a HttpProxy,
    io: S,
    pub(super) peer: SocketAddr,
    pub(super) tls: bool,
    pub(super) client: ClientAddr,
    activity: Arc<Activity>,
    pub(super) rbuf: BytesMut,
    pub(super) out: Vec<u8>,
    up: Option<Upstream>,
}

impl HttpProxy {
    /// Serves `io` on the native path until it ends or a request needs hyper.
    pub(crate) async fn serve_native<S: AsyncStream>(
        &self,
        io: S,
        peer: SocketAddr,
        tls: bool,
        shutdown: &CancellationToken,
    ) -> Served<S> {
        let mut c = Conn {
            p: self,
            io,
            peer,
            tls,
            client: ClientAddr::new(peer.ip()),
            activity: Activity::new(),
            rbuf: BytesMut::with_capacity(READ_SIZE),
            out: Vec::with_capacity(READ_SIZE),
            up: None,
        };
        let served = c.run(shutdown).await;
        if let Some(mut up) = c.up.take() {
            if up.usable() {
                self.native_idle.put(up);
            }
        }
        match served {
            Some(()) => Served::HandOff(c.io, c.rbuf),
            None => Served::Closed,
        }
    }
}

impl<S: AsyncStream> Conn<'_, S> {
    /// `Some(())` when hyper takes over.
    async fn run(&mut self, shutdown: &CancellationToken) -> Option<()> {
        loop {
            let head = match self.read_head(shutdown).await {
                HeadRead::Head(h) => h,
                HeadRead::HandOff => return Some(()),
                HeadRead::Closed => return None,
            };
            let target = &self.rbuf[head.target.clone()];
            // The chain in force when the request arrives judges it (reloads included).
            let chain = self.p.filters.load_full();
            let chain = (!chain.plugins.is_empty()).then_some(chain);
            if head.meta.upgrade
                || head.expect_continue
                || head.meta.minor == 0
                || !target.starts_with(b"/")
                || is_grpc(&self.rbuf, &head)
                || (head.framing != Framing::Empty
                    && chain
                        .as_ref()
                        .is_some_and(|c| c.wants_body(BodyKind::Request)))
            {
                return Some(());
            }
            match self.exchange(&head, chain, shutdown).await {
                Ok(false) if !shutdown.is_cancelled() => {}
                Ok(_) => {
                    let _ = self.io.shutdown().await;
                    return None;
                }
                Err(()) => return None,
            }
        }
    }

    /// Waits for a complete request head.
    async fn read_head(&mut self, shutdown: &CancellationToken) -> HeadRead {
        let cfg = &self.p.cfg;
        let idle_deadline = Instant::now() + cfg.timeouts.idle;
        let mut head_deadline = None;
        loop {
            if !self.rbuf.is_empty() {
                if self.rbuf.starts_with(b"PRI ") {
                    // The HTTP/2 preface (prior knowledge).
                    return HeadRead::HandOff;
                }
                match codec::parse_request(&self.rbuf, cfg.max_header_bytes) {
                    Ok(Some(h)) => return HeadRead::Head(h),
                    Ok(None) => {}
                    Err(e) => {
                        self.refuse(e).await;
                        return HeadRead::Closed;
                    }
                }
                head_deadline.get_or_insert_with(|| Instant::now() + cfg.timeouts.header_read);
            }
            let deadline = head_deadline.unwrap_or(idle_deadline);
            if self.rbuf.capacity() - self.rbuf.len() < READ_SIZE / 2 {
                self.rbuf.reserve(READ_SIZE);
            }
            tokio::select! {
                biased;
                r = self.io.read_buf(&mut self.rbuf) => match r {
                    Ok(0) | Err(_) => return HeadRead::Closed,
                    Ok(_) => {}
                },
                _ = tokio::time::sleep_until(deadline) => {
                    if head_deadline.is_some() {
                        self.p.head_timeout(self.peer, cfg.timeouts.header_read);
                    }
                    return HeadRead::Closed;
                }
                _ = shutdown.cancelled(), if self.rbuf.is_empty() => return HeadRead::Closed,
            }
        }
    }

    /// Answers a refused head and records it.
    async fn refuse(&mut self, e: HeadError) {
        let p = self.p;
        let status = e.status();
        p.metrics.bad_requests.inc();
        p.metrics.response(status);
        p.flows.emit(crate::flows::FlowRecord {
            error: Some(format!("bad request: {e}")),
            ..p.connection_flow(self.peer, Some(status))
        });
        self.out.clear();
        local_response(&mut self.out, status, &e.to_string(), true);
        let _ = self.io.write_all(&self.out).await;
        let _ = self.io.shutdown().await;
    }

    /// One request and its response. `Ok(close)`: done, and whether the client connection
    /// closes now; `Err(())`: it closed.
    async fn exchange(
        &mut self,
        head: &RequestHead,
        chain: Option<Arc<Chain>>,
        shutdown: &CancellationToken,
    ) -> Result<bool, ()> {
        let p = self.p;
        p.metrics.requests.inc();
        let method = &self.rbuf[head.method.clone()];
        let is_head = method.eq_ignore_ascii_case(b"HEAD");
        let mut idempotent = idempotent(method);
        // When the exchange stops before the request was sent whole, a request body may be
        // left unread on the connection: read as the next request head, it would be a
        // request nobody judged. The connection closes then.
        let close_unsent = head.meta.close || head.framing != Framing::Empty;
        let ctx = FlowContext {
            source: self.peer,
            destination: p.target.authority.as_str(),
            listener: &p.cfg.name,
            protocol: "HTTP/1.1",
            identity: p.identity,
            destination_identity: p.destination_identity,
        };
        let buf = &self.rbuf;
        let text = |r: std::ops::Range<usize>| std::str::from_utf8(&buf[r]).ok();
        let mut guard = FlowGuard::from_parts(
            &p.flows,
            self.activity.clone(),
            ctx,
            text(head.method.clone()).unwrap_or("?"),
            || {
                head.host
                    .and_then(|i| text(head.meta.fields[i].value.clone()))
            },
            || text(head.target.clone()),
        );
        self.out.clear();
        let sf = match chain {
            None => {
                codec::write_request(
                    &mut self.out,
                    &self.rbuf,
                    head,
                    Forwarded {
                        client: self.client.as_bytes(),
                        tls: self.tls,
                        authority: p.target.authority.as_str().as_bytes(),
                    },
                );
                self.rbuf.advance(head.meta.len);
                None
            }
            Some(chain) => match self.filter_request(head, chain, &mut guard).await {
                Ok((sf, method)) => {
                    if let Some(m) = method {
                        if (m == http::Method::HEAD) != is_head {
                            // The upstream would frame its response for one method and the
                            // client read it for the other (a body it does not expect, or
                            // none where it waits for one).
                            let what = if is_head {
                                format!("a filter changed a HEAD request's method to {m}")
                            } else {
                                "a filter changed the request method to HEAD".to_owned()
                            };
                            let f = Failure::local(
                                StatusCode::INTERNAL_SERVER_ERROR,
                                format!("{what}: changing it to or from HEAD is not supported"),
                            );
                            return self.stopped(Stop::Fail(f, true), guard, close_unsent).await;
                        }
                        idempotent = m.is_idempotent();
                    }
                    Some(sf)
                }
                Err(stop) => return self.stopped(stop, guard, close_unsent).await,
            },
        };

        let sent = match p.cfg.timeouts.request {
            Some(limit) => {
                match tokio::time::timeout(
                    limit,
                    self.send(head.framing, is_head, idempotent, &guard),
                )
                .await
                {
                    Ok(r) => r,
                    Err(_) => Err(Stop::Fail(
                        Failure {
                            status: StatusCode::GATEWAY_TIMEOUT,
                            grpc_status: 4,
                            kind: Some(UpstreamErrorKind::Timeout),
                            message: format!("upstream did not answer within {limit:?}"),
                        },
                        false,
                    )),
                }
            }
            None => self.send(head.framing, is_head, idempotent, &guard).await,
        };
        let (resp, mut up) = match sent {
            Ok(r) => r,
            // The upstream may have failed before the body was all read.
            Err(stop) => return self.stopped(stop, guard, close_unsent).await,
        };
        let close = head.meta.close || resp.framing == Framing::Close || shutdown.is_cancelled();
        self.out.clear();
        let out = match &sf {
            None => {
                let status = resp.status;
                p.metrics.response(status);
                p.metrics.latency.observe(guard.elapsed().as_secs_f64());
                guard.status(status);
                codec::write_response(&mut self.out, &up.buf, &resp, close);
                up.buf.advance(resp.meta.len);
                OutBody::Raw
            }
            Some(sf) => match self
                .filter_response(sf, &resp, &mut up, close, &mut guard)
                .await
            {
                Ok(out) => out,
                // The response body was not read: the upstream connection goes.
                Err(stop) => return self.stopped(stop, guard, head.meta.close).await,
            },
        };
        let reusable = !resp.meta.close && resp.framing != Framing::Close && out != OutBody::None;
        let relayed = match (out, &sf) {
            // The head alone; the upstream's body is left unread with its connection.
            (OutBody::None, _) => self.write_out().await,
            (OutBody::Raw, _) | (_, None) => {
                self.relay_response(&mut up, resp.framing, &mut guard).await
            }
            (out, Some(sf)) => {
                self.relay_filtered(&mut up, resp.framing, out, sf, &mut guard)
                    .await
            }
        };
        // The filters' contexts end (`on_done`, `on_log`) with the response.
        drop(sf);
        match relayed {
            Ok(()) => {
                guard.complete();
                if reusable {
                    self.up = Some(up);
                }
                Ok(close)
            }
            Err(stop) => self.stopped(stop, guard, true).await,
        }
    }

    /// Ends an exchange that stopped: a local response when nothing was sent yet. The bound
    /// upstream connection stays when the request never reached it (a filter answered the
    /// request head); once taken for a request, it is not back in `self.up`.
    async fn stopped(&mut self, stop: Stop, mut guard: FlowGuard, close: bool) -> Result<bool, ()> {
        let (close, sent) = match stop {
            Stop::Fail(f, can_go_on) => {
                let p = self.p;
                if let Some(kind) = f.kind {
                    p.metrics.upstream_error(kind);
                }
                let status = f.status.as_u16();
                p.metrics.response(status);
                p.metrics.latency.observe(guard.elapsed().as_secs_f64());
                guard.status(status);
                guard.fail(Verdict::Error, f.message.clone());
                let close = close || !can_go_on;
                self.out.clear();
                local_response(&mut self.out, status, &f.message, close);
                (close, f.message.len() as u64 + 1)
            }
            Stop::Reply(reply) => {
                let (resp, body) = *reply;
                let (parts, ()) = resp.into_parts();
                self.out.clear();
                let framing = Framing::Length(body.len() as u64);
                super::filtered::write_response_parts(&mut self.out, &parts, framing, close);
                self.out.extend_from_slice(&body);
                (close, body.len() as u64)
            }
            Stop::Abort(why) => {
                guard.fail(Verdict::Error, why);
                return Err(());
            }
        };
        guard.sent(sent);
        let limit = self.p.cfg.timeouts.stream_idle;
        let written = moving(limit, self.io.write_all(&self.out)).await;
        guard.complete();
        match written {
            Some(Ok(())) => Ok(close),
            _ => Err(()),
        }
    }

    /// Writes `self.out` to the client and empties it. `timeouts.stream_idle` applies to
    /// each write, so a client that reads a large filtered body slowly is not cut.
    pub(super) async fn write_out(&mut self) -> Result<(), Stop> {
        let limit = self.p.cfg.timeouts.stream_idle;
        let mut at = 0;
        while at < self.out.len() {
            let n = moving(limit, self.io.write(&self.out[at..]))
                .await
                .ok_or_else(|| stall(limit, "to the client"))?
                .map_err(|e| Stop::Abort(format!("writing the response: {e}")))?;
            if n == 0 {
                return Err(Stop::Abort(
                    "writing the response: the client closed".into(),
                ));
            }
            at += n;
        }
        self.out.clear();
        Ok(())
    }

    /// Reads more of the response from the upstream into `up.buf`.
    pub(super) async fn read_upstream(&self, up: &mut Upstream) -> Result<usize, Stop> {
        let limit = self.p.cfg.timeouts.stream_idle;
        up.buf.reserve(READ_SIZE);
        moving(limit, up.io.read_buf(&mut up.buf))
            .await
            .ok_or_else(|| stall(limit, "from the upstream"))?
            .map_err(|e| Stop::Abort(format!("reading the response body: {e}")))
    }

    /// Sends the request (head in `self.out`, then its body) upstream and reads the
    /// response head; gives it with the upstream connection to read the body from.
    async fn send(
        &mut self,
        framing: Framing,
        is_head: bool,
        idempotent: bool,
        guard: &FlowGuard,
    ) -> Result<(codec::ResponseHead, Upstream), Stop> {
        // The body bytes already read go out with the head.
        let mut left = 0;
        let mut scanner = ChunkedScanner::default();
        match framing {
            Framing::Empty | Framing::Close => {}
            Framing::Length(n) => {
                let take = n.min(self.rbuf.len() as u64) as usize;
                self.out.extend_from_slice(&self.rbuf[..take]);
                self.rbuf.advance(take);
                guard.add_received(take as u64);
                left = n - take as u64;
            }
            Framing::Chunked => {
                let s = scanner.scan(&self.rbuf).map_err(|e| self.bad_body(e))?;
                self.out.extend_from_slice(&self.rbuf[..s.consumed]);
                self.rbuf.advance(s.consumed);
                guard.add_received(s.payload);
            }
        }
        // An idempotent request whole in `self.out` can be sent again on a new connection
        // when a reused one turns out closed (the upstream's keep-alive timeout raced it).
        let replayable =
            idempotent && left == 0 && (framing != Framing::Chunked || scanner.is_done());
        // All of this runs within `timeouts.request`: `stream_idle` matters only when it is
        // the shorter one (and a timer per request is saved when it is not).
        let t = &self.p.cfg.timeouts;
        let limit = t.stream_idle.filter(|s| t.request.is_none_or(|r| r > *s));
        let (up, reused) = self.upstream().await?;
        let mut up = moving(
            limit,
            write_request(self.p, up, reused, &self.out, replayable),
        )
        .await
        .ok_or_else(|| stall(limit, "to the upstream"))??;
        // The rest of the body, as it comes.
        while left > 0 || (framing == Framing::Chunked && !scanner.is_done()) {
            self.rbuf.clear();
            self.rbuf.reserve(READ_SIZE);
            match moving(limit, self.io.read_buf(&mut self.rbuf))
                .await
                .ok_or_else(|| stall(limit, "from the client"))?
            {
                Ok(0) | Err(_) => {
                    return Err(Stop::Abort(
                        "client closed the connection during the request body".into(),
                    ))
                }
                Ok(_) => {}
            }
            let n = if framing == Framing::Chunked {
                let s = scanner.scan(&self.rbuf).map_err(|e| self.bad_body(e))?;
                guard.add_received(s.payload);
                s.consumed
            } else {
                let n = left.min(self.rbuf.len() as u64) as usize;
                left -= n as u64;
                guard.add_received(n as u64);
                n
            };
            moving(limit, up.io.write_all(&self.rbuf[..n]))
                .await
                .ok_or_else(|| stall(limit, "to the upstream"))?
                .map_err(|e| upstream_failed(format!("writing the request body upstream: {e}")))?;
            self.rbuf.advance(n);
        }
        let method: &[u8] = if is_head { b"HEAD" } else { b"GET" };
        loop {
            let head = moving(limit, read_response_head(&mut up, method, true))
                .await
                .ok_or_else(|| stall(limit, "from the upstream"))??;
            if !(100..200).contains(&head.status) {
                return Ok((head, up));
            }
            // An interim response (103 Early Hints, 102, an unasked 100) goes to the client
            // as it comes (RFC 9110 §15.2: a proxy forwards 1xx responses), unfiltered: the
            // proxy-wasm ABI has no callback for it. The client speaks HTTP/1.1 here (the
            // native path hands HTTP/1.0 to hyper).
            self.out.clear();
            codec::write_response(&mut self.out, &up.buf, &head, false);
            up.buf.advance(head.meta.len);
            moving(limit, self.io.write_all(&self.out))
                .await
                .ok_or_else(|| stall(limit, "to the client"))?
                .map_err(|e| Stop::Abort(format!("writing an interim response: {e}")))?;
        }
    }

    fn bad_body(&self, e: codec::ChunkError) -> Stop {
        self.p.metrics.bad_requests.inc();
        Stop::Fail(
            Failure::local(StatusCode::BAD_REQUEST, format!("bad request body: {e}")),
            false,
        )
    }

    /// The bound upstream connection if it is still open, else an idle or new one; and
    /// whether it was used before.
    async fn upstream(&mut self) -> Result<(Upstream, bool), Stop> {
        if let Some(mut up) = self.up.take() {
            if up.usable() {
                return Ok((up, true));
            }
        }
        if let Some(up) = self.p.native_idle.take() {
            return Ok((up, true));
        }
        Ok((connect(self.p).await?, false))
    }

    /// Relays the response body (the head is in `self.out`) to the client.
    async fn relay_response(
        &mut self,
        up: &mut Upstream,
        framing: Framing,
        guard: &mut FlowGuard,
    ) -> Result<(), Stop> {
        let mut left = 0;
        let mut scanner = ChunkedScanner::default();
        let mut done = false;
        let mut take =
            |up: &mut Upstream, left: &mut u64, done: &mut bool| -> Result<usize, Stop> {
                match framing {
                    Framing::Empty => {
                        *done = true;
                        Ok(0)
                    }
                    Framing::Length(_) => {
                        let n = (*left).min(up.buf.len() as u64);
                        *left -= n;
                        *done = *left == 0;
                        guard.sent(n);
                        Ok(n as usize)
                    }
                    Framing::Chunked => {
                        let s = scanner
                            .scan(&up.buf)
                            .map_err(|e| Stop::Abort(format!("invalid response body: {e}")))?;
                        *done = s.done;
                        guard.sent(s.payload);
                        Ok(s.consumed)
                    }
                    Framing::Close => {
                        guard.sent(up.buf.len() as u64);
                        Ok(up.buf.len())
                    }
                }
            };
        if let Framing::Length(n) = framing {
            left = n;
        }
        let n = take(up, &mut left, &mut done)?;
        self.out.extend_from_slice(&up.buf[..n]);
        up.buf.advance(n);
        loop {
            self.write_out().await?;
            if done {
                return Ok(());
            }
            match self.read_upstream(up).await? {
                0 if framing == Framing::Close => return Ok(()),
                0 => {
                    return Err(Stop::Abort(
                        "upstream closed the connection before the response body ended".into(),
                    ))
                }
                _ => {}
            }
            let n = take(up, &mut left, &mut done)?;
            self.out.extend_from_slice(&up.buf[..n]);
            up.buf.advance(n);
        }
    }
}

/// `fut`, or `None` when it made no progress for `limit` (`timeouts.stream_idle`; `None`:
/// no limit). A future that is ready at once (most writes, a read of bytes already there)
/// arms no timer.
pub(super) async fn moving<F: Future>(limit: Option<Duration>, fut: F) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    let Some(limit) = limit else {
        return Some(fut.await);
    };
    match std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await {
        Poll::Ready(out) => Some(out),
        Poll::Pending => tokio::time::timeout(limit, fut).await.ok(),
    }
}

/// The stream stalled for `limit` (`place`: where nothing moved): the connection closes.
pub(super) fn stall(limit: Option<Duration>, place: &str) -> Stop {
    Stop::Abort(stalled(limit.unwrap_or_default(), place))
}

/// Writes a request (`bytes`) on `up`. When `replayable` (the request is idempotent and
/// nothing of it is left to send) and a `reused` connection turns out closed without an
/// answer (the upstream's keep-alive timeout raced the request), sends it again on a new
/// connection. Other requests are not sent twice (RFC 9110 §9.2.2): the upstream may have
/// acted on them.
pub(super) async fn write_request(
    p: &HttpProxy,
    mut up: Upstream,
    mut reused: bool,
    bytes: &[u8],
    replayable: bool,
) -> Result<Upstream, Stop> {
    loop {
        let written = up.io.write_all(bytes).await;
        if replayable && reused && (written.is_err() || closed_unanswered(&mut up).await) {
            (up, reused) = (connect(p).await?, false);
            continue;
        }
        written.map_err(|e| upstream_failed(format!("writing the request upstream: {e}")))?;
        return Ok(up);
    }
}

/// Reads a response head to a request with method `method` from `up`: the final one, or
/// with `interim` also an interim (1xx) one, which the caller forwards (RFC 9110 §15.2);
/// without it, interim responses are skipped. Its bytes stay at the front of `up.buf`.
pub(super) async fn read_response_head(
    up: &mut Upstream,
    method: &[u8],
    interim: bool,
) -> Result<codec::ResponseHead, Stop> {
    loop {
        match codec::parse_response(&up.buf, RESPONSE_HEAD_LIMIT, method) {
            Ok(Some(h)) if h.status == 101 => {
                return Err(upstream_failed(
                    "upstream switched protocols without being asked to".into(),
                ))
            }
            Ok(Some(h)) if !interim && (100..200).contains(&h.status) => {
                up.buf.advance(h.meta.len);
                continue;
            }
            Ok(Some(h)) => return Ok(h),
            Ok(None) => {}
            Err(e) => {
                return Err(upstream_failed(format!("invalid response head: {e}")));
            }
        }
        up.buf.reserve(READ_SIZE);
        match up.io.read_buf(&mut up.buf).await {
            Ok(0) => {
                return Err(upstream_failed(
                    "upstream closed the connection before a response".into(),
                ))
            }
            Err(e) => return Err(upstream_failed(format!("reading the response: {e}"))),
            Ok(_) => {}
        }
    }
}

/// A new upstream connection.
pub(super) async fn connect(p: &HttpProxy) -> Result<Upstream, Stop> {
    // Boxed: the connect (resolve, TCP, TLS handshake) future is large, and held inline it
    // would make every request's `send` and `exchange` futures as large, copied with each
    // request; a new connection is rare next to a request on a kept one.
    let io = Box::pin(p.upstreams.connector.connect())
        .await
        .map_err(|e| Stop::Fail(connect_failure(&e), true))?;
    Ok(Upstream {
        io: io.into_tokio(),
        buf: BytesMut::with_capacity(READ_SIZE),
    })
}

/// After a request went out on a reused connection: whether the upstream closed it without
/// a byte of response (then the request was not taken). Waits for the first response bytes.
async fn closed_unanswered(up: &mut Upstream) -> bool {
    up.buf.reserve(READ_SIZE);
    matches!(up.io.read_buf(&mut up.buf).await, Ok(0) | Err(_)) && up.buf.is_empty()
}

/// Whether a request with `method` may be sent again automatically (RFC 9110 §9.2.2).
pub(super) fn idempotent(method: &[u8]) -> bool {
    const IDEMPOTENT: [&[u8]; 6] = [b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"];
    IDEMPOTENT.contains(&method)
}

/// gRPC (`content-type: application/grpc…`): its errors are answered in gRPC's form.
fn is_grpc(buf: &[u8], head: &RequestHead) -> bool {
    head.meta.fields.iter().any(|f| {
        buf[f.name.clone()].eq_ignore_ascii_case(b"content-type")
            && buf[f.value.clone()]
                .get(..16)
                .is_some_and(|v| v.eq_ignore_ascii_case(b"application/grpc"))
    })
}

pub(super) fn upstream_failed(message: String) -> Stop {
    Stop::Fail(
        Failure {
            status: StatusCode::BAD_GATEWAY,
            grpc_status: 14,
            kind: Some(UpstreamErrorKind::Protocol),
            message: format!("upstream failed before a response: {message}"),
        },
        false,
    )
}

/// A short local response: `status`, a one-line plain-text body.
fn local_response(out: &mut Vec<u8>, status: u16, message: &str, close: bool) {
    use std::io::Write as _;
    let reason = StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let _ = write!(
        out,
        "HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n\
         content-length: {}\r\n{}via: 1.1 strait\r\n\r\n{message}\n",
        message.len() + 1,
        if close { "connection: close\r\n" } else { "" },
    );
}
