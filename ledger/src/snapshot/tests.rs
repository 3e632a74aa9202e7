//! Chunk files: written once and reused, checked at load, refused by name when missing or
//! damaged, and left alone by a snapshot that was never published.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::*;

const CHUNK: usize = 4;

/// A state with two append-only logs in chunks of four (one of them rewritten whole at times,
/// like the switch's answers) and a mutable part.
#[derive(Clone, Debug, Default)]
struct State {
    entries: Vec<Arc<Vec<u64>>>,
    notes: Vec<Arc<Vec<String>>>,
    counter: u64,
}

/// A push as the real logs do it: a shared partial last chunk is copied first; a full chunk is
/// never touched again.
fn push<T: Clone>(chunks: &mut Vec<Arc<Vec<T>>>, value: T) {
    match chunks.last_mut() {
        Some(last) if last.len() < CHUNK => Arc::make_mut(last).push(value),
        _ => chunks.push(Arc::new(vec![value])),
    }
}

impl State {
    fn push_entries(&mut self, count: u64) {
        for _ in 0..count {
            self.counter += 1;
            push(&mut self.entries, self.counter);
        }
    }

    fn push_note(&mut self, note: &str) {
        push(&mut self.notes, note.to_string());
    }

    fn snapshot(&self) -> Snap {
        Snap {
            entries: SharedLog::new(self.entries.clone(), CHUNK),
            notes: SharedLog::new(self.notes.clone(), CHUNK),
            counter: self.counter,
        }
    }

    fn restore(snap: Snap) -> State {
        State {
            entries: snap.entries.into_chunks(),
            notes: snap.notes.into_chunks(),
            counter: snap.counter,
        }
    }

    fn values(&self) -> (Vec<u64>, Vec<String>, u64) {
        (
            self.entries
                .iter()
                .flat_map(|c| c.iter().copied())
                .collect(),
            self.notes.iter().flat_map(|c| c.iter().cloned()).collect(),
            self.counter,
        )
    }
}

#[derive(Serialize, Deserialize)]
struct Snap {
    entries: SharedLog<u64>,
    notes: SharedLog<String>,
    counter: u64,
}

impl SnapshotLogs for Snap {
    fn visit_logs<V: LogVisitor>(&mut self, visitor: &mut V) -> io::Result<()> {
        visitor.visit("entries", &mut self.entries)?;
        visitor.visit("notes", &mut self.notes)
    }
}

fn chunk_files(dir: &Path) -> BTreeMap<String, (u64, i64, i64)> {
    fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap())
        .filter(|entry| entry.file_name().to_string_lossy().ends_with(CHUNK_SUFFIX))
        .map(|entry| {
            let meta = entry.metadata().unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            (name, (meta.ino(), meta.mtime(), meta.mtime_nsec()))
        })
        .collect()
}

/// The newest snapshot loads, and restores `state`.
fn assert_loads(dir: &Path, state: &State) {
    assert_eq!(load(dir).unwrap().unwrap().1.values(), state.values());
}

/// Each of `files` is still there, never rewritten (same inode, same mtime).
fn assert_untouched(dir: &Path, files: &BTreeMap<String, (u64, i64, i64)>) {
    let now = chunk_files(dir);
    for (name, meta) in files {
        assert_eq!(now.get(name), Some(meta), "{name} was rewritten");
    }
}

fn load(dir: &Path) -> Result<Option<(u64, State)>, SnapshotError> {
    let mut store = SnapshotStore::open(dir).unwrap();
    Ok(store
        .load_latest::<Snap>()?
        .map(|(seq, snap)| (seq, State::restore(snap))))
}

#[test]
fn full_chunks_are_written_once_and_named_again_by_later_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SnapshotStore::open(dir.path()).unwrap();
    let mut state = State::default();
    state.push_entries(10);
    state.push_note("a");

    let first = store.write(10, &mut state.snapshot()).unwrap();
    assert_eq!(
        first.chunks.written, 2,
        "two full chunks of entries: {first:?}"
    );
    assert_eq!(first.chunks.reused, 0);
    let files = chunk_files(dir.path());
    assert_eq!(files.len(), 2);

    // Nothing filled: nothing written.
    state.push_entries(1);
    let second = store.write(11, &mut state.snapshot()).unwrap();
    assert_eq!((second.chunks.written, second.chunks.written_bytes), (0, 0));
    assert_eq!(second.chunks.reused, 2);
    assert_eq!(chunk_files(dir.path()), files, "files untouched");

    // One chunk filled: only it is written; the old files keep their inode and mtime.
    state.push_entries(1);
    let third = store.write(12, &mut state.snapshot()).unwrap();
    assert_eq!((third.chunks.written, third.chunks.reused), (1, 2));
    assert_eq!(third.chunks.total_bytes, first.chunks.total_bytes * 3 / 2);
    assert_untouched(dir.path(), &files);
    let now = chunk_files(dir.path());
    assert_eq!(now.len(), 3);
    assert!(now.contains_key("entries-00000002-00000000000000000012.chunk"));
    // The snapshot file holds the partial chunks only: it does not grow with the log.
    assert!(
        third.bytes <= first.bytes + 8,
        "{} vs {}",
        third.bytes,
        first.bytes
    );

    let (seq, loaded) = load(dir.path()).unwrap().unwrap();
    assert_eq!(seq, 12);
    assert_eq!(loaded.values(), state.values());
}

/// A snapshot is read again only by a restart: its chunk files leave the page cache once
/// written out (`page_cache`), and still load.
#[cfg(target_os = "linux")]
#[test]
fn written_chunk_files_leave_the_page_cache() {
    let dir = crate::page_cache::tempdir_on_disk();
    let mut store = SnapshotStore::open(dir.path()).unwrap();
    let mut state = State::default();
    state.push_entries(10);
    store.write(10, &mut state.snapshot()).unwrap();

    let files = chunk_files(dir.path());
    assert_eq!(files.len(), 2);
    for name in files.keys() {
        let file = fs::File::open(dir.path().join(name)).unwrap();
        let len = file.metadata().unwrap().len();
        let cached = crate::page_cache::resident_pages(&file, 0, len).unwrap();
        assert_eq!(cached, 0, "{name}: {cached} pages still cached");
    }
    assert_loads(dir.path(), &state);
}

#[test]
fn after_a_restart_the_loaded_chunks_are_not_written_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut state = State::default();
    state.push_entries(9);
    SnapshotStore::open(dir.path())
        .unwrap()
        .write(9, &mut state.snapshot())
        .unwrap();
    let files = chunk_files(dir.path());

    let mut store = SnapshotStore::open(dir.path()).unwrap();
    let (_, snap) = store.load_latest::<Snap>().unwrap().unwrap();
    let mut state = State::restore(snap);
    state.push_entries(3);
    let info = store.write(12, &mut state.snapshot()).unwrap();
    assert_eq!((info.chunks.written, info.chunks.reused), (1, 2));
    assert_untouched(dir.path(), &files);
    assert_loads(dir.path(), &state);
}

#[test]
fn a_rewritten_log_gets_new_files_and_the_old_go_once_no_kept_snapshot_names_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SnapshotStore::open(dir.path()).unwrap();
    let mut state = State::default();
    for note in ["a", "b", "c", "d", "e"] {
        state.push_note(note);
    }
    store.write(1, &mut state.snapshot()).unwrap();
    let old = "notes-00000000-00000000000000000001.chunk";
    assert!(chunk_files(dir.path()).contains_key(old));

    // Rewritten whole (as the answers are once a day): same positions, other contents.
    state.notes.clear();
    for note in ["v", "w", "x", "y"] {
        state.push_note(note);
    }
    let info = store.write(2, &mut state.snapshot()).unwrap();
    assert_eq!((info.chunks.written, info.chunks.reused), (1, 0));
    let files = chunk_files(dir.path());
    assert!(files.contains_key(old), "snapshot 1 is kept, and names it");
    assert!(files.contains_key("notes-00000000-00000000000000000002.chunk"));

    store.write(3, &mut state.snapshot()).unwrap();
    let files = chunk_files(dir.path());
    assert!(
        !files.contains_key(old),
        "no kept snapshot names it any more"
    );
    assert_eq!(files.len(), 1);
    assert_loads(dir.path(), &state);
}

#[test]
fn chunk_files_of_a_snapshot_never_published_confuse_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SnapshotStore::open(dir.path()).unwrap();
    let mut state = State::default();
    state.push_entries(5);
    store.write(5, &mut state.snapshot()).unwrap();
    let published = state.values();

    // A crash after the next snapshot's chunk files were written, before its file was.
    state.push_entries(8);
    let cache = ChunkCache::default();
    let mut writer = ChunkWriter::new(dir.path(), 13, &cache);
    state.snapshot().visit_logs(&mut writer).unwrap();
    writer.finish().unwrap();
    fs::write(
        dir.path().join("snapshot-00000000000000000013.tmp"),
        b"torn",
    )
    .unwrap();
    assert_eq!(chunk_files(dir.path()).len(), 4);

    let mut store = SnapshotStore::open(dir.path()).unwrap();
    let (seq, snap) = store.load_latest::<Snap>().unwrap().unwrap();
    assert_eq!(seq, 5);
    let mut recovered = State::restore(snap);
    assert_eq!(recovered.values(), published);

    // The WAL's records replayed, a snapshot at another seq: the stray files go.
    recovered.push_entries(9);
    let info = store.write(14, &mut recovered.snapshot()).unwrap();
    assert_eq!((info.chunks.written, info.chunks.reused), (2, 1));
    let files: Vec<String> = chunk_files(dir.path()).into_keys().collect();
    assert_eq!(
        files,
        [
            "entries-00000000-00000000000000000005.chunk",
            "entries-00000001-00000000000000000014.chunk",
            "entries-00000002-00000000000000000014.chunk",
        ]
    );
    assert_loads(dir.path(), &recovered);
}

fn two_snapshots(dir: &Path) -> State {
    let mut store = SnapshotStore::open(dir).unwrap();
    let mut state = State::default();
    state.push_entries(4);
    store.write(4, &mut state.snapshot()).unwrap();
    state.push_entries(4);
    store.write(8, &mut state.snapshot()).unwrap();
    state
}

/// Loading fails, and the error names the file and says why.
fn assert_refused(dir: &Path, file: &str, why: &str) {
    let error = load(dir).err().unwrap().to_string();
    assert!(error.contains(file) && error.contains(why), "{error}");
}

const SHARED_CHUNK: &str = "entries-00000000-00000000000000000004.chunk";

#[test]
fn a_damaged_chunk_file_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    two_snapshots(dir.path());
    let shared = dir.path().join(SHARED_CHUNK);
    let mut bytes = fs::read(&shared).unwrap();
    bytes[1] ^= 0x01;
    fs::write(&shared, bytes).unwrap();
    assert_refused(dir.path(), SHARED_CHUNK, "checksum mismatch");
}

#[test]
fn a_missing_chunk_file_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    two_snapshots(dir.path());
    fs::remove_file(dir.path().join(SHARED_CHUNK)).unwrap();
    assert_refused(dir.path(), SHARED_CHUNK, "No such file");
}

#[test]
fn a_truncated_or_swapped_chunk_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    two_snapshots(dir.path());
    let first = dir
        .path()
        .join("entries-00000000-00000000000000000004.chunk");
    let second = dir
        .path()
        .join("entries-00000001-00000000000000000008.chunk");
    let bytes = fs::read(&first).unwrap();
    fs::write(&first, &bytes[..bytes.len() - 1]).unwrap();
    let error = load(dir.path()).err().unwrap().to_string();
    assert!(error.contains("bytes long"), "{error}");
    // A whole, valid chunk file in another's place: its trailer names its position.
    fs::copy(&second, &first).unwrap();
    let error = load(dir.path()).err().unwrap().to_string();
    assert!(error.contains("entries-00000000"), "{error}");
}

#[test]
fn a_chunk_only_the_newest_snapshot_names_falls_back_to_the_older() {
    let dir = tempfile::tempdir().unwrap();
    two_snapshots(dir.path());
    fs::remove_file(
        dir.path()
            .join("entries-00000001-00000000000000000008.chunk"),
    )
    .unwrap();
    let (seq, state) = load(dir.path()).unwrap().unwrap();
    assert_eq!(seq, 4);
    assert_eq!(state.values().0, vec![1, 2, 3, 4]);
}

#[test]
fn a_snapshot_of_the_whole_state_format_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let mut trailer = Vec::new();
    trailer.extend_from_slice(MAGIC_WHOLE_STATE);
    trailer.extend_from_slice(&7u64.to_le_bytes());
    trailer.extend_from_slice(&0u64.to_le_bytes());
    trailer.extend_from_slice(&crc32c::crc32c(&[]).to_le_bytes());
    trailer.extend_from_slice(&crc32c::crc32c(&trailer).to_le_bytes());
    fs::write(
        dir.path().join("snapshot-00000000000000000007.snap"),
        trailer,
    )
    .unwrap();
    let error = load(dir.path()).err().unwrap().to_string();
    assert!(
        error.contains("BURSNAP1") && error.contains("BURSNAP2"),
        "{error}"
    );
}

#[test]
fn a_log_serialized_outside_the_store_carries_every_element() {
    let mut state = State::default();
    state.push_entries(10);
    let bytes = postcard::to_stdvec(&state.snapshot()).unwrap();
    let back = State::restore(postcard::from_bytes(&bytes).unwrap());
    assert_eq!(back.values(), state.values());
}
