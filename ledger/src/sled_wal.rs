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
//! A page is written whole by sled's batch, so a torn write can only leave a damaged last
//! page: recovery drops it whole (its records were never acknowledged: the group's sync did
//! not return).

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::record::{decode_page, PageBody, PAGE_LEN_BYTES};
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

fn key_seq(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.try_into().ok()?))
}

impl Wal for SledWal {
    fn recover(&mut self, from_seq: u64, visit: &mut Visit<'_>) -> Result<Recovered, WalError> {
        let mut sequence = Sequence::new(from_seq);
        let mut recovered = Recovered::default();
        // Start at the page holding `from_seq`: the newest page that starts at or before it.
        let start = match self.db.range(..=from_seq.to_be_bytes()).next_back() {
            Some(item) => item.map_err(sled_error)?.0,
            None => sled::IVec::from(&from_seq.to_be_bytes()[..]),
        };
        // The first record the next page must start with, and the last record seen.
        let mut next_page_seq: Option<u64> = None;
        let mut last_seen: Option<u64> = None;
        let mut pages = self.db.range(start..).peekable();
        while let Some(item) = pages.next() {
            let (key, value) = item.map_err(sled_error)?;
            let is_last = pages.peek().is_none();
            let Some(first_seq) = key_seq(&key) else {
                let reason = format!("key of {} bytes is not a sequence number", key.len());
                let seq = next_page_seq.unwrap_or(from_seq);
                return Err(WalError::Corrupt { seq, reason });
            };
            if let Some(expected) = next_page_seq {
                if first_seq != expected {
                    return Err(WalError::Missing { seq: expected });
                }
            }
            let decoded = decode_page(first_seq, &value);
            match decoded {
                Ok(records) => {
                    let mut seq = first_seq;
                    for payload in records {
                        if seq >= from_seq {
                            sequence.accept(seq)?;
                            recovered.first_seq.get_or_insert(seq);
                            visit(seq, payload)
                                .map_err(|reason| WalError::Rejected { seq, reason })?;
                            recovered.records += 1;
                        }
                        seq += 1;
                    }
                    last_seen = Some(seq - 1);
                    next_page_seq = Some(seq);
                }
                Err(reason) if is_last => {
                    tracing::warn!(
                        seq = first_seq,
                        reason,
                        "WAL: dropping torn last page (records from this one on)"
                    );
                    recovered.torn_tail = Some(TornTail {
                        seq: Some(first_seq),
                        reason: reason.to_string(),
                    });
                    self.db.remove(key).map_err(sled_error)?;
                    self.sync()?;
                }
                Err(reason) => {
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
            if !self.page.fits(payload) {
                self.page.encode(page_first_seq, &mut self.value);
                batch.insert(&page_first_seq.to_be_bytes()[..], self.value.as_slice());
                self.page.clear();
                page_first_seq = seq;
            }
            self.page.push(payload);
        }
        self.page.encode(page_first_seq, &mut self.value);
        batch.insert(&page_first_seq.to_be_bytes()[..], self.value.as_slice());
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
        let mut previous: Option<u64> = None;
        // A key is a page of records: stop at `records_max` records, not keys (4096 keys
        // were about 170,000 records, one sled batch that held the next group up).
        let keys = self.db.range(..=seq.to_be_bytes()).keys();
        for key in keys {
            if removed >= records_max {
                break;
            }
            let key = key.map_err(sled_error)?;
            let first_seq = key_seq(&key).ok_or_else(|| {
                io::Error::other(format!(
                    "WAL key of {} bytes is not a sequence number",
                    key.len()
                ))
            })?;
            if let Some(previous) = previous {
                batch.remove(&previous.to_be_bytes()[..]);
                removed += (first_seq - previous) as usize;
            }
            previous = Some(first_seq);
        }
        if removed > 0 {
            self.db.apply_batch(batch).map_err(sled_error)?;
        }
        Ok(removed)
    }
}
