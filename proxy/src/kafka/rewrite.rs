//! Response rewriting for a proxy in the middle of a Kafka connection.
//!
//! - [`rewrite_brokers`]: Metadata, FindCoordinator, DescribeCluster, ShareFetch and
//!   ShareAcknowledge responses advertise broker `host:port`s that clients then connect to. A
//!   proxy that must stay in the path moves every advertised broker to its own address.
//! - [`cap_api_versions`]: lowers the maximum versions an ApiVersions response offers, so that
//!   clients never pick a version of those APIs that strait cannot rewrite.
//!
//! Both edit the frame in place of the fields they change and copy every other byte, tagged
//! fields included, as the broker sent it: the broker's encoding is never re-derived from the
//! layouts, so fields strait does not know survive.

use super::api::{self, ApiInfo, API_VERSIONS};
use super::extract::{self, BrokerAt};
use super::wire::{ParseError, Reader, Writer};

/// Metadata.
pub const METADATA: i16 = api::METADATA;
/// FindCoordinator.
pub const FIND_COORDINATOR: i16 = 10;
/// DescribeCluster.
pub const DESCRIBE_CLUSTER: i16 = 60;
/// ShareFetch (its `NodeEndpoints` name the leaders of partitions that moved).
pub const SHARE_FETCH: i16 = 78;
/// ShareAcknowledge (`NodeEndpoints`, as ShareFetch).
pub const SHARE_ACKNOWLEDGE: i16 = 79;

/// The APIs whose responses advertise broker addresses in their (non-tagged) fields.
///
/// Produce v10+ and Fetch v16+ responses may also carry broker addresses, in a tagged field
/// (`NodeEndpoints`, KIP-951, sent with `NOT_LEADER_OR_FOLLOWER` errors); tagged fields are
/// copied, not rewritten (docs/kafka.md, "Limits").
pub const ADVERTISING_APIS: [i16; 5] = [
    METADATA,
    FIND_COORDINATOR,
    DESCRIBE_CLUSTER,
    SHARE_FETCH,
    SHARE_ACKNOWLEDGE,
];

/// Whether responses of `api_key` advertise broker addresses ([`ADVERTISING_APIS`]).
pub fn advertises_brokers(api_key: i16) -> bool {
    ADVERTISING_APIS.contains(&api_key)
}

/// One broker address a response advertises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advertised {
    pub host: String,
    pub port: i32,
}

/// Why a response could not be rewritten. The proxy must not forward it unchanged (the client
/// would connect to the broker directly): it closes the connection instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RewriteError {
    #[error("API key {0} responses advertise no brokers")]
    NotAdvertising(i16),
    #[error("Kafka {api} v{version} is not a version strait knows: it cannot find the broker addresses the response advertises")]
    UnknownVersion { api: &'static str, version: i16 },
    #[error("malformed Kafka {api} v{version} response: {source}")]
    Malformed {
        api: &'static str,
        version: i16,
        source: ParseError,
    },
    #[error("advertised host is {0} bytes, more than a Kafka string can hold (32767)")]
    HostTooLong(usize),
}

/// The known response layout of an advertising API at `version`.
fn layout(
    api_key: i16,
    version: i16,
) -> Result<(&'static ApiInfo, &'static [super::schema::Field]), RewriteError> {
    if !advertises_brokers(api_key) {
        return Err(RewriteError::NotAdvertising(api_key));
    }
    let info = api::api(api_key).ok_or(RewriteError::NotAdvertising(api_key))?;
    match info.response {
        Some(fields) if info.supports(version) => Ok((info, fields)),
        _ => Err(RewriteError::UnknownVersion {
            api: info.name,
            version,
        }),
    }
}

/// Walks a response frame payload (header and body, without the 4-byte size): the offset of the
/// body and the brokers it advertises (spans relative to the body).
fn walk(
    frame: &[u8],
    api_key: i16,
    version: i16,
) -> Result<(&'static ApiInfo, usize, Vec<BrokerAt>), RewriteError> {
    let (info, fields) = layout(api_key, version)?;
    let malformed = |source| RewriteError::Malformed {
        api: info.name,
        version,
        source,
    };
    let (start, walked) =
        extract::walk_frame(frame, info, fields, version, false).map_err(malformed)?;
    Ok((info, start, walked.brokers))
}

/// The broker addresses a response of `api_key` at `version` advertises, in wire order
/// (entries without an address, such as a coordinator lookup that failed, have an empty host).
pub fn advertised(
    frame: &[u8],
    api_key: i16,
    version: i16,
) -> Result<Vec<Advertised>, RewriteError> {
    let (_, _, brokers) = walk(frame, api_key, version)?;
    Ok(brokers
        .into_iter()
        .map(|b| Advertised {
            host: b.host,
            port: b.port,
        })
        .collect())
}

/// Rewrites every broker address a response of `api_key` at `version` advertises to
/// `host:port`. Entries with an empty host (no broker: a failed coordinator lookup) are left as
/// they are. Returns `None` when nothing changes (no brokers, or all already `host:port`).
pub fn rewrite_brokers(
    frame: &[u8],
    api_key: i16,
    version: i16,
    host: &str,
    port: u16,
) -> Result<Option<Vec<u8>>, RewriteError> {
    if host.len() > i16::MAX as usize {
        return Err(RewriteError::HostTooLong(host.len()));
    }
    let (info, start, brokers) = walk(frame, api_key, version)?;
    let port = i32::from(port);
    let todo: Vec<&BrokerAt> = brokers
        .iter()
        .filter(|b| !b.host.is_empty() && b.port_at.is_some())
        .filter(|b| b.host != host || b.port != port)
        .collect();
    if todo.is_empty() {
        return Ok(None);
    }
    let mut host_bytes = Writer::default();
    host_bytes.string(info.is_flexible(version), Some(host));
    let mut out = Vec::with_capacity(frame.len() + todo.len() * host_bytes.buf.len());
    let mut copied = 0;
    for b in todo {
        let (h, p) = (b.host_span.clone(), b.port_at.unwrap_or_default());
        out.extend_from_slice(&frame[copied..start + h.start]);
        out.extend_from_slice(&host_bytes.buf);
        out.extend_from_slice(&frame[start + h.end..start + p]);
        out.extend_from_slice(&port.to_be_bytes());
        copied = start + p + 4;
    }
    out.extend_from_slice(&frame[copied..]);
    Ok(Some(out))
}

/// Why an ApiVersions response could not be capped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiVersionsError {
    #[error("ApiVersions v{0} is not a version strait knows")]
    UnknownVersion(i16),
    #[error("malformed Kafka ApiVersions v{version} response: {source}")]
    Malformed { version: i16, source: ParseError },
}

/// Lowers the `MaxVersion` of every API in an ApiVersions response (of `version`, the request's)
/// to `cap(api_key)` where that is lower. Returns `None` when nothing changes, or when the
/// response is an error (its list is then the v0 list of ApiVersions versions, which needs no
/// cap: the client asks again).
pub fn cap_api_versions(
    frame: &[u8],
    version: i16,
    cap: impl Fn(i16) -> Option<i16>,
) -> Result<Option<Vec<u8>>, ApiVersionsError> {
    let info = api::api(API_VERSIONS).filter(|a| a.supports(version));
    let Some(info) = info else {
        return Err(ApiVersionsError::UnknownVersion(version));
    };
    let malformed = |source| ApiVersionsError::Malformed { version, source };
    // The response header is always v0 for ApiVersions.
    let mut r = Reader::new(frame);
    r.i32("correlation_id").map_err(malformed)?;
    if r.i16("ErrorCode").map_err(malformed)? != 0 {
        return Ok(None);
    }
    let flexible = info.is_flexible(version);
    let min_elem = if flexible { 7 } else { 6 };
    let n = r
        .count(flexible, min_elem, "ApiKeys")
        .map_err(malformed)?
        .unwrap_or(0);
    let mut edits = Vec::new();
    for _ in 0..n {
        let key = r.i16("ApiKey").map_err(malformed)?;
        r.i16("MinVersion").map_err(malformed)?;
        let at = r.position();
        let max = r.i16("MaxVersion").map_err(malformed)?;
        if flexible {
            r.skip_tagged_fields().map_err(malformed)?;
        }
        // A broker whose minimum is above the cap then offers nothing usable (min > max): the
        // client fails rather than using a version strait cannot read.
        if let Some(c) = cap(key).filter(|&c| c < max) {
            edits.push((at, c));
        }
    }
    if edits.is_empty() {
        return Ok(None);
    }
    let mut out = frame.to_vec();
    for (at, c) in edits {
        out[at..at + 2].copy_from_slice(&c.to_be_bytes());
    }
    Ok(Some(out))
}

/// The cap for [`cap_api_versions`] that keeps the advertising APIs ([`ADVERTISING_APIS`])
/// within the versions strait can rewrite.
pub fn advertising_cap(api_key: i16) -> Option<i16> {
    if advertises_brokers(api_key) {
        api::api(api_key).map(|a| a.max_version)
    } else {
        None
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    struct Vector {
        api_key: i16,
        version: i16,
        broker: Vec<u8>,
        rewritten: Vec<u8>,
    }

    /// Responses encoded by kafka-python (testdata/gen_broker_responses.py).
    fn kafka_python() -> Vec<Vector> {
        include_str!("testdata/kafka-python-broker-responses.txt")
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| {
                let c: Vec<&str> = l.split(" | ").collect();
                assert_eq!(c.len(), 4, "{l}");
                Vector {
                    api_key: c[0].parse().unwrap(),
                    version: c[1].parse().unwrap(),
                    broker: hex(c[2]),
                    rewritten: hex(c[3].trim()),
                }
            })
            .collect()
    }

    const TO_HOST: &str = "127.0.0.1";
    const TO_PORT: u16 = 39092;

    #[test]
    fn kafka_python_responses_rewrite_byte_exactly() {
        let vectors = kafka_python();
        // Metadata v0–13, FindCoordinator v0–6, DescribeCluster v0–2.
        assert_eq!(vectors.len(), 14 + 7 + 3);
        for v in &vectors {
            let label = format!("api {} v{}", v.api_key, v.version);
            let before = advertised(&v.broker, v.api_key, v.version).unwrap();
            assert!(before.iter().any(|b| b.host != TO_HOST), "{label}");
            let out = rewrite_brokers(&v.broker, v.api_key, v.version, TO_HOST, TO_PORT)
                .unwrap()
                .unwrap_or_else(|| panic!("{label}: nothing rewritten"));
            assert_eq!(hex_of(&out), hex_of(&v.rewritten), "{label}");
            // Every broker with an address now has strait's; failed lookups stay empty.
            for b in advertised(&out, v.api_key, v.version).unwrap() {
                if b.host.is_empty() {
                    assert_eq!(b.port, -1, "{label}");
                } else {
                    assert_eq!((b.host.as_str(), b.port), (TO_HOST, 39092), "{label}");
                }
            }
            // Rewriting again changes nothing.
            assert_eq!(
                rewrite_brokers(&out, v.api_key, v.version, TO_HOST, TO_PORT).unwrap(),
                None,
                "{label}"
            );
        }
    }

    fn hex_of(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    /// A flexible Metadata v12 response by hand, with tagged fields in the header, in a broker,
    /// in a topic and at the top level: they must come through unchanged.
    fn metadata_v12(brokers: &[(&str, i32)], tags: bool) -> Vec<u8> {
        let mut w = Writer::default();
        let tagged = |w: &mut Writer, tag: u32, data: &[u8]| {
            if tags {
                w.uvarint(1);
                w.uvarint(tag);
                w.uvarint(data.len() as u32);
                w.buf.extend_from_slice(data);
            } else {
                w.uvarint(0);
            }
        };
        w.i32(42); // correlation id
        tagged(&mut w, 9, b"hdr");
        w.i32(0); // throttle
        w.length(true, true, Some(brokers.len()));
        for (i, (host, port)) in brokers.iter().enumerate() {
            w.i32(i as i32 + 1);
            w.string(true, Some(host));
            w.i32(*port);
            w.string(true, None); // rack
            tagged(&mut w, 7, &[0xde, 0xad]);
        }
        w.string(true, Some("cluster")); // cluster id
        w.i32(1); // controller
        w.length(true, true, Some(1)); // topics
        w.i16(0);
        w.string(true, Some("orders"));
        w.buf.extend_from_slice(&[7; 16]); // topic id
        w.i8(0); // internal
        w.length(true, true, Some(1)); // partitions
        w.i16(0);
        w.i32(0);
        w.i32(1);
        w.i32(5);
        for _ in 0..3 {
            w.length(true, true, Some(1));
            w.i32(1);
        }
        tagged(&mut w, 3, b"p");
        w.i32(i32::MIN); // topic authorized operations
        tagged(&mut w, 4, b"t");
        tagged(&mut w, 0, b"top-level");
        w.buf
    }

    #[test]
    fn flexible_versions_keep_tagged_fields() {
        let broker = metadata_v12(&[("kafka-0.kafka", 9092), ("kafka-1.kafka", 9093)], true);
        let want = metadata_v12(&[(TO_HOST, 39092), (TO_HOST, 39092)], true);
        let out = rewrite_brokers(&broker, METADATA, 12, TO_HOST, TO_PORT)
            .unwrap()
            .unwrap();
        assert_eq!(out, want);
        // The topic ids are still readable after the rewrite.
        let ids = super::super::metadata::topic_ids(&out, 12).unwrap();
        assert_eq!(ids[0].name, "orders");
        // A longer host than the original: lengths follow.
        let long = "a-much-longer-host-name-than-the-broker-had.example.internal";
        let out = rewrite_brokers(&broker, METADATA, 12, long, 1)
            .unwrap()
            .unwrap();
        assert_eq!(out, metadata_v12(&[(long, 1), (long, 1)], true));
        // Back to the originals' shape: one rewrite per broker, byte-exact round trip.
        let one = metadata_v12(&[("kafka-0.kafka", 9092)], true);
        let moved = rewrite_brokers(&one, METADATA, 12, TO_HOST, TO_PORT)
            .unwrap()
            .unwrap();
        let back = rewrite_brokers(&moved, METADATA, 12, "kafka-0.kafka", 9092)
            .unwrap()
            .unwrap();
        assert_eq!(back, one);
    }

    #[test]
    fn long_hosts_need_two_byte_varints() {
        let host = "h".repeat(200);
        let broker = metadata_v12(&[("b", 1)], false);
        let out = rewrite_brokers(&broker, METADATA, 12, &host, 2)
            .unwrap()
            .unwrap();
        assert_eq!(out, metadata_v12(&[(&host, 2)], false));
        assert_eq!(
            advertised(&out, METADATA, 12).unwrap(),
            vec![Advertised { host, port: 2 }]
        );
    }

    #[test]
    fn bad_responses_are_errors_not_panics() {
        let good = metadata_v12(&[("kafka-0", 9092)], true);
        for cut in 0..good.len() {
            assert!(
                rewrite_brokers(&good[..cut], METADATA, 12, TO_HOST, TO_PORT).is_err(),
                "cut at {cut}"
            );
        }
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for i in 0..good.len() * 8 {
            let mut f = good.clone();
            f[i / 8] ^= 1 << (i % 8);
            let _ = rewrite_brokers(&f, METADATA, 12, TO_HOST, TO_PORT);
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let junk: Vec<u8> = (0..(x % 64) as usize)
                .map(|j| (x >> (j % 8)) as u8)
                .collect();
            for (key, v) in [(3, 0), (3, 9), (10, 3), (10, 4), (60, 1), (78, 0), (79, 0)] {
                let _ = rewrite_brokers(&junk, key, v, TO_HOST, TO_PORT);
            }
        }
        assert!(matches!(
            rewrite_brokers(&good, METADATA, 99, TO_HOST, TO_PORT),
            Err(RewriteError::UnknownVersion { .. })
        ));
        assert!(matches!(
            rewrite_brokers(&good, 0, 9, TO_HOST, TO_PORT),
            Err(RewriteError::NotAdvertising(0))
        ));
    }

    #[test]
    fn share_fetch_node_endpoints_are_rewritten() {
        // ShareFetch v0 response: header v1, throttle, error, message, acquisition lock (v1+:
        // not in v0), responses (empty), node endpoints (one).
        let build = |host: &str, port: i32| {
            let mut w = Writer::default();
            w.i32(5);
            w.uvarint(0);
            w.i32(0);
            w.i16(0);
            w.string(true, None);
            w.length(true, true, Some(0));
            w.length(true, true, Some(1));
            w.i32(1);
            w.string(true, Some(host));
            w.i32(port);
            w.string(true, None);
            w.uvarint(0);
            w.uvarint(0);
            w.buf
        };
        let out = rewrite_brokers(&build("broker", 9092), SHARE_FETCH, 0, TO_HOST, TO_PORT)
            .unwrap()
            .unwrap();
        assert_eq!(out, build(TO_HOST, 39092));
    }

    /// ApiVersions response by hand: (key, min, max) entries.
    fn api_versions(version: i16, error: i16, keys: &[(i16, i16, i16)]) -> Vec<u8> {
        let flexible = version >= 3;
        let mut w = Writer::default();
        w.i32(7);
        w.i16(error);
        w.length(flexible, true, Some(keys.len()));
        for &(k, lo, hi) in keys {
            w.i16(k);
            w.i16(lo);
            w.i16(hi);
            if flexible {
                w.uvarint(0);
            }
        }
        if version >= 1 {
            w.i32(0);
        }
        if flexible {
            // SupportedFeatures etc. (tagged): kept as is.
            w.uvarint(1);
            w.uvarint(0);
            w.uvarint(2);
            w.buf.extend_from_slice(&[1, 0]);
        }
        w.buf
    }

    #[test]
    fn api_versions_are_capped_for_advertising_apis() {
        for version in 0..=4 {
            let broker = api_versions(
                version,
                0,
                &[(0, 3, 13), (3, 0, 14), (10, 0, 6), (60, 0, 9)],
            );
            let out = cap_api_versions(&broker, version, advertising_cap)
                .unwrap()
                .unwrap();
            assert_eq!(
                out,
                api_versions(
                    version,
                    0,
                    &[(0, 3, 13), (3, 0, 13), (10, 0, 6), (60, 0, 2)]
                ),
                "v{version}"
            );
            assert_eq!(
                cap_api_versions(&out, version, advertising_cap).unwrap(),
                None
            );
        }
        // An error response (UNSUPPORTED_VERSION, v0 list) is left alone.
        let err = api_versions(0, 35, &[(18, 0, 3)]);
        assert_eq!(cap_api_versions(&err, 4, advertising_cap).unwrap(), None);
        assert!(cap_api_versions(&err[..5], 4, advertising_cap).is_err());
        assert!(matches!(
            cap_api_versions(&err, 9, advertising_cap),
            Err(ApiVersionsError::UnknownVersion(9))
        ));
    }
}
