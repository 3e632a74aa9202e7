//! Prometheus metrics, named by its conventions (`_total`, `_seconds`, base units). One
//! registry per host, so tests can run several hosts in one process.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

pub struct Metrics {
    pub registry: Registry,
    pub requests: IntCounterVec,
    pub request_seconds: HistogramVec,
    pub in_flight: IntGauge,
    pub connections_open: IntGauge,
    pub connections_rejected: IntCounter,
    pub frames_rejected: IntCounterVec,
    pub messages_dropped: IntCounter,
    pub wal_group_events: Histogram,
    pub wal_sync_seconds: Histogram,
    pub ledger_transfers: IntCounterVec,
    pub business_day: IntGauge,
    pub recovery_seconds: prometheus::Gauge,
    pub blacklist_version: IntGauge,
    pub bank_link_state: IntGaugeVec,
    pub saf_depth: IntGauge,
}

fn latency_buckets() -> Vec<f64> {
    // 50 us to 5 s: a host answers in well under a millisecond until the disk says otherwise.
    vec![
        0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
        1.0, 2.5, 5.0,
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
        let wal_group_events = Histogram::with_opts(
            HistogramOpts::new(
                "bursar_wal_group_events",
                "Events written per WAL group (one fsync each).",
            )
            .buckets(vec![
                1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0,
            ]),
        )
        .expect("valid metric");
        let wal_sync_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "bursar_wal_fsync_duration_seconds",
                "Time of each WAL group's write and fsync.",
            )
            .buckets(latency_buckets()),
        )
        .expect("valid metric");
        let ledger_transfers = IntCounterVec::new(
            Opts::new(
                "bursar_ledger_transfers_total",
                "Transfers posted to the ledger, by kind.",
            ),
            &["kind"],
        )
        .expect("valid metric");
        let business_day =
            IntGauge::new("bursar_business_day", "Current business day as YYYYMMDD.")
                .expect("valid metric");
        let recovery_seconds = prometheus::Gauge::new(
            "bursar_recovery_duration_seconds",
            "Time the last start-up spent recovering.",
        )
        .expect("valid metric");
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
        for collector in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(request_seconds.clone()),
            Box::new(in_flight.clone()),
            Box::new(connections_open.clone()),
            Box::new(connections_rejected.clone()),
            Box::new(frames_rejected.clone()),
            Box::new(messages_dropped.clone()),
            Box::new(wal_group_events.clone()),
            Box::new(wal_sync_seconds.clone()),
            Box::new(ledger_transfers.clone()),
            Box::new(business_day.clone()),
            Box::new(recovery_seconds.clone()),
            Box::new(blacklist_version.clone()),
            Box::new(bank_link_state.clone()),
            Box::new(saf_depth.clone()),
        ] {
            registry
                .register(collector)
                .expect("metric names are unique");
        }
        Metrics {
            registry,
            requests,
            request_seconds,
            in_flight,
            connections_open,
            connections_rejected,
            frames_rejected,
            messages_dropped,
            wal_group_events,
            wal_sync_seconds,
            ledger_transfers,
            business_day,
            recovery_seconds,
            blacklist_version,
            bank_link_state,
            saf_depth,
        }
    }

    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .expect("text encoding cannot fail");
        String::from_utf8(buffer).expect("text format is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
