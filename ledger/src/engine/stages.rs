//! When a request passed each of the engine's stages, so that a slow answer says where it
//! waited: the engine's queue and its group (the engine thread is busy or waiting for a
//! core), the WAL's queue (the sync before its group), its own write and sync (the disk), or
//! the caller's wake-up (the caller's threads are busy). Each is a different fix; only the
//! request's own timestamps tell them apart.
//!
//! A stamp is one relaxed store of nanoseconds since the process's first stamp, made by the
//! thread that holds the request at that moment; the caller reads them only after the
//! request's `done` flag (release/acquire), which orders every stamp before it.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// An `Instant` in 8 bytes: nanoseconds since the process's first stamp, plus one so that
/// no stamp is 0 (not reached). Good for 584 years.
pub(crate) fn now() -> u64 {
    stamp_of(Instant::now())
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn stamp_of(instant: Instant) -> u64 {
    instant.saturating_duration_since(epoch()).as_nanos() as u64 + 1
}

fn instant_of(stamp: u64) -> Instant {
    epoch() + Duration::from_nanos(stamp - 1)
}

/// A request's timestamps (0: not reached).
#[derive(Default)]
pub(crate) struct Stamps {
    submitted: AtomicU64,
    ran: AtomicU64,
    handed_off: AtomicU64,
    writing: AtomicU64,
    released: AtomicU64,
}

impl Stamps {
    pub(crate) fn submitted_now() -> Stamps {
        let stamps = Stamps::default();
        stamps.submitted.store(now(), Relaxed);
        stamps
    }

    pub(crate) fn ran(&self) {
        self.ran.store(now(), Relaxed);
    }

    /// The engine thread handed the request's group to the WAL thread (one `now` for the
    /// whole group).
    pub(crate) fn handed_off(&self, at: u64) {
        self.handed_off.store(at, Relaxed);
    }

    /// The WAL thread began writing the request's group (one `now` for the whole group).
    pub(crate) fn writing(&self, at: u64) {
        self.writing.store(at, Relaxed);
    }

    pub(crate) fn released(&self) {
        self.released.store(now(), Relaxed);
    }

    /// The times of a request released and seen by its caller at `polled`; `None` if it
    /// never ran (the engine stopped first).
    pub(crate) fn times(&self, polled: u64) -> Option<StageTimes> {
        let submitted = self.submitted.load(Relaxed);
        let ran = self.ran.load(Relaxed);
        let released = self.released.load(Relaxed);
        if ran == 0 || released == 0 {
            return None;
        }
        // A stage not passed takes no time: read-only requests with nothing pending are
        // released by the engine thread (no hand-off), and a group of read-only requests
        // behind a pending one is released by the WAL thread without a write.
        let or_released = |stamp: &AtomicU64| match stamp.load(Relaxed) {
            0 => released,
            at => at,
        };
        let handed_off = or_released(&self.handed_off);
        let writing = or_released(&self.writing);
        let between = |from: u64, to: u64| Duration::from_nanos(to.saturating_sub(from));
        Some(StageTimes {
            submitted: instant_of(submitted),
            engine_queue: between(submitted, ran),
            grouping: between(ran, handed_off),
            wal_queue: between(handed_off, writing),
            wal_write: between(writing, released),
            wake: between(released, polled),
        })
    }
}

/// How long one request spent in each stage between [`Engine::execute`] and its caller
/// seeing the result; they add up to that whole time.
///
/// [`Engine::execute`]: super::Engine::execute
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct StageTimes {
    /// When it was handed to the engine.
    pub submitted: Instant,
    /// Until the engine thread ran it: the requests queued before it.
    pub engine_queue: Duration,
    /// Until the engine thread handed its group to the WAL thread: its own run and the rest
    /// of its group. For a read answered on the engine thread, until it was answered.
    pub grouping: Duration,
    /// Until the WAL thread began writing its group: the write and sync of the group before
    /// it. For a group that wrote nothing (reads behind a pending group), until answered.
    pub wal_queue: Duration,
    /// Its group's write and sync (zero when the group wrote nothing).
    pub wal_write: Duration,
    /// From durable until the caller saw the result: the caller's wake-up.
    pub wake: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_are_the_gaps_between_stamps_and_add_up() {
        let stamps = Stamps::submitted_now();
        std::thread::sleep(Duration::from_millis(3));
        stamps.ran();
        std::thread::sleep(Duration::from_millis(3));
        stamps.handed_off(now());
        std::thread::sleep(Duration::from_millis(3));
        stamps.writing(now());
        std::thread::sleep(Duration::from_millis(3));
        stamps.released();
        std::thread::sleep(Duration::from_millis(3));
        let polled = now();
        let times = stamps.times(polled).expect("ran");
        let stages = [
            times.engine_queue,
            times.grouping,
            times.wal_queue,
            times.wal_write,
            times.wake,
        ];
        for stage in stages {
            assert!(stage >= Duration::from_millis(3), "{times:?}");
        }
        let whole: Duration = stages.iter().sum();
        assert_eq!(
            whole,
            Duration::from_nanos(polled - stamp_of(times.submitted))
        );
    }

    #[test]
    fn a_request_that_never_ran_has_no_times() {
        let stamps = Stamps::submitted_now();
        stamps.released();
        assert_eq!(stamps.times(now()), None);
    }

    #[test]
    fn stages_not_passed_take_no_time() {
        // Released by the engine thread: no hand-off, no write.
        let stamps = Stamps::submitted_now();
        stamps.ran();
        std::thread::sleep(Duration::from_millis(2));
        stamps.released();
        let times = stamps.times(now()).expect("ran");
        assert_eq!(
            (times.wal_queue, times.wal_write),
            (Duration::ZERO, Duration::ZERO)
        );
        assert!(times.grouping >= Duration::from_millis(2), "{times:?}");

        // Handed off in a group that wrote nothing: released after the sync before it.
        let stamps = Stamps::submitted_now();
        stamps.ran();
        stamps.handed_off(now());
        std::thread::sleep(Duration::from_millis(2));
        stamps.released();
        let times = stamps.times(now()).expect("ran");
        assert_eq!(times.wal_write, Duration::ZERO);
        assert!(times.wal_queue >= Duration::from_millis(2), "{times:?}");
    }
}
