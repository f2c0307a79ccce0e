//! Configuration: YAML parsed once into an immutable, validated [`Config`].
//!
//! Every error names `file:line:col` and the field, so an operator can fix it without guessing.
//! See `docs/config.md` for the schema.

pub(crate) mod positions;
mod raw;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http::uri::Authority;

use crate::tls;
use positions::Positions;
use raw::{
    RawCluster, RawConfig, RawEndpoint, RawFailure, RawFilter, RawHostRouting, RawHttp1Engine,
    RawKafka, RawListener, RawOnExit, RawProtocol, RawSink, RawSourceAddress, RawUpstreamProtocol,
    RawWasm,
};

/// One problem in a configuration file, with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    /// The dotted path of the offending field (`listeners[0].upstream`), empty for syntax errors.
    pub field: String,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.column)?;
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}", join(.0))]
    Invalid(Vec<Diagnostic>),
}

fn join(d: &[Diagnostic]) -> String {
    d.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The whole validated configuration. Cheap to share (`Arc` inside), never mutated.
#[derive(Debug, Clone)]
pub struct Config {
    pub source: PathBuf,
    pub admin: Option<AdminConfig>,
    pub runtime: RuntimeConfig,
    pub flows: FlowsConfig,
    pub listeners: Vec<Arc<ListenerConfig>>,
    /// Destinations of filters' outbound calls, by name.
    pub clusters: Vec<Arc<ClusterConfig>>,
    pub wasm: WasmConfig,
    pub endpoints: Vec<EndpointConfig>,
    /// CiliumNetworkPolicy files (parsed by `crate::policy`).
    pub policies: Vec<PathBuf>,
    pub datapath: DatapathConfig,
    pub sockmap: SockmapConfig,
}

/// What a stream gets when one of its filters fails (trap, deadline, memory limit, bad call).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailurePolicy {
    /// 503 (gRPC UNAVAILABLE): policy is never bypassed. The default.
    Closed,
    /// The failed filter is skipped for the rest of the stream.
    Open,
}

/// One WASM filter of a listener's chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterConfig {
    /// Unique within the listener; defaults to the module's file stem.
    pub name: String,
    pub module: PathBuf,
    /// Plugin configuration handed to `proxy_on_configure`: a string as is, a mapping as JSON.
    pub config: Vec<u8>,
    /// VM configuration handed to `proxy_on_vm_start`.
    pub vm_config: Vec<u8>,
    pub failure: FailurePolicy,
    pub root_id: String,
    pub vm_id: String,
}

/// A named destination for filters' `http_call` / `grpc_call`.
#[derive(Clone)]
pub struct ClusterConfig {
    pub name: String,
    pub address: Authority,
    pub tls: Option<tls::UpstreamTls>,
    /// `http2` for gRPC calls; `auto` speaks HTTP/1.1 for `http_call` and HTTP/2 for `grpc_call`.
    pub protocol: UpstreamProtocol,
    pub connect_timeout: Duration,
}

impl fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterConfig")
            .field("name", &self.name)
            .field("address", &self.address)
            .field("tls", &self.tls.is_some())
            .field("protocol", &self.protocol)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// Settings of the WASM filter runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WasmConfig {
    /// Longest a single filter callback may run before its VM is killed.
    pub callback_deadline: Duration,
    /// Linear memory cap per VM.
    pub memory_limit: usize,
    /// Upper bound on live VMs (pool slots), across all filters and reload generations.
    pub max_vms: u32,
    /// Watch module files and the config file (and SIGHUP) to reload filters.
    pub reload: bool,
    /// How long a filter whose root context's `proxy_on_done` returned false has to call
    /// `proxy_done` when it is unloaded (after a reload replaced it, or at shutdown).
    pub done_timeout: Duration,
    /// Where compiled modules are kept, as unnamed files mapped into the process, while they
    /// are loaded (see `wasm::compile`).
    pub artifact_dir: PathBuf,
}

impl Default for WasmConfig {
    fn default() -> Self {
        Self {
            callback_deadline: Duration::from_millis(5),
            memory_limit: 64 << 20,
            max_vms: 256,
            reload: true,
            done_timeout: Duration::from_secs(10),
            artifact_dir: PathBuf::from("/var/tmp"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminConfig {
    pub address: SocketAddr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// Tokio worker threads; defaults to the number of CPUs.
    pub workers: usize,
    /// How long in-flight streams may take to finish after SIGTERM.
    pub shutdown_grace: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowSink {
    Stdout,
    File(PathBuf),
    None,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowsConfig {
    pub sink: FlowSink,
    /// Records buffered between the request path and the writer; beyond it they are dropped
    /// and counted in `strait_flows_dropped_total`.
    pub buffer: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.1 and HTTP/2 (TLS with ALPN, or cleartext prior knowledge) with gRPC and upgrades.
    Http,
    /// Opaque byte relay.
    Tcp,
    /// The Kafka protocol: requests framed and parsed, one flow record per request, broker
    /// addresses in responses moved to strait's own (docs/kafka.md).
    Kafka,
}

/// Settings of a `protocol: kafka` listener (defaults elsewhere, unused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaConfig {
    /// Largest request or response frame, in bytes (payload after the 4-byte size).
    pub max_frame_bytes: usize,
    /// What advertised broker addresses are rewritten to; `None`: the local address of each
    /// accepted connection (what the client dialled). Transparent listeners rewrite nothing.
    pub advertised_address: Option<AdvertisedAddress>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            max_frame_bytes: crate::kafka::codec::DEFAULT_MAX_FRAME,
            advertised_address: None,
        }
    }
}

/// A broker address to advertise: host (a name or an IP, IPv6 without brackets) and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdvertisedAddress {
    pub host: String,
    pub port: u16,
}

/// Bounds of `kafka.max_frame_bytes`: 1 KiB (below it no client works) to `i32::MAX` (the
/// largest size a frame can announce).
pub const KAFKA_MAX_FRAME_RANGE: std::ops::RangeInclusive<usize> = 1024..=i32::MAX as usize;

/// What serves HTTP/1.1 clients of an `http` listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Http1Engine {
    /// strait's own HTTP/1.1 forwarding loop (`http::h1`) where it applies (cleartext
    /// HTTP/1.1 upstream, origin-form requests; filters run on it, requests with a body go
    /// to hyper when a filter reads request bodies); hyper for the rest.
    Native,
    /// hyper for everything.
    Hyper,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamProtocol {
    /// The downstream request's version: HTTP/2 downstream → HTTP/2 upstream, else HTTP/1.1.
    Auto,
    Http1,
    Http2,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeouts {
    /// Time allowed for a client to send a complete request head (slowloris guard), also the TLS
    /// handshake deadline.
    pub header_read: Duration,
    /// A connection with no request in flight and no bytes moving for this long is closed.
    pub idle: Duration,
    /// A connection with a request in flight and no bytes moving for this long (a stalled
    /// upstream body, a client that stopped reading) is closed. `None`: no limit.
    pub stream_idle: Option<Duration>,
    /// Upstream TCP (and TLS) connect.
    pub connect: Duration,
    /// From the request's arrival to the upstream response head. `None`: no limit.
    pub request: Option<Duration>,
}

#[derive(Clone)]
pub struct ListenerConfig {
    pub name: String,
    pub address: SocketAddr,
    pub protocol: Protocol,
    /// Server-side TLS, loaded and checked at config time (a reload swaps in a rotated
    /// certificate without a restart).
    pub tls: Option<tls::ServerTls>,
    /// Where connections go.
    pub upstream: Upstream,
    /// Client-side TLS towards the upstream, loaded and checked at config time.
    pub upstream_tls: Option<tls::UpstreamTls>,
    pub upstream_protocol: UpstreamProtocol,
    pub http1_engine: Http1Engine,
    pub timeouts: Timeouts,
    pub max_header_bytes: usize,
    /// The WASM filter chain, in order (responses see it in reverse).
    pub filters: Vec<FilterConfig>,
    /// `protocol: kafka` settings (defaults for other protocols).
    pub kafka: KafkaConfig,
}

impl fmt::Debug for ListenerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ListenerConfig")
            .field("name", &self.name)
            .field("address", &self.address)
            .field("protocol", &self.protocol)
            .field("tls", &self.tls.is_some())
            .field("upstream", &self.upstream)
            .field("upstream_tls", &self.upstream_tls.is_some())
            .field("upstream_protocol", &self.upstream_protocol)
            .field("http1_engine", &self.http1_engine)
            .field("timeouts", &self.timeouts)
            .field("max_header_bytes", &self.max_header_bytes)
            .field("filters", &self.filters)
            .field("kafka", &self.kafka)
            .finish()
    }
}

pub const DEFAULT_MAX_HEADER_BYTES: usize = 64 * 1024;

/// A listener's upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    /// Always this `host:port`.
    Fixed(Authority),
    /// Transparent listener: each connection's original destination (what the client dialled
    /// before the datapath redirected it).
    OriginalDestination { source: SourceAddress },
}

/// The source address of a transparent listener's upstream connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceAddress {
    /// The client's own address (IP_TRANSPARENT bind): the server sees the real client.
    Client,
    /// The node's address.
    Node,
}

impl Upstream {
    pub fn is_transparent(&self) -> bool {
        matches!(self, Upstream::OriginalDestination { .. })
    }
}

impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Upstream::Fixed(a) => f.write_str(a.as_str()),
            Upstream::OriginalDestination { .. } => f.write_str("original destination"),
        }
    }
}

/// A local workload behind a host-side veth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointConfig {
    pub name: String,
    pub interface: String,
    pub addresses: Vec<std::net::IpAddr>,
    pub labels: std::collections::BTreeMap<String, String>,
    pub netns: String,
    /// Sockmap may splice this endpoint's own sockets (per-endpoint opt-out).
    pub splice: bool,
}

/// What `strait run` leaves attached when it exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnExit {
    /// Programs and maps stay pinned and keep enforcing policy (L7 traffic is dropped while
    /// strait is down). `strait datapath down` removes them.
    Keep,
    /// Detach and unpin everything.
    Detach,
}

/// Socket-layer acceleration: sock_ops inserts endpoint and proxy sockets into a sockhash,
/// sk_msg splices their sends into the peer socket. Maps are pinned beside the datapath's
/// (`datapath.pin_dir`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SockmapConfig {
    pub enabled: bool,
    /// cgroup v2 directory sock_ops is attached to; `None`: the cgroup v2 root, found in
    /// /proc/self/mounts at start.
    pub cgroup: Option<PathBuf>,
    pub max_sockets: u32,
    /// Backpressure: a spliced send that would leave more than this many bytes unread in the
    /// peer's queue takes TCP, as do the next ones until the peer has read every byte sent
    /// through TCP. 0: no limit.
    pub max_queued: u64,
    /// Adaptive splicing (`None`: off, every eligible connection is spliced).
    pub adaptive: Option<AdaptiveConfig>,
}

/// `sockmap.adaptive`: services whose last `streak` connections each carried at most
/// `short_messages` messages (both directions) get their new connections left on TCP, until
/// one longer connection to them is seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdaptiveConfig {
    pub short_messages: u32,
    pub streak: u32,
}

impl SockmapConfig {
    /// The largest cap the config accepts: measured the fastest for bulk streams with many
    /// flows (more of their bytes stay spliced) without TCP drops, and a quarter of the 32 MiB
    /// a plain TCP reader may leave unread here (`tcp_rmem` max). benches/README.md, "Paths:
    /// veth vs sockmap".
    pub const DEFAULT_MAX_QUEUED: u64 = 8 << 20;
}

impl AdaptiveConfig {
    pub const DEFAULT: AdaptiveConfig = AdaptiveConfig {
        short_messages: 4,
        streak: 8,
    };
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatapathConfig {
    pub enabled: bool,
    pub pin_dir: PathBuf,
    pub on_exit: OnExit,
    pub host_routing: HostRouting,
    /// Interfaces where traffic from other nodes arrives (`strait_from_uplink` on their tc
    /// ingress): what L7 policy redirects from there reaches strait instead of being dropped.
    pub uplinks: Vec<String>,
}

/// How packets that policy allows from one local endpoint to another reach the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostRouting {
    /// `strait_from_ep` hands them straight to the destination's host-side interface
    /// (`bpf_redirect_neigh`): no IP forwarding, no netfilter on the host for them (as Cilium's
    /// BPF host routing).
    Bpf,
    /// The host routes them as any forwarded packet (iptables FORWARD rules apply).
    Kernel,
}

impl Config {
    /// Reads, parses and validates `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let src = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &src)
    }

    /// Parses and validates `src`; `path` names the file in errors and anchors relative paths.
    pub fn parse(path: &Path, src: &str) -> Result<Self, ConfigError> {
        let raw: RawConfig = if src.trim().is_empty() {
            RawConfig::default()
        } else {
            serde_yaml::from_str(src).map_err(|e| {
                let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
                // serde_yaml appends " at line X column Y"; the prefix already says it.
                let msg = e.to_string();
                let msg = msg.split(" at line ").next().unwrap_or(&msg).to_owned();
                ConfigError::Invalid(vec![Diagnostic {
                    file: path.to_owned(),
                    line,
                    column,
                    field: String::new(),
                    message: msg,
                }])
            })?
        };
        let mut v = Validator {
            file: path.to_owned(),
            base: path.parent().map(Path::to_owned).unwrap_or_default(),
            positions: Positions::index(src),
            errors: Vec::new(),
        };
        let cfg = v.config(raw);
        if v.errors.is_empty() {
            Ok(cfg)
        } else {
            Err(ConfigError::Invalid(v.errors))
        }
    }
}

struct Validator {
    file: PathBuf,
    base: PathBuf,
    positions: Positions,
    errors: Vec<Diagnostic>,
}

impl Validator {
    fn err(&mut self, field: &str, message: impl Into<String>) {
        let (line, column) = self.positions.find(field);
        self.errors.push(Diagnostic {
            file: self.file.clone(),
            line,
            column,
            field: field.to_owned(),
            message: message.into(),
        });
    }

    fn addr(&mut self, field: &str, s: &str) -> Option<SocketAddr> {
        match s.parse() {
            Ok(a) => Some(a),
            Err(_) => {
                self.err(
                    field,
                    format!("`{s}` is not an IP:port socket address (e.g. 127.0.0.1:8080)"),
                );
                None
            }
        }
    }

    fn duration(&mut self, field: &str, s: Option<&str>, default: Duration) -> Option<Duration> {
        match s.map(parse_duration) {
            None => Some(default),
            Some(Ok(d)) => Some(d),
            Some(Err(e)) => {
                self.err(field, e);
                None
            }
        }
    }

    fn path(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_owned()
        } else {
            self.base.join(p)
        }
    }

    fn config(&mut self, raw: RawConfig) -> Config {
        let admin = raw.admin.and_then(|a| {
            self.addr("admin.address", &a.address)
                .map(|address| AdminConfig { address })
        });
        let workers = match raw.runtime.workers {
            Some(0) => {
                self.err("runtime.workers", "must be at least 1");
                1
            }
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        let shutdown_grace = self
            .duration(
                "runtime.shutdown_grace",
                raw.runtime.shutdown_grace.as_deref(),
                Duration::from_secs(30),
            )
            .unwrap_or_default();
        let sink = match (raw.flows.sink.unwrap_or(RawSink::Stdout), raw.flows.path) {
            (RawSink::File, Some(p)) => FlowSink::File(self.path(&p)),
            (RawSink::File, None) => {
                self.err("flows.sink", "sink `file` needs `flows.path`");
                FlowSink::None
            }
            (_, Some(_)) => {
                self.err("flows.path", "`path` is only used with `sink: file`");
                FlowSink::None
            }
            (RawSink::Stdout, None) => FlowSink::Stdout,
            (RawSink::None, None) => FlowSink::None,
        };
        let buffer = raw.flows.buffer.unwrap_or(65_536);
        if buffer == 0 {
            self.err("flows.buffer", "must be at least 1");
        }
        let wasm = self.wasm(raw.wasm);
        let endpoints = self.endpoints(raw.endpoints);
        let policies: Vec<PathBuf> = raw.policies.iter().map(|p| self.path(p)).collect();
        let rd = raw.datapath.unwrap_or_default();
        let mut datapath = DatapathConfig {
            enabled: rd.enabled.unwrap_or(!endpoints.is_empty()),
            pin_dir: rd
                .pin_dir
                .map(|p| self.path(&p))
                .unwrap_or_else(|| PathBuf::from("/sys/fs/bpf/strait")),
            on_exit: match rd.on_exit {
                Some(RawOnExit::Detach) => OnExit::Detach,
                _ => OnExit::Keep,
            },
            host_routing: match rd.host_routing {
                Some(RawHostRouting::Kernel) => HostRouting::Kernel,
                _ => HostRouting::Bpf,
            },
            uplinks: Vec::new(),
        };
        for (i, name) in rd.uplinks.into_iter().enumerate() {
            let f = format!("datapath.uplinks[{i}]");
            if let Some(why) = bad_interface_name(&name) {
                self.err(&f, why);
            } else if let Some(e) = endpoints.iter().find(|e| e.interface == name) {
                self.err(
                    &f,
                    format!(
                        "interface `{name}` is endpoint `{}`'s; an uplink is where other nodes' traffic arrives",
                        e.name
                    ),
                );
            } else if datapath.uplinks.contains(&name) {
                self.err(&f, format!("interface `{name}` is listed twice"));
            } else if let Some(o) = datapath
                .uplinks
                .iter()
                .find(|o| link_pin_name(o) == link_pin_name(&name))
            {
                self.err(
                    &f,
                    format!(
                        "uplinks `{o}` and `{name}` would share the pinned tc link name `{}` (bpffs refuses dots in names, so `.` pins as `_`); rename one of them",
                        link_pin_name(&name)
                    ),
                );
            } else {
                datapath.uplinks.push(name);
            }
        }
        if !datapath.enabled && !datapath.uplinks.is_empty() {
            self.err(
                "datapath.uplinks",
                "uplinks need the datapath, which is off here (`datapath.enabled: false`, or no `endpoints:`)",
            );
        }
        if datapath.enabled && endpoints.is_empty() {
            self.err(
                "datapath.enabled",
                "the datapath needs at least one entry under `endpoints:`",
            );
        }
        let rs = raw.sockmap.unwrap_or_default();
        let mut sockmap = SockmapConfig {
            enabled: rs.enabled.unwrap_or(false),
            cgroup: rs.cgroup.map(|p| self.path(&p)),
            max_sockets: rs.max_sockets.unwrap_or(65_536),
            max_queued: SockmapConfig::DEFAULT_MAX_QUEUED,
            adaptive: None,
        };
        let max_queued = rs.max_queued.map(|v| match v {
            raw::RawSize::Bytes(n) => usize::try_from(n).map_err(|_| format!("{n} is too large")),
            raw::RawSize::Text(t) => parse_size(&t),
        });
        match max_queued {
            None => {}
            Some(Ok(n)) if n == 0 || (64 << 10..=8 << 20).contains(&n) => {
                sockmap.max_queued = n as u64;
            }
            Some(Ok(_)) => self.err(
                "sockmap.max_queued",
                "must be 0 (no limit) or between 64KiB and 8MiB (larger caps stalled bulk \
                 streams in measurements: docs/sockmap.md)",
            ),
            Some(Err(e)) => self.err("sockmap.max_queued", e),
        }
        let ra = rs.adaptive.unwrap_or_default();
        if ra.enabled.unwrap_or(true) {
            let d = AdaptiveConfig::DEFAULT;
            let a = AdaptiveConfig {
                short_messages: ra.short_messages.unwrap_or(d.short_messages),
                streak: ra.streak.unwrap_or(d.streak),
            };
            if !(1..=1_000_000).contains(&a.short_messages) {
                self.err(
                    "sockmap.adaptive.short_messages",
                    "must be between 1 and 1000000 (to turn the rule off: `enabled: false`)",
                );
            }
            if !(1..=1_000_000).contains(&a.streak) {
                self.err("sockmap.adaptive.streak", "must be between 1 and 1000000");
            }
            sockmap.adaptive = Some(a);
        }
        if !(2..=1 << 24).contains(&sockmap.max_sockets) {
            self.err("sockmap.max_sockets", "must be between 2 and 16777216");
        }
        if sockmap.enabled && endpoints.is_empty() {
            self.err(
                "sockmap.enabled",
                "sockmap splices endpoint sockets: it needs at least one entry under `endpoints:`",
            );
        }
        let mut clusters: Vec<Arc<ClusterConfig>> = Vec::new();
        for (i, c) in raw.clusters.into_iter().enumerate() {
            let field = format!("clusters[{i}]");
            if clusters.iter().any(|p| p.name == c.name) {
                self.err(
                    &format!("{field}.name"),
                    format!("duplicate cluster name `{}`", c.name),
                );
            }
            if let Some(c) = self.cluster(&field, c) {
                clusters.push(Arc::new(c));
            }
        }
        // Listeners with `policy:`, and transparent HTTP and Kafka listeners (the datapath
        // redirects L7 traffic to them), enforce the policies' http and kafka rules.
        let wants_policies = raw.listeners.iter().any(|l| {
            l.policy.is_some()
                || (l.transparent == Some(true)
                    && matches!(l.protocol, RawProtocol::Http | RawProtocol::Kafka)
                    && !policies.is_empty())
        });
        let loaded_policies = if wants_policies {
            self.load_policies(&policies)
        } else {
            None
        };
        let identities = crate::policy::Identities::from_endpoints(&endpoints);
        let mut listeners: Vec<Arc<ListenerConfig>> = Vec::new();
        let mut seen: Vec<(String, Option<SocketAddr>)> = Vec::new();
        for (i, l) in raw.listeners.into_iter().enumerate() {
            let field = format!("listeners[{i}]");
            if seen.iter().any(|(n, _)| *n == l.name) {
                self.err(
                    &format!("{field}.name"),
                    format!("duplicate listener name `{}`", l.name),
                );
            }
            let addr = l
                .address
                .parse::<SocketAddr>()
                .ok()
                .filter(|a| a.port() != 0);
            if let Some((prev, _)) = seen.iter().find(|(_, a)| addr.is_some() && *a == addr) {
                let msg = format!("address {} is already used by listener `{prev}`", l.address);
                self.err(&format!("{field}.address"), msg);
            }
            seen.push((l.name.clone(), addr));
            if let Some(lc) = self.listener(&field, l, loaded_policies.as_deref(), &identities) {
                listeners.push(Arc::new(lc));
            }
        }
        if listeners.is_empty() && self.errors.is_empty() {
            self.err(
                "listeners",
                "no listeners configured: add at least one under `listeners:`",
            );
        }
        Config {
            source: self.file.clone(),
            admin,
            runtime: RuntimeConfig {
                workers,
                shutdown_grace,
            },
            flows: FlowsConfig {
                sink,
                buffer: buffer.max(1),
            },
            listeners,
            clusters,
            wasm,
            endpoints,
            policies,
            datapath,
            sockmap,
        }
    }

    fn endpoints(&mut self, raw: Vec<RawEndpoint>) -> Vec<EndpointConfig> {
        let mut out: Vec<EndpointConfig> = Vec::new();
        for (i, e) in raw.into_iter().enumerate() {
            let f = format!("endpoints[{i}]");
            let name_ok = !e.name.is_empty()
                && e.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if !name_ok {
                self.err(
                    &format!("{f}.name"),
                    "must be non-empty and use only letters, digits, `-`, `_`, `.`",
                );
            }
            if out.iter().any(|o| o.name == e.name) {
                self.err(
                    &format!("{f}.name"),
                    format!("duplicate endpoint `{}`", e.name),
                );
            }
            if let Some(why) = bad_interface_name(&e.interface) {
                self.err(&format!("{f}.interface"), why);
            }
            if let Some(o) = out.iter().find(|o| o.interface == e.interface) {
                self.err(
                    &format!("{f}.interface"),
                    format!(
                        "interface `{}` is already endpoint `{}`'s",
                        e.interface, o.name
                    ),
                );
            } else if let Some(o) = out
                .iter()
                .find(|o| link_pin_name(&o.interface) == link_pin_name(&e.interface))
            {
                self.err(
                    &format!("{f}.interface"),
                    format!(
                        "interfaces `{}` (endpoint `{}`) and `{}` would share the pinned tc link name `{}` (bpffs refuses dots in names, so `.` pins as `_`); rename one of them",
                        o.interface,
                        o.name,
                        e.interface,
                        link_pin_name(&e.interface)
                    ),
                );
            }
            let mut addresses = Vec::new();
            if e.addresses.is_empty() {
                self.err(&format!("{f}.addresses"), "at least one address is needed");
            }
            for (j, a) in e.addresses.iter().enumerate() {
                match a.parse::<std::net::IpAddr>() {
                    Ok(ip) if !ip.is_unspecified() && !ip.is_loopback() && !ip.is_multicast() => {
                        if let Some(o) = out.iter().find(|o| o.addresses.contains(&ip)) {
                            self.err(
                                &format!("{f}.addresses[{j}]"),
                                format!("{ip} is already endpoint `{}`'s", o.name),
                            );
                        }
                        addresses.push(ip);
                    }
                    _ => self.err(
                        &format!("{f}.addresses[{j}]"),
                        format!("`{a}` is not a unicast IP address (e.g. 10.200.0.2)"),
                    ),
                }
            }
            for k in e.labels.keys() {
                if k.is_empty() || k.contains('=') {
                    self.err(&format!("{f}.labels"), format!("bad label key `{k}`"));
                }
            }
            let netns = e.netns.unwrap_or_else(|| format!("strait-{}", e.name));
            out.push(EndpointConfig {
                name: e.name,
                interface: e.interface,
                addresses,
                labels: e.labels,
                netns,
                splice: e.splice.unwrap_or(true),
            });
        }
        out
    }

    fn wasm(&mut self, w: RawWasm) -> WasmConfig {
        let d = WasmConfig::default();
        let callback_deadline = self
            .duration(
                "wasm.callback_deadline",
                w.callback_deadline.as_deref(),
                d.callback_deadline,
            )
            .unwrap_or(d.callback_deadline);
        if callback_deadline < Duration::from_millis(1) {
            self.err("wasm.callback_deadline", "must be at least 1ms");
        }
        let memory_limit = match w.memory_limit.as_deref().map(parse_size) {
            None => d.memory_limit,
            Some(Ok(n)) if (1 << 20..=4 << 30).contains(&n) => n,
            Some(Ok(_)) => {
                self.err("wasm.memory_limit", "must be between 1MiB and 4GiB");
                d.memory_limit
            }
            Some(Err(e)) => {
                self.err("wasm.memory_limit", e);
                d.memory_limit
            }
        };
        let max_vms = w.max_vms.unwrap_or(d.max_vms);
        if max_vms == 0 {
            self.err("wasm.max_vms", "must be at least 1");
        }
        let done_timeout = self
            .duration(
                "wasm.done_timeout",
                w.done_timeout.as_deref(),
                d.done_timeout,
            )
            .unwrap_or(d.done_timeout);
        WasmConfig {
            callback_deadline,
            memory_limit,
            max_vms: max_vms.max(1),
            reload: w.reload.unwrap_or(true),
            done_timeout,
            artifact_dir: w
                .artifact_dir
                .as_deref()
                .map_or(d.artifact_dir, |p| self.path(p)),
        }
    }

    fn cluster(&mut self, f: &str, c: RawCluster) -> Option<ClusterConfig> {
        let before = self.errors.len();
        if c.name.is_empty() {
            self.err(&format!("{f}.name"), "must not be empty");
        }
        let address = self.authority(&format!("{f}.address"), &c.address);
        let tls = c.tls.and_then(|t| {
            let ca = t.ca.as_deref().map(|p| self.path(p));
            let sni = t
                .sni
                .or_else(|| address.as_ref().map(|u| u.host().to_owned()));
            match tls::UpstreamTls::new(sni.as_deref().unwrap_or_default(), ca.as_deref()) {
                Ok(c) => Some(c),
                Err(e) => {
                    self.err(&format!("{f}.tls"), e.to_string());
                    None
                }
            }
        });
        let protocol = match c.protocol.unwrap_or(RawUpstreamProtocol::Auto) {
            RawUpstreamProtocol::Auto => UpstreamProtocol::Auto,
            RawUpstreamProtocol::Http1 => UpstreamProtocol::Http1,
            RawUpstreamProtocol::Http2 => UpstreamProtocol::Http2,
        };
        let connect_timeout = self.duration(
            &format!("{f}.connect_timeout"),
            c.connect_timeout.as_deref(),
            Duration::from_secs(5),
        );
        if connect_timeout == Some(Duration::ZERO) {
            self.err(&format!("{f}.connect_timeout"), "must be greater than zero");
        }
        if self.errors.len() > before {
            return None;
        }
        Some(ClusterConfig {
            name: c.name,
            address: address?,
            tls,
            protocol,
            connect_timeout: connect_timeout?,
        })
    }

    fn authority(&mut self, field: &str, s: &str) -> Option<Authority> {
        match s.parse::<Authority>() {
            Ok(a) if a.port_u16().is_some() && !a.host().is_empty() && !s.contains('@') => Some(a),
            _ => {
                self.err(
                    field,
                    format!("`{s}` is not a host:port address (e.g. 127.0.0.1:9000)"),
                );
                None
            }
        }
    }

    fn filters(&mut self, f: &str, raw: Vec<RawFilter>) -> Vec<FilterConfig> {
        let mut out: Vec<FilterConfig> = Vec::new();
        for (i, r) in raw.into_iter().enumerate() {
            let field = format!("{f}.filters[{i}]");
            let module = if r.module.starts_with(crate::wasm::builtin::PREFIX) {
                PathBuf::from(&r.module)
            } else {
                self.path(&r.module)
            };
            let builtin = crate::wasm::builtin::name(&module).map(str::to_owned);
            let readable = match &builtin {
                Some(_) => crate::wasm::builtin::read_module(&module).map(drop),
                None => std::fs::metadata(&module).map(drop),
            };
            if let Err(e) = readable {
                self.err(
                    &format!("{field}.module"),
                    format!("cannot read WASM module {}: {e}", module.display()),
                );
            }
            let name = r.name.or(builtin).unwrap_or_else(|| {
                module
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default()
            });
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                self.err(
                    &format!("{field}.name"),
                    "must be non-empty and use only letters, digits, `-`, `_`, `.`",
                );
            }
            if out.iter().any(|p| p.name == name) {
                self.err(
                    &format!("{field}.name"),
                    format!("duplicate filter name `{name}` in this listener (set `name:`)"),
                );
            }
            let config = self.filter_payload(&format!("{field}.config"), r.config);
            let vm_config = self.filter_payload(&format!("{field}.vm_config"), r.vm_config);
            out.push(FilterConfig {
                name,
                module,
                config,
                vm_config,
                failure: match r.failure.unwrap_or(RawFailure::Closed) {
                    RawFailure::Closed => FailurePolicy::Closed,
                    RawFailure::Open => FailurePolicy::Open,
                },
                root_id: r.root_id.unwrap_or_default(),
                vm_id: r.vm_id.unwrap_or_default(),
            });
        }
        out
    }

    /// A filter's configuration: a string is handed over as is, anything else as JSON.
    fn filter_payload(&mut self, field: &str, v: Option<serde_yaml::Value>) -> Vec<u8> {
        match v {
            None | Some(serde_yaml::Value::Null) => Vec::new(),
            Some(serde_yaml::Value::String(s)) => s.into_bytes(),
            Some(other) => match serde_json::to_vec(&other) {
                Ok(j) => j,
                Err(e) => {
                    self.err(field, format!("cannot be expressed as JSON: {e}"));
                    Vec::new()
                }
            },
        }
    }

    /// Reads the policy files for listeners' L7 policy; `None` (with the errors recorded) if
    /// any is missing or invalid.
    fn load_policies(&mut self, paths: &[PathBuf]) -> Option<Vec<crate::policy::Policy>> {
        match crate::policy::load(paths) {
            Ok(p) => Some(p),
            Err(crate::policy::PolicyError::Invalid(d)) => {
                self.errors.extend(d);
                None
            }
            Err(e) => {
                self.err("policies", e.to_string());
                None
            }
        }
    }

    /// The built-in policy filter of the listener's protocol (HTTP or Kafka), first in the
    /// chain of a listener with `policy:` and of a transparent HTTP or Kafka listener when
    /// policies are configured.
    #[allow(clippy::too_many_arguments)]
    fn policy_filter(
        &mut self,
        f: &str,
        rp: Option<&raw::RawListenerPolicy>,
        transparent: bool,
        protocol: Protocol,
        upstream: Option<&Upstream>,
        policies: Option<&[crate::policy::Policy]>,
        identities: &crate::policy::Identities,
    ) -> Option<FilterConfig> {
        use crate::policy::l7::{self, KafkaRuleConfig, RuleConfig};
        if rp.is_none() && transparent {
            let policies = policies?;
            return match protocol {
                Protocol::Http => self.policy_filter_config(
                    f,
                    protocol,
                    &l7::filter_config_transparent::<RuleConfig>(policies, identities),
                ),
                Protocol::Kafka => self.policy_filter_config(
                    f,
                    protocol,
                    &l7::filter_config_transparent::<KafkaRuleConfig>(policies, identities),
                ),
                Protocol::Tcp => None,
            };
        }
        let rp = rp?;
        let field = format!("{f}.policy");
        if protocol == Protocol::Tcp {
            self.err(
                &field,
                "L7 policy applies to `protocol: http` and `protocol: kafka` listeners",
            );
            return None;
        }
        if transparent {
            self.err(
                &field,
                "transparent listeners take identities from `endpoints:`; `policy:` is for explicit listeners",
            );
            return None;
        }
        let lp = l7::ListenerPolicy {
            client: l7::labels(&rp.client_labels),
            server: l7::labels(&rp.server_labels),
            names: rp.names.clone(),
        };
        // `None`: the policy files failed to load, and said why.
        let policies = policies?;
        if policies.is_empty() {
            self.err(
                &field,
                "no CiliumNetworkPolicy loaded: list policy files under `policies:`",
            );
            return None;
        }
        let missing = l7::missing_names(policies, &lp);
        if !missing.is_empty() {
            self.err(
                &format!("{field}.names"),
                format!("no loaded policy is named {}", missing.join(", ")),
            );
            return None;
        }
        let port = match upstream? {
            Upstream::Fixed(a) => a.port_u16().unwrap_or(80),
            Upstream::OriginalDestination { .. } => return None,
        };
        match protocol {
            Protocol::Kafka => self.policy_filter_config(
                f,
                protocol,
                &l7::filter_config::<KafkaRuleConfig>(policies, &lp, port),
            ),
            _ => self.policy_filter_config(
                f,
                protocol,
                &l7::filter_config::<RuleConfig>(policies, &lp, port),
            ),
        }
    }

    fn policy_filter_config<R: serde::Serialize>(
        &mut self,
        f: &str,
        protocol: Protocol,
        config: &crate::policy::l7::FilterConfig<R>,
    ) -> Option<FilterConfig> {
        use crate::policy::l7;
        let (name, module) = match protocol {
            Protocol::Kafka => (l7::KAFKA_POLICY_FILTER, l7::KAFKA_POLICY_MODULE),
            _ => (l7::HTTP_POLICY_FILTER, l7::HTTP_POLICY_MODULE),
        };
        let config = match serde_json::to_vec(config) {
            Ok(c) => c,
            Err(e) => {
                self.err(
                    f,
                    format!("cannot encode the policy filter's configuration: {e}"),
                );
                return None;
            }
        };
        Some(FilterConfig {
            name: name.to_owned(),
            module: PathBuf::from(module),
            config,
            vm_config: Vec::new(),
            failure: FailurePolicy::Closed,
            root_id: String::new(),
            vm_id: String::new(),
        })
    }

    fn listener(
        &mut self,
        f: &str,
        l: RawListener,
        policies: Option<&[crate::policy::Policy]>,
        identities: &crate::policy::Identities,
    ) -> Option<ListenerConfig> {
        let before = self.errors.len();
        if l.name.is_empty()
            || !l
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            self.err(
                &format!("{f}.name"),
                "must be non-empty and use only letters, digits, `-`, `_`, `.`",
            );
        }
        let address = self.addr(&format!("{f}.address"), &l.address);
        let protocol = match l.protocol {
            RawProtocol::Http => Protocol::Http,
            RawProtocol::Tcp => Protocol::Tcp,
            RawProtocol::Kafka => Protocol::Kafka,
        };
        let transparent = l.transparent.unwrap_or(false);
        let upstream = match (&l.upstream, transparent) {
            (Some(_), true) => {
                self.err(
                    &format!("{f}.upstream"),
                    "a transparent listener sends each connection to its original destination; remove `upstream`",
                );
                None
            }
            (None, true) => Some(Upstream::OriginalDestination {
                source: match l.source_address {
                    Some(RawSourceAddress::Node) => SourceAddress::Node,
                    _ => SourceAddress::Client,
                },
            }),
            (None, false) => {
                self.err(
                    &format!("{f}.upstream"),
                    "missing `upstream` (host:port), or set `transparent: true`",
                );
                None
            }
            (Some(u), false) => match u.parse::<Authority>() {
                Ok(a) if a.port_u16().is_some() && !a.host().is_empty() && !u.contains('@') => {
                    Some(Upstream::Fixed(a))
                }
                _ => {
                    self.err(
                        &format!("{f}.upstream"),
                        format!("`{u}` is not a host:port upstream (e.g. 127.0.0.1:9000)"),
                    );
                    None
                }
            },
        };
        if l.source_address.is_some() && !transparent {
            self.err(
                &format!("{f}.source_address"),
                "only transparent listeners choose a source address",
            );
        }
        let tls = l.tls.and_then(|t| {
            let (cert, key) = (self.path(&t.cert), self.path(&t.key));
            match tls::server_config(&cert, &key) {
                Ok(c) => Some(c),
                Err(e) => {
                    self.err(&format!("{f}.tls"), e.to_string());
                    None
                }
            }
        });
        let upstream_tls = l.upstream_tls.and_then(|t| {
            let ca = t.ca.as_deref().map(|p| self.path(p));
            let sni = t.sni.or_else(|| match &upstream {
                Some(Upstream::Fixed(u)) => Some(u.host().to_owned()),
                _ => None,
            });
            match tls::UpstreamTls::new(sni.as_deref().unwrap_or_default(), ca.as_deref()) {
                Ok(c) => Some(c),
                Err(e) => {
                    self.err(&format!("{f}.upstream_tls"), e.to_string());
                    None
                }
            }
        });
        let upstream_protocol = match l.upstream_protocol.unwrap_or(RawUpstreamProtocol::Auto) {
            RawUpstreamProtocol::Auto => UpstreamProtocol::Auto,
            RawUpstreamProtocol::Http1 => UpstreamProtocol::Http1,
            RawUpstreamProtocol::Http2 => UpstreamProtocol::Http2,
        };
        let http1_engine = match l.http1_engine {
            Some(RawHttp1Engine::Hyper) => Http1Engine::Hyper,
            Some(RawHttp1Engine::Native) | None => Http1Engine::Native,
        };
        if protocol != Protocol::Http {
            if l.http1_engine.is_some() {
                self.err(
                    &format!("{f}.http1_engine"),
                    "only applies to `protocol: http`",
                );
            }
            if l.upstream_protocol.is_some() {
                self.err(
                    &format!("{f}.upstream_protocol"),
                    "only applies to `protocol: http`",
                );
            }
            if l.max_header_bytes.is_some() {
                self.err(
                    &format!("{f}.max_header_bytes"),
                    "only applies to `protocol: http`",
                );
            }
        }
        if protocol == Protocol::Tcp && !l.filters.is_empty() {
            self.err(
                &format!("{f}.filters"),
                "WASM filters apply to `protocol: http` and `protocol: kafka` listeners only (an unenforced filter would silently bypass policy)",
            );
        }
        let policy_filter = self.policy_filter(
            f,
            l.policy.as_ref(),
            transparent,
            protocol,
            upstream.as_ref(),
            policies,
            identities,
        );
        let mut filters = self.filters(f, l.filters);
        if let Some(pf) = policy_filter {
            if filters.iter().any(|u| u.name == pf.name) {
                self.err(
                    &format!("{f}.filters"),
                    format!(
                        "filter name `{}` is reserved for the built-in policy filter",
                        pf.name
                    ),
                );
            }
            filters.insert(0, pf);
        }
        let kafka = self.kafka(f, protocol, transparent, l.kafka);
        let t = &l.timeouts;
        let header_read = self.duration(
            &format!("{f}.timeouts.header_read"),
            t.header_read.as_deref(),
            Duration::from_secs(10),
        );
        let idle = self.duration(
            &format!("{f}.timeouts.idle"),
            t.idle.as_deref(),
            Duration::from_secs(300),
        );
        let stream_idle = match t.stream_idle.as_deref() {
            Some("off") => Some(None),
            other => self
                .duration(
                    &format!("{f}.timeouts.stream_idle"),
                    other,
                    Duration::from_secs(300),
                )
                .map(Some),
        };
        let connect = self.duration(
            &format!("{f}.timeouts.connect"),
            t.connect.as_deref(),
            Duration::from_secs(5),
        );
        let request = match t.request.as_deref() {
            Some("off") => Some(None),
            other => self
                .duration(
                    &format!("{f}.timeouts.request"),
                    other,
                    Duration::from_secs(60),
                )
                .map(Some),
        };
        for (name, d) in [
            ("header_read", header_read),
            ("idle", idle),
            ("stream_idle", stream_idle.flatten()),
            ("connect", connect),
            ("request", request.flatten()),
        ] {
            if d == Some(Duration::ZERO) {
                self.err(&format!("{f}.timeouts.{name}"), "must be greater than zero");
            }
        }
        let max_header_bytes = l.max_header_bytes.unwrap_or(DEFAULT_MAX_HEADER_BYTES);
        if !(1024..=1 << 20).contains(&max_header_bytes) {
            self.err(
                &format!("{f}.max_header_bytes"),
                "must be between 1024 and 1048576",
            );
        }
        if self.errors.len() > before {
            return None;
        }
        Some(ListenerConfig {
            name: l.name,
            address: address?,
            protocol,
            tls,
            upstream: upstream?,
            upstream_tls,
            upstream_protocol,
            http1_engine,
            timeouts: Timeouts {
                header_read: header_read?,
                idle: idle?,
                stream_idle: stream_idle?,
                connect: connect?,
                request: request?,
            },
            max_header_bytes,
            filters,
            kafka: kafka?,
        })
    }

    /// The `kafka:` block of listener `f`: only on `protocol: kafka` listeners.
    fn kafka(
        &mut self,
        f: &str,
        protocol: Protocol,
        transparent: bool,
        raw: Option<RawKafka>,
    ) -> Option<KafkaConfig> {
        let field = format!("{f}.kafka");
        let Some(raw) = raw else {
            return Some(KafkaConfig::default());
        };
        if protocol != Protocol::Kafka {
            self.err(&field, "only applies to `protocol: kafka`");
            return None;
        }
        let before = self.errors.len();
        let max_frame_bytes = raw
            .max_frame_bytes
            .unwrap_or(crate::kafka::codec::DEFAULT_MAX_FRAME);
        if !KAFKA_MAX_FRAME_RANGE.contains(&max_frame_bytes) {
            self.err(
                &format!("{field}.max_frame_bytes"),
                format!(
                    "must be between {} and {} (default {}, Kafka's socket.request.max.bytes)",
                    KAFKA_MAX_FRAME_RANGE.start(),
                    KAFKA_MAX_FRAME_RANGE.end(),
                    crate::kafka::codec::DEFAULT_MAX_FRAME
                ),
            );
        }
        let advertised_address = match raw.advertised_address {
            None => None,
            Some(_) if transparent => {
                self.err(
                    &format!("{field}.advertised_address"),
                    "a transparent listener does not rewrite broker addresses (clients reach each broker at its own address, redirected again); remove `advertised_address`",
                );
                None
            }
            Some(a) => self
                .authority(&format!("{field}.advertised_address"), &a)
                .and_then(|a| {
                    Some(AdvertisedAddress {
                        host: a
                            .host()
                            .trim_start_matches('[')
                            .trim_end_matches(']')
                            .to_owned(),
                        port: a.port_u16()?,
                    })
                }),
        };
        (self.errors.len() == before).then_some(KafkaConfig {
            max_frame_bytes,
            advertised_address,
        })
    }
}

/// Why `name` cannot be a Linux interface name (as the kernel's `dev_valid_name`: 1-15 bytes,
/// not `.` or `..`, no `/`, `:` or white space), or `None`.
fn bad_interface_name(name: &str) -> Option<String> {
    let ok = !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        // Bytes, as the kernel's `isspace` sees them (its Latin-1 table counts 0xA0).
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b == 0x0b || b == 0xa0);
    (!ok).then(|| {
        format!(
            "`{name}` is not an interface name (1-15 bytes, not `.` or `..`, no `/`, `:` or white space)"
        )
    })
}

/// The name an interface's tc links are pinned under (with a prefix) in the datapath's pin
/// directory. bpffs refuses dots in names, so `eth0.100` pins as `eth0_100`; the config refuses
/// two interfaces with the same pin name.
pub fn link_pin_name(iface: &str) -> String {
    iface.replace('.', "_")
}

/// Parses `512KiB`, `64MiB`, `1GiB` or a plain byte count.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let bad = || format!("`{s}` is not a size (e.g. 512KiB, 64MiB, 1GiB)");
    let n: usize = num.parse().map_err(|_| bad())?;
    let mult = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return Err(bad()),
    };
    n.checked_mul(mult).ok_or_else(bad)
}

/// Parses `250ms`, `10s`, `5m`, `1h`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (e.g. 250ms, 10s, 5m, 1h)"))?;
    match unit.trim() {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!(
            "`{s}` has no valid unit (use ms, s, m or h, e.g. 10s)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("strait.yaml"), src)
    }

    fn diag(src: &str) -> Vec<Diagnostic> {
        match parse(src) {
            Err(ConfigError::Invalid(d)) => d,
            other => panic!("expected invalid config, got {other:?}"),
        }
    }

    const OK: &str = "listeners:\n  - name: web\n    address: 127.0.0.1:8080\n    protocol: http\n    upstream: 127.0.0.1:9000\n";

    #[test]
    fn minimal_config_gets_defaults() {
        let c = parse(OK).expect("valid");
        let l = &c.listeners[0];
        assert_eq!(l.name, "web");
        assert_eq!(l.upstream.to_string(), "127.0.0.1:9000");
        assert_eq!(l.timeouts.header_read, Duration::from_secs(10));
        assert_eq!(l.timeouts.stream_idle, Some(Duration::from_secs(300)));
        assert_eq!(l.max_header_bytes, DEFAULT_MAX_HEADER_BYTES);
        assert_eq!(c.flows.sink, FlowSink::Stdout);
        assert!(c.runtime.workers >= 1);
    }

    #[test]
    fn sockmap_adaptive_defaults_off_switch_and_bad_values() {
        let c = parse(OK).expect("valid");
        assert_eq!(c.sockmap.adaptive, Some(AdaptiveConfig::DEFAULT));
        let c = parse(&format!("{OK}sockmap:\n  adaptive: {{enabled: false}}\n")).expect("valid");
        assert_eq!(c.sockmap.adaptive, None);
        let c = parse(&format!("{OK}sockmap:\n  adaptive: {{streak: 2}}\n")).expect("valid");
        assert_eq!(
            c.sockmap.adaptive,
            Some(AdaptiveConfig {
                short_messages: 4,
                streak: 2
            })
        );
        let d = diag(&format!(
            "{OK}sockmap:\n  adaptive:\n    short_messages: 0\n    streak: 0\n"
        ));
        assert_eq!(d.len(), 2, "{d:?}");
        assert_eq!(d[0].field, "sockmap.adaptive.short_messages");
        assert_eq!((d[0].line, d[0].column), (8, 21), "{}", d[0]);
        assert!(d[0].message.contains("enabled: false"), "{}", d[0]);
        assert_eq!(d[1].field, "sockmap.adaptive.streak");
        assert_eq!(d[1].line, 9, "{}", d[1]);
    }

    #[test]
    fn sockmap_max_queued_default_units_off_and_bad_values() {
        let c = parse(OK).expect("valid");
        assert_eq!(c.sockmap.max_queued, 8 << 20);
        let c = parse(&format!("{OK}sockmap:\n  max_queued: 256KiB\n")).expect("valid");
        assert_eq!(c.sockmap.max_queued, 256 << 10);
        let c = parse(&format!("{OK}sockmap:\n  max_queued: 0\n")).expect("valid");
        assert_eq!(c.sockmap.max_queued, 0);
        let c = parse(&format!("{OK}sockmap:\n  max_queued: 1048576\n")).expect("valid");
        assert_eq!(c.sockmap.max_queued, 1 << 20);
        for bad in ["1KiB", "64MiB", "lots"] {
            let d = diag(&format!("{OK}sockmap:\n  max_queued: {bad}\n"));
            assert_eq!(d.len(), 1, "{d:?}");
            assert_eq!(d[0].field, "sockmap.max_queued");
            assert_eq!(d[0].line, 7, "{}", d[0]);
        }
    }

    #[test]
    fn datapath_host_routing_default_kernel_and_bad_value() {
        let c = parse(OK).expect("valid");
        assert_eq!(c.datapath.host_routing, HostRouting::Bpf);
        let c = parse(&format!("{OK}datapath:\n  host_routing: kernel\n")).expect("valid");
        assert_eq!(c.datapath.host_routing, HostRouting::Kernel);
        let d = diag(&format!("{OK}datapath:\n  host_routing: iptables\n"));
        assert_eq!(d[0].line, 7, "{}", d[0]);
        assert!(
            d[0].message.contains("unknown variant `iptables`"),
            "{}",
            d[0]
        );
    }

    #[test]
    fn datapath_uplinks_are_interface_names_not_endpoints_and_not_twice() {
        let eps = "endpoints:\n  - name: c\n    interface: lxc-c\n    addresses: [10.200.0.2]\n    labels: {app: client}\n";
        let c = parse(&format!(
            "{OK}{eps}datapath:\n  uplinks: [eth0, bond0.100]\n"
        ))
        .expect("valid");
        assert_eq!(c.datapath.uplinks, ["eth0", "bond0.100"]);
        let c = parse(&format!("{OK}{eps}")).expect("valid");
        assert!(c.datapath.uplinks.is_empty());
        for (uplinks, want) in [
            ("[lxc-c]", "is endpoint `c`'s"),
            ("[eth0, eth0]", "listed twice"),
            ("[\"\"]", "is not an interface name"),
            ("[a-name-of-16-byt]", "is not an interface name"),
            ("[\"..\"]", "is not an interface name"),
            ("[\"eth 0\"]", "is not an interface name"),
            ("[\"eth0:1\"]", "is not an interface name"),
            ("[\"lxc\\u00e0\"]", "is not an interface name"),
            (
                "[eth0.100, eth0_100]",
                "would share the pinned tc link name `eth0_100`",
            ),
        ] {
            let d = diag(&format!("{OK}{eps}datapath:\n  uplinks: {uplinks}\n"));
            assert_eq!(d.len(), 1, "{uplinks}: {d:?}");
            assert!(d[0].field.starts_with("datapath.uplinks["), "{}", d[0]);
            assert_eq!(d[0].line, 12, "{}", d[0]);
            assert!(d[0].message.contains(want), "{uplinks}: {}", d[0]);
        }
        // Without the datapath, uplinks would do nothing: refused, not ignored.
        let d = diag(&format!(
            "{OK}{eps}datapath:\n  enabled: false\n  uplinks: [eth0]\n"
        ));
        assert!(
            d.iter()
                .any(|d| d.field == "datapath.uplinks" && d.message.contains("need the datapath")),
            "{d:?}"
        );
        // Two endpoints whose interfaces would pin under one name.
        let d = diag(&format!(
            "{OK}{eps}  - name: d\n    interface: lxc.c\n    addresses: [10.200.0.3]\n    labels: {{app: d}}\n  - name: e\n    interface: lxc_c\n    addresses: [10.200.0.4]\n    labels: {{app: e}}\n"
        ));
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].field, "endpoints[2].interface", "{}", d[0]);
        assert!(
            d[0].message
                .contains("would share the pinned tc link name `lxc_c`"),
            "{}",
            d[0]
        );
    }

    #[test]
    fn unknown_field_has_position() {
        let d = diag(&format!("{OK}    colour: blue\n"));
        assert_eq!((d[0].line, d[0].column), (6, 5), "{}", d[0]);
        assert!(d[0].message.contains("unknown field `colour`"), "{}", d[0]);
    }

    #[test]
    fn syntax_error_has_position() {
        let d = diag("listeners:\n  - name: [web\n");
        assert!(d[0].line >= 2, "{}", d[0]);
        assert!(d[0].to_string().starts_with("strait.yaml:"));
    }

    #[test]
    fn semantic_errors_name_field_line_and_column() {
        let src = OK
            .replace("127.0.0.1:9000", "nonsense")
            .replace("127.0.0.1:8080", "localhost");
        let d = diag(&src);
        assert_eq!(d.len(), 2, "{d:?}");
        assert_eq!(d[0].field, "listeners[0].address");
        assert_eq!((d[0].line, d[0].column), (3, 14));
        assert_eq!(d[1].field, "listeners[0].upstream");
        assert_eq!((d[1].line, d[1].column), (5, 15));
        assert_eq!(
            d[1].to_string(),
            "strait.yaml:5:15: listeners[0].upstream: `nonsense` is not a host:port upstream (e.g. 127.0.0.1:9000)"
        );
    }

    #[test]
    fn missing_tls_files_are_errors() {
        let src = format!("{OK}    tls: {{ cert: /nonexistent/c.pem, key: /nonexistent/k.pem }}\n");
        let d = diag(&src);
        assert_eq!(d[0].field, "listeners[0].tls");
        assert!(d[0].message.contains("/nonexistent/c.pem"), "{}", d[0]);
    }

    #[test]
    fn bad_durations_and_duplicates() {
        let src = format!(
            "{OK}    timeouts: {{ idle: 10 }}\n  - name: web\n    address: 127.0.0.1:8080\n    protocol: tcp\n    upstream: a:1\n"
        );
        let d = diag(&src);
        let fields: Vec<_> = d.iter().map(|d| d.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "listeners[0].timeouts.idle",
                "listeners[1].name",
                "listeners[1].address"
            ],
            "{d:?}"
        );
    }

    #[test]
    fn stream_idle_takes_a_duration_or_off() {
        let c = parse(&format!("{OK}    timeouts: {{ stream_idle: 2s }}\n")).expect("valid");
        assert_eq!(
            c.listeners[0].timeouts.stream_idle,
            Some(Duration::from_secs(2))
        );
        let c = parse(&format!("{OK}    timeouts: {{ stream_idle: off }}\n")).expect("valid");
        assert_eq!(c.listeners[0].timeouts.stream_idle, None);
        for bad in ["0s", "soon"] {
            let d = diag(&format!("{OK}    timeouts: {{ stream_idle: {bad} }}\n"));
            assert_eq!(d[0].field, "listeners[0].timeouts.stream_idle", "{d:?}");
            assert_eq!(d[0].line, 6, "{d:?}");
        }
        // `request` too: zero would answer every request 504 at once (`off` is no limit).
        let d = diag(&format!("{OK}    timeouts: {{ request: 0ms }}\n"));
        assert_eq!(d[0].field, "listeners[0].timeouts.request", "{d:?}");
        assert_eq!(d[0].message, "must be greater than zero");
    }

    #[test]
    fn filter_errors_name_the_filter() {
        let d = diag(&format!(
            "{OK}    filters: [{{ module: missing.wasm, failure: maybe }}]\n"
        ));
        assert!(d[0].message.contains("failure"), "{d:?}");
        let d = diag(&format!("{OK}    filters: [{{ module: missing.wasm }}]\n"));
        assert_eq!(d[0].field, "listeners[0].filters[0].module");
        assert!(d[0].message.contains("cannot read WASM module"), "{d:?}");
    }

    #[test]
    fn filter_config_mapping_becomes_json() {
        let dir = tempfile::tempdir().expect("tempdir");
        let m = dir.path().join("f.wasm");
        std::fs::write(&m, b"\0asm").expect("write");
        let src = format!(
            "{OK}    filters:\n      - module: {}\n        config: {{ a: [1, x] }}\n      - module: {}\n        name: two\n        config: plain\n        failure: open\nclusters:\n  - {{ name: authz, address: 127.0.0.1:9100 }}\n",
            m.display(),
            m.display()
        );
        let c = parse(&src).expect("valid");
        let f = &c.listeners[0].filters;
        assert_eq!(f[0].name, "f");
        assert_eq!(f[0].config, br#"{"a":[1,"x"]}"#);
        assert_eq!(f[1].config, b"plain");
        assert_eq!(f[1].failure, FailurePolicy::Open);
        assert_eq!(c.clusters[0].name, "authz");
    }

    #[test]
    fn kafka_listeners() {
        let k = "listeners:\n  - name: k\n    address: 127.0.0.1:9092\n    protocol: kafka\n    upstream: broker:9092\n";
        let c = parse(k).expect("valid");
        assert_eq!(c.listeners[0].protocol, Protocol::Kafka);
        assert_eq!(c.listeners[0].kafka, KafkaConfig::default());
        assert_eq!(c.listeners[0].kafka.max_frame_bytes, 100 << 20);
        let c = parse(&format!(
            "{k}    kafka: {{ max_frame_bytes: 1048576, advertised_address: \"[::1]:19092\" }}\n"
        ))
        .expect("valid");
        let kc = &c.listeners[0].kafka;
        assert_eq!(kc.max_frame_bytes, 1 << 20);
        assert_eq!(
            kc.advertised_address,
            Some(AdvertisedAddress {
                host: "::1".into(),
                port: 19092
            })
        );
        // Errors, each at its field's position.
        let d = diag(&format!("{k}    kafka: {{ max_frame_bytes: 10 }}\n"));
        assert_eq!(d[0].field, "listeners[0].kafka.max_frame_bytes");
        assert_eq!((d[0].line, d[0].column), (6, 31), "{}", d[0]);
        assert!(d[0].message.contains("between 1024 and"), "{}", d[0]);
        let d = diag(&format!("{k}    kafka: {{ advertised_address: nope }}\n"));
        assert_eq!(d[0].field, "listeners[0].kafka.advertised_address");
        let d = diag(&format!("{OK}    kafka: {{ max_frame_bytes: 2048 }}\n"));
        assert_eq!(
            d[0].to_string(),
            "strait.yaml:6:5: listeners[0].kafka: only applies to `protocol: kafka`"
        );
        // Filters judge Kafka requests too (`strait_on_kafka_request`), never plain TCP.
        let tcp = k.replace("protocol: kafka", "protocol: tcp");
        let d = diag(&format!(
            "{tcp}    filters: [{{ module: builtin:http-policy }}]\n"
        ));
        assert_eq!(d[0].field, "listeners[0].filters");
        assert!(d[0].message.contains("`protocol: kafka` listeners only"));
        let c = parse(&format!(
            "{k}    filters: [{{ module: builtin:kafka-policy, config: {{ sets: [] }} }}]\n"
        ))
        .expect("valid");
        assert_eq!(c.listeners[0].filters[0].name, "kafka-policy");
        let d = diag(&format!(
            "{tcp}    policy: {{ client_labels: {{app: a}}, server_labels: {{app: b}} }}\n"
        ));
        assert!(d.iter().any(|d| d
            .message
            .contains("`protocol: http` and `protocol: kafka` listeners")));
        let d = diag(&format!(
            "{k}    upstream_protocol: http2\n    max_header_bytes: 2048\n    http1_engine: hyper\n"
        ));
        let fields: Vec<_> = d.iter().map(|d| d.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "listeners[0].http1_engine",
                "listeners[0].upstream_protocol",
                "listeners[0].max_header_bytes"
            ]
        );
        let d = diag(&k.replace("    upstream: broker:9092\n", ""));
        assert_eq!(d[0].field, "listeners[0].upstream");
        let t = k.replace("    upstream: broker:9092\n", "    transparent: true\n");
        assert!(parse(&t).is_ok());
        let d = diag(&format!("{t}    kafka: {{ advertised_address: a:1 }}\n"));
        assert_eq!(d[0].field, "listeners[0].kafka.advertised_address");
        assert!(d[0].message.contains("transparent"), "{}", d[0]);
    }

    /// A transparent Kafka listener enforces the policies' kafka rules, also when it is the
    /// only listener that does (no transparent HTTP listener, no `policy:`): the datapath
    /// redirects Kafka ports to it, so without the filter those requests would go unjudged.
    #[test]
    fn transparent_kafka_listener_alone_gets_the_policy_filter() {
        let dir = std::env::temp_dir().join(format!("strait-cfg-kafka-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let policy = dir.join("kafka.yaml");
        std::fs::write(
            &policy,
            "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: kafka-in}\n\
             spec:\n  endpointSelector: {matchLabels: {app: kafka}}\n  ingress:\n\
             \x20   - fromEndpoints: [{matchLabels: {app: client}}]\n      toPorts:\n\
             \x20       - ports: [{port: \"9092\", protocol: TCP}]\n          rules:\n\
             \x20           kafka: [{role: produce, topic: orders}]\n",
        )
        .expect("policy file");
        let listener = |proto: &str| {
            format!("  - name: {proto}\n    address: 127.0.0.1:0\n    protocol: {proto}\n    transparent: true\n")
        };
        let endpoints = "endpoints:\n  - name: c\n    interface: lxc-c\n    addresses: [10.200.0.2]\n    labels: {app: client}\n  - name: k\n    interface: lxc-k\n    addresses: [10.200.0.3]\n    labels: {app: kafka}\n";
        let src = |listeners: &str| {
            format!(
                "listeners:\n{listeners}{endpoints}policies: [\"{}\"]\n",
                policy.display()
            )
        };
        for listeners in [listener("kafka"), listener("kafka") + &listener("http")] {
            let c = parse(&src(&listeners)).expect("valid");
            let k = &c.listeners[0];
            assert_eq!(k.protocol, Protocol::Kafka);
            assert_eq!(k.filters.len(), 1, "{listeners}: {:?}", k.filters);
            assert_eq!(
                k.filters[0].name,
                crate::policy::l7::KAFKA_POLICY_FILTER,
                "{listeners}"
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("1024"), Ok(1024));
        assert!(parse_size("12 parsecs").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("s").is_err());
    }
}
