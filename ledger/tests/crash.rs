//! Crash consistency on the simulated disk.
//!
//! The property, for every crash: every acknowledged event is recovered, and the recovered
//! events are a prefix of the submitted order with no holes and no damage; or, when a record
//! that is not the last one is damaged, the start is refused naming that record.
//!
//! One caveat is tested as such: a flipped bit in the very last record cannot be told apart
//! from a torn write, so that record is dropped (or the start refused) even if it was
//! acknowledged. Real media damage is also caught by sled's own checksums.
//!
//! Every case runs from a seed; a failure prints it. Replay one with
//! `LEDGER_CRASH_SEED=<seed> cargo test -p ledger --test crash`.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use common::*;
use ledger::engine::recover;
use ledger::sim_disk::{CrashFaults, Cut, SimCrash, SimRng};
use ledger::*;

const SEEDS: u64 = 5_000;
const ENGINE_SEEDS: u64 = 150;

fn seeds(count: u64) -> Vec<u64> {
    match std::env::var("LEDGER_CRASH_SEED") {
        Ok(seed) => vec![seed.parse().expect("LEDGER_CRASH_SEED is a number")],
        Err(_) => (0..count).collect(),
    }
}

/// Runs `case` for every seed, collecting failures so the report lists every failing seed.
fn for_each_seed(count: u64, name: &str, mut case: impl FnMut(u64) -> Outcome) -> Vec<Outcome> {
    let mut failures = Vec::new();
    let mut outcomes = Vec::new();
    for seed in seeds(count) {
        match catch_unwind(AssertUnwindSafe(|| case(seed))) {
            Ok(outcome) => outcomes.push(outcome),
            Err(panic) => {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failures.push(format!("seed {seed}: {message}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{name}: {} seeds failed (replay with LEDGER_CRASH_SEED=<seed>):\n{}",
        failures.len(),
        failures.join("\n")
    );
    outcomes
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Outcome {
    /// Recovered every complete record.
    Recovered,
    /// The last record was damaged and dropped.
    DroppedDamagedLast,
    /// A damaged record was refused, by name.
    Refused,
}

/// What recovery must do with a crash image, checked against the transactions submitted
/// (one record each): the state recovered is that of a prefix of whole transactions.
fn check_recovery(
    crash: &SimCrash,
    submitted: &[Vec<LedgerEvent>],
    acked: u64,
) -> (Outcome, Option<SimDisk>) {
    let mut clean = crash.image.clone();
    if let Some((at, mask)) = crash.flipped {
        clean[at] ^= mask;
    }
    let frames = SimDisk::frames(&clean);
    for (index, (_, _, seq)) in frames.iter().enumerate() {
        assert_eq!(*seq, index as u64 + 1, "the writer numbers records densely");
    }
    let complete = frames.len() as u64;
    assert!(
        complete >= acked,
        "acknowledged records were not durable: {complete} < {acked}"
    );
    let flipped_frame = crash.flipped.and_then(|(at, _)| {
        frames
            .iter()
            .position(|&(offset, len, _)| at >= offset && at < offset + len)
    });

    let mut disk = SimDisk::from_image(crash.image.clone());
    let result = recover::<Book>(&mut disk, None, Book::new);
    let (outcome, expected_last) = match (flipped_frame, &result) {
        (Some(index), Err(error)) => {
            let seq = index as u64 + 1;
            match error {
                RecoveryError::Wal(WalError::Corrupt { seq: named, .. }) => {
                    assert_eq!(*named, seq, "{error}")
                }
                other => panic!("refused for another reason: {other}"),
            }
            assert!(
                error.to_string().contains(&format!("record {seq}")),
                "error names the record: {error}"
            );
            return (Outcome::Refused, None);
        }
        (Some(index), Ok(_)) => {
            assert_eq!(
                index + 1,
                frames.len(),
                "damage before the last record was not refused"
            );
            (Outcome::DroppedDamagedLast, complete - 1)
        }
        (None, Ok(_)) => (Outcome::Recovered, complete),
        (None, Err(error)) => panic!("undamaged log refused: {error}"),
    };
    let (book, report) = result.expect("matched Ok above");
    assert_eq!(report.last_seq, expected_last);
    if outcome == Outcome::Recovered {
        assert!(report.last_seq >= acked, "lost acknowledged records");
    }
    assert_eq!(report.replayed_records, report.last_seq);
    let expected = apply_all(&submitted[..report.last_seq as usize].concat());
    assert!(
        fingerprint(&book) == fingerprint(&expected),
        "recovered state differs from the prefix"
    );
    (outcome, Some(disk))
}

/// The events of one request: usually one to three, sometimes a large transaction (more than
/// a page of the sled WAL holds), each checked against the book as the engine's `Tx` would.
fn transaction(rng: &mut SimRng, workload: &mut Workload, book: &mut Book) -> Vec<LedgerEvent> {
    let count = if rng.chance(1, 20) {
        80
    } else {
        1 + rng.below(3)
    };
    (0..count)
        .map(|_| {
            let event = workload.next_event(book);
            book.apply(&event);
            event
        })
        .collect()
}

/// Drives the commit path by hand (as the WAL thread does: encode a group, append, sync, then
/// acknowledge), crashing at a seeded point.
fn seeded_crash(seed: u64) -> Outcome {
    let mut rng = SimRng::new(seed ^ 0x5EED);
    let disk = SimDisk::new();
    let mut wal = disk.clone();
    wal.recover(1, &mut |_, _| Ok(())).unwrap();
    let mut workload = Workload::new(seed);
    let mut book = Book::new();
    let mut submitted = Vec::new();
    let mut acked = 0u64;
    let groups = 1 + rng.below(12);
    let crash_group = rng.below(groups);
    // 0: before the append, 1: after the append (unsynced), 2: after the sync, before the ack.
    let crash_point = rng.below(3);
    for group_index in 0..groups {
        let mut group = RecordGroup::new(submitted.len() as u64 + 1);
        for _ in 0..1 + rng.below(6) {
            let events = transaction(&mut rng, &mut workload, &mut book);
            group.push_transaction(&events);
            submitted.push(events);
        }
        let crashing = group_index == crash_group;
        if crashing && crash_point == 0 {
            break;
        }
        wal.append(&group).unwrap();
        if crashing && crash_point == 1 {
            break;
        }
        // Sometimes the next group's sync covers this one too: several unsynced writes.
        if !crashing && rng.chance(1, 4) {
            continue;
        }
        wal.sync().unwrap();
        if crashing {
            break;
        }
        acked = group.last_seq();
    }
    let crash = disk.crash(seed);
    let (outcome, recovered) = check_recovery(&crash, &submitted, acked);

    // After a recovery the log goes on: append after the last good record, crash cleanly,
    // recover everything again.
    if let (Some(mut disk), true) = (recovered, rng.chance(1, 4)) {
        let (mut book, report) = recover::<Book>(&mut disk, None, Book::new).unwrap();
        let last_seq = report.last_seq;
        let mut events = submitted[..last_seq as usize].to_vec();
        let mut group = RecordGroup::new(last_seq + 1);
        for _ in 0..3 {
            let event = workload.next_event(&book);
            book.apply(&event);
            group.push_event(&event);
            events.push(vec![event]);
        }
        disk.append(&group).unwrap();
        disk.sync().unwrap();
        let crash = disk.crash_with(
            seed,
            CrashFaults {
                tear: false,
                flip: false,
            },
        );
        let (again, _) = check_recovery(&crash, &events, last_seq + 3);
        assert_eq!(again, Outcome::Recovered);
    }
    outcome
}

#[test]
fn seeded_crash_points_recover_the_acknowledged_prefix() {
    let outcomes = for_each_seed(SEEDS, "seeded crash points", seeded_crash);
    let count = |wanted| {
        outcomes
            .iter()
            .filter(|&&outcome| outcome == wanted)
            .count()
    };
    eprintln!(
        "{} crash points: {} recovered, {} dropped a damaged last record, {} refused a damaged record",
        outcomes.len(),
        count(Outcome::Recovered),
        count(Outcome::DroppedDamagedLast),
        count(Outcome::Refused)
    );
    if outcomes.len() as u64 == SEEDS {
        assert!(
            count(Outcome::Recovered) > 0
                && count(Outcome::Refused) > 0
                && count(Outcome::DroppedDamagedLast) > 0
        );
    }
}

/// Cuts the power under the running engine at a seeded call (before or after a sync), with
/// clients writing and reading concurrently. Acknowledged writes, and every state a
/// read was answered from, must come back.
fn engine_cut(seed: u64) -> Outcome {
    let mut rng = SimRng::new(seed ^ 0xC07);
    let disk = SimDisk::new();
    let cut = Cut {
        at_op: 1 + rng.below(40),
        after_sync: rng.chance(1, 2),
        seed,
        faults: CrashFaults {
            tear: rng.chance(1, 2),
            flip: false,
        },
    };
    disk.cut(cut);
    let config = EngineConfig {
        group_max_events: 1 + rng.below(32) as usize,
        on_wal_failure: WalFailure::Stop,
        snapshot_every_records: 0,
        ..EngineConfig::default()
    };
    let (engine, _) = Engine::open(Box::new(disk.clone()), None, config, Book::new).unwrap();
    let workload = Arc::new(Mutex::new(Workload::new(seed)));
    let executed: Arc<Mutex<Vec<Vec<LedgerEvent>>>> = Arc::default();
    let mut pending = Vec::new();
    for _ in 0..200 {
        let (workload, executed) = (workload.clone(), executed.clone());
        let writes = rng.chance(3, 4);
        // Several events in one request: one record, recovered whole or not at all.
        let events = if rng.chance(1, 20) {
            80
        } else {
            1 + rng.below(3)
        };
        pending.push(engine.execute(move |tx| {
            let mut executed = executed.lock().unwrap();
            if writes {
                let mut workload = workload.lock().unwrap();
                let mut transaction = Vec::new();
                for _ in 0..events {
                    let event = workload.next_event(tx.state());
                    transaction.push(event.clone());
                    tx.emit(event);
                }
                executed.push(transaction);
            }
            // The state this request saw (and would answer from) is the first `len` records.
            executed.len() as u64
        }));
    }
    let mut must_survive = 0u64;
    for result in pending.into_iter().map(Pending::wait) {
        match result {
            Ok(seen) => must_survive = must_survive.max(seen),
            Err(error) => assert_eq!(error, EngineError::Stopped),
        }
    }
    engine.shutdown();
    let crash = disk.crashed().unwrap_or_else(|| {
        disk.crash_with(
            seed,
            CrashFaults {
                tear: false,
                flip: false,
            },
        )
    });
    let executed = executed.lock().unwrap().clone();
    let (outcome, _) = check_recovery(&crash, &executed, must_survive);
    assert_eq!(outcome, Outcome::Recovered);
    outcome
}

#[test]
fn power_cut_under_the_running_engine_keeps_every_answered_request() {
    for_each_seed(ENGINE_SEEDS, "engine power cuts", engine_cut);
}

#[test]
fn a_failed_sync_answers_nobody() {
    let disk = SimDisk::new();
    // Op 1 is the first append, op 2 its sync: fail the sync.
    disk.cut(Cut {
        at_op: 2,
        after_sync: false,
        seed: 1,
        faults: CrashFaults {
            tear: false,
            flip: false,
        },
    });
    let config = EngineConfig {
        on_wal_failure: WalFailure::Stop,
        ..EngineConfig::default()
    };
    let (engine, _) = Engine::open(Box::new(disk.clone()), None, config, Book::new).unwrap();
    let write = engine.execute(|tx| {
        let id = tx.state().next_account_id();
        tx.emit(LedgerEvent::OpenAccount {
            id,
            kind: AccountKind::CardStoredValue,
        });
    });
    let read = engine.execute(|tx| tx.state().accounts());
    assert_eq!(write.wait(), Err(EngineError::Stopped));
    assert_eq!(
        read.wait(),
        Err(EngineError::Stopped),
        "a read of undurable state was answered"
    );
    assert_eq!(
        engine.execute(|_| ()).wait(),
        Err(EngineError::Stopped),
        "the engine carried on"
    );
    let crash = disk.crashed().expect("the power was cut");
    assert!(crash.image.is_empty());
}

/// A WAL whose trims fail (a disk error while removing records behind a snapshot), and which
/// counts what it is asked to do after that.
struct FailingTrim {
    disk: SimDisk,
    failed: Arc<Mutex<bool>>,
    appends_after_failure: Arc<Mutex<u64>>,
}

impl Wal for FailingTrim {
    fn recover(
        &mut self,
        from_seq: u64,
        visit: &mut ledger::wal::Visit<'_>,
    ) -> Result<ledger::wal::Recovered, WalError> {
        self.disk.recover(from_seq, visit)
    }

    fn append(&mut self, group: &RecordGroup) -> std::io::Result<()> {
        if *self.failed.lock().unwrap() {
            *self.appends_after_failure.lock().unwrap() += 1;
        }
        self.disk.append(group)
    }

    fn sync(&mut self) -> std::io::Result<()> {
        self.disk.sync()
    }

    fn trim_before(&mut self, _seq: u64, _records_max: usize) -> std::io::Result<usize> {
        *self.failed.lock().unwrap() = true;
        Err(std::io::Error::other("simulated I/O error while trimming"))
    }
}

#[test]
fn a_failed_trim_stops_the_engine_like_a_failed_sync() {
    let failed = Arc::new(Mutex::new(false));
    let appends_after_failure = Arc::new(Mutex::new(0));
    let wal = FailingTrim {
        disk: SimDisk::new(),
        failed: failed.clone(),
        appends_after_failure: appends_after_failure.clone(),
    };
    let snapshots = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(snapshots.path()).unwrap();
    let config = EngineConfig {
        on_wal_failure: WalFailure::Stop,
        snapshot_every_records: 0,
        ..EngineConfig::default()
    };
    let (engine, _) = Engine::open(Box::new(wal), Some(store), config, Book::new).unwrap();
    let open_card = |engine: &Engine<Book>| {
        engine.execute(|tx| {
            let id = tx.state().next_account_id();
            tx.emit(LedgerEvent::OpenAccount {
                id,
                kind: AccountKind::CardStoredValue,
            });
        })
    };
    // Two snapshots: the WAL before the older one may now be trimmed, and the trim fails.
    for _ in 0..2 {
        open_card(&engine).wait().unwrap();
        engine.snapshot_now().wait().unwrap();
    }
    // The first write after that may be answered (its group was durable before the trim
    // step ran); once the trim has failed, nothing more is.
    let first = open_card(&engine).wait();
    assert!(
        matches!(first, Ok(()) | Err(EngineError::Stopped)),
        "{first:?}"
    );
    // The WAL thread trims right after answering a group, before it takes the next one.
    assert_eq!(open_card(&engine).wait(), Err(EngineError::Stopped));
    assert!(*failed.lock().unwrap(), "the trim never ran");
    assert_eq!(
        engine.execute(|tx| tx.state().accounts()).wait(),
        Err(EngineError::Stopped),
        "a read was answered after the WAL failed"
    );
    assert_eq!(
        engine.snapshot_now().wait().err(),
        Some(EngineError::Stopped)
    );
    engine.shutdown();
    assert_eq!(
        *appends_after_failure.lock().unwrap(),
        0,
        "the WAL carried on writing after a failed trim"
    );
}
