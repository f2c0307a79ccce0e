//! Outbound calls from filters (`proxy_http_call`, `proxy_grpc_call`) to named clusters, and
//! delivery of their responses (and of shared-queue notifications) back into the VM.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::{HeaderName, HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::host::{CallResponse, Outbound};
use super::shared::QueueOwner;
use super::vm::Plugin;
use crate::config::{ClusterConfig, UpstreamProtocol};
use crate::http::upstream::{Alpn, UpstreamConnector};

/// Largest callout response body handed to a filter.
const MAX_CALL_BODY: usize = 4 << 20;

type HttpClient = Client<UpstreamConnector, Full<Bytes>>;

/// Pooled clients per cluster (and protocol), each with what it was built for: a reload that
/// changes a cluster's address or TLS (server name, CA bundle contents) replaces its client.
#[derive(Default)]
pub struct Clients {
    map: Mutex<HashMap<(String, bool), (ClientKey, HttpClient)>>,
}

/// A cluster's address, connect timeout and TLS identity, as a client was built for them.
#[derive(PartialEq, Eq)]
struct ClientKey {
    address: String,
    connect_timeout: Duration,
    tls: Option<(String, u64)>,
}

impl Clients {
    fn get(&self, c: &ClusterConfig, h2: bool) -> HttpClient {
        let key = ClientKey {
            address: c.address.to_string(),
            connect_timeout: c.connect_timeout,
            tls: c
                .tls
                .as_ref()
                .map(|t| (t.server_name.to_str().into_owned(), t.files.digest)),
        };
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        match m.get(&(c.name.clone(), h2)) {
            Some((k, client)) if *k == key => client.clone(),
            _ => {
                let alpn = if h2 { Alpn::Http2 } else { Alpn::Http1 };
                let conn = UpstreamConnector::to(
                    c.address.as_str(),
                    c.connect_timeout,
                    c.tls.clone(),
                    alpn,
                );
                let mut b = Client::builder(TokioExecutor::new());
                b.timer(TokioTimer::new())
                    .pool_timer(TokioTimer::new())
                    .pool_idle_timeout(Duration::from_secs(60));
                if h2 {
                    b.http2_only(true);
                }
                let client = b.build(conn);
                m.insert((c.name.clone(), h2), (key, client.clone()));
                client
            }
        }
    }
}

/// Runs one outbound call and delivers its result to the context that made it.
pub async fn run(owner: Weak<Plugin>, slot: usize, inc: u64, call: Outbound) {
    // Only the runtime and the filter's name are held across the call: a strong reference to
    // the plugin would keep a retired plugin from ever being unloaded (`unload.rs` waits for
    // the last one) while it keeps making calls.
    let Some((rt, name)) = owner
        .upgrade()
        .map(|p| (plugin_rt(&p), p.info.name.clone()))
    else {
        return;
    };
    match call {
        Outbound::Http {
            token,
            context,
            cluster,
            headers,
            body,
            trailers: _,
            timeout,
        } => {
            let resp = match rt.cluster(&cluster) {
                Some(c) => {
                    let h2 = c.protocol == UpstreamProtocol::Http2;
                    let client = rt.callouts.get(&c, h2);
                    http_call(&client, &c, headers, body, timeout).await
                }
                None => Err(format!("unknown cluster `{cluster}`")),
            };
            let resp = resp.unwrap_or_else(|e| {
                tracing::info!(filter = %name, cluster, "http_call failed: {e}");
                CallResponse::default()
            });
            deliver(owner, slot, inc, context, resp, |vm, ctx, r| {
                let Some(f) = vm.f.http_call_response.clone() else {
                    return Ok(());
                };
                vm.call(&f, (ctx, token, r.headers, r.body, r.trailers))
            });
        }
        Outbound::Grpc {
            token,
            context,
            cluster,
            service,
            method,
            metadata,
            message,
            timeout,
        } => {
            let resp = match rt.cluster(&cluster) {
                Some(c) => {
                    let client = rt.callouts.get(&c, true);
                    grpc_call(&client, &c, &service, &method, metadata, message, timeout).await
                }
                None => CallResponse {
                    grpc_status: Some((14, format!("unknown cluster `{cluster}`"))),
                    ..Default::default()
                },
            };
            deliver(owner, slot, inc, context, resp, |vm, ctx, r| {
                // As under Envoy: a unary call ends in `proxy_on_grpc_receive` when it
                // succeeds and in `proxy_on_grpc_close` when it fails, never both (SDKs forget
                // the token at the first).
                let (code, _) = r.grpc.clone().unwrap_or((2, String::new()));
                let (f, args) = if code == 0 {
                    (vm.f.grpc_receive.clone(), (ctx, token, r.body))
                } else {
                    (vm.f.grpc_close.clone(), (ctx, token, code))
                };
                if let Some(f) = f {
                    vm.call(&f, args)?;
                }
                Ok(())
            });
        }
        Outbound::QueueReady { .. } => {}
    }
}

fn plugin_rt(p: &Plugin) -> Arc<super::shared::RuntimeInner> {
    p.runtime()
}

/// Sizes of a callout response, as the callbacks announce them.
struct Counts {
    headers: u32,
    body: u32,
    trailers: u32,
    grpc: Option<(u32, String)>,
}

/// Locks the VM, checks it is the one that made the call and the context still exists, makes
/// the response visible and runs `f`.
fn deliver(
    owner: Weak<Plugin>,
    slot: usize,
    inc: u64,
    context: u32,
    resp: CallResponse,
    f: impl FnOnce(&mut super::vm::Vm, u32, &Counts) -> Result<(), String>,
) {
    let Some(plugin) = owner.upgrade() else {
        return;
    };
    let mut g = plugin.lock(slot);
    let Some(vm) = g.as_mut().filter(|vm| vm.incarnation == inc) else {
        return;
    };
    if context != vm.root && !vm.store.data().streams.contains_key(&context) {
        // The stream ended before the response came back.
        return;
    }
    let counts = Counts {
        headers: resp.headers.len() as u32,
        body: resp.body.len() as u32,
        trailers: resp.trailers.len() as u32,
        grpc: resp.grpc_status.clone(),
    };
    vm.store.data_mut().call_response = Some(resp);
    vm.store.data_mut().effective = context;
    let r = f(vm, context, &counts);
    if let Some(vm) = g.as_mut() {
        vm.store.data_mut().call_response = None;
    }
    match r {
        Ok(()) => plugin.after_callback(&mut g),
        Err(m) => {
            // A paused stream finds its VM gone and applies the failure policy.
            plugin.kill(&mut g, &format!("callout response callback: {m}"));
        }
    }
}

async fn http_call(
    client: &HttpClient,
    c: &ClusterConfig,
    headers: Vec<(String, Vec<u8>)>,
    body: Bytes,
    timeout: Duration,
) -> Result<CallResponse, String> {
    let mut method = Method::GET;
    let mut path = "/".to_owned();
    let mut authority = c.address.to_string();
    let mut b = Request::builder();
    for (k, v) in &headers {
        match k.as_str() {
            ":method" => {
                method = Method::from_bytes(v).map_err(|_| "invalid :method".to_owned())?;
            }
            ":path" => path = String::from_utf8_lossy(v).into_owned(),
            ":authority" => authority = String::from_utf8_lossy(v).into_owned(),
            ":scheme" => {}
            k if k.starts_with(':') => {}
            _ => {
                let name = HeaderName::from_bytes(k.as_bytes())
                    .map_err(|_| format!("invalid header name `{k}`"))?;
                let value = HeaderValue::from_bytes(v)
                    .map_err(|_| format!("invalid value for header `{k}`"))?;
                b = b.header(name, value);
            }
        }
    }
    let scheme = if c.tls.is_some() { "https" } else { "http" };
    let uri: Uri = format!("{scheme}://{authority}{path}")
        .parse()
        .map_err(|e| format!("invalid callout URI: {e}"))?;
    let req = b
        .method(method)
        .uri(uri)
        .body(Full::new(body))
        .map_err(|e| format!("invalid callout request: {e}"))?;
    let fut = async {
        let resp = client
            .request(req)
            .await
            .map_err(|e| format!("request to cluster `{}` failed: {e}", c.name))?;
        let (parts, body) = resp.into_parts();
        let collected = Limited::new(body, MAX_CALL_BODY)
            .collect()
            .await
            .map_err(|e| format!("response body from cluster `{}`: {e}", c.name))?;
        let trailers = collected.trailers().map(pairs).unwrap_or_default();
        let mut headers = vec![(
            ":status".to_owned(),
            parts.status.as_str().as_bytes().to_vec(),
        )];
        headers.extend(pairs(&parts.headers));
        Ok::<_, String>(CallResponse {
            headers,
            body: collected.to_bytes(),
            trailers,
            grpc_status: None,
        })
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| format!("no response within {timeout:?}"))?
}

#[allow(clippy::too_many_arguments)]
async fn grpc_call(
    client: &HttpClient,
    c: &ClusterConfig,
    service: &str,
    method: &str,
    metadata: Vec<(String, Vec<u8>)>,
    message: Bytes,
    timeout: Duration,
) -> CallResponse {
    let fail = |code: u32, msg: String| CallResponse {
        grpc_status: Some((code, msg)),
        ..Default::default()
    };
    let scheme = if c.tls.is_some() { "https" } else { "http" };
    let uri: Uri = match format!("{scheme}://{}/{service}/{method}", c.address).parse() {
        Ok(u) => u,
        Err(e) => return fail(13, format!("invalid gRPC target: {e}")),
    };
    let mut frame = BytesMut::with_capacity(5 + message.len());
    frame.put_u8(0);
    frame.put_u32(message.len() as u32);
    frame.put_slice(&message);
    let mut b = Request::builder()
        .method(Method::POST)
        .uri(uri)
        .version(http::Version::HTTP_2)
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    for (k, v) in &metadata {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_bytes(v),
        ) {
            b = b.header(n, v);
        }
    }
    let req = match b.body(Full::new(frame.freeze())) {
        Ok(r) => r,
        Err(e) => return fail(13, format!("invalid gRPC request: {e}")),
    };
    let fut = async {
        let resp = client
            .request(req)
            .await
            .map_err(|e| (14, format!("gRPC call to cluster `{}` failed: {e}", c.name)))?;
        let (parts, body) = resp.into_parts();
        let collected = Limited::new(body, MAX_CALL_BODY)
            .collect()
            .await
            .map_err(|e| (14, format!("gRPC response from cluster `{}`: {e}", c.name)))?;
        let trailers = collected.trailers().cloned().unwrap_or_default();
        let status_src = if trailers.contains_key("grpc-status") {
            &trailers
        } else {
            &parts.headers
        };
        let code = status_src
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.parse::<u32>().ok())
            .unwrap_or(if parts.status.is_success() { 2 } else { 14 });
        let msg = status_src
            .get("grpc-message")
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        let mut data = collected.to_bytes();
        let message = if data.len() >= 5 {
            let _flag = data.get_u8();
            let n = data.get_u32() as usize;
            data.slice(..n.min(data.len()))
        } else {
            Bytes::new()
        };
        Ok::<_, (u32, String)>(CallResponse {
            headers: pairs(&parts.headers),
            body: message,
            trailers: pairs(&trailers),
            grpc_status: Some((code, msg)),
        })
    };
    match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(r)) => r,
        Ok(Err((code, m))) => fail(code, m),
        Err(_) => fail(4, format!("no response within {timeout:?}")),
    }
}

fn pairs(h: &http::HeaderMap) -> Vec<(String, Vec<u8>)> {
    h.iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.as_bytes().to_vec()))
        .collect()
}

/// Tells the root context that registered a queue that it has data: the latest registration
/// whose VM still runs (see [`super::shared::Queues::register`]).
pub async fn queue_ready(owners: Vec<QueueOwner>, queue: u32) {
    for owner in owners {
        let Some(plugin) = owner.plugin.upgrade() else {
            continue;
        };
        let mut g = plugin.lock(owner.slot);
        let Some(vm) = g.as_mut().filter(|vm| vm.incarnation == owner.incarnation) else {
            continue;
        };
        let Some(f) = vm.f.on_queue_ready.clone() else {
            return;
        };
        let root = vm.root;
        vm.store.data_mut().effective = root;
        match vm.call(&f, (root, queue)) {
            Ok(()) => plugin.after_callback(&mut g),
            Err(m) => plugin.kill(&mut g, &format!("proxy_on_queue_ready: {m}")),
        }
        return;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    type Key = (String, Duration, Option<(String, u64)>);

    fn cluster(ca: &std::path::Path, connect_timeout: Duration) -> ClusterConfig {
        ClusterConfig {
            name: "authz".into(),
            address: http::uri::Authority::from_static("127.0.0.1:9"),
            tls: Some(crate::tls::UpstreamTls::new("localhost", Some(ca)).unwrap()),
            protocol: UpstreamProtocol::Auto,
            connect_timeout,
        }
    }

    fn key_of(clients: &Clients) -> Option<Key> {
        let m = clients.map.lock().unwrap();
        assert!(m.len() <= 1, "one client per cluster and protocol");
        m.get(&("authz".to_owned(), false))
            .map(|(k, _)| (k.address.clone(), k.connect_timeout, k.tls.clone()))
    }

    /// A reload that rotates a cluster's CA bundle (or changes its connect timeout) replaces
    /// the cluster's client; the same settings keep it.
    #[tokio::test]
    async fn a_changed_cluster_gets_a_new_client() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        let pem = || {
            rcgen::generate_simple_self_signed(vec!["localhost".into()])
                .unwrap()
                .cert
                .pem()
        };
        std::fs::write(&ca, pem()).unwrap();
        let clients = Clients::default();
        let first = cluster(&ca, Duration::from_secs(1));
        clients.get(&first, false);
        let k1 = key_of(&clients).unwrap();
        clients.get(&cluster(&ca, Duration::from_secs(1)), false);
        assert_eq!(key_of(&clients).unwrap(), k1, "same settings, same client");

        std::fs::write(&ca, pem()).unwrap();
        let rotated = cluster(&ca, Duration::from_secs(1));
        assert_ne!(
            rotated.tls.as_ref().unwrap().files,
            first.tls.as_ref().unwrap().files
        );
        clients.get(&rotated, false);
        let k2 = key_of(&clients).unwrap();
        assert_ne!(k2.2, k1.2, "a rotated CA bundle gets a new client");

        clients.get(&cluster(&ca, Duration::from_secs(3)), false);
        assert_eq!(key_of(&clients).unwrap().1, Duration::from_secs(3));
    }
}
