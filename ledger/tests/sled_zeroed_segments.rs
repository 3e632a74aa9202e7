//! The vendored sled writes the segment past its log with zeros ahead of time (change 5 of
//! vendor/README.md), so that the WAL's syncs overwrite blocks the file already has instead
//! of growing it. This checks the file's shape after a few segments of log, and that sled
//! recovers everything with the zeroed segment at its end.

use std::time::{Duration, Instant};

/// sled's default segment size, which the WAL keeps.
const SEGMENT: usize = 512 * 1024;
const KEYS: u64 = 2_000;
const VALUE: [u8; 1_000] = [7; 1_000];

fn open(dir: &std::path::Path) -> sled::Db {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // sled releases its file lock from a background thread after a close.
        match sled::Config::new().path(dir).flush_every_ms(None).open() {
            Ok(db) => return db,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(error) => panic!("cannot reopen sled: {error}"),
        }
    }
}

#[test]
fn the_segment_past_the_log_is_zeroed_ahead_and_recovery_reads_past_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    // Groups of 20 values of 1,000 bytes, each flushed, as the WAL commits: about 4 segments.
    for key in 0..KEYS {
        db.insert(key.to_be_bytes(), &VALUE[..]).unwrap();
        if key % 20 == 19 {
            db.flush().unwrap();
        }
    }

    // The zeroing runs on sled's thread pool: wait for the file to end in a whole segment.
    let file = dir.path().join("db");
    let deadline = Instant::now() + Duration::from_secs(10);
    let bytes = loop {
        let bytes = std::fs::read(&file).unwrap();
        if bytes.len() % SEGMENT == 0 && bytes[bytes.len() - SEGMENT..].iter().all(|b| *b == 0) {
            break bytes;
        }
        assert!(
            Instant::now() < deadline,
            "the file ({} bytes) does not end in a zeroed segment",
            bytes.len()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let segments = bytes.len() / SEGMENT;
    assert!(segments >= 4, "only {segments} segments");
    let log_end = bytes.len() - SEGMENT;
    assert!(
        bytes[log_end - SEGMENT..log_end].iter().any(|b| *b != 0),
        "the segment before the zeroed one holds the log"
    );

    drop(db);
    let db = open(dir.path());
    assert_eq!(db.len(), KEYS as usize);
    for key in 0..KEYS {
        assert_eq!(
            db.get(key.to_be_bytes()).unwrap().as_deref(),
            Some(&VALUE[..])
        );
    }
}

/// A group far larger than a segment (a bulk admin change is up to 16 MB): sled hands its
/// full buffers to the pool while the inserting thread seals the next ones, and the sealing
/// thread waits for the zeroing of each new segment. That zeroing must not depend on a pool
/// thread, which may be blocked behind the lock the sealing thread holds.
#[test]
fn a_group_of_many_segments_is_written_without_waiting_forever() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let db = open(&path);
        for round in 0..3u64 {
            for key in 0..16_000u64 {
                db.insert((round << 32 | key).to_be_bytes(), &VALUE[..])
                    .unwrap();
            }
            db.flush().unwrap();
        }
        done.send(db.len()).unwrap();
    });
    let keys = finished
        .recv_timeout(Duration::from_secs(60))
        .expect("48 MB of inserts in three groups finish within a minute");
    assert_eq!(keys, 48_000);
}
