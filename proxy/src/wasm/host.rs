//! Per-VM host state: what the guest's host calls can see and change during a callback.
//!
//! The request path moves a stream's data (request/response heads, the current body buffer,
//! trailers) into the VM's [`StreamSlot`] before a callback and takes it back afterwards; while a
//! stream is paused its data stays here, so a later callback (an `http_call` response) can still
//! read and change it.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::ops::Range;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::HeaderMap;
use smallvec::SmallVec;
use wasmtime::{Memory, ResourceLimiter, TypedFunc};

use super::shared::RuntimeInner;
use super::stream::{PastFields, StreamInfo};
use super::vm::{Plugin, PluginInfo};

/// proxy-wasm status codes (ABI 0.2.1).
pub mod status {
    pub const OK: u32 = 0;
    pub const NOT_FOUND: u32 = 1;
    pub const BAD_ARGUMENT: u32 = 2;
    pub const PARSE_FAILURE: u32 = 4;
    pub const INVALID_MEMORY_ACCESS: u32 = 6;
    pub const EMPTY: u32 = 7;
    pub const CAS_MISMATCH: u32 = 8;
    pub const INTERNAL_FAILURE: u32 = 10;
    pub const UNIMPLEMENTED: u32 = 12;
}

/// Hashes context ids, small numbers the host hands out in sequence: one multiplication
/// (SipHash on every stream lookup showed up in profiles of the request path).
#[derive(Default, Clone, Copy)]
pub struct CtxHasher(u64);

impl Hasher for CtxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A map keyed by context id.
pub type CtxMap<V> = HashMap<u32, V, BuildHasherDefault<CtxHasher>>;

/// A local response a filter asked for (`proxy_send_local_response`).
#[derive(Debug, Clone)]
pub struct LocalReply {
    pub status: u16,
    pub details: String,
    pub body: Bytes,
    pub headers: Vec<(String, Vec<u8>)>,
    /// `None`: not a gRPC reply (or derive it from the HTTP status for gRPC requests).
    pub grpc_status: Option<u32>,
}

/// Which body the current body buffer belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Request,
    Response,
}

/// A head's fields as the native HTTP/1.1 engine parsed them: the head's bytes and where each
/// name and value lies in them. Host calls that read the head (map pairs, one value,
/// `request.headers.*` properties, `:authority`) read them in place; they become the head's
/// `HeaderMap` only when a host call changes that map ([`StreamSlot::fields`]). A filter that
/// only reads a head does not pay for building one, and the head goes on as it arrived.
#[derive(Debug, Clone)]
pub struct RawFields {
    buf: Bytes,
    /// `(name, value)` byte ranges in `buf`.
    spans: Box<[(Range<u32>, Range<u32>)]>,
}

impl RawFields {
    /// `spans` must come from `httparse`, which accepts only tokens as names and only bytes
    /// `HeaderValue` accepts in values (see the test `httparse_fields_are_valid_http_types`),
    /// so [`Self::to_map`] cannot fail for them.
    pub fn new(buf: Bytes, spans: impl Iterator<Item = (Range<usize>, Range<usize>)>) -> Self {
        let r = |r: Range<usize>| r.start as u32..r.end as u32;
        Self {
            buf,
            spans: spans.map(|(n, v)| (r(n), r(v))).collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// The same fields in a copy of their bytes, so that keeping them does not keep the
    /// buffer they were read into (which the connection reuses once nothing else holds it).
    pub fn unshared(self) -> Self {
        Self {
            buf: Bytes::copy_from_slice(&self.buf),
            spans: self.spans,
        }
    }

    /// The fields in the order they arrived, names as sent (any case).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.spans
            .iter()
            .map(move |(n, v)| (&self.buf[span(n)], &self.buf[span(v)]))
    }

    /// The values of the fields named `name` (compared without case), in order.
    pub fn get_all<'a, 'n>(
        &'a self,
        name: &'n [u8],
    ) -> impl Iterator<Item = &'a [u8]> + use<'a, 'n> {
        self.iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The fields as a map whose values share the head's bytes (nothing is copied).
    pub fn to_map(&self) -> Result<HeaderMap, String> {
        let mut map = HeaderMap::with_capacity(self.spans.len());
        for (n, v) in self.spans.iter() {
            let name = HeaderName::from_bytes(&self.buf[span(n)])
                .map_err(|_| "invalid header name".to_owned())?;
            let value = HeaderValue::from_maybe_shared(self.buf.slice(span(v)))
                .map_err(|_| "invalid header value".to_owned())?;
            map.append(name, value);
        }
        Ok(map)
    }
}

/// A stored span as a slice range.
fn span(r: &Range<u32>) -> Range<usize> {
    r.start as usize..r.end as usize
}

/// The values of one field joined with `,` (the proxy-wasm form of a repeated field); `None`
/// when there are none.
pub fn join_values<'a>(values: impl Iterator<Item = &'a [u8]>) -> Option<Vec<u8>> {
    crate::http::headers::join_values(values, b",")
}

/// One HTTP stream's data as seen by one VM.
pub struct StreamSlot {
    pub info: Arc<StreamInfo>,
    pub req: Option<http::request::Parts>,
    pub resp: Option<http::response::Parts>,
    /// The request head's fields while no host call has needed them as `req.headers` (then
    /// `req.headers` is empty). See [`RawFields`].
    pub req_fields: Option<RawFields>,
    /// The same for the response head.
    pub resp_fields: Option<RawFields>,
    pub req_trailers: Option<HeaderMap>,
    pub resp_trailers: Option<HeaderMap>,
    /// The body buffer of the running body callback (all of it buffered so far).
    pub body: Option<(BodyKind, Bytes)>,
    /// Values stored with `proxy_set_property` (filter state).
    pub props: Props,
    pub local: Option<LocalReply>,
    pub resume_request: bool,
    pub resume_response: bool,
    /// `proxy_close_stream`: reset the stream.
    pub close: bool,
    /// The Kafka request being judged (`strait_on_kafka_request`), for `kafka.*` properties;
    /// also what makes a local response carry a Kafka error code.
    pub kafka: Option<Arc<KafkaRequestInfo>>,
}

/// What a filter learns about one Kafka request (`kafka.*` properties).
#[derive(Debug, Clone)]
pub struct KafkaRequestInfo {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
    pub api_name: String,
    pub client_id: Option<String>,
    pub topics: KafkaTopics,
}

/// `kafka.topic_scope` and `kafka.topics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KafkaTopics {
    /// The API names no topic.
    None,
    /// Exactly these topics (names, each once, in request order).
    Listed(Vec<String>),
    /// Every topic.
    All,
    /// Topics strait cannot name.
    Unknown,
}

impl KafkaTopics {
    pub fn scope(&self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Listed(_) => "listed",
            Self::All => "all",
            Self::Unknown => "unknown",
        }
    }
}

impl StreamSlot {
    /// Makes the request (`request`) or response head's fields its `HeaderMap`, if they are
    /// still raw; every host call that reads or changes a head's fields calls this first.
    /// A failure (which `httparse`'s checks rule out) resets the stream rather than show the
    /// filter a head with fields missing.
    pub fn fields(&mut self, request: bool) {
        let (raw, headers) = if request {
            (
                &mut self.req_fields,
                self.req.as_mut().map(|p| &mut p.headers),
            )
        } else {
            (
                &mut self.resp_fields,
                self.resp.as_mut().map(|p| &mut p.headers),
            )
        };
        let (Some(r), Some(headers)) = (raw.take(), headers) else {
            return;
        };
        match r.to_map() {
            Ok(map) => *headers = map,
            Err(m) => {
                tracing::error!(listener = %self.info.listener, source = %self.info.source, "a parsed head's fields could not be handed to a filter ({m}); resetting the stream");
                self.close = true;
            }
        }
    }

    /// The values of field `name` (lower case) of the request (`request`) or response head,
    /// joined with `,`; `None` when there is no such head or field. Raw fields are read where
    /// they are: reading a head leaves it as it arrived (see [`RawFields`]).
    pub fn field_values(&self, request: bool, name: &str) -> Option<Vec<u8>> {
        let (raw, headers) = self.head_fields(request)?;
        match raw {
            Some(r) => join_values(r.get_all(name.as_bytes())),
            None => join_values(headers.get_all(name).iter().map(|v| v.as_bytes())),
        }
    }

    /// The first value of field `name` of the request (`request`) or response head, raw or
    /// not.
    pub fn first_field(&self, request: bool, name: &str) -> Option<&[u8]> {
        match self.head_fields(request)? {
            (Some(r), _) => r.get_all(name.as_bytes()).next(),
            (None, h) => h.get(name).map(|v| v.as_bytes()),
        }
    }

    /// Drops a resume of this direction that came while nothing was paused in it (a filter
    /// may call `continue_stream` at any time), so that it cannot end a later pause at once.
    /// Called before each head or body callback; a resume during the callback still counts.
    pub fn forget_resume(&mut self, request: bool) {
        if request {
            self.resume_request = false;
        } else {
            self.resume_response = false;
        }
    }

    /// The request's authority (`:authority`): the target's, else the `host` field's, else
    /// empty; from the head [`Self::request_line`] reads; `None` without a request.
    pub fn request_authority(&self) -> Option<&[u8]> {
        let (_, uri) = self.request_line()?;
        let host = match self.head_fields(true) {
            Some(_) => self.first_field(true, "host"),
            // Before the chain is done with the head (a root context's call).
            None => self
                .info
                .request
                .as_ref()
                .and_then(|r| r.host.as_ref())
                .map(|h| h.as_bytes()),
        };
        Some(super::stream::authority(uri, host))
    }

    /// The request's method and target: the live head's during its callbacks, then as the
    /// chain passed them on, else as they arrived; `None` without a request (Kafka).
    pub fn request_line(&self) -> Option<(&http::Method, &http::Uri)> {
        if let Some(p) = &self.req {
            return Some((&p.method, &p.uri));
        }
        self.info
            .past
            .get(true)
            .and_then(PastFields::line)
            .or_else(|| self.info.request.as_ref().map(|r| (&r.method, &r.uri)))
    }

    /// A head's raw fields (when still raw) and its `HeaderMap` (empty while raw): the live
    /// head during its own callbacks, else the fields the chain passed on
    /// ([`super::stream::PastHeads`]); `None` before the chain is done with it.
    pub fn head_fields(&self, request: bool) -> Option<(Option<&RawFields>, &HeaderMap)> {
        let live = if request {
            self.req
                .as_ref()
                .map(|p| (self.req_fields.as_ref(), &p.headers))
        } else {
            self.resp
                .as_ref()
                .map(|p| (self.resp_fields.as_ref(), &p.headers))
        };
        live.or_else(|| self.info.past.get(request).map(PastFields::fields))
    }

    pub fn new(info: Arc<StreamInfo>) -> Self {
        Self {
            info,
            req: None,
            resp: None,
            req_fields: None,
            resp_fields: None,
            req_trailers: None,
            resp_trailers: None,
            body: None,
            props: Props::default(),
            local: None,
            resume_request: false,
            resume_response: false,
            close: false,
            kafka: None,
        }
    }
}

/// The response of an `http_call` or `grpc_call`, visible during its callback.
#[derive(Default)]
pub struct CallResponse {
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Bytes,
    pub trailers: Vec<(String, Vec<u8>)>,
    pub grpc_status: Option<(u32, String)>,
}

/// An outbound call a callback asked for; started when the callback returns.
pub enum Outbound {
    Http {
        token: u32,
        context: u32,
        cluster: String,
        headers: Vec<(String, Vec<u8>)>,
        body: Bytes,
        trailers: Vec<(String, Vec<u8>)>,
        timeout: Duration,
    },
    Grpc {
        token: u32,
        context: u32,
        cluster: String,
        service: String,
        method: String,
        metadata: Vec<(String, Vec<u8>)>,
        message: Bytes,
        timeout: Duration,
    },
    /// Tell the VM that registered `queue` that it has data.
    QueueReady { queue: u32 },
}

/// Caps linear memory growth and remembers a refusal, so the failure names the limit.
pub struct Limiter {
    pub max: usize,
    pub refused: Option<usize>,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max {
            self.refused = Some(desired);
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1 << 20)
    }
}

/// Everything a VM's host calls can reach.
pub struct HostState {
    pub plugin: Arc<PluginInfo>,
    pub rt: Arc<RuntimeInner>,
    /// The plugin and slot this VM lives in (for callouts and timers started from callbacks).
    pub owner: Weak<Plugin>,
    pub slot: usize,
    pub incarnation: u64,
    pub limiter: Limiter,
    pub memory: Option<Memory>,
    pub alloc: Option<Arc<TypedFunc<u32, u32>>>,
    pub root: u32,
    /// The context host calls apply to (`proxy_set_effective_context`).
    pub effective: u32,
    /// Reused by host calls that serialise a header map for the guest.
    pub scratch: Vec<u8>,
    /// Boxed: a slot is most of a kilobyte (two heads, trailers, a local reply), and a map
    /// of values would copy it in on every stream's insert and out again on its remove.
    pub streams: CtxMap<Box<StreamSlot>>,
    /// `proxy_set_property` values of the root context.
    pub root_props: Props,
    pub call_response: Option<CallResponse>,
    pub tick_period: Option<Duration>,
    pub tick_changed: bool,
    pub pending: Vec<Outbound>,
    pub next_token: u32,
    /// Why the VM must die even though the guest returned (e.g. `proc_exit`).
    pub fault: Option<String>,
    /// Guest stdout/stderr, flushed to the log line by line.
    pub stdout: Vec<u8>,
    /// The running callback's deadline, its start (epoch clock milliseconds), and the
    /// thread CPU time at the last deadline check (see `vm::on_deadline`).
    pub budget: Duration,
    pub call_start_ms: u64,
    pub cpu_mark: Option<Duration>,
    /// Where the root context is in its end (see `wasm::unload`).
    pub root_end: RootEnd,
}

/// The end of a VM's root context, as Envoy runs it when a plugin goes away: `proxy_on_done`;
/// if it returned false, the guest finishes its work and calls `proxy_done`; then
/// `proxy_on_delete`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootEnd {
    /// Serving; `proxy_done` has nothing to finish (`NOT_FOUND`).
    Live,
    /// `proxy_on_done` returned false: timers and calls go on until `proxy_done`.
    Pending,
    /// `proxy_done` was called: `proxy_on_delete` comes next.
    Done,
}

impl HostState {
    pub fn new(
        plugin: Arc<PluginInfo>,
        rt: Arc<RuntimeInner>,
        owner: Weak<Plugin>,
        slot: usize,
        incarnation: u64,
    ) -> Self {
        let max = rt.settings.memory_limit;
        Self {
            plugin,
            rt,
            owner,
            slot,
            incarnation,
            limiter: Limiter { max, refused: None },
            memory: None,
            alloc: None,
            root: 0,
            effective: 0,
            scratch: Vec::new(),
            streams: CtxMap::default(),
            root_props: Props::default(),
            call_response: None,
            tick_period: None,
            tick_changed: false,
            pending: Vec::new(),
            next_token: 1,
            fault: None,
            stdout: Vec::new(),
            budget: Duration::from_secs(1),
            call_start_ms: 0,
            cpu_mark: None,
            root_end: RootEnd::Live,
        }
    }

    pub fn stream(&mut self) -> Option<&mut StreamSlot> {
        self.streams.get_mut(&self.effective).map(|s| &mut **s)
    }

    pub fn token(&mut self) -> u32 {
        let t = self.next_token;
        self.next_token = self.next_token.wrapping_add(1).max(1);
        t
    }
}

/// Values stored with `proxy_set_property`, by `\0`-joined path. A filter sets a few at most,
/// so a short list searched in order; the first one lives inline and the key of the one strait
/// reads itself (`strait.policy`, set on every request by policy filters) is not copied.
#[derive(Debug, Default)]
pub struct Props(SmallVec<[(Cow<'static, str>, Bytes); 1]>);

impl Props {
    /// The key strait writes into flow records.
    pub const POLICY: &'static str = "strait\0policy";

    pub fn get(&self, key: &str) -> Option<&Bytes> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn set(&mut self, key: &str, value: Bytes) {
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value,
            None => {
                let key = if key == Self::POLICY {
                    Cow::Borrowed(Self::POLICY)
                } else {
                    Cow::Owned(key.to_owned())
                };
                self.0.push((key, value));
            }
        }
    }
}

/// Serialises header pairs the proxy-wasm way (little endian): count, then (key len, value
/// len) per pair, then each `key\0value\0`.
#[cfg(test)]
pub fn serialize_pairs<'a>(pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> Vec<u8> {
    let mut out = Vec::new();
    serialize_pairs_into(&mut out, pairs);
    out
}

/// [`serialize_pairs`] appended to `out` (a buffer kept between calls allocates nothing).
/// The pairs are walked once (a `HeaderMap` walk is the costly part) into a list on the
/// stack, which the three sections then read.
pub fn serialize_pairs_into<'a>(
    out: &mut Vec<u8>,
    pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
) {
    serialize(out, pairs, false);
}

/// [`serialize_pairs_into`] with the names in lower case (raw HTTP/1.1 fields keep the case
/// they were sent in; filters get names in lower case, HTTP/2's form).
pub fn serialize_pairs_lower_into<'a>(
    out: &mut Vec<u8>,
    pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
) {
    serialize(out, pairs, true);
}

fn serialize<'a>(
    out: &mut Vec<u8>,
    pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
    lower: bool,
) {
    let pairs: SmallVec<[(&[u8], &[u8]); 32]> = pairs.into_iter().collect();
    let size = 4 + pairs
        .iter()
        .map(|(k, v)| 8 + k.len() + v.len() + 2)
        .sum::<usize>();
    out.reserve(size);
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (k, v) in &pairs {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in &pairs {
        let at = out.len();
        out.extend_from_slice(k);
        if lower {
            out[at..].make_ascii_lowercase();
        }
        out.push(0);
        out.extend_from_slice(v);
        out.push(0);
    }
}

/// Parses a serialised header map; `None` if it is malformed.
pub fn parse_pairs(data: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    if data.is_empty() {
        return Some(Vec::new());
    }
    let n = u32::from_le_bytes(data.get(0..4)?.try_into().ok()?) as usize;
    let mut sizes = Vec::with_capacity(n.min(4096));
    let mut p = 4usize;
    for _ in 0..n {
        let k = u32::from_le_bytes(data.get(p..p + 4)?.try_into().ok()?) as usize;
        let v = u32::from_le_bytes(data.get(p + 4..p + 8)?.try_into().ok()?) as usize;
        sizes.push((k, v));
        p += 8;
    }
    let mut out = Vec::with_capacity(sizes.len());
    for (k, v) in sizes {
        let key = data.get(p..p.checked_add(k)?)?;
        p += k + 1;
        let val = data.get(p..p.checked_add(v)?)?;
        p += v + 1;
        out.push((String::from_utf8(key.to_vec()).ok()?, val.to_vec()));
    }
    Some(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn pairs_round_trip() {
        let pairs: Vec<(&[u8], &[u8])> = vec![(b":path", b"/a"), (b"x-k", b"\xffv")];
        let data = serialize_pairs(pairs.iter().copied());
        let back = parse_pairs(&data).expect("parses");
        assert_eq!(back[0], (":path".to_owned(), b"/a".to_vec()));
        assert_eq!(back[1], ("x-k".to_owned(), b"\xffv".to_vec()));
    }

    #[test]
    fn props_replace_values_and_do_not_copy_the_policy_key() {
        let mut p = Props::default();
        assert!(p.get(Props::POLICY).is_none());
        p.set(Props::POLICY, Bytes::from_static(b"a"));
        p.set("x\0y", Bytes::from_static(b"1"));
        p.set(Props::POLICY, Bytes::from_static(b"b"));
        assert_eq!(p.get(Props::POLICY).map(|b| &b[..]), Some(&b"b"[..]));
        assert_eq!(p.get("x\0y").map(|b| &b[..]), Some(&b"1"[..]));
        assert!(p.get("x").is_none());
        assert_eq!(p.0.len(), 2);
        assert!(matches!(p.0[0].0, Cow::Borrowed(_)));
    }

    /// A head the native engine parsed, as raw fields.
    fn raw_head(head: &'static [u8]) -> RawFields {
        let buf = Bytes::from_static(head);
        let mut hs = [httparse::EMPTY_HEADER; 16];
        let mut req = httparse::Request::new(&mut hs);
        assert!(req.parse(&buf).unwrap().is_complete());
        let at = |s: &[u8]| {
            let start = s.as_ptr() as usize - buf.as_ptr() as usize;
            start..start + s.len()
        };
        let spans: Vec<_> = req
            .headers
            .iter()
            .map(|h| (at(h.name.as_bytes()), at(h.value)))
            .collect();
        RawFields::new(buf.clone(), spans.into_iter())
    }

    fn slot() -> StreamSlot {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 1));
        StreamSlot::new(Arc::new(StreamInfo {
            listener: Arc::from("l"),
            source: addr,
            destination: addr,
            upstream: Arc::from("u"),
            protocol: "HTTP/1.1",
            tls: false,
            identity: None,
            destination_identity: None,
            start: std::time::SystemTime::now(),
            request: None,
            policy: Default::default(),
            wake: Default::default(),
            status: Default::default(),
            past: Default::default(),
        }))
    }

    /// Reading raw fields answers what reading their `HeaderMap` answers, and leaves them raw.
    #[test]
    fn raw_fields_read_like_their_map() {
        let raw =
            raw_head(b"GET /p HTTP/1.1\r\nHost: h.example\r\nX-A: 1\r\nx-b: 2\r\nX-a: 3\r\n\r\n");
        let parts = || http::Request::new(()).into_parts().0;
        let mut raw_slot = slot();
        raw_slot.req = Some(parts());
        raw_slot.req_fields = Some(raw.clone());
        let mut map_slot = slot();
        map_slot.req = Some(parts());
        map_slot.req.as_mut().unwrap().headers = raw.to_map().unwrap();
        for name in ["x-a", "x-b", "host", "missing", ":path"] {
            assert_eq!(
                raw_slot.field_values(true, name),
                map_slot.field_values(true, name),
                "{name}"
            );
            assert_eq!(
                raw_slot.first_field(true, name),
                map_slot.first_field(true, name),
                "{name}"
            );
        }
        assert_eq!(raw_slot.field_values(true, "x-a"), Some(b"1,3".to_vec()));
        assert_eq!(raw_slot.request_authority(), Some(&b"h.example"[..]));
        assert_eq!(map_slot.request_authority(), Some(&b"h.example"[..]));
        assert_eq!(
            raw_slot.field_values(false, "x-a"),
            None,
            "no response head"
        );
        assert!(raw_slot.req_fields.is_some(), "reads leave the fields raw");

        // Serialised for the guest: wire order, names in lower case.
        let mut out = Vec::new();
        serialize_pairs_lower_into(&mut out, raw.iter());
        let names: Vec<String> = parse_pairs(&out)
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(names, ["host", "x-a", "x-b", "x-a"]);
    }

    /// After a head's own callbacks its fields read as the chain passed them on: raw or a map,
    /// each kept once; the live head, while there is one, comes first.
    #[test]
    fn past_heads_read_after_their_callbacks() {
        let raw = raw_head(b"GET /p HTTP/1.1\r\nHost: h.example\r\nX-A: 1\r\n\r\n");
        let s = slot();
        assert_eq!(s.field_values(true, "x-a"), None, "nothing kept yet");
        let uri = http::Uri::from_static("/p?q");
        s.info.past.keep_request(
            Some(raw.clone()),
            &HeaderMap::new(),
            Some((&http::Method::POST, &uri)),
        );
        let mut later = HeaderMap::new();
        later.insert("x-a", HeaderValue::from_static("2"));
        s.info.past.keep_request(None, &later, None);
        assert_eq!(
            s.field_values(true, "x-a"),
            Some(b"1".to_vec()),
            "first kept"
        );
        assert_eq!(s.first_field(true, "host"), Some(&b"h.example"[..]));
        assert_eq!(s.request_line(), Some((&http::Method::POST, &uri)));
        assert_eq!(s.request_authority(), Some(&b"h.example"[..]));
        assert_eq!(s.field_values(false, "x-a"), None, "no response kept");
        s.info.past.keep_response(None, &later, 201);
        assert_eq!(s.field_values(false, "x-a"), Some(b"2".to_vec()));
        assert_eq!(
            s.info.past.get(false).and_then(PastFields::status),
            Some(201)
        );

        let mut live = slot();
        live.info = s.info.clone();
        live.req = Some(http::Request::new(()).into_parts().0);
        assert_eq!(
            live.field_values(true, "x-a"),
            None,
            "the live head, not the kept one"
        );
    }

    #[test]
    fn malformed_pairs_are_refused() {
        assert!(parse_pairs(&[5, 0, 0, 0, 1]).is_none());
        let mut data = serialize_pairs([(&b"k"[..], &b"v"[..])]);
        data.truncate(data.len() - 2);
        assert!(parse_pairs(&data).is_none());
    }
}
