//! Upstream connections: a connector that always dials the listener's configured upstream
//! (optionally originating TLS), and the pooled HTTP/1.1 and HTTP/2 clients built on it.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::config::ListenerConfig;
use crate::metrics::UpstreamErrorKind;
use crate::socket;
use crate::tls::UpstreamTls;
use http::uri::Authority;
use std::net::IpAddr;

/// Why an upstream connection could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot resolve {host}: {source}")]
    Resolve { host: String, source: io::Error },
    #[error("connect to {addr}: {source}")]
    Io { addr: String, source: io::Error },
    #[error("connect to {addr}: timed out after {after:?}")]
    Timeout { addr: String, after: Duration },
    #[error("TLS handshake with {addr}: {source}")]
    Tls { addr: String, source: io::Error },
}

impl ConnectError {
    pub fn is_timeout(&self) -> bool {
        matches!(self, ConnectError::Timeout { .. })
    }

    /// The `strait_upstream_errors_total` kind this failure counts as.
    pub fn kind(&self) -> UpstreamErrorKind {
        if self.is_timeout() {
            UpstreamErrorKind::Timeout
        } else {
            UpstreamErrorKind::Connect
        }
    }
}

/// Which ALPN to offer when originating TLS.
#[derive(Clone, Copy, Debug)]
pub enum Alpn {
    Http1,
    Http2,
    /// Offer both; the upstream picks.
    Both,
    None,
}

/// Where one listener's upstream connections go — or, for a transparent listener, one
/// accepted connection's: its original destination, from the client's address.
#[derive(Clone, Debug)]
pub struct Target {
    pub authority: Authority,
    /// Local address to bind (IP_TRANSPARENT): the client's, so the server sees the client.
    pub bind: Option<IpAddr>,
    /// SO_MARK: set on transparent listeners' upstream legs so the datapath never redirects
    /// or polices them again.
    pub mark: Option<u32>,
    /// Skip the h2c probe: the client already spoke h2c to this very destination.
    pub h2c_known: bool,
}

impl Target {
    pub fn fixed(authority: Authority) -> Self {
        Self {
            authority,
            bind: None,
            mark: None,
            h2c_known: false,
        }
    }
}

/// Dials the listener's upstream whatever the request URI says (the URI only carries the
/// authority the client asked for, which becomes Host / :authority).
#[derive(Clone)]
pub struct UpstreamConnector {
    target: Arc<str>,
    bind: Option<IpAddr>,
    mark: Option<u32>,
    timeout: Duration,
    tls: Option<(UpstreamTls, Alpn)>,
}

impl UpstreamConnector {
    pub fn new(cfg: &ListenerConfig, target: &Target, alpn: Alpn) -> Self {
        Self {
            target: target.authority.as_str().into(),
            bind: target.bind,
            mark: target.mark,
            timeout: cfg.timeouts.connect,
            tls: cfg.upstream_tls.clone().map(|t| (t, alpn)),
        }
    }

    /// A connector to an arbitrary `host:port` (filters' clusters).
    pub fn to(target: &str, timeout: Duration, tls: Option<UpstreamTls>, alpn: Alpn) -> Self {
        Self {
            target: target.into(),
            bind: None,
            mark: None,
            timeout,
            tls: tls.map(|t| (t, alpn)),
        }
    }

    /// Connects now (TCP, then TLS if configured), within the connect timeout.
    pub async fn connect(&self) -> Result<UpstreamStream, ConnectError> {
        let addr = self.target.to_string();
        let fut = async {
            let addrs: Vec<_> = tokio::net::lookup_host(&*self.target)
                .await
                .map_err(|source| ConnectError::Resolve {
                    host: addr.clone(),
                    source,
                })?
                .collect();
            let mut last = io::Error::new(io::ErrorKind::NotFound, "no addresses");
            for a in addrs {
                let attempt = async {
                    if self.bind.is_none() && self.mark.is_none() {
                        return TcpStream::connect(a).await;
                    }
                    socket::upstream_socket(a, self.bind, self.mark)?
                        .connect(a)
                        .await
                };
                match attempt.await {
                    Ok(s) => return Ok(s),
                    Err(e) => last = e,
                }
            }
            Err(ConnectError::Io {
                addr: addr.clone(),
                source: last,
            })
        };
        let tcp = tokio::time::timeout(self.timeout, fut)
            .await
            .map_err(|_| ConnectError::Timeout {
                addr: addr.clone(),
                after: self.timeout,
            })??;
        socket::tune_stream(&tcp);
        let Some((tls, alpn)) = &self.tls else {
            return Ok(UpstreamStream::Plain(TokioIo::new(tcp)));
        };
        let cfg = match alpn {
            Alpn::Http1 => tls.http1.clone(),
            Alpn::Http2 => tls.http2.clone(),
            Alpn::Both => tls.both.clone(),
            Alpn::None => tls.plain.clone(),
        };
        let connector = tokio_rustls::TlsConnector::from(cfg);
        let s = tokio::time::timeout(
            self.timeout,
            connector.connect(tls.server_name.clone(), tcp),
        )
        .await
        .map_err(|_| ConnectError::Timeout {
            addr: addr.clone(),
            after: self.timeout,
        })?
        .map_err(|source| ConnectError::Tls { addr, source })?;
        Ok(UpstreamStream::Tls(Box::new(TokioIo::new(s))))
    }
}

impl tower_service::Service<Uri> for UpstreamConnector {
    type Response = UpstreamStream;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<UpstreamStream, ConnectError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { this.connect().await })
    }
}

/// A connection to an upstream, cleartext or TLS.
pub enum UpstreamStream {
    Plain(TokioIo<TcpStream>),
    Tls(Box<TokioIo<TlsStream<TcpStream>>>),
}

impl UpstreamStream {
    /// The underlying stream, for byte relays.
    pub fn into_tokio(self) -> Box<dyn crate::io::AsyncStream + Sync> {
        match self {
            UpstreamStream::Plain(s) => Box::new(s.into_inner()),
            UpstreamStream::Tls(s) => Box::new(s.into_inner()),
        }
    }
}

impl Connection for UpstreamStream {
    fn connected(&self) -> Connected {
        match self {
            UpstreamStream::Plain(_) => Connected::new(),
            UpstreamStream::Tls(s) => {
                let h2 = s.inner().get_ref().1.alpn_protocol() == Some(b"h2");
                if h2 {
                    Connected::new().negotiated_h2()
                } else {
                    Connected::new()
                }
            }
        }
    }
}

impl Read for UpstreamStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            UpstreamStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl Write for UpstreamStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            UpstreamStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            UpstreamStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            UpstreamStream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            UpstreamStream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            UpstreamStream::Plain(s) => s.is_write_vectored(),
            UpstreamStream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamStream::Plain(s) => Pin::new(s).poll_flush(cx),
            UpstreamStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            UpstreamStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

pub type UpstreamClient<B> = Client<UpstreamConnector, B>;

/// The pooled clients of one listener, one per upstream protocol.
pub struct Upstreams<B> {
    pub http1: UpstreamClient<B>,
    pub http2: UpstreamClient<B>,
    /// TLS upstreams only: offers ALPN h2 and http/1.1 and uses what the upstream picks.
    pub negotiated: UpstreamClient<B>,
    /// For `Upgrade` requests, which take a connection of their own.
    pub connector: UpstreamConnector,
    h2c: H2cSupport,
    h2c_known: bool,
}

impl<B> Upstreams<B>
where
    B: http_body::Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    pub fn new(cfg: &ListenerConfig, target: &Target) -> Self {
        let base = |h2: bool| {
            let mut b = Client::builder(TokioExecutor::new());
            b.timer(TokioTimer::new())
                .pool_timer(TokioTimer::new())
                .pool_idle_timeout(Duration::from_secs(90))
                .pool_max_idle_per_host(256)
                .http2_only(h2);
            if h2 {
                b.http2_adaptive_window(true)
                    .http2_keep_alive_interval(Duration::from_secs(30))
                    .http2_keep_alive_while_idle(false);
            }
            b
        };
        Self {
            http1: base(false).build(UpstreamConnector::new(cfg, target, Alpn::Http1)),
            http2: base(true).build(UpstreamConnector::new(cfg, target, Alpn::Http2)),
            negotiated: base(false).build(UpstreamConnector::new(cfg, target, Alpn::Both)),
            connector: UpstreamConnector::new(cfg, target, Alpn::Http1),
            h2c: H2cSupport::default(),
            h2c_known: target.h2c_known,
        }
    }

    /// Whether the (cleartext) upstream speaks HTTP/2 with prior knowledge. Probed with a
    /// connection of its own (preface + SETTINGS, no request), remembered for a minute.
    pub async fn h2c_supported(&self) -> bool {
        if self.h2c_known {
            return true;
        }
        self.h2c.get(&self.connector).await
    }
}

const H2C_RECHECK: Duration = Duration::from_secs(60);

/// Cached result of the h2c probe: `(probed_at_ms << 2) | (1 = h2c, 2 = HTTP/1 only)`.
#[derive(Default)]
struct H2cSupport {
    state: std::sync::atomic::AtomicU64,
}

impl H2cSupport {
    async fn get(&self, connector: &UpstreamConnector) -> bool {
        use std::sync::atomic::Ordering;
        let now = crate::io::now_ms();
        let s = self.state.load(Ordering::Relaxed);
        if s != 0 && now.saturating_sub(s >> 2) < H2C_RECHECK.as_millis() as u64 {
            return s & 3 == 1;
        }
        // Boxed: probing is rare, and its future would enlarge every request's.
        match Box::pin(probe_h2c(connector)).await {
            Some(h2) => {
                self.state
                    .store((now << 2) | if h2 { 1 } else { 2 }, Ordering::Relaxed);
                if !h2 {
                    tracing::info!(upstream = %connector.target, "upstream does not speak h2c: forwarding HTTP/2 requests over HTTP/1.1");
                }
                h2
            }
            // Unreachable: let the request itself fail with the real connect error.
            None => true,
        }
    }
}

async fn probe_h2c(connector: &UpstreamConnector) -> Option<bool> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = connector.connect().await.ok()?.into_tokio();
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]); // empty SETTINGS frame
    let exchange = async {
        s.write_all(&hello).await?;
        let mut head = [0u8; 9];
        s.read_exact(&mut head).await?;
        Ok::<_, io::Error>(head)
    };
    let verdict = match tokio::time::timeout(connector.timeout, exchange).await {
        // An HTTP/2 server answers with a SETTINGS frame (type 4) on stream 0.
        Ok(Ok(head)) => head[3] == 4 && head[5..9] == [0, 0, 0, 0],
        // Closed, reset or silent: not HTTP/2.
        _ => false,
    };
    Some(verdict)
}
