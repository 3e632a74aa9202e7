//! What a run measured, shared by every simulated terminal: requests sent, responses by kind
//! and response code, errors, and latency histograms (HdrHistogram, microseconds).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::mix::Kind;

/// Longest latency the histograms keep apart; longer ones are recorded as this.
const LATENCY_MAX_US: u64 = 60_000_000;
/// Slots for response codes: `00`-`99`, then one for anything that is not two digits.
const CODE_SLOTS: usize = 101;

/// What went wrong besides a response code.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The TCP connection could not be opened.
    Connect,
    /// The sign-on was not answered `00`.
    SignOn,
    /// No response within the timeout.
    Timeout,
    /// A response that matches no request in flight (MTI pair, F11, F41).
    Unmatched,
    /// A response the codec cannot parse.
    Unparsable,
    /// A response to a MAC terminal whose MAC is missing or wrong.
    BadMac,
    /// A request still waiting when its connection closed.
    Disconnected,
}

impl Failure {
    pub const ALL: [Failure; 7] = [
        Failure::Connect,
        Failure::SignOn,
        Failure::Timeout,
        Failure::Unmatched,
        Failure::Unparsable,
        Failure::BadMac,
        Failure::Disconnected,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Failure::Connect => "connect",
            Failure::SignOn => "sign_on",
            Failure::Timeout => "timeout",
            Failure::Unmatched => "unmatched",
            Failure::Unparsable => "unparsable",
            Failure::BadMac => "bad_mac",
            Failure::Disconnected => "disconnected",
        }
    }
}

pub struct Stats {
    sent: [AtomicU64; 5],
    answered: [[AtomicU64; CODE_SLOTS]; 5],
    failures: [AtomicU64; 7],
    /// Every latency of the measured period.
    latency: Mutex<Histogram<u64>>,
    /// Latencies since the last progress line.
    window: Mutex<Histogram<u64>>,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_MAX_US, 3).expect("valid histogram bounds")
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            sent: Default::default(),
            answered: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            failures: Default::default(),
            latency: Mutex::new(histogram()),
            window: Mutex::new(histogram()),
        }
    }
}

fn code_slot(code: &[u8]) -> usize {
    match code {
        [a @ b'0'..=b'9', b @ b'0'..=b'9'] => usize::from(a - b'0') * 10 + usize::from(b - b'0'),
        _ => CODE_SLOTS - 1,
    }
}

fn slot_code(slot: usize) -> String {
    if slot == CODE_SLOTS - 1 {
        "other".to_owned()
    } else {
        format!("{slot:02}")
    }
}

impl Stats {
    pub fn sent(&self, kind: Kind) {
        self.sent[kind.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub fn answered(&self, kind: Kind, code: &[u8], latency: Duration) {
        self.answered[kind.index()][code_slot(code)].fetch_add(1, Ordering::Relaxed);
        let us = (latency.as_micros() as u64).clamp(1, LATENCY_MAX_US);
        self.latency
            .lock()
            .expect("no panics")
            .saturating_record(us);
        self.window.lock().expect("no panics").saturating_record(us);
    }

    pub fn failed(&self, failure: Failure) {
        self.failures[failure as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn sent_total(&self) -> u64 {
        self.sent.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    pub fn answered_total(&self) -> u64 {
        self.answered
            .iter()
            .flatten()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    pub fn failures_total(&self) -> u64 {
        self.failures
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    /// The latencies since the last call, and a fresh window.
    pub fn take_window(&self) -> Histogram<u64> {
        let mut window = self.window.lock().expect("no panics");
        let taken = window.clone();
        window.reset();
        taken
    }

    pub fn latency(&self) -> Histogram<u64> {
        self.latency.lock().expect("no panics").clone()
    }

    pub fn sent_by_kind(&self) -> Vec<(Kind, u64)> {
        Kind::ALL
            .iter()
            .map(|k| (*k, self.sent[k.index()].load(Ordering::Relaxed)))
            .collect()
    }

    /// (kind, response code, count) of every pair seen.
    pub fn answered_by_code(&self) -> Vec<(Kind, String, u64)> {
        let mut out = Vec::new();
        for kind in Kind::ALL {
            for (slot, count) in self.answered[kind.index()].iter().enumerate() {
                let count = count.load(Ordering::Relaxed);
                if count > 0 {
                    out.push((kind, slot_code(slot), count));
                }
            }
        }
        out
    }

    pub fn failures(&self) -> Vec<(Failure, u64)> {
        Failure::ALL
            .iter()
            .map(|f| (*f, self.failures[*f as usize].load(Ordering::Relaxed)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_codes_and_latencies() {
        let stats = Stats::default();
        stats.sent(Kind::Purchase);
        stats.sent(Kind::TopUp);
        stats.answered(Kind::Purchase, b"00", Duration::from_micros(250));
        stats.answered(Kind::TopUp, b"91", Duration::from_millis(2));
        stats.answered(Kind::TopUp, b"X1", Duration::ZERO);
        stats.failed(Failure::Timeout);
        assert_eq!(stats.sent_total(), 2);
        assert_eq!(stats.answered_total(), 3);
        assert_eq!(stats.failures_total(), 1);
        assert_eq!(
            stats.answered_by_code(),
            vec![
                (Kind::Purchase, "00".to_owned(), 1),
                (Kind::TopUp, "91".to_owned(), 1),
                (Kind::TopUp, "other".to_owned(), 1),
            ]
        );
        assert_eq!(stats.take_window().len(), 3);
        assert_eq!(stats.take_window().len(), 0);
        assert_eq!(stats.latency().len(), 3);
    }
}
