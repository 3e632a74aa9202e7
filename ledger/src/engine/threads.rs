//! The bodies of the engine's three threads. Each owns its data; they talk only through
//! bounded channels and the shared counters.

use std::collections::VecDeque;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use tokio::sync::oneshot;

use super::job::Ticket;
use super::priority::{Priority, SnapshotThread, StarvationWatch};
use super::stages;
use super::stats::SharedStats;
use super::{EngineConfig, EngineError, Request, WalFailure};
use crate::snapshot::{SnapshotInfo, SnapshotStore};
use crate::state_machine::{StateMachine, Tx};
use crate::wal::{RecordGroup, Wal};

type SnapshotReply = oneshot::Sender<Result<SnapshotInfo, EngineError>>;

/// What the engine thread hands to the WAL thread, in order.
pub(crate) enum WalJob<S: StateMachine> {
    /// Transactions numbered from `first_seq`, one record each: the events of transaction
    /// `i` are `events[tx_ends[i - 1]..tx_ends[i]]`. Then the requests to answer once they are
    /// durable (a group may have requests and no events: read-only requests behind a pending
    /// group).
    Group {
        first_seq: u64,
        events: Vec<S::Event>,
        tx_ends: Vec<u32>,
        completions: Vec<Ticket<S>>,
    },
    /// The state as of `seq`: written once the WAL is durable up to `seq`.
    Snapshot {
        seq: u64,
        snapshot: S::Snapshot,
        capture_us: u64,
        reply: Option<SnapshotReply>,
    },
}

pub(crate) struct SnapshotJob<S: StateMachine> {
    seq: u64,
    snapshot: S::Snapshot,
    /// How long the engine thread took to capture it (for the log line).
    capture_us: u64,
    reply: Option<SnapshotReply>,
}

/// The engine thread: owns the state, runs requests, forms groups.
pub(crate) struct EngineLoop<S: StateMachine> {
    state: S,
    /// Seq of the first record (transaction) of the group being formed.
    next_seq: u64,
    config: EngineConfig,
    stats: Arc<SharedStats>,
    has_snapshots: bool,
    events: Vec<S::Event>,
    /// Where each transaction of the group ends in `events` (those that emitted any).
    tx_ends: Vec<u32>,
    completions: Vec<Ticket<S>>,
    records_since_snapshot: u64,
    shutting_down: bool,
    /// Requests taken from the queue before their turn, in order, their reads prefetched
    /// ([`EngineLoop::take_ahead`]).
    ahead: VecDeque<Request<S>>,
}

/// Requests taken from the queue ahead of the one running: their index slots are fetched
/// from memory meanwhile. A few suffice to cover a miss; more would only be evicted again.
const PREFETCH_AHEAD: usize = 4;

impl<S: StateMachine> EngineLoop<S> {
    pub(crate) fn new(
        state: S,
        next_seq: u64,
        config: EngineConfig,
        stats: Arc<SharedStats>,
        has_snapshots: bool,
    ) -> EngineLoop<S> {
        assert!(next_seq >= 1);
        EngineLoop {
            state,
            next_seq,
            config,
            stats,
            has_snapshots,
            events: Vec::new(),
            tx_ends: Vec::new(),
            completions: Vec::new(),
            records_since_snapshot: 0,
            shutting_down: false,
            ahead: VecDeque::with_capacity(PREFETCH_AHEAD),
        }
    }

    pub(crate) fn run(mut self, requests: Receiver<Request<S>>, groups: Sender<WalJob<S>>) {
        let stopped = loop {
            if self.group_is_empty() {
                if self.shutting_down {
                    break false;
                }
                match self.next_request(&requests, Receiver::recv) {
                    Ok(request) => {
                        if self.handle(request, &groups).is_err() {
                            break true;
                        }
                    }
                    Err(_) => break false,
                }
            }
            if self.fill_group(&requests, &groups).is_err() || self.hand_off(&groups).is_err() {
                break true;
            }
        };
        if stopped {
            // The WAL failed. Drop the group being formed and the groups the WAL thread never
            // took (with them their completions, answering `Stopped`), then refuse the rest
            // until shutdown, unless the shutdown request was already taken.
            let shutdown_seen = self.shutting_down
                || self
                    .ahead
                    .iter()
                    .any(|request| matches!(request, Request::Shutdown));
            drop(self);
            drop(groups);
            if !shutdown_seen {
                refuse_until_shutdown(requests);
            }
        }
        // Otherwise dropping `groups` lets the WAL thread finish what it has and stop.
    }

    /// The next request in order: the first one taken ahead, else what `take` gets from the
    /// queue (waiting or not); then the requests behind it are taken ahead.
    fn next_request<E>(
        &mut self,
        requests: &Receiver<Request<S>>,
        take: impl FnOnce(&Receiver<Request<S>>) -> Result<Request<S>, E>,
    ) -> Result<Request<S>, E> {
        let next = match self.ahead.pop_front() {
            Some(request) => Ok(request),
            None => take(requests),
        };
        if next.is_ok() {
            self.take_ahead(requests);
        }
        next
    }

    /// Takes what is queued, up to [`PREFETCH_AHEAD`] requests ahead of the one about to run,
    /// and has the CPU fetch what each will read: the misses overlap the work before them.
    fn take_ahead(&mut self, requests: &Receiver<Request<S>>) {
        while self.ahead.len() < PREFETCH_AHEAD {
            let Ok(request) = requests.try_recv() else {
                return;
            };
            if let Request::Run(ticket) = &request {
                ticket.prefetch(&self.state);
            }
            self.ahead.push_back(request);
        }
    }

    fn group_is_empty(&self) -> bool {
        self.events.is_empty() && self.completions.is_empty()
    }

    fn group_is_full(&self) -> bool {
        self.events.len() >= self.config.group_max_events
    }

    /// Whether the group should go now rather than take more from the queue: full, or as
    /// many requests as [`HAND_OFF_REQUESTS`].
    fn group_is_ready(&self) -> bool {
        self.group_is_full() || self.completions.len() >= HAND_OFF_REQUESTS
    }

    /// Takes what is queued, then waits up to `group_wait` for more, until the group is ready.
    fn fill_group(
        &mut self,
        requests: &Receiver<Request<S>>,
        groups: &Sender<WalJob<S>>,
    ) -> Result<(), Stopped> {
        while !self.group_is_ready() && !self.shutting_down {
            let Ok(request) = self.next_request(requests, Receiver::try_recv) else {
                break;
            };
            self.handle(request, groups)?;
        }
        if self.config.group_wait.is_zero() || self.group_is_empty() {
            return Ok(());
        }
        let deadline = Instant::now() + self.config.group_wait;
        while !self.group_is_ready() && !self.shutting_down {
            match self.next_request(requests, |queue| queue.recv_deadline(deadline)) {
                Ok(request) => self.handle(request, groups)?,
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => {
                    self.shutting_down = true;
                    break;
                }
            }
        }
        Ok(())
    }

    /// Hands the group to the WAL thread, which merges every group queued while it synced
    /// the one before into its next write and sync: groups grow for as long as the disk is
    /// busy, and the WAL thread never waits for this thread to hand one over.
    fn hand_off(&mut self, groups: &Sender<WalJob<S>>) -> Result<(), Stopped> {
        if self.stats.wal_stopped.load(Acquire) {
            // The WAL failed: even a read of durable state is not answered any more.
            return Err(Stopped);
        }
        if self.group_is_empty() {
            return Ok(());
        }
        if self.events.is_empty() && self.nothing_in_flight() {
            // Read-only requests with nothing pending: what they read is already durable.
            for completion in self.completions.drain(..) {
                completion.complete(Ok(()));
            }
            return Ok(());
        }
        let job = self.take_group();
        groups.send(job).map_err(|_| Stopped)?;
        self.after_group(groups)
    }

    fn nothing_in_flight(&self) -> bool {
        self.stats.durable_seq.load(Acquire) + 1 == self.next_seq
    }

    fn take_group(&mut self) -> WalJob<S> {
        let first_seq = self.next_seq;
        // The next group starts with room for as many as this one had: growing from empty
        // re-allocated and copied the events (a few hundred bytes each) about log2(n) times.
        let room = (
            self.events.len(),
            self.tx_ends.len(),
            self.completions.len(),
        );
        let events = std::mem::replace(&mut self.events, Vec::with_capacity(room.0));
        let tx_ends = std::mem::replace(&mut self.tx_ends, Vec::with_capacity(room.1));
        let completions = std::mem::replace(&mut self.completions, Vec::with_capacity(room.2));
        // Taken to be sent at once (the callers do): the group's hand-off.
        let handed_off = stages::now();
        for completion in &completions {
            completion.stamp_handed_off(handed_off);
        }
        let records = tx_ends.len() as u64;
        self.next_seq += records;
        self.records_since_snapshot += records;
        self.stats.applied_seq.store(self.next_seq - 1, Relaxed);
        WalJob::Group {
            first_seq,
            events,
            tx_ends,
            completions,
        }
    }

    /// After a group left: a snapshot, if one is due and none is being written.
    fn after_group(&mut self, groups: &Sender<WalJob<S>>) -> Result<(), Stopped> {
        let every = self.config.snapshot_every_records;
        let due = self.has_snapshots && every > 0 && self.records_since_snapshot >= every;
        if due && self.stats.snapshots_in_flight.load(Relaxed) == 0 {
            self.send_snapshot(None, groups)?;
        }
        Ok(())
    }

    fn send_snapshot(
        &mut self,
        reply: Option<SnapshotReply>,
        groups: &Sender<WalJob<S>>,
    ) -> Result<(), Stopped> {
        debug_assert!(self.events.is_empty(), "a snapshot is taken between groups");
        self.records_since_snapshot = 0;
        self.stats.snapshots_in_flight.fetch_add(1, Relaxed);
        let seq = self.next_seq - 1;
        let started = Instant::now();
        let snapshot = self.state.snapshot();
        let capture_us = started.elapsed().as_micros() as u64;
        self.stats
            .last_snapshot_capture_us
            .store(capture_us, Relaxed);
        self.stats
            .snapshot_capture_us_max
            .fetch_max(capture_us, Relaxed);
        groups
            .send(WalJob::Snapshot {
                seq,
                snapshot,
                capture_us,
                reply,
            })
            .map_err(|_| Stopped)
    }

    fn handle(&mut self, request: Request<S>, groups: &Sender<WalJob<S>>) -> Result<(), Stopped> {
        match request {
            Request::Run(mut ticket) => {
                let before = self.events.len();
                let mut tx = Tx::new(&mut self.state, &mut self.events);
                ticket.run(&mut tx);
                // One record for everything the request emitted: replay applies it whole.
                if self.events.len() > before {
                    let end = u32::try_from(self.events.len()).expect("a group under 2^32 events");
                    self.tx_ends.push(end);
                }
                self.completions.push(ticket);
            }
            Request::Snapshot(reply) => {
                if !self.has_snapshots {
                    let _ = reply.send(Err(EngineError::NoSnapshotStore));
                    return Ok(());
                }
                // The snapshot must sit exactly between two groups: send what is formed first.
                if !self.group_is_empty() {
                    let job = self.take_group();
                    groups.send(job).map_err(|_| Stopped)?;
                }
                self.send_snapshot(Some(reply), groups)?;
            }
            Request::Shutdown => self.shutting_down = true,
        }
        Ok(())
    }
}

/// The WAL thread is gone (it failed): the engine stops.
#[derive(Debug)]
pub(crate) struct Stopped;

/// After a WAL failure: drops every queued and later request unanswered, which resolves its
/// `Pending` as `Stopped`. Queued requests must be dropped here, not left in the channel,
/// or their callers would wait for as long as the `Engine` handle lives.
fn refuse_until_shutdown<S: StateMachine>(requests: Receiver<Request<S>>) {
    for request in requests.iter() {
        if let Request::Shutdown = request {
            break;
        }
    }
}

/// The engine thread hands its group over at least every this many requests, even with more
/// queued: a WAL thread done with a sync then finds the requests run meanwhile waiting for it,
/// instead of waiting (or syncing a small group) while a long queue is drained into one group.
const HAND_OFF_REQUESTS: usize = 32;

/// How long the WAL thread waits for a group before doing a trim step.
const IDLE_TRIM_INTERVAL: Duration = Duration::from_millis(50);

/// Between groups, one trim step at most this often, so that no group waits behind more than
/// one step. A WAL that removes records one by one (the simulated disk; sled did before its
/// generations, 0.3-1 ms per step of 1,024 records) spreads a long trim over the groups; on
/// sled a step now only hands whole generations to a helper thread to delete.
const TRIM_STEP_INTERVAL: Duration = Duration::from_micros(2500);

/// Where the WAL thread sends snapshots, and the thread that writes them (raised by the WAL
/// thread if a background snapshot starves).
pub(crate) struct SnapshotHandOff<S: StateMachine> {
    pub(crate) jobs: Sender<SnapshotJob<S>>,
    pub(crate) thread: Arc<SnapshotThread>,
}

pub(crate) fn run_wal<S: StateMachine>(
    mut wal: Box<dyn Wal>,
    groups: Receiver<WalJob<S>>,
    snapshots: SnapshotHandOff<S>,
    stats: &SharedStats,
    config: &EngineConfig,
) {
    let mut records = RecordGroup::new(1);
    let mut trim = Trim::default();
    let mut starvation = StarvationWatch::default();
    // A job taken while merging groups that must wait for the next turn (a snapshot).
    let mut carried: Option<WalJob<S>> = None;
    loop {
        starvation.check(stats.snapshots_in_flight.load(Relaxed), &snapshots.thread);
        let received = match carried.take() {
            Some(job) => Ok(job),
            None => groups.recv_timeout(IDLE_TRIM_INTERVAL),
        };
        let job = match received {
            Ok(job) => merge_queued(job, &groups, &mut carried, config.group_max_events),
            Err(RecvTimeoutError::Timeout) => {
                if trim.step(wal.as_mut(), stats, config).is_err() {
                    stop_after_failure(&groups, stats);
                    return;
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        match job {
            WalJob::Group {
                first_seq,
                events,
                tx_ends,
                completions,
            } => {
                if !events.is_empty() {
                    let writing = stages::now();
                    for completion in &completions {
                        completion.stamp_writing(writing);
                    }
                    records.reset(first_seq);
                    for transaction in transactions(&events, &tx_ends) {
                        records.push_transaction(transaction);
                    }
                    #[cfg(debug_assertions)]
                    check_round_trip::<S>(&records, &events, &tx_ends);
                    let started = Instant::now();
                    if let Err(error) = wal.append(&records).and_then(|()| wal.sync()) {
                        wal_failed(config.on_wal_failure, first_seq, &error);
                        drop(completions);
                        stop_after_failure(&groups, stats);
                        return;
                    }
                    let sync_us = started.elapsed().as_micros() as u64;
                    stats.durable_seq.store(records.last_seq(), Release);
                    stats.record_group(records.len() as u64, events.len() as u64, Some(sync_us));
                } else {
                    stats.record_group(0, 0, None);
                }
                for completion in completions {
                    completion.complete(Ok(()));
                }
                if trim.due() && trim.step(wal.as_mut(), stats, config).is_err() {
                    stop_after_failure(&groups, stats);
                    return;
                }
            }
            WalJob::Snapshot {
                seq,
                snapshot,
                capture_us,
                reply,
            } => {
                // Everything up to `seq` is durable: every earlier group was synced above.
                assert!(
                    stats.durable_seq.load(Acquire) >= seq,
                    "snapshot ahead of the WAL"
                );
                if reply.is_none() {
                    starvation.started();
                }
                if let Err(failed) = snapshots.jobs.send(SnapshotJob {
                    seq,
                    snapshot,
                    capture_us,
                    reply,
                }) {
                    // The snapshot thread died (its panic was printed): commits go on, the WAL
                    // keeps everything since the last snapshot.
                    stats.snapshots_in_flight.fetch_sub(1, Relaxed);
                    stats.snapshot_failures.fetch_add(1, Relaxed);
                    if let Some(reply) = failed.0.reply {
                        let _ = reply.send(Err(EngineError::Snapshot(
                            "snapshot thread stopped".to_string(),
                        )));
                    }
                }
            }
        }
    }
    // Every group is synced: make the last trims durable too before stopping.
    if let Err(error) = wal.sync() {
        wal_failed(
            config.on_wal_failure,
            stats.durable_seq.load(Acquire),
            &error,
        );
    }
}

/// `first` and every group queued behind it, as one group (one write, one sync) of at most
/// `max_events` events (or `first` alone, if larger). A snapshot ends the merge and waits in
/// `carried` for the next turn: it is written once the groups before it are durable.
fn merge_queued<S: StateMachine>(
    first: WalJob<S>,
    groups: &Receiver<WalJob<S>>,
    carried: &mut Option<WalJob<S>>,
    max_events: usize,
) -> WalJob<S> {
    let WalJob::Group {
        first_seq,
        mut events,
        mut tx_ends,
        mut completions,
    } = first
    else {
        return first;
    };
    while events.len() < max_events {
        match groups.try_recv() {
            Ok(WalJob::Group {
                first_seq: next_seq,
                events: more_events,
                tx_ends: more_ends,
                completions: more_completions,
            }) if events.len() + more_events.len() <= max_events => {
                assert_eq!(
                    next_seq,
                    first_seq + tx_ends.len() as u64,
                    "groups arrive in record order"
                );
                let base = u32::try_from(events.len()).expect("a group under 2^32 events");
                tx_ends.extend(more_ends.iter().map(|end| base + end));
                events.extend(more_events);
                completions.extend(more_completions);
            }
            Ok(next) => {
                // A snapshot, or a group that would not fit: the next turn's.
                *carried = Some(next);
                break;
            }
            Err(_) => break,
        }
    }
    WalJob::Group {
        first_seq,
        events,
        tx_ends,
        completions,
    }
}

/// After a failed append, sync or trim (with [`WalFailure::Stop`]): tells the engine thread
/// to stop answering, then drops every group still sent until shutdown, which answers each
/// of their requests `Stopped`. Nothing is written or acknowledged any more.
fn stop_after_failure<S: StateMachine>(groups: &Receiver<WalJob<S>>, stats: &SharedStats) {
    stats.wal_stopped.store(true, Release);
    for job in groups.iter() {
        drop(job);
    }
}

/// Trimming the WAL behind the oldest kept snapshot, one bounded step between groups.
#[derive(Default)]
struct Trim {
    /// Every record before this one is gone.
    trimmed_before: u64,
    /// The trim under way: records removed, steps, time spent in them, the longest step.
    records: u64,
    steps: u32,
    busy: Duration,
    longest: Duration,
    last_step: Option<Instant>,
}

impl Trim {
    /// Whether a step may run between two groups now (see [`TRIM_STEP_INTERVAL`]).
    fn due(&self) -> bool {
        self.last_step
            .is_none_or(|last| last.elapsed() >= TRIM_STEP_INTERVAL)
    }

    /// Removes one step of records. An `Err` means the WAL failed (and the policy did not
    /// abort): the WAL thread must stop.
    fn step(
        &mut self,
        wal: &mut dyn Wal,
        stats: &SharedStats,
        config: &EngineConfig,
    ) -> Result<(), Stopped> {
        let target = stats.trim_target_seq.load(Relaxed);
        if target <= self.trimmed_before {
            return Ok(());
        }
        let started = Instant::now();
        let removed = match wal.trim_before(target, config.trim_step_records) {
            Ok(removed) => removed,
            Err(error) => {
                wal_failed(config.on_wal_failure, target, &error);
                return Err(Stopped);
            }
        };
        let took = started.elapsed();
        self.last_step = Some(Instant::now());
        stats.trimmed_records.fetch_add(removed as u64, Relaxed);
        self.records += removed as u64;
        self.steps += 1;
        self.busy += took;
        self.longest = self.longest.max(took);
        if removed < config.trim_step_records {
            self.trimmed_before = target;
            // Each step runs between two groups on this thread: the longest step is what
            // trimming can add to a commit's latency.
            tracing::info!(
                before_seq = target,
                records = self.records,
                steps = self.steps,
                busy_ms = self.busy.as_millis() as u64,
                longest_step_us = self.longest.as_micros() as u64,
                "WAL trimmed"
            );
            *self = Trim {
                trimmed_before: self.trimmed_before,
                last_step: self.last_step,
                ..Trim::default()
            };
        }
        Ok(())
    }
}

fn wal_failed(policy: WalFailure, seq: u64, error: &std::io::Error) {
    tracing::error!(seq, %error, "ledger WAL failed: stopping, nothing more is acknowledged");
    match policy {
        WalFailure::Abort => {
            eprintln!(
                "FATAL: ledger WAL write or sync failed near record {seq}: {error}. \
                 Aborting: restart recovers from what is really on disk."
            );
            std::process::abort();
        }
        WalFailure::Stop => {}
    }
}

/// The events of each transaction of a group, in order.
fn transactions<'a, E>(events: &'a [E], tx_ends: &'a [u32]) -> impl Iterator<Item = &'a [E]> {
    let starts = std::iter::once(0).chain(tx_ends.iter().copied());
    let transactions = starts
        .zip(tx_ends)
        .map(|(start, &end)| &events[start as usize..end as usize]);
    debug_assert_eq!(tx_ends.last().copied().unwrap_or(0) as usize, events.len());
    transactions
}

/// Debug builds decode every record they are about to write and compare: the WAL must hold
/// exactly what was applied, one record per transaction.
#[cfg(debug_assertions)]
fn check_round_trip<S: StateMachine>(records: &RecordGroup, events: &[S::Event], tx_ends: &[u32]) {
    assert_eq!(records.len(), tx_ends.len(), "one record per transaction");
    for ((seq, payload), transaction) in records.iter().zip(transactions(events, tx_ends)) {
        let mut decoded = Vec::new();
        crate::wal::decode_transaction::<S::Event>(payload, |event| decoded.push(event))
            .expect("record decodes");
        let again = postcard::to_stdvec(&decoded).expect("record re-encodes");
        let original = postcard::to_stdvec(transaction).expect("events encode");
        assert_eq!(again, original, "record {seq} does not round-trip");
    }
}

pub(crate) fn run_snapshots<S: StateMachine>(
    mut store: SnapshotStore,
    jobs: Receiver<SnapshotJob<S>>,
    stats: &SharedStats,
    thread: &SnapshotThread,
) {
    thread.register_current();
    for SnapshotJob {
        seq,
        mut snapshot,
        capture_us,
        reply,
    } in jobs
    {
        // See `priority`: in the background unless someone waits for this one.
        thread.set(if reply.is_some() {
            Priority::Lowered
        } else {
            Priority::Background
        });
        let result = store.write(seq, &mut snapshot);
        drop(snapshot);
        stats.snapshots_in_flight.fetch_sub(1, Relaxed);
        let result = match result {
            Ok(info) => {
                stats.snapshots.fetch_add(1, Relaxed);
                stats.last_snapshot_seq.store(seq, Relaxed);
                stats
                    .last_snapshot_us
                    .store(info.write_duration.as_micros() as u64, Relaxed);
                // The WAL is kept from the older kept snapshot on, so either snapshot can be
                // recovered from; its own record stays, to prove the overlap at recovery.
                stats
                    .trim_target_seq
                    .fetch_max(info.wal_needed_from_seq, Relaxed);
                tracing::info!(
                    seq,
                    bytes = info.bytes,
                    chunk_files_written = info.chunks.written,
                    chunk_bytes_written = info.chunks.written_bytes,
                    chunk_files_reused = info.chunks.reused,
                    chunk_bytes_total = info.chunks.total_bytes,
                    ms = info.write_duration.as_millis() as u64,
                    chunks_ms = info.chunks_duration.as_millis() as u64,
                    encode_ms = info.encode_duration.as_millis() as u64,
                    sync_ms = info.sync_duration.as_millis() as u64,
                    capture_us,
                    "snapshot written"
                );
                Ok(info)
            }
            Err(error) => {
                // Not fatal: the WAL still holds everything since the last good snapshot.
                stats.snapshot_failures.fetch_add(1, Relaxed);
                tracing::error!(seq, %error, "snapshot failed");
                Err(EngineError::Snapshot(error.to_string()))
            }
        };
        if let Some(reply) = reply {
            let _ = reply.send(result);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::{AccountId, AccountKind};
    use crate::book::{Book, LedgerEvent};

    /// A group of `records` records of one event each, from `first_seq`.
    fn group(first_seq: u64, records: u32) -> WalJob<Book> {
        let events = (0..records)
            .map(|i| LedgerEvent::OpenAccount {
                id: AccountId(first_seq as u32 + i),
                kind: AccountKind::CardStoredValue,
            })
            .collect();
        WalJob::Group {
            first_seq,
            events,
            tx_ends: (1..=records).collect(),
            completions: Vec::new(),
        }
    }

    fn parts(job: &WalJob<Book>) -> (u64, usize, &[u32]) {
        match job {
            WalJob::Group {
                first_seq,
                events,
                tx_ends,
                ..
            } => (*first_seq, events.len(), tx_ends),
            WalJob::Snapshot { .. } => panic!("a snapshot, not a group"),
        }
    }

    #[test]
    fn queued_groups_merge_into_one_up_to_the_limit() {
        let (sender, receiver) = crossbeam_channel::unbounded();
        for job in [group(4, 3), group(7, 0), group(7, 4), group(11, 2)] {
            sender.send(job).unwrap();
        }
        let mut carried = None;
        let merged = merge_queued(group(1, 3), &receiver, &mut carried, 12);
        // 3 + 3 + 0 + 4 + 2 events: exactly the limit.
        assert_eq!(
            parts(&merged),
            (1, 12, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12][..])
        );
        assert!(carried.is_none());

        sender.send(group(13, 5)).unwrap();
        sender.send(group(18, 1)).unwrap();
        let merged = merge_queued(group(5, 8), &receiver, &mut carried, 12);
        assert_eq!(parts(&merged).1, 8, "the group of 5 would pass 12 events");
        assert_eq!(
            parts(carried.as_ref().unwrap()).0,
            13,
            "and waits for the next turn"
        );
        let next = merge_queued(carried.take().unwrap(), &receiver, &mut carried, 12);
        assert_eq!(parts(&next), (13, 6, &[1, 2, 3, 4, 5, 6][..]));
    }

    #[test]
    fn a_snapshot_ends_the_merge_and_waits() {
        let (sender, receiver) = crossbeam_channel::unbounded();
        sender.send(group(3, 1)).unwrap();
        sender
            .send(WalJob::Snapshot {
                seq: 3,
                snapshot: Book::new().snapshot(),
                capture_us: 0,
                reply: None,
            })
            .unwrap();
        sender.send(group(4, 1)).unwrap();
        let mut carried = None;
        let merged = merge_queued(group(1, 2), &receiver, &mut carried, 100);
        assert_eq!(parts(&merged), (1, 3, &[1, 2, 3][..]));
        assert!(matches!(carried, Some(WalJob::Snapshot { seq: 3, .. })));
        assert_eq!(
            receiver.len(),
            1,
            "the group after the snapshot stays queued"
        );
    }
}
