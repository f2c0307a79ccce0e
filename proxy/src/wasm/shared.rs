//! State shared by every VM: the engine, shared data (with CAS), shared queues, filter
//! metrics and the clusters filters call out to.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use arc_swap::ArcSwap;
use bytes::Bytes;
use wasmtime::{Engine, Linker};

use super::host::HostState;
use super::vm::Plugin;
use crate::config::{ClusterConfig, WasmConfig};

pub struct RuntimeInner {
    pub engine: Engine,
    pub linker: Linker<HostState>,
    pub settings: WasmConfig,
    pub compile: super::CompileMode,
    /// VMs per filter: one per async worker.
    pub workers: usize,
    pub data: SharedData,
    pub queues: Queues,
    pub metrics: FilterMetrics,
    pub clusters: ArcSwap<Vec<Arc<ClusterConfig>>>,
    pub callouts: super::callout::Clients,
    /// The epoch ticker (callback deadlines).
    pub clock: Arc<super::epoch::EpochClock>,
    /// Live VMs, bounded by `max_vms`.
    pub vms: AtomicU64,
    /// Plugins a reload retired, still serving the streams that started with them; shutdown
    /// ends them with the current ones (`unload.rs`).
    pub retiring: Mutex<Vec<Weak<Plugin>>>,
}

impl Drop for RuntimeInner {
    fn drop(&mut self) {
        self.clock.stop();
    }
}

impl RuntimeInner {
    pub fn cluster(&self, name: &str) -> Option<Arc<ClusterConfig>> {
        self.clusters
            .load()
            .iter()
            .find(|c| c.name == name)
            .cloned()
    }
}

/// `proxy_get_shared_data` / `proxy_set_shared_data`, scoped by vm_id.
#[derive(Default)]
pub struct SharedData {
    map: Mutex<HashMap<(String, String), (Bytes, u32)>>,
}

impl SharedData {
    pub fn get(&self, vm_id: &str, key: &str) -> Option<(Bytes, u32)> {
        let m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        m.get(&(vm_id.to_owned(), key.to_owned())).cloned()
    }

    /// `cas` 0 sets unconditionally; otherwise it must match the current version.
    pub fn set(&self, vm_id: &str, key: &str, value: Bytes, cas: u32) -> bool {
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let e = m.entry((vm_id.to_owned(), key.to_owned()));
        match e {
            std::collections::hash_map::Entry::Occupied(mut o) => {
                let (_, cur) = o.get();
                if cas != 0 && cas != *cur {
                    return false;
                }
                let next = cur.wrapping_add(1).max(1);
                o.insert((value, next));
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                if cas != 0 {
                    return false;
                }
                v.insert((value, 1));
            }
        }
        true
    }
}

/// Who is told when a queue gets data: the root context of the VM that registered it.
#[derive(Clone)]
pub struct QueueOwner {
    pub plugin: Weak<Plugin>,
    pub slot: usize,
    pub incarnation: u64,
}

struct Queue {
    vm_id: String,
    name: String,
    items: VecDeque<Bytes>,
    /// The VMs that registered the queue, the latest last; one per plugin and worker slot.
    owners: Vec<QueueOwner>,
}

/// Shared queues (`proxy_register_shared_queue` and friends).
#[derive(Default)]
pub struct Queues {
    inner: Mutex<Vec<Queue>>,
}

/// A queue holds at most this many items; an enqueue beyond it fails.
const QUEUE_MAX: usize = 10_000;

impl Queues {
    /// Registers queue `name` of `vm_id` for `owner`. The latest registration's VM is told
    /// first: a VM that replaces one (after a fault or a reload) registers again in its
    /// `on_configure` and takes the queue over. Earlier owners stay as fallbacks while they
    /// live (a reload whose new VMs are rejected leaves the queue to the old ones). Returns
    /// the id (index + 1; 0 is never a valid queue) and whether items are already waiting.
    pub fn register(&self, vm_id: &str, name: &str, owner: QueueOwner) -> (u32, bool) {
        let mut q = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let i = match q.iter().position(|x| x.vm_id == vm_id && x.name == name) {
            Some(i) => i,
            None => {
                q.push(Queue {
                    vm_id: vm_id.to_owned(),
                    name: name.to_owned(),
                    items: VecDeque::new(),
                    owners: Vec::new(),
                });
                q.len() - 1
            }
        };
        let queue = &mut q[i];
        queue.owners.retain(|o| {
            o.plugin.strong_count() > 0
                && !(Weak::ptr_eq(&o.plugin, &owner.plugin) && o.slot == owner.slot)
        });
        queue.owners.push(owner);
        (i as u32 + 1, !queue.items.is_empty())
    }

    pub fn resolve(&self, vm_id: &str, name: &str) -> Option<u32> {
        let q = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        q.iter()
            .position(|x| x.vm_id == vm_id && x.name == name)
            .map(|i| i as u32 + 1)
    }

    /// `Ok(true)`: some VM registered it (to be told); `Err(true)`: no such queue;
    /// `Err(false)`: full.
    pub fn enqueue(&self, id: u32, v: Bytes) -> Result<bool, bool> {
        let mut q = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let Some(queue) = q.get_mut((id as usize).wrapping_sub(1)) else {
            return Err(true);
        };
        if queue.items.len() >= QUEUE_MAX {
            return Err(false);
        }
        queue.items.push_back(v);
        Ok(!queue.owners.is_empty())
    }

    /// Who may be told that queue `id` has data, the latest registration first.
    pub fn owners(&self, id: u32) -> Vec<QueueOwner> {
        let q = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        q.get((id as usize).wrapping_sub(1))
            .map(|x| x.owners.iter().rev().cloned().collect())
            .unwrap_or_default()
    }

    /// `Err(())`: no such queue; `Ok(None)`: empty.
    #[allow(clippy::result_unit_err)]
    pub fn dequeue(&self, id: u32) -> Result<Option<Bytes>, ()> {
        let mut q = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let queue = q.get_mut((id as usize).wrapping_sub(1)).ok_or(())?;
        Ok(queue.items.pop_front())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

/// Histogram bucket upper bounds (values are whatever unit the filter records).
const BUCKETS: [u64; 12] = [
    1, 5, 10, 50, 100, 500, 1_000, 5_000, 10_000, 50_000, 100_000, 1_000_000,
];

pub struct Metric {
    pub name: String,
    pub kind: MetricKind,
    pub value: AtomicI64,
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
}

/// Metrics defined by filters (`proxy_define_metric`), exported on `/metrics` as
/// `strait_wasm_<name>`. The same name from any VM is the same metric.
#[derive(Default)]
pub struct FilterMetrics {
    list: Mutex<Vec<Arc<Metric>>>,
}

impl FilterMetrics {
    /// Ids are index + 1. A name already defined with another type is refused.
    pub fn define(&self, kind: MetricKind, name: &str) -> Option<u32> {
        let mut l = self.list.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = l.iter().position(|m| m.name == name) {
            return (l[i].kind == kind).then_some(i as u32 + 1);
        }
        if l.len() >= 10_000 {
            return None;
        }
        l.push(Arc::new(Metric {
            name: name.to_owned(),
            kind,
            value: AtomicI64::new(0),
            buckets: Default::default(),
            count: AtomicU64::new(0),
        }));
        Some(l.len() as u32)
    }

    pub fn get(&self, id: u32) -> Option<Arc<Metric>> {
        let l = self.list.lock().unwrap_or_else(|p| p.into_inner());
        l.get((id as usize).wrapping_sub(1)).cloned()
    }

    /// OpenMetrics text for every defined metric (no `# EOF`).
    pub fn render(&self, out: &mut String) {
        let l = self.list.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for m in l {
            let name = sanitize(&m.name);
            match m.kind {
                MetricKind::Counter => {
                    let _ = writeln!(out, "# TYPE strait_wasm_{name} counter");
                    let _ = writeln!(
                        out,
                        "strait_wasm_{name}_total {}",
                        m.value.load(Ordering::Relaxed).max(0)
                    );
                }
                MetricKind::Gauge => {
                    let _ = writeln!(out, "# TYPE strait_wasm_{name} gauge");
                    let _ = writeln!(
                        out,
                        "strait_wasm_{name} {}",
                        m.value.load(Ordering::Relaxed)
                    );
                }
                MetricKind::Histogram => {
                    let _ = writeln!(out, "# TYPE strait_wasm_{name} histogram");
                    let mut cum = 0;
                    for (i, b) in BUCKETS.iter().enumerate() {
                        cum += m.buckets[i].load(Ordering::Relaxed);
                        let _ = writeln!(out, "strait_wasm_{name}_bucket{{le=\"{b}\"}} {cum}");
                    }
                    let count = m.count.load(Ordering::Relaxed);
                    let _ = writeln!(out, "strait_wasm_{name}_bucket{{le=\"+Inf\"}} {count}");
                    let _ = writeln!(
                        out,
                        "strait_wasm_{name}_sum {}",
                        m.value.load(Ordering::Relaxed)
                    );
                    let _ = writeln!(out, "strait_wasm_{name}_count {count}");
                }
            }
        }
    }
}

impl Metric {
    pub fn record(&self, v: u64) {
        match self.kind {
            MetricKind::Counter | MetricKind::Gauge => {
                self.value.store(v as i64, Ordering::Relaxed);
            }
            MetricKind::Histogram => {
                let i = BUCKETS.iter().position(|b| v <= *b);
                if let Some(i) = i {
                    self.buckets[i].fetch_add(1, Ordering::Relaxed);
                }
                self.count.fetch_add(1, Ordering::Relaxed);
                self.value.fetch_add(v as i64, Ordering::Relaxed);
            }
        }
    }
}

/// Metric names become `[a-zA-Z0-9_]`.
fn sanitize(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if let Some(stripped) = s.strip_suffix("_total") {
        s = stripped.to_owned();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_data_cas() {
        let d = SharedData::default();
        assert!(d.set("vm", "k", Bytes::from_static(b"a"), 0));
        let (_, cas) = d.get("vm", "k").expect("set");
        assert!(!d.set("vm", "k", Bytes::from_static(b"b"), cas + 7));
        assert!(d.set("vm", "k", Bytes::from_static(b"b"), cas));
        assert_eq!(d.get("vm", "k").expect("set").0, "b");
        assert!(d.get("other", "k").is_none());
    }

    #[test]
    fn metrics_render() {
        let m = FilterMetrics::default();
        let id = m.define(MetricKind::Counter, "reqs.api").expect("id");
        assert_eq!(m.define(MetricKind::Counter, "reqs.api"), Some(id));
        assert_eq!(m.define(MetricKind::Gauge, "reqs.api"), None);
        m.get(id)
            .expect("metric")
            .value
            .fetch_add(3, Ordering::Relaxed);
        let mut s = String::new();
        m.render(&mut s);
        assert!(s.contains("strait_wasm_reqs_api_total 3"), "{s}");
    }
}
