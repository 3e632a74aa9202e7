//! The options of every mode that simulates a fleet against a host (`run`, `offline`): where
//! the host is, the fleet's size, and its provisioning through the admin API.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use rand::Rng;
use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use crate::fleet::{self, AdminClient, Fleet, FleetPlan};

#[derive(Debug, Args)]
pub struct FleetArgs {
    /// The host's terminal link, HOST:PORT.
    #[arg(long, default_value = "127.0.0.1:8583")]
    pub addr: SocketAddr,
    /// The host's admin API, HOST:PORT: register the fleet there first. Without it nothing
    /// is provisioned (for the echo host, which approves anyone).
    #[arg(long)]
    pub admin_addr: Option<String>,
    /// Bearer token for the admin API (or the LOADGEN_ADMIN_TOKEN environment variable).
    #[arg(long)]
    pub admin_token: Option<String>,
    /// Simulated terminals, one connection each.
    #[arg(long, default_value_t = 64)]
    pub terminals: usize,
    /// Merchants the terminals belong to, round robin (default: 8, or fewer when there are
    /// fewer terminals).
    #[arg(long)]
    pub merchants: Option<usize>,
    /// Cards the terminals charge.
    #[arg(long, default_value_t = 1024)]
    pub cards: usize,
    /// Share of terminals that MAC every message, in percent.
    #[arg(long, default_value_t = 50)]
    pub mac_percent: u8,
    /// Each card's opening deposit.
    #[arg(long, default_value = "1000000.00")]
    pub card_balance: String,
    /// Three digits in every id this run registers (default: random), so that runs against
    /// one host do not collide.
    #[arg(long)]
    pub run_id: Option<u16>,
    /// Admin API requests in flight while provisioning.
    #[arg(long, default_value_t = 16)]
    pub provision_workers: usize,
    /// Runtime worker threads (default: one per CPU).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print the report as JSON on stdout (progress still goes to stderr).
    #[arg(long)]
    pub json: bool,
}

impl FleetArgs {
    /// The fleet to simulate, with the mode's PIN threshold and offline floor limit.
    pub fn plan(
        &self,
        pin_threshold_minor: u64,
        offline_floor_limit_minor: u64,
    ) -> anyhow::Result<FleetPlan> {
        let plan = FleetPlan {
            run_id: self
                .run_id
                .unwrap_or_else(|| rand::thread_rng().gen_range(0..1000)),
            terminals: self.terminals,
            merchants: self.merchants.unwrap_or(self.terminals.min(8)),
            cards: self.cards,
            mac_percent: self.mac_percent,
            pin_threshold_minor,
            card_balance_minor: amount_arg("card-balance", &self.card_balance)?,
            offline_floor_limit_minor,
        };
        plan.validate()?;
        Ok(plan)
    }

    /// The admin API client, if `--admin-addr` is given.
    pub fn admin(&self) -> anyhow::Result<Option<AdminClient>> {
        let Some(addr) = &self.admin_addr else {
            return Ok(None);
        };
        let token = self
            .admin_token
            .clone()
            .or_else(|| std::env::var("LOADGEN_ADMIN_TOKEN").ok())
            .context("--admin-addr needs --admin-token (or LOADGEN_ADMIN_TOKEN)")?;
        Ok(Some(AdminClient::new(addr, &token)))
    }

    /// Registers the fleet through `admin`; returns how long it took, in seconds.
    pub fn provision(&self, fleet: &Fleet, admin: &AdminClient) -> anyhow::Result<f64> {
        let started = Instant::now();
        fleet::provision(fleet, admin, self.provision_workers)?;
        let seconds = started.elapsed().as_secs_f64();
        let plan = &fleet.plan;
        eprintln!(
            "provisioned run {:03}: {} merchants, {} terminals, {} cards in {seconds:.1} s",
            plan.run_id, plan.merchants, plan.terminals, plan.cards,
        );
        Ok(seconds)
    }

    /// Prints a mode's report: JSON with `--json`, else its text.
    pub fn print_report(
        &self,
        report: &impl Serialize,
        text: impl FnOnce() -> String,
    ) -> anyhow::Result<()> {
        if self.json {
            println!("{}", serde_json::to_string_pretty(report)?);
        } else {
            print!("{}", text());
        }
        Ok(())
    }
}

/// An amount option (`--{flag}`) in major units, e.g. `20.00`, as minor units.
pub fn amount_arg(flag: &str, text: &str) -> anyhow::Result<u64> {
    fleet::parse_amount(text).map_err(|e| anyhow::anyhow!("--{flag}: {e}"))
}

/// Sign-ons in progress at once, so that thousands of terminals do not overflow the host's
/// accept backlog all in the same millisecond.
const SIGN_ONS_AT_ONCE: usize = 256;

/// Spawns one task per terminal (`session(index, permit)`); each first waits for one of
/// [`SIGN_ONS_AT_ONCE`] permits, which the session gives back once it has signed on.
pub fn spawn_terminals<F, Fut>(count: usize, session: F) -> Vec<JoinHandle<Fut::Output>>
where
    F: Fn(usize, OwnedSemaphorePermit) -> Fut + Clone + Send + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: Send + 'static,
{
    let sign_ons = Arc::new(Semaphore::new(SIGN_ONS_AT_ONCE));
    (0..count)
        .map(|index| {
            let (session, sign_ons) = (session.clone(), sign_ons.clone());
            tokio::spawn(async move {
                let permit = sign_ons.acquire_owned().await.expect("never closed");
                session(index, permit).await
            })
        })
        .collect()
}
