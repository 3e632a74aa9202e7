//! Files of many rows: card issue (`issue-csv`) and subsidies (`subsidies-csv`), sent in
//! chunks with a progress line, then a summary of what was done and what was rejected, why,
//! and on which line of the file.

use anyhow::{bail, Context};
use serde_json::{json, Value};

use super::client::Client;
use super::csv::{self, Row};
use super::progress::Progress;
use crate::money::{format_amount, parse_amount};
use crate::state::ids::Pan;

/// A row of the file that was not done, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub line: usize,
    pub pan: String,
    pub reason: String,
}

/// What a file run did.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub rows: usize,
    pub done: usize,
    /// Rows already done by an earlier run (subsidy batches sent again).
    pub repeated: usize,
    pub total_minor: u64,
    pub rejected: Vec<Rejected>,
    pub seconds: f64,
}

impl Summary {
    /// A summary of `table` before any row is sent: its lines that did not parse rejected.
    fn of(table: &csv::Table) -> Summary {
        let rejected = table.bad.iter().map(|bad| Rejected {
            line: bad.line,
            pan: String::new(),
            reason: bad.reason.clone(),
        });
        Summary {
            rows: table.rows.len() + table.bad.len(),
            rejected: rejected.collect(),
            ..Summary::default()
        }
    }
}

/// First 6 and last 4 of a card number, as the host's own logs show it.
fn masked(pan: &str) -> String {
    if pan.len() >= 12 && pan.bytes().all(|b| b.is_ascii_digit()) {
        format!("{}******{}", &pan[..6], &pan[pan.len() - 4..])
    } else {
        pan.to_owned()
    }
}

fn rejected(row: &Row, reason: impl Into<String>) -> Rejected {
    Rejected {
        line: row.line,
        pan: masked(row.get("pan").unwrap_or("")),
        reason: reason.into(),
    }
}

fn read(path: &std::path::Path, required: &[&str]) -> anyhow::Result<csv::Table> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    csv::parse(&text, required).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

const CARD_COLUMNS: [&str; 5] = ["pan", "holder_name", "holder_id", "kind", "expiry"];

/// The `POST /v1/cards` body of a row.
fn card_of(row: &Row) -> Result<Value, String> {
    let mut card = json!({});
    for column in CARD_COLUMNS {
        card[column] = json!(row.get(column).unwrap_or(""));
    }
    for column in ["pin", "bank_account"] {
        if let Some(value) = row.get(column) {
            card[column] = json!(value);
        }
    }
    let mut limits = json!({});
    for column in ["per_txn", "daily_amount", "pin_threshold"] {
        if let Some(value) = row.get(column) {
            limits[column] = json!(value);
        }
    }
    if let Some(count) = row.get("daily_count") {
        let count: u32 = count
            .parse()
            .map_err(|_| format!("daily_count `{count}` is not a whole number"))?;
        limits["daily_count"] = json!(count);
    }
    if limits.as_object().is_some_and(|l| !l.is_empty()) {
        card["limits"] = limits;
    }
    Ok(card)
}

/// Issues every card of the file, `chunk` cards a request (`POST /v1/cards/bulk`).
pub fn issue_csv(
    client: &Client,
    path: &std::path::Path,
    chunk: usize,
    quiet: bool,
) -> anyhow::Result<Summary> {
    let table = read(path, &CARD_COLUMNS)?;
    let mut summary = Summary::of(&table);
    let mut cards = Vec::with_capacity(table.rows.len());
    for row in &table.rows {
        match card_of(row) {
            Ok(card) => cards.push((row, card)),
            Err(reason) => summary.rejected.push(rejected(row, reason)),
        }
    }
    let mut progress = Progress::new("cards", summary.rows, quiet);
    progress.advance(summary.rejected.len(), summary.rejected.len());
    for part in cards.chunks(chunk) {
        let body = json!({"cards": part.iter().map(|(_, card)| card).collect::<Vec<_>>()});
        let answer = client.call("POST", "/v1/cards/bulk", Some(&body))?;
        let before = summary.rejected.len();
        if answer.ok() {
            summary.done += answer.body["issued"].as_u64().unwrap_or(0) as usize;
            for item in answer.body["rejected"].as_array().into_iter().flatten() {
                let index = item["index"].as_u64().unwrap_or(0) as usize;
                let (row, _) = part
                    .get(index)
                    .context("the host named a card that was not sent")?;
                let reason = item["error"].as_str().unwrap_or("rejected");
                summary.rejected.push(rejected(row, reason));
            }
        } else if answer.status == 401 {
            bail!("HTTP 401: {} (check --token)", answer.error());
        } else {
            let reason = format!("HTTP {}: {}", answer.status, answer.error());
            summary
                .rejected
                .extend(part.iter().map(|(row, _)| rejected(row, reason.clone())));
        }
        progress.advance(part.len(), summary.rejected.len() - before);
    }
    summary.rejected.sort_by_key(|r| r.line);
    summary.seconds = progress.elapsed_secs();
    Ok(summary)
}

/// The reference of chunk `index` of `count`: the reference itself for a file of one chunk.
fn chunk_reference(reference: &str, index: usize, count: usize) -> String {
    if count == 1 {
        reference.to_owned()
    } else {
        format!("{reference}-{}", index + 1)
    }
}

/// Pays the subsidies of the file: checked whole first (a bad row sends nothing), then sent
/// in batches of `chunk` rows, each all or nothing and idempotent by its reference, so the
/// same command can be run again after a failure.
pub fn subsidies_csv(
    client: &Client,
    path: &std::path::Path,
    reference: &str,
    chunk: usize,
    quiet: bool,
) -> anyhow::Result<Summary> {
    let table = read(path, &["pan", "amount"])?;
    let mut summary = Summary::of(&table);
    for row in &table.rows {
        let pan = row.get("pan").unwrap_or("");
        if let Err(e) = Pan::parse(pan) {
            summary.rejected.push(rejected(row, format!("pan: {e}")));
        }
        match parse_amount(row.get("amount").unwrap_or("")) {
            Ok(0) => summary
                .rejected
                .push(rejected(row, "amount must be above zero")),
            Ok(_) => {}
            Err(e) => summary.rejected.push(rejected(row, format!("amount: {e}"))),
        }
    }
    if !summary.rejected.is_empty() || table.rows.is_empty() {
        summary.rejected.sort_by_key(|r| r.line);
        return Ok(summary);
    }
    let count = table.rows.len().div_ceil(chunk);
    if chunk_reference(reference, count - 1, count).len() > 64 {
        bail!("--reference is too long: a batch reference has at most 64 characters");
    }
    let mut progress = Progress::new("subsidies", summary.rows, quiet);
    for (index, part) in table.rows.chunks(chunk).enumerate() {
        let batch_reference = chunk_reference(reference, index, count);
        let items: Vec<Value> = part
            .iter()
            .map(|row| json!({"pan": row.get("pan"), "amount": row.get("amount")}))
            .collect();
        let body = json!({"reference": batch_reference, "items": items});
        let answer = client.call("POST", "/v1/subsidies", Some(&body))?;
        let before = summary.rejected.len();
        match answer.status {
            200 | 201 => {
                if answer.status == 200 {
                    // Paid by an earlier run: nothing was paid now.
                    summary.repeated += part.len();
                } else {
                    let total = answer.body["total"].as_str().unwrap_or("0");
                    summary.total_minor += parse_amount(total).unwrap_or(0);
                    summary.done += part.len();
                }
            }
            401 => bail!("HTTP 401: {} (check --token)", answer.error()),
            422 => {
                for item in answer.body["rejected"].as_array().into_iter().flatten() {
                    let index = item["index"].as_u64().unwrap_or(0) as usize;
                    let row = part.get(index).context("the host named an item not sent")?;
                    let reason = format!(
                        "{} (batch `{batch_reference}` not posted)",
                        item["reason"].as_str().unwrap_or("rejected")
                    );
                    summary.rejected.push(rejected(row, reason));
                }
            }
            status => {
                let reason = format!(
                    "HTTP {status}: {} (batch `{batch_reference}` not posted)",
                    answer.error()
                );
                summary
                    .rejected
                    .extend(part.iter().map(|row| rejected(row, reason.clone())));
            }
        }
        progress.advance(part.len(), summary.rejected.len() - before);
    }
    summary.seconds = progress.elapsed_secs();
    Ok(summary)
}

/// The summary for the operator, on stdout.
pub fn print_summary(what: &str, summary: &Summary) {
    let rate = if summary.seconds > 0.0 {
        format!(", {:.0} rows/s", summary.done as f64 / summary.seconds)
    } else {
        String::new()
    };
    println!(
        "{what}: {} of {} rows done, {} already done before, {} rejected ({:.1} s{rate})",
        summary.done,
        summary.rows,
        summary.repeated,
        summary.rejected.len(),
        summary.seconds
    );
    if summary.total_minor > 0 {
        println!("paid now: {}", format_amount(summary.total_minor as i64));
    }
    if !summary.rejected.is_empty() {
        println!("rejected:");
        for r in &summary.rejected {
            println!("  line {}: {} {}", r.line, r.pan, r.reason);
        }
    }
}
