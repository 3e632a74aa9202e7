//! Batch settlement, 0500 (F3 = 920000 close, 960000 close after upload), and batch upload,
//! 0320 (PROTOCOL.md 3.9). The host's totals of a batch are the book's (approved purchases,
//! offline ones included, and refunds, reversed ones excluded) plus the offline sales the
//! merchant bears, which the terminal counts as sales too.

use codec::{Field, Message, ResponseCode};
use ledger::book::Totals;
use ledger::transfer::TransferKind;

use super::advice::{self, OfflineSaleRequest};
use super::{approval_code, local_time, Decision, HostTx};
use crate::policy::Policy;
use crate::state::answers::Reply;
use crate::state::batches::{
    BatchEvent, BatchKey, Closing, OfflineSource, TxnKey, Upload, UploadOutcome,
};
use crate::state::registry::Terminal;
use crate::state::{HostEvent, HostState};

pub const CLOSE: u32 = 920_000;
pub const CLOSE_AFTER_UPLOAD: u32 = 960_000;

fn answer(
    day: ledger::transfer::BusinessDay,
    code: ResponseCode,
    reason: Option<&'static str>,
) -> Decision {
    Decision {
        reply: Reply::declined(code, day),
        private_data: None,
        mac_key: None,
        reason,
    }
}

pub fn batch_key(msg: &Message, terminal: &Terminal) -> BatchKey {
    BatchKey {
        terminal: terminal.id,
        batch: msg.batch().unwrap_or(0),
    }
}

/// The host's totals of a batch, comparable with the terminal's.
pub fn host_totals(state: &HostState, key: &BatchKey) -> Totals {
    let book_totals = state.book.batch_totals(&key.terminal.0, key.batch);
    match state.batches.get(key) {
        Some(batch) => batch.with_rejected(book_totals),
        None => book_totals,
    }
}

/// F74, F76, F86, F88 of an 0500: the terminal's counts and amounts.
fn terminal_totals(msg: &Message) -> Option<Totals> {
    Some(Totals {
        refund_count: msg.get_u64(Field::CreditsCount)?,
        purchase_count: msg.get_u64(Field::DebitsCount)?,
        refund_minor: msg.get_u64(Field::CreditsAmount)?,
        purchase_minor: msg.get_u64(Field::DebitsAmount)?,
    })
}

/// 0500: close the batch when the totals agree (920000), or unconditionally after an upload
/// (960000). Closing a closed batch again is `00` when it would have closed.
pub fn settle(tx: &mut HostTx<'_>, msg: &Message, terminal: &Terminal, now_ms: u64) -> Decision {
    let state = tx.state();
    let day = state.business_day;
    let key = batch_key(msg, terminal);
    let Some(terminal_totals) = terminal_totals(msg) else {
        return answer(
            day,
            ResponseCode::FormatError,
            Some("batch totals are not numbers"),
        );
    };
    let host_totals = host_totals(state, &key);
    let closed = state.batches.is_closed(&key);
    let after_upload = match msg.processing_code() {
        Some(CLOSE) => false,
        Some(CLOSE_AFTER_UPLOAD) => true,
        _ => {
            return answer(
                day,
                ResponseCode::InvalidTransaction,
                Some("unknown settlement processing code"),
            )
        }
    };
    if !after_upload && terminal_totals != host_totals {
        tracing::info!(terminal = %terminal.id, batch = key.batch, ?terminal_totals, ?host_totals, "batch out of balance");
        return answer(
            day,
            ResponseCode::ReconciliationDiffers,
            Some("batch totals differ from the host's"),
        );
    }
    if !closed {
        tx.emit(HostEvent::Batch(BatchEvent::Closed {
            batch: key,
            closing: Closing {
                terminal_totals,
                host_totals,
                after_upload,
                at_ms: now_ms,
            },
        }));
    }
    answer(day, ResponseCode::Approved, None)
}

/// 0320: one transaction of the batch as the terminal has it. Matched against what the host
/// has, or posted as an offline advice; a second upload of the same one changes nothing.
pub fn upload(
    tx: &mut HostTx<'_>,
    msg: &Message,
    terminal: &Terminal,
    policy: &Policy,
    now_ms: u64,
) -> Decision {
    let state = tx.state();
    let day = state.business_day;
    let key = batch_key(msg, terminal);
    let txn = TxnKey {
        stan: msg.stan().unwrap_or(0),
        local_time: local_time(msg),
    };
    let amount_minor = msg.amount_minor().unwrap_or(0);
    let refund = match msg.processing_code() {
        Some(0) => false,
        Some(200_000) => true,
        _ => {
            return answer(
                day,
                ResponseCode::InvalidTransaction,
                Some("an upload is of a purchase or a refund"),
            )
        }
    };
    let already_uploaded = state
        .batches
        .get(&key)
        .is_some_and(|b| b.has_upload_of(&txn));
    if already_uploaded {
        return answer(day, ResponseCode::Approved, None);
    }
    let outcome = match state.batches.transaction(&key, &txn) {
        Some(known) => {
            let kind_matches = (known.kind == TransferKind::Refund) == refund;
            if known.amount_minor != amount_minor || !kind_matches || known.reversed {
                tracing::warn!(terminal = %terminal.id, batch = key.batch, stan = txn.stan, "uploaded transaction differs from the host's: the host's stands");
            }
            Some(UploadOutcome::Matched(known.transfer))
        }
        None if refund => Some(UploadOutcome::UnknownRefund),
        None => None,
    };
    match outcome {
        Some(outcome) => {
            tx.emit(HostEvent::Batch(BatchEvent::Uploaded {
                batch: key,
                upload: Upload {
                    txn,
                    amount_minor,
                    outcome,
                },
            }));
            answer(day, ResponseCode::Approved, None)
        }
        None => {
            let recorded = advice::record(
                tx,
                terminal,
                policy,
                OfflineSaleRequest {
                    batch: key,
                    txn,
                    pan: msg.pan().unwrap_or(""),
                    amount_minor,
                    source: OfflineSource::Upload,
                },
                now_ms,
            );
            match recorded {
                Ok(sale) => {
                    let mut decision = answer(day, ResponseCode::Approved, None);
                    decision.reply.rrn = Some(sale.rrn);
                    decision.reply.approval = Some(approval_code(sale.rrn));
                    decision
                }
                Err((code, reason)) => answer(day, code, Some(reason)),
            }
        }
    }
}

/// A closed batch takes no new transactions (`12`).
pub fn refuses(state: &HostState, msg: &Message, terminal: &Terminal) -> bool {
    msg.batch().is_some() && state.batches.is_closed(&batch_key(msg, terminal))
}
