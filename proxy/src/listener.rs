//! Accept loops: one per configured listener, TLS termination, dispatch to the listener's flow.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
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
                self.identities.of_peer(peer.ip()),
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
                        self.identities.of_peer(peer.ip()),
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
    tls: Option<TlsCell>,
}

/// A TLS listener's server config: each handshake takes the one in force, and a reload swaps
/// in a rotated certificate ([`Live::rotate_tls`]).
type TlsCell = Arc<arc_swap::ArcSwap<rustls::ServerConfig>>;

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
        Ok(Self::on(cfg, socket, flows, metrics, filters, identities))
    }

    /// The listener `cfg` on a socket already bound (a reload's new settings on the socket
    /// the listener had).
    fn on(
        cfg: Arc<ListenerConfig>,
        socket: TcpListener,
        flows: &Flows,
        metrics: &Metrics,
        filters: ChainHandle,
        identities: Arc<Identities>,
    ) -> Self {
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
        let tls = cfg
            .tls
            .as_ref()
            .map(|t| Arc::new(arc_swap::ArcSwap::new(t.config.clone())));
        Self {
            cfg,
            socket,
            flow,
            metrics: lm,
            tls,
        }
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

    /// Accepts until `stop` (a child of `shutdown`: the listener was stopped or strait shuts
    /// down), then gives its socket back. Connection tasks are tracked by `tasks` for draining.
    /// HTTP and Kafka connections drain when `stop` comes (they finish the requests in flight);
    /// TCP relays run on until they end or `shutdown`.
    pub async fn run(
        self,
        stop: CancellationToken,
        shutdown: CancellationToken,
        tasks: TaskTracker,
    ) -> TcpListener {
        loop {
            let (stream, peer) = tokio::select! {
                // A stopped listener accepts nothing more, even with connections waiting.
                biased;
                _ = stop.cancelled() => break,
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
            let (stop, shutdown) = (stop.clone(), shutdown.clone());
            let tls = self
                .tls
                .as_ref()
                .map(|t| tokio_rustls::TlsAcceptor::from(t.load_full()));
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
                    (None, Flow::Http(p)) => p.serve(stream, peer, false, stop).await,
                    (None, Flow::Tcp(p)) => p.serve(stream, peer, shutdown).await,
                    (None, Flow::Kafka(p)) => p.serve(stream, peer, local, stop).await,
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
                            Flow::Http(p) => p.serve(s, peer, true, stop).await,
                            Flow::Tcp(p) => p.serve(s, peer, shutdown).await,
                            Flow::Kafka(p) => p.serve(s, peer, local, stop).await,
                            Flow::Transparent(_) => unreachable_flow(&cfg.name),
                        }
                    }
                }
            });
        }
        self.socket
    }
}

/// The listeners serving now. A config reload starts, replaces and stops them through this;
/// transparent listeners only at start (the datapath holds their sockets).
#[derive(Clone)]
pub struct Live {
    running: Arc<Mutex<Vec<Running>>>,
    flows: Flows,
    metrics: Metrics,
    identities: Arc<Identities>,
    tasks: TaskTracker,
}

struct Running {
    cfg: Arc<ListenerConfig>,
    /// The address bound (the port a `:0` address got).
    local: Option<SocketAddr>,
    chain: ChainHandle,
    /// The TLS config handshakes take, and the certificate files it was built from.
    tls: Option<(TlsCell, crate::tls::TlsFiles)>,
    /// Ends the accept loop and drains its HTTP and Kafka connections.
    stop: CancellationToken,
    /// The accept loop; it gives its socket back when it ends.
    task: JoinHandle<TcpListener>,
}

impl Live {
    pub fn new(flows: Flows, metrics: Metrics, identities: Arc<Identities>) -> Self {
        Self {
            running: Default::default(),
            flows,
            metrics,
            identities,
            tasks: TaskTracker::new(),
        }
    }

    /// The connections of every listener, for draining at shutdown.
    pub fn tasks(&self) -> &TaskTracker {
        &self.tasks
    }

    pub fn bind(
        &self,
        cfg: Arc<ListenerConfig>,
        chain: ChainHandle,
    ) -> Result<Listener, BindError> {
        Listener::bind(
            cfg,
            &self.flows,
            &self.metrics,
            chain,
            self.identities.clone(),
        )
    }

    fn running(&self) -> std::sync::MutexGuard<'_, Vec<Running>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Accepts on `l` until it is stopped or `shutdown`. `chain` is the handle its filters
    /// are in (kept for unloading them at shutdown).
    pub fn start(&self, l: Listener, chain: ChainHandle, shutdown: &CancellationToken) {
        tracing::info!(
            listener = l.name(),
            address = %l.local_addr().map_or_else(|e| e.to_string(), |a| a.to_string()),
            "listening"
        );
        let stop = shutdown.child_token();
        let cfg = l.cfg.clone();
        let local = l.local_addr().ok();
        let tls = l
            .tls
            .clone()
            .zip(l.cfg.tls.as_ref().map(|t| t.files.clone()));
        let task = tokio::spawn(l.run(stop.clone(), shutdown.clone(), self.tasks.clone()));
        self.running().push(Running {
            cfg,
            local,
            chain,
            tls,
            stop,
            task,
        });
    }

    /// Stops listener `name`: it accepts no more connections, and its HTTP and Kafka
    /// connections finish what is in flight and close. Its socket, if the accept loop ended
    /// cleanly.
    pub async fn stop(&self, name: &str) -> Option<TcpListener> {
        let r = {
            let mut running = self.running();
            let i = running.iter().position(|r| r.cfg.name == name)?;
            running.remove(i)
        };
        r.stop.cancel();
        r.task.await.ok()
    }

    /// Whether listener `cfg.name` runs on `cfg.address` already (as configured, or as
    /// bound): a restart with `cfg` keeps its socket.
    pub fn keeps_socket(&self, cfg: &ListenerConfig) -> bool {
        self.running().iter().any(|r| {
            r.cfg.name == cfg.name && (r.cfg.address == cfg.address || r.local == Some(cfg.address))
        })
    }

    /// Runs listener `cfg.name` with the settings `cfg` from now on: on `moved`, the socket
    /// of its new address bound beforehand ([`Self::bind`]), or else on the socket it has
    /// ([`Self::keeps_socket`]; connections wait in its backlog for the moment it takes).
    /// Connections already open finish on the old settings.
    pub async fn replace(
        &self,
        cfg: Arc<ListenerConfig>,
        chain: ChainHandle,
        moved: Option<Listener>,
        shutdown: &CancellationToken,
    ) -> Result<(), BindError> {
        let l = if let Some(l) = moved {
            self.stop(&cfg.name).await;
            l
        } else {
            match self.stop(&cfg.name).await {
                Some(socket) => Listener::on(
                    cfg,
                    socket,
                    &self.flows,
                    &self.metrics,
                    chain.clone(),
                    self.identities.clone(),
                ),
                // The accept loop panicked and took its socket: bind again.
                None => self.bind(cfg, chain.clone())?,
            }
        };
        self.start(l, chain, shutdown);
        Ok(())
    }

    /// When `cfg` names other certificate files, or the same ones with new contents, than
    /// listener `cfg.name` serves with: swaps in `cfg`'s TLS server config (a rotated
    /// certificate). New handshakes use it, connections already open keep theirs. False when
    /// nothing changed, or the listener does not run with TLS.
    pub fn rotate_tls(&self, cfg: &ListenerConfig) -> bool {
        let Some(new) = &cfg.tls else {
            return false;
        };
        let mut running = self.running();
        let Some((cell, files)) = running
            .iter_mut()
            .find(|r| r.cfg.name == cfg.name)
            .and_then(|r| r.tls.as_mut())
        else {
            return false;
        };
        if *files == new.files {
            return false;
        }
        cell.store(new.config.clone());
        *files = new.files.clone();
        true
    }

    /// The filter chains of the listeners serving now.
    pub fn chains(&self) -> Vec<ChainHandle> {
        self.running().iter().map(|r| r.chain.clone()).collect()
    }

    /// Waits for every accept loop to end (after `shutdown`).
    pub async fn join(&self) {
        let tasks: Vec<JoinHandle<TcpListener>> =
            self.running().drain(..).map(|r| r.task).collect();
        for t in tasks {
            let _ = t.await;
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
