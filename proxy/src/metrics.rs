//! Prometheus metrics (prometheus-client). Per-listener handles are resolved once at startup so
//! the request path touches only atomics.

use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListenerLabel {
    listener: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassLabel {
    listener: String,
    class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    listener: String,
    kind: &'static str,
}

/// What went wrong talking to an upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpstreamErrorKind {
    Connect,
    Timeout,
    Protocol,
}

impl UpstreamErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Timeout => "timeout",
            Self::Protocol => "protocol",
        }
    }
}

fn latency_histogram() -> Histogram {
    // 50 µs … ~52 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 21))
}

/// All metrics of one process. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
    requests: Family<ListenerLabel, Counter>,
    responses: Family<ClassLabel, Counter>,
    latency: Family<ListenerLabel, Histogram, fn() -> Histogram>,
    active: Family<ListenerLabel, Gauge>,
    upstream_errors: Family<KindLabel, Counter>,
    downstream_errors: Family<KindLabel, Counter>,
    filter_verdicts: Family<KindLabel, Counter>,
    pub flows_dropped: Counter,
    /// The filter runtime, whose filter-defined metrics are appended to the exposition.
    wasm: Arc<std::sync::OnceLock<crate::wasm::Runtime>>,
    datapath: Arc<std::sync::OnceLock<crate::datapath::CountersHandle>>,
    sockmap: Arc<std::sync::OnceLock<crate::datapath::sockmap::CountersHandle>>,
}

/// Handles for one listener.
#[derive(Clone)]
pub struct ListenerMetrics {
    pub requests: Counter,
    responses: [Counter; 5],
    pub latency: Histogram,
    pub active_connections: Gauge,
    upstream_errors: [Counter; 3],
    pub tls_handshake_errors: Counter,
    pub bad_requests: Counter,
    /// Requests answered locally by a filter.
    pub filter_denied: Counter,
    /// Streams failed closed because a filter failed.
    pub filter_failed: Counter,
}

impl ListenerMetrics {
    pub fn response(&self, status: u16) {
        let i = usize::from(status / 100).clamp(1, 5) - 1;
        self.responses[i].inc();
    }

    pub fn upstream_error(&self, kind: UpstreamErrorKind) {
        self.upstream_errors[kind as usize].inc();
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut r = Registry::with_prefix("strait");
        let requests = Family::<ListenerLabel, Counter>::default();
        r.register(
            "requests",
            "Requests (HTTP) or connections (TCP) received",
            requests.clone(),
        );
        let responses = Family::<ClassLabel, Counter>::default();
        r.register(
            "responses",
            "Responses sent to clients, by status class",
            responses.clone(),
        );
        let latency: Family<ListenerLabel, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        r.register(
            "request_duration_seconds",
            "Time from request arrival to response head",
            latency.clone(),
        );
        let active = Family::<ListenerLabel, Gauge>::default();
        r.register(
            "active_connections",
            "Open downstream connections",
            active.clone(),
        );
        let upstream_errors = Family::<KindLabel, Counter>::default();
        r.register(
            "upstream_errors",
            "Upstream failures by kind (connect, timeout, protocol)",
            upstream_errors.clone(),
        );
        let downstream_errors = Family::<KindLabel, Counter>::default();
        r.register(
            "downstream_errors",
            "Client-side failures by kind (tls_handshake, bad_request)",
            downstream_errors.clone(),
        );
        let filter_verdicts = Family::<KindLabel, Counter>::default();
        r.register(
            "filter_verdicts",
            "Streams decided by WASM filters: denied (local response) or failed (failure: closed)",
            filter_verdicts.clone(),
        );
        let flows_dropped = Counter::default();
        r.register(
            "flows_dropped",
            "Flow records dropped because the writer fell behind",
            flows_dropped.clone(),
        );
        Self {
            registry: Arc::new(Mutex::new(r)),
            requests,
            responses,
            latency,
            active,
            upstream_errors,
            downstream_errors,
            filter_verdicts,
            flows_dropped,
            wasm: Arc::new(std::sync::OnceLock::new()),
            datapath: Arc::new(std::sync::OnceLock::new()),
            sockmap: Arc::new(std::sync::OnceLock::new()),
        }
    }

    /// Resolves (and so exports, at zero) every series of `listener`.
    pub fn listener(&self, listener: &str) -> ListenerMetrics {
        let l = ListenerLabel {
            listener: listener.to_owned(),
        };
        let class = |class| {
            self.responses
                .get_or_create(&ClassLabel {
                    listener: listener.to_owned(),
                    class,
                })
                .clone()
        };
        let kind = |f: &Family<KindLabel, Counter>, kind| {
            f.get_or_create(&KindLabel {
                listener: listener.to_owned(),
                kind,
            })
            .clone()
        };
        ListenerMetrics {
            requests: self.requests.get_or_create(&l).clone(),
            responses: ["1xx", "2xx", "3xx", "4xx", "5xx"].map(class),
            latency: self.latency.get_or_create(&l).clone(),
            active_connections: self.active.get_or_create(&l).clone(),
            upstream_errors: [
                UpstreamErrorKind::Connect,
                UpstreamErrorKind::Timeout,
                UpstreamErrorKind::Protocol,
            ]
            .map(|k| kind(&self.upstream_errors, k.as_str())),
            tls_handshake_errors: kind(&self.downstream_errors, "tls_handshake"),
            bad_requests: kind(&self.downstream_errors, "bad_request"),
            filter_denied: kind(&self.filter_verdicts, "denied"),
            filter_failed: kind(&self.filter_verdicts, "failed"),
        }
    }

    /// The Prometheus text exposition (OpenMetrics text, which Prometheus parses).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let r = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &r);
        let (wasm, dp, sm) = (self.wasm.get(), self.datapath.get(), self.sockmap.get());
        if wasm.is_some() || dp.is_some() || sm.is_some() {
            if let Some(body) = out.strip_suffix("# EOF\n") {
                let mut s = body.to_owned();
                if let Some(rt) = wasm {
                    rt.render_metrics(&mut s);
                }
                if let Some(dp) = dp {
                    dp.render(&mut s);
                }
                if let Some(sm) = sm {
                    sm.render(&mut s);
                }
                s.push_str("# EOF\n");
                out = s;
            }
        }
        out
    }

    /// Adds the filter runtime's metrics to the exposition.
    pub fn set_wasm(&self, rt: crate::wasm::Runtime) {
        let _ = self.wasm.set(rt);
    }

    /// Adds the datapath's counters to the exposition.
    pub fn set_datapath(&self, c: crate::datapath::CountersHandle) {
        let _ = self.datapath.set(c);
    }

    /// Adds the sockmap's counters to the exposition.
    pub fn set_sockmap(&self, c: crate::datapath::sockmap::CountersHandle) {
        let _ = self.sockmap.set(c);
    }
}
