//! Start-up and shutdown: recover the state, seed a fresh host, open the listeners, and on
//! SIGTERM or Ctrl-C drain the requests in flight and stop the engine (which flushes the WAL).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use ledger::engine::{Engine, EngineConfig, ThreadStart};
use ledger::sled_wal::SledWal;
use ledger::snapshot::SnapshotStore;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::clock::{next_day, now_ms, parse_hh_mm, DateTime};
use crate::config::Config;
use crate::metrics::{Metrics, StateGauges};
use crate::policy::Policy;
use crate::state::HostState;

/// Everything a request handler needs, shared by all tasks.
pub struct Host {
    pub config: Config,
    pub policy: Arc<Policy>,
    pub engine: Engine<HostState>,
    pub metrics: Arc<Metrics>,
    pub terminal_tls: Option<TlsAcceptor>,
    pub bank: crate::bank::BankLink,
    pub day_close: crate::day::DayCloser,
}

impl Host {
    /// Reads the engine's counters and the state's gauges into the metrics (at each scrape).
    pub async fn refresh_metrics(&self) {
        self.metrics.observe_engine(&self.engine.stats());
        let read = self.engine.execute(|tx| {
            let state = tx.state();
            StateGauges {
                transfers: state.book.transfers() as u64,
                accounts: state.book.accounts() as u64,
                blacklist_version: state.blacklist.version(),
                business_day: state.business_day.0,
            }
        });
        // A stopped engine leaves the last values: the scrape still answers.
        if let Ok(gauges) = read.await {
            self.metrics.observe_state(&gauges);
        }
    }
}

/// What the admin listener serves before recovery has finished: liveness, metrics, and
/// `/readyz` = 503 until the host is set.
pub struct Shared {
    pub host: OnceLock<Arc<Host>>,
    pub ready: AtomicBool,
    pub metrics: Arc<Metrics>,
    pub tokens: Vec<(String, String)>,
}

pub async fn run(config: Config) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::new());
    let workers = tokio::runtime::Handle::current().metrics().num_workers();
    metrics.runtime_workers.set(workers as i64);
    let shared = Arc::new(Shared {
        host: OnceLock::new(),
        ready: AtomicBool::new(false),
        metrics: metrics.clone(),
        tokens: config
            .admin
            .tokens
            .iter()
            .map(|(name, token)| (name.clone(), token.clone()))
            .collect(),
    });
    let shutdown = CancellationToken::new();

    // The admin listener comes first so that /healthz and /readyz answer during recovery.
    let admin_listener = TcpListener::bind(config.admin.addr)
        .await
        .with_context(|| format!("cannot listen for the admin API on {}", config.admin.addr))?;
    info!(addr = %admin_listener.local_addr()?, "admin API listening");
    let admin_task = tokio::spawn(crate::admin::serve(
        admin_listener,
        shared.clone(),
        shutdown.clone(),
    ));

    let terminal_tls = match (
        &config.terminal_link.tls_cert,
        &config.terminal_link.tls_key,
    ) {
        (Some(cert), Some(key)) => Some(crate::link::tls::acceptor(cert, key)?),
        _ => None,
    };
    let bank_tls = crate::bank::tls::connector(&config.bank)?;
    let policy = Arc::new(Policy::from_config(&config));
    let engine = recover(&config, &metrics).await?;
    let bank = crate::bank::BankLink::new(config.bank.addr.is_some(), config.bank.max_in_flight);
    let host = Arc::new(Host {
        config,
        policy,
        engine,
        metrics: metrics.clone(),
        terminal_tls,
        bank,
        day_close: crate::day::DayCloser::default(),
    });
    initialise(&host).await?;
    let bank_tasks = start_bank(&host, bank_tls, &shutdown).await?;

    let terminal_listener = TcpListener::bind(host.config.terminal_link.addr)
        .await
        .with_context(|| {
            format!(
                "cannot listen for terminals on {}",
                host.config.terminal_link.addr
            )
        })?;
    info!(addr = %terminal_listener.local_addr()?, "terminal link listening");
    let terminal_task = tokio::spawn(crate::link::terminal::serve(
        terminal_listener,
        host.clone(),
        shutdown.clone(),
    ));

    let _ = shared.host.set(host.clone());
    shared.ready.store(true, Ordering::Release);
    info!("ready");

    wait_for_signal().await;
    info!("shutting down: draining requests in flight");
    shared.ready.store(false, Ordering::Release);
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), terminal_task).await;
    let _ = admin_task.await;
    for task in bank_tasks {
        let _ = task.await;
    }
    // Every request answered so far was durable; this waits for the ones still in a group.
    host.engine.shutdown();
    info!("stopped");
    Ok(())
}

/// What the commit threads do first: ask for their short slice (`crate::scheduling`).
fn commit_thread_start(slice_us: u32) -> Option<ThreadStart> {
    if slice_us == 0 {
        return None;
    }
    let slice = Duration::from_micros(slice_us.into());
    Some(ThreadStart(Arc::new(move || {
        if let Err(error) = crate::scheduling::prompt_commit_thread(slice) {
            let thread = std::thread::current();
            warn!(
                thread = thread.name().unwrap_or("?"),
                %error,
                "cannot give the commit thread its short slice: it keeps the host's policy"
            );
        }
    })))
}

async fn recover(config: &Config, metrics: &Metrics) -> anyhow::Result<Engine<HostState>> {
    let data_dir = config.host.data_dir.clone();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
    let engine_config = EngineConfig {
        group_max_events: config.ledger.group_max_events,
        group_wait: Duration::from_micros(config.ledger.group_wait_us),
        snapshot_every_records: config.ledger.snapshot_every_records,
        commit_thread_start: commit_thread_start(config.host.commit_thread_slice_us),
        ..EngineConfig::default()
    };
    let (engine, report) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let wal = SledWal::open(data_dir.join("wal")).context("cannot open the write-ahead log")?;
        let snapshots = SnapshotStore::open(data_dir.join("snapshots"))
            .context("cannot open the snapshot dir")?;
        Engine::open(
            Box::new(wal),
            Some(snapshots),
            engine_config,
            HostState::default,
        )
        .context("recovery failed: the host will not start on a damaged log")
    })
    .await??;
    metrics.recovery_seconds.set(report.duration.as_secs_f64());
    info!(?report, "recovered");
    Ok(engine)
}

/// A fresh data directory gets its genesis (and demo data when asked for).
async fn initialise(host: &Arc<Host>) -> anyhow::Result<()> {
    let now = now_ms();
    let local = DateTime::from_epoch_ms(now, host.config.host.utc_offset_minutes);
    let cutover = parse_hh_mm(&host.config.host.cutover_time).expect("validated cut-over time");
    // Started after today's cut-over: today's business is over, the first day is tomorrow
    // (otherwise the day would close at once, empty).
    let today = if local.minutes_of_day() >= cutover {
        next_day(local.business_day())
    } else {
        local.business_day()
    };
    let demo = host.config.demo.seed;
    let policy = host.policy.clone();
    let seeded = host
        .engine
        .execute(move |tx| {
            if tx.state().system.is_some() {
                return Ok(false);
            }
            crate::ops::genesis::genesis(tx, today);
            if demo {
                crate::demo::seed(tx, &policy, now)?;
            }
            Ok::<bool, crate::ops::OpError>(true)
        })
        .await
        .context("engine stopped during start-up")?
        .context("seeding the demo data failed")?;
    if seeded {
        info!(demo, "fresh data directory initialised");
    }
    let day = host.engine.execute(|tx| tx.state().business_day).await?;
    host.metrics.business_day.set(day.0 as i64);
    Ok(())
}

/// The bank side: top-ups left without an answer by the last stop are reversed, days closed
/// but not yet published are published, then the link, the SAF sender and the day's clock.
async fn start_bank(
    host: &Arc<Host>,
    tls: Option<tokio_rustls::TlsConnector>,
    shutdown: &CancellationToken,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let policy = host.policy.clone();
    let now = now_ms();
    let reversed = host
        .engine
        .execute(move |tx| crate::bank::topup::recover_pending(tx, &policy, now))
        .await?;
    if reversed > 0 {
        info!(
            reversed,
            "top-ups unanswered at the last stop: answered 91, reversals queued"
        );
    }
    crate::day::recover(host).await?;
    host.bank
        .set_state(crate::bank::LinkState::Down, &host.metrics);
    Ok(vec![
        tokio::spawn(crate::bank::session::run(
            host.clone(),
            tls,
            shutdown.clone(),
        )),
        tokio::spawn(crate::bank::saf::run(host.clone(), shutdown.clone())),
        tokio::spawn(crate::day::schedule(host.clone(), shutdown.clone())),
    ])
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
