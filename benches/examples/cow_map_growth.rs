//! How long the engine thread's map inserts stall while a `CowMap` grows, and after a
//! snapshot's clone: inserts `COUNT` keys shaped like the switch's answer index (a 24-byte key,
//! a u32) in windows of `WINDOW` (about one group commit at 55,000 requests/s), with `clone`
//! cloning the map every `SNAPSHOT_EVERY` inserts as a snapshot of the cards does, and prints
//! the slowest windows.
//!
//!   cargo run --release -p bursar-benches --example cow_map_growth [COUNT [clone]]

use std::time::Instant;

use ledger::cow_map::CowMap;

const WINDOW: usize = 500;
const SNAPSHOT_EVERY: usize = 1_000_000;

fn key(n: u64) -> [u8; 24] {
    let mut key = [0u8; 24];
    key[..8].copy_from_slice(&n.to_le_bytes());
    key[8..16].copy_from_slice(&n.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes());
    key
}

fn main() {
    let count: usize = std::env::args()
        .nth(1)
        .map_or(4_000_000, |arg| arg.parse().expect("COUNT is a number"));
    let clones = std::env::args().nth(2).as_deref() == Some("clone");
    let mut map: CowMap<[u8; 24], u32> = CowMap::new();
    let mut windows_us = Vec::with_capacity(count / WINDOW);
    let mut snapshot = None;
    let started = Instant::now();
    for window in 0..count / WINDOW {
        let window_started = Instant::now();
        for n in window * WINDOW..(window + 1) * WINDOW {
            map.insert(key(n as u64), n as u32);
        }
        windows_us.push((window_started.elapsed().as_micros() as u64, window * WINDOW));
        if clones && (window + 1) * WINDOW % SNAPSHOT_EVERY == 0 {
            // The clone a snapshot holds until it is written; the next one replaces it.
            snapshot = Some(map.clone());
        }
    }
    drop(snapshot);
    let total = started.elapsed();
    let mut sorted: Vec<u64> = windows_us.iter().map(|(us, _)| *us).collect();
    sorted.sort_unstable();
    let at = |q: f64| sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)];
    println!(
        "{count} inserts in {:.2} s; windows of {WINDOW}: p50 {} us, p99 {} us, p99.9 {} us, max {} us",
        total.as_secs_f64(),
        at(0.5),
        at(0.99),
        at(0.999),
        sorted[sorted.len() - 1]
    );
    // Time spent in windows over 1 ms, per 250,000 inserts: where the stalls bunch up.
    let mut slow_by_range = std::collections::BTreeMap::new();
    for (us, first) in &windows_us {
        if *us > 1000 {
            *slow_by_range
                .entry(first / 250_000 * 250_000)
                .or_insert(0u64) += us;
        }
    }
    for (from, us) in slow_by_range {
        println!(
            "  inserts {from:>9}..: {:>6.1} ms in windows over 1 ms",
            us as f64 / 1000.0
        );
    }
}
