//! Hot reload: module files and the config file are polled (and SIGHUP forces a check). A
//! changed filter gets new VMs; streams in flight keep the chain they started with. A module
//! that fails to compile or start is rejected with a log line and the old chain keeps serving.
//! Listeners new in the config start, removed ones stop, and changed ones restart with their
//! new settings (`listener::Live`); transparent listeners and the sections read at start only
//! need a restart of strait, and are reported as such.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use super::{Chain, ChainHandle, Runtime};

/// The filter runtime once there is one, shared by the server (which unloads the filters at
/// shutdown) and the reloader.
pub type RuntimeSlot = Arc<std::sync::OnceLock<Runtime>>;
use crate::config::{Config, ListenerConfig};

/// One listener's chain and the configuration it was built from.
pub struct Watched {
    pub listener: Arc<ListenerConfig>,
    pub chain: ChainHandle,
}

pub struct Reloader {
    /// The filter runtime, created at start when the config has filters or clusters, else by
    /// the first reload that brings some.
    pub runtime: RuntimeSlot,
    /// Where a runtime created by a reload is built from (`wasm` and `runtime.workers` are
    /// read at start only) and compiles its modules.
    pub compile: super::CompileMode,
    /// Told about a runtime created by a reload, for `/metrics`.
    pub metrics: crate::metrics::Metrics,
    /// The config last loaded.
    pub config: Config,
    /// The config strait started with: what the sections read at start only still run on.
    pub started: Config,
    /// The listeners this reloader manages: all but the transparent ones are started,
    /// restarted and stopped as the config says.
    pub listeners: Vec<Watched>,
    pub live: crate::listener::Live,
    pub interval: Duration,
}

type Stamp = Vec<(PathBuf, Option<(SystemTime, u64)>)>;

fn stamp(paths: &[PathBuf]) -> Stamp {
    paths
        .iter()
        .map(|p| {
            let m = std::fs::metadata(p)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len())));
            (p.clone(), m)
        })
        .collect()
}

fn watched_paths(config_file: &Path, cfg: &Config) -> Vec<PathBuf> {
    let mut v = vec![config_file.to_owned()];
    // Listeners' L7 policy is compiled into the built-in policy filter's configuration: a
    // policy file change is a filter change.
    if cfg.listeners.iter().any(|l| {
        l.filters
            .iter()
            .any(|f| super::builtin::name(&f.module).is_some())
    }) {
        v.extend(cfg.policies.iter().cloned());
    }
    for l in &cfg.listeners {
        for f in &l.filters {
            if super::builtin::name(&f.module).is_none() && !v.contains(&f.module) {
                v.push(f.module.clone());
            }
        }
    }
    // Certificate and CA files: a rotated certificate is swapped in, a new CA bundle
    // restarts its listener (clusters take it on the reload).
    let tls_files = cfg.listeners.iter().flat_map(|l| {
        let server = l.tls.as_ref().map(|t| &t.files.paths);
        let upstream = l.upstream_tls.as_ref().map(|t| &t.files.paths);
        server.into_iter().chain(upstream).flatten()
    });
    let cluster_files = cfg
        .clusters
        .iter()
        .filter_map(|c| c.tls.as_ref())
        .flat_map(|t| &t.files.paths);
    for p in tls_files.chain(cluster_files) {
        if !v.contains(p) {
            v.push(p.clone());
        }
    }
    v
}

/// What a reload did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReloadReport {
    pub reloaded: Vec<String>,
    pub rejected: Vec<String>,
    /// Listeners started, restarted or stopped.
    pub listeners: Vec<String>,
}

impl Reloader {
    /// Polls until `shutdown`; SIGHUP forces an immediate check.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!("cannot listen for SIGHUP ({e}); reload by file change only");
                None
            }
        };
        let mut last = stamp(&watched_paths(&self.config.source, &self.config));
        loop {
            let forced = tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = async {
                    match hup.as_mut() {
                        Some(h) => { h.recv().await; }
                        None => std::future::pending::<()>().await,
                    }
                } => true,
                _ = tokio::time::sleep(self.interval) => false,
            };
            let now = stamp(&watched_paths(&self.config.source, &self.config));
            if !forced && now == last {
                continue;
            }
            // Let a writer finish (editors and `cp` write in several steps). The stamp is taken
            // before reading, so a change made during the reload is seen by the next poll.
            tokio::time::sleep(Duration::from_millis(100)).await;
            last = stamp(&watched_paths(&self.config.source, &self.config));
            let report = self.reload(&shutdown).await;
            if !report.reloaded.is_empty()
                || !report.rejected.is_empty()
                || !report.listeners.is_empty()
                || forced
            {
                tracing::info!(reloaded = ?report.reloaded, rejected = ?report.rejected, listeners = ?report.listeners, forced, "reload finished");
            }
            // A reload can change the set of module files: watch the new ones from now on.
            let after = watched_paths(&self.config.source, &self.config);
            if after.len() != last.len() || after.iter().zip(&last).any(|(a, (b, _))| a != b) {
                last = stamp(&after);
            }
        }
    }

    /// Re-reads the config file, rebuilds the chains whose filters changed, and starts,
    /// restarts and stops listeners as the config now says.
    pub async fn reload(&mut self, shutdown: &CancellationToken) -> ReloadReport {
        let mut report = ReloadReport::default();
        let cfg = match Config::load(&self.config.source) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("config reload rejected, strait serves on with the config it has (filters, listeners, certificates):\n{e}");
                report.rejected.push(format!("config: {e}"));
                return report;
            }
        };
        self.notices(&cfg);
        let runtime = match self.runtime.get() {
            Some(rt) => Some(rt.clone()),
            // Still no filters to run.
            None if cfg.clusters.is_empty()
                && cfg.listeners.iter().all(|l| l.filters.is_empty()) =>
            {
                None
            }
            None => match Runtime::new(
                &self.started.wasm,
                self.started.runtime.workers,
                cfg.clusters.clone(),
                self.compile.clone(),
            ) {
                Ok(rt) => {
                    tracing::info!(
                        "filter runtime started: the config now has filters or clusters"
                    );
                    self.metrics.set_wasm(rt.clone());
                    Some(self.runtime.get_or_init(|| rt).clone())
                }
                Err(e) => {
                    tracing::error!("config reload rejected, cannot start the filter runtime: {e}");
                    report.rejected.push(format!("runtime: {e}"));
                    return report;
                }
            },
        };
        if let Some(rt) = &runtime {
            rt.set_clusters(cfg.clusters.clone());
        }
        // Listeners new in the config (transparent ones excepted, see `notices`) start with an
        // empty chain, which the filter pass below fills.
        let mut fresh: Vec<Watched> = cfg
            .listeners
            .iter()
            .filter(|l| {
                !l.upstream.is_transparent()
                    && !self.listeners.iter().any(|w| w.listener.name == l.name)
            })
            .map(|l| Watched {
                listener: l.clone(),
                chain: empty(),
            })
            .collect();
        // Listeners that move to another address get their new socket before anything else of
        // theirs changes: if it cannot be bound, the listener's whole change (its filters too)
        // is rejected, and it serves on as it was.
        let mut moved: Vec<crate::listener::Listener> = Vec::new();
        let mut held: Vec<String> = Vec::new();
        for w in &self.listeners {
            let Some(l) = cfg.listeners.iter().find(|l| l.name == w.listener.name) else {
                continue;
            };
            if !listener_changed(&w.listener, l)
                || w.listener.upstream.is_transparent()
                || l.upstream.is_transparent()
                || self.live.keeps_socket(l)
            {
                continue;
            }
            match self.live.bind(l.clone(), w.chain.clone()) {
                Ok(s) => moved.push(s),
                Err(e) => {
                    tracing::error!(listener = %l.name, "listener change rejected, it serves on as it was: {e}");
                    report.rejected.push(format!("{}: {e}", l.name));
                    held.push(l.name.clone());
                }
            }
        }
        // Listeners whose filters failed to load: a new one does not start without them, and
        // a changed one keeps its old settings with its old filters.
        let mut failed: Vec<String> = Vec::new();
        for l in cfg.listeners.iter().filter(|l| !held.contains(&l.name)) {
            let Some(w) = self
                .listeners
                .iter_mut()
                .chain(fresh.iter_mut())
                .find(|w| w.listener.name == l.name)
            else {
                continue;
            };
            let old = w.chain.load_full();
            let unchanged = l.filters.len() == old.plugins.len()
                && l.filters.iter().zip(&old.plugins).all(|(f, p)| {
                    p.fingerprint.1 == *f
                        && super::builtin::read_module(&f.module)
                            .map(|b| super::vm::fnv(&b) == p.fingerprint.0)
                            .unwrap_or(false)
                });
            if unchanged {
                continue;
            }
            // A listener with filters means there is a runtime (it was created above).
            let Some(rt) = runtime.clone() else { continue };
            let (name, filters, prev) = (l.name.clone(), l.filters.clone(), old.clone());
            let built =
                tokio::task::spawn_blocking(move || rt.load_chain(&name, &filters, Some(&prev)))
                    .await;
            match built {
                Ok(Ok(chain)) => {
                    old.retire_unused(&chain);
                    w.chain.store(Arc::new(chain));
                    tracing::info!(listener = %l.name, filters = l.filters.len(), "filters reloaded");
                    report.reloaded.push(l.name.clone());
                }
                Ok(Err(e)) => {
                    tracing::error!(listener = %l.name, "filter reload rejected, the old filters keep serving: {e}");
                    report.rejected.push(format!("{}: {e}", l.name));
                    failed.push(l.name.clone());
                }
                Err(e) => {
                    tracing::error!(listener = %l.name, "filter reload task failed: {e}");
                    report.rejected.push(format!("{}: {e}", l.name));
                    failed.push(l.name.clone());
                }
            }
        }
        fresh.retain(|w| {
            let ok = !failed.contains(&w.listener.name);
            if !ok {
                tracing::error!(listener = %w.listener.name, "new listener not started: its filters did not load");
            }
            ok
        });
        self.apply_listeners(&cfg, fresh, moved, &failed, &mut report, shutdown)
            .await;
        self.config = cfg;
        report
    }

    /// Stops the listeners gone from `cfg`, restarts those whose settings changed (on the
    /// sockets in `moved` when their address changed), and starts `fresh` (the new ones).
    /// Transparent listeners are left as they run (`notices`); so are listeners whose new
    /// filters `failed`. Nothing starts once strait shuts down.
    async fn apply_listeners(
        &mut self,
        cfg: &Config,
        fresh: Vec<Watched>,
        mut moved: Vec<crate::listener::Listener>,
        failed: &[String],
        report: &mut ReloadReport,
        shutdown: &CancellationToken,
    ) {
        if shutdown.is_cancelled() {
            for w in fresh {
                w.chain.load_full().retire_unused(&Chain::default());
            }
            return;
        }
        let mut kept = Vec::with_capacity(self.listeners.len());
        for w in std::mem::take(&mut self.listeners) {
            let name = &w.listener.name;
            if w.listener.upstream.is_transparent() || cfg.listeners.iter().any(|l| &l.name == name)
            {
                kept.push(w);
                continue;
            }
            self.live.stop(name).await;
            w.chain.load_full().retire_unused(&Chain::default());
            tracing::info!(listener = %name, "listener stopped: it is no longer in the config (its open connections finish the requests in flight)");
            report.listeners.push(format!("stopped {name}"));
        }
        self.listeners = kept;
        for w in &mut self.listeners {
            let Some(l) = cfg.listeners.iter().find(|l| l.name == w.listener.name) else {
                continue;
            };
            // A rotated certificate goes in first, whatever else changed: also when the rest
            // of the change waits for a restart (transparent) or is rejected below.
            if self.live.rotate_tls(l) {
                tracing::info!(listener = %l.name, "TLS certificate reloaded: new handshakes use it, open connections keep the one they have");
                report
                    .listeners
                    .push(format!("certificate reloaded {}", l.name));
            }
            if !listener_changed(&w.listener, l) {
                w.listener = l.clone();
                continue;
            }
            if w.listener.upstream.is_transparent() || l.upstream.is_transparent() {
                continue;
            }
            let socket = moved
                .iter()
                .position(|m| m.name() == l.name)
                .map(|i| moved.swap_remove(i));
            if failed.contains(&l.name) {
                tracing::error!(listener = %l.name, "listener change rejected, it serves on as it was: its new filters did not load");
                continue;
            }
            if socket.is_none() && !self.live.keeps_socket(l) {
                // Its new address could not be bound (logged above).
                continue;
            }
            match self
                .live
                .replace(l.clone(), w.chain.clone(), socket, shutdown)
                .await
            {
                Ok(()) => {
                    tracing::info!(listener = %l.name, "listener restarted with its new settings (open connections finish on the old ones)");
                    report.listeners.push(format!("restarted {}", l.name));
                    w.listener = l.clone();
                }
                Err(e) => {
                    tracing::error!(listener = %l.name, "listener change rejected, it serves on as it was: {e}");
                    report.rejected.push(format!("{}: {e}", l.name));
                }
            }
        }
        for w in fresh {
            match self.live.bind(w.listener.clone(), w.chain.clone()) {
                Ok(l) => {
                    self.live.start(l, w.chain.clone(), shutdown);
                    tracing::info!(listener = %w.listener.name, "listener started: new in the config");
                    report
                        .listeners
                        .push(format!("started {}", w.listener.name));
                    self.listeners.push(w);
                }
                Err(e) => {
                    tracing::error!(listener = %w.listener.name, "new listener not started: {e}");
                    report.rejected.push(format!("{}: {e}", w.listener.name));
                    w.chain.load_full().retire_unused(&Chain::default());
                }
            }
        }
    }

    /// What a reload cannot apply: sections read at start only, and transparent listeners
    /// (new, changed or removed). Against what runs: a file put back to it is quiet, one still
    /// off is named again.
    fn notices(&self, cfg: &Config) {
        for section in sections_changed(&self.started, cfg) {
            tracing::warn!(
                section,
                "config section `{section}` changed: it is read at start only; restart strait to apply it"
            );
        }
        for l in &cfg.listeners {
            match self.listeners.iter().find(|w| w.listener.name == l.name) {
                None if l.upstream.is_transparent() => {
                    tracing::warn!(listener = %l.name, "new transparent listener in the config: restart strait to start it (the datapath registers transparent listeners at start)");
                }
                Some(w)
                    if listener_changed(&w.listener, l)
                        && (w.listener.upstream.is_transparent()
                            || l.upstream.is_transparent()) =>
                {
                    tracing::warn!(listener = %l.name, "transparent listener settings changed: only filters are reloaded live; restart strait to apply the rest");
                }
                _ => {}
            }
        }
        for w in &self.listeners {
            if w.listener.upstream.is_transparent()
                && !cfg.listeners.iter().any(|l| l.name == w.listener.name)
            {
                tracing::warn!(listener = %w.listener.name, "transparent listener removed from the config: it keeps serving until strait restarts");
            }
        }
    }
}

/// The sections read at start only that differ between `a` and `b`.
fn sections_changed(a: &Config, b: &Config) -> Vec<&'static str> {
    [
        ("admin", a.admin != b.admin),
        ("runtime", a.runtime != b.runtime),
        ("flows", a.flows != b.flows),
        ("wasm", a.wasm != b.wasm),
        ("endpoints", a.endpoints != b.endpoints),
        ("datapath", a.datapath != b.datapath),
        ("sockmap", a.sockmap != b.sockmap),
    ]
    .into_iter()
    .filter_map(|(name, changed)| changed.then_some(name))
    .collect()
}

/// Whether a listener's settings other than its filters changed (those need a restart).
/// Server TLS is compared by presence only: a new certificate (other files, or new contents)
/// is swapped in live (`Live::rotate_tls`). Upstream TLS by its server name and CA files.
fn listener_changed(a: &ListenerConfig, b: &ListenerConfig) -> bool {
    let upstream_tls = |l: &ListenerConfig| {
        l.upstream_tls
            .as_ref()
            .map(|t| (t.server_name.clone(), t.files.clone()))
    };
    a.address != b.address
        || a.protocol != b.protocol
        || a.upstream != b.upstream
        || a.upstream_protocol != b.upstream_protocol
        || a.http1_engine != b.http1_engine
        || a.timeouts != b.timeouts
        || a.max_header_bytes != b.max_header_bytes
        || a.kafka != b.kafka
        || a.tls.is_some() != b.tls.is_some()
        || upstream_tls(a) != upstream_tls(b)
}

/// An empty chain for listeners without filters.
pub fn empty() -> ChainHandle {
    Arc::new(arc_swap::ArcSwap::from_pointee(Chain::default()))
}
