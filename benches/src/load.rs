//! Load generators (wrk for HTTP/1.1, h2load for HTTP/2) and parsers for their output.

use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Proto {
    #[serde(rename = "http1")]
    H1,
    #[serde(rename = "http2")]
    H2,
}

impl Proto {
    pub fn label(self) -> &'static str {
        match self {
            Proto::H1 => "HTTP/1.1",
            Proto::H2 => "HTTP/2 (h2c prior knowledge)",
        }
    }
}

/// Load shape, shared by every target.
#[derive(Debug, Clone, Serialize)]
pub struct LoadSpec {
    pub wrk_threads: usize,
    pub wrk_connections: usize,
    pub h2_threads: usize,
    pub h2_clients: usize,
    pub h2_streams: usize,
    /// `taskset -c <cpus>` prefix for the load generator, if pinning.
    pub cpus: Option<String>,
}

/// What one load-generator run measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoadResult {
    pub requests: u64,
    pub seconds: f64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Socket errors / failed / errored / timed-out requests.
    pub errors: u64,
    /// Responses that were not 2xx.
    pub non_2xx: u64,
}

/// Builds the argv for one run. `log` is the h2load per-request log used for percentiles.
pub fn argv(spec: &LoadSpec, proto: Proto, port: u16, secs: u64, log: &Path) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    if let Some(cpus) = &spec.cpus {
        v.extend(["taskset".into(), "-c".into(), cpus.clone()]);
    }
    let url = format!("http://127.0.0.1:{port}/");
    match proto {
        Proto::H1 => v.extend([
            "wrk".into(),
            format!("-t{}", spec.wrk_threads),
            format!("-c{}", spec.wrk_connections),
            format!("-d{secs}s"),
            "--latency".into(),
            url,
        ]),
        Proto::H2 => v.extend([
            "h2load".into(),
            format!("-t{}", spec.h2_threads),
            format!("-c{}", spec.h2_clients),
            format!("-m{}", spec.h2_streams),
            "-D".into(),
            secs.to_string(),
            format!("--log-file={}", log.display()),
            url,
        ]),
    }
    v
}

pub fn command(argv: &[String]) -> Result<Command> {
    let (prog, args) = argv.split_first().ok_or_else(|| anyhow!("empty command"))?;
    let mut c = Command::new(prog);
    c.args(args);
    Ok(c)
}

pub fn shell_line(argv: &[String]) -> String {
    argv.join(" ")
}

// ---------------------------------------------------------------------------------------------
// wrk

/// "1.23ms" / "456.00us" / "1.02s" / "2.00m" -> milliseconds.
fn wrk_duration_ms(s: &str) -> Result<f64> {
    let s = s.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1000.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60_000.0)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3_600_000.0)
    } else {
        bail!("unknown wrk duration {s:?}")
    };
    Ok(num
        .parse::<f64>()
        .with_context(|| format!("wrk duration {s:?}"))?
        * mult)
}

pub fn parse_wrk(out: &str) -> Result<LoadResult> {
    let mut r = LoadResult::default();
    let mut p50 = None;
    let mut p99 = None;
    let mut rps = None;
    for line in out.lines() {
        let t = line.trim();
        let words: Vec<&str> = t.split_whitespace().collect();
        match words.as_slice() {
            ["50%", v] => p50 = Some(wrk_duration_ms(v)?),
            ["99%", v] => p99 = Some(wrk_duration_ms(v)?),
            ["Requests/sec:", v] => rps = Some(v.parse::<f64>()?),
            [n, "requests", "in", secs, ..] => {
                r.requests = n.parse()?;
                r.seconds = secs.trim_end_matches(',').trim_end_matches('s').parse()?;
            }
            ["Non-2xx", "or", "3xx", "responses:", n] => r.non_2xx = n.parse()?,
            ["Socket", "errors:", rest @ ..] => {
                // "connect 0, read 0, write 0, timeout 0"
                for pair in rest.chunks(2) {
                    if let [_, n] = pair {
                        r.errors += n.trim_end_matches(',').parse::<u64>()?;
                    }
                }
            }
            _ => {}
        }
    }
    r.p50_ms = p50.ok_or_else(|| anyhow!("no 50% line in wrk output:\n{out}"))?;
    r.p99_ms = p99.ok_or_else(|| anyhow!("no 99% line in wrk output:\n{out}"))?;
    r.rps = rps.ok_or_else(|| anyhow!("no Requests/sec in wrk output:\n{out}"))?;
    Ok(r)
}

// ---------------------------------------------------------------------------------------------
// h2load

/// Parses the h2load summary plus its per-request log (h2load itself only reports
/// min/max/mean/sd latency, so p50/p99 come from the log's third column, in microseconds).
pub fn parse_h2load(out: &str, log: &Path) -> Result<LoadResult> {
    let mut r = LoadResult::default();
    let mut seen_finished = false;
    for line in out.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("finished in ") {
            // "finished in 10.00s, 12345.60 req/s, 1.23MB/s"
            let parts: Vec<&str> = rest.split(',').map(str::trim).collect();
            let secs = parts.first().ok_or_else(|| anyhow!("bad line {t:?}"))?;
            r.seconds = parse_h2_secs(secs)?;
            let rps = parts.get(1).ok_or_else(|| anyhow!("bad line {t:?}"))?;
            r.rps = rps.trim_end_matches("req/s").trim().parse()?;
            seen_finished = true;
        } else if let Some(rest) = t.strip_prefix("requests:") {
            // "N total, N started, N done, N succeeded, N failed, N errored, N timeout"
            for item in rest.split(',') {
                let w: Vec<&str> = item.split_whitespace().collect();
                if let [n, what] = w.as_slice() {
                    let n: u64 = n.parse()?;
                    match *what {
                        "succeeded" => r.requests = n,
                        "failed" | "errored" | "timeout" => r.errors += n,
                        _ => {}
                    }
                }
            }
        } else if let Some(rest) = t.strip_prefix("status codes:") {
            // "N 2xx, N 3xx, N 4xx, N 5xx"
            for item in rest.split(',') {
                let w: Vec<&str> = item.split_whitespace().collect();
                if let [n, class] = w.as_slice() {
                    if *class != "2xx" {
                        r.non_2xx += n.parse::<u64>()?;
                    }
                }
            }
        }
    }
    if !seen_finished {
        bail!("no 'finished in' line in h2load output:\n{out}");
    }
    let text = fs::read_to_string(log).with_context(|| format!("reading {}", log.display()))?;
    let mut us: Vec<u64> = text
        .lines()
        .filter_map(|l| {
            l.split('\t')
                .nth(2)
                .and_then(|v| v.trim().parse::<u64>().ok())
        })
        .collect();
    if us.is_empty() {
        bail!("h2load log {} has no requests", log.display());
    }
    us.sort_unstable();
    r.p50_ms = percentile(&us, 50.0) as f64 / 1000.0;
    r.p99_ms = percentile(&us, 99.0) as f64 / 1000.0;
    Ok(r)
}

fn parse_h2_secs(s: &str) -> Result<f64> {
    let s = s.trim();
    if let Some(n) = s.strip_suffix("ms") {
        Ok(n.parse::<f64>()? / 1000.0)
    } else if let Some(n) = s.strip_suffix('s') {
        Ok(n.parse()?)
    } else {
        bail!("unknown h2load duration {s:?}")
    }
}

/// Nearest-rank percentile of a sorted, non-empty slice.
fn percentile(sorted: &[u64], p: f64) -> u64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    const WRK: &str = "Running 10s test @ http://127.0.0.1:8080/
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.10ms  215.32us   9.87ms   90.00%
    Req/Sec    58.12k     2.01k   61.00k    80.00%
  Latency Distribution
     50%    1.05ms
     75%    1.15ms
     90%    1.30ms
     99%    2.01ms
  578123 requests in 10.00s, 80.50MB read
  Socket errors: connect 0, read 3, write 0, timeout 2
  Non-2xx or 3xx responses: 7
Requests/sec:  57800.12
Transfer/sec:      8.05MB
";

    #[test]
    fn wrk_parses() -> Result<()> {
        let r = parse_wrk(WRK)?;
        assert_eq!(r.requests, 578123);
        assert!((r.rps - 57800.12).abs() < 1e-6);
        assert!((r.p50_ms - 1.05).abs() < 1e-9);
        assert!((r.p99_ms - 2.01).abs() < 1e-9);
        assert_eq!(r.errors, 5);
        assert_eq!(r.non_2xx, 7);
        assert!((wrk_duration_ms("456.00us")? - 0.456).abs() < 1e-9);
        assert!((wrk_duration_ms("1.50s")? - 1500.0).abs() < 1e-9);
        Ok(())
    }

    #[test]
    fn percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&[7], 99.0), 7);
    }
}
