//! Shared test fixtures: an in-process upstream and an in-process strait.
#![allow(dead_code, clippy::unwrap_used)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub mod kafka_env;

/// A test upstream speaking HTTP/1.1 and h2c. Paths:
/// - `/headers`: body lists the request's version and headers as `name: value` lines;
/// - `/sink`: reads the whole body, answers its size;
/// - `/stream/N`: streams N bytes in 64 KiB chunks;
/// - `/slow/MS`: answers after MS milliseconds;
/// - `/grpc-trailers`: 200 with a body and `grpc-status: 0` trailers;
/// - `/hello`: `hello, hello world` (with a content-length);
/// - `/nocontent`: 204, no body;
/// - `/check`: 200 if the request has `x-user: alice`, 403 otherwise (an authz service);
/// - `/check-body`: 200 unless the request body contains `secret`, then 403 (a body-scanning
///   authz service);
/// - `/echo`: the request body back;
/// - anything else: `ok`, with the request target in `x-upstream-path`.
pub struct Upstream {
    pub addr: SocketAddr,
    pub connections: Arc<AtomicUsize>,
    stop: CancellationToken,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, Infallible>;

fn full(s: impl Into<Bytes>) -> Body {
    Full::new(s.into()).boxed_unsync()
}

/// An authz service's answer: 200 `allow` or 403 `deny`.
fn authz_answer(ok: bool) -> Response<Body> {
    let mut r = Response::new(full(if ok { "allow" } else { "deny" }));
    if !ok {
        *r.status_mut() = http::StatusCode::FORBIDDEN;
    }
    r
}

/// The request's whole body (empty if it fails).
async fn whole_body(req: Request<Incoming>) -> Bytes {
    req.into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default()
}

async fn upstream_handle(req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_owned();
    if path == "/headers" {
        let mut out = format!("version: {:?}\n", req.version());
        for (k, v) in req.headers() {
            out.push_str(&format!("{}: {}\n", k, v.to_str().unwrap_or("<bin>")));
        }
        return Ok(Response::new(full(out)));
    }
    if let Some(method) = path.strip_prefix("/test.Echo/") {
        // A unary gRPC echo; method `Fail` answers PERMISSION_DENIED.
        let fail = method == "Fail";
        let body = whole_body(req).await;
        let mut t = http::HeaderMap::new();
        t.insert("grpc-status", if fail { "7" } else { "0" }.parse().unwrap());
        let mut frames = vec![];
        if !fail {
            frames.push(Ok(Frame::data(body)));
        }
        frames.push(Ok(Frame::trailers(t)));
        let mut r =
            Response::new(StreamBody::new(futures_util::stream::iter(frames)).boxed_unsync());
        r.headers_mut()
            .insert("content-type", "application/grpc".parse().unwrap());
        return Ok(r);
    }
    if path == "/hello" {
        return Ok(Response::new(full("hello, hello world")));
    }
    if path == "/nocontent" {
        let mut r = Response::new(full(""));
        *r.status_mut() = http::StatusCode::NO_CONTENT;
        return Ok(r);
    }
    if path == "/check" {
        let ok = req.headers().get("x-user").is_some_and(|v| v == "alice");
        return Ok(authz_answer(ok));
    }
    if path == "/check-body" {
        let body = whole_body(req).await;
        return Ok(authz_answer(!body.windows(6).any(|w| w == b"secret")));
    }
    if path == "/echo" {
        return Ok(Response::new(full(whole_body(req).await)));
    }
    if path == "/sink" {
        let mut body = req.into_body();
        let mut n: u64 = 0;
        while let Some(f) = body.frame().await {
            match f {
                Ok(f) => n += f.data_ref().map_or(0, |d| d.len() as u64),
                Err(_) => break,
            }
        }
        return Ok(Response::new(full(n.to_string())));
    }
    if let Some(n) = path.strip_prefix("/stream/") {
        let total: u64 = n.parse().unwrap_or(0);
        let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
        let s = futures_util::stream::unfold(0u64, move |sent| {
            let chunk = chunk.clone();
            async move {
                if sent >= total {
                    return None;
                }
                let n = (total - sent).min(chunk.len() as u64);
                Some((
                    Ok::<_, Infallible>(Frame::data(chunk.slice(..n as usize))),
                    sent + n,
                ))
            }
        });
        return Ok(Response::new(StreamBody::new(s).boxed_unsync()));
    }
    if let Some(ms) = path.strip_prefix("/slow/") {
        tokio::time::sleep(Duration::from_millis(ms.parse().unwrap_or(0))).await;
        return Ok(Response::new(full("slow ok")));
    }
    if path == "/grpc-trailers" {
        let mut t = http::HeaderMap::new();
        t.insert("grpc-status", "0".parse().unwrap());
        let frames = vec![
            Ok(Frame::data(Bytes::from_static(b"\0\0\0\0\0"))),
            Ok(Frame::trailers(t)),
        ];
        let mut r =
            Response::new(StreamBody::new(futures_util::stream::iter(frames)).boxed_unsync());
        r.headers_mut()
            .insert("content-type", "application/grpc".parse().unwrap());
        return Ok(r);
    }
    let target = req
        .uri()
        .path_and_query()
        .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
    let mut r = Response::new(full("ok"));
    if let Ok(v) = http::HeaderValue::from_str(&target) {
        r.headers_mut().insert("x-upstream-path", v);
    }
    Ok(r)
}

impl Upstream {
    pub async fn start() -> Self {
        Self::start_with(None).await
    }

    /// The same upstream behind TLS (ALPN h2 + http/1.1) with `cert`/`key` PEM files.
    pub async fn start_tls(cert: &Path, key: &Path) -> Self {
        Self::start_with(Some(strait::tls::server_config(cert, key).unwrap().config)).await
    }

    async fn start_with(tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let tls = tls.map(tokio_rustls::TlsAcceptor::from);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let stop = CancellationToken::new();
        let (c, s) = (connections.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let (stream, _) = tokio::select! {
                    _ = s.cancelled() => return,
                    r = listener.accept() => r.unwrap(),
                };
                c.fetch_add(1, Ordering::SeqCst);
                let tls = tls.clone();
                tokio::spawn(async move {
                    let server = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    let svc = hyper::service::service_fn(upstream_handle);
                    match tls {
                        None => {
                            let _ = server.serve_connection(TokioIo::new(stream), svc).await;
                        }
                        Some(acceptor) => {
                            if let Ok(s) = acceptor.accept(stream).await {
                                let _ = server.serve_connection(TokioIo::new(s), svc).await;
                            }
                        }
                    }
                });
            }
        });
        Self {
            addr,
            connections,
            stop,
        }
    }
}

/// strait running in-process on ephemeral ports.
pub struct Proxy {
    pub addrs: Vec<(String, SocketAddr)>,
    pub admin: Option<SocketAddr>,
    pub flows: PathBuf,
    pub stop: CancellationToken,
    pub done: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Proxy {
    /// Starts strait from YAML; `{dir}` in the text is replaced by a temp dir (flows go to
    /// `{dir}/flows.jsonl`).
    pub async fn start(yaml: &str) -> Self {
        Self::start_in(yaml, false).await.0
    }

    /// Like [`Proxy::start`], but the config is written to `{dir}/strait.yaml` first (so a
    /// reload can re-read it) and returned with the proxy.
    pub async fn start_file(yaml: &str) -> (Self, PathBuf) {
        Self::start_in(yaml, true).await
    }

    async fn start_in(yaml: &str, write: bool) -> (Self, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let flows = dir.path().join("flows.jsonl");
        let yaml = format!(
            "flows: {{ sink: file, path: {} }}\nruntime: {{ shutdown_grace: 5s }}\n{}",
            flows.display(),
            yaml.replace("{dir}", &dir.path().display().to_string())
        );
        let path = dir.path().join("strait.yaml");
        if write {
            std::fs::write(&path, &yaml).unwrap();
        }
        let cfg = strait::config::Config::parse(&path, &yaml)
            .unwrap_or_else(|e| panic!("test config invalid:\n{e}\n{yaml}"));
        (Self::serve(cfg, dir, flows).await, path)
    }

    /// strait from an already parsed config (ephemeral ports expected).
    pub async fn from_config(cfg: strait::config::Config) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let flows = dir.path().join("flows.jsonl");
        Self::serve(cfg, dir, flows).await
    }

    async fn serve(cfg: strait::config::Config, dir: tempfile::TempDir, flows: PathBuf) -> Self {
        let names: Vec<String> = cfg.listeners.iter().map(|l| l.name.clone()).collect();
        let server = strait::Server::bind(cfg, compile_mode()).await.unwrap();
        let addrs = names
            .iter()
            .map(|n| (n.clone(), server.listener_addr(n).unwrap()))
            .collect();
        let admin = server.admin_addr();
        let stop = CancellationToken::new();
        let done = tokio::spawn(server.run(stop.clone()));
        Self {
            addrs,
            admin,
            flows,
            stop,
            done,
            _dir: dir,
        }
    }

    pub fn addr(&self, name: &str) -> SocketAddr {
        self.addrs.iter().find(|(n, _)| n == name).unwrap().1
    }

    /// Flow records written so far (waits briefly for the writer).
    pub async fn flows(&self, at_least: usize) -> Vec<strait::flows::FlowRecord> {
        for _ in 0..100 {
            let recs = read_flows(&self.flows);
            if recs.len() >= at_least {
                return recs;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        read_flows(&self.flows)
    }
}

/// Filters compile as under `strait run`: in a child process, the strait binary of this build.
pub fn compile_mode() -> strait::wasm::CompileMode {
    strait::wasm::CompileMode::Subprocess(env!("CARGO_BIN_EXE_strait").into())
}

pub fn read_flows(p: &Path) -> Vec<strait::flows::FlowRecord> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad flow line {l}: {e}")))
        .collect()
}

/// A listener block for `upstream`.
/// The listener option that picks each HTTP/1.1 engine; tests of HTTP/1.1 forwarding and
/// of filters on HTTP/1.1 run on both.
pub const ENGINES: [&str; 2] = ["    http1_engine: native\n", "    http1_engine: hyper\n"];

pub fn http_listener(name: &str, upstream: SocketAddr, extra: &str) -> String {
    format!(
        "  - name: {name}\n    address: 127.0.0.1:0\n    protocol: http\n    upstream: {upstream}\n{extra}"
    )
}

/// Sends raw bytes, reads until the peer closes or `wait` passes.
pub async fn raw_exchange(addr: SocketAddr, data: &[u8], wait: Duration) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(data).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(wait, s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// An HTTP/1.1 client connection to `addr` (its connection task spawned).
pub async fn h1_client<B>(addr: SocketAddr) -> hyper::client::conn::http1::SendRequest<B>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    send
}

/// A plain HTTP/1.1 client on a fresh connection.
pub async fn h1_get(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> (http::StatusCode, http::HeaderMap, String) {
    let mut send = h1_client(addr).await;
    let mut b = Request::get(path).header("host", "example.test");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let resp = send
        .send_request(b.body(http_body_util::Empty::<Bytes>::new()).unwrap())
        .await
        .unwrap();
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

/// An HTTP/2 (prior knowledge) client connection.
pub async fn h2_client(
    addr: SocketAddr,
) -> hyper::client::conn::http2::SendRequest<http_body_util::Empty<Bytes>> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    send
}

/// A self-signed certificate for `localhost`, written as `cert.pem` / `key.pem` into `dir`.
pub fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.key_pair.serialize_pem()).unwrap();
    (cert, key)
}

/// GET `path` on an HTTP/2 client connection; the body as text.
pub async fn h2_get(
    send: &mut hyper::client::conn::http2::SendRequest<http_body_util::Empty<Bytes>>,
    path: &str,
) -> String {
    let req = Request::get(format!("http://example.test{path}"))
        .body(http_body_util::Empty::<Bytes>::new())
        .unwrap();
    let body = send
        .send_request(req)
        .await
        .unwrap()
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes();
    String::from_utf8_lossy(&body).into_owned()
}
