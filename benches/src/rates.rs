//! The timed passes of the ledger's (a) and (c) figures, shared by the criterion bench
//! (`benches/ledger.rs`) and the `ledger_rates` example. Each returns the wall time and the
//! CPU time of the threads doing the work: on a shared machine a thread waiting for a core
//! stretches the wall time but not its CPU time, so builds compared by CPU time in the same
//! run are compared fairly (docs/LEDGER.md, "Method").

use std::path::Path;
use std::time::{Duration, Instant};

use ledger::engine::recover;
use ledger::{LedgerEvent, Prepared, RecordGroup, RecoveryReport, SledWal, Wal};

use crate::Fixture;

/// At most this many transfers are applied to one copy of the fixture, so that the history
/// (and memory) of a long run stays bounded.
pub const APPLY_CHUNK: u64 = 250_000;

#[derive(Copy, Clone, Debug, Default)]
pub struct Timed {
    pub wall: Duration,
    /// CPU time of the applying thread.
    pub cpu: Duration,
}

/// Applies `count` purchases (the `first`-th on) to copies of the fixture, each decided with
/// `prepare` first if asked (the switch's path); times the applying only (copying the
/// fixture and building the transfers are not timed).
pub fn time_apply(fixture: &Fixture, first: u64, count: u64, prepare: bool) -> Timed {
    let mut timed = Timed::default();
    let mut done = 0;
    while done < count {
        let n = APPLY_CHUNK.min(count - done);
        let mut book = fixture.book.clone();
        let events: Vec<_> = (first + done..first + done + n)
            .map(|i| LedgerEvent::Post(fixture.purchase(i)))
            .collect();
        let (cpu_started, started) = (thread_cpu(), Instant::now());
        for event in &events {
            if prepare {
                let LedgerEvent::Post(transfer) = event else {
                    unreachable!("only purchases")
                };
                let prepared = book.prepare(transfer);
                assert_eq!(std::hint::black_box(prepared), Ok(Prepared::New));
            }
            book.apply(event);
        }
        timed.wall += started.elapsed();
        timed.cpu += thread_cpu() - cpu_started;
        assert_eq!(book.transfers(), fixture.cards.len() + n as usize);
        done += n;
    }
    timed
}

/// Writes `records` purchase events to a fresh sled WAL in `dir`, in groups of 8192 as the
/// engine would. Replaying them needs the fixture's book as the initial state.
pub fn write_purchase_wal(fixture: &Fixture, dir: &Path, records: u64) {
    let mut wal = SledWal::open(dir).expect("sled WAL opens");
    wal.recover(1, &mut |_, _| Ok(())).expect("empty WAL");
    let mut group = RecordGroup::new(1);
    let mut seq = 1;
    while seq <= records {
        group.reset(seq);
        for n in seq..(seq + 8192).min(records + 1) {
            group.push_event(&LedgerEvent::Post(fixture.purchase(n)));
        }
        wal.append(&group).expect("append");
        wal.sync().expect("sync");
        seq = group.last_seq() + 1;
    }
}

pub struct RecoveryTimed {
    /// Opening sled.
    pub open: Duration,
    pub report: RecoveryReport,
    /// CPU time of the calling thread (which applies the records) over the open and the
    /// recovery, and of the whole process (the replay's reader thread included).
    pub thread_cpu: Duration,
    pub process_cpu: Duration,
}

/// Opens the WAL in `dir` and recovers the book from it, on top of the fixture's book.
pub fn time_recovery(fixture: &Fixture, dir: &Path, records: u64) -> RecoveryTimed {
    let book = fixture.book.clone();
    let (process_started, thread_started) = (process_cpu(), thread_cpu());
    let started = Instant::now();
    let mut wal = SledWal::open(dir).expect("sled WAL opens");
    let open = started.elapsed();
    let (book, report) = recover(&mut wal, None, move || book).expect("recovers");
    let (thread_cpu, process_cpu) = (
        thread_cpu() - thread_started,
        process_cpu() - process_started,
    );
    assert_eq!(report.replayed_records, records);
    assert_eq!(book.transfers(), fixture.cards.len() + records as usize);
    RecoveryTimed {
        open,
        report,
        thread_cpu,
        process_cpu,
    }
}

/// CPU time of the calling thread: the first field of `/proc/thread-self/schedstat` (ns).
pub fn thread_cpu() -> Duration {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").expect("schedstat");
    let ns = text.split_whitespace().next().expect("a field");
    Duration::from_nanos(ns.parse().expect("nanoseconds"))
}

/// User + system CPU time of the whole process, ended threads included (`/proc/self/stat`,
/// in ticks of 10 ms).
pub fn process_cpu() -> Duration {
    let text = std::fs::read_to_string("/proc/self/stat").expect("stat");
    // The fields after the command name (which may hold spaces) start at the third.
    let rest = &text[text.rfind(')').expect("command name") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |index: usize| fields[index].parse::<u64>().expect("ticks");
    // utime and stime are fields 14 and 15; Linux's USER_HZ is 100.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// `/proc/loadavg`'s three averages, to print beside every figure.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}
