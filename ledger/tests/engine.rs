//! The group-commit engine on the simulated disk: grouping, answers only when durable,
//! idempotency, snapshots with trimming, recovery, shutdown.

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use ledger::sim_disk::CrashFaults;
use ledger::*;

fn test_config() -> EngineConfig {
    EngineConfig {
        on_wal_failure: WalFailure::Stop,
        snapshot_every_records: 0,
        ..EngineConfig::default()
    }
}

/// The disk as a restart finds it: what was synced, no faults.
fn restart(disk: &SimDisk) -> SimDisk {
    SimDisk::from_image(
        disk.crash_with(
            0,
            CrashFaults {
                tear: false,
                flip: false,
            },
        )
        .image,
    )
}

/// Runs `count` workload events through the engine, one request each, all in flight at once.
fn run_workload(
    engine: &Engine<Book>,
    workload: &Arc<Mutex<Workload>>,
    count: usize,
) -> Vec<LedgerEvent> {
    run_requests(engine, workload, count, |_| 1)
}

/// Runs `requests` requests through the engine, all in flight at once, request `i` emitting
/// `events(i)` workload events; returns the events in log order.
fn run_requests(
    engine: &Engine<Book>,
    workload: &Arc<Mutex<Workload>>,
    requests: usize,
    events: impl Fn(usize) -> usize,
) -> Vec<LedgerEvent> {
    let executed: Arc<Mutex<Vec<LedgerEvent>>> = Arc::default();
    let pending: Vec<_> = (0..requests)
        .map(|request| {
            let (workload, executed) = (workload.clone(), executed.clone());
            let count = events(request);
            engine.execute(move |tx| {
                for _ in 0..count {
                    let event = workload.lock().unwrap().next_event(tx.state());
                    executed.lock().unwrap().push(event.clone());
                    tx.emit(event);
                }
            })
        })
        .collect();
    for result in pending.into_iter().map(Pending::wait) {
        result.unwrap();
    }
    Arc::try_unwrap(executed).unwrap().into_inner().unwrap()
}

#[test]
fn concurrent_requests_share_groups_and_one_sync_each() {
    let config = test_config();
    let disk = SimDisk::new();
    let (engine, report) =
        Engine::open(Box::new(disk.clone()), None, config.clone(), Book::new).unwrap();
    assert_eq!((report.snapshot_seq, report.last_seq), (0, 0));
    let workload = Arc::new(Mutex::new(Workload::new(1)));
    let events = run_workload(&engine, &workload, 5_000);
    let stats = engine.stats();
    assert_eq!(stats.events, 5_000);
    assert_eq!(stats.durable_seq, 5_000);
    assert!(stats.groups < 5_000, "no grouping happened: {stats:?}");
    assert_eq!(stats.syncs, disk.syncs(), "one sync per group with events");
    assert_eq!(stats.sync_us_buckets.iter().sum::<u64>(), stats.syncs);
    engine.shutdown();

    let (engine, report) = Engine::open(Box::new(restart(&disk)), None, config, Book::new).unwrap();
    assert_eq!(report.last_seq, 5_000);
    let fingerprint_now = engine.execute(|tx| fingerprint(tx.state())).wait().unwrap();
    assert_eq!(fingerprint_now, fingerprint(&apply_all(&events)));
}

/// A request's events travel as one record, however many it emits: the WAL, the sequence
/// numbers and the snapshot cadence count requests, not events.
#[test]
fn each_request_is_one_record_whatever_it_emits() {
    let disk = SimDisk::new();
    let (engine, _) = Engine::open(Box::new(disk.clone()), None, test_config(), Book::new).unwrap();
    let workload = Arc::new(Mutex::new(Workload::new(3)));
    let events = run_requests(&engine, &workload, 1_000, |request| 1 + request % 3);
    let stats = engine.stats();
    assert_eq!((stats.records, stats.events), (1_000, 1_999));
    assert_eq!(stats.durable_seq, 1_000);
    let clean = CrashFaults {
        tear: false,
        flip: false,
    };
    assert_eq!(
        SimDisk::frames(&disk.crash_with(0, clean).image).len(),
        1_000
    );
    engine.shutdown();
    let (engine, report) =
        Engine::open(Box::new(restart(&disk)), None, test_config(), Book::new).unwrap();
    assert_eq!((report.last_seq, report.replayed_records), (1_000, 1_000));
    let fingerprint_now = engine.execute(|tx| fingerprint(tx.state())).wait().unwrap();
    assert_eq!(fingerprint_now, fingerprint(&apply_all(&events)));
}

#[test]
fn same_transfer_twice_through_the_engine_is_applied_once() {
    let disk = SimDisk::new();
    let (engine, _) = Engine::open(Box::new(disk.clone()), None, test_config(), Book::new).unwrap();
    let setup = engine.execute(|tx| {
        let mut ids = Vec::new();
        for kind in [
            AccountKind::BankSettlement,
            AccountKind::CardStoredValue,
            AccountKind::MerchantPayable,
        ] {
            let id = tx.state().next_account_id();
            tx.emit(LedgerEvent::OpenAccount { id, kind });
            ids.push(id);
        }
        tx.emit(LedgerEvent::Post(top_up(1, ids[0], ids[1], 1_000)));
        ids
    });
    let ids = setup.wait().unwrap();
    let (card, merchant) = (ids[1], ids[2]);
    // What the switch does: prepare, and emit only a new transfer.
    let submit = |amount| {
        engine.execute(
            move |tx| match tx.state().prepare(&purchase(2, card, merchant, amount)) {
                Ok(Prepared::New) => {
                    tx.emit(LedgerEvent::Post(purchase(2, card, merchant, amount)));
                    Ok(tx.state().balance_minor(card))
                }
                Ok(Prepared::Duplicate(first)) => Err(first.transfer.amount_minor()),
                Err(error) => panic!("{error}"),
            },
        )
    };
    assert_eq!(submit(300).wait().unwrap(), Ok(Some(700)));
    assert_eq!(
        submit(300).wait().unwrap(),
        Err(300),
        "the retry gets the first result"
    );
    engine.shutdown();
    let (engine, _) =
        Engine::open(Box::new(restart(&disk)), None, test_config(), Book::new).unwrap();
    assert_eq!(
        engine
            .execute(move |tx| tx.state().balance_minor(card))
            .wait()
            .unwrap(),
        Some(700)
    );
    // One record per request that emitted anything: the setup and the first purchase.
    assert_eq!(engine.stats().durable_seq, 2);
}

#[test]
fn snapshots_trim_the_wal_and_recovery_replays_only_the_tail() {
    let disk = SimDisk::new();
    let snapshots = tempfile::tempdir().unwrap();
    let config = EngineConfig {
        snapshot_every_records: 1_000,
        trim_step_records: 100,
        ..test_config()
    };
    let store = SnapshotStore::open(snapshots.path()).unwrap();
    let (engine, _) = Engine::open(
        Box::new(disk.clone()),
        Some(store),
        config.clone(),
        Book::new,
    )
    .unwrap();
    let workload = Arc::new(Mutex::new(Workload::new(2)));
    let mut events = Vec::new();
    for _ in 0..6 {
        events.extend(run_workload(&engine, &workload, 1_000));
    }
    let info = engine.snapshot_now().wait().unwrap();
    assert_eq!(info.seq, 6_000);
    // The first automatic snapshot (nothing in flight then) and this one are kept, so the WAL
    // may be trimmed. The WAL thread takes a trim step right after answering a group and
    // before taking the next: once the second run is answered, a step has run.
    events.extend(run_workload(&engine, &workload, 250));
    events.extend(run_workload(&engine, &workload, 250));
    let stats = engine.stats();
    engine.shutdown();
    assert!(stats.snapshots >= 2, "{stats:?}");
    assert!(stats.trimmed_records > 0, "{stats:?}");
    assert_eq!(
        SnapshotStore::open(snapshots.path())
            .unwrap()
            .list()
            .unwrap()
            .len(),
        2,
        "two snapshots kept"
    );

    let store = SnapshotStore::open(snapshots.path()).unwrap();
    let (engine, report) = Engine::open(
        Box::new(restart(&disk)),
        Some(store),
        config.clone(),
        Book::new,
    )
    .unwrap();
    assert_eq!(report.snapshot_seq, 6_000);
    assert_eq!(report.replayed_records, 500);
    assert_eq!(report.last_seq, 6_500);
    let recovered = engine.execute(|tx| fingerprint(tx.state())).wait().unwrap();
    assert_eq!(recovered, fingerprint(&apply_all(&events)));
    engine.shutdown();

    // The newest snapshot damaged: recovery falls back to the older one and a longer replay.
    let newest = SnapshotStore::open(snapshots.path())
        .unwrap()
        .list()
        .unwrap()[0];
    let path = snapshots.path().join(format!("snapshot-{newest:020}.snap"));
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[10] ^= 0x40;
    std::fs::write(&path, bytes).unwrap();
    let store = SnapshotStore::open(snapshots.path()).unwrap();
    let (engine, report) =
        Engine::open(Box::new(restart(&disk)), Some(store), config, Book::new).unwrap();
    assert!(
        report.snapshot_seq < 6_000 && report.snapshot_seq > 0,
        "{report:?}"
    );
    assert_eq!(report.last_seq, 6_500);
    let recovered = engine.execute(|tx| fingerprint(tx.state())).wait().unwrap();
    assert_eq!(recovered, fingerprint(&apply_all(&events)));
}

/// An engine on `disk` with its snapshots in `snapshots`.
fn open_with_snapshots(disk: &SimDisk, snapshots: &std::path::Path) -> Engine<Book> {
    let store = SnapshotStore::open(snapshots).unwrap();
    Engine::open(
        Box::new(disk.clone()),
        Some(store),
        test_config(),
        Book::new,
    )
    .unwrap()
    .0
}

#[test]
fn a_wal_that_does_not_reach_the_snapshot_is_refused() {
    let snapshots = tempfile::tempdir().unwrap();
    let disk = SimDisk::new();
    let engine = open_with_snapshots(&disk, snapshots.path());
    run_workload(&engine, &Arc::new(Mutex::new(Workload::new(3))), 100);
    engine.snapshot_now().wait().unwrap();
    engine.shutdown();
    // Another (empty) WAL with this snapshot directory.
    let store = SnapshotStore::open(snapshots.path()).unwrap();
    let error = Engine::open(
        Box::new(SimDisk::new()),
        Some(store),
        test_config(),
        Book::new,
    )
    .err()
    .unwrap();
    assert!(
        matches!(
            error,
            RecoveryError::WalBehindSnapshot {
                snapshot_seq: 100,
                first_seq: None
            }
        ),
        "{error}"
    );
}

#[test]
fn shutdown_answers_everything_queued_before_it() {
    let disk = SimDisk::new();
    let config = EngineConfig {
        group_max_events: 16,
        ..test_config()
    };
    let (engine, _) = Engine::open(Box::new(disk.clone()), None, config, Book::new).unwrap();
    let pending: Vec<_> = (0..2_000)
        .map(|_| {
            engine.execute(|tx| {
                let id = tx.state().next_account_id();
                tx.emit(LedgerEvent::OpenAccount {
                    id,
                    kind: AccountKind::CardStoredValue,
                });
            })
        })
        .collect();
    engine.shutdown();
    for result in pending.into_iter().map(Pending::wait) {
        result.unwrap();
    }
    assert_eq!(engine.execute(|_| ()).wait(), Err(EngineError::Stopped));
    assert_eq!(
        engine.snapshot_now().wait().err(),
        Some(EngineError::Stopped)
    );
    let (_, report) =
        Engine::open(Box::new(restart(&disk)), None, test_config(), Book::new).unwrap();
    assert_eq!(report.last_seq, 2_000);
}

#[test]
fn queued_requests_are_prefetched_ahead_of_their_turn_and_run_in_order() {
    let (engine, _) =
        Engine::open(Box::new(SimDisk::new()), None, test_config(), Book::new).unwrap();
    // What happened, in order: ("ahead", i) when request i's hint ran, ("run", i) when it did.
    let log: Arc<Mutex<Vec<(&str, usize)>>> = Arc::default();
    // The first request holds the engine thread until the others are queued behind it.
    let (release, held) = std::sync::mpsc::channel::<()>();
    let first = engine.execute(move |_| held.recv().unwrap());
    let pending: Vec<_> = (0..20)
        .map(|i| {
            let (ahead_log, run_log) = (log.clone(), log.clone());
            engine.execute_prefetched(
                move |book: &Book| {
                    let _ = book.accounts();
                    ahead_log.lock().unwrap().push(("ahead", i));
                },
                move |tx| {
                    run_log.lock().unwrap().push(("run", i));
                    let id = tx.state().next_account_id();
                    tx.emit(LedgerEvent::OpenAccount {
                        id,
                        kind: AccountKind::CardStoredValue,
                    });
                    i
                },
            )
        })
        .collect();
    release.send(()).unwrap();
    first.wait().unwrap();
    for (i, result) in pending.into_iter().map(Pending::wait).enumerate() {
        assert_eq!(result, Ok(i));
    }
    let log = log.lock().unwrap();
    let runs: Vec<usize> = log
        .iter()
        .filter(|(what, _)| *what == "run")
        .map(|(_, i)| *i)
        .collect();
    assert_eq!(runs, (0..20).collect::<Vec<_>>(), "run in the order sent");
    let aheads: Vec<usize> = log
        .iter()
        .filter(|(what, _)| *what == "ahead")
        .map(|(_, i)| *i)
        .collect();
    assert!(
        aheads.len() >= 4,
        "queued requests are taken ahead: {log:?}"
    );
    for i in aheads {
        let at = |what: &str| log.iter().position(|entry| *entry == (what, i)).unwrap();
        assert!(
            at("ahead") < at("run"),
            "request {i}'s hint ran after it: {log:?}"
        );
        assert_eq!(
            log.iter().filter(|entry| **entry == ("ahead", i)).count(),
            1
        );
    }
    assert_eq!(engine.stats().durable_seq, 20);
}

#[test]
fn reads_and_snapshots_without_a_store() {
    let (engine, _) =
        Engine::open(Box::new(SimDisk::new()), None, test_config(), Book::new).unwrap();
    assert_eq!(engine.execute(|tx| tx.state().accounts()).wait(), Ok(0));
    assert_eq!(
        engine.snapshot_now().wait().err(),
        Some(EngineError::NoSnapshotStore)
    );
}

#[test]
fn pending_is_a_future() {
    let (engine, _) =
        Engine::open(Box::new(SimDisk::new()), None, test_config(), Book::new).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let accounts = runtime.block_on(async {
        let open = engine.execute(|tx| {
            let id = tx.state().next_account_id();
            tx.emit(LedgerEvent::OpenAccount {
                id,
                kind: AccountKind::CashDesk,
            });
        });
        open.await.unwrap();
        engine.execute(|tx| tx.state().accounts()).await
    });
    assert_eq!(accounts, Ok(1));
}

#[test]
fn try_execute_reports_a_full_queue() {
    let config = EngineConfig {
        queue_depth_max: 1,
        ..test_config()
    };
    let (engine, _) = Engine::open(Box::new(SimDisk::new()), None, config, Book::new).unwrap();
    let gate = Arc::new(std::sync::Barrier::new(2));
    let (started_sender, started) = std::sync::mpsc::channel();
    let held = {
        let gate = gate.clone();
        engine.execute(move |_| {
            started_sender.send(()).unwrap();
            gate.wait();
        })
    };
    // Once the engine thread is inside the first request, one more fits in the queue.
    started.recv().unwrap();
    let queued = engine.try_execute(|_| ()).unwrap();
    let mut busy = false;
    for _ in 0..100 {
        match engine.try_execute(|_| ()) {
            Err(EngineError::Busy(_)) => {
                busy = true;
                break;
            }
            Ok(extra) => drop(extra),
            Err(other) => panic!("{other}"),
        }
    }
    gate.wait();
    assert!(busy, "a full queue was not reported");
    held.wait().unwrap();
    queued.wait().unwrap();
}

/// The chunk files in a snapshot directory, with what shows a rewrite (inode, mtime).
fn chunk_files(dir: &std::path::Path) -> std::collections::BTreeMap<String, (u64, i64, i64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap())
        .filter(|entry| entry.file_name().to_string_lossy().ends_with(".chunk"))
        .map(|entry| {
            let meta = entry.metadata().unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            (name, (meta.ino(), meta.mtime(), meta.mtime_nsec()))
        })
        .collect()
}

#[test]
fn snapshots_write_each_full_history_chunk_once_and_recovery_equals_a_full_replay() {
    let disk = SimDisk::new();
    let snapshots = tempfile::tempdir().unwrap();
    let engine = open_with_snapshots(&disk, snapshots.path());
    let workload = Arc::new(Mutex::new(Workload::new(11)));
    let mut events = run_workload(&engine, &workload, 12_000);
    let first = engine.snapshot_now().wait().unwrap();
    let transfers = engine.execute(|tx| tx.state().transfers()).wait().unwrap();
    let full_chunks = (transfers / ledger::history::CHUNK_LEN) as u64;
    assert!(full_chunks >= 2, "{transfers} transfers");
    assert_eq!(first.chunks.written, full_chunks, "{first:?}");
    let files = chunk_files(snapshots.path());
    assert_eq!(files.len() as u64, full_chunks);

    // A few more transfers, no chunk filled: the second snapshot writes no chunk file.
    events.extend(run_workload(&engine, &workload, 10));
    let transfers = engine.execute(|tx| tx.state().transfers()).wait().unwrap();
    assert_eq!((transfers / ledger::history::CHUNK_LEN) as u64, full_chunks);
    let second = engine.snapshot_now().wait().unwrap();
    assert_eq!(
        (second.chunks.written, second.chunks.reused),
        (0, full_chunks)
    );
    assert_eq!(
        chunk_files(snapshots.path()),
        files,
        "a chunk file was rewritten"
    );
    assert!(
        second.bytes < first.bytes + 4_000,
        "the snapshot file carries the history: {} then {} bytes",
        first.bytes,
        second.bytes
    );

    // Enough for more chunks to fill: only those are written, the others untouched.
    events.extend(run_workload(&engine, &workload, 6_000));
    let third = engine.snapshot_now().wait().unwrap();
    assert_eq!(third.chunks.reused, full_chunks);
    assert!(third.chunks.written >= 1, "{third:?}");
    let now = chunk_files(snapshots.path());
    for (name, meta) in &files {
        assert_eq!(now.get(name), Some(meta), "{name} was rewritten");
    }
    events.extend(run_workload(&engine, &workload, 700));
    engine.shutdown();

    // Snapshot + chunk files + WAL tail against every event applied from the start.
    let store = SnapshotStore::open(snapshots.path()).unwrap();
    let (engine, report) = Engine::open(
        Box::new(restart(&disk)),
        Some(store),
        test_config(),
        Book::new,
    )
    .unwrap();
    assert_eq!(report.snapshot_seq, third.seq);
    assert_eq!(report.replayed_records, 700);
    let recovered = engine.execute(|tx| fingerprint(tx.state())).wait().unwrap();
    assert_eq!(recovered, fingerprint(&apply_all(&events)));
    // After the restart too, the chunks recovery loaded are named, not written again.
    let fourth = engine.snapshot_now().wait().unwrap();
    assert_eq!(
        fourth.chunks.reused,
        full_chunks + third.chunks.written,
        "{fourth:?}"
    );
    engine.shutdown();
}

/// A WAL whose syncs wait for the test: each says it began, then waits to be let through.
struct GatedSync {
    disk: SimDisk,
    began: std::sync::mpsc::Sender<()>,
    gate: std::sync::mpsc::Receiver<()>,
}

impl Wal for GatedSync {
    fn recover(
        &mut self,
        from_seq: u64,
        visit: &mut ledger::wal::Visit<'_>,
    ) -> Result<ledger::wal::Recovered, ledger::wal::WalError> {
        self.disk.recover(from_seq, visit)
    }

    fn append(&mut self, group: &ledger::wal::RecordGroup) -> std::io::Result<()> {
        self.disk.append(group)
    }

    fn sync(&mut self) -> std::io::Result<()> {
        let _ = self.began.send(());
        let _ = self.gate.recv();
        self.disk.sync()
    }

    fn trim_before(&mut self, seq: u64, records_max: usize) -> std::io::Result<usize> {
        self.disk.trim_before(seq, records_max)
    }
}

#[test]
fn stage_times_show_where_a_request_waited() {
    use std::time::Duration;
    let (began_tx, began) = std::sync::mpsc::channel();
    let (gate, gate_rx) = std::sync::mpsc::channel();
    let wal = GatedSync {
        disk: SimDisk::new(),
        began: began_tx,
        gate: gate_rx,
    };
    let (engine, _) = Engine::open(Box::new(wal), None, test_config(), Book::new).unwrap();
    let open_account = |tx: &mut Tx<'_, Book>| {
        let id = tx.state().next_account_id();
        tx.emit(LedgerEvent::OpenAccount {
            id,
            kind: AccountKind::CashDesk,
        });
    };
    let held = Duration::from_millis(30);

    // A write whose sync is held: the time shows in its own write.
    let first = engine.execute(open_account).timed();
    began.recv().unwrap();
    // A second write, handed to the WAL thread while the first syncs: it waits for that sync.
    let second = engine.execute(open_account).timed();
    while engine.stats().applied_seq < 2 {
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(held);
    gate.send(()).unwrap();
    began.recv().unwrap();
    std::thread::sleep(held);
    gate.send(()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (result, times) = runtime.block_on(first);
    result.unwrap();
    let times = times.expect("ran and durable");
    assert!(times.wal_write >= held, "{times:?}");
    let (result, times) = runtime.block_on(second);
    result.unwrap();
    let times = times.expect("ran and durable");
    assert!(times.wal_queue >= held, "behind the first sync: {times:?}");
    assert!(times.wal_write >= held, "its own sync: {times:?}");

    // A read with nothing pending is answered by the engine thread: no hand-off, no write.
    let (result, times) = runtime.block_on(engine.execute(|tx| tx.state().accounts()).timed());
    assert_eq!(result, Ok(2));
    let times = times.expect("ran");
    assert_eq!(
        (times.wal_queue, times.wal_write),
        (Duration::ZERO, Duration::ZERO)
    );
    drop(gate);
}

#[test]
fn the_commit_thread_start_runs_first_on_the_engine_and_wal_threads() {
    let started: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = started.clone();
    let config = EngineConfig {
        commit_thread_start: Some(ThreadStart(Arc::new(move || {
            let name = std::thread::current().name().unwrap_or("?").to_owned();
            record.lock().unwrap().push(name);
        }))),
        ..test_config()
    };
    let (engine, _) = Engine::open(Box::new(SimDisk::new()), None, config, Book::new).unwrap();
    // A request is answered once both threads have run it through: both have started.
    let opened = engine.execute(|tx| {
        let id = tx.state().next_account_id();
        tx.emit(LedgerEvent::OpenAccount {
            id,
            kind: AccountKind::CardStoredValue,
        });
    });
    opened.wait().unwrap();
    let mut names = started.lock().unwrap().clone();
    names.sort();
    assert_eq!(names, ["ledger-engine", "ledger-wal"]);
}
