//! The HTTP/1.1 message codec of the native forwarding loop: heads parsed with `httparse`
//! into offsets over the connection's read buffer (no `http::HeaderMap`, no copies), the
//! message framing of RFC 9112 §6 with the checks that keep a proxy from being used for
//! request smuggling, a scanner that finds the end of a chunked body while its bytes pass
//! through unchanged, and the writers of the heads sent on.
//!
//! What it refuses, and the status a client gets for it:
//! - a head over the listener's `max_header_bytes`, or more than [`MAX_FIELDS`] fields: 431;
//! - a head `httparse` rejects (bad token, obs-fold, space before a colon, bare CR): 400
//!   (`httparse` takes a bare LF as a line end; the heads sent on always use CRLF);
//! - `Content-Length` that is not one non-negative decimal (repeats must agree): 400;
//! - `Transfer-Encoding` together with `Content-Length`, or in an HTTP/1.0 message: 400;
//! - a coding after `chunked` (a second `chunked` too): 400 (RFC 9112 §6.3); any other
//!   `Transfer-Encoding` than exactly `chunked`: 501 (the body's end is unknowable);
//! - an HTTP/1.1 request without exactly one `Host`, or with one that is not host and
//!   port: 400;
//! - in a chunked body, a malformed size line or extension, or a trailer line that is not a
//!   field line: 400.
//!
//! What it sends on is framed as it was parsed: one `content-length` with the parsed value,
//! `transfer-encoding: chunked` only for a chunked body; a `Connection` listing removes
//! neither (nor `host`). An upstream response that breaks the same rules is a 502 for the
//! client.

use std::ops::Range;

use smallvec::SmallVec;

/// Header fields at most in one head (hyper's default is 100).
pub const MAX_FIELDS: usize = 128;
/// Longest chunk-size line (size, extensions) accepted.
pub const MAX_CHUNK_LINE: usize = 4096;
/// Largest trailer section accepted after the last chunk.
pub const MAX_TRAILERS: usize = 64 * 1024;

/// Why a head was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    #[error("head exceeds the limit of {limit} bytes")]
    TooLarge { limit: usize },
    #[error("more than {MAX_FIELDS} header fields")]
    TooManyFields,
    #[error("malformed head: {0}")]
    Malformed(&'static str),
    #[error("invalid content-length")]
    ContentLength,
    #[error("transfer-encoding together with content-length")]
    LengthAndEncoding,
    #[error("transfer-encoding in an HTTP/1.0 message")]
    EncodingInHttp10,
    #[error("unsupported transfer-encoding (only `chunked` is forwarded)")]
    Encoding,
    #[error("transfer-encoding with a coding after `chunked` (the body's end is unknowable)")]
    ChunkedNotLast,
    #[error("an HTTP/1.1 request needs exactly one host header")]
    Host,
    #[error("invalid host header value (host and port only)")]
    HostValue,
}

impl HeadError {
    /// The status a client gets when its request head is refused for this.
    pub fn status(&self) -> u16 {
        match self {
            HeadError::TooLarge { .. } | HeadError::TooManyFields => 431,
            HeadError::Encoding => 501,
            _ => 400,
        }
    }

    fn from_httparse(e: httparse::Error) -> Self {
        match e {
            httparse::Error::TooManyHeaders => HeadError::TooManyFields,
            httparse::Error::HeaderName => HeadError::Malformed("invalid header name"),
            httparse::Error::HeaderValue => HeadError::Malformed("invalid header value"),
            httparse::Error::NewLine => HeadError::Malformed("invalid line ending"),
            httparse::Error::Status => HeadError::Malformed("invalid status"),
            httparse::Error::Token => HeadError::Malformed("invalid token"),
            httparse::Error::Version => HeadError::Malformed("invalid version"),
        }
    }
}

/// How a message body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the sender closes (responses only).
    Close,
}

/// One header field: offsets of its name and value in the head's buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: Range<usize>,
    pub value: Range<usize>,
}

/// What a head says beyond its fields, common to requests and responses.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Meta {
    /// Bytes of the head, final CRLF included; the body starts here.
    pub len: usize,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor: u8,
    pub fields: SmallVec<[Field; 16]>,
    /// `Connection: close`, or HTTP/1.0 without `Connection: keep-alive`.
    pub close: bool,
    /// `Connection: upgrade` with an `Upgrade` field.
    pub upgrade: bool,
    /// `TE: trailers` (kept end to end; gRPC relies on it).
    pub te_trailers: bool,
    /// Names listed in `Connection` (besides `close`, `keep-alive`, `upgrade`): removed when
    /// the message is sent on.
    pub listed: SmallVec<[Range<usize>; 2]>,
    content_length: Option<u64>,
    chunked: bool,
}

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    pub method: Range<usize>,
    pub target: Range<usize>,
    pub meta: Meta,
    /// Index of the `Host` field.
    pub host: Option<usize>,
    /// `Expect: 100-continue`.
    pub expect_continue: bool,
    pub framing: Framing,
}

/// A parsed response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    pub reason: Range<usize>,
    pub meta: Meta,
    pub framing: Framing,
}

fn offset(buf: &[u8], part: &[u8]) -> Range<usize> {
    let start = part.as_ptr() as usize - buf.as_ptr() as usize;
    start..start + part.len()
}

/// The comma-separated elements of a field value, trimmed, empty ones skipped.
fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
}

/// Fills `meta` from the fields; `Err` for framing fields that cannot be trusted.
fn read_fields(
    buf: &[u8],
    headers: &[httparse::Header<'_>],
    meta: &mut Meta,
) -> Result<(), HeadError> {
    let mut keep_alive = false;
    let mut encoding = false;
    for h in headers {
        let name = h.name.as_bytes();
        meta.fields.push(Field {
            name: offset(buf, name),
            value: offset(buf, h.value),
        });
        if name.eq_ignore_ascii_case(b"content-length") {
            for t in h.value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                let n = parse_decimal(t).ok_or(HeadError::ContentLength)?;
                if meta.content_length.is_some_and(|prev| prev != n) {
                    return Err(HeadError::ContentLength);
                }
                meta.content_length = Some(n);
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            // Only exactly `chunked`, once: anything else leaves the body's end unknowable
            // to one of the two sides. A coding after `chunked` is a bad request (RFC 9112
            // §6.3); one before it, a coding the proxy does not implement (501).
            for t in tokens(h.value) {
                if encoding {
                    return Err(HeadError::ChunkedNotLast);
                }
                if !t.eq_ignore_ascii_case(b"chunked") {
                    return Err(HeadError::Encoding);
                }
                encoding = true;
            }
            if !encoding {
                return Err(HeadError::Encoding);
            }
        } else if name.eq_ignore_ascii_case(b"connection") {
            for t in tokens(h.value) {
                if t.eq_ignore_ascii_case(b"close") {
                    meta.close = true;
                } else if t.eq_ignore_ascii_case(b"keep-alive") {
                    keep_alive = true;
                } else if t.eq_ignore_ascii_case(b"upgrade") {
                    meta.upgrade = true;
                } else {
                    meta.listed.push(offset(buf, t));
                }
            }
        } else if name.eq_ignore_ascii_case(b"te") {
            meta.te_trailers |= tokens(h.value).any(|t| t.eq_ignore_ascii_case(b"trailers"));
        }
    }
    if encoding && meta.content_length.is_some() {
        return Err(HeadError::LengthAndEncoding);
    }
    if encoding && meta.minor == 0 {
        return Err(HeadError::EncodingInHttp10);
    }
    meta.chunked = encoding;
    if meta.minor == 0 && !keep_alive {
        meta.close = true;
    }
    if meta.upgrade
        && !headers
            .iter()
            .any(|h| h.name.eq_ignore_ascii_case("upgrade"))
    {
        meta.upgrade = false;
    }
    Ok(())
}

/// A non-negative decimal that fits in `u64`; `None` for anything else (signs, spaces, empty).
fn parse_decimal(t: &[u8]) -> Option<u64> {
    if t.is_empty() || t.len() > 19 {
        return None;
    }
    t.iter().try_fold(0u64, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0'))
    })
}

fn check_size(buf: &[u8], limit: usize) -> Result<(), HeadError> {
    if buf.len() > limit {
        Err(HeadError::TooLarge { limit })
    } else {
        Ok(())
    }
}

/// Parses the request head at the start of `buf`: `Ok(None)` while it is incomplete (and
/// within `limit` bytes).
pub fn parse_request(buf: &[u8], limit: usize) -> Result<Option<RequestHead>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_FIELDS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return check_size(buf, limit).map(|()| None),
        Err(e) => return Err(HeadError::from_httparse(e)),
    };
    if len > limit {
        return Err(HeadError::TooLarge { limit });
    }
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(HeadError::Malformed("incomplete request line"));
    };
    let mut meta = Meta {
        len,
        minor,
        ..Meta::default()
    };
    read_fields(buf, req.headers, &mut meta)?;
    let mut host = None;
    let mut hosts = 0;
    let mut expect_continue = false;
    for (i, h) in req.headers.iter().enumerate() {
        if h.name.eq_ignore_ascii_case("host") {
            host = Some(i);
            hosts += 1;
        } else if h.name.eq_ignore_ascii_case("expect") {
            expect_continue |= tokens(h.value).any(|t| t.eq_ignore_ascii_case(b"100-continue"));
        }
    }
    if hosts > 1 || (minor == 1 && hosts == 0) {
        return Err(HeadError::Host);
    }
    if let Some(i) = host {
        if !req.headers[i].value.iter().copied().all(is_host_byte) {
            return Err(HeadError::HostValue);
        }
    }
    let framing = if meta.chunked {
        Framing::Chunked
    } else {
        match meta.content_length {
            Some(0) | None => Framing::Empty,
            Some(n) => Framing::Length(n),
        }
    };
    Ok(Some(RequestHead {
        method: offset(buf, method.as_bytes()),
        target: offset(buf, target.as_bytes()),
        meta,
        host,
        expect_continue,
        framing,
    }))
}

/// Parses the response head at the start of `buf` to a request with method `method`:
/// `Ok(None)` while it is incomplete.
pub fn parse_response(
    buf: &[u8],
    limit: usize,
    method: &[u8],
) -> Result<Option<ResponseHead>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_FIELDS];
    let mut res = httparse::Response::new(&mut headers);
    let len = match res.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return check_size(buf, limit).map(|()| None),
        Err(e) => return Err(HeadError::from_httparse(e)),
    };
    if len > limit {
        return Err(HeadError::TooLarge { limit });
    }
    let (Some(status), Some(minor)) = (res.code, res.version) else {
        return Err(HeadError::Malformed("incomplete status line"));
    };
    let reason = match res.reason {
        Some(r) if !r.is_empty() => offset(buf, r.as_bytes()),
        _ => 0..0,
    };
    let mut meta = Meta {
        len,
        minor,
        ..Meta::default()
    };
    read_fields(buf, res.headers, &mut meta)?;
    let framing = if method.eq_ignore_ascii_case(b"HEAD")
        || (100..200).contains(&status)
        || status == 204
        || status == 304
    {
        Framing::Empty
    } else if meta.chunked {
        Framing::Chunked
    } else {
        match meta.content_length {
            Some(0) => Framing::Empty,
            Some(n) => Framing::Length(n),
            None => Framing::Close,
        }
    };
    Ok(Some(ResponseHead {
        status,
        reason,
        meta,
        framing,
    }))
}

/// Why a chunked body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("invalid chunk size")]
    Size,
    #[error("chunk-size line longer than {MAX_CHUNK_LINE} bytes")]
    LineTooLong,
    #[error("missing CRLF after chunk data")]
    MissingCrlf,
    #[error("trailer section larger than {MAX_TRAILERS} bytes")]
    TrailersTooLarge,
    #[error("malformed field line in the trailer section")]
    Trailer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum ChunkState {
    /// Hex digits of a chunk size (`digits` so far).
    #[default]
    Size,
    /// After the size digits: whitespace, then `;` or CR.
    SizeWs,
    /// Inside the chunk extensions (after a `;`), up to CR.
    Ext,
    /// CR seen after the size line; LF next.
    SizeLf,
    Data,
    DataCr,
    DataLf,
    /// At the start of a trailer line (or of the final CRLF).
    TrailerStart,
    /// The name of a trailer field (token characters up to `:`).
    TrailerName,
    /// The value of a trailer field, up to CR.
    TrailerValue,
    /// CR seen at the end of a trailer line; LF next.
    TrailerLf,
    /// CR of the final empty line seen; LF next.
    EndLf,
    Done,
}

/// Where [`ChunkedScanner::scan_into`] puts what it decodes.
pub trait ChunkSink {
    /// Chunk data, in order.
    fn data(&mut self, data: &[u8]);
    /// A byte of the trailer section (its field lines with their CRLFs, without the final
    /// empty line).
    fn trailer(&mut self, byte: u8);
}

/// Scanning only.
impl ChunkSink for () {
    #[inline(always)]
    fn data(&mut self, _: &[u8]) {}
    #[inline(always)]
    fn trailer(&mut self, _: u8) {}
}

/// Finds where a chunked body ends while its bytes pass through as they are.
#[derive(Debug, Default, Clone)]
pub struct ChunkedScanner {
    state: ChunkState,
    /// The chunk size being read, then the data left in the current chunk.
    remaining: u64,
    digits: u8,
    line: usize,
    trailers: usize,
    /// Whether the size line being read is the last chunk's (size 0).
    last: bool,
}

/// What one [`ChunkedScanner::scan`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scanned {
    /// Bytes of the input that belong to the body (all of it unless `done`).
    pub consumed: usize,
    /// Payload bytes among them (chunk data, without framing).
    pub payload: u64,
    /// The body ended at `consumed`.
    pub done: bool,
}

impl ChunkedScanner {
    pub fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// Advances over `input`, the next bytes of the body.
    pub fn scan(&mut self, input: &[u8]) -> Result<Scanned, ChunkError> {
        self.scan_into(input, &mut ())
    }

    /// [`Self::scan`], handing the chunk data and the trailer section to `sink` (decoding
    /// the body, for filters that read it).
    pub fn scan_into<K: ChunkSink>(
        &mut self,
        input: &[u8],
        sink: &mut K,
    ) -> Result<Scanned, ChunkError> {
        use ChunkState as S;
        let mut i = 0;
        let mut payload = 0;
        while i < input.len() && self.state != S::Done {
            if self.state == S::Data {
                let take = self.remaining.min((input.len() - i) as u64);
                sink.data(&input[i..i + take as usize]);
                i += take as usize;
                payload += take;
                self.remaining -= take;
                if self.remaining == 0 {
                    self.state = S::DataCr;
                }
                continue;
            }
            let b = input[i];
            i += 1;
            self.state = match self.state {
                S::Size => match (b as char).to_digit(16) {
                    Some(d) => {
                        if self.digits == 16 {
                            return Err(ChunkError::Size);
                        }
                        self.digits += 1;
                        self.remaining = self.remaining << 4 | u64::from(d);
                        self.line += 1;
                        S::Size
                    }
                    None if self.digits == 0 => return Err(ChunkError::Size),
                    None => {
                        self.last = self.remaining == 0;
                        self.ext_byte(b)?
                    }
                },
                S::SizeWs | S::Ext => self.ext_byte(b)?,
                S::SizeLf => {
                    if b != b'\n' {
                        return Err(ChunkError::Size);
                    }
                    self.line = 0;
                    self.digits = 0;
                    if self.last {
                        S::TrailerStart
                    } else {
                        S::Data
                    }
                }
                S::DataCr if b == b'\r' => S::DataLf,
                S::DataLf if b == b'\n' => {
                    self.remaining = 0;
                    S::Size
                }
                S::DataCr | S::DataLf => return Err(ChunkError::MissingCrlf),
                // Each trailer line is a field line (RFC 9112 §7.1.2): a token name, `:`, a
                // value without control characters but HTAB. Anything else (a line that
                // starts with whitespace — obs-fold or blank —, no colon, a bare LF, NUL)
                // is refused: a next hop could end the section elsewhere.
                S::TrailerStart | S::TrailerName | S::TrailerValue => {
                    if self.state != S::TrailerStart || b != b'\r' {
                        sink.trailer(b);
                    }
                    self.trailers += 1;
                    if self.trailers > MAX_TRAILERS {
                        return Err(ChunkError::TrailersTooLarge);
                    }
                    match (self.state, b) {
                        (S::TrailerStart, b'\r') => S::EndLf,
                        (S::TrailerStart | S::TrailerName, b) if is_tchar(b) => S::TrailerName,
                        (S::TrailerName, b':') => S::TrailerValue,
                        (S::TrailerValue, b'\r') => S::TrailerLf,
                        (S::TrailerValue, b) if b == b'\t' || (b >= 0x20 && b != 0x7f) => {
                            S::TrailerValue
                        }
                        _ => return Err(ChunkError::Trailer),
                    }
                }
                S::TrailerLf if b == b'\n' => {
                    sink.trailer(b);
                    S::TrailerStart
                }
                S::EndLf if b == b'\n' => S::Done,
                S::TrailerLf | S::EndLf => return Err(ChunkError::Trailer),
                S::Data | S::Done => unreachable!("handled above"),
            };
        }
        Ok(Scanned {
            consumed: i,
            payload,
            done: self.state == S::Done,
        })
    }

    /// A byte of the size line after the digits: whitespace (BWS), then CR or `;` and the
    /// extensions (RFC 9112 §7.1.1), which may hold no control character but HTAB; CR ends
    /// the line.
    fn ext_byte(&mut self, b: u8) -> Result<ChunkState, ChunkError> {
        self.line += 1;
        if self.line > MAX_CHUNK_LINE {
            return Err(ChunkError::LineTooLong);
        }
        let in_ext = self.state == ChunkState::Ext;
        match b {
            b'\r' => Ok(ChunkState::SizeLf),
            b';' => Ok(ChunkState::Ext),
            b' ' | b'\t' if !in_ext => Ok(ChunkState::SizeWs),
            b'\t' => Ok(ChunkState::Ext),
            _ if in_ext && b >= 0x20 && b != 0x7f => Ok(ChunkState::Ext),
            _ => Err(ChunkError::Size),
        }
    }
}

/// A byte of `uri-host [ ":" port ]` (RFC 3986 §3.2.2: unreserved, pct-encoded, sub-delims,
/// an IP literal's brackets and colons). No `@` (userinfo), `/`, `?`, `#` or whitespace: a
/// policy on the host must see the one the upstream routes by.
fn is_host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;=:[]".contains(&b)
}

/// A token character (RFC 9110 §5.6.2).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Fields a proxy never forwards (RFC 9110 §7.6.1), in any case.
fn is_hop_by_hop(name: &[u8]) -> bool {
    const HOP_BY_HOP: [&[u8]; 8] = [
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"http2-settings",
    ];
    HOP_BY_HOP.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// Whether the field is dropped when the message is sent on: hop-by-hop, `content-length`
/// (written again from what was parsed), in `replaced` (fields the writer sets itself), or
/// listed in `Connection` unless it is `host`. A listing must not take away the message's
/// framing or routing: a request listing `content-length` would reach the upstream without
/// one, and its body be read there as the next request.
fn dropped(buf: &[u8], meta: &Meta, f: &Field, replaced: &[&[u8]]) -> bool {
    let name = &buf[f.name.clone()];
    is_hop_by_hop(name)
        || name.eq_ignore_ascii_case(b"content-length")
        || replaced.iter().any(|r| r.eq_ignore_ascii_case(name))
        || (!meta.listed.is_empty()
            && !name.eq_ignore_ascii_case(b"host")
            && meta
                .listed
                .iter()
                .any(|l| buf[l.clone()].eq_ignore_ascii_case(name)))
}

/// The fields to send on (see [`dropped`]), then the framing fields: one `content-length`
/// with the value parsed (however the sender wrote it: `5, 5`, `007`, twice; RFC 9110 §8.6)
/// unless `content_length` is false, and `transfer-encoding: chunked` when `framing` is
/// chunked.
fn write_fields(
    out: &mut Vec<u8>,
    buf: &[u8],
    meta: &Meta,
    framing: Framing,
    content_length: bool,
    replaced: &[&[u8]],
) {
    for f in &meta.fields {
        if dropped(buf, meta, f, replaced) {
            continue;
        }
        out.extend_from_slice(&buf[f.name.clone()]);
        out.extend_from_slice(b": ");
        out.extend_from_slice(&buf[f.value.clone()]);
        out.extend_from_slice(b"\r\n");
    }
    if let Some(n) = meta.content_length.filter(|_| content_length) {
        out.extend_from_slice(b"content-length: ");
        push_decimal(out, n);
        out.extend_from_slice(b"\r\n");
    }
    if framing == Framing::Chunked {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
}

/// How the proxy identifies the client and itself on a request sent upstream.
#[derive(Debug, Clone, Copy)]
pub struct Forwarded<'a> {
    /// The client's address as `x-forwarded-for` gets it.
    pub client: &'a [u8],
    pub tls: bool,
    /// `Host` for a request that has none (HTTP/1.0): the upstream authority.
    pub authority: &'a [u8],
}

/// Appends the request head to send upstream: hop-by-hop fields and those listed in
/// `Connection` removed, `te: trailers` kept, the client appended to `x-forwarded-for`,
/// `x-forwarded-proto` set, `via` appended, `host` added when missing. Always HTTP/1.1.
pub fn write_request(out: &mut Vec<u8>, buf: &[u8], head: &RequestHead, fwd: Forwarded<'_>) {
    const REPLACED: [&[u8]; 2] = [b"x-forwarded-for", b"x-forwarded-proto"];
    out.extend_from_slice(&buf[head.method.clone()]);
    out.push(b' ');
    out.extend_from_slice(&buf[head.target.clone()]);
    out.extend_from_slice(b" HTTP/1.1\r\n");
    write_fields(out, buf, &head.meta, head.framing, true, &REPLACED);
    if head.meta.te_trailers {
        out.extend_from_slice(b"te: trailers\r\n");
    }
    if head.host.is_none() {
        out.extend_from_slice(b"host: ");
        out.extend_from_slice(fwd.authority);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"x-forwarded-for: ");
    for f in &head.meta.fields {
        if buf[f.name.clone()].eq_ignore_ascii_case(b"x-forwarded-for") {
            out.extend_from_slice(&buf[f.value.clone()]);
            out.extend_from_slice(b", ");
        }
    }
    out.extend_from_slice(fwd.client);
    out.extend_from_slice(if fwd.tls {
        b"\r\nx-forwarded-proto: https\r\n"
    } else {
        b"\r\nx-forwarded-proto: http\r\n"
    });
    out.extend_from_slice(if head.meta.minor == 0 {
        b"via: 1.0 strait\r\n\r\n"
    } else {
        b"via: 1.1 strait\r\n\r\n"
    });
}

/// Appends the response head to send to an HTTP/1.1 client: hop-by-hop fields removed, `via`
/// appended, `connection: close` when the client connection ends after it. A 1xx or 204
/// goes without `content-length` (RFC 9110 §8.6: a server must not send one).
pub fn write_response(out: &mut Vec<u8>, buf: &[u8], head: &ResponseHead, close: bool) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(&itoa3(head.status));
    out.push(b' ');
    out.extend_from_slice(&buf[head.reason.clone()]);
    out.extend_from_slice(b"\r\n");
    let content_length = !(head.status < 200 || head.status == 204);
    write_fields(out, buf, &head.meta, head.framing, content_length, &[]);
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(if head.meta.minor == 0 {
        b"via: 1.0 strait\r\n\r\n"
    } else {
        b"via: 1.1 strait\r\n\r\n"
    });
}

/// Appends `n` in decimal (no formatting machinery on the per-request path).
fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// A three-digit status code (httparse accepts only three digits).
fn itoa3(n: u16) -> [u8; 3] {
    let n = n.min(999);
    [
        b'0' + (n / 100) as u8,
        b'0' + (n / 10 % 10) as u8,
        b'0' + (n % 10) as u8,
    ]
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
