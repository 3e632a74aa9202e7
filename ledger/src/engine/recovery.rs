//! Recovery: the latest snapshot, then the WAL after it, then the state's own check. Either
//! the whole acknowledged state comes back, or the start is refused with the reason; never a
//! silently partial book.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use crate::snapshot::{SnapshotError, SnapshotStore};
use crate::state_machine::StateMachine;
use crate::wal::{TornTail, Wal, WalError};

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

/// Rebuilds the state from `snapshots` and `wal`, without starting any thread. The engine
/// calls this at open; tests and benchmarks call it directly.
pub fn recover<S: StateMachine>(
    wal: &mut dyn Wal,
    snapshots: Option<&SnapshotStore>,
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
    let mut replayed_records = 0u64;
    let recovered = wal.recover(from_seq, &mut |seq, payload| {
        if seq <= snapshot_seq {
            return Ok(());
        }
        let event: S::Event = postcard::from_bytes(payload)
            .map_err(|error| format!("checks but does not decode: {error}"))?;
        catch_unwind(AssertUnwindSafe(|| state.apply(&event)))
            .map_err(|panic| format!("does not apply: {}", panic_message(panic)))?;
        replayed_records += 1;
        Ok(())
    })?;
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

fn panic_message(panic: Box<dyn std::any::Any + Send>) -> String {
    if let Some(message) = panic.downcast_ref::<&str>() {
        message.to_string()
    } else if let Some(message) = panic.downcast_ref::<String>() {
        message.clone()
    } else {
        "panic".to_string()
    }
}
