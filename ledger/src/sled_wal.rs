//! The production WAL in sled 0.34.7. A group's records are stored as a few *pages*
//! ([`crate::record::PageBody`]): one key per page (the big-endian sequence number of its first
//! record, so keys sort in log order), the value checksummed over that number and the
//! records. One key per record made sled's insert the cost of a commit (about 15,000
//! instructions per record, against 2,000 to decide and apply a purchase); a page holds a
//! few dozen purchases.
//!
//! Why the extra syncs: sled's `flush()` ends, on Linux, in `sync_file_range`, which writes
//! the pages but neither flushes the device's write cache nor persists the file's metadata,
//! and sled only calls `fsync` from a background thread every 500 ms (sled issues #1452,
//! #1351). An acknowledged transfer must survive a power cut, so after `flush()` this WAL
//! calls `fdatasync` on sled's data file (`<dir>/db`) itself: one real sync per group. The
//! background fsync thread is switched off (`flush_every_ms(None)`): it would only add syncs
//! that cover nothing more.
//!
//! The directory is synced once at open, after sled has created its files. Afterwards the
//! WAL creates no files: pages are bounded ([`crate::record::PAGE_BODY_MAX`]) so sled never
//! moves one to a separate blob file (which it would not sync); the open checks that no blob
//! exists.
//!
//! A record too large for a page (a bulk admin change: [`crate::record::is_large`]) is stored
//! alone, in chunks of a page each under keys of 12 bytes: its sequence number, then the
//! chunk's index (big-endian u32), so they sort after the page before it and before the next
//! page. Such a record is read back whole or not at all.
//!
//! A page is written whole by sled's batch, so a torn write can only leave a damaged last
//! page (or large record): recovery drops it whole (its records were never acknowledged: the
//! group's sync did not return).

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::record::{
    decode_chunk, decode_page, encode_chunks, is_large, PageBody, PageError, PAGE_LEN_BYTES,
};
use crate::wal::{RecordGroup, Recovered, Sequence, TornTail, Visit, Wal, WalError};

/// Page cache sled may use: the WAL is written once and read back only at recovery.
const SLED_CACHE_BYTES: u64 = 64 * 1024 * 1024;

pub struct SledWal {
    dir: PathBuf,
    db: sled::Db,
    /// sled's data file, opened a second time to `fdatasync` it.
    data_file: File,
    next_seq: Option<u64>,
    page: PageBody,
    value: Vec<u8>,
}

impl SledWal {
    pub fn open(dir: impl AsRef<Path>) -> io::Result<SledWal> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir)?;
        let db = sled::Config::new()
            .path(&dir)
            .cache_capacity(SLED_CACHE_BYTES)
            .flush_every_ms(None)
            .open()
            .map_err(|error| {
                io::Error::other(format!(
                    "cannot open sled WAL in {}: {error}",
                    dir.display()
                ))
            })?;
        let data_file = File::open(dir.join("db"))?;
        let blobs = dir.join("blobs");
        if blobs.exists() && std::fs::read_dir(&blobs)?.next().is_some() {
            return Err(io::Error::other(format!(
                "sled WAL in {} holds blob files, which sled never syncs: records must stay small",
                dir.display()
            )));
        }
        // sled may just have created its files: make their directory entries durable.
        sync_dir(&dir)?;
        if blobs.exists() {
            sync_dir(&blobs)?;
        }
        if let Some(parent) = dir.parent().filter(|parent| !parent.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
        Ok(SledWal {
            dir,
            db,
            data_file,
            next_seq: None,
            page: PageBody::default(),
            value: Vec::new(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes sled uses on disk (its data file and snapshots).
    pub fn size_on_disk(&self) -> io::Result<u64> {
        self.db.size_on_disk().map_err(sled_error)
    }

    /// The underlying tree, for tests that damage records on purpose.
    pub fn tree(&self) -> &sled::Db {
        &self.db
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn sled_error(error: sled::Error) -> io::Error {
    match error {
        sled::Error::Io(error) => error,
        other => io::Error::other(other.to_string()),
    }
}

/// What a key names: a page (its first record), or a chunk of a large record.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Key {
    Page(u64),
    Chunk(u64, u32),
}

impl Key {
    fn parse(key: &[u8]) -> Option<Key> {
        let (seq, index) = key.split_first_chunk::<8>()?;
        let seq = u64::from_be_bytes(*seq);
        match index.len() {
            0 => Some(Key::Page(seq)),
            4 => Some(Key::Chunk(seq, u32::from_be_bytes(index.try_into().ok()?))),
            _ => None,
        }
    }

    /// The sequence number of the first record stored from this key on.
    fn seq(self) -> u64 {
        match self {
            Key::Page(seq) | Key::Chunk(seq, _) => seq,
        }
    }

    /// Whether the key starts a page or a large record.
    fn starts_records(self) -> bool {
        matches!(self, Key::Page(_) | Key::Chunk(_, 0))
    }
}

fn key_seq(key: &[u8]) -> Option<u64> {
    Key::parse(key).map(Key::seq)
}

fn chunk_key(seq: u64, index: u32) -> [u8; 12] {
    let mut key = [0u8; 12];
    key[..8].copy_from_slice(&seq.to_be_bytes());
    key[8..].copy_from_slice(&index.to_be_bytes());
    key
}

type Pages = std::iter::Peekable<sled::Iter>;

/// Reads large record `seq` on from its chunk `index` (whose value is `value`), taking its
/// further chunks from `pages`: the record, or why it does not read (then the rest of its
/// chunks are taken too, so that what follows in `pages` is the next record's).
fn read_large(
    seq: u64,
    index: u32,
    value: &[u8],
    pages: &mut Pages,
) -> Result<Result<Vec<u8>, PageError>, WalError> {
    let read = read_chunks(seq, index, value, pages)?;
    if read.is_err() {
        while let Some(Ok((key, _))) = pages.peek() {
            if !matches!(Key::parse(key), Some(Key::Chunk(of, _)) if of == seq) {
                break;
            }
            pages.next();
        }
    }
    Ok(read)
}

fn read_chunks(
    seq: u64,
    index: u32,
    value: &[u8],
    pages: &mut Pages,
) -> Result<Result<Vec<u8>, PageError>, WalError> {
    if index != 0 {
        return Ok(Err(PageError::Damaged(
            "chunk of a record without its first chunk",
        )));
    }
    let first = match decode_chunk(seq, 0, value) {
        Ok(first) => first,
        Err(error) => return Ok(Err(error)),
    };
    let len = first
        .record_len
        .expect("the first chunk holds the record's length");
    let mut record = Vec::with_capacity(len);
    record.extend_from_slice(first.bytes);
    let mut index = 0;
    while record.len() < len {
        index += 1;
        let next_is_ours = match pages.peek() {
            Some(Ok((key, _))) => Key::parse(key) == Some(Key::Chunk(seq, index)),
            Some(Err(_)) => true,
            None => false,
        };
        if !next_is_ours {
            return Ok(Err(PageError::Damaged("chunks missing")));
        }
        let (_, value) = pages.next().expect("peeked").map_err(sled_error)?;
        match decode_chunk(seq, index, &value) {
            Ok(chunk) if chunk.record_len.is_none() => record.extend_from_slice(chunk.bytes),
            Ok(_) => unreachable!("only the first chunk holds a length"),
            Err(error) => return Ok(Err(error)),
        }
    }
    if record.len() != len {
        return Ok(Err(PageError::Damaged("chunks longer than their record")));
    }
    Ok(Ok(record))
}

/// Passes a record read back to the visitor, if it is at or after `from_seq`.
fn accept(
    seq: u64,
    payload: &[u8],
    from_seq: u64,
    sequence: &mut Sequence,
    recovered: &mut Recovered,
    visit: &mut Visit<'_>,
) -> Result<(), WalError> {
    if seq >= from_seq {
        sequence.accept(seq)?;
        recovered.first_seq.get_or_insert(seq);
        visit(seq, payload).map_err(|reason| WalError::Rejected { seq, reason })?;
        recovered.records += 1;
    }
    Ok(())
}

impl Wal for SledWal {
    fn recover(&mut self, from_seq: u64, visit: &mut Visit<'_>) -> Result<Recovered, WalError> {
        let mut sequence = Sequence::new(from_seq);
        let mut recovered = Recovered::default();
        // Start at the page holding `from_seq`: the newest page (or large record) that starts
        // at or before it.
        let start = match self.db.range(..=from_seq.to_be_bytes()).next_back() {
            Some(item) => {
                let key = item.map_err(sled_error)?.0;
                let seq = key_seq(&key).unwrap_or(from_seq);
                sled::IVec::from(&seq.to_be_bytes()[..])
            }
            None => sled::IVec::from(&from_seq.to_be_bytes()[..]),
        };
        // The first record the next page must start with, and the last record seen.
        let mut next_page_seq: Option<u64> = None;
        let mut last_seen: Option<u64> = None;
        let mut pages = self.db.range(start..).peekable();
        while let Some(item) = pages.next() {
            let (key, value) = item.map_err(sled_error)?;
            let Some(parsed) = Key::parse(&key) else {
                let reason = format!("key of {} bytes is not a sequence number", key.len());
                let seq = next_page_seq.unwrap_or(from_seq);
                return Err(WalError::Corrupt { seq, reason });
            };
            let first_seq = parsed.seq();
            if let Some(expected) = next_page_seq {
                if first_seq != expected {
                    return Err(WalError::Missing { seq: expected });
                }
            }
            let read = match parsed {
                Key::Page(_) => decode_page(first_seq, &value).map(|records| {
                    let mut seq = first_seq;
                    for payload in records {
                        accept(seq, payload, from_seq, &mut sequence, &mut recovered, visit)?;
                        seq += 1;
                    }
                    Ok::<u64, WalError>(seq - 1)
                }),
                Key::Chunk(seq, index) => {
                    read_large(seq, index, &value, &mut pages)?.map(|record| {
                        let (sequence, recovered) = (&mut sequence, &mut recovered);
                        accept(seq, &record, from_seq, sequence, recovered, visit)?;
                        Ok::<u64, WalError>(seq)
                    })
                }
            };
            let is_last = pages.peek().is_none();
            match read {
                Ok(last) => {
                    let last = last?;
                    last_seen = Some(last);
                    next_page_seq = Some(last + 1);
                }
                // Whole, and unreadable by this build: neither damage nor a torn write.
                Err(PageError::FormatBefore) => {
                    return Err(WalError::FormatBefore { seq: first_seq })
                }
                Err(PageError::Damaged(reason)) if is_last => {
                    tracing::warn!(
                        seq = first_seq,
                        reason,
                        "WAL: dropping torn last page (records from this one on)"
                    );
                    recovered.torn_tail = Some(TornTail {
                        seq: Some(first_seq),
                        reason: reason.to_string(),
                    });
                    let mut torn = sled::Batch::default();
                    for key in self.db.scan_prefix(first_seq.to_be_bytes()).keys() {
                        torn.remove(key.map_err(sled_error)?);
                    }
                    self.db.apply_batch(torn).map_err(sled_error)?;
                    self.sync()?;
                }
                Err(PageError::Damaged(reason)) => {
                    return Err(WalError::Corrupt {
                        seq: first_seq,
                        reason: format!("page of records from {first_seq} on: {reason}"),
                    })
                }
            }
        }
        recovered.last_seq = sequence.last();
        if recovered.first_seq.is_none() {
            // Nothing at or after `from_seq`: the log may only end right before it.
            if let Some(last) = last_seen {
                if last + 1 != from_seq {
                    return Err(WalError::Missing { seq: from_seq });
                }
            }
        }
        self.next_seq = last_seen.map(|last| last + 1);
        Ok(recovered)
    }

    /// Up to the first record of the last page: short by at most a page's records. A
    /// damaged last key must not make replay reserve without bound: no more records than
    /// sled's files could hold (a record takes at least its length and one byte).
    fn records_hint(&self, from_seq: u64) -> io::Result<u64> {
        let last_page = self.db.last().map_err(sled_error)?;
        let last_page_seq = last_page.and_then(|(key, _)| key_seq(&key));
        let by_keys = last_page_seq.map_or(0, |seq| seq.saturating_add(1).saturating_sub(from_seq));
        let by_size = self.size_on_disk()? / (PAGE_LEN_BYTES as u64 + 1);
        Ok(by_keys.min(by_size))
    }

    fn append(&mut self, group: &RecordGroup) -> io::Result<()> {
        if group.is_empty() {
            return Ok(());
        }
        if let Some(next_seq) = self.next_seq {
            assert_eq!(
                group.first_seq(),
                next_seq,
                "records must follow each other"
            );
        }
        let mut batch = sled::Batch::default();
        let mut page_first_seq = group.first_seq();
        self.page.clear();
        for (seq, payload) in group.iter() {
            if is_large(payload) {
                // Alone, after the page before it: a large record is read back whole or not
                // at all.
                if !self.page.is_empty() {
                    self.page.encode(page_first_seq, &mut self.value);
                    batch.insert(&page_first_seq.to_be_bytes()[..], self.value.as_slice());
                    self.page.clear();
                }
                encode_chunks(seq, payload, |index, value| {
                    batch.insert(&chunk_key(seq, index)[..], value);
                });
                page_first_seq = seq + 1;
                continue;
            }
            if !self.page.fits(payload) {
                self.page.encode(page_first_seq, &mut self.value);
                batch.insert(&page_first_seq.to_be_bytes()[..], self.value.as_slice());
                self.page.clear();
                page_first_seq = seq;
            }
            if self.page.is_empty() {
                page_first_seq = seq;
            }
            self.page.push(payload);
        }
        if !self.page.is_empty() {
            self.page.encode(page_first_seq, &mut self.value);
            batch.insert(&page_first_seq.to_be_bytes()[..], self.value.as_slice());
        }
        assert_eq!(
            page_first_seq + self.page.records() as u64 - 1,
            group.last_seq(),
            "pages cover the group"
        );
        self.db.apply_batch(batch).map_err(sled_error)?;
        self.next_seq = Some(group.last_seq() + 1);
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        let started = Instant::now();
        self.db.flush().map_err(sled_error)?;
        // The real sync: `flush` only reached sync_file_range (see the module comment).
        self.data_file.sync_data()?;
        tracing::trace!(
            elapsed_us = started.elapsed().as_micros() as u64,
            "WAL synced"
        );
        Ok(())
    }

    /// Removes whole pages that end before `seq` (a page is known to end before `seq` when the
    /// next page starts at or before it), until they hold `records_max` records or more,
    /// returning how many records they held.
    fn trim_before(&mut self, seq: u64, records_max: usize) -> io::Result<usize> {
        let mut batch = sled::Batch::default();
        let mut removed = 0;
        // The keys of the last page (or large record) seen, not yet known to end before `seq`.
        let mut previous: Option<(u64, Vec<sled::IVec>)> = None;
        // A key is a page of records: stop at `records_max` records, not keys (4096 keys
        // were about 170,000 records, one sled batch that held the next group up).
        let keys = self.db.range(..=seq.to_be_bytes()).keys();
        for key in keys {
            if removed >= records_max {
                break;
            }
            let key = key.map_err(sled_error)?;
            let parsed = Key::parse(&key).ok_or_else(|| {
                io::Error::other(format!(
                    "WAL key of {} bytes is not a sequence number",
                    key.len()
                ))
            })?;
            if !parsed.starts_records() {
                if let Some((_, keys)) = previous.as_mut() {
                    keys.push(key);
                }
                continue;
            }
            if let Some((first_seq, keys)) = previous.take() {
                for key in keys {
                    batch.remove(key);
                }
                removed += (parsed.seq() - first_seq) as usize;
            }
            previous = Some((parsed.seq(), vec![key]));
        }
        if removed > 0 {
            self.db.apply_batch(batch).map_err(sled_error)?;
        }
        Ok(removed)
    }
}
