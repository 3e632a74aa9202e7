//! Counters the switch exports as metrics. Written with relaxed atomics by the engine's
//! threads; read at any time without stopping them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

/// Sync latency buckets: bucket `i` counts syncs that took less than `2^i` microseconds (the
/// last bucket counts the rest), from under 1 µs to over 8 s.
pub const SYNC_BUCKETS: usize = 24;

/// A copy of the engine's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Groups made durable, and the records (one per transaction) and events in them.
    pub groups: u64,
    pub records: u64,
    pub events: u64,
    pub last_group_size: u64,
    pub group_size_max: u64,
    /// Real syncs (one per non-empty group) and their latency.
    pub syncs: u64,
    pub sync_us_sum: u64,
    pub sync_us_max: u64,
    pub sync_us_buckets: [u64; SYNC_BUCKETS],
    /// Last record known durable; last record applied to the state.
    pub durable_seq: u64,
    pub applied_seq: u64,
    /// Requests waiting for the engine thread.
    pub queue_depth: usize,
    pub snapshots: u64,
    pub snapshot_failures: u64,
    pub last_snapshot_seq: u64,
    pub last_snapshot_us: u64,
    /// Time the engine thread spent taking the last snapshot (`StateMachine::snapshot`), and
    /// the longest: no request is decided meanwhile.
    pub last_snapshot_capture_us: u64,
    pub snapshot_capture_us_max: u64,
    /// WAL records removed behind snapshots.
    pub trimmed_records: u64,
}

#[derive(Debug, Default)]
pub(crate) struct SharedStats {
    pub(crate) groups: AtomicU64,
    pub(crate) records: AtomicU64,
    pub(crate) events: AtomicU64,
    pub(crate) last_group_size: AtomicU64,
    pub(crate) group_size_max: AtomicU64,
    pub(crate) syncs: AtomicU64,
    pub(crate) sync_us_sum: AtomicU64,
    pub(crate) sync_us_max: AtomicU64,
    pub(crate) sync_us_buckets: [AtomicU64; SYNC_BUCKETS],
    pub(crate) durable_seq: AtomicU64,
    pub(crate) applied_seq: AtomicU64,
    pub(crate) snapshots: AtomicU64,
    pub(crate) snapshot_failures: AtomicU64,
    pub(crate) last_snapshot_seq: AtomicU64,
    pub(crate) last_snapshot_us: AtomicU64,
    pub(crate) last_snapshot_capture_us: AtomicU64,
    pub(crate) snapshot_capture_us_max: AtomicU64,
    pub(crate) trimmed_records: AtomicU64,
    /// Oldest snapshot kept: the WAL may be trimmed before it.
    pub(crate) trim_target_seq: AtomicU64,
    pub(crate) snapshots_in_flight: AtomicU64,
    /// Set by the WAL thread when it failed and stopped (policy [`super::WalFailure::Stop`]).
    pub(crate) wal_stopped: AtomicBool,
}

impl SharedStats {
    /// A group of `records` records holding `size` events is durable.
    pub(crate) fn record_group(&self, records: u64, size: u64, sync_us: Option<u64>) {
        self.groups.fetch_add(1, Relaxed);
        self.records.fetch_add(records, Relaxed);
        self.events.fetch_add(size, Relaxed);
        self.last_group_size.store(size, Relaxed);
        self.group_size_max.fetch_max(size, Relaxed);
        if let Some(sync_us) = sync_us {
            self.syncs.fetch_add(1, Relaxed);
            self.sync_us_sum.fetch_add(sync_us, Relaxed);
            self.sync_us_max.fetch_max(sync_us, Relaxed);
            let bucket = (u64::BITS - sync_us.leading_zeros()) as usize;
            self.sync_us_buckets[bucket.min(SYNC_BUCKETS - 1)].fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn read(&self, queue_depth: usize) -> EngineStats {
        EngineStats {
            groups: self.groups.load(Relaxed),
            records: self.records.load(Relaxed),
            events: self.events.load(Relaxed),
            last_group_size: self.last_group_size.load(Relaxed),
            group_size_max: self.group_size_max.load(Relaxed),
            syncs: self.syncs.load(Relaxed),
            sync_us_sum: self.sync_us_sum.load(Relaxed),
            sync_us_max: self.sync_us_max.load(Relaxed),
            sync_us_buckets: std::array::from_fn(|index| self.sync_us_buckets[index].load(Relaxed)),
            durable_seq: self.durable_seq.load(Relaxed),
            applied_seq: self.applied_seq.load(Relaxed),
            queue_depth,
            snapshots: self.snapshots.load(Relaxed),
            snapshot_failures: self.snapshot_failures.load(Relaxed),
            last_snapshot_seq: self.last_snapshot_seq.load(Relaxed),
            last_snapshot_us: self.last_snapshot_us.load(Relaxed),
            last_snapshot_capture_us: self.last_snapshot_capture_us.load(Relaxed),
            snapshot_capture_us_max: self.snapshot_capture_us_max.load(Relaxed),
            trimmed_records: self.trimmed_records.load(Relaxed),
        }
    }
}
