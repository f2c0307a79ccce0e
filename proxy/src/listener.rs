//! Accept loops: one per configured listener, TLS termination, dispatch to the listener's flow.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{ListenerConfig, Protocol, SourceAddress, Upstream};
use crate::flows::Flows;
use crate::http::HttpProxy;
use crate::http::Target;
use crate::kafka::proxy::{KafkaProxy, TopicNames};
use crate::metrics::{ListenerMetrics, Metrics};
use crate::policy::Identities;
use crate::socket;
use crate::tcp::TcpProxy;
use crate::wasm::ChainHandle;

#[derive(Clone)]
enum Flow {
    Http(Arc<HttpProxy>),
    Tcp(Arc<TcpProxy>),
    Kafka(Arc<KafkaProxy>),
    /// A transparent listener: each connection has its own original destination and client
    /// source, so its flow is built per connection.
    Transparent(Arc<TransparentCtx>),
}

struct TransparentCtx {
    source: SourceAddress,
    flows: Flows,
    metrics: ListenerMetrics,
    filters: ChainHandle,
    identities: Arc<Identities>,
    /// Topic ids learned by this listener's Kafka connections.
    topic_names: Arc<TopicNames>,
}

impl TransparentCtx {
    /// The flow of one redirected connection: upstream = its original destination (the
    /// accepted socket's local address), from the client's address unless `source_address:
    /// node`, marked so the datapath leaves it alone.
    fn flow(&self, cfg: &Arc<ListenerConfig>, orig_dst: SocketAddr, peer: SocketAddr) -> Flow {
        let target = Target {
            authority: socket_authority(orig_dst),
            // The replies to a client-address leg come back only through a local endpoint's
            // veth (its tc program hands them to strait); other destinations get the node's.
            bind: (self.source == SourceAddress::Client
                && self.identities.of_addr(orig_dst.ip()).is_some())
            .then_some(peer.ip()),
            mark: Some(datapath_bpf::MARK_FROM_PROXY),
            h2c_known: true,
        };
        match cfg.protocol {
            Protocol::Http => Flow::Http(Arc::new(HttpProxy::new(
                cfg.clone(),
                self.flows.clone(),
                self.metrics.clone(),
                self.filters.clone(),
                orig_dst,
                target,
                self.identities.of_addr(peer.ip()),
                self.identities.of_addr(orig_dst.ip()),
            ))),
            Protocol::Tcp => Flow::Tcp(Arc::new(TcpProxy::new(
                cfg.clone(),
                self.flows.clone(),
                self.metrics.clone(),
                &target,
            ))),
            // Clients reach every broker at its own address (redirected again): nothing to
            // rewrite.
            Protocol::Kafka => Flow::Kafka(Arc::new(
                KafkaProxy::new(
                    cfg.clone(),
                    self.flows.clone(),
                    self.metrics.clone(),
                    &target,
                    false,
                )
                .with_filters(
                    self.filters.clone(),
                    self.topic_names.clone(),
                    (
                        self.identities.of_addr(peer.ip()),
                        self.identities.of_addr(orig_dst.ip()),
                    ),
                ),
            )),
        }
    }
}

fn socket_authority(a: SocketAddr) -> http::uri::Authority {
    // An IP:port always parses as an authority.
    let s = a.to_string();
    http::uri::Authority::try_from(s.as_str())
        .unwrap_or_else(|_| http::uri::Authority::from_static("invalid:0"))
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
        identities: Arc<Identities>,
    ) -> Result<Self, BindError> {
        let transparent = cfg.upstream.is_transparent();
        let socket =
            socket::bind_listener(cfg.address, transparent).map_err(|source| BindError {
                name: cfg.name.clone(),
                address: cfg.address,
                source,
            })?;
        let lm = metrics.listener(&cfg.name);
        let flow = match (&cfg.upstream, cfg.protocol) {
            (Upstream::OriginalDestination { source }, _) => {
                Flow::Transparent(Arc::new(TransparentCtx {
                    source: *source,
                    flows: flows.clone(),
                    metrics: lm.clone(),
                    filters,
                    identities,
                    topic_names: Default::default(),
                }))
            }
            (Upstream::Fixed(upstream), Protocol::Http) => {
                let local = socket.local_addr().unwrap_or(cfg.address);
                Flow::Http(Arc::new(HttpProxy::new(
                    cfg.clone(),
                    flows.clone(),
                    lm.clone(),
                    filters,
                    local,
                    Target::fixed(upstream.clone()),
                    None,
                    None,
                )))
            }
            (Upstream::Fixed(upstream), Protocol::Tcp) => Flow::Tcp(Arc::new(TcpProxy::new(
                cfg.clone(),
                flows.clone(),
                lm.clone(),
                &Target::fixed(upstream.clone()),
            ))),
            (Upstream::Fixed(upstream), Protocol::Kafka) => Flow::Kafka(Arc::new(
                KafkaProxy::new(
                    cfg.clone(),
                    flows.clone(),
                    lm.clone(),
                    &Target::fixed(upstream.clone()),
                    true,
                )
                .with_filters(filters, Default::default(), (None, None)),
            )),
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

    /// The listening socket, for the datapath's listener map (transparent listeners).
    pub fn socket(&self) -> &TcpListener {
        &self.socket
    }

    pub fn is_transparent(&self) -> bool {
        self.cfg.upstream.is_transparent()
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
            // What the client dialled: the address a Kafka listener advertises.
            let local = stream.local_addr().unwrap_or(self.cfg.address);
            let metrics = self.metrics.clone();
            let shutdown = shutdown.clone();
            let tls = tls.clone();
            let cfg = self.cfg.clone();
            let flow = match &self.flow {
                Flow::Transparent(t) => match stream.local_addr() {
                    Ok(orig_dst) => t.flow(&cfg, orig_dst, peer),
                    Err(e) => {
                        tracing::warn!(listener = %cfg.name, %peer, error = %e, "no original destination; closing");
                        continue;
                    }
                },
                f => f.clone(),
            };
            tasks.spawn(async move {
                let active = metrics.active_connections.clone();
                active.inc();
                let _active = scopeguard(move || {
                    active.dec();
                });
                match (tls, flow) {
                    (None, Flow::Http(p)) => p.serve(stream, peer, false, shutdown).await,
                    (None, Flow::Tcp(p)) => p.serve(stream, peer, shutdown).await,
                    (None, Flow::Kafka(p)) => p.serve(stream, peer, local, shutdown).await,
                    (_, Flow::Transparent(_)) => unreachable_flow(&cfg.name),
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
                            Flow::Kafka(p) => p.serve(s, peer, local, shutdown).await,
                            Flow::Transparent(_) => unreachable_flow(&cfg.name),
                        }
                    }
                }
            });
        }
    }
}

/// Transparent flows are resolved per connection before dispatch.
fn unreachable_flow(listener: &str) {
    tracing::error!(%listener, "internal: unresolved transparent flow; connection closed");
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
