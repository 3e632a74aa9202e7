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
//! A generation's directory is synced once, when it is created, after sled has created its
//! files. sled creates no files afterwards: pages are bounded ([`crate::record::PAGE_BODY_MAX`])
//! so sled never moves one to a separate blob file (which it would not sync); the open checks
//! that no blob exists.
//!
//! A record too large for a page (a bulk admin change: [`crate::record::is_large`]) is stored
//! alone, in chunks of a page each under keys of 12 bytes: its sequence number, then the
//! chunk's index (big-endian u32), so they sort after the page before it and before the next
//! page. Such a record is read back whole or not at all.
//!
//! A group's pages (and chunks) are plain sled inserts in log order, written by the group's
//! one `flush`. sled recovers a prefix of its log (it stops at the first message that does not
//! check), so a crash keeps the first pages of an unsynced group and loses the rest: records
//! nobody was answered for, each a whole request. Not a sled batch, which would make the group
//! all or nothing: sled writes a batch's manifest as a buffer of its own, one more `pwrite` and
//! `sync_file_range` per group, about a quarter of the commit's device time (docs/BENCHMARKS.md).
//! A page's own checksum still catches damage; a damaged last page (or large record) is a
//! torn write and recovery drops it whole (its records were never acknowledged: the group's
//! sync did not return).
//!
//! The log is kept in *generations*, one sled database each ([`generations`]): every
//! [`GENERATION_RECORDS`] records the WAL moves on to a fresh one (at a group's start, after
//! syncing the one it leaves), and trimming deletes whole generations behind a snapshot. A
//! group never spans two generations.

mod generations;

use std::io;
use std::mem;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::record::{
    decode_chunk, decode_page, encode_chunks, is_large, PageBody, PageError, PAGE_LEN_BYTES,
};
use crate::wal::{RecordGroup, Recovered, Sequence, TornTail, Visit, Wal, WalError};
use generations::{Closed, Generation, Helper, History};

/// Records per generation before the WAL moves on to the next: trimming keeps up to this
/// many records that a snapshot already covers (a quarter of the default snapshot interval).
pub const GENERATION_RECORDS: u64 = 1 << 18;

pub struct SledWal {
    dir: PathBuf,
    /// The generation appended to.
    current: Generation,
    /// The first record in `current` (it holds those up to `next_seq`).
    current_first_seq: Option<u64>,
    /// Generations before `current` that recovery has not read yet, oldest first.
    unread: Vec<u64>,
    /// Generations before `current` that recovery read, for trimming.
    closed: History,
    generation_records: u64,
    /// Appended since the last sync (a rotation syncs the generation it leaves).
    unsynced: bool,
    helper: Helper,
    next_seq: Option<u64>,
    page: PageBody,
    value: Vec<u8>,
}

impl SledWal {
    /// Opens the WAL in `dir` (created if missing), moving on to a new generation every
    /// [`GENERATION_RECORDS`] records.
    pub fn open(dir: impl AsRef<Path>) -> io::Result<SledWal> {
        SledWal::open_with_generation_records(dir, GENERATION_RECORDS)
    }

    /// [`SledWal::open`] with generations of `records` records (tests use small ones).
    pub fn open_with_generation_records(
        dir: impl AsRef<Path>,
        records: u64,
    ) -> io::Result<SledWal> {
        assert!(records >= 1, "a generation holds at least one record");
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir)?;
        if let Some(parent) = dir.parent().filter(|parent| !parent.as_os_str().is_empty()) {
            generations::sync_dir(parent)?;
        }
        generations::adopt_single_database(&dir)?;
        let listing = generations::list(&dir)?;
        let mut listed = listing.ready;
        let newest = listed.pop().map_or(1, |(number, _)| number);
        let current = generations::open(&dir, newest)?;
        // Now that the newest is locked: what a crash left half created or half deleted.
        for unfinished in listing.unfinished {
            std::fs::remove_dir_all(unfinished)?;
        }
        Ok(SledWal {
            helper: Helper::start(dir.clone())?,
            dir,
            current,
            current_first_seq: None,
            unread: listed.into_iter().map(|(number, _)| number).collect(),
            closed: History::default(),
            generation_records: records,
            unsynced: false,
            next_seq: None,
            page: PageBody::default(),
            value: Vec::new(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes of the generations' sled data files.
    pub fn size_on_disk(&self) -> io::Result<u64> {
        let mut bytes = 0;
        for (_, dir) in generations::list(&self.dir)?.ready {
            match std::fs::metadata(dir.join("db")) {
                Ok(metadata) => bytes += metadata.len(),
                // Being deleted by the helper.
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => return Err(error),
            }
        }
        Ok(bytes)
    }

    /// The newest generation's tree, for tests that damage records on purpose.
    pub fn tree(&self) -> &sled::Db {
        &self.current.db
    }

    /// Records in the generation appended to.
    fn current_records(&self) -> u64 {
        match (self.current_first_seq, self.next_seq) {
            (Some(first_seq), Some(next_seq)) => next_seq - first_seq,
            _ => 0,
        }
    }

    /// Moves on to the next generation once this one is full and the helper has the next
    /// one ready (asked for when this one was three quarters full); at twice the size it
    /// waits for the helper, so that a generation stays bounded.
    fn rotate_if_due(&mut self) -> io::Result<()> {
        let records = self.current_records();
        if records < self.generation_records {
            return Ok(());
        }
        let overdue = records >= self.generation_records.saturating_mul(2);
        let Some(next) = self.helper.take_prepared(overdue) else {
            return Ok(());
        };
        if self.unsynced {
            self.sync()?;
        }
        let full = mem::replace(&mut self.current, next);
        let first_seq = self
            .current_first_seq
            .take()
            .expect("a full generation holds records");
        let last_seq = self.next_seq.expect("records were appended") - 1;
        self.closed.push(Closed {
            number: full.number,
            first_seq,
            last_seq,
        });
        self.helper.close(full);
        tracing::debug!(
            generation = self.current.number,
            from_seq = last_seq + 1,
            "WAL moved on to a new generation"
        );
        Ok(())
    }
}

/// Syncs one generation: `flush` (which ends in `sync_file_range`), then the real sync.
fn sync_generation(generation: &Generation) -> io::Result<()> {
    generation.db.flush().map_err(sled_error)?;
    // The real sync: `flush` only reached sync_file_range (see the module comment).
    generation.data_file.sync_data()
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

/// What replay carries from one page, and one generation, to the next.
struct Replay {
    from_seq: u64,
    sequence: Sequence,
    recovered: Recovered,
    /// The first record the next page must start with, and the last record seen.
    next_page_seq: Option<u64>,
    last_seen: Option<u64>,
}

impl Replay {
    /// Passes a record read back to the visitor, if it is at or after `from_seq`.
    fn accept(&mut self, seq: u64, payload: &[u8], visit: &mut Visit<'_>) -> Result<(), WalError> {
        if seq >= self.from_seq {
            self.sequence.accept(seq)?;
            self.recovered.first_seq.get_or_insert(seq);
            visit(seq, payload).map_err(|reason| WalError::Rejected { seq, reason })?;
            self.recovered.records += 1;
        }
        Ok(())
    }

    /// Reads one generation's records, returning the first and last it holds (`None` if none
    /// are left, as when its only page was torn). `holds_tail`: no later generation holds
    /// records, so a damaged last page is a torn write (dropped) rather than damage.
    fn generation(
        &mut self,
        generation: &Generation,
        holds_tail: bool,
        visit: &mut Visit<'_>,
    ) -> Result<Option<(u64, u64)>, WalError> {
        let db = &generation.db;
        let from_seq = self.from_seq;
        let first_seq = match db.first().map_err(sled_error)? {
            Some((key, _)) => key_seq(&key).ok_or_else(|| WalError::Corrupt {
                seq: self.next_page_seq.unwrap_or(from_seq),
                reason: format!("key of {} bytes is not a sequence number", key.len()),
            })?,
            None => return Ok(None),
        };
        // The last record read in this generation.
        let mut last_here = None;
        // Start at the page holding `from_seq`: the newest page (or large record) that starts
        // at or before it.
        let start = match db.range(..=from_seq.to_be_bytes()).next_back() {
            Some(item) => {
                let key = item.map_err(sled_error)?.0;
                let seq = key_seq(&key).unwrap_or(from_seq);
                sled::IVec::from(&seq.to_be_bytes()[..])
            }
            None => sled::IVec::from(&from_seq.to_be_bytes()[..]),
        };
        if key_seq(&start) > Some(first_seq) {
            // Pages skipped (all before `from_seq`): nothing to check the next one against.
            self.next_page_seq = None;
        }
        let mut pages = db.range(start..).peekable();
        while let Some(item) = pages.next() {
            let (key, value) = item.map_err(sled_error)?;
            let Some(parsed) = Key::parse(&key) else {
                let reason = format!("key of {} bytes is not a sequence number", key.len());
                let seq = self.next_page_seq.unwrap_or(from_seq);
                return Err(WalError::Corrupt { seq, reason });
            };
            let first_seq = parsed.seq();
            if let Some(expected) = self.next_page_seq {
                if first_seq != expected {
                    return Err(WalError::Missing { seq: expected });
                }
            }
            let read = match parsed {
                Key::Page(_) => decode_page(first_seq, &value).map(|records| {
                    let mut seq = first_seq;
                    for payload in records {
                        self.accept(seq, payload, visit)?;
                        seq += 1;
                    }
                    Ok::<u64, WalError>(seq - 1)
                }),
                Key::Chunk(seq, index) => {
                    read_large(seq, index, &value, &mut pages)?.map(|record| {
                        self.accept(seq, &record, visit)?;
                        Ok::<u64, WalError>(seq)
                    })
                }
            };
            let is_last = holds_tail && pages.peek().is_none();
            match read {
                Ok(last) => {
                    let last = last?;
                    last_here = Some(last);
                    self.last_seen = Some(last);
                    self.next_page_seq = Some(last + 1);
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
                    self.recovered.torn_tail = Some(TornTail {
                        seq: Some(first_seq),
                        reason: reason.to_string(),
                    });
                    let mut torn = sled::Batch::default();
                    for key in db.scan_prefix(first_seq.to_be_bytes()).keys() {
                        torn.remove(key.map_err(sled_error)?);
                    }
                    db.apply_batch(torn).map_err(sled_error)?;
                    sync_generation(generation)?;
                }
                Err(PageError::Damaged(reason)) => {
                    return Err(WalError::Corrupt {
                        seq: first_seq,
                        reason: format!("page of records from {first_seq} on: {reason}"),
                    })
                }
            }
        }
        Ok(last_here.map(|last| (first_seq, last)))
    }
}

impl Wal for SledWal {
    fn recover(&mut self, from_seq: u64, visit: &mut Visit<'_>) -> Result<Recovered, WalError> {
        let mut replay = Replay {
            from_seq,
            sequence: Sequence::new(from_seq),
            recovered: Recovered::default(),
            next_page_seq: None,
            last_seen: None,
        };
        // Every generation before the newest, opened in turn; a torn write can only be in
        // the last one that holds records.
        let mut older = Vec::new();
        for number in mem::take(&mut self.unread)
            .into_iter()
            .chain(self.closed.drain().map(|closed| closed.number))
        {
            older.push(generations::open(&self.dir, number)?);
        }
        let current_holds_records = !self.current.db.is_empty();
        let tail_generation = older
            .iter()
            .rposition(|generation| !generation.db.is_empty());
        for (index, generation) in older.into_iter().enumerate() {
            let holds_tail = !current_holds_records && Some(index) == tail_generation;
            let read = replay.generation(&generation, holds_tail, visit)?;
            let number = generation.number;
            self.helper.close(generation);
            match read {
                Some((first_seq, last_seq)) => self.closed.push(Closed {
                    number,
                    first_seq,
                    last_seq,
                }),
                // Created ahead and never used (or its only page was torn): nothing to keep.
                None => self.helper.remove(number),
            }
        }
        let newest = replay.generation(&self.current, true, visit)?;
        self.current_first_seq = newest.map(|(first_seq, _)| first_seq);
        let mut recovered = replay.recovered;
        recovered.last_seq = replay.sequence.last();
        if recovered.first_seq.is_none() {
            // Nothing at or after `from_seq`: the log may only end right before it.
            if let Some(last) = replay.last_seen {
                if last + 1 != from_seq {
                    return Err(WalError::Missing { seq: from_seq });
                }
            }
        }
        self.next_seq = replay.last_seen.map(|last| last + 1);
        Ok(recovered)
    }

    /// Up to the first record of the last page: short by at most a page's records. A
    /// damaged last key must not make replay reserve without bound: no more records than
    /// sled's files could hold (a record takes at least its length and one byte).
    fn records_hint(&self, from_seq: u64) -> io::Result<u64> {
        let last_page = self.current.db.last().map_err(sled_error)?;
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
        self.rotate_if_due()?;
        let db = &self.current.db;
        let insert = |key: &[u8], value: &[u8]| db.insert(key, value).map(drop).map_err(sled_error);
        let mut page_first_seq = group.first_seq();
        self.page.clear();
        for (seq, payload) in group.iter() {
            if is_large(payload) {
                // Alone, after the page before it: a large record is read back whole or not
                // at all.
                if !self.page.is_empty() {
                    self.page.encode(page_first_seq, &mut self.value);
                    insert(&page_first_seq.to_be_bytes(), &self.value)?;
                    self.page.clear();
                }
                let mut chunked = Ok(());
                encode_chunks(seq, payload, |index, value| {
                    if chunked.is_ok() {
                        chunked = insert(&chunk_key(seq, index), value);
                    }
                });
                chunked?;
                page_first_seq = seq + 1;
                continue;
            }
            if !self.page.fits(payload) {
                self.page.encode(page_first_seq, &mut self.value);
                insert(&page_first_seq.to_be_bytes(), &self.value)?;
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
            insert(&page_first_seq.to_be_bytes(), &self.value)?;
        }
        assert_eq!(
            page_first_seq + self.page.records() as u64 - 1,
            group.last_seq(),
            "pages cover the group"
        );
        self.unsynced = true;
        self.next_seq = Some(group.last_seq() + 1);
        self.current_first_seq.get_or_insert(group.first_seq());
        if self.current_records() >= self.generation_records - self.generation_records / 4 {
            self.helper.prepare(self.current.number + 1);
        }
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        let started = Instant::now();
        sync_generation(&self.current)?;
        self.unsynced = false;
        tracing::trace!(
            elapsed_us = started.elapsed().as_micros() as u64,
            "WAL synced"
        );
        Ok(())
    }

    /// Deletes whole generations whose records all come before `seq`, until they held
    /// `records_max` records or more, returning how many they held. The deletion itself
    /// runs on the helper thread.
    fn trim_before(&mut self, seq: u64, records_max: usize) -> io::Result<usize> {
        let mut removed = 0;
        for closed in self.closed.take_before(seq, records_max) {
            removed += (closed.last_seq - closed.first_seq + 1) as usize;
            self.helper.remove(closed.number);
        }
        Ok(removed)
    }
}
