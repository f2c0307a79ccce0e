//! Plugins (a compiled filter with its configuration) and their VMs: one per async worker,
//! reused across requests, replaced after a trap or a missed deadline.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use wasmtime::{InstancePre, Store, Trap, TypedFunc, WasmParams, WasmResults};

use super::host::{HostState, Outbound, RootEnd};
use super::shared::RuntimeInner;
use super::WasmError;
use crate::config::{FailurePolicy, FilterConfig};

/// Which proxy-wasm ABI a module was built for (from its `proxy_abi_version_*` export).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AbiVersion {
    V0_1_0,
    V0_2_0,
    V0_2_1,
}

impl AbiVersion {
    pub fn from_exports<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<Self> {
        let mut found = None;
        for n in names {
            let v = match n {
                "proxy_abi_version_0_2_1" => Self::V0_2_1,
                "proxy_abi_version_0_2_0" => Self::V0_2_0,
                "proxy_abi_version_0_1_0" => Self::V0_1_0,
                _ => continue,
            };
            found = Some(found.map_or(v, |f: Self| if v as u8 > f as u8 { v } else { f }));
        }
        found
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::V0_1_0 => "0.1.0",
            Self::V0_2_0 => "0.2.0",
            Self::V0_2_1 => "0.2.1",
        }
    }
}

/// What a filter is, independent of its VMs.
#[derive(Debug)]
pub struct PluginInfo {
    pub name: Arc<str>,
    pub listener: String,
    pub failure: FailurePolicy,
    pub root_id: String,
    pub vm_id: String,
    pub config: Bytes,
    pub vm_config: Bytes,
    pub module: PathBuf,
    pub abi: AbiVersion,
}

type F1 = TypedFunc<u32, ()>;
type F2 = TypedFunc<(u32, u32), ()>;
type F3 = TypedFunc<(u32, u32, u32), ()>;
type A2 = TypedFunc<(u32, u32), u32>;
type A3 = TypedFunc<(u32, u32, u32), u32>;
type F5 = TypedFunc<(u32, u32, u32, u32, u32), ()>;

/// Headers callbacks changed arity in ABI 0.2.0 (`end_of_stream` added).
#[derive(Clone)]
pub enum HeadersFn {
    V2(A3),
    V1(A2),
}

/// The callbacks a VM exports (missing optional ones behave as "continue").
#[derive(Clone)]
pub struct Exports {
    pub context_create: F2,
    pub vm_start: Option<A2>,
    pub configure: Option<A2>,
    pub request_headers: Option<HeadersFn>,
    pub request_body: Option<A3>,
    pub request_trailers: Option<A2>,
    pub response_headers: Option<HeadersFn>,
    pub response_body: Option<A3>,
    pub response_trailers: Option<A2>,
    pub on_log: Option<F1>,
    pub on_done: Option<TypedFunc<u32, u32>>,
    pub on_delete: Option<F1>,
    pub on_tick: Option<F1>,
    pub on_queue_ready: Option<F2>,
    pub http_call_response: Option<F5>,
    pub grpc_receive: Option<F3>,
    pub grpc_close: Option<F3>,
    /// strait's Kafka extension (`docs/proxy-wasm.md`).
    pub kafka_request: Option<TypedFunc<u32, u32>>,
}

/// One instance of a filter module with its own linear memory.
pub struct Vm {
    pub store: Store<HostState>,
    /// Shared by the VMs of one plugin (cloning `TypedFunc`s goes through wasmtime's type
    /// registry: ~50 ns each). Callbacks borrow from it with [`Vm::call_export`].
    pub f: Arc<Exports>,
    pub root: u32,
    pub incarnation: u64,
    next_ctx: u32,
    deadline: Duration,
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.store.data().rt.vms.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Vm {
    /// Calls `f` under the callback deadline. `Err` carries why the VM must be discarded.
    pub fn call<P: WasmParams, R: WasmResults>(
        &mut self,
        f: &TypedFunc<P, R>,
        p: P,
    ) -> Result<R, String> {
        arm(&mut self.store, self.deadline);
        let r = f.call(&mut self.store, p);
        self.finish(r)
    }

    /// Calls the export `pick` chooses, `None` when the module lacks it. The function is
    /// borrowed from `f` while the store is borrowed mutably: no clone, no refcount.
    pub fn call_export<P: WasmParams, R: WasmResults>(
        &mut self,
        pick: impl FnOnce(&Exports) -> Option<&TypedFunc<P, R>>,
        p: P,
    ) -> Option<Result<R, String>> {
        let f = pick(&self.f)?;
        arm(&mut self.store, self.deadline);
        let r = f.call(&mut self.store, p);
        Some(self.finish(r))
    }

    /// `proxy_on_request_headers` (`request`) or `proxy_on_response_headers`, either arity;
    /// `None` when the module lacks it.
    pub fn headers(
        &mut self,
        request: bool,
        ctx: u32,
        n: u32,
        eos: bool,
    ) -> Option<Result<u32, String>> {
        let f = if request {
            self.f.request_headers.as_ref()
        } else {
            self.f.response_headers.as_ref()
        }?;
        arm(&mut self.store, self.deadline);
        let r = match f {
            HeadersFn::V2(f) => f.call(&mut self.store, (ctx, n, eos as u32)),
            HeadersFn::V1(f) => f.call(&mut self.store, (ctx, n)),
        };
        Some(self.finish(r))
    }

    /// After a call: the guest's stdout goes to the log; a fault the host recorded wins.
    fn finish<R>(&mut self, r: wasmtime::Result<R>) -> Result<R, String> {
        self.flush_stdout();
        match r {
            Ok(v) => match self.store.data_mut().fault.take() {
                Some(f) => Err(f),
                None => Ok(v),
            },
            Err(e) => Err(self.describe(e)),
        }
    }

    fn describe(&mut self, e: wasmtime::Error) -> String {
        let st = self.store.data_mut();
        if let Some(f) = st.fault.take() {
            return f;
        }
        if let Some(n) = st.limiter.refused {
            return format!(
                "memory limit of {} MiB exceeded (the guest asked for {} MiB) and the guest aborted",
                st.limiter.max >> 20,
                n >> 20
            );
        }
        if let Some(t) = e.downcast_ref::<Trap>() {
            if *t == Trap::Interrupt {
                return format!(
                    "callback ran past its deadline of {:?} and was interrupted",
                    st.rt.settings.callback_deadline
                );
            }
            return format!("trap: {t}");
        }
        let s = format!("{e:#}");
        format!("failed: {}", s.lines().next().unwrap_or("unknown error"))
    }

    fn flush_stdout(&mut self) {
        let st = self.store.data_mut();
        if st.stdout.is_empty() {
            return;
        }
        let out = std::mem::take(&mut st.stdout);
        for line in String::from_utf8_lossy(&out).lines() {
            tracing::info!(filter = %st.plugin.name, listener = %st.plugin.listener, "{line}");
        }
    }

    pub fn new_context(&mut self) -> u32 {
        self.next_ctx = self.next_ctx.wrapping_add(1).max(2);
        self.next_ctx
    }
}

/// A VM slot: one per async worker.
pub struct VmSlot {
    pub vm: Mutex<Option<Vm>>,
    next_incarnation: AtomicU64,
    /// The id of the slot's live ticker task (0: none). A new tick period starts a new
    /// ticker, and the old one (maybe asleep for the old period) ends when it sees the id
    /// change, so a new period applies at once, as under Envoy.
    ticker: AtomicU64,
    ticker_seq: AtomicU64,
}

/// A loaded filter: its compiled module, its configuration and its VMs.
pub struct Plugin {
    pub info: Arc<PluginInfo>,
    pre: InstancePre<HostState>,
    rt: Arc<RuntimeInner>,
    pub slots: Box<[VmSlot]>,
    /// Set when a reload replaced this plugin: timers stop, streams in flight finish.
    pub retired: AtomicBool,
    /// Set when its root contexts' end began (`unload.rs`): no replacement VMs any more.
    pub unloading: AtomicBool,
    /// Set when that end is over.
    pub unloaded: AtomicBool,
    /// Module bytes and settings, to tell whether a reload changes anything.
    pub fingerprint: (u64, FilterConfig),
    /// The module exports a request (response) body or trailers callback. When no filter of
    /// a chain does, the request path does not run that body through the chain at all.
    pub request_body_hooks: bool,
    pub response_body_hooks: bool,
    /// The module exports `proxy_on_response_headers`. When it does not, response heads skip
    /// this filter without locking its VM (strait-sdk filters built with
    /// `export_filter!(T, requests_only)` leave it out).
    pub response_headers_hook: bool,
}

thread_local! {
    static WORKER: usize = next_worker();
}

fn next_worker() -> usize {
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed) as usize
}

/// The VM slot the current thread uses.
pub fn worker_slot(n: usize) -> usize {
    WORKER.with(|w| *w) % n.max(1)
}

fn ticks(d: Duration) -> u64 {
    // The epoch advances every millisecond; one extra tick so a deadline is never cut short.
    d.as_millis() as u64 + 1
}

/// Starts the deadline of one callback (no clock read: the epoch clock's count).
fn arm(store: &mut Store<HostState>, deadline: Duration) {
    let st = store.data_mut();
    st.budget = deadline;
    st.call_start_ms = st.rt.clock.enter();
    st.cpu_mark = None;
    store.set_epoch_deadline(ticks(deadline));
}

/// Called when a callback's wall-clock deadline passes. The deadline is meant as CPU time:
/// a worker thread that was descheduled (a busy 2-core machine compiling a module) must not
/// kill an innocent filter. So the first expiry only samples the thread's CPU clock and grants
/// another window; the callback is interrupted when it kept the CPU busy for at least half of
/// a window, or after a hard wall-clock limit. Each expiry is noticed up to one epoch tick
/// (one deadline) late, so a spinning guest stops within ~4x the deadline.
fn on_deadline(st: &mut HostState) -> wasmtime::UpdateDeadline {
    let budget = st.budget;
    let hard = (budget * 100).max(Duration::from_secs(2));
    let ran_ms = st.rt.clock.now_ms().saturating_sub(st.call_start_ms);
    if u128::from(ran_ms) >= hard.as_millis() {
        return wasmtime::UpdateDeadline::Interrupt;
    }
    let now = cpu_time::ThreadTime::try_now()
        .ok()
        .map(|t| t.as_duration());
    let busy = match (st.cpu_mark, now) {
        (Some(prev), Some(now)) => now.saturating_sub(prev) >= budget / 2,
        (Some(_), None) => true,
        (None, _) => false,
    };
    if busy {
        return wasmtime::UpdateDeadline::Interrupt;
    }
    st.cpu_mark = now;
    wasmtime::UpdateDeadline::Continue(ticks(budget))
}

impl Plugin {
    /// Compiles `fc.module` and starts one VM per worker (`on_vm_start`, `on_configure`).
    /// Blocking: call it off the async workers.
    pub fn load(
        rt: &Arc<RuntimeInner>,
        listener: &str,
        fc: &FilterConfig,
    ) -> Result<Arc<Self>, WasmError> {
        let bytes = super::builtin::read_module(&fc.module).map_err(|source| WasmError::Read {
            path: fc.module.clone(),
            source,
        })?;
        let module = super::compile::compile(
            &rt.engine,
            &rt.compile,
            super::compile::EngineSettings::of(&rt.settings),
            &rt.settings.artifact_dir,
            &fc.module,
            &bytes,
        )?;
        let abi =
            AbiVersion::from_exports(module.exports().map(|e| e.name())).ok_or_else(|| {
                WasmError::Abi {
                    path: fc.module.clone(),
                    found: module
                        .exports()
                        .map(|e| e.name().to_owned())
                        .filter(|n| n.starts_with("proxy_abi_version_"))
                        .collect(),
                }
            })?;
        for need in ["memory", "proxy_on_context_create"] {
            if module.get_export(need).is_none() {
                return Err(WasmError::MissingExport {
                    path: fc.module.clone(),
                    export: need.into(),
                });
            }
        }
        if module.get_export("proxy_on_memory_allocate").is_none()
            && module.get_export("malloc").is_none()
        {
            return Err(WasmError::MissingExport {
                path: fc.module.clone(),
                export: "proxy_on_memory_allocate (or malloc)".into(),
            });
        }
        let mut linker = rt.linker.clone();
        let missing = super::check::missing_imports(&rt.linker, &module);
        if !missing.is_empty() {
            tracing::warn!(
                filter = %fc.name, listener, module = %fc.module.display(), imports = ?missing,
                "module imports functions strait does not provide; they trap if called"
            );
        }
        linker
            .define_unknown_imports_as_traps(&module)
            .map_err(|e| WasmError::Link {
                path: fc.module.clone(),
                message: format!("{e:#}"),
            })?;
        let pre = linker
            .instantiate_pre(&module)
            .map_err(|e| WasmError::Link {
                path: fc.module.clone(),
                message: format!("{e:#}"),
            })?;
        let info = Arc::new(PluginInfo {
            name: fc.name.as_str().into(),
            listener: listener.to_owned(),
            failure: fc.failure,
            root_id: fc.root_id.clone(),
            vm_id: fc.vm_id.clone(),
            config: Bytes::from(fc.config.clone()),
            vm_config: Bytes::from(fc.vm_config.clone()),
            module: fc.module.clone(),
            abi,
        });
        let slots = (0..rt.workers.max(1))
            .map(|_| VmSlot {
                vm: Mutex::new(None),
                next_incarnation: AtomicU64::new(1),
                ticker: AtomicU64::new(0),
                ticker_seq: AtomicU64::new(0),
            })
            .collect();
        let exports = |names: [&str; 2]| names.iter().any(|n| module.get_export(n).is_some());
        let plugin = Arc::new(Plugin {
            request_body_hooks: exports(["proxy_on_request_body", "proxy_on_request_trailers"]),
            response_body_hooks: exports(["proxy_on_response_body", "proxy_on_response_trailers"]),
            response_headers_hook: module.get_export("proxy_on_response_headers").is_some(),
            info,
            pre,
            rt: rt.clone(),
            slots,
            retired: AtomicBool::new(false),
            unloading: AtomicBool::new(false),
            unloaded: AtomicBool::new(false),
            fingerprint: (fnv(&bytes), fc.clone()),
        });
        for i in 0..plugin.slots.len() {
            let vm = plugin.instantiate(i)?;
            let mut g = plugin.lock(i);
            *g = Some(vm);
            plugin.after_callback(&mut g);
        }
        Ok(plugin)
    }

    pub fn runtime(&self) -> Arc<RuntimeInner> {
        self.rt.clone()
    }

    pub fn lock(&self, slot: usize) -> MutexGuard<'_, Option<Vm>> {
        self.slots[slot]
            .vm
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// A fresh VM: instantiate, `_initialize`, root context, `on_vm_start`, `on_configure`.
    pub fn instantiate(self: &Arc<Self>, slot: usize) -> Result<Vm, WasmError> {
        let live = self.rt.vms.fetch_add(1, Ordering::Relaxed);
        let incarnation = self.slots[slot]
            .next_incarnation
            .fetch_add(1, Ordering::Relaxed);
        let state = HostState::new(
            self.info.clone(),
            self.rt.clone(),
            Arc::downgrade(self),
            slot,
            incarnation,
        );
        let mut store = Store::new(&self.rt.engine, state);
        // From here on `Vm::drop` (or this guard) gives the count back.
        if live >= u64::from(self.rt.settings.max_vms) {
            self.rt.vms.fetch_sub(1, Ordering::Relaxed);
            return Err(self.err(format!("too many live VMs ({live}); raise `wasm.max_vms`")));
        }
        store.limiter(|s| &mut s.limiter);
        store.epoch_deadline_callback(|mut ctx| Ok(on_deadline(ctx.data_mut())));
        // Start-up work (parsing configuration) gets a generous deadline.
        let startup = self
            .rt
            .settings
            .callback_deadline
            .max(Duration::from_secs(1));
        arm(&mut store, startup);
        let fail = |store: &Store<HostState>, what: &str, e: wasmtime::Error| {
            store.data().rt.vms.fetch_sub(1, Ordering::Relaxed);
            let mut m = format!("{what}: {e:#}");
            if let Some(f) = &store.data().fault {
                m = format!("{what}: {f}");
            }
            self.err(m)
        };
        let inst = match self.pre.instantiate(&mut store) {
            Ok(i) => i,
            Err(e) => return Err(fail(&store, "instantiation failed", e)),
        };
        let memory = inst.get_memory(&mut store, "memory");
        let alloc = inst
            .get_typed_func::<u32, u32>(&mut store, "proxy_on_memory_allocate")
            .or_else(|_| inst.get_typed_func::<u32, u32>(&mut store, "malloc"));
        let (memory, alloc) = match (memory, alloc) {
            (Some(m), Ok(a)) => (m, a),
            (None, _) => {
                store.data().rt.vms.fetch_sub(1, Ordering::Relaxed);
                return Err(self.err("module exports no linear memory named `memory`".into()));
            }
            (_, Err(e)) => return Err(fail(&store, "allocator export has the wrong type", e)),
        };
        store.data_mut().memory = Some(memory);
        store.data_mut().alloc = Some(Arc::new(alloc));
        // As Envoy: a WASI reactor gets `_initialize`, then `main(0, 0)` when it exports one
        // (where some toolchains' modules set their SDK up); a command gets `_start`.
        // `proc_exit(0)` is a normal end of either.
        let ended = |store: &mut Store<HostState>, r: wasmtime::Result<()>, what: &str| match r {
            Err(_) if store.data().fault.as_deref() == Some("proc_exit(0)") => {
                store.data_mut().fault = None;
                Ok(())
            }
            Err(e) => Err(fail(store, what, e)),
            Ok(()) => Ok(()),
        };
        if let Some(f) = optional_export::<(), ()>(&inst, &mut store, "_initialize") {
            let r = f.call(&mut store, ());
            ended(&mut store, r, "_initialize")?;
            if let Some(main) = inst.get_func(&mut store, "main") {
                let main = match main.typed::<(i32, i32), i32>(&store) {
                    Ok(m) => m,
                    Err(e) => {
                        return Err(fail(
                            &store,
                            "export `main` has the wrong type (a reactor's `main` is called \
                             as `main(argc: i32, argv: i32) -> i32`)",
                            e,
                        ))
                    }
                };
                let r = main.call(&mut store, (0, 0)).map(drop);
                ended(&mut store, r, "main")?;
            }
        } else if let Some(f) = optional_export::<(), ()>(&inst, &mut store, "_start") {
            let r = f.call(&mut store, ());
            ended(&mut store, r, "_start")?;
        }
        macro_rules! opt {
            ($name:literal) => {
                optional_export(&inst, &mut store, $name)
            };
        }
        let headers = |store: &mut Store<HostState>, name: &str| {
            let f = inst.get_func(&mut *store, name)?;
            f.typed::<(u32, u32, u32), u32>(&*store)
                .map(HeadersFn::V2)
                .or_else(|_| f.typed::<(u32, u32), u32>(&*store).map(HeadersFn::V1))
                .ok()
        };
        let context_create =
            match inst.get_typed_func::<(u32, u32), ()>(&mut store, "proxy_on_context_create") {
                Ok(f) => f,
                Err(e) => return Err(fail(&store, "proxy_on_context_create", e)),
            };
        let f = Exports {
            context_create,
            vm_start: opt!("proxy_on_vm_start"),
            configure: opt!("proxy_on_configure"),
            request_headers: headers(&mut store, "proxy_on_request_headers"),
            request_body: opt!("proxy_on_request_body"),
            request_trailers: opt!("proxy_on_request_trailers"),
            response_headers: headers(&mut store, "proxy_on_response_headers"),
            response_body: opt!("proxy_on_response_body"),
            response_trailers: opt!("proxy_on_response_trailers"),
            on_log: opt!("proxy_on_log"),
            on_done: opt!("proxy_on_done"),
            on_delete: opt!("proxy_on_delete"),
            on_tick: opt!("proxy_on_tick"),
            on_queue_ready: opt!("proxy_on_queue_ready"),
            http_call_response: opt!("proxy_on_http_call_response"),
            grpc_receive: opt!("proxy_on_grpc_receive"),
            grpc_close: opt!("proxy_on_grpc_close"),
            kafka_request: opt!("strait_on_kafka_request"),
        };
        let mut vm = Vm {
            store,
            f: Arc::new(f),
            root: 1,
            incarnation,
            next_ctx: 1,
            deadline: startup,
        };
        vm.store.data_mut().root = 1;
        vm.store.data_mut().effective = 1;
        let f = vm.f.clone();
        vm.call(&f.context_create, (1, 0))
            .map_err(|m| self.err(format!("proxy_on_context_create (root): {m}")))?;
        if let Some(start) = &f.vm_start {
            let ok = vm
                .call(start, (1, self.info.vm_config.len() as u32))
                .map_err(|m| self.err(format!("proxy_on_vm_start: {m}")))?;
            if ok == 0 {
                return Err(
                    self.err("proxy_on_vm_start returned false (VM configuration refused)".into())
                );
            }
        }
        if let Some(configure) = &f.configure {
            let ok = vm
                .call(configure, (1, self.info.config.len() as u32))
                .map_err(|m| self.err(format!("proxy_on_configure: {m}")))?;
            if ok == 0 {
                return Err(self.err(
                    "proxy_on_configure returned false (plugin configuration refused)".into(),
                ));
            }
        }
        vm.deadline = self.rt.settings.callback_deadline;
        Ok(vm)
    }

    fn err(&self, message: String) -> WasmError {
        WasmError::Start {
            filter: self.info.name.to_string(),
            path: self.info.module.clone(),
            message,
        }
    }

    /// The VM of `slot`, created if the previous one was discarded.
    pub fn ensure<'g>(
        self: &Arc<Self>,
        g: &'g mut MutexGuard<'_, Option<Vm>>,
        slot: usize,
    ) -> Result<&'g mut Vm, String> {
        if g.is_none() {
            if self.unloading.load(Ordering::Relaxed) {
                return Err("the filter is being unloaded".to_owned());
            }
            let vm = self.instantiate(slot).map_err(|e| e.to_string())?;
            tracing::info!(filter = %self.info.name, listener = %self.info.listener, slot, "started a replacement VM");
            **g = Some(vm);
            self.after_callback(g);
        }
        g.as_mut().ok_or_else(|| "no VM".to_owned())
    }

    /// Discards the VM in `g` after a fault: its paused streams are woken to find it gone.
    pub fn kill(&self, g: &mut MutexGuard<'_, Option<Vm>>, reason: &str) {
        if let Some(vm) = g.take() {
            tracing::warn!(
                filter = %self.info.name, listener = %self.info.listener,
                module = %self.info.module.display(), slot = vm.store.data().slot,
                "filter VM discarded: {reason}"
            );
            for s in vm.store.data().streams.values() {
                s.info.wake.all();
            }
        }
    }

    /// Starts what the last callback asked for: outbound calls, queue notifications, a timer.
    pub fn after_callback(&self, g: &mut MutexGuard<'_, Option<Vm>>) {
        let Some(vm) = g.as_mut() else { return };
        let st = vm.store.data_mut();
        if st.pending.is_empty() && !st.tick_changed {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            // Outside a runtime (`strait check`): nothing is started.
            st.pending.clear();
            return;
        };
        let pending = std::mem::take(&mut st.pending);
        let (owner, slot, inc) = (st.owner.clone(), st.slot, st.incarnation);
        for p in pending {
            match p {
                Outbound::QueueReady { queue } => {
                    let owners = st.rt.queues.owners(queue);
                    if !owners.is_empty() {
                        handle.spawn(super::callout::queue_ready(owners, queue));
                    }
                }
                call => {
                    handle.spawn(super::callout::run(owner.clone(), slot, inc, call));
                }
            }
        }
        if std::mem::take(&mut st.tick_changed) {
            let s = &self.slots[slot];
            if st.tick_period.is_some() {
                let id = s.ticker_seq.fetch_add(1, Ordering::Relaxed) + 1;
                s.ticker.store(id, Ordering::Relaxed);
                handle.spawn(ticker(owner, slot, inc, id));
            } else {
                s.ticker.store(0, Ordering::Relaxed);
            }
        }
    }
}

/// Calls `proxy_on_tick` on one VM every tick period until the VM or its plugin goes away,
/// or a newer ticker (a new period) replaces this one, `id`.
async fn ticker(plugin: std::sync::Weak<Plugin>, slot: usize, inc: u64, id: u64) {
    // Checked under the slot lock, which `after_callback` holds when it starts a ticker.
    let live = |p: &Plugin| p.slots[slot].ticker.load(Ordering::Relaxed) == id;
    let stop = |p: &Plugin| {
        let _ = p.slots[slot]
            .ticker
            .compare_exchange(id, 0, Ordering::Relaxed, Ordering::Relaxed);
    };
    loop {
        let period = {
            let Some(p) = plugin.upgrade() else { return };
            let g = p.lock(slot);
            if !live(&p) {
                return;
            }
            match g.as_ref() {
                Some(vm) if vm.incarnation == inc => vm.store.data().tick_period,
                _ => None,
            }
        };
        let Some(period) = period else {
            if let Some(p) = plugin.upgrade() {
                stop(&p);
            }
            return;
        };
        tokio::time::sleep(period).await;
        let Some(p) = plugin.upgrade() else { return };
        let mut g = p.lock(slot);
        if !live(&p) {
            return;
        }
        let Some(vm) = g.as_mut().filter(|vm| vm.incarnation == inc) else {
            return;
        };
        // A retired plugin's timers stop, but for a root context that finishes its work
        // before `proxy_done` (`unload.rs`).
        if p.retired.load(Ordering::Relaxed) && vm.store.data().root_end != RootEnd::Pending {
            stop(&p);
            return;
        }
        let Some(tick) = vm.f.on_tick.clone() else {
            return;
        };
        let root = vm.root;
        vm.store.data_mut().effective = root;
        if let Err(m) = vm.call(&tick, root) {
            p.kill(&mut g, &format!("proxy_on_tick: {m}"));
            return;
        }
        p.after_callback(&mut g);
    }
}

/// An optional export of the right type. Looked up before it is typed: `get_typed_func` on a
/// missing export builds an error (with a backtrace when RUST_BACKTRACE is set) on every VM
/// start.
fn optional_export<P: WasmParams, R: WasmResults>(
    inst: &wasmtime::Instance,
    store: &mut Store<HostState>,
    name: &str,
) -> Option<TypedFunc<P, R>> {
    inst.get_func(&mut *store, name)?.typed(&*store).ok()
}

/// FNV-1a, to notice a changed module file.
pub fn fnv(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for x in b {
        h ^= u64::from(*x);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}
