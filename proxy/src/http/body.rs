//! Body wrappers: byte counting on the request side, and on the response side the flow guard
//! that emits the request's flow record when the response ends (or is abandoned).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use crate::flows::{rfc3339, FlowRecord, Flows, Verdict};
use crate::io::Activity;

/// A client's request body on its way upstream, counting bytes as they pass.
pub struct RequestBody {
    inner: Incoming,
    /// `None` when no one reads flow records: nothing to count.
    received: Option<Arc<AtomicU64>>,
}

impl RequestBody {
    pub fn new(inner: Incoming, received: Option<Arc<AtomicU64>>) -> Self {
        Self { inner, received }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let r = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        if let (Some(Ok(f)), Some(received)) = (&r, &self.received) {
            if let Some(d) = f.data_ref() {
                received.fetch_add(d.len() as u64, Ordering::Relaxed);
            }
        }
        Poll::Ready(r)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Tracks one request from arrival to the end of its response and emits its flow record once.
pub struct FlowGuard {
    flows: Flows,
    activity: Arc<Activity>,
    start: Instant,
    received: Option<Arc<AtomicU64>>,
    /// Built only when someone reads flow records.
    rec: Option<Box<FlowRecord>>,
    done: bool,
}

/// Where a request came from and went to, for its flow record.
pub struct FlowContext<'a> {
    pub source: SocketAddr,
    pub destination: &'a str,
    pub listener: &'a str,
    pub protocol: &'static str,
}

impl FlowGuard {
    pub fn new<B>(
        flows: &Flows,
        activity: Arc<Activity>,
        ctx: FlowContext<'_>,
        req: &http::Request<B>,
    ) -> Self {
        activity.request_started();
        let rec = flows.wanted().then(|| {
            let host = req
                .uri()
                .authority()
                .map(|a| a.as_str().to_owned())
                .or_else(|| {
                    req.headers()
                        .get(http::header::HOST)
                        .and_then(|h| h.to_str().ok())
                        .map(str::to_owned)
                });
            Box::new(FlowRecord {
                time: rfc3339(SystemTime::now()),
                source: ctx.source,
                destination: ctx.destination.to_owned(),
                listener: ctx.listener.to_owned(),
                protocol: ctx.protocol.to_owned(),
                method: Some(req.method().as_str().to_owned()),
                host,
                path: req.uri().path_and_query().map(|p| p.as_str().to_owned()),
                status: None,
                grpc_status: None,
                latency_ns: 0,
                duration_ns: 0,
                bytes_received: 0,
                bytes_sent: 0,
                verdict: Verdict::Forwarded,
                filter: None,
                error: None,
            })
        });
        Self {
            flows: flows.clone(),
            activity,
            start: Instant::now(),
            received: rec.as_ref().map(|_| Arc::new(AtomicU64::new(0))),
            rec,
            done: false,
        }
    }

    /// The request-body byte counter to hand to [`RequestBody`] (`None`: not counted).
    pub fn received_counter(&self) -> Option<Arc<AtomicU64>> {
        self.received.clone()
    }

    pub fn add_received(&self, n: u64) {
        if let Some(r) = &self.received {
            r.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub fn elapsed(&self) -> std::time::Duration {
        self.start.elapsed()
    }

    /// Records the response head.
    pub fn response(&mut self, status: u16, headers: &HeaderMap) {
        let latency = self.start.elapsed().as_nanos() as u64;
        if let Some(r) = self.rec.as_mut() {
            r.status = Some(status);
            r.latency_ns = latency;
        }
        self.grpc_status(headers);
    }

    /// Records `grpc-status` from a response head (trailers-only) or trailers.
    pub fn grpc_status(&mut self, headers: &HeaderMap) {
        if let (Some(r), Some(v)) = (self.rec.as_mut(), headers.get("grpc-status")) {
            r.grpc_status = v.to_str().ok().and_then(|s| s.parse().ok());
        }
    }

    pub fn fail(&mut self, verdict: Verdict, error: impl Into<String>) {
        if let Some(r) = self.rec.as_mut() {
            r.verdict = verdict;
            r.error = Some(error.into());
        }
    }

    pub fn sent(&mut self, n: u64) {
        if let Some(r) = self.rec.as_mut() {
            r.bytes_sent += n;
        }
    }

    /// Ends the flow: emits its record and releases the connection's in-flight count.
    pub fn complete(&mut self) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        self.activity.request_finished();
        if let Some(mut r) = self.rec.take() {
            r.duration_ns = self.start.elapsed().as_nanos() as u64;
            r.bytes_received = self
                .received
                .as_ref()
                .map_or(0, |c| c.load(Ordering::Relaxed));
            self.flows.emit(*r);
        }
    }
}

impl Drop for FlowGuard {
    fn drop(&mut self) {
        if !self.done {
            if let Some(r) = self.rec.as_mut() {
                if r.error.is_none() {
                    r.verdict = Verdict::Error;
                    r.error = Some(if r.status.is_some() {
                        "response aborted before its end (client or upstream closed the stream)"
                            .into()
                    } else {
                        "request abandoned before a response (client closed the stream)".into()
                    });
                }
            }
            self.complete();
        }
    }
}

enum Kind {
    Upstream(Incoming),
    Full(Option<Bytes>),
}

/// What strait sends back: an upstream's body or a local one, carrying the flow guard.
pub struct ResponseBody {
    kind: Kind,
    guard: Option<FlowGuard>,
}

impl ResponseBody {
    pub fn upstream(body: Incoming, guard: FlowGuard) -> Self {
        let mut b = Self {
            kind: Kind::Upstream(body),
            guard: Some(guard),
        };
        b.check_end();
        b
    }

    pub fn full(body: Bytes, guard: Option<FlowGuard>) -> Self {
        let mut b = Self {
            kind: Kind::Full((!body.is_empty()).then_some(body)),
            guard,
        };
        b.check_end();
        b
    }

    fn check_end(&mut self) {
        if self.is_end_stream() {
            if let Some(g) = self.guard.as_mut() {
                g.complete();
            }
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let r = match &mut this.kind {
            Kind::Full(b) => b.take().map(|d| Ok(Frame::data(d))),
            Kind::Upstream(b) => ready!(Pin::new(b).poll_frame(cx)),
        };
        if let Some(g) = this.guard.as_mut() {
            match &r {
                Some(Ok(f)) => {
                    if let Some(d) = f.data_ref() {
                        g.sent(d.len() as u64);
                    } else if let Some(t) = f.trailers_ref() {
                        g.grpc_status(t);
                    }
                }
                Some(Err(e)) => g.fail(
                    Verdict::Error,
                    format!("upstream response body failed: {e}"),
                ),
                None => {}
            }
        }
        if r.is_none() || this.is_end_stream() {
            if let Some(g) = this.guard.as_mut() {
                g.complete();
            }
        }
        Poll::Ready(r)
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full(b) => b.is_none(),
            Kind::Upstream(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Upstream(b) => b.size_hint(),
        }
    }
}
