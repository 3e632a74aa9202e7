//! The production WAL: one sled 0.34.7 key per record (big-endian sequence number, so keys
//! sort in log order), the value checksummed by [`crate::record`].
//!
//! Why the extra syncs: sled's `flush()` ends, on Linux, in `sync_file_range`, which writes
//! the pages but neither flushes the device's write cache nor persists the file's metadata,
//! and sled only calls `fsync` from a background thread every 500 ms (sled issues #1452,
//! #1351). An acknowledged transfer must survive a power cut, so after `flush()` this WAL
//! calls `fdatasync` on sled's data file (`<dir>/db`) itself: one real sync per group. The
//! background fsync thread is switched off (`flush_every_ms(None)`): it would only add
//! syncs that cover nothing more.
//!
//! The directory is synced once at open, after sled has created its files. Afterwards the
//! WAL creates no files: records are bounded ([`crate::record::PAYLOAD_MAX`]) so sled never
//! moves one to a separate blob file (which it would not sync); the open checks that no blob
//! exists.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::record::{decode_value, encode_value, VALUE_HEADER_LEN};
use crate::wal::{RecordGroup, Recovered, Sequence, TornTail, Visit, Wal, WalError};

/// Page cache sled may use: the WAL is written once and read back only at recovery.
const SLED_CACHE_BYTES: u64 = 64 * 1024 * 1024;

pub struct SledWal {
    dir: PathBuf,
    db: sled::Db,
    /// sled's data file, opened a second time to `fdatasync` it.
    data_file: File,
    next_seq: Option<u64>,
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
        let mut records = self.db.range(from_seq.to_be_bytes()..).peekable();
        while let Some(item) = records.next() {
            let (key, value) = item.map_err(sled_error)?;
            let is_last = records.peek().is_none();
            let Some(seq) = key_seq(&key) else {
                let reason = format!("key of {} bytes is not a sequence number", key.len());
                let seq = sequence.expected();
                return Err(WalError::Corrupt { seq, reason });
            };
            sequence.accept(seq)?;
            match decode_value(seq, &value) {
                Ok(payload) => {
                    recovered.first_seq.get_or_insert(seq);
                    visit(seq, payload).map_err(|reason| WalError::Rejected { seq, reason })?;
                    recovered.records += 1;
                }
                Err(reason) if is_last => {
                    tracing::warn!(seq, reason, "WAL: dropping torn last record");
                    recovered.torn_tail = Some(TornTail {
                        seq: Some(seq),
                        reason: reason.to_string(),
                    });
                    self.db.remove(key).map_err(sled_error)?;
                    self.sync()?;
                }
                Err(reason) => {
                    return Err(WalError::Corrupt {
                        seq,
                        reason: reason.to_string(),
                    })
                }
            }
        }
        recovered.last_seq = recovered
            .first_seq
            .map(|first| first + recovered.records - 1);
        if recovered.first_seq.is_none() {
            // Nothing at or after `from_seq`: the log may only end right before it.
            if let Some((key, _)) = self.db.last().map_err(sled_error)? {
                let last = key_seq(&key).unwrap_or(u64::MAX);
                if last + 1 != from_seq {
                    return Err(WalError::Missing { seq: from_seq });
                }
            }
        }
        self.next_seq = match (recovered.last_seq, self.db.last().map_err(sled_error)?) {
            (Some(last), _) => Some(last + 1),
            (None, Some((key, _))) => key_seq(&key).map(|last| last + 1),
            (None, None) => None,
        };
        Ok(recovered)
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
        for (seq, payload) in group.iter() {
            self.value.clear();
            self.value.reserve(VALUE_HEADER_LEN + payload.len());
            encode_value(seq, payload, &mut self.value);
            batch.insert(&seq.to_be_bytes()[..], self.value.as_slice());
        }
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

    fn trim_before(&mut self, seq: u64, records_max: usize) -> io::Result<usize> {
        let mut batch = sled::Batch::default();
        let mut removed = 0;
        for item in self.db.range(..seq.to_be_bytes()).keys().take(records_max) {
            batch.remove(item.map_err(sled_error)?);
            removed += 1;
        }
        if removed > 0 {
            self.db.apply_batch(batch).map_err(sled_error)?;
        }
        Ok(removed)
    }
}
