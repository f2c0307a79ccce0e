//! WASM filters in the request path: modules built with the public crates.io `proxy-wasm` SDK
//! (for wasm32-wasip1 and wasm32-unknown-unknown), the hostile-filter suite, and hot reload.
//!
//! The modules come from `scripts/build-filters.sh` (`target/filters/`). Missing modules fail
//! the test in CI and skip it elsewhere, with a printed reason.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use common::{h1_get, http_listener, Proxy, Upstream, ENGINES};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use strait::flows::Verdict;

/// A built filter module, or `None` (skip) outside CI when it has not been built.
fn module(file: &str) -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/filters")
        .join(file);
    if p.exists() {
        return Some(p.canonicalize().unwrap());
    }
    let why = format!(
        "{} not built: run scripts/build-filters.sh (scripts/test.sh does)",
        p.display()
    );
    if std::env::var_os("CI").is_some() {
        panic!("{why}");
    }
    println!("SKIPPED: {why}");
    None
}

fn wat(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/filters/wat")
        .join(file)
}

/// Log lines of the whole test binary, to check that failures name their filter.
fn logs() -> &'static Mutex<Vec<u8>> {
    static LOGS: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        struct W;
        impl std::io::Write for W {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                logs().lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let _ = tracing_subscriber::fmt()
            .with_writer(|| W)
            .with_ansi(false)
            .with_env_filter("info")
            .try_init();
        Mutex::new(Vec::new())
    })
}

fn logged(needle: &str) -> bool {
    logged_since(0, needle)
}

/// Whether `needle` is in the log from byte `mark` on (a mark: the log's length earlier).
fn logged_since(mark: usize, needle: &str) -> bool {
    String::from_utf8_lossy(&logs().lock().unwrap()[mark..]).contains(needle)
}

/// Whether `needle` is logged within `limit` (log lines of other tasks come a little later).
async fn logged_within(needle: &str, limit: Duration) -> bool {
    logged_within_since(0, needle, limit).await
}

/// [`logged_within`], looking only at the log from byte `mark` on.
async fn logged_within_since(mark: usize, needle: &str, limit: Duration) -> bool {
    let t = std::time::Instant::now();
    while !logged_since(mark, needle) && t.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    logged_since(mark, needle)
}

fn filter_block(name: &str, module: &std::path::Path, config: &str, extra: &str) -> String {
    format!(
        "    filters:\n      - name: {name}\n        module: {}\n        config: {config}\n{extra}",
        module.display()
    )
}

/// A proxy with one listener, `web`, forwarding to `up` through one filter.
async fn one_filter_proxy(
    up: SocketAddr,
    name: &str,
    module: &std::path::Path,
    config: &str,
    extra: &str,
) -> Proxy {
    Proxy::start(&format!(
        "listeners:\n{}",
        http_listener("web", up, &filter_block(name, module, config, extra))
    ))
    .await
}

async fn get(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, http::HeaderMap, String) {
    let (s, h, b) = h1_get(addr, path, headers).await;
    (s.as_u16(), h, b)
}

const BASICS_CONFIG: &str = r#"'{"add_request_headers":{"x-from-filter":"yes"},"add_response_headers":{"x-strait":"pw"},"deny_path":"/blocked","deny_status":403,"deny_body":"blocked by pw-basics","rewrite_body":{"from":"hello","to":"HOWDY!"},"tick_ms":20,"access_log":true}'"#;

async fn basics(file: &str) {
    for engine in ENGINES {
        basics_on(file, engine).await;
    }
}

async fn basics_on(file: &str, engine: &str) {
    let _ = logs();
    let Some(m) = module(file) else { return };
    let up = Upstream::start().await;
    let p = Proxy::start(&format!(
        "admin: {{ address: 127.0.0.1:0 }}\nlisteners:\n{}{}{}{}",
        http_listener(
            "web",
            up.addr,
            &format!("{engine}{}", filter_block("basics", &m, BASICS_CONFIG, ""))
        ),
        // Only logs: both heads pass unchanged (raw on the native engine).
        http_listener(
            "logged",
            up.addr,
            &format!(
                "{engine}{}",
                filter_block("basics", &m, r#"'{"access_log":true}'"#, "")
            )
        ),
        // A filter before it rewrites `:path`: the log reads the path as passed on.
        http_listener(
            "rewritten",
            up.addr,
            &format!(
                "{engine}{}",
                filter_block(
                    "rewrite",
                    &module("path_rewrite.wasm").unwrap(),
                    r#"'{"rules":[{"prefix":"/old/","replace":"/new/"}]}'"#,
                    &format!(
                        "      - name: basics\n        module: {}\n        config: '{{\"access_log\":true}}'\n",
                        m.display()
                    )
                )
            )
        ),
        // A filter after it traps on the request head (its VM goes, and the head with it):
        // the log reads the request line as it arrived, and no fields.
        http_listener(
            "failing",
            up.addr,
            &format!(
                "{engine}{}",
                filter_block(
                    "basics",
                    &m,
                    r#"'{"access_log":true}'"#,
                    &format!(
                        "      - name: trap\n        module: {}\n        config: trap\n",
                        module("hostile.wasm").unwrap().display()
                    )
                )
            )
        )
    ))
    .await;
    let web = p.addr("web");

    // Header add from config, both directions.
    let (s, h, body) = get(web, "/headers", &[]).await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("x-from-filter: yes"), "{body}");
    assert_eq!(h["x-strait"], "pw");

    // A local response on a path; the upstream never sees it.
    let before = up.connections.load(Ordering::SeqCst);
    let (s, h, body) = get(web, "/blocked?x=1", &[]).await;
    assert_eq!(s, 403);
    assert_eq!(body, "blocked by pw-basics");
    assert_eq!(h["x-denied-by"], "pw-basics");
    assert_eq!(up.connections.load(Ordering::SeqCst), before);

    // Body rewrite: the filter pauses until the end of the stream, then replaces the body
    // with a longer one (it removed content-length; the native engine sends it chunked).
    let (s, h, body) = get(web, "/hello", &[]).await;
    assert_eq!(s, 200);
    assert_eq!(body, "HOWDY!, HOWDY! world");
    assert!(h.get("content-length").is_none_or(|v| v == "20"));

    // A large streamed body is rewritten too (the filter sees it all at the end).
    let (s, _, body) = get(web, "/stream/300000", &[]).await;
    assert_eq!((s, body.len()), (200, 300_000));

    // The timer ticks: on_tick counts in shared data, responses report it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, h, _) = get(web, "/", &[]).await;
    let ticks: u64 = h["x-ticks"].to_str().unwrap().parse().unwrap();
    assert!(ticks >= 3, "only {ticks} ticks in 200 ms at 20 ms");

    // Filter-defined metrics are exported.
    let (_, _, metrics) = get(p.admin.unwrap(), "/metrics", &[]).await;
    assert!(
        metrics.contains("strait_wasm_pw_basics_requests_total"),
        "{metrics}"
    );
    assert!(
        metrics.contains("strait_filter_verdicts_total{listener=\"web\",kind=\"denied\"} 1"),
        "{metrics}"
    );

    let flows = p.flows(5).await;
    let denied = flows
        .iter()
        .find(|f| f.path.as_deref() == Some("/blocked?x=1"))
        .unwrap();
    assert_eq!(denied.verdict, Verdict::Denied);
    assert_eq!(denied.filter.as_deref(), Some("basics"));
    assert!(flows
        .iter()
        .filter(|f| f.path.as_deref() != Some("/blocked?x=1"))
        .all(|f| f.verdict == Verdict::Forwarded));

    // `on_log` comes after the response: it still reads the request's pseudo-headers, the
    // response's `:status` and `response.code`, and both heads' fields as the filters passed
    // them on (here the filter removed the response's `content-length`), for a forwarded and a
    // denied request (the filter's local response); and the fields of heads that passed
    // unchanged.
    let tag = format!(
        "{file}-{}",
        if engine.contains("native") {
            "native"
        } else {
            "hyper"
        }
    );
    let ua = [("user-agent", "strait-test/1")];
    let (s, _, body) = get(web, &format!("/hello?t={tag}"), &ua).await;
    assert_eq!((s, body.as_str()), (200, "HOWDY!, HOWDY! world"));
    let (s, _, _) = get(web, &format!("/blocked?t={tag}"), &ua).await;
    assert_eq!(s, 403);
    let (s, _, _) = get(p.addr("logged"), &format!("/hello?t={tag}"), &ua).await;
    assert_eq!(s, 200);
    let (s, _, _) = get(p.addr("failing"), &format!("/fail?t={tag}"), &ua).await;
    assert_eq!(s, 503);
    let (s, h, _) = get(p.addr("rewritten"), &format!("/old/x?t={tag}"), &ua).await;
    assert_eq!(
        (s, h["x-upstream-path"].to_str().unwrap()),
        (200, format!("/new/x?t={tag}").as_str())
    );
    for line in [
        format!(
            "pw-basics access: GET /hello?t={tag} status=200 code=200 ua=strait-test/1 type=- length=- "
        ),
        format!("pw-basics access: GET /blocked?t={tag} status=403 code=403 ua=strait-test/1 type=text/plain "),
        format!(
            "pw-basics access: GET /hello?t={tag} status=200 code=200 ua=strait-test/1 type=- length=18 "
        ),
        format!(
            "pw-basics access: GET /new/x?t={tag} status=200 code=200 ua=strait-test/1 type=- length=2 "
        ),
        format!(
            "pw-basics access: GET /fail?t={tag} status=503 code=503 ua=- type=- length=- "
        ),
    ] {
        assert!(logged_within(&line, Duration::from_secs(5)).await, "no `{line}` in the log: {}", String::from_utf8_lossy(&logs().lock().unwrap()).lines().filter(|l| l.contains("access") || l.contains("rewrit")).collect::<Vec<_>>().join("\n"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_sdk_filter_wasip1() {
    basics("pw_basics.wasm").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_sdk_filter_wasm32_unknown() {
    basics("pw_basics.unknown.wasm").await;
}

/// A filter that never reads a head's fields leaves both heads as the listener without filters
/// sends them (the native engine hands them on raw); one that reads but does not change them
/// changes nothing either, nor one that writes each whole map back as it read it (one Host,
/// not `:authority` and `host` as two). Bodies through the body callbacks keep their framing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_that_do_not_change_heads_leave_them_as_without_filters() {
    let Some(m) = module("pw_basics.wasm") else {
        return;
    };
    // Sorted lines, so field order (which a `HeaderMap` may change) does not count.
    fn lines(s: &str) -> Vec<&str> {
        let mut v: Vec<&str> = s.lines().collect();
        v.sort_unstable();
        v
    }
    fn fields(h: &http::HeaderMap) -> Vec<String> {
        let mut v: Vec<String> = h
            .iter()
            .filter(|(k, _)| *k != "date")
            .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap()))
            .collect();
        v.sort_unstable();
        v
    }
    for engine in ENGINES {
        let up = Upstream::start().await;
        let with = |name: &str, m: &std::path::Path, config: &str| {
            http_listener(
                name,
                up.addr,
                &format!("{engine}{}", filter_block("b", m, config, "")),
            )
        };
        let p = Proxy::start(&format!(
            "listeners:\n{}{}{}{}",
            http_listener("plain", up.addr, engine),
            with("untouched", &m, "'{}'"),
            with("read", &m, r#"'{"deny_path":"/nope"}'"#),
            // Each head's whole map read and written back.
            with("rewritten", &wat("headers-roundtrip.wat"), "''"),
        ))
        .await;
        let sent = [
            ("X-Custom", "one"),
            ("x-forwarded-for", "10.0.0.1"),
            ("connection", "x-hop"),
            ("x-hop", "dropped"),
            ("te", "trailers"),
        ];
        let (s, h, plain) = get(p.addr("plain"), "/headers?q=1", &sent).await;
        assert_eq!(s, 200, "{engine}{plain}");
        assert!(
            plain.contains("x-forwarded-for: 10.0.0.1, 127.0.0.1"),
            "{plain}"
        );
        assert!(!plain.contains("x-hop"), "{plain}");
        for name in ["untouched", "read", "rewritten"] {
            let (s2, h2, body) = get(p.addr(name), "/headers?q=1", &sent).await;
            assert_eq!(s2, s, "{engine}{name}");
            assert_eq!(lines(&body), lines(&plain), "{engine}{name}");
            assert_eq!(fields(&h2), fields(&h), "{engine}{name}");
            // A content-length body and a streamed (chunked) one through on_response_body.
            let (s2, h2, body) = get(p.addr(name), "/hello", &[]).await;
            assert_eq!(
                (s2, body.as_str()),
                (200, "hello, hello world"),
                "{engine}{name}"
            );
            assert_eq!(h2["content-length"], "18", "{engine}{name}");
            let (s2, h2, body) = get(p.addr(name), "/stream/200000", &[]).await;
            assert_eq!((s2, body.len()), (200, 200_000), "{engine}{name}");
            assert!(h2.get("content-length").is_none(), "{engine}{name}");
        }
        let flows = p.flows(10).await;
        assert_eq!(flows.len(), 10, "{engine}");
        assert!(flows
            .iter()
            .all(|f| f.verdict == Verdict::Forwarded && f.status == Some(200)));
    }
}

/// Heads a filter edits are framed for what is really sent (native HTTP/1.1 path): a
/// `content-length` a filter puts on a bodiless request goes as 0; a status made bodiless
/// (204) drops the upstream's body, and one given a body status gets `content-length: 0`,
/// so the next response on the connection is read where it starts; changing the method to
/// HEAD is refused with a clear error instead of a response framed for the wrong method.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_edited_heads_keep_the_framing_right() {
    let Some(m) = module("pw_basics.wasm") else {
        return;
    };
    let up = Upstream::start().await;
    let with = |name: &str, config: &str| {
        http_listener(
            name,
            up.addr,
            &format!("{}{}", ENGINES[0], filter_block("b", &m, config, "")),
        )
    };
    let p = Proxy::start(&format!(
        "listeners:\n{}{}{}{}",
        with(
            "length",
            r#"'{"add_request_headers":{"content-length":"10"}}'"#
        ),
        with(
            "nocontent",
            r#"'{"add_response_headers":{":status":"204"}}'"#
        ),
        with("content", r#"'{"add_response_headers":{":status":"200"}}'"#),
        with("head", r#"'{"add_request_headers":{":method":"HEAD"}}'"#),
    ))
    .await;
    let wait = Duration::from_secs(5);
    // Two requests on one connection: the second response must start where the first ends.
    let twice = |path: &str| {
        format!(
            "GET {path} HTTP/1.1\r\nhost: a\r\n\r\nGET {path} HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n"
        )
    };
    let t = std::time::Instant::now();
    let (s, _, body) = get(p.addr("length"), "/headers", &[]).await;
    assert_eq!(s, 200, "{body}");
    assert!(body.lines().any(|l| l == "content-length: 0"), "{body}");
    assert!(!body.contains("content-length: 10"), "{body}");
    assert!(t.elapsed() < wait, "the upstream waited for a body");

    let out = common::raw_exchange(p.addr("nocontent"), twice("/hello").as_bytes(), wait).await;
    assert_eq!(
        out.matches("HTTP/1.1 204 No Content\r\n").count(),
        2,
        "{out}"
    );
    assert!(!out.contains("hello"), "{out}");
    assert!(
        !out.contains("content-length"),
        "a 204 with a length: {out}"
    );

    let out = common::raw_exchange(p.addr("content"), twice("/nocontent").as_bytes(), wait).await;
    assert_eq!(out.matches("HTTP/1.1 200 OK\r\n").count(), 2, "{out}");
    assert_eq!(out.matches("content-length: 0\r\n").count(), 2, "{out}");

    let t = std::time::Instant::now();
    let (s, _, body) = get(p.addr("head"), "/hello", &[]).await;
    assert_eq!(s, 500, "{body}");
    assert!(
        body.contains("changed the request method to HEAD"),
        "{body}"
    );
    assert!(t.elapsed() < wait);
    let flows = p.flows(6).await;
    let errors: Vec<_> = flows
        .iter()
        .filter(|f| f.verdict == Verdict::Error)
        .collect();
    assert_eq!(errors.len(), 1, "{flows:?}");
}

async fn authz(file: &str) {
    let _ = logs();
    let Some(m) = module(file) else { return };
    let up = Upstream::start().await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let cfg = r#"'{"cluster":"authz","path":"/check","timeout_ms":1000}'"#;
    let down_cfg = r#"'{"cluster":"down","path":"/check","timeout_ms":300}'"#;
    let p = Proxy::start(&format!(
        "clusters:\n  - {{ name: authz, address: {} }}\n  - {{ name: down, address: {closed} }}\nlisteners:\n{}{}",
        up.addr,
        http_listener("web", up.addr, &filter_block("authz", &m, cfg, "")),
        http_listener("down", up.addr, &filter_block("authz", &m, down_cfg, "")),
    ))
    .await;
    let (s, _, body) = get(p.addr("web"), "/headers", &[("x-user", "alice")]).await;
    assert_eq!(s, 200, "{body}");
    let (s, h, body) = get(p.addr("web"), "/headers", &[("x-user", "bob")]).await;
    assert_eq!((s, body.as_str()), (403, "denied by authz"));
    assert_eq!(h["x-authz-status"], "403");
    // The callout cannot connect: the filter decides (503), the proxy stays up.
    let (s, _, _) = get(p.addr("down"), "/headers", &[("x-user", "alice")]).await;
    assert_eq!(s, 503);
    let (s, _, _) = get(p.addr("web"), "/headers", &[("x-user", "alice")]).await;
    assert_eq!(s, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_call_authz_wasip1() {
    authz("pw_http_authz.wasm").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_call_authz_wasm32_unknown() {
    authz("pw_http_authz.unknown.wasm").await;
}

/// A filter that pauses the request (an `http_call` to an authz cluster) and then resumes it
/// hands the head on to the rest of the chain: the second filter still adds its headers, and
/// still decides what it denies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_pause_continues_through_the_rest_of_the_chain() {
    let _ = logs();
    let (Some(authz), Some(basics)) = (module("pw_http_authz.wasm"), module("pw_basics.wasm"))
    else {
        return;
    };
    let up = Upstream::start().await;
    let authz_cfg = r#"'{"cluster":"authz","path":"/check","timeout_ms":1000}'"#;
    let chain = format!(
        "{}      - name: basics\n        module: {}\n        config: {BASICS_CONFIG}\n",
        filter_block("authz", &authz, authz_cfg, ""),
        basics.display()
    );
    let p = Proxy::start(&format!(
        "clusters:\n  - {{ name: authz, address: {} }}\nlisteners:\n{}",
        up.addr,
        http_listener("web", up.addr, &chain),
    ))
    .await;
    let web = p.addr("web");
    let (s, h, body) = get(web, "/headers", &[("x-user", "alice")]).await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("x-from-filter: yes"), "{body}");
    assert_eq!(h["x-strait"], "pw");
    let (s, _, body) = get(web, "/blocked", &[("x-user", "alice")]).await;
    assert_eq!((s, body.as_str()), (403, "blocked by pw-basics"));
    let (s, _, body) = get(web, "/blocked", &[("x-user", "bob")]).await;
    assert_eq!((s, body.as_str()), (403, "denied by authz"));
    let flows = p.flows(3).await;
    let by = |user_path: &str, filter: &str| {
        flows.iter().any(|f| {
            f.path.as_deref() == Some(user_path)
                && f.verdict == Verdict::Denied
                && f.filter.as_deref() == Some(filter)
        })
    };
    assert!(by("/blocked", "basics"), "{flows:?}");
    assert!(by("/blocked", "authz"), "{flows:?}");
}

/// A filter that pauses at the end of the request body (it sends the whole body to an authz
/// cluster first) holds the request there: the upstream gets the body only when the callout
/// allows it; a denial is the filter's 403 and the body never arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_at_the_end_of_the_request_body_holds_it_until_resumed() {
    let _ = logs();
    let Some(authz) = module("pw_http_authz.wasm") else {
        return;
    };
    let up = Upstream::start().await;
    let cfg =
        r#"'{"cluster":"authz","path":"/check-body","timeout_ms":1000,"check":"request_body"}'"#;
    // This authz service answers after 5 s; the listener waits 300 ms.
    let slow =
        r#"'{"cluster":"authz","path":"/slow/5000","timeout_ms":60000,"check":"request_body"}'"#;
    let p = Proxy::start(&format!(
        "admin: {{ address: 127.0.0.1:0 }}\nclusters:\n  - {{ name: authz, address: {} }}\nlisteners:\n{}{}",
        up.addr,
        http_listener("web", up.addr, &filter_block("authz", &authz, cfg, "")),
        http_listener(
            "slow",
            up.addr,
            &filter_block("authz", &authz, slow, "    timeouts: { request: 300ms }\n")
        ),
    ))
    .await;
    let post = |listener: &'static str, body: &'static [u8]| {
        let addr = p.addr(listener);
        async move {
            let mut send = common::h1_client(addr).await;
            let req = http::Request::post("/sink")
                .header("host", "example.test")
                .body(Full::new(Bytes::from_static(body)))
                .unwrap();
            let resp = send.send_request(req).await.unwrap();
            let status = resp.status().as_u16();
            let got = resp.into_body().collect().await.unwrap().to_bytes();
            (status, String::from_utf8_lossy(&got).into_owned())
        }
    };
    // Allowed: the whole body reaches the upstream (`/sink` answers its length).
    let allowed: &[u8] = b"an ordinary request body, long enough to matter";
    assert_eq!(post("web", allowed).await, (200, allowed.len().to_string()));
    // Denied: the filter's answer, not the upstream's.
    assert_eq!(
        post("web", b"this one carries a secret").await,
        (403, "denied by authz".to_owned())
    );
    // An upstream that answers without waiting for the body (`/` answers at once) does not
    // get its answer past the filter (before, the upstream's 200 went to the client). Either
    // it stops taking the body first, so the filter never decides and the stream fails closed
    // (503), or the filter's callout is quicker and its deny comes first (403): a race between
    // two local servers, with the client denied either way.
    let mut send = common::h1_client(p.addr("web")).await;
    let req = http::Request::post("/")
        .header("host", "example.test")
        .body(Full::new(Bytes::from_static(
            b"early answer, but a secret body",
        )))
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let got = resp.into_body().collect().await.unwrap().to_bytes();
    let got = String::from_utf8_lossy(&got);
    match status {
        503 => assert!(got.contains("before the filter decided on it"), "{got}"),
        403 => assert_eq!(got, "denied by authz"),
        _ => panic!("the upstream's early answer got past the filter: {status} {got}"),
    }
    // Never resumed: the stream fails (closed: 503) at the listener's request timeout.
    let t = std::time::Instant::now();
    let (s, _) = post("slow", allowed).await;
    assert_eq!(s, 503);
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    // A request without a body is checked too (an empty POST to the authz service).
    let (s, _, body) = get(p.addr("web"), "/hello", &[]).await;
    assert_eq!((s, body.as_str()), (200, "hello, hello world"));
    let flows = p.flows(5).await;
    let denied: Vec<_> = flows
        .iter()
        .filter(|f| f.verdict == Verdict::Denied)
        .collect();
    // The secret body, and the early answer if the filter's deny came first.
    assert_eq!(denied.len(), if status == 403 { 2 } else { 1 }, "{flows:?}");
    for d in &denied {
        assert_eq!(d.status, Some(403));
        assert_eq!(d.filter.as_deref(), Some("authz"));
    }
    let errors: Vec<_> = flows.iter().filter_map(|f| f.error.as_deref()).collect();
    assert!(
        errors.iter().any(
            |e| e.contains("at the end of the request body and did not resume it within 300ms")
        ),
        "{errors:?}"
    );
}

/// A filter that pauses at the end of the response body holds the rest of the response until
/// it resumes: an allowed body arrives whole; a denial comes after the head, so the stream is
/// reset and the client never gets the body's end. On both engines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_at_the_end_of_the_response_body_holds_it_until_resumed() {
    let _ = logs();
    let Some(authz) = module("pw_http_authz.wasm") else {
        return;
    };
    let cfg =
        r#"'{"cluster":"authz","path":"/check-body","timeout_ms":1000,"check":"response_body"}'"#;
    for engine in ENGINES {
        let up = Upstream::start().await;
        let p = Proxy::start(&format!(
            "clusters:\n  - {{ name: authz, address: {} }}\nlisteners:\n{}",
            up.addr,
            http_listener(
                "web",
                up.addr,
                &format!("{engine}{}", filter_block("authz", &authz, cfg, ""))
            ),
        ))
        .await;
        let (s, _, body) = get(p.addr("web"), "/hello", &[]).await;
        assert_eq!((s, body.as_str()), (200, "hello, hello world"), "{engine}");
        // 200 KB of body ending in a secret: the head has gone, the end must not.
        let mut payload = vec![b'z'; 200_000];
        payload.extend_from_slice(b"secret");
        let mut send = common::h1_client(p.addr("web")).await;
        let req = http::Request::post("/echo")
            .header("host", "example.test")
            .body(Full::new(Bytes::from(payload.clone())))
            .unwrap();
        let resp = send.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 200, "{engine}");
        let got = resp.into_body().collect().await;
        assert!(got.is_err(), "{engine}: the denied body arrived: {got:?}");
        let error = p.flows(2).await.into_iter().find_map(|f| f.error);
        assert!(
            error.as_deref().is_some_and(|e| e.contains("authz")),
            "{engine}: {error:?}"
        );
        // The same body without the secret arrives whole.
        payload.truncate(200_000);
        let mut send = common::h1_client(p.addr("web")).await;
        let req = http::Request::post("/echo")
            .header("host", "example.test")
            .body(Full::new(Bytes::from(payload.clone())))
            .unwrap();
        let resp = send.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 200, "{engine}");
        let got = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(got.len(), payload.len(), "{engine}");
        // A request without a body stays on the listener's own engine (a POST goes to hyper
        // when a filter reads request bodies): its response body is held and denied there too.
        let mut send = common::h1_client(p.addr("web")).await;
        let req = http::Request::get("/headers")
            .header("host", "example.test")
            .header("x-note", "a secret")
            .body(http_body_util::Empty::<Bytes>::new())
            .unwrap();
        let resp = send.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 200, "{engine}");
        let got = resp.into_body().collect().await;
        assert!(got.is_err(), "{engine}: the denied body arrived: {got:?}");
    }
}

/// A resume that comes while nothing is paused (here: `continue_stream` for the response,
/// called from the request headers) does not end a later pause at once: the response head's
/// pause holds until the listener's request timeout, and the filter fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_early_resume_does_not_end_a_later_pause() {
    let _ = logs();
    let up = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("early.wat");
    std::fs::write(
        &module,
        r#"(module
  (import "env" "proxy_continue_stream" (func $cont (param i32) (result i32)))
  (memory (export "memory") 1)
  (global $bump (mut i32) (i32.const 4096))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $bump))
    (global.set $bump (i32.add (global.get $bump) (local.get 0)))
    (local.get $p))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $cont (i32.const 1)))
    (i32.const 0))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
    (i32.const 1))
)"#,
    )
    .unwrap();
    let p = Proxy::start(&format!(
        "listeners:\n{}",
        http_listener(
            "web",
            up.addr,
            &filter_block("early", &module, "''", "    timeouts: { request: 300ms }\n")
        ),
    ))
    .await;
    let t = std::time::Instant::now();
    let (s, _, body) = get(p.addr("web"), "/", &[]).await;
    assert_eq!(s, 503, "{body}");
    assert!(
        t.elapsed() >= Duration::from_millis(250),
        "{:?}",
        t.elapsed()
    );
    let flows = p.flows(1).await;
    let error = flows[0].error.as_deref().unwrap_or_default();
    assert!(error.contains("did not resume it within 300ms"), "{error}");
}

/// An `http_call` with timeout 0 sets no timeout of its own, as under Envoy: a callout that
/// takes 300 ms decides the request (it was cut at 1 ms before).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_call_with_timeout_zero_waits_for_the_answer() {
    let Some(authz) = module("pw_http_authz.wasm") else {
        return;
    };
    let up = Upstream::start().await;
    let cfg = r#"'{"cluster":"authz","path":"/slow/300","timeout_ms":0}'"#;
    let p = Proxy::start(&format!(
        "clusters:\n  - {{ name: authz, address: {} }}\nlisteners:\n{}",
        up.addr,
        http_listener("web", up.addr, &filter_block("authz", &authz, cfg, "")),
    ))
    .await;
    let t = std::time::Instant::now();
    let (s, _, body) = get(p.addr("web"), "/headers", &[]).await;
    assert_eq!(s, 200, "{body}");
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "{:?}",
        t.elapsed()
    );
}

/// A pause that is never resumed ends at the listener's request timeout: the filter fails
/// (closed: 503) with a message saying so, and the proxy serves the next request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_never_resumed_fails_the_stream_at_the_request_timeout() {
    let _ = logs();
    let Some(authz) = module("pw_http_authz.wasm") else {
        return;
    };
    let up = Upstream::start().await;
    // The authz cluster answers after 5 s; the filter would wait 60 s; the listener 300 ms.
    let cfg = r#"'{"cluster":"authz","path":"/slow/5000","timeout_ms":60000}'"#;
    let p = Proxy::start(&format!(
        "admin: {{ address: 127.0.0.1:0 }}\nclusters:\n  - {{ name: authz, address: {} }}\nlisteners:\n{}",
        up.addr,
        http_listener(
            "web",
            up.addr,
            &filter_block("authz", &authz, cfg, "    timeouts: { request: 300ms }\n")
        ),
    ))
    .await;
    let t = std::time::Instant::now();
    let (s, _, body) = get(p.addr("web"), "/headers", &[("x-user", "alice")]).await;
    assert_eq!(s, 503, "{body}");
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    let flows = p.flows(1).await;
    assert_eq!(flows[0].filter.as_deref(), Some("authz"), "{flows:?}");
    let error = flows[0].error.as_deref().unwrap_or_default();
    assert!(error.contains("did not resume it within 300ms"), "{error}");
}

/// A request body rewrite needs the request body: POST through a filter that does nothing to
/// it must arrive intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_bodies_pass_through_filters() {
    let Some(m) = module("pw_basics.wasm") else {
        return;
    };
    let up = Upstream::start().await;
    let p = one_filter_proxy(up.addr, "basics", &m, "'{}'", "").await;
    let mut send = common::h1_client(p.addr("web")).await;
    let body = vec![b'z'; 200_000];
    let req = http::Request::post("/echo")
        .header("host", "example.test")
        .body(Full::new(Bytes::from(body.clone())))
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let got = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(got.len(), body.len());
    assert!(got.iter().all(|b| *b == b'z'));
}

/// A filter that answers while the request body streams decides the response: the client gets
/// the filter's local response (not the upstream's), and the flow record names the filter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_response_on_the_request_body_decides_the_response() {
    let up = Upstream::start().await;
    let module = wat("body-deny.wat");
    let p = one_filter_proxy(up.addr, "body_deny", &module, "''", "").await;
    let mut send = common::h1_client(p.addr("web")).await;
    let req = http::Request::post("/echo")
        .header("host", "example.test")
        .body(Full::new(Bytes::from(vec![b'z'; 10_000])))
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 413);
    let got = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&got[..], b"denied by body");
    // A request without a body never reaches the body callback: it goes through.
    let (s, _, body) = get(p.addr("web"), "/", &[]).await;
    assert_eq!((s, body.as_str()), (200, "ok"));
    let flows = p.flows(2).await;
    let denied = flows
        .iter()
        .find(|f| f.path.as_deref() == Some("/echo"))
        .unwrap();
    assert_eq!(denied.verdict, Verdict::Denied);
    assert_eq!(denied.status, Some(413));
    assert_eq!(denied.filter.as_deref(), Some("body_deny"));
}

/// The header-map host calls answer an unknown map id with `BAD_ARGUMENT`, as the ABI
/// documents (the public SDK panics on it, so a filter's mistake is not read as an empty map).
/// The module checks each status itself and answers 500 + the first failed check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_map_calls_return_the_documented_statuses() {
    let up = Upstream::start().await;
    for engine in ENGINES {
        let p = Proxy::start(&format!(
            "listeners:\n{}",
            http_listener(
                "web",
                up.addr,
                &format!(
                    "{engine}{}",
                    filter_block("statuses", &wat("map-statuses.wat"), "''", "")
                )
            )
        ))
        .await;
        let (s, _, body) = get(p.addr("web"), "/", &[]).await;
        assert_eq!((s, body.as_str()), (200, "ok"), "{engine}");
    }
}

/// `proxy_grpc_call` (unary) to a cluster: a response message comes back through
/// `proxy_on_grpc_receive` alone, a failure through `proxy_on_grpc_close` alone (as under
/// Envoy), and either decides the paused request. The filter remembers a close after a
/// success and then answers later requests 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_call_decides_a_paused_request() {
    let up = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("grpc.wat");
    std::fs::write(
        &module,
        r#"(module
  (import "env" "proxy_grpc_call" (func $grpc (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_buffer_bytes" (func $getbuf (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_continue_stream" (func $cont (param i32) (result i32)))
  (import "env" "proxy_send_local_response" (func $local (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "grpc")
  (data (i32.const 110) "test.Echo")
  (data (i32.const 120) "Ping")
  (data (i32.const 130) "Fail")
  (data (i32.const 140) "\00\00\00\00")
  (data (i32.const 150) "hello")
  (global $bump (mut i32) (i32.const 4096))
  (global $method (mut i32) (i32.const 120))
  (global $got (mut i32) (i32.const -1))
  (global $close_after_success (mut i32) (i32.const 0))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $bump))
    (global.set $bump (i32.add (global.get $bump) (local.get 0)))
    (local.get $p))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (if (i32.eq (local.get 1) (i32.const 4)) (then (global.set $method (i32.const 130))))
    (i32.const 1))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (if (global.get $close_after_success)
      (then (drop (call $local (i32.const 500) (i32.const 0) (i32.const 0)
        (i32.const 150) (i32.const 5) (i32.const 140) (i32.const 4) (i32.const -1)))
        (return (i32.const 1))))
    (drop (call $grpc (i32.const 100) (i32.const 4) (i32.const 110) (i32.const 9)
      (global.get $method) (i32.const 4) (i32.const 140) (i32.const 4) (i32.const 150) (i32.const 5)
      (i32.const 2000) (i32.const 200)))
    (i32.const 1))
  (func (export "proxy_on_grpc_receive") (param i32 i32 i32)
    (drop (call $getbuf (i32.const 5) (i32.const 0) (local.get 2) (i32.const 300) (i32.const 304)))
    (global.set $got (i32.load (i32.const 304)))
    (if (i32.eq (global.get $got) (i32.const 5))
      (then (drop (call $cont (i32.const 0))))
      (else (drop (call $local (i32.const 502) (i32.const 0) (i32.const 0)
        (i32.const 150) (i32.const 5) (i32.const 140) (i32.const 4) (i32.const -1))))))
  (func (export "proxy_on_grpc_close") (param i32 i32 i32)
    (if (i32.eqz (local.get 2))
      (then (global.set $close_after_success (i32.const 1)))
      (else (drop (call $local (i32.add (i32.const 400) (local.get 2)) (i32.const 0) (i32.const 0)
        (i32.const 150) (i32.const 5) (i32.const 140) (i32.const 4) (i32.const -1))))))
)"#,
    )
    .unwrap();
    let p = Proxy::start(&format!(
        "clusters:\n  - {{ name: grpc, address: {}, protocol: http2 }}\nlisteners:\n{}{}",
        up.addr,
        http_listener("ok", up.addr, &filter_block("g", &module, "''", "")),
        http_listener("fail", up.addr, &filter_block("g", &module, "'fail'", "")),
    ))
    .await;
    // More requests than worker VMs: a VM that got a close after a success answers 500.
    for _ in 0..6 {
        let (s, _, body) = get(p.addr("ok"), "/", &[]).await;
        assert_eq!((s, body.as_str()), (200, "ok"));
    }
    let (s, _, body) = get(p.addr("fail"), "/", &[]).await;
    assert_eq!(
        (s, body.as_str()),
        (407, "hello"),
        "grpc-status 7 reached on_grpc_close"
    );
}

/// A WAT filter whose `callback` export (taking `params` i32s) answers 403 `denied` with
/// `grpc_status` (-1: none) through `proxy_send_local_response`, then returns `action`.
fn local_reply_module(
    dir: &std::path::Path,
    callback: &str,
    params: usize,
    grpc_status: i32,
    action: u32,
) -> PathBuf {
    let module = dir.join(format!("{callback}.wat"));
    let params = vec!["i32"; params].join(" ");
    std::fs::write(
        &module,
        format!(
            r#"(module
  (import "env" "proxy_send_local_response" (func $local (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "denied")
  (global $bump (mut i32) (i32.const 4096))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $bump))
    (global.set $bump (i32.add (global.get $bump) (local.get 0)))
    (local.get $p))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "{callback}") (param {params}) (result i32)
    (drop (call $local (i32.const 403) (i32.const 0) (i32.const 0)
      (i32.const 100) (i32.const 6) (i32.const 0) (i32.const 0) (i32.const {grpc_status})))
    (i32.const {action}))
)"#
        ),
    )
    .unwrap();
    module
}

/// A local response with a `grpc_status` answers a gRPC request in gRPC's form (HTTP 200,
/// `grpc-status`), and a plain HTTP request with the HTTP status the filter gave, as Envoy
/// does: a deny must not turn into a 200 for an HTTP client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_response_grpc_status_applies_to_grpc_requests_only() {
    let up = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let module = local_reply_module(dir.path(), "proxy_on_request_headers", 3, 7, 1);
    for engine in ENGINES {
        let p = one_filter_proxy(up.addr, "deny", &module, "''", engine).await;
        let (s, _, body) = get(p.addr("web"), "/", &[]).await;
        assert_eq!((s, body.as_str()), (403, "denied"), "{engine}");
        let (s, h, _) = get(p.addr("web"), "/", &[("content-type", "application/grpc")]).await;
        assert_eq!(s, 200, "{engine}");
        assert_eq!(h["grpc-status"], "7", "{engine}");
    }
}

/// A verdict from a trailers callback comes after the head went upstream, too late for the
/// filter's reply; the request must still not complete as if allowed: the stream fails (the
/// client gets no 200), whatever the filter's failure policy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deny_from_request_trailers_fails_the_stream() {
    let up = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let module = local_reply_module(dir.path(), "proxy_on_request_trailers", 2, -1, 0);
    for failure in ["closed", "open"] {
        let p = one_filter_proxy(
            up.addr,
            "deny",
            &module,
            "''",
            &format!("        failure: {failure}\n"),
        )
        .await;
        let req = b"POST /echo HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n\
                    3\r\nabc\r\n0\r\nx-verdict: late\r\n\r\n";
        let out = common::raw_exchange(p.addr("web"), req, Duration::from_secs(3)).await;
        assert!(!out.starts_with("HTTP/1.1 200"), "{failure}: {out}");
        // Without trailers the filter is never asked: the request goes through.
        let (s, _, _) = get(p.addr("web"), "/", &[]).await;
        assert_eq!(s, 200, "{failure}");
        let flows = p.flows(2).await;
        let late = flows
            .iter()
            .find(|f| f.path.as_deref() == Some("/echo"))
            .unwrap();
        assert_ne!(late.verdict, Verdict::Forwarded, "{failure}: {late:?}");
        assert!(
            late.error
                .as_deref()
                .is_some_and(|e| e.contains("trailers")),
            "{failure}: {late:?}"
        );
    }
}

// ---- hostile filters ---------------------------------------------------------------------

/// Each hostile mode, `failure: closed`: the stream gets 503, a sibling listener keeps serving,
/// the flow says ERROR and names the filter, a log line names it, and the next request still
/// gets a clean answer (the VM was replaced).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_filters_fail_closed_and_leave_the_proxy_up() {
    let _ = logs();
    let Some(m) = module("hostile.wasm") else {
        return;
    };
    let up = Upstream::start().await;
    let modes = ["loop", "grow", "trap", "panic", "huge-headers"];
    let mut listeners = String::new();
    for mode in modes {
        let name = format!("hostile-{mode}");
        listeners.push_str(&http_listener(
            &name,
            up.addr,
            &filter_block(&name, &m, &format!("'{mode}'"), ""),
        ));
    }
    listeners.push_str(&http_listener(
        "healthy",
        up.addr,
        &filter_block("healthy", &m, "'ok'", ""),
    ));
    let p = Proxy::start(&format!(
        "wasm: {{ memory_limit: 32MiB, callback_deadline: 20ms }}\nlisteners:\n{listeners}"
    ))
    .await;
    for mode in modes {
        let name = format!("hostile-{mode}");
        // Healthy traffic runs alongside the failing stream.
        let healthy = tokio::spawn({
            let a = p.addr("healthy");
            async move {
                for _ in 0..20 {
                    let (s, h, _) = get(a, "/", &[]).await;
                    assert_eq!(s, 200);
                    assert_eq!(h["x-hostile"], "ok");
                }
            }
        });
        for round in 0..2 {
            let (s, _, body) = get(p.addr(&name), "/", &[]).await;
            assert_eq!(s, 503, "{mode} round {round}: {body}");
            assert!(
                body.contains(&format!("filter `{name}` failed")),
                "{mode}: {body}"
            );
        }
        healthy.await.unwrap();
        assert!(
            logged(&format!("filter={name}")),
            "no log line names {name}"
        );
    }
    // Every record: 2 per hostile listener and 20 healthy ones per mode (waiting for fewer
    // raced the writer on the last mode's records).
    let flows = p.flows(modes.len() * (2 + 20)).await;
    for mode in modes {
        let name = format!("hostile-{mode}");
        let mine: Vec<_> = flows.iter().filter(|f| f.listener == name).collect();
        assert_eq!(mine.len(), 2, "{mode}");
        for f in mine {
            assert_eq!(f.verdict, Verdict::Error, "{mode}");
            assert_eq!(f.filter.as_deref(), Some(name.as_str()));
        }
    }
    // What each failure was, as operators will read it.
    assert!(
        logged("callback ran past its deadline"),
        "loop is reported as a deadline"
    );
    assert!(
        logged("memory limit of 32 MiB exceeded"),
        "grow is reported as the memory cap"
    );
}

/// Non-UTF-8 header values (obs-text) are valid HTTP: a filter may set them and they reach the
/// upstream byte-exact; a client may send them through filters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_utf8_header_values_pass_through_filters() {
    let (Some(hostile), Some(allow)) = (module("hostile.wasm"), module("allow_list.wasm")) else {
        return;
    };
    let up = Upstream::start().await;
    let p = Proxy::start(&format!(
        "listeners:\n{}{}",
        http_listener(
            "set",
            up.addr,
            &filter_block("n", &hostile, "'non-utf8'", "")
        ),
        http_listener(
            "read",
            up.addr,
            &filter_block(
                "allow",
                &allow,
                r#"'{"header":"x-user","allowed":["alice"]}'"#,
                ""
            )
        ),
    ))
    .await;
    let out = common::raw_exchange(
        p.addr("set"),
        b"GET /headers HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(out.contains("x-non-utf8: <bin>"), "{out}");
    for (user, want) in [(&b"alice"[..], "200"), (&b"al\xffce"[..], "403")] {
        let mut req =
            b"GET /headers HTTP/1.1\r\nhost: t\r\nconnection: close\r\nx-odd: \xfe\xff\r\nx-user: "
                .to_vec();
        req.extend_from_slice(user);
        req.extend_from_slice(b"\r\n\r\n");
        let out = common::raw_exchange(p.addr("read"), &req, Duration::from_secs(5)).await;
        assert!(out.starts_with(&format!("HTTP/1.1 {want}")), "{out}");
    }
}

/// An HTTP/2 request's `cookie` fields reach filters joined into one with `; ` (RFC 9113
/// §8.2.3), as under Envoy: the allow list matches the joined value, not `a=1,b=2`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_cookie_fields_reach_filters_as_one() {
    let Some(allow) = module("allow_list.wasm") else {
        return;
    };
    let up = Upstream::start().await;
    let p = one_filter_proxy(
        up.addr,
        "allow",
        &allow,
        r#"'{"header":"cookie","allowed":["a=1; b=2"]}'"#,
        "",
    )
    .await;
    let mut send = common::h2_client(p.addr("web")).await;
    for (cookies, want) in [(&["a=1", "b=2"][..], 200), (&["a=1"][..], 403)] {
        let mut req = http::Request::get("http://example.test/headers")
            .body(http_body_util::Empty::<Bytes>::new())
            .unwrap();
        for c in cookies {
            req.headers_mut()
                .append("cookie", http::HeaderValue::from_static(c));
        }
        let resp = send.send_request(req).await.unwrap();
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let body = String::from_utf8_lossy(&body);
        assert_eq!(status, want, "{cookies:?}: {body}");
        if want == 200 {
            assert!(body.contains("cookie: a=1; b=2"), "{body}");
        }
    }
}

/// `failure: open`: a failing filter is skipped and the request is forwarded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_open_skips_the_failed_filter() {
    let Some(m) = module("hostile.wasm") else {
        return;
    };
    let up = Upstream::start().await;
    let p = one_filter_proxy(up.addr, "trapper", &m, "'trap'", "        failure: open\n").await;
    for _ in 0..3 {
        let (s, _, body) = get(p.addr("web"), "/", &[]).await;
        assert_eq!((s, body.as_str()), (200, "ok"));
    }
}

/// Modules that cannot start are refused at load with an error that names the filter.
#[tokio::test]
async fn broken_modules_are_refused_at_load() {
    let Some(m) = module("hostile.wasm") else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let garbage = scratch.path().join("garbage.wasm");
    std::fs::write(&garbage, b"\0asm\x01\0\0\0garbage").unwrap();
    // A WASI reactor whose `main` is not `main(argc, argv) -> i32`: Envoy refuses it too.
    let bad_main = scratch.path().join("bad-main.wat");
    std::fs::write(
        &bad_main,
        std::fs::read_to_string(wat("root-end.wat"))
            .unwrap()
            .replace(
                r#"(func (export "main") (param i32 i32) (result i32)"#,
                r#"(func (export "main") (result i32)"#,
            ),
    )
    .unwrap();
    let cases: Vec<(PathBuf, &str, &str, &str)> = vec![
        (
            garbage,
            "''",
            "",
            "garbage.wasm is not a valid WebAssembly module: ",
        ),
        (
            m.clone(),
            "'configure-false'",
            "",
            "proxy_on_configure returned false",
        ),
        (
            m.clone(),
            "'ok'",
            "        vm_config: vm-start-false\n",
            "proxy_on_vm_start returned false",
        ),
        (
            wat("wrong-abi.wat"),
            "''",
            "",
            "exports no known proxy-wasm ABI version",
        ),
        (wat("missing-exports.wat"), "''", "", "lacks the export"),
        (bad_main, "''", "", "export `main` has the wrong type"),
        (wat("no-memory.wat"), "''", "", "lacks the export `memory`"),
    ];
    for (module, config, extra, want) in cases {
        // Compiled in a child (as `strait run` does) or in process: the same message.
        let mut errs = Vec::new();
        for mode in [common::compile_mode(), strait::wasm::CompileMode::InProcess] {
            let dir = tempfile::tempdir().unwrap();
            let yaml = format!(
                "listeners:\n{}",
                http_listener(
                    "web",
                    "127.0.0.1:1".parse().unwrap(),
                    &filter_block("bad", &module, config, extra)
                )
            );
            let cfg = strait::config::Config::parse(&dir.path().join("s.yaml"), &yaml).unwrap();
            let err = match strait::Server::bind(cfg, mode.clone()).await {
                Ok(_) => panic!("{} loaded ({mode:?})", module.display()),
                Err(e) => e.to_string(),
            };
            assert!(err.contains(want), "{} ({mode:?}): {err}", module.display());
            assert!(err.contains("web"), "error names the listener: {err}");
            errs.push(err);
        }
        assert_eq!(errs[0], errs[1], "{}", module.display());
    }
}

/// The lines logged for filter `name`, in order.
fn filter_log(name: &str) -> Vec<String> {
    let tag = format!("filter={name} ");
    String::from_utf8_lossy(&logs().lock().unwrap())
        .lines()
        .filter(|l| l.contains(&tag))
        .map(str::to_owned)
        .collect()
}

/// An unloaded filter's root contexts end as under Envoy: `proxy_on_done`, then, when it
/// returned false, timers and calls go on until the filter calls `proxy_done` (`OK`; before
/// and after that, `NOT_FOUND`), then `proxy_on_delete`. A filter that never calls
/// `proxy_done` is dropped after `wasm.done_timeout` with a warning. A reload ends the plugin
/// it replaced; shutdown ends the current one. The module also checks that a reactor's `main`
/// runs after `_initialize`, and that a timer shortened in `proxy_on_done` applies at once
/// (mode 2 had a 60 s timer). `root-end.wat` takes its mode from its configuration's length.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unloaded_filters_end_their_root_contexts() {
    let _ = logs();
    let up = Upstream::start().await;
    let yaml = format!(
        "wasm: {{ done_timeout: 300ms }}\nlisteners:\n{}",
        http_listener(
            "web",
            up.addr,
            &filter_block("ending", &wat("root-end.wat"), "'22'", "")
        )
    );
    let (p, cfg_path) = Proxy::start_file(&yaml).await;
    let count = |what: &str| {
        filter_log("ending")
            .iter()
            .filter(|l| l.contains(what))
            .count()
    };
    let first = |what: &str| filter_log("ending").iter().position(|l| l.contains(what));
    let (s, _, body) = get(p.addr("web"), "/", &[]).await;
    assert_eq!((s, body.as_str()), (200, "ok"));
    // One root context per VM (one VM per worker).
    let vms = count("main ran after _initialize mode=2");
    assert!(vms >= 1, "{:?}", filter_log("ending"));
    assert_eq!(count("main did not run"), 0);
    assert_eq!(count("early proxy_done: not_found mode=2"), vms);
    assert_eq!(
        count("on_done root"),
        0,
        "nothing ends while the filter serves"
    );
    let reload = |from: &str, to: &str| {
        let text = std::fs::read_to_string(&cfg_path).unwrap();
        assert!(text.contains(from));
        std::fs::write(&cfg_path, text.replace(from, to)).unwrap();
    };
    let until = |what: &'static str, n: usize| async move {
        for _ in 0..250 {
            if count(what) >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{what} not logged {n} times: {:#?}", filter_log("ending"));
    };

    // Mode 2 replaced: its root contexts finish on a tick, then are deleted.
    reload("config: '22'", "config: '1'");
    until("on_delete root mode=2", vms).await;
    assert_eq!(count("main ran after _initialize mode=1"), vms);
    assert_eq!(count("on_done root mode=2"), vms);
    assert_eq!(count("proxy_done: ok mode=2"), vms);
    assert_eq!(count("second proxy_done: not_found mode=2"), vms);
    assert_eq!(count("unexpected"), 0, "{:#?}", filter_log("ending"));
    assert!(first("proxy_done: ok mode=2") < first("on_delete root mode=2"));
    assert!(first("on_done root mode=2") < first("proxy_done: ok mode=2"));
    let (s, _, _) = get(p.addr("web"), "/", &[]).await;
    assert_eq!(s, 200);

    // Mode 1 replaced: done at once, deleted without waiting.
    reload("config: '1'", "config: '333'");
    until("on_delete root mode=1", vms).await;
    assert_eq!(count("on_done root mode=1"), vms);
    assert_eq!(count("proxy_done: ok mode=1"), 0);
    let (s, _, _) = get(p.addr("web"), "/", &[]).await;
    assert_eq!(s, 200);

    // Shutdown ends mode 3, which never calls proxy_done: dropped after done_timeout.
    p.stop.cancel();
    let started = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(10), p.done)
        .await
        .expect("shutdown hangs")
        .unwrap();
    assert_eq!(count("on_done root mode=3"), vms);
    assert_eq!(count("on_delete root mode=3"), 0);
    assert_eq!(
        count("without calling proxy_done within 300ms"),
        1,
        "{:#?}",
        filter_log("ending")
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(count("unexpected"), 0, "{:#?}", filter_log("ending"));
}

/// Every host function called with out-of-bounds pointers and lengths: each returns a status
/// (no trap, no host panic) and the request completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_bounds_arguments_in_every_host_call() {
    // (module, name, params) for every function strait provides; `I` = i32, `J` = i64.
    const SIGS: &[(&str, &str, &str)] = &[
        ("env", "proxy_log", "III"),
        ("env", "proxy_get_log_level", "I"),
        ("env", "proxy_get_current_time_nanoseconds", "I"),
        ("env", "proxy_set_tick_period_milliseconds", "I"),
        ("env", "proxy_set_effective_context", "I"),
        ("env", "proxy_done", ""),
        ("env", "proxy_call_foreign_function", "IIIIII"),
        ("env", "proxy_get_buffer_bytes", "IIIII"),
        ("env", "proxy_set_buffer_bytes", "IIIII"),
        ("env", "proxy_get_header_map_pairs", "III"),
        ("env", "proxy_get_header_map_size", "II"),
        ("env", "proxy_set_header_map_pairs", "III"),
        ("env", "proxy_get_header_map_value", "IIIII"),
        ("env", "proxy_add_header_map_value", "IIIII"),
        ("env", "proxy_replace_header_map_value", "IIIII"),
        ("env", "proxy_remove_header_map_value", "III"),
        ("env", "proxy_get_property", "IIII"),
        ("env", "proxy_set_property", "IIII"),
        ("env", "proxy_continue_stream", "I"),
        ("env", "proxy_close_stream", "I"),
        ("env", "proxy_continue_request", ""),
        ("env", "proxy_continue_response", ""),
        ("env", "proxy_clear_route_cache", ""),
        ("env", "proxy_send_local_response", "IIIIIIII"),
        ("env", "proxy_http_call", "IIIIIIIIII"),
        ("env", "proxy_grpc_call", "IIIIIIIIIIII"),
        ("env", "proxy_grpc_stream", "IIIIIIIII"),
        ("env", "proxy_grpc_send", "IIII"),
        ("env", "proxy_grpc_cancel", "I"),
        ("env", "proxy_grpc_close", "I"),
        ("env", "proxy_get_status", "III"),
        ("env", "proxy_get_shared_data", "IIIII"),
        ("env", "proxy_set_shared_data", "IIIII"),
        ("env", "proxy_register_shared_queue", "III"),
        ("env", "proxy_resolve_shared_queue", "IIIII"),
        ("env", "proxy_enqueue_shared_queue", "III"),
        ("env", "proxy_dequeue_shared_queue", "III"),
        ("env", "proxy_define_metric", "IIII"),
        ("env", "proxy_increment_metric", "IJ"),
        ("env", "proxy_record_metric", "IJ"),
        ("env", "proxy_get_metric", "II"),
        ("wasi_snapshot_preview1", "fd_write", "IIII"),
        ("wasi_snapshot_preview1", "fd_read", "IIII"),
        ("wasi_snapshot_preview1", "fd_close", "I"),
        ("wasi_snapshot_preview1", "fd_seek", "IJII"),
        ("wasi_snapshot_preview1", "fd_prestat_get", "II"),
        ("wasi_snapshot_preview1", "fd_prestat_dir_name", "III"),
        ("wasi_snapshot_preview1", "fd_fdstat_get", "II"),
        ("wasi_snapshot_preview1", "environ_sizes_get", "II"),
        ("wasi_snapshot_preview1", "environ_get", "II"),
        ("wasi_snapshot_preview1", "args_sizes_get", "II"),
        ("wasi_snapshot_preview1", "args_get", "II"),
        ("wasi_snapshot_preview1", "clock_time_get", "IJI"),
        ("wasi_snapshot_preview1", "clock_res_get", "II"),
        ("wasi_snapshot_preview1", "random_get", "II"),
        ("wasi_snapshot_preview1", "sched_yield", ""),
        ("wasi_snapshot_preview1", "poll_oneoff", "IIII"),
        ("wasi_snapshot_preview1", "proc_exit", "I"),
    ];
    let provided = strait::wasm::check::provided_host_functions();
    for (m, n) in &provided {
        assert!(
            SIGS.iter().any(|(sm, sn, _)| sm == m && sn == n),
            "host function {m}.{n} is not covered by this test"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let up = Upstream::start().await;
    // Two argument patterns: every argument near the end of the address space, and pointer 0
    // with huge lengths.
    let mut files = Vec::new();
    for (k, (i32v, i64v)) in [("-16", "-16"), ("-1", "-1")].into_iter().enumerate() {
        let mut imports = String::new();
        let mut calls = String::new();
        for (idx, (m, n, params)) in SIGS.iter().enumerate() {
            if *n == "proc_exit" || (k == 1 && *n == "proxy_close_stream") {
                continue; // these end the VM / the stream by design, with valid arguments
            }
            let ps: Vec<&str> = params
                .chars()
                .map(|c| if c == 'J' { "i64" } else { "i32" })
                .collect();
            let result = if *n == "proc_exit" {
                ""
            } else {
                "(result i32)"
            };
            imports.push_str(&format!(
                "  (import \"{m}\" \"{n}\" (func $f{idx} (param {}) {result}))\n",
                ps.join(" ")
            ));
            let args: Vec<String> = params
                .chars()
                .enumerate()
                .map(|(j, c)| {
                    let v = if k == 1 && j % 2 == 0 {
                        "0"
                    } else if c == 'J' {
                        i64v
                    } else {
                        i32v
                    };
                    if c == 'J' {
                        format!("(i64.const {v})")
                    } else {
                        format!("(i32.const {v})")
                    }
                })
                .collect();
            calls.push_str(&format!("    (drop (call $f{idx} {}))\n", args.join(" ")));
        }
        let text = format!(
            r#"(module
{imports}  (memory (export "memory") 1)
  (global $bump (mut i32) (i32.const 1024))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $bump))
    (global.set $bump (i32.add (global.get $bump) (local.get 0)))
    (local.get $p))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
{calls}    (i32.const 0))
)"#
        );
        let path = dir.path().join(format!("oob{k}.wat"));
        std::fs::write(&path, text).unwrap();
        files.push(path);
    }
    let mut listeners = String::new();
    for (k, f) in files.iter().enumerate() {
        listeners.push_str(&http_listener(
            &format!("oob{k}"),
            up.addr,
            &filter_block(&format!("oob{k}"), f, "''", ""),
        ));
    }
    let p = Proxy::start(&format!("listeners:\n{listeners}")).await;
    for k in 0..files.len() {
        for _ in 0..3 {
            let (s, _, body) = get(p.addr(&format!("oob{k}")), "/", &[]).await;
            assert_eq!((s, body.as_str()), (200, "ok"), "pattern {k}");
        }
    }
}

// ---- hot reload --------------------------------------------------------------------------

/// Shared queues: every request enqueues, the root context that registered the queue drains it
/// (`proxy_on_queue_ready`). After a reload the new VMs register the queue again and become its
/// consumer: it keeps being drained once the old VMs are gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_queues_keep_a_consumer_across_reloads() {
    let _ = logs();
    let Some(basics) = module("pw_basics.wasm") else {
        return;
    };
    let up = Upstream::start().await;
    let yaml = |config: &str| {
        format!(
            "listeners:\n{}",
            http_listener("web", up.addr, &filter_block("q", &basics, config, ""))
        )
    };
    let (p, cfg_path) = Proxy::start_file(&yaml(r#"'{"queue":true}'"#)).await;
    let web = p.addr("web");
    // What the consumer has taken so far, and whether the config's generation is live.
    let probe = || async move {
        let (s, h, body) = get(web, "/headers", &[]).await;
        assert_eq!(s, 200, "{body}");
        let n: u64 = h["x-dequeued"].to_str().unwrap().parse().unwrap();
        (n, body.contains("x-generation: two"))
    };
    // Waits until the consumer has taken at least `n` (each probe enqueues one more).
    let reaches = |n: u64| async move {
        for _ in 0..100 {
            if probe().await.0 >= n {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        false
    };
    assert!(reaches(10).await, "the queue is not drained");
    std::fs::write(
        &cfg_path,
        format!(
            "flows: {{ sink: none }}\nruntime: {{ shutdown_grace: 5s }}\n{}",
            yaml(r#"'{"queue":true,"add_request_headers":{"x-generation":"two"}}'"#)
        ),
    )
    .unwrap();
    let mut reloaded = false;
    for _ in 0..100 {
        if probe().await.1 {
            reloaded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(reloaded, "the reload was not seen");
    // The sections read at start only that the new config changed are named as such.
    assert!(
        logged("config section `flows` changed: it is read at start only; restart strait"),
        "no restart notice for `flows`"
    );
    // Give the old generation time to drain and go.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (before, _) = probe().await;
    assert!(
        reaches(before + 20).await,
        "after the reload the queue is no longer drained (stuck near {before})"
    );
}

/// A config that starts without filters is watched too: the reload that adds the first filter
/// starts the filter runtime, the running listener applies the filter to its next request, and
/// the filter's metrics show on `/metrics`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_adds_the_first_filter() {
    let _ = logs();
    let Some(basics) = module("pw_basics.wasm") else {
        return;
    };
    let up = Upstream::start().await;
    let (p, cfg_path) = Proxy::start_file(&format!(
        "admin: {{ address: 127.0.0.1:0 }}\nlisteners:\n{}",
        http_listener("web", up.addr, "")
    ))
    .await;
    let web = p.addr("web");
    let (s, _, body) = get(web, "/headers", &[]).await;
    assert_eq!(s, 200);
    assert!(!body.contains("x-generation"), "{body}");
    // The listener is the file's last block: the filters go under it.
    let text = std::fs::read_to_string(&cfg_path).unwrap();
    std::fs::write(
        &cfg_path,
        text + &filter_block(
            "first",
            &basics,
            r#"'{"add_request_headers":{"x-generation":"one"}}'"#,
            "",
        ),
    )
    .unwrap();
    let mut applied = false;
    for _ in 0..100 {
        let (s, _, body) = get(web, "/headers", &[]).await;
        assert_eq!(s, 200, "{body}");
        if body.contains("x-generation: one") {
            applied = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(applied, "the filter added by the reload never ran");
    assert!(logged(
        "filter runtime started: the config now has filters or clusters"
    ));
    let (_, _, metrics) = get(p.admin.unwrap(), "/metrics", &[]).await;
    assert!(metrics.contains("pw_basics_requests"), "{metrics}");
}

/// Replaces the module file and the config while requests run: zero failed requests, the new
/// behaviour takes over, a broken module is rejected and the old one keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_reload_under_load_loses_no_request() {
    let _ = logs();
    let (Some(basics), Some(hostile)) = (module("pw_basics.wasm"), module("hostile.wasm")) else {
        return;
    };
    let up = Upstream::start().await;
    let work = tempfile::tempdir().unwrap();
    let live = work.path().join("live.wasm");
    std::fs::copy(&hostile, &live).unwrap();
    let yaml = |module: &std::path::Path, config: &str| {
        format!(
            "listeners:\n{}",
            http_listener("web", up.addr, &filter_block("live", module, config, ""))
        )
    };
    let (p, cfg_path) = Proxy::start_file(&yaml(&live, "'ok'")).await;
    let addr = p.addr("web");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut load = Vec::new();
    for _ in 0..8 {
        let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
        load.push(tokio::spawn(async move {
            let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
                .await
                .unwrap();
            tokio::spawn(conn);
            while !stop.load(Ordering::Relaxed) {
                let req = http::Request::get("/headers")
                    .header("host", "example.test")
                    .body(http_body_util::Empty::<Bytes>::new())
                    .unwrap();
                match send.send_request(req).await {
                    Ok(r) if r.status() == 200 => {
                        let _ = r.into_body().collect().await;
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(r) => {
                        let status = r.status();
                        let body = r
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        failed.lock().unwrap().push(format!(
                            "status {status}: {}",
                            String::from_utf8_lossy(&body)
                        ));
                    }
                    Err(e) => failed.lock().unwrap().push(e.to_string()),
                }
            }
        }));
    }
    let saw = |needle: &'static str| async move {
        for _ in 0..300 {
            let (_, _, body) = get(addr, "/headers", &[]).await;
            if body.contains(needle) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    };
    // 1. New module file (same path): pw-basics adds a request header.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let cfg = r#"'{"add_request_headers":{"x-generation":"two"}}'"#;
    std::fs::write(
        &cfg_path,
        format!(
            "flows: {{ sink: none }}\nruntime: {{ shutdown_grace: 5s }}\n{}",
            yaml(&live, cfg)
        ),
    )
    .unwrap();
    let tmp = work.path().join("next.wasm");
    std::fs::copy(&basics, &tmp).unwrap();
    std::fs::rename(&tmp, &live).unwrap();
    assert!(
        saw("x-generation: two").await,
        "reload to pw-basics not seen"
    );
    // 2. Config change only.
    let cfg3 = r#"'{"add_request_headers":{"x-generation":"three"}}'"#;
    std::fs::write(
        &cfg_path,
        format!(
            "flows: {{ sink: none }}\nruntime: {{ shutdown_grace: 5s }}\n{}",
            yaml(&live, cfg3)
        ),
    )
    .unwrap();
    assert!(saw("x-generation: three").await, "config reload not seen");
    // 3. A module that does not compile: rejected, generation three keeps serving.
    let tmp = work.path().join("broken.wasm");
    std::fs::write(&tmp, b"\0asm\x01\0\0\0garbage").unwrap();
    std::fs::rename(&tmp, &live).unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(saw("x-generation: three").await);
    assert!(logged("filter reload rejected"), "the rejection is logged");
    stop.store(true, Ordering::Relaxed);
    for l in load {
        l.await.unwrap();
    }
    let failed = failed.lock().unwrap();
    assert!(
        failed.is_empty(),
        "{} failed requests: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    assert!(
        ok.load(Ordering::Relaxed) > 100,
        "load ran: {}",
        ok.load(Ordering::Relaxed)
    );
    let _ = std::io::stdout().flush();
}

/// A bidirectional HTTP/2 stream's filters (a chain of WAT modules, in order), past both
/// heads.
async fn bidi_stream(
    dir: &std::path::Path,
    modules: &[&str],
    limit: Duration,
) -> Arc<strait::wasm::StreamFilters> {
    use strait::wasm::{Outcome, RequestLine, StreamFilters, StreamInfo};
    let mut block = String::from("    filters:\n");
    for (i, text) in modules.iter().enumerate() {
        let module = dir.join(format!("bidi{i}.wat"));
        std::fs::write(&module, text).unwrap();
        block.push_str(&format!(
            "      - name: bidi{i}\n        module: {}\n        config: ''\n",
            module.display()
        ));
    }
    let yaml = format!(
        "listeners:\n{}",
        http_listener("web", "127.0.0.1:9".parse().unwrap(), &block)
    );
    let cfg = strait::config::Config::parse(std::path::Path::new("bidi.yaml"), &yaml).unwrap();
    let runtime = strait::wasm::Runtime::new(
        &cfg.wasm,
        1,
        cfg.clusters.clone(),
        strait::wasm::CompileMode::InProcess,
    )
    .unwrap();
    let chain = Arc::new(
        runtime
            .load_chain("web", &cfg.listeners[0].filters, None)
            .unwrap(),
    );
    let (req, ()) = http::Request::post("/pkg.Svc/Chat")
        .version(http::Version::HTTP_2)
        .header("content-type", "application/grpc")
        .body(())
        .unwrap()
        .into_parts();
    let (resp, ()) = http::Response::builder()
        .status(200)
        .body(())
        .unwrap()
        .into_parts();
    let info = StreamInfo {
        listener: Arc::from("web"),
        source: "127.0.0.1:40000".parse().unwrap(),
        destination: "127.0.0.1:9".parse().unwrap(),
        upstream: Arc::from("127.0.0.1:9"),
        protocol: "HTTP/2",
        tls: false,
        identity: None,
        destination_identity: None,
        start: std::time::SystemTime::now(),
        request: Some(RequestLine::new(&req.method, &req.uri, &req.headers)),
        policy: Default::default(),
        wake: Default::default(),
        status: Default::default(),
        past: Default::default(),
    };
    let sf = Arc::new(StreamFilters::new(chain, info, limit));
    let (_, o) = sf.request_headers(req, false).finish().await;
    assert!(matches!(o, Outcome::Continue), "{o:?}");
    let (_, o) = sf.response_headers(resp, false).finish().await;
    assert!(matches!(o, Outcome::Continue), "{o:?}");
    sf
}

/// A WAT filter that pauses at the end of both bodies and, from its 20 ms timer, does `act`
/// (WAT instructions) on the paused request's context (`$waiting`).
fn bidi_module(act: &str) -> String {
    format!(
        r#"(module
  (import "env" "proxy_continue_stream" (func $cont (param i32) (result i32)))
  (import "env" "proxy_send_local_response"
    (func $reply (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_effective_context" (func $eff (param i32) (result i32)))
  (import "env" "proxy_set_tick_period_milliseconds" (func $tick (param i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "denied")
  (global $bump (mut i32) (i32.const 4096))
  (global $waiting (mut i32) (i32.const 0))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $bump))
    (global.set $bump (i32.add (global.get $bump) (local.get 0)))
    (local.get $p))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (drop (call $tick (i32.const 20)))
    (i32.const 1))
  (func (export "proxy_on_request_body") (param i32 i32 i32) (result i32)
    (global.set $waiting (local.get 0))
    (i32.const 1))
  (func (export "proxy_on_response_body") (param i32 i32 i32) (result i32)
    (i32.const 1))
  (func (export "proxy_on_tick") (param i32)
    (if (global.get $waiting)
      (then
        (drop (call $eff (global.get $waiting)))
        {act}
        (global.set $waiting (i32.const 0)))))
)"#
    )
}

/// Pauses in both directions of one stream (an HTTP/2 stream whose response body ended while
/// its request body was still coming) are woken separately: the filter resumes only the
/// request, and the request goes on at once. With one wake-up for the whole stream, the
/// response's pause (waiting first) took it, and the request waited out its pause limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pauses_in_both_directions_are_woken_separately() {
    use strait::wasm::{BodyKind, BodyOutcome};
    let _ = logs();
    let dir = tempfile::tempdir().unwrap();
    let limit = Duration::from_secs(5);
    // Its timer resumes a paused request body only.
    let module = bidi_module("(drop (call $cont (i32.const 0)))");
    let sf = bidi_stream(dir.path(), &[&module], limit).await;

    // The response body ends first and pauses; its wait starts before the request's.
    let BodyOutcome::Paused(pause) = sf.body(BodyKind::Response, Bytes::from_static(b"r"), true)
    else {
        panic!("the response body did not pause");
    };
    let response = tokio::spawn({
        let sf = sf.clone();
        async move { sf.resume_body(pause).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!response.is_finished(), "the response pause ended early");

    let t = std::time::Instant::now();
    let BodyOutcome::Paused(pause) = sf.body(BodyKind::Request, Bytes::from_static(b"q"), true)
    else {
        panic!("the request body did not pause");
    };
    match tokio::time::timeout(limit, sf.resume_body(pause)).await {
        Ok(BodyOutcome::Emit(b)) => assert_eq!(&b[..], b"q"),
        Ok(other) => panic!("request body after the resume: {other:?}"),
        Err(_) => panic!("the request body was not resumed"),
    }
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "the request body waited {:?} for a resume its filter made within 20 ms",
        t.elapsed()
    );
    // The response was never resumed: it still waits.
    assert!(
        !response.is_finished(),
        "the response pause ended without a resume"
    );
    response.abort();
}

/// A local reply on a stream paused in both directions ends both pauses: the stream is
/// answered, and nothing will resume the other direction. Before, the first pause to look took
/// the reply and the other waited out its pause limit, then failed the filter for not resuming.
/// Also across filters: the chain's second filter holds the response body (which it sees
/// first) and never resumes it, and the first answers from its pause of the request body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_reply_ends_the_pauses_of_both_directions() {
    // Its timer answers 403 on the paused request's context.
    let replier = bidi_module(
        "(drop (call $reply (i32.const 403) (i32.const 0) (i32.const 6) (i32.const 0) (i32.const 6) (i32.const 0) (i32.const 0) (i32.const -1)))",
    );
    // Pauses both bodies and never resumes.
    let holder = bidi_module("");
    for chain in [vec![&replier[..]], vec![&replier[..], &holder[..]]] {
        paused_both_ways_then_answered(&chain).await;
    }
}

async fn paused_both_ways_then_answered(chain: &[&str]) {
    use strait::wasm::{BodyKind, BodyOutcome};
    let _ = logs();
    let dir = tempfile::tempdir().unwrap();
    let limit = Duration::from_secs(5);
    let sf = bidi_stream(dir.path(), chain, limit).await;
    let t = std::time::Instant::now();
    let BodyOutcome::Paused(response) = sf.body(BodyKind::Response, Bytes::from_static(b"r"), true)
    else {
        panic!("the response body did not pause");
    };
    let BodyOutcome::Paused(request) = sf.body(BodyKind::Request, Bytes::from_static(b"q"), true)
    else {
        panic!("the request body did not pause");
    };
    let (response, request) = tokio::time::timeout(
        limit + Duration::from_secs(1),
        futures_util::future::join(sf.resume_body(response), sf.resume_body(request)),
    )
    .await
    .expect("the pauses outlived their limit");
    for (what, outcome) in [("response", response), ("request", request)] {
        match outcome {
            BodyOutcome::Reply { reply, .. } => assert_eq!(reply.status, 403, "{what}"),
            other => panic!(
                "{what} body after the reply ({} filters): {other:?}",
                chain.len()
            ),
        }
    }
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "the pauses took {:?} to end after a reply made within 20 ms",
        t.elapsed()
    );
}

/// A TLS client that trusts `roots` (DER): the certificate the listener at `addr` served,
/// and an HTTP/1.1 connection over it.
async fn tls_connect(
    addr: SocketAddr,
    roots: &[rustls::pki_types::CertificateDer<'static>],
) -> (
    Vec<u8>,
    hyper::client::conn::http1::SendRequest<http_body_util::Empty<Bytes>>,
) {
    let mut store = rustls::RootCertStore::empty();
    for r in roots {
        store.add(r.clone()).unwrap();
    }
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(store)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap();
    let served = tls.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    (served, send)
}

async fn send_get(
    send: &mut hyper::client::conn::http1::SendRequest<http_body_util::Empty<Bytes>>,
) -> u16 {
    let req = http::Request::get("/headers")
        .header("host", "localhost")
        .body(http_body_util::Empty::<Bytes>::new())
        .unwrap();
    let r = send.send_request(req).await.unwrap();
    let status = r.status().as_u16();
    let _ = r.into_body().collect().await;
    status
}

/// A rotated certificate is taken on the reload its files trigger, without a restart: new
/// handshakes get it, a connection already open goes on. A half-written rotation (a new
/// certificate with the old key) is refused and the certificate in force stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_certificate_is_served_without_a_restart() {
    let _ = logs();
    let up = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let pair = || rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (a, b, c) = (pair(), pair(), pair());
    let roots: Vec<_> = [&a, &b, &c].iter().map(|k| k.cert.der().clone()).collect();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    // As a rotation tool does: each file replaced whole (write, then rename).
    let put = |path: &std::path::Path, text: String| {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    };
    put(&cert, a.cert.pem());
    put(&key, a.key_pair.serialize_pem());
    let tls = format!(
        "    tls: {{ cert: {}, key: {} }}\n",
        cert.display(),
        key.display()
    );
    let (p, cfg) = Proxy::start_file(&format!(
        "listeners:\n{}",
        http_listener("rotating", up.addr, &tls)
    ))
    .await;
    let addr = p.addr("rotating");
    let (served, mut open) = tls_connect(addr, &roots).await;
    assert_eq!(served, a.cert.der().to_vec(), "the first certificate");
    assert_eq!(send_get(&mut open).await, 200);

    put(&cert, b.cert.pem());
    put(&key, b.key_pair.serialize_pem());
    assert!(
        logged_within("TLS certificate reloaded", Duration::from_secs(10)).await,
        "no reload of the certificate was logged"
    );
    let (served, mut fresh) = tls_connect(addr, &roots).await;
    assert_eq!(
        served,
        b.cert.der().to_vec(),
        "a new handshake after the rotation"
    );
    assert_eq!(send_get(&mut fresh).await, 200);
    assert_eq!(
        send_get(&mut open).await,
        200,
        "the connection open before goes on"
    );
    let restarted = String::from_utf8_lossy(&logs().lock().unwrap())
        .lines()
        .any(|l| l.contains("listener restarted") && l.contains("listener=rotating"));
    assert!(!restarted, "a certificate rotation restarted the listener");

    // Half a rotation: the certificate of `c` with the key of `b` does not load. The reload
    // is refused, naming this config file (looked for in the log from here on: a poll between
    // the two writes above may have refused a mixed pair already).
    let mark = logs().lock().unwrap().len();
    put(&cert, c.cert.pem());
    assert!(
        logged_within_since(mark, &cfg.display().to_string(), Duration::from_secs(10)).await,
        "the mismatched pair was not refused"
    );
    assert!(
        logged_since(mark, "certificate/key rejected"),
        "the refusal says why"
    );
    let (served, mut fresh) = tls_connect(addr, &roots).await;
    assert_eq!(
        served,
        b.cert.der().to_vec(),
        "the certificate in force stays"
    );
    assert_eq!(send_get(&mut fresh).await, 200);
}

/// A config reload starts new listeners (with their filters), restarts changed ones on the
/// socket they have (a request in flight finishes; later ones get the new settings), and stops
/// removed ones. A new listener that cannot bind is refused, and a changed one whose new
/// filters do not load keeps its old settings too; the others serve on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_starts_restarts_and_stops_listeners() {
    let _ = logs();
    let Some(basics) = module("pw_basics.wasm") else {
        return;
    };
    let up = Upstream::start().await;
    let (p, cfg_path) = Proxy::start_file(&format!(
        "listeners:\n{}",
        http_listener("web", up.addr, "")
    ))
    .await;
    let web = p.addr("web");
    // Everything before `listeners:` (flows, runtime) stays as the harness wrote it.
    let head = {
        let text = std::fs::read_to_string(&cfg_path).unwrap();
        text[..text.find("listeners:").unwrap()].to_owned()
    };
    let rewrite = |listeners: String| {
        std::fs::write(&cfg_path, format!("{head}listeners:\n{listeners}")).unwrap();
    };
    let wait_for = |what: &'static str| async move {
        assert!(
            logged_within(what, Duration::from_secs(10)).await,
            "no `{what}` in the log"
        );
    };
    let big = [("x-big", "b".repeat(2000))];
    let big: Vec<(&str, &str)> = big.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (s, _, _) = get(web, "/", &big).await;
    assert_eq!(s, 200);

    // 1. `web` restarts with a smaller head limit, on its port, while a request is in flight
    // (the reload takes at most about 1.1 s: a poll, then 100 ms for the writer).
    let slow = tokio::spawn(async move { get(web, "/slow/3000", &[]).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let limited = http_listener("web", up.addr, "    max_header_bytes: 1024\n");
    rewrite(limited.clone());
    let mut restarted = false;
    for _ in 0..100 {
        let (s, _, _) = get(web, "/", &big).await;
        if s == 431 {
            restarted = true;
            break;
        }
        assert_eq!(s, 200);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(restarted, "web never applied max_header_bytes");
    assert!(
        !slow.is_finished(),
        "the slow request ended before the restart: nothing was in flight"
    );
    let (s, _, body) = slow.await.unwrap();
    assert_eq!((s, body.as_str()), (200, "slow ok"));

    // 2. A new listener with a filter.
    let extra_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let extra_addr: SocketAddr = format!("127.0.0.1:{extra_port}").parse().unwrap();
    rewrite(format!(
        "{limited}  - name: extra\n    address: {extra_addr}\n    protocol: http\n    upstream: {}\n{}",
        up.addr,
        filter_block(
            "gen",
            &basics,
            r#"'{"add_request_headers":{"x-generation":"extra"}}'"#,
            ""
        )
    ));
    let mut started = false;
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(extra_addr).await.is_ok() {
            started = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(started, "the new listener never started");
    let (s, _, body) = get(extra_addr, "/headers", &[]).await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("x-generation: extra"), "{body}");

    // 3. `extra` goes; a new listener on web's port cannot bind and is refused.
    rewrite(format!(
        "{limited}  - name: clash\n    address: {web}\n    protocol: http\n    upstream: {}\n",
        up.addr
    ));
    let mut stopped = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(extra_addr).await.is_err() {
            stopped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(stopped, "the removed listener still accepts");
    wait_for("new listener not started").await;
    let (s, _, _) = get(web, "/", &[]).await;
    assert_eq!(s, 200);

    // 4. A change of `web` that comes with a filter that does not load is rejected whole: the
    // head limit stays (not fail open on the new settings without the new filter).
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.wasm");
    std::fs::write(&broken, b"not wasm").unwrap();
    rewrite(http_listener(
        "web",
        up.addr,
        &filter_block("broken", &broken, "''", ""),
    ));
    wait_for("filter reload rejected").await;
    // The listener change is decided right after the filters: give it a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (s, _, _) = get(web, "/", &big).await;
    assert_eq!(s, 431, "web runs the change whose filters did not load");
    assert!(logged("its new filters did not load"));
}
