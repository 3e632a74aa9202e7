//! Purchase, 0200 F3=000000 (PROTOCOL.md 3.2): debit the card, credit the merchant.

use arrayvec::ArrayVec;
use codec::{Message, ResponseCode};
use ledger::account::Side;
use ledger::book::{LedgerEvent, Prepared, TransferError};
use ledger::transfer::{Leg, Transfer, TransferKind};

use super::checks::{self, Declined};
use super::{approval_code, online_refs, transfer_id_of, Asking, Decision, HostTx};
use crate::policy::Policy;
use crate::state::answers::{Reply, RequestKey};
use crate::state::HostEvent;

pub fn decide(
    tx: &mut HostTx<'_>,
    msg: &Message,
    terminal: &Asking<'_>,
    policy: &Policy,
    key: RequestKey,
    now_ms: u64,
) -> Decision {
    let outcome = approve(tx, msg, terminal, policy, key, now_ms);
    Decision::settled(tx, outcome)
}

fn approve(
    tx: &mut HostTx<'_>,
    msg: &Message,
    terminal: &Asking<'_>,
    policy: &Policy,
    key: RequestKey,
    now_ms: u64,
) -> Result<Reply, Declined> {
    let state = tx.state();
    let merchant = &state.merchants[&terminal.merchant];
    let card = checks::usable_card(state, msg, merchant)?.facts();
    let amount_minor = msg.amount_minor().unwrap_or(0);
    if amount_minor == 0 {
        return Err((ResponseCode::InvalidAmount, "amount must be above zero"));
    }
    let limits = card.limits.over(policy.kind_limits(card.kind));
    let pin_required = amount_minor >= limits.pin_threshold_minor;
    checks::pin(tx, &card, msg, terminal, policy, pin_required)?;
    let state = tx.state();
    let day = state.business_day;
    let (spent_today_minor, count_today) = card.usage.on(day);
    if amount_minor > limits.per_txn_minor {
        return Err((ResponseCode::AmountLimit, "per-transaction limit"));
    }
    if spent_today_minor + amount_minor > limits.daily_amount_minor {
        return Err((ResponseCode::AmountLimit, "daily amount limit"));
    }
    if count_today + 1 > limits.daily_count {
        return Err((ResponseCode::CountLimit, "daily count limit"));
    }

    let rrn = state.next_rrn;
    let approval = approval_code(rrn);
    let merchant_account = state.merchants[&terminal.merchant].account;
    let mut legs = ArrayVec::new();
    legs.push(Leg {
        account: card.account,
        side: Side::Debit,
        amount_minor,
    });
    legs.push(Leg {
        account: merchant_account,
        side: Side::Credit,
        amount_minor,
    });
    let transfer = Transfer {
        id: transfer_id_of(&key),
        kind: TransferKind::Purchase,
        business_day: day,
        legs,
        allow_overdraft: false,
        related: None,
        refs: online_refs(terminal, msg, &key, rrn, approval),
        timestamp_ms: now_ms,
    };
    match state.book.prepare(&transfer) {
        Ok(Prepared::New) => {}
        // The id is this request's F41+F11+F7, and an answered request is caught as a
        // retransmission before it gets here; a duplicate means the answer was lost.
        Ok(Prepared::Duplicate(_)) => {
            return Err((ResponseCode::DuplicateDifferent, "transfer already posted"))
        }
        Err(TransferError::InsufficientFunds { .. }) => {
            return Err((ResponseCode::InsufficientBalance, "insufficient balance"))
        }
        Err(_) => return Err((ResponseCode::HostMalfunction, "ledger refused the transfer")),
    }
    tx.emit(HostEvent::Ledger(LedgerEvent::Post(transfer)));
    let balance_minor = tx.state().card_account_balance_minor(card.account);
    Ok(Reply {
        code: super::code_bytes(ResponseCode::Approved),
        settlement_day: day,
        rrn: Some(rrn),
        approval: Some(approval),
        balance_minor: Some(balance_minor),
    })
}
