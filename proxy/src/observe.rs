//! `strait observe`: follows `/flows` on the admin endpoint and prints matching records.

use std::io::Write;
use std::net::SocketAddr;

use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;

use crate::flows::{FlowRecord, Verdict};

/// Which records to print.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub verdict: Option<Verdict>,
    /// Path prefix.
    pub path: Option<String>,
    pub listener: Option<String>,
}

impl Filter {
    pub fn matches(&self, r: &FlowRecord) -> bool {
        self.verdict.is_none_or(|v| v == r.verdict)
            && self
                .path
                .as_deref()
                .is_none_or(|p| r.path.as_deref().is_some_and(|rp| rp.starts_with(p)))
            && self.listener.as_deref().is_none_or(|l| l == r.listener)
    }
}

/// Why observing failed.
#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    #[error("cannot connect to the admin endpoint at {addr}: {source} (is `strait run` up with `admin:` set?)")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("admin endpoint {addr}: {source}")]
    Http {
        addr: SocketAddr,
        source: hyper::Error,
    },
    #[error("admin endpoint {addr} answered {status} to GET /flows")]
    Status {
        addr: SocketAddr,
        status: http::StatusCode,
    },
    #[error("cannot write output: {0}")]
    Output(std::io::Error),
}

/// One line for a terminal.
pub fn human(r: &FlowRecord) -> String {
    let status = match (r.status, r.grpc_status) {
        (Some(s), Some(g)) => format!("{s} grpc-status={g}"),
        (Some(s), None) => s.to_string(),
        (None, _) => "-".into(),
    };
    let mut line = format!(
        "{} {:<9} {} {} -> {} {} {} {}{} {} {:.3}ms",
        r.time,
        r.verdict.as_str(),
        r.listener,
        r.source,
        r.destination,
        r.protocol,
        r.method.as_deref().unwrap_or("-"),
        r.host.as_deref().unwrap_or(""),
        r.path.as_deref().unwrap_or(""),
        status,
        r.latency_ns as f64 / 1e6,
    );
    if let Some(f) = &r.filter {
        line.push_str(&format!(" filter={f}"));
    }
    if let Some(e) = &r.error {
        line.push_str(&format!(" error=\"{e}\""));
    }
    line
}

/// Streams records from `admin` until the connection ends, printing those `filter` matches.
pub async fn follow(
    admin: SocketAddr,
    filter: &Filter,
    json: bool,
    mut out: impl Write,
) -> Result<(), ObserveError> {
    let tcp = tokio::net::TcpStream::connect(admin)
        .await
        .map_err(|source| ObserveError::Connect {
            addr: admin,
            source,
        })?;
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|source| ObserveError::Http {
            addr: admin,
            source,
        })?;
    tokio::spawn(conn);
    let req = http::Request::get("/flows")
        .header(http::header::HOST, admin.to_string())
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(|_| ObserveError::Status {
            addr: admin,
            status: http::StatusCode::BAD_REQUEST,
        })?;
    let resp = send
        .send_request(req)
        .await
        .map_err(|source| ObserveError::Http {
            addr: admin,
            source,
        })?;
    if !resp.status().is_success() {
        return Err(ObserveError::Status {
            addr: admin,
            status: resp.status(),
        });
    }
    let mut body = resp.into_body();
    let mut buf = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|source| ObserveError::Http {
            addr: admin,
            source,
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        buf.extend_from_slice(&data);
        while let Some(nl) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=nl).collect();
            let line = &line[..line.len() - 1];
            match serde_json::from_slice::<FlowRecord>(line) {
                Ok(r) if filter.matches(&r) => {
                    if json {
                        out.write_all(line).map_err(ObserveError::Output)?;
                        out.write_all(b"\n").map_err(ObserveError::Output)?;
                    } else {
                        writeln!(out, "{}", human(&r)).map_err(ObserveError::Output)?;
                    }
                    out.flush().map_err(ObserveError::Output)?;
                }
                Ok(_) => {}
                Err(_) => eprintln!("strait observe: {}", String::from_utf8_lossy(line)),
            }
        }
    }
    Ok(())
}
