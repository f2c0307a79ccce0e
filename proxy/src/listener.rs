//! Accept loops: one per configured listener, TLS termination, dispatch to the listener's flow.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{ListenerConfig, Protocol};
use crate::flows::Flows;
use crate::http::HttpProxy;
use crate::metrics::{ListenerMetrics, Metrics};
use crate::socket;
use crate::tcp::TcpProxy;
use crate::wasm::ChainHandle;

#[derive(Clone)]
enum Flow {
    Http(Arc<HttpProxy>),
    Tcp(Arc<TcpProxy>),
}

/// A bound listener, ready to accept.
pub struct Listener {
    cfg: Arc<ListenerConfig>,
    socket: TcpListener,
    flow: Flow,
    metrics: ListenerMetrics,
}

/// Why a listener could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot bind listener `{name}` to {address}: {source}")]
pub struct BindError {
    pub name: String,
    pub address: SocketAddr,
    pub source: std::io::Error,
}

impl Listener {
    pub fn bind(
        cfg: Arc<ListenerConfig>,
        flows: &Flows,
        metrics: &Metrics,
        filters: ChainHandle,
    ) -> Result<Self, BindError> {
        let socket = socket::bind_listener(cfg.address).map_err(|source| BindError {
            name: cfg.name.clone(),
            address: cfg.address,
            source,
        })?;
        let lm = metrics.listener(&cfg.name);
        let flow = match cfg.protocol {
            Protocol::Http => {
                let local = socket.local_addr().unwrap_or(cfg.address);
                Flow::Http(Arc::new(HttpProxy::new(
                    cfg.clone(),
                    flows.clone(),
                    lm.clone(),
                    filters,
                    local,
                )))
            }
            Protocol::Tcp => Flow::Tcp(Arc::new(TcpProxy::new(
                cfg.clone(),
                flows.clone(),
                lm.clone(),
            ))),
        };
        Ok(Self {
            cfg,
            socket,
            flow,
            metrics: lm,
        })
    }

    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Accepts until `shutdown`; connection tasks are tracked by `tasks` for draining.
    pub async fn run(self, shutdown: CancellationToken, tasks: TaskTracker) {
        let tls = self.cfg.tls.clone().map(tokio_rustls::TlsAcceptor::from);
        loop {
            let (stream, peer) = tokio::select! {
                _ = shutdown.cancelled() => break,
                r = self.socket.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(listener = %self.cfg.name, error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            socket::tune_stream(&stream);
            let metrics = self.metrics.clone();
            let shutdown = shutdown.clone();
            let tls = tls.clone();
            let flow = self.flow.clone();
            let cfg = self.cfg.clone();
            tasks.spawn(async move {
                let active = metrics.active_connections.clone();
                active.inc();
                let _active = scopeguard(move || {
                    active.dec();
                });
                match (tls, flow) {
                    (None, Flow::Http(p)) => p.serve(stream, peer, false, shutdown).await,
                    (None, Flow::Tcp(p)) => p.serve(stream, peer, shutdown).await,
                    (Some(acceptor), flow) => {
                        let s = match tokio::time::timeout(cfg.timeouts.header_read, acceptor.accept(stream)).await {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                metrics.tls_handshake_errors.inc();
                                tracing::info!(listener = %cfg.name, %peer, error = %e, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                metrics.tls_handshake_errors.inc();
                                tracing::info!(listener = %cfg.name, %peer, "TLS handshake timed out");
                                return;
                            }
                        };
                        match flow {
                            Flow::Http(p) => p.serve(s, peer, true, shutdown).await,
                            Flow::Tcp(p) => p.serve(s, peer, shutdown).await,
                        }
                    }
                }
            });
        }
    }
}

struct Guard<F: FnOnce()>(Option<F>);

impl<F: FnOnce()> Drop for Guard<F> {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}

fn scopeguard<F: FnOnce()>(f: F) -> Guard<F> {
    Guard(Some(f))
}
