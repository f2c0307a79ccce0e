//! Kafka primitive encodings: a bounds-checked reader over a frame and a writer.
//!
//! Classic (non-flexible) versions use fixed-width big-endian lengths; flexible versions use
//! "compact" forms, an unsigned varint of length + 1 with 0 for null. Every read checks the
//! remaining bytes first; no length read from the wire is used to allocate before the bytes it
//! claims are known to be there.

use std::fmt;

/// Why bytes could not be read as a Kafka message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("truncated at byte {offset}: `{what}` needs {needed} bytes, {available} left")]
    Truncated {
        what: &'static str,
        offset: usize,
        needed: usize,
        available: usize,
    },
    #[error("invalid length {len} for `{what}` at byte {offset}")]
    BadLength {
        what: &'static str,
        offset: usize,
        len: i64,
    },
    #[error("`{what}` at byte {offset} claims {count} elements, more than the {remaining} bytes left can hold")]
    TooManyElements {
        what: &'static str,
        offset: usize,
        count: u64,
        remaining: usize,
    },
    #[error("malformed unsigned varint for `{what}` at byte {offset}")]
    BadVarint { what: &'static str, offset: usize },
    #[error("`{what}` at byte {offset} is null but the field is not nullable in this version")]
    UnexpectedNull { what: &'static str, offset: usize },
    #[error("`{what}` at byte {offset} is not valid UTF-8")]
    BadUtf8 { what: &'static str, offset: usize },
}

/// A 16-byte Kafka topic id (`uuid` on the wire).
///
/// Displayed like Kafka does (`kafka-topics.sh --describe`, `Uuid.toString()`): URL-safe base64
/// without padding, 22 characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TopicId(pub [u8; 16]);

impl TopicId {
    /// The all-zero id Kafka uses for "no id" (`Uuid.ZERO_UUID`).
    pub const ZERO: TopicId = TopicId([0; 16]);

    pub fn is_zero(&self) -> bool {
        self.0 == [0; 16]
    }
}

impl fmt::Display for TopicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::with_capacity(22);
        for chunk in self.0.chunks(3) {
            let b = [
                chunk[0],
                chunk.get(1).copied().unwrap_or(0),
                chunk.get(2).copied().unwrap_or(0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            let chars = chunk.len() + 1;
            for i in 0..chars {
                let idx = (n >> (18 - 6 * i)) & 0x3f;
                out.push(char::from(ALPHABET[idx as usize]));
            }
        }
        f.write_str(&out)
    }
}

impl fmt::Debug for TopicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TopicId({self})")
    }
}

/// A cursor over one frame.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], ParseError> {
        if n > self.remaining() {
            return Err(ParseError::Truncated {
                what,
                offset: self.pos,
                needed: n,
                available: self.remaining(),
            });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], ParseError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    pub(crate) fn i8(&mut self, what: &'static str) -> Result<i8, ParseError> {
        Ok(i8::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn i16(&mut self, what: &'static str) -> Result<i16, ParseError> {
        Ok(i16::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn i32(&mut self, what: &'static str) -> Result<i32, ParseError> {
        Ok(i32::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn i64(&mut self, what: &'static str) -> Result<i64, ParseError> {
        Ok(i64::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn uuid(&mut self, what: &'static str) -> Result<TopicId, ParseError> {
        Ok(TopicId(self.array(what)?))
    }

    /// An unsigned varint of at most 32 bits (5 bytes), as Kafka's `ByteUtils.readUnsignedVarint`.
    pub(crate) fn uvarint(&mut self, what: &'static str) -> Result<u32, ParseError> {
        let offset = self.pos;
        let mut value: u32 = 0;
        for i in 0..5 {
            let b = self.take(1, what)?[0];
            if i == 4 && b > 0x0f {
                return Err(ParseError::BadVarint { what, offset });
            }
            value |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ParseError::BadVarint { what, offset })
    }

    /// The length of a string, bytes or array: `None` for null. Classic lengths are `int16`
    /// (strings) or `int32` (bytes, arrays) with -1 for null; compact lengths are varint N+1.
    pub(crate) fn length(
        &mut self,
        flexible: bool,
        wide: bool,
        what: &'static str,
    ) -> Result<Option<usize>, ParseError> {
        let offset = self.pos;
        let len: i64 = if flexible {
            i64::from(self.uvarint(what)?) - 1
        } else if wide {
            i64::from(self.i32(what)?)
        } else {
            i64::from(self.i16(what)?)
        };
        match len {
            -1 => Ok(None),
            n if n < -1 => Err(ParseError::BadLength {
                what,
                offset,
                len: n,
            }),
            n => usize::try_from(n)
                .map(Some)
                .map_err(|_| ParseError::BadLength {
                    what,
                    offset,
                    len: n,
                }),
        }
    }

    /// A string (`None` for null); its bytes must be in the frame and valid UTF-8.
    pub(crate) fn string(
        &mut self,
        flexible: bool,
        what: &'static str,
    ) -> Result<Option<&'a str>, ParseError> {
        let Some(len) = self.length(flexible, false, what)? else {
            return Ok(None);
        };
        let offset = self.pos;
        let bytes = self.take(len, what)?;
        std::str::from_utf8(bytes)
            .map(Some)
            .map_err(|_| ParseError::BadUtf8 { what, offset })
    }

    /// Bytes / records (`None` for null), skipped by their length prefix.
    pub(crate) fn bytes(
        &mut self,
        flexible: bool,
        what: &'static str,
    ) -> Result<Option<&'a [u8]>, ParseError> {
        match self.length(flexible, true, what)? {
            None => Ok(None),
            Some(len) => self.take(len, what).map(Some),
        }
    }

    /// An array count (`None` for null), refused when `min_elem` bytes per element cannot fit in
    /// what is left: a count read from the wire never drives work beyond the frame's size.
    pub(crate) fn count(
        &mut self,
        flexible: bool,
        min_elem: usize,
        what: &'static str,
    ) -> Result<Option<usize>, ParseError> {
        let offset = self.pos;
        let Some(count) = self.length(flexible, true, what)? else {
            return Ok(None);
        };
        let remaining = self.remaining();
        if count > remaining / min_elem.max(1) {
            return Err(ParseError::TooManyElements {
                what,
                offset,
                count: count as u64,
                remaining,
            });
        }
        Ok(Some(count))
    }

    /// Skips a tagged-field section (flexible versions only): count, then (tag, size, bytes).
    pub(crate) fn skip_tagged_fields(&mut self) -> Result<(), ParseError> {
        const WHAT: &str = "tagged fields";
        let offset = self.pos;
        let count = self.uvarint(WHAT)?;
        // Each tagged field takes at least two bytes (tag and size varints).
        if count as usize > self.remaining() / 2 {
            return Err(ParseError::TooManyElements {
                what: WHAT,
                offset,
                count: u64::from(count),
                remaining: self.remaining(),
            });
        }
        for _ in 0..count {
            self.uvarint(WHAT)?;
            let size = self.uvarint(WHAT)?;
            self.take(size as usize, WHAT)?;
        }
        Ok(())
    }
}

/// Builds a frame payload.
#[derive(Default)]
pub(crate) struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn i8(&mut self, v: i8) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub(crate) fn i16(&mut self, v: i16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub(crate) fn i32(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub(crate) fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub(crate) fn uvarint(&mut self, mut v: u32) {
        while v >= 0x80 {
            self.buf.push((v as u8 & 0x7f) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    /// A length prefix; `None` writes null.
    pub(crate) fn length(&mut self, flexible: bool, wide: bool, len: Option<usize>) {
        if flexible {
            // Lengths here come from strings and arrays strait built itself, far below u32::MAX.
            let n = len.map_or(0, |l| u32::try_from(l).unwrap_or(u32::MAX - 1) + 1);
            self.uvarint(n);
        } else {
            let n = len.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
            if wide {
                self.i32(i32::try_from(n).unwrap_or(i32::MAX));
            } else {
                self.i16(i16::try_from(n).unwrap_or(i16::MAX));
            }
        }
    }

    pub(crate) fn string(&mut self, flexible: bool, s: Option<&str>) {
        // Strings longer than an int16 length cannot be encoded in classic versions; the only
        // strings strait writes are names read from a request of the same version, or its own
        // short messages, so they always fit.
        self.length(flexible, false, s.map(str::len));
        if let Some(s) = s {
            self.buf.extend_from_slice(s.as_bytes());
        }
    }

    pub(crate) fn empty_tagged_fields(&mut self) {
        self.uvarint(0);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_reject_overlong() {
        for v in [0u32, 1, 127, 128, 300, 16_383, 16_384, u32::MAX] {
            let mut w = Writer::default();
            w.uvarint(v);
            assert_eq!(Reader::new(&w.buf).uvarint("v"), Ok(v));
        }
        // Six bytes, or a fifth byte with bits above 32.
        assert!(Reader::new(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x01])
            .uvarint("v")
            .is_err());
        assert!(Reader::new(&[0xff, 0xff, 0xff, 0xff, 0x1f])
            .uvarint("v")
            .is_err());
        assert!(matches!(
            Reader::new(&[0x80]).uvarint("v"),
            Err(ParseError::Truncated { .. })
        ));
    }

    #[test]
    fn lengths_are_checked_against_the_frame() {
        // int16 string length 5 with 2 bytes behind it.
        let err = Reader::new(&[0, 5, b'a', b'b'])
            .string(false, "s")
            .unwrap_err();
        assert!(matches!(
            err,
            ParseError::Truncated {
                needed: 5,
                available: 2,
                ..
            }
        ));
        // -2 is not a length.
        let err = Reader::new(&[0xff, 0xfe]).string(false, "s").unwrap_err();
        assert!(matches!(err, ParseError::BadLength { len: -2, .. }));
        // An array of 1 billion int32s in 8 bytes.
        let mut r = Reader::new(&[0x3b, 0x9a, 0xca, 0x00, 0, 0, 0, 0]);
        let err = r.count(false, 4, "a").unwrap_err();
        assert!(matches!(err, ParseError::TooManyElements { .. }));
        // Compact null.
        assert_eq!(Reader::new(&[0]).string(true, "s"), Ok(None));
        assert_eq!(Reader::new(&[0xff, 0xff]).string(false, "s"), Ok(None));
        let err = Reader::new(&[0, 2, 0xff, 0xfe])
            .string(false, "s")
            .unwrap_err();
        assert!(matches!(err, ParseError::BadUtf8 { .. }));
    }

    #[test]
    fn topic_ids_display_like_kafka() {
        assert_eq!(TopicId::ZERO.to_string(), "AAAAAAAAAAAAAAAAAAAAAA");
        // Uuid(0x123e4567e89b12d3, 0xa456426614174000) from Kafka's UuidTest-style value.
        let id = TopicId([
            0x12, 0x3e, 0x45, 0x67, 0xe8, 0x9b, 0x12, 0xd3, 0xa4, 0x56, 0x42, 0x66, 0x14, 0x17,
            0x40, 0x00,
        ]);
        assert_eq!(id.to_string(), "Ej5FZ-ibEtOkVkJmFBdAAA");
        assert_eq!(id.to_string().len(), 22);
    }
}
