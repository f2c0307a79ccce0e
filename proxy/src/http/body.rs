//! Body wrappers: byte counting on the request side, and on the response side the flow guard
//! that emits the request's flow record when the response ends (or is abandoned).

use std::future::Future;
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

use crate::flows::{FlowRecord, Flows, Verdict};
use crate::io::Activity;
use crate::wasm::{
    BodyKind, BodyOutcome, BodyPause, FilterFailure, Outcome, StreamFilters, StreamInfo,
};

/// Errors of bodies strait produces: the peer's failure or a filter's verdict.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
#[error("request body stopped by filter `{0}`")]
struct StoppedByFilter(String);

struct BodyFilters {
    /// A verdict they reach is left in [`StreamFilters::set_body_verdict`].
    filters: Arc<StreamFilters>,
    /// Everything was passed to the filters with end_of_stream.
    flushed: bool,
    trailers: Option<HeaderMap>,
    /// A filter paused at the end of the body.
    paused: Option<Box<Paused>>,
}

impl Drop for BodyFilters {
    fn drop(&mut self) {
        // Dropped while a filter still held some of it: the upstream exchange ended first.
        self.filters.abandon_request_body();
    }
}

/// A body whose end a filter holds ([`BodyOutcome::Paused`]): the wait, and the trailers that
/// ended it (they go through the filters once the body has).
struct Paused {
    resume: Pin<Box<dyn Future<Output = BodyOutcome> + Send>>,
    trailers: Option<HeaderMap>,
}

impl Paused {
    fn new(filters: &Arc<StreamFilters>, pause: BodyPause, trailers: Option<HeaderMap>) -> Self {
        let filters = filters.clone();
        Self {
            resume: Box::pin(async move { filters.resume_body(pause).await }),
            trailers,
        }
    }
}

/// A client's request body on its way upstream, counting bytes as they pass and running the
/// listener's filters over it.
pub struct RequestBody {
    inner: Incoming,
    /// `None` when no one reads flow records: nothing to count.
    received: Option<Arc<AtomicU64>>,
    filters: Option<BodyFilters>,
    done: bool,
}

impl RequestBody {
    pub fn new(inner: Incoming, received: Option<Arc<AtomicU64>>) -> Self {
        Self {
            inner,
            received,
            filters: None,
            done: false,
        }
    }

    /// Runs `filters` over the body; a verdict they reach is left in the stream's filter
    /// state ([`StreamFilters::take_body_verdict`]).
    pub fn with_filters(mut self, filters: Arc<StreamFilters>) -> Self {
        self.filters = Some(BodyFilters {
            filters,
            flushed: false,
            trailers: None,
            paused: None,
        });
        self
    }

    fn stop(f: &BodyFilters, v: Outcome) -> BoxError {
        let name = match &v {
            Outcome::Reply { filter, .. } => filter.clone(),
            Outcome::Fail(ff) => ff.filter.clone(),
            Outcome::Continue => String::new(),
        };
        f.filters.set_body_verdict(v);
        f.filters.release_request_body();
        Box::new(StoppedByFilter(name))
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            if let Some(t) = this.filters.as_mut().and_then(|f| f.trailers.take()) {
                this.done = true;
                return Poll::Ready(Some(Ok(Frame::trailers(t))));
            }
            let (outcome, eos, trailers) =
                match this.filters.as_mut().and_then(|f| f.paused.as_mut()) {
                    // A filter holds the end of the body: wait for it.
                    Some(w) => {
                        let outcome = ready!(w.resume.as_mut().poll(cx));
                        let w = this.filters.as_mut().and_then(|f| f.paused.take());
                        (outcome, true, w.and_then(|w| w.trailers))
                    }
                    None => {
                        let r = ready!(Pin::new(&mut this.inner).poll_frame(cx));
                        if let (Some(Ok(f)), Some(received)) = (&r, &this.received) {
                            if let Some(d) = f.data_ref() {
                                received.fetch_add(d.len() as u64, Ordering::Relaxed);
                            }
                        }
                        let Some(bf) = this.filters.as_mut() else {
                            return Poll::Ready(r.map(|x| x.map_err(Into::into)));
                        };
                        let (data, eos, trailers) = match r {
                            Some(Err(e)) => return Poll::Ready(Some(Err(e.into()))),
                            Some(Ok(frame)) => match frame.into_data() {
                                Ok(d) => (d, this.inner.is_end_stream(), None),
                                Err(frame) => match frame.into_trailers() {
                                    Ok(t) => (Bytes::new(), true, Some(t)),
                                    Err(_) => continue,
                                },
                            },
                            None if bf.flushed => return Poll::Ready(None),
                            None => (Bytes::new(), true, None),
                        };
                        if bf.flushed {
                            // Already ended for the filters; nothing more can come.
                            this.done = true;
                            continue;
                        }
                        bf.flushed = eos;
                        (bf.filters.body(BodyKind::Request, data, eos), eos, trailers)
                    }
                };
            let Some(bf) = this.filters.as_mut() else {
                continue;
            };
            match outcome {
                BodyOutcome::Emit(out) => {
                    if let Some(t) = trailers {
                        let (t, fail) = bf.filters.trailers(BodyKind::Request, t);
                        if let Some(ff) = fail {
                            return Poll::Ready(Some(Err(Self::stop(bf, Outcome::Fail(ff)))));
                        }
                        bf.trailers = Some(t);
                    } else if eos {
                        this.done = true;
                    }
                    if out.is_empty() {
                        continue;
                    }
                    return Poll::Ready(Some(Ok(Frame::data(out))));
                }
                BodyOutcome::Hold => continue,
                BodyOutcome::Reply { filter, reply } => {
                    return Poll::Ready(Some(Err(Self::stop(bf, Outcome::Reply { filter, reply }))))
                }
                BodyOutcome::Fail(ff) => {
                    return Poll::Ready(Some(Err(Self::stop(bf, Outcome::Fail(ff)))))
                }
                BodyOutcome::Paused(p) => {
                    bf.paused = Some(Box::new(Paused::new(&bf.filters, p, trailers)));
                    continue;
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || (self.filters.is_none() && self.inner.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        if self.filters.is_some() {
            // Filters may change the length.
            return SizeHint::default();
        }
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
    /// The stream's filter facts, told the response status for `proxy_on_log`.
    stream: Option<Arc<StreamInfo>>,
}

/// Where a request came from and went to, for its flow record.
pub struct FlowContext<'a> {
    pub source: SocketAddr,
    pub destination: &'a str,
    pub listener: &'a str,
    pub protocol: &'static str,
    pub identity: Option<u32>,
    pub destination_identity: Option<u32>,
}

impl FlowGuard {
    pub fn new<B>(
        flows: &Flows,
        activity: Arc<Activity>,
        ctx: FlowContext<'_>,
        req: &http::Request<B>,
    ) -> Self {
        let host = || {
            req.uri().authority().map(|a| a.as_str()).or_else(|| {
                req.headers()
                    .get(http::header::HOST)
                    .and_then(|h| h.to_str().ok())
            })
        };
        let path = || req.uri().path_and_query().map(|p| p.as_str());
        Self::from_parts(flows, activity, ctx, req.method().as_str(), host, path)
    }

    /// [`Self::new`] from the request's method, host and target; the last two are only read
    /// when someone reads flow records.
    pub fn from_parts<'a>(
        flows: &Flows,
        activity: Arc<Activity>,
        ctx: FlowContext<'_>,
        method: &str,
        host: impl FnOnce() -> Option<&'a str>,
        path: impl FnOnce() -> Option<&'a str>,
    ) -> Self {
        activity.request_started();
        let rec = flows.wanted().then(|| {
            Box::new(FlowRecord {
                method: Some(method.to_owned()),
                host: host().map(str::to_owned),
                path: path().map(str::to_owned),
                source_identity: ctx.identity,
                destination_identity: ctx.destination_identity,
                ..FlowRecord::new(
                    SystemTime::now(),
                    ctx.source,
                    ctx.destination.to_owned(),
                    ctx.listener.to_owned(),
                    ctx.protocol.to_owned(),
                    Verdict::Forwarded,
                )
            })
        });
        Self {
            flows: flows.clone(),
            activity,
            start: Instant::now(),
            received: rec.as_ref().map(|_| Arc::new(AtomicU64::new(0))),
            rec,
            done: false,
            stream: None,
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
        self.status(status);
        self.grpc_status(headers);
    }

    /// Tells the stream's filters the status of the response (see [`StreamInfo::status`]).
    pub fn watch(&mut self, info: Arc<StreamInfo>) {
        self.stream = Some(info);
    }

    /// Keeps the head of a filter's local response for the later callbacks of the stream's
    /// filters (`proxy_on_log`), as the head the client got.
    pub fn local_head(&self, status: u16, headers: &HeaderMap) {
        if let Some(i) = &self.stream {
            i.past.keep_response(None, headers, status);
        }
    }

    /// Records the response status (and the latency to it).
    pub fn status(&mut self, status: u16) {
        if let Some(i) = &self.stream {
            i.status.store(status, Ordering::Relaxed);
        }
        let latency = self.start.elapsed().as_nanos() as u64;
        if let Some(r) = self.rec.as_mut() {
            r.status = Some(status);
            r.latency_ns = latency;
        }
    }

    /// Records `grpc-status` from a response head (trailers-only) or trailers.
    pub fn grpc_status(&mut self, headers: &HeaderMap) {
        if let (Some(r), Some(v)) = (self.rec.as_mut(), headers.get("grpc-status")) {
            r.grpc_status = v.to_str().ok().and_then(|s| s.parse().ok());
        }
    }

    /// Names the policy (rule) a filter said decided this flow, and that filter.
    pub fn policy(&mut self, filter: &str, policy: String) {
        if let Some(r) = self.rec.as_mut() {
            r.filter = Some(filter.to_owned());
            r.policy = Some(policy);
        }
    }

    /// Names the filter that decided this flow.
    pub fn filter(&mut self, name: &str) {
        if let Some(r) = self.rec.as_mut() {
            r.filter = Some(name.to_owned());
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
                    r.error = Some(if let Some(why) = self.activity.cut_reason() {
                        why.to_owned()
                    } else if r.status.is_some() {
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

/// An upstream response body: hyper's, one on a native HTTP/1.1 connection
/// ([`crate::http::h1::client`]), or one the native client read whole with the head.
pub enum UpBody {
    Hyper(Incoming),
    Native(Box<crate::http::h1::client::NativeBody>),
    Buffered(http_body_util::Full<Bytes>),
}

impl Body for UpBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            UpBody::Hyper(b) => Pin::new(b).poll_frame(cx).map_err(Into::into),
            UpBody::Native(b) => Pin::new(&mut **b).poll_frame(cx),
            UpBody::Buffered(b) => Pin::new(b).poll_frame(cx).map_err(|e| match e {}),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpBody::Hyper(b) => b.is_end_stream(),
            UpBody::Native(b) => b.is_end_stream(),
            UpBody::Buffered(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpBody::Hyper(b) => b.size_hint(),
            UpBody::Native(b) => b.size_hint(),
            UpBody::Buffered(b) => b.size_hint(),
        }
    }
}

enum Kind {
    Upstream(UpBody),
    Full(Option<Bytes>),
    /// An upstream body through the listener's filters.
    Filtered {
        inner: UpBody,
        st: FilteredState,
    },
}

/// What strait sends back: an upstream's body or a local one, carrying the flow guard (and the
/// stream's filters, whose contexts end when the response does).
pub struct ResponseBody {
    kind: Kind,
    guard: Option<FlowGuard>,
    filters: Option<Arc<StreamFilters>>,
}

impl ResponseBody {
    pub fn upstream(body: UpBody, guard: FlowGuard) -> Self {
        let mut b = Self {
            kind: Kind::Upstream(body),
            guard: Some(guard),
            filters: None,
        };
        b.check_end();
        b
    }

    /// An upstream body whose chunks (and trailers) go through `filters` first.
    pub fn filtered(body: UpBody, guard: FlowGuard, filters: Arc<StreamFilters>) -> Self {
        let end = body.is_end_stream();
        let mut b = Self {
            kind: Kind::Filtered {
                inner: body,
                st: FilteredState {
                    filters: filters.clone(),
                    flushed: end,
                    trailers: None,
                    done: end,
                    paused: None,
                },
            },
            guard: Some(guard),
            filters: Some(filters),
        };
        b.check_end();
        b
    }

    /// Keeps the stream's filters alive until this body ends.
    pub fn keep(mut self, filters: Option<Arc<StreamFilters>>) -> Self {
        if filters.is_some() {
            self.filters = filters;
        }
        self
    }

    pub fn full(body: Bytes, guard: Option<FlowGuard>) -> Self {
        let mut b = Self {
            kind: Kind::Full((!body.is_empty()).then_some(body)),
            guard,
            filters: None,
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

/// A filtered upstream body's state between frames.
struct FilteredState {
    filters: Arc<StreamFilters>,
    /// Everything was passed to the filters with end_of_stream.
    flushed: bool,
    trailers: Option<HeaderMap>,
    done: bool,
    /// A filter paused at the end of the body.
    paused: Option<Box<Paused>>,
}

/// The next frame of a filtered upstream body.
fn poll_filtered(
    inner: &mut UpBody,
    st: &mut FilteredState,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
    loop {
        if st.done {
            return Poll::Ready(None);
        }
        if let Some(t) = st.trailers.take() {
            st.done = true;
            return Poll::Ready(Some(Ok(Frame::trailers(t))));
        }
        let (outcome, eos, trl) = match st.paused.as_mut() {
            // A filter holds the end of the body: wait for it.
            Some(w) => {
                let outcome = ready!(w.resume.as_mut().poll(cx));
                (outcome, true, st.paused.take().and_then(|w| w.trailers))
            }
            None => {
                let (data, eos, trl) = match ready!(Pin::new(&mut *inner).poll_frame(cx)) {
                    Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                    Some(Ok(frame)) => match frame.into_data() {
                        Ok(d) => (d, inner.is_end_stream(), None),
                        Err(frame) => match frame.into_trailers() {
                            Ok(t) => (Bytes::new(), true, Some(t)),
                            Err(_) => continue,
                        },
                    },
                    None if st.flushed => return Poll::Ready(None),
                    None => (Bytes::new(), true, None),
                };
                if st.flushed {
                    st.done = true;
                    continue;
                }
                st.flushed = eos;
                (st.filters.body(BodyKind::Response, data, eos), eos, trl)
            }
        };
        match outcome {
            BodyOutcome::Emit(out) => {
                if let Some(t) = trl {
                    let (t, fail) = st.filters.trailers(BodyKind::Response, t);
                    if let Some(ff) = fail {
                        return Poll::Ready(Some(Err(filter_error(ff))));
                    }
                    st.trailers = Some(t);
                } else if eos {
                    st.done = true;
                }
                if out.is_empty() {
                    continue;
                }
                return Poll::Ready(Some(Ok(Frame::data(out))));
            }
            BodyOutcome::Hold => continue,
            BodyOutcome::Paused(p) => {
                st.paused = Some(Box::new(Paused::new(&st.filters, p, trl)));
                continue;
            }
            BodyOutcome::Reply { filter, .. } => {
                // The response head is already on its way: too late for a local response.
                return Poll::Ready(Some(Err(filter_error(FilterFailure {
                    filter,
                    message: "sent a local response after the response head; the stream was reset"
                        .into(),
                }))));
            }
            BodyOutcome::Fail(ff) => return Poll::Ready(Some(Err(filter_error(ff)))),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("filter `{filter}` failed: {message}")]
struct FilterError {
    filter: String,
    message: String,
}

fn filter_error(f: FilterFailure) -> BoxError {
    Box::new(FilterError {
        filter: f.filter,
        message: f.message,
    })
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let r = match &mut this.kind {
            Kind::Full(b) => b.take().map(|d| Ok(Frame::data(d))),
            Kind::Upstream(b) => ready!(Pin::new(b).poll_frame(cx)),
            Kind::Filtered { inner, st } => ready!(poll_filtered(inner, st, cx)),
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
            Kind::Filtered { st, .. } => st.done,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Upstream(b) => b.size_hint(),
            Kind::Filtered { .. } => SizeHint::default(),
        }
    }
}
