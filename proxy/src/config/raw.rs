//! The YAML schema as written by operators. Everything here is untrusted; `validate` turns it
//! into the immutable [`super::Config`].

use serde::Deserialize;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub admin: Option<RawAdmin>,
    #[serde(default)]
    pub runtime: RawRuntime,
    #[serde(default)]
    pub flows: RawFlows,
    #[serde(default)]
    pub listeners: Vec<RawListener>,
    #[serde(default)]
    pub clusters: Vec<RawCluster>,
    #[serde(default)]
    pub wasm: RawWasm,
    #[serde(default)]
    pub endpoints: Vec<RawEndpoint>,
    /// CiliumNetworkPolicy / CiliumClusterwideNetworkPolicy files.
    #[serde(default)]
    pub policies: Vec<String>,
    pub datapath: Option<RawDatapath>,
    pub sockmap: Option<RawSockmap>,
}

/// A local workload: a host-side veth and the addresses behind it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEndpoint {
    pub name: String,
    pub interface: String,
    pub addresses: Vec<String>,
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// Network namespace `strait lab` creates for it (default `strait-<name>`).
    pub netns: Option<String>,
    /// Let sockmap splice this endpoint's own sockets (default true when `sockmap` is on).
    pub splice: Option<bool>,
}

/// The eBPF datapath.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawDatapath {
    /// Attach the tc programs (default true when `endpoints` are configured).
    pub enabled: Option<bool>,
    /// bpffs directory for pinned maps and links (default /sys/fs/bpf/strait).
    pub pin_dir: Option<String>,
    /// What `strait run` leaves behind when it exits: `keep` (default: policy stays enforced
    /// from pinned programs and maps) or `detach`.
    pub on_exit: Option<RawOnExit>,
    /// How packets allowed between two local endpoints reach the destination: `bpf` (default:
    /// straight to its interface) or `kernel` (the host's IP forwarding and netfilter).
    pub host_routing: Option<RawHostRouting>,
    /// Interfaces where traffic from other nodes arrives: connections from there to a local
    /// endpoint are redirected to strait's L7 listeners when policy says so.
    #[serde(default)]
    pub uplinks: Vec<String>,
}

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub enum RawHostRouting {
    Bpf,
    Kernel,
}

/// Socket-layer acceleration (sock_ops + sk_msg).
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawSockmap {
    /// Attach the socket-layer programs (default false).
    pub enabled: Option<bool>,
    /// cgroup v2 directory to attach sock_ops to (default: the cgroup v2 root).
    pub cgroup: Option<String>,
    /// Capacity of the socket hash (default 65536 sockets).
    pub max_sockets: Option<u32>,
    /// Backpressure: bytes a spliced send may leave unread in the peer's queue before that
    /// direction's sends take TCP until the reader catches up (default 8MiB; 0: no limit).
    pub max_queued: Option<RawSize>,
    /// Adaptive splicing: leave the connections of services whose connections are short on
    /// TCP (docs/sockmap.md).
    pub adaptive: Option<RawAdaptive>,
}

/// A size: a number of bytes, or text with a unit (`4MiB`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawSize {
    Bytes(u64),
    Text(String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdaptive {
    /// Default true.
    pub enabled: Option<bool>,
    /// A connection carrying at most this many messages, both directions, is short (default 4).
    pub short_messages: Option<u32>,
    /// After this many short connections in a row to a service, new ones are not spliced
    /// (default 8).
    pub streak: Option<u32>,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RawOnExit {
    Keep,
    Detach,
}

/// A named destination for filters' `http_call` / `grpc_call`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCluster {
    pub name: String,
    pub address: String,
    pub tls: Option<RawUpstreamTls>,
    pub protocol: Option<RawUpstreamProtocol>,
    pub connect_timeout: Option<String>,
}

/// Settings of the WASM filter runtime.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawWasm {
    pub callback_deadline: Option<String>,
    pub memory_limit: Option<String>,
    pub max_vms: Option<u32>,
    pub reload: Option<bool>,
    pub done_timeout: Option<String>,
    pub artifact_dir: Option<String>,
}

/// One filter of a listener's chain.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFilter {
    pub name: Option<String>,
    pub module: String,
    pub config: Option<serde_yaml::Value>,
    pub vm_config: Option<serde_yaml::Value>,
    pub failure: Option<RawFailure>,
    pub root_id: Option<String>,
    pub vm_id: Option<String>,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RawFailure {
    Closed,
    Open,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    pub address: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawRuntime {
    pub workers: Option<usize>,
    pub shutdown_grace: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawFlows {
    pub sink: Option<RawSink>,
    pub path: Option<String>,
    pub buffer: Option<usize>,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RawSink {
    Stdout,
    File,
    None,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawListener {
    pub name: String,
    pub address: String,
    pub protocol: RawProtocol,
    pub tls: Option<RawTls>,
    /// Required unless `transparent`.
    pub upstream: Option<String>,
    /// Accept connections redirected by the datapath (IP_TRANSPARENT); the upstream is each
    /// connection's original destination.
    pub transparent: Option<bool>,
    /// Transparent listeners: connect upstream from the client's address (`client`, default)
    /// or from the node's (`node`).
    pub source_address: Option<RawSourceAddress>,
    pub upstream_tls: Option<RawUpstreamTls>,
    pub upstream_protocol: Option<RawUpstreamProtocol>,
    pub http1_engine: Option<RawHttp1Engine>,
    #[serde(default)]
    pub timeouts: RawTimeouts,
    pub max_header_bytes: Option<usize>,
    #[serde(default)]
    pub filters: Vec<RawFilter>,
    /// `protocol: kafka` settings.
    pub kafka: Option<RawKafka>,
    /// L7 policy from the `policies:` files for this listener's traffic.
    pub policy: Option<RawListenerPolicy>,
}

/// How an explicit listener's traffic is identified for CiliumNetworkPolicy rules.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawListenerPolicy {
    /// Labels assumed for every client of the listener.
    #[serde(default)]
    pub client_labels: std::collections::BTreeMap<String, String>,
    /// Labels of the upstream.
    #[serde(default)]
    pub server_labels: std::collections::BTreeMap<String, String>,
    /// Only these policies (by `metadata.name`); default every policy of `policies:`.
    #[serde(default)]
    pub names: Vec<String>,
}

/// Settings of a `protocol: kafka` listener.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawKafka {
    /// Largest request or response frame (default 100 MiB, Kafka's `socket.request.max.bytes`).
    pub max_frame_bytes: Option<usize>,
    /// `host:port` put in place of every broker address the upstream advertises (default: the
    /// address the client connected to).
    pub advertised_address: Option<String>,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RawSourceAddress {
    Client,
    Node,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RawProtocol {
    Http,
    Tcp,
    Kafka,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RawUpstreamProtocol {
    Auto,
    Http1,
    Http2,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RawHttp1Engine {
    Native,
    Hyper,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub cert: String,
    pub key: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawUpstreamTls {
    pub sni: Option<String>,
    pub ca: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawTimeouts {
    pub header_read: Option<String>,
    pub idle: Option<String>,
    pub stream_idle: Option<String>,
    pub connect: Option<String>,
    pub request: Option<String>,
}
