//! The listener's filter chain on the native path: the heads handed to the filters as `http`
//! types (their field values share the read buffer, nothing is copied), the heads written
//! back from what the filters left, and response bodies through the body callbacks (chunked
//! bodies decoded for them and encoded again).
//!
//! Requests with a body go to hyper when a filter has request body callbacks (see
//! [`super::conn`]); everything else a filter can do on an HTTP/1.1 stream happens here.

use std::io::Write as _;
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{StatusCode, Version};

use super::codec::{
    self, ChunkSink, ChunkedScanner, Forwarded, Framing, Meta, RequestHead, ResponseHead,
};
use super::conn::{Conn, Stop, Upstream};
use crate::http::body::FlowGuard;
use crate::http::{headers, Failure};
use crate::io::AsyncStream;
use crate::wasm::{
    BodyKind, BodyOutcome, Chain, Heads, Native, Outcome, RawFields, RequestLine, StreamFilters,
};

/// How a filtered response body is framed for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OutBody {
    /// The upstream's bytes as they are (no filter reads this body).
    Raw,
    /// The filters' output, which must add up to the `content-length` sent.
    Length(u64),
    /// The filters' output, chunked.
    Chunked,
    /// The filters' output until the connection closes.
    Close,
    /// No body for the client: a filter made the status one without a body (1xx, 204, 304)
    /// while the upstream's response has one. It is left unread, and the upstream connection
    /// is not used again.
    None,
}

/// A head's fields, raw until a filter needs them (see [`RawFields`]).
pub(super) fn raw_fields(buf: &Bytes, meta: &Meta) -> RawFields {
    RawFields::new(
        buf.clone(),
        meta.fields
            .iter()
            .map(|f| (f.name.clone(), f.value.clone())),
    )
}

/// The request head as the filters see it; `buf` holds the head (offsets of `head`). Method
/// and target are parsed now (the stream's facts need them), the fields when a filter asks.
pub(super) fn request_head(
    buf: &Bytes,
    head: &RequestHead,
) -> Result<Native<http::request::Parts>, String> {
    let (mut parts, ()) = http::Request::new(()).into_parts();
    parts.method = http::Method::from_bytes(&buf[head.method.clone()])
        .map_err(|_| "invalid method".to_owned())?;
    parts.uri = http::Uri::from_maybe_shared(buf.slice(head.target.clone()))
        .map_err(|e| format!("invalid request target: {e}"))?;
    parts.version = Version::HTTP_11;
    Ok(Native {
        parts,
        raw: Some(raw_fields(buf, &head.meta)),
    })
}

/// The response head as the filters see it; `buf` holds the head.
fn response_head(
    buf: &Bytes,
    head: &ResponseHead,
) -> Result<Native<http::response::Parts>, String> {
    let (mut parts, ()) = http::Response::new(()).into_parts();
    parts.status =
        StatusCode::from_u16(head.status).map_err(|_| format!("invalid status {}", head.status))?;
    parts.version = Version::HTTP_11;
    Ok(Native {
        parts,
        raw: Some(raw_fields(buf, &head.meta)),
    })
}

/// Appends the fields of `h` but the framing ones, then the framing `framing` calls for.
/// With [`Framing::Empty`] a response's `content-length` is kept (a `HEAD` response's
/// length); a request's goes as `content-length: 0` (a bodiless `POST`'s), whatever a filter
/// set: the upstream must not wait for a body that is not sent, nor take the next request
/// for it.
fn write_fields(out: &mut Vec<u8>, h: &HeaderMap, framing: Framing, request: bool) {
    for (name, value) in h {
        if *name == header::TRANSFER_ENCODING
            || (*name == header::CONTENT_LENGTH && (framing != Framing::Empty || request))
        {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    match framing {
        Framing::Length(n) => {
            let _ = write!(out, "content-length: {n}\r\n");
        }
        Framing::Empty if request && h.contains_key(header::CONTENT_LENGTH) => {
            out.extend_from_slice(b"content-length: 0\r\n");
        }
        Framing::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        Framing::Empty | Framing::Close => {}
    }
}

/// Appends the request head to send upstream from the filtered `parts` (hop-by-hop fields
/// already removed, forwarding fields added), with the body framing of the request.
pub(super) fn write_request_parts(
    out: &mut Vec<u8>,
    parts: &http::request::Parts,
    framing: Framing,
) {
    out.extend_from_slice(parts.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(
        parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .as_bytes(),
    );
    out.extend_from_slice(b" HTTP/1.1\r\n");
    write_fields(out, &parts.headers, framing, true);
    out.extend_from_slice(b"\r\n");
}

/// Appends a response head for the client from `parts` (hop-by-hop fields already removed).
pub(super) fn write_response_parts(
    out: &mut Vec<u8>,
    parts: &http::response::Parts,
    framing: Framing,
    close: bool,
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(parts.status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(parts.status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    write_fields(out, &parts.headers, framing, false);
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// What a chunked body decodes to.
#[derive(Default)]
pub(super) struct Decoded {
    pub(super) data: BytesMut,
    pub(super) trailers: Vec<u8>,
}

impl ChunkSink for Decoded {
    fn data(&mut self, data: &[u8]) {
        self.data.extend_from_slice(data);
    }
    fn trailer(&mut self, byte: u8) {
        self.trailers.push(byte);
    }
}

/// A trailer section (field lines with their CRLFs) as a map.
pub(super) fn parse_trailers(section: &[u8]) -> Result<HeaderMap, String> {
    let mut lines = section.to_vec();
    lines.extend_from_slice(b"\r\n");
    let mut fields = [httparse::EMPTY_HEADER; 64];
    match httparse::parse_headers(&lines, &mut fields) {
        Ok(httparse::Status::Complete((_, fields))) => {
            let mut map = HeaderMap::with_capacity(fields.len());
            for f in fields {
                let (Ok(n), Ok(v)) = (
                    HeaderName::from_bytes(f.name.as_bytes()),
                    HeaderValue::from_bytes(f.value),
                ) else {
                    return Err("invalid trailer field".into());
                };
                map.append(n, v);
            }
            Ok(map)
        }
        Ok(httparse::Status::Partial) => Err("incomplete trailer section".into()),
        Err(e) => Err(format!("invalid trailer section: {e}")),
    }
}

/// The value of a `content-length` field, if it is one decimal number.
fn content_length(h: &HeaderMap) -> Option<u64> {
    std::str::from_utf8(h.get(header::CONTENT_LENGTH)?.as_bytes())
        .ok()?
        .parse()
        .ok()
}

fn body_stopped(outcome: BodyOutcome) -> Option<Stop> {
    match outcome {
        BodyOutcome::Emit(_) | BodyOutcome::Hold => None,
        BodyOutcome::Paused(_) => Some(Stop::Abort(
            "a filter paused the response body again after resuming it".into(),
        )),
        BodyOutcome::Reply { filter, .. } => Some(Stop::Abort(format!(
            "filter `{filter}` sent a local response after the response head; the stream was reset"
        ))),
        BodyOutcome::Fail(f) => Some(Stop::Abort(format!(
            "filter `{}` failed: {}",
            f.filter, f.message
        ))),
    }
}

impl<S: AsyncStream> Conn<'_, S> {
    /// Runs the request head (at the start of `self.rbuf`) through the chain and writes the
    /// head to send upstream into `self.out`; the head's bytes leave `self.rbuf`. With the
    /// filters' method when they touched the head (the response is read for it).
    pub(super) async fn filter_request(
        &mut self,
        head: &RequestHead,
        chain: Arc<Chain>,
        guard: &mut FlowGuard,
    ) -> Result<(StreamFilters, Option<http::Method>), Stop> {
        let p = self.p;
        let buf = self.rbuf.split_to(head.meta.len).freeze();
        let native = request_head(&buf, head).map_err(|m| {
            p.metrics.bad_requests.inc();
            Stop::Fail(Failure::local(StatusCode::BAD_REQUEST, m), false)
        })?;
        let line = RequestLine {
            method: native.parts.method.clone(),
            uri: native.parts.uri.clone(),
            host: head.host.and_then(|i| {
                HeaderValue::from_maybe_shared(buf.slice(head.meta.fields[i].value.clone())).ok()
            }),
        };
        let info = p.stream_info(self.peer, self.tls, "HTTP/1.1", line);
        let sf = StreamFilters::new(chain, info, p.pause_limit());
        guard.watch(sf.shared_info());
        let eos = head.framing == Framing::Empty;
        // Matched here rather than awaited through a helper: the head and the outcome are a few
        // hundred bytes, and a helper future would copy them in and out again.
        let (mut native, outcome) = match sf.request_headers(native, eos) {
            Heads::Done(h, outcome) => (h, outcome),
            Heads::Paused(paused) => paused.await,
        };
        if let Some((filter, decided)) = sf.info().take_policy() {
            guard.policy(&filter, decided);
        }
        // For the later callbacks; raw fields are moved (what follows needs only `buf`, which
        // the stream's `RequestLine` holds anyway). An unchanged head's line is as it arrived.
        // A failed chain's head may be a stand-in: then the arrived request is what they read.
        let untouched = !native.touched();
        if !matches!(outcome, Outcome::Fail(_)) {
            let line = (!untouched).then_some((&native.parts.method, &native.parts.uri));
            sf.info()
                .past
                .keep_request(native.raw.take(), &native.parts.headers, line);
        }
        self.decided(outcome, guard)?;
        if untouched {
            // No filter changed the head: it goes on as without filters.
            codec::write_request(
                &mut self.out,
                &buf,
                head,
                Forwarded {
                    client: self.client.as_bytes(),
                    tls: self.tls,
                    authority: p.target.authority.as_str().as_bytes(),
                },
            );
            return Ok((sf, None));
        }
        let mut parts = native.parts;
        headers::strip_hop_by_hop(&mut parts.headers, None);
        headers::add_forwarded(&mut parts.headers, &self.client, self.tls, Version::HTTP_11);
        if !parts.headers.contains_key(header::HOST) {
            if let Ok(v) = HeaderValue::from_str(p.target.authority.as_str()) {
                parts.headers.insert(header::HOST, v);
            }
        }
        write_request_parts(&mut self.out, &parts, head.framing);
        Ok((sf, Some(parts.method)))
    }

    /// Runs the response head (at the start of `up.buf`) through the chain, writes the head
    /// for the client into `self.out`, and says how the body goes.
    pub(super) async fn filter_response(
        &mut self,
        sf: &StreamFilters,
        resp: &ResponseHead,
        up: &mut Upstream,
        close: bool,
        guard: &mut FlowGuard,
    ) -> Result<OutBody, Stop> {
        let p = self.p;
        let buf = up.buf.split_to(resp.meta.len).freeze();
        let native = response_head(&buf, resp)
            .map_err(|m| super::conn::upstream_failed(format!("invalid response head: {m}")))?;
        let eos = resp.framing == Framing::Empty;
        let (mut native, outcome) = match sf.response_headers(native, eos) {
            Heads::Done(h, outcome) => (h, outcome),
            Heads::Paused(paused) => paused.await,
        };
        let status = native.parts.status.as_u16();
        let untouched = !native.touched();
        if matches!(outcome, Outcome::Continue) {
            // The head the client gets, for the later callbacks (a local reply is not it).
            // Copied: held raw, they would keep `up.buf`'s block from being reused.
            let raw = native.raw.take().map(RawFields::unshared);
            sf.info()
                .past
                .keep_response(raw, &native.parts.headers, status);
        }
        self.decided(outcome, guard)?;
        p.metrics.response(status);
        p.metrics.latency.observe(guard.elapsed().as_secs_f64());
        let body = resp.framing != Framing::Empty && sf.wants_body(BodyKind::Response);
        if untouched {
            // The head goes on as without filters; with body callbacks the body keeps its
            // framing, and a `content-length` must still add up.
            guard.status(status);
            codec::write_response(&mut self.out, &buf, resp, close);
            return Ok(match resp.framing {
                _ if !body => OutBody::Raw,
                Framing::Length(n) => OutBody::Length(n),
                Framing::Close => OutBody::Close,
                _ => OutBody::Chunked,
            });
        }
        let mut parts = native.parts;
        guard.response(status, &parts.headers);
        headers::strip_hop_by_hop(&mut parts.headers, None);
        headers::add_via(&mut parts.headers, Version::HTTP_11);
        let bodiless = |s: u16| (100..200).contains(&s) || s == 204 || s == 304;
        if resp.framing == Framing::Empty && bodiless(resp.status) && !bodiless(status) {
            // A filter gave a bodiless response a status that has a body: the client must
            // learn that it is empty, not read until the connection closes.
            parts
                .headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        }
        if bodiless(status) && status != 304 {
            // 1xx and 204 carry no `content-length` (RFC 9110 §8.6); a 304's is the length
            // of the representation it stands for, and stays.
            parts.headers.remove(header::CONTENT_LENGTH);
        }
        // With body callbacks, `content-length` is kept when the filters left it as it was;
        // a filter that changes the body removes it (as with Envoy), and the body is chunked.
        let (out, framing) = match resp.framing {
            // A status without a body (RFC 9110 §6.4.1): the upstream's body must not reach
            // the client, where it would be read as the next response.
            f if bodiless(status) && f != Framing::Empty => (OutBody::None, Framing::Empty),
            f if !body => (OutBody::Raw, f),
            Framing::Length(n) if content_length(&parts.headers) == Some(n) => {
                (OutBody::Length(n), Framing::Length(n))
            }
            Framing::Close => (OutBody::Close, Framing::Close),
            _ => (OutBody::Chunked, Framing::Chunked),
        };
        write_response_parts(&mut self.out, &parts, framing, close);
        Ok(out)
    }

    /// Carries on after the chain's outcome on a head, or stops with the local response.
    fn decided(&self, outcome: Outcome, guard: &mut FlowGuard) -> Result<(), Stop> {
        let p = self.p;
        match outcome {
            Outcome::Continue => Ok(()),
            Outcome::Reply { filter, reply } => {
                let (resp, body) =
                    p.filter_reply_head(guard, false, Version::HTTP_11, &filter, reply);
                Err(Stop::Reply(Box::new((resp, body))))
            }
            Outcome::Fail(f) => {
                let failure = p.filter_failure(guard, &f);
                // Now, while the stream's filters are still there to see it in `on_log`.
                guard.status(failure.status.as_u16());
                Err(Stop::Fail(failure, true))
            }
        }
    }

    /// Relays a response body the filters read (the head is in `self.out`): decoded, through
    /// the body callbacks (and trailers through theirs), framed as `out` says.
    pub(super) async fn relay_filtered(
        &mut self,
        up: &mut Upstream,
        framing: Framing,
        out: OutBody,
        sf: &StreamFilters,
        guard: &mut FlowGuard,
    ) -> Result<(), Stop> {
        let mut left = match framing {
            Framing::Length(n) => n,
            _ => 0,
        };
        let mut scanner = ChunkedScanner::default();
        let mut decoded = Decoded::default();
        let mut emitted = 0u64;
        let mut at_eof = false;
        loop {
            let (data, eos) = match framing {
                Framing::Length(_) => {
                    let n = left.min(up.buf.len() as u64);
                    left -= n;
                    (up.buf.split_to(n as usize).freeze(), left == 0)
                }
                Framing::Chunked => {
                    let s = scanner
                        .scan_into(&up.buf, &mut decoded)
                        .map_err(|e| Stop::Abort(format!("invalid response body: {e}")))?;
                    up.buf.advance(s.consumed);
                    (decoded.data.split().freeze(), s.done)
                }
                Framing::Close => (up.buf.split().freeze(), at_eof),
                Framing::Empty => (Bytes::new(), true),
            };
            if !data.is_empty() || eos {
                let mut outcome = sf.body(BodyKind::Response, data, eos);
                if let BodyOutcome::Paused(p) = outcome {
                    // What the client has so far goes out before the wait.
                    if !self.out.is_empty() {
                        self.write_out().await?;
                    }
                    outcome = sf.resume_body(p).await;
                }
                match outcome {
                    BodyOutcome::Emit(b) => self.emit(out, &b, &mut emitted, guard)?,
                    other => {
                        if let Some(stop) = body_stopped(other) {
                            return Err(stop);
                        }
                    }
                }
            }
            if eos {
                self.finish_body(out, emitted, &decoded.trailers, sf)?;
            }
            if !self.out.is_empty() {
                self.write_out().await?;
            }
            if eos {
                return Ok(());
            }
            match self.read_upstream(up).await? {
                0 if framing == Framing::Close => at_eof = true,
                0 => {
                    return Err(Stop::Abort(
                        "upstream closed the connection before the response body ended".into(),
                    ))
                }
                _ => {}
            }
        }
    }

    /// Appends filter output to `self.out` in the client's framing.
    fn emit(
        &mut self,
        out: OutBody,
        b: &[u8],
        emitted: &mut u64,
        guard: &mut FlowGuard,
    ) -> Result<(), Stop> {
        if b.is_empty() {
            return Ok(());
        }
        let n = b.len() as u64;
        match out {
            OutBody::Length(limit) if *emitted + n > limit => return Err(length_changed(limit)),
            OutBody::Chunked => {
                let _ = write!(self.out, "{:x}\r\n", b.len());
                self.out.extend_from_slice(b);
                self.out.extend_from_slice(b"\r\n");
            }
            _ => self.out.extend_from_slice(b),
        }
        *emitted += n;
        guard.sent(n);
        Ok(())
    }

    /// After the last body bytes: the length check, or the last chunk with the trailers.
    fn finish_body(
        &mut self,
        out: OutBody,
        emitted: u64,
        trailers: &[u8],
        sf: &StreamFilters,
    ) -> Result<(), Stop> {
        match out {
            OutBody::Length(n) if emitted != n => Err(length_changed(n)),
            OutBody::Chunked => {
                self.out.extend_from_slice(b"0\r\n");
                if !trailers.is_empty() {
                    let map = parse_trailers(trailers)
                        .map_err(|m| Stop::Abort(format!("upstream trailers: {m}")))?;
                    let (map, failed) = sf.trailers(BodyKind::Response, map);
                    if let Some(f) = failed {
                        return Err(Stop::Abort(format!(
                            "filter `{}` failed: {}",
                            f.filter, f.message
                        )));
                    }
                    write_fields(&mut self.out, &map, Framing::Empty, false);
                }
                self.out.extend_from_slice(b"\r\n");
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

fn length_changed(n: u64) -> Stop {
    Stop::Abort(format!(
        "the filters changed the length of a response body sent with content-length {n} \
         (a filter that changes the body removes content-length in on_response_headers)"
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::http::h1::codec;

    #[test]
    fn heads_round_trip_through_http_types() {
        let raw = Bytes::from_static(
            b"POST /a?b=1 HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nX-A: 2\r\nContent-Length: 3\r\n\r\nabc",
        );
        let head = codec::parse_request(&raw, 8192).unwrap().unwrap();
        let native = request_head(&raw.slice(..head.meta.len), &head).unwrap();
        assert_eq!(native.raw.as_ref().unwrap().len(), 4);
        let mut parts = native.parts;
        parts.headers = native.raw.unwrap().to_map().unwrap();
        assert_eq!(parts.method, http::Method::POST);
        assert_eq!(parts.uri.path_and_query().unwrap().as_str(), "/a?b=1");
        assert_eq!(parts.headers.get_all("x-a").iter().count(), 2);
        let mut out = Vec::new();
        write_request_parts(&mut out, &parts, head.framing);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("POST /a?b=1 HTTP/1.1\r\n"), "{text}");
        assert_eq!(text.matches("content-length: 3\r\n").count(), 1, "{text}");
        assert!(text.ends_with("\r\n\r\n"));
        let again = codec::parse_request(text.as_bytes(), 8192)
            .unwrap()
            .unwrap();
        assert_eq!(again.framing, Framing::Length(3));
    }

    /// Raw fields become a `HeaderMap` only when a filter asks, where a failure can only reset
    /// the stream: every name and value byte `httparse` lets through must be one the `http`
    /// types take.
    #[test]
    fn httparse_fields_are_valid_http_types() {
        let mut accepted = 0;
        for b in 0..=255u8 {
            for (name, value) in [
                (vec![b'x', b], vec![b'v']),
                (vec![b'x'], vec![b'v', b, b'v']),
            ] {
                let mut raw = b"GET / HTTP/1.1\r\nhost: h\r\n".to_vec();
                raw.extend_from_slice(&name);
                raw.extend_from_slice(b": ");
                raw.extend_from_slice(&value);
                raw.extend_from_slice(b"\r\n\r\n");
                let raw = Bytes::from(raw);
                let Ok(Some(head)) = codec::parse_request(&raw, 8192) else {
                    continue;
                };
                accepted += 1;
                let map = raw_fields(&raw, &head.meta).to_map();
                assert!(map.is_ok(), "byte {b:#04x} in {name:?}: {value:?}");
            }
        }
        // Tokens in names, and in values everything visible, tab and obs-text.
        assert!(accepted > 250, "{accepted}");
    }

    #[test]
    fn chunked_bodies_decode_with_their_trailers() {
        let body = b"3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nA: 1\r\nB: two\r\n\r\n";
        for split in 0..body.len() {
            let mut s = ChunkedScanner::default();
            let mut d = Decoded::default();
            let a = s.scan_into(&body[..split], &mut d).unwrap();
            let b = s.scan_into(&body[a.consumed..], &mut d).unwrap();
            assert!(b.done, "split {split}");
            assert_eq!(&d.data[..], b"abcde", "split {split}");
            assert_eq!(d.trailers, b"A: 1\r\nB: two\r\n", "split {split}");
            let map = parse_trailers(&d.trailers).unwrap();
            assert_eq!(map.get("b").unwrap(), "two");
        }
    }
}
