//! `loadgen run`: provision a fleet through the admin API, sign every terminal on, load the
//! host for `--duration` or `--count` requests, print progress each second and a report.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::fleet::FleetPlan;
use crate::fleet_args::{amount_arg, spawn_terminals, FleetArgs};
use crate::mix::Mix;
use crate::report::{progress_line, Report, RunShape};
use crate::session::{self, Budget, Pace, Shared, IN_FLIGHT_MAX};
use crate::stats::{Failure, Stats};

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub fleet: FleetArgs,
    /// Request kinds by weight: purchase, balance, refund, reversal, topup.
    #[arg(long, default_value_t = Mix::default())]
    pub mix: Mix,
    /// Closed loop: requests in flight per connection.
    #[arg(long, default_value_t = 1)]
    pub depth: usize,
    /// Open loop at this many requests per second in total, spread over the terminals
    /// (instead of the closed loop).
    #[arg(long)]
    pub rate: Option<f64>,
    /// How long to load the host: `30s`, `500ms`, `2m` (default 10s unless --count is given).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Stop after this many requests.
    #[arg(long)]
    pub count: Option<u64>,
    /// A request unanswered after this long counts as an error.
    #[arg(long, default_value_t = 5_000)]
    pub timeout_ms: u64,
    /// Cards' PIN threshold: purchases of at least this amount carry a PIN (amounts are
    /// 1.00 to 50.00; top-ups always do).
    #[arg(long, default_value = "20.00")]
    pub pin_threshold: String,
}

pub fn main(args: RunArgs) -> anyhow::Result<()> {
    let report = execute(&args)?;
    args.fleet.print_report(&report, || report.to_text())
}

impl RunArgs {
    fn plan(&self) -> anyhow::Result<FleetPlan> {
        let pin_threshold = amount_arg("pin-threshold", &self.pin_threshold)?;
        self.fleet.plan(pin_threshold, 0)
    }

    fn pace(&self) -> anyhow::Result<Pace> {
        match self.rate {
            Some(rate) if !(rate.is_finite() && rate > 0.0) => {
                bail!("--rate must be a number of requests per second above zero")
            }
            Some(rate) => Ok(Pace::Open {
                interval: Duration::from_secs_f64(self.fleet.terminals as f64 / rate),
            }),
            None if (1..=IN_FLIGHT_MAX).contains(&self.depth) => {
                Ok(Pace::Closed { depth: self.depth })
            }
            None => bail!("--depth must be 1 to {IN_FLIGHT_MAX}"),
        }
    }
}

/// Runs the load and returns its report.
pub fn execute(args: &RunArgs) -> anyhow::Result<Report> {
    let plan = args.plan()?;
    let pace = args.pace()?;
    if args.count == Some(0) {
        bail!("--count must be above zero");
    }
    let duration = match (args.duration, args.count) {
        (Some(duration), _) => Some(duration),
        (None, Some(_)) => None,
        (None, None) => Some(Duration::from_secs(10)),
    };
    check_fd_limit(args.fleet.terminals)?;
    let fleet = plan.fleet();
    if let Some(admin) = args.fleet.admin()? {
        args.fleet.provision(&fleet, &admin)?;
    }
    let shape = RunShape {
        terminals: args.fleet.terminals,
        depth: matches!(pace, Pace::Closed { .. }).then_some(args.depth),
        target_rate_per_s: args.rate,
        mix: args.mix.to_string(),
    };
    let shared = Arc::new(Shared {
        addr: args.fleet.addr,
        fleet,
        mix: args.mix.clone(),
        pace,
        timeout: Duration::from_millis(args.timeout_ms.max(1)),
        stats: Stats::default(),
        budget: Budget::new(args.count),
        ready: AtomicU64::new(0),
        in_flight: AtomicU64::new(0),
        stop: CancellationToken::new(),
    });
    let runtime = crate::runtime(args.fleet.threads)?;
    let elapsed = runtime.block_on(load(shared.clone(), duration))?;
    Ok(Report::new(shape, &shared.stats, elapsed))
}

async fn load(shared: Arc<Shared>, duration: Option<Duration>) -> anyhow::Result<Duration> {
    let terminals = shared.fleet.terminals.len();
    let (start_tx, start_rx) = watch::channel(None);
    let sessions = spawn_terminals(terminals, {
        let shared = shared.clone();
        move |index, permit| session::run(shared.clone(), index, start_rx.clone(), permit)
    });
    while shared.ready.load(Ordering::Acquire) < terminals as u64 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let refused: u64 = shared
        .stats
        .failures()
        .iter()
        .filter(|(f, _)| matches!(f, Failure::Connect | Failure::SignOn))
        .map(|(_, n)| n)
        .sum();
    if refused == terminals as u64 {
        shared.stop.cancel();
        bail!(
            "no terminal could connect and sign on at {} ({refused} refused): is the host \
             running there, and were the terminals provisioned (--admin-addr)?",
            shared.addr
        );
    }
    eprintln!(
        "{} of {terminals} terminals signed on; loading",
        terminals as u64 - refused
    );
    let start = Instant::now();
    start_tx.send_replace(Some(start));
    if let Some(duration) = duration {
        let stop = shared.stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(start + duration).await;
            stop.cancel();
        });
    }
    let progress = tokio::spawn(progress(shared.clone(), start));
    for session in sessions {
        session.await.context("a terminal task panicked")?;
    }
    let elapsed = start.elapsed();
    progress.abort();
    Ok(elapsed)
}

/// One line a second on stderr.
async fn progress(shared: Arc<Shared>, start: Instant) {
    let mut tick = tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    let (mut last_answered, mut last_at) = (0, start);
    loop {
        let now = tick.tick().await;
        let answered = shared.stats.answered_total();
        let rate = (answered - last_answered) as f64 / (now - last_at).as_secs_f64();
        eprintln!(
            "{}",
            progress_line(
                now - start,
                answered,
                rate,
                &shared.stats.take_window(),
                shared.in_flight.load(Ordering::Relaxed),
                shared.stats.failures_total(),
            )
        );
        (last_answered, last_at) = (answered, now);
    }
}

/// `30s`, `500ms`, `2m`, or a number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((text, "s"), |i| text.split_at(i));
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 30s, 500ms or 2m"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("`{text}`: the unit must be ms, s or m")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("`{text}` is out of range"))
}

/// Each connection is a file descriptor: fail early, with the fix, rather than with
/// "too many open files" in the middle of a run. (Raising the soft limit is the shell's job,
/// `ulimit -n`, as benches/e2e.sh does: no unsafe `setrlimit` here.)
pub fn check_fd_limit(connections: usize) -> anyhow::Result<()> {
    let Ok(limits) = std::fs::read_to_string("/proc/self/limits") else {
        return Ok(());
    };
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|n| n.parse::<usize>().ok());
    // Connections, plus the runtime's own descriptors and the admin client's sockets.
    let needed = connections + 64;
    match soft {
        Some(soft) if soft < needed => bail!(
            "{connections} connections need about {needed} file descriptors, but the limit is \
             {soft}: raise it first (`ulimit -n {needed}`)"
        ),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("10h").is_err());
        assert!(parse_duration("fast").is_err());
    }
}
