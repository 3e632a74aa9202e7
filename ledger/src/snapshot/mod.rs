//! Snapshot files: the state as of a WAL sequence number, so that recovery replays only the
//! WAL after it and the WAL before it can be trimmed.
//!
//! A snapshot is its file and the chunk files it names (see [`chunks`]): the full chunks of the
//! state's append-only logs are written once each, to their own immutable files, and every
//! later snapshot names them again instead of rewriting them. The file itself holds a manifest
//! of those chunk files (length and crc32c of each) and the rest of the state.
//!
//! A file is written whole or not at all: the new chunk files are synced and renamed and the
//! directory synced first, then the file goes to a temp file, fsync, rename, fsync of the
//! directory. A crash before the rename leaves the previous snapshot (and the WAL since it)
//! as it was; chunk files written for a snapshot that was never published are named by none
//! and removed after the next snapshot. Layout:
//!
//! ```text
//! manifest length u32 | manifest crc32c u32 | manifest (postcard) | payload (postcard)
//! trailer: magic "BURSNAP2" | seq u64 | length of all before u64 | its crc32c u32 | trailer crc32c u32
//! ```
//!
//! A damaged snapshot, or one whose chunk file is missing or damaged, is skipped (named in a
//! warning) and the older one used instead. The newest [`SNAPSHOTS_KEPT`] are kept, and the
//! chunk files they name.

pub mod chunks;

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{de::DeserializeOwned, Serialize};

use crate::gradual_delete::GradualDelete;
use chunks::{ChunkCache, ChunkLoader, ChunkWriter, Manifest, CHUNK_SUFFIX};
pub use chunks::{ChunkStats, LogItem, LogVisitor, SharedLog, SnapshotLogs};

pub const SNAPSHOTS_KEPT: usize = 2;

const MAGIC: &[u8; 8] = b"BURSNAP2";
/// The layout before chunk files: the whole state in one file. Refused by name.
const MAGIC_WHOLE_STATE: &[u8; 8] = b"BURSNAP1";
const TRAILER_LEN: usize = 8 + 8 + 8 + 4 + 4;
const HEADER_LEN: usize = 4 + 4;
/// A manifest names about 60 bytes per chunk file: this is millions of them.
const MANIFEST_MAX: usize = 256 << 20;
const PREFIX: &str = "snapshot-";
const SUFFIX: &str = ".snap";

/// A snapshot written to disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// The state includes every WAL record up to and including this one.
    pub seq: u64,
    /// Of the snapshot file itself (the chunk files are in `chunks`).
    pub bytes: u64,
    pub path: PathBuf,
    /// The chunk files written for it, reused from earlier snapshots, and their total.
    pub chunks: ChunkStats,
    /// From the start of writing chunk files to the directory sync.
    pub write_duration: Duration,
    /// Of which: writing the new chunk files and making them durable.
    pub chunks_duration: Duration,
    /// Of which: encoding and writing the file's payload (written out 4 MB at a time as it goes).
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
    /// The chunks of the last snapshot written or loaded, with their files.
    chunks: ChunkCache,
    /// Superseded files go a slice at a time: hundreds of MB deleted at once stall the WAL's
    /// syncs (`gradual_delete`).
    delete: GradualDelete,
}

impl SnapshotStore {
    /// Opens (creating) the snapshot directory and removes temp files a crash left behind.
    pub fn open(dir: impl AsRef<Path>) -> io::Result<SnapshotStore> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir)?;
        let mut delete = GradualDelete::default();
        remove_temp_files(&dir, &mut delete)?;
        File::open(&dir)?.sync_all()?;
        Ok(SnapshotStore {
            dir,
            chunks: ChunkCache::default(),
            delete,
        })
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

    /// Writes `value` as the snapshot at `seq`, atomically: first the chunk files of its logs
    /// that no earlier snapshot wrote, then the file. Then deletes all but the newest
    /// [`SNAPSHOTS_KEPT`] snapshots and the chunk files none of them names.
    pub fn write<T: Serialize + SnapshotLogs>(
        &mut self,
        seq: u64,
        value: &mut T,
    ) -> io::Result<SnapshotInfo> {
        let started = Instant::now();
        // What a failed write left behind.
        remove_temp_files(&self.dir, &mut self.delete)?;
        let mut writer = ChunkWriter::new(&self.dir, seq, &self.chunks);
        value.visit_logs(&mut writer)?;
        let (manifest, chunks, chunk_stats) = writer.finish()?;
        let chunks_duration = started.elapsed();

        let path = self.path_of(seq);
        let temp = path.with_extension("tmp");
        let mut file = WriteBehind {
            file: File::create(&temp)?,
            written: 0,
            synced: 0,
        };
        let manifest_bytes =
            postcard::to_stdvec(&manifest).map_err(|error| io::Error::other(error.to_string()))?;
        let mut header = Vec::with_capacity(HEADER_LEN + manifest_bytes.len());
        header.extend_from_slice(&(manifest_bytes.len() as u32).to_le_bytes());
        header.extend_from_slice(&crc32c::crc32c(&manifest_bytes).to_le_bytes());
        header.extend_from_slice(&manifest_bytes);
        file.write_all(&header)?;
        // The buffer sits outside the checksum so that the crc runs over large chunks, not
        // over the single bytes postcard writes.
        let checksummed = ChecksumWriter {
            inner: file,
            crc: crc32c::crc32c(&header),
            bytes: header.len() as u64,
        };
        let buffered = BufWriter::with_capacity(1 << 20, checksummed);
        let buffered = postcard::to_io(&*value, buffered)
            .map_err(|error| io::Error::other(error.to_string()))?;
        let checksummed = buffered.into_inner().map_err(|error| error.into_error())?;
        let (crc, body_len, mut file) =
            (checksummed.crc, checksummed.bytes, checksummed.inner.file);
        let mut trailer = Vec::with_capacity(TRAILER_LEN);
        trailer.extend_from_slice(MAGIC);
        trailer.extend_from_slice(&seq.to_le_bytes());
        trailer.extend_from_slice(&body_len.to_le_bytes());
        trailer.extend_from_slice(&crc.to_le_bytes());
        trailer.extend_from_slice(&crc32c::crc32c(&trailer).to_le_bytes());
        file.write_all(&trailer)?;
        let encode_duration = started.elapsed() - chunks_duration;
        file.sync_all()?;
        drop(file);
        fs::rename(&temp, &path)?;
        File::open(&self.dir)?.sync_all()?;
        self.chunks = chunks;
        let sync_duration = started.elapsed() - chunks_duration - encode_duration;

        let seqs = self.list()?;
        for old in seqs.iter().skip(SNAPSHOTS_KEPT) {
            // Out of the list first, so that a crash midway leaves a temp file, not a
            // shortened snapshot.
            let path = self.path_of(*old);
            let temp = path.with_extension("tmp");
            fs::rename(&path, &temp)?;
            self.delete.remove_file(&temp)?;
        }
        self.remove_unnamed_chunks(seq, &manifest, &seqs)?;
        let wal_needed_from_seq = seqs.get(SNAPSHOTS_KEPT - 1).copied().unwrap_or(0);
        Ok(SnapshotInfo {
            seq,
            bytes: body_len + TRAILER_LEN as u64,
            path,
            chunks: chunk_stats,
            write_duration: started.elapsed(),
            chunks_duration,
            encode_duration,
            sync_duration,
            wal_needed_from_seq,
        })
    }

    /// Removes the chunk files that no kept snapshot names: those of snapshots deleted, of a
    /// log rewritten since, or written for a snapshot a crash or an error kept from being
    /// published. If a kept snapshot's manifest cannot be read, removes nothing (it may still
    /// be read at recovery).
    fn remove_unnamed_chunks(
        &mut self,
        seq: u64,
        manifest: &Manifest,
        seqs: &[u64],
    ) -> io::Result<()> {
        let mut named: HashSet<String> = manifest.file_names().collect();
        for kept in seqs
            .iter()
            .take(SNAPSHOTS_KEPT)
            .filter(|kept| **kept != seq)
        {
            let path = self.path_of(*kept);
            match read_manifest(&path) {
                Ok(manifest) => named.extend(manifest.file_names()),
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "cannot read a kept snapshot's manifest: keeping every chunk file");
                    return Ok(());
                }
            }
        }
        let mut removed = 0;
        for entry in fs::read_dir(&self.dir)? {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(CHUNK_SUFFIX) && !named.contains(name.as_ref()) {
                self.delete.remove_file(&self.dir.join(name.as_ref()))?;
                removed += 1;
            }
        }
        if removed > 0 {
            File::open(&self.dir)?.sync_all()?;
        }
        Ok(())
    }

    /// The newest snapshot that checks, chunk files included, with its seq; `None` when there
    /// is no snapshot at all. A damaged snapshot (or one with a missing or damaged chunk file)
    /// is skipped with a warning naming the file; if all are damaged, an error naming them.
    pub fn load_latest<T: DeserializeOwned + SnapshotLogs>(
        &mut self,
    ) -> Result<Option<(u64, T)>, SnapshotError> {
        let io_error = |error| SnapshotError::Io {
            dir: self.dir.clone(),
            error,
        };
        let seqs = self.list().map_err(io_error)?;
        let mut damaged = Vec::new();
        for seq in &seqs {
            let path = self.path_of(*seq);
            match read_snapshot(&self.dir, &path, *seq) {
                Ok((value, chunks)) => {
                    self.chunks = chunks;
                    return Ok(Some((*seq, value)));
                }
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

fn remove_temp_files(dir: &Path, delete: &mut GradualDelete) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|extension| extension == "tmp") {
            delete.remove_file(&path)?;
        }
    }
    Ok(())
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// The manifest at the start of a snapshot file, checked by its own crc.
fn parse_manifest(bytes: &[u8]) -> io::Result<(Manifest, usize)> {
    if bytes.len() < HEADER_LEN {
        return Err(invalid("shorter than its header"));
    }
    let len = u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
    if len > MANIFEST_MAX || bytes.len() < HEADER_LEN + len {
        return Err(invalid("manifest length out of range"));
    }
    let manifest_bytes = &bytes[HEADER_LEN..HEADER_LEN + len];
    if crc32c::crc32c(manifest_bytes) != crc {
        return Err(invalid("manifest checksum mismatch"));
    }
    let manifest = postcard::from_bytes(manifest_bytes)
        .map_err(|error| invalid(&format!("manifest checks but does not decode: {error}")))?;
    Ok((manifest, HEADER_LEN + len))
}

fn read_manifest(path: &Path) -> io::Result<Manifest> {
    let mut file = File::open(path)?;
    let mut header = [0u8; HEADER_LEN];
    file.read_exact(&mut header)?;
    let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
    if len > MANIFEST_MAX {
        return Err(invalid("manifest length out of range"));
    }
    let mut bytes = header.to_vec();
    bytes.resize(HEADER_LEN + len, 0);
    file.read_exact(&mut bytes[HEADER_LEN..])?;
    parse_manifest(&bytes).map(|(manifest, _)| manifest)
}

fn read_snapshot<T: DeserializeOwned + SnapshotLogs>(
    dir: &Path,
    path: &Path,
    seq: u64,
) -> io::Result<(T, ChunkCache)> {
    let mut bytes = Vec::new();
    File::open(path)?.read_to_end(&mut bytes)?;
    if bytes.len() < TRAILER_LEN {
        return Err(invalid("shorter than its trailer"));
    }
    let (body, trailer) = bytes.split_at(bytes.len() - TRAILER_LEN);
    let trailer_crc = u32::from_le_bytes(trailer[28..32].try_into().expect("4 bytes"));
    if crc32c::crc32c(&trailer[..28]) != trailer_crc {
        return Err(invalid("trailer does not check"));
    }
    if &trailer[..8] == MAGIC_WHOLE_STATE {
        return Err(invalid(&format!(
            "snapshot file format {:?} (the whole state in one file), this build reads {:?} \
             only: recover this data directory with the build that wrote it",
            String::from_utf8_lossy(MAGIC_WHOLE_STATE),
            String::from_utf8_lossy(MAGIC),
        )));
    }
    if &trailer[..8] != MAGIC {
        return Err(invalid("trailer does not check"));
    }
    let trailer_seq = u64::from_le_bytes(trailer[8..16].try_into().expect("8 bytes"));
    let body_len = u64::from_le_bytes(trailer[16..24].try_into().expect("8 bytes"));
    let crc = u32::from_le_bytes(trailer[24..28].try_into().expect("4 bytes"));
    if trailer_seq != seq {
        return Err(invalid("seq in the trailer differs from the file name"));
    }
    if body_len != body.len() as u64 || crc32c::crc32c(body) != crc {
        return Err(invalid("payload checksum mismatch"));
    }
    let (manifest, payload_at) = parse_manifest(body)?;
    let mut value: T = postcard::from_bytes(&body[payload_at..])
        .map_err(|error| invalid(&format!("payload checks but does not decode: {error}")))?;
    let mut loader = ChunkLoader::new(dir, &manifest);
    value.visit_logs(&mut loader)?;
    let chunks = loader.finish()?;
    Ok((value, chunks))
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

/// Writes a range of the file to the disk and waits for it, then drops the range from the
/// page cache (a snapshot is read again only by a restart: `page_cache` says why it matters).
/// Not a durability point (the final `fsync` is): it only bounds how much is left for that
/// `fsync`.
#[cfg(target_os = "linux")]
fn write_out(file: &File, offset: u64, len: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE
        | libc::SYNC_FILE_RANGE_WRITE
        | libc::SYNC_FILE_RANGE_WAIT_AFTER;
    // SAFETY: a plain system call on a file descriptor this function borrows.
    let result =
        unsafe { libc::sync_file_range(file.as_raw_fd(), offset as i64, len as i64, flags) };
    if result != 0 {
        return Err(io::Error::last_os_error());
    }
    crate::page_cache::drop_cached(file, offset, len);
    Ok(())
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

#[cfg(test)]
mod tests;
