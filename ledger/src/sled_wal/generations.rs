//! The WAL's directory: one sled database per *generation*, `gen-<number>`, numbered in log
//! order. Records go to the newest; after [`SledWal`](super::SledWal) rotates, the older
//! generation is only read back at recovery, and trimming deletes it whole once a snapshot
//! covers its last record.
//!
//! Why generations: trimming a single database removed its records key by key, and sled
//! read every page back from the disk to do so (0.7-0.9 s of the WAL thread per million
//! records, between group commits, docs/BENCHMARKS.md). Deleting a directory costs an unlink.
//!
//! The slow parts (opening a fresh database, closing one, deleting one) run on a helper
//! thread, in the order asked, so the WAL thread never waits for them between commits.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::thread::JoinHandle;

use crate::gradual_delete::GradualDelete;

/// Page cache sled may use per database: the WAL is written once and read back only at
/// recovery.
const SLED_CACHE_BYTES: u64 = 64 * 1024 * 1024;

const PREFIX: &str = "gen-";
/// Created in a generation once its sled files are durable: a directory without it was cut
/// short by a crash while being created, never written to, and is deleted.
const READY: &str = "ready";
/// A generation being deleted: renamed first, so that a crash midway leaves no half-deleted
/// database under a generation's name.
const REMOVING_SUFFIX: &str = ".removing";
/// A single sled database, the layout before generations, being made generation 1.
const ADOPTING_SUFFIX: &str = ".adopting";

/// One sled database of the WAL.
pub(super) struct Generation {
    pub(super) number: u64,
    pub(super) db: sled::Db,
    /// sled's data file, opened a second time to `fdatasync` it.
    pub(super) data_file: File,
}

/// A generation behind the newest: its records, for trimming.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Closed {
    pub(super) number: u64,
    pub(super) first_seq: u64,
    pub(super) last_seq: u64,
}

pub(super) fn generation_dir(wal_dir: &Path, number: u64) -> PathBuf {
    wal_dir.join(format!("{PREFIX}{number:016}"))
}

/// A WAL directory written before generations holds one sled database itself: its files
/// become generation 1, moved into `gen-<1>.adopting` first so that a crash midway is finished
/// at the next start.
pub(super) fn adopt_single_database(wal_dir: &Path) -> io::Result<()> {
    let adopting = wal_dir.join(format!("{PREFIX}{:016}{ADOPTING_SUFFIX}", 1));
    if !wal_dir.join("db").exists() && !adopting.exists() {
        return Ok(());
    }
    if generation_dir(wal_dir, 1).exists() {
        return Err(io::Error::other(format!(
            "{} holds both a single sled database and WAL generations: which is the log?",
            wal_dir.display()
        )));
    }
    std::fs::create_dir_all(&adopting)?;
    for entry in std::fs::read_dir(wal_dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if !name.to_str().is_some_and(|name| name.starts_with(PREFIX)) {
            std::fs::rename(entry.path(), adopting.join(&name))?;
        }
    }
    sync_dir(wal_dir)?;
    File::create(adopting.join(READY))?.sync_all()?;
    sync_dir(&adopting)?;
    std::fs::rename(&adopting, generation_dir(wal_dir, 1))?;
    sync_dir(wal_dir)?;
    tracing::info!(dir = %wal_dir.display(), "WAL of a single sled database: now its generation 1");
    Ok(())
}

/// What [`list`] found in a WAL directory.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Listing {
    /// Generations, oldest first.
    pub(super) ready: Vec<(u64, PathBuf)>,
    /// Generations a crash cut short while they were being created or deleted: to delete,
    /// once the newest ready one is open (and so locked against a second process).
    pub(super) unfinished: Vec<PathBuf>,
}

/// The generations in `wal_dir` (a single sled database of the layout before them adopted
/// first: [`adopt_single_database`]).
pub(super) fn list(wal_dir: &Path) -> io::Result<Listing> {
    let mut listing = Listing::default();
    for entry in std::fs::read_dir(wal_dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(REMOVING_SUFFIX) {
            listing.unfinished.push(entry.path());
            continue;
        }
        let number = name
            .strip_prefix(PREFIX)
            .and_then(|n| n.parse::<u64>().ok());
        match number {
            Some(number) if number > 0 && entry.path().join(READY).exists() => {
                listing.ready.push((number, entry.path()))
            }
            Some(number) if number > 0 => listing.unfinished.push(entry.path()),
            _ => {
                tracing::warn!(entry = name, dir = %wal_dir.display(), "not a WAL generation: left alone")
            }
        }
    }
    listing.ready.sort_unstable();
    Ok(listing)
}

/// Opens (or creates) generation `number`, making its files' directory entries durable.
pub(super) fn open(wal_dir: &Path, number: u64) -> io::Result<Generation> {
    let dir = generation_dir(wal_dir, number);
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
    let ready = dir.join(READY);
    if !ready.exists() {
        // sled has just created its files: make them durable, then say so.
        data_file.sync_all()?;
        sync_dir(&dir)?;
        if blobs.exists() {
            sync_dir(&blobs)?;
        }
        File::create(&ready)?.sync_all()?;
        sync_dir(&dir)?;
        sync_dir(wal_dir)?;
    }
    Ok(Generation {
        number,
        db,
        data_file,
    })
}

pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Deletes a generation's directory (its database closed): renamed, the rename made durable,
/// then removed a slice at a time ([`GradualDelete`]: deleting three generations at once
/// stalled the WAL's syncs for tens of milliseconds).
fn remove(dir: &Path, delete: &mut GradualDelete) -> io::Result<()> {
    let mut removing = dir.as_os_str().to_owned();
    removing.push(REMOVING_SUFFIX);
    std::fs::rename(dir, &removing)?;
    if let Some(parent) = dir.parent() {
        sync_dir(parent)?;
    }
    delete.remove_dir_all(Path::new(&removing))
}

enum Chore {
    Prepare(u64),
    /// Closes a database: sled flushes on close.
    Close(Box<Generation>),
    Remove(u64),
}

/// The helper thread and what it has prepared.
pub(super) struct Helper {
    chores: Option<Sender<Chore>>,
    prepared: Receiver<io::Result<Generation>>,
    /// A generation was asked for and not yet taken.
    preparing: bool,
    thread: Option<JoinHandle<()>>,
}

impl Helper {
    pub(super) fn start(wal_dir: PathBuf) -> io::Result<Helper> {
        let (chores, todo) = mpsc::channel::<Chore>();
        let (done, prepared) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("ledger-wal-gens".to_string())
            .spawn(move || {
                let mut delete = GradualDelete::default();
                for chore in todo {
                    match chore {
                        Chore::Prepare(number) => {
                            let _ = done.send(open(&wal_dir, number));
                        }
                        Chore::Close(generation) => drop(generation),
                        Chore::Remove(number) => {
                            let dir = generation_dir(&wal_dir, number);
                            if let Err(error) = remove(&dir, &mut delete) {
                                // Disk space only: recovery skips what is left of it.
                                tracing::error!(%error, dir = %dir.display(), "cannot delete a trimmed WAL generation");
                            }
                        }
                    }
                }
            })?;
        Ok(Helper {
            chores: Some(chores),
            prepared,
            preparing: false,
            thread: Some(thread),
        })
    }

    /// Asks for generation `number` to be created, unless one is already on its way.
    pub(super) fn prepare(&mut self, number: u64) {
        if !self.preparing {
            self.preparing = true;
            self.send(Chore::Prepare(number));
        }
    }

    /// The generation asked for: if it is ready, or, with `wait`, once it is. A failure is
    /// logged and asked again next time: the WAL goes on in its current generation meanwhile.
    pub(super) fn take_prepared(&mut self, wait: bool) -> Option<Generation> {
        if !self.preparing {
            return None;
        }
        let prepared = if wait {
            self.prepared.recv().map_err(|_| TryRecvError::Disconnected)
        } else {
            self.prepared.try_recv()
        };
        match prepared {
            Ok(Ok(generation)) => {
                self.preparing = false;
                Some(generation)
            }
            Ok(Err(error)) => {
                tracing::error!(%error, "cannot create the next WAL generation: staying in this one");
                self.preparing = false;
                None
            }
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => {
                self.preparing = false;
                None
            }
        }
    }

    pub(super) fn close(&self, generation: Generation) {
        self.send(Chore::Close(Box::new(generation)));
    }

    /// Deletes generation `number`, after the chores asked for before (its database's close).
    pub(super) fn remove(&self, number: u64) {
        self.send(Chore::Remove(number));
    }

    fn send(&self, chore: Chore) {
        let sent = self.chores.as_ref().map(|chores| chores.send(chore));
        if !matches!(sent, Some(Ok(()))) {
            tracing::error!("the WAL generations' helper thread is gone");
        }
    }
}

impl Drop for Helper {
    /// Waits for the chores asked for: a closed database's flush, a deletion.
    fn drop(&mut self) {
        drop(self.chores.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Closed generations, oldest first.
#[derive(Debug, Default)]
pub(super) struct History {
    closed: VecDeque<Closed>,
}

impl History {
    pub(super) fn push(&mut self, closed: Closed) {
        if let Some(last) = self.closed.back() {
            assert!(
                closed.first_seq > last.last_seq,
                "generations hold records in log order"
            );
        }
        assert!(
            closed.first_seq <= closed.last_seq,
            "a closed generation holds records"
        );
        self.closed.push_back(closed);
    }

    /// Every closed generation, oldest first (recovery reads them again).
    pub(super) fn drain(&mut self) -> impl Iterator<Item = Closed> + '_ {
        self.closed.drain(..)
    }

    /// Takes the oldest generations whose records all come before `seq`, until they hold
    /// `records_max` records or more.
    pub(super) fn take_before(&mut self, seq: u64, records_max: usize) -> Vec<Closed> {
        let mut taken = Vec::new();
        let mut records = 0u64;
        while records < records_max as u64 {
            match self.closed.front() {
                Some(oldest) if oldest.last_seq < seq => {
                    let oldest = self.closed.pop_front().expect("peeked");
                    records += oldest.last_seq - oldest.first_seq + 1;
                    taken.push(oldest);
                }
                _ => break,
            }
        }
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn closed(first_seq: u64, last_seq: u64) -> Closed {
        Closed {
            number: first_seq,
            first_seq,
            last_seq,
        }
    }

    #[test]
    fn only_generations_wholly_before_the_trim_point_are_taken() {
        let mut history = History::default();
        history.push(closed(1, 10));
        history.push(closed(11, 20));
        history.push(closed(21, 30));
        assert!(
            history.take_before(10, usize::MAX).is_empty(),
            "10 is still needed"
        );
        assert_eq!(
            history.take_before(21, usize::MAX),
            [closed(1, 10), closed(11, 20)]
        );
        assert_eq!(history.take_before(31, 1), [closed(21, 30)]);
        assert!(history.take_before(u64::MAX, usize::MAX).is_empty());
    }

    #[test]
    fn a_step_stops_once_it_holds_enough_records() {
        let mut history = History::default();
        history.push(closed(1, 10));
        history.push(closed(11, 20));
        assert_eq!(history.take_before(100, 5), [closed(1, 10)]);
        assert_eq!(history.take_before(100, 5), [closed(11, 20)]);
    }

    #[test]
    #[should_panic(expected = "log order")]
    fn generations_out_of_order_are_a_bug() {
        let mut history = History::default();
        history.push(closed(11, 20));
        history.push(closed(5, 8));
    }

    #[test]
    fn listing_sorts_ready_generations_and_a_second_layout_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ready = |number| {
            let path = generation_dir(dir.path(), number);
            std::fs::create_dir(&path).unwrap();
            std::fs::write(path.join(READY), b"").unwrap();
            path
        };
        let (two, one) = (ready(2), ready(1));
        let unfinished = generation_dir(dir.path(), 4);
        std::fs::create_dir(&unfinished).unwrap();
        let half_deleted = format!(
            "{}{REMOVING_SUFFIX}",
            generation_dir(dir.path(), 3).display()
        );
        std::fs::create_dir(&half_deleted).unwrap();
        std::fs::create_dir(dir.path().join("notes")).unwrap();
        let mut listing = list(dir.path()).unwrap();
        assert_eq!(listing.ready, [(1, one), (2, two)]);
        listing.unfinished.sort();
        assert_eq!(
            listing.unfinished,
            [PathBuf::from(half_deleted), unfinished]
        );

        std::fs::write(dir.path().join("db"), b"").unwrap();
        let error = adopt_single_database(dir.path()).unwrap_err().to_string();
        assert!(
            error.contains("both a single sled database and WAL generations"),
            "{error}"
        );
    }
}
