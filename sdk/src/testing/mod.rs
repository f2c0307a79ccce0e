//! Run a filter in-process, in plain `cargo test`, against synthetic requests.
//!
//! On every target but `wasm32` the SDK's host calls go to an emulated host (per-thread state,
//! same signatures and status codes as the `env` imports). [`Harness`] plays the proxy: it
//! creates the plugin context, hands over the configuration, and for each request creates a
//! stream context and calls the same entry points the module exports (`proxy_on_context_create`,
//! `proxy_on_request_headers`, `proxy_on_response_headers`, `proxy_on_delete`), so header map serialisation, host-returned memory and local responses
//! are exercised too. Kafka requests go through [`Harness::kafka`] (one request, one
//! connection) or [`Harness::kafka_connection`] (several requests on one connection) with a
//! [`TestKafkaRequest`], calling `strait_on_kafka_request`'s entry point; see the
//! [`kafka`](crate::kafka) module for an example.
//!
//! ```
//! use strait_sdk::prelude::*;
//! use strait_sdk::testing::{Harness, TestRequest, TestResponse};
//!
//! struct TagAdmin;
//! impl Filter for TagAdmin {
//!     fn configure(_: &[u8]) -> Result<Self, ConfigError> {
//!         Ok(TagAdmin)
//!     }
//!     fn on_request(&self, req: &mut Request<'_>) -> Decision {
//!         match req.source_identity() {
//!             Some(1000) => {
//!                 req.set_header("x-admin", "1");
//!                 Decision::Allow
//!             }
//!             Some(_) => Decision::Allow,
//!             None => Decision::deny_with(401, "who are you?"),
//!         }
//!     }
//!     fn on_response(&self, resp: &mut Response<'_>) -> Decision {
//!         resp.remove_header("server");
//!         Decision::Allow
//!     }
//! }
//!
//! let mut h = Harness::<TagAdmin>::new("").unwrap();
//! let out = h.exchange(
//!     TestRequest::get("/").source_identity(1000),
//!     TestResponse::ok().header("server", "secret/1.0"),
//! );
//! assert!(out.allowed());
//! assert_eq!(out.request_header("x-admin"), Some("1"));
//! assert_eq!(out.response_header("server"), None);
//!
//! let out = h.request(TestRequest::get("/"));
//! assert_eq!(out.status(), Some(401));
//! assert_eq!(out.body(), b"who are you?");
//! ```

pub(crate) mod host;
mod kafka;

use std::fmt;
use std::marker::PhantomData;

use crate::abi::{action, map, HeaderPairs};
use crate::dispatch::{self, Runtime};
use crate::filter::Filter;
use crate::logging::Level;

use host::HostState;
pub use host::{LocalResponse, LogRecord};
pub use kafka::{KafkaOutcome, TestKafkaRequest};

const ROOT_CONTEXT_ID: u32 = 1;

/// The filter refused its configuration (`proxy_on_configure` returned false).
#[derive(Clone, Debug)]
pub struct ConfigRejected {
    message: String,
    logs: Vec<LogRecord>,
}

impl ConfigRejected {
    /// The error [`Filter::configure`] returned.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// What the filter logged while being configured.
    pub fn logs(&self) -> &[LogRecord] {
        &self.logs
    }
}

impl fmt::Display for ConfigRejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the filter rejected its configuration: {}", self.message)
    }
}

impl std::error::Error for ConfigRejected {}

/// A filter of type `F`, configured, in an emulated host. Each [`Harness`] has its own host
/// state (headers, properties, metrics, logs), so several can live in one test.
pub struct Harness<F: Filter> {
    host: HostState,
    runtime: Runtime,
    next_context_id: u32,
    _filter: PhantomData<fn() -> F>,
}

/// While alive, the harness's host and runtime state are the thread's; dropping it (also when
/// a filter panics) puts them back.
struct Installed<'h> {
    host: &'h mut HostState,
    runtime: &'h mut Runtime,
}

impl<'h> Installed<'h> {
    fn new(host: &'h mut HostState, runtime: &'h mut Runtime) -> Self {
        host::swap(host);
        dispatch::swap_runtime(runtime);
        Installed { host, runtime }
    }
}

impl Drop for Installed<'_> {
    fn drop(&mut self) {
        host::swap(self.host);
        dispatch::swap_runtime(self.runtime);
    }
}

impl<F: Filter> Harness<F> {
    /// Starts the VM and configures the filter with `config` (the bytes of the filter's
    /// `config`, JSON for a YAML mapping): `proxy_on_context_create(1, 0)`,
    /// `proxy_on_vm_start`, `proxy_on_configure`.
    pub fn new(config: impl AsRef<[u8]>) -> Result<Self, ConfigRejected> {
        let mut harness = Harness {
            host: HostState::default(),
            runtime: Runtime::default(),
            next_context_id: ROOT_CONTEXT_ID + 1,
            _filter: PhantomData,
        };
        let started = {
            let _installed = Installed::new(&mut harness.host, &mut harness.runtime);
            dispatch::on_context_create(ROOT_CONTEXT_ID, 0);
            dispatch::on_vm_start(ROOT_CONTEXT_ID, 0)
        };
        if started != 1 {
            return Err(harness.rejected("proxy_on_vm_start returned false"));
        }
        harness.reconfigure(config)?;
        Ok(harness)
    }

    /// Configures the filter again (`proxy_on_configure`), as a configuration reload does. On
    /// error the previous filter instance stays in place.
    pub fn reconfigure(&mut self, config: impl AsRef<[u8]>) -> Result<(), ConfigRejected> {
        let config = config.as_ref();
        self.host.plugin_config = config.to_vec();
        let logs_before = self.host.logs.len();
        let ok = {
            let _installed = Installed::new(&mut self.host, &mut self.runtime);
            dispatch::on_configure::<F>(ROOT_CONTEXT_ID, config.len())
        };
        if ok == 1 {
            return Ok(());
        }
        let message = self
            .runtime
            .config_error(ROOT_CONTEXT_ID)
            .unwrap_or("proxy_on_configure returned false")
            .to_owned();
        let mut rejected = self.rejected(&message);
        rejected.logs.drain(..logs_before);
        Err(rejected)
    }

    fn rejected(&self, message: &str) -> ConfigRejected {
        ConfigRejected {
            message: message.to_owned(),
            logs: self.host.logs.clone(),
        }
    }

    /// Sends `req` through the filter; if it is let through, the upstream answers
    /// `200` with no headers and no body. See [`Harness::exchange`].
    pub fn request(&mut self, req: TestRequest) -> Outcome {
        self.exchange(req, TestResponse::ok())
    }

    /// Sends `req` through the filter and, if the filter lets it through, `resp` back through
    /// it, as the proxy would:
    ///
    /// 1. `proxy_on_context_create(stream, 1)`;
    /// 2. `proxy_on_request_headers`;
    /// 3. unless the filter answered locally: `proxy_on_response_headers`;
    /// 4. `proxy_on_delete`.
    ///
    /// The SDK exports no body, trailers, `proxy_on_log` or `proxy_on_done` callbacks, so a
    /// host calls none of them; bodies are still there to read as properties would be.
    ///
    /// A panic of the filter (a trap in a real host) propagates to the test.
    pub fn exchange(&mut self, req: TestRequest, resp: TestResponse) -> Outcome {
        let id = self.next_stream_id();

        self.host.maps = [req.headers, req.trailers, Vec::new(), Vec::new()];
        self.host.request_body = req.body.clone().unwrap_or_default();
        self.host.response_body = Vec::new();
        self.host.properties = req
            .properties
            .into_iter()
            .map(|(path, value)| (path.join("\0").into_bytes(), value))
            .collect();
        self.host.local_response = None;
        self.host.set_properties.clear();
        self.host.kafka = false;

        let mut out = Outcome {
            request_action: action::CONTINUE,
            response_action: None,
            local_response: None,
            responded_in: None,
            request_headers: Vec::new(),
            response_headers: Vec::new(),
            set_properties: Vec::new(),
        };
        {
            let _installed = Installed::new(&mut self.host, &mut self.runtime);
            dispatch::on_context_create(id, ROOT_CONTEXT_ID);
            let num_headers = host::with(|h| h.maps[map::REQUEST_HEADERS as usize].len());
            let has_body = req.body.as_ref().is_some_and(|b| !b.is_empty());
            out.request_action =
                dispatch::on_request_headers::<F>(id, num_headers, u32::from(!has_body));
            out.request_headers = snapshot(map::REQUEST_HEADERS);
            if responded() {
                out.responded_in = Some(Phase::Request);
            } else if out.request_action == action::CONTINUE {
                host::with(|h| {
                    h.maps[map::RESPONSE_HEADERS as usize] = resp.headers;
                    h.response_body = resp.body.clone().unwrap_or_default();
                    h.properties.insert(
                        b"response\0code".to_vec(),
                        i64::from(resp.status).to_le_bytes().to_vec(),
                    );
                });
                let num_headers = host::with(|h| h.maps[map::RESPONSE_HEADERS as usize].len());
                let has_body = resp.body.as_ref().is_some_and(|b| !b.is_empty());
                let response_action =
                    dispatch::on_response_headers::<F>(id, num_headers, u32::from(!has_body));
                out.response_action = Some(response_action);
                out.response_headers = snapshot(map::RESPONSE_HEADERS);
                if responded() {
                    out.responded_in = Some(Phase::Response);
                }
            }
            dispatch::on_delete(id);
        }
        out.local_response = self.host.local_response.take();
        out.set_properties = std::mem::take(&mut self.host.set_properties);
        out
    }

    /// A fresh stream context id.
    fn next_stream_id(&mut self) -> u32 {
        let id = self.next_context_id;
        self.next_context_id = self
            .next_context_id
            .wrapping_add(1)
            .max(ROOT_CONTEXT_ID + 1);
        id
    }

    /// The value of counter or gauge `name` (gauges as the ABI carries them: a `u64`), `None`
    /// if the filter never defined it.
    pub fn metric(&self, name: &str) -> Option<u64> {
        self.host
            .metric(name)
            .filter(|m| m.kind != crate::abi::metric::HISTOGRAM)
            .map(|m| m.value)
    }

    /// The samples recorded in histogram `name`, `None` if the filter never defined it.
    pub fn histogram(&self, name: &str) -> Option<&[u64]> {
        self.host
            .metric(name)
            .filter(|m| m.kind == crate::abi::metric::HISTOGRAM)
            .map(|m| m.samples.as_slice())
    }

    /// The names of every metric the filter defined, in definition order.
    pub fn metric_names(&self) -> Vec<&str> {
        self.host.metrics.iter().map(|m| m.name.as_str()).collect()
    }

    /// Everything the filter logged so far (including the SDK's own lines, e.g. a rejected
    /// configuration).
    pub fn logs(&self) -> &[LogRecord] {
        &self.host.logs
    }

    /// Whether any log line at `level` contains `text`.
    pub fn logged(&self, level: Level, text: &str) -> bool {
        self.host
            .logs
            .iter()
            .any(|l| l.level == level && l.message.contains(text))
    }

    /// Forgets the logs collected so far.
    pub fn clear_logs(&mut self) {
        self.host.logs.clear();
    }

    /// Stream contexts the SDK still tracks (0 after every completed exchange).
    pub fn live_streams(&self) -> usize {
        self.runtime.live_streams()
    }
}

fn responded() -> bool {
    host::with(|h| h.local_response.is_some())
}

fn snapshot(map_type: u32) -> Vec<(String, String)> {
    host::with(|h| {
        h.maps[map_type as usize]
            .iter()
            .map(|(k, v)| {
                (
                    String::from_utf8_lossy(k).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            })
            .collect()
    })
}

/// A synthetic request: pseudo-headers, headers, optional body, and the properties the host
/// would offer (`strait.listener` is `test` unless set).
#[derive(Clone, Debug)]
pub struct TestRequest {
    headers: HeaderPairs,
    trailers: HeaderPairs,
    body: Option<Vec<u8>>,
    properties: Vec<(Vec<String>, Vec<u8>)>,
}

impl TestRequest {
    /// A request with `:method`, `:path`, `:scheme: http` and `:authority: example.test`.
    pub fn new(method: &str, path: &str) -> Self {
        TestRequest {
            headers: vec![
                (b":method".to_vec(), method.as_bytes().to_vec()),
                (b":path".to_vec(), path.as_bytes().to_vec()),
                (b":scheme".to_vec(), b"http".to_vec()),
                (b":authority".to_vec(), b"example.test".to_vec()),
            ],
            trailers: Vec::new(),
            body: None,
            properties: vec![(vec!["strait".into(), "listener".into()], b"test".to_vec())],
        }
    }

    /// `GET path`.
    pub fn get(path: &str) -> Self {
        Self::new("GET", path)
    }

    /// `POST path`.
    pub fn post(path: &str) -> Self {
        Self::new("POST", path)
    }

    /// `PUT path`.
    pub fn put(path: &str) -> Self {
        Self::new("PUT", path)
    }

    /// `DELETE path`.
    pub fn delete(path: &str) -> Self {
        Self::new("DELETE", path)
    }

    /// A gRPC call: `POST /service/method` with `content-type: application/grpc` and
    /// `te: trailers`.
    pub fn grpc(service: &str, method: &str) -> Self {
        Self::post(&format!("/{service}/{method}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
    }

    /// Adds a header. A pseudo-header (`:path`, `:authority`, …) replaces the existing one.
    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        let name = name.as_bytes().to_vec();
        let value = value.as_ref().to_vec();
        if name.starts_with(b":") {
            if let Some(slot) = self.headers.iter_mut().find(|(k, _)| *k == name) {
                slot.1 = value;
                return self;
            }
        }
        self.headers.push((name, value));
        self
    }

    /// Removes every value of header `name` (e.g. to test a request without `:authority`).
    pub fn without_header(mut self, name: &str) -> Self {
        self.headers
            .retain(|(k, _)| !k.eq_ignore_ascii_case(name.as_bytes()));
        self
    }

    /// Adds a trailer (visible as the `REQUEST_TRAILERS` map).
    pub fn trailer(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.trailers
            .push((name.as_bytes().to_vec(), value.as_ref().to_vec()));
        self
    }

    /// Sets the body; `end_of_stream` of `proxy_on_request_headers` is then false.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Sets a property: `path` segments (e.g. `&["source", "address"]`) and raw value bytes.
    pub fn property(mut self, path: &[&str], value: impl Into<Vec<u8>>) -> Self {
        let path: Vec<String> = path.iter().map(|s| (*s).to_owned()).collect();
        self.properties.retain(|(p, _)| *p != path);
        self.properties.push((path, value.into()));
        self
    }

    /// Sets an integer property, encoded as strait does (8-byte little-endian `i64`).
    pub fn property_i64(self, path: &[&str], value: i64) -> Self {
        self.property(path, value.to_le_bytes().to_vec())
    }

    /// The client's numeric identity (`strait.source_identity`, a decimal string).
    pub fn source_identity(self, identity: u64) -> Self {
        self.property(&["strait", "source_identity"], identity.to_string())
    }

    /// The listener name (`strait.listener`).
    pub fn listener(self, name: &str) -> Self {
        self.property(&["strait", "listener"], name)
    }

    /// Removes a property (e.g. `&["strait", "listener"]`).
    pub fn without_property(mut self, path: &[&str]) -> Self {
        self.properties
            .retain(|(p, _)| !p.iter().map(String::as_str).eq(path.iter().copied()));
        self
    }

    /// The client's address: `source.address` (`ip:port`) and `source.port`.
    pub fn source(self, ip: &str, port: u16) -> Self {
        let address = if ip.contains(':') {
            format!("[{ip}]:{port}")
        } else {
            format!("{ip}:{port}")
        };
        self.property(&["source", "address"], address)
            .property_i64(&["source", "port"], i64::from(port))
    }
}

/// The upstream's response in [`Harness::exchange`].
#[derive(Clone, Debug)]
pub struct TestResponse {
    status: u16,
    headers: HeaderPairs,
    body: Option<Vec<u8>>,
}

impl TestResponse {
    /// A response with `:status: status`.
    pub fn new(status: u16) -> Self {
        TestResponse {
            status,
            headers: vec![(b":status".to_vec(), status.to_string().into_bytes())],
            body: None,
        }
    }

    /// `200`.
    pub fn ok() -> Self {
        Self::new(200)
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.headers
            .push((name.as_bytes().to_vec(), value.as_ref().to_vec()));
        self
    }

    /// Sets the body; `end_of_stream` of `proxy_on_response_headers` is then false.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }
}

/// When the filter answered locally.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// While deciding about the request: the upstream never saw it.
    Request,
    /// While looking at the upstream's response, which it replaced.
    Response,
}

/// What happened to one request in [`Harness::exchange`].
#[derive(Clone, Debug)]
pub struct Outcome {
    request_action: u32,
    response_action: Option<u32>,
    local_response: Option<LocalResponse>,
    responded_in: Option<Phase>,
    request_headers: Vec<(String, String)>,
    response_headers: Vec<(String, String)>,
    set_properties: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Outcome {
    /// The last value the filter set for property `path` (with `set_property`) during this
    /// exchange, if it set one.
    pub fn set_property(&self, path: &[&str]) -> Option<&[u8]> {
        let key = path.join("\0").into_bytes();
        self.set_properties
            .iter()
            .rev()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_slice())
    }

    /// The request went upstream and the upstream's response went back, both with
    /// `CONTINUE`, and no local response was sent.
    pub fn allowed(&self) -> bool {
        self.local_response.is_none()
            && self.request_action == action::CONTINUE
            && self.response_action == Some(action::CONTINUE)
    }

    /// The request went upstream (it may still have been replaced in the response phase).
    pub fn reached_upstream(&self) -> bool {
        self.response_action.is_some()
    }

    /// The status of the local response, if the filter sent one (200 for gRPC denials).
    pub fn status(&self) -> Option<u16> {
        self.local_response
            .as_ref()
            .map(|r| u16::try_from(r.status).unwrap_or(u16::MAX))
    }

    /// The body of the local response (empty if none). For gRPC, the `grpc-message`.
    pub fn body(&self) -> &[u8] {
        self.local_response
            .as_ref()
            .map_or(&[][..], |r| r.body.as_slice())
    }

    /// [`Outcome::body`] as (lossy) text.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(self.body()).into_owned()
    }

    /// The `grpc_status` of the local response, if it was a gRPC one.
    pub fn grpc_status(&self) -> Option<u32> {
        self.local_response.as_ref()?.grpc_status
    }

    /// The local response as the host received it.
    pub fn local_response(&self) -> Option<&LocalResponse> {
        self.local_response.as_ref()
    }

    /// When the local response was sent.
    pub fn responded_in(&self) -> Option<Phase> {
        self.responded_in
    }

    /// The `proxy_action_t` of the request phase (0 `CONTINUE`, 1 `PAUSE`).
    pub fn request_action(&self) -> u32 {
        self.request_action
    }

    /// The `proxy_action_t` of the response phase, if there was one.
    pub fn response_action(&self) -> Option<u32> {
        self.response_action
    }

    /// The request headers after the filter (what goes upstream if allowed), lossy UTF-8.
    pub fn request_headers(&self) -> &[(String, String)] {
        &self.request_headers
    }

    /// The first request header `name` (case-insensitive) after the filter.
    pub fn request_header(&self, name: &str) -> Option<&str> {
        find(&self.request_headers, name)
    }

    /// Every value of request header `name` after the filter.
    pub fn request_header_all(&self, name: &str) -> Vec<&str> {
        self.request_headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The upstream response's headers after the filter (empty if it never got there).
    pub fn response_headers(&self) -> &[(String, String)] {
        &self.response_headers
    }

    /// The first response header `name` (case-insensitive) after the filter.
    pub fn response_header(&self, name: &str) -> Option<&str> {
        find(&self.response_headers, name)
    }
}

fn find<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

// The test filters parse their configuration with `config::from_json`.
#[cfg(all(test, feature = "json"))]
mod tests;
