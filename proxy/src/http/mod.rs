//! The HTTP listener flow: HTTP/1.1 and HTTP/2 (cleartext prior knowledge or TLS with ALPN),
//! gRPC, and `Upgrade` pass-through, forwarded to the listener's upstream.
//!
//! Path of a request: `serve` (one per connection: idle timeout, drain) → `handle` (one per
//! request: limits, header rules, upstream choice) → the pooled client → `ResponseBody`, which
//! streams the upstream body back and emits the flow record at its end.

mod body;
mod bound;
pub mod h1;
pub(crate) mod headers;
pub mod upstream;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::uri::{Authority, Scheme};
use http::{Request, Response, StatusCode, Uri, Version};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio_util::sync::CancellationToken;

use crate::config::{Http1Engine, ListenerConfig, UpstreamProtocol};
use crate::flows::{FlowRecord, Flows, Verdict};
use crate::io::{Activity, AsyncStream, Tracked};
use crate::metrics::{ListenerMetrics, UpstreamErrorKind};
use crate::wasm::{
    BodyKind, ChainHandle, FilterFailure, Heads, LocalReply, Outcome, RequestLine, StreamFilters,
    StreamInfo,
};
use body::{FlowContext, FlowGuard, RequestBody, ResponseBody, UpBody};
pub use upstream::Target;
use upstream::{ConnectError, Upstreams};

/// One HTTP listener's forwarding state, shared by all its connections.
pub struct HttpProxy {
    cfg: Arc<ListenerConfig>,
    server: auto::Builder<TokioExecutor>,
    upstreams: Upstreams<RequestBody>,
    /// Idle upstream HTTP/1.1 connections between downstream connections (see `bound`).
    idle: bound::IdlePool,
    /// The same for the native HTTP/1.1 path ([`h1`]).
    native_idle: Arc<bound::IdlePool<h1::conn::Upstream>>,
    /// HTTP/1.1 clients start on the native path ([`h1`]); hyper takes what it does not.
    native: bool,
    scheme: Scheme,
    flows: Flows,
    metrics: ListenerMetrics,
    /// The listener's filter chain (swapped on reload).
    filters: ChainHandle,
    /// The listener's bound address (`destination.*` properties); for a transparent
    /// connection, its original destination.
    local: SocketAddr,
    target: Target,
    /// Numeric identity of the client (transparent connections), from the endpoints.
    identity: Option<u32>,
    /// Numeric identity of the original destination (transparent connections to endpoints).
    destination_identity: Option<u32>,
    /// The listener's name and the upstream authority as filters see them, made on the
    /// first filtered request and shared by all later ones.
    filter_names: std::sync::OnceLock<(Arc<str>, Arc<str>)>,
}

/// Which pooled client carries a request upstream.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Route {
    Http1,
    Http2,
    /// TLS upstream, protocol chosen by ALPN.
    Negotiated,
}

/// Per-connection facts a request needs.
struct Conn {
    peer: SocketAddr,
    /// `peer`'s address as `x-forwarded-for` gets it.
    client: headers::ClientAddr,
    tls: bool,
    activity: Arc<Activity>,
    /// The upstream connection an HTTP/1.x downstream connection carries its requests on.
    bound: bound::Bound,
}

/// What the filters made of a head: stop with this response, or go on.
// Returned once per filtered head and matched at once; boxing would allocate per request.
#[allow(clippy::large_enum_variant)]
enum Decided {
    Respond(Response<ResponseBody>),
    Continue(FlowGuard),
}

/// A request ready to go upstream ([`HttpProxy::outbound`]).
struct Outbound {
    req: Request<RequestBody>,
    /// The downstream side of an `Upgrade` being passed through.
    upgrade: Option<hyper::upgrade::OnUpgrade>,
    /// Whether it may take the downstream connection's own upstream connection (HTTP/1.x).
    bind: bool,
}

/// What sending a request upstream gives: the response head, and the upstream side of an
/// `Upgrade` when one was passed through.
type Sent = Result<(Response<UpBody>, Option<hyper::upgrade::OnUpgrade>), Failure>;

/// A failure turned into a local response.
struct Failure {
    status: StatusCode,
    grpc_status: u32,
    kind: Option<UpstreamErrorKind>,
    message: String,
}

impl HttpProxy {
    // One constructor for explicit and transparent connections; the identities are per
    // connection for the latter.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cfg: Arc<ListenerConfig>,
        flows: Flows,
        metrics: ListenerMetrics,
        filters: ChainHandle,
        local: SocketAddr,
        target: Target,
        identity: Option<u32>,
        destination_identity: Option<u32>,
    ) -> Self {
        let mut server = auto::Builder::new(TokioExecutor::new());
        server
            .http1()
            .timer(TokioTimer::new())
            // hyper's own head timer also cuts idle keep-alive waits; `serve` enforces the
            // head deadline from the first byte of a head instead.
            .header_read_timeout(None)
            .max_buf_size(cfg.max_header_bytes.max(8192) + 1024)
            .keep_alive(true);
        server
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(cfg.max_header_bytes as u32)
            .max_concurrent_streams(1024)
            .adaptive_window(true)
            .keep_alive_interval(Some(Duration::from_secs(60)));
        let scheme = if cfg.upstream_tls.is_some() {
            Scheme::HTTPS
        } else {
            Scheme::HTTP
        };
        Self {
            filter_names: std::sync::OnceLock::new(),
            upstreams: Upstreams::new(&cfg, &target),
            idle: bound::IdlePool::default(),
            native_idle: Arc::default(),
            native: cfg.http1_engine == Http1Engine::Native
                && cfg.upstream_tls.is_none()
                && cfg.upstream_protocol != UpstreamProtocol::Http2,
            target,
            identity,
            destination_identity,
            cfg,
            server,
            scheme,
            flows,
            metrics,
            filters,
            local,
        }
    }

    /// Serves one accepted connection until it closes, idles out, or `shutdown` drains it.
    pub async fn serve<S: AsyncStream + 'static>(
        self: Arc<Self>,
        io: S,
        peer: SocketAddr,
        tls: bool,
        shutdown: CancellationToken,
    ) {
        if !self.native {
            return self.serve_hyper(io, peer, tls, shutdown).await;
        }
        match self.serve_native(io, peer, tls, &shutdown).await {
            h1::conn::Served::Closed => {}
            h1::conn::Served::HandOff(io, read) => {
                let io = crate::io::Prefixed::new(read.freeze(), io);
                self.serve_hyper(io, peer, tls, shutdown).await
            }
        }
    }

    /// [`Self::serve`] with hyper.
    async fn serve_hyper<S: AsyncStream + 'static>(
        self: Arc<Self>,
        io: S,
        peer: SocketAddr,
        tls: bool,
        shutdown: CancellationToken,
    ) {
        let activity = Activity::new();
        let conn = Arc::new(Conn {
            peer,
            client: headers::ClientAddr::new(peer.ip()),
            tls,
            activity: activity.clone(),
            bound: bound::Bound::default(),
        });
        let io = TokioIo::new(Tracked::new(io, activity.clone()));
        let this = self.clone();
        let c = conn.clone();
        let svc = hyper::service::service_fn(move |req| this.clone().handle(req, c.clone()));
        let served = self.server.serve_connection_with_upgrades(io, svc);
        tokio::pin!(served);
        let idle = self.cfg.timeouts.idle;
        let stream_idle = self.cfg.timeouts.stream_idle;
        let head_limit = self.cfg.timeouts.header_read;
        let mut draining = false;
        loop {
            let head = activity.head_remaining(head_limit);
            if head.is_some_and(|d| d.is_zero()) {
                tracing::debug!(listener = %self.cfg.name, %peer, "request head not completed in time; closing");
                self.head_timeout(peer, head_limit);
                break;
            }
            let stall =
                stream_idle.and_then(|limit| Some((limit, activity.stall_remaining(limit)?)));
            if let Some((limit, left)) = stall {
                if left.is_zero() {
                    let why = stalled(limit, "on the connection");
                    tracing::debug!(listener = %self.cfg.name, %peer, "{why}");
                    activity.cut(why);
                    break;
                }
            }
            // A head can start while we sleep; waking at least every quarter of the head limit
            // enforces it within +25% without a wake-up per request.
            let wait = match (draining, head) {
                (_, Some(h)) => h,
                (false, None) => activity.idle_remaining(idle).min(head_limit / 4),
                (true, None) => head_limit / 4,
            }
            .min(stall.map_or(Duration::MAX, |(_, left)| left))
            .max(Duration::from_millis(20));
            tokio::select! {
                // The downstream connection first: a request it reads is handed to the bound
                // upstream connection, whose I/O then runs in the same pass.
                biased;
                r = served.as_mut() => {
                    if let Err(e) = r {
                        self.connection_error(peer, &*e);
                    }
                    break;
                }
                () = std::future::poll_fn(|cx| conn.bound.poll_drive(cx)) => {}
                _ = shutdown.cancelled(), if !draining => {
                    served.as_mut().graceful_shutdown();
                    draining = true;
                }
                _ = tokio::time::sleep(wait) => {
                    if !draining && activity.idle_remaining(idle).is_zero() {
                        tracing::debug!(listener = %self.cfg.name, %peer, "closing idle connection");
                        served.as_mut().graceful_shutdown();
                        draining = true;
                    }
                }
            }
        }
        // A connection cut mid-stream leaves its bound upstream connection mid-response.
        if activity.cut_reason().is_none() {
            if let Some(up) = conn.bound.release() {
                self.idle.put(up);
            }
        }
    }

    fn head_timeout(&self, peer: SocketAddr, limit: Duration) {
        self.metrics.bad_requests.inc();
        self.flows.emit(FlowRecord {
            error: Some(format!(
                "request head not completed within {limit:?} (connection closed)"
            )),
            ..self.connection_flow(peer, None)
        });
    }

    fn connection_flow(&self, peer: SocketAddr, status: Option<u16>) -> FlowRecord {
        FlowRecord {
            status,
            source_identity: self.identity,
            destination_identity: self.destination_identity,
            ..FlowRecord::new(
                std::time::SystemTime::now(),
                peer,
                self.target.authority.to_string(),
                self.cfg.name.clone(),
                "HTTP/1.1".into(),
                Verdict::Error,
            )
        }
    }

    /// A connection-level failure (malformed request, head too large, head timeout): hyper has
    /// answered it (400/431/408) or closed; record it as a flow so it is not invisible.
    fn connection_error(&self, peer: SocketAddr, e: &(dyn std::error::Error + 'static)) {
        let Some(he) = e.downcast_ref::<hyper::Error>() else {
            tracing::debug!(listener = %self.cfg.name, %peer, error = %e, "connection error");
            return;
        };
        let status = if he.is_parse_too_large() {
            Some(431)
        } else if he.is_parse() || he.is_parse_status() {
            Some(400)
        } else if he.is_timeout() {
            Some(408)
        } else {
            None
        };
        tracing::debug!(listener = %self.cfg.name, %peer, error = %he, "connection error");
        let Some(status) = status else { return };
        self.metrics.bad_requests.inc();
        self.metrics.response(status);
        self.flows.emit(FlowRecord {
            error: Some(format!("bad request: {he}")),
            ..self.connection_flow(peer, Some(status))
        });
    }

    /// One request, from its head to the response head. The future lives in hyper's state for
    /// every request and is moved on each, so it is kept small (about 1.2 KB, was 6.9 KB): a
    /// plain `async` block (an `async fn` stores its arguments twice), the outgoing request
    /// built by a synchronous helper ([`Self::outbound`]) and its connection chosen
    /// synchronously ([`Self::send`]), filter pauses and rare paths boxed.
    #[allow(clippy::manual_async_fn)] // deliberately: see above
    fn handle(
        self: Arc<Self>,
        mut req: Request<Incoming>,
        conn: Arc<Conn>,
    ) -> impl std::future::Future<Output = Result<Response<ResponseBody>, Infallible>> + Send {
        async move {
            self.metrics.requests.inc();
            let down_version = req.version();
            let ctx = FlowContext {
                source: conn.peer,
                destination: self.target.authority.as_str(),
                listener: &self.cfg.name,
                protocol: version_str(down_version),
                identity: self.identity,
                destination_identity: self.destination_identity,
            };
            let guard = FlowGuard::new(&self.flows, conn.activity.clone(), ctx, &req);
            let grpc = is_grpc(req.headers());

            let target = req.uri().path_and_query().map_or(1, |p| p.as_str().len())
                + req.uri().authority().map_or(0, |a| a.as_str().len());
            let head = headers::head_size(req.headers()) + target;
            if head > self.cfg.max_header_bytes {
                let f = Failure::local(
                    StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                    format!(
                        "request head of {head} bytes exceeds the limit of {}",
                        self.cfg.max_header_bytes
                    ),
                );
                return Ok(self.fail(guard, grpc, down_version, f));
            }

            if down_version == Version::HTTP_2 {
                // Before the filters, as Envoy's HTTP/2 codec does: they see one `cookie`.
                headers::join_cookies(req.headers_mut());
            }
            let filters = self.stream_filters(&req, &conn);
            let mut guard = guard;
            if let Some(sf) = &filters {
                guard.watch(sf.shared_info());
                let eos = hyper::body::Body::is_end_stream(req.body());
                let (parts, body) = req.into_parts();
                let (parts, outcome) = match sf.request_headers(parts, eos) {
                    Heads::Done(parts, outcome) => (parts, outcome),
                    Heads::Paused(paused) => paused.await,
                };
                // Taken, not cloned: nothing reads it after the request heads.
                if let Some((filter, decided)) = sf.info().take_policy() {
                    guard.policy(&filter, decided);
                }
                if !matches!(outcome, Outcome::Fail(_)) {
                    // For the later callbacks (a failed chain's head may be a stand-in).
                    sf.info().past.keep_request(
                        None,
                        &parts.headers,
                        Some((&parts.method, &parts.uri)),
                    );
                }
                req = Request::from_parts(parts, body);
                guard = match self.filter_stop(guard, grpc, down_version, outcome, filters.as_ref())
                {
                    Decided::Respond(resp) => return Ok(resp),
                    Decided::Continue(g) => g,
                };
            }

            // An `Upgrade` other than h2c (which is declined: RFC 9113 deprecates it) is passed through.
            let upgrade = match headers::upgrade_protocol(req.headers()) {
                Some(p)
                    if down_version <= Version::HTTP_11
                        && !p.as_bytes().eq_ignore_ascii_case(b"h2c") =>
                {
                    Some(p)
                }
                _ => None,
            };
            let route = match (self.cfg.upstream_protocol, down_version) {
                (UpstreamProtocol::Http2, _) => Route::Http2,
                (UpstreamProtocol::Auto, Version::HTTP_2) if self.cfg.upstream_tls.is_some() => {
                    Route::Negotiated
                }
                (UpstreamProtocol::Auto, Version::HTTP_2)
                    if self.upstreams.h2c_supported().await =>
                {
                    Route::Http2
                }
                _ => Route::Http1,
            };
            let up_version = if route == Route::Http2 {
                Version::HTTP_2
            } else {
                Version::HTTP_11
            };
            if grpc && down_version == Version::HTTP_2 && route == Route::Http1 {
                let f = Failure::protocol(format!(
                "gRPC needs HTTP/2 but upstream {} does not speak it (set `upstream_protocol: http2` if it does)",
                self.target.authority
            ));
                return Ok(self.fail(guard, grpc, down_version, f));
            }
            if upgrade.is_some() && up_version == Version::HTTP_2 {
                let f = Failure::local(
                    StatusCode::BAD_GATEWAY,
                    "cannot forward an Upgrade request to an HTTP/2 upstream",
                );
                return Ok(self.fail(guard, grpc, down_version, f));
            }
            let received = guard.received_counter();
            let out =
                match self.outbound(req, &conn, upgrade, up_version, received, filters.as_ref()) {
                    Ok(out) => out,
                    Err(f) => return Ok(self.fail(guard, grpc, down_version, f)),
                };
            // The send is built in each arm (not once before the `match`), so the two awaits
            // share their space in this future instead of holding two copies of it.
            let result = match self.cfg.timeouts.request {
                Some(limit) => tokio::time::timeout(limit, self.send(out, route, &conn))
                    .await
                    .unwrap_or_else(|_| {
                        // The upstream may be waiting for a body a filter holds: then the
                        // filter, not the upstream, ran out the time.
                        if let Some((sf, filter)) = filters
                            .as_ref()
                            .and_then(|sf| sf.request_body_paused_in().map(|name| (sf, name)))
                        {
                            sf.set_body_verdict(Outcome::Fail(FilterFailure {
                                filter,
                                message: format!(
                                    "paused the stream at the end of the request body and did not resume it within {limit:?}"
                                ),
                            }));
                        }
                        Err(Failure {
                            status: StatusCode::GATEWAY_TIMEOUT,
                            grpc_status: 4,
                            kind: Some(UpstreamErrorKind::Timeout),
                            message: format!("upstream did not answer within {limit:?}"),
                        })
                    }),
                None => self.send(out, route, &conn).await,
            };
            // An answer that came while a filter held the request body waits for the filter's
            // verdict on it (fail closed if there is none).
            if let (Ok(_), Some(sf)) = (&result, filters.as_ref()) {
                if let Some(ff) = sf.request_body_decided(self.pause_limit()).await {
                    sf.set_body_verdict(Outcome::Fail(ff));
                }
            }
            // A filter that stopped the request body decides the response.
            let stopped = filters.as_ref().and_then(|f| f.take_body_verdict());
            if let Some(outcome) = stopped {
                guard = match self.filter_stop(guard, grpc, down_version, outcome, filters.as_ref())
                {
                    Decided::Respond(resp) => return Ok(resp),
                    Decided::Continue(g) => g,
                };
            }
            match (result, filters) {
                (Ok((resp, upgraded)), None) => {
                    Ok(self.respond(guard, down_version, resp, upgraded))
                }
                (Ok((resp, upgraded)), Some(sf)) => {
                    let eos = hyper::body::Body::is_end_stream(resp.body());
                    let (parts, body) = resp.into_parts();
                    let (parts, outcome) = match sf.response_headers(parts, eos) {
                        Heads::Done(parts, outcome) => (parts, outcome),
                        Heads::Paused(paused) => paused.await,
                    };
                    if matches!(outcome, Outcome::Continue) {
                        // The head the client gets, for the later callbacks.
                        sf.info()
                            .past
                            .keep_response(None, &parts.headers, parts.status.as_u16());
                    }
                    let guard =
                        match self.filter_stop(guard, grpc, down_version, outcome, Some(&sf)) {
                            Decided::Respond(resp) => return Ok(resp),
                            Decided::Continue(g) => g,
                        };
                    let resp = Response::from_parts(parts, body);
                    Ok(self.respond_filtered(guard, down_version, resp, upgraded, sf))
                }
                (Err(f), sf) => Ok(self.fail(guard, grpc, down_version, f).map(|b| b.keep(sf))),
            }
        }
    }

    /// The request to send upstream: hop-by-hop headers removed, forwarding headers added,
    /// the target and `host` set for `up_version`, the body wrapped for counting and filters.
    fn outbound(
        &self,
        mut req: Request<Incoming>,
        conn: &Conn,
        upgrade: Option<HeaderValue>,
        up_version: Version,
        received: Option<Arc<std::sync::atomic::AtomicU64>>,
        filters: Option<&Arc<StreamFilters>>,
    ) -> Result<Outbound, Failure> {
        let down_version = req.version();
        let authority = self.request_authority(&req)?;
        let down_upgrade = upgrade.as_ref().map(|_| hyper::upgrade::on(&mut req));
        let bind = down_version <= Version::HTTP_11 && req.method() != http::Method::CONNECT;

        let (mut parts, body) = req.into_parts();
        headers::strip_hop_by_hop(&mut parts.headers, upgrade.as_ref());
        headers::add_forwarded(&mut parts.headers, &conn.client, conn.tls, down_version);
        let pq = parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
        if up_version == Version::HTTP_2 {
            // :authority carries it; a duplicate Host is discouraged by RFC 9113 §8.3.1.
            parts.headers.remove(header::HOST);
        } else if !parts.headers.contains_key(header::HOST) {
            if let Ok(v) = HeaderValue::from_str(authority.as_str()) {
                parts.headers.insert(header::HOST, v);
            }
        }
        parts.uri = Uri::builder()
            .scheme(self.scheme.clone())
            .authority(authority)
            .path_and_query(pq)
            .build()
            .map_err(|e| {
                Failure::local(
                    StatusCode::BAD_REQUEST,
                    format!("invalid request target: {e}"),
                )
            })?;
        parts.version = up_version;
        let mut body = RequestBody::new(body, received);
        if let Some(sf) = filters.filter(|f| f.wants_body(BodyKind::Request)) {
            body = body.with_filters(sf.clone());
        }
        Ok(Outbound {
            req: Request::from_parts(parts, body),
            upgrade: down_upgrade,
            bind,
        })
    }

    /// The stream's filter state, when the listener has filters.
    fn stream_filters(&self, req: &Request<Incoming>, conn: &Conn) -> Option<Arc<StreamFilters>> {
        let chain = self.filters.load_full();
        if chain.plugins.is_empty() {
            return None;
        }
        let request = RequestLine::new(req.method(), req.uri(), req.headers());
        let info = self.stream_info(conn.peer, conn.tls, version_str(req.version()), request);
        Some(Arc::new(StreamFilters::new(
            chain,
            info,
            self.pause_limit(),
        )))
    }

    /// What a stream's filters read as properties.
    pub(crate) fn stream_info(
        &self,
        source: SocketAddr,
        tls: bool,
        protocol: &'static str,
        request: RequestLine,
    ) -> StreamInfo {
        let (listener, upstream) = self.filter_names.get_or_init(|| {
            (
                Arc::from(self.cfg.name.as_str()),
                Arc::from(self.target.authority.as_str()),
            )
        });
        StreamInfo {
            listener: listener.clone(),
            source,
            destination: self.local,
            upstream: upstream.clone(),
            protocol,
            tls,
            identity: self.identity,
            destination_identity: self.destination_identity,
            start: std::time::SystemTime::now(),
            request: Some(request),
            policy: Default::default(),
            wake: Default::default(),
            status: Default::default(),
            past: Default::default(),
        }
    }

    /// How long a filter may hold a stream paused.
    pub(crate) fn pause_limit(&self) -> Duration {
        self.cfg.timeouts.request.unwrap_or(Duration::from_secs(60))
    }

    /// The response for a filter outcome that stops the stream, or the guard to carry on with.
    fn filter_stop(
        &self,
        guard: FlowGuard,
        grpc: bool,
        version: Version,
        outcome: Outcome,
        filters: Option<&Arc<StreamFilters>>,
    ) -> Decided {
        match outcome {
            Outcome::Continue => Decided::Continue(guard),
            Outcome::Reply { filter, reply } => Decided::Respond(self.filter_reply(
                guard,
                grpc,
                version,
                &filter,
                reply,
                filters.cloned(),
            )),
            Outcome::Fail(f) => {
                Decided::Respond(self.filter_fail(guard, grpc, version, f, filters.cloned()))
            }
        }
    }

    /// A filter answered the request itself.
    fn filter_reply(
        &self,
        mut guard: FlowGuard,
        grpc: bool,
        version: Version,
        filter: &str,
        reply: LocalReply,
        filters: Option<Arc<StreamFilters>>,
    ) -> Response<ResponseBody> {
        let (resp, body) = self.filter_reply_head(&mut guard, grpc, version, filter, reply);
        resp.map(|()| ResponseBody::full(body, Some(guard)).keep(filters))
    }

    /// The head and body of a filter's local response, counted and recorded in `guard`
    /// (verdict DENIED); both engines send it.
    pub(crate) fn filter_reply_head(
        &self,
        guard: &mut FlowGuard,
        grpc: bool,
        version: Version,
        filter: &str,
        reply: LocalReply,
    ) -> (Response<()>, Bytes) {
        self.metrics.filter_denied.inc();
        // As Envoy: the gRPC form (and the filter's `grpc_status`) only for a gRPC request; a
        // plain HTTP client gets the HTTP status the filter chose.
        let grpc_status = grpc.then(|| {
            reply
                .grpc_status
                .unwrap_or_else(|| http_to_grpc(reply.status))
        });
        let mut resp = Response::new(());
        *resp.version_mut() = version;
        let h = resp.headers_mut();
        for (k, v) in &reply.headers {
            if k.starts_with(':') {
                continue;
            }
            if let (Ok(n), Ok(v)) = (
                header::HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_bytes(v),
            ) {
                h.append(n, v);
            }
        }
        let (status, body) = match grpc_status {
            Some(code) => {
                // gRPC clients read the verdict from grpc-status (trailers-only response).
                let msg = if reply.body.is_empty() {
                    reply.details.clone()
                } else {
                    String::from_utf8_lossy(&reply.body).into_owned()
                };
                h.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/grpc"),
                );
                h.insert("grpc-status", HeaderValue::from(code));
                if let Ok(v) = HeaderValue::from_str(&grpc_message(&msg)) {
                    h.insert("grpc-message", v);
                }
                (StatusCode::OK, Bytes::new())
            }
            None => {
                if !reply.body.is_empty() && !h.contains_key(header::CONTENT_TYPE) {
                    h.insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("text/plain; charset=utf-8"),
                    );
                }
                (
                    StatusCode::from_u16(reply.status).unwrap_or(StatusCode::FORBIDDEN),
                    reply.body.clone(),
                )
            }
        };
        *resp.status_mut() = status;
        self.metrics.response(status.as_u16());
        self.metrics.latency.observe(guard.elapsed().as_secs_f64());
        guard.response(status.as_u16(), resp.headers());
        guard.local_head(status.as_u16(), resp.headers());
        guard.filter(filter);
        let why = if reply.details.is_empty() {
            format!("filter `{filter}` answered {}", reply.status)
        } else {
            format!(
                "filter `{filter}` answered {}: {}",
                reply.status, reply.details
            )
        };
        tracing::debug!(listener = %self.cfg.name, filter, status = reply.status, "local response from filter");
        guard.fail(Verdict::Denied, why);
        (resp, body)
    }

    /// A filter failed with `failure: closed` (or reset the stream): 503 / UNAVAILABLE.
    fn filter_fail(
        &self,
        mut guard: FlowGuard,
        grpc: bool,
        version: Version,
        f: FilterFailure,
        filters: Option<Arc<StreamFilters>>,
    ) -> Response<ResponseBody> {
        let fail = self.filter_failure(&mut guard, &f);
        self.fail(guard, grpc, version, fail)
            .map(|b| b.keep(filters))
    }

    /// The 503 for a filter failure, counted and recorded in `guard`; both engines send it.
    fn filter_failure(&self, guard: &mut FlowGuard, f: &FilterFailure) -> Failure {
        self.metrics.filter_failed.inc();
        guard.filter(&f.filter);
        Failure::local(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("filter `{}` failed: {}", f.filter, f.message),
        )
    }

    /// The authority the client asked for: it becomes Host (HTTP/1.1) or :authority (HTTP/2)
    /// upstream. Connections always go to the configured upstream whatever it says.
    ///
    /// As the native path (RFC 9112 §3.2): an HTTP/1.1 request without a Host, or with more
    /// than one, is refused, and so is a host with userinfo (`user@host`, RFC 9110 §4.2.4),
    /// so a policy on the host sees the one the upstream routes by.
    fn request_authority(&self, req: &Request<Incoming>) -> Result<Authority, Failure> {
        let bad = |what: &str| Failure::local(StatusCode::BAD_REQUEST, what.to_owned());
        let no_userinfo = |a: Authority| {
            if a.as_str().contains('@') {
                Err(bad("userinfo (`user@`) in the request's host"))
            } else {
                Ok(a)
            }
        };
        let mut hosts = req.headers().get_all(header::HOST).iter();
        let host = hosts.next();
        if hosts.next().is_some() {
            return Err(bad("more than one Host header"));
        }
        if let Some(a) = req.uri().authority() {
            return no_userinfo(a.clone());
        }
        match host {
            None if req.version() == Version::HTTP_11 => Err(bad("missing Host header")),
            None => Ok(self.target.authority.clone()),
            Some(h) => no_userinfo(
                Authority::try_from(h.as_bytes()).map_err(|_| bad("invalid Host header"))?,
            ),
        }
    }

    /// Sends the request upstream on the connection its route calls for: an HTTP/1.x
    /// request on the downstream connection's own upstream connection, everything else
    /// (HTTP/2 clients' concurrent streams) through the pool.
    ///
    /// The connection is chosen here, synchronously, so the future is only the one path's.
    fn send<'a>(
        &'a self,
        out: Outbound,
        route: Route,
        conn: &'a Conn,
    ) -> impl std::future::Future<Output = Sent> + Send + 'a {
        use futures_util::future::{Either, FutureExt as _};
        let client = match (out.upgrade, route, out.bind) {
            // Boxed: upgrades are rare, and their future would enlarge every request's.
            (Some(on), _, _) => {
                return Either::Left(Either::Left(Box::pin(self.send_upgrade(out.req, on))))
            }
            (None, Route::Http1, true) => {
                return Either::Left(Either::Right(self.send_bound(out.req, conn)))
            }
            // A request hyper serves (HTTP/2) with no body, to a cleartext HTTP/1.1 upstream:
            // the native client, without hyper-util's pool and connection task.
            (None, Route::Http1, false)
                if self.native
                    && out.req.method() != http::Method::CONNECT
                    && hyper::body::Body::is_end_stream(out.req.body()) =>
            {
                return Either::Right(Either::Left(Box::pin(self.send_native(out.req))))
            }
            (None, Route::Http1, false) => &self.upstreams.http1,
            (None, Route::Http2, _) => &self.upstreams.http2,
            (None, Route::Negotiated, _) => &self.upstreams.negotiated,
        };
        Either::Right(Either::Right(client.request(out.req).map(|r| {
            r.map_err(|e| self.classify(&e))
                .map(|r| (r.map(UpBody::Hyper), None))
        })))
    }

    /// Forwards an `Upgrade` request on a connection of its own; on 101 the two upgraded streams
    /// are spliced by a task that owns the flow from then on.
    async fn send_upgrade(
        &self,
        req: Request<RequestBody>,
        down: hyper::upgrade::OnUpgrade,
    ) -> Sent {
        let (mut sender, conn) = self.connect_http1().await?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(error = %e, "upstream upgrade connection ended with an error");
            }
        });
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| Failure::protocol(format!("upstream failed before a response: {e}")))?;
        Ok((resp.map(UpBody::Hyper), Some(down)))
    }

    /// Sends a request on the downstream connection's bound upstream connection (binding an
    /// idle pooled one or a new one first if needed). A request a reused connection could not
    /// take (it closed while idle) is sent again on another.
    fn send_bound<'a>(
        &'a self,
        mut req: Request<RequestBody>,
        conn: &'a Conn,
    ) -> impl std::future::Future<Output = Sent> + Send + 'a {
        use futures_util::future::{Either, FutureExt as _};
        // An upstream connection of our own takes the origin form (the pooled client derives
        // it from the absolute URI).
        if let Some(pq) = req.uri().path_and_query().cloned() {
            *req.uri_mut() = Uri::from(pq);
        }
        match conn.bound.take_open() {
            // The common case, kept small (see `handle`): the connection's own upstream
            // connection is ready for the next request.
            Some(mut tx) if tx.is_ready() => {
                let sent = tx.try_send_request(req);
                conn.bound.put(tx);
                // A combinator, not an `async` block, which would hold `sent` twice.
                Either::Left(sent.then(move |r| match r {
                    Ok(resp) => {
                        Either::Left(std::future::ready(Ok((resp.map(UpBody::Hyper), None))))
                    }
                    Err(e) => match retry_on_another(e, true) {
                        Ok(r) => Either::Right(Box::pin(self.send_bound_slow(r, None, conn))),
                        Err(f) => Either::Left(std::future::ready(Err(f))),
                    },
                }))
            }
            open => Either::Right(Box::pin(self.send_bound_slow(req, open, conn))),
        }
    }

    /// [`Self::send_bound`] when the bound connection is not ready: waits for it (it may still
    /// be finishing the previous response, and it is ours alone), or binds an idle pooled
    /// connection or a new one. A request a reused connection could not take is sent again.
    async fn send_bound_slow(
        &self,
        mut req: Request<RequestBody>,
        mut open: Option<SendRequest<RequestBody>>,
        conn: &Conn,
    ) -> Sent {
        loop {
            let ready = match open.take().or_else(|| conn.bound.take_open()) {
                Some(mut tx) => tx.ready().await.is_ok().then_some(tx),
                None => None,
            };
            let (mut tx, reused) = match ready {
                Some(tx) => (tx, true),
                None => match self.idle.take() {
                    Some(up) => (conn.bound.bind(up), true),
                    None => (conn.bound.bind(self.connect_bound().await?), false),
                },
            };
            let sent = tx.try_send_request(req);
            conn.bound.put(tx);
            match sent.await {
                Ok(resp) => return Ok((resp.map(UpBody::Hyper), None)),
                Err(e) => req = retry_on_another(e, reused)?,
            }
        }
    }

    async fn connect_bound(&self) -> Result<bound::Upstream, Failure> {
        let (tx, conn) = self.connect_http1().await?;
        Ok(bound::Upstream::new(tx, conn))
    }

    /// A new upstream HTTP/1.1 connection: its request handle and its I/O future.
    async fn connect_http1(
        &self,
    ) -> Result<
        (
            hyper::client::conn::http1::SendRequest<RequestBody>,
            hyper::client::conn::http1::Connection<upstream::UpstreamStream, RequestBody>,
        ),
        Failure,
    > {
        let io = self
            .upstreams
            .connector
            .connect()
            .await
            .map_err(|e| connect_failure(&e))?;
        hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| Failure::protocol(format!("upstream handshake failed: {e}")))
    }

    fn respond_filtered(
        &self,
        guard: FlowGuard,
        down_version: Version,
        resp: Response<UpBody>,
        upgraded: Option<hyper::upgrade::OnUpgrade>,
        filters: Arc<StreamFilters>,
    ) -> Response<ResponseBody> {
        if resp.status() == StatusCode::SWITCHING_PROTOCOLS
            || !filters.wants_body(BodyKind::Response)
        {
            // Upgraded streams are spliced as bytes; filters saw the heads. A body no filter
            // has a callback for goes through unwrapped (the filters still live until it ends).
            return self
                .respond(guard, down_version, resp, upgraded)
                .map(|b| b.keep(Some(filters)));
        }
        let mut guard = guard;
        let status = resp.status();
        self.metrics.response(status.as_u16());
        self.metrics.latency.observe(guard.elapsed().as_secs_f64());
        guard.response(status.as_u16(), resp.headers());
        let (mut parts, body) = resp.into_parts();
        headers::strip_hop_by_hop(&mut parts.headers, None);
        headers::add_via(&mut parts.headers, down_version);
        parts.version = down_version;
        Response::from_parts(parts, ResponseBody::filtered(body, guard, filters))
    }

    fn respond(
        &self,
        mut guard: FlowGuard,
        down_version: Version,
        mut resp: Response<UpBody>,
        down_upgrade: Option<hyper::upgrade::OnUpgrade>,
    ) -> Response<ResponseBody> {
        let status = resp.status();
        self.metrics.response(status.as_u16());
        self.metrics.latency.observe(guard.elapsed().as_secs_f64());
        guard.response(status.as_u16(), resp.headers());
        if status == StatusCode::SWITCHING_PROTOCOLS {
            if let Some(down) = down_upgrade {
                let up = hyper::upgrade::on(&mut resp);
                let upgrade = headers::upgrade_protocol(resp.headers());
                let (mut parts, _) = resp.into_parts();
                headers::strip_hop_by_hop(&mut parts.headers, upgrade.as_ref());
                headers::add_via(&mut parts.headers, down_version);
                tokio::spawn(splice_upgraded(down, up, guard));
                return Response::from_parts(parts, ResponseBody::full(Bytes::new(), None));
            }
        }
        let (mut parts, body) = resp.into_parts();
        headers::strip_hop_by_hop(&mut parts.headers, None);
        headers::add_via(&mut parts.headers, down_version);
        parts.version = down_version;
        Response::from_parts(parts, ResponseBody::upstream(body, guard))
    }

    fn fail(
        &self,
        mut guard: FlowGuard,
        grpc: bool,
        version: Version,
        f: Failure,
    ) -> Response<ResponseBody> {
        if let Some(kind) = f.kind {
            self.metrics.upstream_error(kind);
        }
        tracing::debug!(listener = %self.cfg.name, status = f.status.as_u16(), error = %f.message, "local response");
        let mut b = Response::builder().version(version);
        let body = if grpc {
            // gRPC clients read errors from grpc-status, in a trailers-only response.
            b = b
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "application/grpc")
                .header("grpc-status", f.grpc_status.to_string())
                .header("grpc-message", grpc_message(&f.message));
            Bytes::new()
        } else {
            b = b
                .status(f.status)
                .header(header::CONTENT_TYPE, "text/plain; charset=utf-8");
            Bytes::from(format!("{}\n", f.message))
        };
        let status = if grpc { StatusCode::OK } else { f.status };
        self.metrics.response(status.as_u16());
        self.metrics.latency.observe(guard.elapsed().as_secs_f64());
        let mut resp = match b.body(()) {
            Ok(r) => r,
            Err(_) => Response::new(()),
        };
        *resp.status_mut() = status;
        guard.response(status.as_u16(), resp.headers());
        guard.fail(Verdict::Error, f.message);
        resp.map(|()| ResponseBody::full(body, Some(guard)))
    }

    fn classify(&self, e: &hyper_util::client::legacy::Error) -> Failure {
        let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
        while let Some(s) = src {
            if let Some(c) = s.downcast_ref::<ConnectError>() {
                return connect_failure(c);
            }
            src = s.source();
        }
        if e.is_connect() {
            return Failure {
                status: StatusCode::SERVICE_UNAVAILABLE,
                grpc_status: 14,
                kind: Some(UpstreamErrorKind::Connect),
                message: format!("upstream connect error: {}", chain(e)),
            };
        }
        Failure::protocol(format!("upstream failed before a response: {}", chain(e)))
    }
}

impl Failure {
    fn local(status: StatusCode, message: impl Into<String>) -> Self {
        let grpc_status = match status {
            StatusCode::BAD_REQUEST | StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => 3, // INVALID_ARGUMENT
            _ => 14,
        };
        Self {
            status,
            grpc_status,
            kind: None,
            message: message.into(),
        }
    }

    fn protocol(message: String) -> Self {
        Self {
            status: StatusCode::BAD_GATEWAY,
            grpc_status: 14,
            kind: Some(UpstreamErrorKind::Protocol),
            message,
        }
    }
}

/// A request an upstream connection could not take: given back to be sent on another when
/// the connection was a reused one (it may have closed while idle), otherwise a failure.
fn retry_on_another(
    mut e: hyper::client::conn::TrySendError<Request<RequestBody>>,
    reused: bool,
) -> Result<Request<RequestBody>, Failure> {
    match e.take_message() {
        Some(r) if reused => {
            tracing::debug!(error = %e.error(), "reused upstream connection could not take the request; retrying on another");
            Ok(r)
        }
        _ => Err(Failure::protocol(format!(
            "upstream failed before a response: {}",
            chain(e.error())
        ))),
    }
}

/// The flow record's error for a stream cut by `timeouts.stream_idle` (`limit`); `place`
/// says where nothing moved.
pub(crate) fn stalled(limit: Duration, place: &str) -> String {
    format!(
        "no bytes moved {place} for {limit:?} with a request in flight \
         (timeouts.stream_idle); the connection was closed"
    )
}

fn connect_failure(c: &ConnectError) -> Failure {
    if c.is_timeout() {
        Failure {
            status: StatusCode::GATEWAY_TIMEOUT,
            grpc_status: 4,
            kind: Some(UpstreamErrorKind::Timeout),
            message: format!("upstream connect timeout: {c}"),
        }
    } else {
        Failure {
            status: StatusCode::SERVICE_UNAVAILABLE,
            grpc_status: 14,
            kind: Some(UpstreamErrorKind::Connect),
            message: format!("upstream unavailable: {c}"),
        }
    }
}

/// An error and its sources, `a: b: c`.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        let m = x.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        src = x.source();
    }
    s
}

async fn splice_upgraded(
    down: hyper::upgrade::OnUpgrade,
    up: hyper::upgrade::OnUpgrade,
    mut guard: FlowGuard,
) {
    match tokio::try_join!(down, up) {
        Ok((d, u)) => {
            let (mut d, mut u) = (TokioIo::new(d), TokioIo::new(u));
            match tokio::io::copy_bidirectional(&mut d, &mut u).await {
                Ok((from_client, to_client)) => {
                    guard.add_received(from_client);
                    guard.sent(to_client);
                }
                Err(e) => guard.fail(Verdict::Error, format!("upgraded stream failed: {e}")),
            }
        }
        Err(e) => guard.fail(Verdict::Error, format!("upgrade failed: {e}")),
    }
    guard.complete();
}

/// The gRPC status Envoy derives from an HTTP status for local replies to gRPC requests.
fn http_to_grpc(status: u16) -> u32 {
    match status {
        400 => 13,
        401 => 16,
        403 => 7,
        404 => 12,
        429 | 502..=504 => 14,
        _ => 2,
    }
}

fn is_grpc(h: &http::HeaderMap) -> bool {
    h.get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

fn version_str(v: Version) -> &'static str {
    match v {
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_09 => "HTTP/0.9",
        _ => "HTTP/1.1",
    }
}

/// Percent-encodes a grpc-message as the gRPC HTTP/2 spec requires.
fn grpc_message(m: &str) -> String {
    let mut out = String::with_capacity(m.len());
    for b in m.bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn grpc_message_is_percent_encoded() {
        assert_eq!(super::grpc_message("a 100% é"), "a 100%25 %C3%A9");
    }
}
