//! The end-of-run report, for people (text) and machines (`--json`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::stats::Stats;

#[derive(Debug, Serialize)]
pub struct Report {
    /// `closed` (fixed requests in flight per connection) or `open` (fixed arrival rate).
    pub mode: &'static str,
    pub terminals: usize,
    /// Closed loop: requests in flight per connection.
    pub depth: Option<usize>,
    /// Open loop: the target rate, requests per second.
    pub target_rate_per_s: Option<f64>,
    pub mix: String,
    pub elapsed_s: f64,
    pub sent: u64,
    pub answered: u64,
    /// Answered requests per second of the measured period.
    pub throughput_per_s: f64,
    pub latency_us: Latency,
    /// Responses by F39.
    pub codes: BTreeMap<String, u64>,
    /// Responses by request kind, then F39.
    pub codes_by_kind: BTreeMap<&'static str, BTreeMap<String, u64>>,
    pub sent_by_kind: BTreeMap<&'static str, u64>,
    /// Failures by cause (no response, bad MAC, ...); causes that did not occur are left out.
    pub errors: BTreeMap<&'static str, u64>,
}

/// Latency percentiles in microseconds. Open loop: from each request's intended send time.
#[derive(Debug, Serialize)]
pub struct Latency {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p99_9: u64,
    pub max: u64,
    pub mean: f64,
}

impl Latency {
    pub fn of(histogram: &Histogram<u64>) -> Latency {
        Latency {
            p50: histogram.value_at_quantile(0.50),
            p90: histogram.value_at_quantile(0.90),
            p99: histogram.value_at_quantile(0.99),
            p99_9: histogram.value_at_quantile(0.999),
            max: histogram.max(),
            mean: histogram.mean(),
        }
    }
}

/// Settings of the run that the report repeats.
pub struct RunShape {
    pub terminals: usize,
    pub depth: Option<usize>,
    pub target_rate_per_s: Option<f64>,
    pub mix: String,
}

impl Report {
    pub fn new(shape: RunShape, stats: &Stats, elapsed: Duration) -> Report {
        let mut codes = BTreeMap::new();
        let mut codes_by_kind: BTreeMap<&'static str, BTreeMap<String, u64>> = BTreeMap::new();
        for (kind, code, count) in stats.answered_by_code() {
            *codes.entry(code.clone()).or_insert(0) += count;
            codes_by_kind
                .entry(kind.name())
                .or_default()
                .insert(code, count);
        }
        let answered = stats.answered_total();
        let elapsed_s = elapsed.as_secs_f64();
        Report {
            mode: if shape.target_rate_per_s.is_some() {
                "open"
            } else {
                "closed"
            },
            terminals: shape.terminals,
            depth: shape.depth,
            target_rate_per_s: shape.target_rate_per_s,
            mix: shape.mix,
            elapsed_s,
            sent: stats.sent_total(),
            answered,
            throughput_per_s: if elapsed_s > 0.0 {
                answered as f64 / elapsed_s
            } else {
                0.0
            },
            latency_us: Latency::of(&stats.latency()),
            codes,
            codes_by_kind,
            sent_by_kind: stats
                .sent_by_kind()
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .map(|(k, n)| (k.name(), n))
                .collect(),
            errors: stats
                .failures()
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .map(|(f, n)| (f.name(), n))
                .collect(),
        }
    }

    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let shape = match (self.depth, self.target_rate_per_s) {
            (_, Some(rate)) => format!("open loop at {rate:.0}/s"),
            (Some(depth), None) => format!("closed loop, depth {depth}"),
            (None, None) => "closed loop".to_owned(),
        };
        let ms = |us: u64| us as f64 / 1000.0;
        let l = &self.latency_us;
        let _ = writeln!(
            out,
            "{} terminals, {shape}, mix {}\n\
             {} sent, {} answered in {:.2} s: {:.0} requests/s\n\
             latency ms: p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}  mean {:.3}",
            self.terminals,
            self.mix,
            self.sent,
            self.answered,
            self.elapsed_s,
            self.throughput_per_s,
            ms(l.p50),
            ms(l.p90),
            ms(l.p99),
            ms(l.p99_9),
            ms(l.max),
            l.mean / 1000.0,
        );
        for (kind, codes) in &self.codes_by_kind {
            let codes: Vec<String> = codes.iter().map(|(c, n)| format!("{c}: {n}")).collect();
            let _ = writeln!(out, "  {kind:<9} {}", codes.join("  "));
        }
        let _ = writeln!(out, "{}", errors_line(&self.errors));
        out
    }
}

/// `errors: none`, or each cause with its count.
pub fn errors_line(errors: &BTreeMap<&'static str, u64>) -> String {
    if errors.is_empty() {
        return "errors: none".to_owned();
    }
    let errors: Vec<String> = errors.iter().map(|(e, n)| format!("{e}: {n}")).collect();
    format!("errors: {}", errors.join("  "))
}

/// One line of progress: the last second's rate and latency.
pub fn progress_line(
    elapsed: Duration,
    answered_total: u64,
    rate_per_s: f64,
    window: &Histogram<u64>,
    in_flight: u64,
    failures: u64,
) -> String {
    let ms = |us: u64| us as f64 / 1000.0;
    format!(
        "[{:>5.1}s] {answered_total:>10} answered  {rate_per_s:>8.0}/s  p50 {:>7.3} ms  p99 {:>7.3} ms  max {:>7.3} ms  in flight {in_flight:>5}  errors {failures}",
        elapsed.as_secs_f64(),
        ms(window.value_at_quantile(0.5)),
        ms(window.value_at_quantile(0.99)),
        ms(window.max()),
    )
}
