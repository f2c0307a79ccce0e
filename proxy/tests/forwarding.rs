//! In-process integration tests of the HTTP and TCP flows: real sockets, an in-process
//! upstream, no privileges. Real-client tests (curl, grpcio, websockets) are in `e2e.rs`.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{
    h1_get, h2_client, h2_get, http_listener, raw_exchange, self_signed, Proxy, Upstream, ENGINES,
};
use http_body_util::{BodyExt, Empty};
use strait::flows::Verdict;

#[tokio::test]
async fn http1_forwarding_applies_proxy_header_rules() {
    for engine in ENGINES {
        header_rules(engine).await;
    }
}

async fn header_rules(engine: &str) {
    let up = Upstream::start().await;
    let p = Proxy::start(&format!(
        "listeners:\n{}",
        http_listener("web", up.addr, engine)
    ))
    .await;
    let (status, headers, body) = h1_get(
        p.addr("web"),
        "/headers",
        &[
            ("connection", "x-private"),
            ("x-private", "secret"),
            ("keep-alive", "timeout=5"),
            ("x-forwarded-for", "10.1.1.1"),
            ("x-app", "kept"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(headers["via"], "1.1 strait");
    assert!(body.contains("x-app: kept"), "{body}");
    assert!(body.contains("host: example.test"), "{body}");
    assert!(
        body.contains("x-forwarded-for: 10.1.1.1, 127.0.0.1"),
        "{body}"
    );
    assert!(body.contains("x-forwarded-proto: http"), "{body}");
    assert!(body.contains("via: 1.1 strait"), "{body}");
    assert!(
        !body.contains("x-private"),
        "Connection-listed header leaked: {body}"
    );
    assert!(
        !body.contains("keep-alive"),
        "hop-by-hop header leaked: {body}"
    );
    let flows = p.flows(1).await;
    assert_eq!(flows[0].verdict, Verdict::Forwarded);
    assert_eq!(flows[0].method.as_deref(), Some("GET"));
    assert_eq!(flows[0].path.as_deref(), Some("/headers"));
    assert_eq!(flows[0].status, Some(200));
    assert_eq!(flows[0].host.as_deref(), Some("example.test"));
    assert!(flows[0].latency_ns > 0 && flows[0].bytes_sent > 0);
}

#[tokio::test]
async fn keepalive_and_pipelining_keep_order_and_reuse_upstream_connections() {
    for engine in ENGINES {
        keepalive_and_pipelining(engine).await;
    }
}

async fn keepalive_and_pipelining(engine: &str) {
    let up = Upstream::start().await;
    let p = Proxy::start(&format!(
        "listeners:\n{}",
        http_listener("web", up.addr, engine)
    ))
    .await;
    let reqs = "GET /slow/200 HTTP/1.1\r\nhost: a\r\n\r\nGET /headers HTTP/1.1\r\nhost: b\r\n\r\nGET /x HTTP/1.1\r\nhost: c\r\nconnection: close\r\n\r\n";
    let out = raw_exchange(p.addr("web"), reqs.as_bytes(), Duration::from_secs(5)).await;
    let slow = out.find("slow ok").expect("first response");
    let hdrs = out.find("host: b").expect("second response");
    let last = out.rfind("\r\n\r\nok").expect("third response");
    assert!(slow < hdrs && hdrs < last, "responses out of order:\n{out}");
    assert_eq!(out.matches("HTTP/1.1 200 OK").count(), 3, "{out}");
    // Sequential requests from new client connections reuse pooled upstream connections.
    let before = up.connections.load(std::sync::atomic::Ordering::SeqCst);
    for _ in 0..10 {
        assert_eq!(h1_get(p.addr("web"), "/", &[]).await.0, 200);
    }
    let opened = up.connections.load(std::sync::atomic::Ordering::SeqCst) - before;
    assert!(
        opened <= 1,
        "expected pooled upstream connections, {opened} were opened for 10 requests"
    );
}

/// The native engine's framing: chunked bodies pass through (trailers included) with the next
/// pipelined request intact; HEAD and chunked responses; and the heads that could smuggle a
/// request past the proxy are refused before anything reaches the upstream.
#[tokio::test]
async fn native_http1_framing_is_strict_and_passes_bodies_through() {
    let up = Upstream::start().await;
    let p = Proxy::start(&format!(
        "listeners:\n{}",
        http_listener("web", up.addr, ENGINES[0])
    ))
    .await;
    let wait = Duration::from_secs(5);
    let refused = [
        (
            "POST /echo HTTP/1.1\r\nhost: a\r\ncontent-length: 4\r\n\
             transfer-encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nhost: a\r\n\r\n",
            "400 Bad Request",
        ),
        (
            "POST /echo HTTP/1.1\r\nhost: a\r\ncontent-length: 4\r\ncontent-length: 5\r\n\r\nabcde",
            "400 Bad Request",
        ),
        (
            "POST /echo HTTP/1.1\r\nhost: a\r\ntransfer-encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
            "501 Not Implemented",
        ),
        ("GET / HTTP/1.1\r\n\r\n", "400 Bad Request"),
        (
            "POST /echo HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
            "400 Bad Request",
        ),
    ];
    for (req, status) in refused {
        let out = raw_exchange(p.addr("web"), req.as_bytes(), wait).await;
        assert!(
            out.starts_with(&format!("HTTP/1.1 {status}\r\n")),
            "{req:?} → {out}"
        );
        assert!(out.contains("connection: close"), "{out}");
        let heads = out.lines().filter(|l| l.starts_with("HTTP/1.1 ")).count();
        assert_eq!(heads, 1, "{out}");
    }
    // None reached the upstream: the bad chunk arrived with its head and was found before
    // the request went out.
    assert_eq!(up.connections.load(std::sync::atomic::Ordering::SeqCst), 0);
    let flows = p.flows(5).await;
    let statuses: Vec<_> = flows.iter().map(|f| f.status).collect();
    assert_eq!(
        statuses,
        [Some(400), Some(400), Some(501), Some(400), Some(400)]
    );
    assert!(flows.iter().all(|f| f.verdict == Verdict::Error));

    let reqs = "POST /echo HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n\
                5\r\nhello\r\n7;ext=1\r\n world!\r\n0\r\nx-trailer: t\r\n\r\n\
                HEAD /hello HTTP/1.1\r\nhost: a\r\n\r\n\
                GET /stream/70000 HTTP/1.1\r\nhost: a\r\n\r\n\
                GET /hello HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n";
    let out = raw_exchange(p.addr("web"), reqs.as_bytes(), wait).await;
    let heads: Vec<_> = out
        .match_indices("HTTP/1.1 200 OK\r\n")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(heads.len(), 4, "{out}");
    let (echo, head, stream, last) = (
        &out[heads[0]..heads[1]],
        &out[heads[1]..heads[2]],
        &out[heads[2]..heads[3]],
        &out[heads[3]..],
    );
    assert!(echo.ends_with("\r\n\r\nhello world!"), "{echo}");
    assert!(
        head.contains("content-length: 18\r\n") && head.ends_with("\r\n\r\n"),
        "HEAD response with a body: {head}"
    );
    assert!(
        stream.contains("transfer-encoding: chunked\r\n"),
        "{stream}"
    );
    assert!(
        stream.ends_with("\r\n0\r\n\r\n"),
        "{}",
        &stream[stream.len() - 40..]
    );
    assert_eq!(stream.matches('x').count(), 70000);
    assert!(last.contains("connection: close\r\n") && last.ends_with("hello, hello world"));
    let flows = p.flows(9).await;
    let echo = &flows[5];
    assert_eq!(
        (echo.method.as_deref(), echo.bytes_received, echo.bytes_sent),
        (Some("POST"), 12, 12)
    );
    assert_eq!(flows[7].bytes_sent, 70000);
}

/// A `Connection` listing cannot take the framing away from what the proxy sends on: a
/// request listing `content-length` (and `host`) reaches the upstream with both, so its body
/// stays a body and is not read upstream as a request the proxy never saw.
#[tokio::test]
async fn connection_listing_framing_fields_smuggles_nothing() {
    let up = Upstream::start().await;
    for engine in ENGINES {
        let p = Proxy::start(&format!(
            "listeners:\n{}",
            http_listener("web", up.addr, engine)
        ))
        .await;
        let smuggled = "GET /smuggled HTTP/1.1\r\nhost: a\r\n\r\n";
        let reqs = format!(
            "POST /echo HTTP/1.1\r\nhost: a\r\nconnection: content-length, host\r\n\
             content-length: {}\r\n\r\n{smuggled}\
             GET /hello HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n",
            smuggled.len()
        );
        let out = raw_exchange(p.addr("web"), reqs.as_bytes(), Duration::from_secs(5)).await;
        let heads: Vec<_> = out.match_indices("HTTP/1.1 ").map(|(i, _)| i).collect();
        assert_eq!(heads.len(), 2, "{engine}: {out}");
        let echo = &out[heads[0]..heads[1]];
        assert!(echo.starts_with("HTTP/1.1 200 OK\r\n"), "{engine}: {echo}");
        assert!(
            echo.ends_with(&format!("\r\n\r\n{smuggled}")),
            "{engine}: {echo}"
        );
        assert!(
            out[heads[1]..].ends_with("hello, hello world"),
            "{engine}: {out}"
        );
        let flows = p.flows(2).await;
        let paths: Vec<_> = flows.iter().map(|f| f.path.as_deref()).collect();
        assert_eq!(paths, [Some("/echo"), Some("/hello")], "{engine}");
    }
}

/// When the upstream cannot be reached while a request body is still arriving, the client
/// connection closes after the error: the rest of the body is never read as a request.
#[tokio::test]
async fn a_failed_request_with_a_body_left_unread_closes_the_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    for engine in ENGINES {
        let p = Proxy::start(&format!(
            "listeners:\n{}",
            http_listener("dead", dead, engine)
        ))
        .await;
        let mut s = tokio::net::TcpStream::connect(p.addr("dead"))
            .await
            .unwrap();
        s.write_all(b"POST /up HTTP/1.1\r\nhost: a\r\ncontent-length: 100\r\n\r\n0123456789")
            .await
            .unwrap();
        let mut out = Vec::new();
        let mut chunk = [0u8; 4096];
        while !out.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk))
                .await
                .unwrap_or_else(|_| panic!("{engine}: no response within 5 s"))
                .unwrap();
            assert!(n > 0, "{engine}: closed without a response");
            out.extend_from_slice(&chunk[..n]);
        }
        let text = String::from_utf8_lossy(&out).into_owned();
        assert!(text.starts_with("HTTP/1.1 503 "), "{engine}: {text}");
        // The rest of the body, shaped as a request: it must not be answered.
        let _ = s
            .write_all(b"GET /smuggled HTTP/1.1\r\nhost: a\r\n\r\n")
            .await;
        let mut rest = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest))
            .await
            .unwrap_or_else(|_| panic!("{engine}: the connection stayed open"))
            .ok();
        let all = [out, rest].concat();
        let all = String::from_utf8_lossy(&all);
        assert_eq!(all.matches("HTTP/1.1 ").count(), 1, "{engine}: {all}");
        let flows = p.flows(1).await;
        assert_eq!(flows.len(), 1, "{engine}: {flows:?}");
        assert_eq!(flows[0].path.as_deref(), Some("/up"), "{engine}");
    }
}

#[tokio::test]
async fn http2_many_concurrent_streams_on_one_connection() {
    let up = Upstream::start().await;
    let p = Proxy::start(&format!(
        "listeners:\n{}",
        http_listener("web", up.addr, "")
    ))
    .await;
    let send = h2_client(p.addr("web")).await;
    let mut tasks = Vec::new();
    for i in 0..200 {
        let mut send = send.clone();
        tasks.push(tokio::spawn(async move {
            let req = http::Request::get(format!("http://example.test/slow/{}", i % 50))
                .body(Empty::<Bytes>::new())
                .unwrap();
            let resp = send.send_request(req).await.unwrap();
            assert_eq!(resp.version(), http::Version::HTTP_2);
            resp.into_body().collect().await.unwrap().to_bytes()
        }));
    }
    for t in tasks {
        assert_eq!(&t.await.unwrap()[..], b"slow ok");
    }
    // The upstream speaks h2c, so the h2 requests went upstream as HTTP/2.
    let mut send = send.clone();
    let body = h2_get(&mut send, "/headers").await;
    assert!(body.contains("version: HTTP/2.0"), "{body}");
    assert!(body.contains("via: 2 strait"), "{body}");
    assert_eq!(p.flows(201).await.len(), 201);
}

#[tokio::test]
async fn grpc_trailers_pass_through_and_are_recorded() {
    let up = Upstream::start().await;
    let p = Proxy::start(&format!(
        "listeners:\n{}",
        http_listener("web", up.addr, "")
    ))
    .await;
    let mut send = h2_client(p.addr("web")).await;
    let req = http::Request::post("http://example.test/grpc-trailers")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let collected = send
        .send_request(req)
        .await
        .unwrap()
        .into_body()
        .collect()
        .await
        .unwrap();
    assert_eq!(collected.trailers().unwrap()["grpc-status"], "0");
    let f = p.flows(1).await;
    assert_eq!(f[0].grpc_status, Some(0));
    assert_eq!(f[0].protocol, "HTTP/2");
}

#[tokio::test]
async fn upstream_failures_map_to_503_504_and_grpc_codes() {
    let up = Upstream::start().await;
    // A port with nothing listening: bind, note, close.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let yaml = format!(
        "listeners:\n{}{}",
        http_listener("dead", dead, ""),
        http_listener("slow", up.addr, "    timeouts: { request: 300ms }\n")
    );
    let p = Proxy::start(&yaml).await;
    let (status, _, body) = h1_get(p.addr("dead"), "/", &[]).await;
    assert_eq!(status, 503);
    assert!(
        body.contains("upstream unavailable") && body.contains("refused"),
        "{body}"
    );
    let (status, _, body) = h1_get(p.addr("slow"), "/slow/3000", &[]).await;
    assert_eq!(status, 504);
    assert!(body.contains("did not answer within"), "{body}");
    let (status, h, _) = h1_get(
        p.addr("dead"),
        "/pkg.Svc/M",
        &[("content-type", "application/grpc")],
    )
    .await;
    assert_eq!(
        (status.as_u16(), &h["grpc-status"]),
        (200, &"14".parse::<http::HeaderValue>().unwrap())
    );
    let (_, h, _) = h1_get(
        p.addr("slow"),
        "/slow/3000",
        &[("content-type", "application/grpc")],
    )
    .await;
    assert_eq!(h["grpc-status"], "4");
    let flows = p.flows(4).await;
    assert_eq!(flows.len(), 4);
    assert!(
        flows
            .iter()
            .all(|f| f.verdict == Verdict::Error && f.error.is_some()),
        "{flows:?}"
    );
    // The proxy still serves.
    assert_eq!(h1_get(p.addr("slow"), "/", &[]).await.0, 200);
}

#[tokio::test]
async fn malformed_and_oversized_requests_are_refused_and_recorded() {
    let up = Upstream::start().await;
    let yaml = format!(
        "listeners:\n{}{}",
        http_listener("web", up.addr, ""),
        http_listener("small", up.addr, "    max_header_bytes: 4096\n")
    );
    let p = Proxy::start(&yaml).await;
    let out = raw_exchange(
        p.addr("web"),
        b"THIS IS NOT HTTP\r\n\r\n",
        Duration::from_secs(3),
    )
    .await;
    assert!(out.starts_with("HTTP/1.1 400"), "{out:?}");
    let big = "a".repeat(100 * 1024);
    let out = raw_exchange(
        p.addr("web"),
        format!("GET / HTTP/1.1\r\nhost: a\r\nx-big: {big}\r\n\r\n").as_bytes(),
        Duration::from_secs(3),
    )
    .await;
    assert!(out.starts_with("HTTP/1.1 431"), "{out:?}");
    let (status, _, body) = h1_get(p.addr("small"), "/", &[("x-big", &"b".repeat(5000))]).await;
    assert_eq!(status, 431);
    assert!(body.contains("exceeds the limit of 4096"), "{body}");
    // Other connections are untouched.
    assert_eq!(h1_get(p.addr("web"), "/", &[]).await.0, 200);
    let flows = p.flows(4).await;
    let statuses: Vec<_> = flows.iter().map(|f| (f.status, f.verdict)).collect();
    assert!(
        statuses.contains(&(Some(400), Verdict::Error)),
        "{statuses:?}"
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == (Some(431), Verdict::Error))
            .count(),
        2,
        "{statuses:?}"
    );
}

/// Both engines refuse the Host values a policy on the host could be fooled by (RFC 9112
/// §3.2): none on HTTP/1.1, two, userinfo, and bytes that are not a host; nothing reaches the
/// upstream. HTTP/1.0 may go without one.
#[tokio::test]
async fn host_rules_are_the_same_on_both_engines() {
    let up = Upstream::start().await;
    for engine in ENGINES {
        let p = Proxy::start(&format!(
            "listeners:\n{}",
            http_listener("web", up.addr, engine)
        ))
        .await;
        let wait = Duration::from_secs(3);
        for req in [
            "GET / HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nhost: a\r\nhost: b\r\n\r\n",
            "GET / HTTP/1.1\r\nhost: user@a\r\n\r\n",
            "GET http://user@a/ HTTP/1.1\r\nhost: a\r\n\r\n",
            "GET / HTTP/1.1\r\nhost: a b\r\n\r\n",
            "GET / HTTP/1.1\r\nhost: a/b\r\n\r\n",
        ] {
            let out = raw_exchange(p.addr("web"), req.as_bytes(), wait).await;
            assert!(out.starts_with("HTTP/1.1 400 "), "{engine}{req:?}: {out}");
        }
        let out = raw_exchange(p.addr("web"), b"GET / HTTP/1.0\r\n\r\n", wait).await;
        assert!(
            out.starts_with("HTTP/1.1 200 ") || out.starts_with("HTTP/1.0 200 "),
            "{engine}: {out}"
        );
    }
    // One connection per engine: the HTTP/1.0 request's.
    assert_eq!(up.connections.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[tokio::test]
async fn slowloris_and_idle_connections_are_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let up = Upstream::start().await;
    let p = Proxy::start(&format!(
        "listeners:\n{}",
        http_listener(
            "web",
            up.addr,
            "    timeouts: { header_read: 500ms, idle: 1500ms }\n"
        )
    ))
    .await;
    // A head that never completes.
    let mut s = tokio::net::TcpStream::connect(p.addr("web")).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nhost: a\r\nx-slow: ")
        .await
        .unwrap();
    let t = Instant::now();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
        .await
        .unwrap()
        .ok();
    assert!(
        t.elapsed() < Duration::from_millis(1000),
        "slowloris connection held {:?}",
        t.elapsed()
    );
    let f = p.flows(1).await;
    assert!(
        f[0].error
            .as_deref()
            .unwrap_or("")
            .starts_with("request head not completed within"),
        "{f:?}"
    );
    // A keep-alive connection left idle after one request.
    let mut s = tokio::net::TcpStream::connect(p.addr("web")).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nhost: a\r\n\r\n")
        .await
        .unwrap();
    let t = Instant::now();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 200"));
    // Idle keep-alive waits are governed by `idle`, not by `header_read`.
    assert!(
        t.elapsed() >= Duration::from_millis(1400),
        "closed too early: {:?}",
        t.elapsed()
    );
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "idle connection held {:?}",
        t.elapsed()
    );
}

/// `timeouts.stream_idle`: a response body the upstream stops sending, and a client that
/// stops reading a large one, end the connection with a flow record that says why; a body
/// that trickles in with gaps shorter than the limit is not cut, however long it takes.
#[tokio::test]
async fn stalled_streams_are_cut_after_stream_idle() {
    let up = stalling_upstream().await;
    for engine in ENGINES {
        stalled_streams(engine, up).await;
    }
}

async fn stalled_streams(engine: &str, up: std::net::SocketAddr) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let p = Proxy::start(&format!(
        "listeners:\n{}",
        http_listener(
            "web",
            up,
            &format!("{engine}    timeouts: {{ stream_idle: 1s }}\n")
        )
    ))
    .await;
    let error = |f: &strait::flows::FlowRecord| f.error.clone().unwrap_or_default();

    // The upstream sends the head and 10 of 1000 bytes, then nothing.
    let mut s = tokio::net::TcpStream::connect(p.addr("web")).await.unwrap();
    s.write_all(b"GET /stall HTTP/1.1\r\nhost: a\r\n\r\n")
        .await
        .unwrap();
    let t = Instant::now();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf))
        .await
        .unwrap_or_else(|_| panic!("{engine}: a stalled stream held past 10 s"))
        .ok();
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 200"), "{engine}: {text}");
    assert!(text.ends_with("0123456789"), "{engine}: {text}");
    assert!(
        t.elapsed() >= Duration::from_millis(900) && t.elapsed() < Duration::from_secs(4),
        "{engine}: cut after {:?}",
        t.elapsed()
    );
    let f = p.flows(1).await;
    assert_eq!(f[0].verdict, Verdict::Error, "{engine}: {f:?}");
    assert!(
        error(&f[0]).contains("for 1s with a request in flight (timeouts.stream_idle)"),
        "{engine}: {f:?}"
    );

    // 2.5 s of body in five pieces 500 ms apart: slow, never stalled for 1 s.
    let t = Instant::now();
    let (status, _, body) = h1_get(p.addr("web"), "/drip", &[]).await;
    assert_eq!(status, 200, "{engine}");
    assert_eq!(body, "abcde", "{engine}");
    assert!(
        t.elapsed() >= Duration::from_secs(2),
        "{engine}: {:?}",
        t.elapsed()
    );
    let f = p.flows(2).await;
    assert_eq!(f[1].verdict, Verdict::Forwarded, "{engine}: {f:?}");

    // A client that asks for 64 MiB and reads none of it.
    let mut s = tokio::net::TcpStream::connect(p.addr("web")).await.unwrap();
    s.write_all(b"GET /big HTTP/1.1\r\nhost: a\r\n\r\n")
        .await
        .unwrap();
    let t = Instant::now();
    let mut f = p.flows(3).await;
    while f.len() < 3 && t.elapsed() < Duration::from_secs(15) {
        f = p.flows(3).await;
    }
    assert!(
        f.len() >= 3,
        "{engine}: a client that stopped reading held past 15 s"
    );
    assert_eq!(f[2].verdict, Verdict::Error, "{engine}: {f:?}");
    assert!(
        error(&f[2]).contains("(timeouts.stream_idle)"),
        "{engine}: {f:?}"
    );
    assert!(
        f[2].bytes_sent < BIG as u64,
        "{engine}: {} bytes sent",
        f[2].bytes_sent
    );
    // What the proxy had written is still there to read, and then the connection ends.
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut rest))
        .await
        .unwrap_or_else(|_| panic!("{engine}: the cut connection stayed open"))
        .ok();
    assert!(rest.len() < BIG, "{engine}: {} bytes", rest.len());
}

/// The response body of `/big` in [`stalling_upstream`].
const BIG: usize = 64 << 20;

/// An HTTP/1.1 upstream for [`stalled_streams`]: `/stall` sends a head and 10 of 1000 bytes
/// and then holds the connection; `/drip` sends 5 bytes 500 ms apart; `/big` sends [`BIG`]
/// bytes as fast as they are taken.
async fn stalling_upstream() -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf).into_owned();
                let path = head.split(' ').nth(1).unwrap_or("").to_owned();
                match path.as_str() {
                    "/stall" => {
                        let _ = s
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n0123456789")
                            .await;
                        tokio::time::sleep(Duration::from_secs(30)).await;
                    }
                    "/drip" => {
                        let _ = s
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n")
                            .await;
                        for b in b"abcde" {
                            tokio::time::sleep(Duration::from_millis(500)).await;
                            if s.write_all(&[*b]).await.is_err() {
                                return;
                            }
                        }
                        tokio::time::sleep(Duration::from_secs(30)).await;
                    }
                    _ => {
                        let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {BIG}\r\n\r\n");
                        if s.write_all(head.as_bytes()).await.is_err() {
                            return;
                        }
                        let piece = vec![b'x'; 1 << 20];
                        for _ in 0..BIG >> 20 {
                            if s.write_all(&piece).await.is_err() {
                                return;
                            }
                        }
                        tokio::time::sleep(Duration::from_secs(30)).await;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn streams_large_bodies_both_ways() {
    let up = Upstream::start().await;
    let p = Proxy::start(&format!(
        "listeners:\n{}",
        http_listener("web", up.addr, "")
    ))
    .await;
    let mut send = common::h1_client(p.addr("web")).await;
    let size: u64 = 20 * 1024 * 1024;
    let chunks = futures_util::stream::iter((0..size / 65536).map(|_| {
        Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(Bytes::from(vec![1u8; 65536])))
    }));
    let req = http::Request::post("/sink")
        .header("host", "a")
        .body(http_body_util::StreamBody::new(chunks))
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
    assert_eq!(String::from_utf8_lossy(&body), size.to_string());
    let (status, _, body) = h1_get(p.addr("web"), &format!("/stream/{size}"), &[]).await;
    assert_eq!((status.as_u16(), body.len() as u64), (200, size));
    let flows = p.flows(2).await;
    assert_eq!(flows[0].bytes_received, size);
    assert_eq!(flows[1].bytes_sent, size);
}

#[tokio::test]
async fn tls_garbage_does_not_disturb_other_connections() {
    let up = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path());
    let tls = format!(
        "    tls: {{ cert: {}, key: {} }}\n    timeouts: {{ header_read: 1s }}\n",
        cert.display(),
        key.display()
    );
    let p = Proxy::start(&format!(
        "admin: {{ address: 127.0.0.1:0 }}\nlisteners:\n{}{}",
        http_listener("tls", up.addr, &tls),
        http_listener("plain", up.addr, "")
    ))
    .await;
    let t = Instant::now();
    let out = raw_exchange(
        p.addr("tls"),
        b"GET / HTTP/1.1\r\nhost: a\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(!out.contains("200"), "{out}");
    assert!(t.elapsed() < Duration::from_secs(4));
    // A half-open handshake is cut at the deadline.
    let t = Instant::now();
    let _ = raw_exchange(p.addr("tls"), b"\x16\x03\x01", Duration::from_secs(5)).await;
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert_eq!(h1_get(p.addr("plain"), "/", &[]).await.0, 200);
    let admin = p.admin.unwrap();
    let (_, _, metrics) = h1_get(admin, "/metrics", &[]).await;
    assert!(
        metrics
            .contains("strait_downstream_errors_total{listener=\"tls\",kind=\"tls_handshake\"} 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn tcp_relay_forwards_bytes_and_records_the_connection() {
    let up = Upstream::start().await;
    let p = Proxy::start(&format!(
        "listeners:\n  - name: raw\n    address: 127.0.0.1:0\n    protocol: tcp\n    upstream: {}\n",
        up.addr
    ))
    .await;
    let out = raw_exchange(
        p.addr("raw"),
        b"GET / HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n",
        Duration::from_secs(3),
    )
    .await;
    assert!(
        out.starts_with("HTTP/1.1 200") && out.ends_with("ok"),
        "{out}"
    );
    let f = p.flows(1).await;
    assert_eq!(
        (f[0].protocol.as_str(), f[0].verdict),
        ("TCP", Verdict::Forwarded)
    );
    assert_eq!(f[0].bytes_sent as usize, out.len());
}

#[tokio::test]
async fn graceful_shutdown_drains_in_flight_requests() {
    let up = Upstream::start().await;
    let p = Proxy::start(&format!(
        "admin: {{ address: 127.0.0.1:0 }}\nlisteners:\n{}",
        http_listener("web", up.addr, "")
    ))
    .await;
    let addr = p.addr("web");
    assert_eq!(h1_get(p.admin.unwrap(), "/ready", &[]).await.0, 200);
    let inflight = tokio::spawn(async move { h1_get(addr, "/slow/800", &[]).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    p.stop.cancel();
    let (status, _, body) = inflight.await.unwrap();
    assert_eq!((status.as_u16(), body.as_str()), (200, "slow ok"));
    tokio::time::timeout(Duration::from_secs(5), p.done)
        .await
        .unwrap()
        .unwrap();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still accepting after shutdown"
    );
}

#[tokio::test]
async fn upstream_protocol_errors_are_502() {
    use tokio::io::AsyncWriteExt;
    // An "upstream" that answers garbage and closes.
    let bad = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bad_addr = bad.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = bad.accept().await {
            let _ = s.write_all(b"SPEAKING NONSENSE\r\n\r\n").await;
        }
    });
    let p = Proxy::start(&format!(
        "listeners:\n{}",
        http_listener("web", bad_addr, "")
    ))
    .await;
    let (status, _, body) = h1_get(p.addr("web"), "/", &[]).await;
    assert_eq!(status, 502, "{body}");
    assert!(
        body.starts_with("upstream failed before a response"),
        "{body}"
    );
    let f = p.flows(1).await;
    assert_eq!((f[0].status, f[0].verdict), (Some(502), Verdict::Error));
}

#[tokio::test]
async fn upstream_tls_origination_with_sni_ca_and_alpn() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path());
    let up = Upstream::start_tls(&cert, &key).await;
    let upstream_tls = |extra: &str| {
        format!(
            "    upstream_tls: {{ sni: localhost, ca: {} }}\n{extra}",
            cert.display()
        )
    };
    let p = Proxy::start(&format!(
        "listeners:\n{}{}",
        http_listener("tls-up", up.addr, &upstream_tls("")),
        http_listener(
            "tls-up-h2",
            up.addr,
            &upstream_tls("    upstream_protocol: http2\n")
        )
    ))
    .await;
    let (status, _, body) = h1_get(p.addr("tls-up"), "/headers", &[]).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("version: HTTP/1.1"), "{body}");
    // HTTP/2 client, auto: ALPN picks h2 with this upstream.
    let mut send = h2_client(p.addr("tls-up")).await;
    let body = h2_get(&mut send, "/headers").await;
    assert!(body.contains("version: HTTP/2.0"), "{body}");
    // HTTP/1.1 client, forced http2 upstream.
    let (_, _, body) = h1_get(p.addr("tls-up-h2"), "/headers", &[]).await;
    assert!(body.contains("version: HTTP/2.0"), "{body}");
    // A CA that does not sign the upstream's certificate: 503 with the TLS reason.
    let other = tempfile::tempdir().unwrap();
    let (other_ca, _) = self_signed(other.path());
    let p2 = Proxy::start(&format!(
        "listeners:\n{}",
        http_listener(
            "bad-ca",
            up.addr,
            &format!(
                "    upstream_tls: {{ sni: localhost, ca: {} }}\n",
                other_ca.display()
            )
        )
    ))
    .await;
    let (status, _, body) = h1_get(p2.addr("bad-ca"), "/", &[]).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("TLS handshake with"), "{body}");
}

#[tokio::test]
async fn an_upstream_connection_closed_while_idle_is_replaced_without_failing_a_request() {
    use std::sync::atomic::Ordering;
    // Every request gets `ok`; the connection closes 150 ms later without announcing it (as
    // a server's keep-alive timeout does).
    let (addr, conns, heads) = scripted_upstream(|_| {
        (
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".to_vec(),
            Some(Duration::from_millis(150)),
        )
    })
    .await;
    let p = Proxy::start(&format!("listeners:\n{}", http_listener("web", addr, ""))).await;

    // On one client connection: the upstream closes the connection it is bound to between two
    // requests; the second request gets a new one.
    let mut client = tokio::net::TcpStream::connect(p.addr("web")).await.unwrap();
    for path in ["/a", "/b"] {
        let req = format!("GET {path} HTTP/1.1\r\nhost: example.test\r\n\r\n");
        let out = keepalive_exchange(&mut client, req.as_bytes()).await;
        assert!(out.starts_with("HTTP/1.1 200 OK"), "{out}");
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    assert_eq!(conns.load(Ordering::SeqCst), 2);
    drop(client);

    // Across client connections: an idle upstream connection handed back to the pool, then
    // closed by the upstream while no one polled it, is not reused.
    assert_eq!(h1_get(p.addr("web"), "/c", &[]).await.0, 200);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(h1_get(p.addr("web"), "/d", &[]).await.0, 200);
    assert_eq!(conns.load(Ordering::SeqCst), 4);
    // Requests go upstream in origin form.
    assert_eq!(
        *heads
            .lock()
            .unwrap()
            .iter()
            .map(|h| h.lines().next().unwrap())
            .collect::<Vec<_>>(),
        [
            "GET /a HTTP/1.1",
            "GET /b HTTP/1.1",
            "GET /c HTTP/1.1",
            "GET /d HTTP/1.1"
        ]
    );
    let flows = p.flows(4).await;
    assert!(flows.iter().all(|f| f.status == Some(200)), "{flows:?}");
}

/// A request that a reused upstream connection took and then closed on without answering is
/// sent again on a new connection only when it is idempotent (RFC 9110 §9.2.2): a `POST` may
/// have been acted on, so it gets a 502 instead of a second delivery.
#[tokio::test]
async fn only_idempotent_requests_are_sent_again_after_a_reused_connection_closed() {
    fn respond(path: &str) -> (Vec<u8>, Option<Duration>) {
        match path {
            // Taken, then the connection closes without a byte of response.
            "/drop" => (Vec::new(), Some(Duration::ZERO)),
            _ => (
                b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".to_vec(),
                None,
            ),
        }
    }
    let (addr, _, heads) = scripted_upstream(respond).await;
    let p = Proxy::start(&format!(
        "listeners:\n{}",
        http_listener("web", addr, ENGINES[0])
    ))
    .await;
    let mut client = tokio::net::TcpStream::connect(p.addr("web")).await.unwrap();
    let seen = |method: &str| {
        heads
            .lock()
            .unwrap()
            .iter()
            .filter(|h| h.starts_with(&format!("{method} /drop ")))
            .count()
    };
    for (method, sent) in [("POST", 1), ("GET", 2)] {
        // A first request binds an upstream connection; the next one reuses it.
        let out = keepalive_exchange(&mut client, b"GET /a HTTP/1.1\r\nhost: a\r\n\r\n").await;
        assert!(out.starts_with("HTTP/1.1 200 OK"), "{out}");
        let req = format!("{method} /drop HTTP/1.1\r\nhost: a\r\ncontent-length: 0\r\n\r\n");
        let out = keepalive_exchange(&mut client, req.as_bytes()).await;
        assert!(out.starts_with("HTTP/1.1 502 "), "{method}: {out}");
        assert_eq!(seen(method), sent, "{method}");
        if out.contains("connection: close") {
            client = tokio::net::TcpStream::connect(p.addr("web")).await.unwrap();
        }
    }
}

/// Interim responses reach the client as they come, before the final one (RFC 9110 §15.2:
/// a proxy forwards 1xx), on the native engine: 103 Early Hints while the upstream is still
/// working, then the final 200 on the same connection, which stays usable.
#[tokio::test]
async fn interim_responses_are_forwarded_as_they_come() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    // For each request: a 103 (with a content-length it should not have), 600 ms of "work",
    // then the final response.
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            buf.clear();
            s.write_all(
                b"HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload\r\n\
                  content-length: 0\r\n\r\n",
            )
            .await
            .unwrap();
            tokio::time::sleep(Duration::from_millis(600)).await;
            s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .await
                .unwrap();
        }
    });
    let p = Proxy::start(&format!(
        "listeners:\n{}",
        http_listener("web", addr, ENGINES[0])
    ))
    .await;
    let mut client = tokio::net::TcpStream::connect(p.addr("web")).await.unwrap();
    for path in ["/a", "/b"] {
        let req = format!("GET {path} HTTP/1.1\r\nhost: a\r\n\r\n");
        client.write_all(req.as_bytes()).await.unwrap();
        let mut got = Vec::new();
        let mut chunk = [0u8; 4096];
        let started = Instant::now();
        let mut hints_at = None;
        while !got.ends_with(b"\r\n\r\nok") {
            let n = tokio::time::timeout(Duration::from_secs(5), client.read(&mut chunk))
                .await
                .expect("no response within 5 s")
                .unwrap();
            assert!(n > 0, "the proxy closed the connection");
            got.extend_from_slice(&chunk[..n]);
            if hints_at.is_none() && got.windows(4).any(|w| w == b"\r\n\r\n") {
                hints_at = Some(started.elapsed());
            }
        }
        let text = String::from_utf8(got).unwrap();
        let (hints, last) = text.split_once("\r\n\r\n").unwrap();
        assert_eq!(
            hints, "HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload\r\nvia: 1.1 strait",
            "{text}"
        );
        assert!(last.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        // The 103 came while the upstream was still working, not with the final response.
        let hints_at = hints_at.unwrap();
        assert!(
            hints_at < Duration::from_millis(400),
            "103 after {hints_at:?}"
        );
    }
    let flows = p.flows(2).await;
    assert!(flows.iter().all(|f| f.status == Some(200)), "{flows:?}");
}

/// Writes `req` on `s` and reads one response with a content-length body.
async fn keepalive_exchange(s: &mut tokio::net::TcpStream, req: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    s.write_all(req).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk))
            .await
            .expect("no response within 5 s")
            .unwrap();
        assert!(n > 0, "the proxy closed the client connection");
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let len: usize = text[..end]
                .to_ascii_lowercase()
                .lines()
                .find_map(|l| {
                    l.strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return text;
            }
        }
    }
}

/// A scripted HTTP/1.1 upstream: `respond` gives the bytes to answer a request path with,
/// and whether to close the connection that long after (else it takes the next request).
/// Returns its address, the connections it accepted and the request heads it read.
async fn scripted_upstream(
    respond: fn(&str) -> (Vec<u8>, Option<Duration>),
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) {
    use std::sync::atomic::Ordering;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let conns = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let heads = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (c, hs) = (conns.clone(), heads.clone());
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            c.fetch_add(1, Ordering::SeqCst);
            let hs = hs.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                    buf.drain(..end);
                    hs.lock().unwrap().push(head.clone());
                    let path = head.split(' ').nth(1).unwrap_or("").to_owned();
                    let (resp, close) = respond(&path);
                    // Large bodies arrive in pieces, as from a real upstream.
                    for piece in resp.chunks(64 * 1024) {
                        if s.write_all(piece).await.is_err() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                    if let Some(after) = close {
                        tokio::time::sleep(after).await;
                        return;
                    }
                }
            });
        }
    });
    (addr, conns, heads)
}

/// The scripted upstream of the HTTP/2 → native HTTP/1.1 test: a response per path.
fn framed_responses(path: &str) -> (Vec<u8>, Option<Duration>) {
    let resp: Vec<u8> = match path {
        "/len" => b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello".to_vec(),
        "/head" => b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n".to_vec(),
        "/none" => b"HTTP/1.1 204 No Content\r\n\r\n".to_vec(),
        "/big" => {
            let mut r = b"HTTP/1.1 200 OK\r\ncontent-length: 300000\r\n\r\n".to_vec();
            r.extend(std::iter::repeat_n(b'x', 300_000));
            r
        }
        "/chunked" => b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\
            trailer: x-t\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\nx-t: done\r\n\r\n"
            .to_vec(),
        "/close" => b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil close".to_vec(),
        "/badchunk" => b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n".to_vec(),
        _ => b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n".to_vec(),
    };
    let close = matches!(path, "/close" | "/badchunk").then_some(Duration::ZERO);
    (resp, close)
}

#[tokio::test]
async fn http2_clients_reach_an_http1_upstream_on_reused_native_connections() {
    use std::sync::atomic::Ordering;
    let (addr, conns, heads) = scripted_upstream(framed_responses).await;
    let p = Proxy::start(&format!(
        "listeners:\n{}",
        http_listener("web", addr, "    upstream_protocol: http1\n")
    ))
    .await;
    let mut send = h2_client(p.addr("web")).await;
    let get = |method: &str, path: &str| {
        http::Request::builder()
            .method(method)
            .uri(format!("http://example.test{path}"))
            .body(Empty::<Bytes>::new())
            .unwrap()
    };
    // Framed by length (whole with the head, then in pieces), by chunks with trailers, empty.
    for _ in 0..2 {
        let resp = send.send_request(get("GET", "/len")).await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.version(), http::Version::HTTP_2);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"hello");
        let resp = send.send_request(get("GET", "/big")).await.unwrap();
        assert_eq!(resp.headers()["content-length"], "300000");
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body.len(), 300_000);
        assert!(body.iter().all(|&b| b == b'x'));
        let resp = send.send_request(get("GET", "/chunked")).await.unwrap();
        assert!(resp.headers().get("transfer-encoding").is_none());
        let body = resp.into_body().collect().await.unwrap();
        assert_eq!(body.trailers().unwrap()["x-t"], "done");
        assert_eq!(&body.to_bytes()[..], b"hello world");
        let resp = send.send_request(get("HEAD", "/head")).await.unwrap();
        assert_eq!(resp.headers()["content-length"], "5");
        assert!(resp
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .is_empty());
        let resp = send.send_request(get("GET", "/none")).await.unwrap();
        assert_eq!(resp.status(), 204);
    }
    // One after the other, all on one upstream connection.
    assert_eq!(conns.load(Ordering::SeqCst), 1);

    // A body until the upstream closes: that connection is not reused.
    let body = h2_get(&mut send, "/close").await;
    assert_eq!(body, "until close");
    assert_eq!(h2_get(&mut send, "/len").await, "hello");
    assert_eq!(conns.load(Ordering::SeqCst), 2);

    // A broken chunked body resets the stream, not the client connection.
    // (Reset before or after the head, depending on when hyper first polls the body.)
    let failed = match send.send_request(get("GET", "/badchunk")).await {
        Ok(resp) => resp.into_body().collect().await.is_err(),
        Err(_) => true,
    };
    assert!(failed);
    assert_eq!(h2_get(&mut send, "/len").await, "hello");

    // Cookies sent as separate HTTP/2 fields go upstream as one line (RFC 9113 §8.2.3).
    let mut req = get("GET", "/len");
    for c in ["a=1", "b=2; c=3"] {
        req.headers_mut()
            .append("cookie", http::HeaderValue::from_static(c));
    }
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.into_body().collect().await.unwrap();

    // Requests go upstream in origin form with host and forwarding fields.
    let heads = heads.lock().unwrap().clone();
    let last = heads.last().unwrap().to_ascii_lowercase();
    assert_eq!(last.matches("cookie:").count(), 1, "{last}");
    assert!(last.contains("cookie: a=1; b=2; c=3\r\n"), "{last}");
    assert!(heads[0].starts_with("GET /len HTTP/1.1\r\n"), "{heads:?}");
    let first = heads[0].to_ascii_lowercase();
    assert!(first.contains("host: example.test\r\n"), "{first}");
    assert!(first.contains("x-forwarded-for: 127.0.0.1\r\n"), "{first}");
    assert!(first.contains("via: 2 strait\r\n"), "{first}");
    assert!(heads[3].starts_with("HEAD /head HTTP/1.1\r\n"), "{heads:?}");

    let flows = p.flows(15).await;
    let bad = flows.iter().filter(|f| f.verdict == Verdict::Error).count();
    assert_eq!(bad, 1, "{flows:?}");
}
