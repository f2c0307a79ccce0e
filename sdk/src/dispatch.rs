//! The guest side of the proxy-wasm context lifecycle: which context belongs to which plugin,
//! which filter instance serves it, and what a [`Decision`] turns into.
//!
//! The functions here are the bodies of the exports that [`export_filter!`] generates; the
//! test harness calls the very same functions.
//!
//! [`export_filter!`]: crate::export_filter

use std::any::Any;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use crate::abi::{action, buffer, NO_GRPC_STATUS};
use crate::filter::{Decision, Filter};
use crate::hostcalls;
use crate::http::{Request, Response};
use crate::kafka::{KafkaDecision, KafkaRequest};
use crate::logging::{log, Level};

/// Per-module state: plugin (root) contexts and HTTP (stream) contexts. Small integer keys,
/// looked up several times per request: an ordered map for the few roots, and a sorted vector
/// for the streams, which keeps its capacity (a `BTreeMap` allocated a node for the first
/// stream and freed it with the last, on every request of an idle-between-requests VM).
#[derive(Default)]
pub(crate) struct Runtime {
    roots: BTreeMap<u32, Root>,
    streams: Streams,
}

/// Stream contexts sorted by id. The host hands out increasing ids, so an insert is a push.
#[derive(Default)]
struct Streams(Vec<(u32, Stream)>);

impl Streams {
    fn find(&self, id: u32) -> Result<usize, usize> {
        self.0.binary_search_by_key(&id, |(k, _)| *k)
    }

    fn get(&self, id: &u32) -> Option<&Stream> {
        self.find(*id).ok().map(|i| &self.0[i].1)
    }

    fn get_mut(&mut self, id: &u32) -> Option<&mut Stream> {
        self.find(*id).ok().map(|i| &mut self.0[i].1)
    }

    fn insert(&mut self, id: u32, stream: Stream) {
        match self.find(id) {
            Ok(i) => self.0[i].1 = stream,
            Err(i) => self.0.insert(i, (id, stream)),
        }
    }

    fn remove(&mut self, id: &u32) -> Option<Stream> {
        self.find(*id).ok().map(|i| self.0.remove(i).1)
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn len(&self) -> usize {
        self.0.len()
    }
}

#[derive(Default)]
struct Root {
    /// The configured filter (an `Rc<F>`); `None` until `proxy_on_configure` succeeds.
    filter: Option<Rc<dyn Any>>,
    /// Why the last `proxy_on_configure` failed, for the test harness.
    config_error: Option<String>,
}

struct Stream {
    root: u32,
    /// A local response was sent for this stream: later hooks leave it alone.
    responded: bool,
}

thread_local! {
    static RUNTIME: RefCell<Runtime> = RefCell::new(Runtime::default());
}

fn with_runtime<R>(f: impl FnOnce(&mut Runtime) -> R) -> R {
    RUNTIME.with(|rt| f(&mut rt.borrow_mut()))
}

/// Exchanges the thread's runtime state with `other` (the harness keeps one per instance).
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn swap_runtime(other: &mut Runtime) {
    RUNTIME.with(|rt| std::mem::swap(&mut *rt.borrow_mut(), other));
}

#[cfg(not(target_arch = "wasm32"))]
impl Runtime {
    pub(crate) fn config_error(&self, root: u32) -> Option<&str> {
        self.roots.get(&root)?.config_error.as_deref()
    }

    pub(crate) fn live_streams(&self) -> usize {
        self.streams.len()
    }
}

/// `proxy_on_memory_allocate` / `malloc`.
pub fn allocate(size: usize) -> *mut u8 {
    crate::memory::allocate(size)
}

/// `proxy_on_context_create`: `parent == 0` creates a plugin context, anything else an HTTP
/// stream context of plugin `parent`.
pub fn on_context_create(context_id: u32, parent_context_id: u32) {
    with_runtime(|rt| {
        if parent_context_id == 0 {
            rt.roots.entry(context_id).or_default();
        } else {
            rt.streams.insert(
                context_id,
                Stream {
                    root: parent_context_id,
                    responded: false,
                },
            );
        }
    });
}

/// `proxy_on_vm_start`: nothing to read (the VM configuration is unused); always succeeds.
pub fn on_vm_start(_root_context_id: u32, _vm_configuration_size: usize) -> u32 {
    install_panic_hook();
    1
}

/// `proxy_on_configure`: reads `PLUGIN_CONFIGURATION` and builds the filter. Returns 1 on
/// success, 0 (the host rejects the filter) when [`Filter::configure`] fails.
pub fn on_configure<F: Filter>(root_context_id: u32, configuration_size: usize) -> u32 {
    install_panic_hook();
    let config = if configuration_size == 0 {
        Ok(Vec::new())
    } else {
        hostcalls::get_buffer(buffer::PLUGIN_CONFIGURATION, 0, configuration_size)
            .map(Option::unwrap_or_default)
    };
    let result = match config {
        Ok(config) => F::configure(&config).map_err(|e| e.to_string()),
        Err(e) => Err(format!("cannot read the plugin configuration: {e}")),
    };
    with_runtime(|rt| {
        let root = rt.roots.entry(root_context_id).or_default();
        match result {
            Ok(filter) => {
                root.filter = Some(Rc::new(filter));
                root.config_error = None;
                1
            }
            Err(why) => {
                // A previously configured filter (if any) stays: it is the host's call whether
                // to keep using it.
                log(
                    Level::Error,
                    &format!("filter configuration rejected: {why}"),
                );
                root.config_error = Some(why);
                0
            }
        }
    })
}

/// The filter serving stream `context_id`, and whether it already answered locally.
fn stream_filter<F: Filter>(context_id: u32) -> (Rc<F>, bool) {
    let found = with_runtime(|rt| {
        let (root_id, responded) = match rt.streams.get(&context_id) {
            Some(s) => (s.root, s.responded),
            // A host that skipped `proxy_on_context_create` for the stream: with a single
            // plugin context the owner is unambiguous.
            None if rt.roots.len() == 1 => {
                let root = rt.roots.keys().copied().next().unwrap_or_default();
                rt.streams.insert(
                    context_id,
                    Stream {
                        root,
                        responded: false,
                    },
                );
                (root, false)
            }
            None => return Err(format!("unknown stream context {context_id}")),
        };
        let filter = rt
            .roots
            .get(&root_id)
            .and_then(|r| r.filter.clone())
            .ok_or_else(|| format!("plugin context {root_id} has no configured filter"))?;
        Ok((filter, responded))
    });
    match found {
        Ok((filter, responded)) => match filter.downcast::<F>() {
            Ok(filter) => (filter, responded),
            Err(_) => panic!("strait-sdk: the configured filter is not of the exported type"),
        },
        // Serving the stream without the filter would skip the policy: trap instead, so the
        // host applies the filter's failure mode.
        Err(why) => panic!("strait-sdk: {why}"),
    }
}

fn mark_responded(context_id: u32) {
    with_runtime(|rt| {
        if let Some(s) = rt.streams.get_mut(&context_id) {
            s.responded = true;
        }
    });
}

/// The `status_code_details` of a local response: the reason, on one line and short (strait
/// puts it in the flow record), or a generic text when there is none.
fn details(reason: &str) -> &str {
    const MAX: usize = 256;
    let line = reason.lines().next().unwrap_or_default().trim();
    if line.is_empty() {
        return "denied by filter";
    }
    let mut end = line.len().min(MAX);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    &line[..end]
}

/// Carries out a decision for stream `context_id`; returns the `proxy_action_t`.
fn apply(context_id: u32, decision: Decision) -> u32 {
    let sent = match decision {
        Decision::Allow => return action::CONTINUE,
        Decision::Deny { status, body } => {
            let headers: &[(&str, &str)] = if body.is_empty() {
                &[]
            } else {
                &[("content-type", "text/plain; charset=utf-8")]
            };
            hostcalls::send_local_response(
                u32::from(status),
                details(&body),
                body.as_bytes(),
                headers,
                NO_GRPC_STATUS,
            )
        }
        // As Envoy and the proxy-wasm SDKs do: HTTP 200, the message as the body, the code in
        // `grpc_status`; the host turns that into `grpc-status` / `grpc-message`.
        Decision::DenyGrpc { code, message } => hostcalls::send_local_response(
            200,
            details(&message),
            message.as_bytes(),
            &[],
            i32::try_from(code).unwrap_or(i32::MAX),
        ),
    };
    if let Err(err) = sent {
        // Continuing would let a denied request through: trap instead.
        panic!("strait-sdk: cannot send the local response: {err}");
    }
    mark_responded(context_id);
    action::PAUSE
}

/// `proxy_on_request_headers`: runs [`Filter::on_request`].
pub fn on_request_headers<F: Filter>(context_id: u32, _num_headers: usize, _eos: u32) -> u32 {
    let (filter, responded) = stream_filter::<F>(context_id);
    if responded {
        return action::CONTINUE;
    }
    let decision = filter.on_request(&mut Request::new(context_id));
    apply(context_id, decision)
}

/// `proxy_on_response_headers`: runs [`Filter::on_response`], unless this filter already
/// answered the request.
pub fn on_response_headers<F: Filter>(context_id: u32, _num_headers: usize, _eos: u32) -> u32 {
    let (filter, responded) = stream_filter::<F>(context_id);
    if responded {
        return action::CONTINUE;
    }
    let decision = filter.on_response(&mut Response::new(context_id));
    apply(context_id, decision)
}

/// `strait_on_kafka_request` (strait's Kafka extension): runs [`Filter::on_kafka_request`] for
/// one request of the Kafka connection `context_id`. A deny becomes
/// `proxy_send_local_response(code, reason, "", {}, -1)`. Always returns 0 (strait ignores the
/// value).
///
/// Unlike an HTTP stream, the context lives for the whole connection and every request gets
/// a verdict: a deny does not mark the context as answered.
pub fn on_kafka_request<F: Filter>(context_id: u32) -> u32 {
    let (filter, _responded) = stream_filter::<F>(context_id);
    let decision = filter.on_kafka_request(&mut KafkaRequest::new(context_id));
    if let KafkaDecision::Deny { code, reason } = decision {
        // A negative code cannot be a Kafka error code: strait refuses it (u32::MAX).
        let code = u32::try_from(code).unwrap_or(u32::MAX);
        let sent = hostcalls::send_local_response(code, details(&reason), &[], &[], NO_GRPC_STATUS);
        if let Err(err) = sent {
            // Returning would let a denied request through: trap instead.
            panic!("strait-sdk: cannot deny the Kafka request: {err}");
        }
    }
    0
}

/// `proxy_on_delete`: forgets the context.
pub fn on_delete(context_id: u32) {
    with_runtime(|rt| {
        if rt.streams.remove(&context_id).is_none() {
            rt.roots.remove(&context_id);
        }
    });
}

/// In a wasm module a panic aborts (traps); log its message through the host first so the
/// reason is not lost. Not installed on other targets, where it would hide test failures.
fn install_panic_hook() {
    #[cfg(target_arch = "wasm32")]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            std::panic::set_hook(Box::new(|info| {
                log(Level::Critical, &format!("filter panicked: {info}"));
            }));
        });
    }
}

#[cfg(test)]
mod tests {
    use super::{details, Stream, Streams};

    #[test]
    fn streams_stay_sorted_whatever_the_order_of_ids() {
        let s = |root| Stream {
            root,
            responded: false,
        };
        let mut m = Streams::default();
        // Increasing ids (the host's order), then a wrapped-around small one, then a repeat.
        for (id, root) in [(5, 1), (9, 2), (u32::MAX, 3), (2, 4), (9, 5)] {
            m.insert(id, s(root));
        }
        assert_eq!(m.len(), 4);
        let ids: Vec<u32> = m.0.iter().map(|(k, _)| *k).collect();
        assert_eq!(ids, [2, 5, 9, u32::MAX]);
        assert_eq!(m.get(&9).map(|x| x.root), Some(5));
        m.get_mut(&2).expect("2").responded = true;
        assert!(m.get(&2).is_some_and(|x| x.responded));
        assert_eq!(m.remove(&5).map(|x| x.root), Some(1));
        assert!(m.remove(&5).is_none() && m.get(&5).is_none());
        assert_eq!(m.len(), 3);
    }

    #[test]
    fn details_are_one_short_line() {
        assert_eq!(details(""), "denied by filter");
        assert_eq!(details("  \n"), "denied by filter");
        assert_eq!(details("denied: x\nmore"), "denied: x");
        let long = "é".repeat(300);
        let d = details(&long);
        assert!(d.len() <= 256 && d.chars().all(|c| c == 'é'), "{}", d.len());
    }
}
