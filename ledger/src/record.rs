//! The bytes of one WAL record, shared by every [`crate::wal::Wal`]: sequence number,
//! crc32c and payload.
//!
//! The checksum covers the sequence number as well as the payload, so a record copied to the
//! wrong place (or a stale record left by a storage engine) fails its check.
//!
//! Three layouts:
//! - a *frame* for byte logs (the simulated disk): a header that checks itself, so that a
//!   damaged length cannot make the reader skip or invent records, then the payload;
//! - a *value* for key-value logs, one record per key: the key carries the sequence number
//!   and the store carries the length;
//! - a *page* for key-value logs, several consecutive records per key (sled): the key carries
//!   the first record's sequence number, the page `crc u32 | (len u16 | payload)*`. One key
//!   per record costs sled far more than the record itself (its per-insert work is about
//!   15,000 instructions), so a group is stored as a few pages.

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

/// Largest page body: one record of the largest payload, with its length. Keeps a sled value
/// as small as a single-record value always was (see [`PAYLOAD_MAX`]).
pub const PAGE_BODY_MAX: usize = PAGE_LEN_BYTES + PAYLOAD_MAX;

/// Length prefix of each record in a page.
pub const PAGE_LEN_BYTES: usize = 2;

/// Collects consecutive records into a page body.
#[derive(Debug, Default)]
pub struct PageBody {
    body: Vec<u8>,
    records: usize,
}

impl PageBody {
    /// Whether `payload` still fits (an empty page takes any record).
    pub fn fits(&self, payload: &[u8]) -> bool {
        self.records == 0 || self.body.len() + PAGE_LEN_BYTES + payload.len() <= PAGE_BODY_MAX
    }

    pub fn push(&mut self, payload: &[u8]) {
        assert!(
            payload.len() <= PAYLOAD_MAX,
            "payload of {} bytes",
            payload.len()
        );
        assert!(self.fits(payload), "page is full");
        self.body
            .extend_from_slice(&(payload.len() as u16).to_le_bytes());
        self.body.extend_from_slice(payload);
        self.records += 1;
    }

    pub fn records(&self) -> usize {
        self.records
    }

    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    pub fn clear(&mut self) {
        self.body.clear();
        self.records = 0;
    }

    /// Writes the page value of these records, the first numbered `first_seq`, to `out`
    /// (cleared first), then reads it back (validate what is written).
    pub fn encode(&self, first_seq: u64, out: &mut Vec<u8>) {
        assert!(self.records > 0, "an empty page");
        out.clear();
        out.extend_from_slice(&checksum(first_seq, &self.body).to_le_bytes());
        out.extend_from_slice(&self.body);
        let read = decode_page(first_seq, out).map(|records| records.count());
        assert_eq!(
            read,
            Ok(self.records),
            "page of record {first_seq} does not read back"
        );
    }
}

/// The records of the page stored under key `first_seq`, in order, if it checks.
pub fn decode_page(
    first_seq: u64,
    value: &[u8],
) -> Result<impl Iterator<Item = &[u8]> + '_, &'static str> {
    if value.len() < VALUE_HEADER_LEN + PAGE_LEN_BYTES {
        return Err("shorter than a page header and one record");
    }
    let crc = u32::from_le_bytes(value[..VALUE_HEADER_LEN].try_into().expect("4 bytes"));
    let body = &value[VALUE_HEADER_LEN..];
    if checksum(first_seq, body) != crc {
        return Err("checksum mismatch");
    }
    // A body that checks was written by `PageBody`: its lengths must add up exactly.
    let mut rest = body;
    while !rest.is_empty() {
        let Some((len, tail)) = rest.split_first_chunk::<PAGE_LEN_BYTES>() else {
            return Err("record length cut short");
        };
        let len = u16::from_le_bytes(*len) as usize;
        if len > PAYLOAD_MAX || len > tail.len() {
            return Err("record length runs past the page");
        }
        rest = &tail[len..];
    }
    let mut rest = body;
    Ok(std::iter::from_fn(move || {
        let (len, tail) = rest.split_first_chunk::<PAGE_LEN_BYTES>()?;
        let (payload, tail) = tail.split_at(u16::from_le_bytes(*len) as usize);
        rest = tail;
        Some(payload)
    }))
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
    fn page_round_trips_and_binds_its_first_sequence_number() {
        let mut page = PageBody::default();
        for payload in [&b"one"[..], b"", b"three"] {
            assert!(page.fits(payload));
            page.push(payload);
        }
        let mut value = Vec::new();
        page.encode(40, &mut value);
        let records: Vec<_> = decode_page(40, &value).unwrap().collect();
        assert_eq!(records, vec![&b"one"[..], b"", b"three"]);
        assert!(decode_page(41, &value).is_err());
        for cut in 0..value.len() {
            assert!(decode_page(40, &value[..cut]).is_err(), "cut at {cut}");
        }
        for bit in 0..value.len() * 8 {
            let mut damaged = value.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(decode_page(40, &damaged).is_err(), "bit {bit} undetected");
        }
    }

    #[test]
    fn page_holds_one_largest_record_and_no_more() {
        let mut page = PageBody::default();
        let largest = vec![7u8; PAYLOAD_MAX];
        page.push(&largest);
        assert!(!page.fits(b""));
        let mut value = Vec::new();
        page.encode(1, &mut value);
        assert_eq!(value.len(), VALUE_HEADER_LEN + PAGE_BODY_MAX);
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
