//! A load of card purchases through the ledger engine on the real sled WAL, printing how many
//! groups were made durable and how many syncs the engine did. Made to run under strace, to
//! show that every acknowledged group had its own real sync (docs/LEDGER.md):
//!
//!     cargo build --release -p bursar-benches --example durable_load
//!     strace -f -c -e trace=fsync,fdatasync,sync_file_range \
//!         target/release/examples/durable_load 20000 4
//!
//! Arguments: purchases (default 20000), submitting threads (default 4), most events per
//! group (default: the engine's, 8192). The WAL lives in a temporary directory, removed at
//! the end.

use std::sync::Arc;
use std::time::Instant;

use bursar_benches::{decide_and_post, Fixture};
use ledger::{Engine, EngineConfig, SledWal};

fn main() {
    let mut args = std::env::args().skip(1);
    let purchases: u64 = args
        .next()
        .map_or(20_000, |a| a.parse().expect("purchases"));
    let submitters: u64 = args.next().map_or(4, |a| a.parse().expect("submitters"));
    let group_max_events: usize = args
        .next()
        .map_or(EngineConfig::default().group_max_events, |a| {
            a.parse().expect("group_max_events")
        });
    assert!(submitters >= 1);

    let fixture = Arc::new(Fixture::new(10_000));
    let dir = tempfile::tempdir().expect("temp dir");
    let wal = SledWal::open(dir.path()).expect("sled WAL opens");
    let config = EngineConfig {
        group_max_events,
        snapshot_every_records: 0,
        ..EngineConfig::default()
    };
    let book = fixture.book.clone();
    let (engine, _) = Engine::open(Box::new(wal), None, config, move || book).expect("open");
    let started = Instant::now();
    std::thread::scope(|scope| {
        for submitter in 0..submitters {
            let (engine, fixture) = (&engine, &fixture);
            scope.spawn(move || {
                let pending: Vec<_> = (submitter..purchases)
                    .step_by(submitters as usize)
                    .map(|n| {
                        let transfer = fixture.purchase(n);
                        engine.execute(move |tx| decide_and_post(tx, transfer))
                    })
                    .collect();
                for result in pending {
                    assert_eq!(result.wait(), Ok(true), "purchase approved and durable");
                }
            });
        }
    });
    let elapsed = started.elapsed();
    let stats = engine.stats();
    engine.shutdown();
    println!(
        "{purchases} purchases acknowledged in {:.2} s ({:.0}/s): {} groups, {} engine syncs \
         (each: sled flush, then fdatasync of sled's data file), largest group {}; \
         plus one final sync at shutdown",
        elapsed.as_secs_f64(),
        purchases as f64 / elapsed.as_secs_f64(),
        stats.groups,
        stats.syncs,
        stats.group_size_max,
    );
    assert_eq!(stats.events, purchases);
}
