//! Recovery: the latest snapshot, then the WAL after it, then the state's own check. Either
//! the whole acknowledged state comes back, or the start is refused with the reason; never a
//! silently partial book.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use crate::snapshot::{SnapshotError, SnapshotStore};
use crate::state_machine::StateMachine;
use crate::wal::{decode_transaction, Recovered, TornTail, Wal, WalError};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Seq of the snapshot recovery started from; 0 when it started from the initial state.
    pub snapshot_seq: u64,
    /// WAL records applied after the snapshot.
    pub replayed_records: u64,
    /// Last record in the recovered state: new records follow it.
    pub last_seq: u64,
    pub duration: Duration,
    pub torn_tail_dropped: bool,
    pub torn_tail: Option<TornTail>,
}

#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error("snapshot at seq {seq} cannot be restored: {reason}")]
    Restore { seq: u64, reason: String },
    #[error(transparent)]
    Wal(#[from] WalError),
    #[error(
        "the WAL does not reach back to the snapshot at seq {snapshot_seq} (first record found: \
         {first_seq:?}): records acknowledged after the snapshot could be missing, so refusing to \
         start. Check that the WAL directory belongs with the snapshot directory."
    )]
    WalBehindSnapshot {
        snapshot_seq: u64,
        first_seq: Option<u64>,
    },
    #[error("recovered state fails its check, refusing to serve: {0}")]
    Check(String),
}

/// Rebuilds the state from `snapshots` and `wal`, before the engine's threads start (the
/// replay's reader thread ends with it). The engine calls this at open; tests and
/// benchmarks call it directly.
pub fn recover<S: StateMachine>(
    wal: &mut dyn Wal,
    snapshots: Option<&mut SnapshotStore>,
    initial: impl FnOnce() -> S,
) -> Result<(S, RecoveryReport), RecoveryError> {
    let started = Instant::now();
    let loaded = match snapshots {
        Some(store) => store.load_latest::<S::Snapshot>()?,
        None => None,
    };
    let (snapshot_seq, mut state) = match loaded {
        None => (0, initial()),
        Some((seq, snapshot)) => {
            let restored = catch_unwind(AssertUnwindSafe(|| S::restore(snapshot)));
            let state = restored.map_err(|panic| RecoveryError::Restore {
                seq,
                reason: panic_message(panic),
            })?;
            (seq, state)
        }
    };

    // Read from the snapshot's own record: finding it proves the WAL overlaps the snapshot.
    let from_seq = snapshot_seq.max(1);
    let hint = wal.records_hint(from_seq).map_err(WalError::Io)?;
    state.reserve(hint.min(RESERVE_RECORDS_MAX));
    let (recovered, replayed_records) = replay(wal, from_seq, snapshot_seq, &mut state)?;
    if snapshot_seq > 0 && recovered.first_seq != Some(snapshot_seq) {
        return Err(RecoveryError::WalBehindSnapshot {
            snapshot_seq,
            first_seq: recovered.first_seq,
        });
    }
    let last_seq = recovered.last_seq.unwrap_or(0).max(snapshot_seq);
    assert_eq!(
        last_seq,
        snapshot_seq + replayed_records,
        "replayed records are contiguous"
    );
    state.check().map_err(RecoveryError::Check)?;
    let report = RecoveryReport {
        snapshot_seq,
        replayed_records,
        last_seq,
        duration: started.elapsed(),
        torn_tail_dropped: recovered.torn_tail.is_some(),
        torn_tail: recovered.torn_tail,
    };
    tracing::info!(
        snapshot_seq,
        replayed_records,
        last_seq,
        duration_ms = report.duration.as_millis() as u64,
        torn_tail_dropped = report.torn_tail_dropped,
        "ledger recovered"
    );
    Ok((state, report))
}

/// The most records replay reserves room for up front (past it, the state grows as the
/// records come): the id index of 64M transfers takes 2 GB.
const RESERVE_RECORDS_MAX: u64 = 1 << 26;

/// Decoded events handed from the reader to the applier at a time (whole records: a batch
/// may hold a few more), and how many such batches may wait: enough to keep both threads
/// busy, little enough to stay in the cache.
const BATCH_EVENTS: usize = 256;
const BATCHES_IN_FLIGHT: usize = 4;

/// How many events ahead of the one being applied the applier prefetches.
const PREFETCH_AHEAD: usize = 4;

/// Why the reader stopped early: the applier stopped taking records (it failed on one).
const APPLIER_STOPPED: &str = "replay stopped at an earlier record";

/// Replays the WAL from `from_seq` on into `state` (records up to `snapshot_seq` are in it
/// already), on two threads: a reader reads the WAL (its pages, checksums and order) and
/// decodes each record (a transaction's events), the calling thread applies the events in
/// order, prefetching a few events ahead. The outcome is that of one thread doing both in
/// turn: the records applied are the same, and an error names the same record (a record the applier rejected comes before
/// anything the reader found after it). One difference, harmless: the reader may drop a torn
/// last page before the applier fails on an earlier record (dropping it is right either way:
/// it was never acknowledged). Returns what the WAL found and the records applied.
fn replay<S: StateMachine>(
    wal: &mut dyn Wal,
    from_seq: u64,
    snapshot_seq: u64,
    state: &mut S,
) -> Result<(Recovered, u64), WalError> {
    let (sender, receiver) = crossbeam_channel::bounded::<Vec<(u64, S::Event)>>(BATCHES_IN_FLIGHT);
    std::thread::scope(|scope| {
        let reader = scope.spawn(move || {
            let mut batch = Vec::with_capacity(BATCH_EVENTS);
            let read = wal.recover(from_seq, &mut |seq, payload| {
                if seq <= snapshot_seq {
                    return Ok(());
                }
                // The whole record decodes before any of it is handed over: a record that
                // does not decode is rejected with none of its events applied.
                let start = batch.len();
                if let Err(error) = decode_transaction(payload, |event| batch.push((seq, event))) {
                    batch.truncate(start);
                    return Err(error);
                }
                if batch.len() >= BATCH_EVENTS {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_EVENTS));
                    sender.send(full).map_err(|_| APPLIER_STOPPED.to_string())?;
                }
                Ok(())
            });
            // Even after an error: the records before it are applied first, as one thread would.
            if !batch.is_empty() {
                let _ = sender.send(batch);
            }
            read
        });
        // Records applied: a record is counted at its first event (if a later one fails, the
        // replay fails with it).
        let mut applied = 0u64;
        let mut last_seq = snapshot_seq;
        let mut rejected = None;
        'batches: for batch in receiver.iter() {
            for (_, event) in batch.iter().take(PREFETCH_AHEAD) {
                state.prefetch(event);
            }
            for (index, (seq, event)) in batch.iter().enumerate() {
                if let Some((_, ahead)) = batch.get(index + PREFETCH_AHEAD) {
                    state.prefetch(ahead);
                }
                if let Err(panic) = catch_unwind(AssertUnwindSafe(|| state.apply(event))) {
                    let reason = format!("does not apply: {}", panic_message(panic));
                    rejected = Some(WalError::Rejected { seq: *seq, reason });
                    break 'batches;
                }
                if *seq != last_seq {
                    last_seq = *seq;
                    applied += 1;
                }
            }
        }
        // Stops the reader if it is still reading (its next send fails).
        drop(receiver);
        let read = match reader.join() {
            Ok(read) => read,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        match (rejected, read) {
            (Some(rejected), _) => Err(rejected),
            (None, read) => Ok((read?, applied)),
        }
    })
}

fn panic_message(panic: Box<dyn std::any::Any + Send>) -> String {
    if let Some(message) = panic.downcast_ref::<&str>() {
        message.to_string()
    } else if let Some(message) = panic.downcast_ref::<String>() {
        message.clone()
    } else {
        "panic".to_string()
    }
}
