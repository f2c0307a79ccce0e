//! The Kafka flow against a scripted broker: ordering of pipelined and denied requests, acks=0,
//! broker and client misbehaviour, broker address rewriting, ApiVersions caps, flow records.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::config::{Config, FlowSink, FlowsConfig};
use crate::flows::FlowRecord;
use crate::kafka::wire::Writer;
use crate::metrics::Metrics;

/// What the scripted broker does with one request frame.
enum Act {
    Reply(Vec<u8>),
    /// Wait, then reply (the broker answers in order, so later requests wait too).
    Later(u64, Vec<u8>),
    Nothing,
}

type Script = Arc<dyn Fn(&[u8]) -> Vec<Act> + Send + Sync>;

/// A broker that answers each request as `script` says and records every frame it got.
async fn broker(script: Script) -> (SocketAddr, Arc<Mutex<Vec<Vec<u8>>>>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { return };
            let (script, got) = (script.clone(), g.clone());
            tokio::spawn(async move {
                let (r, mut w) = s.into_split();
                let mut frames = FramedRead::new(r, KafkaCodec::default());
                while let Some(Ok(f)) = frames.next().await {
                    got.lock().unwrap().push(f.to_vec());
                    for act in script(&f) {
                        let reply = match act {
                            Act::Reply(r) => r,
                            Act::Later(ms, r) => {
                                tokio::time::sleep(Duration::from_millis(ms)).await;
                                r
                            }
                            Act::Nothing => continue,
                        };
                        if send_frame(&mut w, &reply).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (addr, got)
}

struct Strait {
    addr: SocketAddr,
    flows: PathBuf,
    _dir: tempfile::TempDir,
    stop: CancellationToken,
}

impl Drop for Strait {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Strait {
    async fn start(upstream: SocketAddr, extra: &str, policy: Arc<dyn Policy>) -> Self {
        Self::start_with(upstream, extra, policy, true).await
    }

    async fn start_with(
        upstream: SocketAddr,
        extra: &str,
        policy: Arc<dyn Policy>,
        rewrite: bool,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let yaml = format!(
            "listeners:\n  - name: k\n    address: 127.0.0.1:0\n    protocol: kafka\n    upstream: {upstream}\n{extra}"
        );
        let cfg = Config::parse(&dir.path().join("strait.yaml"), &yaml).unwrap();
        let lcfg = cfg.listeners[0].clone();
        let flows_path = dir.path().join("flows.jsonl");
        let metrics = Metrics::new();
        let flows = Flows::start(
            &FlowsConfig {
                sink: FlowSink::File(flows_path.clone()),
                buffer: 1024,
            },
            metrics.clone(),
        )
        .unwrap();
        let target = Target::fixed(upstream.to_string().parse().unwrap());
        let proxy = Arc::new(
            KafkaProxy::new(lcfg, flows, metrics.listener("k"), &target, rewrite)
                .with_policy(policy),
        );
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let stop = CancellationToken::new();
        let s = stop.clone();
        tokio::spawn(async move {
            loop {
                let (c, peer) = tokio::select! {
                    r = l.accept() => r.unwrap(),
                    () = s.cancelled() => return,
                };
                let local = c.local_addr().unwrap();
                tokio::spawn(proxy.clone().serve(c, peer, local, s.clone()));
            }
        });
        Strait {
            addr,
            flows: flows_path,
            _dir: dir,
            stop,
        }
    }

    async fn flows(&self, n: usize) -> Vec<FlowRecord> {
        for _ in 0..100 {
            let recs = read_flows(&self.flows);
            if recs.len() >= n {
                return recs;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        read_flows(&self.flows)
    }
}

fn read_flows(p: &std::path::Path) -> Vec<FlowRecord> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn allow() -> Arc<dyn Policy> {
    Arc::new(AllowAll)
}

/// A test policy: deny requests that name topic `secret` (29), and ApiKey 99 (31).
fn deny_secret() -> Arc<dyn Policy> {
    Arc::new(|_: &Connection<'_>, req: &Parsed| match req {
        Parsed::Known(r) => match &r.topics {
            Topics::Listed(l) if l.names().any(|n| n == "secret") => Verdict::Deny {
                code: crate::kafka::response::TOPIC_AUTHORIZATION_FAILED,
            },
            _ => Verdict::Forward,
        },
        Parsed::UnknownApi(h) if h.api_key == 99 => Verdict::Deny {
            code: crate::kafka::response::CLUSTER_AUTHORIZATION_FAILED,
        },
        _ => Verdict::Forward,
    })
}

/// A request frame payload with header v1 (client id `t`).
fn req(key: i16, version: i16, corr: i32, body: &[u8]) -> Vec<u8> {
    let mut w = Writer::default();
    w.i16(key);
    w.i16(version);
    w.i32(corr);
    w.string(false, Some("t"));
    w.buf.extend_from_slice(body);
    w.buf
}

fn framed(payload: &[u8]) -> Vec<u8> {
    let mut v = (payload.len() as i32).to_be_bytes().to_vec();
    v.extend_from_slice(payload);
    v
}

/// Metadata v1 request for `topics`.
fn metadata_req(corr: i32, topics: &[&str]) -> Vec<u8> {
    let mut w = Writer::default();
    w.length(false, true, Some(topics.len()));
    for t in topics {
        w.string(false, Some(t));
    }
    req(3, 1, corr, &w.buf)
}

/// Metadata v1 response advertising `brokers`.
fn metadata_resp(corr: i32, brokers: &[(&str, i32)]) -> Vec<u8> {
    metadata_resp_with(corr, brokers, &[])
}

/// Metadata v1 response advertising `brokers` and listing `topics` (name, error code, number of
/// partitions).
fn metadata_resp_with(corr: i32, brokers: &[(&str, i32)], topics: &[(&str, i16, i32)]) -> Vec<u8> {
    let mut w = Writer::default();
    w.i32(corr);
    w.length(false, true, Some(brokers.len()));
    for (i, (h, p)) in brokers.iter().enumerate() {
        w.i32(i as i32 + 1);
        w.string(false, Some(h));
        w.i32(*p);
        w.string(false, None);
    }
    w.i32(1); // controller
    w.length(false, true, Some(topics.len()));
    for &(name, code, partitions) in topics {
        w.i16(code);
        w.string(false, Some(name));
        w.i8(0); // internal
        w.length(false, true, Some(partitions as usize));
        for p in 0..partitions {
            w.i16(0);
            w.i32(p);
            w.i32(1); // leader
            for _ in 0..2 {
                w.length(false, true, Some(1));
                w.i32(1);
            }
        }
    }
    w.buf
}

/// Produce v3 request to `topic` partition 0 with `acks`.
fn produce_req(corr: i32, topic: &str, acks: i16) -> Vec<u8> {
    let mut w = Writer::default();
    w.string(false, None); // transactional id
    w.i16(acks);
    w.i32(1000);
    w.length(false, true, Some(1));
    w.string(false, Some(topic));
    w.length(false, true, Some(1));
    w.i32(0);
    w.length(false, true, Some(3));
    w.buf.extend_from_slice(b"abc");
    req(0, 3, corr, &w.buf)
}

/// ApiVersions v0 response (or v3 when `flexible`) offering `keys` (key, min, max).
fn api_versions_resp(corr: i32, flexible: bool, keys: &[(i16, i16, i16)]) -> Vec<u8> {
    let mut w = Writer::default();
    w.i32(corr);
    w.i16(0);
    w.length(flexible, true, Some(keys.len()));
    for &(k, lo, hi) in keys {
        w.i16(k);
        w.i16(lo);
        w.i16(hi);
        if flexible {
            w.uvarint(0);
        }
    }
    if flexible {
        w.i32(0);
        w.uvarint(0);
    }
    w.buf
}

fn corr_of(frame: &[u8]) -> i32 {
    i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]])
}

/// The correlation id of a response frame payload.
fn resp_corr(frame: &[u8]) -> i32 {
    i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]])
}

struct Client {
    w: tokio::net::tcp::OwnedWriteHalf,
    r: FramedRead<tokio::net::tcp::OwnedReadHalf, KafkaCodec>,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Self {
        let (r, w) = TcpStream::connect(addr).await.unwrap().into_split();
        Client {
            w,
            r: FramedRead::new(r, KafkaCodec::default()),
        }
    }

    async fn send(&mut self, payloads: &[&[u8]]) {
        // One write: the requests arrive pipelined.
        let all: Vec<u8> = payloads.iter().flat_map(|p| framed(p)).collect();
        self.w.write_all(&all).await.unwrap();
    }

    async fn recv(&mut self) -> Option<BytesMut> {
        tokio::time::timeout(Duration::from_secs(5), self.r.next())
            .await
            .expect("no response within 5 s")
            .and_then(Result::ok)
    }
}

/// Answers ApiVersions (18) with a v0 list, Metadata (3) with one broker, Produce by acks.
fn echo_broker() -> Script {
    Arc::new(|f: &[u8]| {
        let key = i16::from_be_bytes([f[0], f[1]]);
        let corr = corr_of(f);
        match key {
            18 => vec![Act::Reply(api_versions_resp(corr, false, &[(18, 0, 3)]))],
            3 => vec![Act::Later(
                150,
                metadata_resp(corr, &[("broker.internal", 9092), ("b2.internal", 9093)]),
            )],
            // Produce v3 acks: after the header (11 bytes) and a null transactional id.
            0 if i16::from_be_bytes([f[13], f[14]]) == 0 => vec![Act::Nothing],
            _ => vec![Act::Reply(corr.to_be_bytes().to_vec())],
        }
    })
}

#[tokio::test]
async fn pipelined_requests_and_denials_are_answered_in_order() {
    let (up, got) = broker(echo_broker()).await;
    let s = Strait::start(up, "", deny_secret()).await;
    let mut c = Client::connect(s.addr).await;
    // The first answer is slow; the denial (2) must wait for it, and 3 for the denial.
    c.send(&[
        &metadata_req(1, &["orders"]),
        &metadata_req(2, &["secret"]),
        &req(18, 0, 3, &[]),
    ])
    .await;
    let r1 = c.recv().await.unwrap();
    let r2 = c.recv().await.unwrap();
    let r3 = c.recv().await.unwrap();
    assert_eq!([resp_corr(&r1), resp_corr(&r2), resp_corr(&r3)], [1, 2, 3]);
    // The denial is the broker's answer to the request without the denied topic: its brokers
    // (moved to strait) and controller, and the topic with code 29.
    let host = s.addr.ip().to_string();
    let own = (host.as_str(), i32::from(s.addr.port()));
    let want = metadata_resp_with(2, &[own, own], &[("secret", 29, 0)]);
    assert_eq!(&r2[..], &want[..]);
    // The broker never saw the denied topic: request 2 reached it naming no topic.
    let seen = got.lock().unwrap().clone();
    let corrs: Vec<i32> = seen.iter().map(|f| corr_of(f)).collect();
    assert_eq!(corrs, [1, 2, 3]);
    assert_eq!(&seen[1][..], &metadata_req(2, &[])[..]);
    // The forwarded Metadata answer advertises strait, not the brokers.
    let brokers = rewrite::advertised(&r1, 3, 1).unwrap();
    assert_eq!(brokers.len(), 2);
    for b in brokers {
        assert_eq!((b.host.as_str(), b.port), own);
    }
    let recs = s.flows(3).await;
    let summary: Vec<_> = recs
        .iter()
        .map(|r| (r.method.clone().unwrap(), r.path.clone(), r.verdict))
        .collect();
    assert_eq!(
        summary,
        [
            (
                "Metadata".into(),
                Some("orders".into()),
                FlowVerdict::Forwarded
            ),
            (
                "Metadata".into(),
                Some("secret".into()),
                FlowVerdict::Denied
            ),
            ("ApiVersions".into(), None, FlowVerdict::Forwarded),
        ]
    );
    assert!(recs.iter().all(|r| r.protocol == "kafka"));
    assert!(recs[0].latency_ns >= 100_000_000, "{:?}", recs[0]);
    assert!(recs[1].latency_ns >= recs[0].latency_ns / 2);
    assert_eq!(recs[1].bytes_sent, want.len() as u64 + 4);
    assert!(recs[1].error.as_deref().unwrap().contains("29"));
}

/// Metadata v1 request for every topic (a null list).
fn metadata_req_all(corr: i32) -> Vec<u8> {
    let mut w = Writer::default();
    w.length(false, true, None);
    req(3, 1, corr, &w.buf)
}

#[tokio::test]
async fn metadata_is_authorized_per_topic_inside_the_brokers_answer() {
    // As tansu does: every Metadata answer lists every topic, whatever was asked.
    let everything = |corr| {
        metadata_resp_with(
            corr,
            &[("broker.internal", 9092)],
            &[("orders", 0, 2), ("secret", 0, 3)],
        )
    };
    let (up, got) = broker(Arc::new(move |f: &[u8]| {
        vec![Act::Reply(everything(corr_of(f)))]
    }))
    .await;
    let s = Strait::start(up, "", deny_secret()).await;
    let host = s.addr.ip().to_string();
    let own = [(host.as_str(), i32::from(s.addr.port()))];
    let mut c = Client::connect(s.addr).await;
    c.send(&[
        &metadata_req(1, &["orders"]),
        &metadata_req_all(2),
        &metadata_req(3, &["secret", "orders"]),
        &metadata_req(4, &["secret"]),
    ])
    .await;
    // Allowed requests: the topic the policy denies is hidden (no partitions, code 29) where
    // the broker listed it unasked.
    let hidden = metadata_resp_with(1, &own, &[("orders", 0, 2), ("secret", 29, 0)]);
    assert_eq!(&c.recv().await.unwrap()[..], &hidden[..]);
    let hidden = metadata_resp_with(2, &own, &[("orders", 0, 2), ("secret", 29, 0)]);
    assert_eq!(&c.recv().await.unwrap()[..], &hidden[..]);
    // Denied requests: the denied topic never reaches the broker; the allowed one is answered.
    let mixed = metadata_resp_with(3, &own, &[("orders", 0, 2), ("secret", 29, 0)]);
    assert_eq!(&c.recv().await.unwrap()[..], &mixed[..]);
    let alone = metadata_resp_with(4, &own, &[("orders", 0, 2), ("secret", 29, 0)]);
    assert_eq!(&c.recv().await.unwrap()[..], &alone[..]);
    let seen = got.lock().unwrap().clone();
    assert_eq!(&seen[2][..], &metadata_req(3, &["orders"])[..]);
    assert_eq!(&seen[3][..], &metadata_req(4, &[])[..]);
    let recs = s.flows(4).await;
    let verdicts: Vec<_> = recs.iter().map(|r| r.verdict).collect();
    assert_eq!(
        verdicts,
        [
            FlowVerdict::Forwarded,
            FlowVerdict::Forwarded,
            FlowVerdict::Denied,
            FlowVerdict::Denied
        ]
    );
    assert!(
        recs[2].error.as_deref().unwrap().contains("29"),
        "{:?}",
        recs[2]
    );
}

#[tokio::test]
async fn produce_acks_0_gets_no_response_forwarded_or_denied() {
    let (up, got) = broker(echo_broker()).await;
    let s = Strait::start(up, "", deny_secret()).await;
    let mut c = Client::connect(s.addr).await;
    c.send(&[
        &produce_req(1, "orders", 0),
        &produce_req(2, "secret", 0),
        &produce_req(3, "orders", 1),
        &produce_req(4, "secret", 1),
        &req(18, 0, 5, &[]),
    ])
    .await;
    assert_eq!(resp_corr(&c.recv().await.unwrap()), 3);
    let denied = c.recv().await.unwrap();
    assert_eq!(resp_corr(&denied), 4);
    assert_eq!(resp_corr(&c.recv().await.unwrap()), 5);
    let seen: Vec<i32> = got.lock().unwrap().iter().map(|f| corr_of(f)).collect();
    assert_eq!(seen, [1, 3, 5]);
    let recs = s.flows(5).await;
    let mut summary: Vec<_> = recs
        .iter()
        .map(|r| (r.path.clone().unwrap_or_default(), r.verdict, r.bytes_sent))
        .collect();
    summary.sort_by_key(|x| x.2);
    assert_eq!(recs.len(), 5, "{recs:?}");
    // acks=0: nothing sent back, forwarded or denied.
    assert!(summary.contains(&("orders".into(), FlowVerdict::Forwarded, 0)));
    assert!(summary.contains(&("secret".into(), FlowVerdict::Denied, 0)));
}

#[tokio::test]
async fn a_broker_answering_acks_0_has_that_answer_dropped() {
    // Like tansu 0.6: every request is answered, acks=0 Produce included.
    let script: Script = Arc::new(|f: &[u8]| vec![Act::Reply(corr_of(f).to_be_bytes().to_vec())]);
    let (up, got) = broker(script).await;
    let s = Strait::start(up, "", allow()).await;
    let mut c = Client::connect(s.addr).await;
    c.send(&[
        &produce_req(1, "orders", 0),
        &produce_req(2, "orders", 0),
        &produce_req(3, "orders", 1),
        &produce_req(4, "orders", 0),
    ])
    .await;
    assert_eq!(resp_corr(&c.recv().await.unwrap()), 3);
    // The answer to 4 arrives with nothing in flight: dropped too, the connection lives on.
    tokio::time::sleep(Duration::from_millis(100)).await;
    c.send(&[&req(1000, 0, 5, &[])]).await;
    assert_eq!(resp_corr(&c.recv().await.unwrap()), 5);
    assert_eq!(got.lock().unwrap().len(), 5);
    let recs = s.flows(5).await;
    assert!(
        recs.iter().all(|r| r.verdict == FlowVerdict::Forwarded),
        "{recs:?}"
    );
    // Later requests are matched as usual.
    c.send(&[&req(1000, 0, 6, &[])]).await;
    assert_eq!(resp_corr(&c.recv().await.unwrap()), 6);
}

#[tokio::test]
async fn wrong_correlation_id_closes_both_sides() {
    let script: Script =
        Arc::new(|f: &[u8]| vec![Act::Reply((corr_of(f) + 1).to_be_bytes().to_vec())]);
    let (up, _) = broker(script).await;
    let s = Strait::start(up, "", allow()).await;
    let mut c = Client::connect(s.addr).await;
    c.send(&[&req(18, 0, 7, &[])]).await;
    assert!(c.recv().await.is_none(), "connection must close");
    let recs = s.flows(1).await;
    assert_eq!(recs[0].verdict, FlowVerdict::Error);
    assert!(
        recs[0]
            .error
            .as_deref()
            .unwrap()
            .contains("correlation id 8 where 7"),
        "{:?}",
        recs[0].error
    );
}

#[tokio::test]
async fn a_response_to_no_request_closes_the_connection() {
    let script: Script = Arc::new(|f: &[u8]| {
        let corr = corr_of(f);
        // Two answers to one request.
        vec![
            Act::Reply(corr.to_be_bytes().to_vec()),
            Act::Later(50, corr.to_be_bytes().to_vec()),
        ]
    });
    let (up, _) = broker(script).await;
    let s = Strait::start(up, "", allow()).await;
    let mut c = Client::connect(s.addr).await;
    c.send(&[&req(1000, 0, 1, &[])]).await;
    assert_eq!(resp_corr(&c.recv().await.unwrap()), 1);
    assert!(c.recv().await.is_none(), "connection must close");
}

#[tokio::test]
async fn oversized_and_garbage_frames_close_without_reaching_the_broker() {
    let (up, got) = broker(echo_broker()).await;
    let s = Strait::start(up, "    kafka: { max_frame_bytes: 1024 }\n", allow()).await;
    // Earlier requests are still answered before the close.
    let mut c = Client::connect(s.addr).await;
    c.send(&[&req(18, 0, 1, &[])]).await;
    c.w.write_all(&5000i32.to_be_bytes()).await.unwrap();
    assert_eq!(resp_corr(&c.recv().await.unwrap()), 1);
    assert!(c.recv().await.is_none());
    // A frame too short for a header; a negative size; an empty frame.
    for bad in [
        framed(&[0, 18, 0]),
        (-1i32).to_be_bytes().to_vec(),
        vec![0, 0, 0, 0],
    ] {
        let mut c = Client::connect(s.addr).await;
        c.w.write_all(&bad).await.unwrap();
        assert!(c.recv().await.is_none(), "{bad:?}");
    }
    assert_eq!(got.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn unknown_apis_are_forwarded_unless_denied() {
    let (up, got) = broker(echo_broker()).await;
    let s = Strait::start(up, "", deny_secret()).await;
    let mut c = Client::connect(s.addr).await;
    c.send(&[&req(1000, 0, 1, b"opaque")]).await;
    assert_eq!(resp_corr(&c.recv().await.unwrap()), 1);
    // Denied unknown API: no error response can be built, so the connection closes after the
    // earlier answers.
    c.send(&[&req(18, 0, 2, &[]), &req(99, 0, 3, &[])]).await;
    assert_eq!(resp_corr(&c.recv().await.unwrap()), 2);
    assert!(c.recv().await.is_none());
    assert_eq!(got.lock().unwrap().len(), 2);
    let recs = s.flows(3).await;
    assert_eq!(recs[0].method.as_deref(), Some("ApiKey1000"));
    assert_eq!(recs[2].method.as_deref(), Some("ApiKey99"));
    assert_eq!(recs[2].verdict, FlowVerdict::Error);
}

#[tokio::test]
async fn advertised_address_and_api_version_caps() {
    let script: Script = Arc::new(|f: &[u8]| {
        let corr = corr_of(f);
        match i16::from_be_bytes([f[0], f[1]]) {
            18 => vec![Act::Reply(api_versions_resp(
                corr,
                true,
                &[(0, 0, 13), (3, 0, 99), (10, 0, 6), (60, 0, 40)],
            ))],
            _ => vec![Act::Reply(metadata_resp(
                corr,
                &[("broker.internal", 9092)],
            ))],
        }
    });
    let (up, _) = broker(script).await;
    let s = Strait::start(
        up,
        "    kafka: { advertised_address: \"kafka.example:19092\" }\n",
        allow(),
    )
    .await;
    let mut c = Client::connect(s.addr).await;
    // ApiVersions v3 (flexible request header: client id, then tagged fields).
    let mut body = Writer::default();
    body.uvarint(0); // header tagged fields
    body.string(true, Some("test"));
    body.string(true, Some("1"));
    body.uvarint(0);
    c.send(&[&req(18, 3, 1, &body.buf), &metadata_req(2, &[])])
        .await;
    let versions = c.recv().await.unwrap();
    assert_eq!(
        &versions[..],
        &api_versions_resp(1, true, &[(0, 0, 13), (3, 0, 13), (10, 0, 6), (60, 0, 2)])[..]
    );
    let md = c.recv().await.unwrap();
    let b = &rewrite::advertised(&md, 3, 1).unwrap()[0];
    assert_eq!((b.host.as_str(), b.port), ("kafka.example", 19092));
}

#[tokio::test]
async fn api_versions_newer_than_strait_is_answered_unsupported() {
    let (up, got) = broker(echo_broker()).await;
    let s = Strait::start(up, "", allow()).await;
    let mut c = Client::connect(s.addr).await;
    c.send(&[&req(18, 9, 1, &[])]).await;
    let r = c.recv().await.unwrap();
    // correlation id, UNSUPPORTED_VERSION, [ApiVersions 0..=max].
    let mut want = Writer::default();
    want.i32(1);
    want.i16(35);
    want.i32(1);
    want.i16(18);
    want.i16(0);
    want.i16(crate::kafka::api(18).unwrap().max_version);
    assert_eq!(&r[..], &want.buf[..]);
    assert!(got.lock().unwrap().is_empty());
}

#[tokio::test]
async fn broker_down_is_an_error_flow() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let s = Strait::start(port, "", allow()).await;
    let mut c = Client::connect(s.addr).await;
    assert!(c.recv().await.is_none());
    let recs = s.flows(1).await;
    assert_eq!(recs[0].verdict, FlowVerdict::Error);
    assert!(recs[0]
        .error
        .as_deref()
        .unwrap()
        .contains("upstream unavailable"));
}

#[tokio::test]
async fn without_rewriting_responses_pass_unchanged() {
    // As on a transparent listener: clients reach each broker at its own address.
    let script: Script = Arc::new(|f: &[u8]| {
        let corr = corr_of(f);
        match i16::from_be_bytes([f[0], f[1]]) {
            18 => vec![Act::Reply(api_versions_resp(corr, false, &[(3, 0, 99)]))],
            _ => vec![Act::Reply(metadata_resp(
                corr,
                &[("broker.internal", 9092)],
            ))],
        }
    });
    let (up, _) = broker(script).await;
    let s = Strait::start_with(up, "", allow(), false).await;
    let mut c = Client::connect(s.addr).await;
    c.send(&[&req(18, 0, 1, &[]), &metadata_req(2, &[])]).await;
    assert_eq!(
        &c.recv().await.unwrap()[..],
        &api_versions_resp(1, false, &[(3, 0, 99)])[..]
    );
    assert_eq!(
        &c.recv().await.unwrap()[..],
        &metadata_resp(2, &[("broker.internal", 9092)])[..]
    );
}
