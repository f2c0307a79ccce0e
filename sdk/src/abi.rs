//! Constants and wire encodings of the proxy-wasm ABI 0.2.1.
//!
//! These are what travels across the guest/host boundary; filter authors normally use the typed
//! API ([`crate::Request`], [`crate::Decision`], …) instead. They are public so that tests and
//! tools can speak the same encoding.

use std::fmt;

/// `proxy_status_t`: the result of every host call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// `OK` = 0.
    Ok,
    /// `NOT_FOUND` = 1.
    NotFound,
    /// `BAD_ARGUMENT` = 2.
    BadArgument,
    /// `SERIALIZATION_FAILURE` = 3.
    SerializationFailure,
    /// `PARSE_FAILURE` = 4.
    ParseFailure,
    /// `INVALID_MEMORY_ACCESS` = 6.
    InvalidMemoryAccess,
    /// `EMPTY` = 7.
    Empty,
    /// `CAS_MISMATCH` = 8.
    CasMismatch,
    /// `INTERNAL_FAILURE` = 10.
    InternalFailure,
    /// `UNIMPLEMENTED` = 12.
    Unimplemented,
    /// A value the ABI does not define.
    Other(u32),
}

impl Status {
    /// The status for a raw value returned by the host.
    pub const fn from_raw(raw: u32) -> Status {
        match raw {
            0 => Status::Ok,
            1 => Status::NotFound,
            2 => Status::BadArgument,
            3 => Status::SerializationFailure,
            4 => Status::ParseFailure,
            6 => Status::InvalidMemoryAccess,
            7 => Status::Empty,
            8 => Status::CasMismatch,
            10 => Status::InternalFailure,
            12 => Status::Unimplemented,
            other => Status::Other(other),
        }
    }

    /// The raw value on the wire.
    pub const fn as_raw(self) -> u32 {
        match self {
            Status::Ok => 0,
            Status::NotFound => 1,
            Status::BadArgument => 2,
            Status::SerializationFailure => 3,
            Status::ParseFailure => 4,
            Status::InvalidMemoryAccess => 6,
            Status::Empty => 7,
            Status::CasMismatch => 8,
            Status::InternalFailure => 10,
            Status::Unimplemented => 12,
            Status::Other(raw) => raw,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Status::Ok => "OK",
            Status::NotFound => "NOT_FOUND",
            Status::BadArgument => "BAD_ARGUMENT",
            Status::SerializationFailure => "SERIALIZATION_FAILURE",
            Status::ParseFailure => "PARSE_FAILURE",
            Status::InvalidMemoryAccess => "INVALID_MEMORY_ACCESS",
            Status::Empty => "EMPTY",
            Status::CasMismatch => "CAS_MISMATCH",
            Status::InternalFailure => "INTERNAL_FAILURE",
            Status::Unimplemented => "UNIMPLEMENTED",
            Status::Other(raw) => return write!(f, "status {raw}"),
        };
        f.write_str(name)
    }
}

/// `proxy_action_t`: what a stream callback tells the host to do next.
pub mod action {
    /// `CONTINUE`: go on processing the stream.
    pub const CONTINUE: u32 = 0;
    /// `PAUSE`: stop processing (here: a local response was sent instead).
    pub const PAUSE: u32 = 1;
}

/// `proxy_buffer_type_t`.
pub mod buffer {
    /// `HTTP_REQUEST_BODY`.
    pub const HTTP_REQUEST_BODY: u32 = 0;
    /// `HTTP_RESPONSE_BODY`.
    pub const HTTP_RESPONSE_BODY: u32 = 1;
    /// `DOWNSTREAM_DATA`.
    pub const DOWNSTREAM_DATA: u32 = 2;
    /// `UPSTREAM_DATA`.
    pub const UPSTREAM_DATA: u32 = 3;
    /// `HTTP_CALL_RESPONSE_BODY`.
    pub const HTTP_CALL_RESPONSE_BODY: u32 = 4;
    /// `GRPC_RECEIVE_BUFFER` (`GRPC_CALL_MESSAGE` in the spec text).
    pub const GRPC_RECEIVE_BUFFER: u32 = 5;
    /// `VM_CONFIGURATION`.
    pub const VM_CONFIGURATION: u32 = 6;
    /// `PLUGIN_CONFIGURATION`: the filter's `config` (YAML mappings arrive as JSON).
    pub const PLUGIN_CONFIGURATION: u32 = 7;
}

/// `proxy_map_type_t`.
pub mod map {
    /// `HTTP_REQUEST_HEADERS`.
    pub const REQUEST_HEADERS: u32 = 0;
    /// `HTTP_REQUEST_TRAILERS`.
    pub const REQUEST_TRAILERS: u32 = 1;
    /// `HTTP_RESPONSE_HEADERS`.
    pub const RESPONSE_HEADERS: u32 = 2;
    /// `HTTP_RESPONSE_TRAILERS`.
    pub const RESPONSE_TRAILERS: u32 = 3;
}

/// `proxy_metric_type_t`.
pub mod metric {
    /// `COUNTER`.
    pub const COUNTER: u32 = 0;
    /// `GAUGE`.
    pub const GAUGE: u32 = 1;
    /// `HISTOGRAM`.
    pub const HISTOGRAM: u32 = 2;
}

/// The `grpc_status` argument of `proxy_send_local_response` meaning "not a gRPC response"
/// (`-1`, i.e. `0xffff_ffff` as the host reads the `uint32_t`).
pub const NO_GRPC_STATUS: i32 = -1;

/// Header (or trailer) pairs as raw bytes, in order.
pub type HeaderPairs = Vec<(Vec<u8>, Vec<u8>)>;

/// A header map whose serialised form could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MalformedMap;

impl fmt::Display for MalformedMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("malformed serialised header map")
    }
}

impl std::error::Error for MalformedMap {}

/// Serialises header pairs as the ABI wants them: `u32` count; count × (`u32` key length, `u32`
/// value length); then each `key\0value\0`. All integers little endian.
pub fn serialize_map<K: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: &[(K, V)]) -> Vec<u8> {
    let size = 4 + pairs
        .iter()
        .map(|(k, v)| 8 + k.as_ref().len() + v.as_ref().len() + 2)
        .sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&len_u32(pairs.len()).to_le_bytes());
    for (k, v) in pairs {
        out.extend_from_slice(&len_u32(k.as_ref().len()).to_le_bytes());
        out.extend_from_slice(&len_u32(v.as_ref().len()).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k.as_ref());
        out.push(0);
        out.extend_from_slice(v.as_ref());
        out.push(0);
    }
    out
}

fn len_u32(len: usize) -> u32 {
    // Lengths come from data held in a 32-bit address space on the guest; a host-side caller
    // with more than 4 GiB in one header has bigger problems, so saturate rather than wrap.
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// Reads a serialised header map (see [`serialize_map`]). An empty input and a single `0` byte
/// are both the empty map, as the spec allows. Never panics on malformed input.
pub fn deserialize_map(bytes: &[u8]) -> Result<HeaderPairs, MalformedMap> {
    let spans = map_spans(bytes)?;
    Ok(spans
        .iter()
        .map(|&(k, v)| (bytes[k.0..k.1].to_vec(), bytes[v.0..v.1].to_vec()))
        .collect())
}

/// Byte ranges `(start, end)` of a key and of its value.
type Span = ((usize, usize), (usize, usize));

/// Where each key and value of a serialised header map lies (checked, see [`deserialize_map`]).
fn map_spans(bytes: &[u8]) -> Result<Vec<Span>, MalformedMap> {
    if bytes.is_empty() || bytes == [0] {
        return Ok(Vec::new());
    }
    let count = read_u32(bytes, 0)? as usize;
    // Each entry needs at least 8 bytes of lengths and 2 terminators.
    if count > bytes.len() / 10 {
        return Err(MalformedMap);
    }
    let mut spans = Vec::with_capacity(count);
    let mut data = 4 + count * 8;
    for n in 0..count {
        let key_len = read_u32(bytes, 4 + n * 8)? as usize;
        let value_len = read_u32(bytes, 4 + n * 8 + 4)? as usize;
        let key = data;
        take(bytes, &mut data, key_len)?;
        let value = data;
        take(bytes, &mut data, value_len)?;
        spans.push(((key, key + key_len), (value, value + value_len)));
    }
    Ok(spans)
}

/// A serialised header map kept as the host returned it, read in place: no allocation per
/// header (what [`deserialize_map`] costs). For filters that look at many headers per request.
#[derive(Debug, Clone, Default)]
pub struct RawHeaders {
    bytes: Vec<u8>,
    spans: Vec<Span>,
}

impl RawHeaders {
    /// Checks `bytes` (see [`deserialize_map`]) and keeps them.
    pub fn parse(bytes: Vec<u8>) -> Result<Self, MalformedMap> {
        let spans = map_spans(&bytes)?;
        Ok(Self { bytes, spans })
    }

    /// The (name, value) pairs, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.spans
            .iter()
            .map(|&(k, v)| (&self.bytes[k.0..k.1], &self.bytes[v.0..v.1]))
    }

    /// How many pairs.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// No pairs.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
}

fn read_u32(bytes: &[u8], at: usize) -> Result<u32, MalformedMap> {
    let end = at.checked_add(4).ok_or(MalformedMap)?;
    let raw: [u8; 4] = bytes
        .get(at..end)
        .and_then(|s| s.try_into().ok())
        .ok_or(MalformedMap)?;
    Ok(u32::from_le_bytes(raw))
}

/// `len` bytes at `*at`, followed by the `\0` terminator; advances `*at` past the terminator.
fn take<'b>(bytes: &'b [u8], at: &mut usize, len: usize) -> Result<&'b [u8], MalformedMap> {
    let end = at.checked_add(len).ok_or(MalformedMap)?;
    let value = bytes.get(*at..end).ok_or(MalformedMap)?;
    if bytes.get(end) != Some(&0) {
        return Err(MalformedMap);
    }
    *at = end + 1;
    Ok(value)
}

/// A property path as the ABI wants it: the segments joined with `\0`
/// (`["source", "address"]` → `source\0address`).
pub fn serialize_property_path(path: &[&str]) -> Vec<u8> {
    path.join("\0").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the spec's "Serialization" section: `{{"a": "1"}, {"b": "22"}}`.
    const SPEC_EXAMPLE: &[u8] = &[
        2, 0, 0, 0, // count
        1, 0, 0, 0, 1, 0, 0, 0, // "a" "1"
        1, 0, 0, 0, 2, 0, 0, 0, // "b" "22"
        b'a', 0, b'1', 0, b'b', 0, b'2', b'2', 0,
    ];

    #[test]
    fn serializes_the_spec_example() {
        assert_eq!(serialize_map(&[("a", "1"), ("b", "22")]), SPEC_EXAMPLE);
    }

    #[test]
    fn deserializes_the_spec_example() {
        let pairs = deserialize_map(SPEC_EXAMPLE).expect("valid map");
        assert_eq!(
            pairs,
            vec![
                (b"a".to_vec(), b"1".to_vec()),
                (b"b".to_vec(), b"22".to_vec())
            ]
        );
    }

    #[test]
    fn empty_maps() {
        assert_eq!(serialize_map::<&str, &str>(&[]), [0, 0, 0, 0]);
        assert_eq!(deserialize_map(&[]), Ok(vec![]));
        assert_eq!(deserialize_map(&[0]), Ok(vec![]));
        assert_eq!(deserialize_map(&[0, 0, 0, 0]), Ok(vec![]));
    }

    #[test]
    fn binary_values_round_trip() {
        let pairs = vec![(b"x-bin".to_vec(), vec![0xff, 0x00, 0xfe])];
        let bytes = serialize_map(&pairs);
        assert_eq!(deserialize_map(&bytes), Ok(pairs));
    }

    #[test]
    fn malformed_maps_are_errors_not_panics() {
        let good = serialize_map(&[("key", "value"), ("k2", "v2")]);
        for cut in 1..good.len() {
            assert_eq!(
                deserialize_map(&good[..cut]),
                Err(MalformedMap),
                "cut at {cut}"
            );
        }
        // A missing terminator.
        let mut bad = good.clone();
        let last = bad.len() - 1;
        bad[last] = b'!';
        assert_eq!(deserialize_map(&bad), Err(MalformedMap));
        // An absurd count.
        assert_eq!(
            deserialize_map(&[0xff, 0xff, 0xff, 0xff]),
            Err(MalformedMap)
        );
        // A length that overflows.
        let mut huge = vec![1, 0, 0, 0];
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        huge.extend_from_slice(&0u32.to_le_bytes());
        huge.extend_from_slice(&[0, 0]);
        assert_eq!(deserialize_map(&huge), Err(MalformedMap));
    }

    #[test]
    fn raw_headers_read_the_same_pairs_in_place_and_refuse_what_deserialize_refuses() {
        let pairs = [
            (":path", &b"/a"[..]),
            ("x-k", &b"\xffv"[..]),
            ("x-e", &b""[..]),
        ];
        let good = serialize_map(&pairs);
        let raw = RawHeaders::parse(good.clone()).expect("parses");
        assert_eq!(raw.len(), 3);
        let owned: Vec<(Vec<u8>, Vec<u8>)> =
            raw.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
        assert_eq!(Ok(owned), deserialize_map(&good));
        assert!(RawHeaders::parse(vec![0]).expect("empty").is_empty());
        for cut in 1..good.len() {
            assert!(
                RawHeaders::parse(good[..cut].to_vec()).is_err(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn property_paths_join_with_nul() {
        assert_eq!(
            serialize_property_path(&["request", "path"]),
            b"request\0path"
        );
        assert_eq!(serialize_property_path(&["plugin_name"]), b"plugin_name");
    }

    #[test]
    fn status_round_trips() {
        for raw in 0..16 {
            assert_eq!(Status::from_raw(raw).as_raw(), raw);
        }
        assert_eq!(Status::from_raw(1), Status::NotFound);
        assert_eq!(Status::from_raw(5), Status::Other(5));
        assert_eq!(Status::NotFound.to_string(), "NOT_FOUND");
    }
}
