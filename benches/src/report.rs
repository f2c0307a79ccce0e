//! Aggregation over repeats, the markdown table and the JSON document.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::load::Proto;
use crate::peers::{PeersArgs, RunRecord, Target, UpstreamProto};

/// Where a bench writes its JSON: `out`, or a new `benches/results/<stem>-<date>[-N].json`.
pub fn results_path(out: Option<&PathBuf>, stem: &str, date: &str) -> PathBuf {
    match out {
        Some(p) => p.clone(),
        None => crate::peers::unique_path(
            &Path::new(crate::peers::MANIFEST_DIR).join("results"),
            &format!("{stem}-{date}"),
        ),
    }
}

/// Writes `doc` as pretty JSON to `path` (creating its folder) and says where.
pub fn write_results(path: &Path, doc: &impl Serialize) -> Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::write(path, serde_json::to_string_pretty(doc)? + "\n")
        .with_context(|| format!("writing {}", path.display()))?;
    println!("JSON results: {}", path.display());
    Ok(())
}

/// The markdown table of `targets` (target, measured, met / NOT met, or `unmeasured`), then a
/// blank line.
pub fn targets_table(s: &mut String, targets: &[Verdict], unmeasured: &str) {
    let _ = writeln!(s, "| target | measured | |\n|---|---|---|");
    for v in targets {
        let met = match v.met {
            Some(true) => "**met**",
            Some(false) => "**NOT met**",
            None if v.inconclusive => "**inconclusive** (noise)",
            None => unmeasured,
        };
        let _ = writeln!(s, "| {} | {} | {} |", v.target, v.measured, met);
    }
    let _ = writeln!(s);
}

/// One performance target and what a run measured for it (filters, paths).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Verdict {
    pub target: String,
    pub measured: String,
    /// None: informational, or not measured in this session (or `inconclusive`).
    pub met: Option<bool>,
    /// Measured, but the run cannot tell met from not met: the target lies inside the
    /// confidence interval of what was measured (see [`median_ci`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub inconclusive: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Meta {
    pub date: String,
    pub tool: String,
    pub cpu_model: String,
    pub cpus: usize,
    pub kernel: String,
    pub loadavg_at_start: String,
    pub versions: Vec<Version>,
    pub settings: PeersArgs,
}

impl Meta {
    pub fn collect(args: &PeersArgs, strait: Option<&Path>, date: &str) -> Result<Self> {
        let machine = Machine::collect();
        let v = |tool: &str, version: String| Version {
            tool: tool.into(),
            version,
        };
        let mut versions = vec![
            v("nginx", version_line("nginx", &["-v"])),
            v("haproxy", version_line("haproxy", &["-v"])),
            v("wrk", version_line("wrk", &["-v"])),
            v("h2load", version_line("h2load", &["--version"])),
        ];
        if let Some(bin) = strait {
            versions.push(v("strait", strait_version(bin)));
        }
        Ok(Self {
            date: date.to_string(),
            tool: format!("strait-bench {} peers", env!("CARGO_PKG_VERSION")),
            cpu_model: machine.cpu_model,
            cpus: machine.cpus,
            kernel: machine.kernel,
            loadavg_at_start: machine.loadavg,
            versions,
            settings: args.clone(),
        })
    }
}

/// The machine a session runs on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    pub cpu_model: String,
    pub cpus: usize,
    pub kernel: String,
    pub loadavg: String,
}

impl Machine {
    pub fn collect() -> Self {
        let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|s| s.trim_start_matches([' ', '\t', ':']).trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0);
        let read = |p: &str| fs::read_to_string(p).unwrap_or_default().trim().to_string();
        Self {
            cpu_model,
            cpus,
            kernel: read("/proc/sys/kernel/osrelease"),
            loadavg: read("/proc/loadavg"),
        }
    }
}

/// `strait --version` plus the binary's path and the start of its sha256.
pub fn strait_version(bin: &Path) -> String {
    let line = version_line(&bin.display().to_string(), &["--version"]);
    let sha = Command::new("sha256sum")
        .arg(bin)
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| {
            s.split_whitespace()
                .next()
                .map(|h| h.chars().take(12).collect())
        })
        .unwrap_or_else(|| "?".to_string());
    format!("{line} ({}, sha256 {sha})", bin.display())
}

/// First non-empty line of a tool's combined stdout+stderr (exit status ignored: `wrk -v`
/// exits non-zero).
pub fn version_line(prog: &str, args: &[&str]) -> String {
    match Command::new(prog).args(args).output() {
        Ok(o) => {
            let text = format!(
                "{}\n{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            text.lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("unknown")
                .to_string()
        }
        Err(_) => "unknown".into(),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Version {
    pub tool: String,
    pub version: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub protocol: Proto,
    pub target: Target,
    pub runs_ok: usize,
    pub runs_failed: usize,
    pub rps_median: Option<f64>,
    pub rps_min: Option<f64>,
    pub rps_max: Option<f64>,
    pub p50_ms_median: Option<f64>,
    pub p99_ms_median: Option<f64>,
    pub proxy_cpu_ms_per_1k_req_median: Option<f64>,
    pub proxy_cpu_cores_median: Option<f64>,
    pub proxy_peak_rss_mib_median: Option<f64>,
    pub loadgen_cpu_cores_median: Option<f64>,
    pub upstream_cpu_cores_median: Option<f64>,
    /// Worst (largest) unattributed machine CPU seen in any of the runs: noise indicator.
    pub other_cpu_cores_max: Option<f64>,
    pub errors_total: u64,
    pub non_2xx_total: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CommandLine {
    pub protocol: Proto,
    pub command: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Document {
    pub meta: Meta,
    pub load_commands: Vec<CommandLine>,
    /// The proxy core issue's targets (strait against nginx), judged on `paired`.
    pub targets: Vec<Verdict>,
    pub paired: Vec<crate::peers::Paired>,
    pub summary: Vec<Summary>,
    pub runs: Vec<RunRecord>,
}

/// A confidence interval for the median of some samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MedianCi {
    pub low: f64,
    pub high: f64,
    /// The probability that the interval holds the true median (for independent samples).
    pub coverage: f64,
}

/// A distribution-free confidence interval for the median of `v` from its order statistics:
/// `[x(k), x(n+1-k)]` covers the median with probability `1 - 2 P(B <= k-1)`, where `B` is
/// binomial(n, 1/2). It takes the narrowest such interval whose coverage is at least `level`;
/// with too few samples for that (fewer than 6 for 95 %), the widest one, `[min, max]`, and
/// its smaller coverage (5 samples: 93.75 %). `None` for no samples.
pub fn median_ci(v: &[f64], level: f64) -> Option<MedianCi> {
    let mut x = v.to_vec();
    x.sort_by(f64::total_cmp);
    let n = x.len();
    if n == 0 {
        return None;
    }
    // P(B = k-1) and P(B <= k-1) for B ~ binomial(n, 1/2), stepping k up from 1 with
    // C(n, k) = C(n, k-1) (n-k+1) / k.
    let mut pmf = 0.5f64.powi(n as i32);
    let mut cdf = 0.0;
    let (mut k, mut coverage) = (1, 0.0);
    for j in 1..=n.div_ceil(2) {
        cdf += pmf;
        let c = 1.0 - 2.0 * cdf;
        if j > 1 && c < level {
            break;
        }
        (k, coverage) = (j, c);
        pmf = pmf * (n - (j - 1)) as f64 / j as f64;
    }
    Some(MedianCi {
        low: x[k - 1],
        high: x[n - k],
        coverage,
    })
}

/// The confidence level of every verdict on paired repeats.
pub const CI_LEVEL: f64 = 0.95;

/// A verdict on a target "at least `min`" for the median of paired ratios: met when the whole
/// confidence interval is at or above `min`, not met when all of it is below, `None`
/// (inconclusive, or nothing measured) when `min` lies inside it. With fewer than 6 pairs the
/// interval is `[min, max]` at a lower coverage, which [`ci_text`] states.
pub fn at_least(ci: Option<MedianCi>, min: f64) -> Option<bool> {
    let ci = ci?;
    if ci.low >= min {
        Some(true)
    } else if ci.high < min {
        Some(false)
    } else {
        None
    }
}

pub fn ci_text(ci: Option<MedianCi>) -> String {
    ci.map_or("no confidence interval".into(), |c| {
        format!(
            "{:.1} % confidence interval {:.3}–{:.3}",
            c.coverage * 100.0,
            c.low,
            c.high
        )
    })
}

pub fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

pub fn summarize(runs: &[RunRecord], targets: &[Target], protos: &[Proto]) -> Vec<Summary> {
    let mut out = Vec::new();
    for &protocol in protos {
        for &target in targets {
            let all: Vec<&RunRecord> = runs
                .iter()
                .filter(|r| r.protocol == protocol && r.target == target)
                .collect();
            if all.is_empty() {
                continue;
            }
            let ok: Vec<&RunRecord> = all.iter().copied().filter(|r| r.error.is_none()).collect();
            let loads: Vec<_> = ok.iter().filter_map(|r| r.load.as_ref()).collect();
            let rps: Vec<f64> = loads.iter().map(|l| l.rps).collect();
            out.push(Summary {
                protocol,
                target,
                runs_ok: ok.len(),
                runs_failed: all.len() - ok.len(),
                rps_median: median(rps.clone()),
                rps_min: rps.iter().copied().reduce(f64::min),
                rps_max: rps.iter().copied().reduce(f64::max),
                p50_ms_median: median(loads.iter().map(|l| l.p50_ms).collect()),
                p99_ms_median: median(loads.iter().map(|l| l.p99_ms).collect()),
                proxy_cpu_ms_per_1k_req_median: median(
                    ok.iter()
                        .filter_map(|r| r.proxy_cpu_ms_per_1k_req)
                        .collect(),
                ),
                proxy_cpu_cores_median: median(
                    ok.iter().filter_map(|r| r.proxy_cpu_cores).collect(),
                ),
                proxy_peak_rss_mib_median: median(
                    ok.iter()
                        .filter_map(|r| r.proxy_peak_rss_kib)
                        .map(|k| k as f64 / 1024.0)
                        .collect(),
                ),
                loadgen_cpu_cores_median: median(
                    ok.iter().filter_map(|r| r.loadgen_cpu_cores).collect(),
                ),
                upstream_cpu_cores_median: median(
                    ok.iter().filter_map(|r| r.upstream_cpu_cores).collect(),
                ),
                other_cpu_cores_max: ok.iter().filter_map(|r| r.other_cpu_cores).reduce(f64::max),
                errors_total: loads.iter().map(|l| l.errors).sum(),
                non_2xx_total: loads.iter().map(|l| l.non_2xx).sum(),
            });
        }
    }
    out
}

fn opt(v: Option<f64>, prec: usize) -> String {
    v.map(|x| format!("{x:.prec$}"))
        .unwrap_or_else(|| "–".into())
}

pub fn markdown(
    meta: &Meta,
    targets: &[Verdict],
    summary: &[Summary],
    commands: &[(Proto, String)],
    args: &PeersArgs,
) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "### Peers benchmark, {} — {} ({} cpus), kernel {}\n",
        meta.date, meta.cpu_model, meta.cpus, meta.kernel
    );
    if !targets.is_empty() {
        let _ = writeln!(
            s,
            "Against the targets: strait and nginx run in every repeat, seconds apart, and the \
             verdict is on the median of the per-repeat ratios and its {:.0} % confidence \
             interval (met only if all of the interval is on the right side of 1).\n",
            CI_LEVEL * 100.0
        );
        targets_table(&mut s, targets, "–");
    }
    let _ = writeln!(
        s,
        "workers {} per proxy, {} repeats × {} s (+{} s warm-up), median over repeats; \
         HTTP/2 runs forward to the upstream over {}.\n",
        args.workers,
        args.repeats,
        args.duration,
        args.warmup,
        match args.h2_upstream {
            UpstreamProto::Http1 => "HTTP/1.1",
            UpstreamProto::Http2 => "h2c (nginx skipped)",
        }
    );
    if let Some(c) = args.proxy_cpu {
        let _ = writeln!(
            s,
            "Every proxy ran capped at {c} cores (CFS quota, {} ms period, on a cgroup of its \
             own): rps is what each proxy serves on that budget. Latencies include the \
             throttled time and compare only capped runs with each other.\n",
            crate::cpucap::PERIOD_US / 1000
        );
    }
    let mut protos: Vec<Proto> = summary.iter().map(|r| r.protocol).collect();
    protos.dedup();
    for proto in protos {
        let _ = writeln!(s, "#### {}\n", proto.label());
        let _ = writeln!(
            s,
            "| target | rps (median) | rps min–max | p50 ms | p99 ms | proxy CPU ms / 1k req | \
             proxy CPU (cores) | proxy peak RSS MiB | errors / non-2xx | runs |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for r in summary.iter().filter(|r| r.protocol == proto) {
            let runs = if r.runs_failed > 0 {
                format!("{} ok, {} FAILED", r.runs_ok, r.runs_failed)
            } else {
                r.runs_ok.to_string()
            };
            let _ = writeln!(
                s,
                "| {} | {} | {}–{} | {} | {} | {} | {} | {} | {} / {} | {} |",
                r.target.name(),
                opt(r.rps_median, 0),
                opt(r.rps_min, 0),
                opt(r.rps_max, 0),
                opt(r.p50_ms_median, 2),
                opt(r.p99_ms_median, 2),
                opt(r.proxy_cpu_ms_per_1k_req_median, 1),
                opt(r.proxy_cpu_cores_median, 2),
                opt(r.proxy_peak_rss_mib_median, 1),
                r.errors_total,
                r.non_2xx_total,
                runs
            );
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(
        s,
        "proxy CPU = utime+stime of all the proxy's processes during the measured window; \
         \"cores\" well below the worker count means the proxy was not the bottleneck. \
         `direct` = load generator straight to the upstream (HTTP/2: the upstream's h2c port), \
         i.e. the ceiling of the load-generator/upstream side. Peak RSS = sum of VmHWM.\n"
    );
    let other = summary
        .iter()
        .filter_map(|r| r.other_cpu_cores_max)
        .reduce(f64::max);
    if let Some(o) = other {
        let _ =
            writeln!(
            s,
            "CPU not attributable to proxy/upstream/load generator during any measured window: \
             at most {o:.2} cores{}.\n",
            if o > args.max_other_cores { " — NOISY, other work was running" } else { "" }
        );
    }
    let _ = writeln!(s, "Load generators (port = the proxy under test):\n");
    let _ = writeln!(s, "```");
    for (_, c) in commands {
        let _ = writeln!(s, "{c}");
    }
    let _ = writeln!(s, "```");
    let _ = writeln!(s, "\nVersions:");
    for v in &meta.versions {
        let _ = writeln!(s, "- {}: {}", v.tool, v.version);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_ci_takes_the_narrowest_order_statistics_that_reach_the_level() {
        assert_eq!(median_ci(&[], 0.95), None);
        // 5 samples cannot reach 95 %: [min, max] covers 1 - 2/32.
        let ci = median_ci(&[3.0, 1.0, 5.0, 2.0, 4.0], 0.95).expect("samples");
        assert_eq!((ci.low, ci.high), (1.0, 5.0));
        assert!((ci.coverage - 0.9375).abs() < 1e-12, "{ci:?}");
        // 9 samples: [x(2), x(8)] covers 1 - 2 * 10/512; [x(3), x(7)] would be 82 %.
        let nine: Vec<f64> = (1..=9).rev().map(f64::from).collect();
        let ci = median_ci(&nine, 0.95).expect("samples");
        assert_eq!((ci.low, ci.high), (2.0, 8.0));
        assert!((ci.coverage - (1.0 - 20.0 / 512.0)).abs() < 1e-12, "{ci:?}");
        // 15 samples: [x(4), x(12)], 1 - 2 * 576/32768.
        let fifteen: Vec<f64> = (1..=15).map(f64::from).collect();
        let ci = median_ci(&fifteen, 0.95).expect("samples");
        assert_eq!((ci.low, ci.high), (4.0, 12.0));
        assert!(
            (ci.coverage - (1.0 - 1152.0 / 32768.0)).abs() < 1e-12,
            "{ci:?}"
        );
        // A lower level narrows it.
        let ci = median_ci(&fifteen, 0.80).expect("samples");
        assert_eq!((ci.low, ci.high), (5.0, 11.0));
    }
}
