//! Tests of the whole module: real client bytes, a schema-driven request encoder over every
//! version of every topic-bearing API, hand-built requests, malformed input, and error responses
//! decoded back.

use super::api::{api, apis, TopicKind};
use super::request::{parse_request, Parsed, Request, RequestError, Topics};
use super::response::{
    denial_code, error_response, ResponseError, CLUSTER_AUTHORIZATION_FAILED,
    TOPIC_AUTHORIZATION_FAILED,
};
use super::schema::{Elem, Field, Prim, Role, Type};
use super::wire::{ParseError, Reader, TopicId};

// ---------------------------------------------------------------------------------------------
// A small hand encoder, independent of the layouts in messages.rs.

#[derive(Default)]
struct Buf(Vec<u8>);

impl Buf {
    fn i8(mut self, v: i8) -> Self {
        self.0.extend(v.to_be_bytes());
        self
    }
    fn i16(mut self, v: i16) -> Self {
        self.0.extend(v.to_be_bytes());
        self
    }
    fn i32(mut self, v: i32) -> Self {
        self.0.extend(v.to_be_bytes());
        self
    }
    fn i64(mut self, v: i64) -> Self {
        self.0.extend(v.to_be_bytes());
        self
    }
    fn raw(mut self, b: &[u8]) -> Self {
        self.0.extend_from_slice(b);
        self
    }
    fn uvarint(mut self, mut v: u32) -> Self {
        while v >= 0x80 {
            self.0.push((v as u8 & 0x7f) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
        self
    }
    /// Classic string (int16 length).
    fn s(self, s: Option<&str>) -> Self {
        match s {
            None => self.i16(-1),
            Some(s) => self.i16(s.len() as i16).raw(s.as_bytes()),
        }
    }
    /// Compact string.
    fn cs(self, s: Option<&str>) -> Self {
        match s {
            None => self.uvarint(0),
            Some(s) => self.uvarint(s.len() as u32 + 1).raw(s.as_bytes()),
        }
    }
    /// Classic array count.
    fn n(self, n: i32) -> Self {
        self.i32(n)
    }
    /// Compact array count (`None` = null).
    fn cn(self, n: Option<u32>) -> Self {
        self.uvarint(n.map_or(0, |n| n + 1))
    }
    /// An empty tagged-field section.
    fn tags(self) -> Self {
        self.uvarint(0)
    }
    /// A tagged-field section with unknown tags strait must skip.
    fn unknown_tags(self) -> Self {
        self.uvarint(2)
            .uvarint(0)
            .uvarint(3)
            .raw(b"abc")
            .uvarint(4321)
            .uvarint(0)
    }
    fn header(self, key: i16, version: i16, corr: i32, client: Option<&str>) -> Self {
        self.i16(key).i16(version).i32(corr).s(client)
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn known(frame: &[u8]) -> Request {
    match parse_request(frame) {
        Ok(Parsed::Known(r)) => r,
        other => panic!("expected a known request, got {other:?}"),
    }
}

fn listed(req: &Request) -> &super::request::TopicList {
    match &req.topics {
        Topics::Listed(l) => l,
        other => panic!("expected listed topics, got {other:?}"),
    }
}

const ID1: TopicId = TopicId([
    0x12, 0x3e, 0x45, 0x67, 0xe8, 0x9b, 0x12, 0xd3, 0xa4, 0x56, 0x42, 0x66, 0x14, 0x17, 0x40, 0x00,
]);

// ---------------------------------------------------------------------------------------------
// A test-only response decoder: walks a response layout, checks every byte is consumed, and
// returns the error codes with their depth (0 = top level) and the topic names echoed.

#[derive(Debug, Default)]
struct DecodedResponse {
    correlation_id: i32,
    errors: Vec<(usize, i16)>,
    names: Vec<Option<String>>,
    ids: Vec<TopicId>,
    partitions: Vec<i32>,
    messages: Vec<String>,
}

fn decode_response(req: &Request, frame: &[u8]) -> DecodedResponse {
    let api = req.api;
    let v = if api.key == 18 {
        0
    } else {
        req.header.api_version
    };
    let flexible = api.is_flexible(v);
    let mut r = Reader::new(frame);
    let mut out = DecodedResponse {
        correlation_id: r.i32("corr").unwrap(),
        ..Default::default()
    };
    if api.response_header_version(v) == 1 {
        r.skip_tagged_fields().unwrap();
    }
    decode_struct(&mut r, api.response.unwrap(), v, flexible, 0, &mut out);
    assert_eq!(r.remaining(), 0, "{} v{v}: trailing bytes", api.name);
    out
}

fn decode_struct(
    r: &mut Reader<'_>,
    fields: &[Field],
    v: i16,
    flex: bool,
    depth: usize,
    out: &mut DecodedResponse,
) {
    for f in fields.iter().filter(|f| f.present(v)) {
        match f.ty {
            Type::Prim(p) => match p {
                Prim::Int16 => {
                    let x = r.i16(f.name).unwrap();
                    if f.role == Role::Error {
                        out.errors.push((depth, x));
                    }
                }
                Prim::Int32 => {
                    let x = r.i32(f.name).unwrap();
                    if f.role == Role::Partition && depth > 0 {
                        out.partitions.push(x);
                    }
                }
                Prim::String => {
                    let s = r.string(flex, f.name).unwrap();
                    assert!(s.is_some() || f.is_nullable(v), "{}: null", f.name);
                    match f.role {
                        Role::TopicName | Role::ResourceName if depth > 0 => {
                            out.names.push(s.map(str::to_owned))
                        }
                        Role::ErrorMessage => out.messages.extend(s.map(str::to_owned)),
                        _ => {}
                    }
                }
                Prim::Bytes => {
                    let b = r.bytes(flex, f.name).unwrap();
                    assert!(b.is_some() || f.is_nullable(v), "{}: null", f.name);
                }
                Prim::Uuid => {
                    let id = r.uuid(f.name).unwrap();
                    if f.role == Role::TopicId && !id.is_zero() {
                        out.ids.push(id);
                    }
                }
                p => {
                    r.take(p.fixed_size().unwrap(), f.name).unwrap();
                }
            },
            Type::Array(elem) => {
                let n = r.count(flex, 1, f.name).unwrap();
                assert!(n.is_some() || f.is_nullable(v), "{}: null", f.name);
                for _ in 0..n.unwrap_or(0) {
                    match elem {
                        Elem::Prim(Prim::String) => {
                            r.string(flex, f.name).unwrap();
                        }
                        Elem::Prim(p) => {
                            r.take(p.fixed_size().unwrap(), f.name).unwrap();
                        }
                        Elem::Struct(inner) => decode_struct(r, inner, v, flex, depth + 1, out),
                    }
                }
            }
            Type::Struct(inner) => {
                if f.is_nullable(v) && r.i8(f.name).unwrap() < 0 {
                    continue;
                }
                decode_struct(r, inner, v, flex, depth, out);
            }
        }
    }
    if flex {
        r.skip_tagged_fields().unwrap();
    }
}

/// Denies `req` with its denial code and checks the response decodes to that code: per entry
/// when the request names topics the response can echo, else at the top level.
fn check_denial(req: &Request) -> Option<DecodedResponse> {
    let code = denial_code(req);
    let frame = match error_response(req, code, Some("denied by test")) {
        Ok(Some(frame)) => frame,
        Ok(None) => {
            assert!(!req.expects_response);
            return None;
        }
        Err(e) => {
            let label = format!("{} v{}", req.api.name, req.header.api_version);
            assert!(
                matches!(
                    e,
                    ResponseError::NoErrorField { .. } | ResponseError::NoLayout { .. }
                ),
                "{label}: {e}"
            );
            return None;
        }
    };
    let d = decode_response(req, &frame);
    assert_eq!(d.correlation_id, req.header.correlation_id);
    assert!(
        d.errors.iter().any(|&(_, c)| c == code),
        "{} v{}: no error {code} in {:?}",
        req.api.name,
        req.header.api_version,
        d.errors
    );
    assert!(d.errors.iter().all(|&(_, c)| c == 0 || c == code));
    Some(d)
}

// ---------------------------------------------------------------------------------------------
// Real client bytes.

struct Vector {
    label: String,
    frame: Vec<u8>,
    names: Option<Vec<String>>,
    ids: usize,
    all: bool,
    partitions: Vec<i32>,
}

fn kafka_python_vectors() -> Vec<Vector> {
    include_str!("testdata/kafka-python-requests.txt")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let c: Vec<&str> = l.split(" | ").collect();
            assert_eq!(c.len(), 6, "{l}");
            Vector {
                label: c[0].to_owned(),
                frame: hex(c[1]),
                names: (c[2] != "-").then(|| {
                    c[2].split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect()
                }),
                ids: c[3].parse().unwrap(),
                all: c[4] == "true",
                partitions: c[5]
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(|s| s.parse().unwrap())
                    .collect(),
            }
        })
        .collect()
}

#[test]
fn kafka_python_requests_parse_to_the_topics_they_were_built_with() {
    let vectors = kafka_python_vectors();
    assert!(vectors.len() >= 50);
    for v in &vectors {
        let req = known(&v.frame);
        assert!(req
            .header
            .client_id
            .as_deref()
            .unwrap()
            .starts_with("kafka-python"));
        match (&v.names, &req.topics) {
            (None, Topics::None) => {}
            (Some(names), Topics::Listed(list)) => {
                assert_eq!(&list.names().collect::<Vec<_>>(), names, "{}", v.label);
                assert_eq!(list.ids().count(), v.ids, "{}", v.label);
                assert_eq!(list.all, v.all, "{}", v.label);
                let parts: Vec<i32> = list
                    .entries
                    .iter()
                    .flat_map(|e| e.partitions.clone())
                    .collect();
                assert_eq!(parts, v.partitions, "{}", v.label);
            }
            (want, got) => panic!("{}: want {want:?}, got {got:?}", v.label),
        }
        assert_eq!(
            req.expects_response,
            !v.label.contains("acks=0"),
            "{}",
            v.label
        );
        check_denial(&req);
    }
}

#[test]
fn truncated_real_requests_are_errors_never_panics() {
    for v in kafka_python_vectors() {
        let req = known(&v.frame);
        for cut in 0..v.frame.len() {
            let result = parse_request(&v.frame[..cut]);
            if cut < 8 {
                assert!(
                    matches!(result, Err(RequestError::Header(_))),
                    "{} cut {cut}",
                    v.label
                );
            } else if req.api.topics == TopicKind::Extracted {
                // Every field is mandatory: a strict prefix cannot be a whole request.
                assert!(result.is_err(), "{} cut at {cut} parsed", v.label);
            }
        }
    }
}

#[test]
fn flipped_bytes_in_real_requests_never_panic() {
    for v in kafka_python_vectors() {
        for i in 0..v.frame.len() {
            for x in [0x01u8, 0x80, 0xff] {
                let mut frame = v.frame.clone();
                frame[i] ^= x;
                if let Ok(Parsed::Known(req)) = parse_request(&frame) {
                    let _ = error_response(&req, denial_code(&req), None);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Hand-built requests.

#[test]
fn produce_v9_flexible_with_unknown_tags_and_acks() {
    let frame = Buf::default()
        .header(0, 9, 7, Some("rdkafka"))
        .unknown_tags()
        .cs(None) // transactional id
        .i16(-1) // acks
        .i32(30_000)
        .cn(Some(1))
        .cs(Some("orders"))
        .cn(Some(2))
        .i32(0)
        .cs(Some("record batch bytes")) // records: compact bytes, same encoding
        .unknown_tags()
        .i32(4)
        .uvarint(0) // null records
        .tags()
        .unknown_tags() // topic
        .tags()
        .0;
    let req = known(&frame);
    assert_eq!(req.header.correlation_id, 7);
    assert_eq!(req.header.client_id.as_deref(), Some("rdkafka"));
    let list = listed(&req);
    assert_eq!(list.names().collect::<Vec<_>>(), ["orders"]);
    assert_eq!(list.entries[0].partitions, [0, 4]);
    assert!(req.expects_response);

    let frame = Buf::default()
        .header(0, 3, 1, None)
        .s(None)
        .i16(0) // acks=0
        .i32(1000)
        .n(1)
        .s(Some("t"))
        .n(1)
        .i32(0)
        .i32(-1)
        .0;
    let req = known(&frame);
    assert!(!req.expects_response);
    assert_eq!(
        error_response(&req, TOPIC_AUTHORIZATION_FAILED, None),
        Ok(None)
    );
}

#[test]
fn fetch_v13_ids_and_forgotten_topics_are_not_accessed() {
    let frame = Buf::default()
        .header(1, 13, 9, Some("java"))
        .tags()
        .i32(-1) // replica id
        .i32(500)
        .i32(1)
        .i32(1 << 20)
        .i8(0)
        .i32(0)
        .i32(-1)
        .cn(Some(1))
        .raw(&ID1.0)
        .cn(Some(1))
        .i32(2) // partition
        .i32(-1)
        .i64(100)
        .i32(-1)
        .i64(-1)
        .i32(1 << 20)
        .tags()
        .tags()
        .cn(Some(1)) // forgotten
        .raw(&[9; 16])
        .cn(Some(1))
        .i32(5)
        .tags()
        .cs(Some("rack"))
        .unknown_tags()
        .0;
    let req = known(&frame);
    let list = listed(&req);
    assert_eq!(list.entries.len(), 1, "forgotten topics are not collected");
    assert_eq!(list.entries[0].id, Some(ID1));
    assert_eq!(list.entries[0].name, None);
    assert_eq!(list.entries[0].partitions, [2]);
    assert_eq!(ID1.to_string(), "Ej5FZ-ibEtOkVkJmFBdAAA");

    // Denied: the topic id and partition come back with error 29, top-level error 0, session 0.
    let frame = error_response(&req, 29, None).unwrap().unwrap();
    let want = Buf::default()
        .i32(9)
        .tags() // header v1
        .i32(0) // throttle
        .i16(0) // top-level error
        .i32(0) // session id
        .cn(Some(1))
        .raw(&ID1.0)
        .cn(Some(1))
        .i32(2)
        .i16(29)
        .i64(-1) // high watermark
        .i64(-1) // last stable offset
        .i64(-1) // log start offset
        .cn(Some(0)) // aborted transactions
        .i32(-1) // preferred read replica
        .uvarint(0) // records: null
        .tags()
        .tags()
        .tags()
        .0;
    assert_eq!(frame, want);
}

#[test]
fn metadata_versions_and_all_topics() {
    // v0: empty list = all topics.
    let req = known(&Buf::default().header(3, 0, 1, Some("c")).n(0).0);
    assert!(listed(&req).all);
    // v4: empty list = no topics, null = all.
    let req = known(&Buf::default().header(3, 4, 1, Some("c")).n(0).i8(1).0);
    assert!(!listed(&req).all && listed(&req).entries.is_empty());
    let req = known(&Buf::default().header(3, 4, 1, Some("c")).n(-1).i8(1).0);
    assert!(listed(&req).all);
    // An all-topics Metadata before v13 has no error field to carry a denial.
    assert_eq!(
        error_response(&req, 29, None),
        Err(ResponseError::NoErrorField {
            api: "Metadata",
            version: 4
        })
    );
    // v13: the top-level error code carries it.
    let req = known(
        &Buf::default()
            .header(3, 13, 1, Some("c"))
            .tags()
            .cn(None)
            .i8(0)
            .i8(0)
            .tags()
            .0,
    );
    assert!(listed(&req).all);
    let d = check_denial(&req).unwrap();
    assert_eq!(d.errors, [(0, 29)]);
    // v12 by id: the name is null.
    let req = known(
        &Buf::default()
            .header(3, 12, 1, Some("c"))
            .tags()
            .cn(Some(1))
            .raw(&ID1.0)
            .cs(None)
            .tags()
            .i8(0)
            .i8(0)
            .tags()
            .0,
    );
    assert_eq!(listed(&req).ids().collect::<Vec<_>>(), [ID1]);
    let d = check_denial(&req).unwrap();
    assert_eq!(d.ids, [ID1]);
    assert_eq!(d.names, [None]);
    assert_eq!(d.errors, [(1, 29)]);
}

#[test]
fn controlled_shutdown_v0_has_no_client_id() {
    let req = known(&Buf::default().i16(7).i16(0).i32(5).i32(1001).0);
    assert_eq!(req.header.client_id, None);
    assert_eq!(req.topics, Topics::None);
    // v1 has one.
    let req = known(&Buf::default().header(7, 1, 5, Some("broker-1")).i32(1001).0);
    assert_eq!(req.header.client_id.as_deref(), Some("broker-1"));
}

#[test]
fn config_resources_only_topics_count() {
    let frame = Buf::default()
        .header(32, 4, 3, Some("admin"))
        .tags()
        .cn(Some(3))
        .i8(4) // broker
        .cs(Some("1"))
        .cn(None)
        .tags()
        .i8(2) // topic
        .cs(Some("orders"))
        .cn(Some(1))
        .cs(Some("retention.ms"))
        .tags()
        .i8(32) // group
        .cs(Some("g"))
        .cn(None)
        .tags()
        .i8(0)
        .i8(0)
        .tags()
        .0;
    let req = known(&frame);
    assert_eq!(listed(&req).names().collect::<Vec<_>>(), ["orders"]);
    let d = check_denial(&req).unwrap();
    assert_eq!(d.names, [Some("orders".to_owned())]);
    assert_eq!(d.errors, [(1, 29)]);
    assert_eq!(d.messages, ["denied by test"]);
}

#[test]
fn offset_fetch_v8_echoes_groups() {
    let frame = Buf::default()
        .header(9, 8, 11, Some("c"))
        .tags()
        .cn(Some(2))
        .cs(Some("g1"))
        .cn(Some(1))
        .cs(Some("orders"))
        .cn(Some(2))
        .i32(0)
        .i32(1)
        .tags()
        .tags()
        .cs(Some("g2"))
        .cn(None) // all topics of g2
        .tags()
        .i8(1)
        .tags()
        .0;
    let req = known(&frame);
    let list = listed(&req);
    assert!(list.all);
    assert_eq!(list.names().collect::<Vec<_>>(), ["orders"]);
    let frame = error_response(&req, 29, None).unwrap().unwrap();
    let want = Buf::default()
        .i32(11)
        .tags()
        .i32(0) // throttle
        .cn(Some(2))
        .cs(Some("g1"))
        .cn(Some(1))
        .cs(Some("orders"))
        .cn(Some(2))
        .i32(0)
        .i64(-1)
        .i32(-1)
        .cs(None)
        .i16(29)
        .tags()
        .i32(1)
        .i64(-1)
        .i32(-1)
        .cs(None)
        .i16(29)
        .tags()
        .tags()
        .i16(0) // g1: its topics carry the error
        .tags()
        .cs(Some("g2"))
        .cn(Some(0))
        .i16(29) // g2 (all topics): the group carries it
        .tags()
        .tags()
        .0;
    assert_eq!(frame, want);
}

#[test]
fn produce_v3_error_response_bytes() {
    let frame = Buf::default()
        .header(0, 3, 42, Some("c"))
        .s(Some("txn"))
        .i16(1)
        .i32(1000)
        .n(2)
        .s(Some("a"))
        .n(1)
        .i32(3)
        .i32(0)
        .s(Some("b"))
        .n(0)
        .0;
    let req = known(&frame);
    let got = error_response(&req, 29, Some("ignored: v3 has no message"))
        .unwrap()
        .unwrap();
    let want = Buf::default()
        .i32(42)
        .n(2)
        .s(Some("a"))
        .n(1)
        .i32(3)
        .i16(29)
        .i64(-1) // base offset
        .i64(-1) // log append time
        .s(Some("b"))
        .n(0)
        .i32(0) // throttle
        .0;
    assert_eq!(got, want);
}

#[test]
fn non_topic_apis_get_a_top_level_cluster_error() {
    // ApiVersions v3: flexible body, but always response header v0.
    let req = known(
        &Buf::default()
            .header(18, 3, 77, Some("rdkafka"))
            .tags()
            .cs(Some("librdkafka"))
            .cs(Some("2.6.1"))
            .tags()
            .0,
    );
    assert_eq!(req.topics, Topics::None);
    assert_eq!(denial_code(&req), CLUSTER_AUTHORIZATION_FAILED);
    let got = error_response(&req, 31, None).unwrap().unwrap();
    // Header v0, body v0 (error, empty int32-counted array), as brokers answer errors.
    let want = Buf::default().i32(77).i16(31).n(0).0;
    assert_eq!(got, want);

    // DescribeGroups has errors per group only: no error response.
    let req = known(
        &Buf::default()
            .header(15, 5, 1, Some("c"))
            .tags()
            .cn(Some(0))
            .i8(0)
            .tags()
            .0,
    );
    assert!(matches!(
        error_response(&req, 31, None),
        Err(ResponseError::NoErrorField { .. })
    ));
    // Inter-broker APIs have no layout at all.
    let req = known(&Buf::default().header(4, 0, 1, Some("c")).0);
    assert_eq!(req.topics, Topics::Opaque);
    assert!(matches!(
        error_response(&req, 29, None),
        Err(ResponseError::NoLayout { key: 4, .. })
    ));
}

#[test]
fn unknown_apis_and_future_versions_are_reported_as_such() {
    match parse_request(
        &Buf::default()
            .header(999, 0, 5, Some("x"))
            .raw(b"whatever")
            .0,
    ) {
        Ok(Parsed::UnknownApi(h)) => {
            assert_eq!((h.api_key, h.correlation_id), (999, 5));
            assert_eq!(h.client_id.as_deref(), Some("x"));
        }
        other => panic!("{other:?}"),
    }
    for (key, version) in [(0, 14), (1, 19), (18, 5), (3, -1), (-1, 0), (i16::MAX, 3)] {
        let frame = Buf::default().header(key, version, 1, None).tags().0;
        match parse_request(&frame).unwrap() {
            Parsed::UnknownVersion { header, api } => {
                assert_eq!((api.key, header.api_version), (key, version));
            }
            Parsed::UnknownApi(h) => assert!(api(key).is_none(), "{h:?}"),
            Parsed::Known(r) => panic!("{key} v{version} known: {r:?}"),
        }
    }
}

#[test]
fn hostile_lengths_are_refused_without_allocating() {
    // Produce v3 claiming 2^31-1 topics.
    let frame = Buf::default()
        .header(0, 3, 1, None)
        .s(None)
        .i16(1)
        .i32(0)
        .n(i32::MAX)
        .0;
    let err = parse_request(&frame).unwrap_err();
    assert!(matches!(
        err,
        RequestError::Body {
            source: ParseError::TooManyElements { .. },
            ..
        }
    ));
    assert!(err.to_string().contains("Produce v3"), "{err}");
    // A topic name claiming 32767 bytes.
    let frame = Buf::default()
        .header(0, 3, 1, None)
        .s(None)
        .i16(1)
        .i32(0)
        .n(1)
        .i16(i16::MAX);
    let frame = frame.raw(&[0; 8]).0;
    assert!(matches!(
        parse_request(&frame),
        Err(RequestError::Body {
            source: ParseError::Truncated { .. },
            ..
        })
    ));
    // A negative array count other than -1, and a null non-nullable topic name.
    let frame = Buf::default()
        .header(0, 3, 1, None)
        .s(None)
        .i16(1)
        .i32(0)
        .n(-2)
        .0;
    assert!(parse_request(&frame).is_err());
    let frame = Buf::default()
        .header(0, 3, 1, None)
        .s(None)
        .i16(1)
        .i32(0)
        .n(1)
        .s(None)
        .n(0)
        .0;
    assert!(matches!(
        parse_request(&frame),
        Err(RequestError::Body {
            source: ParseError::UnexpectedNull { .. },
            ..
        })
    ));
    // A flexible tagged-field section claiming 2^28 fields.
    let frame = Buf::default().header(18, 3, 1, None).uvarint(1 << 28).0;
    assert!(matches!(
        parse_request(&frame),
        Err(RequestError::Header(_))
    ));
    // Invalid UTF-8 in a client id.
    let frame = Buf::default().header(18, 0, 1, None).0;
    let mut bad = frame[..8].to_vec();
    bad.extend([0, 2, 0xc3, 0x28]);
    assert!(matches!(
        parse_request(&bad),
        Err(RequestError::Header(ParseError::BadUtf8 { .. }))
    ));
}

// ---------------------------------------------------------------------------------------------
// Every version of every topic-bearing API, through a schema-driven encoder.

/// Encodes a request body from a layout, naming topics `t0`, `t1`, … and ids 1, 2, …,
/// partitions 7 and 8, config resources of type TOPIC; flexible versions get unknown tags.
struct Synth {
    v: i16,
    flex: bool,
    names: usize,
    buf: Buf,
}

impl Synth {
    fn fields(&mut self, fields: &[Field]) {
        let v = self.v;
        for f in fields.iter().filter(|f| f.present(v)) {
            match f.ty {
                Type::Prim(p) => self.prim(f, p),
                Type::Array(elem) => {
                    let n = match (elem, f.role) {
                        (Elem::Prim(Prim::String), Role::TopicNames) => 2,
                        (Elem::Prim(Prim::Int32), Role::Partitions) => 2,
                        (Elem::Struct(_), _) => 1,
                        _ => 0,
                    };
                    self.count(n);
                    for i in 0..n {
                        match elem {
                            Elem::Struct(inner) => self.fields(inner),
                            Elem::Prim(Prim::String) => {
                                let name = self.next_name();
                                self.string(Some(&name));
                            }
                            Elem::Prim(_) => self.put(|b| b.i32(7 + i as i32)),
                        }
                    }
                }
                Type::Struct(inner) => {
                    if f.is_nullable(v) {
                        self.put(|b| b.i8(1));
                    }
                    self.fields(inner);
                }
            }
        }
        if self.flex {
            self.put(Buf::unknown_tags);
        }
    }

    fn put(&mut self, f: impl FnOnce(Buf) -> Buf) {
        self.buf = f(std::mem::take(&mut self.buf));
    }

    fn next_name(&mut self) -> String {
        self.names += 1;
        format!("t{}", self.names - 1)
    }

    fn count(&mut self, n: u32) {
        let flex = self.flex;
        self.put(|b| if flex { b.cn(Some(n)) } else { b.n(n as i32) });
    }

    fn string(&mut self, s: Option<&str>) {
        let flex = self.flex;
        self.put(|b| if flex { b.cs(s) } else { b.s(s) });
    }

    fn prim(&mut self, f: &Field, p: Prim) {
        match (p, f.role) {
            (Prim::String, Role::TopicName | Role::ResourceName) => {
                let name = self.next_name();
                self.string(Some(&name));
            }
            (Prim::String, _) => self.string(Some("x")),
            (Prim::Bytes, _) => {
                let flex = self.flex;
                self.put(|b| {
                    if flex {
                        b.uvarint(4).raw(b"rec")
                    } else {
                        b.i32(3).raw(b"rec")
                    }
                });
            }
            (Prim::Uuid, Role::TopicId) => {
                let mut id = [0u8; 16];
                id[15] = self.names as u8 + 1;
                self.put(|b| b.raw(&id));
            }
            (Prim::Int8, Role::ResourceType) => self.put(|b| b.i8(2)),
            (Prim::Int16, Role::Acks) => self.put(|b| b.i16(1)),
            (Prim::Int32, Role::Partition) => self.put(|b| b.i32(7)),
            (p, _) => {
                let n = p.fixed_size().unwrap();
                self.put(|b| b.raw(&vec![0; n]));
            }
        }
    }
}

fn synth_request(key: i16, v: i16, corr: i32) -> Vec<u8> {
    let info = api(key).unwrap();
    let flex = info.is_flexible(v);
    let mut s = Synth {
        v,
        flex,
        names: 0,
        buf: Buf::default().header(key, v, corr, Some("synth")),
    };
    if info.request_header_version(v) == 2 {
        s.put(Buf::unknown_tags);
    }
    s.fields(info.request.unwrap());
    s.buf.0
}

/// Every (key, version) with a request layout.
fn every_extracted_version() -> impl Iterator<Item = (i16, i16)> {
    apis()
        .iter()
        .filter(|a| a.topics == TopicKind::Extracted)
        .flat_map(|a| (0..=a.max_version).map(move |v| (a.key, v)))
}

#[test]
fn every_version_of_every_topic_api_round_trips() {
    let mut count = 0;
    for (key, v) in every_extracted_version() {
        let frame = synth_request(key, v, 1000 + i32::from(v));
        let req = known(&frame);
        let label = format!("{} v{v}", req.api.name);
        let list = listed(&req);
        assert!(!list.entries.is_empty(), "{label}: no topics");
        assert!(!list.all, "{label}");
        for e in &list.entries {
            assert!(e.name.is_some() || e.id.is_some(), "{label}: {e:?}");
        }
        assert!(list.names().all(|n| n.starts_with('t')), "{label}");
        // Truncation anywhere in the body is an error.
        for cut in [frame.len() - 1, frame.len() / 2, 9] {
            assert!(
                parse_request(&frame[..cut]).is_err(),
                "{label} cut at {cut}"
            );
        }
        if let Some(d) = check_denial(&req) {
            if req.api.key != 3 || v >= 1 {
                // The topics come back (by name or id) except where the response has no topics.
                let echoed = d.names.iter().flatten().count() + d.ids.len();
                let per_topic = d.errors.iter().any(|&(depth, c)| depth > 0 && c == 29);
                assert!(!per_topic || echoed > 0, "{label}: {d:?}");
            }
        }
        count += 1;
    }
    assert!(count > 150, "{count}");
}

#[test]
fn denials_carry_the_topics_for_the_main_apis() {
    // At every version: Produce, Fetch, ListOffsets, Metadata, OffsetCommit, OffsetFetch,
    // CreateTopics, DeleteTopics, DeleteRecords answer per topic (or partition).
    for key in [0, 1, 2, 3, 8, 9, 19, 20, 21] {
        let info = api(key).unwrap();
        for v in 0..=info.max_version {
            let req = known(&synth_request(key, v, 5));
            let d = check_denial(&req).unwrap_or_else(|| panic!("{} v{v}", info.name));
            let label = format!("{} v{v}", info.name);
            assert!(
                d.errors.iter().any(|&(depth, c)| depth > 0 && c == 29),
                "{label}: {d:?}"
            );
            assert!(
                d.errors.iter().all(|&(depth, c)| depth > 0 || c == 0),
                "{label}: {d:?}"
            );
            let list = listed(&req);
            let echoed: Vec<_> = d.names.iter().flatten().cloned().collect();
            assert_eq!(echoed, list.names().collect::<Vec<_>>(), "{label}");
            assert_eq!(d.ids, list.ids().collect::<Vec<_>>(), "{label}");
        }
    }
}

#[test]
fn every_api_and_version_either_answers_or_says_why() {
    // Non-topic and opaque APIs: a minimal header-only request is enough to pick the layout.
    let mut built = 0;
    let mut refused = Vec::new();
    for info in apis().iter().filter(|a| a.topics != TopicKind::Extracted) {
        for v in 0..=info.max_version {
            let mut frame = Buf::default().header(info.key, v, 3, Some("c"));
            if info.request_header_version(v) == 2 {
                frame = frame.tags();
            }
            if info.request_header_version(v) == 0 {
                frame = Buf::default().i16(info.key).i16(v).i32(3);
            }
            let req = known(&frame.0);
            match check_denial(&req) {
                Some(d) => {
                    assert_eq!(d.errors.iter().filter(|&&(_, c)| c != 0).count(), 1);
                    built += 1;
                }
                None => refused.push(format!("{} v{v}", info.name)),
            }
        }
    }
    assert!(built > 100, "{built}");
    // Spot checks of both lists.
    assert!(refused.contains(&"DescribeGroups v0".to_owned()));
    assert!(refused.contains(&"LeaderAndIsr v7".to_owned()));
    assert!(!refused.iter().any(|r| r.starts_with("FindCoordinator v0")));
    assert!(!refused.iter().any(|r| r.starts_with("SaslHandshake")));
}

#[test]
fn pseudo_random_garbage_never_panics() {
    // xorshift64*, fixed seed: reproducible.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let keys: Vec<(i16, i16)> = apis().iter().map(|a| (a.key, a.max_version)).collect();
    for _ in 0..20_000 {
        let (key, max) = keys[(next() % keys.len() as u64) as usize];
        let v = (next() % (max as u64 + 2)) as i16;
        let len = (next() % 96) as usize;
        let mut frame = Buf::default().i16(key).i16(v).i32(1).0;
        frame.extend((0..len).map(|_| next() as u8));
        if let Ok(Parsed::Known(req)) = parse_request(&frame) {
            let _ = error_response(&req, denial_code(&req), Some("x"));
        }
        // And a valid request with garbage spliced in.
        if let Some(info) = api(key).filter(|a| a.request.is_some()) {
            let mut frame = synth_request(key, v.min(info.max_version), 1);
            let at = 8 + (next() as usize % (frame.len() - 8));
            frame[at] = next() as u8;
            if let Ok(Parsed::Known(req)) = parse_request(&frame) {
                let _ = error_response(&req, 29, None);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The table.

#[test]
fn the_table_is_dense_and_consistent() {
    for (i, a) in apis().iter().enumerate() {
        assert_eq!(a.key as usize, i, "{}", a.name);
        assert_eq!(api(a.key).map(|x| x.key), Some(a.key));
        assert!(a.max_version >= 0);
        if let Some(f) = a.flexible_from {
            assert!(f <= a.max_version, "{}", a.name);
        }
        assert_eq!(
            a.topics == TopicKind::Extracted,
            a.request.is_some(),
            "{}",
            a.name
        );
    }
    assert!(api(-1).is_none() && api(1000).is_none());
    // The APIs the brief asks topics of, by key.
    for key in [
        0, 1, 2, 3, 8, 9, 19, 20, 21, 23, 24, 28, 32, 33, 34, 35, 37, 43, 44, 45, 46, 47, 61,
    ] {
        let a = api(key).unwrap();
        assert_eq!(a.topics, TopicKind::Extracted, "{}", a.name);
        assert!(a.has_response_layout(), "{}", a.name);
    }
    let produce = api(0).unwrap();
    assert_eq!((produce.max_version, produce.flexible_from), (13, Some(9)));
    assert_eq!(produce.request_header_version(8), 1);
    assert_eq!(produce.request_header_version(9), 2);
    assert_eq!(produce.response_header_version(9), 1);
    let versions = api(18).unwrap();
    assert_eq!(versions.request_header_version(3), 2);
    assert_eq!(versions.response_header_version(3), 0);
    assert_eq!(api(7).unwrap().request_header_version(0), 0);
    assert_eq!(api(17).unwrap().flexible_from, None);
}

#[test]
fn metadata_responses_give_topic_ids() {
    use super::metadata::{topic_ids, TopicIdName};
    // v12, header v1: brokers [], cluster id, controller, topics [ok with id, unknown with null
    // name, zero id], top-level tags.
    let frame = Buf::default()
        .i32(5)
        .tags()
        .i32(0)
        .cn(Some(1))
        .i32(1)
        .cs(Some("broker-1"))
        .i32(9092)
        .cs(None)
        .tags()
        .cs(Some("cluster"))
        .i32(1)
        .cn(Some(3))
        .i16(0)
        .cs(Some("orders"))
        .raw(&ID1.0)
        .i8(0)
        .cn(Some(1))
        .i16(0)
        .i32(0)
        .i32(1)
        .i32(0)
        .cn(Some(1))
        .i32(1)
        .cn(Some(1))
        .i32(1)
        .cn(Some(0))
        .tags()
        .i32(0)
        .unknown_tags()
        .i16(100)
        .cs(None)
        .raw(&[7; 16])
        .i8(0)
        .cn(Some(0))
        .i32(0)
        .tags()
        .i16(0)
        .cs(Some("nameless"))
        .raw(&[0; 16])
        .i8(0)
        .cn(Some(0))
        .i32(0)
        .tags()
        .unknown_tags()
        .0;
    assert_eq!(
        topic_ids(&frame, 12).unwrap(),
        [TopicIdName {
            id: ID1,
            name: "orders".to_owned()
        }]
    );
    assert!(topic_ids(&frame[..frame.len() - 3], 12).is_err());
    assert!(topic_ids(&frame, 14).is_err());
    // Before v10 there are no ids (v9 is flexible: header v1).
    assert_eq!(topic_ids(&Buf::default().i32(5).tags().0, 9).unwrap(), []);
}

/// Writes the fuzz seed corpus (`proxy/fuzz/corpus/kafka_request`, see proxy/fuzz/README.md):
/// size-prefixed request frames from the kafka-python vectors and from the schema-driven encoder
/// at each topic API's highest version.
#[test]
#[ignore = "writes files; run with STRAIT_KAFKA_CORPUS_DIR set"]
fn write_fuzz_corpus() {
    let Ok(dir) = std::env::var("STRAIT_KAFKA_CORPUS_DIR") else {
        return;
    };
    let dir = std::path::Path::new(&dir);
    std::fs::create_dir_all(dir).unwrap();
    let mut frames: Vec<(String, Vec<u8>)> = kafka_python_vectors()
        .into_iter()
        .map(|v| (v.label, v.frame))
        .collect();
    for a in apis().iter().filter(|a| a.topics == TopicKind::Extracted) {
        frames.push((
            format!("synth {} v{}", a.name, a.max_version),
            synth_request(a.key, a.max_version, 1),
        ));
    }
    for (label, frame) in frames {
        let name: String = label
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        let mut bytes = (frame.len() as u32).to_be_bytes().to_vec();
        bytes.extend(frame);
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}
