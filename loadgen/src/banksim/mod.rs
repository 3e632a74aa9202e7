//! `banksim`: the partner bank's host, simulated (PROTOCOL.md 4), for the demo and the tests.
//!
//! It accepts the host's link, answers sign-on and echo, approves top-ups while the bank
//! account has the money (declining `51` beyond it), applies reversal advices once each,
//! checks a clearing 0500 against the file it names, and does what its control port tells
//! it (`control`): delay, drop or refuse, send a cutover, report what it saw.
//!
//! - `bank`: the accounts and what was received (pure state, no I/O);
//! - `link`: the ISO 8583 side (TCP, or TLS with `tls`); `control`: the line protocol;
//!   `clearing`: the file check.

pub mod bank;
pub mod clearing;
pub mod control;
pub mod link;
pub mod tls;

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use tokio::net::TcpListener;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "banksim",
    about = "The partner bank's host, simulated: accepts Bursar's bank link"
)]
pub struct Args {
    /// Where the host connects, HOST:PORT.
    #[arg(long, default_value = "127.0.0.1:9583")]
    pub listen: SocketAddr,
    /// Control port (line protocol: `help` lists the commands), HOST:PORT.
    #[arg(long, default_value = "127.0.0.1:9584")]
    pub control: SocketAddr,
    /// Balance of every bank account not set otherwise, in minor units.
    #[arg(long, default_value_t = 1_000_000)]
    pub default_balance: u64,
    /// `ACCOUNT=MINOR`: the balance of one bank account (repeatable).
    #[arg(long = "balance", value_parser = parse_balance)]
    pub balances: Vec<(String, u64)>,
    /// Where the host publishes its clearing files (its `outbox_dir`): 0500s are checked
    /// against the files there.
    #[arg(long, default_value = "outbox")]
    pub outbox_dir: PathBuf,
    /// TLS: the bank's certificate (PEM). With it and `--tls-key` the link is TLS 1.3.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS: the bank's private key (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Mutual TLS: the CA (PEM) that must have signed the host's client certificate; a host
    /// without one is refused.
    #[arg(long, requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
}

fn parse_balance(text: &str) -> Result<(String, u64), String> {
    let (account, minor) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not ACCOUNT=MINOR"))?;
    let minor = minor
        .parse()
        .map_err(|_| format!("`{minor}` is not an amount in minor units"))?;
    Ok((account.to_owned(), minor))
}

/// State shared by the link and the control port.
pub struct Sim {
    pub bank: Mutex<bank::Bank>,
    pub connections: link::Connections,
    pub outbox_dir: PathBuf,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let mut bank = bank::Bank::new(args.default_balance);
    for (account, minor) in &args.balances {
        bank.set_balance(account, *minor);
    }
    let sim = Arc::new(Sim {
        bank: Mutex::new(bank),
        connections: link::Connections::default(),
        outbox_dir: args.outbox_dir.clone(),
    });
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(tls::acceptor(cert, key, args.tls_client_ca.as_deref())?),
        _ => None,
    };
    let link_listener = bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let control_listener = bind(args.control)
        .await
        .with_context(|| format!("cannot listen for control on {}", args.control))?;
    println!(
        "banksim: bank link on {} ({}), control on {}",
        link_listener.local_addr()?,
        if tls.is_some() { "TLS" } else { "TCP" },
        control_listener.local_addr()?
    );
    tokio::select! {
        result = link::serve(link_listener, tls, sim.clone()) => result,
        result = control::serve(control_listener, sim) => result,
    }
}

/// Binds `addr`, trying again for a few seconds while it is in use. Whoever starts banksim
/// (the end-to-end tests) picks a port that was free a moment before and configures the host
/// with it; meanwhile another process's client connection can take it as its source port
/// for as long as that connection lives.
async fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    const PATIENCE: Duration = Duration::from_secs(10);
    let started = Instant::now();
    loop {
        match TcpListener::bind(addr).await {
            Err(error)
                if error.kind() == io::ErrorKind::AddrInUse && started.elapsed() < PATIENCE =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            bound => return bound,
        }
    }
}
