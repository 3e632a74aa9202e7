//! Snapshot files: the state as of a WAL sequence number, so that recovery replays only the
//! WAL after it and the WAL before it can be trimmed.
//!
//! A file is written whole or not at all: temp file, fsync, rename, fsync of the directory.
//! Its postcard payload is followed by a trailer (magic, seq, length, crc32c of the payload,
//! crc32c of the trailer), so a damaged snapshot is detected and the older one used instead.
//! The newest [`SNAPSHOTS_KEPT`] are kept.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{de::DeserializeOwned, Serialize};

pub const SNAPSHOTS_KEPT: usize = 2;

const MAGIC: &[u8; 8] = b"BURSNAP1";
const TRAILER_LEN: usize = 8 + 8 + 8 + 4 + 4;
const PREFIX: &str = "snapshot-";
const SUFFIX: &str = ".snap";

/// A snapshot written to disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// The state includes every WAL record up to and including this one.
    pub seq: u64,
    pub bytes: u64,
    pub path: PathBuf,
    /// From the start of encoding to the directory sync.
    pub write_duration: Duration,
    /// Of which: encoding and writing the payload (written out 4 MB at a time as it goes).
    pub encode_duration: Duration,
    /// Of which: the final `fsync` of the file, the rename and the directory's `fsync`.
    pub sync_duration: Duration,
    /// The WAL is needed from this record on: the older of the two snapshots kept, so that
    /// recovery can fall back to it if the newer one is damaged (0 while only one exists).
    pub wal_needed_from_seq: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot I/O error in {dir}: {error}")]
    Io { dir: PathBuf, error: io::Error },
    #[error(
        "every snapshot in {dir} is damaged ({names}): refusing to start from an incomplete \
         book. Restore the snapshot directory from a backup."
    )]
    AllDamaged { dir: PathBuf, names: String },
}

pub struct SnapshotStore {
    dir: PathBuf,
}

impl SnapshotStore {
    /// Opens (creating) the snapshot directory and removes temp files a crash left behind.
    pub fn open(dir: impl AsRef<Path>) -> io::Result<SnapshotStore> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir)?;
        for entry in fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|extension| extension == "tmp") {
                fs::remove_file(&path)?;
            }
        }
        File::open(&dir)?.sync_all()?;
        Ok(SnapshotStore { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path_of(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{PREFIX}{seq:020}{SUFFIX}"))
    }

    /// Sequence numbers of the snapshot files, newest first.
    pub fn list(&self) -> io::Result<Vec<u64>> {
        let mut seqs = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            let seq = name
                .strip_prefix(PREFIX)
                .and_then(|rest| rest.strip_suffix(SUFFIX));
            if let Some(seq) = seq.and_then(|seq| seq.parse::<u64>().ok()) {
                seqs.push(seq);
            }
        }
        seqs.sort_unstable_by(|a, b| b.cmp(a));
        Ok(seqs)
    }

    /// Writes `value` as the snapshot at `seq`, atomically, then deletes all but the newest
    /// [`SNAPSHOTS_KEPT`].
    pub fn write<T: Serialize>(&self, seq: u64, value: &T) -> io::Result<SnapshotInfo> {
        let started = Instant::now();
        let path = self.path_of(seq);
        let temp = path.with_extension("tmp");
        let file = WriteBehind {
            file: File::create(&temp)?,
            written: 0,
            synced: 0,
        };
        // The buffer sits outside the checksum so that the crc runs over large chunks, not
        // over the single bytes postcard writes.
        let checksummed = ChecksumWriter {
            inner: file,
            crc: 0,
            bytes: 0,
        };
        let buffered = BufWriter::with_capacity(1 << 20, checksummed);
        let buffered = postcard::to_io(value, buffered)
            .map_err(|error| io::Error::other(error.to_string()))?;
        let checksummed = buffered.into_inner().map_err(|error| error.into_error())?;
        let (crc, payload_len, mut file) =
            (checksummed.crc, checksummed.bytes, checksummed.inner.file);
        let mut trailer = Vec::with_capacity(TRAILER_LEN);
        trailer.extend_from_slice(MAGIC);
        trailer.extend_from_slice(&seq.to_le_bytes());
        trailer.extend_from_slice(&payload_len.to_le_bytes());
        trailer.extend_from_slice(&crc.to_le_bytes());
        trailer.extend_from_slice(&crc32c::crc32c(&trailer).to_le_bytes());
        file.write_all(&trailer)?;
        let encode_duration = started.elapsed();
        file.sync_all()?;
        drop(file);
        fs::rename(&temp, &path)?;
        File::open(&self.dir)?.sync_all()?;
        let sync_duration = started.elapsed() - encode_duration;

        let seqs = self.list()?;
        for old in seqs.iter().skip(SNAPSHOTS_KEPT) {
            fs::remove_file(self.path_of(*old))?;
        }
        let wal_needed_from_seq = seqs.get(SNAPSHOTS_KEPT - 1).copied().unwrap_or(0);
        Ok(SnapshotInfo {
            seq,
            bytes: payload_len + TRAILER_LEN as u64,
            path,
            write_duration: started.elapsed(),
            encode_duration,
            sync_duration,
            wal_needed_from_seq,
        })
    }

    /// The newest snapshot that checks, with its seq; `None` when there is no snapshot at all.
    /// A damaged snapshot is skipped with a warning; if all are damaged, an error.
    pub fn load_latest<T: DeserializeOwned>(&self) -> Result<Option<(u64, T)>, SnapshotError> {
        let io_error = |error| SnapshotError::Io {
            dir: self.dir.clone(),
            error,
        };
        let seqs = self.list().map_err(io_error)?;
        let mut damaged = Vec::new();
        for seq in &seqs {
            let path = self.path_of(*seq);
            match read_snapshot(&path, *seq) {
                Ok(value) => return Ok(Some((*seq, value))),
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "snapshot damaged, trying an older one");
                    damaged.push(format!("{}: {error}", path.display()));
                }
            }
        }
        if damaged.is_empty() {
            Ok(None)
        } else {
            Err(SnapshotError::AllDamaged {
                dir: self.dir.clone(),
                names: damaged.join("; "),
            })
        }
    }
}

fn read_snapshot<T: DeserializeOwned>(path: &Path, seq: u64) -> io::Result<T> {
    let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    let mut bytes = Vec::new();
    File::open(path)?.read_to_end(&mut bytes)?;
    if bytes.len() < TRAILER_LEN {
        return Err(invalid("shorter than its trailer"));
    }
    let (payload, trailer) = bytes.split_at(bytes.len() - TRAILER_LEN);
    let trailer_crc = u32::from_le_bytes(trailer[28..32].try_into().expect("4 bytes"));
    if crc32c::crc32c(&trailer[..28]) != trailer_crc || &trailer[..8] != MAGIC {
        return Err(invalid("trailer does not check"));
    }
    let trailer_seq = u64::from_le_bytes(trailer[8..16].try_into().expect("8 bytes"));
    let payload_len = u64::from_le_bytes(trailer[16..24].try_into().expect("8 bytes"));
    let crc = u32::from_le_bytes(trailer[24..28].try_into().expect("4 bytes"));
    if trailer_seq != seq {
        return Err(invalid("seq in the trailer differs from the file name"));
    }
    if payload_len != payload.len() as u64 || crc32c::crc32c(payload) != crc {
        return Err(invalid("payload checksum mismatch"));
    }
    postcard::from_bytes(payload)
        .map_err(|error| invalid(&format!("payload checks but does not decode: {error}")))
}

/// Bytes of snapshot written to the disk at a time, while the snapshot is being written.
const WRITE_BEHIND_STEP: u64 = 4 << 20;

/// A snapshot file that goes to the disk as it is written, a few megabytes at a time
/// (`sync_file_range`: data only, no journal commit), instead of a few hundred megabytes of
/// dirty pages flushed at the end. Commits share the disk (and ext4's journal) with the
/// snapshot: a `fdatasync` of the WAL that queued behind the final `fsync` of a 241 MB file
/// took over 50 ms; behind a few megabytes it does not.
struct WriteBehind {
    file: File,
    written: u64,
    synced: u64,
}

impl Write for WriteBehind {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.file.write(buf)?;
        self.written += written as u64;
        if self.written - self.synced >= WRITE_BEHIND_STEP {
            write_out(&self.file, self.synced, self.written - self.synced)?;
            self.synced = self.written;
        }
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Writes a range of the file to the disk and waits for it. Not a durability point (the
/// final `fsync` is): it only bounds how much is left for that `fsync`.
#[cfg(target_os = "linux")]
fn write_out(file: &File, offset: u64, len: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE
        | libc::SYNC_FILE_RANGE_WRITE
        | libc::SYNC_FILE_RANGE_WAIT_AFTER;
    // SAFETY: a plain system call on a file descriptor this function borrows.
    let result =
        unsafe { libc::sync_file_range(file.as_raw_fd(), offset as i64, len as i64, flags) };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn write_out(file: &File, _offset: u64, _len: u64) -> io::Result<()> {
    file.sync_data()
}

/// Computes the crc32c of what passes through.
struct ChecksumWriter<W> {
    inner: W,
    crc: u32,
    bytes: u64,
}

impl<W: Write> Write for ChecksumWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.crc = crc32c::crc32c_append(self.crc, &buf[..written]);
        self.bytes += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
