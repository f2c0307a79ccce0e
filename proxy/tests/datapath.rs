//! Privileged end-to-end tests of the eBPF datapath: real kernel, real tc programs, network
//! namespaces of their own (`strait::lab`), the real `strait` binary and curl.
//!
//! They need root, bpffs and the eBPF object. Under `CI=true` a missing prerequisite fails the
//! test; elsewhere it is skipped with a printed reason. Tests run one at a time (a global lock):
//! they share the host's policy-routing rule.

use std::io::Write as _;
use std::net::{IpAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use strait::flows::{FlowRecord, Verdict};
use strait::lab::{exec_in, Lab, LabEndpoint};

mod common;

static SERIAL: Mutex<()> = Mutex::new(());

/// Whether this process can run datapath tests; in CI a `false` is a failure.
fn privileged() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let reason = if !root {
        Some("not root".to_owned())
    } else if !strait::datapath::is_built() {
        Some("strait was built without eBPF programs (STRAIT_SKIP_EBPF)".to_owned())
    } else if !Path::new("/sys/fs/bpf").exists() {
        Some("no /sys/fs/bpf".to_owned())
    } else if Command::new("curl").arg("--version").output().is_err() {
        Some("curl is not installed".to_owned())
    } else {
        None
    };
    match reason {
        None => {
            let mounted = Command::new("mountpoint")
                .args(["-q", "/sys/fs/bpf"])
                .status()
                .is_ok_and(|s| s.success());
            if !mounted {
                let _ = Command::new("mount")
                    .args(["-t", "bpf", "bpf", "/sys/fs/bpf"])
                    .status();
            }
            true
        }
        Some(r) if std::env::var_os("CI").is_some() => {
            panic!("datapath tests must run in CI but cannot: {r}")
        }
        Some(r) => {
            eprintln!("SKIPPED: datapath tests need root, bpffs and the eBPF object: {r}");
            false
        }
    }
}

/// A process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    fn sigterm(mut self) {
        // SAFETY: sending a signal to our own child by pid.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("strait did not exit within 10 s of SIGTERM");
    }
}

/// Removes the datapath pins and rule even when a test panics.
struct DatapathGuard(PathBuf);

impl Drop for DatapathGuard {
    fn drop(&mut self) {
        let _ = strait::datapath::unload(&self.0, std::time::Duration::ZERO);
    }
}

const SERVER: &str = r#"
import http.server, socketserver, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = f"port={self.server.server_address[1]} client={self.client_address[0]} path={self.path}\n".encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
# A second argument "6": listen on IPv6 too (dual-stack "::"; IPv4 clients show as ::ffff:a.b.c.d).
if sys.argv[2:] == ["6"]:
    import socket
    S.address_family = socket.AF_INET6
    S(("::", int(sys.argv[1])), H).serve_forever()
S(("0.0.0.0", int(sys.argv[1])), H).serve_forever()
"#;

struct World {
    dir: tempfile::TempDir,
    config: PathBuf,
    flows: PathBuf,
    admin: u16,
    pin_dir: PathBuf,
    cli: LabEndpoint,
    srv: LabEndpoint,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Endpoints, policy and config for one test; `tag` keeps names unique per test.
/// `a, b` for a YAML flow sequence.
fn list(addrs: &[IpAddr]) -> String {
    addrs
        .iter()
        .map(|a| format!("\"{a}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

fn world(tag: &str, subnet: u8, sockmap: bool) -> World {
    world_with(tag, subnet, sockmap, false)
}

/// `v6`: each endpoint also gets `fd00:231:<subnet>::2` / `::3` (second in `addresses`).
fn world_with(tag: &str, subnet: u8, sockmap: bool, v6: bool) -> World {
    let dir = tempfile::tempdir().expect("tempdir");
    let pid = std::process::id() % 10000;
    let addrs = |host: u8| {
        let mut a = vec![IpAddr::from([10, 231, subnet, host])];
        if v6 {
            a.push(IpAddr::from([
                0xfd00,
                0x231,
                u16::from(subnet),
                0,
                0,
                0,
                0,
                u16::from(host),
            ]));
        }
        a
    };
    let cli = LabEndpoint {
        name: "client".into(),
        interface: format!("dt{tag}c{pid}"),
        netns: format!("dt-{tag}-cli-{pid}"),
        addresses: addrs(2),
    };
    let srv = LabEndpoint {
        name: "server".into(),
        interface: format!("dt{tag}s{pid}"),
        netns: format!("dt-{tag}-srv-{pid}"),
        addresses: addrs(3),
    };
    let admin = free_port();
    let l7 = free_port();
    let flows = dir.path().join("flows.jsonl");
    let pin_dir = PathBuf::from(format!("/sys/fs/bpf/strait-test-{tag}-{pid}"));
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        r#"apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: server-ingress
spec:
  endpointSelector:
    matchLabels: {app: server}
  ingress:
    - fromEndpoints:
        - matchLabels: {app: client}
      toPorts:
        - ports: [{port: "80", protocol: TCP}]
          rules:
            http: [{method: GET}]
        - ports: [{port: "8080", protocol: TCP}]
"#,
    )
    .expect("policy");
    let config = dir.path().join("strait.yaml");
    std::fs::write(
        &config,
        format!(
            r#"admin: {{address: "127.0.0.1:{admin}"}}
flows: {{sink: file, path: "{flows}"}}
listeners:
  - name: l7
    address: 127.0.0.1:{l7}
    protocol: http
    transparent: true
endpoints:
  - name: client
    interface: {ci}
    netns: {cn}
    addresses: [{ca}]
    labels: {{app: client}}
  - name: server
    interface: {si}
    netns: {sn}
    addresses: [{sa}]
    labels: {{app: server}}
policies: [policy.yaml]
datapath: {{pin_dir: "{pin}"}}
sockmap: {{enabled: {sockmap}}}
"#,
            flows = flows.display(),
            ci = cli.interface,
            cn = cli.netns,
            ca = list(&cli.addresses),
            si = srv.interface,
            sn = srv.netns,
            sa = list(&srv.addresses),
            pin = pin_dir.display(),
        ),
    )
    .expect("config");
    World {
        dir,
        config,
        flows,
        admin,
        pin_dir,
        cli,
        srv,
    }
}

impl World {
    fn strait(&self) -> Proc {
        let log = std::fs::File::create(self.dir.path().join("strait.log")).expect("log");
        let child = Command::new(env!("CARGO_BIN_EXE_strait"))
            .args(["run", "-c"])
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn strait");
        let p = Proc(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self
                .get("/ready")
                .is_some_and(|b| b.starts_with("HTTP/1.1 200"))
            {
                return p;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let log = std::fs::read_to_string(self.dir.path().join("strait.log")).unwrap_or_default();
        panic!("strait did not become ready:\n{log}");
    }

    fn get(&self, path: &str) -> Option<String> {
        use std::io::Read as _;
        let mut s = TcpStream::connect(("127.0.0.1", self.admin)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        Some(out)
    }

    fn metric(&self, line_prefix: &str) -> u64 {
        let m = self.get("/metrics").unwrap_or_default();
        m.lines()
            .find(|l| l.starts_with(line_prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    fn flows(&self) -> Vec<FlowRecord> {
        std::fs::read_to_string(&self.flows)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// curl from the client namespace: (exit code, body).
    fn curl(&self, url: &str, extra: &[&str]) -> (i32, String) {
        curl_in(&self.cli.netns, url, extra)
    }

    fn servers(&self) -> Vec<Proc> {
        let script = self.dir.path().join("server.py");
        std::fs::write(&script, SERVER).expect("server script");
        let procs: Vec<Proc> = ["80", "8080", "9090"]
            .iter()
            .map(|p| {
                Proc(
                    exec_in(&self.srv.netns, "python3")
                        .arg(&script)
                        .arg(p)
                        .args(
                            self.srv
                                .addresses
                                .iter()
                                .any(IpAddr::is_ipv6)
                                .then_some("6"),
                        )
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .spawn()
                        .expect("python server"),
                )
            })
            .collect();
        // Wait for the ports from inside the server namespace.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let ok = ["80", "8080", "9090"].iter().all(|p| {
                exec_in(&self.srv.netns, "curl")
                    .args(["-s", "-o", "/dev/null", "-m", "1"])
                    .arg(format!("http://127.0.0.1:{p}/"))
                    .status()
                    .is_ok_and(|s| s.success())
            });
            if ok {
                return procs;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("test servers did not start");
    }
}

/// curl in `netns` (3 s limit unless `extra` sets another): (exit code, body).
fn curl_in(netns: &str, url: &str, extra: &[&str]) -> (i32, String) {
    let out = exec_in(netns, "curl")
        .args(["-s", "-m", "3"])
        .args(extra)
        .arg(url)
        .output()
        .expect("curl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn leftovers(w: &World) -> Vec<String> {
    let mut out = Vec::new();
    let ns = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip");
    let ns = String::from_utf8_lossy(&ns.stdout);
    for n in [&w.cli.netns, &w.srv.netns] {
        if ns.contains(n.as_str()) {
            out.push(format!("netns {n}"));
        }
    }
    for i in [&w.cli.interface, &w.srv.interface] {
        if Path::new("/sys/class/net").join(i).exists() {
            out.push(format!("interface {i}"));
        }
    }
    if w.pin_dir.exists() {
        out.push(format!("pins {}", w.pin_dir.display()));
    }
    // No strait program may stay loaded (a pinned or leaked link would keep it).
    for p in aya::programs::loaded_programs().flatten() {
        if let Some(name) = p.name_as_str() {
            if name.starts_with("strait_") {
                out.push(format!("loaded program {name}"));
            }
        }
    }
    out
}

#[test]
fn l3_l4_policy_l7_redirect_restart_and_cleanup() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !privileged() {
        return;
    }
    let w = world("a", 1, false);
    {
        let _dp = DatapathGuard(w.pin_dir.clone());
        let _lab = Lab::up(vec![w.cli.clone(), w.srv.clone()]).expect("lab up");
        let _servers = w.servers();
        let strait = w.strait();
        let srv = w.srv.addresses[0];
        let cli = w.cli.addresses[0];

        // Allowed at L3/L4: passes in the kernel, the server sees the client.
        let (rc, body) = w.curl(&format!("http://{srv}:8080/l4"), &[]);
        assert_eq!(rc, 0, "allowed L4 request failed");
        assert!(body.contains(&format!("client={cli}")), "{body}");

        // Denied: dropped (curl times out), counted, and an event names the drop.
        let before = w.metric("strait_datapath_drops_total{reason=\"POLICY_DENIED\"}");
        let (rc, _) = w.curl(&format!("http://{srv}:9090/denied"), &["-m", "1"]);
        assert_ne!(rc, 0, "denied port answered");
        let after = w.metric("strait_datapath_drops_total{reason=\"POLICY_DENIED\"}");
        assert!(
            after > before,
            "drop counter did not rise ({before} → {after})"
        );

        // From the host (reserved identity host, which the policy does not allow): denied by
        // `strait_to_ep` on the server's interface, on a port the client may use. Only packets
        // that `strait_from_ep` decided carry the mark that lets them past it.
        let before = after;
        let st = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-m", "1"])
            .arg(format!("http://{srv}:8080/from-host"))
            .status()
            .expect("curl");
        assert!(
            !st.success(),
            "the host reached a port only the client may use"
        );
        let after = w.metric("strait_datapath_drops_total{reason=\"POLICY_DENIED\"}");
        assert!(after > before, "host → server not dropped by strait_to_ep");

        // L7: redirected to strait's transparent listener; the original destination and the
        // client's identity reach the proxy, and the server still sees the client's address.
        let (rc, body) = w.curl(&format!("http://{srv}/l7?x=1"), &[]);
        assert_eq!(rc, 0, "L7 request failed");
        assert!(
            body.contains(&format!("client={cli}")),
            "server saw: {body}"
        );
        assert!(body.contains("port=80 "), "{body}");
        // L7 deny: the policy's http rule allows GET only; strait's built-in policy filter
        // answers 403 without reaching the server.
        let (rc, body) = w.curl(&format!("http://{srv}/l7-post"), &["-X", "POST"]);
        assert_eq!(rc, 0, "L7 POST failed");
        assert_eq!(
            body, "Access denied\r\n",
            "a denied request reached the server"
        );

        std::thread::sleep(Duration::from_millis(300));
        let flows = w.flows();
        let dropped = flows.iter().find(|f| {
            f.verdict == strait::flows::Verdict::Dropped
                && f.destination == format!("{srv}:9090")
                && f.drop_reason.as_deref() == Some("POLICY_DENIED")
        });
        assert!(dropped.is_some(), "no drop event in {flows:#?}");
        let l7 = flows
            .iter()
            .find(|f| f.listener == "l7" && f.path.as_deref() == Some("/l7?x=1"))
            .unwrap_or_else(|| panic!("no L7 flow in {flows:#?}"));
        assert_eq!(l7.destination, format!("{srv}:80"), "original destination");
        assert_eq!(l7.source.ip(), cli);
        let ids = strait::policy::Identities::from_endpoints(
            &strait::config::Config::load(&w.config)
                .expect("config")
                .endpoints,
        );
        assert_eq!(l7.source_identity, ids.of_addr(cli), "source identity");
        assert!(l7.source_identity.is_some());
        assert_eq!(
            l7.destination_identity,
            ids.of_addr(srv),
            "destination identity"
        );
        assert_eq!(
            l7.policy.as_deref(),
            Some("server-ingress/spec[0].ingress[0].toPorts[0].rules.http[0]")
        );
        let denied = flows
            .iter()
            .find(|f| f.listener == "l7" && f.path.as_deref() == Some("/l7-post"))
            .unwrap_or_else(|| panic!("no denied L7 flow in {flows:#?}"));
        assert_eq!(denied.verdict, strait::flows::Verdict::Denied);
        assert_eq!(denied.status, Some(403));
        assert_eq!(
            denied.policy.as_deref(),
            Some("ingress of app=server: no rule matches")
        );
        let redirected = flows.iter().any(|f| {
            f.verdict == strait::flows::Verdict::Redirected && f.destination == format!("{srv}:80")
        });
        assert!(redirected, "no REDIRECTED verdict event");

        // Restart: with strait stopped, pinned programs and maps keep enforcing; L7 traffic
        // fails instead of bypassing the proxy.
        strait.sigterm();
        assert!(w
            .pin_dir
            .join("links")
            .read_dir()
            .is_ok_and(|mut d| d.next().is_some()));
        let (rc, body) = w.curl(&format!("http://{srv}:8080/while-down"), &[]);
        assert_eq!(
            rc, 0,
            "L4-allowed traffic must keep flowing while strait is down"
        );
        assert!(body.contains("while-down"));
        let (rc, _) = w.curl(&format!("http://{srv}:9090/while-down"), &["-m", "1"]);
        assert_ne!(rc, 0, "denied traffic passed while strait was down");
        let (rc, body) = w.curl(&format!("http://{srv}/while-down"), &["-m", "2"]);
        assert_ne!(
            rc, 0,
            "L7 traffic bypassed the proxy while it was down: {body}"
        );

        let strait = w.strait();
        assert!(
            w.metric("strait_datapath_drops_total{reason=\"PROXY_UNAVAILABLE\"}") > 0,
            "pinned counters should show the L7 drops from while strait was down"
        );
        let (rc, body) = w.curl(&format!("http://{srv}/after-restart"), &[]);
        assert_eq!(rc, 0, "L7 after restart");
        assert!(body.contains(&format!("client={cli}")), "{body}");
        strait.sigterm();

        // `strait datapath down` removes programs, maps and the rule.
        let out = Command::new(env!("CARGO_BIN_EXE_strait"))
            .args(["datapath", "down", "-c"])
            .arg(&w.config)
            .output()
            .expect("datapath down");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!w.pin_dir.exists());
        // Without programs, the formerly denied port answers: proof they were detached.
        let (rc, _) = w.curl(&format!("http://{srv}:9090/open"), &[]);
        assert_eq!(rc, 0, "programs still attached after `datapath down`");
    }
    assert_eq!(leftovers(&w), Vec::<String>::new(), "left behind");
}

/// A node beyond an uplink: a network namespace behind a veth pair whose host side is the
/// uplink, `10.233.<subnet>.2/24` inside and `.1/24` on the host side. Removed on drop.
struct RemoteNode {
    netns: String,
    uplink: String,
    address: IpAddr,
}

impl RemoteNode {
    fn up(tag: &str, subnet: u8) -> RemoteNode {
        let pid = std::process::id() % 10000;
        let node = RemoteNode {
            netns: format!("dt-{tag}-rem-{pid}"),
            uplink: format!("dt{tag}u{pid}"),
            address: IpAddr::from([10, 233, subnet, 2]),
        };
        let peer = format!("dt{tag}p{pid}");
        let ns = &node.netns;
        for args in [
            format!("netns add {ns}"),
            format!("link add {} type veth peer name {peer}", node.uplink),
            format!("link set {peer} netns {ns}"),
            format!("addr add 10.233.{subnet}.1/24 dev {}", node.uplink),
            format!("link set {} up", node.uplink),
            format!("-n {ns} link set lo up"),
            format!("-n {ns} addr add 10.233.{subnet}.2/24 dev {peer}"),
            format!("-n {ns} link set {peer} up"),
            format!("-n {ns} route add default via 10.233.{subnet}.1"),
        ] {
            let st = Command::new("ip")
                .args(args.split(' '))
                .status()
                .expect("ip");
            assert!(st.success(), "ip {args}");
        }
        node
    }

    fn curl(&self, url: &str, extra: &[&str]) -> (i32, String) {
        curl_in(&self.netns, url, extra)
    }
}

impl Drop for RemoteNode {
    fn drop(&mut self) {
        // The namespace takes its end of the veth pair, and the pair goes with it.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .status();
        let _ = Command::new("ip")
            .args(["link", "del", &self.uplink])
            .stderr(Stdio::null())
            .status();
    }
}

/// Connections from another node (through an uplink, not from a local endpoint) to a port with
/// L7 policy reach strait's listener through `strait_from_uplink` and are judged per request;
/// L3/L4 verdicts for them stay with `strait_to_ep`. Without the uplink they are dropped
/// (`REDIRECT_UNSUPPORTED`), never let through unjudged.
#[test]
fn l7_policy_applies_to_connections_from_other_nodes_through_an_uplink() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !privileged() {
        return;
    }
    let subnet = 14;
    let w = world("u", subnet, false);
    let remote = RemoteNode::up("u", subnet);
    std::fs::write(
        w.dir.path().join("policy.yaml"),
        format!(
            r#"apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: server-ingress
spec:
  endpointSelector:
    matchLabels: {{app: server}}
  ingress:
    - fromCIDR: ["10.233.{subnet}.0/24"]
      toPorts:
        - ports: [{{port: "80", protocol: TCP}}]
          rules:
            http: [{{method: GET, path: "/ok.*"}}]
        - ports: [{{port: "8080", protocol: TCP}}]
"#
        ),
    )
    .expect("policy");
    let without = std::fs::read_to_string(&w.config).expect("config");
    let with = without.replace(
        "datapath: {pin_dir: ",
        &format!("datapath: {{uplinks: [{}], pin_dir: ", remote.uplink),
    );
    assert_ne!(with, without, "the config's datapath line changed shape");
    {
        let _dp = DatapathGuard(w.pin_dir.clone());
        let _lab = Lab::up(vec![w.cli.clone(), w.srv.clone()]).expect("lab up");
        let _servers = w.servers();
        let srv = w.srv.addresses[0];
        // A missing uplink is a configuration error (exit 64), before anything is attached.
        let missing = w.dir.path().join("missing-uplink.yaml");
        std::fs::write(
            &missing,
            with.replace(
                &format!("uplinks: [{}]", remote.uplink),
                "uplinks: [dt-nonesuch]",
            ),
        )
        .expect("config");
        let out = Command::new(env!("CARGO_BIN_EXE_strait"))
            .args(["check", "-c"])
            .arg(&missing)
            .output()
            .expect("strait check");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{err}");
        assert!(
            err.contains("datapath.uplinks: interface `dt-nonesuch` does not exist"),
            "{err}"
        );

        // Without an uplink: dropped on the server's interface, not let through unjudged.
        let strait = w.strait();
        let before = w.metric("strait_datapath_drops_total{reason=\"REDIRECT_UNSUPPORTED\"}");
        let (rc, body) = remote.curl(&format!("http://{srv}/ok-no-uplink"), &["-m", "1"]);
        assert_ne!(
            rc, 0,
            "L7 traffic from another node passed unjudged: {body}"
        );
        let after = w.metric("strait_datapath_drops_total{reason=\"REDIRECT_UNSUPPORTED\"}");
        assert!(after > before, "not dropped as REDIRECT_UNSUPPORTED");
        strait.sigterm();

        std::fs::write(&w.config, &with).expect("config");
        let _strait = w.strait();
        // L7: allowed by path, and the server sees the other node's address.
        let (rc, body) = remote.curl(&format!("http://{srv}/ok-1"), &[]);
        assert_eq!(rc, 0, "L7 request from another node failed");
        assert!(
            body.contains(&format!("client={} ", remote.address)) && body.contains("path=/ok-1"),
            "server saw: {body}\nflows: {:#?}",
            w.flows()
        );
        // Keep-alive: the second request on the same connection is judged too (curl reuses
        // the connection for two URLs).
        let (rc, body) = remote.curl(
            &format!("http://{srv}/denied-path"),
            &[&format!("http://{srv}/ok-2")],
        );
        assert_eq!(rc, 0);
        assert!(
            body.contains("path=/ok-2") && body.ends_with("Access denied\r\n"),
            "{body}"
        );
        // Denied by method, answered by strait.
        let (rc, body) = remote.curl(&format!("http://{srv}/ok-post"), &["-X", "POST"]);
        assert_eq!((rc, body.as_str()), (0, "Access denied\r\n"));
        // L3/L4: the allowed port passes in the kernel, the other one is dropped.
        let (rc, body) = remote.curl(&format!("http://{srv}:8080/l4"), &[]);
        assert_eq!(rc, 0, "L4-allowed port from another node failed");
        assert!(
            body.contains(&format!("client={} ", remote.address)),
            "{body}"
        );
        let (rc, _) = remote.curl(&format!("http://{srv}:9090/denied"), &["-m", "1"]);
        assert_ne!(rc, 0, "a port the policy does not allow answered");
        // The node's own traffic through the uplink is left alone (a connection to the host).
        let own = std::net::TcpListener::bind((IpAddr::from([10, 233, subnet, 1]), 0))
            .expect("bind on the uplink address");
        let port = own.local_addr().expect("local address").port();
        let out = exec_in(&remote.netns, "python3")
            .arg("-c")
            .arg(format!(
                "import socket; socket.create_connection(('10.233.{subnet}.1', {port}), 2)"
            ))
            .output()
            .expect("python3");
        assert!(
            out.status.success(),
            "the node's own traffic was disturbed: {}",
            String::from_utf8_lossy(&out.stderr)
        );

        std::thread::sleep(Duration::from_millis(300));
        let flows = w.flows();
        let l7 = flows
            .iter()
            .find(|f| f.listener == "l7" && f.path.as_deref() == Some("/ok-1"))
            .unwrap_or_else(|| panic!("no L7 flow in {flows:#?}"));
        assert_eq!(l7.source.ip(), remote.address);
        assert_eq!(l7.destination, format!("{srv}:80"), "original destination");
        let denied = flows
            .iter()
            .find(|f| f.listener == "l7" && f.path.as_deref() == Some("/denied-path"))
            .unwrap_or_else(|| panic!("no denied L7 flow in {flows:#?}"));
        assert_eq!(denied.verdict, Verdict::Denied);
        assert_eq!(denied.status, Some(403));
        assert!(
            flows.iter().any(|f| f.listener == "datapath:from-uplink"
                && f.verdict == Verdict::Redirected
                && f.destination == format!("{srv}:80")),
            "no REDIRECTED event from the uplink in {flows:#?}"
        );
    }
    let uplink = remote.uplink.clone();
    drop(remote);
    let mut left = leftovers(&w);
    if Path::new("/sys/class/net").join(&uplink).exists() {
        left.push(format!("interface {uplink}"));
    }
    assert_eq!(left, Vec::<String>::new(), "left behind");
}

/// Runs the Kafka client driver in `netns`: whether it succeeded, and its JSON line.
fn kafka_peer(netns: &str, args: &[&str]) -> (bool, serde_json::Value) {
    let out = exec_in(netns, "python3")
        .arg(common::kafka_env::peer_script())
        .args(args)
        .output()
        .expect("kafka_peer.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "kafka_peer.py {args:?} printed {stdout:?} ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success() && v["ok"] == true, v)
}

/// Transparent Kafka: a port with `kafka` rules is redirected to the transparent kafka
/// listener, and the built-in Kafka policy filter judges every request on it (a real broker,
/// tansu, in the server's namespace; confluent-kafka in the client's), also when it is the
/// only L7 listener. Without the policy filter on it the requests would pass unjudged.
#[test]
fn transparent_kafka_requests_are_judged_by_the_kafka_policy() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !privileged() {
        return;
    }
    let Some(tansu) = common::kafka_env::prerequisites() else {
        return;
    };
    let w = world("k", 12, false);
    // The client may produce to `orders` on port 9092, nothing else. The transparent kafka
    // listener is the only L7 listener: it must load the policy by itself.
    std::fs::write(
        w.dir.path().join("policy.yaml"),
        r#"apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: server-ingress
spec:
  endpointSelector:
    matchLabels: {app: server}
  ingress:
    - fromEndpoints:
        - matchLabels: {app: client}
      toPorts:
        - ports: [{port: "9092", protocol: TCP}]
          rules:
            kafka: [{role: produce, topic: orders}]
"#,
    )
    .expect("policy");
    let config = std::fs::read_to_string(&w.config).expect("config");
    let kafka_only = config
        .replacen("  - name: l7\n", "  - name: kafka\n", 1)
        .replacen("    protocol: http\n", "    protocol: kafka\n", 1);
    assert!(!kafka_only.contains("protocol: http"), "{kafka_only}");
    std::fs::write(&w.config, kafka_only).expect("config");
    {
        let _dp = DatapathGuard(w.pin_dir.clone());
        let _lab = Lab::up(vec![w.cli.clone(), w.srv.clone()]).expect("lab up");
        let srv = w.srv.addresses[0];
        let bootstrap = format!("{srv}:9092");
        let _broker = Proc(
            exec_in(&w.srv.netns, &tansu.display().to_string())
                .args(["broker", "--storage-engine", "memory://tansu/"])
                .args(["--listener-url", "tcp://0.0.0.0:9092"])
                .arg("--advertised-listener-url")
                .arg(format!("tcp://{bootstrap}"))
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("tansu"),
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while !exec_in(&w.srv.netns, "python3")
            .args([
                "-c",
                "import socket; socket.create_connection(('127.0.0.1', 9092), 1)",
            ])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            assert!(Instant::now() < deadline, "tansu did not listen");
            std::thread::sleep(Duration::from_millis(100));
        }
        let _strait = w.strait();
        // Topics are created from the server's own namespace (its loopback: no datapath).
        for topic in ["orders", "secret"] {
            let (ok, v) = kafka_peer(
                &w.srv.netns,
                &[
                    "create-topic",
                    "--bootstrap",
                    &bootstrap,
                    "--topic",
                    topic,
                    "--partitions",
                    "1",
                ],
            );
            assert!(ok, "create-topic {topic}: {v}");
        }

        // From the client: allowed produce, then a denied topic gets
        // TOPIC_AUTHORIZATION_FAILED (29) in the client, not a dropped connection.
        let (ok, v) = kafka_peer(
            &w.cli.netns,
            &[
                "produce",
                "--bootstrap",
                &bootstrap,
                "--topic",
                "orders",
                "--count",
                "20",
            ],
        );
        assert!(ok, "produce orders: {v}");
        assert_eq!(v["produced"], 20, "{v}");
        let (ok, v) = kafka_peer(
            &w.cli.netns,
            &[
                "produce",
                "--bootstrap",
                &bootstrap,
                "--topic",
                "secret",
                "--count",
                "3",
                "--expect-error",
                "29",
                "--timeout",
                "20",
            ],
        );
        assert!(ok, "produce secret: {v}");
        assert_eq!(v["codes"], serde_json::json!([29]), "{v}");

        // The verdicts are the transparent listener's, towards the original destination.
        std::thread::sleep(Duration::from_millis(300));
        let flows = w.flows();
        let kafka: Vec<&FlowRecord> = flows.iter().filter(|f| f.listener == "kafka").collect();
        let produced = kafka
            .iter()
            .find(|f| f.method.as_deref() == Some("Produce") && f.verdict == Verdict::Forwarded)
            .unwrap_or_else(|| panic!("no forwarded Produce in {kafka:#?}"));
        assert_eq!(produced.path.as_deref(), Some("orders"));
        assert_eq!(produced.destination, bootstrap, "original destination");
        assert_eq!(produced.source.ip(), w.cli.addresses[0]);
        assert_eq!(
            produced.policy.as_deref(),
            Some("server-ingress/spec[0].ingress[0].toPorts[0].rules.kafka[0]")
        );
        assert!(
            kafka
                .iter()
                .any(|f| f.verdict == Verdict::Denied && f.path.as_deref() == Some("secret")),
            "no denied request naming `secret` in {kafka:#?}"
        );
        assert!(
            !kafka
                .iter()
                .any(|f| f.verdict == Verdict::Forwarded && f.path.as_deref() == Some("secret")),
            "a request naming `secret` reached the broker"
        );
    }
    assert_eq!(leftovers(&w), Vec::<String>::new(), "left behind");
}

/// Bad input: crafted packets from the client namespace get the documented verdicts.
#[test]
fn malformed_fragmented_spoofed_and_non_tcp_udp_packets_have_defined_verdicts() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !privileged() {
        return;
    }
    let w = world("b", 2, false);
    {
        let _dp = DatapathGuard(w.pin_dir.clone());
        let _lab = Lab::up(vec![w.cli.clone(), w.srv.clone()]).expect("lab up");
        let _servers = w.servers();
        let strait = w.strait();
        let srv = w.srv.addresses[0];
        // Learn the gateway's MAC (the host veth) with one allowed request.
        let (rc, _) = w.curl(&format!("http://{srv}:8080/warm"), &[]);
        assert_eq!(rc, 0);
        let mac = std::fs::read_to_string(
            Path::new("/sys/class/net")
                .join(&w.cli.interface)
                .join("address"),
        )
        .expect("host veth mac");
        let allowed_before = w.metric("strait_datapath_allowed_total");
        let script = w.dir.path().join("craft.py");
        std::fs::write(&script, CRAFT).expect("craft script");
        let out = exec_in(&w.cli.netns, "python3")
            .arg(&script)
            .arg(mac.trim())
            .arg(w.cli.addresses[0].to_string())
            .arg(srv.to_string())
            .output()
            .expect("python3");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
        for (reason, at_least) in [
            ("FRAGMENT", 2),
            ("MALFORMED", 2),
            // The forged source and the forged reply of an established connection.
            ("SPOOFED_SOURCE", 2),
            ("POLICY_DENIED", 1),
            ("UNKNOWN_L3", 1),
        ] {
            let n = w.metric(&format!(
                "strait_datapath_drops_total{{reason=\"{reason}\"}}"
            ));
            assert!(n >= at_least, "{reason}: {n} drops, expected ≥ {at_least}");
        }
        // IPv4 options are parsed past: the SYN with options to the allowed port was allowed
        // (the only crafted packet that can be).
        let allowed = w.metric("strait_datapath_allowed_total");
        assert!(allowed > allowed_before, "SYN with IP options not allowed");
        // And the datapath still serves normal traffic after the garbage.
        let (rc, _) = w.curl(&format!("http://{srv}:8080/after"), &[]);
        assert_eq!(rc, 0);
        strait.sigterm();
    }
    assert_eq!(leftovers(&w), Vec::<String>::new(), "left behind");
}

/// IPv6 through the tc programs: the address words, the two-way conntrack key and the source
/// check for v6, with the same endpoints dual-stack (IPv4 still works beside it).
#[test]
fn ipv6_l3_l4_policy_conntrack_and_source_check() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !privileged() {
        return;
    }
    let w = world_with("6", 9, false, true);
    {
        let _dp = DatapathGuard(w.pin_dir.clone());
        let _lab = Lab::up(vec![w.cli.clone(), w.srv.clone()]).expect("lab up");
        let _servers = w.servers();
        let strait = w.strait();
        let (srv, cli) = (w.srv.addresses[1], w.cli.addresses[1]);
        assert!(srv.is_ipv6() && cli.is_ipv6());

        // Allowed at L4, several round trips on one connection (replies go through the
        // established path of the server's program), and the server sees the client's v6
        // address.
        let hits_before = w.metric("strait_datapath_conntrack_hits_total");
        let url = format!("http://[{srv}]:8080/v6");
        let (rc, body) = w.curl(&url, &[&url, &url]);
        assert_eq!(rc, 0, "allowed v6 request failed");
        assert_eq!(
            body.matches(&format!("client={cli} ")).count(),
            3,
            "server saw: {body}"
        );
        let hits = w.metric("strait_datapath_conntrack_hits_total") - hits_before;
        assert!(
            hits >= 6,
            "only {hits} conntrack hits for three v6 round trips"
        );

        // Denied port: dropped and counted, with an event naming the v6 destination.
        let before = w.metric("strait_datapath_drops_total{reason=\"POLICY_DENIED\"}");
        let (rc, _) = w.curl(&format!("http://[{srv}]:9090/denied"), &["-m", "1"]);
        assert_ne!(rc, 0, "denied v6 port answered");
        let after = w.metric("strait_datapath_drops_total{reason=\"POLICY_DENIED\"}");
        assert!(after > before, "v6 drop not counted ({before} → {after})");
        std::thread::sleep(Duration::from_millis(300));
        let dropped = w.flows().into_iter().find(|f| {
            f.verdict == strait::flows::Verdict::Dropped && f.destination == format!("[{srv}]:9090")
        });
        assert!(dropped.is_some(), "no v6 drop event");

        // A v6 source that is not the endpoint's: spoofed.
        let before = w.metric("strait_datapath_drops_total{reason=\"SPOOFED_SOURCE\"}");
        let st = exec_in(&w.cli.netns, "ip")
            .args([
                "-6",
                "addr",
                "add",
                "fd00:231:9::99/128",
                "dev",
                "eth0",
                "nodad",
            ])
            .status()
            .expect("ip addr add");
        assert!(st.success());
        let (rc, _) = w.curl(&url, &["-m", "1", "--interface", "fd00:231:9::99"]);
        assert_ne!(rc, 0, "spoofed v6 source answered");
        let after = w.metric("strait_datapath_drops_total{reason=\"SPOOFED_SOURCE\"}");
        assert!(after > before, "v6 spoof not counted ({before} → {after})");

        // IPv4 on the same endpoints still works.
        let (rc, body) = w.curl(&format!("http://{}:8080/v4", w.srv.addresses[0]), &[]);
        assert_eq!(rc, 0, "v4 beside v6 failed");
        assert!(body.contains("path=/v4"), "{body}");
        strait.sigterm();
    }
    assert_eq!(leftovers(&w), Vec::<String>::new(), "left behind");
}

/// The host's IPv4 forwarding counter (`Ip: ForwDatagrams` in /proc/net/snmp of the test's
/// namespace).
fn forwarded() -> u64 {
    let snmp = std::fs::read_to_string("/proc/net/snmp").expect("/proc/net/snmp");
    let mut ip = snmp.lines().filter(|l| l.starts_with("Ip:"));
    let (names, values) = (ip.next().expect("Ip header"), ip.next().expect("Ip values"));
    let i = names
        .split_whitespace()
        .position(|n| n == "ForwDatagrams")
        .expect("ForwDatagrams");
    values
        .split_whitespace()
        .nth(i)
        .and_then(|v| v.parse().ok())
        .expect("ForwDatagrams value")
}

/// `datapath.host_routing`: with `bpf` (the default) allowed endpoint-to-endpoint packets go
/// straight to the destination's interface, so the host forwards none of them; with `kernel`
/// the host routes every one.
#[test]
fn host_routing_bpf_skips_the_host_forwarding_path_and_kernel_keeps_it() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !privileged() {
        return;
    }
    let w = world("r", 10, false);
    {
        let _dp = DatapathGuard(w.pin_dir.clone());
        let _lab = Lab::up(vec![w.cli.clone(), w.srv.clone()]).expect("lab up");
        let _servers = w.servers();
        let srv = w.srv.addresses[0];
        let url = format!("http://{srv}:8080/routing");
        let three = |w: &World| {
            let (rc, body) = w.curl(&url, &[&url, &url]);
            assert_eq!(rc, 0, "allowed request failed");
            assert_eq!(body.matches("path=/routing").count(), 3, "{body}");
        };

        let strait = w.strait();
        three(&w); // neighbours resolved, caches warm
        let before = forwarded();
        three(&w);
        let bpf = forwarded() - before;
        strait.sigterm();

        let cfg = std::fs::read_to_string(&w.config).expect("config");
        let cfg = cfg.replace("datapath: {", "datapath: {host_routing: kernel, ");
        assert!(cfg.contains("host_routing: kernel"), "{cfg}");
        std::fs::write(&w.config, cfg).expect("config");
        let strait = w.strait();
        let before = forwarded();
        three(&w);
        let kernel = forwarded() - before;
        strait.sigterm();

        // Three connections are at least 3 × (SYN, ACK, request, FIN, ACK) each way.
        assert!(
            kernel >= 20,
            "host_routing kernel: only {kernel} packets forwarded"
        );
        assert_eq!(bpf, 0, "host_routing bpf: the host forwarded {bpf} packets");
    }
    assert_eq!(leftovers(&w), Vec::<String>::new(), "left behind");
}

/// A conntrack map pinned by a build with another entry layout (strait before the two-way
/// conntrack key) is refused at start with the way out, not reused.
#[test]
fn a_pinned_map_of_another_layout_is_refused_with_a_way_out() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !privileged() {
        return;
    }
    let w = world("p", 8, false);
    {
        let _dp = DatapathGuard(w.pin_dir.clone());
        let _lab = Lab::up(vec![w.cli.clone(), w.srv.clone()]).expect("lab up");
        let maps = w.pin_dir.join("maps");
        std::fs::create_dir_all(&maps).expect("pin dir");
        // The old layout: 40-byte key, 24-byte entry.
        let st = Command::new("bpftool")
            .args(["map", "create"])
            .arg(maps.join("CT"))
            .args([
                "type", "lru_hash", "key", "40", "value", "24", "entries", "16", "name", "CT",
            ])
            .status()
            .expect("bpftool");
        assert!(st.success(), "bpftool map create");
        let out = Command::new(env!("CARGO_BIN_EXE_strait"))
            .args(["run", "-c"])
            .arg(&w.config)
            .output()
            .expect("strait run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "strait started on a foreign CT map");
        assert!(
            err.contains("maps/CT was pinned by a strait build with another layout")
                && err.contains("strait datapath down"),
            "{err}"
        );
        // The way out works: `datapath down` removes the pins, and strait starts.
        let st = Command::new(env!("CARGO_BIN_EXE_strait"))
            .args(["datapath", "down", "-c"])
            .arg(&w.config)
            .status()
            .expect("strait datapath down");
        assert!(st.success());
        let strait = w.strait();
        strait.sigterm();
    }
    assert_eq!(leftovers(&w), Vec::<String>::new(), "left behind");
}

/// Sends crafted frames on eth0: argv = gateway MAC, own IP, server IP.
const CRAFT: &str = r#"
import socket, struct, sys
gw = bytes.fromhex(sys.argv[1].replace(":", ""))
src = socket.inet_aton(sys.argv[2]); dst = socket.inet_aton(sys.argv[3])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
me = s.getsockname()[4]
def csum(b):
    if len(b) % 2: b += b"\0"
    t = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while t >> 16: t = (t & 0xffff) + (t >> 16)
    return (~t) & 0xffff
def ip(proto, payload, frag=0, opts=b"", s_=src, d_=dst):
    ihl = 5 + len(opts) // 4
    h = struct.pack("!BBHHHBBH4s4s", (4 << 4) | ihl, 0, ihl * 4 + len(payload), 1, frag, 64, proto, 0, s_, d_) + opts
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + payload
def eth(pkt, ethertype=0x0800):
    return gw + me + struct.pack("!H", ethertype) + pkt
syn = struct.pack("!HHIIBBHHH", 40000, 8080, 1, 0, 5 << 4, 0x02, 65535, 0, 0)
# Fragments: MF set, then a non-first fragment.
s.send(eth(ip(6, syn, frag=0x2000)))
s.send(eth(ip(6, syn[:8], frag=0x0003)))
# Truncated: TCP with 2 bytes of header; IHL < 5.
s.send(eth(ip(6, b"\x9c\x40")))
bad = bytearray(ip(6, syn)); bad[0] = 0x44
s.send(eth(bytes(bad)))
# Spoofed source address.
s.send(eth(ip(6, syn, s_=socket.inet_aton("10.9.9.9"))))
# Not TCP/UDP (GRE): judged at L3 only; the server allows only TCP 80/8080 → denied.
s.send(eth(ip(47, b"\0" * 8)))
# Not IP, not ARP.
s.send(eth(b"\0" * 46, ethertype=0x88b5))
# IPv4 options (NOP NOP NOP EOL) on a SYN to the allowed port: parsed past, allowed.
s.send(eth(ip(6, syn, opts=b"\x01\x01\x01\x00")))
# A reply of an established connection, forged on the client's side with the server's address
# and port: conntrack knows the tuple, but not from this interface → spoofed, not a reply.
c = socket.create_connection((sys.argv[3], 8080))
port = c.getsockname()[1]
ack = struct.pack("!HHIIBBHHH", 8080, port, 1, 1, 5 << 4, 0x10, 65535, 0, 0)
s.send(eth(ip(6, ack, s_=dst, d_=src)))
c.close()
"#;

/// The sockmap counters that tell what was spliced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Splice {
    inserted: u64,
    redirected: u64,
    misses: u64,
    refused: u64,
}

impl World {
    fn splice(&self) -> Splice {
        Splice {
            inserted: self.metric("strait_sockmap_inserted_total"),
            redirected: self.metric("strait_sockmap_redirected_messages_total"),
            misses: self.metric("strait_sockmap_misses_total"),
            refused: self.metric("strait_sockmap_policy_refused_total"),
        }
    }

    fn strait_cli(&self, args: &[&str]) {
        let out = Command::new(env!("CARGO_BIN_EXE_strait"))
            .args(args)
            .arg("-c")
            .arg(&self.config)
            .output()
            .expect("strait cli");
        assert!(
            out.status.success(),
            "strait {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// HTTP/1.1 requests on one keep-alive connection to port 8080, one per line on stdin; prints
/// the body or `error <errno>`.
const KEEPALIVE_CLIENT: &str = r#"
import socket, sys
s = socket.create_connection((sys.argv[1], 8080))
def req(path):
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(4096)
    head, _, body = buf.partition(b"\r\n\r\n")
    n = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0])
    while len(body) < n:
        body += s.recv(4096)
    return body.decode().strip()
i = 0
for _ in sys.stdin:
    i += 1
    try:
        print(req(f"/ka{i}"), flush=True)
    except OSError as e:
        print("error", e.errno, flush=True)
"#;

/// A python keep-alive client in the client namespace (killed on drop).
struct KeepAlive {
    proc: Proc,
    out: std::io::BufReader<std::process::ChildStdout>,
}

impl KeepAlive {
    fn start(w: &World, srv: IpAddr) -> Self {
        let script = w.dir.path().join("keepalive.py");
        std::fs::write(&script, KEEPALIVE_CLIENT).expect("client script");
        let mut proc = Proc(
            exec_in(&w.cli.netns, "python3")
                .arg(&script)
                .arg(srv.to_string())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("keep-alive client"),
        );
        let out = std::io::BufReader::new(proc.0.stdout.take().expect("stdout"));
        Self { proc, out }
    }

    /// One request on the connection: the body, or `error <errno>`.
    fn request(&mut self) -> String {
        writeln!(self.proc.0.stdin.as_mut().expect("stdin")).expect("client stdin");
        let mut line = String::new();
        std::io::BufRead::read_line(&mut self.out, &mut line).expect("client answer");
        line.trim().to_owned()
    }
}

impl World {
    /// Waits until strait's log holds `what` at least `n` times.
    fn wait_log(&self, what: &str, n: usize) {
        let log = self.dir.path().join("strait.log");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::read_to_string(&log)
            .unwrap_or_default()
            .matches(what)
            .count()
            < n
        {
            assert!(
                Instant::now() < deadline,
                "strait did not log `{what}` {n}×"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// One HTTP answer from a listener in the host namespace (the test's own), then close.
fn host_http_once() -> (std::thread::JoinHandle<()>, u16) {
    let l = std::net::TcpListener::bind("0.0.0.0:0").expect("host listener");
    let port = l.local_addr().expect("addr").port();
    let t = std::thread::spawn(move || {
        use std::io::Read as _;
        if let Ok((mut s, _)) = l.accept() {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = s.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhost\n",
            );
        }
    });
    (t, port)
}

#[test]
fn sockmap_splices_endpoint_and_proxy_sockets_and_nothing_else() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !privileged() {
        return;
    }
    let w = world("s", 3, true);
    {
        let _dp = DatapathGuard(w.pin_dir.clone());
        let _lab = Lab::up(vec![w.cli.clone(), w.srv.clone()]).expect("lab up");
        let _servers = w.servers();
        let script = w.dir.path().join("server.py");
        let _cli_server = Proc(
            exec_in(&w.cli.netns, "python3")
                .arg(&script)
                .arg("8080")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("python server in the client namespace"),
        );
        let strait = w.strait();
        let srv = w.srv.addresses[0];
        let cli = w.cli.addresses[0];

        // Endpoint to endpoint, allowed at L4: both sockets spliced, bytes redirected.
        let s0 = w.splice();
        let (rc, body) = w.curl(&format!("http://{srv}:8080/direct"), &[]);
        assert_eq!(rc, 0, "direct request failed");
        assert!(body.contains(&format!("client={cli}")), "{body}");
        let s1 = w.splice();
        assert_eq!(s1.inserted - s0.inserted, 2, "{s0:?} → {s1:?}");
        assert!(s1.redirected >= s0.redirected + 2, "{s0:?} → {s1:?}");
        assert_eq!(s1.misses, s0.misses, "{s0:?} → {s1:?}");

        // L7 policy: the datapath hands the connection to strait; the client is spliced with
        // strait's accepted socket and strait's upstream leg (from the client's address) with
        // the server — four sockets — and the request still goes through the proxy.
        let (rc, body) = w.curl(&format!("http://{srv}/via-proxy"), &[]);
        assert_eq!(rc, 0, "L7 request failed");
        assert!(body.contains("path=/via-proxy"), "{body}");
        let s2 = w.splice();
        assert_eq!(s2.inserted - s1.inserted, 4, "{s1:?} → {s2:?}");
        assert!(s2.redirected >= s1.redirected + 4, "{s1:?} → {s2:?}");
        assert_eq!((s2.misses, s2.refused), (s1.misses, s1.refused));
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            w.flows()
                .iter()
                .any(|f| f.listener == "l7" && f.path.as_deref() == Some("/via-proxy")),
            "the spliced L7 request did not reach strait's listener"
        );

        // Loopback inside two namespaces, same port pairs in both: never spliced.
        for ns in [&w.cli.netns, &w.srv.netns] {
            let out = exec_in(ns, "curl")
                .args(["-s", "-m", "3", "http://127.0.0.1:8080/loopback"])
                .output()
                .expect("curl");
            assert!(out.status.success(), "loopback request in {ns} failed");
        }
        // A non-endpoint address (the host's): untouched.
        let host = strait::socket::interface_addresses()
            .into_iter()
            .find(|a| a.is_ipv4() && !a.is_loopback() && !w.srv.addresses.contains(a))
            .expect("a host IPv4 address");
        let (t, port) = host_http_once();
        let (rc, body) = w.curl(&format!("http://{host}:{port}/"), &[]);
        assert_eq!((rc, body.as_str()), (0, "host\n"), "host request failed");
        let _ = t.join();
        let s3 = w.splice();
        assert_eq!(s3.inserted, s2.inserted, "loopback or host sockets spliced");

        // Off: nothing new is spliced; on: splicing again.
        w.strait_cli(&["sockmap", "off"]);
        let (rc, _) = w.curl(&format!("http://{srv}:8080/off"), &[]);
        assert_eq!(rc, 0);
        let s4 = w.splice();
        assert_eq!(s4.inserted, s3.inserted, "spliced while off");
        w.strait_cli(&["sockmap", "on"]);
        let (rc, _) = w.curl(&format!("http://{srv}:8080/on"), &[]);
        assert_eq!(rc, 0);
        let s5 = w.splice();
        assert_eq!(
            s5.inserted - s4.inserted,
            2,
            "not spliced after `sockmap on`"
        );

        // Live policy change: port 8080 loses its allow rule. A keep-alive connection spliced
        // before the change has its next send dropped (fail closed), and new connections are
        // dropped by the datapath.
        let mut ka1 = KeepAlive::start(&w, srv);
        let mut ka2 = KeepAlive::start(&w, srv);
        assert!(ka1.request().starts_with("port=8080"));
        assert!(ka2.request().starts_with("port=8080"));
        let policy = w.dir.path().join("policy.yaml");
        let text = std::fs::read_to_string(&policy).expect("policy");
        let cut = text.replace("        - ports: [{port: \"8080\", protocol: TCP}]\n", "");
        assert_ne!(cut, text);
        std::fs::write(&policy, cut).expect("policy edit");
        w.wait_log("policy reloaded", 1);
        let denied0 = w.metric("strait_sockmap_policy_denied_messages_total");
        assert_eq!(ka1.request(), "error 13", "send after the policy change");
        assert!(w.metric("strait_sockmap_policy_denied_messages_total") > denied0);
        let (rc, _) = w.curl(&format!("http://{srv}:8080/after"), &["-m", "1"]);
        assert_ne!(
            rc, 0,
            "a new connection to the now-denied port was let through"
        );
        drop(ka1);

        // Policy back: the other spliced connection re-checks and goes on.
        std::fs::write(&policy, &text).expect("policy restore");
        w.wait_log("policy reloaded", 2);
        assert!(ka2.request().starts_with("port=8080"));

        // strait exits (on_exit: keep): the spliced connection keeps working without it, and
        // `datapath down` keeps the sockhash while that socket is open, then removes it.
        strait.sigterm();
        assert!(
            ka2.request().starts_with("port=8080"),
            "spliced connection broke on exit"
        );
        let down = Command::new(env!("CARGO_BIN_EXE_strait"))
            .args(["datapath", "down", "-c"])
            .arg(&w.config)
            .output()
            .expect("datapath down");
        let said = String::from_utf8_lossy(&down.stdout);
        assert!(said.contains("kept the sockmap maps"), "{said}");
        assert!(w.pin_dir.join("maps/SOCK_HASH").exists());
        assert!(
            ka2.request().starts_with("port=8080"),
            "datapath down broke it"
        );
        drop(ka2);
        std::thread::sleep(Duration::from_millis(300));
        let down = Command::new(env!("CARGO_BIN_EXE_strait"))
            .args(["datapath", "down", "-c"])
            .arg(&w.config)
            .output()
            .expect("datapath down");
        assert!(down.status.success());
        assert!(
            !w.pin_dir.exists(),
            "{}",
            String::from_utf8_lossy(&down.stdout)
        );
    }
    let left = leftovers(&w);
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn sockmap_splices_ipv6_endpoint_connections_and_not_v6_loopback() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !privileged() {
        return;
    }
    let w = world_with("t", 11, true, true);
    {
        let _dp = DatapathGuard(w.pin_dir.clone());
        let _lab = Lab::up(vec![w.cli.clone(), w.srv.clone()]).expect("lab up");
        let _servers = w.servers();
        let _strait = w.strait();
        let (srv, cli) = (w.srv.addresses[1], w.cli.addresses[1]);
        assert!(srv.is_ipv6() && cli.is_ipv6());

        // Endpoint to endpoint over IPv6, allowed at L4: both sockets spliced, the bytes of
        // three keep-alive requests redirected, and the server still sees the client's address.
        let s0 = w.splice();
        let url = format!("http://[{srv}]:8080/v6");
        let (rc, body) = w.curl(&url, &[&url, &url]);
        assert_eq!(rc, 0, "v6 request failed");
        assert_eq!(
            body.matches(&format!("client={cli} ")).count(),
            3,
            "server saw: {body}"
        );
        let s1 = w.splice();
        assert_eq!(s1.inserted - s0.inserted, 2, "{s0:?} → {s1:?}");
        assert!(s1.redirected >= s0.redirected + 6, "{s0:?} → {s1:?}");
        assert_eq!(s1.misses, s0.misses, "{s0:?} → {s1:?}");

        // IPv6 loopback inside the server's namespace: never spliced.
        let out = exec_in(&w.srv.netns, "curl")
            .args(["-s", "-m", "3", "http://[::1]:8080/loopback6"])
            .output()
            .expect("curl");
        assert!(out.status.success(), "v6 loopback request failed");
        let s2 = w.splice();
        assert_eq!(s2.inserted, s1.inserted, "v6 loopback sockets spliced");
    }
    let left = leftovers(&w);
    assert!(left.is_empty(), "left behind: {left:?}");
}

impl World {
    /// Polls `/metrics` until `name` reaches `want` (closes are counted asynchronously).
    fn wait_metric(&self, name: &str, want: u64) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let v = self.metric(name);
            if v >= want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{name} stayed at {v}, expected {want}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn sockmap_adaptive_rule_leaves_short_connections_on_tcp_and_resumes_after_a_long_one() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !privileged() {
        return;
    }
    let w = world("m", 7, true);
    let text = std::fs::read_to_string(&w.config).expect("config");
    let tuned = text.replace(
        "sockmap: {enabled: true}",
        "sockmap: {enabled: true, adaptive: {short_messages: 4, streak: 3}}",
    );
    assert_ne!(tuned, text);
    std::fs::write(&w.config, tuned).expect("config");
    {
        let _dp = DatapathGuard(w.pin_dir.clone());
        let _lab = Lab::up(vec![w.cli.clone(), w.srv.clone()]).expect("lab up");
        let _servers = w.servers();
        let _strait = w.strait();
        let srv = w.srv.addresses[0];
        const SHORT: &str = "strait_sockmap_adaptive_short_connections_total";
        const LONG: &str = "strait_sockmap_adaptive_long_connections_total";
        const BYPASSED: &str = "strait_sockmap_adaptive_bypassed_total";

        // Three short connections (one request, a two-write response: 3 messages) are spliced
        // and counted short as they close.
        let short0 = w.metric(SHORT);
        for i in 1..=3 {
            let s0 = w.splice();
            let (rc, body) = w.curl(&format!("http://{srv}:8080/short{i}"), &[]);
            assert_eq!(rc, 0, "short request {i} failed");
            assert!(body.contains(&format!("path=/short{i}")), "{body}");
            let s1 = w.splice();
            assert_eq!(s1.inserted - s0.inserted, 2, "short {i}: {s0:?} → {s1:?}");
            assert!(
                s1.redirected >= s0.redirected + 3,
                "short {i}: {s0:?} → {s1:?}"
            );
            w.wait_metric(SHORT, short0 + i);
        }
        assert_eq!(w.metric(BYPASSED), 0);

        // The streak is reached: the next connection to that service stays on TCP, works,
        // and is still measured when it closes.
        let s0 = w.splice();
        let (rc, body) = w.curl(&format!("http://{srv}:8080/bypassed"), &[]);
        assert_eq!(rc, 0, "bypassed request failed");
        assert!(body.contains("path=/bypassed"), "{body}");
        let s1 = w.splice();
        assert_eq!(s1.inserted, s0.inserted, "spliced despite the streak");
        assert_eq!(s1.redirected, s0.redirected, "{s0:?} → {s1:?}");
        assert_eq!(w.metric(BYPASSED), 1);
        w.wait_metric(SHORT, short0 + 4);

        // A long connection (5 round trips, 15 messages) on TCP ends the streak when it closes…
        let long0 = w.metric(LONG);
        let mut ka = KeepAlive::start(&w, srv);
        for _ in 0..5 {
            assert!(ka.request().starts_with("port=8080"));
        }
        assert_eq!(
            w.metric(BYPASSED),
            2,
            "the long one was opened during the streak"
        );
        assert_eq!(w.splice().inserted, s1.inserted);
        drop(ka);
        w.wait_metric(LONG, long0 + 1);

        // …so the next connection is spliced again.
        let s2 = w.splice();
        let (rc, _) = w.curl(&format!("http://{srv}:8080/again"), &[]);
        assert_eq!(rc, 0, "request after the streak failed");
        let s3 = w.splice();
        assert_eq!(
            s3.inserted - s2.inserted,
            2,
            "not spliced again: {s2:?} → {s3:?}"
        );
        assert!(s3.redirected >= s2.redirected + 3, "{s2:?} → {s3:?}");
        assert_eq!(w.metric(BYPASSED), 2);
    }
    let left = leftovers(&w);
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// Accepts one connection on port 8080 and reads nothing until a byte count N arrives on
/// stdin; reads exactly N bytes (`read N`), then to the end, and prints the byte count and the
/// SHA-256 of all it read.
const SLOW_READER: &str = r#"
import hashlib, socket, sys
l = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("0.0.0.0", 8080))
l.listen(1)
print("listening", flush=True)
c, _ = l.accept()
first = int(sys.stdin.readline())
h, n = hashlib.sha256(), 0
while True:
    b = c.recv(min(1 << 16, first - n) if n < first else 1 << 16)
    if not b:
        break
    h.update(b)
    n += len(b)
    if n == first:
        print("read", n, flush=True)
print(n, h.hexdigest(), flush=True)
"#;

/// Writes to argv[1]:8080 without blocking until the socket stays unwritable for 2 s
/// (`stalled N`), argv[2] bytes went out unchecked (`unbounded N`), or a send fails
/// (`error<errno> N`). After a line on stdin it writes argv[3] more bytes blocking, closes, and
/// prints `sent N <sha256>`.
const FAST_WRITER: &str = r#"
import hashlib, select, socket, sys
s = socket.create_connection((sys.argv[1], 8080))
limit, more = int(sys.argv[2]), int(sys.argv[3])
chunk = bytes(range(256)) * 256
h, n, state = hashlib.sha256(), 0, None
s.setblocking(False)
while state is None:
    try:
        k = s.send(chunk)
        h.update(chunk[:k])
        n += k
        if n >= limit:
            state = "unbounded"
    except BlockingIOError:
        if not select.select([], [s], [], 2.0)[1]:
            state = "stalled"
    except OSError as e:
        state = f"error{e.errno}"
print(state, n, flush=True)
sys.stdin.readline()
s.setblocking(True)
sent = 0
while sent < more:
    s.sendall(chunk)
    h.update(chunk)
    n += len(chunk)
    sent += len(chunk)
s.close()
print("sent", n, h.hexdigest(), flush=True)
"#;

/// The named `TcpExt` counters (`/proc/net/netstat`) of a network namespace.
fn tcp_ext(netns: &str, names: &[&str]) -> Vec<(String, u64)> {
    let out = exec_in(netns, "cat")
        .arg("/proc/net/netstat")
        .output()
        .expect("cat /proc/net/netstat");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let (keys, values) = (
        lines.next().expect("TcpExt keys"),
        lines.next().expect("TcpExt values"),
    );
    let all: Vec<(&str, u64)> = keys
        .split_whitespace()
        .zip(values.split_whitespace())
        .skip(1)
        .map(|(k, v)| (k, v.parse().expect("counter")))
        .collect();
    names
        .iter()
        .map(|n| {
            let v = all
                .iter()
                .find(|(k, _)| k == n)
                .unwrap_or_else(|| panic!("no TcpExt {n}"));
            ((*n).to_owned(), v.1)
        })
        .collect()
}

/// Reads one line of a child's stdout.
fn line_of(out: &mut std::io::BufReader<std::process::ChildStdout>) -> String {
    let mut line = String::new();
    std::io::BufRead::read_line(out, &mut line).expect("child stdout");
    line.trim().to_owned()
}

#[test]
fn sockmap_backpressure_makes_a_writer_wait_for_a_slow_reader_then_splices_again_losing_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !privileged() {
        return;
    }
    let w = world("b", 13, true);
    let text = std::fs::read_to_string(&w.config).expect("config");
    let tuned = text.replace(
        "sockmap: {enabled: true}",
        "sockmap: {enabled: true, max_queued: 1MiB}",
    );
    assert_ne!(tuned, text);
    std::fs::write(&w.config, tuned).expect("config");
    // Without backpressure a spliced writer never waits: it would pass this many bytes.
    const UNBOUNDED: u64 = 256 << 20;
    {
        let _dp = DatapathGuard(w.pin_dir.clone());
        let _lab = Lab::up(vec![w.cli.clone(), w.srv.clone()]).expect("lab up");
        let _strait = w.strait();
        let dir = w.dir.path();
        std::fs::write(dir.join("reader.py"), SLOW_READER).expect("reader script");
        std::fs::write(dir.join("writer.py"), FAST_WRITER).expect("writer script");
        let spawn = |netns: &str, args: &[String]| {
            let mut p = Proc(
                exec_in(netns, "python3")
                    .args(args)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .spawn()
                    .expect("python"),
            );
            let out = std::io::BufReader::new(p.0.stdout.take().expect("stdout"));
            (p, out)
        };
        let (mut reader, mut reader_out) =
            spawn(&w.srv.netns, &[dir.join("reader.py").display().to_string()]);
        assert_eq!(line_of(&mut reader_out), "listening");
        let s0 = w.splice();
        let bp0 = w.metric("strait_sockmap_backpressure_throttled");
        let (mut writer, mut writer_out) = spawn(
            &w.cli.netns,
            &[
                dir.join("writer.py").display().to_string(),
                w.srv.addresses[0].to_string(),
                UNBOUNDED.to_string(),
                (8u64 << 20).to_string(),
            ],
        );

        // The reader reads nothing: the writer must be made to wait, as TCP would make it.
        let first = line_of(&mut writer_out);
        let (state, queued) = first.split_once(' ').expect("writer state");
        let queued: u64 = queued.parse().expect("byte count");
        assert_eq!(state, "stalled", "writer: {first}");
        eprintln!("the writer had to wait after {queued} bytes");
        assert!(
            queued < 64 << 20,
            "{queued} bytes went out before the writer had to wait"
        );
        let s1 = w.splice();
        assert_eq!(s1.inserted - s0.inserted, 2, "not spliced: {s0:?} → {s1:?}");
        assert!(s1.redirected > s0.redirected, "{s0:?} → {s1:?}");
        assert_eq!(
            w.metric("strait_sockmap_backpressure_throttled") - bp0,
            1,
            "the connection's direction was not throttled"
        );

        // The reader reads what was sent so far: the spliced bytes, then the TCP ones.
        writeln!(reader.0.stdin.as_mut().expect("stdin"), "{queued}").expect("reader stdin");
        assert_eq!(line_of(&mut reader_out), format!("read {queued}"));

        // Everything sent through TCP is read: the next sends are spliced again.
        let s2 = w.splice();
        let resumed0 = w.metric("strait_sockmap_backpressure_resumed");
        writeln!(writer.0.stdin.as_mut().expect("stdin")).expect("writer stdin");
        let sent = line_of(&mut writer_out);
        let got = line_of(&mut reader_out);
        let sent = sent.strip_prefix("sent ").unwrap_or(&sent);
        assert_eq!(got, sent, "reader got ≠ writer sent");
        // The throttled bytes went through TCP without a drop or a retransmission timeout.
        // Caps far above this one made the receiver prune and drop them and the writer sit out
        // RTOs (benches/README, "Why large caps stall").
        let drops = tcp_ext(
            &w.srv.netns,
            &["TCPRcvQDrop", "RcvPruned", "TCPZeroWindowDrop"],
        );
        let timeouts = tcp_ext(&w.cli.netns, &["TCPTimeouts"]);
        eprintln!("TCP after the throttled phase: reader {drops:?}, writer {timeouts:?}");
        assert!(
            drops.iter().chain(&timeouts).all(|(_, v)| *v == 0),
            "TCP dropped or timed out: reader {drops:?}, writer {timeouts:?}"
        );
        let s3 = w.splice();
        assert!(
            w.metric("strait_sockmap_backpressure_resumed") > resumed0,
            "not spliced again after the reader caught up"
        );
        assert!(s3.redirected > s2.redirected, "{s2:?} → {s3:?}");
    }
    let left = leftovers(&w);
    assert!(left.is_empty(), "left behind: {left:?}");
}
