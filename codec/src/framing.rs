//! The 2-byte big-endian length prefix of PROTOCOL.md section 1, as a
//! `tokio_util::codec` pair for `Framed`. Frames are returned as [`Bytes`] that
//! [`crate::Message::parse`] takes without copying.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

/// The maximum frame length when the configuration says nothing (PROTOCOL.md 1).
pub const DEFAULT_MAX_FRAME_LEN: usize = 4096;

/// The most a 2-byte prefix can declare.
const PREFIX_MAX: usize = u16::MAX as usize;

/// Why framing failed.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// A peer declared a frame above the maximum. The stream cannot be resynchronised: the
    /// connection must be closed (and the event counted).
    #[error("frame of {declared} bytes declared, maximum is {max}: closing the connection")]
    Oversize {
        /// The length the prefix declared.
        declared: usize,
        /// The configured maximum.
        max: usize,
    },
    /// Refused to send a frame above the maximum (or above 65535, which the prefix cannot
    /// express). Nothing was written.
    #[error("refusing to send a frame of {len} bytes, maximum is {max}")]
    OutgoingTooLarge {
        /// The frame's length.
        len: usize,
        /// The effective maximum.
        max: usize,
    },
    /// The underlying transport failed.
    #[error("transport: {0}")]
    Io(#[from] std::io::Error),
}

/// Splits a byte stream into frames and prefixes outgoing ones.
///
/// Zero-length frames are keep-alives: the decoder skips them and never yields an empty
/// frame.
#[derive(Debug, Clone, Copy)]
pub struct FrameCodec {
    max_frame_len: usize,
}

impl FrameCodec {
    /// A codec refusing frames above `max_frame_len` bytes (capped at 65535, the most the
    /// prefix can declare).
    pub fn new(max_frame_len: usize) -> FrameCodec {
        FrameCodec {
            max_frame_len: max_frame_len.min(PREFIX_MAX),
        }
    }

    /// The effective maximum frame length.
    pub fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    fn encode_slice(&self, frame: &[u8], dst: &mut BytesMut) -> Result<(), FrameError> {
        let Ok(prefix) = u16::try_from(frame.len()) else {
            return Err(self.too_large(frame.len()));
        };
        if frame.len() > self.max_frame_len {
            return Err(self.too_large(frame.len()));
        }
        dst.reserve(2 + frame.len());
        dst.put_u16(prefix);
        dst.put_slice(frame);
        Ok(())
    }

    fn too_large(&self, len: usize) -> FrameError {
        FrameError::OutgoingTooLarge {
            len,
            max: self.max_frame_len,
        }
    }
}

impl Default for FrameCodec {
    fn default() -> FrameCodec {
        FrameCodec::new(DEFAULT_MAX_FRAME_LEN)
    }
}

impl Decoder for FrameCodec {
    type Item = Bytes;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        loop {
            let Some(&[high, low]) = src.get(..2) else {
                return Ok(None);
            };
            let declared = usize::from(u16::from_be_bytes([high, low]));
            if declared == 0 {
                src.advance(2);
                continue;
            }
            if declared > self.max_frame_len {
                return Err(FrameError::Oversize {
                    declared,
                    max: self.max_frame_len,
                });
            }
            if src.len() < 2 + declared {
                src.reserve(2 + declared - src.len());
                return Ok(None);
            }
            src.advance(2);
            return Ok(Some(src.split_to(declared).freeze()));
        }
    }
}

impl Encoder<Bytes> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, frame: Bytes, dst: &mut BytesMut) -> Result<(), FrameError> {
        self.encode_slice(&frame, dst)
    }
}

impl Encoder<&[u8]> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, frame: &[u8], dst: &mut BytesMut) -> Result<(), FrameError> {
        self.encode_slice(frame, dst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_frames_and_skips_keep_alives() {
        let mut codec = FrameCodec::default();
        let mut src = BytesMut::from(&b"\x00\x00\x00\x03abc\x00\x00\x00\x00\x00\x02de\x00"[..]);
        assert_eq!(
            codec.decode(&mut src).unwrap().as_deref(),
            Some(&b"abc"[..])
        );
        assert_eq!(codec.decode(&mut src).unwrap().as_deref(), Some(&b"de"[..]));
        assert_eq!(codec.decode(&mut src).unwrap(), None);
        assert_eq!(&src[..], b"\x00");
        src.extend_from_slice(b"\x01");
        assert_eq!(codec.decode(&mut src).unwrap(), None);
        src.extend_from_slice(b"z");
        assert_eq!(codec.decode(&mut src).unwrap().as_deref(), Some(&b"z"[..]));
        assert!(src.is_empty());
    }

    #[test]
    fn oversize_is_distinct() {
        let mut codec = FrameCodec::new(4);
        let mut src = BytesMut::from(&b"\x00\x05hello"[..]);
        match codec.decode(&mut src) {
            Err(FrameError::Oversize {
                declared: 5,
                max: 4,
            }) => {}
            other => panic!("{other:?}"),
        }
        let mut src = BytesMut::from(&b"\x00\x04four"[..]);
        assert!(codec.decode(&mut src).unwrap().is_some());
    }

    #[test]
    fn encoder_refuses_large_frames() {
        let mut codec = FrameCodec::new(4);
        let mut dst = BytesMut::new();
        codec.encode(&b"abcd"[..], &mut dst).unwrap();
        assert_eq!(&dst[..], b"\x00\x04abcd");
        assert!(matches!(
            codec.encode(Bytes::from_static(b"abcde"), &mut dst),
            Err(FrameError::OutgoingTooLarge { len: 5, max: 4 })
        ));
        assert_eq!(dst.len(), 6);
        let mut big = FrameCodec::new(1 << 20);
        assert_eq!(big.max_frame_len(), 65535);
        assert!(big.encode(&vec![0u8; 65536][..], &mut dst).is_err());
        assert!(big.encode(&vec![0u8; 65535][..], &mut dst).is_ok());
    }
}
