//! The ledger's figures (issue 3, "Must show" (a)-(f)):
//!
//! - (a) in-memory rate of card purchases (card -> merchant, as the switch builds them) on
//!   one core: `apply` alone (what replay and `Tx::emit` do) and `prepare` + `apply` (the
//!   switch's decision, then the emit);
//! - (b) durable commits through the [`Engine`] on the real sled WAL, with group commit and
//!   with one sync per transfer (`group_max_events = 1`), in the same run, and the ratio;
//! - (c) recovery: WAL records replayed per second (sled open, read, check, apply, verify);
//! - (d) memory per card account for a million cards, from a counting global allocator;
//! - (e) WAL bytes per purchase: the record as logged, and sled's file growth;
//! - (f) commit latencies while a snapshot of a large book is written.
//!
//! Criterion measures (a)-(c). Memory, bytes and stalls do not fit its per-iteration model,
//! so the binary measures and prints them itself, after a plain timed pass over (a)-(c)
//! that prints the rates and the ratio in one table. (a) and (c) are also given by the CPU
//! time of the working threads (`bursar_benches::rates`), which a loaded machine does not
//! stretch; `examples/ledger_rates.rs` repeats just those passes, to compare two builds.
//!
//! Run: `cargo bench -p bursar-benches --bench ledger` (a few minutes; figures in
//! docs/LEDGER.md). Without `--bench` (as `cargo test --benches` runs it) every part runs
//! once at a tiny size, only to check that it works.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bursar_benches::rates::{load_average, time_apply, time_recovery, write_purchase_wal};
use bursar_benches::{decide_and_post, open, Fixture};
use criterion::Criterion;
use ledger::*;

// ---- Counting allocator ------------------------------------------------------------------

/// The system allocator, counting the bytes currently allocated.
struct CountingAllocator;

static ALLOCATED_BYTES: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let pointer = System.alloc(layout);
        if !pointer.is_null() {
            ALLOCATED_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        System.dealloc(pointer, layout);
        ALLOCATED_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let moved = System.realloc(pointer, layout, new_size);
        if !moved.is_null() {
            ALLOCATED_BYTES.fetch_add(new_size, Ordering::Relaxed);
            ALLOCATED_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        moved
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

fn allocated_bytes() -> usize {
    ALLOCATED_BYTES.load(Ordering::Relaxed)
}

// ---- Sizes ---------------------------------------------------------------------------------

/// How big each part runs: full under `cargo bench`, tiny under `cargo test --benches`.
struct Sizes {
    full: bool,
    cards: u32,
    apply_transfers: u64,
    group_commit_transfers: u64,
    single_sync_transfers: u64,
    recovery_records: u64,
    memory_cards: u32,
    snapshot_cards: u32,
    snapshot_history: u64,
    snapshot_clients: usize,
    load_before_snapshot: Duration,
    load_after_snapshot: Duration,
}

impl Sizes {
    fn from_args() -> Sizes {
        if std::env::args().any(|arg| arg == "--bench") {
            Sizes {
                full: true,
                cards: 100_000,
                apply_transfers: 1_000_000,
                group_commit_transfers: 400_000,
                single_sync_transfers: 2_000,
                recovery_records: 1_000_000,
                memory_cards: 1_000_000,
                snapshot_cards: 1_000_000,
                snapshot_history: 1_000_000,
                snapshot_clients: 64,
                load_before_snapshot: Duration::from_secs(1),
                load_after_snapshot: Duration::from_secs(1),
            }
        } else {
            Sizes {
                full: false,
                cards: 1_000,
                apply_transfers: 2_000,
                group_commit_transfers: 2_000,
                single_sync_transfers: 20,
                recovery_records: 2_000,
                memory_cards: 10_000,
                snapshot_cards: 1_000,
                snapshot_history: 1_000,
                snapshot_clients: 4,
                load_before_snapshot: Duration::from_millis(50),
                load_after_snapshot: Duration::from_millis(50),
            }
        }
    }
}

// ---- (b) durable commits -------------------------------------------------------------------

struct DurableEngine {
    engine: Engine<Book>,
    wal_dir: tempfile::TempDir,
    fixture: Arc<Fixture>,
    next: AtomicU64,
}

impl DurableEngine {
    fn open(fixture: &Arc<Fixture>, group_max_events: usize) -> DurableEngine {
        let wal_dir = tempfile::tempdir().expect("temp dir");
        let wal = SledWal::open(wal_dir.path()).expect("sled WAL opens");
        let config = EngineConfig {
            group_max_events,
            snapshot_every_records: 0,
            ..EngineConfig::default()
        };
        // The fixture's accounts stand for a recovered book: this WAL logs only the run.
        let book = fixture.book.clone();
        let (engine, _) = Engine::open(Box::new(wal), None, config, move || book).expect("open");
        DurableEngine {
            engine,
            wal_dir,
            fixture: fixture.clone(),
            next: AtomicU64::new(0),
        }
    }

    /// Submits `count` purchases from `submitters` threads, all in flight at once (the engine
    /// queue bounds them), and waits until every one is acknowledged, hence durable.
    fn commit(&self, count: u64, submitters: u64) -> Duration {
        let first = self.next.fetch_add(count, Ordering::Relaxed);
        let started = Instant::now();
        std::thread::scope(|scope| {
            for submitter in 0..submitters {
                let share = (first + submitter..first + count).step_by(submitters as usize);
                scope.spawn(move || {
                    let pending: Vec<_> = share
                        .map(|n| {
                            let transfer = self.fixture.purchase(n);
                            self.engine.execute(move |tx| decide_and_post(tx, transfer))
                        })
                        .collect();
                    for result in pending {
                        assert_eq!(result.wait(), Ok(true), "purchase approved and durable");
                    }
                });
            }
        });
        started.elapsed()
    }
}

// ---- (d) memory ----------------------------------------------------------------------------

struct Memory {
    cards: u32,
    per_account_bytes: f64,
    per_funded_card_bytes: f64,
}

fn measure_memory(cards: u32) -> Memory {
    let before = allocated_bytes();
    let mut book = Book::new();
    for _ in 0..cards {
        open(&mut book, AccountKind::CardStoredValue);
    }
    let accounts_only = allocated_bytes() - before;
    drop(book);
    let before = allocated_bytes();
    let fixture = Fixture::new(cards);
    let funded = allocated_bytes() - before;
    black_box(&fixture);
    Memory {
        cards,
        per_account_bytes: accounts_only as f64 / cards as f64,
        per_funded_card_bytes: funded as f64 / cards as f64,
    }
}

// ---- (e) WAL bytes -------------------------------------------------------------------------

/// Bytes one purchase takes in the sled WAL: a full page of purchases (key 8, crc 4, then
/// a 2-byte length and the postcard payload per record), divided by its records. Also
/// returns the payload alone.
fn record_bytes(fixture: &Fixture) -> (f64, usize) {
    let mut group = RecordGroup::new(1);
    let mut page = ledger::record::PageBody::default();
    let mut n = 123_456_789;
    loop {
        group.reset(1);
        group.push_event(&LedgerEvent::Post(fixture.purchase(n)));
        let (_, payload) = group.iter().next().expect("one record");
        if !page.fits(payload) {
            break;
        }
        page.push(payload);
        n += 1;
    }
    let mut value = Vec::new();
    page.encode(1, &mut value);
    let payload_bytes = group.payload_bytes();
    (
        (8 + value.len()) as f64 / page.records() as f64,
        payload_bytes,
    )
}

// ---- (f) commit latency during a snapshot --------------------------------------------------

struct SnapshotRun {
    snapshot: SnapshotInfo,
    snapshot_wall: Duration,
    during: Vec<u64>,
    outside: Vec<u64>,
    syncs: u64,
    /// Time the engine thread spent taking the snapshot (no request decided meanwhile).
    capture_us: u64,
}

/// Closed-loop clients commit purchases through an engine on sled while a snapshot of a large
/// book is taken and written. Latencies (µs, submit to durable answer) are split into those
/// whose request overlapped the snapshot and the rest.
fn snapshot_latencies(sizes: &Sizes) -> SnapshotRun {
    let fixture = Arc::new(Fixture::new(sizes.snapshot_cards));
    let mut book = fixture.book.clone();
    // A history as long as a busy term's: the snapshot carries every transfer.
    let history_start = 1u64 << 40;
    for n in history_start..history_start + sizes.snapshot_history {
        book.apply(&LedgerEvent::Post(fixture.purchase(n)));
    }
    let wal_dir = tempfile::tempdir().expect("temp dir");
    let snapshot_dir = tempfile::tempdir().expect("temp dir");
    let wal = SledWal::open(wal_dir.path()).expect("sled WAL opens");
    let store = SnapshotStore::open(snapshot_dir.path()).expect("snapshot dir");
    let config = EngineConfig {
        snapshot_every_records: 0,
        ..EngineConfig::default()
    };
    let (engine, _) = Engine::open(Box::new(wal), Some(store), config, move || book).expect("open");
    let engine = &engine;
    let stop = AtomicBool::new(false);
    let next = AtomicU64::new(0);
    let run_start = Instant::now();
    // (start offset µs, latency µs) per request.
    let samples: Mutex<Vec<(u64, u64)>> = Mutex::new(Vec::new());
    let mut snapshot_window = (0u64, 0u64);
    let mut snapshot = None;
    let mut snapshot_wall = Duration::ZERO;
    std::thread::scope(|scope| {
        for _ in 0..sizes.snapshot_clients {
            let (fixture, stop, next, samples) = (&fixture, &stop, &next, &samples);
            scope.spawn(move || {
                let mut mine = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let transfer = fixture.purchase(next.fetch_add(1, Ordering::Relaxed));
                    let sent = Instant::now();
                    let result = engine.execute(move |tx| decide_and_post(tx, transfer));
                    assert_eq!(result.wait(), Ok(true));
                    let start_us = (sent - run_start).as_micros() as u64;
                    mine.push((start_us, sent.elapsed().as_micros() as u64));
                }
                samples.lock().expect("samples").extend(mine);
            });
        }
        std::thread::sleep(sizes.load_before_snapshot);
        let started = Instant::now();
        snapshot = Some(engine.snapshot_now().wait().expect("snapshot written"));
        snapshot_wall = started.elapsed();
        snapshot_window = (
            (started - run_start).as_micros() as u64,
            (started + snapshot_wall - run_start).as_micros() as u64,
        );
        std::thread::sleep(sizes.load_after_snapshot);
        stop.store(true, Ordering::Relaxed);
    });
    let stats = engine.stats();
    let syncs = stats.syncs;
    let (mut during, mut outside) = (Vec::new(), Vec::new());
    for (start_us, latency_us) in samples.into_inner().expect("samples") {
        let overlaps = start_us <= snapshot_window.1 && start_us + latency_us >= snapshot_window.0;
        if overlaps {
            during.push(latency_us);
        } else {
            outside.push(latency_us);
        }
    }
    during.sort_unstable();
    outside.sort_unstable();
    SnapshotRun {
        snapshot: snapshot.expect("snapshot taken"),
        snapshot_wall,
        during,
        outside,
        syncs,
        capture_us: stats.last_snapshot_capture_us,
    }
}

fn percentile(sorted: &[u64], per_mille: usize) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[(sorted.len() * per_mille / 1000).min(sorted.len() - 1)]
}

fn latency_line(name: &str, sorted: &[u64]) -> String {
    format!(
        "{name:<16} n={:<8} p50={}µs p99={}µs p99.9={}µs max={}µs",
        sorted.len(),
        percentile(sorted, 500),
        percentile(sorted, 990),
        percentile(sorted, 999),
        sorted.last().copied().unwrap_or(0)
    )
}

/// Counts per power-of-two bucket of microseconds: `< 2^i µs`.
fn histogram(sorted: &[u64]) -> Vec<(u64, usize)> {
    let mut buckets: Vec<(u64, usize)> = Vec::new();
    for &latency_us in sorted {
        let bound = (latency_us + 1).next_power_of_two();
        match buckets.last_mut() {
            Some((last, count)) if *last == bound => *count += 1,
            _ => buckets.push((bound, 1)),
        }
    }
    buckets
}

// ---- main ----------------------------------------------------------------------------------

fn main() {
    let sizes = Sizes::from_args();
    let fixture = Arc::new(Fixture::new(sizes.cards));

    let mut criterion = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    {
        let mut group = criterion.benchmark_group("a_in_memory");
        group.throughput(criterion::Throughput::Elements(1));
        let mut first = 0u64;
        for (name, prepare) in [("apply", false), ("prepare_apply", true)] {
            group.bench_function(name, |b| {
                b.iter_custom(|iters| {
                    first += iters;
                    time_apply(&fixture, first - iters, iters, prepare).wall
                })
            });
        }
        group.finish();
    }
    {
        let mut group = criterion.benchmark_group("b_durable_sled");
        group.throughput(criterion::Throughput::Elements(1));
        for (name, group_max_events) in [("group_commit", 8192), ("sync_per_transfer", 1)] {
            let durable = DurableEngine::open(&fixture, group_max_events);
            group.bench_function(name, |b| b.iter_custom(|iters| durable.commit(iters, 4)));
        }
        group.finish();
    }
    let recovery_wal = tempfile::tempdir().expect("temp dir");
    write_purchase_wal(&fixture, recovery_wal.path(), sizes.recovery_records);
    {
        let mut group = criterion.benchmark_group("c_recovery");
        group.throughput(criterion::Throughput::Elements(sizes.recovery_records));
        group.bench_function("sled_replay", |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        let recovered =
                            time_recovery(&fixture, recovery_wal.path(), sizes.recovery_records);
                        recovered.open + recovered.report.duration
                    })
                    .sum()
            })
        });
        group.finish();
    }
    criterion.final_summary();

    println!("\n== ledger figures (issue 3) ==");
    println!(
        "machine: {} cores, load average {}",
        num_cores(),
        load_average()
    );

    // (a)
    let apply = time_apply(&fixture, 1 << 50, sizes.apply_transfers, false);
    let prepare_apply = time_apply(&fixture, 1 << 51, sizes.apply_transfers, true);
    let rate = |count: u64, spent: Duration| count as f64 / spent.as_secs_f64();
    println!(
        "(a) in-memory, one core, {} purchases over {} cards: apply {:.2} M/s, prepare+apply {:.2} M/s (target >= 2 M/s); \
         by the applying thread's CPU time {:.2} and {:.2} M/s",
        sizes.apply_transfers,
        sizes.cards,
        rate(sizes.apply_transfers, apply.wall) / 1e6,
        rate(sizes.apply_transfers, prepare_apply.wall) / 1e6,
        rate(sizes.apply_transfers, apply.cpu) / 1e6,
        rate(sizes.apply_transfers, prepare_apply.cpu) / 1e6,
    );

    // (b)
    let grouped = DurableEngine::open(&fixture, 8192);
    let grouped_time = grouped.commit(sizes.group_commit_transfers, 4);
    let grouped_stats = grouped.engine.stats();
    let single = DurableEngine::open(&fixture, 1);
    let single_time = single.commit(sizes.single_sync_transfers, 4);
    let single_stats = single.engine.stats();
    let grouped_rate = rate(sizes.group_commit_transfers, grouped_time);
    let single_rate = rate(sizes.single_sync_transfers, single_time);
    println!(
        "(b) durable on sled: group commit {:.0}/s ({} transfers, {} syncs, mean group {:.0}, mean sync {}µs); \
         one sync per transfer {:.0}/s ({} transfers, {} syncs, mean sync {}µs); ratio {:.1}x (target >= 100000/s)",
        grouped_rate,
        sizes.group_commit_transfers,
        grouped_stats.syncs,
        grouped_stats.events as f64 / grouped_stats.syncs.max(1) as f64,
        grouped_stats.sync_us_sum / grouped_stats.syncs.max(1),
        single_rate,
        sizes.single_sync_transfers,
        single_stats.syncs,
        single_stats.sync_us_sum / single_stats.syncs.max(1),
        grouped_rate / single_rate,
    );
    let sled_bytes = grouped_stats.events.max(1);
    let wal_size = dir_size(grouped.wal_dir.path());
    drop(grouped);
    drop(single);

    // (c)
    let recovered = time_recovery(&fixture, recovery_wal.path(), sizes.recovery_records);
    let report = &recovered.report;
    println!(
        "(c) recovery of {} WAL records: open {} ms, replay {} ms: {:.2} M records/s replayed ({:.2} M/s including the open) (target >= 1 M/s); \
         CPU time: applying thread {} ms, process {} ms",
        report.replayed_records,
        recovered.open.as_millis(),
        report.duration.as_millis(),
        rate(report.replayed_records, report.duration) / 1e6,
        rate(report.replayed_records, recovered.open + report.duration) / 1e6,
        recovered.thread_cpu.as_millis(),
        recovered.process_cpu.as_millis(),
    );
    let recovery_wal_size = dir_size(recovery_wal.path());
    drop(recovery_wal);

    // (d)
    let memory = measure_memory(sizes.memory_cards);
    println!(
        "(d) memory for {} card accounts: {:.1} bytes per account (target <= 256); {:.1} bytes per card with its funding top-up in the history",
        memory.cards, memory.per_account_bytes, memory.per_funded_card_bytes
    );

    // (e)
    let (per_record, payload) = record_bytes(&fixture);
    println!(
        "(e) WAL bytes per purchase: {per_record:.1} bytes per record in a full page (payload {payload}, length 2, share of key and crc) (target <= 256); \
         sled directory growth {:.0} bytes per record (recovery WAL, {} records) and {:.0} (engine run, {} records)",
        recovery_wal_size as f64 / sizes.recovery_records as f64,
        sizes.recovery_records,
        wal_size as f64 / sled_bytes as f64,
        sled_bytes,
    );

    // (f)
    let run = snapshot_latencies(&sizes);
    println!(
        "(f) commit latency while a snapshot of {} cards + {} transfers ({} MB) is written (taken on the engine thread in {} µs, {} ms to durable, {} ms wall), {} clients, {} syncs:",
        sizes.snapshot_cards,
        sizes.snapshot_cards as u64 + sizes.snapshot_history,
        run.snapshot.bytes / 1_000_000,
        run.capture_us,
        run.snapshot.write_duration.as_millis(),
        run.snapshot_wall.as_millis(),
        sizes.snapshot_clients,
        run.syncs,
    );
    println!("    {}", latency_line("during snapshot", &run.during));
    println!("    {}", latency_line("outside", &run.outside));
    println!("    histogram during snapshot (bucket: < bound µs):");
    for (bound, count) in histogram(&run.during) {
        println!("      < {bound:>8}µs {count:>8}");
    }
    let stalls = run.during.iter().filter(|&&us| us > 50_000).count();
    println!("    commits over 50 ms during the snapshot: {stalls} (target 0)");
    if !sizes.full {
        println!("(tiny sizes: run with `cargo bench` for the figures)");
    }
}

fn num_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).expect("readable dir") {
        let entry = entry.expect("dir entry");
        let metadata = entry.metadata().expect("metadata");
        total += if metadata.is_dir() {
            dir_size(&entry.path())
        } else {
            metadata.len()
        };
    }
    total
}
