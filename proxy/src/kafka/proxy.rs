//! The Kafka listener flow: one upstream broker connection per client connection, every request
//! framed, parsed and judged, responses matched to requests in order, broker addresses moved to
//! strait's own, one flow record per request.
//!
//! ```text
//! client ─frames─▶ reader: parse_request → policy.decide
//!                    Forward ─▶ queue Upstream(req) ─▶ write to broker   (acks=0: NoResponse)
//!                    Deny    ─▶ queue Local(error response)               (acks=0: nothing)
//!                    Metadata under a topic policy: denied topics taken out of the request,
//!                      answered inside the broker's answer (metadata_policy.rs)
//! queue (FIFO) ─▶ writer: Upstream: next broker frame, correlation id must match, rewrite
//!                           brokers / cap ApiVersions, send to client
//!                         Local: send to client (after every earlier response)
//! ```
//!
//! Kafka answers the requests of one connection in order, so the queue is the whole matching
//! state: the writer reads a broker frame only for the request at its head, and a broker frame
//! with no request waiting (or the wrong correlation id) ends the connection, unless it answers
//! a Produce with acks=0 (dropped: the client reads no answer to those). Denials travel in the
//! same queue, so a client pipelining requests gets every answer in request order.
//!
//! This module is the only part of `kafka/` that depends on the rest of the crate (config,
//! flows, metrics, upstream connector); the fuzz target leaves it out.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::{Buf, Bytes, BytesMut};
use futures_util::StreamExt;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

pub mod filters;
mod metadata_policy;

pub use filters::TopicNames;

use super::api::{API_VERSIONS, METADATA};
use super::codec::{FrameError, KafkaCodec};
use super::request::{parse_request, Parsed, Topics};
use super::response::error_response;
use super::rewrite;
use crate::config::ListenerConfig;
use crate::flows::{FlowRecord, Flows, Verdict as FlowVerdict};
use crate::http::upstream::{Alpn, Target, UpstreamConnector};
use crate::io::{Activity, AsyncStream, Tracked};
use crate::metrics::{ListenerMetrics, UpstreamErrorKind};
use crate::wasm::ChainHandle;
use filters::ConnFilters;
use metadata_policy::MetadataEdit;

/// Requests queued between the reader and the writer (in flight at the broker, or denied and
/// waiting for their turn). Past it the reader stops reading the client: back-pressure, not an
/// error. Kafka clients keep far fewer in flight by default (Java 5, librdkafka 1000000 but
/// bounded by its queue; brokers serve one request per connection at a time anyway).
const MAX_QUEUED: usize = 1024;

/// The text put in the error-message fields of denial responses.
const DENIAL_MESSAGE: &str = "denied by strait policy";

/// Kafka's `UNSUPPORTED_VERSION`.
const UNSUPPORTED_VERSION: i16 = 35;

/// What the policy hook says about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send it to the broker.
    Forward,
    /// Answer it from strait with Kafka error `code` on every topic / partition it names, or at
    /// the top level (see [`super::response::error_response`]; e.g.
    /// [`super::response::denial_code`]). Requests strait cannot answer that way (unknown APIs,
    /// versions without a usable error field) end the connection instead, after the responses
    /// to the requests before them.
    Deny { code: i16 },
}

/// The connection a request arrived on.
#[derive(Debug, Clone, Copy)]
pub struct Connection<'a> {
    pub listener: &'a str,
    /// The client.
    pub peer: SocketAddr,
    /// The address the client connected to (for a transparent listener: the broker's).
    pub local: SocketAddr,
}

/// The policy hook: called once per request, in arrival order, before anything is sent to the
/// broker. `req` is what [`parse_request`] made of the frame: a known API and version with its
/// topics, or the header of an unknown API / version (whose topics are unknown: a policy that
/// needs them should deny). Frames that do not parse end the connection without a call.
///
/// It runs on the connection's task: keep it quick and non-blocking.
pub trait Policy: Send + Sync + 'static {
    fn decide(&self, conn: &Connection<'_>, req: &Parsed) -> Verdict;
}

/// Forwards every request (the default until Kafka policy is configured).
#[derive(Debug, Default, Clone, Copy)]
pub struct AllowAll;

impl Policy for AllowAll {
    fn decide(&self, _: &Connection<'_>, _: &Parsed) -> Verdict {
        Verdict::Forward
    }
}

/// Any closure can be a policy.
impl<F> Policy for F
where
    F: Fn(&Connection<'_>, &Parsed) -> Verdict + Send + Sync + 'static,
{
    fn decide(&self, conn: &Connection<'_>, req: &Parsed) -> Verdict {
        self(conn, req)
    }
}

pub struct KafkaProxy {
    cfg: Arc<ListenerConfig>,
    connector: UpstreamConnector,
    flows: Flows,
    metrics: ListenerMetrics,
    destination: String,
    policy: Arc<dyn Policy>,
    /// The listener's WASM filters (`strait_on_kafka_request`), after `policy`.
    filters: Option<KafkaFilters>,
    /// Move advertised brokers to strait's address (explicit listeners) or not (transparent:
    /// clients reach each broker at its own address, redirected again).
    rewrite: bool,
    /// A policy hook or filters judge requests: Metadata is authorized per topic.
    judges_topics: bool,
}

/// A listener's filter chain and what its filters need to know about a connection.
struct KafkaFilters {
    chain: ChainHandle,
    names: Arc<TopicNames>,
    /// Source and destination identities (transparent listeners).
    identities: (Option<u32>, Option<u32>),
}

/// What the reader and the writer of one connection share.
struct Shared<'a> {
    conn: Connection<'a>,
    /// The connection's filter contexts: used by the reader (requests) and the writer (Metadata
    /// answers), never at once (both run on the connection's task).
    filters: Mutex<Option<ConnFilters>>,
    activity: Arc<Activity>,
}

/// One request in the queue, with what its flow record needs.
struct InFlight {
    correlation_id: i32,
    api_key: i16,
    api_version: i16,
    method: String,
    path: Option<String>,
    time: SystemTime,
    received: Instant,
    request_bytes: u64,
    /// The filter that decided, the policy it named, and why (denials, filter failures).
    filter: Option<String>,
    policy: Option<String>,
    reason: Option<String>,
    /// Metadata under a topic policy: how to edit the broker's answer.
    metadata: Option<MetadataEdit>,
    /// Forwarded, but the policy denied (part of) it: the flow is a denial, for this reason.
    denial: Option<String>,
}

enum Queued {
    /// Forwarded: the broker's next response is this request's.
    Upstream(InFlight),
    /// Answered by strait: send this response when its turn comes; the flow's verdict and error.
    Local(InFlight, Bytes, FlowVerdict, String),
    /// Unanswerable (denied without a possible error response, or an unreadable frame): end the
    /// connection when its turn comes. The request, if there was one, and why.
    Close(Option<InFlight>, String),
    /// A forwarded Produce with acks=0 (this correlation id): Kafka sends nothing back, but a
    /// broker that does answer it (tansu 0.6 does) has its answer dropped here, in its place in
    /// the order, instead of breaking the connection.
    NoResponse(i32),
}

/// How a connection ended, for the log.
enum End {
    /// The client closed (or the proxy drained) and every response was delivered.
    Done,
    /// Something went wrong; logged, and recorded in the pending requests' flows.
    Error(String),
}

impl KafkaProxy {
    /// A Kafka flow to `target` that forwards every request ([`AllowAll`]); `rewrite`: move
    /// advertised broker addresses to strait's.
    pub fn new(
        cfg: Arc<ListenerConfig>,
        flows: Flows,
        metrics: ListenerMetrics,
        target: &Target,
        rewrite: bool,
    ) -> Self {
        Self {
            connector: UpstreamConnector::new(&cfg, target, Alpn::None),
            destination: target.authority.to_string(),
            cfg,
            flows,
            metrics,
            policy: Arc::new(AllowAll),
            filters: None,
            rewrite,
            judges_topics: false,
        }
    }

    /// The same flow judging every request with the WASM filters of `chain` (after the
    /// policy hook); `names` maps topic ids to names for them, `identities` are the source's
    /// and the destination's.
    pub fn with_filters(
        mut self,
        chain: ChainHandle,
        names: Arc<TopicNames>,
        identities: (Option<u32>, Option<u32>),
    ) -> Self {
        self.filters = Some(KafkaFilters {
            chain,
            names,
            identities,
        });
        self.judges_topics = true;
        self
    }

    /// The same flow with another policy hook.
    pub fn with_policy(mut self, policy: Arc<dyn Policy>) -> Self {
        self.policy = policy;
        self.judges_topics = true;
        self
    }

    /// Serves one client connection; `local` is the address the client connected to.
    pub async fn serve<S: AsyncStream + 'static>(
        self: Arc<Self>,
        io: S,
        peer: SocketAddr,
        local: SocketAddr,
        shutdown: CancellationToken,
    ) {
        let activity = Activity::new();
        let down = Tracked::new(io, activity.clone());
        let up = match self.connector.connect().await {
            Ok(up) => up.into_tokio(),
            Err(e) => {
                self.metrics.upstream_error(e.kind());
                tracing::debug!(listener = %self.cfg.name, %peer, error = %e, "Kafka upstream connect failed");
                let mut rec = self.record(peer, SystemTime::now(), FlowVerdict::Error);
                rec.error = Some(format!("upstream unavailable: {e}"));
                self.flows.emit(rec);
                return;
            }
        };
        let advertise = self
            .rewrite
            .then(|| match &self.cfg.kafka.advertised_address {
                Some(a) => (a.host.clone(), a.port),
                None => (local.ip().to_string(), local.port()),
            });
        let codec = KafkaCodec::with_max_frame(self.cfg.kafka.max_frame_bytes);
        let (down_r, down_w) = tokio::io::split(down);
        let (up_r, up_w) = tokio::io::split(up);
        let (tx, rx) = mpsc::channel(MAX_QUEUED);
        let conn = Connection {
            listener: &self.cfg.name,
            peer,
            local,
        };
        let filters = Mutex::new(self.filters.as_ref().map(|f| {
            ConnFilters::new(
                f.chain.clone(),
                conn.listener,
                conn.peer,
                conn.local,
                self.destination.clone(),
                f.identities,
            )
        }));
        let shared = Shared {
            conn,
            filters,
            activity: activity.clone(),
        };
        let reader =
            self.read_requests(&shared, FramedRead::new(down_r, codec), up_w, tx, &shutdown);
        let writer = self.write_responses(
            &shared,
            advertise.as_ref().map(|(h, p)| (h.as_str(), *p)),
            FramedRead::new(up_r, codec),
            down_w,
            rx,
        );
        tokio::pin!(reader, writer);
        let idle = self.cfg.timeouts.idle;
        let mut reading = true;
        let end = loop {
            let wait = activity.idle_remaining(idle).max(Duration::from_millis(50));
            tokio::select! {
                () = &mut reader, if reading => reading = false,
                end = &mut writer => break end,
                () = tokio::time::sleep(wait) => {
                    if activity.idle_remaining(idle).is_zero() {
                        break End::Error(format!("idle for {idle:?}"));
                    }
                }
            }
        };
        if let End::Error(e) = end {
            tracing::info!(listener = %self.cfg.name, %peer, error = %e, "Kafka connection closed");
        }
    }

    /// Reads, parses and judges client requests until the client closes, the proxy drains, or a
    /// frame cannot be handled. Dropping the queue's sender tells the writer no more will come.
    async fn read_requests<R, W>(
        &self,
        shared: &Shared<'_>,
        mut requests: FramedRead<R, KafkaCodec>,
        mut upstream: W,
        queue: mpsc::Sender<Queued>,
        shutdown: &CancellationToken,
    ) where
        R: tokio::io::AsyncRead + Unpin,
        W: tokio::io::AsyncWrite + Unpin,
    {
        let (conn, filters, activity) = (&shared.conn, &shared.filters, &shared.activity);
        loop {
            let frame = tokio::select! {
                f = requests.next() => f,
                () = shutdown.cancelled() => return,
            };
            let frame = match frame {
                None => return,
                Some(Ok(f)) => f,
                Some(Err(e)) => {
                    // Oversized, empty or negative sizes: Kafka brokers close such connections
                    // without an answer too (the stream cannot be re-synced).
                    self.metrics.bad_requests.inc();
                    let why = format!("bad request frame: {e}");
                    let _ = queue.send(Queued::Close(None, why)).await;
                    return;
                }
            };
            let received = Instant::now();
            let time = SystemTime::now();
            let parsed = match parse_request(&frame) {
                Ok(p) => p,
                Err(e) => {
                    self.metrics.bad_requests.inc();
                    let why = format!("unreadable request: {e}");
                    let _ = queue.send(Queued::Close(None, why)).await;
                    return;
                }
            };
            self.metrics.requests.inc();
            let mut info = in_flight(&parsed, time, received, frame.len());
            let mut verdict = self.policy.decide(conn, &parsed);
            if let (Verdict::Forward, Some(k)) = (verdict, self.filters.as_ref()) {
                let mut guard = filters.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(f) = guard.as_mut() {
                    let j = f.judge(&parsed, &k.names);
                    if let Some(code) = j.deny {
                        verdict = Verdict::Deny { code };
                    }
                    info.filter = j.filter;
                    info.policy = j.policy;
                    info.reason = j.reason;
                }
            }
            let (verdict, edited) =
                self.metadata_plan(conn, filters, &parsed, &frame, verdict, &mut info);
            let frame: &[u8] = edited.as_deref().unwrap_or(&frame);
            let queued = match verdict {
                Verdict::Deny { code } => {
                    self.metrics.filter_denied.inc();
                    self.denial(&parsed, info, code, conn.peer)
                }
                Verdict::Forward => match self.unsupported_api_versions(&parsed) {
                    Some(resp) => {
                        let why = format!(
                            "{} v{} is newer than strait knows: answered UNSUPPORTED_VERSION",
                            info.method, info.api_version
                        );
                        Some(Queued::Local(info, resp, FlowVerdict::Error, why))
                    }
                    None => {
                        let expects = match &parsed {
                            Parsed::Known(r) => r.expects_response,
                            _ => true,
                        };
                        let mut unanswered = None;
                        // Queued before it is sent: the broker's answer cannot overtake it.
                        let queued = if expects {
                            activity.request_started();
                            Queued::Upstream(info)
                        } else {
                            let q = Queued::NoResponse(info.correlation_id);
                            unanswered = Some(info);
                            q
                        };
                        if queue.send(queued).await.is_err() {
                            return;
                        }
                        if let Err(e) = send_frame(&mut upstream, frame).await {
                            self.metrics.upstream_error(UpstreamErrorKind::Protocol);
                            let why = format!("writing to the Kafka upstream failed: {e}");
                            if let Some(info) = unanswered {
                                self.emit(
                                    conn.peer,
                                    &info,
                                    FlowVerdict::Error,
                                    0,
                                    Some(why.clone()),
                                );
                            }
                            let _ = queue.send(Queued::Close(None, why)).await;
                            return;
                        }
                        if let Some(info) = unanswered {
                            // Produce acks=0: no response will come; the flow ends here.
                            self.emit(conn.peer, &info, FlowVerdict::Forwarded, 0, None);
                        }
                        None
                    }
                },
            };
            let Some(queued) = queued else { continue };
            let close = matches!(queued, Queued::Close(..));
            if queue.send(queued).await.is_err() || close {
                return;
            }
        }
    }

    /// A denied request: its error response, nothing (acks=0), or the end of the connection.
    fn denial(
        &self,
        parsed: &Parsed,
        info: InFlight,
        code: i16,
        peer: SocketAddr,
    ) -> Option<Queued> {
        let Parsed::Known(req) = parsed else {
            let why = format!(
                "{}; strait cannot answer an API or version it does not know, so it closed the connection",
                denied(0, &info)
            );
            return Some(Queued::Close(Some(info), why));
        };
        match error_response(req, code, Some(DENIAL_MESSAGE)) {
            Ok(Some(resp)) => {
                let why = denied(code, &info);
                Some(Queued::Local(
                    info,
                    Bytes::from(resp),
                    FlowVerdict::Denied,
                    why,
                ))
            }
            Ok(None) => {
                // Produce acks=0: the client reads no response, and gets none.
                let why = denied(code, &info);
                self.emit(peer, &info, FlowVerdict::Denied, 0, Some(why));
                None
            }
            Err(e) => Some(Queued::Close(Some(info), format!("denied: {e}"))),
        }
    }

    /// ApiVersions at a version strait does not know, on a listener that rewrites responses:
    /// answered as a broker that does not support that version answers (UNSUPPORTED_VERSION and,
    /// in a v0 body, the ApiVersions versions strait knows), so the client retries with one whose
    /// response strait can read and cap.
    fn unsupported_api_versions(&self, parsed: &Parsed) -> Option<Bytes> {
        let Parsed::UnknownVersion { header, api } = parsed else {
            return None;
        };
        if !self.rewrite || api.key != API_VERSIONS {
            return None;
        }
        let mut w = Vec::with_capacity(16);
        w.extend_from_slice(&header.correlation_id.to_be_bytes());
        w.extend_from_slice(&UNSUPPORTED_VERSION.to_be_bytes());
        w.extend_from_slice(&1i32.to_be_bytes());
        for x in [api.key, 0, api.max_version] {
            w.extend_from_slice(&x.to_be_bytes());
        }
        Some(Bytes::from(w))
    }

    /// Sends the answers in request order until the queue ends or the connection breaks.
    async fn write_responses<R, W>(
        &self,
        shared: &Shared<'_>,
        advertise: Option<(&str, u16)>,
        mut responses: FramedRead<R, KafkaCodec>,
        mut client: W,
        mut queue: mpsc::Receiver<Queued>,
    ) -> End
    where
        R: tokio::io::AsyncRead + Unpin,
        W: tokio::io::AsyncWrite + Unpin,
    {
        let (conn, filters, activity) = (&shared.conn, &shared.filters, &shared.activity);
        // Correlation ids of the acks=0 Produce requests forwarded since the last answer, oldest
        // first: a broker that answers them anyway answers them here, in order.
        let mut silent = std::collections::VecDeque::new();
        let end = loop {
            let next = tokio::select! {
                biased;
                q = queue.recv() => q,
                // Nothing is in flight: any broker frame now answers no request.
                r = responses.next() => match r {
                    Some(Ok(f)) if stray(&f, None, &mut silent) => continue,
                    _ => {
                        self.metrics.upstream_error(UpstreamErrorKind::Protocol);
                        break match r {
                            None => End::Error("the Kafka upstream closed the connection".into()),
                            Some(Ok(_)) => End::Error("the Kafka upstream sent a response to no request".into()),
                            Some(Err(e)) => End::Error(format!("bad response frame from the Kafka upstream: {e}")),
                        };
                    }
                },
            };
            let Some(next) = next else { break End::Done };
            let (info, resp, verdict, error) = match next {
                Queued::NoResponse(corr) => {
                    if silent.len() == MAX_QUEUED {
                        silent.pop_front();
                    }
                    silent.push_back(corr);
                    continue;
                }
                Queued::Close(info, why) => {
                    if let Some(info) = info {
                        self.emit(conn.peer, &info, FlowVerdict::Error, 0, Some(why.clone()));
                    }
                    break End::Error(why);
                }
                Queued::Local(info, resp, verdict, why) => (info, resp, verdict, Some(why)),
                Queued::Upstream(info) => {
                    let frame = loop {
                        match responses.next().await {
                            Some(Ok(f)) if stray(&f, Some(info.correlation_id), &mut silent) => {}
                            other => break other,
                        }
                    };
                    silent.clear();
                    let answer = self.answer(conn, filters, &info, advertise, frame);
                    activity.request_finished();
                    match answer {
                        Ok(resp) => match info.denial.clone() {
                            Some(why) => (info, resp, FlowVerdict::Denied, Some(why)),
                            None => (info, resp, FlowVerdict::Forwarded, None),
                        },
                        Err(why) => {
                            self.metrics.upstream_error(UpstreamErrorKind::Protocol);
                            self.emit(conn.peer, &info, FlowVerdict::Error, 0, Some(why.clone()));
                            break End::Error(why);
                        }
                    }
                }
            };
            let len = resp.len() as u64 + 4;
            if let Err(e) = send_frame(&mut client, &resp).await {
                let why = format!("writing to the client failed: {e}");
                self.emit(conn.peer, &info, FlowVerdict::Error, 0, Some(why.clone()));
                break End::Error(why);
            }
            if verdict == FlowVerdict::Forwarded {
                self.metrics
                    .latency
                    .observe(info.received.elapsed().as_secs_f64());
            }
            self.emit(conn.peer, &info, verdict, len, error);
        };
        // Whatever is still queued will not be answered.
        queue.close();
        while let Ok(q) = queue.try_recv() {
            let info = match q {
                Queued::Upstream(i) => {
                    activity.request_finished();
                    i
                }
                Queued::Local(i, ..) | Queued::Close(Some(i), _) => i,
                Queued::Close(None, _) | Queued::NoResponse(_) => continue,
            };
            let why = "connection closed before the response".to_owned();
            self.emit(conn.peer, &info, FlowVerdict::Error, 0, Some(why));
        }
        end
    }

    /// The broker's answer to `info`: its correlation id checked, Metadata topics edited by the
    /// policy, broker addresses moved to `advertise` and ApiVersions capped (when rewriting).
    fn answer(
        &self,
        conn: &Connection<'_>,
        filters: &Mutex<Option<ConnFilters>>,
        info: &InFlight,
        advertise: Option<(&str, u16)>,
        frame: Option<Result<BytesMut, FrameError>>,
    ) -> Result<Bytes, String> {
        let frame = match frame {
            None => return Err("the Kafka upstream closed the connection".into()),
            Some(Err(e)) => return Err(format!("bad response frame from the Kafka upstream: {e}")),
            Some(Ok(f)) => f.freeze(),
        };
        let correlation_id = frame
            .get(..4)
            .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]));
        if correlation_id != Some(info.correlation_id) {
            return Err(format!(
                "the Kafka upstream answered correlation id {} where {} ({} v{}) was next",
                correlation_id.map_or_else(|| "(none)".into(), |c| c.to_string()),
                info.correlation_id,
                info.method,
                info.api_version
            ));
        }
        if info.api_key == METADATA {
            if let Some(f) = &self.filters {
                f.names.learn(&frame, info.api_version);
            }
        }
        let frame = match &info.metadata {
            Some(edit) => self.edit_metadata(conn, filters, edit, frame)?,
            None => frame,
        };
        let Some((host, port)) = advertise else {
            return Ok(frame);
        };
        let rewritten = if rewrite::advertises_brokers(info.api_key) {
            rewrite::rewrite_brokers(&frame, info.api_key, info.api_version, host, port)
                .map_err(|e| format!("cannot move the brokers this response advertises: {e}"))?
        } else if info.api_key == API_VERSIONS {
            rewrite::cap_api_versions(&frame, info.api_version, rewrite::advertising_cap)
                .map_err(|e| format!("cannot cap the versions this response offers: {e}"))?
        } else {
            None
        };
        Ok(rewritten.map_or(frame, Bytes::from))
    }

    fn record(&self, peer: SocketAddr, time: SystemTime, verdict: FlowVerdict) -> FlowRecord {
        FlowRecord::new(
            time,
            peer,
            self.destination.clone(),
            self.cfg.name.clone(),
            "kafka".into(),
            verdict,
        )
    }

    /// The flow record of one request, ending now.
    fn emit(
        &self,
        peer: SocketAddr,
        info: &InFlight,
        verdict: FlowVerdict,
        bytes_sent: u64,
        error: Option<String>,
    ) {
        if !self.flows.wanted() {
            return;
        }
        let elapsed = info.received.elapsed().as_nanos() as u64;
        let mut rec = self.record(peer, info.time, verdict);
        rec.method = Some(info.method.clone());
        rec.path = info.path.clone();
        rec.latency_ns = elapsed;
        rec.duration_ns = elapsed;
        rec.bytes_received = info.request_bytes;
        rec.bytes_sent = bytes_sent;
        rec.error = error;
        rec.filter = info.filter.clone();
        rec.policy = info.policy.clone();
        if let Some(f) = &self.filters {
            (rec.source_identity, rec.destination_identity) = f.identities;
        }
        self.flows.emit(rec);
    }
}

/// Whether `frame` is a broker's answer to one of the `silent` (acks=0) requests rather than to
/// `head` (the request waiting for its answer, if any): such answers are dropped. Ids up to the
/// one answered leave `silent` (the broker answers in order).
fn stray(frame: &[u8], head: Option<i32>, silent: &mut std::collections::VecDeque<i32>) -> bool {
    let Some(corr) = frame
        .get(..4)
        .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    else {
        return false;
    };
    if Some(corr) == head {
        return false;
    }
    let Some(i) = silent.iter().position(|&c| c == corr) else {
        return false;
    };
    silent.drain(..=i);
    tracing::debug!(
        correlation_id = corr,
        "dropped the Kafka upstream's response to a Produce with acks=0"
    );
    true
}

/// The flow error of a denial: the code answered (0: none) and the filter's reason.
fn denied(code: i16, info: &InFlight) -> String {
    let mut s = String::from("denied");
    if code != 0 {
        s.push_str(&format!(": answered with Kafka error code {code}"));
    }
    if let Some(r) = &info.reason {
        s.push_str(&format!(" ({r})"));
    }
    s
}

/// The queue entry of a parsed request: the API name as the flow's method, its topics as the
/// path.
fn in_flight(parsed: &Parsed, time: SystemTime, received: Instant, len: usize) -> InFlight {
    let h = parsed.header();
    let (method, path) = match parsed {
        Parsed::Known(r) => (r.api.name.to_owned(), topics_path(&r.topics)),
        Parsed::UnknownVersion { api, .. } => (api.name.to_owned(), None),
        Parsed::UnknownApi(h) => (format!("ApiKey{}", h.api_key), None),
    };
    InFlight {
        correlation_id: h.correlation_id,
        api_key: h.api_key,
        api_version: h.api_version,
        method,
        path,
        time,
        received,
        request_bytes: len as u64 + 4,
        filter: None,
        policy: None,
        reason: None,
        metadata: None,
        denial: None,
    }
}

/// The topics of a request for its flow record: names (ids where the request has no name),
/// comma-separated, `*` when it reaches every topic; regexes as `/regex/`.
fn topics_path(topics: &Topics) -> Option<String> {
    let Topics::Listed(list) = topics else {
        return None;
    };
    let mut parts: Vec<String> = Vec::new();
    for e in &list.entries {
        let t = match (&e.name, e.id) {
            (Some(n), _) => n.clone(),
            (None, Some(id)) => id.to_string(),
            (None, None) => continue,
        };
        if !parts.contains(&t) {
            parts.push(t);
        }
    }
    if list.all {
        parts.push("*".into());
    }
    parts.extend(list.patterns.iter().map(|p| format!("/{p}/")));
    (!parts.is_empty()).then(|| parts.join(","))
}

/// Writes one frame (size and payload) and flushes it.
async fn send_frame<W: AsyncWrite + Unpin>(w: &mut W, payload: &[u8]) -> std::io::Result<()> {
    // Frames come from a codec capped at i32::MAX, plus at most a few rewritten hosts.
    let size = i32::try_from(payload.len())
        .unwrap_or(i32::MAX)
        .to_be_bytes();
    let mut buf = (&size[..]).chain(payload);
    w.write_all_buf(&mut buf).await?;
    w.flush().await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
