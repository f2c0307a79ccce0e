//! `pw-basics`: a strait filter written with the public `proxy-wasm` Rust SDK (ABI 0.2.1) and
//! nothing else. It exercises the everyday parts of the SDK, all driven by a JSON plugin
//! configuration (every key optional):
//!
//! ```json
//! {"add_request_headers":{"x-from-filter":"yes"},
//!  "add_response_headers":{"x-strait":"pw"},
//!  "deny_path":"/blocked","deny_status":403,"deny_body":"blocked by pw-basics",
//!  "rewrite_body":{"from":"hello","to":"HOWDY"},
//!  "tick_ms":50,"access_log":true,"queue":true}
//! ```
//!
//! * request / response headers are set (replacing any existing value) from the two maps;
//! * a request whose path (query string ignored) equals `deny_path` gets a local response
//!   `deny_status` with header `x-denied-by: pw-basics` and body `deny_body`;
//! * with `rewrite_body`, the response body is buffered (`Action::Pause` until end of stream) and
//!   every occurrence of `from` is replaced by `to`; `content-length` is removed;
//! * with `tick_ms > 0`, the root context ticks every `tick_ms` ms, each tick increments a
//!   counter in shared data (compare-and-swap), and responses carry `x-ticks: <counter>`;
//! * every request increments the counter metric `pw_basics_requests`;
//! * with `queue`, the root context registers the shared queue `pw_basics.requests`; every
//!   request enqueues its path there, the registering root context drains the queue in
//!   `on_queue_ready` and counts what it took in shared data, and responses carry
//!   `x-dequeued: <count>`;
//! * with `access_log`, `on_log` (after the response) logs one line per request,
//!   `pw-basics access: <:method> <:path> status=<:status> code=<response.code>
//!   ua=<user-agent> type=<content-type> length=<content-length>`, read from the request and response headers (as
//!   the filters passed them on) and the `response.code` property at that point (`-` for
//!   what is missing).

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MetricType, Status};
use serde::Deserialize;

/// Shared-data key of the tick counter (value: the decimal count as UTF-8).
const TICKS_KEY: &str = "pw_basics.ticks";
/// Name of the request counter metric.
const REQUESTS_METRIC: &str = "pw_basics_requests";
/// Shared queue the requests' paths go to, with `queue`.
const QUEUE_NAME: &str = "pw_basics.requests";
/// Shared-data key of how many items the queue's consumer took (decimal UTF-8).
const DEQUEUED_KEY: &str = "pw_basics.dequeued";
/// How many times a tick retries its compare-and-swap before giving up for this tick.
const CAS_RETRIES: usize = 8;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(BasicsRoot::default()) });
}}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    add_request_headers: BTreeMap<String, String>,
    #[serde(default)]
    add_response_headers: BTreeMap<String, String>,
    #[serde(default)]
    deny_path: Option<String>,
    #[serde(default = "default_deny_status")]
    deny_status: u32,
    #[serde(default = "default_deny_body")]
    deny_body: String,
    #[serde(default)]
    rewrite_body: Option<Rewrite>,
    #[serde(default)]
    tick_ms: u64,
    #[serde(default)]
    access_log: bool,
    #[serde(default)]
    queue: bool,
}

fn default_deny_status() -> u32 {
    403
}

fn default_deny_body() -> String {
    "blocked by pw-basics".to_string()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rewrite {
    from: String,
    to: String,
}

impl Config {
    fn parse(raw: &[u8]) -> Result<Config, String> {
        let config: Config = if raw.iter().all(u8::is_ascii_whitespace) {
            Config {
                deny_status: default_deny_status(),
                deny_body: default_deny_body(),
                ..Config::default()
            }
        } else {
            serde_json::from_slice(raw).map_err(|e| format!("invalid JSON configuration: {e}"))?
        };
        if !(200..=599).contains(&config.deny_status) {
            return Err(format!(
                "deny_status {} is not in 200..=599",
                config.deny_status
            ));
        }
        if let Some(rewrite) = &config.rewrite_body {
            if rewrite.from.is_empty() {
                return Err("rewrite_body.from must not be empty".to_string());
            }
        }
        Ok(config)
    }
}

fn log(level: LogLevel, message: &str) {
    // Logging is best effort: a host that refuses a log line must not break the request.
    let _ = hostcalls::log(level, message);
}

#[derive(Default)]
struct BasicsRoot {
    config: Rc<Config>,
    requests_metric: Option<u32>,
    /// The queue this VM registered, with `queue`.
    queue: Option<u32>,
}

/// Adds `n` to the decimal counter at shared-data `key` (compare-and-swap with retries).
fn add_to_counter(ctx: &dyn Context, key: &str, n: u64) {
    for _ in 0..CAS_RETRIES {
        let (value, cas) = ctx.get_shared_data(key);
        let next = parse_counter(value.as_deref()) + n;
        match ctx.set_shared_data(key, Some(next.to_string().as_bytes()), cas) {
            Ok(()) => return,
            Err(Status::CasMismatch) => continue,
            Err(status) => {
                log(
                    LogLevel::Warn,
                    &format!("pw-basics: set_shared_data: {status:?}"),
                );
                return;
            }
        }
    }
    log(
        LogLevel::Warn,
        &format!("pw-basics: counter {key} CAS kept failing; update skipped"),
    );
}

impl Context for BasicsRoot {}

impl RootContext for BasicsRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let raw = self.get_plugin_configuration().unwrap_or_default();
        let config = match Config::parse(&raw) {
            Ok(config) => config,
            Err(e) => {
                log(LogLevel::Error, &format!("pw-basics: {e}"));
                return false;
            }
        };
        self.requests_metric = hostcalls::define_metric(MetricType::Counter, REQUESTS_METRIC).ok();
        if config.tick_ms > 0 {
            self.set_tick_period(Duration::from_millis(config.tick_ms));
        }
        if config.queue {
            self.queue = Some(self.register_shared_queue(QUEUE_NAME));
        }
        log(
            LogLevel::Info,
            &format!(
                "pw-basics: configured (deny_path={:?}, rewrite={}, tick_ms={})",
                config.deny_path,
                config.rewrite_body.is_some(),
                config.tick_ms
            ),
        );
        self.config = Rc::new(config);
        true
    }

    fn on_tick(&mut self) {
        add_to_counter(self, TICKS_KEY, 1);
    }

    fn on_queue_ready(&mut self, queue_id: u32) {
        let mut taken = 0;
        loop {
            match self.dequeue_shared_queue(queue_id) {
                Ok(Some(_)) => taken += 1,
                Ok(None) => break,
                Err(status) => {
                    log(
                        LogLevel::Warn,
                        &format!("pw-basics: dequeue_shared_queue: {status:?}"),
                    );
                    break;
                }
            }
        }
        if taken > 0 {
            add_to_counter(self, DEQUEUED_KEY, taken);
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(BasicsHttp {
            config: Rc::clone(&self.config),
            requests_metric: self.requests_metric,
            queue: self.queue,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

fn parse_counter(value: Option<&[u8]>) -> u64 {
    value
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

struct BasicsHttp {
    config: Rc<Config>,
    requests_metric: Option<u32>,
    queue: Option<u32>,
}

impl Context for BasicsHttp {}

impl HttpContext for BasicsHttp {
    fn on_log(&mut self) {
        if !self.config.access_log {
            return;
        }
        let method = self.get_http_request_header(":method").unwrap_or_default();
        let path = self.get_http_request_header(":path").unwrap_or_default();
        let status = self
            .get_http_response_header(":status")
            .unwrap_or_else(|| "-".to_string());
        // Integer properties are 8 bytes, little-endian.
        let code = self
            .get_property(vec!["response", "code"])
            .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
            .map_or_else(|| "-".to_string(), |b| i64::from_le_bytes(b).to_string());
        let ua = self
            .get_http_request_header("user-agent")
            .unwrap_or_else(|| "-".to_string());
        let response_field = |name: &str| {
            self.get_http_response_header(name)
                .unwrap_or_else(|| "-".to_string())
        };
        let (ctype, length) = (
            response_field("content-type"),
            response_field("content-length"),
        );
        log(
            LogLevel::Info,
            &format!(
                "pw-basics access: {method} {path} status={status} code={code} ua={ua} type={ctype} length={length}"
            ),
        );
    }

    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        if let Some(metric) = self.requests_metric {
            let _ = hostcalls::increment_metric(metric, 1);
        }
        if let Some(queue) = self.queue {
            let path = self.get_http_request_header(":path").unwrap_or_default();
            if let Err(status) = self.enqueue_shared_queue(queue, Some(path.as_bytes())) {
                log(
                    LogLevel::Warn,
                    &format!("pw-basics: enqueue_shared_queue: {status:?}"),
                );
            }
        }

        if let Some(deny_path) = &self.config.deny_path {
            let path = self.get_http_request_header(":path").unwrap_or_default();
            let path_only = path.split('?').next().unwrap_or_default();
            if path_only == deny_path {
                self.send_http_response(
                    self.config.deny_status,
                    vec![("content-type", "text/plain"), ("x-denied-by", "pw-basics")],
                    Some(self.config.deny_body.as_bytes()),
                );
                return Action::Pause;
            }
        }

        for (name, value) in &self.config.add_request_headers {
            self.set_http_request_header(name, Some(value));
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        for (name, value) in &self.config.add_response_headers {
            self.set_http_response_header(name, Some(value));
        }
        if self.config.tick_ms > 0 {
            let (value, _cas) = self.get_shared_data(TICKS_KEY);
            let ticks = parse_counter(value.as_deref());
            self.set_http_response_header("x-ticks", Some(&ticks.to_string()));
        }
        if self.config.queue {
            let (value, _cas) = self.get_shared_data(DEQUEUED_KEY);
            let n = parse_counter(value.as_deref());
            self.set_http_response_header("x-dequeued", Some(&n.to_string()));
        }
        if self.config.rewrite_body.is_some() {
            // The body length changes after the rewrite; headers cannot be changed once this
            // callback returns, so drop the stale length now (the host re-frames the body).
            self.set_http_response_header("content-length", None);
        }
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(rewrite) = &self.config.rewrite_body else {
            return Action::Continue;
        };
        if !end_of_stream {
            // Keep buffering on the host side until the whole body is there.
            return Action::Pause;
        }
        if let Some(body) = self.get_http_response_body(0, body_size) {
            if let Some(new_body) =
                replace_all(&body, rewrite.from.as_bytes(), rewrite.to.as_bytes())
            {
                self.set_http_response_body(0, body_size, &new_body);
            }
        }
        Action::Continue
    }
}

/// Replaces every non-overlapping occurrence of `from` (non-empty) in `haystack` by `to`;
/// `None` when there is none. Works on bytes so non-UTF-8 bodies are handled too.
fn replace_all(haystack: &[u8], from: &[u8], to: &[u8]) -> Option<Vec<u8>> {
    if from.is_empty() || haystack.len() < from.len() {
        return None;
    }
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    let mut replaced = false;
    while i < haystack.len() {
        if haystack[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
            replaced = true;
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    replaced.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_full_example_configuration() {
        let raw = br#"{"add_request_headers":{"x-from-filter":"yes"},"add_response_headers":{"x-strait":"pw"},"deny_path":"/blocked","deny_status":403,"deny_body":"blocked by pw-basics","rewrite_body":{"from":"hello","to":"HOWDY"},"tick_ms":50,"access_log":true}"#;
        let c = Config::parse(raw).expect("valid");
        assert!(c.access_log);
        assert_eq!(
            c.add_request_headers
                .get("x-from-filter")
                .map(String::as_str),
            Some("yes")
        );
        assert_eq!(
            c.add_response_headers.get("x-strait").map(String::as_str),
            Some("pw")
        );
        assert_eq!(c.deny_path.as_deref(), Some("/blocked"));
        assert_eq!(c.deny_status, 403);
        assert_eq!(c.deny_body, "blocked by pw-basics");
        let r = c.rewrite_body.expect("rewrite");
        assert_eq!((r.from.as_str(), r.to.as_str()), ("hello", "HOWDY"));
        assert_eq!(c.tick_ms, 50);
    }

    #[test]
    fn empty_configuration_means_defaults() {
        for raw in [&b""[..], b"  \n", b"{}"] {
            let c = Config::parse(raw).expect("valid");
            assert!(c.add_request_headers.is_empty() && c.add_response_headers.is_empty());
            assert_eq!((c.deny_path, c.deny_status), (None, 403));
            assert_eq!(c.deny_body, "blocked by pw-basics");
            assert!(c.rewrite_body.is_none());
            assert_eq!(c.tick_ms, 0);
            assert!(!c.access_log);
        }
    }

    #[test]
    fn rejects_bad_configurations() {
        for raw in [
            &br#"{"add_request_header":{}}"#[..],
            br#"{"deny_status":99}"#,
            br#"{"rewrite_body":{"from":"","to":"x"}}"#,
            br#"{"tick_ms":-1}"#,
            b"not json",
        ] {
            assert!(
                Config::parse(raw).is_err(),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn replaces_every_occurrence_bytewise() {
        let r = |h: &[u8], f: &[u8], t: &[u8]| replace_all(h, f, t);
        assert_eq!(
            r(b"hello, hello!", b"hello", b"HOWDY").as_deref(),
            Some(&b"HOWDY, HOWDY!"[..])
        );
        assert_eq!(r(b"aaa", b"aa", b"b").as_deref(), Some(&b"ba"[..]));
        assert_eq!(
            r(b"\xff\xfehello", b"hello", b"").as_deref(),
            Some(&b"\xff\xfe"[..])
        );
        assert_eq!(r(b"nothing here", b"hello", b"x"), None);
        assert_eq!(r(b"hi", b"hello", b"x"), None);
        assert_eq!(r(b"abc", b"", b"x"), None);
    }

    #[test]
    fn counter_parsing_is_lenient() {
        assert_eq!(parse_counter(None), 0);
        assert_eq!(parse_counter(Some(b"41")), 41);
        assert_eq!(parse_counter(Some(b"garbage")), 0);
    }
}
