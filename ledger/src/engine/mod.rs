//! The single-writer group-commit engine: runs requests against a [`StateMachine`] on one
//! thread, logs the events they emit in groups with one sync per group, and answers each
//! request only once everything it may depend on is durable.
//!
//! Three threads, one job each:
//! - the *engine* thread owns the state: it runs requests one after another, collecting the
//!   events they emit into a group (up to `group_max_events`, waiting at most `group_wait`),
//!   and hands the group on as soon as the queue is empty (or every 32 requests).
//! - the *WAL* thread merges every group handed over while it synced the one before (which
//!   is what makes groups grow under load, without ever waiting for the engine thread),
//!   encodes them, appends, syncs once, then answers the requests in order. It trims the WAL
//!   behind snapshots in small steps between groups.
//! - the *snapshot* thread writes snapshots (taken cheaply on the engine thread) once the WAL
//!   is durable up to their seq, so that a large snapshot never stalls commits.
//!
//! Acknowledged means durable: a request's [`Pending`] resolves after the sync that covers
//! its events and every earlier event, read-only requests included (so nobody is answered on
//! state that a crash could still take back). A failed sync is fatal (see [`WalFailure`]).

mod job;
mod pending;
mod priority;
mod recovery;
mod stages;
mod stats;
mod threads;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{bounded, Sender, TrySendError};
use tokio::sync::oneshot;

use crate::snapshot::{SnapshotInfo, SnapshotStore};
use crate::state_machine::{StateMachine, Tx};
use crate::wal::Wal;

pub use pending::{Pending, Timed};
pub use recovery::{recover, RecoveryError, RecoveryReport};
pub use stages::StageTimes;
pub use stats::{EngineStats, SYNC_BUCKETS};

/// What to do when the WAL cannot append or sync.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum WalFailure {
    /// Log and abort the process: after a failed fsync the kernel may have dropped the dirty
    /// pages, so carrying on (or retrying) could acknowledge lost records. Restart recovers
    /// from what is really on disk. The production setting.
    Abort,
    /// Stop the engine: every waiting and later request gets [`EngineError::Stopped`], never
    /// an answer. For tests that cut the power of a simulated disk.
    Stop,
}

#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Most events in one group (one append, one sync).
    pub group_max_events: usize,
    /// How long a group may wait for more requests once it has one. Zero: take whatever is
    /// queued and go (groups still grow while the previous group syncs).
    pub group_wait: Duration,
    /// Requests queued for the engine thread at most; `execute` blocks beyond it and
    /// `try_execute` returns [`EngineError::Busy`].
    pub queue_depth_max: usize,
    /// Take a snapshot after this many records since the last one; 0: only on demand.
    pub snapshot_every_records: u64,
    /// WAL records removed per step when trimming behind a snapshot, so that trimming never
    /// holds up a group for long.
    pub trim_step_records: usize,
    pub on_wal_failure: WalFailure,
    /// Run first on each of the two commit threads (the engine's, the WAL writer's), which
    /// every request waits for in turn: the host sets their CPU scheduling there.
    pub commit_thread_start: Option<ThreadStart>,
}

/// A function a thread runs when it starts.
#[derive(Clone)]
pub struct ThreadStart(pub Arc<dyn Fn() + Send + Sync>);

impl ThreadStart {
    /// Runs `start`, if any, on the calling thread.
    fn run(start: &Option<ThreadStart>) {
        if let Some(start) = start {
            (start.0)();
        }
    }
}

impl std::fmt::Debug for ThreadStart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ThreadStart(..)")
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            group_max_events: 8192,
            group_wait: Duration::ZERO,
            queue_depth_max: 16384,
            snapshot_every_records: 1_000_000,
            trim_step_records: 1024,
            on_wal_failure: WalFailure::Abort,
            commit_thread_start: None,
        }
    }
}

impl EngineConfig {
    fn assert_valid(&self) {
        assert!(
            self.group_max_events >= 1,
            "group_max_events must be at least 1"
        );
        assert!(
            self.queue_depth_max >= 1,
            "queue_depth_max must be at least 1"
        );
        assert!(
            self.trim_step_records >= 1,
            "trim_step_records must be at least 1"
        );
        assert!(
            self.group_wait <= Duration::from_secs(1),
            "group_wait over a second stalls every caller"
        );
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error("the ledger engine has stopped (shut down, or its WAL failed): the request was not made durable")]
    Stopped,
    #[error("the ledger engine's queue is full ({0} requests waiting): retry later")]
    Busy(usize),
    #[error("the ledger engine has no snapshot directory: pass a SnapshotStore to Engine::open")]
    NoSnapshotStore,
    #[error("snapshot failed: {0}")]
    Snapshot(String),
}

pub(crate) enum Request<S: StateMachine> {
    Run(job::Ticket<S>),
    Snapshot(oneshot::Sender<Result<SnapshotInfo, EngineError>>),
    Shutdown,
}

pub struct Engine<S: StateMachine> {
    requests: Sender<Request<S>>,
    stats: Arc<stats::SharedStats>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl<S: StateMachine> Engine<S> {
    /// Recovers the state (latest snapshot + WAL tail, then `S::check`) and starts serving.
    /// `initial` builds the state when there is no snapshot. Refuses to start, with the
    /// reason, if anything acknowledged could be missing or damaged.
    pub fn open(
        mut wal: Box<dyn Wal>,
        mut snapshots: Option<SnapshotStore>,
        config: EngineConfig,
        initial: impl FnOnce() -> S,
    ) -> Result<(Engine<S>, RecoveryReport), RecoveryError> {
        config.assert_valid();
        let (state, report) = recover(wal.as_mut(), snapshots.as_mut(), initial)?;
        let stats = Arc::new(stats::SharedStats::default());
        stats.durable_seq.store(report.last_seq, Ordering::Release);
        stats.applied_seq.store(report.last_seq, Ordering::Relaxed);
        stats
            .last_snapshot_seq
            .store(report.snapshot_seq, Ordering::Relaxed);

        let (request_sender, request_receiver) = bounded(config.queue_depth_max);
        let (group_sender, group_receiver) = bounded(GROUPS_QUEUED_MAX);
        let (snapshot_sender, snapshot_receiver) = bounded(SNAPSHOT_QUEUE_MAX);
        let has_snapshots = snapshots.is_some();
        let snapshot_thread = Arc::new(priority::SnapshotThread::default());
        let mut threads = Vec::with_capacity(3);
        if let Some(store) = snapshots {
            let stats = stats.clone();
            let snapshot_thread = snapshot_thread.clone();
            threads.push(spawn("ledger-snapshot", move || {
                threads::run_snapshots::<S>(store, snapshot_receiver, &stats, &snapshot_thread)
            }));
        }
        {
            let stats = stats.clone();
            let config = config.clone();
            threads.push(spawn("ledger-wal", move || {
                ThreadStart::run(&config.commit_thread_start);
                let snapshots = threads::SnapshotHandOff {
                    jobs: snapshot_sender,
                    thread: snapshot_thread,
                };
                threads::run_wal::<S>(wal, group_receiver, snapshots, &stats, &config)
            }));
        }
        {
            let stats = stats.clone();
            let start = config.commit_thread_start.clone();
            let engine =
                threads::EngineLoop::new(state, report.last_seq + 1, config, stats, has_snapshots);
            threads.push(spawn("ledger-engine", move || {
                ThreadStart::run(&start);
                engine.run(request_receiver, group_sender)
            }));
        }
        Ok((
            Engine {
                requests: request_sender,
                stats,
                threads: Mutex::new(threads),
            },
            report,
        ))
    }

    /// Runs `f` on the engine thread against the state. `f` reads `tx.state()` and changes it
    /// only through `tx.emit(event)`. The result is delivered once every event emitted so far
    /// (by this request and all earlier ones) is durable. Blocks while the queue is full.
    ///
    /// `f` must not panic (a panic stops the engine) and must not call back into the engine.
    pub fn execute<R, F>(&self, f: F) -> Pending<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Tx<'_, S>) -> R + Send + 'static,
    {
        self.execute_prefetched(|_: &S| {}, f)
    }

    /// As [`Engine::execute`], with `ahead`: called on the engine thread with the state a few
    /// requests before `f` runs, while the requests before it run, to prefetch the memory `f`
    /// will read at random places (index slots) so that its cache misses overlap their work.
    /// It must only read (it gets `&S`) and must not panic; what it touches changes no result.
    pub fn execute_prefetched<R, F, P>(&self, ahead: P, f: F) -> Pending<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Tx<'_, S>) -> R + Send + 'static,
        P: Fn(&S) + Send + Sync + 'static,
    {
        let (ticket, outcome) = job::with_prefetch(f, ahead);
        match self.requests.send(Request::Run(ticket)) {
            Ok(()) => Pending::job(outcome),
            Err(_) => Pending::ready(Err(EngineError::Stopped)),
        }
    }

    /// As [`Engine::execute`], but returns [`EngineError::Busy`] instead of blocking when the
    /// queue is full.
    pub fn try_execute<R, F>(&self, f: F) -> Result<Pending<R>, EngineError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Tx<'_, S>) -> R + Send + 'static,
    {
        let (ticket, outcome) = job::with_prefetch(f, |_: &S| {});
        match self.requests.try_send(Request::Run(ticket)) {
            Ok(()) => Ok(Pending::job(outcome)),
            Err(TrySendError::Full(_)) => Err(EngineError::Busy(self.requests.len())),
            Err(TrySendError::Disconnected(_)) => Err(EngineError::Stopped),
        }
    }

    /// Takes a snapshot now (the switch calls this at day close). Resolves once the snapshot
    /// file is durable.
    pub fn snapshot_now(&self) -> Pending<SnapshotInfo> {
        let (sender, receiver) = oneshot::channel();
        match self.requests.send(Request::Snapshot(sender)) {
            Ok(()) => Pending::waiting(receiver),
            Err(_) => Pending::ready(Err(EngineError::Stopped)),
        }
    }

    pub fn stats(&self) -> EngineStats {
        self.stats.read(self.requests.len())
    }

    /// Finishes every request queued before this call (their groups are synced and answered),
    /// then stops the threads. Requests sent afterwards get [`EngineError::Stopped`].
    /// Idempotent; also done on drop. Must not be called from inside a request.
    pub fn shutdown(&self) {
        let _ = self.requests.send(Request::Shutdown);
        let threads = std::mem::take(
            &mut *self
                .threads
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        for thread in threads.into_iter().rev() {
            // A thread that panicked has already stopped the engine; its panic was printed.
            let _ = thread.join();
        }
    }
}

impl<S: StateMachine> Drop for Engine<S> {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Groups handed over and not yet taken by the WAL thread, at most. The WAL thread takes them
/// all at once (one write, one sync), so this only bounds memory if the disk stalls; the
/// engine then blocks, and so do callers once `queue_depth_max` requests wait.
const GROUPS_QUEUED_MAX: usize = 1024;

/// Snapshots waiting to be written at most: one being written and one due at day close.
const SNAPSHOT_QUEUE_MAX: usize = 2;

fn spawn(name: &str, body: impl FnOnce() + Send + 'static) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(body)
        .expect("spawn ledger thread")
}
