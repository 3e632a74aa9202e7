//! `bursar-admin`: the operator's command line over the admin API (PROTOCOL.md 8). Every
//! command is one or more API calls; nothing here touches the host's data directly.
//! Exit codes: 0 done, 1 refused or some rows rejected, 2 usage or the host unreachable.

pub mod bulk;
pub mod client;
pub mod csv;
pub mod progress;

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use serde_json::{json, Value};

use client::Client;

#[derive(Debug, Parser)]
#[command(
    name = "bursar-admin",
    version,
    about = "Operator commands for a Bursar host, over its admin API"
)]
pub struct Args {
    /// The admin API, e.g. http://127.0.0.1:8080 (or BURSAR_ADMIN_URL).
    #[arg(long)]
    pub url: Option<String>,
    /// Bearer token (or BURSAR_ADMIN_TOKEN, which keeps it out of the shell history).
    #[arg(long)]
    pub token: Option<String>,
    /// No progress line for files.
    #[arg(long)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Register a merchant.
    Merchant {
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        settlement_account: String,
        #[arg(long)]
        fee_bps: u32,
        /// Comma-separated card kinds it takes (default: all).
        #[arg(long)]
        accepted_kinds: Option<String>,
    },
    /// Register a terminal under a merchant.
    Terminal {
        #[arg(long)]
        id: String,
        #[arg(long)]
        merchant: String,
        /// PIN key, 32 hex digits.
        #[arg(long)]
        tpk: String,
        /// MAC key, 32 hex digits.
        #[arg(long)]
        tak: Option<String>,
        #[arg(long)]
        mac_required: bool,
        #[arg(long, default_value = "0.00")]
        offline_floor_limit: String,
    },
    /// Issue one card.
    Issue {
        #[arg(long)]
        pan: String,
        #[arg(long)]
        holder_name: String,
        #[arg(long)]
        holder_id: String,
        /// student, staff or temporary.
        #[arg(long)]
        kind: String,
        /// YYMM.
        #[arg(long)]
        expiry: String,
        #[arg(long)]
        bank_account: Option<String>,
        /// Read the card's first PIN from stdin.
        #[arg(long)]
        pin_from_stdin: bool,
    },
    /// Show a card.
    Show { pan: String },
    /// Report a card lost: blocked at once, on the blacklist.
    Lost { pan: String },
    /// A lost card was found: unblocked.
    Found { pan: String },
    /// Replace a card: the old one is cancelled, its balance (less the fee) moves.
    Replace { pan: String, new_pan: String },
    /// Cancel a card; its balance goes where the host's configuration says.
    Cancel { pan: String },
    /// Set a new PIN, read from stdin (one line); resets the failed tries.
    Pin { pan: String },
    /// Set a card's own limits; `default` returns one to its kind's default.
    Limits {
        pan: String,
        #[arg(long)]
        per_txn: Option<String>,
        #[arg(long)]
        daily_amount: Option<String>,
        #[arg(long)]
        daily_count: Option<String>,
        #[arg(long)]
        pin_threshold: Option<String>,
    },
    /// Set a card's expiry, YYMM.
    Expiry { pan: String, expiry: String },
    /// Cash paid in at the desk; idempotent by reference.
    Deposit {
        pan: String,
        amount: String,
        reference: String,
    },
    /// Cash paid out at the desk; idempotent by reference.
    Withdraw {
        pan: String,
        amount: String,
        reference: String,
    },
    /// The holder's statement, newest first.
    Statement {
        pan: String,
        /// YYYY-MM-DD.
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
    },
    /// Blacklist changes since a version.
    Blacklist {
        #[arg(long, default_value_t = 0)]
        since: u64,
    },
    /// The operator audit trail since an entry id.
    Audit {
        #[arg(long, default_value_t = 0)]
        since: u64,
    },
    /// Check that the ledger balances.
    Check,
    /// Issue every card of a CSV file: header pan,holder_name,holder_id,kind,expiry and
    /// optionally pin, bank_account, per_txn, daily_amount, daily_count, pin_threshold.
    IssueCsv {
        file: PathBuf,
        /// Cards per request (at most 1000).
        #[arg(long, default_value_t = 500)]
        chunk: usize,
    },
    /// Pay the subsidies of a CSV file (header pan,amount): all or nothing per batch of
    /// `--chunk` rows, idempotent by reference (`REF`, or `REF-1`, `REF-2`, ... for a file of
    /// several batches), so the same command is safe to run again.
    SubsidiesCsv {
        file: PathBuf,
        #[arg(long)]
        reference: String,
        /// Rows per batch (at most 10000).
        #[arg(long, default_value_t = 10_000)]
        chunk: usize,
    },
}

/// What a command came to, for the exit code.
pub enum Outcome {
    Done,
    Refused,
}

fn read_secret_line(what: &str) -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .with_context(|| format!("reading the {what} from stdin"))?;
    Ok(line.trim().to_owned())
}

/// Prints an answer: its JSON on stdout when it succeeded, its error on stderr otherwise.
fn show(answer: client::Answer) -> Outcome {
    if answer.ok() {
        println!(
            "{}",
            serde_json::to_string_pretty(&answer.body).unwrap_or_default()
        );
        Outcome::Done
    } else {
        eprintln!("bursar-admin: HTTP {}: {}", answer.status, answer.error());
        if let Some(rejected) = answer.body["rejected"].as_array() {
            for item in rejected {
                eprintln!("  {item}");
            }
        }
        Outcome::Refused
    }
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let url = args
        .url
        .or_else(|| std::env::var("BURSAR_ADMIN_URL").ok())
        .unwrap_or_else(|| "http://127.0.0.1:8080".to_owned());
    let Some(token) = args
        .token
        .or_else(|| std::env::var("BURSAR_ADMIN_TOKEN").ok())
    else {
        bail!("no token: pass --token or set BURSAR_ADMIN_TOKEN");
    };
    let client = Client::new(&url, &token);
    let post = |path: String, body: Value| client.call("POST", &path, Some(&body)).map(show);
    let get = |path: String| client.call("GET", &path, None).map(show);
    match args.command {
        Command::Merchant {
            id,
            name,
            settlement_account,
            fee_bps,
            accepted_kinds,
        } => {
            let mut body = json!({"id": id, "name": name, "settlement_account": settlement_account, "fee_bps": fee_bps});
            if let Some(kinds) = accepted_kinds {
                body["accepted_kinds"] = json!(kinds.split(',').map(str::trim).collect::<Vec<_>>());
            }
            post("/v1/merchants".into(), body)
        }
        Command::Terminal {
            id,
            merchant,
            tpk,
            tak,
            mac_required,
            offline_floor_limit,
        } => post(
            "/v1/terminals".into(),
            json!({"id": id, "merchant_id": merchant, "tpk": tpk, "tak": tak,
                   "mac_required": mac_required, "offline_floor_limit": offline_floor_limit}),
        ),
        Command::Issue {
            pan,
            holder_name,
            holder_id,
            kind,
            expiry,
            bank_account,
            pin_from_stdin,
        } => {
            let mut body = json!({"pan": pan, "holder_name": holder_name, "holder_id": holder_id,
                                  "kind": kind, "expiry": expiry, "bank_account": bank_account});
            if pin_from_stdin {
                body["pin"] = json!(read_secret_line("PIN")?);
            }
            post("/v1/cards".into(), body)
        }
        Command::Show { pan } => get(format!("/v1/cards/{pan}")),
        Command::Lost { pan } => post(format!("/v1/cards/{pan}/lost"), json!({})),
        Command::Found { pan } => post(format!("/v1/cards/{pan}/found"), json!({})),
        Command::Replace { pan, new_pan } => post(
            format!("/v1/cards/{pan}/replace"),
            json!({"new_pan": new_pan}),
        ),
        Command::Cancel { pan } => post(format!("/v1/cards/{pan}/cancel"), json!({})),
        Command::Pin { pan } => {
            let pin = read_secret_line("PIN")?;
            post(format!("/v1/cards/{pan}/pin"), json!({"pin": pin}))
        }
        Command::Limits {
            pan,
            per_txn,
            daily_amount,
            daily_count,
            pin_threshold,
        } => {
            let mut body = json!({});
            for (name, value) in [
                ("per_txn", per_txn),
                ("daily_amount", daily_amount),
                ("pin_threshold", pin_threshold),
            ] {
                match value.as_deref() {
                    Some("default") => body[name] = Value::Null,
                    Some(amount) => body[name] = json!(amount),
                    None => {}
                }
            }
            match daily_count.as_deref() {
                Some("default") => body["daily_count"] = Value::Null,
                Some(count) => {
                    let count: u32 = count
                        .parse()
                        .context("--daily-count must be a whole number or `default`")?;
                    body["daily_count"] = json!(count);
                }
                None => {}
            }
            post(format!("/v1/cards/{pan}/limits"), body)
        }
        Command::Expiry { pan, expiry } => {
            post(format!("/v1/cards/{pan}/expiry"), json!({"expiry": expiry}))
        }
        Command::Deposit {
            pan,
            amount,
            reference,
        } => post(
            format!("/v1/cards/{pan}/deposits"),
            json!({"amount": amount, "reference": reference}),
        ),
        Command::Withdraw {
            pan,
            amount,
            reference,
        } => post(
            format!("/v1/cards/{pan}/withdrawals"),
            json!({"amount": amount, "reference": reference}),
        ),
        Command::Statement { pan, from, to } => {
            let mut query = Vec::new();
            if let Some(from) = from {
                query.push(format!("from={from}"));
            }
            if let Some(to) = to {
                query.push(format!("to={to}"));
            }
            get(format!("/v1/cards/{pan}/transactions?{}", query.join("&")))
        }
        Command::Blacklist { since } => get(format!("/v1/blacklist?since={since}")),
        Command::Audit { since } => get(format!("/v1/audit?since={since}")),
        Command::Check => get("/v1/ledger/check".into()),
        Command::IssueCsv { file, chunk } => {
            if !(1..=1000).contains(&chunk) {
                bail!("--chunk must be within 1..=1000");
            }
            client.check_token()?;
            let summary = bulk::issue_csv(&client, &file, chunk, args.quiet)?;
            bulk::print_summary("issue", &summary);
            Ok(outcome(&summary))
        }
        Command::SubsidiesCsv {
            file,
            reference,
            chunk,
        } => {
            if !(1..=10_000).contains(&chunk) {
                bail!("--chunk must be within 1..=10000");
            }
            client.check_token()?;
            let summary = bulk::subsidies_csv(&client, &file, &reference, chunk, args.quiet)?;
            bulk::print_summary("subsidies", &summary);
            if summary.done + summary.repeated == 0 && !summary.rejected.is_empty() {
                println!("nothing was paid: fix the rejected rows and run the same command again");
            }
            Ok(outcome(&summary))
        }
    }
}

fn outcome(summary: &bulk::Summary) -> Outcome {
    if summary.rejected.is_empty() {
        Outcome::Done
    } else {
        Outcome::Refused
    }
}
