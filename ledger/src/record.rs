//! The bytes of one WAL record, shared by every [`crate::wal::Wal`]: sequence number,
//! crc32c and payload.
//!
//! The checksum covers the layout's tag ([`FORMAT`]) and the sequence number as well as the
//! payload, so a record copied to the wrong place (or a stale record left by a storage
//! engine) fails its check, and so does a record of an earlier layout: recovery tells those
//! apart from damage by their own checksum ([`FORMAT_BEFORE`]) and refuses them by name
//! instead of misreading them.
//!
//! Three layouts:
//! - a *frame* for byte logs (the simulated disk): a header that checks itself, so that a
//!   damaged length cannot make the reader skip or invent records, then the payload;
//! - a *value* for key-value logs, one record per key: the key carries the sequence number
//!   and the store carries the length;
//! - a *page* for key-value logs, several consecutive records per key (sled): the key carries
//!   the first record's sequence number, the page `crc u32 | (len u16 | payload)*`. One key
//!   per record costs sled far more than the record itself (its per-insert work is about
//!   15,000 instructions), so a group is stored as a few pages. A record too large for a page
//!   (a bulk admin change) is stored alone as *chunks* under keys of its own
//!   ([`encode_chunk`]).

/// The layout of the records this build writes and reads: one record per transaction (all
/// the events one request emitted), see [`crate::wal::RecordGroup::push_transaction`].
pub const FORMAT: &str = "BURSWAL2";

/// The layout before it, refused at recovery: one record per event, checksummed over the
/// sequence number and the payload alone.
pub const FORMAT_BEFORE: &str = "BURSWAL1";

/// Largest payload of a record stored inside a page. Events are a few hundred bytes; the
/// bound keeps sled's leaf nodes far below its blob threshold (sled writes blobs as separate
/// files and never syncs them), and bounds what a damaged length could make a reader
/// allocate. Larger records are stored in chunks of at most a page each.
pub const PAYLOAD_MAX: usize = 4096;

/// Largest payload of any record: the events of one transaction (the largest admin change,
/// 10,000 subsidies, encodes to about 1.3 MB).
pub const RECORD_MAX: usize = 16 << 20;

/// Frame header: `len u32 | seq u64 | payload_crc u32 | header_crc u32`, little endian.
pub const FRAME_HEADER_LEN: usize = 20;

/// Value header for key-value logs: `crc u32`.
pub const VALUE_HEADER_LEN: usize = 4;

pub fn checksum(seq: u64, payload: &[u8]) -> u32 {
    let tagged = crc32c::crc32c_append(crc32c::crc32c(FORMAT.as_bytes()), &seq.to_le_bytes());
    crc32c::crc32c_append(tagged, payload)
}

/// The checksum a record of [`FORMAT_BEFORE`] carries.
fn checksum_before(seq: u64, payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&seq.to_le_bytes()), payload)
}

/// Appends the frame of record `seq` to `out`, then reads it back from `out` (validate what
/// is written, not what was meant to be written).
pub fn encode_frame(seq: u64, payload: &[u8], out: &mut Vec<u8>) {
    assert!(
        payload.len() <= RECORD_MAX,
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
    /// A whole record of the layout before ([`FORMAT_BEFORE`]).
    FormatBefore { seq: u64 },
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
    if payload_len > RECORD_MAX {
        // A header that checks but claims the impossible was written by a bug.
        return Frame::BadHeader;
    }
    let len = FRAME_HEADER_LEN + payload_len;
    if bytes.len() < len {
        return Frame::Incomplete;
    }
    let payload = &bytes[FRAME_HEADER_LEN..len];
    if checksum(seq, payload) != payload_crc {
        if checksum_before(seq, payload) == payload_crc {
            return Frame::FormatBefore { seq };
        }
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

/// Why a page or a chunk does not read.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum PageError {
    /// Damaged, or cut short by a torn write.
    Damaged(&'static str),
    /// Whole, but of the layout before ([`FORMAT_BEFORE`]): this build cannot read it.
    FormatBefore,
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PageError::Damaged(reason) => f.write_str(reason),
            PageError::FormatBefore => write!(f, "written in the WAL format {FORMAT_BEFORE}"),
        }
    }
}

/// The records of the page stored under key `first_seq`, in order, if it checks.
pub fn decode_page(
    first_seq: u64,
    value: &[u8],
) -> Result<impl Iterator<Item = &[u8]> + '_, PageError> {
    if value.len() < VALUE_HEADER_LEN + PAGE_LEN_BYTES {
        return Err(PageError::Damaged(
            "shorter than a page header and one record",
        ));
    }
    let crc = u32::from_le_bytes(value[..VALUE_HEADER_LEN].try_into().expect("4 bytes"));
    let body = &value[VALUE_HEADER_LEN..];
    if checksum(first_seq, body) != crc {
        if checksum_before(first_seq, body) == crc {
            return Err(PageError::FormatBefore);
        }
        return Err(PageError::Damaged("checksum mismatch"));
    }
    // A body that checks was written by `PageBody`: its lengths must add up exactly.
    let mut rest = body;
    while !rest.is_empty() {
        let Some((len, tail)) = rest.split_first_chunk::<PAGE_LEN_BYTES>() else {
            return Err(PageError::Damaged("record length cut short"));
        };
        let len = u16::from_le_bytes(*len) as usize;
        if len > PAYLOAD_MAX || len > tail.len() {
            return Err(PageError::Damaged("record length runs past the page"));
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

/// Whether a record is stored in chunks of its own rather than in a page.
pub fn is_large(payload: &[u8]) -> bool {
    payload.len() > PAYLOAD_MAX
}

/// Bytes of a large record's length at the start of its first chunk.
const CHUNK_LEN_BYTES: usize = 4;

/// Cuts a large record into chunks of at most a page body each and passes the value of each
/// (with its index, from 0) to `each`: `crc u32 | body`, chunk 0's body starting with the
/// record's length (u32 LE). The checksum covers the sequence number and the index, so a
/// chunk moved to another record or place fails. Each value is read back before it is passed.
pub fn encode_chunks(seq: u64, payload: &[u8], mut each: impl FnMut(u32, &[u8])) {
    assert!(
        is_large(payload) && payload.len() <= RECORD_MAX,
        "record {seq}: {} bytes is not a large record",
        payload.len()
    );
    let mut value = Vec::with_capacity(VALUE_HEADER_LEN + PAGE_BODY_MAX);
    let (first, rest) = payload.split_at(PAGE_BODY_MAX - CHUNK_LEN_BYTES);
    let chunks = std::iter::once(first).chain(rest.chunks(PAGE_BODY_MAX));
    for (index, bytes) in (0u32..).zip(chunks) {
        value.clear();
        value.extend_from_slice(&[0; VALUE_HEADER_LEN]);
        if index == 0 {
            value.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        }
        value.extend_from_slice(bytes);
        let crc = chunk_checksum(seq, index, &value[VALUE_HEADER_LEN..]);
        value[..VALUE_HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
        let read = decode_chunk(seq, index, &value);
        let expected = Chunk {
            record_len: (index == 0).then_some(payload.len()),
            bytes,
        };
        assert_eq!(
            read,
            Ok(expected),
            "chunk {index} of record {seq} does not read back"
        );
        each(index, &value);
    }
}

/// What a chunk holds: its share of the record, and in the first chunk the record's length.
#[derive(Debug, PartialEq, Eq)]
pub struct Chunk<'a> {
    pub record_len: Option<usize>,
    pub bytes: &'a [u8],
}

/// Chunk `index` of large record `seq`, if it checks.
pub fn decode_chunk(seq: u64, index: u32, value: &[u8]) -> Result<Chunk<'_>, PageError> {
    let header = VALUE_HEADER_LEN + if index == 0 { CHUNK_LEN_BYTES } else { 0 };
    if value.len() <= header || value.len() > VALUE_HEADER_LEN + PAGE_BODY_MAX {
        return Err(PageError::Damaged("chunk of an impossible length"));
    }
    let crc = u32::from_le_bytes(value[..VALUE_HEADER_LEN].try_into().expect("4 bytes"));
    if chunk_checksum(seq, index, &value[VALUE_HEADER_LEN..]) != crc {
        return Err(PageError::Damaged("chunk checksum mismatch"));
    }
    let record_len = (index == 0).then(|| {
        let len = &value[VALUE_HEADER_LEN..header];
        u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize
    });
    if record_len.is_some_and(|len| len <= PAYLOAD_MAX || len > RECORD_MAX) {
        return Err(PageError::Damaged("large record of an impossible length"));
    }
    Ok(Chunk {
        record_len,
        bytes: &value[header..],
    })
}

fn chunk_checksum(seq: u64, index: u32, body: &[u8]) -> u32 {
    let mut position = [0u8; 12];
    position[..8].copy_from_slice(&seq.to_le_bytes());
    position[8..].copy_from_slice(&index.to_le_bytes());
    let tagged = crc32c::crc32c_append(crc32c::crc32c(FORMAT.as_bytes()), &position);
    crc32c::crc32c_append(tagged, body)
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

    #[test]
    fn a_large_record_round_trips_in_chunks_that_bind_their_place() {
        let payload: Vec<u8> = (0..3 * PAGE_BODY_MAX + 17).map(|i| i as u8).collect();
        let mut chunks = Vec::new();
        encode_chunks(12, &payload, |index, value| {
            chunks.push((index, value.to_vec()))
        });
        assert_eq!(chunks.len(), 4);
        let mut read = Vec::new();
        for (index, value) in &chunks {
            let chunk = decode_chunk(12, *index, value).unwrap();
            assert_eq!(chunk.record_len, (*index == 0).then_some(payload.len()));
            assert!(value.len() <= VALUE_HEADER_LEN + PAGE_BODY_MAX);
            read.extend_from_slice(chunk.bytes);
            assert!(decode_chunk(13, *index, value).is_err(), "another record");
            assert!(decode_chunk(12, index + 1, value).is_err(), "another place");
        }
        assert_eq!(read, payload);
        let (_, last) = &chunks[3];
        for bit in 0..last.len() * 8 {
            let mut damaged = last.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(
                decode_chunk(12, 3, &damaged).is_err(),
                "bit {bit} undetected"
            );
        }
    }

    #[test]
    fn records_of_the_format_before_are_told_from_damage() {
        let before = |seq: u64, payload: &[u8]| {
            crc32c::crc32c_append(crc32c::crc32c(&seq.to_le_bytes()), payload)
        };
        // A page as the build before wrote it.
        let body = [3u8, 0, b'o', b'l', b'd'];
        let mut value = before(5, &body).to_le_bytes().to_vec();
        value.extend_from_slice(&body);
        assert_eq!(decode_page(5, &value).err(), Some(PageError::FormatBefore));
        value[6] ^= 1;
        assert_eq!(
            decode_page(5, &value).err(),
            Some(PageError::Damaged("checksum mismatch"))
        );
        // A frame as the build before wrote it: its header checks, its payload does not.
        let mut frame = Vec::new();
        encode_frame(5, b"old", &mut frame);
        frame[12..16].copy_from_slice(&before(5, b"old").to_le_bytes());
        let header_crc = crc32c::crc32c(&frame[..16]);
        frame[16..20].copy_from_slice(&header_crc.to_le_bytes());
        assert_eq!(decode_frame(&frame), Frame::FormatBefore { seq: 5 });
    }
}
