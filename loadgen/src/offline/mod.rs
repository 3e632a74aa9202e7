//! `loadgen offline`: terminals that lost the network, then catch up (PROTOCOL.md 3.8, 3.9).
//!
//! The run provisions its fleet like `loadgen run`, reports some cards lost before the
//! terminals download the blacklist and some after, lets every terminal sell offline, then
//! releases all of them at once to upload: advices (some re-sent, some lost), the batch close,
//! and the batch upload where the close is out of balance. The time is that catch-up, from the
//! first advice to the last batch closed. With the admin API it then reads every card back and
//! checks that each sale was posted exactly once.

mod report;
mod sales;
mod terminal;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::Args;
use tokio::sync::watch;

use crate::fleet::{self, AdminClient, Fleet, FleetPlan};
use crate::fleet_args::{amount_arg, spawn_terminals, FleetArgs};
use report::{OfflineReport, Shape, Tallies, Verification};
use sales::{CardRoles, Shares};

#[derive(Debug, Args)]
pub struct OfflineArgs {
    #[command(flatten)]
    pub fleet: FleetArgs,
    /// Sales each terminal makes offline and then uploads.
    #[arg(long, default_value_t = 200)]
    pub sales: usize,
    /// Share of advices sent twice (0220, then 0221), in percent.
    #[arg(long, default_value_t = 5.0)]
    pub duplicate_percent: f64,
    /// Share of sales on blocked cards, in percent: alternately cards blocked before the
    /// terminals' blacklist download (the merchant bears the sale) and after it (charged,
    /// flagged).
    #[arg(long, default_value_t = 2.0)]
    pub blocked_percent: f64,
    /// Share of sales above the card's whole opening balance, in percent.
    #[arg(long, default_value_t = 1.0)]
    pub overdraft_percent: f64,
    /// Share of advices the terminal never sends, in percent: its batch closes out of
    /// balance and it uploads the batch (0320, then 0500 960000).
    #[arg(long, default_value_t = 1.0)]
    pub lost_percent: f64,
    /// Cards reported lost: the first half before the blacklist download, the rest after.
    #[arg(long, default_value_t = 4)]
    pub blocked_cards: usize,
    /// Terminals' offline floor limit (sales are 1.00 to 50.00; overdrafts are above it).
    #[arg(long, default_value = "100.00")]
    pub floor_limit: String,
    /// The host's UTC offset in minutes: F12/F13 of a sale are its local time there
    /// (bursar's `host.utc_offset_minutes`, 480 by default).
    #[arg(long, default_value_t = 480, allow_hyphen_values = true)]
    pub utc_offset_minutes: i32,
    /// Requests in flight per terminal during the upload.
    #[arg(long, default_value_t = 32)]
    pub depth: usize,
    /// A terminal whose next response takes longer than this gives up (its batch stays open).
    #[arg(long, default_value_t = 30_000)]
    pub timeout_ms: u64,
}

/// Where the run is: terminals wait for the next stage.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// Signing on and downloading the blacklist.
    Download,
    /// Selling offline.
    Sell,
    /// Catching up: advices, batch close, upload.
    Upload,
}

/// What every terminal shares.
pub struct Shared {
    pub addr: SocketAddr,
    pub fleet: Fleet,
    pub sales_per_terminal: usize,
    pub shares: Shares,
    pub roles: CardRoles,
    pub utc_offset_minutes: i32,
    pub depth: usize,
    pub timeout: Duration,
    /// Per card: what the run's sales charge to it, minor units.
    pub charged: Vec<AtomicU64>,
    /// Terminals through the download (or given up), and through their offline shift.
    pub downloaded: AtomicU64,
    pub prepared: AtomicU64,
    pub report: Tallies,
}

pub fn main(args: OfflineArgs) -> anyhow::Result<()> {
    let report = execute(&args)?;
    args.fleet.print_report(&report, || report.to_text())
}

impl OfflineArgs {
    fn plan(&self) -> anyhow::Result<FleetPlan> {
        let floor_limit = amount_arg("floor-limit", &self.floor_limit)?;
        // Offline sales carry no PIN.
        self.fleet.plan(0, floor_limit)
    }

    fn shares(&self) -> anyhow::Result<Shares> {
        for (name, value) in [
            ("duplicate-percent", self.duplicate_percent),
            ("blocked-percent", self.blocked_percent),
            ("overdraft-percent", self.overdraft_percent),
            ("lost-percent", self.lost_percent),
        ] {
            if !(0.0..=100.0).contains(&value) {
                bail!("--{name} must be 0 to 100");
            }
        }
        if self.blocked_percent + self.overdraft_percent > 100.0 {
            bail!("--blocked-percent and --overdraft-percent add up to more than 100");
        }
        if self.duplicate_percent + self.lost_percent > 100.0 {
            bail!("--duplicate-percent and --lost-percent add up to more than 100");
        }
        if self.blocked_percent > 0.0 && self.blocked_cards == 0 {
            bail!("--blocked-percent needs --blocked-cards above 0");
        }
        Ok(Shares {
            duplicate: self.duplicate_percent,
            blocked: self.blocked_percent,
            overdraft: self.overdraft_percent,
            lost: self.lost_percent,
        })
    }
}

/// Runs the offline shift and the catch-up, and returns the report.
pub fn execute(args: &OfflineArgs) -> anyhow::Result<OfflineReport> {
    let plan = args.plan()?;
    let shares = args.shares()?;
    if args.sales == 0 || args.sales > 999_000 {
        bail!("--sales must be 1 to 999000 (one STAN each)");
    }
    if args.blocked_cards >= args.fleet.cards {
        bail!("--blocked-cards must leave some cards active (fewer than --cards)");
    }
    if args.depth == 0 || args.depth > crate::session::IN_FLIGHT_MAX {
        bail!("--depth must be 1 to {}", crate::session::IN_FLIGHT_MAX);
    }
    crate::run::check_fd_limit(args.fleet.terminals)?;
    let admin = args.fleet.admin()?;
    let fleet = plan.fleet();
    let roles = CardRoles::new(args.fleet.cards, args.blocked_cards);
    let mut provision_s = None;
    if let Some(admin) = &admin {
        provision_s = Some(args.fleet.provision(&fleet, admin)?);
        block(&fleet, admin, roles.known())?;
    }
    let shared = Arc::new(Shared {
        addr: args.fleet.addr,
        charged: (0..fleet.cards.len()).map(|_| AtomicU64::new(0)).collect(),
        fleet,
        sales_per_terminal: args.sales,
        shares,
        roles,
        utc_offset_minutes: args.utc_offset_minutes,
        depth: args.depth,
        timeout: Duration::from_millis(args.timeout_ms.max(1)),
        downloaded: AtomicU64::new(0),
        prepared: AtomicU64::new(0),
        report: Tallies::default(),
    });
    let runtime = crate::runtime(args.fleet.threads)?;
    let elapsed = runtime.block_on(catch_up(shared.clone(), admin.as_ref()))?;
    let verification = match &admin {
        Some(admin) => Some(verify(&shared, admin, args.fleet.provision_workers)?),
        None => None,
    };
    let shape = Shape {
        terminals: args.fleet.terminals,
        sales_per_terminal: args.sales,
        depth: args.depth,
    };
    Ok(OfflineReport::new(
        shape,
        shared.report.take(),
        elapsed.as_secs_f64(),
        provision_s,
        verification,
    ))
}

/// Reports the cards `range` lost, then waits for the next whole second: a sale stamped from
/// then on is after the blocks (F12/F13 have whole seconds).
fn block(fleet: &Fleet, admin: &AdminClient, range: std::ops::Range<usize>) -> anyhow::Result<()> {
    if range.is_empty() {
        return Ok(());
    }
    for card in &fleet.cards[range] {
        admin.report_lost(&card.pan).context("blocking a card")?;
    }
    let into_second = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    std::thread::sleep(Duration::from_nanos(u64::from(1_000_000_000 - into_second)));
    Ok(())
}

/// Signs every terminal on and lets it download the blacklist; blocks the second set of
/// cards; lets every terminal sell; then releases them all at once and times the catch-up.
async fn catch_up(shared: Arc<Shared>, admin: Option<&AdminClient>) -> anyhow::Result<Duration> {
    let terminals = shared.fleet.terminals.len() as u64;
    let (stage_tx, stage_rx) = watch::channel(Stage::Download);
    let tasks = spawn_terminals(shared.fleet.terminals.len(), {
        let shared = shared.clone();
        move |index, permit| terminal::run(shared.clone(), index, stage_rx.clone(), permit)
    });
    wait_for(&shared.downloaded, terminals).await;
    if let Some(admin) = admin {
        // The admin client blocks its thread: hand this worker's tasks to another meanwhile.
        tokio::task::block_in_place(|| block(&shared.fleet, admin, shared.roles.after()))?;
    }
    stage_tx.send_replace(Stage::Sell);
    wait_for(&shared.prepared, terminals).await;
    eprintln!(
        "{} terminals hold their offline sales; uploading",
        shared.prepared.load(Ordering::Acquire)
    );
    let start = Instant::now();
    stage_tx.send_replace(Stage::Upload);
    for task in tasks {
        task.await.context("a terminal task panicked")?;
    }
    Ok(start.elapsed())
}

async fn wait_for(counter: &AtomicU64, target: u64) {
    while counter.load(Ordering::Acquire) < target {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Reads every card's balance back and compares it with its opening balance less what the
/// run charged to it; asks the host whether its book balances.
fn verify(shared: &Shared, admin: &AdminClient, workers: usize) -> anyhow::Result<Verification> {
    let opening = shared.fleet.plan.card_balance_minor as i64;
    let cards = &shared.fleet.cards;
    let as_expected = AtomicU64::new(0);
    let mismatches = Mutex::new(Vec::new());
    fleet::in_parallel(cards.len(), workers, |c| {
        let expected = opening - shared.charged[c].load(Ordering::Relaxed) as i64;
        let actual = admin.card_balance_minor(&cards[c].pan)?;
        if actual == expected {
            as_expected.fetch_add(1, Ordering::Relaxed);
        } else {
            let pan = &cards[c].pan;
            let mut mismatches = mismatches.lock().expect("no panics");
            if mismatches.len() < 10 {
                // The last four digits only: no full card number in a report.
                mismatches.push(format!(
                    "card …{}: expected {expected}, host has {actual}",
                    &pan[pan.len() - 4..]
                ));
            }
        }
        Ok(())
    })
    .context("reading card balances back")?;
    let charged: u64 = shared
        .charged
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .sum();
    Ok(Verification {
        cards_checked: cards.len() as u64,
        cards_as_expected: as_expected.into_inner(),
        mismatches: mismatches.into_inner().expect("no panics"),
        charged_to_cards: fleet::format_amount(charged),
        ledger_balanced: admin.ledger_balanced()?,
    })
}
