//! The WASM filter host: proxy-wasm ABI 0.2.1 (and 0.2.0 / 0.1.0 modules) on wasmtime.
//!
//! - One [`Runtime`]: one engine (pooling allocator, copy-on-write memory images, epoch
//!   interruption with a ticker every deadline that slows down while idle, `epoch.rs`), shared data, queues, filter metrics, clusters.
//! - One [`vm::Plugin`] per configured filter: the module compiled once, one VM (store) per
//!   async worker reused across requests; a trap, a missed deadline or the memory cap discards
//!   only that VM, and the next stream gets a fresh one.
//! - One [`Chain`] per listener, swapped atomically on reload ([`reload`]); streams keep the
//!   chain they started with, so old VMs drain.
//! - [`StreamFilters`]: one stream's walk through its chain (see `stream.rs`).
//!
//! Host calls live in `abi.rs`; `docs/proxy-wasm.md` lists what is and is not supported.

mod abi;
pub mod builtin;
mod callout;
pub mod check;
pub mod compile;
mod epoch;
mod host;
pub mod reload;
mod shared;
mod stream;
mod unload;
mod vm;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use wasmtime::Linker;

pub use compile::CompileMode;
pub use host::{BodyKind, KafkaRequestInfo, KafkaTopics, LocalReply, RawFields};
pub use stream::{
    BodyOutcome, BodyPause, FilterFailure, Head, Heads, Native, Outcome, RequestLine, RequestSide,
    ResponseSide, StreamFilters, StreamInfo,
};
pub use vm::{AbiVersion, Plugin};

use crate::config::{ClusterConfig, FilterConfig, WasmConfig};
use shared::RuntimeInner;

/// Why a filter could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum WasmError {
    #[error("cannot read WASM module {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not a valid WebAssembly module: {message}", path.display())]
    Compile { path: PathBuf, message: String },
    /// The compiler child process failed (not the module's fault).
    #[error("cannot compile {}: {message}", path.display())]
    Compiler { path: PathBuf, message: String },
    #[error("{} exports no known proxy-wasm ABI version (found {found:?}; strait supports proxy_abi_version_0_2_1, 0_2_0 and 0_1_0)", path.display())]
    Abi { path: PathBuf, found: Vec<String> },
    #[error("{} lacks the export `{export}` every proxy-wasm filter needs", path.display())]
    MissingExport { path: PathBuf, export: String },
    #[error("cannot link {}: {message}", path.display())]
    Link { path: PathBuf, message: String },
    #[error("filter `{filter}` ({}) failed to start: {message}", path.display())]
    Start {
        filter: String,
        path: PathBuf,
        message: String,
    },
    #[error("cannot create the WASM engine: {0}")]
    Engine(String),
}

/// A listener's filters, in order.
#[derive(Default)]
pub struct Chain {
    pub plugins: Vec<Arc<Plugin>>,
}

impl Chain {
    /// Whether some filter of the chain has a callback for this body or its trailers.
    pub fn wants_body(&self, kind: BodyKind) -> bool {
        self.plugins.iter().any(|p| match kind {
            BodyKind::Request => p.request_body_hooks,
            BodyKind::Response => p.response_body_hooks,
        })
    }

    /// Retires the plugins that `next` does not reuse: their timers stop, and their root
    /// contexts end once the streams that started with them have finished (`unload.rs`).
    /// Must run inside the tokio runtime.
    fn retire_unused(&self, next: &Chain) {
        for p in &self.plugins {
            if !next.plugins.iter().any(|n| Arc::ptr_eq(n, p)) {
                p.retired.store(true, Ordering::Relaxed);
                let rt = p.runtime();
                let mut retiring = rt.retiring.lock().unwrap_or_else(|e| e.into_inner());
                retiring.retain(|w| w.strong_count() > 0);
                retiring.push(Arc::downgrade(p));
                tokio::spawn(unload::after_streams(p.clone()));
            }
        }
    }
}

/// The current chain of a listener; requests take a snapshot, reloads swap it.
pub type ChainHandle = Arc<ArcSwap<Chain>>;

/// The filter runtime: engine, linker and shared state. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<RuntimeInner>,
}

impl Runtime {
    /// `workers` is the number of VMs per filter (one per async worker thread); `compile` is
    /// where modules are compiled (the daemon: [`CompileMode::this_binary`]).
    pub fn new(
        settings: &WasmConfig,
        workers: usize,
        clusters: Vec<Arc<ClusterConfig>>,
        compile: CompileMode,
    ) -> Result<Self, WasmError> {
        let engine = compile::engine(
            compile::EngineSettings::of(settings),
            compile == CompileMode::InProcess,
        )?;
        let mut linker = Linker::new(&engine);
        abi::define(&mut linker).map_err(|e| WasmError::Engine(format!("{e:#}")))?;
        let tick = epoch::tick_for(settings.callback_deadline);
        let clock = epoch::EpochClock::start(engine.clone(), tick)
            .map_err(|e| WasmError::Engine(format!("cannot start the epoch ticker: {e}")))?;
        Ok(Self {
            inner: Arc::new(RuntimeInner {
                engine,
                linker,
                settings: settings.clone(),
                compile,
                workers: workers.max(1),
                data: Default::default(),
                queues: Default::default(),
                metrics: Default::default(),
                clusters: ArcSwap::from_pointee(clusters),
                callouts: Default::default(),
                clock,
                vms: AtomicU64::new(0),
                retiring: Default::default(),
            }),
        })
    }

    /// Compiles and starts every filter of a listener. Plugins of `reuse` whose module bytes
    /// and settings are unchanged are kept as they are. Blocking.
    pub fn load_chain(
        &self,
        listener: &str,
        filters: &[FilterConfig],
        reuse: Option<&Chain>,
    ) -> Result<Chain, WasmError> {
        let mut plugins = Vec::with_capacity(filters.len());
        for fc in filters {
            if let Some(old) = reuse.and_then(|c| {
                c.plugins.iter().find(|p| {
                    p.fingerprint.1 == *fc
                        && builtin::read_module(&fc.module)
                            .map(|b| vm::fnv(&b) == p.fingerprint.0)
                            .unwrap_or(false)
                })
            }) {
                plugins.push(old.clone());
                continue;
            }
            let p = Plugin::load(&self.inner, listener, fc)?;
            tracing::info!(
                filter = %fc.name, listener, module = %fc.module.display(),
                abi = p.info.abi.as_str(), vms = p.slots.len(), "filter loaded"
            );
            plugins.push(p);
        }
        Ok(Chain { plugins })
    }

    pub fn set_clusters(&self, clusters: Vec<Arc<ClusterConfig>>) {
        self.inner.clusters.store(Arc::new(clusters));
    }

    /// Filter-defined metrics in OpenMetrics text (no `# EOF`).
    pub fn render_metrics(&self, out: &mut String) {
        self.inner.metrics.render(out);
        out.push_str("# TYPE strait_wasm_vms gauge\n");
        out.push_str(&format!(
            "strait_wasm_vms {}\n",
            self.inner.vms.load(Ordering::Relaxed)
        ));
    }

    /// Unloads every filter, at shutdown: the plugins of `chains` and those a reload retired
    /// that still serve old streams. Each root context gets `proxy_on_done` (and, when the
    /// filter has work to finish, up to `wasm.done_timeout` to call `proxy_done`), then
    /// `proxy_on_delete`.
    pub async fn unload(&self, chains: &[ChainHandle]) {
        let mut plugins: Vec<Arc<Plugin>> = Vec::new();
        let retiring = std::mem::take(
            &mut *self
                .inner
                .retiring
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        let current = chains.iter().flat_map(|c| c.load().plugins.clone());
        for p in current.chain(retiring.iter().filter_map(|w| w.upgrade())) {
            if !plugins.iter().any(|q| Arc::ptr_eq(q, &p)) {
                plugins.push(p);
            }
        }
        let ends = plugins.iter().map(unload::end);
        futures_util::future::join_all(ends).await;
    }

    /// Live VMs across all filters.
    pub fn live_vms(&self) -> u64 {
        self.inner.vms.load(Ordering::Relaxed)
    }

    pub fn settings(&self) -> &WasmConfig {
        &self.inner.settings
    }
}
