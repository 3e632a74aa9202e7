//! The vendored sled writes a group's log buffers on the flushing thread instead of handing
//! them to its IO thread pool (vendor/README.md): upstream 0.34.7 woke all seven idle
//! `sled-io` threads for every log write, and the WAL makes one per group commit. This counts
//! the threads' context switches over many WAL-like groups.
#![cfg(target_os = "linux")]

use std::fs;

/// Voluntary context switches of this process's `sled-io-*` threads so far.
fn sled_io_switches() -> u64 {
    let mut total = 0;
    for task in fs::read_dir("/proc/self/task").expect("procfs") {
        let task = task.expect("task entry").path();
        let Ok(name) = fs::read_to_string(task.join("comm")) else {
            continue; // the thread ended
        };
        if !name.starts_with("sled-io") {
            continue;
        }
        let Ok(status) = fs::read_to_string(task.join("status")) else {
            continue;
        };
        total += status
            .lines()
            .find_map(|line| line.strip_prefix("voluntary_ctxt_switches:"))
            .map(|count| count.trim().parse::<u64>().expect("a count"))
            .unwrap_or(0);
    }
    total
}

/// Context switches of sled's IO threads over `flushes` groups, each written by `group`
/// (given the group's number) and then flushed.
fn switches_per_group(flushes: u64, group: impl Fn(&sled::Db, u64)) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::Config::new()
        .path(dir.path())
        .flush_every_ms(None)
        .open()
        .unwrap();
    // Start the pool and let its threads settle into their wait.
    db.insert(b"warm-up", b"x").unwrap();
    db.flush().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(50));

    let before = sled_io_switches();
    for i in 0..flushes {
        group(&db, i);
        db.flush().unwrap();
    }
    let switches = sled_io_switches() - before;
    eprintln!("{switches} context switches of sled's IO threads for {flushes} flushes");
    switches
}

const FLUSHES: u64 = 400;

#[test]
fn a_batch_per_group_is_written_without_the_pool() {
    // A sled batch per group (the WAL's groups until cb47ca5, recovery's removal of a torn
    // page still): sled seals the batch's manifest in a buffer of its own. With changes 2 and
    // 4 of vendor/README.md the flushing thread writes both buffers itself. Measured: 0
    // switches in 400 flushes; 3.0 per flush with the manifest's buffer handed to the pool,
    // 5.6 with the flush's own buffer handed over too, 8.7 with every idle thread woken per
    // task (upstream).
    let switches = switches_per_group(FLUSHES, |db, i| {
        let mut batch = sled::Batch::default();
        batch.insert(&i.to_be_bytes()[..], &[7u8; 100][..]);
        db.apply_batch(batch).unwrap();
    });
    assert!(
        switches < FLUSHES / 4,
        "{switches} context switches of sled's IO threads for {FLUSHES} flushes"
    );
}

#[test]
fn a_group_of_plain_inserts_is_written_without_the_pool() {
    // As the WAL writes a group now: its pages inserted, then a flush, which writes the one
    // buffer itself. Measured: 0 switches in 400 flushes.
    let switches = switches_per_group(FLUSHES, |db, i| {
        db.insert(i.to_be_bytes(), &[7u8; 100][..]).unwrap();
    });
    assert!(
        switches < FLUSHES / 4,
        "{switches} context switches of sled's IO threads for {FLUSHES} flushes"
    );
}
