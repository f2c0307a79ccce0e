//! `pw-http-authz`: external authorization with the public `proxy-wasm` Rust SDK (ABI 0.2.1).
//!
//! Configuration (JSON plugin configuration):
//!
//! ```json
//! {"cluster":"authz","path":"/check","timeout_ms":500,"check":"headers"}
//! ```
//!
//! With `check: headers` (the default), `on_http_request_headers` dispatches an HTTP callout to
//! `cluster` for every request: `GET <path>` with `:authority: <cluster>` plus
//! `x-original-path` (the request's `:path`) and `x-user` copied from the request when present,
//! and pauses the request. When the callout answers:
//!
//! * status 200 → the request is resumed and goes upstream unchanged;
//! * any other status → local response `403`, body `denied by authz`, header
//!   `x-authz-status: <callout status>`;
//! * no response at all (connect failure, timeout: no `:status` in the callout response) or the
//!   callout could not be dispatched → local response `503`, body `authz unavailable`.
//!
//! Every local response also carries `x-denied-by: pw-http-authz`.
//!
//! `timeout_ms` (default 500) bounds the callout; 0 sets no bound of the filter's own, and the
//! host's applies (under strait 60 s, and the listener's request timeout for a paused request).
//!
//! With `check: request_body` the callout is a `POST` carrying the whole request body: the
//! filter buffers the body (`Action::Pause` until the end of the stream) and calls out from
//! the last body callback, pausing there; a request without a body is checked from its
//! headers. With `check: response_body` the response body is buffered and sent the same way;
//! a denial then comes after the response head, so the host resets the stream instead of
//! answering 403.

use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};
use serde::Deserialize;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(AuthzRoot::default()) });
}}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    cluster: String,
    #[serde(default = "default_path")]
    path: String,
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
    #[serde(default)]
    check: Check,
}

/// What the callout is about.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Check {
    /// The request head (the callout has no body).
    #[default]
    Headers,
    /// The whole request body.
    RequestBody,
    /// The whole response body.
    ResponseBody,
}

fn default_path() -> String {
    "/check".to_string()
}

fn default_timeout_ms() -> u64 {
    500
}

impl Config {
    fn parse(raw: &[u8]) -> Result<Config, String> {
        let config: Config =
            serde_json::from_slice(raw).map_err(|e| format!("invalid JSON configuration: {e}"))?;
        if config.cluster.is_empty() {
            return Err("cluster must not be empty".to_string());
        }
        if !config.path.starts_with('/') {
            return Err(format!("path {:?} must start with '/'", config.path));
        }
        if config.timeout_ms > u64::from(u32::MAX) {
            return Err(format!("timeout_ms {} is out of range", config.timeout_ms));
        }
        Ok(config)
    }
}

fn log(level: LogLevel, message: &str) {
    let _ = hostcalls::log(level, message);
}

#[derive(Default)]
struct AuthzRoot {
    config: Option<Rc<Config>>,
}

impl Context for AuthzRoot {}

impl RootContext for AuthzRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let raw = self.get_plugin_configuration().unwrap_or_default();
        match Config::parse(&raw) {
            Ok(config) => {
                log(
                    LogLevel::Info,
                    &format!(
                        "pw-http-authz: configured (cluster={}, path={}, timeout_ms={})",
                        config.cluster, config.path, config.timeout_ms
                    ),
                );
                self.config = Some(Rc::new(config));
                true
            }
            Err(e) => {
                log(LogLevel::Error, &format!("pw-http-authz: {e}"));
                false
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        // `on_configure` succeeded before any HTTP context is created; should a host create one
        // anyway, the filter denies (503) rather than letting traffic through unchecked.
        Some(Box::new(AuthzHttp {
            config: self.config.clone(),
            pending: None,
            original_path: None,
            user: None,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct AuthzHttp {
    config: Option<Rc<Config>>,
    /// Token of the outstanding callout, if any.
    pending: Option<u32>,
    /// The request's `:path` and `x-user`, read with its headers (a host need not keep the
    /// headers readable in the body callbacks that call out in the body modes).
    original_path: Option<String>,
    user: Option<String>,
}

impl AuthzHttp {
    fn deny(&self, status: u32, body: &str, authz_status: Option<&str>) {
        let mut headers = vec![
            ("content-type", "text/plain"),
            ("x-denied-by", "pw-http-authz"),
        ];
        if let Some(s) = authz_status {
            headers.push(("x-authz-status", s));
        }
        self.send_http_response(status, headers, Some(body.as_bytes()));
    }
}

impl Context for AuthzHttp {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        _num_headers: usize,
        _body_size: usize,
        _num_trailers: usize,
    ) {
        if self.pending != Some(token_id) {
            log(
                LogLevel::Warn,
                &format!("pw-http-authz: unexpected callout token {token_id}"),
            );
            return;
        }
        self.pending = None;
        match self.get_http_call_response_header(":status") {
            Some(status) if status == "200" => match self.check() {
                Check::ResponseBody => self.resume_http_response(),
                _ => self.resume_http_request(),
            },
            Some(status) => self.deny(403, "denied by authz", Some(&status)),
            None => {
                log(
                    LogLevel::Warn,
                    "pw-http-authz: callout failed (no response)",
                );
                self.deny(503, "authz unavailable", None);
            }
        }
    }
}

impl AuthzHttp {
    /// Sends the callout (with `body` as a POST) and records its token; a refusal denies.
    fn call_out(&mut self, body: Option<&[u8]>) {
        let Some(config) = self.config.clone() else {
            self.deny(503, "authz unavailable", None);
            return;
        };
        let (original_path, user) = (self.original_path.clone(), self.user.clone());

        let mut headers = vec![
            (":method", if body.is_some() { "POST" } else { "GET" }),
            (":path", config.path.as_str()),
            (":authority", config.cluster.as_str()),
        ];
        if let Some(p) = original_path.as_deref() {
            headers.push(("x-original-path", p));
        }
        if let Some(u) = user.as_deref() {
            headers.push(("x-user", u));
        }

        match self.dispatch_http_call(
            &config.cluster,
            headers,
            body,
            vec![],
            Duration::from_millis(config.timeout_ms),
        ) {
            Ok(token) => {
                self.pending = Some(token);
            }
            Err(status) => {
                log(
                    LogLevel::Warn,
                    &format!("pw-http-authz: dispatch_http_call: {status:?}"),
                );
                self.deny(503, "authz unavailable", None);
            }
        }
    }

    /// A body callback in mode `mode`: buffer until the end of the stream (the host calls
    /// again with everything so far), then send the whole body (`read`) and pause.
    fn check_body(
        &mut self,
        mode: Check,
        end_of_stream: bool,
        read: impl FnOnce(&Self) -> Option<Vec<u8>>,
    ) -> Action {
        if self.check() != mode {
            return Action::Continue;
        }
        if !end_of_stream {
            return Action::Pause;
        }
        let body = read(self).unwrap_or_default();
        self.call_out(Some(&body));
        Action::Pause
    }

    fn check(&self) -> Check {
        self.config.as_ref().map_or(Check::Headers, |c| c.check)
    }
}

impl HttpContext for AuthzHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.original_path = self.get_http_request_header(":path");
        self.user = self.get_http_request_header("x-user");
        if self.check() != Check::Headers && self.config.is_some() {
            if self.check() == Check::RequestBody && end_of_stream {
                // No body will come: check the request by its head.
                self.call_out(Some(b""));
                return Action::Pause;
            }
            return Action::Continue;
        }
        self.call_out(None);
        Action::Pause
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.check_body(Check::RequestBody, end_of_stream, |c| {
            c.get_http_request_body(0, body_size)
        })
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.check_body(Check::ResponseBody, end_of_stream, |c| {
            c.get_http_response_body(0, body_size)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_configuration_with_defaults() {
        let c = Config::parse(br#"{"cluster":"authz","path":"/check","timeout_ms":500}"#)
            .expect("valid");
        assert_eq!(
            (c.cluster.as_str(), c.path.as_str(), c.timeout_ms),
            ("authz", "/check", 500)
        );
        let c = Config::parse(br#"{"cluster":"authz"}"#).expect("valid");
        assert_eq!((c.path.as_str(), c.timeout_ms), ("/check", 500));
        assert_eq!(c.check, Check::Headers);
        let c = Config::parse(br#"{"cluster":"authz","check":"request_body"}"#).expect("valid");
        assert_eq!(c.check, Check::RequestBody);
        let c = Config::parse(br#"{"cluster":"authz","check":"response_body"}"#).expect("valid");
        assert_eq!(c.check, Check::ResponseBody);
    }

    #[test]
    fn rejects_bad_configurations() {
        for raw in [
            &b""[..],
            b"{}",
            br#"{"cluster":""}"#,
            br#"{"cluster":"a","path":"check"}"#,
            br#"{"cluster":"a","timeout_ms":99999999999}"#,
            br#"{"cluster":"a","extra":1}"#,
            br#"{"cluster":"a","check":"body"}"#,
        ] {
            assert!(
                Config::parse(raw).is_err(),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
    }
}
