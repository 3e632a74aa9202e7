//! The bytes of one WAL record, shared by every [`crate::wal::Wal`]: sequence number,
//! crc32c and payload.
//!
//! The checksum covers the sequence number as well as the payload, so a record copied to the
//! wrong place (or a stale record left by a storage engine) fails its check.
//!
//! Two layouts:
//! - a *frame* for byte logs (the simulated disk): a header that checks itself, so that a
//!   damaged length cannot make the reader skip or invent records, then the payload;
//! - a *value* for key-value logs (sled), where the key carries the sequence number and the
//!   store carries the length.

/// Largest payload of a record. Events are a few hundred bytes; the bound keeps sled's leaf
/// nodes far below its blob threshold (sled writes blobs as separate files and never syncs
/// them), and bounds what a damaged length could make a reader allocate.
pub const PAYLOAD_MAX: usize = 4096;

/// Frame header: `len u32 | seq u64 | payload_crc u32 | header_crc u32`, little endian.
pub const FRAME_HEADER_LEN: usize = 20;

/// Value header for key-value logs: `crc u32`.
pub const VALUE_HEADER_LEN: usize = 4;

pub fn checksum(seq: u64, payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&seq.to_le_bytes()), payload)
}

/// Appends the frame of record `seq` to `out`, then reads it back from `out` (validate what
/// is written, not what was meant to be written).
pub fn encode_frame(seq: u64, payload: &[u8], out: &mut Vec<u8>) {
    assert!(
        payload.len() <= PAYLOAD_MAX,
        "record {seq}: payload of {} bytes",
        payload.len()
    );
    let start = out.len();
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&checksum(seq, payload).to_le_bytes());
    let header_crc = crc32c::crc32c(&out[start..start + 16]);
    out.extend_from_slice(&header_crc.to_le_bytes());
    out.extend_from_slice(payload);
    match decode_frame(&out[start..]) {
        Frame::Complete {
            seq: read_seq,
            payload: read,
            len,
        } => {
            assert_eq!(read_seq, seq, "frame reads back with another seq");
            assert_eq!(read, payload, "frame reads back with another payload");
            assert_eq!(
                len,
                out.len() - start,
                "frame reads back with another length"
            );
        }
        other => panic!("frame of record {seq} does not read back: {other:?}"),
    }
}

/// What is at the start of a byte slice.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A whole, valid record spanning `len` bytes.
    Complete {
        seq: u64,
        payload: &'a [u8],
        len: usize,
    },
    /// A valid header (or too few bytes for one) whose record runs past the end: what a torn
    /// last write leaves.
    Incomplete,
    /// The header fails its own checksum: nothing in it can be trusted, not even the length.
    BadHeader,
    /// The header is valid but the payload fails its checksum.
    BadPayload { seq: u64, len: usize },
}

pub fn decode_frame(bytes: &[u8]) -> Frame<'_> {
    if bytes.len() < FRAME_HEADER_LEN {
        return Frame::Incomplete;
    }
    let header_crc = u32::from_le_bytes(bytes[16..20].try_into().expect("4 bytes"));
    if crc32c::crc32c(&bytes[..16]) != header_crc {
        return Frame::BadHeader;
    }
    let payload_len = u32::from_le_bytes(bytes[0..4].try_into().expect("4 bytes")) as usize;
    let seq = u64::from_le_bytes(bytes[4..12].try_into().expect("8 bytes"));
    let payload_crc = u32::from_le_bytes(bytes[12..16].try_into().expect("4 bytes"));
    if payload_len > PAYLOAD_MAX {
        // A header that checks but claims the impossible was written by a bug.
        return Frame::BadHeader;
    }
    let len = FRAME_HEADER_LEN + payload_len;
    if bytes.len() < len {
        return Frame::Incomplete;
    }
    let payload = &bytes[FRAME_HEADER_LEN..len];
    if checksum(seq, payload) != payload_crc {
        return Frame::BadPayload { seq, len };
    }
    Frame::Complete { seq, payload, len }
}

/// The value stored under key `seq` in a key-value log.
pub fn encode_value(seq: u64, payload: &[u8], out: &mut Vec<u8>) {
    assert!(
        payload.len() <= PAYLOAD_MAX,
        "record {seq}: payload of {} bytes",
        payload.len()
    );
    let start = out.len();
    out.extend_from_slice(&checksum(seq, payload).to_le_bytes());
    out.extend_from_slice(payload);
    assert_eq!(
        decode_value(seq, &out[start..]),
        Ok(payload),
        "value of record {seq} does not read back"
    );
}

/// The payload of the value stored under key `seq`, if it checks.
pub fn decode_value(seq: u64, value: &[u8]) -> Result<&[u8], &'static str> {
    if value.len() < VALUE_HEADER_LEN {
        return Err("shorter than its checksum");
    }
    if value.len() > VALUE_HEADER_LEN + PAYLOAD_MAX {
        return Err("longer than any record");
    }
    let crc = u32::from_le_bytes(value[..VALUE_HEADER_LEN].try_into().expect("4 bytes"));
    let payload = &value[VALUE_HEADER_LEN..];
    if checksum(seq, payload) != crc {
        return Err("checksum mismatch");
    }
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_round_trips_and_detects_every_single_bit_flip() {
        let mut frame = Vec::new();
        encode_frame(7, b"hello ledger", &mut frame);
        assert_eq!(
            decode_frame(&frame),
            Frame::Complete {
                seq: 7,
                payload: b"hello ledger",
                len: frame.len()
            }
        );
        for bit in 0..frame.len() * 8 {
            let mut damaged = frame.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(
                !matches!(decode_frame(&damaged), Frame::Complete { .. }),
                "bit {bit} undetected"
            );
        }
        for cut in 0..frame.len() {
            assert_eq!(
                decode_frame(&frame[..cut]),
                Frame::Incomplete,
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn value_binds_the_sequence_number() {
        let mut value = Vec::new();
        encode_value(9, b"payload", &mut value);
        assert_eq!(decode_value(9, &value), Ok(&b"payload"[..]));
        assert!(decode_value(10, &value).is_err());
        assert!(decode_value(9, &value[..value.len() - 1]).is_err());
    }
}
