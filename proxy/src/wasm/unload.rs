//! Unloading a filter: the end of its VMs' root contexts, as Envoy runs it when a plugin goes
//! away. Each root context gets `proxy_on_done`. When that returns true, `proxy_on_delete`
//! follows at once. When it returns false, the filter still has work to finish (a last flush
//! through an `http_call`, a final timer tick): its timers keep firing and its calls keep
//! their answers until it calls `proxy_done`, then `proxy_on_delete` follows. A filter that
//! does not call `proxy_done` within `wasm.done_timeout` is dropped with a warning, without
//! `proxy_on_delete`.
//!
//! A filter is unloaded when a reload replaced or removed it, once the streams that started
//! with it have finished, and at shutdown, after the drain.

use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use super::host::RootEnd;
use super::vm::{Plugin, Vm};

/// How often the end of a plugin checks for `proxy_done`, and for its streams.
const POLL: Duration = Duration::from_millis(20);
const STREAMS_POLL: Duration = Duration::from_millis(100);

/// Ends `plugin`'s root contexts once no stream uses it any more (its `Arc` is the last one:
/// streams hold the chain they started with). For a plugin a reload retired.
pub async fn after_streams(plugin: Arc<Plugin>) {
    while Arc::strong_count(&plugin) > 1 {
        if plugin.unloading.load(Ordering::Relaxed) {
            // Shutdown ended it meanwhile.
            return;
        }
        tokio::time::sleep(STREAMS_POLL).await;
    }
    end(&plugin).await;
}

/// Ends `plugin`'s root contexts now (shutdown: the streams have drained or are past their
/// grace). When its end has already begun (a reload retired it), waits for that one.
pub async fn end(plugin: &Arc<Plugin>) {
    if plugin.unloading.swap(true, Ordering::AcqRel) {
        while !plugin.unloaded.load(Ordering::Acquire) {
            tokio::time::sleep(POLL).await;
        }
        return;
    }
    finish(plugin).await;
    plugin.unloaded.store(true, Ordering::Release);
}

async fn finish(plugin: &Arc<Plugin>) {
    let done_timeout = plugin.runtime().settings.done_timeout;
    plugin.retired.store(true, Ordering::Relaxed);
    let mut pending = Vec::new();
    for slot in 0..plugin.slots.len() {
        let mut g = plugin.lock(slot);
        if let Some(inc) = on_done(plugin, &mut g) {
            pending.push((slot, inc));
        }
    }
    let deadline = Instant::now() + done_timeout;
    loop {
        pending.retain(|&(slot, inc)| {
            let mut g = plugin.lock(slot);
            match g.as_ref() {
                Some(vm) if vm.incarnation == inc => match vm.store.data().root_end {
                    RootEnd::Done => {
                        on_delete(plugin, &mut g);
                        false
                    }
                    _ => true,
                },
                // Discarded (a trap while it finished its work).
                _ => false,
            }
        });
        if pending.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            tracing::warn!(
                filter = %plugin.info.name, listener = %plugin.info.listener, vms = pending.len(),
                "filter unloaded without calling proxy_done within {done_timeout:?} of its \
                 proxy_on_done returning false (wasm.done_timeout); its VMs are dropped"
            );
            for (slot, _) in pending {
                drop_vm(&mut plugin.lock(slot));
            }
            return;
        }
        tokio::time::sleep(POLL).await;
    }
    tracing::info!(filter = %plugin.info.name, listener = %plugin.info.listener, "filter unloaded");
}

/// Calls the root context's `proxy_on_done`; `Some(incarnation)` when the VM now waits for
/// `proxy_done`.
fn on_done(plugin: &Plugin, g: &mut MutexGuard<'_, Option<Vm>>) -> Option<u64> {
    let vm = g.as_mut()?;
    let root = vm.root;
    vm.store.data_mut().effective = root;
    let finished = match vm.call_export(|x| x.on_done.as_ref(), root) {
        None => true,
        Some(Ok(r)) => r != 0,
        Some(Err(m)) => {
            plugin.kill(g, &format!("proxy_on_done (root): {m}"));
            return None;
        }
    };
    if finished {
        on_delete(plugin, g);
        return None;
    }
    let st = vm.store.data_mut();
    st.root_end = RootEnd::Pending;
    // Its timer goes on, from now: a new ticker (the retirement may have stopped the old one,
    // or it may sleep for a long period the filter just shortened).
    st.tick_changed |= st.tick_period.is_some();
    let inc = vm.incarnation;
    plugin.after_callback(g);
    Some(inc)
}

/// Calls the root context's `proxy_on_delete` and drops the VM.
fn on_delete(plugin: &Plugin, g: &mut MutexGuard<'_, Option<Vm>>) {
    let Some(vm) = g.as_mut() else { return };
    let root = vm.root;
    vm.store.data_mut().effective = root;
    if let Some(Err(m)) = vm.call_export(|x| x.on_delete.as_ref(), root) {
        plugin.kill(g, &format!("proxy_on_delete (root): {m}"));
    }
    drop_vm(g);
}

/// Drops the VM of a slot. Streams paused in it (only past the shutdown grace) are woken to
/// find it gone, as after a fault.
fn drop_vm(g: &mut MutexGuard<'_, Option<Vm>>) {
    if let Some(vm) = g.take() {
        for s in vm.store.data().streams.values() {
            s.info.wake.all();
        }
    }
}
