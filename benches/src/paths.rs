//! `strait-bench paths`: what each network path costs between two same-node endpoints.
//!
//! A client and a server network namespace joined to the host by veth pairs (`strait::lab`),
//! routed through the host like pods on a node. Each [`Mode`] is one way the traffic may go:
//!
//! - `veth`: nothing attached;
//! - `datapath`: strait running with its tc programs on both veths and a policy that allows
//!   client → server at L4 (identity, policy and conntrack lookups on every packet);
//! - `proxy`: the same, but the HTTP port has L7 rules, so the datapath redirects those
//!   connections to strait's transparent HTTP listener (two TCP connections, hyper in between);
//! - `sockmap`: strait with only its socket-layer programs (`sockmap.enabled: true`, datapath
//!   off): sk_msg moves every send of an endpoint socket into the peer endpoint's socket;
//! - `datapath+sockmap`, `proxy+sockmap`: those modes with sockmap on as well;
//! - `sockmap-always`: `sockmap` with strait's adaptive rule off (every connection spliced).
//!
//! The client and the server are this binary again (`paths-client`, `paths-server`, hidden
//! subcommands) run with `ip netns exec`. Modes are interleaved run by run (the order rotates
//! every repeat); each run of a workload is one client process. See benches/README.md.

use std::fmt::Write as _;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread::{self, sleep};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};
use strait::lab::{self, Lab, LabEndpoint};

use crate::filters::{metric_value, stats};
use crate::peers;
use crate::procs::{self, Service, TempDir};
use crate::report::Verdict;
use crate::report::{self, median, Machine};

const NS_CLIENT: &str = "sb-cli";
const NS_SERVER: &str = "sb-srv";
const IF_CLIENT: &str = "sbcli0";
const IF_SERVER: &str = "sbsrv0";
const CLIENT_ADDR: Ipv4Addr = Ipv4Addr::new(10, 222, 0, 2);
const SERVER_ADDR: Ipv4Addr = Ipv4Addr::new(10, 222, 0, 3);
const PIN_DIR: &str = "/sys/fs/bpf/strait-bench";
/// strait's policy route (`ip rule … lookup 2004`), shared by every strait datapath on a host.
const POLICY_TABLE: &str = "lookup 2004";
/// Name of the transparent listener in the generated config (and its metrics label).
const L7_LISTENER: &str = "l7";
/// Largest message size accepted (the client and server hold one message in memory).
const MAX_SIZE: usize = 64 << 20;

/// Set by SIGINT/SIGTERM: the harness stops at the next check and its guards clean up.
pub(crate) static INTERRUPTED: AtomicBool = AtomicBool::new(false);

// ---------------------------------------------------------------------------------------------
// Modes and workloads

/// A network path between the two endpoints. This enum is the one place that defines what a
/// mode runs: its strait setup in [`Mode::strait`], its workloads in [`Mode::runs`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Plain veth through the host: nothing attached.
    Veth,
    /// strait's tc programs attached, L4 allow policy (no L7 rules).
    Datapath,
    /// L7 rules on the HTTP port: connections redirected to strait's transparent listener.
    Proxy,
    /// Socket-layer splicing only (`sockmap.enabled: true`, `datapath.enabled: false`): sk_msg
    /// moves each send straight into the peer endpoint's socket.
    Sockmap,
    /// `datapath` plus sockmap: the tc programs see only handshakes and FINs, sk_msg checks the
    /// same policy before splicing.
    #[value(name = "datapath+sockmap")]
    #[serde(rename = "datapath+sockmap")]
    DatapathSockmap,
    /// `proxy` plus sockmap: the client<->strait and strait<->server legs are spliced, strait
    /// still parses every request.
    #[value(name = "proxy+sockmap")]
    #[serde(rename = "proxy+sockmap")]
    ProxySockmap,
    /// `sockmap` with the adaptive rule off (`sockmap.adaptive.enabled: false`): every eligible
    /// connection is spliced, short ones included. Runs beside `sockmap` to measure the rule.
    #[value(name = "sockmap-always")]
    #[serde(rename = "sockmap-always")]
    SockmapAlways,
}

/// How strait runs for a mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StraitSetup {
    /// The tc datapath is attached (with the L4 policy).
    datapath: bool,
    /// The HTTP port carries `rules: {http: …}`, i.e. is redirected to the listener.
    l7_http: bool,
    /// `sockmap.enabled: true`.
    sockmap: bool,
    /// The adaptive rule is forced off whatever `--sockmap-adaptive` says.
    always_splice: bool,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Veth => "veth",
            Mode::Datapath => "datapath",
            Mode::Proxy => "proxy",
            Mode::Sockmap => "sockmap",
            Mode::DatapathSockmap => "datapath+sockmap",
            Mode::ProxySockmap => "proxy+sockmap",
            Mode::SockmapAlways => "sockmap-always",
        }
    }

    /// `None`: no strait process in this mode.
    fn strait(self) -> Option<StraitSetup> {
        let s = |datapath, l7_http, sockmap| {
            Some(StraitSetup {
                datapath,
                l7_http,
                sockmap,
                always_splice: false,
            })
        };
        match self {
            Mode::Veth => None,
            Mode::Datapath => s(true, false, false),
            Mode::Proxy => s(true, true, false),
            Mode::Sockmap => s(false, false, true),
            Mode::DatapathSockmap => s(true, false, true),
            Mode::ProxySockmap => s(true, true, true),
            Mode::SockmapAlways => Some(StraitSetup {
                always_splice: true,
                ..s(false, false, true)?
            }),
        }
    }

    /// strait terminates the client's connections (and, closing first, leaves TIME_WAIT
    /// sockets with the client's tuples in the host netns).
    fn terminates(self) -> bool {
        self.strait().is_some_and(|s| s.l7_http)
    }

    /// Sends are spliced by sk_msg (the client's leg at least).
    fn spliced(self) -> bool {
        self.strait().is_some_and(|s| s.sockmap)
    }

    /// The tc programs see this mode's packets.
    fn tc(self) -> bool {
        self.strait().is_some_and(|s| s.datapath)
    }

    /// Whether `w` means anything in this mode. Raw TCP in `proxy` mode would take exactly the
    /// `datapath` path: the policy compiler redirects only ports with `rules.http` (there is no
    /// L7 rule kind that maps to a `protocol: tcp` transparent listener), so it is not run.
    fn runs(self, w: Workload) -> bool {
        match self {
            Mode::Veth
            | Mode::Datapath
            | Mode::Sockmap
            | Mode::DatapathSockmap
            | Mode::SockmapAlways => true,
            Mode::Proxy | Mode::ProxySockmap => w.is_http(),
        }
    }
}

/// CPU placement of the client, the server and strait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CpuPin {
    /// All on the last allowed CPU (`taskset`): no cross-CPU wake-ups, so latency and
    /// throughput measure the CPU work of the path.
    One,
    /// No pinning: the scheduler spreads them (includes idle-CPU wake-up latency).
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// One connection, ping-pong: the client writes N bytes, the server echoes N bytes.
    TcpRr,
    /// One keep-alive HTTP/1.1 connection: `GET /N`, the response body has N bytes.
    HttpRr,
    /// Bulk: the client writes for the duration, the server discards; 1..K parallel flows.
    TcpStream,
    /// Connection setup: connect, 1 byte each way, the server closes; one at a time.
    TcpCrr,
    /// A new connection per HTTP/1.1 request (1-byte body), closed by the client.
    HttpCrr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Rr,
    Stream,
    Crr,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::TcpRr => "tcp-rr",
            Workload::HttpRr => "http-rr",
            Workload::TcpStream => "tcp-stream",
            Workload::TcpCrr => "tcp-crr",
            Workload::HttpCrr => "http-crr",
        }
    }

    fn kind(self) -> Kind {
        match self {
            Workload::TcpRr | Workload::HttpRr => Kind::Rr,
            Workload::TcpStream => Kind::Stream,
            Workload::TcpCrr | Workload::HttpCrr => Kind::Crr,
        }
    }

    fn is_http(self) -> bool {
        matches!(self, Workload::HttpRr | Workload::HttpCrr)
    }

    /// Server port of this workload relative to `--port`.
    fn port_offset(self) -> u16 {
        match self {
            Workload::TcpRr | Workload::TcpStream => 0,
            Workload::HttpRr | Workload::HttpCrr => 1,
            Workload::TcpCrr => 2,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Workload::TcpRr => {
                "TCP request/response on one connection (TCP_NODELAY): the client writes N \
                 bytes, the server reads all N and writes N back; latency per round trip"
            }
            Workload::HttpRr => {
                "HTTP/1.1 keep-alive on one connection: `GET /N`, response body N bytes \
                 (Content-Length); latency per request"
            }
            Workload::TcpStream => {
                "bulk TCP: each flow writes fixed-size chunks (`--stream-write`, default 128 KiB) \
                 for the duration, the server discards \
                 and acknowledges the byte count at the end; aggregate throughput"
            }
            Workload::TcpCrr => {
                "connection setup: connect, 1 byte each way, the server closes first; one \
                 connection at a time; latency per connection"
            }
            Workload::HttpCrr => {
                "a new connection per HTTP/1.1 request (1-byte body), closed by the client once \
                 the response is in; one at a time; latency per connection"
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Command-line arguments

#[derive(Debug, Clone, Args, Serialize, Deserialize)]
pub struct PathsArgs {
    /// Modes (network paths) to compare, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "veth,datapath,proxy")]
    pub modes: Vec<Mode>,
    /// Workloads, comma separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "tcp-rr,http-rr,tcp-stream,tcp-crr,http-crr"
    )]
    pub workloads: Vec<Workload>,
    /// Message sizes of the request/response workloads (suffixes K and M = KiB, MiB).
    #[arg(long, value_delimiter = ',', value_parser = parse_size, default_value = "1,64,1K,16K,64K,1M")]
    pub sizes: Vec<usize>,
    /// Parallel flows of tcp-stream, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1,8,64")]
    pub flows: Vec<usize>,
    /// Bytes per write of tcp-stream (suffixes K and M).
    #[arg(long, value_parser = parse_size, default_value = "128K")]
    #[serde(default = "default_stream_write")]
    pub stream_write: usize,
    /// strait's adaptive splicing rule in the sockmap modes (`sockmap.adaptive.enabled`):
    /// `false` splices every eligible connection, as before the rule existed (sessions
    /// recorded before it read as `false`).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    #[serde(default)]
    pub sockmap_adaptive: bool,
    /// strait's `sockmap.max_queued` in the sockmap modes (e.g. `16MiB`, `0` for no limit);
    /// unset: strait's default (8 MiB).
    #[arg(long)]
    #[serde(default)]
    pub sockmap_max_queued: Option<String>,
    /// Do not measure: print the report of an earlier session's JSON and write its charts
    /// again next to it (e.g. after a change to the report or the charts).
    #[arg(long, value_name = "JSON")]
    #[serde(skip)]
    pub report: Option<PathBuf>,
    /// Runs per (mode, workload); modes are interleaved run by run.
    #[arg(long, default_value_t = 5)]
    pub repeats: usize,
    /// Measured seconds per message size (request/response workloads).
    #[arg(long, default_value_t = 1.0)]
    pub rr_secs: f64,
    /// Measured seconds per flow count (tcp-stream).
    #[arg(long, default_value_t = 1.0)]
    pub stream_secs: f64,
    /// Measured seconds of the connection-setup workloads.
    #[arg(long, default_value_t = 1.0)]
    pub crr_secs: f64,
    /// Unmeasured warm-up before each measurement (same connection for request/response).
    #[arg(long, default_value_t = 0.1)]
    pub warmup_secs: f64,
    /// CPU placement of client, server and strait.
    #[arg(long, value_enum, default_value = "one")]
    pub pin: CpuPin,
    /// First of the three server ports (stream, HTTP, connection setup).
    #[arg(long, default_value_t = 7700)]
    pub port: u16,
    /// strait binary [default: `strait` next to this executable].
    #[arg(long)]
    pub strait: Option<PathBuf>,
    /// Before each client run, wait while machine-wide CPU use is above this % (other work on
    /// the machine ruins the numbers).
    #[arg(long, default_value_t = 10.0)]
    #[serde(default)]
    pub idle_threshold: f64,
    /// Longest wait for the machine to go idle before each client run, seconds (then run
    /// anyway; the JSON records the busy % seen).
    #[arg(long, default_value_t = 120)]
    #[serde(default)]
    pub idle_wait: u64,
    /// Run even though a policy route (`lookup 2004`) exists already: another strait datapath
    /// is on this host, and stopping ours removes that shared route.
    #[arg(long)]
    pub ignore_existing_route: bool,
    /// JSON output path [default: benches/results/paths-<date>.json]; the SVGs go next to it.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Keep the temp dir with the generated configs and logs.
    #[arg(long)]
    pub keep_tmp: bool,
}

/// `paths-server`: runs inside the server netns.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Stream port; HTTP is port+1, connection setup port+2.
    #[arg(long)]
    pub port: u16,
}

/// `paths-client`: runs inside the client netns, prints one JSON [`Sample`] per line.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    #[arg(long, value_enum)]
    pub workload: Workload,
    #[arg(long)]
    pub server: SocketAddr,
    #[arg(long, value_delimiter = ',', value_parser = parse_size, default_value = "1")]
    pub sizes: Vec<usize>,
    #[arg(long, value_delimiter = ',', default_value = "1")]
    pub flows: Vec<usize>,
    #[arg(long, value_parser = parse_size, default_value = "128K")]
    pub stream_write: usize,
    #[arg(long)]
    pub secs: f64,
    #[arg(long, default_value_t = 0.0)]
    pub warmup_secs: f64,
    /// Set the netns's `ip_local_port_range` to `LO-HI` first (see [`port_range`]).
    #[arg(long)]
    pub port_range: Option<String>,
}

fn default_stream_write() -> usize {
    128 * 1024
}

pub(crate) fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, 'K' | 'k')) => (&t[..i], 1024),
        Some((i, 'M' | 'm')) => (&t[..i], 1024 * 1024),
        _ => (t, 1),
    };
    let n: usize = num
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a size (e.g. 64, 16K, 1M)"))?;
    let v = n * mult;
    if v == 0 || v > MAX_SIZE {
        return Err(format!("size `{s}` must be between 1 byte and 64M"));
    }
    Ok(v)
}

pub(crate) fn size_label(n: usize) -> String {
    if n >= 1 << 20 && n % (1 << 20) == 0 {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n % (1 << 10) == 0 {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} B")
    }
}

// ---------------------------------------------------------------------------------------------
// Results

/// Latency distribution of one measurement, microseconds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Latency {
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub mean_us: f64,
    pub min_us: f64,
    pub max_us: f64,
}

/// One measurement of one client process (one message size or flow count).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sample {
    pub workload: Workload,
    /// Bytes per message: request = response for tcp-rr, response body for http-rr, write
    /// size for tcp-stream, 1 for the connection-setup workloads.
    pub size: usize,
    pub flows: usize,
    /// Measured round trips, requests, connections, or (tcp-stream) writes.
    pub ops: u64,
    /// Operations of the unmeasured warm-up just before (strait's CPU covers them too).
    pub warmup_ops: u64,
    pub secs: f64,
    /// Payload bytes moved: both directions for tcp-rr, response bodies for HTTP, bytes the
    /// server counted for tcp-stream.
    pub bytes: u64,
    pub ops_per_s: f64,
    pub gbit_per_s: f64,
    pub latency: Option<Latency>,
    /// Reads of the client that returned EAGAIN on its blocking socket well before the read
    /// timeout and were retried: the spurious wake-up of a socket in a sockhash
    /// (`tcp_bpf_recvmsg`, see the README); plain TCP never does this.
    #[serde(default)]
    pub eagain_retries: u64,
    /// strait's counters over this sample alone (tcp-stream in modes with strait: the client
    /// runs once per flow count so each count gets its own spliced share). Filled by the parent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strait: Option<StraitCounters>,
}

impl Sample {
    /// The x value of the workload's table and chart: message size, or flows for tcp-stream.
    fn x(&self) -> usize {
        match self.workload.kind() {
            Kind::Stream => self.flows,
            _ => self.size,
        }
    }

    /// Lower bound of the payload bytes moved, both directions, warm-up included.
    fn payload_bytes(&self) -> u64 {
        let n = self.ops + self.warmup_ops;
        match self.workload {
            Workload::TcpRr => 2 * self.size as u64 * n,
            Workload::HttpRr => self.size as u64 * n,
            Workload::TcpStream => self.bytes,
            Workload::TcpCrr => 2 * n,
            Workload::HttpCrr => n,
        }
    }

    /// Sends of the run, both directions, warm-up included (lower bound for tcp-stream: one
    /// per write).
    fn messages(&self) -> u64 {
        let n = self.ops + self.warmup_ops;
        match self.workload.kind() {
            Kind::Stream => n,
            Kind::Rr | Kind::Crr => 2 * n,
        }
    }
}

/// strait's counters over one workload run (deltas).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StraitCounters {
    pub datapath_packets: u64,
    pub datapath_redirected: u64,
    pub datapath_conntrack_created: u64,
    pub datapath_drops: u64,
    /// Requests strait's transparent listener handled.
    pub l7_requests: u64,
    /// `strait_sockmap_*_total` (0 when sockmap is off: the metrics are absent).
    pub sockmap_inserted: u64,
    pub sockmap_insert_failed: u64,
    pub sockmap_redirected_messages: u64,
    pub sockmap_redirected_bytes: u64,
    pub sockmap_misses: u64,
    pub sockmap_fallbacks: u64,
    pub sockmap_policy_refused: u64,
    pub sockmap_passed_messages: u64,
    /// Sends dropped because a policy change denied their spliced connection.
    pub sockmap_policy_denied_messages: u64,
    /// Adaptive rule: connections left on TCP, and closed connections counted short / long.
    pub sockmap_adaptive_bypassed: u64,
    pub sockmap_adaptive_short: u64,
    pub sockmap_adaptive_long: u64,
    /// Backpressure: spliced directions sent through TCP because the reader had
    /// `sockmap.max_queued` bytes unread, and those spliced again once it caught up.
    pub sockmap_backpressure_throttled: u64,
    pub sockmap_backpressure_resumed: u64,
}

/// What crossed the client's host-side veth during one run (deltas of
/// `/sys/class/net/<if>/statistics`): every byte of a connection between the endpoints does,
/// unless sk_msg spliced it. Proof of the path that does not depend on strait's counters.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WireCounters {
    /// Client veth, both directions (client -> host, host -> client).
    pub client_packets: u64,
    pub client_bytes: u64,
    /// Server veth, both directions (in proxy modes: strait's upstream leg).
    pub server_packets: u64,
    pub server_bytes: u64,
}

/// One run of one workload in one mode: one client process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub mode: Mode,
    pub workload: Workload,
    pub repeat: usize,
    /// Position in the session (0-based).
    pub seq: usize,
    pub error: Option<String>,
    /// Datapath checks that failed but do not invalidate the run (e.g. drops).
    pub warnings: Vec<String>,
    pub samples: Vec<Sample>,
    pub strait: Option<StraitCounters>,
    pub wire: Option<WireCounters>,
    /// Lower bound of the payload bytes the run moved, both directions, warm-up included
    /// (HTTP requests not counted); what the path checks compare against.
    #[serde(default)]
    pub payload_bytes: u64,
    /// Messages the run sent, both directions, warm-up included (round trips × 2, or
    /// connections × 2): what sk_msg must have redirected in a spliced mode.
    #[serde(default)]
    pub messages: u64,
    /// CPU seconds strait (all its threads) used during this run.
    pub strait_cpu_s: Option<f64>,
    pub loadavg_before: String,
    /// Machine-wide busy % (all CPUs) in the 300 ms before the run, after any wait.
    pub busy_pct_before: Option<f64>,
    #[serde(default)]
    pub waited_for_idle_s: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SummaryRow {
    pub workload: Workload,
    pub mode: Mode,
    /// Message size, or flows for tcp-stream.
    pub x: usize,
    pub runs_ok: usize,
    pub runs_failed: usize,
    pub p50_us_median: Option<f64>,
    pub p50_us_min: Option<f64>,
    pub p50_us_max: Option<f64>,
    pub p99_us_median: Option<f64>,
    pub p99_us_min: Option<f64>,
    pub p99_us_max: Option<f64>,
    pub ops_per_s_median: Option<f64>,
    pub ops_per_s_min: Option<f64>,
    pub ops_per_s_max: Option<f64>,
    pub gbit_per_s_median: Option<f64>,
    pub gbit_per_s_min: Option<f64>,
    pub gbit_per_s_max: Option<f64>,
    /// This mode's median p50 / veth's.
    pub p50_vs_veth: Option<f64>,
    pub p99_vs_veth: Option<f64>,
    /// Median ops/s (Gbit/s for tcp-stream) / veth's.
    pub throughput_vs_veth: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Document {
    pub date: String,
    pub tool: String,
    pub command: String,
    pub machine: Machine,
    pub strait: Option<String>,
    pub settings: PathsArgs,
    pub topology: String,
    pub workloads: Vec<(Workload, String)>,
    pub verdicts: Vec<Verdict>,
    pub summary: Vec<SummaryRow>,
    pub runs: Vec<RunRecord>,
    pub wall_s: f64,
    pub cleanup: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// Harness

struct Ctx {
    args: PathsArgs,
    tmp: PathBuf,
    /// Private copy of this executable, re-run as client and server.
    exe: PathBuf,
    strait_bin: Option<PathBuf>,
    admin_port: u16,
    /// `taskset -c` list for client, server and strait.
    cpus: Option<String>,
    clk_tck: u64,
}

/// Runs `strait::datapath::unload` on drop if strait left its pins behind (it was killed).
struct PinGuard;

impl Drop for PinGuard {
    fn drop(&mut self) {
        remove_stale_pins();
    }
}

fn remove_stale_pins() {
    remove_pins(PIN_DIR);
}

/// `strait::datapath::unload` of `dir` if strait left pins there (it was killed, or spliced
/// sockets were still open when it stopped).
pub(crate) fn remove_pins(dir: &str) {
    if Path::new(dir).exists() {
        match strait::datapath::unload(Path::new(dir), std::time::Duration::from_secs(2)) {
            Ok(lines) => {
                eprintln!("  removed leftover pins under {dir}");
                for l in lines.iter().filter(|l| l.starts_with("kept")) {
                    eprintln!("warning: {l}");
                }
            }
            Err(e) => eprintln!("warning: removing {dir}: {e}"),
        }
    }
}

pub fn run(args: PathsArgs) -> Result<()> {
    if let Some(p) = &args.report {
        return report_from(p);
    }
    validate(&args)?;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("strait-bench paths needs root (network namespaces, veths, eBPF)");
    }
    install_signal_handlers();
    let started = Instant::now();
    let mut modes = args.modes.clone();
    modes.dedup();
    let mut workloads = args.workloads.clone();
    workloads.dedup();

    let needs_strait = modes.iter().any(|m| m.strait().is_some());
    let strait_src = if needs_strait {
        Some(resolve_strait(args.strait.as_deref())?)
    } else {
        None
    };
    let route_before = policy_route_present();
    if needs_strait && route_before && !args.ignore_existing_route {
        bail!(
            "a strait policy route (`ip rule … {POLICY_TABLE}`) exists already: another strait \
             datapath is running on this host, and stopping ours would remove that shared route. \
             Stop it first or pass --ignore-existing-route"
        );
    }
    remove_stale_pins();

    let tmp = TempDir::new("strait-bench-paths", args.keep_tmp)?;
    // Private copies: a rebuild during the session cannot mix versions.
    let exe_src = std::env::current_exe().context("locating this executable")?;
    let exe = tmp.path().join("strait-bench");
    fs::copy(&exe_src, &exe).with_context(|| format!("copying {}", exe_src.display()))?;
    let strait_bin = match &strait_src {
        Some(src) => {
            let dst = tmp.path().join("strait");
            fs::copy(src, &dst).with_context(|| format!("copying {}", src.display()))?;
            Some(dst)
        }
        None => None,
    };
    let ports = free_ports(2)?;
    let ctx = Ctx {
        args: args.clone(),
        tmp: tmp.path().to_path_buf(),
        exe,
        strait_bin,
        admin_port: ports[0],
        cpus: match args.pin {
            CpuPin::One => Some(last_allowed_cpu()?.to_string()),
            CpuPin::None => None,
        },
        clk_tck: procs::clk_tck(),
    };
    for m in &modes {
        if let Some(setup) = m.strait() {
            write_strait_config(&ctx, *m, setup, ports[1])?;
        }
    }

    let date = peers::today_utc();
    let out_path = report::results_path(args.out.as_ref(), "paths", &date);
    let machine = Machine::collect();
    let strait_version = strait_src.as_deref().map(report::strait_version);
    eprintln!(
        "strait-bench paths: {} ({} cpus), kernel {}",
        machine.cpu_model, machine.cpus, machine.kernel
    );
    if let Some(v) = &strait_version {
        eprintln!("  strait: {v}");
    }
    let (runs, cleanup) = session(&ctx, &modes, &workloads)?;
    drop(tmp);

    let summary = summarize(&runs, &modes, &workloads);
    let verdicts = verdicts(&summary);
    let doc = Document {
        date,
        tool: format!("strait-bench {} paths", env!("CARGO_PKG_VERSION")),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        machine,
        strait: strait_version,
        settings: args.clone(),
        topology: format!(
            "netns {NS_CLIENT} ({CLIENT_ADDR}, host veth {IF_CLIENT}) -> host routing -> netns \
             {NS_SERVER} ({SERVER_ADDR}, host veth {IF_SERVER})"
        ),
        workloads: workloads
            .iter()
            .map(|w| (*w, w.describe().to_string()))
            .collect(),
        verdicts,
        summary,
        runs,
        wall_s: started.elapsed().as_secs_f64(),
        cleanup,
    };
    println!("{}", markdown(&doc));
    report::write_results(&out_path, &doc)?;
    write_charts(&doc, &out_path)
}

/// `--report JSON`: the markdown report of an earlier session, and its charts written again.
/// Summary and verdicts are recomputed from the runs, so report changes apply to old data.
fn report_from(path: &Path) -> Result<()> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut doc: Document =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let mut modes = doc.settings.modes.clone();
    modes.dedup();
    let mut workloads = doc.settings.workloads.clone();
    workloads.dedup();
    doc.summary = summarize(&doc.runs, &modes, &workloads);
    doc.verdicts = verdicts(&doc.summary);
    println!("{}", markdown(&doc));
    write_charts(&doc, path)
}

/// One SVG per chart next to `out_path` (`<stem>-<workload>.svg`).
fn write_charts(doc: &Document, out_path: &Path) -> Result<()> {
    for (name, svg) in charts(doc) {
        let stem = out_path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("paths");
        let p = out_path.with_file_name(format!("{stem}-{name}.svg"));
        fs::write(&p, svg).with_context(|| format!("writing {}", p.display()))?;
        println!("chart: {}", p.display());
    }
    Ok(())
}

fn validate(a: &PathsArgs) -> Result<()> {
    if a.repeats == 0 || a.modes.is_empty() || a.workloads.is_empty() {
        bail!("--repeats, --modes and --workloads must not be empty/zero");
    }
    for (name, v) in [
        ("--rr-secs", a.rr_secs),
        ("--stream-secs", a.stream_secs),
        ("--crr-secs", a.crr_secs),
    ] {
        if !(v > 0.0 && v <= 600.0) {
            bail!("{name} must be in (0, 600]");
        }
    }
    if !(0.0..=60.0).contains(&a.warmup_secs) {
        bail!("--warmup-secs must be in [0, 60]");
    }
    if a.sizes.is_empty() || a.flows.is_empty() || a.flows.iter().any(|&f| f == 0 || f > 1024) {
        bail!("--sizes must not be empty; --flows must be in 1..=1024");
    }
    if a.port == 0 || a.port > u16::MAX - 2 {
        bail!("--port must leave room for port+2");
    }
    Ok(())
}

pub(crate) fn resolve_strait(p: Option<&Path>) -> Result<PathBuf> {
    let p = match p {
        Some(p) => p.to_path_buf(),
        None => std::env::current_exe()?
            .parent()
            .map(|d| d.join("strait"))
            .ok_or_else(|| anyhow!("this executable has no parent directory"))?,
    };
    if !p.is_file() {
        bail!(
            "strait binary not found at {} (build it with `cargo build --release -p strait`, pass \
             --strait PATH, or run only --modes veth)",
            p.display()
        );
    }
    Ok(fs::canonicalize(&p)?)
}

pub(crate) fn free_ports(n: usize) -> Result<Vec<u16>> {
    // Hold all listeners until every port is chosen so they are distinct.
    let ls: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<io::Result<_>>()
        .context("reserving ports")?;
    Ok(ls
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<io::Result<_>>()?)
}

fn endpoints() -> Vec<LabEndpoint> {
    vec![
        LabEndpoint {
            name: "sb-client".into(),
            interface: IF_CLIENT.into(),
            netns: NS_CLIENT.into(),
            addresses: vec![CLIENT_ADDR.into()],
        },
        LabEndpoint {
            name: "sb-server".into(),
            interface: IF_SERVER.into(),
            netns: NS_SERVER.into(),
            addresses: vec![SERVER_ADDR.into()],
        },
    ]
}

fn config_path(ctx: &Ctx, mode: Mode) -> PathBuf {
    ctx.tmp.join(format!("strait-{}.yaml", mode.name()))
}

/// Writes strait's config and policy for `mode`; returns the config path.
fn write_strait_config(ctx: &Ctx, mode: Mode, setup: StraitSetup, l7_port: u16) -> Result<PathBuf> {
    let p = ctx.args.port;
    let policy = ctx.tmp.join(format!("policy-{}.yaml", mode.name()));
    let http_rules = if setup.l7_http {
        "\n          rules:\n            http:\n              - method: GET"
    } else {
        ""
    };
    fs::write(
        &policy,
        format!(
            "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: \
             strait-bench-paths\nspec:\n  endpointSelector:\n    matchLabels: {{app: \
             sb-server}}\n  ingress:\n    - fromEndpoints:\n        - matchLabels: {{app: \
             sb-client}}\n      toPorts:\n        - ports: [{{port: \"{p}\", protocol: TCP}}, \
             {{port: \"{}\", protocol: TCP}}]\n        - ports: [{{port: \"{}\", protocol: \
             TCP}}]{http_rules}\n",
            p + 2,
            p + 1
        ),
    )?;
    let cfg = config_path(ctx, mode);
    // Without the datapath there is no policy: sockmap splices every endpoint pair.
    let policies = if setup.datapath {
        format!("policies:\n  - \"{}\"\n", policy.display())
    } else {
        String::new()
    };
    let adaptive = ctx.args.sockmap_adaptive && !setup.always_splice;
    let mut sockmap = match (setup.sockmap, adaptive) {
        (true, true) => "sockmap:\n  enabled: true\n",
        (true, false) => "sockmap:\n  enabled: true\n  adaptive: {enabled: false}\n",
        (false, _) => "",
    }
    .to_string();
    if let (true, Some(q)) = (setup.sockmap, &ctx.args.sockmap_max_queued) {
        sockmap.push_str(&format!("  max_queued: {q}\n"));
    }
    fs::write(
        &cfg,
        format!(
            "# strait-bench paths, mode {mode}\nadmin:\n  address: 127.0.0.1:{admin}\nruntime:\n  \
             shutdown_grace: 1s\nflows:\n  sink: none\nlisteners:\n  - name: {L7_LISTENER}\n    \
             address: 127.0.0.1:{l7_port}\n    protocol: http\n    transparent: true\n\
             endpoints:\n  - name: sb-client\n    interface: {IF_CLIENT}\n    netns: \
             {NS_CLIENT}\n    addresses: [{CLIENT_ADDR}]\n    labels: {{app: sb-client}}\n  - \
             name: sb-server\n    interface: {IF_SERVER}\n    netns: {NS_SERVER}\n    \
             addresses: [{SERVER_ADDR}]\n    labels: {{app: sb-server}}\n{policies}datapath:\n  \
             enabled: {datapath}\n  pin_dir: {PIN_DIR}\n  on_exit: detach\n{sockmap}",
            mode = mode.name(),
            admin = ctx.admin_port,
            datapath = setup.datapath,
        ),
    )?;
    Ok(cfg)
}

/// `strait check` of every generated config (needs the lab's interfaces).
fn check_configs(ctx: &Ctx, modes: &[Mode]) -> Result<()> {
    let Some(bin) = &ctx.strait_bin else {
        return Ok(());
    };
    for m in modes.iter().filter(|m| m.strait().is_some()) {
        let cfg = config_path(ctx, *m);
        let out = Command::new(bin)
            .args(["check", "-c"])
            .arg(&cfg)
            .output()
            .context("running strait check")?;
        if !out.status.success() {
            bail!(
                "generated config {} does not load:\n{}{}",
                cfg.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    Ok(())
}

/// The measured part: lab up, server up, every (repeat, mode, workload); everything it started
/// is gone when it returns (also on error: the guards). Returns the runs and cleanup findings.
fn session(
    ctx: &Ctx,
    modes: &[Mode],
    workloads: &[Workload],
) -> Result<(Vec<RunRecord>, Vec<String>)> {
    let route_before = policy_route_present();
    let lab = Lab::up(endpoints()).context("creating the lab namespaces")?;
    eprintln!(
        "  lab: {NS_CLIENT} {CLIENT_ADDR} ({IF_CLIENT}) <-> host <-> {NS_SERVER} {SERVER_ADDR} \
         ({IF_SERVER})"
    );
    let pins = PinGuard;
    check_configs(ctx, modes)?;
    let mut server = Service::spawn(
        "paths-server",
        {
            let mut c = in_netns(ctx, NS_SERVER);
            c.args(["paths-server", "--port", &ctx.args.port.to_string()]);
            c
        },
        &ctx.tmp.join("server.log"),
    )?;
    wait_server(&mut server, ctx.args.port)?;

    let total: usize = modes
        .iter()
        .map(|m| workloads.iter().filter(|w| m.runs(**w)).count())
        .sum::<usize>()
        * ctx.args.repeats;
    eprintln!(
        "  {} repeats × modes {} × workloads {} = {total} client runs",
        ctx.args.repeats,
        modes.iter().map(|m| m.name()).collect::<Vec<_>>().join(","),
        workloads
            .iter()
            .map(|w| w.name())
            .collect::<Vec<_>>()
            .join(",")
    );
    let mut runs = Vec::new();
    let t0 = Instant::now();
    for repeat in 0..ctx.args.repeats {
        // Rotate the order every repeat so no mode always runs first.
        let mut order = modes.to_vec();
        order.rotate_left(repeat % modes.len());
        for mode in order {
            check_interrupted()?;
            let mut strait = match mode.strait() {
                Some(_) => Some(start_strait(ctx, mode)?),
                None => None,
            };
            for &w in workloads.iter().filter(|w| mode.runs(**w)) {
                check_interrupted()?;
                let before = match &strait {
                    Some(_) => Some(read_counters(ctx.admin_port)?),
                    None => None,
                };
                let (busy_pct_before, waited_for_idle_s) = wait_idle(&ctx.args)?;
                // Without strait nothing of ours may be attached: no pins, no strait process.
                let stray = match &strait {
                    None => stray_strait(),
                    Some(_) => None,
                };
                let wire_before = read_wire();
                let cpu_before = strait.as_ref().map(|s| procs::tree_cpu_ticks(s.pid()));
                let loadavg_before = fs::read_to_string("/proc/loadavg")
                    .unwrap_or_default()
                    .trim()
                    .to_string();
                let result = match &strait {
                    // One client per flow count, with strait's counters read around each, so
                    // every flow count gets its own spliced share (backpressure differs by count).
                    Some(_) if w.kind() == Kind::Stream => (|| {
                        let mut all = Vec::new();
                        for &k in &ctx.args.flows {
                            let before = read_counters(ctx.admin_port)?;
                            let mut v = run_client(ctx, w, port_range(mode), &[k])?;
                            let d = read_counters(ctx.admin_port)?.minus(&before);
                            for x in &mut v {
                                x.strait = Some(d.clone());
                            }
                            all.extend(v);
                        }
                        Ok(all)
                    })(),
                    _ => run_client(ctx, w, port_range(mode), &ctx.args.flows),
                };
                let wire = match (wire_before, read_wire()) {
                    (Some(a), Some(b)) => Some(b.minus(&a)),
                    _ => None,
                };
                check_interrupted()?;
                if let Some(s) = strait.as_mut() {
                    s.check_alive()?;
                }
                let strait_cpu_s = match (cpu_before, &strait) {
                    (Some(b), Some(s)) => Some(
                        procs::tree_cpu_ticks(s.pid()).saturating_sub(b) as f64
                            / ctx.clk_tck as f64,
                    ),
                    _ => None,
                };
                let counters = match (&before, &strait) {
                    (Some(b), Some(_)) => Some(read_counters(ctx.admin_port)?.minus(b)),
                    _ => None,
                };
                let mut rec = RunRecord {
                    mode,
                    workload: w,
                    repeat,
                    seq: runs.len(),
                    error: None,
                    warnings: Vec::new(),
                    samples: Vec::new(),
                    strait: counters,
                    wire,
                    payload_bytes: 0,
                    messages: 0,
                    strait_cpu_s,
                    loadavg_before,
                    busy_pct_before,
                    waited_for_idle_s,
                };
                match result {
                    Ok(samples) => {
                        rec.payload_bytes = samples.iter().map(Sample::payload_bytes).sum();
                        rec.messages = samples.iter().map(Sample::messages).sum();
                        rec.samples = samples;
                        check_path(&mut rec);
                        if let Some(e) = stray {
                            rec.error = Some(e);
                        }
                    }
                    Err(e) => rec.error = Some(format!("{e:#}")),
                }
                progress(&rec, runs.len() + 1, total, t0.elapsed());
                runs.push(rec);
            }
            if let Some(mut s) = strait.take() {
                s.stop();
                remove_stale_pins();
            }
        }
    }
    server.stop();
    drop(server);
    drop(pins);
    drop(lab);
    Ok((runs, verify_cleanup(route_before)))
}

fn busy_pct(window: Duration) -> Option<f64> {
    let a = procs::system_ticks()?;
    sleep(window);
    let b = procs::system_ticks()?;
    (b.1 > a.1).then(|| b.0.saturating_sub(a.0) as f64 * 100.0 / (b.1 - a.1) as f64)
}

/// Waits (up to `--idle-wait`) until the machine is idle; returns the last busy % and the wait.
fn wait_idle(a: &PathsArgs) -> Result<(Option<f64>, f64)> {
    let t0 = Instant::now();
    let mut warned = false;
    loop {
        check_interrupted()?;
        let busy = busy_pct(Duration::from_millis(300));
        let waited = t0.elapsed().as_secs_f64();
        match busy {
            Some(b) if b > a.idle_threshold && waited < a.idle_wait as f64 => {
                if !warned {
                    eprintln!("  machine {b:.0}% busy; waiting for it to go idle");
                    warned = true;
                }
                sleep(Duration::from_millis(700));
            }
            _ => {
                if let (Some(b), true) = (busy, waited >= a.idle_wait as f64) {
                    eprintln!("  warning: still {b:.0}% busy after {waited:.0} s; running anyway");
                }
                return Ok((busy, waited));
            }
        }
    }
}

pub(crate) fn check_interrupted() -> Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        bail!("interrupted; cleaning up");
    }
    Ok(())
}

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// SIGINT/SIGTERM set [`INTERRUPTED`] (once; a second one kills as usual): the harness stops at
/// the next check and unwinds through its guards (strait stopped, pins removed, lab down).
pub(crate) fn install_signal_handlers() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed sigaction is valid; the handler only stores to an atomic, which is
        // async-signal-safe; SA_RESETHAND restores the default after the first delivery.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            sa.sa_flags = libc::SA_RESETHAND;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// `prog`, under `taskset -c CPUS` when pinning.
fn pinned(ctx: &Ctx, prog: &str) -> Command {
    match &ctx.cpus {
        Some(cpus) => {
            let mut c = Command::new("taskset");
            c.args(["-c", cpus, prog]);
            c
        }
        None => Command::new(prog),
    }
}

/// This executable inside `netns` (`ip netns exec`), pinned like everything else.
fn in_netns(ctx: &Ctx, netns: &str) -> Command {
    let exe = ctx.exe.display().to_string();
    match &ctx.cpus {
        Some(cpus) => {
            let mut c = Command::new("taskset");
            c.args(["-c", cpus, "ip", "netns", "exec", netns, &exe]);
            c
        }
        None => lab::exec_in(netns, &exe),
    }
}

/// The highest CPU this process may run on.
fn last_allowed_cpu() -> Result<usize> {
    // SAFETY: a zeroed cpu_set_t is a valid (empty) set; sched_getaffinity fills it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: pid 0 = this thread; the size matches `set`.
    let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if r != 0 {
        return Err(io::Error::last_os_error()).context("sched_getaffinity");
    }
    (0..libc::CPU_SETSIZE as usize)
        .rev()
        // SAFETY: `i` is below CPU_SETSIZE.
        .find(|&i| unsafe { libc::CPU_ISSET(i, &set) })
        .ok_or_else(|| anyhow!("no allowed CPU"))
}

/// The kernel sends SIGTERM to the child if the harness dies (survives `ip netns exec`).
pub(crate) fn die_with_parent(cmd: &mut Command) {
    // SAFETY: the closure runs between fork and exec and only calls prctl/getppid, which are
    // async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                return Err(io::Error::last_os_error());
            }
            if libc::getppid() == 1 {
                return Err(io::Error::other("parent exited"));
            }
            Ok(())
        });
    }
}

/// Waits until the server answers on its connection-setup port (from the host, before any
/// policy is attached).
fn wait_server(server: &mut Service, port: u16) -> Result<()> {
    let addr = SocketAddr::from((SERVER_ADDR, port + 2));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        server.check_alive()?;
        if let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            let mut b = [0u8; 1];
            if s.set_read_timeout(Some(Duration::from_secs(2))).is_ok()
                && s.write_all(b"x").is_ok()
                && s.read_exact(&mut b).is_ok()
            {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!("paths-server did not answer on {addr} within 10 s");
        }
        sleep(Duration::from_millis(50));
    }
}

fn start_strait(ctx: &Ctx, mode: Mode) -> Result<Service> {
    let bin = ctx
        .strait_bin
        .as_ref()
        .ok_or_else(|| anyhow!("no strait binary"))?;
    let mut cmd = pinned(ctx, &bin.display().to_string());
    cmd.args(["run", "-c"]).arg(config_path(ctx, mode));
    let mut svc = Service::spawn(
        &format!("strait ({})", mode.name()),
        cmd,
        &ctx.tmp.join(format!("strait-{}.log", mode.name())),
    )?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        svc.check_alive()?;
        check_interrupted()?;
        if let Ok((status, _)) = procs::http1_get_path(ctx.admin_port, "/ready") {
            if status.contains(" 200") {
                return Ok(svc);
            }
        }
        if Instant::now() > deadline {
            bail!("strait ({}) not ready within 30 s", mode.name());
        }
        sleep(Duration::from_millis(20));
    }
}

impl StraitCounters {
    fn minus(&self, b: &StraitCounters) -> StraitCounters {
        StraitCounters {
            datapath_packets: self.datapath_packets.saturating_sub(b.datapath_packets),
            datapath_redirected: self
                .datapath_redirected
                .saturating_sub(b.datapath_redirected),
            datapath_conntrack_created: self
                .datapath_conntrack_created
                .saturating_sub(b.datapath_conntrack_created),
            datapath_drops: self.datapath_drops.saturating_sub(b.datapath_drops),
            l7_requests: self.l7_requests.saturating_sub(b.l7_requests),
            sockmap_inserted: self.sockmap_inserted.saturating_sub(b.sockmap_inserted),
            sockmap_insert_failed: self
                .sockmap_insert_failed
                .saturating_sub(b.sockmap_insert_failed),
            sockmap_redirected_messages: self
                .sockmap_redirected_messages
                .saturating_sub(b.sockmap_redirected_messages),
            sockmap_redirected_bytes: self
                .sockmap_redirected_bytes
                .saturating_sub(b.sockmap_redirected_bytes),
            sockmap_misses: self.sockmap_misses.saturating_sub(b.sockmap_misses),
            sockmap_fallbacks: self.sockmap_fallbacks.saturating_sub(b.sockmap_fallbacks),
            sockmap_policy_refused: self
                .sockmap_policy_refused
                .saturating_sub(b.sockmap_policy_refused),
            sockmap_passed_messages: self
                .sockmap_passed_messages
                .saturating_sub(b.sockmap_passed_messages),
            sockmap_policy_denied_messages: self
                .sockmap_policy_denied_messages
                .saturating_sub(b.sockmap_policy_denied_messages),
            sockmap_adaptive_bypassed: self
                .sockmap_adaptive_bypassed
                .saturating_sub(b.sockmap_adaptive_bypassed),
            sockmap_adaptive_short: self
                .sockmap_adaptive_short
                .saturating_sub(b.sockmap_adaptive_short),
            sockmap_adaptive_long: self
                .sockmap_adaptive_long
                .saturating_sub(b.sockmap_adaptive_long),
            sockmap_backpressure_throttled: self
                .sockmap_backpressure_throttled
                .saturating_sub(b.sockmap_backpressure_throttled),
            sockmap_backpressure_resumed: self
                .sockmap_backpressure_resumed
                .saturating_sub(b.sockmap_backpressure_resumed),
        }
    }
}

fn read_counters(admin: u16) -> Result<StraitCounters> {
    let (status, text) = procs::http1_get_path(admin, "/metrics")?;
    if !status.contains(" 200") {
        bail!("GET /metrics: {status}");
    }
    Ok(parse_counters(&text))
}

fn parse_counters(text: &str) -> StraitCounters {
    let v = |name: &str| metric_value(text, name).unwrap_or(0);
    let sm = |name: &str| v(&format!("strait_sockmap_{name}_total"));
    StraitCounters {
        datapath_packets: v("strait_datapath_packets_total"),
        datapath_redirected: v("strait_datapath_redirected_total"),
        datapath_conntrack_created: v("strait_datapath_conntrack_created_total"),
        datapath_drops: text
            .lines()
            .filter(|l| l.starts_with("strait_datapath_drops_total{"))
            .filter_map(|l| l.rsplit_once(' ')?.1.trim().parse::<f64>().ok())
            .map(|f| f as u64)
            .sum(),
        l7_requests: v(&format!(
            "strait_requests_total{{listener=\"{L7_LISTENER}\"}}"
        )),
        sockmap_inserted: sm("inserted"),
        sockmap_insert_failed: sm("insert_failed"),
        sockmap_redirected_messages: sm("redirected_messages"),
        sockmap_redirected_bytes: sm("redirected_bytes"),
        sockmap_misses: sm("misses"),
        sockmap_fallbacks: sm("fallbacks"),
        sockmap_policy_refused: sm("policy_refused"),
        sockmap_passed_messages: sm("passed_messages"),
        sockmap_policy_denied_messages: sm("policy_denied_messages"),
        sockmap_adaptive_bypassed: sm("adaptive_bypassed"),
        sockmap_adaptive_short: sm("adaptive_short_connections"),
        sockmap_adaptive_long: sm("adaptive_long_connections"),
        sockmap_backpressure_throttled: sm("backpressure_throttled"),
        sockmap_backpressure_resumed: sm("backpressure_resumed"),
    }
}

impl WireCounters {
    fn minus(&self, b: &WireCounters) -> WireCounters {
        WireCounters {
            client_packets: self.client_packets.saturating_sub(b.client_packets),
            client_bytes: self.client_bytes.saturating_sub(b.client_bytes),
            server_packets: self.server_packets.saturating_sub(b.server_packets),
            server_bytes: self.server_bytes.saturating_sub(b.server_bytes),
        }
    }
}

/// Packets and bytes through both host-side veths so far (rx + tx each).
fn read_wire() -> Option<WireCounters> {
    let stat = |ifname: &str, what: &str| -> Option<u64> {
        let rx = fs::read_to_string(format!("/sys/class/net/{ifname}/statistics/rx_{what}"));
        let tx = fs::read_to_string(format!("/sys/class/net/{ifname}/statistics/tx_{what}"));
        Some(rx.ok()?.trim().parse::<u64>().ok()? + tx.ok()?.trim().parse::<u64>().ok()?)
    };
    Some(WireCounters {
        client_packets: stat(IF_CLIENT, "packets")?,
        client_bytes: stat(IF_CLIENT, "bytes")?,
        server_packets: stat(IF_SERVER, "packets")?,
        server_bytes: stat(IF_SERVER, "bytes")?,
    })
}

/// In a mode without strait: anything of ours still attached (pins, a strait process).
fn stray_strait() -> Option<String> {
    if Path::new(PIN_DIR).exists() {
        return Some(format!(
            "{PIN_DIR} exists during a run without strait (datapath or sockmap maps left)"
        ));
    }
    let me = std::process::id();
    let strait: Vec<u32> = procs::process_tree(me)
        .into_iter()
        .filter(|p| {
            fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "strait")
        })
        .collect();
    (!strait.is_empty()).then(|| format!("strait processes alive during a veth run: {strait:?}"))
}

/// Did the traffic take the path the mode claims? Every failed check invalidates the run (it
/// is reported as FAILED and left out of the medians); drops and sockmap fallbacks are
/// warnings.
///
/// - The client's veth: every payload byte crosses it unless sk_msg spliced it. Unspliced
///   modes must show at least one packet per operation (at least the payload for
///   tcp-stream); spliced request/response and stream runs at most 5 % of that (handshakes
///   and FINs only). Connection setup is handshake-dominated: counters only.
/// - strait's counters: the tc programs saw packets (datapath modes); HTTP redirected to the
///   listener in proxy modes and nothing redirected otherwise; in sockmap modes sk_msg
///   redirected at least 95 % of the run's sends and bytes (90 % for connection setup), and no
///   request/response connection missed its peer; no sockmap activity in other modes.
fn check_path(rec: &mut RunRecord) {
    let ops: u64 = rec.samples.iter().map(|s| s.ops + s.warmup_ops).sum();
    let kind = rec.workload.kind();
    let spliced = rec.mode.spliced();
    let mut errors = Vec::new();
    // Backpressure sends part of a stream through TCP by design (the reader was behind): the
    // share spliced is reported, not required.
    let throttled_stream = match &rec.strait {
        Some(c) if spliced && kind == Kind::Stream && c.sockmap_backpressure_throttled > 0 => {
            rec.warnings.push(format!(
                "backpressure: {} throttles, {} resumed; {:.0} % of payload bytes spliced",
                c.sockmap_backpressure_throttled,
                c.sockmap_backpressure_resumed,
                c.sockmap_redirected_bytes as f64 * 100.0 / rec.payload_bytes.max(1) as f64
            ));
            true
        }
        _ => false,
    };
    if let Some(w) = &rec.wire {
        match (spliced, kind) {
            (true, Kind::Stream) if throttled_stream => {}
            (true, Kind::Rr) if w.client_packets > ops / 20 + 50 => errors.push(format!(
                "{} packets crossed the client veth for {ops} round trips: not spliced",
                w.client_packets
            )),
            (true, Kind::Stream) if w.client_bytes > rec.payload_bytes / 20 => {
                errors.push(format!(
                    "{} bytes crossed the client veth for {} payload bytes: not spliced",
                    w.client_bytes, rec.payload_bytes
                ))
            }
            (false, Kind::Rr | Kind::Crr) if w.client_packets < ops => errors.push(format!(
                "only {} packets crossed the client veth for {ops} operations: something \
                 bypassed it",
                w.client_packets
            )),
            (false, Kind::Stream) if w.client_bytes < rec.payload_bytes => errors.push(format!(
                "only {} bytes crossed the client veth for {} payload bytes: something \
                     bypassed it",
                w.client_bytes, rec.payload_bytes
            )),
            _ => {}
        }
    }
    if let Some(c) = rec.strait.clone() {
        if rec.mode.tc() && c.datapath_packets == 0 {
            errors.push("strait's tc programs saw no packets".into());
        }
        if c.datapath_drops > 0 {
            rec.warnings
                .push(format!("datapath dropped {} packets", c.datapath_drops));
        }
        let redirected = rec.mode.terminates() && rec.workload.is_http();
        if redirected {
            if c.datapath_redirected == 0 || c.l7_requests < ops {
                errors.push(format!(
                    "expected the HTTP port redirected to strait: {} packets redirected, {} \
                     requests at the listener for {ops} requests sent",
                    c.datapath_redirected, c.l7_requests
                ));
            }
        } else if c.datapath_redirected > 0 || c.l7_requests > 0 {
            errors.push(format!(
                "unexpected redirect: {} packets, {} listener requests",
                c.datapath_redirected, c.l7_requests
            ));
        }
        // Connection setup with the adaptive rule on: after a streak of short connections
        // the rest of the run stays on TCP by design; each connection must be spliced or
        // bypassed by the rule.
        let crr_bypassed = kind == Kind::Crr && c.sockmap_adaptive_bypassed > 0;
        if spliced && crr_bypassed {
            let conns = ops.max(1) as f64;
            let share = c.sockmap_redirected_messages as f64 / rec.messages.max(1) as f64
                + c.sockmap_adaptive_bypassed as f64 / conns;
            if share < 0.9 {
                errors.push(format!(
                    "sk_msg redirected {} of {} sends and the adaptive rule bypassed {} of \
                     {ops} connections: {:.0} % accounted for (< 90 %)",
                    c.sockmap_redirected_messages,
                    rec.messages,
                    c.sockmap_adaptive_bypassed,
                    share * 100.0
                ));
            }
        } else if spliced && !throttled_stream {
            let pct = if kind == Kind::Crr { 90 } else { 95 };
            if c.sockmap_redirected_messages * 100 < rec.messages * pct {
                errors.push(format!(
                    "sk_msg redirected {} messages of the run's {} sends (< {pct} %; {} misses, \
                     {} passed)",
                    c.sockmap_redirected_messages,
                    rec.messages,
                    c.sockmap_misses,
                    c.sockmap_passed_messages
                ));
            }
            if c.sockmap_redirected_bytes * 100 < rec.payload_bytes * pct {
                errors.push(format!(
                    "sk_msg redirected {} bytes of the run's {} payload bytes (< {pct} %)",
                    c.sockmap_redirected_bytes, rec.payload_bytes
                ));
            }
            if c.sockmap_misses > 0 {
                let m = format!(
                    "{} sockmap misses (first send found no peer socket)",
                    c.sockmap_misses
                );
                if kind == Kind::Rr {
                    errors.push(m);
                } else {
                    rec.warnings.push(m);
                }
            }
            for (n, what) in [
                (c.sockmap_fallbacks, "sockmap fallbacks"),
                (c.sockmap_insert_failed, "sockhash inserts failed"),
                (c.sockmap_policy_refused, "sockmap policy refusals"),
                (
                    c.sockmap_policy_denied_messages,
                    "sends dropped by sockmap policy",
                ),
            ] {
                if n > 0 {
                    rec.warnings.push(format!("{n} {what}"));
                }
            }
        } else if !spliced && (c.sockmap_inserted > 0 || c.sockmap_redirected_messages > 0) {
            errors.push(format!(
                "sockmap active in a mode without it: {} sockets inserted, {} messages \
                 redirected",
                c.sockmap_inserted, c.sockmap_redirected_messages
            ));
        }
    }
    if !errors.is_empty() {
        rec.error = Some(errors.join("; "));
    }
}

/// The client's ephemeral ports for one run, as `LO-HI`: outside the host's ephemeral range
/// (32768-60999), and disjoint between modes where strait terminates connections and the rest.
///
/// Two strait behaviours make reused tuples fail (benches/README.md, "Paths"):
/// - strait's transparent upstream legs bind the client's address with a port from the host's
///   range. When such a port was used by the client itself in an earlier redirected connection
///   to the same server, that connection's conntrack entry (kept after close) sends the
///   server's SYN-ACK for strait's leg on to the client instead of to strait.
/// - TIME_WAIT sockets strait leaves in the host netns (its upstream legs; its downstream
///   sockets when it closes first) hold the client's tuples for 60 s. A forwarded (not
///   redirected) packet on such a tuple gets the TIME_WAIT socket attached by TCP early demux
///   and `ip_forward` drops it; a redirected SYN gets no SYN-ACK because the listener's
///   request socket is refused as a duplicate.
fn port_range(mode: Mode) -> &'static str {
    if mode.terminates() {
        "61000-65535"
    } else {
        "10000-32767"
    }
}

fn run_client(ctx: &Ctx, w: Workload, ports: &str, flows: &[usize]) -> Result<Vec<Sample>> {
    let a = &ctx.args;
    let join = |v: &[usize]| {
        v.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let (secs, expected) = match w.kind() {
        Kind::Rr => (
            a.rr_secs,
            a.sizes.len() as f64 * (a.rr_secs + a.warmup_secs),
        ),
        Kind::Stream => (a.stream_secs, flows.len() as f64 * (a.stream_secs + 0.5)),
        Kind::Crr => (a.crr_secs, a.crr_secs + a.warmup_secs),
    };
    let mut cmd = in_netns(ctx, NS_CLIENT);
    cmd.args([
        "paths-client",
        "--workload",
        w.name(),
        "--server",
        &format!("{SERVER_ADDR}:{}", a.port + w.port_offset()),
        "--sizes",
        &join(&a.sizes),
        "--flows",
        &join(flows),
        "--stream-write",
        &a.stream_write.to_string(),
        "--secs",
        &secs.to_string(),
        "--warmup-secs",
        &a.warmup_secs.to_string(),
        "--port-range",
        ports,
    ]);
    let out_path = ctx.tmp.join("client.stdout");
    let err_path = ctx.tmp.join("client.stderr");
    cmd.env("RUST_BACKTRACE", "0")
        .env("RUST_LIB_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out_path)?)
        .stderr(fs::File::create(&err_path)?);
    die_with_parent(&mut cmd);
    let mut child = cmd.spawn().context("spawning paths-client")?;
    let deadline = Instant::now() + Duration::from_secs_f64(expected + 30.0);
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if INTERRUPTED.load(Ordering::SeqCst) || Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            check_interrupted()?;
            bail!("paths-client {} did not finish in time", w.name());
        }
        sleep(Duration::from_millis(10));
    };
    let stdout = fs::read_to_string(&out_path).unwrap_or_default();
    if !status.success() {
        let err = fs::read_to_string(&err_path).unwrap_or_default();
        bail!(
            "paths-client {} failed ({status}): {}",
            w.name(),
            err.lines().take(6).collect::<Vec<_>>().join(" / ")
        );
    }
    let samples = stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str::<Sample>(l).with_context(|| format!("client output {l:?}")))
        .collect::<Result<Vec<_>>>()?;
    if samples.is_empty() {
        bail!("paths-client {} printed no samples", w.name());
    }
    Ok(samples)
}

fn progress(rec: &RunRecord, n: usize, total: usize, elapsed: Duration) {
    let mut line = format!(
        "[{n:>3}/{total} {:>4.0}s] r{} {:<8} {:<10}",
        elapsed.as_secs_f64(),
        rec.repeat + 1,
        rec.mode.name(),
        rec.workload.name()
    );
    if let Some(e) = &rec.error {
        let _ = write!(line, " FAILED: {e}");
    }
    for s in &rec.samples {
        match (&s.latency, s.workload.kind()) {
            (_, Kind::Stream) => {
                let _ = write!(line, " | {}×: {:.2} Gbit/s", s.flows, s.gbit_per_s);
            }
            (Some(l), Kind::Crr) => {
                let _ = write!(
                    line,
                    " | {:.0}/s p50 {:.1} p99 {:.1} µs",
                    s.ops_per_s, l.p50_us, l.p99_us
                );
            }
            (Some(l), _) => {
                let _ = write!(
                    line,
                    " | {}: {:.1}/{:.1}",
                    size_label(s.size).replace(' ', ""),
                    l.p50_us,
                    l.p99_us
                );
            }
            (None, _) => {}
        }
    }
    if rec.waited_for_idle_s > 1.0 {
        let _ = write!(line, " | waited {:.0} s for idle", rec.waited_for_idle_s);
    }
    if let Some(c) = rec.strait_cpu_s {
        let _ = write!(line, " | strait CPU {:.0} ms", c * 1000.0);
    }
    for w in &rec.warnings {
        let _ = write!(line, " WARNING: {w}");
    }
    eprintln!("{line}");
}

fn policy_route_present() -> bool {
    Command::new("ip")
        .arg("rule")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains(POLICY_TABLE))
        .unwrap_or(false)
}

/// What the session may have left behind; empty when clean.
fn verify_cleanup(route_before: bool) -> Vec<String> {
    let mut left = Vec::new();
    if let Ok(o) = Command::new("ip").args(["netns", "list"]).output() {
        let list = String::from_utf8_lossy(&o.stdout).into_owned();
        for ns in [NS_CLIENT, NS_SERVER] {
            if list
                .lines()
                .any(|l| l.split_whitespace().next() == Some(ns))
            {
                left.push(format!("netns {ns} still exists"));
            }
        }
    }
    for ifname in [IF_CLIENT, IF_SERVER] {
        if Path::new("/sys/class/net").join(ifname).exists() {
            left.push(format!("interface {ifname} still exists"));
        }
    }
    if Path::new(PIN_DIR).exists() {
        left.push(format!("{PIN_DIR} still exists"));
    }
    if !route_before && policy_route_present() {
        left.push(format!("ip rule `{POLICY_TABLE}` still present"));
    }
    procs::report_cleanup(left, "namespaces, veths, pins, policy route and processes")
}

// ---------------------------------------------------------------------------------------------
// Aggregation, verdicts, markdown, charts

fn summarize(runs: &[RunRecord], modes: &[Mode], workloads: &[Workload]) -> Vec<SummaryRow> {
    let mut out = Vec::new();
    for &w in workloads {
        let mut xs: Vec<usize> = runs
            .iter()
            .filter(|r| r.workload == w)
            .flat_map(|r| r.samples.iter().map(Sample::x))
            .collect();
        xs.sort_unstable();
        xs.dedup();
        for x in xs {
            let mut rows: Vec<SummaryRow> = Vec::new();
            for &mode in modes.iter().filter(|m| m.runs(w)) {
                let all: Vec<&RunRecord> = runs
                    .iter()
                    .filter(|r| r.workload == w && r.mode == mode)
                    .collect();
                let ok: Vec<&Sample> = all
                    .iter()
                    .filter(|r| r.error.is_none())
                    .flat_map(|r| r.samples.iter().filter(|s| s.x() == x))
                    .collect();
                let lat = |f: fn(&Latency) -> f64| -> Vec<f64> {
                    ok.iter()
                        .filter_map(|s| s.latency.as_ref().map(f))
                        .collect()
                };
                let p50 = lat(|l| l.p50_us);
                let p99 = lat(|l| l.p99_us);
                let ops: Vec<f64> = ok.iter().map(|s| s.ops_per_s).collect();
                let gbit: Vec<f64> = ok.iter().map(|s| s.gbit_per_s).collect();
                let min = |v: &[f64]| v.iter().copied().reduce(f64::min);
                let max = |v: &[f64]| v.iter().copied().reduce(f64::max);
                rows.push(SummaryRow {
                    workload: w,
                    mode,
                    x,
                    runs_ok: ok.len(),
                    runs_failed: all.len().saturating_sub(ok.len()),
                    p50_us_median: median(p50.clone()),
                    p50_us_min: min(&p50),
                    p50_us_max: max(&p50),
                    p99_us_median: median(p99.clone()),
                    p99_us_min: min(&p99),
                    p99_us_max: max(&p99),
                    ops_per_s_median: median(ops.clone()),
                    ops_per_s_min: min(&ops),
                    ops_per_s_max: max(&ops),
                    gbit_per_s_median: median(gbit.clone()),
                    gbit_per_s_min: min(&gbit),
                    gbit_per_s_max: max(&gbit),
                    p50_vs_veth: None,
                    p99_vs_veth: None,
                    throughput_vs_veth: None,
                });
            }
            let base = rows.iter().find(|r| r.mode == Mode::Veth).cloned();
            if let Some(b) = base {
                let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
                    (Some(a), Some(b)) if b > 0.0 => Some(a / b),
                    _ => None,
                };
                for r in &mut rows {
                    r.p50_vs_veth = ratio(r.p50_us_median, b.p50_us_median);
                    r.p99_vs_veth = ratio(r.p99_us_median, b.p99_us_median);
                    r.throughput_vs_veth = if w.kind() == Kind::Stream {
                        ratio(r.gbit_per_s_median, b.gbit_per_s_median)
                    } else {
                        ratio(r.ops_per_s_median, b.ops_per_s_median)
                    };
                }
            }
            out.extend(rows);
        }
    }
    out
}

fn x_label(w: Workload, x: usize) -> String {
    match w.kind() {
        Kind::Stream => format!("{x} flow{}", if x == 1 { "" } else { "s" }),
        _ => size_label(x),
    }
}

fn verdicts(summary: &[SummaryRow]) -> Vec<Verdict> {
    let mut out = Vec::new();
    let of = |mode: Mode, kinds: &[Kind]| -> Vec<&SummaryRow> {
        summary
            .iter()
            .filter(|r| r.mode == mode && kinds.contains(&r.workload.kind()))
            .collect()
    };
    // Latency: every request/response size, both protocols.
    let dp_rr: Vec<(String, f64)> = of(Mode::Datapath, &[Kind::Rr])
        .into_iter()
        .filter_map(|r| {
            r.p50_vs_veth.map(|v| {
                (
                    format!("{} {}", r.workload.name(), x_label(r.workload, r.x)),
                    v,
                )
            })
        })
        .collect();
    if let Some((worst_at, worst)) = dp_rr
        .iter()
        .cloned()
        .reduce(|a, b| if b.1 > a.1 { b } else { a })
    {
        let vals: Vec<f64> = dp_rr.iter().map(|x| x.1).collect();
        out.push(Verdict {
            target: "datapath p50 latency within 5% of veth (request/response, every size)".into(),
            measured: format!(
                "median ratio {:.3}, worst {:.3} ({worst_at}), best {:.3}",
                median(vals.clone()).unwrap_or(0.0),
                worst,
                vals.iter().copied().fold(f64::INFINITY, f64::min)
            ),
            met: Some(worst <= 1.05),
            inconclusive: false,
        });
    }
    let dp_stream: Vec<(String, f64)> = of(Mode::Datapath, &[Kind::Stream])
        .into_iter()
        .filter_map(|r| r.throughput_vs_veth.map(|v| (x_label(r.workload, r.x), v)))
        .collect();
    if let Some((worst_at, worst)) = dp_stream
        .iter()
        .cloned()
        .reduce(|a, b| if b.1 < a.1 { b } else { a })
    {
        out.push(Verdict {
            target: "datapath bulk throughput within 5% of veth (tcp-stream, every flow count)"
                .into(),
            measured: format!(
                "{} (worst {worst:.3} at {worst_at})",
                dp_stream
                    .iter()
                    .map(|(x, v)| format!("{x}: {v:.3}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            met: Some(worst >= 0.95),
            inconclusive: false,
        });
    }
    for (mode, kinds, what) in [
        (
            Mode::Datapath,
            &[Kind::Crr][..],
            "datapath connection setup vs veth",
        ),
        (
            Mode::Proxy,
            &[Kind::Rr][..],
            "proxy request/response vs veth (HTTP)",
        ),
        (
            Mode::Proxy,
            &[Kind::Crr][..],
            "proxy connection setup vs veth (HTTP)",
        ),
    ] {
        let rows = of(mode, kinds);
        if rows.is_empty() {
            continue;
        }
        let parts: Vec<String> = rows
            .iter()
            .filter_map(|r| {
                Some(format!(
                    "{} {}: p50 ×{:.2}, rate ×{:.2}",
                    r.workload.name(),
                    x_label(r.workload, r.x),
                    r.p50_vs_veth?,
                    r.throughput_vs_veth?
                ))
            })
            .collect();
        out.push(Verdict {
            target: format!("{what} (informational)"),
            measured: parts.join("; "),
            met: None,
            inconclusive: false,
        });
    }
    for mode in [Mode::Sockmap, Mode::DatapathSockmap, Mode::SockmapAlways] {
        out.extend(sockmap_verdicts(summary, mode));
    }
    out.extend(proxy_sockmap_verdict(summary));
    out
}

/// A summary row's point, e.g. `tcp-rr 64 B`.
fn point(r: &SummaryRow) -> String {
    format!("{} {}", r.workload.name(), x_label(r.workload, r.x))
}

/// " (N runs FAILED …)" when some of `rows`' runs failed their checks.
fn failed_note(rows: &[&SummaryRow]) -> String {
    let failed: usize = rows.iter().map(|r| r.runs_failed).sum();
    if failed == 0 {
        String::new()
    } else {
        format!(" ({failed} runs FAILED their checks and are left out)")
    }
}

/// Issue 5's targets for a spliced mode against veth. `met` is `None` when a point the
/// target needs was not measured (or all its runs failed).
fn sockmap_verdicts(summary: &[SummaryRow], mode: Mode) -> Vec<Verdict> {
    let rows: Vec<&SummaryRow> = summary.iter().filter(|r| r.mode == mode).collect();
    if rows.is_empty() || !summary.iter().any(|r| r.mode == Mode::Veth) {
        return Vec::new();
    }
    let name = mode.name();
    let base = |r: &SummaryRow| {
        summary
            .iter()
            .find(|b| b.mode == Mode::Veth && b.workload == r.workload && b.x == r.x)
    };
    let mut out = Vec::new();

    // 1. RR p50 at 64 B ≤ 0.5 × veth.
    let at64: Vec<&SummaryRow> = rows
        .iter()
        .copied()
        .filter(|r| r.workload.kind() == Kind::Rr && r.x == 64)
        .collect();
    if !at64.is_empty() {
        let tcp = at64.iter().find(|r| r.workload == Workload::TcpRr);
        let parts: Vec<String> = at64
            .iter()
            .map(|r| {
                format!(
                    "{}: {} ({} vs {} µs)",
                    point(r),
                    opt(r.p50_vs_veth, 3),
                    opt(r.p50_us_median, 1),
                    opt(base(r).and_then(|b| b.p50_us_median), 1)
                )
            })
            .collect();
        out.push(Verdict {
            target: format!("{name}: RR p50 ≤ 0.5× veth at 64 B (tcp-rr)"),
            measured: parts.join("; ") + &failed_note(&at64),
            met: tcp.and_then(|r| r.p50_vs_veth).map(|v| v <= 0.5),
            inconclusive: false,
        });
    }

    // 2. Bulk ≥ 3.5 × veth, every flow count.
    let stream: Vec<&SummaryRow> = rows
        .iter()
        .copied()
        .filter(|r| r.workload.kind() == Kind::Stream)
        .collect();
    if !stream.is_empty() {
        let parts: Vec<String> = stream
            .iter()
            .map(|r| {
                format!(
                    "{}: ×{} ({} vs {} Gbit/s)",
                    x_label(r.workload, r.x),
                    opt(r.throughput_vs_veth, 2),
                    opt(r.gbit_per_s_median, 2),
                    opt(base(r).and_then(|b| b.gbit_per_s_median), 2)
                )
            })
            .collect();
        let ratios: Option<Vec<f64>> = stream.iter().map(|r| r.throughput_vs_veth).collect();
        out.push(Verdict {
            target: format!("{name}: bulk throughput ≥ 3.5× veth (tcp-stream, every flow count)"),
            measured: parts.join("; ") + &failed_note(&stream),
            met: ratios.map(|v| v.iter().all(|x| *x >= 3.5)),
            inconclusive: false,
        });
    }

    // 3. Never slower: p50 ≤ 1.0 × veth at every rr size, throughput ≥ 1.0 × at every flow
    //    count.
    let rr_stream: Vec<&SummaryRow> = rows
        .iter()
        .copied()
        .filter(|r| matches!(r.workload.kind(), Kind::Rr | Kind::Stream))
        .collect();
    if !rr_stream.is_empty() {
        let mut losses = Vec::new();
        let mut worst: Option<(f64, String)> = None;
        let mut complete = true;
        for r in &rr_stream {
            // Expressed as "slowdown": > 1 means slower than veth.
            let slow = if r.workload.kind() == Kind::Stream {
                r.throughput_vs_veth.map(|t| 1.0 / t)
            } else {
                r.p50_vs_veth
            };
            let Some(slow) = slow else {
                complete = false;
                continue;
            };
            if worst.as_ref().is_none_or(|w| slow > w.0) {
                worst = Some((slow, point(r)));
            }
            if slow > 1.0 {
                losses.push(if r.workload.kind() == Kind::Stream {
                    format!(
                        "{}: ×{} ({} vs {} Gbit/s)",
                        point(r),
                        opt(r.throughput_vs_veth, 3),
                        opt(r.gbit_per_s_median, 2),
                        opt(base(r).and_then(|b| b.gbit_per_s_median), 2)
                    )
                } else {
                    format!(
                        "{}: p50 ×{} ({} vs {} µs)",
                        point(r),
                        opt(r.p50_vs_veth, 3),
                        opt(r.p50_us_median, 1),
                        opt(base(r).and_then(|b| b.p50_us_median), 1)
                    )
                });
            }
        }
        let measured = if losses.is_empty() {
            match &worst {
                Some((w, at)) => format!("faster everywhere; closest: {at} (latency ratio {w:.3})"),
                None => "not measured".into(),
            }
        } else {
            format!("slower at {}: {}", losses.len(), losses.join("; "))
        };
        out.push(Verdict {
            target: format!(
                "{name}: never slower than veth (p50 ≤ 1.0× at every request/response size, \
                 throughput ≥ 1.0× at every flow count)"
            ),
            measured: measured + &failed_note(&rr_stream),
            met: (complete && worst.is_some()).then_some(losses.is_empty()),
            inconclusive: false,
        });
    }

    // 4. Connection setup rate ≥ 0.95 × veth.
    let crr: Vec<&SummaryRow> = rows
        .iter()
        .copied()
        .filter(|r| r.workload.kind() == Kind::Crr)
        .collect();
    if !crr.is_empty() {
        let parts: Vec<String> = crr
            .iter()
            .map(|r| {
                format!(
                    "{}: rate ×{} ({} vs {} conn/s), p50 ×{}",
                    r.workload.name(),
                    opt(r.throughput_vs_veth, 3),
                    opt(r.ops_per_s_median, 0),
                    opt(base(r).and_then(|b| b.ops_per_s_median), 0),
                    opt(r.p50_vs_veth, 3)
                )
            })
            .collect();
        let ratios: Option<Vec<f64>> = crr.iter().map(|r| r.throughput_vs_veth).collect();
        out.push(Verdict {
            target: format!("{name}: connection setup rate ≥ 0.95× veth (every crr workload)"),
            measured: parts.join("; ") + &failed_note(&crr),
            met: ratios.map(|v| v.iter().all(|x| *x >= 0.95)),
            inconclusive: false,
        });
    }
    out
}

/// `proxy+sockmap` against `proxy` (informational): what splicing the proxy's legs buys.
fn proxy_sockmap_verdict(summary: &[SummaryRow]) -> Option<Verdict> {
    let parts: Vec<String> = summary
        .iter()
        .filter(|r| r.mode == Mode::ProxySockmap)
        .filter_map(|r| {
            let b = summary
                .iter()
                .find(|b| b.mode == Mode::Proxy && b.workload == r.workload && b.x == r.x)?;
            let ratio = |a: Option<f64>, b: Option<f64>| Some(a? / b?);
            Some(format!(
                "{}: p50 ×{}, rate ×{}",
                point(r),
                opt(ratio(r.p50_us_median, b.p50_us_median), 2),
                opt(ratio(r.ops_per_s_median, b.ops_per_s_median), 2)
            ))
        })
        .collect();
    (!parts.is_empty()).then(|| Verdict {
        target: "proxy+sockmap vs proxy (HTTP, informational)".into(),
        measured: parts.join("; "),
        met: None,
        inconclusive: false,
    })
}

fn opt(v: Option<f64>, prec: usize) -> String {
    v.map(|x| format!("{x:.prec$}"))
        .unwrap_or_else(|| "–".into())
}

fn range(a: Option<f64>, b: Option<f64>, prec: usize) -> String {
    match (a, b) {
        (Some(a), Some(b)) => format!("{a:.prec$}–{b:.prec$}"),
        _ => "–".into(),
    }
}

fn ratio_cell(v: Option<f64>, mode: Mode) -> String {
    if mode == Mode::Veth {
        return "1".into();
    }
    v.map(|x| format!("{x:.3}")).unwrap_or_else(|| "–".into())
}

fn runs_cell(r: &SummaryRow) -> String {
    if r.runs_failed > 0 {
        format!("{} ok, {} FAILED", r.runs_ok, r.runs_failed)
    } else {
        r.runs_ok.to_string()
    }
}

/// Median over the passing runs of the share of a tcp-stream flow count's payload that sk_msg
/// spliced, from the per-sample counters (sessions recorded before them have none: `None`).
fn spliced_pct(doc: &Document, mode: Mode, flows: usize) -> Option<f64> {
    let mut v: Vec<f64> = doc
        .runs
        .iter()
        .filter(|r| r.mode == mode && r.workload.kind() == Kind::Stream && r.error.is_none())
        .flat_map(|r| r.samples.iter())
        .filter(|x| x.flows == flows)
        .filter_map(|x| {
            let c = x.strait.as_ref()?;
            Some(c.sockmap_redirected_bytes as f64 * 100.0 / x.payload_bytes().max(1) as f64)
        })
        .collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

pub fn markdown(doc: &Document) -> String {
    let m = &doc.machine;
    let a = &doc.settings;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "### Paths benchmark, {} — {} ({} cpus), kernel {}\n",
        doc.date, m.cpu_model, m.cpus, m.kernel
    );
    let _ = writeln!(
        s,
        "{}. CPU placement: {}. {} repeats; modes interleaved run by run, order rotated every \
         repeat. \
         Request/response: {} s per size after {} s warm-up on the same connection; tcp-stream: \
         {} s per flow count; connection setup: {} s. Cells are medians over the repeats of each \
         run's p50/p99/throughput; min–max is the range over the repeats. Wall time {:.0} s; \
         machine-wide CPU busy just before a run: at most {:.0}% (waited {:.0} s for idle in \
         total).\n",
        doc.topology,
        match a.pin {
            CpuPin::One => "client, server and strait all pinned to one CPU (`--pin one`)",
            CpuPin::None => "not pinned (`--pin none`)",
        },
        a.repeats,
        a.rr_secs,
        a.warmup_secs,
        a.stream_secs,
        a.crr_secs,
        doc.wall_s,
        doc.runs
            .iter()
            .filter_map(|r| r.busy_pct_before)
            .fold(0.0, f64::max),
        doc.runs.iter().map(|r| r.waited_for_idle_s).sum::<f64>()
    );
    if !doc.verdicts.is_empty() {
        report::targets_table(&mut s, &doc.verdicts, "");
    }
    let mut workloads: Vec<Workload> = doc.summary.iter().map(|r| r.workload).collect();
    workloads.dedup();
    for w in workloads {
        let rows: Vec<&SummaryRow> = doc.summary.iter().filter(|r| r.workload == w).collect();
        let _ = writeln!(s, "#### {}: {}\n", w.name(), w.describe());
        if w.kind() == Kind::Stream {
            let _ = writeln!(s, "Writes of {}.\n", size_label(a.stream_write));
        }
        match w.kind() {
            Kind::Stream => {
                let _ = writeln!(
                    s,
                    "| flows | mode | Gbit/s | min–max | vs veth | spliced % | runs |\n\
                     |---|---|---:|---:|---:|---:|---:|"
                );
                for r in rows {
                    let _ = writeln!(
                        s,
                        "| {} | {} | {} | {} | {} | {} | {} |",
                        r.x,
                        r.mode.name(),
                        opt(r.gbit_per_s_median, 2),
                        range(r.gbit_per_s_min, r.gbit_per_s_max, 2),
                        ratio_cell(r.throughput_vs_veth, r.mode),
                        opt(spliced_pct(doc, r.mode, r.x), 0),
                        runs_cell(r)
                    );
                }
            }
            Kind::Rr | Kind::Crr => {
                let (first, rate) = if w.kind() == Kind::Crr {
                    ("", "conn/s")
                } else {
                    ("size | ", "req/s")
                };
                let _ = writeln!(
                    s,
                    "| {first}mode | p50 µs | p50 min–max | p99 µs | p99 min–max | {rate} | Gbit/s | \
                     p50 vs veth | p99 vs veth | runs |\n|{}---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
                    if first.is_empty() { "" } else { "---|" }
                );
                for r in rows {
                    let lead = if w.kind() == Kind::Crr {
                        String::new()
                    } else {
                        format!("{} | ", size_label(r.x))
                    };
                    let _ = writeln!(
                        s,
                        "| {lead}{} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                        r.mode.name(),
                        opt(r.p50_us_median, 1),
                        range(r.p50_us_min, r.p50_us_max, 1),
                        opt(r.p99_us_median, 1),
                        range(r.p99_us_min, r.p99_us_max, 1),
                        opt(r.ops_per_s_median, 0),
                        opt(r.gbit_per_s_median, 2),
                        ratio_cell(r.p50_vs_veth, r.mode),
                        ratio_cell(r.p99_vs_veth, r.mode),
                        runs_cell(r)
                    );
                }
            }
        }
        let _ = writeln!(s);
    }
    strait_cpu_table(&mut s, doc);
    path_evidence_table(&mut s, doc);
    let warnings: Vec<String> = doc
        .runs
        .iter()
        .flat_map(|r| {
            r.warnings.iter().map(move |w| {
                format!(
                    "{} {} r{}: {w}",
                    r.mode.name(),
                    r.workload.name(),
                    r.repeat + 1
                )
            })
        })
        .chain(doc.runs.iter().filter_map(|r| {
            r.error.as_ref().map(|e| {
                format!(
                    "{} {} r{} FAILED: {e}",
                    r.mode.name(),
                    r.workload.name(),
                    r.repeat + 1
                )
            })
        }))
        .collect();
    if !warnings.is_empty() {
        let _ = writeln!(s, "Problems:\n");
        for w in warnings {
            let _ = writeln!(s, "- {w}");
        }
        let _ = writeln!(s);
    }
    if let Some(v) = &doc.strait {
        let _ = writeln!(s, "strait: {v}\n");
    }
    let _ = writeln!(
        s,
        "Cleanup: {}",
        if doc.cleanup.is_empty() {
            "nothing left behind (netns, veths, pins, policy route, processes).".to_string()
        } else {
            doc.cleanup.join("; ")
        }
    );
    s
}

/// How each run proved its path: what crossed the client's veth, what sk_msg redirected, and
/// the spurious EAGAINs the client retried. Ratios are medians over the runs that passed
/// their checks; counts are sums over all runs.
fn path_evidence_table(s: &mut String, doc: &Document) {
    let mut rows = Vec::new();
    for w in doc.settings.workloads.iter() {
        for m in doc.settings.modes.iter().filter(|m| m.runs(*w)) {
            let all: Vec<&RunRecord> = doc
                .runs
                .iter()
                .filter(|r| r.workload == *w && r.mode == *m)
                .collect();
            if all.is_empty() {
                continue;
            }
            let ok: Vec<&RunRecord> = all.iter().copied().filter(|r| r.error.is_none()).collect();
            let ops =
                |r: &RunRecord| -> u64 { r.samples.iter().map(|x| x.ops + x.warmup_ops).sum() };
            let med = |f: &dyn Fn(&RunRecord) -> Option<f64>| {
                median(ok.iter().filter_map(|r| f(r)).collect())
            };
            let pkts = med(&|r| {
                let n = ops(r);
                (n > 0).then(|| r.wire.as_ref().map(|w| w.client_packets as f64 / n as f64))?
            });
            let bytes = med(&|r| {
                (r.payload_bytes > 0).then(|| {
                    r.wire
                        .as_ref()
                        .map(|w| w.client_bytes as f64 / r.payload_bytes as f64)
                })?
            });
            let spliced = m.spliced();
            let msgs = med(&|r| {
                let c = r.strait.as_ref()?;
                (spliced && r.messages > 0)
                    .then(|| c.sockmap_redirected_messages as f64 / r.messages as f64)
            });
            let rbytes = med(&|r| {
                let c = r.strait.as_ref()?;
                (spliced && r.payload_bytes > 0)
                    .then(|| c.sockmap_redirected_bytes as f64 / r.payload_bytes as f64)
            });
            let sum = |f: &dyn Fn(&StraitCounters) -> u64| -> String {
                if !spliced {
                    return "–".into();
                }
                all.iter()
                    .filter_map(|r| r.strait.as_ref().map(f))
                    .sum::<u64>()
                    .to_string()
            };
            let eagain: u64 = all
                .iter()
                .flat_map(|r| r.samples.iter().map(|x| x.eagain_retries))
                .sum();
            let failed = all.len() - ok.len();
            rows.push(format!(
                "| {} | {} | {}{} | {} | {} | {} | {} | {} | {} | {} / {} | {eagain} |",
                m.name(),
                w.name(),
                ok.len(),
                if failed > 0 {
                    format!(", **{failed} FAILED**")
                } else {
                    String::new()
                },
                opt(pkts, 2),
                opt(bytes, 3),
                opt(msgs, 3),
                opt(rbytes, 3),
                sum(&|c| c.sockmap_misses),
                sum(&|c| c.sockmap_fallbacks),
                sum(&|c| c.sockmap_backpressure_throttled),
                sum(&|c| c.sockmap_backpressure_resumed),
            ));
        }
    }
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "Path evidence per run (medians over passing runs; counts summed over all runs). \
         \"veth pkts/op\": packets through the client's host veth per operation (≥ 1 unless \
         spliced); \"veth bytes/payload\": bytes through it per payload byte; \"redirected \
         msgs/sends\" and \"bytes/payload\": strait's sk_msg counters against what the run \
         sent; EAGAIN: reads of the client's blocking sockets that returned EAGAIN early and \
         were retried:\n\n| mode | workload | runs ok | veth pkts/op | veth bytes/payload | \
         redirected msgs/sends | redirected bytes/payload | misses | fallbacks | throttled / resumed \
         (backpressure) | EAGAIN |\n|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for r in rows {
        let _ = writeln!(s, "{r}");
    }
    let _ = writeln!(s);
}

/// strait's own CPU per operation (whole client run: every size of a request/response run).
fn strait_cpu_table(s: &mut String, doc: &Document) {
    let mut rows = Vec::new();
    for w in doc.settings.workloads.iter() {
        for m in doc
            .settings
            .modes
            .iter()
            .filter(|m| m.strait().is_some() && m.runs(*w))
        {
            let per_op: Vec<f64> = doc
                .runs
                .iter()
                .filter(|r| r.workload == *w && r.mode == *m && r.error.is_none())
                .filter_map(|r| {
                    let ops: u64 = r.samples.iter().map(|x| x.ops + x.warmup_ops).sum();
                    let cpu = r.strait_cpu_s?;
                    (ops > 0).then(|| cpu * 1e6 / ops as f64)
                })
                .collect();
            if let Some(med) = median(per_op) {
                rows.push(format!("| {} | {} | {med:.2} |", w.name(), m.name()));
            }
        }
    }
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "strait process CPU per operation (utime+stime of strait over a whole client run, \
         divided by all its operations including warm-up; medians over repeats):\n\n| workload | mode | \
         strait CPU µs/op |\n|---|---|---:|"
    );
    for r in rows {
        let _ = writeln!(s, "{r}");
    }
    let _ = writeln!(s);
}

const COLORS: [&str; 6] = [
    "#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#ff7f0e", "#8c564b",
];

fn color(mode: Mode) -> &'static str {
    COLORS[mode as usize % COLORS.len()]
}

struct Series {
    name: String,
    color: &'static str,
    dashed: bool,
    points: Vec<(f64, f64)>,
}

struct Chart {
    title: String,
    x_label: String,
    y_label: String,
    log_y: bool,
    /// Tick positions (data x) and labels; x is always log-scaled (base 2).
    x_ticks: Vec<(f64, String)>,
    series: Vec<Series>,
}

/// (name, SVG) per chart: latency vs size for the request/response workloads, throughput vs
/// flows for tcp-stream. Connection setup has one x value per mode: table only.
fn charts(doc: &Document) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut workloads: Vec<Workload> = doc.summary.iter().map(|r| r.workload).collect();
    workloads.dedup();
    for w in workloads {
        let rows: Vec<&SummaryRow> = doc.summary.iter().filter(|r| r.workload == w).collect();
        let mut xs: Vec<usize> = rows.iter().map(|r| r.x).collect();
        xs.sort_unstable();
        xs.dedup();
        if xs.len() < 2 {
            continue;
        }
        let mut modes: Vec<Mode> = rows.iter().map(|r| r.mode).collect();
        modes.sort_by_key(|m| *m as usize);
        modes.dedup();
        let mut series = Vec::new();
        let stream = w.kind() == Kind::Stream;
        for mode in modes {
            let pts = |f: fn(&SummaryRow) -> Option<f64>| -> Vec<(f64, f64)> {
                rows.iter()
                    .filter(|r| r.mode == mode)
                    .filter_map(|r| Some((r.x as f64, f(r)?)))
                    .collect()
            };
            if stream {
                series.push(Series {
                    name: mode.name().to_string(),
                    color: color(mode),
                    dashed: false,
                    points: pts(|r| r.gbit_per_s_median),
                });
            } else {
                series.push(Series {
                    name: format!("{} p50", mode.name()),
                    color: color(mode),
                    dashed: false,
                    points: pts(|r| r.p50_us_median),
                });
                series.push(Series {
                    name: format!("{} p99", mode.name()),
                    color: color(mode),
                    dashed: true,
                    points: pts(|r| r.p99_us_median),
                });
            }
        }
        let chart = Chart {
            title: format!(
                "{}: {} ({}, {} repeats, medians)",
                w.name(),
                if stream {
                    "throughput vs parallel flows"
                } else {
                    "latency vs message size"
                },
                doc.date,
                doc.settings.repeats
            ),
            x_label: if stream {
                format!(
                    "parallel flows ({} writes)",
                    size_label(doc.settings.stream_write)
                )
            } else if w == Workload::HttpRr {
                "response body size".into()
            } else {
                "message size (each way)".into()
            },
            y_label: if stream {
                "Gbit/s".into()
            } else {
                "latency µs (log)".into()
            },
            log_y: !stream,
            x_ticks: xs
                .iter()
                .map(|&x| {
                    (
                        x as f64,
                        if stream {
                            x.to_string()
                        } else {
                            size_label(x)
                                .replace(" B", "B")
                                .replace(" KiB", "K")
                                .replace(" MiB", "M")
                        },
                    )
                })
                .collect(),
            series,
        };
        out.push((w.name().to_string(), render_svg(&chart)));
    }
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// 1-2-5 steps covering [lo, hi].
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let mut t = Vec::new();
    let (a, b) = (lo.log10().floor() as i32 - 1, hi.log10().ceil() as i32 + 1);
    for e in a..=b {
        for m in [1.0, 2.0, 5.0] {
            t.push(m * 10f64.powi(e));
        }
    }
    let first = t.iter().copied().filter(|v| *v <= lo).fold(t[0], f64::max);
    let last = t
        .iter()
        .copied()
        .filter(|v| *v >= hi)
        .fold(f64::INFINITY, f64::min);
    t.into_iter()
        .filter(|v| *v >= first && *v <= last)
        .collect()
}

fn nice_step(span: f64) -> f64 {
    let raw = span / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(raw)
}

fn fmt_tick(v: f64) -> String {
    if v >= 1.0 && (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

fn render_svg(c: &Chart) -> String {
    let (w, h) = (820.0, 460.0);
    let (ml, mr, mt, mb) = (70.0, 230.0, 40.0, 55.0);
    let (pw, ph) = (w - ml - mr, h - mt - mb);
    let xs: Vec<f64> = c.x_ticks.iter().map(|t| t.0.log2()).collect();
    let (x0, x1) = (
        xs.iter().copied().fold(f64::INFINITY, f64::min),
        xs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    );
    let ys: Vec<f64> = c
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .filter(|v| v.is_finite() && *v > 0.0)
        .collect();
    let (ylo, yhi) = (
        ys.iter().copied().fold(f64::INFINITY, f64::min),
        ys.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    );
    let (ylo, yhi) = if ys.is_empty() {
        (1.0, 10.0)
    } else {
        (ylo, yhi)
    };
    let y_ticks: Vec<f64> = if c.log_y {
        log_ticks(ylo, yhi)
    } else {
        let step = nice_step(yhi.max(1e-9));
        let n = (yhi / step).ceil() as usize;
        (0..=n).map(|i| i as f64 * step).collect()
    };
    let (t0, t1) = (
        y_ticks.first().copied().unwrap_or(ylo),
        y_ticks.last().copied().unwrap_or(yhi),
    );
    let fy = |v: f64| -> f64 {
        let f = if c.log_y {
            (v.log10() - t0.log10()) / (t1.log10() - t0.log10()).max(1e-12)
        } else {
            (v - t0) / (t1 - t0).max(1e-12)
        };
        mt + ph * (1.0 - f)
    };
    let fx = |v: f64| -> f64 { ml + pw * (v.log2() - x0) / (x1 - x0).max(1e-12) };
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} \
         {h}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"{w}\" height=\"{h}\" \
         fill=\"white\"/>"
    );
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">{}</text>",
        ml + pw / 2.0,
        esc(&c.title)
    );
    for &t in &y_ticks {
        let y = fy(t);
        let _ = writeln!(
            s,
            "<line x1=\"{ml}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            ml + pw,
            ml - 6.0,
            y + 4.0,
            fmt_tick(t)
        );
    }
    for (x, label) in &c.x_ticks {
        let px = fx(*x);
        let _ = writeln!(
            s,
            "<line x1=\"{px:.1}\" y1=\"{mt}\" x2=\"{px:.1}\" y2=\"{:.1}\" stroke=\"#eee\"/>\
             <text x=\"{px:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            mt + ph,
            mt + ph + 18.0,
            esc(label)
        );
    }
    let _ = writeln!(
        s,
        "<rect x=\"{ml}\" y=\"{mt}\" width=\"{pw}\" height=\"{ph}\" fill=\"none\" \
         stroke=\"#333\"/>\n<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\n\
         <text transform=\"translate(18 {:.1}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
        ml + pw / 2.0,
        h - 12.0,
        esc(&c.x_label),
        mt + ph / 2.0,
        esc(&c.y_label)
    );
    for (i, se) in c.series.iter().enumerate() {
        let pts: Vec<String> = se
            .points
            .iter()
            .filter(|p| p.1.is_finite() && p.1 > 0.0)
            .map(|&(x, y)| format!("{:.1},{:.1}", fx(x), fy(y)))
            .collect();
        let dash = if se.dashed {
            " stroke-dasharray=\"6 4\""
        } else {
            ""
        };
        let _ = writeln!(
            s,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{dash}/>",
            pts.join(" "),
            se.color
        );
        for p in &pts {
            if let Some((x, y)) = p.split_once(',') {
                let _ = writeln!(
                    s,
                    "<circle cx=\"{x}\" cy=\"{y}\" r=\"2.5\" fill=\"{}\"/>",
                    se.color
                );
            }
        }
        let ly = mt + 10.0 + i as f64 * 20.0;
        let lx = ml + pw + 15.0;
        let _ = writeln!(
            s,
            "<line x1=\"{lx}\" y1=\"{ly}\" x2=\"{:.1}\" y2=\"{ly}\" stroke=\"{}\" \
             stroke-width=\"2\"{dash}/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            lx + 28.0,
            se.color,
            lx + 34.0,
            ly + 4.0,
            esc(&se.name)
        );
    }
    s.push_str("</svg>\n");
    s
}

// ---------------------------------------------------------------------------------------------
// paths-server (inside the server netns)

/// Serves until killed: stream (port), HTTP/1.1 (port+1), connection setup (port+2).
pub fn server(args: ServerArgs) -> Result<()> {
    let bind = |off: u16| {
        TcpListener::bind((Ipv4Addr::UNSPECIFIED, args.port + off))
            .with_context(|| format!("binding port {}", args.port + off))
    };
    let (stream, http, crr) = (bind(0)?, bind(1)?, bind(2)?);
    accept_loop(stream, serve_stream);
    accept_loop(http, serve_http);
    // Connection setup: answered inline (no thread per connection), the server closes first so
    // TIME_WAIT stays here and the client's ports are reusable at once.
    for conn in crr.incoming() {
        let Ok(mut s) = conn else { continue };
        let _ = s.set_nodelay(true);
        let mut b = [0u8; 1];
        if Patient::forever(&s).read_exact(&mut b).is_ok() {
            let _ = s.write_all(&b);
        }
    }
    Ok(())
}

fn accept_loop(l: TcpListener, serve: fn(TcpStream) -> io::Result<()>) {
    thread::spawn(move || {
        for conn in l.incoming() {
            match conn {
                Ok(s) => {
                    thread::spawn(move || {
                        if let Err(e) = serve(s) {
                            if e.kind() != io::ErrorKind::ConnectionReset {
                                eprintln!("paths-server: {e}");
                            }
                        }
                    });
                }
                Err(e) => {
                    eprintln!("paths-server: accept: {e}");
                    sleep(Duration::from_millis(10));
                }
            }
        }
    });
}

/// 5-byte header: op (`R` echo, `B` discard) and a u32 LE message size.
fn serve_stream(mut s: TcpStream) -> io::Result<()> {
    s.set_nodelay(true)?;
    let mut hdr = [0u8; 5];
    Patient::forever(&s).read_exact(&mut hdr)?;
    let size = u32::from_le_bytes([hdr[1], hdr[2], hdr[3], hdr[4]]) as usize;
    match hdr[0] {
        b'R' if size > 0 && size <= MAX_SIZE => {
            let mut buf = vec![0u8; size];
            loop {
                match Patient::forever(&s).read_exact(&mut buf) {
                    Ok(()) => s.write_all(&buf)?,
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
                    Err(e) => return Err(e),
                }
            }
        }
        b'B' => {
            let mut buf = vec![0u8; 256 * 1024];
            let mut total = 0u64;
            loop {
                let n = Patient::forever(&s).read(&mut buf)?;
                if n == 0 {
                    break;
                }
                total += n as u64;
            }
            s.write_all(&total.to_le_bytes())
        }
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "bad stream header",
        )),
    }
}

/// Minimal HTTP/1.1: `GET /N` → 200 with an N-byte body; honours `Connection: close`.
fn serve_http(s: TcpStream) -> io::Result<()> {
    s.set_nodelay(true)?;
    let mut w = s.try_clone()?;
    let mut r = BufReader::with_capacity(16 * 1024, Patient::forever(s));
    let mut line = Vec::with_capacity(256);
    let mut cached: Option<(usize, bool, Vec<u8>)> = None;
    loop {
        line.clear();
        if r.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        let size = std::str::from_utf8(&line)
            .ok()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|p| p.strip_prefix('/'))
            .and_then(|p| p.parse::<usize>().ok())
            .filter(|n| *n <= MAX_SIZE);
        let (mut close, mut body_len) = (false, 0usize);
        loop {
            line.clear();
            if r.read_until(b'\n', &mut line)? == 0 {
                return Ok(());
            }
            if line == b"\r\n" || line == b"\n" {
                break;
            }
            let h = String::from_utf8_lossy(&line).to_ascii_lowercase();
            if let Some(v) = h.strip_prefix("connection:") {
                close |= v.contains("close");
            } else if let Some(v) = h.strip_prefix("content-length:") {
                body_len = v.trim().parse().unwrap_or(0);
            }
        }
        io::copy(&mut (&mut r).take(body_len as u64), &mut io::sink())?;
        let Some(size) = size else {
            w.write_all(
                b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            )?;
            return Ok(());
        };
        let fresh = !matches!(&cached, Some((n, c, _)) if *n == size && *c == close);
        if fresh {
            let mut resp = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: \
                 {size}\r\n{}\r\n",
                if close { "connection: close\r\n" } else { "" }
            )
            .into_bytes();
            resp.resize(resp.len() + size, b'x');
            cached = Some((size, close, resp));
        }
        if let Some((_, _, resp)) = &cached {
            w.write_all(resp)?;
        }
        if close {
            return Ok(());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// paths-client (inside the client netns)

pub fn client(args: ClientArgs) -> Result<()> {
    if let Some(r) = &args.port_range {
        let (lo, hi) = r
            .split_once('-')
            .ok_or_else(|| anyhow!("--port-range wants LO-HI"))?;
        // Per network namespace: only this (the client's) netns changes. tcp_tw_reuse: http-crr
        // leaves TIME_WAIT here (the client closes first); reuse those ports after 1 s.
        fs::write(
            "/proc/sys/net/ipv4/ip_local_port_range",
            format!("{} {}", lo.trim(), hi.trim()),
        )
        .context("setting ip_local_port_range")?;
        fs::write("/proc/sys/net/ipv4/tcp_tw_reuse", "1").context("setting tcp_tw_reuse")?;
    }
    let secs = Duration::from_secs_f64(args.secs);
    let warm = Duration::from_secs_f64(args.warmup_secs);
    // Each sample carries the EAGAIN retries of its own measurement.
    let counted = |f: &dyn Fn() -> Result<Sample>| -> Result<Sample> {
        let before = EAGAIN_RETRIES.load(Ordering::Relaxed);
        let mut s = f()?;
        s.eagain_retries = EAGAIN_RETRIES.load(Ordering::Relaxed) - before;
        Ok(s)
    };
    let samples: Vec<Sample> = match args.workload {
        Workload::TcpRr => args
            .sizes
            .iter()
            .map(|&n| counted(&|| tcp_rr(args.server, n, secs, warm)))
            .collect::<Result<_>>()?,
        Workload::HttpRr => args
            .sizes
            .iter()
            .map(|&n| counted(&|| http_rr(args.server, n, secs, warm)))
            .collect::<Result<_>>()?,
        Workload::TcpStream => args
            .flows
            .iter()
            .map(|&k| counted(&|| tcp_stream(args.server, k, args.stream_write, secs)))
            .collect::<Result<_>>()?,
        Workload::TcpCrr | Workload::HttpCrr => {
            vec![counted(&|| crr(args.server, args.workload, secs, warm))?]
        }
    };
    let mut out = io::stdout().lock();
    for s in samples {
        writeln!(out, "{}", serde_json::to_string(&s)?)?;
    }
    Ok(())
}

/// Read timeout of the client's sockets.
const CLIENT_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// EAGAIN retries of this (client) process so far; each [`Sample`] records its delta.
static EAGAIN_RETRIES: AtomicU64 = AtomicU64::new(0);

/// A reader that retries the spurious EAGAIN a blocking socket in a sockhash returns
/// (`tcp_bpf_recvmsg` gives up after one wake-up without data, e.g. the ACK of our own FIN;
/// plain TCP keeps waiting). An EAGAIN before `patience` has passed in one call cannot be the
/// socket's read timeout, so it is retried and counted; later it is the timeout.
struct Patient<R> {
    inner: R,
    patience: Duration,
}

impl<R: Read> Patient<R> {
    /// For the client's sockets, whose read timeout is [`CLIENT_READ_TIMEOUT`].
    fn client(inner: R) -> Self {
        Self {
            inner,
            patience: CLIENT_READ_TIMEOUT - Duration::from_millis(500),
        }
    }

    /// For sockets without a read timeout (the server): every EAGAIN is spurious.
    fn forever(inner: R) -> Self {
        Self {
            inner,
            patience: Duration::MAX,
        }
    }
}

impl<R: Read> Read for Patient<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let t0 = Instant::now();
        loop {
            match self.inner.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && t0.elapsed() < self.patience => {
                    EAGAIN_RETRIES.fetch_add(1, Ordering::Relaxed);
                }
                r => return r,
            }
        }
    }
}

fn connect(addr: SocketAddr) -> Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(3))
        .with_context(|| format!("connecting to {addr}"))?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(CLIENT_READ_TIMEOUT))?;
    s.set_write_timeout(Some(Duration::from_secs(10)))?;
    Ok(s)
}

fn sample(
    workload: Workload,
    size: usize,
    flows: usize,
    (mut ns, elapsed, warmup_ops): (Vec<u64>, Duration, u64),
    bytes: u64,
) -> Sample {
    let ops = ns.len() as u64;
    let secs = elapsed.as_secs_f64();
    let latency = (!ns.is_empty()).then(|| {
        let st = stats(&mut ns);
        Latency {
            p50_us: st.p50_us,
            p99_us: st.p99_us,
            p999_us: st.p999_us,
            mean_us: st.mean_us,
            min_us: st.min_us,
            max_us: ns.last().map_or(0.0, |&x| x as f64 / 1000.0),
        }
    });
    Sample {
        workload,
        size,
        flows,
        ops,
        warmup_ops,
        secs,
        bytes,
        ops_per_s: ops as f64 / secs.max(1e-9),
        gbit_per_s: bytes as f64 * 8.0 / secs.max(1e-9) / 1e9,
        latency,
        eagain_retries: 0,
        strait: None,
    }
}

/// Runs `op` for `warm` unmeasured, then for `secs` recording each call's duration.
fn timed_loop(
    secs: Duration,
    warm: Duration,
    mut op: impl FnMut() -> Result<()>,
) -> Result<(Vec<u64>, Duration, u64)> {
    let w_end = Instant::now() + warm;
    let mut warm_ops = 0;
    while Instant::now() < w_end {
        op()?;
        warm_ops += 1;
    }
    let mut ns = Vec::with_capacity(1 << 16);
    let start = Instant::now();
    let end = start + secs;
    loop {
        let t = Instant::now();
        if t >= end {
            break;
        }
        op()?;
        ns.push(t.elapsed().as_nanos() as u64);
    }
    Ok((ns, start.elapsed(), warm_ops))
}

fn tcp_rr(addr: SocketAddr, size: usize, secs: Duration, warm: Duration) -> Result<Sample> {
    let mut s = connect(addr)?;
    let mut hdr = vec![b'R'];
    hdr.extend_from_slice(&(size as u32).to_le_bytes());
    s.write_all(&hdr)?;
    let out = vec![0x5a_u8; size];
    let mut inb = vec![0u8; size];
    let timed = timed_loop(secs, warm, || {
        s.write_all(&out)?;
        Patient::client(&s).read_exact(&mut inb)?;
        Ok(())
    })?;
    if inb != out {
        bail!("tcp-rr {size}: echo does not match what was sent");
    }
    let bytes = timed.0.len() as u64 * size as u64 * 2;
    Ok(sample(Workload::TcpRr, size, 1, timed, bytes))
}

/// One HTTP/1.1 client connection with a reusable read buffer.
struct HttpConn {
    r: BufReader<Patient<TcpStream>>,
    w: TcpStream,
    line: Vec<u8>,
    body: Vec<u8>,
}

impl HttpConn {
    fn new(addr: SocketAddr) -> Result<Self> {
        let s = connect(addr)?;
        Ok(Self {
            w: s.try_clone()?,
            r: BufReader::with_capacity(64 * 1024, Patient::client(s)),
            line: Vec::with_capacity(256),
            body: Vec::new(),
        })
    }

    fn line(&mut self) -> Result<&[u8]> {
        self.line.clear();
        if self.r.read_until(b'\n', &mut self.line)? == 0 {
            bail!("connection closed mid-response");
        }
        Ok(&self.line)
    }

    /// Sends `req` and reads the whole response; checks 200 and a body of `want` bytes.
    fn exchange(&mut self, req: &[u8], want: usize) -> Result<()> {
        self.w.write_all(req)?;
        let status = String::from_utf8_lossy(self.line()?).into_owned();
        if status.split_whitespace().nth(1) != Some("200") {
            bail!("HTTP status {:?}", status.trim());
        }
        let (mut len, mut chunked) = (None, false);
        loop {
            let l = self.line()?;
            if l == b"\r\n" || l == b"\n" {
                break;
            }
            let h = String::from_utf8_lossy(l).to_ascii_lowercase();
            if let Some(v) = h.strip_prefix("content-length:") {
                len = v.trim().parse::<usize>().ok();
            } else if let Some(v) = h.strip_prefix("transfer-encoding:") {
                chunked = v.contains("chunked");
            }
        }
        let got = if chunked {
            let mut total = 0;
            loop {
                let l = String::from_utf8_lossy(self.line()?).into_owned();
                let n = usize::from_str_radix(l.trim().split(';').next().unwrap_or(""), 16)
                    .with_context(|| format!("chunk size {l:?}"))?;
                if n == 0 {
                    while !matches!(self.line()?, b"\r\n" | b"\n") {}
                    break;
                }
                self.read_body(n)?;
                total += n;
                self.line()?;
            }
            total
        } else {
            let n = len.ok_or_else(|| anyhow!("response without content-length"))?;
            self.read_body(n)?;
            n
        };
        if got != want {
            bail!("body of {got} bytes, want {want}");
        }
        Ok(())
    }

    fn read_body(&mut self, n: usize) -> Result<()> {
        if self.body.len() < n {
            self.body.resize(n, 0);
        }
        self.r.read_exact(&mut self.body[..n])?;
        Ok(())
    }
}

fn http_rr(addr: SocketAddr, size: usize, secs: Duration, warm: Duration) -> Result<Sample> {
    let mut c = HttpConn::new(addr)?;
    let req = format!("GET /{size} HTTP/1.1\r\nhost: {addr}\r\nuser-agent: strait-bench\r\n\r\n");
    let timed = timed_loop(secs, warm, || c.exchange(req.as_bytes(), size))?;
    let bytes = timed.0.len() as u64 * size as u64;
    Ok(sample(Workload::HttpRr, size, 1, timed, bytes))
}

fn crr(addr: SocketAddr, w: Workload, secs: Duration, warm: Duration) -> Result<Sample> {
    // No `Connection: close`: the client closes first, so no TIME_WAIT is left where the
    // connection ends (strait's host netns in proxy mode); see `port_range`.
    let req = format!("GET /1 HTTP/1.1\r\nhost: {addr}\r\nuser-agent: strait-bench\r\n\r\n");
    let timed = timed_loop(secs, warm, || {
        if w == Workload::HttpCrr {
            let mut c = HttpConn::new(addr)?;
            c.exchange(req.as_bytes(), 1)?;
            // Dropping `c` closes the connection (FIN) without waiting for the server.
        } else {
            let mut s = connect(addr)?;
            s.write_all(b"c")?;
            let mut b = [0u8; 1];
            Patient::client(&s).read_exact(&mut b)?;
            let mut rest = Vec::new();
            Patient::client(&s).read_to_end(&mut rest)?;
        }
        Ok(())
    })?;
    let bytes = timed.0.len() as u64;
    Ok(sample(w, 1, 1, timed, bytes))
}

fn tcp_stream(addr: SocketAddr, flows: usize, write: usize, secs: Duration) -> Result<Sample> {
    let barrier = Arc::new(Barrier::new(flows + 1));
    let mut handles = Vec::with_capacity(flows);
    for _ in 0..flows {
        let mut s = connect(addr)?;
        s.set_nodelay(false)?;
        let mut hdr = vec![b'B'];
        hdr.extend_from_slice(&0u32.to_le_bytes());
        s.write_all(&hdr)?;
        let b = barrier.clone();
        handles.push(thread::spawn(
            move || -> Result<(u64, u64, Instant, Instant)> {
                let chunk = vec![0x5a_u8; write];
                b.wait();
                // Each flow's own window: with all flows on one CPU some start late.
                let begin = Instant::now();
                let end = begin + secs;
                let (mut sent, mut writes) = (0u64, 0u64);
                while Instant::now() < end {
                    s.write_all(&chunk)?;
                    sent += chunk.len() as u64;
                    writes += 1;
                }
                s.shutdown(Shutdown::Write)?;
                let mut ack = [0u8; 8];
                Patient::client(&s).read_exact(&mut ack)?;
                let counted = u64::from_le_bytes(ack);
                if counted != sent {
                    bail!("server counted {counted} bytes, {sent} sent");
                }
                Ok((counted, writes, begin, Instant::now()))
            },
        ));
    }
    barrier.wait();
    let (mut bytes, mut writes) = (0u64, 0u64);
    let (mut first, mut last): (Option<Instant>, Option<Instant>) = (None, None);
    for h in handles {
        let (b, w, t0, t1) = h
            .join()
            .map_err(|_| anyhow!("stream flow thread panicked"))??;
        bytes += b;
        writes += w;
        first = Some(first.map_or(t0, |f| f.min(t0)));
        last = Some(last.map_or(t1, |l| l.max(t1)));
    }
    // From the first flow's start to the last flow's acknowledgement.
    let elapsed = match (first, last) {
        (Some(a), Some(b)) => b - a,
        _ => Duration::ZERO,
    };
    let secs_f = elapsed.as_secs_f64().max(1e-9);
    Ok(Sample {
        workload: Workload::TcpStream,
        size: write,
        flows,
        ops: writes,
        warmup_ops: 0,
        secs: secs_f,
        bytes,
        ops_per_s: writes as f64 / secs_f,
        gbit_per_s: bytes as f64 * 8.0 / secs_f / 1e9,
        latency: None,
        eagain_retries: 0,
        strait: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("1"), Ok(1));
        assert_eq!(parse_size("16K"), Ok(16 * 1024));
        assert_eq!(parse_size("1M"), Ok(1 << 20));
        assert!(parse_size("0").is_err());
        assert!(parse_size("128M").is_err());
        assert_eq!(size_label(65536), "64 KiB");
        assert_eq!(size_label(1 << 20), "1 MiB");
        assert_eq!(size_label(64), "64 B");
    }

    #[test]
    fn counters_from_metrics_text() {
        let text = "strait_requests_total{listener=\"l7\"} 12\n\
                    strait_datapath_packets_total 100\n\
                    strait_datapath_redirected_total 7\n\
                    strait_datapath_drops_total{reason=\"POLICY_DENIED\"} 2\n\
                    strait_datapath_drops_total{reason=\"FRAGMENT\"} 1\n\
                    strait_sockmap_redirected_messages_total 40\n\
                    strait_sockmap_redirected_bytes_total 4096\n\
                    strait_sockmap_misses_total 1\n# EOF\n";
        let c = parse_counters(text);
        assert_eq!(c.l7_requests, 12);
        assert_eq!(c.datapath_packets, 100);
        assert_eq!(c.datapath_redirected, 7);
        assert_eq!(c.datapath_drops, 3);
        assert_eq!(c.sockmap_redirected_messages, 40);
        assert_eq!(c.sockmap_redirected_bytes, 4096);
        assert_eq!(c.sockmap_misses, 1);
        assert_eq!(c.sockmap_inserted, 0);
    }

    #[test]
    fn log_ticks_cover_the_range() {
        let t = log_ticks(23.0, 1800.0);
        assert_eq!(t.first().copied(), Some(20.0));
        assert_eq!(t.last().copied(), Some(2000.0));
    }

    #[test]
    fn generated_config_parses() -> Result<()> {
        let tmp = TempDir::new("strait-bench-paths-test", false)?;
        let ctx = Ctx {
            args: PathsArgs {
                modes: vec![Mode::Veth, Mode::Datapath, Mode::Proxy],
                workloads: vec![Workload::TcpRr],
                sizes: vec![1],
                flows: vec![1],
                stream_write: 128 * 1024,
                sockmap_adaptive: true,
                sockmap_max_queued: None,
                repeats: 1,
                rr_secs: 1.0,
                stream_secs: 1.0,
                crr_secs: 1.0,
                warmup_secs: 0.0,
                pin: CpuPin::None,
                port: 7700,
                strait: None,
                idle_threshold: 10.0,
                idle_wait: 0,
                ignore_existing_route: false,
                out: None,
                keep_tmp: false,
                report: None,
            },
            tmp: tmp.path().to_path_buf(),
            exe: PathBuf::from("/bin/true"),
            strait_bin: None,
            admin_port: 9999,
            cpus: None,
            clk_tck: 100,
        };
        for mode in [
            Mode::Datapath,
            Mode::Proxy,
            Mode::Sockmap,
            Mode::DatapathSockmap,
            Mode::ProxySockmap,
        ] {
            let setup = mode.strait().ok_or_else(|| anyhow!("no setup"))?;
            let cfg = write_strait_config(&ctx, mode, setup, 15001)?;
            let c = strait::config::Config::load(&cfg).map_err(|e| anyhow!("{e}"))?;
            assert_eq!(c.endpoints.len(), 2);
            assert_eq!(c.datapath.enabled, setup.datapath, "{}", mode.name());
            assert_eq!(c.sockmap.enabled, mode.spliced(), "{}", mode.name());
            assert!(c.endpoints.iter().all(|e| e.splice));
            if setup.datapath {
                assert_eq!(c.policies.len(), 1);
                let policy = fs::read_to_string(&c.policies[0])?;
                assert_eq!(policy.contains("http:"), mode.terminates());
            } else {
                assert!(c.policies.is_empty());
            }
        }
        Ok(())
    }

    #[test]
    fn results_files_load_for_report() -> Result<()> {
        // `--report` must read every session kept in results/, old ones included.
        let dir = Path::new(peers::MANIFEST_DIR).join("results");
        let mut n = 0;
        for e in fs::read_dir(&dir)? {
            let p = e?.path();
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.starts_with("paths-") && name.ends_with(".json") {
                let doc: Document = serde_json::from_str(&fs::read_to_string(&p)?)
                    .with_context(|| p.display().to_string())?;
                assert!(!doc.runs.is_empty(), "{}", p.display());
                let summary = summarize(&doc.runs, &doc.settings.modes, &doc.settings.workloads);
                assert!(!summary.is_empty(), "{}", p.display());
                n += 1;
            }
        }
        assert!(n > 0, "no paths-*.json in {}", dir.display());
        Ok(())
    }

    #[test]
    fn mode_names_round_trip() -> Result<()> {
        for m in Mode::value_variants() {
            let parsed = Mode::from_str(m.name(), false).map_err(|e| anyhow!("{e}"))?;
            assert_eq!(parsed, *m);
            assert_eq!(serde_json::to_string(m)?, format!("\"{}\"", m.name()));
            assert_eq!(m.spliced(), m.strait().is_some_and(|s| s.sockmap));
        }
        assert!(Mode::ProxySockmap.runs(Workload::HttpRr));
        assert!(!Mode::ProxySockmap.runs(Workload::TcpRr));
        Ok(())
    }
}
