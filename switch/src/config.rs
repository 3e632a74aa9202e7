//! The host's configuration: a TOML file (defaults in `config/bursar.toml`) with command-line
//! overrides. Every key has a default, so an empty file is a working configuration.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::scheduling::CpuScheduling;

/// A configuration error names the key, so the operator can fix the file in one go.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("invalid config key `{key}`: {message}")]
    Invalid { key: &'static str, message: String },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub host: HostConfig,
    pub terminal_link: TerminalLinkConfig,
    pub admin: AdminConfig,
    pub bank: BankConfig,
    pub ledger: LedgerConfig,
    pub security: SecurityConfig,
    pub cards: CardsConfig,
    pub demo: DemoConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HostConfig {
    /// Institution id (F32 on the bank link; in clearing file names).
    pub institution_id: String,
    /// ISO 4217 numeric currency: F49 must equal it when present.
    pub currency: String,
    /// Offset of local time from UTC, for business dates and the day's cut-over.
    pub utc_offset_minutes: i32,
    /// Local time of the daily cut-over, `HH:MM`.
    pub cutover_time: String,
    pub data_dir: PathBuf,
    pub outbox_dir: PathBuf,
    /// How the kernel schedules the host's threads (`crate::scheduling`).
    pub cpu_scheduling: CpuScheduling,
    /// The two commit threads (ledger engine, WAL writer) run `SCHED_OTHER` asking for a
    /// slice of this many microseconds, so that a hand-off to them preempts
    /// (`crate::scheduling`); 0 leaves them under `cpu_scheduling`. 100 to 100,000.
    pub commit_thread_slice_us: u32,
    /// tokio worker threads (the connections, the admin API, the bank link); 0: one per CPU
    /// the host may use ([`HostConfig::workers`]).
    pub worker_threads: usize,
}

/// More workers than this is a typo, not a machine.
const WORKER_THREADS_MAX: usize = 1024;

impl HostConfig {
    /// The tokio workers to start: `worker_threads`, or when 0 one per CPU the process may use
    /// (its affinity and quota: `available_parallelism`), as tokio would. On two CPUs one
    /// worker answers 4-9 % more at the closed loop's peak but makes the open loop's tail
    /// worse: every connection then waits for the one thread (docs/BENCHMARKS.md).
    pub fn workers(&self) -> usize {
        match self.worker_threads {
            0 => std::thread::available_parallelism().map_or(1, |cpus| cpus.get()),
            configured => configured,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TerminalLinkConfig {
    pub addr: SocketAddr,
    pub max_frame_bytes: usize,
    pub max_connections: usize,
    pub max_in_flight_per_connection: usize,
    pub idle_timeout_ms: u64,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Blacklist entries per 0810 page; bounded by what fits in F48 (LLL 999).
    pub blacklist_page_entries: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    pub addr: SocketAddr,
    /// Bearer tokens by operator name; `BURSAR_ADMIN_TOKEN` adds one named `env`.
    pub tokens: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BankConfig {
    /// The partner bank's host; no address means no bank link (top-ups answer `91`).
    pub addr: Option<String>,
    pub timeout_ms: u64,
    pub echo_interval_ms: u64,
    pub max_in_flight: usize,
    /// First reconnect delay after the link went down; doubles up to `reconnect_max_ms`.
    pub reconnect_min_ms: u64,
    pub reconnect_max_ms: u64,
    /// Advices (reversals, clearing hand-offs) waiting at most; beyond it top-ups answer `91`.
    pub saf_depth_max: usize,
    /// TLS: the bank's CA (PEM). Set it to use TLS; add a client certificate and key for
    /// mutual TLS. `tls_server_name` defaults to the host part of `addr`.
    pub tls_ca: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_server_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LedgerConfig {
    pub group_max_events: usize,
    pub group_wait_us: u64,
    pub snapshot_every_records: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// Key (64 hex digits) under which PIN verification values are computed.
    pub pin_verification_key: String,
    pub pin_tries_max: u8,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CardKindDefaults {
    pub per_txn: String,
    pub daily_amount: String,
    pub daily_count: u32,
    pub pin_threshold: String,
}

/// A `[cards.<kind>]` table as written: a key left out keeps that kind's own default (not
/// another kind's), which is why the tables are read through this.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PartialKindDefaults {
    per_txn: Option<String>,
    daily_amount: Option<String>,
    daily_count: Option<u32>,
    pin_threshold: Option<String>,
}

impl PartialKindDefaults {
    fn over(self, defaults: CardKindDefaults) -> CardKindDefaults {
        CardKindDefaults {
            per_txn: self.per_txn.unwrap_or(defaults.per_txn),
            daily_amount: self.daily_amount.unwrap_or(defaults.daily_amount),
            daily_count: self.daily_count.unwrap_or(defaults.daily_count),
            pin_threshold: self.pin_threshold.unwrap_or(defaults.pin_threshold),
        }
    }
}

macro_rules! kind_table {
    ($name:ident, $kind:ident) => {
        fn $name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<CardKindDefaults, D::Error> {
            PartialKindDefaults::deserialize(d).map(|p| p.over(CardsConfig::default().$kind))
        }
    };
}
kind_table!(student_table, student);
kind_table!(staff_table, staff);
kind_table!(temporary_table, temporary);

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CardsConfig {
    #[serde(deserialize_with = "student_table")]
    pub student: CardKindDefaults,
    #[serde(deserialize_with = "staff_table")]
    pub staff: CardKindDefaults,
    #[serde(deserialize_with = "temporary_table")]
    pub temporary: CardKindDefaults,
    pub replacement_fee: String,
    /// What a cancelled card's balance becomes: `forfeit` or `cash_desk` (paid out).
    pub cancel_balance_to: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DemoConfig {
    /// Register the demo merchants, terminals and cards on a fresh data directory.
    pub seed: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            host: HostConfig::default(),
            terminal_link: TerminalLinkConfig::default(),
            admin: AdminConfig::default(),
            bank: BankConfig::default(),
            ledger: LedgerConfig::default(),
            security: SecurityConfig::default(),
            cards: CardsConfig::default(),
            demo: DemoConfig { seed: false },
        }
    }
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            institution_id: "00000001".into(),
            currency: "156".into(),
            utc_offset_minutes: 480,
            cutover_time: "23:00".into(),
            data_dir: "data".into(),
            outbox_dir: "outbox".into(),
            cpu_scheduling: CpuScheduling::Batch,
            commit_thread_slice_us: 100,
            worker_threads: 0,
        }
    }
}

impl Default for TerminalLinkConfig {
    fn default() -> Self {
        TerminalLinkConfig {
            addr: "127.0.0.1:8583".parse().expect("literal address"),
            max_frame_bytes: 4096,
            max_connections: 10_000,
            max_in_flight_per_connection: 64,
            idle_timeout_ms: 300_000,
            tls_cert: None,
            tls_key: None,
            blacklist_page_entries: 50,
        }
    }
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            addr: "127.0.0.1:8080".parse().expect("literal address"),
            tokens: BTreeMap::new(),
        }
    }
}

impl Default for BankConfig {
    fn default() -> Self {
        BankConfig {
            addr: None,
            timeout_ms: 3_000,
            echo_interval_ms: 30_000,
            max_in_flight: 256,
            reconnect_min_ms: 500,
            reconnect_max_ms: 30_000,
            saf_depth_max: 100_000,
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
            tls_server_name: None,
        }
    }
}

impl Default for LedgerConfig {
    fn default() -> Self {
        LedgerConfig {
            group_max_events: 4096,
            group_wait_us: 0,
            snapshot_every_records: 1_000_000,
        }
    }
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            pin_verification_key: String::new(),
            pin_tries_max: 3,
        }
    }
}

impl Default for CardKindDefaults {
    fn default() -> Self {
        CardKindDefaults {
            per_txn: "500.00".into(),
            daily_amount: "1000.00".into(),
            daily_count: 50,
            pin_threshold: "100.00".into(),
        }
    }
}

impl Default for CardsConfig {
    fn default() -> Self {
        CardsConfig {
            student: CardKindDefaults::default(),
            staff: CardKindDefaults {
                per_txn: "2000.00".into(),
                daily_amount: "5000.00".into(),
                daily_count: 100,
                pin_threshold: "200.00".into(),
            },
            temporary: CardKindDefaults {
                per_txn: "100.00".into(),
                daily_amount: "200.00".into(),
                daily_count: 20,
                pin_threshold: "50.00".into(),
            },
            replacement_fee: "0.00".into(),
            cancel_balance_to: "forfeit".into(),
        }
    }
}

impl Config {
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Syntax {
            path: path.to_owned(),
            message: one_line(&e.to_string()),
        })
    }

    /// Checks what serde cannot: formats, ranges, and that amounts parse.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: &str| {
            Err(ConfigError::Invalid {
                key,
                message: message.to_owned(),
            })
        };
        let slice = self.host.commit_thread_slice_us;
        if slice != 0 && !(100..=100_000).contains(&slice) {
            return invalid(
                "host.commit_thread_slice_us",
                "must be 0 (off) or 100 to 100000 (the kernel's range of slices)",
            );
        }
        if self.host.worker_threads > WORKER_THREADS_MAX {
            return invalid("host.worker_threads", "must be 0 (one per CPU) to 1024");
        }
        if self.host.institution_id.is_empty()
            || self.host.institution_id.len() > 11
            || !self.host.institution_id.bytes().all(|b| b.is_ascii_digit())
        {
            return invalid("host.institution_id", "must be 1 to 11 digits");
        }
        if self.host.currency.len() != 3 || !self.host.currency.bytes().all(|b| b.is_ascii_digit())
        {
            return invalid(
                "host.currency",
                "must be an ISO 4217 numeric code, 3 digits",
            );
        }
        if !(-14 * 60..=14 * 60).contains(&self.host.utc_offset_minutes) {
            return invalid("host.utc_offset_minutes", "must be within -840..=840");
        }
        if crate::clock::parse_hh_mm(&self.host.cutover_time).is_none() {
            return invalid("host.cutover_time", "must be HH:MM");
        }
        let link = &self.terminal_link;
        if !(64..=65_535).contains(&link.max_frame_bytes) {
            return invalid("terminal_link.max_frame_bytes", "must be within 64..=65535");
        }
        if link.max_connections == 0 {
            return invalid("terminal_link.max_connections", "must be at least 1");
        }
        if link.max_in_flight_per_connection == 0 {
            return invalid(
                "terminal_link.max_in_flight_per_connection",
                "must be at least 1",
            );
        }
        if link.tls_cert.is_some() != link.tls_key.is_some() {
            return invalid("terminal_link.tls_cert", "tls_cert and tls_key go together");
        }
        if !(1..=50).contains(&link.blacklist_page_entries) {
            return invalid(
                "terminal_link.blacklist_page_entries",
                "must be within 1..=50 (F48 holds 999 bytes)",
            );
        }
        if self.bank.timeout_ms == 0 {
            return invalid("bank.timeout_ms", "must be at least 1");
        }
        if self.bank.echo_interval_ms == 0 || self.bank.max_in_flight == 0 {
            return invalid(
                "bank.echo_interval_ms",
                "echo_interval_ms and max_in_flight must be at least 1",
            );
        }
        if self.bank.reconnect_min_ms == 0
            || self.bank.reconnect_max_ms < self.bank.reconnect_min_ms
        {
            return invalid(
                "bank.reconnect_min_ms",
                "must be at least 1 and at most reconnect_max_ms",
            );
        }
        if self.bank.saf_depth_max == 0 {
            return invalid("bank.saf_depth_max", "must be at least 1");
        }
        if self.bank.tls_cert.is_some() != self.bank.tls_key.is_some()
            || (self.bank.tls_cert.is_some() && self.bank.tls_ca.is_none())
        {
            return invalid(
                "bank.tls_cert",
                "tls_cert and tls_key go together, and need tls_ca",
            );
        }
        if self.ledger.group_max_events == 0 {
            return invalid("ledger.group_max_events", "must be at least 1");
        }
        if self.ledger.snapshot_every_records == 0 {
            return invalid("ledger.snapshot_every_records", "must be at least 1");
        }
        let key = &self.security.pin_verification_key;
        if !key.is_empty() && (key.len() != 64 || hex::decode(key).is_err()) {
            return invalid("security.pin_verification_key", "must be 64 hex digits");
        }
        if self.security.pin_tries_max == 0 {
            return invalid("security.pin_tries_max", "must be at least 1");
        }
        for (key, kind) in [
            ("cards.student", &self.cards.student),
            ("cards.staff", &self.cards.staff),
            ("cards.temporary", &self.cards.temporary),
        ] {
            for amount in [&kind.per_txn, &kind.daily_amount, &kind.pin_threshold] {
                if crate::money::parse_amount(amount).is_err() {
                    return invalid(key, &format!("`{amount}` is not an amount like \"12.34\""));
                }
            }
        }
        if crate::money::parse_amount(&self.cards.replacement_fee).is_err() {
            return invalid("cards.replacement_fee", "must be an amount like \"5.00\"");
        }
        if !matches!(
            self.cards.cancel_balance_to.as_str(),
            "forfeit" | "cash_desk"
        ) {
            return invalid(
                "cards.cancel_balance_to",
                "must be `forfeit` or `cash_desk`",
            );
        }
        for (name, token) in &self.admin.tokens {
            // The name goes into every audit entry the token makes.
            if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
                return Err(ConfigError::Invalid {
                    key: "admin.tokens",
                    message: format!("token name `{name}` must be 1 to 64 characters"),
                });
            }
            if token.len() < 16 {
                return Err(ConfigError::Invalid {
                    key: "admin.tokens",
                    message: format!("token `{name}` must be at least 16 characters"),
                });
            }
        }
        Ok(())
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_kind_table_keeps_that_kinds_defaults() {
        let config: Config =
            toml::from_str("[cards.temporary]\nper_txn = \"7.00\"\n").expect("parses");
        assert_eq!(config.cards.temporary.per_txn, "7.00");
        assert_eq!(config.cards.temporary.daily_amount, "200.00");
        assert_eq!(config.cards.temporary.daily_count, 20);
        assert_eq!(config.cards.staff.per_txn, "2000.00");
        assert!(toml::from_str::<Config>("[cards.staff]\nweekly = \"1.00\"\n").is_err());
    }

    #[test]
    fn workers_are_as_configured_or_one_per_cpu() {
        let mut config = Config::default();
        assert_eq!(config.host.worker_threads, 0);
        let cpus = std::thread::available_parallelism().expect("this machine's CPUs");
        assert_eq!(config.host.workers(), cpus.get());
        config.host.worker_threads = 3;
        assert_eq!(config.host.workers(), 3);
        config.host.worker_threads = 1025;
        let error = config.validate().expect_err("too many").to_string();
        assert!(error.contains("host.worker_threads"), "{error}");
    }

    #[test]
    fn the_commit_threads_slice_is_off_or_within_the_kernels_range() {
        let with_slice = |slice: u32| {
            let mut config = Config::default();
            config.host.commit_thread_slice_us = slice;
            config.validate()
        };
        assert_eq!(Config::default().host.commit_thread_slice_us, 100);
        for fine in [0, 100, 3_000, 100_000] {
            assert!(with_slice(fine).is_ok(), "{fine}");
        }
        for refused in [1, 99, 100_001] {
            let error = with_slice(refused).expect_err("out of range").to_string();
            assert!(error.contains("host.commit_thread_slice_us"), "{error}");
        }
    }
}
