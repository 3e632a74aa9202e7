//! Prometheus metrics, named by its conventions (`_total`, `_seconds`, base units). One
//! registry per host, so tests can run several hosts in one process.

use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ledger::engine::{EngineStats, SYNC_BUCKETS};
use ledger::StageTimes;
use prometheus::local::{LocalHistogram, LocalHistogramVec, LocalIntCounterVec};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

pub struct Metrics {
    pub registry: Registry,
    pub requests: IntCounterVec,
    pub request_seconds: HistogramVec,
    /// Where each request is counted into `requests`, `request_seconds`, the stages and
    /// `in_flight`.
    pub request_counts: RequestCounts,
    pub connections_open: IntGauge,
    pub connections_rejected: IntCounter,
    pub frames_rejected: IntCounterVec,
    pub messages_dropped: IntCounter,
    pub wal_groups: IntCounter,
    pub wal_events: IntCounter,
    pub wal_group_events_max: IntGauge,
    pub ledger_queue_depth: IntGauge,
    pub ledger_transfers: IntCounter,
    pub ledger_accounts: IntGauge,
    pub snapshots: IntCounter,
    /// The WAL's fsync latency, kept by the engine: rendered from its buckets at scrape time.
    wal_fsync: Mutex<Option<EngineStats>>,
    /// Every metric family this host can expose, even before it has a sample.
    pub family_names: Vec<String>,
    pub business_day: IntGauge,
    pub recovery_seconds: prometheus::Gauge,
    pub runtime_workers: IntGauge,
    pub blacklist_version: IntGauge,
    pub bank_link_state: IntGaugeVec,
    pub saf_depth: IntGauge,
    pub bank_reconnects: IntCounter,
}

fn latency_buckets() -> Vec<f64> {
    // 50 us to 5 s: a host answers in well under a millisecond until the disk says otherwise.
    vec![
        0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
        1.0, 2.5, 5.0,
    ]
}

/// Where each request's time went, by stage: `checks` (from its frame until it was handed
/// to the engine: parsing, MAC and PIN on the connection's thread, and its turn there), then
/// the engine's stages (`ledger::StageTimes`): `engine_queue`, `grouping`, `wal_queue`,
/// `wal_write` and `wake`. Observed through [`RequestCounts`].
pub struct RequestStages {
    family: HistogramVec,
}

impl RequestStages {
    fn new() -> RequestStages {
        let family = HistogramVec::new(
            HistogramOpts::new(
                "bursar_request_stage_seconds",
                "Time each request spent in each stage of the host, for requests the ledger \
                 engine ran: checks, engine_queue, grouping, wal_queue, wal_write, wake.",
            )
            .buckets(stage_buckets()),
            &["stage"],
        )
        .expect("valid metric");
        RequestStages { family }
    }

    /// Each stage's histogram resolved once, for one shard of [`RequestCounts`]: its
    /// observations look up no labels and touch no shared memory until flushed.
    fn local(&self) -> LocalStages {
        let stage = |name: &str| self.family.with_label_values(&[name]).local();
        LocalStages {
            checks: stage("checks"),
            engine_queue: stage("engine_queue"),
            grouping: stage("grouping"),
            wal_queue: stage("wal_queue"),
            wal_write: stage("wal_write"),
            wake: stage("wake"),
        }
    }
}

struct LocalStages {
    checks: LocalHistogram,
    engine_queue: LocalHistogram,
    grouping: LocalHistogram,
    wal_queue: LocalHistogram,
    wal_write: LocalHistogram,
    wake: LocalHistogram,
}

impl LocalStages {
    fn observe(&self, frame_read: Instant, times: &StageTimes) {
        let checks = times.submitted.saturating_duration_since(frame_read);
        self.checks.observe(checks.as_secs_f64());
        self.engine_queue.observe(times.engine_queue.as_secs_f64());
        self.grouping.observe(times.grouping.as_secs_f64());
        self.wal_queue.observe(times.wal_queue.as_secs_f64());
        self.wal_write.observe(times.wal_write.as_secs_f64());
        self.wake.observe(times.wake.as_secs_f64());
    }

    fn flush(&self) {
        for stage in [
            &self.checks,
            &self.engine_queue,
            &self.grouping,
            &self.wal_queue,
            &self.wal_write,
            &self.wake,
        ] {
            stage.flush();
        }
    }
}

/// The per-request metrics (`requests`, `request_seconds`, the stages, `in_flight`), counted
/// in shards: a thread records into its own shard's plain counters, under a lock that only the
/// scrape ever contends for, and [`Metrics::render`] adds every shard to the families before
/// it encodes them, so a scrape sees every request answered before it. Recorded straight on
/// the families, each request made seven histogram observations, two label lookups and two
/// gauge changes, about 30 atomic operations on cache lines that the tokio workers passed back
/// and forth (docs/BENCHMARKS.md has what that cost). The rare `30` to an unparsable frame
/// is counted on its family directly.
pub struct RequestCounts {
    shards: Box<[PaddedShard]>,
    in_flight: IntGauge,
}

/// A shard on cache lines of its own, so that two threads recording into neighbouring shards
/// do not pass a line back and forth.
#[repr(align(128))]
struct PaddedShard(Mutex<Shard>);

/// Enough that the tokio workers (one per CPU by default) seldom share one.
const SHARDS: usize = 16;

struct Shard {
    requests: LocalIntCounterVec,
    request_seconds: LocalHistogramVec,
    stages: LocalStages,
    /// Requests started less those done since the last flush.
    in_flight: i64,
}

impl RequestCounts {
    fn new(
        requests: &IntCounterVec,
        request_seconds: &HistogramVec,
        stages: &RequestStages,
        in_flight: &IntGauge,
    ) -> RequestCounts {
        let shard = || {
            PaddedShard(Mutex::new(Shard {
                requests: requests.local(),
                request_seconds: request_seconds.local(),
                stages: stages.local(),
                in_flight: 0,
            }))
        };
        RequestCounts {
            shards: (0..SHARDS).map(|_| shard()).collect(),
            in_flight: in_flight.clone(),
        }
    }

    /// The calling thread's shard.
    fn shard(&self) -> std::sync::MutexGuard<'_, Shard> {
        thread_local! {
            static SHARD: usize = {
                static NEXT: AtomicUsize = AtomicUsize::new(0);
                NEXT.fetch_add(1, Relaxed) % SHARDS
            };
        }
        lock(&self.shards[SHARD.with(|index| *index)])
    }

    /// Requests read and handed on (a connection counts through [`ConnectionInFlight`]).
    fn started(&self, requests: usize) {
        self.shard().in_flight += requests as i64;
    }

    /// Requests out of flight, answered or not.
    fn done(&self, requests: usize) {
        self.shard().in_flight -= requests as i64;
    }

    /// Counts one connection's requests in and out of flight ([`ConnectionInFlight`]).
    pub fn connection(&self) -> ConnectionInFlight<'_> {
        ConnectionInFlight {
            counts: self,
            requests: 0,
        }
    }

    /// The stages of a request the engine ran, whose frame was read at `frame_read`.
    pub fn stages(&self, frame_read: Instant, times: &StageTimes) {
        self.shard().stages.observe(frame_read, times);
    }

    /// A response built, `elapsed` after its frame was read.
    pub fn answered(&self, mti: &str, code: &str, elapsed: Duration) {
        let mut shard = self.shard();
        shard.requests.with_label_values(&[mti, code]).inc();
        shard
            .request_seconds
            .with_label_values(&[mti])
            .observe(elapsed.as_secs_f64());
    }

    /// Adds every shard's counts to the families, all shards held at once: a request started
    /// in one shard and done in another is then either in both or in neither, so `in_flight`
    /// is exact at every scrape. (A recording thread holds one shard at a time, so taking them
    /// all in order cannot deadlock; they wait for the scrape's few microseconds.)
    fn flush(&self) {
        let mut shards: Vec<_> = self.shards.iter().map(lock).collect();
        for shard in shards.iter_mut() {
            shard.requests.flush();
            shard.request_seconds.flush();
            shard.stages.flush();
            self.in_flight.add(std::mem::take(&mut shard.in_flight));
        }
    }
}

fn lock(shard: &PaddedShard) -> std::sync::MutexGuard<'_, Shard> {
    // Counts only add up: a panic while one was held leaves nothing half-changed.
    shard
        .0
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One connection's requests in flight: counted in as they are read and out as they are
/// answered, and the rest counted out when the connection ends, however it ends (a failed
/// write, or a panic, drops them unanswered).
pub struct ConnectionInFlight<'a> {
    counts: &'a RequestCounts,
    requests: usize,
}

impl ConnectionInFlight<'_> {
    pub fn started(&mut self, requests: usize) {
        self.counts.started(requests);
        self.requests += requests;
    }

    pub fn done(&mut self, requests: usize) {
        assert!(requests <= self.requests, "only started requests are done");
        self.counts.done(requests);
        self.requests -= requests;
    }
}

impl Drop for ConnectionInFlight<'_> {
    fn drop(&mut self) {
        self.counts.done(self.requests);
    }
}

fn stage_buckets() -> Vec<f64> {
    // 10 us to 1 s: a stage of a healthy host is tens to hundreds of microseconds.
    vec![
        0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
        0.05, 0.1, 0.25, 1.0,
    ]
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "bursar_requests_total",
                "Requests answered, by request MTI and response code (F39).",
            ),
            &["mti", "code"],
        )
        .expect("valid metric");
        let request_seconds = HistogramVec::new(
            HistogramOpts::new(
                "bursar_request_duration_seconds",
                "Time from a request's frame to its response.",
            )
            .buckets(latency_buckets()),
            &["mti"],
        )
        .expect("valid metric");
        let request_stages = RequestStages::new();
        let in_flight = IntGauge::new(
            "bursar_requests_in_flight",
            "Requests received and not yet answered.",
        )
        .expect("valid metric");
        let connections_open =
            IntGauge::new("bursar_connections_open", "Open terminal connections.")
                .expect("valid metric");
        let connections_rejected = IntCounter::new(
            "bursar_connections_rejected_total",
            "Terminal connections closed at once because the connection limit was reached.",
        )
        .expect("valid metric");
        let frames_rejected = IntCounterVec::new(
            Opts::new(
                "bursar_frames_rejected_total",
                "Frames that closed a connection or were dropped, by reason.",
            ),
            &["reason"],
        )
        .expect("valid metric");
        let messages_dropped = IntCounter::new(
            "bursar_messages_dropped_total",
            "Messages that could not be parsed far enough to be answered (no MTI, F11 and F41).",
        )
        .expect("valid metric");
        let counter = |name: &str, help: &str| IntCounter::new(name, help).expect("valid metric");
        let gauge = |name: &str, help: &str| IntGauge::new(name, help).expect("valid metric");
        let wal_groups = counter(
            "bursar_wal_groups_total",
            "WAL groups made durable (one append and one fsync each, when not empty).",
        );
        let wal_events = counter(
            "bursar_wal_events_total",
            "Events made durable in the WAL; divided by groups, the mean group size.",
        );
        let wal_group_events_max = gauge(
            "bursar_wal_group_events_max",
            "Largest WAL group since start, in events.",
        );
        let ledger_queue_depth = gauge(
            "bursar_ledger_queue_depth",
            "Requests waiting for the ledger engine thread.",
        );
        let ledger_transfers = counter(
            "bursar_ledger_transfers_total",
            "Transfers in the book since the first business day (survives restarts).",
        );
        let ledger_accounts = gauge("bursar_ledger_accounts", "Accounts in the book.");
        let snapshots = counter(
            "bursar_snapshots_total",
            "Ledger snapshots written since start.",
        );
        let business_day =
            IntGauge::new("bursar_business_day", "Current business day as YYYYMMDD.")
                .expect("valid metric");
        let recovery_seconds = prometheus::Gauge::new(
            "bursar_recovery_duration_seconds",
            "Time the last start-up spent recovering.",
        )
        .expect("valid metric");
        let runtime_workers = gauge(
            "bursar_runtime_workers",
            "tokio worker threads serving the connections, the admin API and the bank link.",
        );
        let blacklist_version =
            IntGauge::new("bursar_blacklist_version", "Current blacklist version.")
                .expect("valid metric");
        let bank_link_state = IntGaugeVec::new(
            Opts::new(
                "bursar_bank_link_state",
                "1 for the bank link's current state (down, connecting, signed_on).",
            ),
            &["state"],
        )
        .expect("valid metric");
        let saf_depth = IntGauge::new(
            "bursar_saf_depth",
            "Store-and-forward advices waiting for the bank.",
        )
        .expect("valid metric");
        let bank_reconnects = IntCounter::new(
            "bursar_bank_reconnects_total",
            "Times the bank link went down and a reconnect was scheduled.",
        )
        .expect("valid metric");
        let mut family_names = vec![FSYNC_HISTOGRAM.to_owned()];
        for collector in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(request_seconds.clone()),
            Box::new(request_stages.family.clone()),
            Box::new(in_flight.clone()),
            Box::new(connections_open.clone()),
            Box::new(connections_rejected.clone()),
            Box::new(frames_rejected.clone()),
            Box::new(messages_dropped.clone()),
            Box::new(wal_groups.clone()),
            Box::new(wal_events.clone()),
            Box::new(wal_group_events_max.clone()),
            Box::new(ledger_queue_depth.clone()),
            Box::new(ledger_transfers.clone()),
            Box::new(ledger_accounts.clone()),
            Box::new(snapshots.clone()),
            Box::new(business_day.clone()),
            Box::new(recovery_seconds.clone()),
            Box::new(runtime_workers.clone()),
            Box::new(blacklist_version.clone()),
            Box::new(bank_link_state.clone()),
            Box::new(saf_depth.clone()),
            Box::new(bank_reconnects.clone()),
        ] {
            family_names.extend(collector.desc().iter().map(|desc| desc.fq_name.clone()));
            registry
                .register(collector)
                .expect("metric names are unique");
        }
        let request_counts =
            RequestCounts::new(&requests, &request_seconds, &request_stages, &in_flight);
        Metrics {
            registry,
            requests,
            request_seconds,
            request_counts,
            connections_open,
            connections_rejected,
            frames_rejected,
            messages_dropped,
            wal_groups,
            wal_events,
            wal_group_events_max,
            ledger_queue_depth,
            ledger_transfers,
            ledger_accounts,
            snapshots,
            wal_fsync: Mutex::new(None),
            family_names,
            business_day,
            recovery_seconds,
            runtime_workers,
            blacklist_version,
            bank_link_state,
            saf_depth,
            bank_reconnects,
        }
    }

    /// Brings the engine's counters up to date; called at each scrape.
    pub fn observe_engine(&self, stats: &EngineStats) {
        advance(&self.wal_groups, stats.groups);
        advance(&self.wal_events, stats.events);
        advance(&self.snapshots, stats.snapshots);
        self.wal_group_events_max.set(stats.group_size_max as i64);
        self.ledger_queue_depth.set(stats.queue_depth as i64);
        *self.wal_fsync.lock().unwrap_or_else(|p| p.into_inner()) = Some(stats.clone());
    }

    /// Brings the counts read from the host's state up to date; called at each scrape.
    pub fn observe_state(&self, gauges: &StateGauges) {
        advance(&self.ledger_transfers, gauges.transfers);
        self.ledger_accounts.set(gauges.accounts as i64);
        self.blacklist_version.set(gauges.blacklist_version as i64);
        self.business_day.set(gauges.business_day as i64);
    }

    pub fn render(&self) -> String {
        self.request_counts.flush();
        let mut buffer = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .expect("text encoding cannot fail");
        let mut text = String::from_utf8(buffer).expect("text format is UTF-8");
        if let Some(stats) = &*self.wal_fsync.lock().unwrap_or_else(|p| p.into_inner()) {
            render_fsync_histogram(stats, &mut text);
        }
        text
    }
}

/// What the scrape reads from the host's state (on the engine thread).
#[derive(Clone, Copy, Debug, Default)]
pub struct StateGauges {
    pub transfers: u64,
    pub accounts: u64,
    pub blacklist_version: u64,
    pub business_day: u32,
}

const FSYNC_HISTOGRAM: &str = "bursar_wal_fsync_duration_seconds";

/// Moves a counter up to a total kept elsewhere (counters only go up).
fn advance(counter: &IntCounter, total: u64) {
    let current = counter.get();
    if total > current {
        counter.inc_by(total - current);
    }
}

/// The engine keeps fsync latencies in power-of-two microsecond buckets (bucket `i` holds
/// values of bit length `i`, so below `2^i` us; the last one is open-ended): rendered here as
/// a Prometheus histogram, since the crate's histograms cannot be loaded from counts.
fn render_fsync_histogram(stats: &EngineStats, out: &mut String) {
    use std::fmt::Write;
    let name = FSYNC_HISTOGRAM;
    let _ = writeln!(
        out,
        "# HELP {name} Time of each WAL group's append and fsync.\n# TYPE {name} histogram"
    );
    let mut cumulative = 0u64;
    for (bit_length, count) in stats.sync_us_buckets[..SYNC_BUCKETS - 1].iter().enumerate() {
        cumulative += count;
        let upper_seconds = (1u64 << bit_length) as f64 / 1e6;
        let _ = writeln!(out, "{name}_bucket{{le=\"{upper_seconds}\"}} {cumulative}");
    }
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", stats.syncs);
    let _ = writeln!(out, "{name}_sum {}", stats.sync_us_sum as f64 / 1e6);
    let _ = writeln!(out, "{name}_count {}", stats.syncs);
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Grafana dashboard in `config/` is built on exactly these metric names.
    #[test]
    fn the_dashboard_uses_only_metrics_the_host_exposes() {
        let dashboard = include_str!("../../config/grafana-dashboard.json");
        let metrics = Metrics::new();
        let mut used = 0;
        for (start, _) in dashboard.match_indices("bursar_") {
            let name: String = dashboard[start..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .unwrap_or(&name);
            assert!(
                metrics.family_names.iter().any(|known| known == family),
                "the dashboard uses {name}, which the host does not expose"
            );
            used += 1;
        }
        assert!(used >= 15, "the dashboard covers the host's metrics");
    }

    /// The value of one sample line of the text format, by its name and labels.
    fn sample(text: &str, series: &str) -> f64 {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("{series} in\n{text}"))
            .parse()
            .expect("a number")
    }

    #[test]
    fn a_scrape_counts_every_request_recorded_before_it_on_any_thread() {
        let metrics = Metrics::new();
        let counts = &metrics.request_counts;
        counts.started(2);
        counts.answered("0200", "00", Duration::from_millis(3));
        std::thread::scope(|scope| {
            // A thread of its own records into a shard of its own.
            scope.spawn(|| {
                counts.started(1);
                counts.answered("0200", "51", Duration::from_millis(1));
                counts.done(1);
            });
        });
        counts.done(1);
        let text = metrics.render();
        assert_eq!(
            sample(&text, r#"bursar_requests_total{code="00",mti="0200"}"#),
            1.0
        );
        assert_eq!(
            sample(&text, r#"bursar_requests_total{code="51",mti="0200"}"#),
            1.0
        );
        let seconds = r#"bursar_request_duration_seconds_count{mti="0200"}"#;
        assert_eq!(sample(&text, seconds), 2.0);
        let sum = r#"bursar_request_duration_seconds_sum{mti="0200"}"#;
        assert!((sample(&text, sum) - 0.004).abs() < 1e-9);
        assert_eq!(sample(&text, "bursar_requests_in_flight"), 1.0);
        // A second scrape adds nothing twice.
        counts.done(1);
        let text = metrics.render();
        assert_eq!(sample(&text, seconds), 2.0);
        assert_eq!(sample(&text, "bursar_requests_in_flight"), 0.0);
    }

    #[test]
    fn a_connection_that_ends_counts_its_unanswered_requests_out_of_flight() {
        let metrics = Metrics::new();
        let mut in_flight = metrics.request_counts.connection();
        in_flight.started(3);
        in_flight.done(1);
        assert_eq!(sample(&metrics.render(), "bursar_requests_in_flight"), 2.0);
        // A failed write, or a panic, drops the two still waiting with the connection.
        drop(in_flight);
        assert_eq!(sample(&metrics.render(), "bursar_requests_in_flight"), 0.0);
    }

    #[test]
    fn fsync_histogram_is_cumulative_and_ends_at_its_count() {
        let mut stats = EngineStats {
            syncs: 3,
            sync_us_sum: 1_500,
            ..EngineStats::default()
        };
        stats.sync_us_buckets[9] = 2; // 256..511 us
        stats.sync_us_buckets[10] = 1; // 512..1023 us
        let mut text = String::new();
        render_fsync_histogram(&stats, &mut text);
        assert!(text.contains("bursar_wal_fsync_duration_seconds_bucket{le=\"0.000512\"} 2\n"));
        assert!(text.contains("bursar_wal_fsync_duration_seconds_bucket{le=\"0.001024\"} 3\n"));
        assert!(text.contains("bursar_wal_fsync_duration_seconds_bucket{le=\"+Inf\"} 3\n"));
        assert!(text.contains("bursar_wal_fsync_duration_seconds_sum 0.0015\n"));
    }
}
