//! The floor of a hand-written HTTP/1.1 forwarding loop on tokio: how fast the issue-2
//! rewrite (httparse, one buffer per direction, no `http::Request` per hop) could get before
//! any of strait's work (flow records, metrics, timeouts, filters) is added.
//!
//! Not a proxy: Content-Length bodies only, no chunked, no Upgrade, no timeouts, no error
//! responses; one upstream connection per client connection. Measured against nginx and
//! strait in benches/README.md ("HTTP/1.1, the floor of a hand-written loop").
//!
//! `cargo run --release -p strait-bench --example h1_floor -- LISTEN UPSTREAM [current-thread]`

use std::net::SocketAddr;

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Reads until `buf` holds a complete head; returns its length, the body length and the
/// head to send on (hop-by-hop `connection` dropped, `extra` appended). `None` at EOF.
async fn head(
    io: &mut TcpStream,
    buf: &mut Vec<u8>,
    out: &mut Vec<u8>,
    request: bool,
    extra: &[u8],
) -> Result<Option<(usize, usize)>> {
    loop {
        let mut hs = [httparse::EMPTY_HEADER; 64];
        let parsed = if request {
            let mut req = httparse::Request::new(&mut hs);
            match req.parse(buf)? {
                httparse::Status::Complete(n) => {
                    out.clear();
                    out.extend_from_slice(req.method.unwrap_or("GET").as_bytes());
                    out.push(b' ');
                    out.extend_from_slice(req.path.unwrap_or("/").as_bytes());
                    out.extend_from_slice(b" HTTP/1.1\r\n");
                    Some((n, req.headers.len()))
                }
                httparse::Status::Partial => None,
            }
        } else {
            let mut res = httparse::Response::new(&mut hs);
            match res.parse(buf)? {
                httparse::Status::Complete(n) => {
                    out.clear();
                    out.extend_from_slice(b"HTTP/1.1 ");
                    out.extend_from_slice(res.code.unwrap_or(502).to_string().as_bytes());
                    out.push(b' ');
                    out.extend_from_slice(res.reason.unwrap_or("").as_bytes());
                    out.extend_from_slice(b"\r\n");
                    Some((n, res.headers.len()))
                }
                httparse::Status::Partial => None,
            }
        };
        if let Some((n, count)) = parsed {
            let mut body = 0;
            for h in &hs[..count] {
                if h.name.eq_ignore_ascii_case("connection") {
                    continue;
                }
                if h.name.eq_ignore_ascii_case("content-length") {
                    body = std::str::from_utf8(h.value)?.trim().parse()?;
                }
                out.extend_from_slice(h.name.as_bytes());
                out.extend_from_slice(b": ");
                out.extend_from_slice(h.value);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(extra);
            out.extend_from_slice(b"\r\n\r\n");
            return Ok(Some((n, body)));
        }
        if buf.capacity() - buf.len() < 1024 {
            buf.reserve(4096);
        }
        if io.read_buf(buf).await? == 0 {
            return Ok(None);
        }
    }
}

/// Appends the body that follows a head of `n` bytes to `out`, then drops both from `buf`.
async fn body(
    io: &mut TcpStream,
    buf: &mut Vec<u8>,
    out: &mut Vec<u8>,
    n: usize,
    len: usize,
) -> Result<bool> {
    while buf.len() < n + len {
        if io.read_buf(buf).await? == 0 {
            return Ok(false);
        }
    }
    out.extend_from_slice(&buf[n..n + len]);
    buf.drain(..n + len);
    Ok(true)
}

async fn connection(mut client: TcpStream, upstream: SocketAddr) -> Result<()> {
    client.set_nodelay(true)?;
    let mut up = TcpStream::connect(upstream).await?;
    up.set_nodelay(true)?;
    let (mut cbuf, mut ubuf, mut out) = (
        Vec::with_capacity(8192),
        Vec::with_capacity(8192),
        Vec::with_capacity(8192),
    );
    let forwarded = format!(
        "x-forwarded-for: {}\r\nvia: 1.1 strait",
        client.peer_addr()?.ip()
    );
    loop {
        let Some((n, len)) =
            head(&mut client, &mut cbuf, &mut out, true, forwarded.as_bytes()).await?
        else {
            return Ok(());
        };
        if !body(&mut client, &mut cbuf, &mut out, n, len).await? {
            return Ok(());
        }
        up.write_all(&out).await?;
        let Some((n, len)) = head(&mut up, &mut ubuf, &mut out, false, b"via: 1.1 strait").await?
        else {
            bail!("upstream closed before a response");
        };
        if !body(&mut up, &mut ubuf, &mut out, n, len).await? {
            bail!("upstream closed mid-body");
        }
        client.write_all(&out).await?;
    }
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [listen, upstream, rest @ ..] = args.as_slice() else {
        bail!("usage: h1_floor LISTEN UPSTREAM [current-thread]");
    };
    let listen: SocketAddr = listen.parse().context("LISTEN")?;
    let upstream: SocketAddr = upstream.parse().context("UPSTREAM")?;
    let rt = if rest.first().is_some_and(|a| a == "current-thread") {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(1);
        b
    }
    .enable_all()
    .build()?;
    rt.block_on(serve(listen, upstream))
}

async fn serve(listen: SocketAddr, upstream: SocketAddr) -> Result<()> {
    let l = TcpListener::bind(listen).await?;
    loop {
        let (c, _) = l.accept().await?;
        tokio::spawn(async move {
            if let Err(e) = connection(c, upstream).await {
                eprintln!("connection: {e:#}");
            }
        });
    }
}
