//! `strait-bench peers`: strait vs nginx vs haproxy in front of one shared upstream.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, ValueEnum};
use serde::Serialize;

use crate::configs;
use crate::cpucap::CpuCap;
use crate::load::{self, LoadResult, LoadSpec, Proto};
use crate::procs::{self, Service, TempDir};
use crate::report;

pub(crate) const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    Strait,
    Nginx,
    Haproxy,
    /// Load generator straight to the upstream: the ceiling of this machine/setup.
    Direct,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::Strait => "strait",
            Target::Nginx => "nginx",
            Target::Haproxy => "haproxy",
            Target::Direct => "direct (no proxy)",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProtoArg {
    H1,
    H2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamProto {
    /// Every proxy forwards HTTP/2 downstream traffic to the upstream over HTTP/1.1.
    Http1,
    /// strait and haproxy forward h2 over h2c; nginx (no HTTP/2 upstreams) is skipped.
    Http2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Pin {
    /// Pin the proxy to the last `--workers` allowed CPUs and the load generator + upstream to
    /// the others, when there are more CPUs than workers.
    Auto,
    Off,
}

#[derive(Debug, Clone, Args, Serialize)]
pub struct PeersArgs {
    /// Worker processes/threads for every proxy (strait runtime.workers, nginx
    /// worker_processes, haproxy nbthread).
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Path to the strait binary (relative paths are also tried against the workspace root).
    #[arg(long, default_value = "target/release/strait")]
    pub strait_bin: PathBuf,
    /// Targets to run, comma separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "strait,nginx,haproxy,direct"
    )]
    pub only: Vec<Target>,
    /// Protocols to run, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "h1,h2")]
    pub protocols: Vec<ProtoArg>,
    /// Repeats per (target, protocol); targets are interleaved run by run. strait and nginx
    /// are compared repeat by repeat, with a 95 % confidence interval that needs at least 6.
    #[arg(long, default_value_t = 12)]
    pub repeats: usize,
    /// Measured load duration per run, seconds.
    #[arg(long, default_value_t = 3)]
    pub duration: u64,
    /// Unmeasured warm-up load before each measured run, seconds (0 = none).
    #[arg(long, default_value_t = 1)]
    pub warmup: u64,
    /// wrk connections (HTTP/1.1).
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// wrk threads.
    #[arg(long, default_value_t = 1)]
    pub wrk_threads: usize,
    /// h2load clients (connections) for HTTP/2.
    #[arg(long, default_value_t = 16)]
    pub h2_clients: usize,
    /// h2load max concurrent streams per connection.
    #[arg(long, default_value_t = 10)]
    pub h2_streams: usize,
    /// h2load threads.
    #[arg(long, default_value_t = 1)]
    pub h2_threads: usize,
    /// How proxies talk to the upstream for HTTP/2 runs.
    #[arg(long, value_enum, default_value = "http1")]
    pub h2_upstream: UpstreamProto,
    /// worker_processes of the shared upstream nginx.
    #[arg(long, default_value_t = 1)]
    pub upstream_workers: usize,
    /// Before each run, wait while machine-wide CPU use is above this % of all cpus (other
    /// work on the machine ruins the numbers).
    #[arg(long, default_value_t = 10.0)]
    pub idle_threshold: f64,
    /// Maximum seconds to wait for the machine to go idle before each run (then run anyway;
    /// the JSON records it).
    #[arg(long, default_value_t = 600)]
    pub idle_wait: u64,
    /// A run during which more than this many cores went to work other than proxy, upstream
    /// and load generator is considered noisy and redone (up to --noisy-retries times).
    #[arg(long, default_value_t = 0.1)]
    pub max_other_cores: f64,
    /// How often a noisy run is redone before its result is kept anyway (flagged in the JSON).
    #[arg(long, default_value_t = 2)]
    pub noisy_retries: usize,
    /// CPU pinning (taskset).
    #[arg(long, value_enum, default_value = "auto")]
    pub pin: Pin,
    /// Cap every proxy at this many cores (a CFS quota on a cgroup of its own, the same for
    /// every target), so the proxy, not the load generator and upstream, limits rps.
    /// Latency under a quota includes the throttled time; read p50/p99 from uncapped runs.
    #[arg(long)]
    pub proxy_cpu: Option<f64>,
    /// JSON output path [default: benches/results/peers-<date>.json].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Do not run setup.sh (tools must already be installed).
    #[arg(long)]
    pub skip_setup: bool,
    /// Keep the temp dir with generated configs and logs.
    #[arg(long)]
    pub keep_tmp: bool,
}

/// One measured run of one target.
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    pub target: Target,
    pub protocol: Proto,
    pub repeat: usize,
    /// Position of this run in the whole session (0-based).
    pub seq: usize,
    pub error: Option<String>,
    pub load: Option<LoadResult>,
    /// utime+stime of the proxy's process tree during the measured window.
    pub proxy_cpu_s: Option<f64>,
    pub proxy_cpu_ms_per_1k_req: Option<f64>,
    /// proxy_cpu_s / wall seconds: how many cores the proxy kept busy.
    pub proxy_cpu_cores: Option<f64>,
    /// Sum of VmHWM over the proxy's processes.
    pub proxy_peak_rss_kib: Option<u64>,
    pub proxy_processes: Option<usize>,
    /// Threads summed over the proxy's processes, at the end of the run.
    pub proxy_threads: Option<u64>,
    /// CPU the load generator (wrk/h2load) used during the measured window, in cores.
    pub loadgen_cpu_cores: Option<f64>,
    /// CPU the shared upstream used during the measured window, in cores.
    pub upstream_cpu_cores: Option<f64>,
    /// Machine CPU not accounted to proxy, upstream or load generator during the measured
    /// window (other processes + unattributed irq/softirq), in cores. Noise indicator.
    pub other_cpu_cores: Option<f64>,
    /// Machine-wide busy % (of all cpus) in the second before the run started.
    pub background_busy_pct_before: Option<f64>,
    pub waited_for_idle_s: f64,
    /// 1 + number of times the run was redone because `other_cpu_cores` was too high.
    pub attempts: usize,
    pub loadavg_before: String,
}

/// strait against nginx on one protocol, repeat by repeat: the two ran seconds apart in the same
/// repeat, so a ratio within a repeat cancels most of the machine's drift between repeats.
#[derive(Debug, Clone, Serialize)]
pub struct Paired {
    pub protocol: Proto,
    /// strait rps / nginx rps, one per repeat in which both runs succeeded.
    pub rps: Ratio,
    /// nginx p99 / strait p99 (above 1: strait's p99 is the lower), same repeats.
    pub p99: Ratio,
}

/// Per-repeat ratios, their median and its confidence interval.
#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    pub per_repeat: Vec<f64>,
    pub median: Option<f64>,
    pub ci: Option<report::MedianCi>,
}

impl Ratio {
    fn new(per_repeat: Vec<f64>) -> Self {
        Self {
            median: report::median(per_repeat.clone()),
            ci: report::median_ci(&per_repeat, report::CI_LEVEL),
            per_repeat,
        }
    }

    /// The target "this ratio is at least 1", judged on the interval.
    fn verdict(&self, target: String, what: &str) -> report::Verdict {
        let x = &self.per_repeat;
        let lo = x.iter().copied().reduce(f64::min).unwrap_or(f64::NAN);
        let hi = x.iter().copied().reduce(f64::max).unwrap_or(f64::NAN);
        let met = report::at_least(self.ci, 1.0);
        report::Verdict {
            target,
            measured: format!(
                "{what} {:.3} (median of {} paired repeats; {}; per repeat {lo:.3}–{hi:.3})",
                self.median.unwrap_or(f64::NAN),
                x.len(),
                report::ci_text(self.ci),
            ),
            met,
            inconclusive: met.is_none() && self.ci.is_some(),
        }
    }
}

/// Pairs strait's and nginx's runs of the same repeat, per protocol (failed runs drop out).
pub fn pair(runs: &[RunRecord], protos: &[Proto]) -> Vec<Paired> {
    let load = |t: Target, p: Proto, k: usize| {
        runs.iter()
            .find(|r| r.target == t && r.protocol == p && r.repeat == k && r.error.is_none())
            .and_then(|r| r.load.as_ref())
    };
    let repeats = runs.iter().map(|r| r.repeat + 1).max().unwrap_or(0);
    let mut out = Vec::new();
    for &protocol in protos {
        let (mut rps, mut p99) = (Vec::new(), Vec::new());
        for k in 0..repeats {
            if let (Some(s), Some(n)) = (
                load(Target::Strait, protocol, k),
                load(Target::Nginx, protocol, k),
            ) {
                if n.rps > 0.0 && s.p99_ms > 0.0 {
                    rps.push(s.rps / n.rps);
                    p99.push(n.p99_ms / s.p99_ms);
                }
            }
        }
        if !rps.is_empty() {
            out.push(Paired {
                protocol,
                rps: Ratio::new(rps),
                p99: Ratio::new(p99),
            });
        }
    }
    out
}

/// The proxy core issue's targets, per protocol: strait's rps at least nginx's, and its p99
/// at most nginx's, each judged on the paired ratios' confidence interval.
pub fn verdicts(paired: &[Paired]) -> Vec<report::Verdict> {
    paired
        .iter()
        .flat_map(|p| {
            let proto = p.protocol.label();
            [
                p.rps
                    .verdict(format!("{proto}: strait rps ≥ nginx rps"), "strait/nginx"),
                p.p99.verdict(
                    format!("{proto}: strait p99 ≤ nginx p99"),
                    "nginx/strait p99",
                ),
            ]
        })
        .collect()
}

impl RunRecord {
    /// A run not measured yet, with the load average before it.
    fn new(target: Target, proto: Proto, repeat: usize, seq: usize) -> Self {
        Self {
            target,
            protocol: proto,
            repeat,
            seq,
            error: None,
            load: None,
            proxy_cpu_s: None,
            proxy_cpu_ms_per_1k_req: None,
            proxy_cpu_cores: None,
            proxy_peak_rss_kib: None,
            proxy_processes: None,
            proxy_threads: None,
            loadgen_cpu_cores: None,
            upstream_cpu_cores: None,
            other_cpu_cores: None,
            background_busy_pct_before: None,
            waited_for_idle_s: 0.0,
            attempts: 1,
            loadavg_before: fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .trim()
                .to_string(),
        }
    }
}

struct Ports {
    upstream_h1: u16,
    upstream_h2: u16,
    proxy: u16,
    admin: u16,
}

struct Ctx {
    args: PeersArgs,
    dir: PathBuf,
    ports: Ports,
    spec: LoadSpec,
    proxy_cpus: Option<String>,
    strait_bin: Option<PathBuf>,
    clk_tck: u64,
    cap: Option<CpuCap>,
}

pub fn run(args: PeersArgs) -> Result<()> {
    if args.workers == 0 || args.repeats == 0 || args.duration == 0 {
        bail!("--workers, --repeats and --duration must be at least 1");
    }
    let mut targets = args.only.clone();
    targets.dedup();
    let protos: Vec<Proto> = {
        let mut p: Vec<Proto> = args
            .protocols
            .iter()
            .map(|p| match p {
                ProtoArg::H1 => Proto::H1,
                ProtoArg::H2 => Proto::H2,
            })
            .collect();
        p.dedup();
        p
    };

    if !args.skip_setup {
        run_setup()?;
    }
    for tool in ["nginx", "wrk", "h2load", "taskset"] {
        require_tool(tool)?;
    }
    if targets.contains(&Target::Haproxy) {
        require_tool("haproxy")?;
    }
    let strait_bin = if targets.contains(&Target::Strait) {
        Some(resolve_strait(&args.strait_bin)?)
    } else {
        None
    };

    let (proxy_cpus, client_cpus) = plan_cpus(args.pin, args.workers)?;
    let cap = args.proxy_cpu.map(CpuCap::create).transpose()?;
    let tmp = TempDir::new("strait-bench", args.keep_tmp)?;
    // Run a private copy so a rebuild of target/release/strait mid-session cannot mix versions.
    let strait_copy = match &strait_bin {
        Some(src) => {
            let dst = tmp.path().join("strait");
            fs::copy(src, &dst).with_context(|| format!("copying {}", src.display()))?;
            Some(dst)
        }
        None => None,
    };
    let ports = {
        // Hold all listeners until every port is chosen so they are distinct.
        let ls: Vec<std::net::TcpListener> = (0..4)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
            .collect::<std::io::Result<_>>()
            .context("reserving ports")?;
        let p: Vec<u16> = ls
            .iter()
            .map(|l| l.local_addr().map(|a| a.port()))
            .collect::<std::io::Result<_>>()?;
        Ports {
            upstream_h1: p[0],
            upstream_h2: p[1],
            proxy: p[2],
            admin: p[3],
        }
    };
    let spec = LoadSpec {
        wrk_threads: args.wrk_threads,
        wrk_connections: args.connections,
        h2_threads: args.h2_threads,
        h2_clients: args.h2_clients,
        h2_streams: args.h2_streams,
        cpus: client_cpus.clone(),
    };
    let ctx = Ctx {
        dir: tmp.path().to_path_buf(),
        ports,
        spec,
        proxy_cpus,
        strait_bin: strait_copy,
        clk_tck: procs::clk_tck(),
        cap,
        args,
    };

    let date = today_utc();
    let out_path = report::results_path(ctx.args.out.as_ref(), "peers", &date);

    // Shared upstream, started once and used by every target.
    let up_conf = ctx.dir.join("upstream.conf");
    fs::write(
        &up_conf,
        configs::upstream_nginx(
            &ctx.dir,
            ctx.args.upstream_workers,
            ctx.ports.upstream_h1,
            ctx.ports.upstream_h2,
        ),
    )?;
    let mut upstream = Service::spawn(
        "upstream-nginx",
        pinned(
            client_cpus.as_deref(),
            "nginx",
            &nginx_args(&ctx.dir, &up_conf, "upstream"),
        ),
        &ctx.dir.join("upstream.log"),
    )?;
    upstream.wait_listening(ctx.ports.upstream_h1, Duration::from_secs(10))?;
    upstream.wait_listening(ctx.ports.upstream_h2, Duration::from_secs(10))?;
    check_ok_response(ctx.ports.upstream_h1).context("upstream sanity check")?;

    let meta = report::Meta::collect(&ctx.args, strait_bin.as_deref(), &date)?;
    let mut commands = Vec::new();
    for &proto in &protos {
        let argv = load::argv(
            &ctx.spec,
            proto,
            ctx.ports.proxy,
            ctx.args.duration,
            &ctx.dir.join("h2load.log"),
        );
        commands.push((proto, load::shell_line(&argv)));
    }
    print_plan(&ctx, &targets, &protos, &commands, &meta);

    let total = ctx.args.repeats * protos.len() * targets.len();
    let mut runs: Vec<RunRecord> = Vec::new();
    let started = Instant::now();
    for repeat in 0..ctx.args.repeats {
        for &proto in &protos {
            // Rotate the order every repeat so no target always runs first/last.
            let mut order = targets.clone();
            if !order.is_empty() {
                let k = repeat % order.len();
                order.rotate_left(k);
            }
            for &target in &order {
                if target == Target::Nginx
                    && proto == Proto::H2
                    && ctx.args.h2_upstream == UpstreamProto::Http2
                {
                    continue; // nginx cannot proxy to an HTTP/2 upstream
                }
                let seq = runs.len();
                eprint!(
                    "[{:>3}/{total}] repeat {} {:<8} {:<18} ",
                    seq + 1,
                    repeat + 1,
                    short(proto),
                    target.name()
                );
                let mut rec = run_one(&ctx, &mut upstream, target, proto, repeat, seq);
                while rec.error.is_none()
                    && rec.other_cpu_cores.unwrap_or(0.0) > ctx.args.max_other_cores
                    && rec.attempts <= ctx.args.noisy_retries
                {
                    eprint!(
                        "noisy ({:.2} cores of other work), redoing… ",
                        rec.other_cpu_cores.unwrap_or(0.0)
                    );
                    let attempts = rec.attempts;
                    rec = run_one(&ctx, &mut upstream, target, proto, repeat, seq);
                    rec.attempts = attempts + 1;
                }
                match (&rec.error, &rec.load) {
                    (Some(e), _) => eprintln!("FAILED: {e}"),
                    (None, Some(l)) => eprintln!(
                        "{:>9.0} rps  p50 {:.2} ms  p99 {:.2} ms{}  [cores: proxy {} client {} \
                         upstream {} other {}]{}",
                        l.rps,
                        l.p50_ms,
                        l.p99_ms,
                        rec.proxy_cpu_ms_per_1k_req
                            .map(|c| format!("  cpu {c:.1} ms/1k"))
                            .unwrap_or_default(),
                        fmt_cores(rec.proxy_cpu_cores),
                        fmt_cores(rec.loadgen_cpu_cores),
                        fmt_cores(rec.upstream_cpu_cores),
                        fmt_cores(rec.other_cpu_cores),
                        if l.errors + l.non_2xx > 0 {
                            format!("  ERRORS {} non-2xx {}", l.errors, l.non_2xx)
                        } else {
                            String::new()
                        }
                    ),
                    (None, None) => eprintln!(),
                }
                runs.push(rec);
            }
        }
    }
    eprintln!("all runs done in {:.0} s", started.elapsed().as_secs_f64());

    let summary = report::summarize(&runs, &targets, &protos);
    let paired = pair(&runs, &protos);
    let verdicts = verdicts(&paired);
    let md = report::markdown(&meta, &verdicts, &summary, &commands, &ctx.args);
    println!("{md}");

    let doc = report::Document {
        meta,
        load_commands: commands
            .iter()
            .map(|(p, c)| report::CommandLine {
                protocol: *p,
                command: c.clone(),
            })
            .collect(),
        targets: verdicts,
        paired,
        summary,
        runs: runs.clone(),
    };
    report::write_results(&out_path, &doc)?;

    drop(upstream);
    let failed = runs.iter().filter(|r| r.error.is_some()).count();
    if failed > 0 {
        bail!("{failed} of {} runs failed (see above / JSON)", runs.len());
    }
    Ok(())
}

fn fmt_cores(v: Option<f64>) -> String {
    v.map(|c| format!("{c:.2}")).unwrap_or_else(|| "-".into())
}

fn short(p: Proto) -> &'static str {
    match p {
        Proto::H1 => "http/1.1",
        Proto::H2 => "http/2",
    }
}

fn print_plan(
    ctx: &Ctx,
    targets: &[Target],
    protos: &[Proto],
    commands: &[(Proto, String)],
    meta: &report::Meta,
) {
    let a = &ctx.args;
    eprintln!("strait-bench peers");
    eprintln!(
        "  targets: {}",
        targets
            .iter()
            .map(|t| t.name())
            .collect::<Vec<_>>()
            .join(", ")
    );
    eprintln!(
        "  protocols: {}",
        protos
            .iter()
            .map(|p| p.label())
            .collect::<Vec<_>>()
            .join(", ")
    );
    eprintln!(
        "  workers {}  repeats {}  duration {}s  warmup {}s  h2 upstream {:?}",
        a.workers, a.repeats, a.duration, a.warmup, a.h2_upstream
    );
    eprintln!(
        "  cpus: proxy {}  load generator + upstream {}",
        ctx.proxy_cpus.as_deref().unwrap_or("unpinned"),
        ctx.spec.cpus.as_deref().unwrap_or("unpinned")
    );
    if let Some(cap) = &ctx.cap {
        eprintln!(
            "  every proxy capped at {} cores (CFS quota on a cgroup of its own)",
            cap.cores()
        );
    }
    for v in &meta.versions {
        eprintln!("  {}: {}", v.tool, v.version);
    }
    eprintln!("  load commands (port = the proxy under test; direct uses the upstream's port):");
    for (p, c) in commands {
        eprintln!("    {}: {c}", short(*p));
    }
    let per_run = a.duration + a.warmup + 1;
    let n = a.repeats * protos.len() * targets.len();
    eprintln!("  {n} runs, expected ~{} s", n as u64 * per_run);
}

fn run_one(
    ctx: &Ctx,
    upstream: &mut Service,
    target: Target,
    proto: Proto,
    repeat: usize,
    seq: usize,
) -> RunRecord {
    let mut rec = RunRecord::new(target, proto, repeat, seq);
    if let Err(e) = measure(ctx, upstream, target, proto, seq, &mut rec) {
        rec.error = Some(format!("{e:#}"));
    }
    rec
}

fn measure(
    ctx: &Ctx,
    upstream: &mut Service,
    target: Target,
    proto: Proto,
    seq: usize,
    rec: &mut RunRecord,
) -> Result<()> {
    upstream.check_alive()?;
    let (busy, waited) = wait_idle(ctx);
    rec.background_busy_pct_before = busy;
    rec.waited_for_idle_s = waited;
    let upstream_h2 = proto == Proto::H2 && ctx.args.h2_upstream == UpstreamProto::Http2;
    let upstream_port = if upstream_h2 {
        ctx.ports.upstream_h2
    } else {
        ctx.ports.upstream_h1
    };
    let port = match (target, proto) {
        (Target::Direct, Proto::H1) => ctx.ports.upstream_h1,
        (Target::Direct, Proto::H2) => ctx.ports.upstream_h2,
        _ => ctx.ports.proxy,
    };

    let mut proxy = start_proxy(ctx, target, proto, upstream_port, upstream_h2, seq)?;
    if let Some(p) = proxy.as_mut() {
        p.wait_listening(port, Duration::from_secs(15))?;
    }
    if proto == Proto::H1 {
        check_ok_response(port).with_context(|| format!("{} sanity GET", target.name()))?;
    }

    let log = ctx.dir.join("h2load.log");
    let timeout = |secs: u64| Duration::from_secs(secs + 30);
    if ctx.args.warmup > 0 {
        let argv = load::argv(&ctx.spec, proto, port, ctx.args.warmup, &log);
        let w = run_load(ctx, &argv, proto, &log, timeout(ctx.args.warmup), "warmup")?;
        if w.requests == 0 || w.non_2xx > 0 {
            bail!(
                "warm-up got {} ok responses, {} non-2xx",
                w.requests,
                w.non_2xx
            );
        }
    }
    if let Some(p) = proxy.as_mut() {
        p.check_alive()?;
    }

    let pid = proxy.as_ref().map(|p| p.pid());
    let before = Snapshot::take(pid, upstream.pid());
    let t0 = Instant::now();
    let argv = load::argv(&ctx.spec, proto, port, ctx.args.duration, &log);
    let r = run_load(ctx, &argv, proto, &log, timeout(ctx.args.duration), "load")?;
    let wall = t0.elapsed().as_secs_f64();
    let after = Snapshot::take(pid, upstream.pid());
    let cores = |ticks: u64| ticks as f64 / ctx.clk_tck as f64 / wall;
    let d_proxy = after
        .proxy
        .unwrap_or(0)
        .saturating_sub(before.proxy.unwrap_or(0));
    let d_up = after.upstream.saturating_sub(before.upstream);
    let d_me = after.me.saturating_sub(before.me);
    rec.loadgen_cpu_cores = Some(cores(d_me));
    rec.upstream_cpu_cores = Some(cores(d_up));
    if let (Some(b), Some(a)) = (before.system, after.system) {
        let busy = a.0.saturating_sub(b.0);
        // Whatever the machine did besides proxy + upstream + load generator (+ harness):
        // other processes, plus interrupt/softirq time not charged to any of them.
        rec.other_cpu_cores = Some(cores(busy.saturating_sub(d_proxy + d_up + d_me)));
    }
    let cpu_before = before.proxy;
    let cpu_after = after.proxy;

    if let Some(p) = proxy.as_mut() {
        p.check_alive()
            .with_context(|| format!("{} died during the run", p.name()))?;
        let mem = procs::tree_mem(p.pid());
        rec.proxy_peak_rss_kib = Some(mem.peak_rss_kib);
        rec.proxy_processes = Some(mem.processes);
        rec.proxy_threads = Some(mem.threads);
    }
    if let (Some(b), Some(a)) = (cpu_before, cpu_after) {
        let cpu_s = a.saturating_sub(b) as f64 / ctx.clk_tck as f64;
        rec.proxy_cpu_s = Some(cpu_s);
        rec.proxy_cpu_cores = Some(cpu_s / wall);
        if r.requests > 0 {
            rec.proxy_cpu_ms_per_1k_req = Some(cpu_s * 1000.0 / (r.requests as f64 / 1000.0));
        }
    }
    if r.requests == 0 {
        bail!("no successful requests");
    }
    rec.load = Some(r);
    // Stop before the next target starts.
    drop(proxy);
    // Let sockets in TIME_WAIT and the scheduler settle a little between runs.
    sleep(Duration::from_millis(300));
    Ok(())
}

pub(crate) struct Snapshot {
    pub proxy: Option<u64>,
    pub upstream: u64,
    pub me: u64,
    pub system: Option<(u64, u64)>,
}

impl Snapshot {
    pub fn take(proxy: Option<u32>, upstream: u32) -> Self {
        Self {
            proxy: proxy.map(procs::tree_cpu_ticks),
            upstream: procs::tree_cpu_ticks(upstream),
            me: procs::self_ticks(),
            system: procs::system_ticks(),
        }
    }
}

fn wait_idle(ctx: &Ctx) -> (Option<f64>, f64) {
    wait_for_idle(ctx.args.idle_threshold, ctx.args.idle_wait)
}

/// Samples machine-wide CPU use for 0.5 s (nothing of ours is busy at this point) and, while it
/// is above `threshold` % of all cpus, waits, up to `max_wait` seconds. Returns (last busy %,
/// seconds waited).
pub(crate) fn wait_for_idle(threshold: f64, max_wait: u64) -> (Option<f64>, f64) {
    let start = Instant::now();
    let mut announced = false;
    loop {
        let a = procs::system_ticks();
        sleep(Duration::from_millis(500));
        let b = procs::system_ticks();
        let pct = match (a, b) {
            (Some(a), Some(b)) if b.1 > a.1 => {
                (b.0.saturating_sub(a.0)) as f64 * 100.0 / (b.1 - a.1) as f64
            }
            _ => return (None, 0.0),
        };
        let waited = start.elapsed().as_secs_f64() - 0.5;
        if pct <= threshold || waited >= max_wait as f64 {
            if announced {
                eprint!("(waited {waited:.0} s, now {pct:.0}% busy) ");
            }
            return (Some(pct), waited.max(0.0));
        }
        if !announced {
            eprint!("machine {pct:.0}% busy, waiting for it to go idle… ");
            announced = true;
        }
        sleep(Duration::from_secs(4));
    }
}

fn run_load(
    ctx: &Ctx,
    argv: &[String],
    proto: Proto,
    log: &Path,
    timeout: Duration,
    tag: &str,
) -> Result<LoadResult> {
    run_load_in(&ctx.dir, argv, proto, log, timeout, tag)
}

/// Runs one load-generator command (output files in `dir`) and parses its result.
pub(crate) fn run_load_in(
    dir: &Path,
    argv: &[String],
    proto: Proto,
    log: &Path,
    timeout: Duration,
    tag: &str,
) -> Result<LoadResult> {
    let _ = fs::remove_file(log);
    let (status, out, err) = procs::run_bounded(tag, load::command(argv)?, dir, timeout)?;
    if !status.success() {
        bail!("{} failed ({status}): {}{}", argv.join(" "), out, err);
    }
    let r = match proto {
        Proto::H1 => load::parse_wrk(&out),
        Proto::H2 => load::parse_h2load(&out, log),
    };
    let _ = fs::remove_file(log);
    r
}

fn start_proxy(
    ctx: &Ctx,
    target: Target,
    proto: Proto,
    upstream_port: u16,
    upstream_h2: bool,
    seq: usize,
) -> Result<Option<Service>> {
    let w = ctx.args.workers;
    let port = ctx.ports.proxy;
    let h2 = proto == Proto::H2;
    let cpus = ctx.proxy_cpus.as_deref();
    let log = ctx
        .dir
        .join(format!("run{seq}-{}.log", target_slug(target)));
    // Every proxy joins the capped cgroup, when there is one.
    let spawn = |name: &str, cmd: Command, log: &Path| match &ctx.cap {
        Some(cap) => Service::spawn(name, cap.wrap(&cmd), log),
        None => Service::spawn(name, cmd, log),
    };
    let svc = match target {
        Target::Direct => return Ok(None),
        Target::Strait => {
            let bin = ctx
                .strait_bin
                .as_ref()
                .ok_or_else(|| anyhow!("no strait binary"))?;
            let conf = ctx.dir.join("strait.yaml");
            fs::write(
                &conf,
                configs::strait(w, ctx.ports.admin, port, upstream_port, upstream_h2),
            )?;
            let args = vec![
                "run".to_string(),
                "--config".into(),
                conf.display().to_string(),
            ];
            spawn(
                "strait",
                pinned(cpus, &bin.display().to_string(), &args),
                &log,
            )?
        }
        Target::Nginx => {
            if upstream_h2 {
                bail!("nginx cannot proxy to an HTTP/2 upstream");
            }
            let conf = ctx.dir.join("nginx-proxy.conf");
            fs::write(
                &conf,
                configs::nginx_proxy(&ctx.dir, w, port, h2, upstream_port),
            )?;
            spawn(
                "nginx",
                pinned(cpus, "nginx", &nginx_args(&ctx.dir, &conf, "proxy")),
                &log,
            )?
        }
        Target::Haproxy => {
            let conf = ctx.dir.join("haproxy.cfg");
            fs::write(
                &conf,
                configs::haproxy(w, port, h2, upstream_port, upstream_h2),
            )?;
            let args = vec!["-db".to_string(), "-f".into(), conf.display().to_string()];
            spawn("haproxy", pinned(cpus, "haproxy", &args), &log)?
        }
    };
    Ok(Some(svc))
}

fn target_slug(t: Target) -> &'static str {
    match t {
        Target::Strait => "strait",
        Target::Nginx => "nginx",
        Target::Haproxy => "haproxy",
        Target::Direct => "direct",
    }
}

pub(crate) fn nginx_args(dir: &Path, conf: &Path, tag: &str) -> Vec<String> {
    vec![
        "-e".into(),
        dir.join(format!("{tag}-startup-error.log"))
            .display()
            .to_string(),
        "-p".into(),
        dir.display().to_string(),
        "-c".into(),
        conf.display().to_string(),
    ]
}

/// `taskset -c CPUS prog args…` (taskset execs, so the pid is the program's) or plain.
pub(crate) fn pinned(cpus: Option<&str>, prog: &str, args: &[String]) -> Command {
    match cpus {
        Some(c) => {
            let mut cmd = Command::new("taskset");
            cmd.arg("-c").arg(c).arg(prog).args(args);
            cmd
        }
        None => {
            let mut cmd = Command::new(prog);
            cmd.args(args);
            cmd
        }
    }
}

pub(crate) fn check_ok_response(port: u16) -> Result<()> {
    let (status, body) = procs::http1_get(port)?;
    if !status.contains(" 200") || body != "ok\n" {
        bail!("unexpected response from 127.0.0.1:{port}: {status:?} body {body:?}");
    }
    Ok(())
}

pub(crate) fn run_setup() -> Result<()> {
    let script = Path::new(MANIFEST_DIR).join("setup.sh");
    let status = Command::new("sh")
        .arg(&script)
        .status()
        .with_context(|| format!("running {}", script.display()))?;
    if !status.success() {
        bail!("{} failed ({status})", script.display());
    }
    Ok(())
}

pub(crate) fn require_tool(name: &str) -> Result<()> {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name} >/dev/null 2>&1"))
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !found {
        bail!("`{name}` not found; run benches/setup.sh");
    }
    Ok(())
}

pub(crate) fn resolve_strait(p: &Path) -> Result<PathBuf> {
    let mut candidates = vec![p.to_path_buf()];
    if p.is_relative() {
        candidates.push(Path::new(MANIFEST_DIR).join("..").join(p));
    }
    for c in &candidates {
        if c.is_file() {
            return Ok(fs::canonicalize(c)?);
        }
    }
    bail!(
        "strait binary not found at {} (build it with `cargo build --release -p strait`, \
         pass --strait-bin, or leave strait out with --only nginx,haproxy)",
        p.display()
    )
}

/// The CPUs this process may run on (from /proc/self/status `Cpus_allowed_list`).
fn allowed_cpus() -> Result<Vec<usize>> {
    let status = fs::read_to_string("/proc/self/status")?;
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .ok_or_else(|| anyhow!("no Cpus_allowed_list in /proc/self/status"))?;
    let mut cpus = Vec::new();
    for part in list.trim().split(',').filter(|s| !s.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => cpus.extend(a.trim().parse::<usize>()?..=b.trim().parse::<usize>()?),
            None => cpus.push(part.trim().parse()?),
        }
    }
    Ok(cpus)
}

/// (proxy cpus, load generator + upstream cpus) as taskset lists.
pub(crate) fn plan_cpus(pin: Pin, workers: usize) -> Result<(Option<String>, Option<String>)> {
    if pin == Pin::Off {
        return Ok((None, None));
    }
    let cpus = allowed_cpus()?;
    if cpus.len() <= workers {
        eprintln!(
            "note: {} cpus for {workers} proxy workers: not pinning (load generator, upstream and \
             proxy share all cpus)",
            cpus.len()
        );
        return Ok((None, None));
    }
    let (client, proxy) = cpus.split_at(cpus.len() - workers);
    let fmt = |v: &[usize]| {
        v.iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    Ok((Some(fmt(proxy)), Some(fmt(client))))
}

/// `dir/stem.json`, or `dir/stem-2.json`, … if it already exists.
pub(crate) fn unique_path(dir: &Path, stem: &str) -> PathBuf {
    let first = dir.join(format!("{stem}.json"));
    if !first.exists() {
        return first;
    }
    (2..)
        .map(|i| dir.join(format!("{stem}-{i}.json")))
        .find(|p| !p.exists())
        .unwrap_or(first)
}

/// Today's date (UTC) as YYYY-MM-DD.
pub fn today_utc() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Howard Hinnant's days-since-epoch to proleptic Gregorian date.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }

    fn run(target: Target, repeat: usize, rps: f64, p99_ms: f64, ok: bool) -> RunRecord {
        let mut r = RunRecord::new(target, Proto::H1, repeat, 0);
        r.error = (!ok).then(|| "failed".into());
        r.load = Some(LoadResult {
            requests: 1,
            seconds: 1.0,
            rps,
            p50_ms: 1.0,
            p99_ms,
            errors: 0,
            non_2xx: 0,
        });
        r
    }

    #[test]
    fn pairs_strait_with_nginx_within_a_repeat_and_judges_on_the_interval() {
        // Eight repeats: strait at 90 % of nginx's rps in each (while the machine's speed
        // drifts by 2x between repeats), p99 equal in half of them. Repeat 8 has a failed
        // nginx run and must drop out; haproxy is never paired.
        let mut runs = Vec::new();
        for k in 0..8 {
            let speed = if k % 2 == 0 { 1.0 } else { 2.0 };
            let p99 = if k < 4 { 2.0 } else { 1.0 };
            runs.push(run(Target::Strait, k, 90.0 * speed, p99, true));
            runs.push(run(Target::Nginx, k, 100.0 * speed, 1.0, k != 7));
            runs.push(run(Target::Haproxy, k, 500.0, 0.1, true));
        }
        let paired = pair(&runs, &[Proto::H1, Proto::H2]);
        assert_eq!(paired.len(), 1, "no HTTP/2 runs, no HTTP/2 pairs");
        let p = &paired[0];
        assert_eq!(p.rps.per_repeat.len(), 7);
        assert!(p.rps.per_repeat.iter().all(|r| (r - 0.9).abs() < 1e-9));
        let v = verdicts(&paired);
        assert_eq!(v.len(), 2);
        // rps: the whole interval is 0.9, below 1.
        assert_eq!(v[0].met, Some(false));
        assert!(!v[0].inconclusive);
        // p99: ratios 0.5 (4 times) and 1.0 (3 times) -> an interval around 1: inconclusive.
        assert_eq!(v[1].met, None);
        assert!(v[1].inconclusive, "{:?}", v[1]);
        // The other way round (strait faster everywhere) is met.
        for l in runs
            .iter_mut()
            .filter(|r| r.target == Target::Strait)
            .filter_map(|r| r.load.as_mut())
        {
            l.rps *= 1.5;
        }
        assert_eq!(verdicts(&pair(&runs, &[Proto::H1]))[0].met, Some(true));
    }
}
