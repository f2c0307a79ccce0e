//! `strait-bench halfclose`: the half-close stress test of sockmap splicing.
//!
//! Two network namespaces of its own (client, server) joined to the host by veth pairs
//! (`strait::lab`). Per mode (`veth`: nothing attached; `sockmap`: strait with
//! `sockmap.enabled: true`, datapath off) it runs many short connections:
//!
//! - the server echoes every byte back as it arrives, and closes once it has read EOF;
//! - the client's writer thread sends `size` bytes of a position-dependent pattern (seeded per
//!   run) and then calls `shutdown(SHUT_WR)` on the same socket, while its reader reads the
//!   echo until EOF: with plain blocking `read()` (`blocking`; an EAGAIN, which plain TCP never
//!   returns on a blocking socket, is counted and retried) or on a non-blocking socket driven
//!   by epoll (`epoll`); optionally (`--clients sequential`) one thread writes, half-closes and
//!   then reads, the common "send the request, shut down, read the reply" pattern;
//! - every run checks received == sent byte for byte (lost bytes, offset of the first
//!   mismatch) and, in `sockmap` mode, through strait's counters that it was spliced.
//!
//! Client and server are threads of this process. A socket belongs to the network namespace
//! of the thread that creates it, so a short-lived thread `setns(CLONE_NEWNET)`s into the
//! namespace, creates the socket (connects, or binds the listener) and exits; only that thread
//! ever moves. The sockets are then used from ordinary threads. See benches/README.md.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::{self, sleep};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, ValueEnum};
use serde::Serialize;
use strait::datapath::sockmap::Pinned;
use strait::lab::{Lab, LabEndpoint};

use crate::filters::metric_value;
use crate::paths::{
    check_interrupted, free_ports, install_signal_handlers, parse_size, remove_pins,
    resolve_strait, size_label,
};
use crate::peers;
use crate::procs::{self, Service, TempDir};
use crate::report::{self, median, Machine};

const NS_CLIENT: &str = "sb-hc-cli";
const NS_SERVER: &str = "sb-hc-srv";
const IF_CLIENT: &str = "sbhccli0";
const IF_SERVER: &str = "sbhcsrv0";
const CLIENT_ADDR: Ipv4Addr = Ipv4Addr::new(10, 222, 1, 2);
const SERVER_ADDR: Ipv4Addr = Ipv4Addr::new(10, 222, 1, 3);
const PIN_DIR: &str = "/sys/fs/bpf/strait-bench-halfclose";
/// Read buffer of the client and the server.
const READ_BUF: usize = 64 * 1024;
/// Sizes of the `--short` preset.
const SHORT_SIZES: [usize; 4] = [1, 1024, 64 * 1024, 1 << 20];
/// Runs per mode of the `--short` preset and of the default.
const SHORT_RUNS: usize = 100;
const FULL_RUNS: usize = 1000;
/// Largest size the `sequential` client runs (its echo must fit the socket buffers).
const SEQUENTIAL_MAX: usize = 64 * 1024;
/// Fraction of a sockmap mode's runs that must be fully spliced (both directions).
const MIN_SPLICED: f64 = 0.95;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HcMode {
    /// Plain veth through the host: no strait.
    Veth,
    /// strait with `sockmap.enabled: true` (datapath off): both sockets spliced.
    Sockmap,
}

impl HcMode {
    fn name(self) -> &'static str {
        match self {
            HcMode::Veth => "veth",
            HcMode::Sockmap => "sockmap",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientKind {
    /// Blocking socket, plain `read()`; EAGAIN is counted and retried.
    Blocking,
    /// Non-blocking socket; the reader waits in epoll, the writer in poll.
    Epoll,
    /// One thread, blocking: write everything, `shutdown(SHUT_WR)`, then read to EOF (the
    /// "send the request, half-close, read the reply" pattern). Only sizes up to
    /// [`SEQUENTIAL_MAX`]: larger echoes would fill the unread receive buffer and stall.
    Sequential,
}

impl ClientKind {
    fn name(self) -> &'static str {
        match self {
            ClientKind::Blocking => "blocking",
            ClientKind::Epoll => "epoll",
            ClientKind::Sequential => "sequential",
        }
    }
}

#[derive(Debug, Clone, Args, Serialize)]
pub struct HalfcloseArgs {
    /// Modes, comma separated, run one after the other.
    #[arg(long, value_delimiter = ',', default_value = "veth,sockmap")]
    pub modes: Vec<HcMode>,
    /// Client kinds, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "blocking,epoll")]
    pub clients: Vec<ClientKind>,
    /// Bytes per run (suffixes K and M = KiB, MiB) [default: 1,64,1K,16K,64K,1M,4M; with
    /// --short: 1,1K,64K,1M].
    #[arg(long, value_delimiter = ',', value_parser = parse_size)]
    pub sizes: Option<Vec<usize>>,
    /// Runs per mode, spread evenly over sizes × client kinds [default: 1000; with --short:
    /// 100].
    #[arg(long)]
    pub total_runs: Option<usize>,
    /// Runs per (client kind, size) instead of --total-runs.
    #[arg(long, conflicts_with = "total_runs")]
    pub runs: Option<usize>,
    /// CI preset: 100 runs per mode over 1 B, 1 KiB, 64 KiB and 1 MiB.
    #[arg(long)]
    pub short: bool,
    /// Also fail when a blocking reader (`blocking`, `sequential`) in `sockmap` mode saw EAGAIN
    /// (expected on this kernel: `tcp_bpf_recvmsg`).
    #[arg(long)]
    pub fail_on_eagain: bool,
    /// A run that has not finished after this many seconds is aborted and counts as failed.
    #[arg(long, default_value_t = 20)]
    pub timeout_secs: u64,
    /// Server port (inside the server namespace).
    #[arg(long, default_value_t = 7800)]
    pub port: u16,
    /// Seed of the first run's pattern (run i uses seed + i) [default: from the clock].
    #[arg(long)]
    pub seed: Option<u64>,
    /// strait binary [default: `strait` next to this executable; copied to a temp dir].
    #[arg(long)]
    pub strait: Option<PathBuf>,
    /// JSON output path [default: benches/results/halfclose-<date>.json].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Do not append the markdown report to stdout (the JSON is written anyway).
    #[arg(long)]
    pub quiet: bool,
    /// Keep the temp dir with strait's config and log.
    #[arg(long)]
    pub keep_tmp: bool,
}

// ---------------------------------------------------------------------------------------------
// Results

/// sk_msg counter deltas over one run (strait's pinned `SOCK_COUNTERS`, the numbers behind
/// `/metrics`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct SpliceDelta {
    pub inserted: u64,
    pub redirected_msgs: u64,
    pub redirected_bytes: u64,
    pub misses: u64,
    pub fallbacks: u64,
    pub passed_msgs: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    pub mode: HcMode,
    pub client: ClientKind,
    pub size: usize,
    pub seed: u64,
    pub sent: u64,
    pub received: u64,
    /// Offset of the first received byte that differs from the pattern (reordering,
    /// corruption, or bytes missing in the middle).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_mismatch: Option<u64>,
    /// `blocking`: reads that returned EAGAIN on the blocking socket (retried). `epoll`: reads
    /// that returned EAGAIN right after epoll reported the socket readable (normal for
    /// non-blocking sockets; not a failure).
    pub eagain: u64,
    /// EAGAINs the server's blocking reads saw (retried).
    pub server_eagain: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub timed_out: bool,
    pub micros: u64,
    /// Bytes through the client's host veth, both directions.
    pub wire_bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub splice: Option<SpliceDelta>,
}

impl RunRecord {
    fn lost(&self) -> bool {
        self.received < self.sent
    }

    fn corrupt(&self) -> bool {
        self.first_mismatch.is_some() || self.received > self.sent
    }

    /// Both directions went through sk_msg (≥ 2 × size bytes redirected, no miss).
    fn spliced(&self) -> bool {
        self.splice
            .as_ref()
            .is_some_and(|s| s.redirected_bytes >= 2 * self.size as u64 && s.misses == 0)
    }

    fn failed(&self) -> bool {
        self.lost() || self.corrupt() || self.error.is_some() || self.timed_out
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SummaryRow {
    pub mode: HcMode,
    pub client: ClientKind,
    pub size: usize,
    pub runs: usize,
    /// Runs that received fewer bytes than were sent.
    pub lost_runs: usize,
    pub lost_bytes: u64,
    /// Runs with a mismatching byte or extra bytes.
    pub corrupt_runs: usize,
    /// First mismatch offsets of the corrupt runs (up to 10).
    pub first_mismatches: Vec<u64>,
    /// Runs with another error (connect, write, read) or that timed out.
    pub error_runs: usize,
    pub timed_out_runs: usize,
    pub eagain_runs: usize,
    pub eagain_total: u64,
    pub server_eagain_total: u64,
    /// `sockmap`: runs whose both directions were spliced.
    pub spliced_runs: Option<usize>,
    pub p50_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModeCheck {
    pub mode: HcMode,
    /// `strait_sockmap_*` from `/metrics` over the whole mode (before → after).
    pub metrics_redirected_messages: Option<u64>,
    pub metrics_redirected_bytes: Option<u64>,
    pub metrics_misses: Option<u64>,
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Document {
    pub date: String,
    pub tool: String,
    pub command: String,
    pub machine: Machine,
    pub strait: Option<String>,
    pub settings: HalfcloseArgs,
    pub sizes: Vec<usize>,
    pub runs_per_cell: Vec<(ClientKind, usize, usize)>,
    pub topology: String,
    pub pattern: String,
    pub passed: bool,
    pub failures: Vec<String>,
    pub checks: Vec<ModeCheck>,
    pub summary: Vec<SummaryRow>,
    pub runs: Vec<RunRecord>,
    pub wall_s: f64,
    pub cleanup: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// Pattern

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Byte `i` of run `seed`'s stream: byte `i % 8` of `splitmix64(seed ⊕ mix(i / 8))`. Every
/// 8-byte word differs from its neighbours and from other runs', so a byte at the wrong
/// offset (reordering, loss in the middle, duplication) is detected at once.
fn fill(seed: u64, start: u64, out: &mut [u8]) {
    let key = splitmix64(seed);
    let mut i = start;
    let mut k = 0;
    while k < out.len() {
        let word = splitmix64(key ^ (i / 8).wrapping_mul(0xd6e8_feb8_6659_fd93)).to_le_bytes();
        let from = (i % 8) as usize;
        let n = (8 - from).min(out.len() - k);
        out[k..k + n].copy_from_slice(&word[from..from + n]);
        k += n;
        i += n as u64;
    }
}

/// Streams received bytes against the pattern.
struct Checker {
    seed: u64,
    pos: u64,
    first_mismatch: Option<u64>,
    expect: Vec<u8>,
}

impl Checker {
    fn new(seed: u64) -> Self {
        Self {
            seed,
            pos: 0,
            first_mismatch: None,
            expect: vec![0; READ_BUF],
        }
    }

    fn check(&mut self, got: &[u8]) {
        if self.first_mismatch.is_none() {
            if self.expect.len() < got.len() {
                self.expect.resize(got.len(), 0);
            }
            let exp = &mut self.expect[..got.len()];
            fill(self.seed, self.pos, exp);
            if let Some(i) = got.iter().zip(exp.iter()).position(|(a, b)| a != b) {
                self.first_mismatch = Some(self.pos + i as u64);
            }
        }
        self.pos += got.len() as u64;
    }
}

// ---------------------------------------------------------------------------------------------
// Harness

/// Removes the pins on drop if strait left them (killed, or spliced sockets still open).
struct PinGuard;

impl Drop for PinGuard {
    fn drop(&mut self) {
        remove_pins(PIN_DIR);
    }
}

/// The echo server: an accept thread in this process, its listener in the server netns.
struct Server {
    stop: Arc<AtomicBool>,
    accept: Option<thread::JoinHandle<()>>,
    eagain: Arc<AtomicU64>,
    errors: Arc<Mutex<Vec<String>>>,
    /// Connection threads still running.
    active: Arc<AtomicU64>,
}

impl Server {
    fn start(netns: &File, port: u16) -> Result<Self> {
        let listener = in_netns(netns, || {
            let l = TcpListener::bind((Ipv4Addr::UNSPECIFIED, port))?;
            l.set_nonblocking(true)?;
            Ok(l)
        })
        .with_context(|| format!("binding the echo server on port {port}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let eagain = Arc::new(AtomicU64::new(0));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let active = Arc::new(AtomicU64::new(0));
        let accept = {
            let (stop, eagain, errors, active) =
                (stop.clone(), eagain.clone(), errors.clone(), active.clone());
            thread::Builder::new()
                .name("hc-accept".into())
                .spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        match listener.accept() {
                            Ok((s, _)) => {
                                let (eagain, errors, mine) =
                                    (eagain.clone(), errors.clone(), active.clone());
                                active.fetch_add(1, Ordering::SeqCst);
                                let spawned = thread::Builder::new().name("hc-echo".into()).spawn(
                                    move || {
                                        if let Err(e) = echo(s, &eagain) {
                                            if let Ok(mut v) = errors.lock() {
                                                v.push(format!("server: {e}"));
                                            }
                                        }
                                        mine.fetch_sub(1, Ordering::SeqCst);
                                    },
                                );
                                if spawned.is_err() {
                                    active.fetch_sub(1, Ordering::SeqCst);
                                }
                            }
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                                poll_one(listener.as_raw_fd(), libc::POLLIN, 50);
                            }
                            Err(e) => {
                                if let Ok(mut v) = errors.lock() {
                                    v.push(format!("server accept: {e}"));
                                }
                                sleep(Duration::from_millis(10));
                            }
                        }
                    }
                })
                .context("spawning the accept thread")?
        };
        Ok(Self {
            stop,
            accept: Some(accept),
            eagain,
            errors,
            active,
        })
    }

    fn take_errors(&self) -> Vec<String> {
        self.errors
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }

    /// Waits (up to `within`) until no connection thread runs.
    fn wait_idle(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while self.active.load(Ordering::SeqCst) > 0 {
            if Instant::now() > deadline {
                return false;
            }
            sleep(Duration::from_millis(1));
        }
        true
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
        self.wait_idle(Duration::from_secs(5));
    }
}

/// Echoes every byte back as it arrives; returns (closing the socket) after EOF.
fn echo(mut s: TcpStream, eagain: &AtomicU64) -> io::Result<()> {
    s.set_nonblocking(false)?;
    let mut buf = vec![0u8; READ_BUF];
    loop {
        let n = match s.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            // Spurious on a blocking socket in a sockhash (see the module docs); retry.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                eagain.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        s.write_all(&buf[..n])?;
    }
}

/// Runs `f` on a fresh thread that has joined the network namespace `netns`: sockets it
/// creates live there. Only that thread changes namespace, and it ends with `f`.
fn in_netns<T: Send>(netns: &File, f: impl FnOnce() -> io::Result<T> + Send) -> Result<T> {
    let fd = netns.as_raw_fd();
    thread::scope(|s| {
        s.spawn(move || {
            // SAFETY: `fd` is an open nsfs file for the scope of this call; CLONE_NEWNET moves
            // only this thread, which ends right after `f`.
            if unsafe { libc::setns(fd, libc::CLONE_NEWNET) } != 0 {
                return Err(io::Error::last_os_error());
            }
            f()
        })
        .join()
        .map_err(|_| io::Error::other("netns thread panicked"))?
    })
    .map_err(Into::into)
}

fn open_netns(name: &str) -> Result<File> {
    let p = Path::new("/var/run/netns").join(name);
    File::open(&p).with_context(|| format!("opening {}", p.display()))
}

fn endpoints() -> Vec<LabEndpoint> {
    vec![
        LabEndpoint {
            name: "hc-client".into(),
            interface: IF_CLIENT.into(),
            netns: NS_CLIENT.into(),
            addresses: vec![CLIENT_ADDR.into()],
        },
        LabEndpoint {
            name: "hc-server".into(),
            interface: IF_SERVER.into(),
            netns: NS_SERVER.into(),
            addresses: vec![SERVER_ADDR.into()],
        },
    ]
}

fn write_config(dir: &Path, admin: u16, listener: u16) -> Result<PathBuf> {
    let cfg = dir.join("strait-halfclose.yaml");
    fs::write(
        &cfg,
        format!(
            "# strait-bench halfclose, mode sockmap\nadmin:\n  address: 127.0.0.1:{admin}\n\
             runtime:\n  shutdown_grace: 1s\nflows:\n  sink: none\nlisteners:\n  - name: idle\n    \
             address: 127.0.0.1:{listener}\n    protocol: http\n    transparent: true\n\
             endpoints:\n  - name: hc-client\n    interface: {IF_CLIENT}\n    netns: {NS_CLIENT}\n    \
             addresses: [{CLIENT_ADDR}]\n    labels: {{app: hc-client}}\n  - name: hc-server\n    \
             interface: {IF_SERVER}\n    netns: {NS_SERVER}\n    addresses: [{SERVER_ADDR}]\n    \
             labels: {{app: hc-server}}\ndatapath:\n  enabled: false\n  pin_dir: {PIN_DIR}\n  \
             on_exit: detach\nsockmap:\n  enabled: true\n  adaptive: {{enabled: false}}\n"
        ),
    )?;
    Ok(cfg)
}

fn start_strait(bin: &Path, cfg: &Path, admin: u16, log: &Path) -> Result<Service> {
    let mut cmd = std::process::Command::new(bin);
    cmd.args(["run", "-c"]).arg(cfg);
    let mut svc = Service::spawn("strait (sockmap)", cmd, log)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        svc.check_alive()?;
        check_interrupted()?;
        if let Ok((status, _)) = procs::http1_get_path(admin, "/ready") {
            if status.contains(" 200") {
                return Ok(svc);
            }
        }
        if Instant::now() > deadline {
            bail!("strait not ready within 30 s");
        }
        sleep(Duration::from_millis(20));
    }
}

/// `strait_sockmap_{redirected_messages,redirected_bytes,misses}_total` from `/metrics`.
fn metrics(admin: u16) -> Result<(u64, u64, u64)> {
    let (status, text) = procs::http1_get_path(admin, "/metrics")?;
    if !status.contains(" 200") {
        bail!("GET /metrics: {status}");
    }
    let v = |n: &str| metric_value(&text, &format!("strait_sockmap_{n}_total")).unwrap_or(0);
    Ok((v("redirected_messages"), v("redirected_bytes"), v("misses")))
}

fn wire_bytes() -> u64 {
    ["rx_bytes", "tx_bytes"]
        .iter()
        .filter_map(|f| {
            fs::read_to_string(format!("/sys/class/net/{IF_CLIENT}/statistics/{f}"))
                .ok()?
                .trim()
                .parse::<u64>()
                .ok()
        })
        .sum()
}

/// The (client kind, size, runs) cells of one mode.
fn cells(args: &HalfcloseArgs, sizes: &[usize]) -> Vec<(ClientKind, usize, usize)> {
    let mut kinds = args.clients.clone();
    kinds.dedup();
    let all: Vec<(ClientKind, usize)> = kinds
        .iter()
        .flat_map(|k| {
            sizes
                .iter()
                .filter(move |s| *k != ClientKind::Sequential || **s <= SEQUENTIAL_MAX)
                .map(move |s| (*k, *s))
        })
        .collect();
    if all.is_empty() {
        return Vec::new();
    }
    let total = args
        .total_runs
        .unwrap_or(if args.short { SHORT_RUNS } else { FULL_RUNS });
    all.iter()
        .enumerate()
        .map(|(i, (k, s))| {
            let n = match args.runs {
                Some(r) => r,
                // Spread `total` evenly; the first `total % cells` cells get one more.
                None => total / all.len() + usize::from(i < total % all.len()),
            };
            (*k, *s, n)
        })
        .collect()
}

/// Round-robin over the cells, so sizes and client kinds alternate run by run.
fn schedule(cells: &[(ClientKind, usize, usize)]) -> Vec<(ClientKind, usize)> {
    let max = cells.iter().map(|c| c.2).max().unwrap_or(0);
    (0..max)
        .flat_map(|r| cells.iter().filter(move |c| r < c.2).map(|c| (c.0, c.1)))
        .collect()
}

pub fn run(args: HalfcloseArgs) -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("strait-bench halfclose needs root (network namespaces, veths, eBPF)");
    }
    if args.modes.is_empty() || args.clients.is_empty() {
        bail!("--modes and --clients must not be empty");
    }
    if args.runs == Some(0) || args.total_runs == Some(0) {
        bail!("--runs / --total-runs must be at least 1");
    }
    if args.timeout_secs == 0 || args.port == 0 {
        bail!("--timeout-secs and --port must not be 0");
    }
    let sizes: Vec<usize> = args.sizes.clone().unwrap_or_else(|| {
        if args.short {
            SHORT_SIZES.to_vec()
        } else {
            vec![1, 64, 1024, 16 << 10, 64 << 10, 1 << 20, 4 << 20]
        }
    });
    install_signal_handlers();
    let started = Instant::now();
    let mut modes = args.modes.clone();
    modes.dedup();
    let cells = cells(&args, &sizes);
    let plan = schedule(&cells);
    if plan.is_empty() {
        bail!("no runs to do");
    }

    let needs_strait = modes.contains(&HcMode::Sockmap);
    let tmp = TempDir::new("strait-bench-halfclose", args.keep_tmp)?;
    let strait_bin = if needs_strait {
        let src = resolve_strait(args.strait.as_deref())?;
        let dst = tmp.path().join("strait");
        fs::copy(&src, &dst).with_context(|| format!("copying {}", src.display()))?;
        Some(dst)
    } else {
        None
    };
    let strait_version = strait_bin.as_deref().map(report::strait_version);
    let date = peers::today_utc();
    let out_path = report::results_path(args.out.as_ref(), "halfclose", &date);
    let machine = Machine::collect();
    let seed0 = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    eprintln!(
        "strait-bench halfclose: {} ({} cpus), kernel {}; modes {}, {} runs per mode over {} \
         sizes × {} client kinds, seed {seed0}",
        machine.cpu_model,
        machine.cpus,
        machine.kernel,
        modes.iter().map(|m| m.name()).collect::<Vec<_>>().join(","),
        plan.len(),
        sizes.len(),
        args.clients.len()
    );
    remove_pins(PIN_DIR);

    let mut runs = Vec::new();
    let mut checks = Vec::new();
    let cleanup = {
        let lab = Lab::up(endpoints()).context("creating the lab namespaces")?;
        let pins = PinGuard;
        let client_ns = open_netns(NS_CLIENT)?;
        let server_ns = open_netns(NS_SERVER)?;
        let server = Server::start(&server_ns, args.port)?;
        let server_addr = SocketAddr::from((SERVER_ADDR, args.port));
        let ports = free_ports(2)?;
        let mut seed = seed0;
        for &mode in &modes {
            check_interrupted()?;
            let mut check = ModeCheck {
                mode,
                metrics_redirected_messages: None,
                metrics_redirected_bytes: None,
                metrics_misses: None,
                problems: Vec::new(),
            };
            let mut strait = None;
            let mut pinned = None;
            let mut before = None;
            match mode {
                HcMode::Veth => {
                    if Path::new(PIN_DIR).exists() {
                        check
                            .problems
                            .push(format!("{PIN_DIR} exists in veth mode"));
                    }
                }
                HcMode::Sockmap => {
                    let bin = strait_bin
                        .as_deref()
                        .ok_or_else(|| anyhow!("no strait binary"))?;
                    let cfg = write_config(tmp.path(), ports[0], ports[1])?;
                    strait = Some(start_strait(
                        bin,
                        &cfg,
                        ports[0],
                        &tmp.path().join("strait.log"),
                    )?);
                    pinned = Some(
                        Pinned::open(Path::new(PIN_DIR))
                            .map_err(|e| anyhow!("opening strait's pinned sockmap maps: {e}"))?,
                    );
                    before = Some(metrics(ports[0])?);
                }
            }
            let t0 = Instant::now();
            let mode_start = runs.len();
            for (i, &(kind, size)) in plan.iter().enumerate() {
                check_interrupted()?;
                let counters_before = match &pinned {
                    Some(p) => Some(p.counters().map_err(|e| anyhow!("{e}"))?),
                    None => None,
                };
                let wire0 = wire_bytes();
                let mut rec = one_run(
                    &client_ns,
                    server_addr,
                    mode,
                    kind,
                    size,
                    seed,
                    Duration::from_secs(args.timeout_secs),
                    &server,
                );
                seed = seed.wrapping_add(1);
                rec.wire_bytes = wire_bytes().saturating_sub(wire0);
                if let (Some(p), Some(b)) = (&pinned, counters_before) {
                    let a = p.counters().map_err(|e| anyhow!("{e}"))?;
                    rec.splice = Some(SpliceDelta {
                        inserted: a.inserted.saturating_sub(b.inserted),
                        redirected_msgs: a.redirected_msgs.saturating_sub(b.redirected_msgs),
                        redirected_bytes: a.redirected_bytes.saturating_sub(b.redirected_bytes),
                        misses: a.misses.saturating_sub(b.misses),
                        fallbacks: a.fallbacks.saturating_sub(b.fallbacks),
                        passed_msgs: a.passed_msgs.saturating_sub(b.passed_msgs),
                    });
                }
                if mode == HcMode::Veth && rec.wire_bytes < 2 * rec.sent && rec.error.is_none() {
                    rec.error = Some(format!(
                        "only {} bytes crossed the client veth for {} payload bytes: something \
                         bypassed it",
                        rec.wire_bytes,
                        2 * rec.sent
                    ));
                }
                if rec.failed() || (i + 1) % 100 == 0 || i + 1 == plan.len() {
                    progress(&rec, i + 1, plan.len(), t0.elapsed());
                }
                runs.push(rec);
            }
            if let (Some(admin), Some((m0, b0, x0))) = (strait.as_ref().map(|_| ports[0]), before) {
                let (m1, b1, x1) = metrics(admin)?;
                check.metrics_redirected_messages = Some(m1.saturating_sub(m0));
                check.metrics_redirected_bytes = Some(b1.saturating_sub(b0));
                check.metrics_misses = Some(x1.saturating_sub(x0));
            }
            let mode_runs = &runs[mode_start..];
            if mode == HcMode::Sockmap {
                let n = mode_runs.len();
                let msgs = check.metrics_redirected_messages.unwrap_or(0);
                if msgs < 2 * n as u64 {
                    check.problems.push(format!(
                        "strait_sockmap_redirected_messages_total grew by {msgs} over {n} runs \
                         (at least 2 per run expected): not spliced"
                    ));
                }
                let spliced = mode_runs.iter().filter(|r| r.spliced()).count();
                if (spliced as f64) < MIN_SPLICED * n as f64 {
                    check.problems.push(format!(
                        "only {spliced} of {n} runs were spliced both ways (< {:.0} %)",
                        MIN_SPLICED * 100.0
                    ));
                }
            }
            if let Some(mut s) = strait.take() {
                drop(pinned.take());
                s.stop();
                remove_pins(PIN_DIR);
            }
            checks.push(check);
        }
        drop(server);
        drop(client_ns);
        drop(server_ns);
        drop(pins);
        drop(lab);
        verify_cleanup()
    };
    drop(tmp);

    let summary = summarize(&runs, &modes, &cells);
    let mut failures = Vec::new();
    for r in &summary {
        let at = format!(
            "{} {} {}",
            r.mode.name(),
            r.client.name(),
            size_label(r.size)
        );
        if r.lost_runs > 0 || r.corrupt_runs > 0 {
            failures.push(format!(
                "{at}: {} runs lost bytes ({} bytes), {} runs reordered/corrupt (first \
                 mismatches at {:?})",
                r.lost_runs, r.lost_bytes, r.corrupt_runs, r.first_mismatches
            ));
        }
        if r.error_runs > 0 {
            failures.push(format!(
                "{at}: {} runs failed ({} timed out)",
                r.error_runs, r.timed_out_runs
            ));
        }
        let eagain_fails = r.client != ClientKind::Epoll
            && r.eagain_runs > 0
            && (r.mode == HcMode::Veth || args.fail_on_eagain);
        if eagain_fails {
            failures.push(format!(
                "{at}: the blocking reads saw EAGAIN in {} runs ({} in total){}",
                r.eagain_runs,
                r.eagain_total,
                if r.mode == HcMode::Veth {
                    " on plain TCP"
                } else {
                    " (--fail-on-eagain)"
                }
            ));
        }
    }
    for c in &checks {
        for p in &c.problems {
            failures.push(format!("{}: {p}", c.mode.name()));
        }
    }
    for c in &cleanup {
        failures.push(format!("cleanup: {c}"));
    }
    let doc = Document {
        date,
        tool: format!("strait-bench {} halfclose", env!("CARGO_PKG_VERSION")),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        machine,
        strait: strait_version,
        settings: args.clone(),
        sizes,
        runs_per_cell: cells,
        topology: format!(
            "netns {NS_CLIENT} ({CLIENT_ADDR}, host veth {IF_CLIENT}) -> host routing -> netns \
             {NS_SERVER} ({SERVER_ADDR}, host veth {IF_SERVER})"
        ),
        pattern: "byte i = byte (i mod 8) of splitmix64(splitmix64(seed) xor (i div 8) * \
                  0xd6e8feb86659fd93), little endian; run k uses seed0 + k"
            .into(),
        passed: failures.is_empty(),
        failures: failures.clone(),
        checks,
        summary,
        runs,
        wall_s: started.elapsed().as_secs_f64(),
        cleanup,
    };
    if !args.quiet {
        println!("{}", markdown(&doc));
    }
    if let Some(parent) = out_path.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::write(&out_path, to_json(&doc)?)
        .with_context(|| format!("writing {}", out_path.display()))?;
    println!("JSON results: {}", out_path.display());
    if !failures.is_empty() {
        bail!("halfclose FAILED:\n  {}", failures.join("\n  "));
    }
    println!(
        "halfclose passed: {} runs, no byte lost or reordered",
        doc.runs.len()
    );
    Ok(())
}

/// Pretty JSON with one compact line per run (thousands of runs stay readable and small).
fn to_json(doc: &Document) -> Result<String> {
    let lines = doc
        .runs
        .iter()
        .map(serde_json::to_string)
        .collect::<Result<Vec<_>, _>>()?;
    let head = Document {
        runs: Vec::new(),
        ..doc.clone()
    };
    let pretty = serde_json::to_string_pretty(&head)?;
    let runs = if lines.is_empty() {
        "[]".to_string()
    } else {
        format!("[\n    {}\n  ]", lines.join(",\n    "))
    };
    let Some(at) = pretty.rfind("\"runs\": []") else {
        bail!("no runs field in the JSON document");
    };
    Ok(format!(
        "{}\"runs\": {runs}{}\n",
        &pretty[..at],
        &pretty[at + "\"runs\": []".len()..]
    ))
}

fn progress(r: &RunRecord, n: usize, total: usize, elapsed: Duration) {
    let mut line = format!(
        "[{:<7} {n:>5}/{total} {:>5.1}s] {:<8} {:>7}: {} of {} bytes back",
        r.mode.name(),
        elapsed.as_secs_f64(),
        r.client.name(),
        size_label(r.size),
        r.received,
        r.sent
    );
    if let Some(m) = r.first_mismatch {
        let _ = write!(line, ", FIRST MISMATCH at {m}");
    }
    if r.eagain > 0 {
        let _ = write!(line, ", {} EAGAIN", r.eagain);
    }
    if let Some(s) = &r.splice {
        let _ = write!(
            line,
            ", spliced {} msgs / {} bytes",
            s.redirected_msgs, s.redirected_bytes
        );
    }
    if r.timed_out {
        line.push_str(", TIMED OUT");
    }
    if let Some(e) = &r.error {
        let _ = write!(line, ", ERROR: {e}");
    }
    eprintln!("{line}");
}

/// One connection: connect from the client netns, write the pattern and shut down the write
/// side on one thread, read the echo until EOF on this one; check the bytes.
#[allow(clippy::too_many_arguments)]
fn one_run(
    client_ns: &File,
    server: SocketAddr,
    mode: HcMode,
    kind: ClientKind,
    size: usize,
    seed: u64,
    timeout: Duration,
    srv: &Server,
) -> RunRecord {
    let t0 = Instant::now();
    let server_eagain0 = srv.eagain.load(Ordering::SeqCst);
    let mut rec = RunRecord {
        mode,
        client: kind,
        size,
        seed,
        sent: 0,
        received: 0,
        first_mismatch: None,
        eagain: 0,
        server_eagain: 0,
        error: None,
        timed_out: false,
        micros: 0,
        wire_bytes: 0,
        splice: None,
    };
    let sock = match in_netns(client_ns, || {
        TcpStream::connect_timeout(&server, Duration::from_secs(3))
    }) {
        Ok(s) => s,
        Err(e) => {
            rec.error = Some(format!("connect: {e:#}"));
            return rec;
        }
    };
    let result = exchange(&sock, kind, size, seed, timeout, &mut rec);
    if let Err(e) = result {
        rec.error = Some(format!("{e:#}"));
    }
    drop(sock);
    // The server's thread ends right after its close; its EAGAINs and errors belong here.
    if !srv.wait_idle(Duration::from_secs(5)) && rec.error.is_none() {
        rec.error = Some("the server's connection thread did not finish".into());
    }
    rec.server_eagain = srv.eagain.load(Ordering::SeqCst) - server_eagain0;
    let errs = srv.take_errors();
    if !errs.is_empty() && rec.error.is_none() {
        rec.error = Some(errs.join("; "));
    }
    rec.micros = t0.elapsed().as_micros() as u64;
    rec
}

fn exchange(
    sock: &TcpStream,
    kind: ClientKind,
    size: usize,
    seed: u64,
    timeout: Duration,
    rec: &mut RunRecord,
) -> Result<()> {
    if kind == ClientKind::Epoll {
        sock.set_nonblocking(true)?;
    }
    if kind == ClientKind::Sequential {
        return exchange_sequential(sock, size, seed, timeout, rec);
    }
    let fd = sock.as_raw_fd();
    let writer_sock = sock.try_clone()?;
    let deadline = Instant::now() + timeout;
    let timed_out = Arc::new(AtomicBool::new(false));
    // Watchdog: at the deadline, shut the socket down both ways; a blocked read returns 0 and
    // a blocked write fails, so the run ends and is marked timed out.
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let watchdog = {
        let timed_out = timed_out.clone();
        let wd_sock = sock.try_clone()?;
        thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = done_rx.recv_timeout(timeout) {
                timed_out.store(true, Ordering::SeqCst);
                let _ = wd_sock.shutdown(Shutdown::Both);
            }
        })
    };
    let writer = thread::spawn(move || write_pattern(writer_sock, kind, size, seed, deadline));
    let mut checker = Checker::new(seed);
    let read = match kind {
        ClientKind::Epoll => read_epoll(fd, sock, &mut checker, rec, deadline, &timed_out),
        // (Sequential returned above.)
        ClientKind::Blocking | ClientKind::Sequential => read_blocking(sock, &mut checker, rec),
    };
    let _ = done_tx.send(());
    let _ = watchdog.join();
    let wrote = writer
        .join()
        .map_err(|_| anyhow!("writer thread panicked"))?;
    rec.received = checker.pos;
    rec.first_mismatch = checker.first_mismatch;
    rec.timed_out = timed_out.load(Ordering::SeqCst);
    match wrote {
        Ok(n) => rec.sent = n,
        Err((n, e)) => {
            rec.sent = n;
            if !rec.timed_out {
                bail!("write after {n} bytes: {e}");
            }
        }
    }
    read.context("read")?;
    Ok(())
}

/// The `sequential` client: write, half-close and read on this one thread (the watchdog as in
/// [`exchange`]).
fn exchange_sequential(
    sock: &TcpStream,
    size: usize,
    seed: u64,
    timeout: Duration,
    rec: &mut RunRecord,
) -> Result<()> {
    let timed_out = Arc::new(AtomicBool::new(false));
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let watchdog = {
        let timed_out = timed_out.clone();
        let wd_sock = sock.try_clone()?;
        thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = done_rx.recv_timeout(timeout) {
                timed_out.store(true, Ordering::SeqCst);
                let _ = wd_sock.shutdown(Shutdown::Both);
            }
        })
    };
    let wrote = write_pattern(
        sock.try_clone()?,
        ClientKind::Sequential,
        size,
        seed,
        Instant::now() + timeout,
    );
    let mut checker = Checker::new(seed);
    let read = match &wrote {
        Ok(_) => read_blocking(sock, &mut checker, rec),
        Err(_) => Ok(()),
    };
    let _ = done_tx.send(());
    let _ = watchdog.join();
    rec.received = checker.pos;
    rec.first_mismatch = checker.first_mismatch;
    rec.timed_out = timed_out.load(Ordering::SeqCst);
    match wrote {
        Ok(n) => rec.sent = n,
        Err((n, e)) => {
            rec.sent = n;
            if !rec.timed_out {
                bail!("write after {n} bytes: {e}");
            }
        }
    }
    read.context("read")?;
    Ok(())
}

/// Writes `size` pattern bytes in chunks of 1..64 KiB (by seed), then `shutdown(SHUT_WR)`.
/// Returns the bytes written (or how far it got, with the error).
fn write_pattern(
    mut s: TcpStream,
    kind: ClientKind,
    size: usize,
    seed: u64,
    deadline: Instant,
) -> std::result::Result<u64, (u64, io::Error)> {
    let chunk = 1024usize << (seed % 7);
    let mut buf = vec![0u8; chunk.min(size)];
    let mut pos = 0usize;
    while pos < size {
        let n = chunk.min(size - pos);
        fill(seed, pos as u64, &mut buf[..n]);
        let mut off = 0;
        while off < n {
            match s.write(&buf[off..n]) {
                Ok(0) => {
                    return Err((
                        (pos + off) as u64,
                        io::Error::new(io::ErrorKind::WriteZero, "write returned 0"),
                    ))
                }
                Ok(w) => off += w,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && kind == ClientKind::Epoll => {
                    if Instant::now() > deadline {
                        return Err(((pos + off) as u64, e));
                    }
                    poll_one(s.as_raw_fd(), libc::POLLOUT, 100);
                }
                Err(e) => return Err(((pos + off) as u64, e)),
            }
        }
        pos += n;
    }
    s.shutdown(Shutdown::Write).map_err(|e| (pos as u64, e))?;
    Ok(pos as u64)
}

fn poll_one(fd: RawFd, events: libc::c_short, ms: i32) {
    let mut p = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    // SAFETY: one valid pollfd; the fd stays open for the call.
    unsafe { libc::poll(&mut p, 1, ms) };
}

/// Plain blocking reads until EOF. EAGAIN cannot happen on a blocking TCP socket without a
/// read timeout; when it does (a socket in a sockhash), it is counted and the read retried.
fn read_blocking(mut s: &TcpStream, c: &mut Checker, rec: &mut RunRecord) -> Result<()> {
    let mut buf = vec![0u8; READ_BUF];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => c.check(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => rec.eagain += 1,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Non-blocking reads driven by a level-triggered epoll until EOF.
fn read_epoll(
    fd: RawFd,
    mut s: &TcpStream,
    c: &mut Checker,
    rec: &mut RunRecord,
    deadline: Instant,
    timed_out: &AtomicBool,
) -> Result<()> {
    // SAFETY: plain syscall; the result is checked and owned below.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if ep < 0 {
        return Err(io::Error::last_os_error()).context("epoll_create1");
    }
    // SAFETY: `ep` is a new fd this function owns.
    let ep = unsafe { OwnedFd::from_raw_fd(ep) };
    let mut ev = libc::epoll_event {
        events: (libc::EPOLLIN | libc::EPOLLRDHUP) as u32,
        u64: 1,
    };
    // SAFETY: valid epoll fd, socket fd and event.
    if unsafe { libc::epoll_ctl(ep.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) } != 0 {
        return Err(io::Error::last_os_error()).context("epoll_ctl");
    }
    let mut buf = vec![0u8; READ_BUF];
    let mut events = [libc::epoll_event { events: 0, u64: 0 }; 1];
    loop {
        if Instant::now() > deadline || timed_out.load(Ordering::SeqCst) {
            timed_out.store(true, Ordering::SeqCst);
            return Ok(());
        }
        // SAFETY: `events` has room for one event.
        let n = unsafe { libc::epoll_wait(ep.as_raw_fd(), events.as_mut_ptr(), 1, 100) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e).context("epoll_wait");
        }
        if n == 0 {
            continue;
        }
        // Readable: drain until EAGAIN or EOF.
        let mut first = true;
        loop {
            match s.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(k) => c.check(&buf[..k]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if first {
                        rec.eagain += 1;
                    }
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
            first = false;
        }
    }
}

fn verify_cleanup() -> Vec<String> {
    let mut left = Vec::new();
    if let Ok(o) = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
    {
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
    procs::report_cleanup(left, "namespaces, veths, pins and processes")
}

// ---------------------------------------------------------------------------------------------
// Summary and report

fn summarize(
    runs: &[RunRecord],
    modes: &[HcMode],
    cells: &[(ClientKind, usize, usize)],
) -> Vec<SummaryRow> {
    let mut out = Vec::new();
    for &mode in modes {
        for &(client, size, _) in cells {
            let rs: Vec<&RunRecord> = runs
                .iter()
                .filter(|r| r.mode == mode && r.client == client && r.size == size)
                .collect();
            if rs.is_empty() {
                continue;
            }
            let ms: Vec<f64> = rs.iter().map(|r| r.micros as f64 / 1000.0).collect();
            out.push(SummaryRow {
                mode,
                client,
                size,
                runs: rs.len(),
                lost_runs: rs.iter().filter(|r| r.lost()).count(),
                lost_bytes: rs.iter().map(|r| r.sent.saturating_sub(r.received)).sum(),
                corrupt_runs: rs.iter().filter(|r| r.corrupt()).count(),
                first_mismatches: rs
                    .iter()
                    .filter_map(|r| r.first_mismatch)
                    .take(10)
                    .collect(),
                error_runs: rs
                    .iter()
                    .filter(|r| r.error.is_some() || r.timed_out)
                    .count(),
                timed_out_runs: rs.iter().filter(|r| r.timed_out).count(),
                eagain_runs: rs.iter().filter(|r| r.eagain > 0).count(),
                eagain_total: rs.iter().map(|r| r.eagain).sum(),
                server_eagain_total: rs.iter().map(|r| r.server_eagain).sum(),
                spliced_runs: (mode == HcMode::Sockmap)
                    .then(|| rs.iter().filter(|r| r.spliced()).count()),
                p50_ms: median(ms.clone()),
                max_ms: ms.iter().copied().reduce(f64::max),
            });
        }
    }
    out
}

pub fn markdown(doc: &Document) -> String {
    let mut s = String::new();
    let m = &doc.machine;
    let _ = writeln!(
        s,
        "### Half-close stress, {} — {} ({} cpus), kernel {}\n",
        doc.date, m.cpu_model, m.cpus, m.kernel
    );
    let total: usize = doc.summary.iter().map(|r| r.runs).sum();
    let _ = writeln!(
        s,
        "{}. {total} runs in {:.0} s. Each run: one connection; the client's writer thread sends \
         N pattern bytes and calls shutdown(SHUT_WR) while its reader reads the echo to EOF; the \
         server echoes as it reads and closes after EOF. {}\n",
        doc.topology,
        doc.wall_s,
        if doc.passed {
            "**Passed**: no byte lost or reordered, splicing verified, no EAGAIN on plain TCP."
        } else {
            "**FAILED** (see below)."
        }
    );
    let _ = writeln!(
        s,
        "| mode | client | size | runs | lost runs (bytes) | reordered/corrupt runs | other \
         failures | runs with EAGAIN | EAGAINs | server EAGAINs | spliced runs | run p50 ms | \
         run max ms |\n|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for r in &doc.summary {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} ({}) | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.mode.name(),
            r.client.name(),
            size_label(r.size),
            r.runs,
            r.lost_runs,
            r.lost_bytes,
            r.corrupt_runs,
            r.error_runs,
            r.eagain_runs,
            r.eagain_total,
            r.server_eagain_total,
            r.spliced_runs
                .map(|n| n.to_string())
                .unwrap_or_else(|| "–".into()),
            r.p50_ms.map(|v| format!("{v:.2}")).unwrap_or_default(),
            r.max_ms.map(|v| format!("{v:.1}")).unwrap_or_default(),
        );
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "EAGAIN: `blocking` and `sequential` count reads of the blocking socket that returned \
         EAGAIN (plain TCP never does; retried); `epoll` counts reads that returned EAGAIN right \
         after epoll reported the socket readable (harmless for a non-blocking socket). \
         `sequential`: one thread writes, calls shutdown(SHUT_WR), then reads (sizes up to 64 \
         KiB).\n"
    );
    for c in &doc.checks {
        if let Some(msgs) = c.metrics_redirected_messages {
            let _ = writeln!(
                s,
                "- {}: strait's /metrics over the mode: redirected messages +{msgs}, bytes +{}, \
                 misses +{}{}",
                c.mode.name(),
                c.metrics_redirected_bytes.unwrap_or(0),
                c.metrics_misses.unwrap_or(0),
                if c.problems.is_empty() {
                    String::new()
                } else {
                    format!("; PROBLEMS: {}", c.problems.join("; "))
                }
            );
        } else if !c.problems.is_empty() {
            let _ = writeln!(
                s,
                "- {}: PROBLEMS: {}",
                c.mode.name(),
                c.problems.join("; ")
            );
        }
    }
    if !doc.failures.is_empty() {
        let _ = writeln!(s, "\nFailures:\n");
        for f in &doc.failures {
            let _ = writeln!(s, "- {f}");
        }
    }
    if let Some(v) = &doc.strait {
        let _ = writeln!(s, "\nstrait: {v}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    impl HalfcloseArgs {
        fn parse_from_defaults() -> Self {
            use clap::Parser;
            #[derive(Parser)]
            struct Cli {
                #[command(flatten)]
                args: HalfcloseArgs,
            }
            Cli::parse_from(["halfclose"]).args
        }
    }

    #[test]
    fn pattern_is_position_dependent_and_chunking_invariant() {
        let mut whole = vec![0u8; 1000];
        fill(7, 0, &mut whole);
        let mut parts = vec![0u8; 1000];
        for (i, c) in parts.chunks_mut(13).enumerate() {
            fill(7, (i * 13) as u64, c);
        }
        assert_eq!(whole, parts);
        let mut other = vec![0u8; 1000];
        fill(8, 0, &mut other);
        assert_ne!(whole, other);
        // Swapping two 8-byte words is detected.
        let mut c = Checker::new(7);
        let mut swapped = whole.clone();
        swapped[..8].copy_from_slice(&whole[8..16]);
        swapped[8..16].copy_from_slice(&whole[..8]);
        c.check(&swapped);
        assert_eq!(c.first_mismatch, Some(0));
        let mut ok = Checker::new(7);
        ok.check(&whole[..500]);
        ok.check(&whole[500..]);
        assert_eq!(ok.first_mismatch, None);
        assert_eq!(ok.pos, 1000);
        // A lost byte in the middle shows at its offset.
        let mut lost = Checker::new(7);
        lost.check(&whole[..100]);
        lost.check(&whole[101..]);
        assert_eq!(lost.first_mismatch, Some(100));
    }

    #[test]
    fn json_has_one_line_per_run() -> Result<()> {
        let rec = |seed| RunRecord {
            mode: HcMode::Sockmap,
            client: ClientKind::Blocking,
            size: 64,
            seed,
            sent: 64,
            received: 64,
            first_mismatch: None,
            eagain: 1,
            server_eagain: 0,
            error: None,
            timed_out: false,
            micros: 300,
            wire_bytes: 1000,
            splice: Some(SpliceDelta::default()),
        };
        let doc = Document {
            date: "2026-11-22".into(),
            tool: "t".into(),
            command: "c".into(),
            machine: Machine::collect(),
            strait: None,
            settings: HalfcloseArgs::parse_from_defaults(),
            sizes: vec![64],
            runs_per_cell: vec![(ClientKind::Blocking, 64, 2)],
            topology: String::new(),
            pattern: String::new(),
            passed: true,
            failures: Vec::new(),
            checks: Vec::new(),
            summary: Vec::new(),
            runs: vec![rec(1), rec(2)],
            wall_s: 1.0,
            cleanup: Vec::new(),
        };
        let text = to_json(&doc)?;
        let v: serde_json::Value = serde_json::from_str(&text)?;
        assert_eq!(v["runs"].as_array().map(Vec::len), Some(2));
        assert_eq!(v["runs"][1]["seed"], 2);
        // Compact run lines (no space after the colon), one per run.
        assert_eq!(
            text.lines()
                .filter(|l| l.trim_start().starts_with("{\"mode\":\"sockmap\""))
                .count(),
            2
        );
        Ok(())
    }

    #[test]
    fn runs_spread_over_cells() {
        let args = HalfcloseArgs {
            modes: vec![HcMode::Veth],
            clients: vec![ClientKind::Blocking, ClientKind::Epoll],
            sizes: None,
            total_runs: None,
            runs: None,
            short: false,
            fail_on_eagain: false,
            timeout_secs: 20,
            port: 7800,
            seed: None,
            strait: None,
            out: None,
            quiet: false,
            keep_tmp: false,
        };
        let sizes = [1, 64, 1024, 16 << 10, 64 << 10, 1 << 20, 4 << 20];
        let c = cells(&args, &sizes);
        assert_eq!(c.len(), 14);
        assert_eq!(c.iter().map(|x| x.2).sum::<usize>(), 1000);
        let plan = schedule(&c);
        assert_eq!(plan.len(), 1000);
        // Interleaved: the first 14 runs cover every cell once.
        assert_eq!(plan[..14].len(), 14);
        assert_eq!(plan[0], (ClientKind::Blocking, 1));
        assert_eq!(plan[7], (ClientKind::Epoll, 1));
        let short = HalfcloseArgs {
            short: true,
            ..args.clone()
        };
        assert_eq!(
            cells(&short, &SHORT_SIZES)
                .iter()
                .map(|x| x.2)
                .sum::<usize>(),
            100
        );
        let fixed = HalfcloseArgs {
            runs: Some(3),
            ..args.clone()
        };
        assert!(cells(&fixed, &sizes).iter().all(|x| x.2 == 3));
        // `sequential` skips sizes whose echo would not fit the socket buffers.
        let seq = HalfcloseArgs {
            clients: vec![ClientKind::Sequential],
            ..args
        };
        let c = cells(&seq, &sizes);
        assert_eq!(c.len(), 5);
        assert!(c.iter().all(|x| x.1 <= SEQUENTIAL_MAX));
        assert_eq!(c.iter().map(|x| x.2).sum::<usize>(), 1000);
    }
}
