//! strait: a node-local L7 proxy. This crate is the daemon (`strait run`) and its CLI.
//!
//! Map of the crate (see ARCHITECTURE.md for the path of a request):
//! - [`config`]: YAML → one immutable, validated [`config::Config`].
//! - [`listener`]: accept loops and TLS termination; dispatch to a flow per protocol:
//!   [`http`] (HTTP/1.1, HTTP/2, gRPC, upgrades) or [`tcp`] (byte relay).
//! - [`flows`], [`metrics`], [`admin`]: observability.
//! - [`socket`]: raw socket options; [`tls`]: certificate loading.
//! - [`wasm`]: the proxy-wasm filter host (wasmtime), filter chains and hot reload.

pub mod admin;
pub mod config;
pub mod datapath;
pub mod flows;
pub mod http;
pub mod io;
pub mod kafka;
pub mod lab;
pub mod listener;
pub mod metrics;
pub mod observe;
pub mod policy;
pub mod socket;
pub mod tcp;
pub mod tls;
pub mod wasm;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use config::Config;
use listener::{BindError, Listener, Live};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error("cannot bind admin endpoint to {address}: {source}")]
    AdminBind {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot open flow sink: {0}")]
    FlowSink(std::io::Error),
    /// A filter module does not compile or start: a configuration problem (exit 64).
    #[error("listener `{listener}`: {source}")]
    Filter {
        listener: String,
        source: wasm::WasmError,
    },
    /// A policy file does not load or compile: a configuration problem (exit 64).
    #[error("policy: {0}")]
    Policy(#[from] policy::PolicyError),
    #[error("datapath: {0}")]
    Datapath(#[from] datapath::DatapathError),
}

impl ServeError {
    /// Whether the error is the operator's configuration (exit 64) rather than the system.
    pub fn is_config(&self) -> bool {
        matches!(
            self,
            ServeError::Filter { .. }
                | ServeError::Policy(_)
                | ServeError::Datapath(
                    datapath::DatapathError::NoInterface { .. }
                        | datapath::DatapathError::NoUplink(_)
                )
        )
    }
}

/// A server with every socket bound, not yet accepting.
pub struct Server {
    config: Config,
    /// Bound at start, each with its filter chain; they accept once `run` starts them.
    listeners: Vec<(Listener, wasm::ChainHandle)>,
    /// The listeners serving (those a reload adds too), and their connections.
    live: Live,
    admin: Option<(tokio::net::TcpListener, admin::Admin)>,
    ready: Arc<AtomicBool>,
    reloader: Option<wasm::reload::Reloader>,
    /// The filter runtime (once there is one), to unload the filters at shutdown.
    runtime: wasm::reload::RuntimeSlot,
    enforcement: policy::watch::Enforcement,
    identities: Arc<policy::Identities>,
}

/// Builds the filter runtime and every listener's chain (compiling off the async workers, as
/// `compile` says). `None` when no listener has filters and no clusters are configured.
pub async fn load_filters(
    config: &Config,
    compile: wasm::CompileMode,
) -> Result<Option<(wasm::Runtime, Vec<wasm::ChainHandle>)>, ServeError> {
    let wanted = config.listeners.iter().any(|l| !l.filters.is_empty());
    if !wanted && config.clusters.is_empty() {
        return Ok(None);
    }
    let rt = wasm::Runtime::new(
        &config.wasm,
        config.runtime.workers,
        config.clusters.clone(),
        compile,
    )
    .map_err(|source| ServeError::Filter {
        listener: String::new(),
        source,
    })?;
    let mut chains = Vec::new();
    for l in &config.listeners {
        let (rt2, name, filters) = (rt.clone(), l.name.clone(), l.filters.clone());
        let chain = tokio::task::spawn_blocking(move || rt2.load_chain(&name, &filters, None))
            .await
            .map_err(|e| ServeError::Filter {
                listener: l.name.clone(),
                source: wasm::WasmError::Engine(format!("filter loading task failed: {e}")),
            })?
            .map_err(|source| ServeError::Filter {
                listener: l.name.clone(),
                source,
            })?;
        chains.push(Arc::new(arc_swap::ArcSwap::from_pointee(chain)));
    }
    Ok(Some((rt, chains)))
}

impl Server {
    /// Binds every listener and the admin endpoint; must run inside a tokio runtime. `compile`
    /// is where filter modules are compiled, now and on reloads (`strait run`:
    /// [`wasm::CompileMode::this_binary`], so Cranelift never runs in the serving process).
    pub async fn bind(config: Config, compile: wasm::CompileMode) -> Result<Self, ServeError> {
        let metrics = metrics::Metrics::new();
        let flows =
            flows::Flows::start(&config.flows, metrics.clone()).map_err(ServeError::FlowSink)?;
        let loaded = load_filters(&config, compile.clone()).await?;
        let chains: Vec<wasm::ChainHandle> = match &loaded {
            Some((rt, chains)) => {
                metrics.set_wasm(rt.clone());
                chains.clone()
            }
            None => config
                .listeners
                .iter()
                .map(|_| wasm::reload::empty())
                .collect(),
        };
        let identities = Arc::new(policy::Identities::from_endpoints(&config.endpoints));
        let live = Live::new(flows.clone(), metrics.clone(), identities.clone());
        let listeners = config
            .listeners
            .iter()
            .zip(&chains)
            .map(|(l, c)| Ok((live.bind(l.clone(), c.clone())?, c.clone())))
            .collect::<Result<Vec<_>, BindError>>()?;
        let state = if config.datapath.enabled {
            let policies = policy::load(&config.policies)?;
            let hosts = datapath::host_addresses();
            let state = policy::compile(&config, &identities, &policies, &hosts)?;
            identities.set_ipcache(&state.ipcache);
            Some(state)
        } else {
            None
        };
        let datapath = if let Some(state) = &state {
            let mut dp = datapath::Datapath::start(&config.datapath, state, identities.clone())?;
            for (l, _) in listeners.iter().filter(|(l, _)| l.is_transparent()) {
                let port = l.local_addr().map(|a| a.port()).unwrap_or(0);
                dp.register_listener(port, l.socket())?;
            }
            dp.spawn_events(flows.clone())?;
            metrics.set_datapath(dp.counters_handle());
            tracing::info!(
                endpoints = config.endpoints.len(),
                policy_entries = state.policy.len(),
                pin_dir = %config.datapath.pin_dir.display(),
                "datapath attached"
            );
            Some(dp)
        } else {
            None
        };
        let sockmap = if config.sockmap.enabled {
            // Identities and enforcement flags as the datapath has them; without the datapath
            // there is no policy and every endpoint pair may be spliced.
            let eps: Vec<_> = match &state {
                Some(st) => st
                    .endpoints
                    .iter()
                    .map(|(e, id, flags)| datapath::sockmap::SpliceEndpoint {
                        endpoint: e,
                        identity: *id,
                        flags: *flags,
                    })
                    .collect(),
                None => config
                    .endpoints
                    .iter()
                    .map(|e| datapath::sockmap::SpliceEndpoint {
                        endpoint: e,
                        identity: identities.of_labels(&e.labels).unwrap_or(0),
                        flags: 0,
                    })
                    .collect(),
            };
            let sm =
                datapath::sockmap::Sockmap::start(&config.sockmap, &config.datapath.pin_dir, &eps)?;
            metrics.set_sockmap(sm.counters_handle());
            Some(sm)
        } else {
            None
        };
        let runtime = wasm::reload::RuntimeSlot::default();
        if let Some((rt, _)) = loaded {
            let _ = runtime.set(rt);
        }
        // The watcher runs whether or not the config has filters now: a reload can bring the
        // first ones (the runtime starts then).
        let reloader = config.wasm.reload.then(|| wasm::reload::Reloader {
            runtime: runtime.clone(),
            compile: compile.clone(),
            metrics: metrics.clone(),
            config: config.clone(),
            started: config.clone(),
            listeners: config
                .listeners
                .iter()
                .zip(&chains)
                .map(|(l, c)| wasm::reload::Watched {
                    listener: l.clone(),
                    chain: c.clone(),
                })
                .collect(),
            live: live.clone(),
            interval: std::time::Duration::from_secs(1),
        });
        let ready = Arc::new(AtomicBool::new(false));
        let admin = match &config.admin {
            Some(a) => {
                let sock = socket::bind_listener(a.address, false).map_err(|source| {
                    ServeError::AdminBind {
                        address: a.address,
                        source,
                    }
                })?;
                Some((
                    sock,
                    admin::Admin {
                        metrics,
                        flows,
                        ready: ready.clone(),
                    },
                ))
            }
            None => None,
        };
        Ok(Self {
            config,
            listeners,
            live,
            admin,
            ready,
            reloader,
            runtime,
            enforcement: policy::watch::Enforcement { datapath, sockmap },
            identities,
        })
    }

    /// The bound address of listener `name` (useful with port 0).
    pub fn listener_addr(&self, name: &str) -> Option<SocketAddr> {
        self.listeners
            .iter()
            .find(|(l, _)| l.name() == name)
            .and_then(|(l, _)| l.local_addr().ok())
    }

    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|(s, _)| s.local_addr().ok())
    }

    /// Serves until `shutdown` is cancelled, then stops accepting and drains in-flight streams
    /// for at most `runtime.shutdown_grace`.
    pub async fn run(self, shutdown: CancellationToken) {
        let tasks = self.live.tasks().clone();
        let admin_stop = CancellationToken::new();
        if let Some((sock, admin)) = self.admin {
            tokio::spawn(admin.run(sock, admin_stop.clone()));
        }
        // Policy files are watched while the datapath enforces them.
        let (mut enforcement, policy_watch) =
            if self.enforcement.datapath.is_some() && !self.config.policies.is_empty() {
                let task = tokio::spawn(policy::watch::run(
                    self.config.clone(),
                    self.identities.clone(),
                    self.enforcement,
                    std::time::Duration::from_secs(1),
                    shutdown.clone(),
                ));
                (None, Some(task))
            } else {
                (Some(self.enforcement), None)
            };
        for (l, chain) in self.listeners {
            self.live.start(l, chain, &shutdown);
        }
        // After the listeners: a reload restarts listeners that run.
        let reloader = self.reloader.map(|r| tokio::spawn(r.run(shutdown.clone())));
        self.ready.store(true, Ordering::Release);
        shutdown.cancelled().await;
        self.ready.store(false, Ordering::Release);
        // A reload under way finishes first (it starts no listener now): then the listeners
        // and filters below are all there are.
        if let Some(r) = reloader {
            let _ = r.await;
        }
        let chains = self.live.chains();
        self.live.join().await;
        tasks.close();
        let grace = self.config.runtime.shutdown_grace;
        tracing::info!(connections = tasks.len(), ?grace, "draining");
        if tokio::time::timeout(grace, tasks.wait()).await.is_err() {
            tracing::warn!(
                connections = tasks.len(),
                "shutdown grace expired; closing remaining connections"
            );
        }
        // The filters' root contexts end (`proxy_on_done`; those with work to finish get up
        // to `wasm.done_timeout` to call `proxy_done`).
        if let Some(runtime) = self.runtime.get() {
            runtime.unload(&chains).await;
        }
        admin_stop.cancel();
        if let Some(task) = policy_watch {
            match task.await {
                Ok(e) => enforcement = Some(e),
                Err(e) => tracing::error!(error = %e, "policy watcher failed"),
            }
        }
        let policy::watch::Enforcement { datapath, sockmap } =
            enforcement.unwrap_or(policy::watch::Enforcement {
                datapath: None,
                sockmap: None,
            });
        // sock_ops detaches with its link; the pinned sockhash keeps spliced connections.
        let had_sockmap = sockmap.is_some();
        drop(sockmap);
        let attached = had_sockmap || datapath.is_some();
        match (datapath, self.config.datapath.on_exit) {
            (Some(dp), config::OnExit::Keep) => dp.keep(),
            (dp, config::OnExit::Detach) if attached => {
                drop(dp);
                match datapath::unload(&self.config.datapath.pin_dir, grace) {
                    Ok(lines) => {
                        for l in lines.iter().filter(|l| l.starts_with("kept")) {
                            tracing::warn!("{l}");
                        }
                        tracing::info!("datapath detached");
                    }
                    Err(e) => tracing::warn!(error = %e, "datapath detach failed"),
                }
            }
            _ => {}
        }
    }
}
