//! Durability of the real process: purchases from several connections, `kill -9` in the
//! middle, restart on the same data directory. Every purchase answered `00` is in the book
//! exactly once, no declined one is, and the book balances. Once with no snapshot before the
//! kill, once with snapshots every few thousand records and their chunk files on disk.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bursar_e2e::demo::*;
use bursar_e2e::host::parse_minor;
use bursar_e2e::{make_pan, HostOptions, HostProcess, TestTerminal};
use codec::{Field, Mti};
use serde_json::json;

const CONNECTIONS: u64 = 4;
const CARDS: u64 = 6;

#[test]
fn kill_9_under_load_loses_no_approved_purchase_and_posts_none_twice() {
    kill_9_under_load(HostOptions::demo(), false);
}

#[test]
fn kill_9_under_load_after_snapshots_with_chunk_files_recovers_everything() {
    let options = HostOptions {
        snapshot_every_records: Some(1_000),
        ..HostOptions::demo()
    };
    kill_9_under_load(options, true);
}

/// Chunk files and snapshot files in the host's snapshot directory.
fn snapshot_files(host: &HostProcess) -> (usize, usize) {
    let mut counts = (0, 0);
    if let Ok(entries) = std::fs::read_dir(host.data_dir().join("snapshots")) {
        for entry in entries {
            let name = entry.expect("dir entry").file_name();
            let name = name.to_string_lossy();
            counts.0 += usize::from(name.ends_with(".chunk"));
            counts.1 += usize::from(name.ends_with(".snap"));
        }
    }
    counts
}

/// Load from several connections, `kill -9`, restart: every approved purchase is in the book
/// once. With `chunk_files`, the kill waits until snapshots have written chunk files (the
/// answers fill a chunk every 4096 requests), so that recovery reads them.
fn kill_9_under_load(options: HostOptions, chunk_files: bool) {
    let mut host = HostProcess::start(options);
    let mut pans = Vec::new();
    for serial in 0..CARDS {
        let pan = make_pan("629200", serial);
        let (status, body) = host.api(
            "POST",
            "/v1/cards",
            Some(json!({"pan": pan, "holder_name": "Load", "holder_id": format!("L{serial}"), "kind": "staff",
                        "expiry": "3012", "limits": {"daily_count": 1000000, "daily_amount": "9999999.00",
                        "per_txn": "1000.00", "pin_threshold": "1000.00"}})),
        );
        assert_eq!(status, 201, "{body}");
        let (status, _) = host.api(
            "POST",
            &format!("/v1/cards/{pan}/deposits"),
            Some(json!({"amount": "300.00", "reference": format!("load-{pan}")})),
        );
        assert_eq!(status, 201);
        pans.push(pan);
    }
    for i in 0..CONNECTIONS {
        let (status, body) = host.api(
            "POST",
            "/v1/terminals",
            Some(json!({"id": format!("C{i:07}"), "merchant_id": MERCHANT, "tpk": TPK, "mac_required": false,
                        "offline_floor_limit": "0.00"})),
        );
        assert_eq!(status, 201, "{body}");
    }

    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..CONNECTIONS)
        .map(|i| {
            let addr = host.terminal_addr;
            let pans = pans.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut t = TestTerminal::connect(addr, &format!("C{i:07}"), MERCHANT);
                t.sign_on();
                let (mut approved, mut declined) = (Vec::new(), Vec::new());
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let pan = &pans[((n + i) % CARDS) as usize];
                    // Amounts big enough that some cards run dry: declines are part of the test.
                    let amount = 100 + (n * 7919 + i * 104_729) % 900;
                    let b = t.financial(Mti::FINANCIAL_REQUEST, 0, pan, Some(amount), None);
                    let Some(response) = t.try_exchange(b) else {
                        break;
                    };
                    let rrn = response.rrn().unwrap_or_default().to_owned();
                    match response.get_str(Field::ResponseCode) {
                        Some("00") => approved.push((pan.clone(), rrn, amount as i64)),
                        _ => declined.push(rrn),
                    }
                }
                (approved, declined)
            })
        })
        .collect();

    std::thread::sleep(Duration::from_millis(1_500));
    if chunk_files {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while snapshot_files(&host).0 == 0 || snapshot_files(&host).1 < 2 {
            assert!(
                std::time::Instant::now() < deadline,
                "no chunk files after a minute of load: {:?}",
                snapshot_files(&host)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    host.kill9();
    stop.store(true, Ordering::Relaxed);
    let mut approved = Vec::new();
    let mut declined = Vec::new();
    for worker in workers {
        let (a, d) = worker.join().expect("worker");
        approved.extend(a);
        declined.extend(d);
    }
    assert!(
        approved.len() > 50,
        "the load ran: {} approved",
        approved.len()
    );
    assert!(!declined.is_empty(), "some cards ran dry");

    host.restart();
    let mut posted: HashMap<String, u32> = HashMap::new();
    for pan in &pans {
        let (status, statement) = host.api("GET", &format!("/v1/cards/{pan}/transactions"), None);
        assert_eq!(status, 200);
        let mut purchases_minor = 0;
        for row in statement["transactions"].as_array().unwrap() {
            if row["type"] == "purchase" {
                *posted
                    .entry(row["rrn"].as_str().unwrap().to_owned())
                    .or_default() += 1;
                purchases_minor += -parse_minor(row["amount"].as_str().unwrap());
            }
        }
        assert_eq!(
            host.balance_minor(pan),
            30_000 - purchases_minor,
            "balance = deposits - purchases"
        );
    }
    for (pan, rrn, _) in &approved {
        assert_eq!(
            posted.get(rrn),
            Some(&1),
            "approved purchase {rrn} on {} is in the book once",
            &pan[12..]
        );
    }
    for rrn in declined.iter().filter(|r| !r.is_empty()) {
        assert!(
            !posted.contains_key(rrn),
            "declined {rrn} is not in the book"
        );
    }
    let (_, check) = host.api("GET", "/v1/ledger/check", None);
    assert_eq!(check["balanced"], true, "{check}");
}
