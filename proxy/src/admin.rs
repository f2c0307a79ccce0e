//! The admin endpoint: `GET /metrics` (Prometheus text), `/ready`, `/flows` (live JSON lines).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::flows::Flows;
use crate::metrics::Metrics;

/// State the admin endpoint reports.
#[derive(Clone)]
pub struct Admin {
    pub metrics: Metrics,
    pub flows: Flows,
    /// False until every listener is bound, and again once draining starts.
    pub ready: Arc<AtomicBool>,
}

type Body = UnsyncBoxBody<Bytes, Infallible>;

fn text(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()).boxed_unsync());
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    r
}

impl Admin {
    fn route(&self, req: &Request<Incoming>) -> Response<Body> {
        if req.method() != Method::GET {
            return text(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "only GET\n");
        }
        match req.uri().path() {
            "/metrics" => text(
                StatusCode::OK,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                self.metrics.encode(),
            ),
            "/ready" if self.ready.load(Ordering::Acquire) => {
                text(StatusCode::OK, "text/plain", "ready\n")
            }
            "/ready" => text(StatusCode::SERVICE_UNAVAILABLE, "text/plain", "not ready\n"),
            "/flows" => {
                let rx = self.flows.subscribe();
                let s = stream::unfold(rx, |mut rx| async move {
                    let line = match rx.recv().await {
                        Ok(line) => line,
                        // A slow reader skipped records: say how many instead of hiding it.
                        Err(RecvError::Lagged(n)) => Bytes::from(format!("{{\"lagged\":{n}}}\n")),
                        Err(RecvError::Closed) => return None,
                    };
                    Some((Ok::<_, Infallible>(Frame::data(line)), rx))
                });
                let mut r = Response::new(BodyExt::boxed_unsync(StreamBody::new(s.boxed())));
                r.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("application/x-ndjson"),
                );
                r
            }
            _ => text(
                StatusCode::NOT_FOUND,
                "text/plain",
                "endpoints: /metrics /ready /flows\n",
            ),
        }
    }

    /// Serves until `shutdown`.
    pub async fn run(self, listener: TcpListener, shutdown: CancellationToken) {
        loop {
            let (stream, _peer): (_, SocketAddr) = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "admin accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let this = self.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let r = this.route(&req);
                    async move { Ok::<_, Infallible>(r) }
                });
                let conn = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .into_owned();
                tokio::select! {
                    _ = conn => {}
                    _ = shutdown.cancelled() => {}
                }
            });
        }
    }
}
