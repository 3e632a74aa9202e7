//! The engine on the real WAL (sled): restart, damaged records, trimming, and a writer
//! process killed at random points of its commit path. Kept small: every group fsyncs.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use ledger::sim_disk::SimRng;
use ledger::*;

fn config() -> EngineConfig {
    EngineConfig {
        snapshot_every_records: 0,
        ..EngineConfig::default()
    }
}

fn open(dir: &Path) -> Result<(Engine<Book>, RecoveryReport), RecoveryError> {
    Engine::open(Box::new(open_wal(dir)), None, config(), Book::new)
}

/// The kill test's writer and its reopen: small generations, so that kills land in the
/// middle of moving on from one to the next too.
fn open_in_small_generations(dir: &Path) -> Result<(Engine<Book>, RecoveryReport), RecoveryError> {
    let wal = open_wal_with_generations_of(dir, 300);
    Engine::open(Box::new(wal), None, config(), Book::new)
}

/// Writes `count` workload events, a few per group, and returns them in log order.
fn fill(dir: &Path, count: usize) -> Vec<LedgerEvent> {
    let (engine, _) = open(dir).unwrap();
    let workload = Arc::new(Mutex::new(Workload::new(11)));
    let executed: Arc<Mutex<Vec<LedgerEvent>>> = Arc::default();
    for chunk in 0..count / 10 {
        let pending: Vec<_> = (0..10)
            .map(|_| {
                let (workload, executed) = (workload.clone(), executed.clone());
                engine.execute(move |tx| {
                    let event = workload.lock().unwrap().next_event(tx.state());
                    executed.lock().unwrap().push(event.clone());
                    tx.emit(event);
                })
            })
            .collect();
        for result in pending.into_iter().map(Pending::wait) {
            result.unwrap_or_else(|error| panic!("chunk {chunk}: {error}"));
        }
    }
    engine.shutdown();
    let events = executed.lock().unwrap().clone();
    events
}

/// sled releases its file lock from a background thread shortly after the last handle is
/// dropped: a reopen right after a close may have to wait for it.
fn open_wal(dir: &Path) -> SledWal {
    open_wal_with_generations_of(dir, ledger::sled_wal::GENERATION_RECORDS)
}

fn open_wal_with_generations_of(dir: &Path, records: u64) -> SledWal {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match SledWal::open_with_generation_records(dir, records) {
            Ok(wal) => return wal,
            Err(error) if std::time::Instant::now() < deadline => {
                eprintln!("reopening the WAL: {error}; retrying");
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(error) => panic!("cannot reopen the WAL: {error}"),
        }
    }
}

fn state(engine: &Engine<Book>) -> Vec<u8> {
    engine.execute(|tx| fingerprint(tx.state())).wait().unwrap()
}

#[test]
fn restart_recovers_every_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let events = fill(dir.path(), 100);
    let (engine, report) = open(dir.path()).unwrap();
    assert_eq!(report.last_seq, 100);
    assert!(!report.torn_tail_dropped);
    assert_eq!(state(&engine), fingerprint(&apply_all(&events)));
}

#[test]
fn a_generation_cut_short_while_being_created_is_deleted_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let events = fill(dir.path(), 50);
    // A crash while the helper created the next generation: sled's files half written, no
    // `ready` file.
    let unfinished = dir.path().join("gen-0000000000000002");
    std::fs::create_dir(&unfinished).unwrap();
    std::fs::write(unfinished.join("conf"), b"segment_size: 52").unwrap();
    let (engine, report) = open(dir.path()).unwrap();
    assert_eq!(report.last_seq, 50);
    assert_eq!(state(&engine), fingerprint(&apply_all(&events)));
    assert!(!unfinished.exists());
}

#[test]
fn a_wal_of_a_single_sled_database_becomes_generation_1() {
    let dir = tempfile::tempdir().unwrap();
    let events = fill(dir.path(), 40);
    // The layout before generations: sled's files in the WAL directory itself.
    let generation = dir.path().join("gen-0000000000000001");
    std::fs::remove_file(generation.join("ready")).unwrap();
    for entry in std::fs::read_dir(&generation).unwrap() {
        let entry = entry.unwrap();
        std::fs::rename(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    std::fs::remove_dir(&generation).unwrap();
    assert!(dir.path().join("db").exists());

    let (engine, report) = open(dir.path()).unwrap();
    assert_eq!(report.last_seq, 40);
    assert_eq!(state(&engine), fingerprint(&apply_all(&events)));
    assert!(generation.join("ready").exists() && !dir.path().join("db").exists());
}

/// The first record of the page that holds record `seq`.
fn page_of(wal: &SledWal, seq: u64) -> u64 {
    let (key, _) = wal
        .tree()
        .range(..=seq.to_be_bytes())
        .next_back()
        .unwrap()
        .unwrap();
    u64::from_be_bytes(key.as_ref().try_into().unwrap())
}

#[test]
fn truncated_final_page_is_dropped_and_the_log_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let events = fill(dir.path(), 50);
    let torn = {
        let wal = open_wal(dir.path());
        let (key, value) = wal.tree().last().unwrap().unwrap();
        wal.tree().insert(key, &value[..value.len() - 3]).unwrap();
        wal.tree().flush().unwrap();
        page_of(&wal, 50)
    };
    // The last group (at most 10 requests) was one page: the torn write takes it whole.
    assert!((41..=50).contains(&torn), "{torn}");
    let (engine, report) = open(dir.path()).unwrap();
    assert!(report.torn_tail_dropped);
    assert_eq!(report.torn_tail.as_ref().unwrap().seq, Some(torn));
    assert_eq!(report.last_seq, torn - 1);
    let kept = torn as usize - 1;
    assert_eq!(state(&engine), fingerprint(&apply_all(&events[..kept])));
    // New records follow the last good one.
    let report = write_one_and_reopen(engine, dir.path());
    assert_eq!((report.last_seq, report.torn_tail_dropped), (torn, false));
}

/// Writes one more record (an account opened), shuts the engine down and recovers again.
fn write_one_and_reopen(engine: Engine<Book>, dir: &Path) -> RecoveryReport {
    engine
        .execute(|tx| {
            let id = tx.state().next_account_id();
            tx.emit(LedgerEvent::OpenAccount {
                id,
                kind: AccountKind::FeeRevenue,
            });
        })
        .wait()
        .unwrap();
    engine.shutdown();
    drop(engine);
    open(dir).unwrap().1
}

#[test]
fn flipped_byte_in_a_middle_record_refuses_to_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 30);
    let page = {
        let wal = open_wal(dir.path());
        let page = page_of(&wal, 17);
        let key = page.to_be_bytes();
        let mut value = wal.tree().get(key).unwrap().unwrap().to_vec();
        value[6] ^= 0x01;
        wal.tree().insert(key, value).unwrap();
        wal.tree().flush().unwrap();
        page
    };
    let error = open(dir.path())
        .err()
        .expect("a damaged middle record must stop the start");
    assert!(
        matches!(error, RecoveryError::Wal(WalError::Corrupt { seq, .. }) if seq == page),
        "{error}"
    );
    assert!(
        error.to_string().contains(&format!("record {page}")),
        "{error}"
    );
}

#[test]
fn missing_middle_record_refuses_to_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 30);
    let page = {
        let wal = open_wal(dir.path());
        let page = page_of(&wal, 9);
        wal.tree().remove(page.to_be_bytes()).unwrap();
        wal.tree().flush().unwrap();
        page
    };
    let error = open(dir.path()).err().expect("a hole must stop the start");
    assert!(
        matches!(error, RecoveryError::Wal(WalError::Missing { seq }) if seq == page),
        "{error}"
    );
}

/// Writes 5000 records straight to a WAL in `dir`: two accounts, then top-ups, except a
/// top-up to an account that does not exist at `unappliable` (it checks but does not apply)
/// and a payload that is no event at `undecodable`.
fn write_with_bad_records(dir: &Path, unappliable: Option<u64>, undecodable: u64) {
    let mut wal = open_wal(dir);
    wal.recover(1, &mut |_, _| Ok(())).unwrap();
    let (bank, card) = (AccountId(0), AccountId(1));
    let mut group = RecordGroup::new(1);
    for (id, kind) in [
        (bank, AccountKind::BankSettlement),
        (card, AccountKind::CardStoredValue),
    ] {
        group.push_event(&LedgerEvent::OpenAccount { id, kind });
    }
    for seq in 3..=5000u64 {
        if seq == undecodable {
            group.push_payload(&[0xFF; 3]);
        } else if Some(seq) == unappliable {
            group.push_event(&LedgerEvent::Post(top_up(
                seq.into(),
                bank,
                AccountId(7),
                1,
            )));
        } else {
            group.push_event(&LedgerEvent::Post(top_up(seq.into(), bank, card, 1)));
        }
    }
    wal.append(&group).unwrap();
    wal.sync().unwrap();
}

/// Replay reads and decodes on one thread and applies on another, the reader running ahead:
/// the error still names the first record that does not apply, not one the reader reached
/// later; and a record that does not decode is named when nothing before it fails.
#[test]
fn replay_names_the_first_record_that_does_not_apply_or_decode() {
    for (unappliable, undecodable, named, why) in [
        // The reader reaches the undecodable record before the applier reaches the other.
        (Some(1000), 1100, 1000, "does not apply"),
        (None, 4000, 4000, "does not decode"),
        (Some(4500), 4000, 4000, "does not decode"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        write_with_bad_records(dir.path(), unappliable, undecodable);
        let mut wal = open_wal(dir.path());
        match ledger::engine::recover(&mut wal, None, Book::new) {
            Err(RecoveryError::Wal(WalError::Rejected { seq, reason })) => {
                assert_eq!(seq, named, "{reason}");
                assert!(reason.contains(why), "record {seq}: {reason}");
            }
            Err(other) => panic!("expected record {named} rejected, got {other}"),
            Ok((_, report)) => panic!("recovered a damaged log: {report:?}"),
        }
    }
}

/// Replay reserves room from the last page's key: a damaged key claiming a huge sequence
/// number must neither make it reserve memory without bound nor hide the damage.
#[test]
fn damaged_last_key_claiming_a_huge_sequence_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 30);
    {
        let wal = open_wal(dir.path());
        let huge = u64::MAX - 5;
        wal.tree()
            .insert(huge.to_be_bytes(), &b"not a page"[..])
            .unwrap();
        wal.tree().flush().unwrap();
        assert!(
            wal.records_hint(1).unwrap() < 1 << 24,
            "hint bounded by sled's size"
        );
    }
    let error = open(dir.path())
        .err()
        .expect("a damaged log must stop the start");
    assert!(
        matches!(error, RecoveryError::Wal(WalError::Missing { seq: 31 })),
        "{error}"
    );
}

#[test]
fn snapshots_trim_sled_and_recover() {
    let dir = tempfile::tempdir().unwrap();
    let snapshots = dir.path().join("snapshots");
    let wal_dir = dir.path().join("wal");
    let config = EngineConfig {
        snapshot_every_records: 100,
        ..config()
    };
    let open = || {
        let store = SnapshotStore::open(&snapshots).unwrap();
        Engine::open(
            Box::new(open_wal_with_generations_of(&wal_dir, 50)),
            Some(store),
            config.clone(),
            Book::new,
        )
        .unwrap()
    };
    let (engine, _) = open();
    let workload = Arc::new(Mutex::new(Workload::new(5)));
    let mut events = Vec::new();
    for _ in 0..40 {
        let pending: Vec<_> = (0..10)
            .map(|_| {
                let workload = workload.clone();
                engine.execute(move |tx| {
                    let event = workload.lock().unwrap().next_event(tx.state());
                    tx.emit(event.clone());
                    event
                })
            })
            .collect();
        events.extend(pending.into_iter().map(|pending| pending.wait().unwrap()));
    }
    engine.snapshot_now().wait().unwrap();
    // The WAL thread trims when idle (every 50 ms): wait for it, generously, on a busy machine.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while engine.stats().trimmed_records == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(engine.stats().trimmed_records > 0, "{:?}", engine.stats());
    engine.shutdown();
    drop(engine);
    assert!(
        !wal_dir.join("gen-0000000000000001").exists(),
        "the first generation was not deleted"
    );
    let (engine, report) = open();
    assert_eq!((report.snapshot_seq, report.last_seq), (400, 400));
    assert_eq!(state(&engine), fingerprint(&apply_all(&events)));
}

const CHILD_DIR: &str = "LEDGER_SLED_CHILD_DIR";

/// The writer the kill test starts in a child process (it does nothing in a normal run):
/// top-ups with ids 1, 2, 3, ... and an "ACK <id>" line once each is durable.
#[test]
fn sled_child_writer() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let (engine, _) = open_in_small_generations(Path::new(&dir)).unwrap();
    let (bank, card) = (AccountId(0), AccountId(1));
    let next_id = engine
        .execute(move |tx| {
            if tx.state().accounts() == 0 {
                tx.emit(LedgerEvent::OpenAccount {
                    id: bank,
                    kind: AccountKind::BankSettlement,
                });
                tx.emit(LedgerEvent::OpenAccount {
                    id: card,
                    kind: AccountKind::CardStoredValue,
                });
            }
            tx.state().transfers() as u128 + 1
        })
        .wait()
        .unwrap();
    let mut stdout = std::io::stdout().lock();
    let mut in_flight = std::collections::VecDeque::new();
    for id in next_id.. {
        in_flight.push_back((
            id,
            engine.execute(move |tx| tx.emit(LedgerEvent::Post(top_up(id, bank, card, 1)))),
        ));
        if in_flight.len() >= 32 {
            let (id, pending) = in_flight.pop_front().unwrap();
            pending.wait().unwrap();
            writeln!(stdout, "ACK {id}").unwrap();
            stdout.flush().unwrap();
        }
    }
}

#[test]
fn writer_killed_at_random_points_recovers_the_acknowledged_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = SimRng::new(42);
    let mut acked_total = 0u128;
    for round in 0..4 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "sled_child_writer",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let acked = Arc::new(Mutex::new(0u128));
        let reader = {
            let acked = acked.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if let Some(id) = line.strip_prefix("ACK ") {
                        *acked.lock().unwrap() = id.parse().unwrap();
                    }
                }
            })
        };
        // Wait for the first acknowledgement, then kill at a random point of the load.
        for _ in 0..500 {
            if *acked.lock().unwrap() > acked_total {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(20 + rng.below(200)));
        child.kill().unwrap();
        child.wait().unwrap();
        reader.join().unwrap();
        let acked = *acked.lock().unwrap();
        assert!(
            acked > acked_total,
            "round {round}: the writer acknowledged nothing"
        );

        let (engine, report) = open_in_small_generations(dir.path()).unwrap();
        let (recovered, holes) = engine
            .execute(move |tx| {
                let book = tx.state();
                let recovered = book.transfers() as u128;
                let holes = (1..=recovered)
                    .filter(|id| book.transfer(TransferId(*id)).is_none())
                    .count();
                (recovered, holes)
            })
            .wait()
            .unwrap();
        assert!(
            recovered >= acked,
            "round {round}: acknowledged {acked}, recovered {recovered} ({report:?})"
        );
        assert_eq!(
            holes, 0,
            "round {round}: the recovered transfers are not a prefix"
        );
        acked_total = recovered;
    }
}

/// Runs `requests` requests one after the other: one event each, except every fifth, which
/// emits 120 (more than a page holds: its record is stored in chunks). Returns each
/// request's events, in log order, and the engine's counters.
fn fill_transactions(dir: &Path, requests: usize) -> (Vec<Vec<LedgerEvent>>, EngineStats) {
    let (engine, _) = open(dir).unwrap();
    let workload = Arc::new(Mutex::new(Workload::new(5)));
    let mut executed = Vec::new();
    for request in 0..requests {
        let count = if request % 5 == 4 { 120 } else { 1 };
        let workload = workload.clone();
        let events = engine
            .execute(move |tx| {
                let mut workload = workload.lock().unwrap();
                let mut events = Vec::new();
                for _ in 0..count {
                    let event = workload.next_event(tx.state());
                    events.push(event.clone());
                    tx.emit(event);
                }
                events
            })
            .wait()
            .unwrap();
        executed.push(events);
    }
    let stats = engine.stats();
    engine.shutdown();
    (executed, stats)
}

/// The sequence numbers of a large record's chunk keys (12 bytes: seq, then index).
fn chunked_records(wal: &SledWal) -> Vec<u64> {
    let mut seqs: Vec<u64> = wal
        .tree()
        .iter()
        .keys()
        .map(|key| key.unwrap())
        .filter(|key| key.len() == 12)
        .map(|key| u64::from_be_bytes(key[..8].try_into().unwrap()))
        .collect();
    seqs.dedup();
    seqs
}

#[test]
fn a_large_transaction_is_one_record_in_chunks_and_recovers_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (transactions, stats) = fill_transactions(dir.path(), 30);
    assert_eq!((stats.records, stats.events), (30, 24 + 6 * 120));
    assert_eq!(
        chunked_records(&open_wal(dir.path())),
        vec![5, 10, 15, 20, 25, 30]
    );
    let (engine, report) = open(dir.path()).unwrap();
    assert_eq!((report.last_seq, report.torn_tail_dropped), (30, false));
    assert_eq!(
        state(&engine),
        fingerprint(&apply_all(&transactions.concat()))
    );
}

#[test]
fn a_large_last_record_cut_short_is_dropped_whole_and_the_log_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let (transactions, _) = fill_transactions(dir.path(), 30);
    {
        // A torn write that kept all but the last chunk of the last record.
        let wal = open_wal(dir.path());
        let (key, _) = wal.tree().last().unwrap().unwrap();
        assert_eq!(&key[..8], &30u64.to_be_bytes()[..]);
        assert!(u32::from_be_bytes(key[8..].try_into().unwrap()) > 0);
        wal.tree().remove(key).unwrap();
        wal.tree().flush().unwrap();
    }
    let (engine, report) = open(dir.path()).unwrap();
    assert!(report.torn_tail_dropped);
    assert_eq!(report.torn_tail.as_ref().unwrap().seq, Some(30));
    assert_eq!(report.last_seq, 29);
    assert_eq!(
        state(&engine),
        fingerprint(&apply_all(&transactions[..29].concat()))
    );
    // Every chunk of the dropped record is gone: record 30 is written anew.
    let report = write_one_and_reopen(engine, dir.path());
    assert_eq!((report.last_seq, report.torn_tail_dropped), (30, false));
}

#[test]
fn a_damaged_chunk_before_the_end_refuses_to_start_naming_its_record() {
    let dir = tempfile::tempdir().unwrap();
    fill_transactions(dir.path(), 30);
    {
        let wal = open_wal(dir.path());
        let mut key = [0u8; 12];
        key[..8].copy_from_slice(&10u64.to_be_bytes());
        key[8..].copy_from_slice(&1u32.to_be_bytes());
        let mut value = wal.tree().get(key).unwrap().unwrap().to_vec();
        value[100] ^= 0x10;
        wal.tree().insert(key, value).unwrap();
        wal.tree().flush().unwrap();
    }
    let error = open(dir.path())
        .err()
        .expect("a damaged record must stop the start");
    assert!(
        matches!(error, RecoveryError::Wal(WalError::Corrupt { seq: 10, .. })),
        "{error}"
    );
}

#[test]
fn trimming_deletes_whole_generations_and_keeps_what_follows() {
    let dir = tempfile::tempdir().unwrap();
    let wal_dir = dir.path().join("wal");
    let (engine, _) = Engine::open(
        Box::new(SledWal::open_with_generation_records(&wal_dir, 5).unwrap()),
        None,
        config(),
        Book::new,
    )
    .unwrap();
    // One request per group: the WAL moves on to a new generation after 5 to 10 records
    // (once its helper has the next one ready, at the latest at twice the size).
    let workload = Arc::new(Mutex::new(Workload::new(3)));
    for _ in 0..30 {
        let workload = workload.clone();
        engine
            .execute(move |tx| {
                let event = workload.lock().unwrap().next_event(tx.state());
                tx.emit(event);
            })
            .wait()
            .unwrap();
    }
    engine.shutdown();
    drop(engine);
    let generations = || {
        let mut names: Vec<String> = std::fs::read_dir(&wal_dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    };
    let before = generations();
    assert!(before.len() > 2, "{before:?}");

    let mut wal = open_wal(&wal_dir);
    wal.recover(1, &mut |_, _| Ok(())).unwrap();
    let removed = wal.trim_before(16, usize::MAX).unwrap();
    assert!((5..16).contains(&removed), "removed {removed}");
    drop(wal);
    // The helper deleted them before the WAL's drop returned.
    assert!(generations().len() < before.len(), "{:?}", generations());

    // Whatever was deleted came before 16; everything from there on reads back.
    let mut wal = open_wal(&wal_dir);
    let mut seen = Vec::new();
    let recovered = wal
        .recover(16, &mut |seq, _| {
            seen.push(seq);
            Ok(())
        })
        .unwrap();
    assert_eq!(seen, (16..=30).collect::<Vec<_>>());
    assert_eq!(recovered.first_seq, Some(16));
    drop(wal);
    // The records before the first kept generation are gone: replay from 1 fails.
    let mut wal = open_wal(&wal_dir);
    let error = wal.recover(1, &mut |_, _| Ok(())).unwrap_err();
    assert!(
        matches!(error, WalError::Missing { .. } | WalError::Corrupt { .. }),
        "{error}"
    );
}

/// Writes `events` as a build before one-record-per-transaction did: one record per event,
/// packed into pages checksummed over the first record's sequence number and the body.
fn write_format_before(dir: &Path, events: &[LedgerEvent], per_page: usize) {
    let wal = open_wal(dir);
    for (page, chunk) in events.chunks(per_page).enumerate() {
        let first_seq = (page * per_page) as u64 + 1;
        let mut body = Vec::new();
        for event in chunk {
            let payload = postcard::to_stdvec(event).unwrap();
            body.extend_from_slice(&(payload.len() as u16).to_le_bytes());
            body.extend_from_slice(&payload);
        }
        let crc = crc32c::crc32c_append(crc32c::crc32c(&first_seq.to_le_bytes()), &body);
        let mut value = crc.to_le_bytes().to_vec();
        value.extend_from_slice(&body);
        wal.tree().insert(first_seq.to_be_bytes(), value).unwrap();
    }
    wal.tree().flush().unwrap();
}

#[test]
fn a_wal_of_the_format_before_is_refused_naming_it() {
    let mut workload = Workload::new(9);
    let mut book = Book::new();
    let events: Vec<LedgerEvent> = (0..40)
        .map(|_| {
            let event = workload.next_event(&book);
            book.apply(&event);
            event
        })
        .collect();
    // Several pages; and one page alone, which must not pass for a torn last page.
    for per_page in [10, 40] {
        let dir = tempfile::tempdir().unwrap();
        write_format_before(dir.path(), &events, per_page);
        let error = open(dir.path())
            .err()
            .expect("a WAL of the format before must stop the start");
        assert!(
            matches!(error, RecoveryError::Wal(WalError::FormatBefore { seq: 1 })),
            "{error}"
        );
        let message = error.to_string();
        assert!(
            message.contains("BURSWAL1") && message.contains("BURSWAL2"),
            "{message}"
        );
        let wal = open_wal(dir.path());
        assert_eq!(wal.tree().len(), 40 / per_page, "nothing was dropped");
    }
}
