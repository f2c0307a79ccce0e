//! `strait-bench kafka`: the Kafka targets of the Kafka issue.
//!
//! - **verdict** (in process, no broker): `ConnFilters::judge` — what a `protocol: kafka`
//!   listener does per request when it has filters — on a Produce v9 request carrying one 1 KiB
//!   record batch, already parsed, with the built-in Kafka policy filter loaded through the
//!   public `Config::parse` → `Runtime::load_chain` API, against a listener without filters.
//! - **throughput** (real broker, real client): tansu (a Kafka-compatible broker, in-memory
//!   storage) and confluent-kafka producers (`tests/e2e/kafka_peer.py`, one Produce request per
//!   1 KiB message), producing straight to the broker, through a strait listener without policy,
//!   and through one with a CiliumNetworkPolicy `kafka` policy; interleaved, in the same run.

use std::fmt::Write as _;
use std::fs;
use std::hint::black_box;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, ValueEnum};
use serde::Serialize;
use strait::config::Config;
use strait::kafka::proxy::filters::{ConnFilters, Judged, TopicNames};
use strait::kafka::request::parse_request;
use strait::wasm::ChainHandle;

use crate::filters::{free_ports, metric_value, stats, wait_ready, Stats};
use crate::peers::{self, MANIFEST_DIR};
use crate::procs::{self, Service, TempDir};
use crate::report::{self, median, Machine, Verdict};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Part {
    Verdict,
    Throughput,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FlowSink {
    None,
    Stdout,
}

#[derive(Debug, Clone, Args, Serialize)]
pub struct KafkaArgs {
    /// Parts to run, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "verdict,throughput")]
    pub parts: Vec<Part>,
    /// verdict: measured requests per case.
    #[arg(long, default_value_t = 200_000)]
    pub iterations: usize,
    /// verdict: unmeasured requests per case before measuring.
    #[arg(long, default_value_t = 20_000)]
    pub warmup_iterations: usize,
    /// verdict: the cases take turns in this many rounds (the order rotates).
    #[arg(long, default_value_t = 10)]
    pub rounds: usize,
    /// verdict: measured first requests on a fresh connection (ConnFilters::new, judge, drop).
    #[arg(long, default_value_t = 5_000)]
    pub first_requests: usize,
    /// throughput: measured runs per case (direct, strait, strait + policy; interleaved, the
    /// order rotating every repeat).
    #[arg(long, default_value_t = 7)]
    pub repeats: usize,
    /// throughput: messages per producer process per run.
    #[arg(long, default_value_t = 40_000)]
    pub count: usize,
    /// throughput: message value size in bytes.
    #[arg(long, default_value_t = 1024)]
    pub size: usize,
    /// throughput: producer processes per run, in parallel, each with its own connections.
    #[arg(long, default_value_t = 1)]
    pub producers: usize,
    /// throughput: `max.in.flight.requests.per.connection` of each producer.
    #[arg(long, default_value_t = 5)]
    pub in_flight: usize,
    /// throughput: partitions of the topic.
    #[arg(long, default_value_t = 1)]
    pub partitions: usize,
    /// throughput: strait `runtime.workers` (0: strait's default, one per cpu).
    #[arg(long, default_value_t = 0)]
    pub workers: usize,
    /// throughput: strait's flow records (`flows.sink`); stdout goes to strait's log file.
    #[arg(long, value_enum, default_value = "none")]
    pub flows: FlowSink,
    /// throughput: before each run, wait while the machine is busier than this % of all cpus.
    #[arg(long, default_value_t = 10.0)]
    pub idle_threshold: f64,
    /// throughput: longest wait for the machine to go idle before a run, seconds.
    #[arg(long, default_value_t = 120)]
    pub idle_wait: u64,
    /// throughput: a run during which more than this many cores did other work is redone.
    #[arg(long, default_value_t = 0.15)]
    pub max_other_cores: f64,
    /// throughput: how often a noisy run is redone before it is kept anyway.
    #[arg(long, default_value_t = 2)]
    pub noisy_retries: usize,
    /// Path to the strait binary (relative paths are also tried against the workspace root).
    #[arg(long, default_value = "target/release/strait")]
    pub strait_bin: PathBuf,
    /// The tansu binary [default: $TANSU, `tansu` on PATH, or ~/.cargo/bin/tansu].
    #[arg(long)]
    pub tansu: Option<PathBuf>,
    /// The Kafka client peer (relative paths are also tried against the workspace root).
    #[arg(long, default_value = "tests/e2e/kafka_peer.py")]
    pub peer: PathBuf,
    /// Python interpreter with confluent-kafka.
    #[arg(long, default_value = "python3")]
    pub python: String,
    /// JSON output path [default: benches/results/kafka-<date>.json].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Keep the temp dir with generated configs and logs.
    #[arg(long)]
    pub keep_tmp: bool,
}

// ---------------------------------------------------------------------------------------------
// Kafka wire: a Produce v9 request with one record batch (magic 2) of one record

/// CRC-32C (Castagnoli), as record batches carry it.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_varint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, ((v << 1) ^ (v >> 63)) as u64);
}

/// A record batch (magic 2, no compression, not transactional) of one record.
pub fn record_batch(key: &[u8], value: &[u8], timestamp_ms: i64) -> Vec<u8> {
    let mut rec = Vec::with_capacity(value.len() + key.len() + 16);
    rec.push(0); // attributes
    put_varint(&mut rec, 0); // timestamp delta
    put_varint(&mut rec, 0); // offset delta
    put_varint(&mut rec, key.len() as i64);
    rec.extend_from_slice(key);
    put_varint(&mut rec, value.len() as i64);
    rec.extend_from_slice(value);
    put_varint(&mut rec, 0); // headers
                             // attributes .. records: what the CRC covers.
    let mut tail = Vec::with_capacity(rec.len() + 48);
    tail.extend_from_slice(&0i16.to_be_bytes()); // attributes
    tail.extend_from_slice(&0i32.to_be_bytes()); // last offset delta
    tail.extend_from_slice(&timestamp_ms.to_be_bytes()); // base timestamp
    tail.extend_from_slice(&timestamp_ms.to_be_bytes()); // max timestamp
    tail.extend_from_slice(&(-1i64).to_be_bytes()); // producer id
    tail.extend_from_slice(&(-1i16).to_be_bytes()); // producer epoch
    tail.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
    tail.extend_from_slice(&1i32.to_be_bytes()); // records
    put_varint(&mut tail, rec.len() as i64);
    tail.extend_from_slice(&rec);
    let mut out = Vec::with_capacity(tail.len() + 21);
    out.extend_from_slice(&0i64.to_be_bytes()); // base offset
    let batch_len = 4 + 1 + 4 + tail.len(); // leader epoch, magic, crc, tail
    out.extend_from_slice(&(batch_len as i32).to_be_bytes());
    out.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
    out.push(2); // magic
    out.extend_from_slice(&crc32c(&tail).to_be_bytes());
    out.extend_from_slice(&tail);
    out
}

/// A Produce v9 (flexible) request frame payload (no size prefix): acks 1, one topic, one
/// partition, `records` as its record batch.
pub fn produce_v9(correlation_id: i32, client_id: &str, topic: &str, records: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(records.len() + 64);
    f.extend_from_slice(&0i16.to_be_bytes()); // api key: Produce
    f.extend_from_slice(&9i16.to_be_bytes()); // api version
    f.extend_from_slice(&correlation_id.to_be_bytes());
    // Request header v2: the client id is a classic (int16-length) string, then tagged fields.
    f.extend_from_slice(&(client_id.len() as i16).to_be_bytes());
    f.extend_from_slice(client_id.as_bytes());
    put_uvarint(&mut f, 0);
    put_uvarint(&mut f, 0); // transactional id: null
    f.extend_from_slice(&1i16.to_be_bytes()); // acks
    f.extend_from_slice(&30_000i32.to_be_bytes()); // timeout ms
    put_uvarint(&mut f, 2); // topics: 1
    put_uvarint(&mut f, topic.len() as u64 + 1);
    f.extend_from_slice(topic.as_bytes());
    put_uvarint(&mut f, 2); // partitions: 1
    f.extend_from_slice(&0i32.to_be_bytes()); // partition index
    put_uvarint(&mut f, records.len() as u64 + 1);
    f.extend_from_slice(records);
    put_uvarint(&mut f, 0); // partition tagged fields
    put_uvarint(&mut f, 0); // topic tagged fields
    put_uvarint(&mut f, 0); // request tagged fields
    f
}

/// 1 KiB (or `size`) value bytes like the peer's: every byte value occurs.
fn value_bytes(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i * 7 + 3) as u8).collect()
}

/// The Produce frame of the verdict cases: client id `rdkafka` (librdkafka's default), one
/// 1 KiB record to partition 0 of `topic`.
pub fn produce_frame(topic: &str) -> Vec<u8> {
    let batch = record_batch(b"key-0", &value_bytes(1024), 1_795_000_000_000);
    produce_v9(7, "rdkafka", topic, &batch)
}

// ---------------------------------------------------------------------------------------------
// The Kafka policy filter's configuration, as strait compiles it

const RULE_PREFIX: &str = "bench-kafka/spec[0].ingress[0].toPorts[0].rules.kafka";
/// Cilium's `role: produce`: Produce, Metadata, ApiVersions.
const ROLE_PRODUCE: [i16; 3] = [0, 3, 18];
/// The identities and port of the keyed case (a transparent listener's sets).
const SRC_IDENTITY: u32 = 1001;
const DST_IDENTITY: u32 = 1002;
const BROKER_PORT: u16 = 9092;

/// `rules` `role: produce` rules: `topic-0`, …, and `orders` last (so a Produce to `orders`
/// matches only the last one). `keyed`: the set names identities and the port, as for a
/// transparent listener; otherwise all `null`, as for an explicit listener.
pub fn policy_config(rules: usize, keyed: bool) -> serde_json::Value {
    let rule = |i: usize, topic: String| {
        serde_json::json!({
            "name": format!("{RULE_PREFIX}[{i}]"),
            "api_keys": ROLE_PRODUCE, "api_version": null, "client_id": null, "topic": topic
        })
    };
    let mut list: Vec<serde_json::Value> = (0..rules.saturating_sub(1))
        .map(|i| rule(i, format!("topic-{i}")))
        .collect();
    list.push(rule(rules.saturating_sub(1), "orders".into()));
    let (src, dst, port) = if keyed {
        (
            serde_json::json!(SRC_IDENTITY),
            serde_json::json!(DST_IDENTITY),
            serde_json::json!(BROKER_PORT),
        )
    } else {
        (
            serde_json::Value::Null,
            serde_json::Value::Null,
            serde_json::Value::Null,
        )
    };
    serde_json::json!({"sets": [{
        "source_identity": src, "destination_identity": dst, "port": port,
        "directions": [{
            "name": "ingress of app=kafka", "deny": null, "allow_all": null, "rules": list
        }]
    }]})
}

/// A CiliumNetworkPolicy for clients `app=client` to the broker `app=kafka` on `port`: `rules`
/// `role: produce` rules, `topic-0`, … and `orders` last.
pub fn policy_yaml(port: u16, rules: usize) -> String {
    let mut s = format!(
        "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: bench-kafka\n\
         spec:\n  endpointSelector:\n    matchLabels: {{app: kafka}}\n  ingress:\n    - \
         fromEndpoints:\n        - matchLabels: {{app: client}}\n      toPorts:\n        - \
         ports:\n            - {{port: \"{port}\", protocol: TCP}}\n          rules:\n            \
         kafka:\n"
    );
    for i in 0..rules.saturating_sub(1) {
        let _ = writeln!(s, "              - {{role: produce, topic: topic-{i}}}");
    }
    s.push_str("              - {role: produce, topic: orders}\n");
    s
}

// ---------------------------------------------------------------------------------------------
// verdict (in process)

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Expect {
    /// No filters: forwarded, nobody decided.
    Pass,
    /// Allowed by the rule with this index.
    Allow(usize),
    /// Denied with this Kafka error code.
    Deny(i16),
}

struct VerdictCase {
    name: &'static str,
    /// Index of the case's listener in the config (`None`: no filters).
    listener: Option<usize>,
    topic: &'static str,
    keyed: bool,
    expect: Expect,
}

/// The policy listeners of the verdict config: (name, rules, keyed).
const POLICY_LISTENERS: [(&str, usize, bool); 3] = [
    ("kafka_policy_1", 1, false),
    ("kafka_policy_100", 100, false),
    ("kafka_policy_100_keyed", 100, true),
];

fn verdict_cases() -> Vec<VerdictCase> {
    vec![
        VerdictCase {
            name: "no filters (baseline)",
            listener: None,
            topic: "orders",
            keyed: false,
            expect: Expect::Pass,
        },
        VerdictCase {
            name: "kafka-policy, 1 rule, allowed",
            listener: Some(0),
            topic: "orders",
            keyed: false,
            expect: Expect::Allow(0),
        },
        VerdictCase {
            name: "kafka-policy, 100 rules, allowed by the last",
            listener: Some(1),
            topic: "orders",
            keyed: false,
            expect: Expect::Allow(99),
        },
        VerdictCase {
            name: "kafka-policy, 100 rules, denied (topic `payments`)",
            listener: Some(1),
            topic: "payments",
            keyed: false,
            expect: Expect::Deny(29),
        },
        VerdictCase {
            name: "kafka-policy, 100 rules, set keyed by identities + port, allowed",
            listener: Some(2),
            topic: "orders",
            keyed: true,
            expect: Expect::Allow(99),
        },
    ]
}

/// Config with one (never bound) `protocol: kafka` listener per policy configuration.
pub fn verdict_config_yaml() -> String {
    let mut s = String::from("runtime: { workers: 1 }\nflows: { sink: none }\nlisteners:\n");
    for (i, (name, rules, keyed)) in POLICY_LISTENERS.iter().enumerate() {
        let _ = write!(
            s,
            "  - name: {name}\n    address: \"127.0.0.1:{}\"\n    protocol: kafka\n    \
             upstream: \"127.0.0.1:9\"\n    filters:\n      - name: {name}\n        module: \
             builtin:kafka-policy\n        config: '{}'\n",
            41_000 + i,
            // A YAML single-quoted string is handed to the filter as is.
            policy_config(*rules, *keyed)
        );
    }
    s
}

fn conn(handle: &ChainHandle, keyed: bool) -> ConnFilters {
    let ids = if keyed {
        (Some(SRC_IDENTITY), Some(DST_IDENTITY))
    } else {
        (None, None)
    };
    ConnFilters::new(
        handle.clone(),
        "kafka",
        SocketAddr::from(([127, 0, 0, 1], 40_000)),
        SocketAddr::from(([127, 0, 0, 1], BROKER_PORT)),
        format!("127.0.0.1:{BROKER_PORT}"),
        ids,
    )
}

fn check(j: &Judged, expect: Expect) -> Result<(), String> {
    let ok = match expect {
        Expect::Pass => j.deny.is_none() && j.policy.is_none() && j.filter.is_none(),
        Expect::Allow(i) => {
            j.deny.is_none() && j.policy.as_deref() == Some(format!("{RULE_PREFIX}[{i}]").as_str())
        }
        Expect::Deny(code) => j.deny == Some(code),
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "expected {expect:?}, got deny {:?}, filter {:?}, policy {:?}, reason {:?}",
            j.deny, j.filter, j.policy, j.reason
        ))
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct VerdictRow {
    pub case: String,
    pub topic: String,
    pub expect: String,
    pub stats: Stats,
    pub added_mean_us: f64,
    pub added_p50_us: f64,
    pub added_p99_us: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct VerdictReport {
    pub request: String,
    pub frame_bytes: usize,
    pub measured: String,
    /// Steady state: many requests on one connection.
    pub rows: Vec<VerdictRow>,
    /// `parse_request` of the frame (done for every request, filters or not; not part of the
    /// verdict).
    pub parse: Stats,
    /// A connection's first request: `ConnFilters::new`, `judge`, and dropping the
    /// `ConnFilters` (the stream context's end).
    pub first_request: Vec<VerdictRow>,
    /// The reason the denied case carries.
    pub deny_reason: Option<String>,
}

fn verdict(args: &KafkaArgs) -> Result<VerdictReport> {
    let yaml = verdict_config_yaml();
    let cfg = Config::parse(Path::new("strait-bench-kafka.yaml"), &yaml)
        .map_err(|e| anyhow!("{e}"))
        .context("verdict config")?;
    let runtime = strait::wasm::Runtime::new(
        &cfg.wasm,
        1,
        cfg.clusters.clone(),
        strait::wasm::CompileMode::InProcess,
    )?;
    eprintln!("\n== verdict: loading builtin:kafka-policy (compiling with Cranelift)…");
    let mut handles: Vec<ChainHandle> = Vec::new();
    for l in &cfg.listeners {
        let t = Instant::now();
        let chain = runtime
            .load_chain(&l.name, &l.filters, None)
            .with_context(|| format!("loading {}", l.name))?;
        eprintln!(
            "  {}: loaded in {:.0} ms",
            l.name,
            t.elapsed().as_secs_f64() * 1000.0
        );
        let h = strait::wasm::reload::empty();
        h.store(Arc::new(chain));
        handles.push(h);
    }
    let empty = strait::wasm::reload::empty();
    let cases = verdict_cases();
    let handle_of = |c: &VerdictCase| -> ChainHandle {
        c.listener
            .map_or_else(|| empty.clone(), |i| handles[i].clone())
    };
    let names = TopicNames::default();
    let mut frames = Vec::new();
    for c in &cases {
        let frame = produce_frame(c.topic);
        let parsed = parse_request(&frame).map_err(|e| anyhow!("{}: {e}", c.name))?;
        frames.push((frame, parsed));
    }
    let frame_bytes = frames[0].0.len();

    // Sanity, and one steady connection per case.
    let mut conns = Vec::new();
    let mut deny_reason = None;
    for (c, (_, parsed)) in cases.iter().zip(&frames) {
        let mut cf = conn(&handle_of(c), c.keyed);
        for _ in 0..2 {
            let j = cf.judge(parsed, &names);
            check(&j, c.expect).map_err(|e| anyhow!("{}: {e}", c.name))?;
            if matches!(c.expect, Expect::Deny(_)) {
                deny_reason = j.reason.clone();
            }
        }
        conns.push(cf);
    }
    eprintln!(
        "  sanity: every case judged as expected (denied: {})",
        deny_reason.as_deref().unwrap_or("-")
    );
    eprintln!(
        "== verdict: {} cases × ({} warm-up + {} measured requests), {} rounds; Produce v9, \
         {frame_bytes}-byte frame",
        cases.len(),
        args.warmup_iterations,
        args.iterations,
        args.rounds
    );

    let mut samples: Vec<Vec<u64>> = (0..cases.len())
        .map(|_| Vec::with_capacity(args.iterations))
        .collect();
    let per_round = args.iterations.div_ceil(args.rounds);
    let warm_per_round = args.warmup_iterations.div_ceil(args.rounds);
    let start = Instant::now();
    for round in 0..args.rounds {
        let mut order: Vec<usize> = (0..cases.len()).collect();
        order.rotate_left(round % cases.len());
        for &i in &order {
            let parsed = &frames[i].1;
            let cf = &mut conns[i];
            let n = per_round.min(args.iterations - samples[i].len());
            let warm = if round == 0 {
                args.warmup_iterations
            } else {
                warm_per_round / 10
            };
            for _ in 0..warm {
                black_box(cf.judge(black_box(parsed), &names));
            }
            let out = &mut samples[i];
            for _ in 0..n {
                let t = Instant::now();
                let j = cf.judge(black_box(parsed), &names);
                black_box(j);
                out.push(t.elapsed().as_nanos() as u64);
            }
        }
        eprint!(
            "\r  round {}/{} done ({:.0} s)",
            round + 1,
            args.rounds,
            start.elapsed().as_secs_f64()
        );
    }
    eprintln!();
    // Still judging as expected after all that.
    for ((c, (_, parsed)), cf) in cases.iter().zip(&frames).zip(conns.iter_mut()) {
        check(&cf.judge(parsed, &names), c.expect).map_err(|e| anyhow!("{}: {e}", c.name))?;
    }
    drop(conns);

    let rows = rows_of(&cases, &mut samples);
    for r in &rows {
        eprintln!(
            "  {:<64} mean {:>7.3} µs  p50 {:>7.3}  p99 {:>7.3}  added {:>+7.3} µs",
            r.case, r.stats.mean_us, r.stats.p50_us, r.stats.p99_us, r.added_mean_us
        );
    }

    // parse_request alone (informational).
    let mut parse_ns = Vec::with_capacity(args.iterations);
    let frame = &frames[2].0;
    for _ in 0..args.warmup_iterations {
        let _ = black_box(parse_request(black_box(frame)));
    }
    for _ in 0..args.iterations {
        let t = Instant::now();
        let p = parse_request(black_box(frame));
        black_box(p).map_err(|e| anyhow!("{e}"))?;
        parse_ns.push(t.elapsed().as_nanos() as u64);
    }
    let parse = stats(&mut parse_ns);
    eprintln!(
        "  parse_request (Produce v9, {frame_bytes} bytes): mean {:.3} µs  p50 {:.3}  p99 {:.3}",
        parse.mean_us, parse.p50_us, parse.p99_us
    );

    // A connection's first request.
    let first_cases: Vec<usize> = vec![0, 2];
    let mut first: Vec<Vec<u64>> = (0..first_cases.len())
        .map(|_| Vec::with_capacity(args.first_requests))
        .collect();
    let warm = (args.first_requests / 10).max(1);
    for round in 0..args.rounds {
        for (k, &i) in first_cases.iter().enumerate() {
            let c = &cases[i];
            let h = handle_of(c);
            let parsed = &frames[i].1;
            let n = args
                .first_requests
                .div_ceil(args.rounds)
                .min(args.first_requests - first[k].len());
            let w = if round == 0 { warm } else { 0 };
            for m in 0..w + n {
                let t = Instant::now();
                let mut cf = conn(&h, c.keyed);
                let j = cf.judge(black_box(parsed), &names);
                drop(cf);
                let ns = t.elapsed().as_nanos() as u64;
                if m == 0 && round == 0 {
                    check(&j, c.expect).map_err(|e| anyhow!("{}: {e}", c.name))?;
                }
                black_box(j);
                if m >= w {
                    first[k].push(ns);
                }
            }
        }
    }
    let first_request = rows_of(
        &first_cases.iter().map(|&i| &cases[i]).collect::<Vec<_>>(),
        &mut first,
    );
    for r in &first_request {
        eprintln!(
            "  first request on a connection, {:<40} mean {:>7.3} µs  p50 {:>7.3}  p99 {:>7.3}",
            r.case, r.stats.mean_us, r.stats.p50_us, r.stats.p99_us
        );
    }
    Ok(VerdictReport {
        request: format!(
            "Produce v9 (flexible), client id `rdkafka`, acks 1, topic `orders` (or `payments`), \
             partition 0, one record batch (magic 2, CRC-32C) of one record: key `key-0`, 1024-byte \
             value; {frame_bytes} bytes without the size prefix"
        ),
        frame_bytes,
        measured: "ConnFilters::judge(&parsed, &TopicNames) on a parsed request, on a connection \
                   that has judged before (the stream context exists), including dropping the \
                   returned Judged"
            .into(),
        rows,
        parse,
        first_request,
        deny_reason,
    })
}

trait CaseLike {
    fn case(&self) -> &VerdictCase;
}
impl CaseLike for VerdictCase {
    fn case(&self) -> &VerdictCase {
        self
    }
}
impl CaseLike for &VerdictCase {
    fn case(&self) -> &VerdictCase {
        self
    }
}

/// Rows with the first case as the baseline.
fn rows_of<C: CaseLike>(cases: &[C], samples: &mut [Vec<u64>]) -> Vec<VerdictRow> {
    let all: Vec<Stats> = samples.iter_mut().map(|s| stats(s)).collect();
    let base = all[0].clone();
    cases
        .iter()
        .zip(all)
        .map(|(c, s)| {
            let c = c.case();
            VerdictRow {
                case: c.name.to_string(),
                topic: c.topic.to_string(),
                expect: match c.expect {
                    Expect::Pass => "forward".into(),
                    Expect::Allow(i) => format!("allow (rules.kafka[{i}])"),
                    Expect::Deny(code) => format!("deny ({code})"),
                },
                added_mean_us: s.mean_us - base.mean_us,
                added_p50_us: s.p50_us - base.p50_us,
                added_p99_us: s.p99_us - base.p99_us,
                stats: s,
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// throughput (tansu + strait + confluent-kafka producers)

/// A process killed (and reaped) on drop unless it was waited for.
struct Bounded {
    name: String,
    child: Option<Child>,
    out: PathBuf,
    err: PathBuf,
}

impl Bounded {
    fn spawn(name: &str, mut cmd: Command, dir: &Path) -> Result<Self> {
        let out = dir.join(format!("{name}.stdout"));
        let err = dir.join(format!("{name}.stderr"));
        cmd.stdin(Stdio::null())
            .stdout(fs::File::create(&out)?)
            .stderr(fs::File::create(&err)?);
        procs::die_with_parent(&mut cmd);
        let child = cmd
            .spawn()
            .with_context(|| format!("spawning {name}: {cmd:?}"))?;
        Ok(Self {
            name: name.to_string(),
            child: Some(child),
            out,
            err,
        })
    }

    /// Waits until `deadline`; (status, stdout, stderr).
    fn wait(&mut self, deadline: Instant) -> Result<(ExitStatus, String, String)> {
        let child = self
            .child
            .as_mut()
            .ok_or_else(|| anyhow!("{} already waited for", self.name))?;
        let status = loop {
            if let Some(s) = child.try_wait()? {
                break s;
            }
            if Instant::now() > deadline {
                bail!("{} did not finish in time", self.name);
            }
            sleep(Duration::from_millis(10));
        };
        self.child = None;
        Ok((
            status,
            fs::read_to_string(&self.out).unwrap_or_default(),
            fs::read_to_string(&self.err).unwrap_or_default(),
        ))
    }
}

impl Drop for Bounded {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Where the producers connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// Straight to tansu.
    Direct,
    /// A strait `protocol: kafka` listener without filters.
    Strait,
    /// A strait listener with `policy:` (the built-in Kafka policy filter, 100 rules).
    StraitPolicy,
}

impl Target {
    pub fn label(self) -> &'static str {
        match self {
            Target::Direct => "(a) direct to tansu",
            Target::Strait => "(b) strait, no policy",
            Target::StraitPolicy => "(c) strait + kafka policy (100 rules)",
        }
    }
}

const TARGETS: [Target; 3] = [Target::Direct, Target::Strait, Target::StraitPolicy];

#[derive(Debug, Clone, Serialize)]
pub struct ProducerResult {
    pub produced: u64,
    pub elapsed_ms: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ThroughputRun {
    pub target: Target,
    pub repeat: usize,
    pub seq: usize,
    pub producers: Vec<ProducerResult>,
    pub messages: u64,
    /// Longest producer's own elapsed time (after interpreter start and imports: producer
    /// creation, bootstrap, metadata, every message delivered).
    pub elapsed_s: f64,
    /// Spawn of the first producer to exit of the last.
    pub wall_s: f64,
    pub msgs_per_s: f64,
    /// Message values only, 10^6 bytes per second.
    pub mb_per_s: f64,
    /// strait's CPU (user + system) over the wall window, in cores; None for direct runs.
    pub strait_cpu_cores: Option<f64>,
    pub strait_cpu_us_per_msg: Option<f64>,
    pub tansu_cpu_cores: f64,
    pub tansu_cpu_us_per_msg: f64,
    /// The producer processes (reaped children of the harness).
    pub client_cpu_cores: f64,
    /// Machine-wide CPU minus strait, tansu and the producers, in cores.
    pub other_cpu_cores: Option<f64>,
    /// Machine-wide busy CPU, in cores (of `cpus`).
    pub machine_busy_cores: Option<f64>,
    pub attempts: usize,
    pub busy_pct_before: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ThroughputSummary {
    pub target: Target,
    pub msgs_per_s_median: f64,
    pub msgs_per_s_min: f64,
    pub msgs_per_s_max: f64,
    pub mb_per_s_median: f64,
    pub strait_cpu_us_per_msg_median: Option<f64>,
    pub strait_cpu_cores_median: Option<f64>,
    pub tansu_cpu_cores_median: f64,
    pub client_cpu_cores_median: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ThroughputReport {
    pub command: String,
    pub tansu: String,
    pub client: String,
    pub strait_config: String,
    pub runs: Vec<ThroughputRun>,
    pub summary: Vec<ThroughputSummary>,
    /// Median (b) / median (a).
    pub strait_ratio: f64,
    /// Median (c) / median (a).
    pub policy_ratio: f64,
    /// (b)/(a) and (c)/(a) within each repeat.
    pub strait_ratio_per_repeat: Vec<f64>,
    pub policy_ratio_per_repeat: Vec<f64>,
    /// `strait_wasm_kafka_policy_allowed_total` / `_denied_total` after the runs.
    pub policy_allowed: u64,
    pub policy_denied: u64,
    /// Messages produced through the policy listener (sanity and warm-up runs included).
    pub policy_messages_sent: u64,
    /// Largest tansu RSS at the end of a repeat (a fresh broker per repeat).
    pub tansu_rss_mib_max: f64,
    pub max_other_cpu_cores: Option<f64>,
}

fn resolve(p: &Path, what: &str) -> Result<PathBuf> {
    let mut candidates = vec![p.to_path_buf()];
    if p.is_relative() {
        candidates.push(Path::new(MANIFEST_DIR).join("..").join(p));
    }
    for c in &candidates {
        if c.is_file() {
            return Ok(fs::canonicalize(c)?);
        }
    }
    bail!("{what} not found at {}", p.display())
}

fn tansu_bin(arg: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = arg {
        return resolve(p, "tansu");
    }
    let mut candidates: Vec<PathBuf> = std::env::var_os("TANSU")
        .map(PathBuf::from)
        .into_iter()
        .collect();
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|d| d.join("tansu")));
    }
    if let Some(h) = std::env::var_os("HOME") {
        candidates.push(Path::new(&h).join(".cargo/bin/tansu"));
    }
    candidates
        .into_iter()
        .find(|c| c.is_file())
        .ok_or_else(|| anyhow!("tansu not found (set TANSU, put it on PATH, or pass --tansu)"))
}

/// Imports confluent_kafka, then runs the peer as `__main__`: the peer's own clock (which
/// starts in `produce()`) then excludes interpreter start and the import.
const PRELOAD: &str = "import sys, runpy, confluent_kafka\nsys.argv = sys.argv[1:]\n\
                       runpy.run_path(sys.argv[0], run_name='__main__')";

struct Peer<'a> {
    python: &'a str,
    script: &'a Path,
}

impl Peer<'_> {
    fn command(&self, args: &[String]) -> Command {
        let mut cmd = Command::new(self.python);
        cmd.arg("-c").arg(PRELOAD).arg(self.script).args(args);
        cmd
    }

    /// Runs one peer command to completion; its JSON (whatever `ok` says).
    fn run(&self, name: &str, args: &[String], dir: &Path) -> Result<serde_json::Value> {
        let mut b = Bounded::spawn(name, self.command(args), dir)?;
        let (status, out, err) = b.wait(Instant::now() + Duration::from_secs(120))?;
        parse_peer(&out).ok_or_else(|| {
            anyhow!("kafka_peer.py {args:?} ({status}) printed {out:?}; stderr: {err}")
        })
    }
}

fn parse_peer(out: &str) -> Option<serde_json::Value> {
    out.lines()
        .rev()
        .find_map(|l| serde_json::from_str::<serde_json::Value>(l.trim()).ok())
        .filter(|v| v.get("ok").is_some())
}

fn peer_args(cmd: &str, bootstrap: SocketAddr, topic: &str, rest: &[String]) -> Vec<String> {
    let mut a = vec![
        cmd.to_string(),
        "--bootstrap".into(),
        bootstrap.to_string(),
        "--topic".into(),
        topic.into(),
    ];
    a.extend(rest.iter().cloned());
    a
}

fn produce_args(args: &KafkaArgs, count: usize) -> Vec<String> {
    vec![
        "--count".into(),
        count.to_string(),
        "--size".into(),
        args.size.to_string(),
        "--lib".into(),
        "confluent".into(),
        "--in-flight".into(),
        args.in_flight.to_string(),
        "--timeout".into(),
        "120".into(),
    ]
}

fn throughput(args: &KafkaArgs, bin: &Path, tmp: &Path) -> Result<ThroughputReport> {
    let tansu = tansu_bin(args.tansu.as_deref())?;
    let script = resolve(&args.peer, "the Kafka peer (tests/e2e/kafka_peer.py)")?;
    let peer = Peer {
        python: &args.python,
        script: &script,
    };
    let client = report::version_line(
        &args.python,
        &[
            "-c",
            "import sys, confluent_kafka as c; print('python', sys.version.split()[0], \
             'confluent-kafka', c.__version__, 'librdkafka', c.libversion()[0])",
        ],
    );
    let p = free_ports(4)?;
    let (tport, plain, policy, admin) = (p[0], p[1], p[2], p[3]);
    let broker = SocketAddr::from(([127, 0, 0, 1], tport));
    let addr = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));

    let mut tansu_svc = start_tansu(&tansu, broker, tmp, 0)?;

    let policy_file = tmp.join("kafka-policy.yaml");
    fs::write(&policy_file, policy_yaml(tport, 100))?;
    let conf = tmp.join("strait-kafka.yaml");
    let workers = if args.workers > 0 {
        format!("runtime: {{ workers: {} }}\n", args.workers)
    } else {
        String::new()
    };
    let sink = match args.flows {
        FlowSink::None => "none",
        FlowSink::Stdout => "stdout",
    };
    let yaml = format!(
        "admin: {{ address: \"127.0.0.1:{admin}\" }}\n{workers}flows: {{ sink: {sink} }}\n\
         policies: [\"{}\"]\nlisteners:\n  - name: plain\n    address: \"127.0.0.1:{plain}\"\n    \
         protocol: kafka\n    upstream: \"{broker}\"\n  - name: policy\n    address: \
         \"127.0.0.1:{policy}\"\n    protocol: kafka\n    upstream: \"{broker}\"\n    policy: \
         {{ client_labels: {{ app: client }}, server_labels: {{ app: kafka }} }}\n",
        policy_file.display()
    );
    fs::write(&conf, &yaml)?;
    let mut cmd = Command::new(bin);
    cmd.arg("run").arg("--config").arg(&conf);
    let mut strait_svc = Service::spawn("strait", cmd, &tmp.join("strait.log"))?;
    strait_svc.wait_listening(plain, Duration::from_secs(30))?;
    strait_svc.wait_listening(policy, Duration::from_secs(30))?;
    wait_ready(&mut strait_svc, admin, Duration::from_secs(30))?;

    let bootstrap = |t: Target| match t {
        Target::Direct => broker,
        Target::Strait => addr(plain),
        Target::StraitPolicy => addr(policy),
    };
    eprintln!(
        "\n== throughput: tansu {} on {broker}, strait (workers {}, flows {sink}) listeners \
         `plain` :{plain} and `policy` :{policy} (100 kafka rules)",
        report::version_line(&tansu.display().to_string(), &["--version"]),
        if args.workers > 0 {
            args.workers.to_string()
        } else {
            "default".into()
        }
    );
    eprintln!("  client: {client}");

    let mut policy_sent = prepare(args, &peer, broker, &bootstrap, tmp)?;
    let mut deny_args = produce_args(args, 5);
    deny_args.extend(["--expect-error".into(), "29".into()]);
    let v = peer.run(
        "deny",
        &peer_args("produce", addr(policy), "payments", &deny_args),
        tmp,
    )?;
    if v["ok"] != true {
        bail!("the policy listener did not refuse topic `payments` with 29: {v}");
    }
    eprintln!("  sanity: all three produce; the policy listener refuses `payments` (29)");
    let mut tansu_rss_mib: Vec<f64> = Vec::new();

    let command = format!(
        "{} {} produce --bootstrap <target> --topic orders {}",
        args.python,
        script.display(),
        produce_args(args, args.count).join(" ")
    );
    eprintln!(
        "  {} repeats × 3 targets, {} producer(s) × {} messages of {} bytes per run\n  {command}",
        args.repeats, args.producers, args.count, args.size
    );
    let clk = procs::clk_tck() as f64;
    let mut runs: Vec<ThroughputRun> = Vec::new();
    let total = args.repeats * TARGETS.len();
    for repeat in 0..args.repeats {
        if repeat > 0 {
            // A fresh broker per repeat: tansu keeps every message in memory, and its CPU per
            // message grows with what it holds.
            tansu_rss_mib.push(rss_mib(tansu_svc.pid()));
            tansu_svc.stop();
            tansu_svc = start_tansu(&tansu, broker, tmp, repeat)?;
            policy_sent += prepare(args, &peer, broker, &bootstrap, tmp)?;
        }
        let mut order = TARGETS;
        order.rotate_left(repeat % TARGETS.len());
        for t in order {
            let seq = runs.len();
            eprint!(
                "  [{:>2}/{total}] repeat {} {:<40} ",
                seq + 1,
                repeat + 1,
                t.label()
            );
            let mut attempts = 0;
            let run = loop {
                attempts += 1;
                tansu_svc.check_alive()?;
                strait_svc.check_alive()?;
                let (busy, _) = peers::wait_for_idle(args.idle_threshold, args.idle_wait);
                let run = one_run(
                    args,
                    &peer,
                    t,
                    bootstrap(t),
                    tmp,
                    &strait_svc,
                    &tansu_svc,
                    clk,
                )?;
                let run = ThroughputRun {
                    repeat,
                    seq,
                    attempts,
                    busy_pct_before: busy,
                    ..run
                };
                if t == Target::StraitPolicy {
                    policy_sent += run.messages;
                }
                let other = run.other_cpu_cores.unwrap_or(0.0);
                if other > args.max_other_cores && attempts <= args.noisy_retries {
                    eprint!("noisy ({other:.2} cores of other work), redoing… ");
                    continue;
                }
                break run;
            };
            eprintln!(
                "{:>7.0} msg/s {:>6.1} MB/s  strait {} cores{}  tansu {:.2}  client {:.2}  \
                 other {:.2}",
                run.msgs_per_s,
                run.mb_per_s,
                run.strait_cpu_cores
                    .map_or("-".into(), |c| format!("{c:.2}")),
                run.strait_cpu_us_per_msg
                    .map_or(String::new(), |u| format!(" ({u:.1} µs/msg)")),
                run.tansu_cpu_cores,
                run.client_cpu_cores,
                run.other_cpu_cores.unwrap_or(0.0)
            );
            runs.push(run);
            sleep(Duration::from_millis(300));
        }
    }
    let metrics = procs::http1_get_path(admin, "/metrics")?.1;
    let policy_allowed = metric_value(&metrics, "strait_wasm_kafka_policy_allowed_total")
        .ok_or_else(|| anyhow!("no strait_wasm_kafka_policy_allowed_total on /metrics"))?;
    let policy_denied =
        metric_value(&metrics, "strait_wasm_kafka_policy_denied_total").unwrap_or(0);
    if policy_allowed < policy_sent {
        bail!(
            "the Kafka policy allowed {policy_allowed} requests, but {policy_sent} messages went \
             through the policy listener"
        );
    }
    tansu_rss_mib.push(rss_mib(tansu_svc.pid()));
    drop(strait_svc);
    drop(tansu_svc);

    let summary: Vec<ThroughputSummary> = TARGETS
        .iter()
        .map(|&t| {
            let rs: Vec<&ThroughputRun> = runs.iter().filter(|r| r.target == t).collect();
            let mps: Vec<f64> = rs.iter().map(|r| r.msgs_per_s).collect();
            let med = |f: fn(&ThroughputRun) -> f64| median(rs.iter().map(|r| f(r)).collect());
            ThroughputSummary {
                target: t,
                msgs_per_s_median: median(mps.clone()).unwrap_or(0.0),
                msgs_per_s_min: mps.iter().copied().fold(f64::INFINITY, f64::min),
                msgs_per_s_max: mps.iter().copied().fold(0.0, f64::max),
                mb_per_s_median: med(|r| r.mb_per_s).unwrap_or(0.0),
                strait_cpu_us_per_msg_median: median(
                    rs.iter().filter_map(|r| r.strait_cpu_us_per_msg).collect(),
                ),
                strait_cpu_cores_median: median(
                    rs.iter().filter_map(|r| r.strait_cpu_cores).collect(),
                ),
                tansu_cpu_cores_median: med(|r| r.tansu_cpu_cores).unwrap_or(0.0),
                client_cpu_cores_median: med(|r| r.client_cpu_cores).unwrap_or(0.0),
            }
        })
        .collect();
    let per_repeat = |t: Target| -> Vec<f64> {
        (0..args.repeats)
            .filter_map(|k| {
                let get = |x: Target| runs.iter().find(|r| r.repeat == k && r.target == x);
                Some(get(t)?.msgs_per_s / get(Target::Direct)?.msgs_per_s)
            })
            .collect()
    };
    let med_of = |t: Target| {
        summary
            .iter()
            .find(|s| s.target == t)
            .map_or(0.0, |s| s.msgs_per_s_median)
    };
    Ok(ThroughputReport {
        command,
        tansu: format!(
            "{} (memory://tansu/, advertises its own address)",
            report::version_line(&tansu.display().to_string(), &["--version"])
        ),
        client,
        strait_config: yaml,
        strait_ratio: med_of(Target::Strait) / med_of(Target::Direct),
        policy_ratio: med_of(Target::StraitPolicy) / med_of(Target::Direct),
        strait_ratio_per_repeat: per_repeat(Target::Strait),
        policy_ratio_per_repeat: per_repeat(Target::StraitPolicy),
        max_other_cpu_cores: runs
            .iter()
            .filter_map(|r| r.other_cpu_cores)
            .reduce(f64::max),
        runs,
        summary,
        policy_allowed,
        policy_denied,
        policy_messages_sent: policy_sent,
        tansu_rss_mib_max: tansu_rss_mib.iter().copied().fold(0.0, f64::max),
    })
}

/// tansu with in-memory storage on `broker`, advertising that address (so direct clients
/// work; strait rewrites it to its own).
fn start_tansu(tansu: &Path, broker: SocketAddr, tmp: &Path, repeat: usize) -> Result<Service> {
    let mut cmd = Command::new(tansu);
    cmd.args(["broker", "--storage-engine", "memory://tansu/"])
        .arg("--listener-url")
        .arg(format!("tcp://{broker}"))
        .arg("--advertised-listener-url")
        .arg(format!("tcp://{broker}"))
        .env("RUST_LOG", "warn");
    let mut svc = Service::spawn("tansu", cmd, &tmp.join(format!("tansu-{repeat}.log")))?;
    svc.wait_listening(broker.port(), Duration::from_secs(20))?;
    Ok(svc)
}

fn rss_mib(pid: u32) -> f64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| crate::filters::status_kib(&s, "VmRSS"))
        .map_or(0.0, |k| k as f64 / 1024.0)
}

/// Creates the topics on a fresh broker — `orders` (produced to) and `payments` (exists, but
/// the policy does not allow it) — and warms every target up with 2 000 messages. Returns the
/// messages sent through the policy listener.
fn prepare(
    args: &KafkaArgs,
    peer: &Peer<'_>,
    broker: SocketAddr,
    bootstrap: &dyn Fn(Target) -> SocketAddr,
    tmp: &Path,
) -> Result<u64> {
    for topic in ["orders", "payments"] {
        let v = peer.run(
            &format!("create-{topic}"),
            &peer_args(
                "create-topic",
                broker,
                topic,
                &["--partitions".into(), args.partitions.to_string()],
            ),
            tmp,
        )?;
        if v["ok"] != true {
            bail!("creating topic {topic}: {v}");
        }
    }
    const WARMUP: usize = 2_000;
    let mut policy_sent = 0;
    for t in TARGETS {
        let v = peer.run(
            "warmup",
            &peer_args(
                "produce",
                bootstrap(t),
                "orders",
                &produce_args(args, WARMUP),
            ),
            tmp,
        )?;
        if v["ok"] != true {
            bail!("warm-up produce via {}: {v}", t.label());
        }
        if t == Target::StraitPolicy {
            policy_sent += WARMUP as u64;
        }
    }
    Ok(policy_sent)
}

/// One measured run: `args.producers` producers in parallel against `bootstrap`.
#[allow(clippy::too_many_arguments)]
fn one_run(
    args: &KafkaArgs,
    peer: &Peer<'_>,
    target: Target,
    bootstrap: SocketAddr,
    tmp: &Path,
    strait: &Service,
    tansu: &Service,
    clk: f64,
) -> Result<ThroughputRun> {
    let proxied = target != Target::Direct;
    let before = peers::Snapshot::take(Some(strait.pid()), tansu.pid());
    let t0 = Instant::now();
    let argv = peer_args(
        "produce",
        bootstrap,
        "orders",
        &produce_args(args, args.count),
    );
    let mut producers: Vec<Bounded> = (0..args.producers)
        .map(|i| Bounded::spawn(&format!("producer-{i}"), peer.command(&argv), tmp))
        .collect::<Result<_>>()?;
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut results = Vec::new();
    for p in &mut producers {
        let (status, out, err) = p.wait(deadline)?;
        let v = parse_peer(&out)
            .ok_or_else(|| anyhow!("producer ({status}) printed {out:?}; stderr: {err}"))?;
        if v["ok"] != true || !status.success() {
            bail!("producer via {}: {v}", target.label());
        }
        results.push(ProducerResult {
            produced: v["produced"].as_u64().unwrap_or(0),
            elapsed_ms: v["elapsed_ms"].as_u64().unwrap_or(0),
        });
    }
    let wall = t0.elapsed().as_secs_f64();
    let after = peers::Snapshot::take(Some(strait.pid()), tansu.pid());
    let messages: u64 = results.iter().map(|r| r.produced).sum();
    let elapsed_s = results
        .iter()
        .map(|r| r.elapsed_ms)
        .max()
        .unwrap_or(0)
        .max(1) as f64
        / 1000.0;
    let d_strait = after
        .proxy
        .unwrap_or(0)
        .saturating_sub(before.proxy.unwrap_or(0));
    let d_tansu = after.upstream.saturating_sub(before.upstream);
    let d_me = after.me.saturating_sub(before.me);
    let cores = |t: u64| t as f64 / clk / wall;
    let per_msg = |t: u64| t as f64 / clk * 1e6 / messages.max(1) as f64;
    let busy = match (before.system, after.system) {
        (Some(x), Some(y)) => Some(y.0.saturating_sub(x.0)),
        _ => None,
    };
    let other = busy.map(|b| cores(b.saturating_sub(d_strait + d_tansu + d_me)));
    Ok(ThroughputRun {
        target,
        repeat: 0,
        seq: 0,
        producers: results,
        messages,
        elapsed_s,
        wall_s: wall,
        msgs_per_s: messages as f64 / elapsed_s,
        mb_per_s: messages as f64 * args.size as f64 / 1e6 / elapsed_s,
        strait_cpu_cores: proxied.then(|| cores(d_strait)),
        strait_cpu_us_per_msg: proxied.then(|| per_msg(d_strait)),
        tansu_cpu_cores: cores(d_tansu),
        tansu_cpu_us_per_msg: per_msg(d_tansu),
        client_cpu_cores: cores(d_me),
        other_cpu_cores: other,
        machine_busy_cores: busy.map(cores),
        attempts: 1,
        busy_pct_before: None,
    })
}

// ---------------------------------------------------------------------------------------------
// targets, report, entry point

pub const MAX_VERDICT_US: f64 = 5.0;
pub const MIN_THROUGHPUT_RATIO: f64 = 0.8;

pub fn verdicts(v: Option<&VerdictReport>, t: Option<&ThroughputReport>) -> Vec<Verdict> {
    let mut out = Vec::new();
    let policy_rows: Vec<&VerdictRow> = v
        .map(|v| {
            v.rows
                .iter()
                .filter(|r| r.case.contains("100 rules"))
                .collect()
        })
        .unwrap_or_default();
    let main = policy_rows.first();
    let worst = policy_rows
        .iter()
        .max_by(|a, b| a.added_mean_us.total_cmp(&b.added_mean_us));
    out.push(Verdict {
        target: format!("Kafka: policy verdict on a Produce request ≤ {MAX_VERDICT_US} µs"),
        measured: match (main, worst) {
            (Some(m), Some(w)) => format!(
                "+{:.2} µs mean (+{:.2} µs p50, +{:.2} µs p99) over no filters, 100 rules, \
                 allowed; slowest case: {} +{:.2} µs mean",
                m.added_mean_us, m.added_p50_us, m.added_p99_us, w.case, w.added_mean_us
            ),
            _ => "not measured".into(),
        },
        met: worst.map(|w| w.added_mean_us <= MAX_VERDICT_US),
        inconclusive: false,
    });
    let sum = |t: &ThroughputReport, x: Target| {
        t.summary
            .iter()
            .find(|s| s.target == x)
            .map_or(0.0, |s| s.msgs_per_s_median)
    };
    for (x, what) in [
        (Target::Strait, "without policy"),
        (Target::StraitPolicy, "with the Kafka policy (100 rules)"),
    ] {
        out.push(Verdict {
            target: format!(
                "proxy throughput ({what}) for 1 KiB produce batches ≥ {:.0} % of direct",
                MIN_THROUGHPUT_RATIO * 100.0
            ),
            measured: t.map_or("not measured".into(), |t| {
                format!(
                    "{:.1} % ({:.0} vs {:.0} msg/s, medians)",
                    sum(t, x) / sum(t, Target::Direct) * 100.0,
                    sum(t, x),
                    sum(t, Target::Direct)
                )
            }),
            met: t.map(|t| sum(t, x) / sum(t, Target::Direct) >= MIN_THROUGHPUT_RATIO),
            inconclusive: false,
        });
    }
    out
}

#[derive(Debug, Clone, Serialize)]
pub struct Document {
    pub date: String,
    pub tool: String,
    pub machine: Machine,
    pub strait: Option<String>,
    pub settings: KafkaArgs,
    pub targets: Vec<Verdict>,
    pub verdict: Option<VerdictReport>,
    pub throughput: Option<ThroughputReport>,
}

pub fn markdown(doc: &Document) -> String {
    let mut s = String::new();
    let m = &doc.machine;
    let _ = writeln!(
        s,
        "### Kafka, {} — {} ({} cpus), kernel {}\n",
        doc.date, m.cpu_model, m.cpus, m.kernel
    );
    report::targets_table(&mut s, &doc.targets, "–");
    if let Some(v) = &doc.verdict {
        let _ = writeln!(
            s,
            "#### Policy verdict (in process, {} requests per case, {} rounds)\n\nRequest: {}. \
             Measured: {}.\n",
            doc.settings.iterations, doc.settings.rounds, v.request, v.measured
        );
        let _ = writeln!(
            s,
            "| case | mean µs | p50 µs | p99 µs | p99.9 µs | added mean µs | added p50 µs | \
             added p99 µs |\n|---|---:|---:|---:|---:|---:|---:|---:|"
        );
        for r in &v.rows {
            let _ = writeln!(
                s,
                "| {} | {:.3} | {:.3} | {:.3} | {:.3} | {:+.3} | {:+.3} | {:+.3} |",
                r.case,
                r.stats.mean_us,
                r.stats.p50_us,
                r.stats.p99_us,
                r.stats.p999_us,
                r.added_mean_us,
                r.added_p50_us,
                r.added_p99_us
            );
        }
        let _ = writeln!(
            s,
            "\nFirst request on a connection (`ConnFilters::new` + `judge` + drop, {} each):\n",
            doc.settings.first_requests
        );
        let _ = writeln!(
            s,
            "| case | mean µs | p50 µs | p99 µs |\n|---|---:|---:|---:|"
        );
        for r in &v.first_request {
            let _ = writeln!(
                s,
                "| {} | {:.3} | {:.3} | {:.3} |",
                r.case, r.stats.mean_us, r.stats.p50_us, r.stats.p99_us
            );
        }
        let _ = writeln!(
            s,
            "\n`parse_request` of the frame (every request, filters or not): mean {:.3} µs, p50 \
             {:.3}, p99 {:.3}.\n",
            v.parse.mean_us, v.parse.p50_us, v.parse.p99_us
        );
    }
    if let Some(t) = &doc.throughput {
        let _ = writeln!(
            s,
            "#### Produce throughput ({} repeats, interleaved; {} producer(s) × {} messages of {} \
             bytes per run)\n\n`{}`\n\nBroker: {}. Client: {}.\n",
            doc.settings.repeats,
            doc.settings.producers,
            doc.settings.count,
            doc.settings.size,
            t.command,
            t.tansu,
            t.client
        );
        let _ = writeln!(
            s,
            "| target | msg/s (median) | min–max | MB/s | vs direct | strait CPU µs/msg | strait \
             cores | tansu cores | client cores |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        let direct = t
            .summary
            .iter()
            .find(|x| x.target == Target::Direct)
            .map_or(1.0, |x| x.msgs_per_s_median);
        for x in &t.summary {
            let _ = writeln!(
                s,
                "| {} | {:.0} | {:.0}–{:.0} | {:.1} | {:.1} % | {} | {} | {:.2} | {:.2} |",
                x.target.label(),
                x.msgs_per_s_median,
                x.msgs_per_s_min,
                x.msgs_per_s_max,
                x.mb_per_s_median,
                x.msgs_per_s_median / direct * 100.0,
                x.strait_cpu_us_per_msg_median
                    .map_or("–".into(), |v| format!("{v:.1}")),
                x.strait_cpu_cores_median
                    .map_or("–".into(), |v| format!("{v:.2}")),
                x.tansu_cpu_cores_median,
                x.client_cpu_cores_median
            );
        }
        let f = |v: &[f64]| {
            v.iter()
                .map(|x| format!("{x:.3}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            s,
            "\nPer repeat: (b)/(a) {}; (c)/(a) {}. Kafka policy counters: {} allowed, {} denied \
             ({} messages sent through the policy listener). tansu RSS at most {:.0} MiB (a fresh broker per repeat). \
             Other CPU at most {} cores.\n",
            f(&t.strait_ratio_per_repeat),
            f(&t.policy_ratio_per_repeat),
            t.policy_allowed,
            t.policy_denied,
            t.policy_messages_sent,
            t.tansu_rss_mib_max,
            t.max_other_cpu_cores
                .map_or("?".into(), |o| format!("{o:.2}"))
        );
    }
    if let Some(v) = &doc.strait {
        let _ = writeln!(s, "strait: {v}");
    }
    s
}

pub fn run(args: KafkaArgs) -> Result<()> {
    if args.iterations == 0
        || args.rounds == 0
        || args.first_requests == 0
        || args.repeats == 0
        || args.count == 0
        || args.producers == 0
        || args.in_flight == 0
        || args.partitions == 0
    {
        bail!("counts must be at least 1");
    }
    let mut parts = args.parts.clone();
    parts.dedup();
    let strait_bin = if parts.contains(&Part::Throughput) {
        Some(peers::resolve_strait(&args.strait_bin)?)
    } else {
        None
    };
    let tmp = TempDir::new("strait-bench-kafka", args.keep_tmp)?;
    // A private copy, so a rebuild of target/release/strait mid-session cannot mix versions.
    let bin = match &strait_bin {
        Some(src) => {
            let dst = tmp.path().join("strait");
            fs::copy(src, &dst).with_context(|| format!("copying {}", src.display()))?;
            Some(dst)
        }
        None => None,
    };
    let date = peers::today_utc();
    let machine = Machine::collect();
    eprintln!(
        "strait-bench kafka: {} ({} cpus), load average {}",
        machine.cpu_model, machine.cpus, machine.loadavg
    );
    if let Some(b) = &strait_bin {
        eprintln!("  strait: {}", report::strait_version(b));
    }
    let verdict = if parts.contains(&Part::Verdict) {
        Some(verdict(&args)?)
    } else {
        None
    };
    let throughput = match &bin {
        Some(bin) => Some(throughput(&args, bin, tmp.path())?),
        None => None,
    };
    let doc = Document {
        date: date.clone(),
        tool: format!("strait-bench {} kafka", env!("CARGO_PKG_VERSION")),
        machine,
        strait: strait_bin.as_deref().map(report::strait_version),
        settings: args.clone(),
        targets: verdicts(verdict.as_ref(), throughput.as_ref()),
        verdict,
        throughput,
    };
    println!("{}", markdown(&doc));
    let out_path = report::results_path(args.out.as_ref(), "kafka", &date);
    report::write_results(&out_path, &doc)?;
    let left = procs::report_cleanup(Vec::new(), "tansu, strait and producers");
    if !left.is_empty() {
        bail!("processes left behind: {left:?}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use strait::kafka::request::{Parsed, Topics};

    #[test]
    fn crc32c_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn varints() {
        let mut v = Vec::new();
        put_varint(&mut v, 0);
        put_varint(&mut v, -1);
        put_varint(&mut v, 1);
        put_varint(&mut v, 1024);
        assert_eq!(v, [0x00, 0x01, 0x02, 0x80, 0x10]);
    }

    /// The frame is a Produce v9 strait parses: topic `orders`, partition 0, acks 1.
    #[test]
    fn produce_frame_parses() {
        let frame = produce_frame("orders");
        let Ok(Parsed::Known(r)) = parse_request(&frame) else {
            panic!("not a known request");
        };
        assert_eq!(r.api.name, "Produce");
        assert_eq!(r.header.api_version, 9);
        assert_eq!(r.header.client_id.as_deref(), Some("rdkafka"));
        assert!(r.expects_response);
        let Topics::Listed(list) = &r.topics else {
            panic!("no topic list: {:?}", r.topics);
        };
        assert_eq!(list.entries.len(), 1);
        assert_eq!(list.entries[0].name.as_deref(), Some("orders"));
        assert_eq!(list.entries[0].partitions, [0]);
        // The batch: 61-byte header + a record of 1024 + key + varints.
        let batch = record_batch(b"key-0", &value_bytes(1024), 0);
        assert_eq!(
            i32::from_be_bytes(batch[8..12].try_into().unwrap_or_default()) as usize,
            batch.len() - 12
        );
        assert!(frame.len() > 1024 + 61);
    }

    /// The generated YAML is what strait parses: three kafka listeners with the policy filter
    /// and its JSON config as is.
    #[test]
    fn verdict_config_parses() -> Result<()> {
        let cfg = Config::parse(Path::new("t.yaml"), &verdict_config_yaml())
            .map_err(|e| anyhow!("{e}"))?;
        assert_eq!(cfg.listeners.len(), POLICY_LISTENERS.len());
        for (l, (name, rules, keyed)) in cfg.listeners.iter().zip(POLICY_LISTENERS) {
            assert_eq!(l.name, name);
            assert_eq!(l.filters.len(), 1);
            assert_eq!(l.filters[0].module, Path::new("builtin:kafka-policy"));
            let c: serde_json::Value = serde_json::from_slice(&l.filters[0].config)?;
            let set = &c["sets"][0];
            let list = set["directions"][0]["rules"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            assert_eq!(list.len(), rules);
            assert_eq!(list[rules - 1]["topic"], "orders");
            assert_eq!(
                list[rules - 1]["name"],
                format!("{RULE_PREFIX}[{}]", rules - 1)
            );
            assert_eq!(list[0]["api_keys"], serde_json::json!([0, 3, 18]));
            assert_eq!(set["port"].is_null(), !keyed);
        }
        Ok(())
    }

    #[test]
    fn policy_yaml_lists_orders_last() {
        let y = policy_yaml(9092, 100);
        assert!(y.contains("{port: \"9092\", protocol: TCP}"));
        let rules: Vec<&str> = y.lines().filter(|l| l.contains("role: produce")).collect();
        assert_eq!(rules.len(), 100);
        assert!(rules[0].contains("topic: topic-0}"));
        assert!(rules[99].contains("topic: orders}"));
    }

    #[test]
    fn peer_output_and_metrics() {
        let out = "%4|librdkafka noise\n{\"ok\": true, \"produced\": 10, \"elapsed_ms\": 12}\n";
        let v = parse_peer(out).unwrap_or_default();
        assert_eq!(v["produced"], 10);
        assert!(parse_peer("nothing\n").is_none());
        let m = "# TYPE x counter\nstrait_wasm_kafka_policy_allowed_total 42\n";
        assert_eq!(
            metric_value(m, "strait_wasm_kafka_policy_allowed_total"),
            Some(42)
        );
        assert_eq!(
            metric_value(m, "strait_wasm_kafka_policy_denied_total"),
            None
        );
    }

    #[test]
    fn verdict_thresholds() {
        let row = |case: &str, added: f64| VerdictRow {
            case: case.into(),
            topic: "orders".into(),
            expect: String::new(),
            stats: stats(&mut [1000]),
            added_mean_us: added,
            added_p50_us: added,
            added_p99_us: added,
        };
        let rep = |added: f64| VerdictReport {
            request: String::new(),
            frame_bytes: 0,
            measured: String::new(),
            rows: vec![
                row("no filters (baseline)", 0.0),
                row("kafka-policy, 100 rules, allowed", added),
                row("kafka-policy, 100 rules, denied", added / 2.0),
            ],
            parse: stats(&mut [1000]),
            first_request: vec![],
            deny_reason: None,
        };
        assert_eq!(verdicts(Some(&rep(4.9)), None)[0].met, Some(true));
        assert_eq!(verdicts(Some(&rep(5.1)), None)[0].met, Some(false));
        let v = verdicts(None, None);
        assert_eq!(v.len(), 3);
        assert!(v.iter().all(|x| x.met.is_none()));
    }
}
