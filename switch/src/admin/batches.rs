//! `GET /v1/batches/{terminal}/{batch}`: a terminal batch's reconciliation report
//! (PROTOCOL.md 3.8, 3.9, 8): its state, the host's and the terminal's totals, what the upload
//! matched, what it brought that the host had not seen (posted then), what the host had that
//! the terminal did not, every offline exception with the rule that decided it, and the STANs
//! missing from the batch's sequence. The shape is documented in docs/ADMIN.md.

use axum::extract::Path;
use axum::Json;
use ledger::book::Totals;
use serde_json::{json, Value};

use super::reply::ApiError;
use super::HostRef;
use crate::authorize::host_totals;
use crate::clock::DateTime;
use crate::money::format_amount;
use crate::state::batches::{
    Batch, BatchKey, BatchSummary, OfflineSale, OfflineSource, TxnKey, UploadOutcome,
};
use crate::state::ids::TerminalId;
use crate::state::HostState;

/// At most this many missing STANs are listed (all are counted): a STAN that wrapped round
/// inside a batch leaves a hole of up to a million.
const STAN_GAPS_LISTED_MAX: usize = 1_000;

pub async fn report(
    host: HostRef,
    Path((terminal, batch)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let terminal = TerminalId::parse(&terminal).ok_or_else(|| {
        ApiError::BadRequest(format!("`{terminal}` is not a terminal id (8 characters)"))
    })?;
    let batch = parse_batch_number(&batch)?;
    let key = BatchKey { terminal, batch };
    let report = host
        .engine
        .execute(move |tx| {
            let state = tx.state();
            if !state.terminals.contains_key(&terminal) {
                return Err(ApiError::NotFound(format!(
                    "terminal {terminal} is not registered"
                )));
            }
            let batch = state.batches.get(&key).ok_or_else(|| {
                ApiError::NotFound(format!("terminal {terminal} has no batch {:06}", key.batch))
            })?;
            Ok(report_json(state, &key, batch))
        })
        .await??;
    Ok(Json(report))
}

/// F60 is six digits.
fn parse_batch_number(text: &str) -> Result<u32, ApiError> {
    if text.len() != 6 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::BadRequest(format!(
            "`{text}` is not a batch number (the 6-digit F60)"
        )));
    }
    Ok(text.parse().expect("six digits"))
}

fn report_json(state: &HostState, key: &BatchKey, batch: &Batch) -> Value {
    let rrn_of = |transfer| {
        state
            .book
            .transfer(transfer)
            .map(|applied| applied.transfer.refs.rrn)
            .filter(|rrn| *rrn != 0)
            .map(|rrn| format!("{rrn:012}"))
    };
    let mut matched = Vec::new();
    let mut refunds_not_posted = Vec::new();
    for upload in &batch.uploads {
        let identity = txn_json(&upload.txn, upload.amount_minor);
        match upload.outcome {
            UploadOutcome::Matched(transfer) => {
                let host_side = batch.transactions.get(&upload.txn);
                // The host's record stands; the operator sees where the terminal's differs.
                let differs = host_side.is_none_or(|t| {
                    t.amount_minor != upload.amount_minor || t.reversed || t.transfer != transfer
                });
                matched.push(with(
                    identity,
                    json!({
                        "rrn": rrn_of(transfer),
                        "host_amount": host_side.map(|t| format_amount(t.amount_minor as i64)),
                        "host_reversed": host_side.is_some_and(|t| t.reversed),
                        "differs": differs,
                    }),
                ));
            }
            // Listed with the rule that posted it, from the batch's offline sales.
            UploadOutcome::Posted(_) => {}
            UploadOutcome::UnknownRefund => refunds_not_posted.push(identity),
        }
    }
    let posted_at_upload: Vec<Value> = batch
        .offline
        .iter()
        .filter(|sale| sale.source == OfflineSource::Upload)
        .map(offline_json)
        .collect();
    let missing_at_terminal: Vec<Value> = batch
        .missing_at_terminal()
        .map(|(txn, t)| {
            with(
                txn_json(txn, t.amount_minor),
                json!({ "type": t.kind.name(), "rrn": rrn_of(t.transfer) }),
            )
        })
        .collect();
    let offline_exceptions: Vec<Value> = batch.offline_exceptions().map(offline_json).collect();
    let closing = batch.closing.map(|c| {
        json!({
            "closed_by": if c.after_upload { "upload" } else { "totals" },
            "closed_at": DateTime::from_epoch_ms(c.at_ms, 0).rfc3339_utc(),
            "in_balance": c.terminal_totals == c.host_totals,
            "host_totals_at_close": totals_json(&c.host_totals),
        })
    });
    let gaps: Vec<u32> = batch.stan_gaps_iter().take(STAN_GAPS_LISTED_MAX).collect();
    json!({
        "terminal": key.terminal.as_str(),
        "batch": format!("{:06}", key.batch),
        "status": if batch.is_closed() { "closed" } else { "open" },
        "host_totals": totals_json(&host_totals(state, key)),
        "terminal_totals": batch.closing.map(|c| totals_json(&c.terminal_totals)),
        "closing": closing,
        "summary": summary_json(&batch.summary()),
        "matched": matched,
        "posted_at_upload": posted_at_upload,
        "refunds_not_posted": refunds_not_posted,
        "missing_at_terminal": missing_at_terminal,
        "offline_exceptions": offline_exceptions,
        "stan_gaps": gaps,
    })
}

fn totals_json(totals: &Totals) -> Value {
    json!({
        "purchase_count": totals.purchase_count,
        "purchase_amount": format_amount(totals.purchase_minor as i64),
        "refund_count": totals.refund_count,
        "refund_amount": format_amount(totals.refund_minor as i64),
    })
}

fn summary_json(summary: &BatchSummary) -> Value {
    json!({
        "matched": summary.matched,
        "posted_at_upload": summary.posted_at_upload,
        "refunds_not_posted": summary.refunds_not_posted,
        "missing_at_terminal": summary.missing_at_terminal,
        "offline_exceptions": summary.offline_exceptions,
        "stan_gaps": summary.stan_gaps,
    })
}

/// What identifies a transaction to the terminal: its STAN and local time (`MMDDhhmmss`).
fn txn_json(txn: &TxnKey, amount_minor: u64) -> Value {
    json!({
        "stan": txn.stan,
        "local_time": String::from_utf8_lossy(&txn.local_time),
        "amount": format_amount(amount_minor as i64),
    })
}

/// An offline sale with the 3.8 rule that decided its posting.
fn offline_json(sale: &OfflineSale) -> Value {
    with(
        txn_json(&sale.txn, sale.amount_minor),
        json!({
            "rrn": format!("{:012}", sale.rrn),
            "pan": sale.pan.map(|p| p.masked()),
            "rule": sale.rule.as_str(),
            "above_floor_limit": sale.above_floor,
            "charged_to": if sale.rule.merchant_bears() { "merchant" } else { "card" },
            "source": match sale.source {
                OfflineSource::Advice => "advice",
                OfflineSource::Upload => "upload",
            },
        }),
    )
}

/// `base` with `extra`'s fields added.
fn with(mut base: Value, extra: Value) -> Value {
    if let (Value::Object(base), Value::Object(extra)) = (&mut base, extra) {
        base.extend(extra);
    }
    base
}
