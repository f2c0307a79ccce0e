//! End-to-end tests with real clients against the `strait` binary: curl (HTTP/1.1, h2c prior
//! knowledge, TLS with ALPN h2), Python grpcio (unary, bidirectional streaming, status codes),
//! Python websockets, the Prometheus/OpenMetrics text parser, `strait check` and `strait observe`.
//!
//! The peers are installed by `scripts/setup-e2e.sh`. When one is missing these tests fail
//! under `CI=true` and skip with a printed reason elsewhere.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Upstream;
use strait::flows::{FlowRecord, Verdict};

const STRAIT: &str = env!("CARGO_BIN_EXE_strait");

fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/e2e")
}

/// Whether `probe` (a command line) succeeds; if not, fail in CI, skip elsewhere.
fn require(what: &str, probe: &[&str]) -> bool {
    let ok = Command::new(probe[0])
        .args(&probe[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        let msg = format!("{what} is not available (run scripts/setup-e2e.sh)");
        if std::env::var_os("CI").is_some() {
            panic!("{msg}");
        }
        eprintln!("SKIPPED: {msg}");
    }
    ok
}

fn have_curl() -> bool {
    require(
        "curl with HTTP/2",
        &["sh", "-c", "curl --version | grep -q HTTP2"],
    )
}

fn have_python(module: &str) -> bool {
    require(
        &format!("python3 module {module}"),
        &["python3", "-c", &format!("import {module}")],
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed on drop, so a failing test leaves nothing behind.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The strait binary running a config; ports chosen here.
struct Strait {
    proc: Proc,
    admin: SocketAddr,
    flows: PathBuf,
    dir: tempfile::TempDir,
}

impl Strait {
    /// `listeners` is the YAML list body; `{port:NAME}` placeholders are given free ports,
    /// readable afterwards with `port()`. Two workers: the multi-thread runtime.
    fn start(listeners: &str) -> (Self, Vec<(String, u16)>) {
        Self::start_with_workers(listeners, 2)
    }

    /// `runtime.workers: 1` runs strait on the current-thread runtime instead.
    fn start_with_workers(listeners: &str, workers: usize) -> (Self, Vec<(String, u16)>) {
        let dir = tempfile::tempdir().unwrap();
        let mut yaml = listeners.to_owned();
        let mut ports = Vec::new();
        while let Some(i) = yaml.find("{port:") {
            let end = i + yaml[i..].find('}').unwrap();
            let name = yaml[i + 6..end].to_owned();
            let port = free_port();
            yaml.replace_range(i..=end, &port.to_string());
            ports.push((name, port));
        }
        let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let flows = dir.path().join("flows.jsonl");
        let cfg = dir.path().join("strait.yaml");
        std::fs::write(
            &cfg,
            format!(
                "admin: {{ address: {admin} }}\nruntime: {{ workers: {workers}, shutdown_grace: 10s }}\nflows: {{ sink: file, path: {} }}\nlisteners:\n{yaml}",
                flows.display()
            ),
        )
        .unwrap();
        let child = Command::new(STRAIT)
            .args(["run", "--config"])
            .arg(&cfg)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let s = Self {
            proc: Proc(child),
            admin,
            flows,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while curl_status(&format!("http://{admin}/ready")) != Some(200) {
            assert!(Instant::now() < deadline, "strait did not become ready");
            std::thread::sleep(Duration::from_millis(50));
        }
        (s, ports)
    }

    fn pid(&self) -> u32 {
        self.proc.0.id()
    }

    fn flows(&self, at_least: usize) -> Vec<FlowRecord> {
        for _ in 0..100 {
            let r = common::read_flows(&self.flows);
            if r.len() >= at_least {
                return r;
            }
            std::thread::sleep(Duration::from_millis(30));
        }
        common::read_flows(&self.flows)
    }

    /// Peak resident memory of the process (VmHWM), in KiB.
    fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }
}

fn port(ports: &[(String, u16)], name: &str) -> u16 {
    ports.iter().find(|(n, _)| n == name).unwrap().1
}

fn curl_status(url: &str) -> Option<u16> {
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "2",
            url,
        ])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).parse().ok()
}

/// Runs curl; returns (stdout, the `-w` line after the last newline).
fn curl(args: &[&str]) -> (String, String) {
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "60",
            "-w",
            "\n%{http_code} %{http_version}",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "curl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, w) = text.rsplit_once('\n').unwrap();
    (body.to_owned(), w.to_owned())
}

/// Starts a Python peer server and returns it with its port (from its `READY <port>` line).
fn python_server(script: &str, extra: &[&str]) -> (Proc, u16) {
    let mut child = Command::new("python3")
        .arg(peers_dir().join(script))
        .args(["server", "--port", "0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .strip_prefix("READY ")
        .unwrap_or_else(|| panic!("peer said {line:?}"))
        .parse()
        .unwrap();
    (Proc(child), port)
}

fn python_client(script: &str, args: &[&str]) -> (bool, serde_json::Value) {
    let out = Command::new("python3")
        .arg(peers_dir().join(script))
        .arg("client")
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "{script} printed {stdout:?} ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_http1_h2c_and_tls_alpn_h2() {
    if !have_curl() {
        return;
    }
    let up = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.key_pair.serialize_pem()).unwrap();
    let (s, ports) = tokio::task::spawn_blocking({
        let (cert, key) = (cert.clone(), key.clone());
        let up = up.addr;
        move || {
            Strait::start(&format!(
                "  - {{ name: plain, address: 127.0.0.1:{{port:plain}}, protocol: http, upstream: {up} }}\n  - {{ name: tls, address: 127.0.0.1:{{port:tls}}, protocol: http, upstream: {up}, tls: {{ cert: {}, key: {} }} }}\n",
                cert.display(),
                key.display()
            ))
        }
    })
    .await
    .unwrap();
    let (plain, tls) = (port(&ports, "plain"), port(&ports, "tls"));
    let cert_s = cert.display().to_string();
    let results = tokio::task::spawn_blocking(move || {
        let h1 = curl(&["--http1.1", &format!("http://127.0.0.1:{plain}/headers")]);
        let h2c = curl(&[
            "--http2-prior-knowledge",
            &format!("http://127.0.0.1:{plain}/headers"),
        ]);
        let resolve = format!("localhost:{tls}:127.0.0.1");
        let h2tls = curl(&[
            "--cacert",
            &cert_s,
            "--resolve",
            &resolve,
            &format!("https://localhost:{tls}/headers"),
        ]);
        let h1tls = curl(&[
            "--http1.1",
            "--cacert",
            &cert_s,
            "--resolve",
            &resolve,
            &format!("https://localhost:{tls}/headers"),
        ]);
        (h1, h2c, h2tls, h1tls)
    })
    .await
    .unwrap();
    let (h1, h2c, h2tls, h1tls) = results;
    assert_eq!(h1.1, "200 1.1");
    assert!(
        h1.0.contains("version: HTTP/1.1") && h1.0.contains("via: 1.1 strait"),
        "{}",
        h1.0
    );
    assert_eq!(h2c.1, "200 2");
    assert!(
        h2c.0.contains("version: HTTP/2.0") && h2c.0.contains("via: 2 strait"),
        "{}",
        h2c.0
    );
    assert_eq!(h2tls.1, "200 2", "ALPN should select h2");
    assert!(h2tls.0.contains("x-forwarded-proto: https"), "{}", h2tls.0);
    assert_eq!(h1tls.1, "200 1.1");
    let flows = s.flows(4);
    let protos: Vec<_> = flows.iter().map(|f| f.protocol.as_str()).collect();
    assert_eq!(protos, ["HTTP/1.1", "HTTP/2", "HTTP/2", "HTTP/1.1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_unary_and_bidi_streaming_with_grpcio() {
    if !have_python("grpc") {
        return;
    }
    tokio::task::spawn_blocking(|| {
        let (_server, up) = python_server("grpc_peer.py", &[]);
        let (s, ports) = Strait::start(&format!(
            "  - {{ name: grpc, address: 127.0.0.1:{{port:grpc}}, protocol: http, upstream: 127.0.0.1:{up} }}\n"
        ));
        let target = format!("127.0.0.1:{}", port(&ports, "grpc"));
        let (ok, v) = python_client("grpc_peer.py", &["--target", &target, "--call", "unary"]);
        assert!(ok, "{v}");
        let (ok, v) = python_client("grpc_peer.py", &["--target", &target, "--call", "bidi", "--count", "200", "--size", "10000"]);
        assert!(ok, "{v}");
        assert_eq!(v["messages"], 200);
        let (ok, v) = python_client("grpc_peer.py", &["--target", &target, "--call", "fail"]);
        assert!(!ok);
        assert_eq!(v["code"], "PERMISSION_DENIED", "{v}");
        let flows = s.flows(3);
        let grpc: Vec<_> = flows.iter().map(|f| (f.path.clone().unwrap_or_default(), f.grpc_status)).collect();
        assert_eq!(
            grpc,
            [
                ("/strait.test.Echo/Unary".to_owned(), Some(0)),
                ("/strait.test.Echo/Bidi".to_owned(), Some(0)),
                ("/strait.test.Echo/Fail".to_owned(), Some(7)),
            ]
        );
        assert!(flows[1].bytes_received >= 200 * 10_000 && flows[1].bytes_sent >= 200 * 10_000, "{:?}", flows[1]);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_upstream_down_is_unavailable_to_grpcio() {
    if !have_python("grpc") {
        return;
    }
    tokio::task::spawn_blocking(|| {
        let dead = free_port();
        let (_s, ports) = Strait::start(&format!(
            "  - {{ name: grpc, address: 127.0.0.1:{{port:grpc}}, protocol: http, upstream: 127.0.0.1:{dead} }}\n"
        ));
        let target = format!("127.0.0.1:{}", port(&ports, "grpc"));
        let (ok, v) = python_client("grpc_peer.py", &["--target", &target, "--call", "unary"]);
        assert!(!ok);
        assert_eq!(v["code"], "UNAVAILABLE", "{v}");
        assert!(v["details"].as_str().unwrap().contains("upstream unavailable"), "{v}");
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_echo_through_the_proxy() {
    if !have_python("websockets") {
        return;
    }
    tokio::task::spawn_blocking(|| {
        let (_server, up) = python_server("ws_peer.py", &[]);
        let (s, ports) = Strait::start(&format!(
            "  - {{ name: ws, address: 127.0.0.1:{{port:ws}}, protocol: http, upstream: 127.0.0.1:{up} }}\n"
        ));
        let url = format!("ws://127.0.0.1:{}/chat", port(&ports, "ws"));
        let (ok, v) = python_client("ws_peer.py", &["--url", &url, "--count", "100", "--size", "5000"]);
        assert!(ok, "{v}");
        assert_eq!(v["messages"], 200);
        let f = &s.flows(1)[0];
        assert_eq!((f.status, f.verdict), (Some(101), Verdict::Forwarded), "{f:?}");
        assert!(f.bytes_received > 0 && f.bytes_sent > 0, "{f:?}");
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_megabyte_bodies_stream_with_bounded_memory() {
    if !have_curl() {
        return;
    }
    let up = Upstream::start().await;
    let upa = up.addr;
    tokio::task::spawn_blocking(move || {
        let (s, ports) = Strait::start(&format!(
            "  - {{ name: web, address: 127.0.0.1:{{port:web}}, protocol: http, upstream: {upa} }}\n"
        ));
        let web = port(&ports, "web");
        let size: u64 = 100 * 1024 * 1024;
        let file = s.dir.path().join("big.bin");
        std::fs::File::create(&file).unwrap().set_len(size).unwrap();
        let before = s.peak_rss_kib();
        // Upload, chunked (curl streams stdin); then download.
        let up = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "cat {} | curl -sS --max-time 120 -H 'transfer-encoding: chunked' -T - http://127.0.0.1:{web}/sink",
                file.display()
            ))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&up.stdout), size.to_string(), "{}", String::from_utf8_lossy(&up.stderr));
        let (_, w) = curl(&["-o", "/dev/null", &format!("http://127.0.0.1:{web}/stream/{size}")]);
        assert_eq!(w, "200 1.1");
        let (_, w) = curl(&["--http2-prior-knowledge", "-o", "/dev/null", &format!("http://127.0.0.1:{web}/stream/{size}")]);
        assert_eq!(w, "200 2");
        let peak = s.peak_rss_kib();
        eprintln!("strait peak RSS: {before} KiB before, {peak} KiB after streaming 3 x 100 MiB");
        assert!(peak < 64 * 1024, "peak RSS {peak} KiB: bodies are being buffered");
        let flows = s.flows(3);
        assert_eq!(flows[0].bytes_received, size);
        assert_eq!(flows[1].bytes_sent, size);
        assert_eq!(flows[2].bytes_sent, size);
    })
    .await
    .unwrap();
}

#[test]
fn check_reports_file_line_col_and_exits_64() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "listeners:\n  - name: web\n    address: 127.0.0.1:99999\n    protocol: http\n    upstream: 127.0.0.1:9000\n    tls: { cert: missing.pem, key: missing.key }\n",
    )
    .unwrap();
    let out = Command::new(STRAIT)
        .args(["check", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    let f = bad.display();
    assert!(
        err.contains(&format!(
            "{f}:3:14: listeners[0].address: `127.0.0.1:99999` is not an IP:port"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{f}:6:5: listeners[0].tls: cannot read {}",
            dir.path().join("missing.pem").display()
        )),
        "{err}"
    );

    std::fs::write(&bad, "listeners:\n  - name: web\n    protocol: htp\n").unwrap();
    let out = Command::new(STRAIT)
        .args(["check", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(&format!("{f}:3:15: ")) && err.contains("unknown variant `htp`"),
        "{err}"
    );

    // `run` refuses the same way, and a missing file is a config error too.
    let out = Command::new(STRAIT)
        .args(["run", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let out = Command::new(STRAIT)
        .args(["check", "--config", "/nonexistent/strait.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("cannot read config file /nonexistent/strait.yaml"));

    let quickstart =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/quickstart/strait.yaml");
    let out = Command::new(STRAIT)
        .args(["check", "--config"])
        .arg(&quickstart)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_as_openmetrics_and_observe_filters_flows() {
    if !have_curl() || !have_python("prometheus_client") {
        return;
    }
    let up = Upstream::start().await;
    let upa = up.addr;
    tokio::task::spawn_blocking(move || {
        let dead = free_port();
        let (s, ports) = Strait::start(&format!(
            "  - {{ name: web, address: 127.0.0.1:{{port:web}}, protocol: http, upstream: {upa} }}\n  - {{ name: dead, address: 127.0.0.1:{{port:dead}}, protocol: http, upstream: 127.0.0.1:{dead} }}\n"
        ));
        let mut observe = Command::new(STRAIT)
            .args(["observe", "--admin", &s.admin.to_string(), "--verdict", "ERROR", "--json"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let observe_out = BufReader::new(observe.stdout.take().unwrap());
        let observe = Proc(observe);
        std::thread::sleep(Duration::from_millis(300));
        let (web, deadp) = (port(&ports, "web"), port(&ports, "dead"));
        assert_eq!(curl(&[&format!("http://127.0.0.1:{web}/ok")]).1, "200 1.1");
        assert_eq!(curl(&[&format!("http://127.0.0.1:{deadp}/broken")]).1, "503 1.1");
        let line = observe_out.lines().next().unwrap().unwrap();
        drop(observe);
        let rec: FlowRecord = serde_json::from_str(&line).unwrap();
        assert_eq!((rec.path.as_deref(), rec.verdict, rec.status), (Some("/broken"), Verdict::Error, Some(503)));

        let (text, w) = curl(&[&format!("http://{}/metrics", s.admin)]);
        assert_eq!(w, "200 1.1");
        let script = r#"
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
fams = {f.name: f for f in text_string_to_metric_families(sys.stdin.read())}
def val(name, sample, **labels):
    return [s.value for s in fams[name].samples if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items())][0]
assert val("strait_requests", "strait_requests_total", listener="web") == 1
assert val("strait_responses", "strait_responses_total", listener="dead", **{"class": "5xx"}) == 1
assert val("strait_upstream_errors", "strait_upstream_errors_total", listener="dead", kind="connect") == 1
assert val("strait_request_duration_seconds", "strait_request_duration_seconds_count", listener="web") == 1
assert "strait_active_connections" in fams
print(len(fams))
"#;
        let mut py = Command::new("python3").args(["-c", script]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        std::io::Write::write_all(py.stdin.as_mut().unwrap(), text.as_bytes()).unwrap();
        let out = py.wait_with_output().unwrap();
        assert!(out.status.success(), "OpenMetrics parse failed: {}\n{text}", String::from_utf8_lossy(&out.stderr));
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_requests_then_exits() {
    if !have_curl() {
        return;
    }
    let up = Upstream::start().await;
    let upa = up.addr;
    tokio::task::spawn_blocking(move || {
        // One worker: signals and the drain also work on the current-thread runtime.
        let (mut s, ports) = Strait::start_with_workers(
            &format!(
                "  - {{ name: web, address: 127.0.0.1:{{port:web}}, protocol: http, upstream: {upa} }}\n"
            ),
            1,
        );
        let web = port(&ports, "web");
        let slow = std::thread::spawn(move || curl(&[&format!("http://127.0.0.1:{web}/slow/1500")]));
        std::thread::sleep(Duration::from_millis(400));
        // SAFETY-free: signal through the kill(1) command.
        assert!(Command::new("kill").args(["-TERM", &s.pid().to_string()]).status().unwrap().success());
        let (body, w) = slow.join().unwrap();
        assert_eq!((body.as_str(), w.as_str()), ("slow ok", "200 1.1"));
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(st) = s.proc.0.try_wait().unwrap() {
                break st;
            }
            assert!(Instant::now() < deadline, "strait did not exit after draining");
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(status.success(), "{status:?}");
    })
    .await
    .unwrap();
}

// ---- L7 policy (CiliumNetworkPolicy http rules, built-in policy filter) -----------------

/// A CiliumNetworkPolicy letting `app=web` reach `app=api` on `port` with these `http` rules
/// (YAML flow sequence items, one per line).
fn l7_policy(port: u16, http_rules: &[&str]) -> String {
    let mut rules = String::new();
    for r in http_rules {
        rules.push_str(&format!("        - {r}\n"));
    }
    format!(
        "apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {{ name: web-api }}
spec:
  endpointSelector: {{ matchLabels: {{ app: api }} }}
  ingress:
  - fromEndpoints: [{{ matchLabels: {{ 'k8s:app': web }} }}]
    toPorts:
    - ports: [{{ port: \"{port}\", protocol: TCP }}]
      rules:
        http:
{rules}"
    )
}

/// A listener (explicit upstream) whose clients are `app=web` and upstream `app=api`, plus the
/// top-level `policies:` entry for `policy_file`.
fn l7_listener(name: &str, upstream: SocketAddr, policy_file: &Path) -> String {
    format!(
        "  - name: {name}
    address: 127.0.0.1:{{port:{name}}}
    protocol: http
    upstream: {upstream}
    policy: {{ client_labels: {{ app: web }}, server_labels: {{ app: api }} }}
policies: [{}]
",
        policy_file.display()
    )
}

/// Replaces a watched file so that its size or mtime changes even within one second.
fn rewrite(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_is_allowed_and_denied_by_cilium_http_rules() {
    if !have_curl() {
        return;
    }
    let up = Upstream::start().await;
    let upstream = up.addr;
    tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().unwrap();
        let policy = dir.path().join("policy.yaml");
        std::fs::write(
            &policy,
            l7_policy(
                upstream.port(),
                &[
                    r#"{ method: GET, path: "/public/.*" }"#,
                    r#"{ method: GET, path: /headers, host: "api\\.local(:[0-9]+)?", headers: ["X-Team: blue"], headerMatches: [{ name: X-Env, value: prod, mismatch: REPLACE }, { name: X-Added, value: "yes", mismatch: ADD }, { name: X-Drop, value: keep, mismatch: DELETE }, { name: X-Seen, value: "1", mismatch: LOG }] }"#,
                ],
            ),
        )
        .unwrap();
        let (s, ports) = Strait::start(&l7_listener("web", upstream, &policy));
        let base = format!("http://127.0.0.1:{}", port(&ports, "web"));

        let (body, w) = curl(&[&format!("{base}/public/a?x=1")]);
        assert_eq!((body.as_str(), w.as_str()), ("ok", "200 1.1"));
        // Method, path, host and header rules each deny.
        for args in [
            vec!["-X", "POST", "/public/a"],
            vec!["/private"],
            vec!["-H", "Host: evil.local", "-H", "X-Team: blue", "/headers"],
            vec!["-H", "Host: api.local", "/headers"],
            vec!["-H", "Host: api.local", "-H", "X-Team: red", "/headers"],
        ] {
            let mut a: Vec<String> = args[..args.len() - 1].iter().map(|s| s.to_string()).collect();
            a.push(format!("{base}{}", args[args.len() - 1]));
            let a: Vec<&str> = a.iter().map(String::as_str).collect();
            let (body, w) = curl(&a);
            assert_eq!((body.as_str(), w.as_str()), ("Access denied\r\n", "403 1.1"), "{a:?}");
        }
        // headerMatches mismatch actions, as the upstream saw the request.
        let (body, w) = curl(&[
            "-H", "Host: api.local:8080", "-H", "X-Team: blue", "-H", "X-Env: dev",
            "-H", "X-Drop: gone", "-H", "X-Seen: 2", &format!("{base}/headers"),
        ]);
        assert_eq!(w, "200 1.1");
        let seen: Vec<&str> = body.lines().collect();
        assert!(seen.contains(&"x-env: prod"), "{body}");
        assert!(seen.contains(&"x-added: yes"), "{body}");
        assert!(!body.contains("x-drop"), "{body}");
        assert!(seen.contains(&"x-seen: 2"), "{body}");

        let flows = s.flows(7);
        assert_eq!(flows.len(), 7, "{flows:?}");
        assert_eq!(flows[0].verdict, Verdict::Forwarded);
        assert_eq!(flows[0].filter.as_deref(), Some("strait.http-policy"));
        assert_eq!(
            flows[0].policy.as_deref(),
            Some("web-api/spec[0].ingress[0].toPorts[0].rules.http[0]")
        );
        for f in &flows[1..6] {
            assert_eq!(f.verdict, Verdict::Denied, "{f:?}");
            assert_eq!(f.status, Some(403));
            assert_eq!(f.filter.as_deref(), Some("strait.http-policy"));
            assert_eq!(f.policy.as_deref(), Some("ingress of app=api: no rule matches"));
        }
        assert_eq!(
            flows[6].policy.as_deref(),
            Some("web-api/spec[0].ingress[0].toPorts[0].rules.http[1]")
        );
    })
    .await
    .unwrap();
}

/// Sends one HTTP/1.1 request on `conn` and returns (status, body).
fn keepalive_get(conn: &mut std::net::TcpStream, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    write!(conn, "GET {path} HTTP/1.1\r\nHost: api\r\n\r\n").unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = conn.read(&mut chunk).unwrap();
        assert!(n > 0, "the connection was closed");
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let head = text[..end].to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            if buf.len() >= end + 4 + len {
                let status = head[9..12].parse().unwrap();
                return (status, text[end + 4..end + 4 + len].to_owned());
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_edit_changes_the_verdict_on_an_open_keepalive_connection() {
    if !have_curl() {
        return;
    }
    let up = Upstream::start().await;
    let upstream = up.addr;
    tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().unwrap();
        let policy = dir.path().join("policy.yaml");
        let allow_a = l7_policy(upstream.port(), &[r#"{ method: GET, path: "/a" }"#]);
        std::fs::write(&policy, &allow_a).unwrap();
        // One worker: the reload's compile (spawn_blocking) and the filter VMs share the
        // current-thread runtime with the open connection.
        let (s, ports) = Strait::start_with_workers(&l7_listener("web", upstream, &policy), 1);
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", port(&ports, "web"))).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        assert_eq!(keepalive_get(&mut conn, "/a").0, 200);
        assert_eq!(keepalive_get(&mut conn, "/b").0, 403);

        // Swap the rule: /b allowed, /a denied, on the same connection.
        rewrite(
            &policy,
            &l7_policy(upstream.port(), &[r#"{ method: GET, path: "/b" }  # v2"#]),
        );
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let (b, _) = keepalive_get(&mut conn, "/b");
            if b == 200 {
                break;
            }
            assert!(Instant::now() < deadline, "the policy edit was not applied");
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(
            keepalive_get(&mut conn, "/a"),
            (403, "Access denied\r\n".into())
        );

        // A broken policy is rejected; the one in force keeps deciding.
        rewrite(
            &policy,
            &l7_policy(upstream.port(), &[r#"{ method: GET, path: "/c([" }"#]),
        );
        std::thread::sleep(Duration::from_millis(2500));
        assert_eq!(keepalive_get(&mut conn, "/b").0, 200);
        assert_eq!(keepalive_get(&mut conn, "/c([").0, 403);
        assert_eq!(up.connections.load(std::sync::atomic::Ordering::SeqCst), 1);
        drop(s);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcio_gets_permission_denied_for_denied_methods_unary_and_streaming() {
    if !have_python("grpc") {
        return;
    }
    tokio::task::spawn_blocking(|| {
        let (_server, up) = python_server("grpc_peer.py", &[]);
        let upstream: SocketAddr = format!("127.0.0.1:{up}").parse().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let policy = dir.path().join("policy.yaml");
        std::fs::write(
            &policy,
            l7_policy(
                up,
                &[r#"{ method: POST, path: "/strait\\.test\\.Echo/(Unary|Bidi)" }"#],
            ),
        )
        .unwrap();
        let (s, ports) = Strait::start(&l7_listener("grpc", upstream, &policy));
        let target = format!("127.0.0.1:{}", port(&ports, "grpc"));
        let call = |c: &str| {
            python_client(
                "grpc_peer.py",
                &["--target", &target, "--call", c, "--count", "50"],
            )
        };
        let (ok, v) = call("unary");
        assert!(ok, "{v}");
        let (ok, v) = call("bidi");
        assert!(ok, "{v}");
        assert_eq!(v["messages"], 50);
        let (ok, v) = call("fail");
        assert!(!ok);
        assert_eq!(v["code"], "PERMISSION_DENIED", "{v}");
        assert_eq!(v["details"], "Access denied", "{v}");

        // Only unary from now on: the streaming call is denied.
        rewrite(
            &policy,
            &l7_policy(
                up,
                &[r#"{ method: POST, path: "/strait\\.test\\.Echo/Unary" }"#],
            ),
        );
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let (ok, v) = call("bidi");
            if !ok {
                assert_eq!(v["code"], "PERMISSION_DENIED", "{v}");
                break;
            }
            assert!(Instant::now() < deadline, "the policy edit was not applied");
            std::thread::sleep(Duration::from_millis(200));
        }
        let (ok, v) = call("unary");
        assert!(ok, "{v}");

        let flows = s.flows(5);
        let denied: Vec<_> = flows
            .iter()
            .filter(|f| f.verdict == Verdict::Denied)
            .map(|f| {
                (
                    f.path.clone().unwrap_or_default(),
                    f.grpc_status,
                    f.filter.clone(),
                )
            })
            .collect();
        let policy_filter = Some("strait.http-policy".to_owned());
        assert_eq!(
            denied[0],
            (
                "/strait.test.Echo/Fail".to_owned(),
                Some(7),
                policy_filter.clone()
            )
        );
        assert_eq!(
            denied.last().unwrap(),
            &("/strait.test.Echo/Bidi".to_owned(), Some(7), policy_filter)
        );
    })
    .await
    .unwrap();
}
