//! Empty chunks whose memory a helper thread has already touched, for the logs that grow on
//! the engine thread (the `CowVec`s: the history, accounts, answers, audit trail).
//!
//! Why: memory the process has never written costs a page fault on its first write, and on a
//! virtual machine a slow one (the host may have to back the page too). The engine thread
//! wrote each new chunk's pages for the first time as it appended to it: 7 % of its samples
//! in a closed-loop profile (docs/BENCHMARKS.md). Here a helper thread allocates the next
//! chunk and writes to each of its pages before the engine thread asks for it; the engine
//! thread takes it from a channel, or allocates one itself if the helper is behind.
//!
//! The helper starts with the second chunk asked for, so that the many small logs (tests, a
//! fresh state, a snapshot's copy, which is never pushed to) start no thread; a log decoded
//! or collected in bulk (a restore, the answers' daily rebuild) starts its helper then, as the
//! live state it becomes. The helper stops when its source is dropped.

use std::mem::{size_of, MaybeUninit};

use crossbeam_channel::{bounded, Receiver, TryRecvError};

/// Bytes between two writes that touch a chunk: the smallest page size.
const PAGE_BYTES: usize = 4096;

/// Where a growing log takes its next empty chunk (capacity `chunk_len`) from.
pub struct WarmChunks<T> {
    chunk_len: usize,
    state: Helper<T>,
}

enum Helper<T> {
    /// No chunk asked for yet.
    Idle,
    /// One chunk given: the next request starts the helper.
    Asked,
    Running {
        ready: Receiver<Vec<T>>,
        /// Never joined (it ends by itself once `ready` is dropped); the tests join it.
        _thread: std::thread::JoinHandle<()>,
    },
    /// It could not be started, or it stopped: chunks are allocated by the caller.
    Unavailable,
}

impl<T> WarmChunks<T> {
    pub fn new(chunk_len: usize) -> WarmChunks<T> {
        assert!(chunk_len > 0, "chunks hold at least one element");
        WarmChunks {
            chunk_len,
            state: Helper::Idle,
        }
    }
}

impl<T: Send + 'static> WarmChunks<T> {
    /// An empty vector with room for `chunk_len` elements, its pages written to already when
    /// the helper was ahead.
    pub fn take(&mut self) -> Vec<T> {
        match &self.state {
            Helper::Idle => self.state = Helper::Asked,
            Helper::Asked => self.state = self.start(),
            Helper::Running { ready, .. } => match ready.try_recv() {
                Ok(chunk) => {
                    debug_assert!(chunk.is_empty() && chunk.capacity() >= self.chunk_len);
                    return chunk;
                }
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Disconnected) => self.state = Helper::Unavailable,
            },
            Helper::Unavailable => {}
        }
        Vec::with_capacity(self.chunk_len)
    }

    fn start(&self) -> Helper<T> {
        // One chunk waiting: the logs gain a chunk every few thousand requests, so the helper
        // has that long to prepare the next.
        let (sender, ready) = bounded(1);
        let chunk_len = self.chunk_len;
        let started = std::thread::Builder::new()
            .name("ledger-warm".to_string())
            .spawn(move || loop {
                let mut chunk = Vec::with_capacity(chunk_len);
                touch_pages(&mut chunk);
                if sender.send(chunk).is_err() {
                    return; // The log is gone.
                }
            });
        match started {
            Ok(thread) => Helper::Running {
                ready,
                _thread: thread,
            },
            Err(error) => {
                tracing::warn!(%error, "cannot start a chunk helper: chunks allocated in place");
                Helper::Unavailable
            }
        }
    }
}

/// A source of its own: a clone (a snapshot's copy of a log) starts no helper until it grows.
impl<T> Clone for WarmChunks<T> {
    fn clone(&self) -> Self {
        WarmChunks::new(self.chunk_len)
    }
}

impl<T> std::fmt::Debug for WarmChunks<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.state {
            Helper::Idle => "idle",
            Helper::Asked => "asked",
            Helper::Running { .. } => "running",
            Helper::Unavailable => "unavailable",
        };
        f.debug_struct("WarmChunks")
            .field("chunk_len", &self.chunk_len)
            .field("helper", &state)
            .finish()
    }
}

/// Writes to every page of the vector's spare room, so that its first real writes find the
/// pages in place. Writes whole (zeroed, still uninitialised to the vector) elements: no
/// unsafe code, and the vector's length stays 0.
fn touch_pages<T>(chunk: &mut Vec<T>) {
    if size_of::<T>() == 0 {
        return;
    }
    // Writes at most a page apart touch every page from the first to the last write; the last
    // slot covers the page the allocation ends in.
    let step = (PAGE_BYTES / size_of::<T>()).max(1);
    let spare = chunk.spare_capacity_mut();
    for slot in spare.iter_mut().step_by(step) {
        *slot = MaybeUninit::zeroed();
    }
    if let Some(last) = spare.last_mut() {
        *last = MaybeUninit::zeroed();
    }
    // The chunk leaves through a channel, so the writes are kept anyway; this says so.
    std::hint::black_box(chunk);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_helper_starts_with_the_second_chunk_and_every_chunk_is_empty_with_room() {
        let mut source: WarmChunks<[u64; 20]> = WarmChunks::new(1000);
        let first = source.take();
        assert!(matches!(source.state, Helper::Asked));
        let mut taken = vec![first];
        for _ in 0..50 {
            taken.push(source.take());
        }
        assert!(matches!(source.state, Helper::Running { .. }));
        for chunk in &taken {
            assert!(chunk.is_empty());
            assert!(chunk.capacity() >= 1000);
        }
        // The helper has one ready after a pause: as empty, with as much room.
        std::thread::sleep(std::time::Duration::from_millis(50));
        let warm = source.take();
        assert!(warm.is_empty() && warm.capacity() >= 1000);
    }

    #[test]
    fn a_clone_starts_idle_and_the_helper_stops_with_its_source() {
        let mut source: WarmChunks<u32> = WarmChunks::new(64);
        source.take();
        source.take();
        assert!(matches!(source.clone().state, Helper::Idle));
        let Helper::Running {
            ready,
            _thread: thread,
        } = std::mem::replace(&mut source.state, Helper::Idle)
        else {
            panic!("the helper runs after two chunks");
        };
        drop(ready);
        thread
            .join()
            .expect("the helper ends once its chunks have nowhere to go");
    }

    #[test]
    fn touching_writes_nothing_the_vector_can_see() {
        let mut chunk: Vec<u128> = Vec::with_capacity(10_000);
        touch_pages(&mut chunk);
        assert!(chunk.is_empty());
        chunk.extend(0..10_000u128);
        assert_eq!(chunk.iter().sum::<u128>(), (0..10_000u128).sum());
    }
}
