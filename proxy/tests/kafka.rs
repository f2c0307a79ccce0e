//! `protocol: kafka` listeners with a real broker and real clients: tansu (an Apache Kafka
//! compatible broker) behind strait, confluent-kafka (librdkafka) and kafka-python in front.
//!
//! The broker advertises an address nobody listens on (`127.0.0.1:1`), so a client that ever
//! used an address strait did not rewrite fails instead of silently bypassing strait.
//!
//! Needs `tansu` (on PATH, in ~/.cargo/bin, or `TANSU=/path/to/tansu`) and the Python packages
//! confluent-kafka and kafka-python, all installed by `scripts/setup-kafka.sh`. When one is
//! missing these tests fail under `CI=true` and skip with a printed reason elsewhere.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::kafka_env::{peer_script, prerequisites};
use common::Proxy;
use strait::flows::{FlowRecord, Verdict};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A tansu broker with in-memory storage, killed on drop.
struct Broker {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Broker {
    fn start(tansu: &Path) -> Self {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let child = Command::new(tansu)
            .args(["broker", "--storage-engine", "memory://tansu/"])
            .arg("--listener-url")
            .arg(format!("tcp://{addr}"))
            // Nobody listens there: clients must only ever use the addresses strait advertises.
            .args(["--advertised-listener-url", "tcp://127.0.0.1:1"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let broker = Broker { child, addr };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "tansu did not listen on {addr}");
            std::thread::sleep(Duration::from_millis(50));
        }
        broker
    }
}

/// Runs the peer (blocking, off the runtime's threads); its JSON line, which must say ok.
async fn peer(args: &[String]) -> serde_json::Value {
    let (ok, v, stderr) = peer_result(args).await;
    assert!(ok, "kafka_peer.py {args:?}: {v}; stderr: {stderr}");
    v
}

/// Runs the peer; whether it succeeded, its JSON line and its stderr.
async fn peer_result(args: &[String]) -> (bool, serde_json::Value, String) {
    let args = args.to_vec();
    tokio::task::spawn_blocking(move || {
        let out = Command::new("python3")
            .arg(peer_script())
            .args(&args)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
            panic!("kafka_peer.py {args:?} printed {stdout:?} ({e}); stderr: {stderr}")
        });
        (out.status.success() && v["ok"] == true, v, stderr)
    })
    .await
    .unwrap()
}

fn args(cmd: &str, bootstrap: SocketAddr, topic: &str, rest: &[&str]) -> Vec<String> {
    let mut a = vec![
        cmd.to_owned(),
        "--bootstrap".into(),
        bootstrap.to_string(),
        "--topic".into(),
        topic.into(),
    ];
    a.extend(rest.iter().map(|s| (*s).to_owned()));
    a
}

async fn strait(broker: SocketAddr) -> Proxy {
    Proxy::start(&format!(
        "listeners:\n  - name: kafka\n    address: 127.0.0.1:0\n    protocol: kafka\n    upstream: {broker}\n"
    ))
    .await
}

/// Start time of a flow in µs since the epoch (from its RFC 3339 `time`).
fn start_us(r: &FlowRecord) -> i64 {
    // 2026-11-22T05:01:02.123456Z: the date does not change during a test; compare times of day.
    let t = &r.time[11..26];
    let h: i64 = t[0..2].parse().unwrap();
    let m: i64 = t[3..5].parse().unwrap();
    let s: i64 = t[6..8].parse().unwrap();
    let us: i64 = t[9..15].parse().unwrap();
    ((h * 60 + m) * 60 + s) * 1_000_000 + us
}

/// The most requests of `method` that were in flight at once (from flow start times and
/// latencies).
fn max_in_flight(recs: &[FlowRecord], method: &str) -> usize {
    let mut events: Vec<(i64, i32)> = Vec::new();
    for r in recs.iter().filter(|r| r.method.as_deref() == Some(method)) {
        let s = start_us(r);
        events.push((s, 1));
        events.push((s + (r.latency_ns / 1000) as i64, -1));
    }
    events.sort();
    let (mut cur, mut max) = (0i32, 0i32);
    for (_, d) in events {
        cur += d;
        max = max.max(cur);
    }
    max as usize
}

/// Every flow is a forwarded Kafka request; the methods seen.
/// A client closing its connection while a response is on the way (librdkafka does at
/// shutdown): recorded as ERROR with the write failure. Nothing else may fail.
fn client_went_away(r: &FlowRecord) -> bool {
    r.verdict == Verdict::Error
        && r.error
            .as_deref()
            .is_some_and(|e| e.starts_with("writing to the client failed"))
}

fn check_flows(recs: &[FlowRecord], topic: &str) -> BTreeSet<String> {
    assert!(!recs.is_empty());
    for r in recs.iter().filter(|r| !client_went_away(r)) {
        assert_eq!(r.protocol, "kafka", "{r:?}");
        assert_eq!(r.verdict, Verdict::Forwarded, "{r:?}");
        assert!(r.error.is_none(), "{r:?}");
    }
    let produce_paths: BTreeSet<_> = recs
        .iter()
        .filter(|r| r.method.as_deref() == Some("Produce"))
        .map(|r| r.path.clone().unwrap_or_default())
        .collect();
    assert_eq!(produce_paths, BTreeSet::from([topic.to_owned()]));
    recs.iter().filter_map(|r| r.method.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confluent_kafka_produces_pipelined_and_consumes_byte_exact() {
    let Some(tansu) = prerequisites() else { return };
    let broker = Broker::start(&tansu);
    let proxy = strait(broker.addr).await;
    let k = proxy.addr("kafka");
    let topic = "strait-confluent";
    let created = peer(&args("create-topic", k, topic, &["--partitions", "3"])).await;
    // The only broker clients learn about is strait's listener.
    assert_eq!(created["brokers"], serde_json::json!([k.to_string()]));
    let n = "2000";
    let produced = peer(&args(
        "produce",
        k,
        topic,
        &["--count", n, "--size", "700", "--in-flight", "1000"],
    ))
    .await;
    assert_eq!(produced["produced"], 2000);
    let consumed = peer(&args(
        "consume",
        k,
        topic,
        &["--count", n, "--size", "700", "--group", "g-confluent"],
    ))
    .await;
    assert_eq!(consumed["consumed"], 2000);
    let recs = proxy.flows(1).await;
    let methods = check_flows(&recs, topic);
    for m in [
        "ApiVersions",
        "Metadata",
        "CreateTopics",
        "Produce",
        "FindCoordinator",
        "JoinGroup",
        "SyncGroup",
        "OffsetFetch",
        "Fetch",
    ] {
        assert!(methods.contains(m), "no {m} flow in {methods:?}");
    }
    let produces = recs
        .iter()
        .filter(|r| r.method.as_deref() == Some("Produce"))
        .count();
    assert!(produces >= 100, "only {produces} Produce requests");
    let pipelined = max_in_flight(&recs, "Produce");
    assert!(
        pipelined > 1,
        "Produce requests were never pipelined (max in flight {pipelined})"
    );
    eprintln!(
        "confluent-kafka: {produces} Produce requests, up to {pipelined} in flight; {} flows",
        recs.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_python_produces_and_both_clients_consume_byte_exact() {
    let Some(tansu) = prerequisites() else { return };
    let broker = Broker::start(&tansu);
    let proxy = strait(broker.addr).await;
    let k = proxy.addr("kafka");
    let topic = "strait-kafka-python";
    let lib = ["--lib", "kafka-python"];
    let created = peer(&args(
        "create-topic",
        k,
        topic,
        &[&lib[..], &["--partitions", "2"]].concat(),
    ))
    .await;
    assert_eq!(created["brokers"], serde_json::json!([k.to_string()]));
    let produced = peer(&args(
        "produce",
        k,
        topic,
        &[
            &lib[..],
            &["--count", "1000", "--size", "3000", "--in-flight", "5"],
        ]
        .concat(),
    ))
    .await;
    assert_eq!(produced["produced"], 1000);
    for (client, group) in [("kafka-python", "g-kp"), ("confluent", "g-cross")] {
        let consumed = peer(&args(
            "consume",
            k,
            topic,
            &[
                "--lib", client, "--count", "1000", "--size", "3000", "--group", group,
            ],
        ))
        .await;
        assert_eq!(consumed["consumed"], 1000, "{client}");
    }
    let recs = proxy.flows(1).await;
    let methods = check_flows(&recs, topic);
    for m in [
        "Metadata",
        "Produce",
        "FindCoordinator",
        "JoinGroup",
        "Fetch",
    ] {
        assert!(methods.contains(m), "no {m} flow in {methods:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_0_produce_through_strait() {
    let Some(tansu) = prerequisites() else { return };
    let broker = Broker::start(&tansu);
    let proxy = strait(broker.addr).await;
    let k = proxy.addr("kafka");
    let topic = "strait-acks0";
    peer(&args("create-topic", k, topic, &["--partitions", "1"])).await;
    // acks=0: no Produce response at all; the next requests on the connection must still be
    // matched to their responses.
    for lib in ["confluent", "kafka-python"] {
        peer(&args(
            "produce",
            k,
            topic,
            &[
                "--lib", lib, "--acks", "0", "--count", "300", "--size", "50",
            ],
        ))
        .await;
    }
    let consumed = peer(&args(
        "consume",
        k,
        topic,
        &["--count", "300", "--size", "50", "--group", "g-acks0"],
    ))
    .await;
    assert_eq!(consumed["consumed"], 300);
    let recs = proxy.flows(1).await;
    check_flows(&recs, topic);
    let unanswered = recs
        .iter()
        .filter(|r| r.method.as_deref() == Some("Produce") && r.bytes_sent == 0)
        .count();
    assert!(unanswered > 0, "no acks=0 Produce flow");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_listener_in_front_of_a_plaintext_broker() {
    let Some(tansu) = prerequisites() else { return };
    let broker = Broker::start(&tansu);
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = common::self_signed(dir.path());
    let proxy = Proxy::start(&format!(
        "listeners:\n  - name: kafka\n    address: 127.0.0.1:0\n    protocol: kafka\n    upstream: {}\n    tls: {{ cert: {}, key: {} }}\n",
        broker.addr,
        cert.display(),
        key.display()
    ))
    .await;
    let k = proxy.addr("kafka");
    let topic = "strait-tls";
    let ca = cert.display().to_string();
    for lib in ["confluent", "kafka-python"] {
        let tls = ["--ca", ca.as_str(), "--lib", lib];
        let t = format!("{topic}-{lib}");
        peer(&args(
            "create-topic",
            k,
            &t,
            &[&tls[..], &["--partitions", "1"]].concat(),
        ))
        .await;
        peer(&args(
            "produce",
            k,
            &t,
            &[&tls[..], &["--count", "200", "--size", "1000"]].concat(),
        ))
        .await;
        let consumed = peer(&args(
            "consume",
            k,
            &t,
            &[
                &tls[..],
                &["--count", "200", "--size", "1000", "--group", lib],
            ]
            .concat(),
        ))
        .await;
        assert_eq!(consumed["consumed"], 200, "{lib}");
    }
    let recs = proxy.flows(1).await;
    let failed: Vec<_> = recs
        .iter()
        .filter(|r| r.verdict != Verdict::Forwarded && !client_went_away(r))
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
}

// ---- Kafka policy (CiliumNetworkPolicy `kafka` rules, the built-in Kafka policy filter) ----

/// A policy for clients `app=client` to the broker `app=kafka` on `port`, with these `kafka`
/// rules (YAML flow mappings).
fn kafka_policy(port: u16, rules: &[&str]) -> String {
    let mut s = format!(
        "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: kafka-orders\nspec:\n  endpointSelector:\n    matchLabels: {{app: kafka}}\n  ingress:\n    - fromEndpoints:\n        - matchLabels: {{app: client}}\n      toPorts:\n        - ports:\n            - {{port: \"{port}\", protocol: TCP}}\n          rules:\n            kafka:\n"
    );
    for r in rules {
        s.push_str(&format!("              - {r}\n"));
    }
    s
}

/// strait with two listeners to `broker`: `kafka` enforcing the policy in `policy`, and
/// `admin` without policy (for creating topics).
async fn strait_with_policy(broker: SocketAddr, policy: &Path) -> (Proxy, PathBuf) {
    Proxy::start_file(&format!(
        "policies: [{}]\nlisteners:\n  - name: kafka\n    address: 127.0.0.1:0\n    protocol: kafka\n    upstream: {broker}\n    policy: {{client_labels: {{app: client}}, server_labels: {{app: kafka}}}}\n  - name: admin\n    address: 127.0.0.1:0\n    protocol: kafka\n    upstream: {broker}\n",
        policy.display()
    ))
    .await
}

const ORDERS_RULES: &[&str] = &[
    "{role: produce, topic: orders}",
    "{role: consume, topic: orders}",
    "{role: consume, topic: events}",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_policy_allows_orders_denies_other_topics_and_produce_for_consume_only_roles() {
    let Some(tansu) = prerequisites() else { return };
    let broker = Broker::start(&tansu);
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("kafka-policy.yaml");
    std::fs::write(&policy, kafka_policy(broker.addr.port(), ORDERS_RULES)).unwrap();
    let (proxy, _) = strait_with_policy(broker.addr, &policy).await;
    let (k, admin) = (proxy.addr("kafka"), proxy.addr("admin"));
    for t in ["orders", "events", "secret"] {
        peer(&args("create-topic", admin, t, &["--partitions", "1"])).await;
    }

    // Allowed: produce and consume `orders`, both clients.
    let produced = peer(&args("produce", k, "orders", &["--count", "50"])).await;
    assert_eq!(produced["produced"], 50);
    let lib = ["--lib", "kafka-python"];
    let produced = peer(&args(
        "produce",
        k,
        "orders",
        &["--count", "50", lib[0], lib[1]],
    ))
    .await;
    assert_eq!(produced["produced"], 50);
    // Both producers wrote keys 0..50: 50 distinct keys, each twice.
    let consumed = peer(&args(
        "consume",
        k,
        "orders",
        &["--count", "50", "--group", "g-orders"],
    ))
    .await;
    assert_eq!(consumed["consumed"], 50);

    // Denied topic: TOPIC_AUTHORIZATION_FAILED (29) in the client, not a dropped connection.
    let expect = ["--expect-error", "29", "--count", "3", "--timeout", "20"];
    for lib in ["confluent", "kafka-python"] {
        let mut a = expect.to_vec();
        a.extend(["--lib", lib]);
        let v = peer(&args("produce", k, "secret", &a)).await;
        assert_eq!(v["codes"], serde_json::json!([29]), "{lib}: {v}");
        // A consume-only role cannot produce.
        let v = peer(&args("produce", k, "events", &a)).await;
        assert_eq!(v["codes"], serde_json::json!([29]), "{lib}: {v}");
    }
    // One producer writing an allowed and a denied topic keeps the allowed one: the denial
    // comes inside the broker's Metadata answer, so librdkafka keeps its brokers.
    let v = peer(&args(
        "produce",
        k,
        "orders",
        &[
            "--denied-topic",
            "secret",
            "--expect-error",
            "29",
            "--count",
            "10",
            "--timeout",
            "20",
        ],
    ))
    .await;
    assert_eq!(
        (v["produced"].clone(), v["codes"].clone()),
        (10.into(), serde_json::json!([29])),
        "{v}"
    );
    // A consumer of a denied topic gets 29. librdkafka reports it as a message error of a
    // subscription (the topic comes back with 29 in the Metadata answers it sees). kafka-python
    // 3.0 raises the same error from its background Metadata refresh and drops it there for a
    // subscription (it logs "Topic secret is not authorized for this client", as it would with
    // Kafka's own ACLs), so it is shown with assigned partitions: OffsetFetch / ListOffsets /
    // Fetch of `secret` are denied and poll() raises TopicAuthorizationFailedError.
    for (lib, how) in [("confluent", None), ("kafka-python", Some("--assign"))] {
        let group = format!("g-secret-{lib}");
        let mut a = vec![
            "--expect-error",
            "29",
            "--count",
            "1",
            "--partitions",
            "1",
            "--group",
            &group,
            "--timeout",
            "20",
            "--lib",
            lib,
        ];
        a.extend(how);
        let v = peer(&args("consume", k, "secret", &a)).await;
        assert_eq!(v["codes"], serde_json::json!([29]), "{lib}: {v}");
    }

    // Every verdict is a flow record naming the filter and the rule (or why none allowed).
    let recs = proxy.flows(1).await;
    let on = |r: &&FlowRecord| r.listener == "kafka" && !client_went_away(r);
    let kafka: Vec<&FlowRecord> = recs.iter().filter(on).collect();
    for r in &kafka {
        assert_eq!(r.filter.as_deref(), Some("strait.kafka-policy"), "{r:?}");
        assert!(r.policy.is_some(), "{r:?}");
    }
    let allowed_produce = kafka
        .iter()
        .filter(|r| r.method.as_deref() == Some("Produce") && r.verdict == Verdict::Forwarded)
        .collect::<Vec<_>>();
    assert!(!allowed_produce.is_empty());
    for r in &allowed_produce {
        assert_eq!(r.path.as_deref(), Some("orders"), "{r:?}");
        assert_eq!(
            r.policy.as_deref(),
            Some("kafka-orders/spec[0].ingress[0].toPorts[0].rules.kafka[0]"),
            "{r:?}"
        );
    }
    let denied: Vec<_> = kafka
        .iter()
        .filter(|r| r.verdict == Verdict::Denied)
        .collect();
    let denied_on = |method: &str, topic: &str| {
        denied
            .iter()
            .any(|r| r.method.as_deref() == Some(method) && r.path.as_deref() == Some(topic))
    };
    assert!(denied_on("Metadata", "secret"), "{denied:#?}");
    assert!(denied_on("Produce", "events"), "{denied:#?}");
    // Requests naming topics get 29; others (librdkafka's GetTelemetrySubscriptions, outside
    // Cilium's roles) 31, CLUSTER_AUTHORIZATION_FAILED.
    for r in &denied {
        let e = r.error.as_deref().unwrap_or_default();
        let code = if r.path.is_some() { 29 } else { 31 };
        assert!(e.contains(&format!("Kafka error code {code}")), "{r:?}");
        assert!(e.contains("ingress of app=kafka"), "{r:?}");
    }
    assert!(
        !kafka
            .iter()
            .any(|r| r.verdict == Verdict::Forwarded && r.path.as_deref() == Some("secret")),
        "a request naming `secret` reached the broker"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_policy_edit_changes_the_verdict_on_an_open_connection() {
    use std::io::{BufRead, BufReader, Write};
    let Some(tansu) = prerequisites() else { return };
    let broker = Broker::start(&tansu);
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("kafka-policy.yaml");
    let port = broker.addr.port();
    std::fs::write(&policy, kafka_policy(port, ORDERS_RULES)).unwrap();
    let (proxy, _) = strait_with_policy(broker.addr, &policy).await;
    let (k, admin) = (proxy.addr("kafka"), proxy.addr("admin"));
    peer(&args(
        "create-topic",
        admin,
        "orders",
        &["--partitions", "1"],
    ))
    .await;

    // One producer, kept open across the edit.
    let mut child = Command::new("python3")
        .arg(peer_script())
        .args(args(
            "produce",
            k,
            "orders",
            &[
                "--count",
                "20",
                "--then-expect-error",
                "29",
                "--timeout",
                "20",
            ],
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let mut read = tokio::task::spawn_blocking(move || {
        out.read_line(&mut line).unwrap();
        (out, line)
    });
    let (out, round1) = (&mut read).await.unwrap();
    let v: serde_json::Value = serde_json::from_str(round1.trim()).unwrap();
    assert_eq!(v["produced"], 20, "{v}");

    // Produce to `orders` is no longer allowed (consume still is).
    std::fs::write(
        &policy,
        kafka_policy(port, &["{role: consume, topic: orders}  # produce removed"]),
    )
    .unwrap();
    // Wait until a new connection sees the new policy.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (ok, _, _) = peer_result(&args(
            "produce",
            k,
            "orders",
            &["--count", "1", "--expect-error", "29", "--timeout", "10"],
        ))
        .await;
        if ok {
            break;
        }
        assert!(Instant::now() < deadline, "the policy edit was not applied");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"go\n").unwrap();
    drop(stdin);
    let (mut out, mut line) = (out, String::new());
    let line = tokio::task::spawn_blocking(move || {
        out.read_line(&mut line).unwrap();
        line
    })
    .await
    .unwrap();
    let status = child.wait().unwrap();
    let v: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
    assert!(status.success() && v["ok"] == true, "round 2: {v}");
    assert_eq!(v["codes"], serde_json::json!([29]), "{v}");

    // Round 2 was denied on the connection that round 1 produced its 20 messages on (the
    // probes produced one each).
    let recs = proxy.flows(1).await;
    let produce = |verdict: Verdict| -> std::collections::BTreeMap<SocketAddr, usize> {
        let mut m = std::collections::BTreeMap::new();
        for r in recs
            .iter()
            .filter(|r| r.method.as_deref() == Some("Produce") && r.verdict == verdict)
        {
            *m.entry(r.source).or_default() += 1;
        }
        m
    };
    let (forwarded, denied) = (produce(Verdict::Forwarded), produce(Verdict::Denied));
    let round1 = forwarded.iter().max_by_key(|(_, n)| **n).map(|(a, _)| *a);
    let round1 = round1.unwrap();
    assert!(forwarded[&round1] >= 10, "{forwarded:?}");
    assert!(
        denied.get(&round1).is_some_and(|n| *n >= 1),
        "round 2 was not denied on round 1's connection {round1}: {forwarded:?} vs {denied:?}"
    );
}
