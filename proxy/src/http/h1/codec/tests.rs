use super::*;

const LIMIT: usize = 8192;

fn req(raw: &[u8]) -> Result<Option<RequestHead>, HeadError> {
    parse_request(raw, LIMIT)
}

fn complete(raw: &[u8]) -> RequestHead {
    req(raw).expect("valid").expect("complete")
}

fn forwarded(raw: &[u8], tls: bool) -> String {
    let head = complete(raw);
    let mut out = Vec::new();
    write_request(
        &mut out,
        raw,
        &head,
        Forwarded {
            client: b"10.0.0.9",
            tls,
            authority: b"up:9000",
        },
    );
    String::from_utf8(out).expect("ascii")
}

#[test]
fn parses_a_request_into_offsets() {
    let raw = b"GET /a?b=1 HTTP/1.1\r\nHost: svc\r\nX-User: alice\r\n\r\nrest";
    let h = complete(raw);
    assert_eq!(&raw[h.method.clone()], b"GET");
    assert_eq!(&raw[h.target.clone()], b"/a?b=1");
    assert_eq!(h.meta.len, raw.len() - 4);
    assert_eq!(h.meta.minor, 1);
    assert_eq!(h.framing, Framing::Empty);
    assert!(!h.meta.close);
    let fields: Vec<(&[u8], &[u8])> = h
        .meta
        .fields
        .iter()
        .map(|f| (&raw[f.name.clone()], &raw[f.value.clone()]))
        .collect();
    assert_eq!(fields, [(&b"Host"[..], &b"svc"[..]), (b"X-User", b"alice")]);
    assert_eq!(h.host, Some(0));
}

#[test]
fn incomplete_heads_wait_until_the_limit() {
    assert_eq!(req(b"GET / HTTP/1.1\r\nHost: a\r\n"), Ok(None));
    let mut long = b"GET / HTTP/1.1\r\nx: ".to_vec();
    long.resize(LIMIT + 1, b'a');
    assert_eq!(req(&long), Err(HeadError::TooLarge { limit: LIMIT }));
    // Complete but over the limit.
    let mut big = b"GET / HTTP/1.1\r\nHost: a\r\nx: ".to_vec();
    big.resize(LIMIT + 10, b'a');
    big.extend_from_slice(b"\r\n\r\n");
    assert_eq!(
        req(&big).map(|_| ()),
        Err(HeadError::TooLarge { limit: LIMIT })
    );
    assert_eq!(HeadError::TooLarge { limit: 1 }.status(), 431);
}

#[test]
fn too_many_fields_is_431() {
    let mut raw = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
    for i in 0..MAX_FIELDS {
        raw.extend_from_slice(format!("x-{i}: v\r\n").as_bytes());
    }
    raw.extend_from_slice(b"\r\n");
    let e = req(&raw).unwrap_err();
    assert_eq!((e.clone(), e.status()), (HeadError::TooManyFields, 431));
}

#[test]
fn body_framing_of_requests() {
    let f = |raw: &[u8]| req(raw).map(|h| h.map(|h| h.framing));
    assert_eq!(
        f(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\n"),
        Ok(Some(Framing::Length(12)))
    );
    assert_eq!(
        f(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"),
        Ok(Some(Framing::Empty))
    );
    // Repeats that agree are one length (RFC 9110 §8.6).
    assert_eq!(
        f(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\ncontent-length: 5\r\n\r\n"),
        Ok(Some(Framing::Length(5)))
    );
    assert_eq!(
        f(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n"),
        Ok(Some(Framing::Chunked))
    );
}

#[test]
fn refuses_what_could_smuggle_a_request() {
    let e = |raw: &[u8]| req(raw).map(|_| ()).unwrap_err();
    for bad in [
        &b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"[..],
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n",
    ] {
        assert_eq!(
            e(bad),
            HeadError::ContentLength,
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    assert_eq!(
        e(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"),
        HeadError::LengthAndEncoding
    );
    assert_eq!(
        e(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
        HeadError::EncodingInHttp10
    );
    // A coding the proxy does not implement: 501.
    for bad in [
        &b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"[..],
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \r\n\r\n",
    ] {
        let err = e(bad);
        assert_eq!((err.clone(), err.status()), (HeadError::Encoding, 501));
    }
    // Anything after `chunked` (a second `chunked` too): the end is unknowable, 400
    // (RFC 9112 §6.3).
    for bad in [
        &b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n"[..],
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
    ] {
        let err = e(bad);
        assert_eq!((err.clone(), err.status()), (HeadError::ChunkedNotLast, 400));
    }
    // httparse's own refusals: space before the colon, obs-fold, bare CR.
    for bad in [
        &b"GET / HTTP/1.1\r\nHost : a\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: a\r\nx: 1\r\n  folded\r\n\r\n",
        b"GET / HTTP/1.1\rHost: a\r\n\r\n",
        b"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
    ] {
        let err = e(bad);
        assert!(matches!(err, HeadError::Malformed(_)), "{err:?}");
        assert_eq!(err.status(), 400);
    }
}

#[test]
fn host_rules() {
    assert_eq!(
        req(b"GET / HTTP/1.1\r\n\r\n").map(|_| ()),
        Err(HeadError::Host)
    );
    assert_eq!(
        req(b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n").map(|_| ()),
        Err(HeadError::Host)
    );
    // Host and port only (RFC 9112 §3.2).
    for bad in [
        &b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: user@a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a?b\r\n\r\n",
    ] {
        let err = req(bad).map(|_| ()).unwrap_err();
        assert_eq!((err.clone(), err.status()), (HeadError::HostValue, 400));
    }
    for good in [
        &b"GET / HTTP/1.1\r\nHost: svc.ns:8080\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: [fd00::1]:80\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: \r\n\r\n",
    ] {
        assert!(req(good).is_ok_and(|h| h.is_some()));
    }
    // HTTP/1.0 needs none; it closes unless it asks for keep-alive.
    let h = complete(b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!((h.host, h.meta.close, h.meta.minor), (None, true, 0));
    let h = complete(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
    assert!(!h.meta.close);
}

#[test]
fn connection_options() {
    let h = complete(
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close, X-Secret\r\nX-Secret: 1\r\n\
          Expect: 100-continue\r\nTE: trailers, deflate\r\n\r\n",
    );
    assert!(h.meta.close && h.expect_continue && h.meta.te_trailers && !h.meta.upgrade);
    assert_eq!(h.meta.listed.len(), 1);
    let h =
        complete(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
    assert!(h.meta.upgrade);
    // `Connection: upgrade` without `Upgrade` asks for nothing.
    let h = complete(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n");
    assert!(!h.meta.upgrade);
    // `Expect` is a list (RFC 9110 §10.1.1).
    let h = complete(b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: x-other, 100-Continue\r\n\r\n");
    assert!(h.expect_continue);
}

/// A `Connection` listing cannot take away the framing or the routing of what is sent on:
/// a request that lists `content-length` must not reach the upstream without one (its body
/// would be read there as the next request, one the proxy never saw).
#[test]
fn connection_cannot_remove_framing_or_host() {
    let raw = b"POST /a HTTP/1.1\r\nHost: svc\r\nConnection: content-length, host, x-hop\r\n\
                Content-Length: 30\r\nx-hop: 1\r\n\r\n";
    assert_eq!(
        forwarded(raw, false),
        "POST /a HTTP/1.1\r\nHost: svc\r\ncontent-length: 30\r\n\
         x-forwarded-for: 10.0.0.9\r\nx-forwarded-proto: http\r\nvia: 1.1 strait\r\n\r\n"
    );
    // Repeats that agree go on as one field with the number (RFC 9110 §8.6).
    let raw =
        b"POST /a HTTP/1.1\r\nHost: svc\r\nContent-Length: 5, 5\r\ncontent-length: 005\r\n\r\n";
    assert_eq!(
        forwarded(raw, false),
        "POST /a HTTP/1.1\r\nHost: svc\r\ncontent-length: 5\r\n\
         x-forwarded-for: 10.0.0.9\r\nx-forwarded-proto: http\r\nvia: 1.1 strait\r\n\r\n"
    );
    // The same for a response: its length stays, whatever `Connection` lists.
    let raw = b"HTTP/1.1 200 OK\r\nConnection: content-length\r\nContent-Length: 3\r\n\r\nabc";
    let h = resp(raw, b"GET").unwrap().unwrap();
    let mut out = Vec::new();
    write_response(&mut out, raw, &h, false);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "HTTP/1.1 200 OK\r\ncontent-length: 3\r\nvia: 1.1 strait\r\n\r\n"
    );
    // A response without a body is not sent on as chunked (RFC 9112 §6.1).
    let raw = b"HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n";
    let h = resp(raw, b"GET").unwrap().unwrap();
    let mut out = Vec::new();
    write_response(&mut out, raw, &h, false);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "HTTP/1.1 204 No Content\r\nvia: 1.1 strait\r\n\r\n"
    );
}

#[test]
fn writes_the_request_sent_upstream() {
    let raw = b"POST /p HTTP/1.1\r\nHost: svc\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\n\
                Keep-Alive: timeout=5\r\nProxy-Connection: x\r\nTE: trailers\r\n\
                Transfer-Encoding: chunked\r\nX-Forwarded-For: 1.1.1.1\r\nx-forwarded-for: 2.2.2.2\r\n\
                X-Forwarded-Proto: https\r\nVia: 1.1 edge\r\nX-User: alice\r\n\r\n";
    assert_eq!(
        forwarded(raw, false),
        "POST /p HTTP/1.1\r\nHost: svc\r\nVia: 1.1 edge\r\nX-User: alice\r\n\
         transfer-encoding: chunked\r\nte: trailers\r\n\
         x-forwarded-for: 1.1.1.1, 2.2.2.2, 10.0.0.9\r\nx-forwarded-proto: http\r\n\
         via: 1.1 strait\r\n\r\n"
    );
    assert_eq!(
        forwarded(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true),
        "GET / HTTP/1.1\r\nhost: up:9000\r\nx-forwarded-for: 10.0.0.9\r\n\
         x-forwarded-proto: https\r\nvia: 1.0 strait\r\n\r\n"
    );
}

fn resp(raw: &[u8], method: &[u8]) -> Result<Option<ResponseHead>, HeadError> {
    parse_response(raw, LIMIT, method)
}

#[test]
fn body_framing_of_responses() {
    let f = |raw: &[u8], m: &[u8]| resp(raw, m).map(|h| h.map(|h| h.framing));
    assert_eq!(
        f(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", b"GET"),
        Ok(Some(Framing::Length(3)))
    );
    assert_eq!(
        f(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", b"HEAD"),
        Ok(Some(Framing::Empty))
    );
    for s in [&b"204 No Content"[..], b"304 Not Modified", b"100 Continue"] {
        let raw = [
            b"HTTP/1.1 ",
            s.trim_ascii(),
            b"\r\nContent-Length: 3\r\n\r\n",
        ]
        .concat();
        assert_eq!(f(&raw, b"GET"), Ok(Some(Framing::Empty)));
    }
    assert_eq!(
        f(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET"
        ),
        Ok(Some(Framing::Chunked))
    );
    assert_eq!(
        f(b"HTTP/1.1 200 OK\r\n\r\n", b"GET"),
        Ok(Some(Framing::Close))
    );
    assert_eq!(f(b"HTTP/1.1 200 OK\r\n", b"GET"), Ok(None));
    assert_eq!(
        f(
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET"
        ),
        Err(HeadError::LengthAndEncoding)
    );
}

#[test]
fn writes_the_response_sent_to_the_client() {
    let raw = b"HTTP/1.1 404 Not Found\r\nServer: up\r\nConnection: keep-alive\r\n\
                Keep-Alive: timeout=4\r\nTransfer-Encoding: chunked\r\n\r\n";
    let h = resp(raw, b"GET").unwrap().unwrap();
    let mut out = Vec::new();
    write_response(&mut out, raw, &h, true);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "HTTP/1.1 404 Not Found\r\nServer: up\r\ntransfer-encoding: chunked\r\n\
         connection: close\r\nvia: 1.1 strait\r\n\r\n"
    );
    // No reason phrase.
    let raw = b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n";
    let h = resp(raw, b"GET").unwrap().unwrap();
    let mut out = Vec::new();
    write_response(&mut out, raw, &h, false);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "HTTP/1.1 200 \r\ncontent-length: 0\r\nvia: 1.1 strait\r\n\r\n"
    );
    // A 1xx or 204 goes without the content-length its sender should not have sent; a 304
    // and the response to a HEAD keep theirs (the length of the body they stand for).
    for (raw, method, kept) in [
        (
            &b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\nContent-Length: 0\r\n\r\n"[..],
            &b"GET"[..],
            false,
        ),
        (
            b"HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n",
            b"GET",
            false,
        ),
        (
            b"HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n",
            b"GET",
            true,
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n",
            b"HEAD",
            true,
        ),
    ] {
        let h = resp(raw, method).unwrap().unwrap();
        let mut out = Vec::new();
        write_response(&mut out, raw, &h, false);
        let out = String::from_utf8(out).unwrap();
        assert_eq!(out.contains("content-length"), kept, "{out}");
    }
}

/// Scans `body` in pieces of `step` bytes; the total consumed, payload, and whether it ended.
fn scan_in_steps(body: &[u8], step: usize) -> Result<(usize, u64, bool), ChunkError> {
    let mut s = ChunkedScanner::default();
    let (mut consumed, mut payload) = (0, 0);
    for piece in body.chunks(step) {
        let r = s.scan(piece)?;
        consumed += r.consumed;
        payload += r.payload;
        if r.done {
            return Ok((consumed, payload, true));
        }
    }
    Ok((consumed, payload, false))
}

#[test]
fn finds_the_end_of_a_chunked_body_in_any_split() {
    let body = b"5\r\nhello\r\n1a;ext=\"v\"\r\nabcdefghijklmnopqrstuvwxyz\r\n0 ; last\r\n\
                 x-sum: 1\r\nx-more: 2\r\n\r\nGET /next";
    let end = body.len() - b"GET /next".len();
    for step in 1..=body.len() {
        assert_eq!(
            scan_in_steps(body, step),
            Ok((end, 31, true)),
            "step {step}"
        );
    }
    assert_eq!(scan_in_steps(b"0\r\n\r\n", 64), Ok((5, 0, true)));
    assert_eq!(
        scan_in_steps(b"A\r\n0123456789\r\n", 64),
        Ok((15, 10, false))
    );
}

#[test]
fn refuses_broken_chunked_bodies() {
    let e = |b: &[u8]| scan_in_steps(b, 3).unwrap_err();
    assert_eq!(e(b"\r\n"), ChunkError::Size);
    assert_eq!(e(b"g\r\n"), ChunkError::Size);
    assert_eq!(e(b"5\nhello"), ChunkError::Size);
    assert_eq!(e(b"5x\r\nhello"), ChunkError::Size);
    assert_eq!(e(b"10000000000000000\r\n"), ChunkError::Size);
    assert_eq!(e(b"5\r\nhelloX\r\n"), ChunkError::MissingCrlf);
    assert_eq!(e(b"5\r\nhello\n0\r\n\r\n"), ChunkError::MissingCrlf);
    assert_eq!(e(b"0\r\nx: 1\n\r\n"), ChunkError::Trailer);
    // Trailer lines are field lines: no blank or folded line, no line without a colon, no
    // whitespace before the colon, no control character in the value (RFC 9112 §7.1.2).
    for bad in [
        &b"0\r\n \r\n\r\n"[..],
        b"0\r\nx: 1\r\n folded\r\n\r\n",
        b"0\r\nno-colon\r\n\r\n",
        b"0\r\nx : 1\r\n\r\n",
        b"0\r\nx: a\x00b\r\n\r\n",
        b"0\r\n: empty-name\r\n\r\n",
    ] {
        assert_eq!(e(bad), ChunkError::Trailer, "{}", bad.escape_ascii());
    }
    // Chunk extensions: BWS, then `;` (RFC 9112 §7.1.1), and no control character.
    assert_eq!(e(b"5 xyz\r\nhello\r\n"), ChunkError::Size);
    assert_eq!(e(b"5;a\x00\r\nhello\r\n"), ChunkError::Size);
    assert_eq!(
        scan_in_steps(b"5 \t; a=\"b c\";d\r\nhello\r\n0\r\nx-t:\tv w\r\n\r\n", 1),
        Ok((38, 5, true))
    );
    let long = [b"1;".as_slice(), &vec![b'a'; MAX_CHUNK_LINE], b"\r\n"].concat();
    assert_eq!(e(&long), ChunkError::LineTooLong);
    let big = [
        b"0\r\nx: ".as_slice(),
        &vec![b'a'; MAX_TRAILERS],
        b"\r\n\r\n",
    ]
    .concat();
    assert_eq!(e(&big), ChunkError::TrailersTooLarge);
    // Sixteen hex digits still fit in u64.
    assert_eq!(
        ChunkedScanner::default()
            .scan(b"ffffffffffffffff\r\nab")
            .map(|s| s.payload),
        Ok(2)
    );
}
