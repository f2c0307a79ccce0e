//! The TCP listener flow: an opaque byte relay to the upstream, one flow record per connection.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::config::ListenerConfig;
use crate::flows::{FlowRecord, Flows, Verdict};
use crate::http::upstream::{Alpn, Target, UpstreamConnector};
use crate::io::{Activity, AsyncStream, Tracked};
use crate::metrics::ListenerMetrics;

pub struct TcpProxy {
    cfg: Arc<ListenerConfig>,
    connector: UpstreamConnector,
    flows: Flows,
    metrics: ListenerMetrics,
    destination: String,
}

impl TcpProxy {
    pub fn new(
        cfg: Arc<ListenerConfig>,
        flows: Flows,
        metrics: ListenerMetrics,
        target: &Target,
    ) -> Self {
        Self {
            connector: UpstreamConnector::new(&cfg, target, Alpn::None),
            destination: target.authority.to_string(),
            cfg,
            flows,
            metrics,
        }
    }

    pub async fn serve<S: AsyncStream + 'static>(
        self: Arc<Self>,
        io: S,
        peer: SocketAddr,
        shutdown: CancellationToken,
    ) {
        self.metrics.requests.inc();
        let start = Instant::now();
        let time = SystemTime::now();
        let activity = Activity::new();
        let mut down = Tracked::new(io, activity.clone());
        let (verdict, error) = match self.connector.connect().await {
            Err(e) => {
                self.metrics.upstream_error(e.kind());
                tracing::debug!(listener = %self.cfg.name, %peer, error = %e, "upstream connect failed");
                (Verdict::Error, Some(format!("upstream unavailable: {e}")))
            }
            Ok(up) => {
                let mut up = up.into_tokio();
                let idle = self.cfg.timeouts.idle;
                let relay = tokio::io::copy_bidirectional(&mut down, &mut up);
                tokio::pin!(relay);
                loop {
                    let wait = activity.idle_remaining(idle).max(Duration::from_millis(50));
                    tokio::select! {
                        r = relay.as_mut() => break match r {
                            Ok(_) => (Verdict::Forwarded, None),
                            Err(e) => (Verdict::Error, Some(format!("relay failed: {e}"))),
                        },
                        _ = shutdown.cancelled() => break (Verdict::Error, Some("closed by proxy shutdown".into())),
                        _ = tokio::time::sleep(wait) => {
                            if activity.idle_remaining(idle).is_zero() {
                                break (Verdict::Error, Some(format!("idle for {idle:?}")));
                            }
                        }
                    }
                }
            }
        };
        self.flows.emit(FlowRecord {
            duration_ns: start.elapsed().as_nanos() as u64,
            bytes_received: activity.read.load(Ordering::Relaxed),
            bytes_sent: activity.written.load(Ordering::Relaxed),
            error,
            ..FlowRecord::new(
                time,
                peer,
                self.destination.clone(),
                self.cfg.name.clone(),
                "TCP".into(),
                verdict,
            )
        });
    }
}
