//! The write-ahead log, behind a small trait so that the engine runs on sled in production
//! and on a simulated disk that loses unsynced writes in the crash tests.
//!
//! A log is a sequence of records numbered from 1 without holes, one record per transaction:
//! the events one request emitted, encoded together ([`RecordGroup::push_transaction`]), so
//! a record is applied whole or, cut by a crash, not at all. Each record is checksummed
//! ([`crate::record`]) when written and checked when read back. Reading back is the job of
//! [`Wal::recover`], the only reader: it validates everything from a sequence number on,
//! drops a torn last record (a write the crash cut short: never acknowledged), and refuses
//! damage anywhere else by naming the record.

use std::io;

use serde::{de::DeserializeOwned, Serialize};

use crate::record::{FORMAT, FORMAT_BEFORE, RECORD_MAX};

/// Records of one group commit, encoded and numbered, ready to append.
#[derive(Clone, Debug, Default)]
pub struct RecordGroup {
    first_seq: u64,
    payloads: Vec<u8>,
    ends: Vec<u32>,
}

impl RecordGroup {
    pub fn new(first_seq: u64) -> RecordGroup {
        assert!(first_seq >= 1, "records are numbered from 1");
        RecordGroup {
            first_seq,
            payloads: Vec::new(),
            ends: Vec::new(),
        }
    }

    /// Empties the group for reuse, keeping its buffers.
    pub fn reset(&mut self, first_seq: u64) {
        assert!(first_seq >= 1, "records are numbered from 1");
        self.first_seq = first_seq;
        self.payloads.clear();
        self.ends.clear();
    }

    /// Appends a transaction's events as the next record: their count (a postcard varint,
    /// one byte up to 127 events), then each event in postcard. A transaction of one event
    /// costs one byte more than the event.
    pub fn push_transaction<E: Serialize>(&mut self, events: &[E]) {
        assert!(!events.is_empty(), "a transaction record holds events");
        let start = self.payloads.len();
        let count = u32::try_from(events.len()).expect("fewer than 2^32 events");
        let mut payloads = std::mem::take(&mut self.payloads);
        payloads = postcard::to_extend(&count, payloads).expect("a count encodes");
        for event in events {
            payloads = postcard::to_extend(event, payloads).expect("events encode");
        }
        self.payloads = payloads;
        let len = self.payloads.len() - start;
        assert!(
            len <= RECORD_MAX,
            "a transaction encodes to {len} bytes, more than a record holds"
        );
        self.ends.push(self.payloads.len() as u32);
    }

    /// Appends one event as a transaction of its own.
    pub fn push_event<E: Serialize>(&mut self, event: &E) {
        self.push_transaction(std::slice::from_ref(event));
    }

    pub fn push_payload(&mut self, payload: &[u8]) {
        assert!(
            payload.len() <= RECORD_MAX,
            "payload of {} bytes",
            payload.len()
        );
        self.payloads.extend_from_slice(payload);
        self.ends.push(self.payloads.len() as u32);
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn first_seq(&self) -> u64 {
        self.first_seq
    }

    /// Sequence number of the last record; `first_seq - 1` when empty.
    pub fn last_seq(&self) -> u64 {
        self.first_seq + self.ends.len() as u64 - 1
    }

    /// Bytes of payload in the group.
    pub fn payload_bytes(&self) -> usize {
        self.payloads.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = (u64, &[u8])> + '_ {
        let mut start = 0usize;
        self.ends.iter().enumerate().map(move |(index, &end)| {
            let payload = &self.payloads[start..end as usize];
            start = end as usize;
            (self.first_seq + index as u64, payload)
        })
    }
}

/// Decodes the events of a transaction record ([`RecordGroup::push_transaction`]) in order,
/// passing each to `each`; returns how many. A record that checks was written whole, so
/// anything but a count of one or more and exactly that many events is an error.
pub fn decode_transaction<E: DeserializeOwned>(
    payload: &[u8],
    mut each: impl FnMut(E),
) -> Result<u32, String> {
    let (count, mut rest) = postcard::take_from_bytes::<u32>(payload)
        .map_err(|error| format!("checks but its event count does not decode: {error}"))?;
    if count == 0 {
        return Err("checks but holds no events".to_string());
    }
    for index in 0..count {
        let (event, tail) = postcard::take_from_bytes::<E>(rest).map_err(|error| {
            format!("checks but its event {index} of {count} does not decode: {error}")
        })?;
        each(event);
        rest = tail;
    }
    if !rest.is_empty() {
        return Err(format!(
            "checks but has {} bytes after its {count} events",
            rest.len()
        ));
    }
    Ok(count)
}

/// A record dropped at recovery because it was the last one and did not check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    /// Its sequence number, when the header that carries it was readable.
    pub seq: Option<u64>,
    pub reason: String,
}

/// What [`Wal::recover`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// First and last valid records at or after `from_seq`; `None` when there are none.
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    /// Records passed to the visitor.
    pub records: u64,
    pub torn_tail: Option<TornTail>,
}

#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error(
        "WAL record {seq} is damaged ({reason}) and is not the last record, so nothing after it \
         can be trusted: refusing to start. Restore the WAL directory from a backup or replica."
    )]
    Corrupt { seq: u64, reason: String },
    #[error(
        "WAL record {seq} is missing (records must follow each other without holes): refusing to \
         start. Was the WAL directory replaced, or trimmed past the newest snapshot?"
    )]
    Missing { seq: u64 },
    #[error(
        "WAL record {seq} is in the format {FORMAT_BEFORE} (one record per event), and this build \
         reads {FORMAT} (one record per transaction) only: refusing to start rather than misread \
         it. Recover this data directory with the build that wrote it."
    )]
    FormatBefore { seq: u64 },
    #[error("WAL record {seq} checks but cannot be replayed: {reason}")]
    Rejected { seq: u64, reason: String },
    #[error("WAL I/O error: {0}")]
    Io(#[from] io::Error),
}

/// Receives each valid record at recovery; an `Err` stops recovery naming the record.
pub type Visit<'a> = dyn FnMut(u64, &[u8]) -> Result<(), String> + 'a;

pub trait Wal: Send {
    /// Reads the log back from record `from_seq` (>= 1) on, checking each record, and passes
    /// each to `visit` in order. Records before `from_seq` may exist and are not read.
    ///
    /// - Records at or after `from_seq` must be contiguous and start at `from_seq`:
    ///   otherwise `Missing`.
    /// - A last record that does not check is a torn write: it is removed (durably) and
    ///   reported in [`Recovered::torn_tail`], with a `tracing::warn!`.
    /// - A record that does not check and is followed by another: `Corrupt`, naming it.
    ///
    /// Afterwards the log appends after the last valid record (or at any number, if empty).
    fn recover(&mut self, from_seq: u64, visit: &mut Visit<'_>) -> Result<Recovered, WalError>;

    /// About how many records [`Wal::recover`] from `from_seq` will visit, cheaply, before
    /// reading them: replay reserves room for them. A hint, 0 when unknown (the default).
    fn records_hint(&self, _from_seq: u64) -> io::Result<u64> {
        Ok(0)
    }

    /// Appends a group of records, which must follow the last record. Not durable until
    /// [`Wal::sync`] returns.
    fn append(&mut self, group: &RecordGroup) -> io::Result<()>;

    /// Makes every appended record durable: when it returns `Ok`, they survive power loss.
    /// An `Err` is fatal: the caller must not carry on (a failed fsync may have dropped the
    /// dirty pages, so retrying could report success for lost data).
    fn sync(&mut self) -> io::Result<()>;

    /// Removes about `records_max` of the oldest records with a sequence number below `seq`
    /// (a WAL that stores records in pages removes whole pages: up to a page more), returning
    /// how many it removed; fewer than `records_max` only when none below `seq` is left. Durable at the next sync at the latest; a trim lost in
    /// a crash only leaves records recovery skips.
    fn trim_before(&mut self, seq: u64, records_max: usize) -> io::Result<usize>;
}

/// Checks the order of records read back: the guard every [`Wal::recover`] shares.
#[derive(Debug)]
pub(crate) struct Sequence {
    from_seq: u64,
    last: Option<u64>,
}

impl Sequence {
    pub(crate) fn new(from_seq: u64) -> Sequence {
        assert!(from_seq >= 1, "records are numbered from 1");
        Sequence {
            from_seq,
            last: None,
        }
    }

    /// The sequence number the next record must carry.
    pub(crate) fn expected(&self) -> u64 {
        self.last.map_or(self.from_seq, |last| last + 1)
    }

    pub(crate) fn accept(&mut self, seq: u64) -> Result<(), WalError> {
        let expected = self.expected();
        if seq != expected {
            return Err(WalError::Missing { seq: expected });
        }
        self.last = Some(seq);
        Ok(())
    }

    pub(crate) fn last(&self) -> Option<u64> {
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_numbers_its_records() {
        let mut group = RecordGroup::new(5);
        group.push_payload(b"a");
        group.push_event(&7u32);
        group.push_payload(b"");
        let records: Vec<_> = group.iter().collect();
        assert_eq!(
            records,
            vec![(5, &b"a"[..]), (6, &[1u8, 7][..]), (7, &b""[..])]
        );
        assert_eq!(group.last_seq(), 7);
        group.reset(8);
        assert!(group.is_empty());
        assert_eq!(group.last_seq(), 7);
    }

    #[test]
    fn a_transaction_is_one_record_and_decodes_whole() {
        let mut group = RecordGroup::new(1);
        group.push_transaction(&[300u32, 7, 0]);
        group.push_event(&9u32);
        assert_eq!(group.len(), 2);
        let (_, three) = group.iter().next().expect("a record");
        let mut events = Vec::new();
        assert_eq!(decode_transaction::<u32>(three, |e| events.push(e)), Ok(3));
        assert_eq!(events, vec![300, 7, 0]);
        let (_, one) = group.iter().nth(1).expect("a record");
        assert_eq!(one, &[1, 9][..], "one event costs one byte of count");
        for cut in 0..three.len() {
            let error = decode_transaction::<u32>(&three[..cut], |_| {});
            assert!(error.is_err(), "cut at {cut} decodes");
        }
        let mut longer = three.to_vec();
        longer.push(0);
        let error = decode_transaction::<u32>(&longer, |_| {}).unwrap_err();
        assert!(error.contains("1 bytes after its 3 events"), "{error}");
        let error = decode_transaction::<u32>(&[0], |_| {}).unwrap_err();
        assert!(error.contains("no events"), "{error}");
    }
}
