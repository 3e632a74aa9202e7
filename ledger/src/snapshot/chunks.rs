//! The append-only logs of a snapshot (the book's transfer history, the switch's answers), written
//! a chunk at a time: each full chunk goes once to its own immutable file, and a snapshot names
//! the chunk files it relies on in its manifest instead of carrying them.
//!
//! Why: a snapshot re-encoded and rewrote the whole state, and the history grows by about 100
//! bytes a transfer, so at 3M records a snapshot was 300 MB and 1.1-1.3 s of CPU on a 2-core
//! machine. A full chunk of an append-only log never changes again, so writing it once makes a
//! snapshot's cost that of what changed since the last one: the chunks that filled since, the
//! partial last chunk of each log and the mutable state.
//!
//! A chunk file is named by its log, its position in the log and the seq of the snapshot that
//! first wrote it (`history-00000012-00000000000001000037.chunk`): a log that is rewritten (the
//! answers, once a day) gets new files under new names, and never overwrites a file that a
//! published snapshot names. Which chunks are unchanged is known without encoding them: the
//! store keeps each chunk it wrote or loaded (an `Arc` shared with the state), and a chunk of a
//! new snapshot that is the same allocation is the same chunk (a write to a shared chunk copies
//! it first, so it cannot change in place while the store holds it).

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::write_out;

/// What the elements of a log written in chunk files must be.
pub trait LogItem: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {}

impl<T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static> LogItem for T {}

/// An append-only log as a snapshot holds it: chunks shared with the live state, every one but
/// the last full (`chunk_len` elements). [`super::SnapshotStore`] writes the full chunks to
/// chunk files and serializes only the partial last one and how many full ones there are, then
/// puts them back when it loads the snapshot. Serialized anywhere else, it carries every
/// element.
#[derive(Clone, Debug)]
pub struct SharedLog<T> {
    chunks: Vec<Arc<Vec<T>>>,
    chunk_len: usize,
    /// Its full chunks are in chunk files: serialized without them.
    in_files: bool,
    /// Full chunks a decoded snapshot names but that are not loaded yet.
    unloaded: u64,
}

impl<T> SharedLog<T> {
    /// Panics unless every chunk but the last holds exactly `chunk_len` elements and none is
    /// empty: the logs that build one are made so.
    pub fn new(chunks: Vec<Arc<Vec<T>>>, chunk_len: usize) -> SharedLog<T> {
        assert!(chunk_len > 0 && u32::try_from(chunk_len).is_ok());
        assert_shape(&chunks, chunk_len);
        SharedLog {
            chunks,
            chunk_len,
            in_files: false,
            unloaded: 0,
        }
    }

    /// Every element, in order. Panics if the store has not loaded the chunk files yet.
    pub fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        assert_eq!(self.unloaded, 0, "a snapshot's chunk files were not loaded");
        self.chunks.iter().flat_map(|chunk| chunk.iter())
    }

    pub fn len(&self) -> usize {
        self.chunks.iter().map(|chunk| chunk.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    pub fn chunk_len(&self) -> usize {
        self.chunk_len
    }

    /// The chunks, for the state to restore from. Panics if the store has not loaded the
    /// snapshot's chunk files into it (a bug: only the store decodes snapshots).
    /// The chunks, checked again (those read back from a snapshot were not built by `new`).
    pub fn into_chunks(self) -> Vec<Arc<Vec<T>>> {
        assert_eq!(self.unloaded, 0, "a snapshot's chunk files were not loaded");
        assert_shape(&self.chunks, self.chunk_len);
        self.chunks
    }

    fn full_chunks(&self) -> &[Arc<Vec<T>>] {
        let full = self
            .chunks
            .iter()
            .take_while(|chunk| chunk.len() == self.chunk_len)
            .count();
        &self.chunks[..full]
    }
}

/// The serialized form: the full chunks in files (none when serialized outside the store),
/// then the elements that are not.
#[derive(Serialize)]
struct StoredRef<'a, T> {
    chunk_len: u32,
    in_files: u64,
    elements: ElementsRef<'a, T>,
}

struct ElementsRef<'a, T>(&'a [Arc<Vec<T>>]);

impl<T: Serialize> Serialize for ElementsRef<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // The length first: postcard needs it up front.
        let len = self.0.iter().map(|chunk| chunk.len()).sum();
        let mut seq = serializer.serialize_seq(Some(len))?;
        for element in self.0.iter().flat_map(|chunk| chunk.iter()) {
            seq.serialize_element(element)?;
        }
        seq.end()
    }
}

#[derive(Deserialize)]
struct Stored<T> {
    chunk_len: u32,
    in_files: u64,
    elements: Vec<T>,
}

impl<T: Serialize> Serialize for SharedLog<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let in_files = if self.in_files {
            self.full_chunks().len()
        } else {
            0
        };
        StoredRef {
            chunk_len: self.chunk_len as u32,
            in_files: in_files as u64 + self.unloaded,
            elements: ElementsRef(&self.chunks[in_files..]),
        }
        .serialize(serializer)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for SharedLog<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<SharedLog<T>, D::Error> {
        let stored = Stored::<T>::deserialize(deserializer)?;
        let chunk_len = stored.chunk_len as usize;
        if chunk_len == 0 || (stored.in_files > 0 && stored.elements.len() >= chunk_len) {
            return Err(serde::de::Error::custom(
                "a log's elements do not fit its chunk length",
            ));
        }
        let mut chunks = Vec::with_capacity(stored.elements.len().div_ceil(chunk_len));
        let mut elements = stored.elements.into_iter();
        loop {
            let chunk: Vec<T> = elements.by_ref().take(chunk_len).collect();
            if chunk.is_empty() {
                break;
            }
            chunks.push(Arc::new(chunk));
        }
        Ok(SharedLog {
            chunks,
            chunk_len,
            in_files: false,
            unloaded: stored.in_files,
        })
    }
}

/// Called by [`SnapshotLogs::visit_logs`] on each log of a snapshot.
pub trait LogVisitor {
    fn visit<T: LogItem>(&mut self, name: &'static str, log: &mut SharedLog<T>) -> io::Result<()>;
}

/// A snapshot's append-only logs. A state machine's snapshot names each of its logs, always
/// the same ones in the same order, each name distinct and made of `a-z` and `_` (it is part
/// of the chunk files' names).
pub trait SnapshotLogs {
    fn visit_logs<V: LogVisitor>(&mut self, visitor: &mut V) -> io::Result<()>;
}

/// Which chunk files a snapshot relies on, log by log, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub logs: Vec<LogManifest>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LogManifest {
    pub name: String,
    /// The log's chunk at position `n` is `chunks[n]`.
    pub chunks: Vec<ChunkEntry>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ChunkEntry {
    /// The snapshot that wrote the file (part of its name).
    pub written_seq: u64,
    /// The file's length, trailer included.
    pub bytes: u64,
    /// crc32c of the file's payload (also in its trailer).
    pub crc: u32,
}

impl Manifest {
    /// The names of the chunk files it relies on.
    pub fn file_names(&self) -> impl Iterator<Item = String> + '_ {
        self.logs.iter().flat_map(|log| {
            log.chunks
                .iter()
                .enumerate()
                .map(|(index, entry)| file_name(&log.name, index, entry.written_seq))
        })
    }
}

/// The shape indexing into a log's chunks relies on: none empty, every one full but the
/// last (a bug or a damaged snapshot must not become a log with holes in it).
fn assert_shape<T>(chunks: &[Arc<Vec<T>>], chunk_len: usize) {
    let count = chunks.len();
    for (index, chunk) in chunks.iter().enumerate() {
        assert!(!chunk.is_empty(), "log chunk {index} is empty");
        assert!(chunk.len() <= chunk_len, "log chunk {index} is too long");
        assert!(
            index + 1 == count || chunk.len() == chunk_len,
            "log chunk {index} is short"
        );
    }
}

pub(crate) const CHUNK_SUFFIX: &str = ".chunk";

fn file_name(log: &str, index: usize, written_seq: u64) -> String {
    format!("{log}-{index:08}-{written_seq:020}{CHUNK_SUFFIX}")
}

/// A chunk file: the chunk's elements in postcard (a sequence), then this trailer.
const CHUNK_MAGIC: &[u8; 8] = b"BURCHNK1";
/// Magic, position u64, elements u32, payload length u64, payload crc32c u32, trailer crc32c u32.
const CHUNK_TRAILER_LEN: usize = 8 + 8 + 4 + 8 + 4 + 4;

fn chunk_trailer(index: usize, elements: usize, payload: &[u8]) -> [u8; CHUNK_TRAILER_LEN] {
    let mut trailer = [0u8; CHUNK_TRAILER_LEN];
    trailer[..8].copy_from_slice(CHUNK_MAGIC);
    trailer[8..16].copy_from_slice(&(index as u64).to_le_bytes());
    trailer[16..20].copy_from_slice(&(elements as u32).to_le_bytes());
    trailer[20..28].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    trailer[28..32].copy_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    let own = crc32c::crc32c(&trailer[..32]);
    trailer[32..36].copy_from_slice(&own.to_le_bytes());
    trailer
}

/// The chunks the store wrote or loaded, per log, by position: what lets the next snapshot
/// reuse their files. Each is held (an `Arc` shared with the state) so that its allocation
/// cannot be reused by another chunk while it is here.
#[derive(Default)]
pub(crate) struct ChunkCache {
    logs: HashMap<String, Vec<Cached>>,
}

struct Cached {
    chunk: Arc<dyn Any + Send + Sync>,
    entry: ChunkEntry,
}

impl Cached {
    fn holds<T: LogItem>(&self, chunk: &Arc<Vec<T>>) -> bool {
        std::ptr::addr_eq(Arc::as_ptr(&self.chunk), Arc::as_ptr(chunk))
    }
}

fn check_name(name: &str) {
    assert!(
        !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
        "log name {name:?} must be made of a-z and _"
    );
}

/// What a snapshot wrote and reused of the chunk files.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct ChunkStats {
    /// Chunk files written for this snapshot.
    pub written: u64,
    pub written_bytes: u64,
    /// Chunks an earlier snapshot wrote, named again.
    pub reused: u64,
    /// Every chunk file the snapshot names.
    pub total_bytes: u64,
}

/// Writes the full chunks of a snapshot's logs that no earlier file holds, and makes its
/// manifest. Nothing it writes is named by a published snapshot until [`finish`] has made it
/// durable and the caller publishes the snapshot.
///
/// [`finish`]: ChunkWriter::finish
pub(crate) struct ChunkWriter<'a> {
    dir: &'a Path,
    seq: u64,
    previous: &'a ChunkCache,
    next: ChunkCache,
    manifest: Manifest,
    /// Written, not yet synced: (temp path, final path, file).
    pending: Vec<(PathBuf, PathBuf, File)>,
    buffer: Vec<u8>,
    stats: ChunkStats,
}

impl<'a> ChunkWriter<'a> {
    pub fn new(dir: &'a Path, seq: u64, previous: &'a ChunkCache) -> ChunkWriter<'a> {
        ChunkWriter {
            dir,
            seq,
            previous,
            next: ChunkCache::default(),
            manifest: Manifest::default(),
            pending: Vec::new(),
            buffer: Vec::new(),
            stats: ChunkStats::default(),
        }
    }

    fn write_chunk<T: LogItem>(
        &mut self,
        name: &str,
        index: usize,
        chunk: &[T],
    ) -> io::Result<ChunkEntry> {
        self.buffer.clear();
        postcard::to_io(chunk, &mut self.buffer)
            .map_err(|error| io::Error::other(error.to_string()))?;
        let trailer = chunk_trailer(index, chunk.len(), &self.buffer);
        let file_name = file_name(name, index, self.seq);
        let path = self.dir.join(&file_name);
        let temp = self.dir.join(format!("{file_name}.tmp"));
        let mut file = File::create(&temp)?;
        file.write_all(&self.buffer)?;
        file.write_all(&trailer)?;
        let bytes = (self.buffer.len() + CHUNK_TRAILER_LEN) as u64;
        // To the disk now, a chunk at a time, so that the syncs in `finish` have only the
        // metadata left and the WAL's own syncs never queue behind a burst of chunk data.
        write_out(&file, 0, bytes)?;
        self.pending.push((temp, path, file));
        self.stats.written += 1;
        self.stats.written_bytes += bytes;
        Ok(ChunkEntry {
            written_seq: self.seq,
            bytes,
            crc: crc32c::crc32c(&self.buffer),
        })
    }

    /// Makes the new chunk files durable under their names: each synced, renamed, then the
    /// directory synced. Returns the manifest, the cache for the next snapshot and the figures.
    pub fn finish(self) -> io::Result<(Manifest, ChunkCache, ChunkStats)> {
        if !self.pending.is_empty() {
            for (_, _, file) in &self.pending {
                file.sync_all()?;
            }
            for (temp, path, _) in &self.pending {
                fs::rename(temp, path)?;
            }
            File::open(self.dir)?.sync_all()?;
        }
        Ok((self.manifest, self.next, self.stats))
    }
}

impl LogVisitor for ChunkWriter<'_> {
    fn visit<T: LogItem>(&mut self, name: &'static str, log: &mut SharedLog<T>) -> io::Result<()> {
        check_name(name);
        assert!(
            !self.next.logs.contains_key(name),
            "log {name} visited twice"
        );
        assert_eq!(log.unloaded, 0, "log {name} was never loaded");
        let previous = self.previous.logs.get(name);
        let mut entries = Vec::new();
        let mut cached = Vec::new();
        for (index, chunk) in log.full_chunks().iter().enumerate() {
            let known = previous
                .and_then(|chunks| chunks.get(index))
                .filter(|known| known.holds(chunk));
            let entry = match known {
                Some(known) => {
                    self.stats.reused += 1;
                    known.entry
                }
                None => self.write_chunk(name, index, chunk)?,
            };
            self.stats.total_bytes += entry.bytes;
            entries.push(entry);
            cached.push(Cached {
                chunk: chunk.clone(),
                entry,
            });
        }
        log.in_files = true;
        self.next.logs.insert(name.to_string(), cached);
        self.manifest.logs.push(LogManifest {
            name: name.to_string(),
            chunks: entries,
        });
        Ok(())
    }
}

/// Puts a decoded snapshot's chunks back from the files its manifest names, checking each.
pub(crate) struct ChunkLoader<'a> {
    dir: &'a Path,
    manifest: &'a Manifest,
    cache: ChunkCache,
    seen: HashSet<&'static str>,
}

impl<'a> ChunkLoader<'a> {
    pub fn new(dir: &'a Path, manifest: &'a Manifest) -> ChunkLoader<'a> {
        ChunkLoader {
            dir,
            manifest,
            cache: ChunkCache::default(),
            seen: HashSet::new(),
        }
    }

    /// The cache of what was loaded, once every log of the manifest was.
    pub fn finish(self) -> io::Result<ChunkCache> {
        for log in &self.manifest.logs {
            if !self.seen.contains(log.name.as_str()) {
                return Err(invalid(format!(
                    "its manifest names chunk files of a log {:?} this state does not have",
                    log.name
                )));
            }
        }
        Ok(self.cache)
    }
}

impl LogVisitor for ChunkLoader<'_> {
    fn visit<T: LogItem>(&mut self, name: &'static str, log: &mut SharedLog<T>) -> io::Result<()> {
        check_name(name);
        self.seen.insert(name);
        let entries = self
            .manifest
            .logs
            .iter()
            .find(|listed| listed.name == name)
            .map_or(&[][..], |listed| &listed.chunks[..]);
        if entries.len() as u64 != log.unloaded {
            return Err(invalid(format!(
                "its manifest names {} chunk files of log {name}, its payload {}",
                entries.len(),
                log.unloaded
            )));
        }
        let mut chunks = Vec::with_capacity(entries.len() + log.chunks.len());
        let mut cached = Vec::with_capacity(entries.len());
        for (index, entry) in entries.iter().enumerate() {
            let path = self.dir.join(file_name(name, index, entry.written_seq));
            let chunk: Vec<T> =
                read_chunk(&path, index, entry, log.chunk_len).map_err(|error| {
                    io::Error::new(
                        error.kind(),
                        format!("chunk file {}: {error}", path.display()),
                    )
                })?;
            let chunk = Arc::new(chunk);
            cached.push(Cached {
                chunk: chunk.clone(),
                entry: *entry,
            });
            chunks.push(chunk);
        }
        chunks.append(&mut log.chunks);
        log.chunks = chunks;
        log.unloaded = 0;
        self.cache.logs.insert(name.to_string(), cached);
        Ok(())
    }
}

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// Reads and checks one chunk file: its length and crc against the manifest, its trailer, its
/// position and element count.
fn read_chunk<T: LogItem>(
    path: &Path,
    index: usize,
    entry: &ChunkEntry,
    chunk_len: usize,
) -> io::Result<Vec<T>> {
    let mut bytes = Vec::with_capacity(entry.bytes.min(1 << 30) as usize);
    File::open(path)?.read_to_end(&mut bytes)?;
    if bytes.len() as u64 != entry.bytes {
        return Err(invalid(format!(
            "{} bytes long, the snapshot's manifest says {}",
            bytes.len(),
            entry.bytes
        )));
    }
    if bytes.len() < CHUNK_TRAILER_LEN {
        return Err(invalid("shorter than its trailer".to_string()));
    }
    let (payload, trailer) = bytes.split_at(bytes.len() - CHUNK_TRAILER_LEN);
    if crc32c::crc32c(payload) != entry.crc {
        return Err(invalid(
            "checksum mismatch: the file is damaged".to_string(),
        ));
    }
    let elements = u32::from_le_bytes(trailer[16..20].try_into().expect("4 bytes")) as usize;
    if trailer != chunk_trailer(index, elements, payload) {
        return Err(invalid("trailer does not check".to_string()));
    }
    if elements != chunk_len {
        return Err(invalid(format!(
            "holds {elements} elements, a full chunk {chunk_len}"
        )));
    }
    let chunk: Vec<T> = postcard::from_bytes(payload)
        .map_err(|error| invalid(format!("checks but does not decode: {error}")))?;
    if chunk.len() != elements {
        return Err(invalid(format!(
            "decodes to {} elements, its trailer says {elements}",
            chunk.len()
        )));
    }
    Ok(chunk)
}
