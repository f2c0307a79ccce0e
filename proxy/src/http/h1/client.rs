//! Requests hyper serves (HTTP/2 clients) forwarded to a cleartext HTTP/1.1 upstream on the
//! native codec: the head written from the `http` types, the response head parsed in place,
//! its body read by the stream that asked for it, and the connection back in the listener's
//! native idle pool when the body ends. No connection task, no channel, no pool checkout
//! future per request (hyper-util's pooled client does all three).
//!
//! Only requests whose body is empty at the head take this path (an HTTP/2 `GET`, `HEAD`,
//! `DELETE` …); a request with a body, an `Upgrade` or `CONNECT` goes through hyper's client
//! as before ([`crate::http::HttpProxy`]'s `send`).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use http::{HeaderMap, Request, Response, StatusCode, Version};
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;

use super::codec::{ChunkedScanner, Framing};
use super::conn::{self, Stop, Upstream, READ_SIZE};
use super::filtered::{self, Decoded};
use crate::http::body::{BoxError, RequestBody, UpBody};
use crate::http::bound::IdlePool;
use crate::http::{Failure, HttpProxy, Sent};

impl Stop {
    /// The local response for a stop before the response head (hyper's path answers it).
    fn into_failure(self) -> Failure {
        match self {
            Stop::Fail(f, _) => f,
            Stop::Abort(m) => Failure::protocol(m),
            // Only filters reply, and they ran before the request got here.
            Stop::Reply(_) => Failure::protocol("unexpected local reply".to_owned()),
        }
    }
}

impl HttpProxy {
    /// Sends `req` (its body is empty; hop-by-hop fields removed, forwarding fields and `host`
    /// added by `outbound`) to the upstream on an idle native connection or a new one, and
    /// reads the response head.
    pub(in crate::http) async fn send_native(&self, req: Request<RequestBody>) -> Sent {
        let (parts, _) = req.into_parts();
        let mut out = Vec::with_capacity(256);
        filtered::write_request_parts(&mut out, &parts, Framing::Empty);
        let (up, reused) = match self.native_idle.take() {
            Some(up) => (up, true),
            None => (
                conn::connect(self).await.map_err(Stop::into_failure)?,
                false,
            ),
        };
        let replayable = conn::idempotent(parts.method.as_str().as_bytes());
        let mut up = conn::write_request(self, up, reused, &out, replayable)
            .await
            .map_err(Stop::into_failure)?;
        let head = conn::read_response_head(&mut up, parts.method.as_str().as_bytes(), false)
            .await
            .map_err(Stop::into_failure)?;
        let bytes = up.buf.split_to(head.meta.len).freeze();
        let headers = filtered::raw_fields(&bytes, &head.meta)
            .to_map()
            .map_err(|e| Failure::protocol(format!("invalid response head from upstream: {e}")))?;
        let mut resp = Response::new(());
        *resp.status_mut() = StatusCode::from_u16(head.status)
            .map_err(|_| Failure::protocol(format!("invalid response status {}", head.status)))?;
        *resp.version_mut() = Version::HTTP_11;
        *resp.headers_mut() = headers;
        let reusable = !head.meta.close && head.framing != Framing::Close;
        let body = match head.framing {
            Framing::Empty => {
                self.release(up, reusable);
                UpBody::Buffered(Full::default())
            }
            Framing::Length(n) if n <= up.buf.len() as u64 => {
                let data = up.buf.split_to(n as usize).freeze();
                self.release(up, reusable);
                UpBody::Buffered(Full::new(data))
            }
            framing => UpBody::Native(Box::new(NativeBody {
                up: Some(up),
                framing,
                left: match framing {
                    Framing::Length(n) => n,
                    _ => 0,
                },
                scanner: ChunkedScanner::default(),
                decoded: Decoded::default(),
                trailers: None,
                reusable,
                idle: self.native_idle.clone(),
            })),
        };
        Ok((resp.map(|()| body), None))
    }

    /// Puts a connection whose response was read whole back in the idle pool.
    fn release(&self, up: Upstream, reusable: bool) {
        if reusable {
            self.native_idle.put(up);
        }
    }
}

/// A response body still on its upstream connection, decoded as it is read. The connection
/// goes back to the idle pool at the end of a body framed by length or chunks; a body
/// dropped before its end closes it.
pub struct NativeBody {
    /// `None` once the body ended.
    up: Option<Upstream>,
    framing: Framing,
    /// Bytes left of a `Length` body.
    left: u64,
    scanner: ChunkedScanner,
    decoded: Decoded,
    /// The trailers of a chunked body, sent after its last data.
    trailers: Option<HeaderMap>,
    reusable: bool,
    idle: Arc<IdlePool<Upstream>>,
}

#[derive(Debug, thiserror::Error)]
#[error("upstream response body: {0}")]
struct BodyError(String);

fn body_error(m: impl Into<String>) -> BoxError {
    Box::new(BodyError(m.into()))
}

impl NativeBody {
    /// The body ended: the connection goes back to the pool when nothing else came on it.
    fn finish(&mut self) {
        if let Some(up) = self.up.take() {
            if self.reusable && up.buf.is_empty() {
                self.idle.put(up);
            }
        }
    }

    /// The next frame from what is buffered, or `None` when more must be read.
    fn next_buffered(&mut self) -> Result<Option<Frame<Bytes>>, BoxError> {
        let Some(up) = self.up.as_mut() else {
            return Ok(self.trailers.take().map(Frame::trailers));
        };
        if up.buf.is_empty() {
            return Ok(None);
        }
        match self.framing {
            Framing::Length(_) => {
                let n = self.left.min(up.buf.len() as u64);
                self.left -= n;
                let data = up.buf.split_to(n as usize).freeze();
                if self.left == 0 {
                    self.finish();
                }
                Ok(Some(Frame::data(data)))
            }
            Framing::Chunked => {
                let s = self
                    .scanner
                    .scan_into(&up.buf, &mut self.decoded)
                    .map_err(|e| body_error(format!("invalid chunked body: {e}")))?;
                up.buf.advance(s.consumed);
                if s.done {
                    if !self.decoded.trailers.is_empty() {
                        self.trailers = Some(
                            filtered::parse_trailers(&self.decoded.trailers).map_err(body_error)?,
                        );
                    }
                    self.finish();
                }
                let data = self.decoded.data.split().freeze();
                if !data.is_empty() {
                    return Ok(Some(Frame::data(data)));
                }
                Ok(self.trailers.take().map(Frame::trailers))
            }
            Framing::Close => Ok(Some(Frame::data(up.buf.split().freeze()))),
            Framing::Empty => {
                self.finish();
                Ok(None)
            }
        }
    }
}

impl Body for NativeBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            match this.next_buffered() {
                Err(e) => {
                    // The connection is in an unknown state: closed, not pooled.
                    this.up = None;
                    return Poll::Ready(Some(Err(e)));
                }
                Ok(Some(f)) => return Poll::Ready(Some(Ok(f))),
                Ok(None) => {}
            }
            let Some(up) = this.up.as_mut() else {
                return Poll::Ready(None);
            };
            up.buf.reserve(READ_SIZE);
            match ready!(tokio_util::io::poll_read_buf(
                Pin::new(&mut up.io),
                cx,
                &mut up.buf
            )) {
                Ok(0) if this.framing == Framing::Close => {
                    this.up = None;
                    return Poll::Ready(None);
                }
                Ok(0) => {
                    this.up = None;
                    return Poll::Ready(Some(Err(body_error(
                        "upstream closed the connection before the body ended",
                    ))));
                }
                Ok(_) => {}
                Err(e) => {
                    this.up = None;
                    return Poll::Ready(Some(Err(body_error(format!("reading: {e}")))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.up.is_none() && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match (self.framing, &self.up) {
            (Framing::Length(_), Some(_)) => SizeHint::with_exact(self.left),
            (_, None) => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}
