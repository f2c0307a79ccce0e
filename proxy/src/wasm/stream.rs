//! One HTTP stream through a listener's filter chain: contexts in each filter's VM, the
//! request/response callbacks, pausing, local responses and the failure policy.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use smallvec::SmallVec;
use tokio::sync::Notify;
use wasmtime::TypedFunc;

use super::host::{BodyKind, KafkaRequestInfo, LocalReply, RawFields, StreamSlot};
use super::vm::{worker_slot, Exports, Vm};
use super::Chain;
use crate::config::FailurePolicy;

/// Facts about a stream that filters read as properties. Built once per stream without
/// copying: the request's method, target and host are shared with the request head.
#[derive(Debug)]
pub struct StreamInfo {
    pub listener: Arc<str>,
    pub source: SocketAddr,
    pub destination: SocketAddr,
    pub upstream: Arc<str>,
    pub protocol: &'static str,
    pub tls: bool,
    /// Numeric identity of the source, when known.
    pub identity: Option<u32>,
    /// Numeric identity of the (original) destination, when it is a local endpoint.
    pub destination_identity: Option<u32>,
    pub start: SystemTime,
    /// The request as it arrived (filters may change the live one); `None` for Kafka.
    pub request: Option<RequestLine>,
    /// The policy a filter said decided this stream (`strait.policy` set with
    /// `proxy_set_property`), with that filter's name; for the flow record.
    pub policy: std::sync::Mutex<Option<(Arc<str>, String)>>,
    /// Wakes the stream's task when a filter resumes or closes it while paused.
    pub wake: Wakes,
    /// The status of the response sent to the client (0 before there is one): `response.code`
    /// and `:status` for callbacks after the response head (`proxy_on_log`).
    pub status: AtomicU16,
    /// Each head's fields as the chain left them, for the callbacks after the head's own.
    pub past: PastHeads,
}

/// A paused stream's wake-ups, one per direction: a bidirectional stream can be paused in
/// both at once (a response body held while the request body streams on, on HTTP/2), and each
/// pause needs its own wake-up (`Notify::notify_one` wakes a single waiter). Also the stream's
/// answer: the first local reply a filter made, which ends every pause of the stream, in any
/// filter and either direction (nothing will resume them).
#[derive(Debug, Default)]
pub struct Wakes {
    request: Notify,
    response: Notify,
    answered: OnceLock<LocalReply>,
}

impl Wakes {
    /// A filter resumed the stream in one direction.
    pub fn resume(&self, request: bool) {
        self.of(request).notify_one();
    }

    /// A filter replied or closed the stream, or its VM ended: the pause of each direction
    /// is woken to look (each ends with a local reply, see `settle`).
    pub fn all(&self) {
        self.request.notify_one();
        self.response.notify_one();
    }

    /// Records the stream's local reply (the first one stays), and wakes the pauses again: a
    /// pause woken by the reply may have looked before it was taken (in another filter's VM).
    fn answer(&self, reply: &LocalReply) {
        if self.answered.set(reply.clone()).is_ok() {
            self.all();
        }
    }

    fn of(&self, request: bool) -> &Notify {
        if request {
            &self.request
        } else {
            &self.response
        }
    }
}

/// The request and response heads' fields as the filter chain passed them on, kept for the
/// callbacks that come after a head's own (its body callbacks, the other direction's
/// callbacks, `proxy_on_log`), where filters read them as under Envoy. Each is kept once,
/// when the chain is done with the head: a request head unless a filter failed on it (then
/// the request reads as it arrived), a response head when it goes to the client (a filter's
/// local response is kept instead). A request head the native engine passes on unchanged is
/// kept as its raw fields, moved rather than copied; a response head's raw fields are copied
/// off the upstream buffer; an edited head costs a copy of its `HeaderMap`.
#[derive(Debug, Default)]
pub struct PastHeads {
    request: OnceLock<PastFields>,
    response: OnceLock<PastFields>,
}

/// One kept head's fields: raw ([`RawFields`]) or a `HeaderMap`.
#[derive(Debug)]
pub struct PastFields {
    raw: Option<RawFields>,
    headers: HeaderMap,
    /// A response head's status (0 for a request head).
    status: u16,
    /// A request head's method and target when they may differ from the arrived ones
    /// ([`StreamInfo::request`]); `None`: as they arrived.
    line: Option<(http::Method, http::Uri)>,
}

impl PastFields {
    /// The raw fields, else the map (empty while raw), as [`StreamSlot::head_fields`] gives a
    /// live head's.
    pub fn fields(&self) -> (Option<&RawFields>, &HeaderMap) {
        (self.raw.as_ref(), &self.headers)
    }

    /// A response head's status as the chain passed it on.
    pub fn status(&self) -> Option<u16> {
        Some(self.status).filter(|s| *s != 0)
    }

    /// A request head's method and target as the chain passed them on, when they may differ
    /// from the arrived ones.
    pub fn line(&self) -> Option<(&http::Method, &http::Uri)> {
        self.line.as_ref().map(|(m, u)| (m, u))
    }
}

impl PastHeads {
    /// Keeps the request head's fields (`raw` when the native engine still has them raw,
    /// else a copy of `headers`), with its method and target when a filter may have changed
    /// them (`line`); only the first call counts.
    pub fn keep_request(
        &self,
        raw: Option<RawFields>,
        headers: &HeaderMap,
        line: Option<(&http::Method, &http::Uri)>,
    ) {
        Self::keep(&self.request, raw, headers, 0, line);
    }

    /// [`Self::keep_request`] for the response head, with its status.
    pub fn keep_response(&self, raw: Option<RawFields>, headers: &HeaderMap, status: u16) {
        Self::keep(&self.response, raw, headers, status, None);
    }

    fn keep(
        cell: &OnceLock<PastFields>,
        raw: Option<RawFields>,
        headers: &HeaderMap,
        status: u16,
        line: Option<(&http::Method, &http::Uri)>,
    ) {
        if cell.get().is_some() {
            return;
        }
        let line = line.map(|(m, u)| (m.clone(), u.clone()));
        let headers = if raw.is_some() {
            HeaderMap::new()
        } else {
            headers.clone()
        };
        let _ = cell.set(PastFields {
            raw,
            headers,
            status,
            line,
        });
    }

    /// The kept request (`request`) or response head's fields.
    pub fn get(&self, request: bool) -> Option<&PastFields> {
        if request {
            self.request.get()
        } else {
            self.response.get()
        }
    }
}

/// An HTTP request's method, target and `host` header as they arrived.
#[derive(Debug, Clone)]
pub struct RequestLine {
    pub method: http::Method,
    pub uri: http::Uri,
    pub host: Option<http::HeaderValue>,
}

impl RequestLine {
    /// Shares the head's bytes (no copy for the standard methods).
    pub fn new(method: &http::Method, uri: &http::Uri, headers: &HeaderMap) -> Self {
        Self {
            method: method.clone(),
            uri: uri.clone(),
            host: headers.get(http::header::HOST).cloned(),
        }
    }

    /// Path and query (`/` when the target has none).
    pub fn path(&self) -> &str {
        self.uri.path_and_query().map_or("/", |p| p.as_str())
    }

    /// The authority of the target, else the `host` header (raw bytes), else empty.
    pub fn host(&self) -> &[u8] {
        authority(
            &self.uri,
            self.host.as_ref().map(http::HeaderValue::as_bytes),
        )
    }
}

/// A request's authority as filters see it (`:authority`, `request.host`): the target's,
/// else the `host` header's raw bytes, else empty.
pub(crate) fn authority<'a>(uri: &'a http::Uri, host: Option<&'a [u8]>) -> &'a [u8] {
    match (uri.authority(), host) {
        (Some(a), _) => a.as_str().as_bytes(),
        (None, Some(h)) => h,
        (None, None) => b"",
    }
}

impl StreamInfo {
    /// The arrived request's method (empty for Kafka).
    pub fn method(&self) -> &str {
        self.request.as_ref().map_or("", |r| r.method.as_str())
    }

    /// The arrived request's path and query (empty for Kafka).
    pub fn path(&self) -> &str {
        self.request.as_ref().map_or("", RequestLine::path)
    }

    /// The arrived request's host (empty for Kafka).
    pub fn host(&self) -> &[u8] {
        self.request.as_ref().map_or(b"", RequestLine::host)
    }

    /// What a filter recorded in `strait.policy`, with the filter's name, taken out: an HTTP
    /// stream reads it once after its request head; a Kafka connection (one context for many
    /// requests) after each request.
    pub fn take_policy(&self) -> Option<(Arc<str>, String)> {
        self.policy.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// A filter failed: trap, deadline, memory limit, lost context, or a stuck pause.
#[derive(Debug, Clone)]
pub struct FilterFailure {
    pub filter: String,
    pub message: String,
}

/// A head's way through the chain: decided at once (every filter answered without pausing,
/// the common case), or paused by a filter, to be awaited.
pub enum Heads<'a, H> {
    Done(H, Outcome),
    Paused(Pin<Box<dyn Future<Output = (H, Outcome)> + Send + 'a>>),
}

impl<H> Heads<'_, H> {
    /// The head and the outcome, waiting out a pause if there is one. The request paths
    /// match on [`Heads`] in place instead: this future copies the head and the outcome (a
    /// few hundred bytes) in and out once more.
    pub async fn finish(self) -> (H, Outcome) {
        match self {
            Heads::Done(h, outcome) => (h, outcome),
            Heads::Paused(f) => f.await,
        }
    }
}

/// What the chain decided for a head.
#[derive(Debug)]
pub enum Outcome {
    Continue,
    /// A filter answered (`proxy_send_local_response`).
    Reply {
        filter: String,
        reply: LocalReply,
    },
    /// A filter with `failure: closed` failed, or a filter reset the stream.
    Fail(FilterFailure),
}

/// What the chain made of a body chunk.
#[derive(Debug)]
pub enum BodyOutcome {
    /// Pass these bytes on (possibly empty).
    Emit(Bytes),
    /// A filter is buffering until more data or the end of the stream.
    Hold,
    Reply {
        filter: String,
        reply: LocalReply,
    },
    Fail(FilterFailure),
    /// A filter paused at the end of the body: await [`StreamFilters::resume_body`] with this.
    Paused(BodyPause),
}

/// Where a body waits in the chain (see [`BodyOutcome::Paused`]).
#[derive(Debug)]
pub struct BodyPause {
    kind: BodyKind,
    /// Position in the chain's order for this body.
    position: usize,
    /// The filter's index in the chain.
    filter: usize,
}

#[derive(Default)]
struct Entry {
    slot: usize,
    incarnation: u64,
    /// 0: no context created yet.
    ctx: u32,
    /// Failed with `failure: open`: skipped from then on.
    skip: bool,
    paused: bool,
    /// Body bytes this filter is holding (it returned Pause).
    buf: BytesMut,
    /// The body as it was when this filter paused at its end; what goes on if the VM fails
    /// during the pause and the filter's failure policy is `open`.
    paused_body: Bytes,
}

/// What one callback led to.
enum Flow {
    Next,
    Wait,
    Reply(LocalReply),
    Close,
}

/// The filter state of one stream.
pub struct StreamFilters {
    chain: Arc<Chain>,
    info: Arc<StreamInfo>,
    /// Inline for chains of up to two filters: no allocation per stream.
    entries: Mutex<SmallVec<[Entry; 2]>>,
    pause_limit: Duration,
    /// What the filters decided while the request body streamed (only `Reply` or `Fail`),
    /// for the request path to answer with once the upstream exchange returns.
    body_verdict: Mutex<Option<Outcome>>,
    /// The filter (index + 1; 0: none) holding request body bytes (buffering or paused at
    /// the end): an upstream answer that comes meanwhile waits for its verdict.
    request_held: AtomicUsize,
    /// The filter (index + 1) that held the request body when the body was dropped unfinished.
    request_abandoned: AtomicUsize,
    /// Told when the request body stops being held.
    request_released: Notify,
}

/// Chooses a VM's body callback (request or response) from its exports.
type PickBody = fn(&Exports) -> Option<&TypedFunc<(u32, u32, u32), u32>>;
/// Chooses a VM's trailers callback.
type PickTrailers = fn(&Exports) -> Option<&TypedFunc<(u32, u32), u32>>;

/// Bytes a filter holds on to, as a buffer more chunks can be appended to.
fn owned(b: Bytes) -> BytesMut {
    b.try_into_mut().unwrap_or_else(|b| BytesMut::from(&b[..]))
}

fn slot_of(vm: &mut Vm, ctx: u32) -> Option<&mut StreamSlot> {
    vm.store.data_mut().streams.get_mut(&ctx).map(|s| &mut **s)
}

/// After a callback: a local reply or reset wins; a pause holds until resumed.
fn settle(vm: &mut Vm, ctx: u32, paused: bool, request: bool) -> Flow {
    let Some(s) = slot_of(vm, ctx) else {
        return Flow::Next;
    };
    if let Some(l) = s.local.take() {
        s.info.wake.answer(&l);
        return Flow::Reply(l);
    }
    if s.close {
        return Flow::Close;
    }
    // The stream was answered elsewhere (the other direction, or another filter): this pause
    // ends with the reply (a response head not yet sent goes out as it; after the head, the
    // stream is reset, see the callers).
    if paused {
        if let Some(l) = s.info.wake.answered.get() {
            return Flow::Reply(l.clone());
        }
    }
    let resumed = if request {
        std::mem::take(&mut s.resume_request)
    } else {
        std::mem::take(&mut s.resume_response)
    };
    if !paused || resumed {
        Flow::Next
    } else {
        Flow::Wait
    }
}

fn copy_request(p: &http::request::Parts) -> http::request::Parts {
    let mut b = http::Request::builder()
        .method(p.method.clone())
        .uri(p.uri.clone())
        .version(p.version);
    if let Some(h) = b.headers_mut() {
        *h = p.headers.clone();
    }
    b.body(())
        .map(|r| r.into_parts().0)
        .unwrap_or_else(|_| http::Request::new(()).into_parts().0)
}

fn copy_response(p: &http::response::Parts) -> http::response::Parts {
    let mut b = http::Response::builder()
        .status(p.status)
        .version(p.version);
    if let Some(h) = b.headers_mut() {
        *h = p.headers.clone();
    }
    b.body(())
        .map(|r| r.into_parts().0)
        .unwrap_or_else(|_| http::Response::new(()).into_parts().0)
}

/// Either head, moved in and out of the VM's stream slot.
pub trait Head: Sized + Send {
    const REQUEST: bool;
    /// Pseudo-headers the filters see besides the fields (`:method` …, or `:status`).
    const PSEUDO: u32;
    fn put(self, s: &mut StreamSlot);
    fn take(s: &mut StreamSlot) -> Option<Self>;
    fn copy(s: &StreamSlot) -> Option<Self>;
    fn count(&self) -> u32;
    /// Stands in for a head lost with a failed VM; the stream is answered locally then.
    fn placeholder() -> Self;
    /// The slot's raw fields of this head (see [`Native`]).
    fn raw(s: &mut StreamSlot) -> &mut Option<RawFields>;
}

impl Head for http::request::Parts {
    const REQUEST: bool = true;
    const PSEUDO: u32 = 4;
    fn put(self, s: &mut StreamSlot) {
        s.req = Some(self);
    }
    fn take(s: &mut StreamSlot) -> Option<Self> {
        s.req.take()
    }
    fn copy(s: &StreamSlot) -> Option<Self> {
        s.req.as_ref().map(copy_request)
    }
    fn count(&self) -> u32 {
        self.headers.len() as u32 + Self::PSEUDO
    }
    fn placeholder() -> Self {
        http::Request::new(()).into_parts().0
    }
    fn raw(s: &mut StreamSlot) -> &mut Option<RawFields> {
        &mut s.req_fields
    }
}

impl Head for http::response::Parts {
    const REQUEST: bool = false;
    const PSEUDO: u32 = 1;
    fn put(self, s: &mut StreamSlot) {
        s.resp = Some(self);
    }
    fn take(s: &mut StreamSlot) -> Option<Self> {
        s.resp.take()
    }
    fn copy(s: &StreamSlot) -> Option<Self> {
        s.resp.as_ref().map(copy_response)
    }
    fn count(&self) -> u32 {
        self.headers.len() as u32 + Self::PSEUDO
    }
    fn placeholder() -> Self {
        http::Response::new(()).into_parts().0
    }
    fn raw(s: &mut StreamSlot) -> &mut Option<RawFields> {
        &mut s.resp_fields
    }
}

/// A request head the chain takes.
pub trait RequestSide: Head + 'static {}
impl RequestSide for http::request::Parts {}
impl RequestSide for Native<http::request::Parts> {}

/// A response head the chain takes.
pub trait ResponseSide: Head + 'static {}
impl ResponseSide for http::response::Parts {}
impl ResponseSide for Native<http::response::Parts> {}

/// A head from the native HTTP/1.1 engine: method and target (or status) as `http` types,
/// the fields raw until a host call edits the head (then `parts.headers` holds them and `raw`
/// is `None`; reads take the raw fields in place). A head that comes back from the chain with
/// `raw` still set is unchanged: no filter edited it, and pseudo-header edits make the fields
/// a map too.
pub struct Native<P> {
    pub parts: P,
    pub raw: Option<RawFields>,
}

impl<P> Native<P> {
    /// Whether some host call turned the fields into `parts.headers`.
    pub fn touched(&self) -> bool {
        self.raw.is_none()
    }
}

impl<P: Head> Head for Native<P> {
    const REQUEST: bool = P::REQUEST;
    const PSEUDO: u32 = P::PSEUDO;
    fn put(self, s: &mut StreamSlot) {
        self.parts.put(s);
        *P::raw(s) = self.raw;
    }
    fn take(s: &mut StreamSlot) -> Option<Self> {
        let parts = P::take(s)?;
        Some(Self {
            parts,
            raw: P::raw(s).take(),
        })
    }
    fn copy(s: &StreamSlot) -> Option<Self> {
        let raw = if P::REQUEST {
            &s.req_fields
        } else {
            &s.resp_fields
        };
        Some(Self {
            parts: P::copy(s)?,
            raw: raw.clone(),
        })
    }
    fn count(&self) -> u32 {
        match &self.raw {
            Some(r) => r.len() as u32 + P::PSEUDO,
            None => self.parts.count(),
        }
    }
    fn placeholder() -> Self {
        Self {
            parts: P::placeholder(),
            raw: None,
        }
    }
    fn raw(s: &mut StreamSlot) -> &mut Option<RawFields> {
        P::raw(s)
    }
}

impl StreamFilters {
    pub fn new(chain: Arc<Chain>, info: StreamInfo, pause_limit: Duration) -> Self {
        let n = chain.plugins.len();
        let entries = chain
            .plugins
            .iter()
            .map(|p| Entry {
                slot: worker_slot(p.slots.len()),
                ..Entry::default()
            })
            .collect::<SmallVec<_>>();
        debug_assert_eq!(entries.len(), n);
        Self {
            chain,
            info: Arc::new(info),
            entries: Mutex::new(entries),
            pause_limit,
            body_verdict: Mutex::new(None),
            request_held: AtomicUsize::new(0),
            request_abandoned: AtomicUsize::new(0),
            request_released: Notify::const_new(),
        }
    }

    fn hold_request_body(&self, kind: BodyKind, i: usize) {
        if kind == BodyKind::Request {
            self.request_held.store(i + 1, Ordering::Release);
        }
    }

    /// No filter holds request body bytes any more: they went on, or the filters' verdict on
    /// them was recorded ([`Self::set_body_verdict`] first).
    pub fn release_request_body(&self) {
        if self.request_held.swap(0, Ordering::AcqRel) != 0 {
            self.request_released.notify_waiters();
        }
    }

    /// The request body was dropped (the upstream exchange ended) while a filter held it.
    pub fn abandon_request_body(&self) {
        let held = self.request_held.swap(0, Ordering::AcqRel);
        if held != 0 {
            self.request_abandoned.store(held, Ordering::Release);
            self.request_released.notify_waiters();
        }
    }

    /// For an upstream answer that came while a filter held the request body: waits (at most
    /// `limit`) until the filters are done with it, so that their verdict, not the upstream's
    /// answer, decides. A filter that did not decide (the body was dropped first, or it took
    /// too long) fails the stream: the answer was given to a request it had not allowed.
    pub async fn request_body_decided(&self, limit: Duration) -> Option<FilterFailure> {
        // The common case, without a timer or a clock read: nothing held, nothing abandoned.
        if self.request_held.load(Ordering::Acquire) == 0
            && self.request_abandoned.load(Ordering::Acquire) == 0
        {
            return None;
        }
        let released = async {
            loop {
                let n = self.request_released.notified();
                tokio::pin!(n);
                n.as_mut().enable();
                if self.request_held.load(Ordering::Acquire) == 0 {
                    return;
                }
                n.await;
            }
        };
        if tokio::time::timeout(limit, released).await.is_err() {
            let held = self.request_held.load(Ordering::Acquire);
            return (held != 0).then(|| FilterFailure {
                filter: self.name(held - 1),
                message: format!(
                    "the upstream answered while the filter held the request body, and it did not decide on the body within {limit:?}"
                ),
            });
        }
        let abandoned = self.request_abandoned.swap(0, Ordering::AcqRel);
        (abandoned != 0).then(|| FilterFailure {
            filter: self.name(abandoned - 1),
            message: "the upstream answered and stopped taking the request body before the filter decided on it".into(),
        })
    }

    /// Records a verdict the filters reached on the request body.
    pub fn set_body_verdict(&self, outcome: Outcome) {
        *self.body_verdict.lock().unwrap_or_else(|p| p.into_inner()) = Some(outcome);
    }

    /// The verdict the filters reached on the request body, if any, taken out.
    pub fn take_body_verdict(&self) -> Option<Outcome> {
        self.body_verdict
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// The facts the stream's filters see.
    pub fn info(&self) -> &StreamInfo {
        &self.info
    }

    /// [`Self::info`], shared: for the flow guard to record the response status in.
    pub fn shared_info(&self) -> Arc<StreamInfo> {
        self.info.clone()
    }

    /// Whether some filter of the chain has a callback for this body or its trailers; if
    /// none has, the body need not pass through [`Self::body`] / [`Self::trailers`].
    pub fn wants_body(&self, kind: BodyKind) -> bool {
        self.chain.wants_body(kind)
    }

    pub fn is_empty(&self) -> bool {
        self.chain.plugins.is_empty()
    }

    /// The name of the filter holding the request body paused at its end, if one is.
    pub fn request_body_paused_in(&self) -> Option<String> {
        let held = self.request_held.load(Ordering::Acquire);
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let e = entries.get(held.checked_sub(1)?)?;
        (e.paused && !e.skip).then(|| self.name(held - 1))
    }

    /// Whether this stream runs `chain` (not one a reload has replaced since).
    pub fn runs(&self, chain: &Arc<Chain>) -> bool {
        Arc::ptr_eq(&self.chain, chain)
    }

    fn name(&self, i: usize) -> String {
        self.chain.plugins[i].info.name.to_string()
    }

    fn policy(&self, i: usize) -> FailurePolicy {
        self.chain.plugins[i].info.failure
    }

    /// Runs `f` for filter `i` with its VM locked and the stream's context created and current.
    /// `Err` means the filter failed (the VM is discarded when it faulted); `None` that the
    /// filter failed open earlier in this stream and is skipped (checked under the same lock).
    fn run<T>(
        &self,
        i: usize,
        f: impl FnOnce(&mut Vm, &mut Entry) -> Result<T, String>,
    ) -> Option<Result<T, String>> {
        let plugin = &self.chain.plugins[i];
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let e = &mut entries[i];
        if e.skip {
            return None;
        }
        let mut g = plugin.lock(e.slot);
        let vm = match plugin.ensure(&mut g, e.slot) {
            Ok(vm) => vm,
            Err(m) => return Some(Err(m)),
        };
        if e.ctx != 0 && vm.incarnation != e.incarnation {
            if e.paused {
                e.paused = false;
                return Some(Err(
                    "the filter's VM failed while this stream was paused in it".into(),
                ));
            }
            // Another stream's fault replaced the VM: start over with a new context.
            e.ctx = 0;
        }
        if e.ctx == 0 {
            let ctx = vm.new_context();
            vm.store
                .data_mut()
                .streams
                .insert(ctx, Box::new(StreamSlot::new(self.info.clone())));
            vm.store.data_mut().effective = ctx;
            let root = vm.root;
            if let Some(Err(m)) = vm.call_export(|x| Some(&x.context_create), (ctx, root)) {
                let m = format!("proxy_on_context_create: {m}");
                plugin.kill(&mut g, &m);
                return Some(Err(m));
            }
            e.ctx = ctx;
            e.incarnation = vm.incarnation;
        }
        vm.store.data_mut().effective = e.ctx;
        let r = f(vm, e);
        match &r {
            Ok(_) => plugin.after_callback(&mut g),
            Err(m) => plugin.kill(&mut g, m),
        }
        Some(r)
    }

    fn failed(&self, i: usize, message: String) -> Option<FilterFailure> {
        let name = self.name(i);
        match self.policy(i) {
            FailurePolicy::Closed => {
                tracing::warn!(filter = %name, listener = %self.info.listener, source = %self.info.source, "filter failed; failing the stream closed: {message}");
                Some(FilterFailure {
                    filter: name,
                    message,
                })
            }
            FailurePolicy::Open => {
                tracing::warn!(filter = %name, listener = %self.info.listener, source = %self.info.source, "filter failed; skipping it for this stream (failure: open): {message}");
                let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
                entries[i].skip = true;
                entries[i].paused = false;
                None
            }
        }
    }

    /// Request headers through the chain in order.
    /// The head is `http::request::Parts` or a [`Native`] one.
    pub fn request_headers<H: RequestSide>(&self, parts: H, end_of_stream: bool) -> Heads<'_, H> {
        self.heads_from(0, parts, end_of_stream, false)
    }

    /// Response headers through the chain in reverse order.
    pub fn response_headers<H: ResponseSide>(&self, parts: H, end_of_stream: bool) -> Heads<'_, H> {
        self.heads_from(0, parts, end_of_stream, true)
    }

    /// The filters' indices in chain order, or reversed (no allocation).
    fn order(&self, reverse: bool) -> impl Iterator<Item = usize> {
        let n = self.chain.plugins.len();
        (0..n).map(move |k| if reverse { n - 1 - k } else { k })
    }

    /// Runs the head through the filters from position `from` (in chain order, or reversed),
    /// without awaiting anything until a filter pauses the stream.
    fn heads_from<'a, H: Head + Send + 'a>(
        &'a self,
        from: usize,
        parts: H,
        eos: bool,
        reverse: bool,
    ) -> Heads<'a, H> {
        let mut parts = Some(parts);
        for (k, i) in self.order(reverse).enumerate().skip(from) {
            if !H::REQUEST && !self.chain.plugins[i].response_headers_hook {
                // Nothing to call: the head passes (the callback would be "continue").
                continue;
            }
            let mut backup: Option<H> = None;
            let flow = self.run(i, |vm, e| {
                let has = if H::REQUEST {
                    vm.f.request_headers.is_some()
                } else {
                    vm.f.response_headers.is_some()
                };
                if !has {
                    return Ok(Flow::Next);
                }
                let Some(n) = parts.as_ref().map(H::count) else {
                    return Ok(Flow::Next);
                };
                if let (Some(s), Some(p)) = (slot_of(vm, e.ctx), parts.take()) {
                    s.forget_resume(H::REQUEST);
                    p.put(s);
                }
                let r = vm.headers(H::REQUEST, e.ctx, n, eos).unwrap_or(Ok(0));
                let flow = match &r {
                    Ok(a) => settle(vm, e.ctx, *a != 0, H::REQUEST),
                    Err(_) => Flow::Next,
                };
                if let Some(s) = slot_of(vm, e.ctx) {
                    if matches!(flow, Flow::Wait) {
                        backup = H::copy(s);
                        e.paused = true;
                    } else {
                        parts = H::take(s);
                    }
                }
                r.map(|_| flow)
            });
            let Some(flow) = flow else { continue };
            if let Ok(Flow::Wait) = flow {
                // Boxed: only a paused stream pays for the waiting state.
                return Heads::Paused(Box::pin(
                    self.resume_head(k, i, parts, backup, eos, reverse),
                ));
            }
            // The head stays in `parts` (a few hundred bytes, not moved through calls).
            if let Some(outcome) = self.after_head(i, flow, &mut parts, &mut backup) {
                return Heads::Done(parts.unwrap_or_else(H::placeholder), outcome);
            }
        }
        Heads::Done(parts.unwrap_or_else(H::placeholder), Outcome::Continue)
    }

    /// Waits for a filter to wake the stream (resume, reply, close, or its VM's end); false
    /// when `deadline` passes first.
    async fn woken_before(&self, request: bool, deadline: Instant) -> bool {
        let left = deadline.saturating_duration_since(Instant::now());
        !left.is_zero()
            && tokio::time::timeout(left, self.info.wake.of(request).notified())
                .await
                .is_ok()
    }

    /// Waits out filter `i`'s pause (at position `k`), then runs the rest of the chain.
    async fn resume_head<H: Head + Send>(
        &self,
        k: usize,
        i: usize,
        mut parts: Option<H>,
        mut backup: Option<H>,
        eos: bool,
        reverse: bool,
    ) -> (H, Outcome) {
        let mut flow = Ok(Flow::Wait);
        let deadline = Instant::now() + self.pause_limit;
        while let Ok(Flow::Wait) = flow {
            if !self.woken_before(H::REQUEST, deadline).await {
                // Take the head back out of the VM and treat the stuck pause as a failure.
                let _ = self.run(i, |vm, e| {
                    e.paused = false;
                    if let Some(s) = slot_of(vm, e.ctx) {
                        parts = H::take(s);
                    }
                    Ok(())
                });
                flow = Err(format!(
                    "paused the stream and did not resume it within {:?}",
                    self.pause_limit
                ));
                break;
            }
            // A filter is marked skipped only after the stream left it, never mid-pause.
            flow = self
                .run(i, |vm, e| {
                    let f = settle(vm, e.ctx, true, H::REQUEST);
                    if !matches!(f, Flow::Wait) {
                        e.paused = false;
                        if let Some(s) = slot_of(vm, e.ctx) {
                            parts = H::take(s);
                        }
                    }
                    Ok(f)
                })
                .unwrap_or(Ok(Flow::Next));
        }
        if let Some(outcome) = self.after_head(i, flow, &mut parts, &mut backup) {
            return (parts.unwrap_or_else(H::placeholder), outcome);
        }
        match self.heads_from(k + 1, parts.unwrap_or_else(H::placeholder), eos, reverse) {
            Heads::Done(p, outcome) => (p, outcome),
            Heads::Paused(rest) => rest.await,
        }
    }

    /// What filter `i`'s verdict on a head means: `None` to go on to the next filter with the
    /// head in `parts`, or the stream's outcome when this filter decided it. A head the VM
    /// did not give back is taken from `backup` (the copy kept over a pause).
    fn after_head<H: Head>(
        &self,
        i: usize,
        flow: Result<Flow, String>,
        parts: &mut Option<H>,
        backup: &mut Option<H>,
    ) -> Option<Outcome> {
        if parts.is_none() {
            *parts = backup.take();
        }
        let decided = match flow {
            Ok(Flow::Next) | Ok(Flow::Wait) => None,
            Ok(Flow::Reply(reply)) => Some(Outcome::Reply {
                filter: self.name(i),
                reply,
            }),
            Ok(Flow::Close) => Some(Outcome::Fail(FilterFailure {
                filter: self.name(i),
                message: "the filter reset the stream".into(),
            })),
            Err(m) => self.failed(i, m).map(Outcome::Fail),
        };
        if decided.is_some() {
            return decided;
        }
        // Without a head here, it was lost with a failed VM and no copy was kept: fail closed.
        if parts.is_none() {
            return Some(Outcome::Fail(FilterFailure {
                filter: self.name(i),
                message: "the stream's head was lost with the filter's VM".into(),
            }));
        }
        None
    }

    /// A body chunk through the chain (request: in order; response: reversed).
    pub fn body(&self, kind: BodyKind, data: Bytes, eos: bool) -> BodyOutcome {
        self.body_from(kind, 0, data, eos)
    }

    /// [`Self::body`] from position `from` of the chain's order, without awaiting anything.
    fn body_from(&self, kind: BodyKind, from: usize, data: Bytes, eos: bool) -> BodyOutcome {
        let request = kind == BodyKind::Request;
        let mut chunk = data;
        for (k, i) in self.order(!request).enumerate().skip(from) {
            // Moved, not cloned: cloning a fresh `Bytes` from hyper allocates its shared header.
            let mut input = Some(std::mem::take(&mut chunk));
            let r = self.run(i, |vm, e| {
                let input = input.take().unwrap_or_default();
                let pick: PickBody = match kind {
                    BodyKind::Request => |x| x.request_body.as_ref(),
                    BodyKind::Response => |x| x.response_body.as_ref(),
                };
                if pick(&vm.f).is_none() {
                    return Ok((Flow::Next, Some(input)));
                }
                // The chunk goes in as it is (no copy) unless this filter holds earlier bytes.
                let whole = if e.buf.is_empty() {
                    input
                } else {
                    e.buf.extend_from_slice(&input);
                    e.buf.split().freeze()
                };
                let len = whole.len() as u32;
                if let Some(s) = slot_of(vm, e.ctx) {
                    s.forget_resume(request);
                    s.body = Some((kind, whole));
                }
                let r = vm
                    .call_export(pick, (e.ctx, len, eos as u32))
                    .unwrap_or(Ok(0));
                let take_body = |vm: &mut Vm| {
                    slot_of(vm, e.ctx)
                        .and_then(|s| s.body.take())
                        .map(|(_, b)| b)
                        .unwrap_or_default()
                };
                let action = match r {
                    Ok(a) => a,
                    Err(m) => {
                        // Keep the bytes: with `failure: open` they still go through.
                        e.buf = owned(take_body(vm));
                        return Err(m);
                    }
                };
                // A pause at the end of the body holds the stream (the whole body stays in
                // the filter, readable and writable) until the filter resumes it; before the
                // end it buffers the chunk and waits for more.
                let flow = settle(vm, e.ctx, action != 0 && eos, request);
                if matches!(flow, Flow::Wait) {
                    e.paused = true;
                    if let Some((_, b)) = slot_of(vm, e.ctx).and_then(|s| s.body.as_ref()) {
                        e.paused_body = b.clone();
                    }
                    return Ok((Flow::Wait, None));
                }
                let buf = take_body(vm);
                if action != 0 && !eos && matches!(flow, Flow::Next) {
                    e.buf = owned(buf);
                    return Ok((Flow::Next, None));
                }
                Ok((flow, Some(buf)))
            });
            let Some(r) = r else {
                chunk = input.take().unwrap_or_default();
                continue;
            };
            match r {
                Ok((Flow::Next, Some(out))) => chunk = out,
                Ok((Flow::Next, None)) => {
                    self.hold_request_body(kind, i);
                    return BodyOutcome::Hold;
                }
                Ok((Flow::Wait, _)) => {
                    self.hold_request_body(kind, i);
                    return BodyOutcome::Paused(BodyPause {
                        kind,
                        position: k,
                        filter: i,
                    });
                }
                Ok((Flow::Reply(reply), _)) => {
                    return BodyOutcome::Reply {
                        filter: self.name(i),
                        reply,
                    }
                }
                Ok((Flow::Close, _)) => {
                    return BodyOutcome::Fail(FilterFailure {
                        filter: self.name(i),
                        message: "the filter reset the stream".into(),
                    })
                }
                Err(m) => match self.failed(i, m) {
                    Some(f) => return BodyOutcome::Fail(f),
                    None => chunk = self.held_and(i, input.take()),
                },
            }
        }
        if request {
            self.release_request_body();
        }
        BodyOutcome::Emit(chunk)
    }

    /// With `failure: open`, what filter `i` held followed by `rest`, the part of the chunk it
    /// never got (its VM could not be started).
    fn held_and(&self, i: usize, rest: Option<Bytes>) -> Bytes {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let mut held = entries[i].buf.split();
        match rest {
            None => held.freeze(),
            Some(rest) if held.is_empty() => rest,
            Some(rest) => {
                held.extend_from_slice(&rest);
                held.freeze()
            }
        }
    }

    /// Waits out a pause at the end of a body ([`BodyOutcome::Paused`]), then runs the rest of
    /// the chain, waiting out any further pause. Never returns [`BodyOutcome::Paused`].
    ///
    /// A pause not resumed within the pause limit, or a VM that fails while the stream waits
    /// in it, is a failure of that filter (its failure policy decides; with `open` the body
    /// goes on as it was when the filter paused).
    pub async fn resume_body(&self, mut pause: BodyPause) -> BodyOutcome {
        let request = pause.kind == BodyKind::Request;
        loop {
            let i = pause.filter;
            let deadline = Instant::now() + self.pause_limit;
            let mut body = Bytes::new();
            let flow = loop {
                if !self.woken_before(request, deadline).await {
                    // Leave the pause and treat it as a failure of the filter.
                    let _ = self.run(i, |vm, e| {
                        e.paused = false;
                        if let Some(s) = slot_of(vm, e.ctx) {
                            s.body = None;
                        }
                        Ok(())
                    });
                    break Err(format!(
                        "paused the stream at the end of the {} body and did not resume it within {:?}",
                        if request { "request" } else { "response" },
                        self.pause_limit
                    ));
                }
                let f = self.run(i, |vm, e| {
                    let f = settle(vm, e.ctx, true, request);
                    if !matches!(f, Flow::Wait) {
                        e.paused = false;
                        let held = std::mem::take(&mut e.paused_body);
                        // The filter's body, unless a callback of the other direction took
                        // the slot meanwhile: then the body as it was at the pause.
                        body = match slot_of(vm, e.ctx).and_then(|s| s.body.take()) {
                            Some((k, b)) if k == pause.kind => b,
                            _ => held,
                        };
                    }
                    Ok(f)
                });
                let f = f.unwrap_or_else(|| {
                    // Skipped meanwhile (it failed open in the other direction): the body
                    // goes on as it was at the pause.
                    let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
                    entries[i].paused = false;
                    body = std::mem::take(&mut entries[i].paused_body);
                    Ok(Flow::Next)
                });
                if !matches!(f, Ok(Flow::Wait)) {
                    break f;
                }
            };
            let outcome = match flow {
                Ok(Flow::Next | Flow::Wait) => {
                    self.body_from(pause.kind, pause.position + 1, body, true)
                }
                Ok(Flow::Reply(reply)) => BodyOutcome::Reply {
                    filter: self.name(i),
                    reply,
                },
                Ok(Flow::Close) => BodyOutcome::Fail(FilterFailure {
                    filter: self.name(i),
                    message: "the filter reset the stream".into(),
                }),
                Err(m) => match self.failed(i, m) {
                    Some(f) => BodyOutcome::Fail(f),
                    // `failure: open`: the body as it was when the filter paused.
                    None => {
                        let held = {
                            let mut entries =
                                self.entries.lock().unwrap_or_else(|p| p.into_inner());
                            std::mem::take(&mut entries[i].paused_body)
                        };
                        self.body_from(pause.kind, pause.position + 1, held, true)
                    }
                },
            };
            match outcome {
                BodyOutcome::Paused(next) => pause = next,
                other => return other,
            }
        }
    }

    /// One Kafka request through the chain in order (`strait_on_kafka_request`): the first
    /// local response is the verdict. No pause: a filter's return value is ignored.
    pub fn kafka_request(&self, req: &Arc<KafkaRequestInfo>) -> Outcome {
        for i in 0..self.chain.plugins.len() {
            let r = self.run(i, |vm, e| {
                if vm.f.kafka_request.is_none() {
                    return Ok(None);
                }
                if let Some(s) = slot_of(vm, e.ctx) {
                    s.kafka = Some(req.clone());
                }
                let r = vm
                    .call_export(|x| x.kafka_request.as_ref(), e.ctx)
                    .unwrap_or(Ok(0));
                let flow = match slot_of(vm, e.ctx) {
                    Some(s) => {
                        s.kafka = None;
                        match s.local.take() {
                            Some(l) => Flow::Reply(l),
                            None if std::mem::take(&mut s.close) => Flow::Close,
                            None => Flow::Next,
                        }
                    }
                    None => Flow::Next,
                };
                r.map(|_| Some(flow))
            });
            let Some(r) = r else { continue };
            let failure = match r {
                Ok(Some(Flow::Next | Flow::Wait)) => continue,
                Ok(Some(Flow::Reply(reply))) => {
                    return Outcome::Reply {
                        filter: self.name(i),
                        reply,
                    }
                }
                Ok(Some(Flow::Close)) => "the filter reset the stream".to_owned(),
                Ok(None) => "the module does not export `strait_on_kafka_request`: it cannot judge Kafka requests (docs/proxy-wasm.md, Kafka extension)".to_owned(),
                Err(m) => m,
            };
            if let Some(f) = self.failed(i, failure) {
                return Outcome::Fail(f);
            }
        }
        Outcome::Continue
    }

    /// Trailers through the chain; a filter may change them. A verdict here comes after the
    /// head (and body) went on, too late for a reply: a local response, a reset or a pause
    /// (strait cannot wait in a trailers callback) fails the stream, whatever the filter's
    /// failure policy, so the request is not completed as if allowed (as Envoy resets a
    /// stream that gets a local reply after its headers were sent).
    pub fn trailers(
        &self,
        kind: BodyKind,
        mut map: HeaderMap,
    ) -> (HeaderMap, Option<FilterFailure>) {
        for i in self.order(kind == BodyKind::Response) {
            let mut cur = Some(std::mem::take(&mut map));
            let mut verdict: Option<&'static str> = None;
            let r = self.run(i, |vm, e| {
                let pick: PickTrailers = match kind {
                    BodyKind::Request => |x| x.request_trailers.as_ref(),
                    BodyKind::Response => |x| x.response_trailers.as_ref(),
                };
                if pick(&vm.f).is_none() {
                    return Ok(());
                }
                let Some(m) = cur.take() else { return Ok(()) };
                let count = m.len() as u32;
                if let Some(s) = slot_of(vm, e.ctx) {
                    match kind {
                        BodyKind::Request => s.req_trailers = Some(m),
                        BodyKind::Response => s.resp_trailers = Some(m),
                    }
                }
                let r = vm.call_export(pick, (e.ctx, count)).unwrap_or(Ok(0));
                if let Some(s) = slot_of(vm, e.ctx) {
                    cur = match kind {
                        BodyKind::Request => s.req_trailers.take(),
                        BodyKind::Response => s.resp_trailers.take(),
                    };
                    if let Some(l) = s.local.take() {
                        // Too late for this direction, but it ends the stream's pauses.
                        s.info.wake.answer(&l);
                        verdict = Some("it sent a local response from a trailers callback, after the head went on");
                    } else if s.close {
                        verdict = Some("it reset the stream from a trailers callback");
                    }
                }
                if verdict.is_none() && matches!(r, Ok(a) if a != 0) {
                    verdict = Some("it paused in a trailers callback, where strait cannot wait");
                }
                r.map(|_| ())
            });
            map = cur.unwrap_or_default();
            if let Some(why) = verdict {
                return (
                    map,
                    Some(FilterFailure {
                        filter: self.name(i),
                        message: format!("{why}: the stream is reset"),
                    }),
                );
            }
            if let Some(Err(m)) = r {
                if let Some(f) = self.failed(i, m) {
                    return (map, Some(f));
                }
            }
        }
        (map, None)
    }
}

impl Drop for StreamFilters {
    fn drop(&mut self) {
        let entries = std::mem::take(self.entries.get_mut().unwrap_or_else(|p| p.into_inner()));
        for (i, e) in entries.into_iter().enumerate() {
            if e.ctx == 0 {
                continue;
            }
            let plugin = &self.chain.plugins[i];
            let mut g = plugin.lock(e.slot);
            let Some(vm) = g.as_mut().filter(|vm| vm.incarnation == e.incarnation) else {
                continue;
            };
            vm.store.data_mut().effective = e.ctx;
            let mut r = vm
                .call_export(|x| x.on_done.as_ref(), e.ctx)
                .map_or(Ok(()), |d| d.map(|_| ()));
            if r.is_ok() {
                r = vm
                    .call_export(|x| x.on_log.as_ref(), e.ctx)
                    .unwrap_or(Ok(()));
            }
            if r.is_ok() {
                r = vm
                    .call_export(|x| x.on_delete.as_ref(), e.ctx)
                    .unwrap_or(Ok(()));
            }
            if let Some(vm) = g.as_mut() {
                vm.store.data_mut().streams.remove(&e.ctx);
            }
            match r {
                Ok(()) => plugin.after_callback(&mut g),
                Err(m) => plugin.kill(&mut g, &format!("end of stream callbacks: {m}")),
            }
        }
    }
}
