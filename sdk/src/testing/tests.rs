//! Tests of the harness, the emulated host and, through them, the SDK's ABI glue.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};

use serde::Deserialize;

use super::*;
use crate::abi::{self, action, buffer, Status};
use crate::hostcalls;
use crate::prelude::*;
use crate::HostError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KitchenSinkConfig {
    #[serde(default)]
    deny_path: Option<String>,
    #[serde(default = "default_tag")]
    tag: String,
}

fn default_tag() -> String {
    "default".into()
}

/// A filter touching every part of the API.
struct KitchenSink {
    deny_path: Option<String>,
    tag: String,
    requests: Counter,
    in_flight: Gauge,
    sizes: Histogram,
    on_response_calls: Cell<u32>,
}

impl Filter for KitchenSink {
    fn configure(config: &[u8]) -> Result<Self, ConfigError> {
        let cfg: KitchenSinkConfig = crate::config::from_json(config)?;
        if cfg.tag.is_empty() {
            return Err(ConfigError::new("tag must not be empty"));
        }
        crate::info!("configured with tag {}", cfg.tag);
        Ok(KitchenSink {
            deny_path: cfg.deny_path,
            tag: cfg.tag,
            requests: Counter::define("requests_total")?,
            in_flight: Gauge::define("in_flight")?,
            sizes: Histogram::define("path_len")?,
            on_response_calls: Cell::new(0),
        })
    }

    fn on_request(&self, req: &mut Request<'_>) -> Decision {
        self.requests.increment(1);
        self.in_flight.add(1);
        self.sizes.record(req.path().len() as u64);
        if req.header("x-grpc-deny").is_some() {
            return Decision::deny_grpc(grpc::PERMISSION_DENIED, "no grpc for you");
        }
        if Some(req.path_without_query()) == self.deny_path {
            crate::warn!("denied {}", req.path());
            return Decision::deny_with(403, format!("path {} is denied", req.path()));
        }
        if req.header("x-empty-deny").is_some() {
            return Decision::deny(429);
        }
        if let Some(rest) = req.path().strip_prefix("/old/") {
            let new = format!("/new/{rest}");
            req.set_path(&new);
        }
        req.set_header("x-tag", &self.tag);
        req.add_header("x-multi", "two");
        req.remove_header("x-secret");
        if let Some(id) = req.source_identity() {
            req.set_header("x-identity", id.to_string());
        }
        if let Some(listener) = req.listener() {
            req.set_header("x-listener", listener);
        }
        if let Some(port) = req.property_i64(&["source", "port"]) {
            req.set_header("x-source-port", port.to_string());
        }
        if let Some(addr) = req.source_address() {
            req.set_header("x-source-address", addr);
        }
        // Non-UTF-8 values: lossy text, exact bytes.
        if let Some(raw) = req.header_bytes("x-binary") {
            req.set_header("x-binary-len", raw.len().to_string());
            req.set_header("x-binary-lossy", req.header("x-binary").unwrap_or_default());
        }
        req.set_header("x-header-count", req.headers().len().to_string());
        Decision::Allow
    }

    fn on_response(&self, resp: &mut Response<'_>) -> Decision {
        self.in_flight.add(-1);
        self.on_response_calls.set(self.on_response_calls.get() + 1);
        resp.remove_header("server");
        resp.set_header("x-calls", self.on_response_calls.get().to_string());
        if resp.status() == Some(500) {
            return Decision::deny_with(502, "upstream failed");
        }
        Decision::Allow
    }
}

fn sink(config: &str) -> Harness<KitchenSink> {
    match Harness::new(config) {
        Ok(h) => h,
        Err(e) => panic!("configure failed: {e}"),
    }
}

#[test]
fn invalid_json_config_is_rejected() {
    let err = Harness::<KitchenSink>::new("{not json")
        .err()
        .expect("rejected");
    assert!(
        err.message().contains("invalid configuration"),
        "{}",
        err.message()
    );
    assert!(err
        .logs()
        .iter()
        .any(|l| l.level == Level::Error && l.message.contains("filter configuration rejected")));
}

#[test]
fn semantic_config_error_is_rejected_with_the_filters_message() {
    let err = Harness::<KitchenSink>::new(r#"{"tag":""}"#)
        .err()
        .expect("rejected");
    assert_eq!(err.message(), "tag must not be empty");
    assert!(err.to_string().contains("tag must not be empty"));
    let err = Harness::<KitchenSink>::new(r#"{"unknown":1}"#)
        .err()
        .expect("rejected");
    assert!(err.message().contains("unknown field"), "{}", err.message());
}

#[test]
fn empty_config_uses_defaults() {
    let mut h = sink("");
    let out = h.request(TestRequest::get("/"));
    assert!(out.allowed());
    assert_eq!(out.request_header("x-tag"), Some("default"));
    assert!(h.logged(Level::Info, "configured with tag default"));
}

#[test]
fn header_mutations_reach_the_upstream_request() {
    let mut h = sink(r#"{"tag":"blue"}"#);
    let out = h.request(
        TestRequest::get("/old/thing?q=1")
            .header("x-secret", "hunter2")
            .header("X-Secret", "again")
            .header("x-multi", "one")
            .header("x-tag", "spoofed"),
    );
    assert!(out.allowed());
    assert!(out.reached_upstream());
    assert_eq!(out.status(), None);
    assert_eq!(out.request_header(":path"), Some("/new/thing?q=1"));
    assert_eq!(out.request_header("x-tag"), Some("blue"));
    assert_eq!(out.request_header_all("x-tag"), ["blue"]);
    assert_eq!(out.request_header_all("x-multi"), ["one", "two"]);
    assert_eq!(out.request_header("x-secret"), None);
    assert_eq!(out.request_header("x-listener"), Some("test"));
    assert_eq!(out.request_header("x-identity"), None);
    // Seen by the filter after its own changes: 4 pseudo-headers, x-multi ×2, x-tag, x-listener.
    assert_eq!(out.request_header("x-header-count"), Some("8"));
}

#[test]
fn local_response_from_the_request_phase() {
    let mut h = sink(r#"{"deny_path":"/admin"}"#);
    let out = h.request(TestRequest::post("/admin?x=1"));
    assert!(!out.allowed());
    assert!(!out.reached_upstream());
    assert_eq!(out.status(), Some(403));
    assert_eq!(out.body(), b"path /admin?x=1 is denied");
    assert_eq!(out.responded_in(), Some(Phase::Request));
    assert_eq!(out.request_action(), crate::abi::action::PAUSE);
    let local = out.local_response().expect("local response");
    assert_eq!(local.grpc_status, None);
    assert_eq!(local.details, "path /admin?x=1 is denied");
    assert_eq!(
        local.headers,
        [(
            "content-type".to_owned(),
            "text/plain; charset=utf-8".to_owned()
        )]
    );
    assert!(h.logged(Level::Warn, "denied /admin?x=1"));

    // An empty body: no content-type.
    let out = h.request(TestRequest::get("/").header("x-empty-deny", "1"));
    assert_eq!(out.status(), Some(429));
    assert_eq!(out.body(), b"");
    assert!(out.local_response().expect("local").headers.is_empty());
}

#[test]
fn grpc_deny_sends_grpc_status() {
    let mut h = sink("{}");
    let out = h.request(TestRequest::grpc("pkg.Svc", "Call").header("x-grpc-deny", "1"));
    assert_eq!(out.status(), Some(200));
    assert_eq!(out.grpc_status(), Some(7));
    assert_eq!(out.body_text(), "no grpc for you");
    assert_eq!(
        out.local_response().expect("local").details,
        "no grpc for you"
    );
    assert!(!out.allowed());
}

struct DeniesWith(u16);

/// A filter denying with the status given in its configuration.
impl Filter for DeniesWith {
    fn configure(config: &[u8]) -> Result<Self, ConfigError> {
        let status = crate::config::as_str(config)?
            .parse()
            .map_err(|e| format!("{e}"))?;
        Ok(DeniesWith(status))
    }

    fn on_request(&self, _: &mut Request<'_>) -> Decision {
        Decision::deny(self.0)
    }
}

#[test]
fn an_invalid_deny_status_traps_instead_of_letting_the_request_through() {
    let mut h = Harness::<DeniesWith>::new("42").expect("configures");
    let panic = catch_unwind(AssertUnwindSafe(|| h.request(TestRequest::get("/"))))
        .expect_err("must not pass");
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        message.contains(
            "cannot send the local response: proxy_send_local_response returned BAD_ARGUMENT"
        ),
        "{message}"
    );
    let mut h = Harness::<DeniesWith>::new("599").expect("configures");
    let out = h.request(TestRequest::get("/"));
    assert_eq!(out.status(), Some(599));
    assert_eq!(
        out.local_response().expect("local").details,
        "denied by filter"
    );
}

#[test]
fn on_response_is_skipped_after_a_local_response() {
    // Hosts like Envoy run the response hooks for local responses too; the harness does not,
    // so drive the entry points by hand as such a host would.
    let mut h = sink(r#"{"deny_path":"/x"}"#);
    let mut installed = Installed::new(&mut h.host, &mut h.runtime);
    host::with(|s| {
        s.maps[0] = vec![(b":path".to_vec(), b"/x".to_vec())];
    });
    dispatch::on_context_create(7, ROOT_CONTEXT_ID);
    assert_eq!(
        dispatch::on_request_headers::<KitchenSink>(7, 1, 1),
        action::PAUSE
    );
    assert_eq!(
        host::with(|s| s.local_response.as_ref().map(|r| r.status)),
        Some(403)
    );
    // The local response passes the response hook untouched.
    host::with(|s| s.maps[2] = vec![(b":status".to_vec(), b"403".to_vec())]);
    assert_eq!(
        dispatch::on_response_headers::<KitchenSink>(7, 1, 1),
        action::CONTINUE
    );
    assert_eq!(
        host::with(|s| s.maps[2].len()),
        1,
        "no x-calls header added"
    );
    dispatch::on_delete(7);
    drop(installed);
    assert_eq!(
        h.metric("in_flight"),
        Some(1),
        "on_response (which decrements) never ran"
    );

    // A stream that was not answered locally does get the response hook.
    installed = Installed::new(&mut h.host, &mut h.runtime);
    host::with(|s| {
        s.maps[0] = vec![(b":path".to_vec(), b"/y".to_vec())];
        s.local_response = None;
    });
    dispatch::on_context_create(8, ROOT_CONTEXT_ID);
    assert_eq!(
        dispatch::on_request_headers::<KitchenSink>(8, 1, 1),
        action::CONTINUE
    );
    host::with(|s| s.maps[2] = vec![(b":status".to_vec(), b"200".to_vec())]);
    assert_eq!(
        dispatch::on_response_headers::<KitchenSink>(8, 1, 1),
        action::CONTINUE
    );
    assert_eq!(host::with(|s| s.maps[2].len()), 2, "x-calls added");
    drop(installed);
}

#[test]
fn response_phase_mutation_and_replacement() {
    let mut h = sink("{}");
    let out = h.exchange(
        TestRequest::get("/"),
        TestResponse::new(404)
            .header("server", "leaky/1.0")
            .header("x-keep", "1"),
    );
    assert!(out.allowed());
    assert_eq!(out.response_header("server"), None);
    assert_eq!(out.response_header("x-keep"), Some("1"));
    assert_eq!(out.response_header(":status"), Some("404"));

    let out = h.exchange(TestRequest::get("/"), TestResponse::new(500));
    assert!(out.reached_upstream());
    assert!(!out.allowed());
    assert_eq!(out.status(), Some(502));
    assert_eq!(out.responded_in(), Some(Phase::Response));
}

#[test]
fn metrics_are_counted() {
    let mut h = sink(r#"{"deny_path":"/no"}"#);
    assert_eq!(h.metric("requests_total"), Some(0));
    assert_eq!(h.metric("nonexistent"), None);
    h.request(TestRequest::get("/a"));
    h.request(TestRequest::get("/no"));
    h.request(TestRequest::get("/abc"));
    assert_eq!(h.metric("requests_total"), Some(3));
    // Two of three reached on_response, which decrements.
    assert_eq!(h.metric("in_flight"), Some(1));
    assert_eq!(h.histogram("path_len"), Some(&[2u64, 3, 4][..]));
    assert_eq!(h.metric("path_len"), None, "a histogram is not a counter");
    assert_eq!(
        h.metric_names(),
        ["requests_total", "in_flight", "path_len"]
    );
}

#[test]
fn reconfigure_redefines_the_same_metrics_and_keeps_the_old_filter_on_error() {
    let mut h = sink(r#"{"tag":"one"}"#);
    h.request(TestRequest::get("/"));
    h.reconfigure(r#"{"tag":"two"}"#).expect("valid");
    assert_eq!(
        h.request(TestRequest::get("/")).request_header("x-tag"),
        Some("two")
    );
    assert_eq!(
        h.metric("requests_total"),
        Some(2),
        "same counter after reconfigure"
    );
    let err = h.reconfigure(r#"{"tag":""}"#).expect_err("rejected");
    assert_eq!(err.message(), "tag must not be empty");
    assert_eq!(
        err.logs().len(),
        1,
        "only this configuration's logs: {:?}",
        err.logs()
    );
    assert_eq!(
        h.request(TestRequest::get("/")).request_header("x-tag"),
        Some("two")
    );
}

#[test]
fn properties_reach_the_filter() {
    let mut h = sink("{}");
    let out = h.request(
        TestRequest::get("/")
            .source_identity(4242)
            .listener("ingress")
            .source("10.1.2.3", 5555),
    );
    assert_eq!(out.request_header("x-identity"), Some("4242"));
    assert_eq!(out.request_header("x-listener"), Some("ingress"));
    assert_eq!(out.request_header("x-source-port"), Some("5555"));
    assert_eq!(
        out.request_header("x-source-address"),
        Some("10.1.2.3:5555")
    );

    let out = h.request(TestRequest::get("/").without_property(&["strait", "listener"]));
    assert_eq!(out.request_header("x-listener"), None);
}

#[test]
fn non_utf8_header_values_do_not_panic() {
    let mut h = sink("{}");
    let out = h.request(TestRequest::get("/").header("x-binary", [0x66, 0xff, 0x6f]));
    assert!(out.allowed());
    assert_eq!(out.request_header("x-binary-len"), Some("3"));
    assert_eq!(out.request_header("x-binary-lossy"), Some("f\u{fffd}o"));
}

#[test]
fn bodies_and_trailers_pass_through() {
    let mut h = sink("{}");
    let out = h.exchange(
        TestRequest::post("/upload")
            .body("payload")
            .trailer("x-t", "1"),
        TestResponse::ok().body("answer"),
    );
    assert!(out.allowed());
    assert_eq!(h.live_streams(), 0, "every stream context was deleted");
}

#[test]
fn harnesses_in_one_thread_are_independent() {
    let mut a = sink(r#"{"tag":"a"}"#);
    let mut b = sink(r#"{"tag":"b"}"#);
    a.request(TestRequest::get("/"));
    a.request(TestRequest::get("/"));
    let out = b.request(TestRequest::get("/"));
    assert_eq!(out.request_header("x-tag"), Some("b"));
    assert_eq!(a.metric("requests_total"), Some(2));
    assert_eq!(b.metric("requests_total"), Some(1));
}

struct Panics;

impl Filter for Panics {
    fn configure(_: &[u8]) -> Result<Self, ConfigError> {
        Ok(Panics)
    }

    fn on_request(&self, _: &mut Request<'_>) -> Decision {
        panic!("boom");
    }
}

#[test]
fn a_panicking_filter_fails_the_test_and_leaves_the_thread_clean() {
    let mut bad = Harness::<Panics>::new("").expect("configures");
    let result = catch_unwind(AssertUnwindSafe(|| bad.request(TestRequest::get("/"))));
    assert!(result.is_err());
    // The harness state went back to the harness despite the panic; another harness works.
    let mut good = sink("{}");
    assert!(good.request(TestRequest::get("/")).allowed());
}

/// A filter whose request hook reads a map the host cannot serve.
struct ReadsBadMap;

impl Filter for ReadsBadMap {
    fn configure(_: &[u8]) -> Result<Self, ConfigError> {
        Ok(ReadsBadMap)
    }

    fn on_request(&self, _: &mut Request<'_>) -> Decision {
        match hostcalls::get_map_pairs(9) {
            Err(HostError::Status {
                status: Status::BadArgument,
                ..
            }) => Decision::deny_with(500, "bad map rejected"),
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn emulated_host_rejects_unknown_map_types() {
    let mut h = Harness::<ReadsBadMap>::new("").expect("configures");
    assert_eq!(h.request(TestRequest::get("/")).body(), b"bad map rejected");
}

#[test]
fn emulated_host_buffers_and_memory_handover() {
    let mut state = HostState {
        plugin_config: b"0123456789".to_vec(),
        ..HostState::default()
    };
    let mut runtime = Runtime::default();
    let _installed = Installed::new(&mut state, &mut runtime);
    let get = |start, max| hostcalls::get_buffer(buffer::PLUGIN_CONFIGURATION, start, max);
    assert_eq!(get(0, 100), Ok(Some(b"0123456789".to_vec())));
    assert_eq!(get(3, 4), Ok(Some(b"3456".to_vec())));
    assert_eq!(get(10, 4), Ok(Some(Vec::new())));
    assert_eq!(
        get(11, 1),
        Err(HostError::Status {
            call: "proxy_get_buffer_bytes",
            status: Status::BadArgument
        })
    );
    assert_eq!(
        hostcalls::get_buffer(buffer::DOWNSTREAM_DATA, 0, 1),
        Ok(None)
    );
    assert_eq!(hostcalls::get_property(&["nope"]), Ok(None));
    assert_eq!(
        hostcalls::get_map_value(abi::map::REQUEST_HEADERS, "x"),
        Ok(None)
    );
    assert!(hostcalls::log(99, "bad level").is_err());
}

#[test]
fn metric_status_codes() {
    let mut state = HostState::default();
    let mut runtime = Runtime::default();
    let _installed = Installed::new(&mut state, &mut runtime);
    let c = Counter::define("c").expect("defined");
    assert_eq!(Counter::define("c"), Ok(c), "same name, same metric");
    assert!(Gauge::define("c").is_err(), "same name, other type");
    c.increment(5);
    assert_eq!(c.value(), Ok(5));
    assert_eq!(
        hostcalls::increment_metric(c.id(), -1).map_err(|e| e.status()),
        Err(Some(Status::BadArgument)),
        "counters do not go down"
    );
    assert_eq!(
        hostcalls::get_metric(999).map_err(|e| e.status()),
        Err(Some(Status::NotFound))
    );
    let g = Gauge::define("g").expect("defined");
    g.set(-3);
    assert_eq!(g.value(), Ok(-3));
    g.add(5);
    assert_eq!(g.value(), Ok(2));
}
