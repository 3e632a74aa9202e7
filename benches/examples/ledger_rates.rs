//! Issue 3's (a) and (c) measured so that a shared, loaded machine does not hide them: each
//! pass prints the wall time *and* the CPU time of the threads doing the work, so two builds
//! run one after the other can be compared by CPU time when the wall clock is noisy
//! (docs/LEDGER.md, "Method"):
//!
//!     cargo build --release -p bursar-benches --example ledger_rates
//!     $CARGO_TARGET_DIR/release/examples/ledger_rates all 1000000 3
//!
//! Arguments: the part (`apply`, `prepare_apply`, `recovery` or `all`), purchases or WAL
//! records per pass (default 1,000,000), passes (default 3). The book holds 100,000 funded
//! cards as in `benches/benches/ledger.rs` (1,000 below 100,000 per pass, for short runs
//! under callgrind or perf).

use std::time::Duration;

use bursar_benches::rates::{load_average, time_apply, time_recovery, write_purchase_wal, Timed};
use bursar_benches::Fixture;

fn main() {
    let mut args = std::env::args().skip(1);
    let part = args.next().unwrap_or_else(|| "all".to_string());
    let count: u64 = args.next().map_or(1_000_000, |a| a.parse().expect("count"));
    let passes: u32 = args.next().map_or(3, |a| a.parse().expect("passes"));
    let cards = if count >= 100_000 { 100_000 } else { 1_000 };
    let fixture = Fixture::new(cards);
    println!(
        "ledger_rates: {count} per pass, {passes} passes, {cards} cards, load average {}",
        load_average()
    );
    let wal_dir = tempfile::tempdir().expect("temp dir");
    if matches!(part.as_str(), "recovery" | "all") {
        write_purchase_wal(&fixture, wal_dir.path(), count);
    }
    let rate = |spent: Duration| count as f64 / spent.as_secs_f64() / 1e6;
    for pass in 0..passes {
        for name in ["apply", "prepare_apply", "recovery"] {
            if part != "all" && part != name {
                continue;
            }
            let (timed, note) = if name == "recovery" {
                let recovered = time_recovery(&fixture, wal_dir.path(), count);
                let timed = Timed {
                    wall: recovered.open + recovered.report.duration,
                    cpu: recovered.process_cpu,
                };
                let note = format!(
                    " (process; applying thread {:.1} ms)",
                    recovered.thread_cpu.as_secs_f64() * 1e3
                );
                (timed, note)
            } else {
                let first = (pass as u64 + 1) << 48;
                (
                    time_apply(&fixture, first, count, name != "apply"),
                    String::new(),
                )
            };
            println!(
                "pass {pass} {name:<14} wall {:>7.1} ms {:>5.2} M/s | cpu {:>7.1} ms {:>5.2} M/s{note}",
                timed.wall.as_secs_f64() * 1e3,
                rate(timed.wall),
                timed.cpu.as_secs_f64() * 1e3,
                rate(timed.cpu),
            );
        }
    }
}
