//! Kafka framing: every request and response is an int32 big-endian size followed by that many
//! bytes. [`KafkaCodec`] is a `tokio_util` codec over it (use it with `FramedRead` /
//! `FramedWrite`, or call [`Decoder::decode`] on a `BytesMut` directly).
//!
//! The size is checked before any byte of the payload is waited for: a negative or zero size is
//! not a Kafka frame (the stream is not Kafka, or out of sync), and a size above the limit is
//! refused (the limit plays the part of the broker's `socket.request.max.bytes`). A partial frame
//! just waits for more bytes; the buffer is not grown ahead of them, so a peer announcing a large
//! frame costs no memory until it sends it.

use bytes::{BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

/// The default frame size limit: 100 MiB, Kafka's default `socket.request.max.bytes`
/// (104857600). Responses can be as large as a fetch returns (`fetch.max.bytes`, 50 MiB by
/// default, plus overhead), which this also covers.
pub const DEFAULT_MAX_FRAME: usize = 100 * 1024 * 1024;

/// Why a frame was refused. Every variant ends the connection: the stream cannot be re-synced.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("Kafka frame size {0} is negative: the peer is not speaking the Kafka protocol (TLS or another protocol on a Kafka port?) or the stream is out of sync")]
    Negative(i32),
    #[error("Kafka frame size is 0: no request or response is empty; the peer is not speaking the Kafka protocol or the stream is out of sync")]
    Empty,
    #[error("Kafka frame of {size} bytes exceeds the limit of {max} bytes (like the broker's socket.request.max.bytes); raise the limit if such frames are legitimate")]
    TooLarge { size: usize, max: usize },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// A size-prefixed Kafka frame codec. Decoded items are the payload without the size; encoding
/// prefixes the size.
#[derive(Debug, Clone, Copy)]
pub struct KafkaCodec {
    max_frame: usize,
}

impl Default for KafkaCodec {
    fn default() -> Self {
        KafkaCodec {
            max_frame: DEFAULT_MAX_FRAME,
        }
    }
}

impl KafkaCodec {
    /// A codec refusing frames above `max_frame` bytes (payload, without the 4-byte size; at most
    /// `i32::MAX`).
    pub fn with_max_frame(max_frame: usize) -> Self {
        KafkaCodec {
            max_frame: max_frame.min(i32::MAX as usize),
        }
    }

    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    fn check(&self, size: usize) -> Result<(), FrameError> {
        if size == 0 {
            Err(FrameError::Empty)
        } else if size > self.max_frame {
            Err(FrameError::TooLarge {
                size,
                max: self.max_frame,
            })
        } else {
            Ok(())
        }
    }
}

impl Decoder for KafkaCodec {
    type Item = BytesMut;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, FrameError> {
        let Some(prefix) = src.get(..4) else {
            return Ok(None);
        };
        let size = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
        let size = usize::try_from(size).map_err(|_| FrameError::Negative(size))?;
        self.check(size)?;
        if src.len() - 4 < size {
            return Ok(None);
        }
        let mut frame = src.split_to(4 + size);
        let _ = frame.split_to(4);
        Ok(Some(frame))
    }
}

impl KafkaCodec {
    fn put(&self, payload: &[u8], dst: &mut BytesMut) -> Result<(), FrameError> {
        self.check(payload.len())?;
        dst.reserve(4 + payload.len());
        // `check` bounds the size by `max_frame`, itself at most i32::MAX.
        dst.put_i32(payload.len() as i32);
        dst.put_slice(payload);
        Ok(())
    }
}

impl Encoder<Bytes> for KafkaCodec {
    type Error = FrameError;

    fn encode(&mut self, item: Bytes, dst: &mut BytesMut) -> Result<(), FrameError> {
        self.put(&item, dst)
    }
}

impl Encoder<&[u8]> for KafkaCodec {
    type Error = FrameError;

    fn encode(&mut self, item: &[u8], dst: &mut BytesMut) -> Result<(), FrameError> {
        self.put(item, dst)
    }
}

impl Encoder<Vec<u8>> for KafkaCodec {
    type Error = FrameError;

    fn encode(&mut self, item: Vec<u8>, dst: &mut BytesMut) -> Result<(), FrameError> {
        self.put(&item, dst)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut v = (payload.len() as i32).to_be_bytes().to_vec();
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn decodes_whole_frames_and_waits_for_partial_ones() {
        let mut codec = KafkaCodec::default();
        let mut wire = frame(b"hello");
        wire.extend(frame(b"world!"));
        // Byte by byte: nothing until a frame is complete.
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for b in wire {
            buf.put_u8(b);
            while let Some(f) = codec.decode(&mut buf).unwrap() {
                out.push(f.to_vec());
            }
        }
        assert_eq!(out, vec![b"hello".to_vec(), b"world!".to_vec()]);
        assert!(buf.is_empty());
    }

    #[test]
    fn refuses_bad_sizes_before_reading_the_payload() {
        let mut codec = KafkaCodec::with_max_frame(16);
        let mut neg = BytesMut::from(&(-5i32).to_be_bytes()[..]);
        assert!(matches!(
            codec.decode(&mut neg),
            Err(FrameError::Negative(-5))
        ));
        let mut zero = BytesMut::from(&[0u8, 0, 0, 0][..]);
        assert!(matches!(codec.decode(&mut zero), Err(FrameError::Empty)));
        // Oversized: refused on the size alone, no payload needed, no buffer growth.
        let mut big = BytesMut::from(&17i32.to_be_bytes()[..]);
        let err = codec.decode(&mut big).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { size: 17, max: 16 }));
        assert!(err.to_string().contains("raise the limit"));
        let mut huge = BytesMut::from(&i32::MAX.to_be_bytes()[..]);
        assert!(KafkaCodec::default().decode(&mut huge).is_err());
        assert!(huge.capacity() < 1024);
        // Exactly the limit is fine.
        let mut ok = BytesMut::from(&frame(&[7; 16])[..]);
        assert_eq!(codec.decode(&mut ok).unwrap().unwrap().len(), 16);
    }

    #[test]
    fn encodes_with_the_size_prefix() {
        let mut codec = KafkaCodec::with_max_frame(8);
        let mut dst = BytesMut::new();
        codec.encode(&b"abc"[..], &mut dst).unwrap();
        codec.encode(Bytes::from_static(b"de"), &mut dst).unwrap();
        assert_eq!(
            &dst[..],
            &[0, 0, 0, 3, b'a', b'b', b'c', 0, 0, 0, 2, b'd', b'e']
        );
        assert!(codec.encode(vec![0u8; 9], &mut dst).is_err());
        assert!(codec.encode(Vec::new(), &mut dst).is_err());
    }

    #[tokio::test]
    async fn works_with_framed_read() {
        use futures_util::StreamExt;
        let wire = [frame(b"one"), frame(b"two")].concat();
        let mut framed = tokio_util::codec::FramedRead::new(&wire[..], KafkaCodec::default());
        assert_eq!(&framed.next().await.unwrap().unwrap()[..], b"one");
        assert_eq!(&framed.next().await.unwrap().unwrap()[..], b"two");
        assert!(framed.next().await.is_none());
    }
}
