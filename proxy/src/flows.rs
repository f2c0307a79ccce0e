//! Flow records: one JSON line per request (HTTP) or connection (TCP), with Hubble's L7 fields.
//!
//! The request path only moves a struct into a bounded channel; a writer task serialises it,
//! writes it to the configured sink and fans it out to `/flows` subscribers. When the channel is
//! full the record is dropped and counted (`strait_flows_dropped_total`), never blocking traffic.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{broadcast, mpsc};

use crate::config::{FlowSink, FlowsConfig};
use crate::metrics::Metrics;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Verdict {
    /// Sent to the upstream (whatever status it answered).
    Forwarded,
    /// Refused by policy.
    Denied,
    /// Failed in the proxy or upstream: the `error` field says why.
    Error,
    /// Dropped by the datapath (L3/L4 policy or a malformed packet): `drop_reason` says why.
    Dropped,
    /// A new connection the datapath redirected to strait's transparent listener (L7 policy).
    Redirected,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Forwarded => "FORWARDED",
            Verdict::Denied => "DENIED",
            Verdict::Error => "ERROR",
            Verdict::Dropped => "DROPPED",
            Verdict::Redirected => "REDIRECTED",
        }
    }
}

/// One flow. Field names follow Hubble's L7 flow where one exists.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FlowRecord {
    /// RFC 3339 UTC time the request arrived.
    pub time: String,
    pub source: SocketAddr,
    /// Where the request was (or would have been) sent: the upstream `host:port`.
    pub destination: String,
    pub listener: String,
    /// `HTTP/1.1`, `HTTP/2` or `TCP`.
    pub protocol: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub grpc_status: Option<u32>,
    /// Request arrival to response head.
    pub latency_ns: u64,
    /// Request arrival to the end of the response body (or of the connection, for TCP).
    pub duration_ns: u64,
    /// Body bytes received from the client.
    pub bytes_received: u64,
    /// Body bytes sent to the client.
    pub bytes_sent: u64,
    pub verdict: Verdict,
    /// The filter that decided, when one did.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub filter: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
    /// Numeric identity of the source (transparent listeners and datapath events).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub source_identity: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub destination_identity: Option<u32>,
    /// The policy rule that decided (datapath events).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub policy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub drop_reason: Option<String>,
}

impl FlowRecord {
    /// A record with the fields every flow has; the rest empty (set them with struct update
    /// syntax or afterwards).
    pub fn new(
        time: SystemTime,
        source: SocketAddr,
        destination: String,
        listener: String,
        protocol: String,
        verdict: Verdict,
    ) -> Self {
        Self {
            time: rfc3339(time),
            source,
            destination,
            listener,
            protocol,
            method: None,
            host: None,
            path: None,
            status: None,
            grpc_status: None,
            latency_ns: 0,
            duration_ns: 0,
            bytes_received: 0,
            bytes_sent: 0,
            verdict,
            filter: None,
            error: None,
            source_identity: None,
            destination_identity: None,
            policy: None,
            drop_reason: None,
        }
    }
}

/// Records the `/flows` feed holds for its slowest subscriber; one further behind skips ahead
/// (and is told how many records it missed).
const LIVE_CAPACITY: usize = 4096;

/// The `/flows` feed, created by its first subscriber: a broadcast channel allocates and fills
/// its whole ring at once (4096 slots, 224 KiB), which would otherwise be resident in every
/// process, including the many that never serve `/flows`.
type Live = Arc<OnceLock<broadcast::Sender<Bytes>>>;

/// Handle used by the request path to emit flow records. Cheap to clone: one reference
/// count (every request's flow guard holds one).
#[derive(Clone)]
pub struct Flows(Arc<FlowsInner>);

struct FlowsInner {
    tx: mpsc::Sender<FlowRecord>,
    live: Live,
    has_sink: bool,
    metrics: Metrics,
}

impl Flows {
    /// Starts the writer task on the current runtime.
    pub fn start(cfg: &FlowsConfig, metrics: Metrics) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel(cfg.buffer);
        let live = Live::default();
        let out: Option<Box<dyn AsyncWrite + Send + Unpin>> = match &cfg.sink {
            FlowSink::Stdout => Some(Box::new(tokio::io::stdout())),
            FlowSink::File(p) => {
                let f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)?;
                Some(Box::new(tokio::fs::File::from_std(f)))
            }
            FlowSink::None => None,
        };
        let has_sink = out.is_some();
        tokio::spawn(writer(rx, out, live.clone()));
        Ok(Self(Arc::new(FlowsInner {
            tx,
            live,
            has_sink,
            metrics,
        })))
    }

    /// Whether anyone would read a record now; lets callers skip building one.
    pub fn wanted(&self) -> bool {
        self.0.has_sink || self.0.live.get().is_some_and(|l| l.receiver_count() > 0)
    }

    pub fn emit(&self, rec: FlowRecord) {
        if !self.wanted() {
            return;
        }
        if self.0.tx.try_send(rec).is_err() {
            self.0.metrics.flows_dropped.inc();
        }
    }

    /// A live feed of serialised records (one JSON line each), for `/flows`.
    pub fn subscribe(&self) -> broadcast::Receiver<Bytes> {
        self.0
            .live
            .get_or_init(|| broadcast::channel(LIVE_CAPACITY).0)
            .subscribe()
    }
}

async fn writer(
    mut rx: mpsc::Receiver<FlowRecord>,
    out: Option<Box<dyn AsyncWrite + Send + Unpin>>,
    live: Live,
) {
    let mut out = out.map(|o| tokio::io::BufWriter::with_capacity(64 * 1024, o));
    let mut line = Vec::with_capacity(512);
    while let Some(rec) = rx.recv().await {
        let mut next = Some(rec);
        // Drain what is queued, then flush once.
        while let Some(rec) = next {
            line.clear();
            if serde_json::to_writer(&mut line, &rec).is_ok() {
                line.push(b'\n');
                if let Some(o) = out.as_mut() {
                    if let Err(e) = o.write_all(&line).await {
                        tracing::error!(error = %e, "cannot write flow record; flow sink disabled");
                        out = None;
                    }
                }
                if let Some(l) = live.get().filter(|l| l.receiver_count() > 0) {
                    let _ = l.send(Bytes::copy_from_slice(&line));
                }
            }
            next = rx.try_recv().ok();
        }
        if let Some(o) = out.as_mut() {
            let _ = o.flush().await;
        }
    }
    if let Some(o) = out.as_mut() {
        let _ = o.flush().await;
    }
}

/// `SystemTime` as RFC 3339 UTC with microseconds, e.g. `2026-11-22T05:01:02.123456Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_micros()
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
        let t = UNIX_EPOCH + Duration::from_micros(1_795_323_723_123_456);
        assert_eq!(rfc3339(t), "2026-11-22T05:02:03.123456Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(&rfc3339(leap)[..10], "2000-02-29");
    }

    #[tokio::test]
    async fn the_live_feed_exists_once_someone_subscribes() {
        let cfg = FlowsConfig {
            sink: FlowSink::None,
            buffer: 16,
        };
        let flows = Flows::start(&cfg, Metrics::new()).unwrap();
        assert!(flows.0.live.get().is_none(), "no ring before a subscriber");
        assert!(!flows.wanted());
        let mut rx = flows.subscribe();
        assert!(flows.wanted());
        let rec = FlowRecord::new(
            SystemTime::now(),
            "127.0.0.1:1".parse().unwrap(),
            "127.0.0.1:2".into(),
            "web".into(),
            "http".into(),
            Verdict::Forwarded,
        );
        flows.emit(rec);
        let line = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert!(line.starts_with(b"{") && line.ends_with(b"\n"), "{line:?}");
        let _rx2 = flows.subscribe();
        let live = flows.0.live.get().unwrap();
        assert_eq!(live.receiver_count(), 2, "later subscribers share the feed");
    }
}
