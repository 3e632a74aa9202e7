//! Offline advice, 0220/0221 (PROTOCOL.md 3.8): a sale the terminal approved while it could
//! not reach the host. Recorded once (a re-sent advice finds its record and is answered the
//! same), then posted under the rules table: normal, overdraft, blocked card (the terminal's
//! blacklist decides who bears it), above the floor limit. The `00` goes out only once the
//! record and its posting are durable, like every answer.

use arrayvec::ArrayVec;
use codec::{Message, ResponseCode};
use ledger::account::Side;
use ledger::book::{LedgerEvent, Prepared};
use ledger::transfer::{Channel, Leg, References, Transfer, TransferId, TransferKind};
use sha2::{Digest, Sha256};

use super::checks::Declined;
use super::{approval_code, code_bytes, local_time, Decision, HostTx};
use crate::clock::days_from_civil;
use crate::policy::Policy;
use crate::state::answers::Reply;
use crate::state::batches::{
    BatchEvent, BatchKey, OfflineRule, OfflineSale, OfflineSource, TxnKey,
};
use crate::state::ids::Pan;
use crate::state::registry::Terminal;
use crate::state::HostEvent;

pub fn decide(
    tx: &mut HostTx<'_>,
    msg: &Message,
    terminal: &Terminal,
    policy: &Policy,
    now_ms: u64,
) -> Decision {
    let day = tx.state().business_day;
    let batch = BatchKey {
        terminal: terminal.id,
        batch: msg.batch().unwrap_or(0),
    };
    let txn = TxnKey {
        stan: msg.stan().unwrap_or(0),
        local_time: local_time(msg),
    };
    let amount_minor = msg.amount_minor().unwrap_or(0);
    let outcome = match tx.state().batches.transaction(&batch, &txn) {
        // A re-sent advice (0221, or an 0220 whose answer was lost): posted once.
        Some(known) => {
            if known.amount_minor != amount_minor {
                tracing::warn!(terminal = %terminal.id, stan = txn.stan, "re-sent advice with another amount: the first one stands");
            }
            let rrn = tx
                .state()
                .book
                .transfer(known.transfer)
                .map_or(0, |t| t.transfer.refs.rrn);
            Ok(rrn)
        }
        None => record(
            tx,
            terminal,
            policy,
            OfflineSaleRequest {
                batch,
                txn,
                pan: msg.pan().unwrap_or(""),
                amount_minor,
                source: OfflineSource::Advice,
            },
            now_ms,
        )
        .map(|sale| sale.rrn),
    };
    match outcome {
        Ok(rrn) => Decision {
            reply: Reply {
                code: code_bytes(ResponseCode::Approved),
                settlement_day: day,
                rrn: Some(rrn),
                approval: Some(approval_code(rrn)),
                balance_minor: None,
            },
            private_data: None,
            mac_key: None,
            reason: None,
        },
        Err((code, reason)) => Decision {
            reply: Reply::declined(code, day),
            private_data: None,
            mac_key: None,
            reason: Some(reason),
        },
    }
}

/// An offline sale to record: from an advice, or from an upload the host had not seen.
pub struct OfflineSaleRequest<'m> {
    pub batch: BatchKey,
    pub txn: TxnKey,
    pub pan: &'m str,
    pub amount_minor: u64,
    pub source: OfflineSource,
}

/// Decides the rule, posts the sale and records it. The caller has checked that the batch
/// does not have this transaction yet.
pub fn record(
    tx: &mut HostTx<'_>,
    terminal: &Terminal,
    policy: &Policy,
    request: OfflineSaleRequest<'_>,
    now_ms: u64,
) -> Result<OfflineSale, Declined> {
    let amount_minor = request.amount_minor;
    if amount_minor == 0 {
        return Err((ResponseCode::InvalidAmount, "an offline sale of nothing"));
    }
    let state = tx.state();
    let system = *state.system();
    let merchant_account = state.merchants[&terminal.merchant].account;
    let card = Pan::parse(request.pan)
        .ok()
        .and_then(|pan| state.card(&pan))
        .cloned();
    let sale_ms = sale_time_ms(&request.txn.local_time, now_ms, policy.utc_offset_minutes);
    let rule = match &card {
        None => OfflineRule::UnknownCard,
        Some(card) => match state.blacklist.change_as_of(&card.pan, sale_ms) {
            Some(change) if change.blocked => {
                if change.version <= terminal.blacklist_version_served {
                    OfflineRule::BlockedKnownToTerminal
                } else {
                    OfflineRule::BlockedAfterTerminalList
                }
            }
            _ => OfflineRule::Normal,
        },
    };
    // Who pays: the card, or (when the merchant bears it) the offline suspense account, so
    // the sale stays on record against the merchant without touching a card.
    let (debit_account, kind) = match (&card, rule.merchant_bears()) {
        (Some(card), false) => (card.account, TransferKind::OfflinePurchase),
        _ => (system.offline_suspense, TransferKind::OfflineRejected),
    };
    let rrn = state.next_rrn;
    let mut legs = ArrayVec::new();
    legs.push(Leg {
        account: debit_account,
        side: Side::Debit,
        amount_minor,
    });
    legs.push(Leg {
        account: merchant_account,
        side: Side::Credit,
        amount_minor,
    });
    let transfer = Transfer {
        id: offline_transfer_id(&request.batch, &request.txn),
        kind,
        business_day: state.business_day,
        legs,
        allow_overdraft: kind == TransferKind::OfflinePurchase,
        related: None,
        refs: References {
            rrn,
            terminal: terminal.id.0,
            merchant: terminal.merchant.0,
            batch: request.batch.batch,
            stan: request.txn.stan,
            local_time: request.txn.local_time,
            approval: approval_code(rrn),
            channel: Channel::Offline,
        },
        timestamp_ms: now_ms,
    };
    match state.book.prepare(&transfer) {
        Ok(Prepared::New) => {}
        Ok(Prepared::Duplicate(_)) => {
            return Err((ResponseCode::HostMalfunction, "offline sale posted already"))
        }
        Err(error) => {
            tracing::error!(terminal = %terminal.id, %error, "ledger refused an offline sale");
            return Err((
                ResponseCode::HostMalfunction,
                "ledger refused the offline sale",
            ));
        }
    }
    tx.emit(HostEvent::Ledger(LedgerEvent::Post(transfer)));
    let rule = match (&card, rule) {
        (Some(card), OfflineRule::Normal) if tx.state().card_balance_minor(card) < 0 => {
            OfflineRule::Overdraft
        }
        (_, rule) => rule,
    };
    let sale = OfflineSale {
        batch: request.batch,
        txn: request.txn,
        pan: card.map(|c| c.pan),
        amount_minor,
        rule,
        above_floor: amount_minor > terminal.offline_floor_limit_minor,
        source: request.source,
        transfer: offline_transfer_id(&request.batch, &request.txn),
        rrn,
    };
    if sale.is_exception() {
        tracing::info!(terminal = %terminal.id, stan = sale.txn.stan, rule = rule.as_str(), above_floor = sale.above_floor, "offline sale flagged");
    }
    tx.emit(HostEvent::Batch(BatchEvent::OfflineSale(sale)));
    Ok(sale)
}

/// The transfer id of an offline sale: from its batch, STAN and local time, the identity an
/// advice and an upload of the same sale share (an 0320 has no F7). Hashed into the upper
/// half of the id space's terminal bits so it never equals an online F41+F11+F7 id.
pub fn offline_transfer_id(batch: &BatchKey, txn: &TxnKey) -> TransferId {
    let mut hash = Sha256::new();
    hash.update(b"offline-sale");
    hash.update(batch.terminal.0);
    hash.update(batch.batch.to_be_bytes());
    hash.update(txn.stan.to_be_bytes());
    hash.update(txn.local_time);
    let digest = hash.finalize();
    TransferId(u128::from_be_bytes(
        digest[..16].try_into().expect("16 bytes"),
    ))
}

/// Host time of a sale from the terminal's local `MMDDhhmmss` (no year): the latest such
/// moment no more than a day after `now_ms`, since a terminal's clock may run a little ahead
/// but its advices come from the past.
pub fn sale_time_ms(local: &[u8; 10], now_ms: u64, offset_minutes: i32) -> u64 {
    let field = |range: std::ops::Range<usize>| -> u32 {
        std::str::from_utf8(&local[range])
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    };
    let (month, day) = (field(0..2).clamp(1, 12), field(2..4).clamp(1, 31));
    let seconds_of_day = (field(4..6) * 3600 + field(6..8) * 60 + field(8..10)) as i64;
    let now_local = crate::clock::DateTime::from_epoch_ms(now_ms, offset_minutes);
    let limit_ms = now_ms as i64 + 86_400_000;
    let mut chosen = 0i64;
    for year in [now_local.year + 1, now_local.year, now_local.year - 1] {
        let local_secs = days_from_civil(year, month, day) * 86_400 + seconds_of_day;
        let ms = (local_secs - offset_minutes as i64 * 60) * 1000;
        if ms <= limit_ms {
            chosen = ms;
            break;
        }
    }
    chosen.max(0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::DateTime;

    #[test]
    fn sale_time_is_the_latest_matching_moment_not_beyond_a_day_ahead() {
        let offset = 480;
        // 2026-11-23 12:00:00 local (04:00 UTC).
        let now_ms = ((days_from_civil(2026, 11, 23) * 86_400 + 4 * 3600) * 1000) as u64;
        let at =
            |text: &[u8; 10]| DateTime::from_epoch_ms(sale_time_ms(text, now_ms, offset), offset);
        assert_eq!(at(b"1123110000").mmddhhmmss(), "1123110000");
        assert_eq!(at(b"1123110000").year, 2026);
        // A few minutes ahead is still this year; a month ahead was last year.
        assert_eq!(at(b"1123120500").year, 2026);
        assert_eq!(at(b"1223120000").year, 2025);
        // Across new year: in January, a December sale was last year.
        let january_ms = ((days_from_civil(2027, 1, 2) * 86_400) * 1000) as u64;
        let dec = DateTime::from_epoch_ms(sale_time_ms(b"1231230000", january_ms, offset), offset);
        assert_eq!((dec.year, dec.month, dec.day), (2026, 12, 31));
    }
}
