//! Refund, 0200 F3=200000 (PROTOCOL.md 3.4): credit the card and debit the merchant, against
//! an approved purchase at this merchant, never for more than is left of it.

use arrayvec::ArrayVec;
use codec::{Message, ResponseCode};
use ledger::account::Side;
use ledger::book::{LedgerEvent, Prepared};
use ledger::transfer::{Leg, Transfer, TransferKind};

use super::checks::{self, Declined};
use super::{approval_code, code_bytes, online_refs, transfer_id_of, Decision, HostTx};
use crate::state::answers::{Reply, RequestKey};
use crate::state::registry::Terminal;
use crate::state::HostEvent;

pub fn decide(
    tx: &mut HostTx<'_>,
    msg: &Message,
    terminal: &Terminal,
    key: RequestKey,
    now_ms: u64,
) -> Decision {
    let outcome = approve(tx, msg, terminal, key, now_ms);
    Decision::settled(tx, outcome)
}

fn approve(
    tx: &mut HostTx<'_>,
    msg: &Message,
    terminal: &Terminal,
    key: RequestKey,
    now_ms: u64,
) -> Result<Reply, Declined> {
    let state = tx.state();
    let merchant = &state.merchants[&terminal.merchant];
    let card = checks::usable_card(state, msg, merchant)?;
    let original_rrn: u64 = msg.rrn().and_then(|rrn| rrn.trim().parse().ok()).ok_or((
        ResponseCode::OriginalNotFound,
        "F37 is not an RRN of this host",
    ))?;
    let original = state
        .book
        .transfer_by_rrn(original_rrn)
        .filter(|o| {
            matches!(
                o.transfer.kind,
                TransferKind::Purchase | TransferKind::OfflinePurchase
            )
        })
        .filter(|o| o.transfer.refs.merchant == terminal.merchant.0)
        .filter(|o| o.transfer.legs.iter().any(|l| l.account == card.account))
        .filter(|o| !state.book.is_reversed(o.transfer.id))
        .ok_or((
            ResponseCode::OriginalNotFound,
            "no approved purchase with that RRN at this merchant",
        ))?;
    let amount_minor = msg.amount_minor().unwrap_or(0);
    let refunded_minor = state
        .refunded_minor
        .get(&original.transfer.id)
        .copied()
        .unwrap_or(0);
    if amount_minor == 0 || amount_minor > original.transfer.amount_minor() - refunded_minor {
        return Err((
            ResponseCode::InvalidAmount,
            "refund exceeds what is left of the purchase",
        ));
    }

    let rrn = state.next_rrn;
    let approval = approval_code(rrn);
    let mut legs = ArrayVec::new();
    legs.push(Leg {
        account: merchant.account,
        side: Side::Debit,
        amount_minor,
    });
    legs.push(Leg {
        account: card.account,
        side: Side::Credit,
        amount_minor,
    });
    let transfer = Transfer {
        id: transfer_id_of(&key),
        kind: TransferKind::Refund,
        business_day: state.business_day,
        legs,
        allow_overdraft: false,
        related: Some(original.transfer.id),
        refs: online_refs(terminal, msg, &key, rrn, approval),
        timestamp_ms: now_ms,
    };
    if !matches!(state.book.prepare(&transfer), Ok(Prepared::New)) {
        return Err((ResponseCode::HostMalfunction, "ledger refused the refund"));
    }
    let card_account = card.account;
    let day = state.business_day;
    tx.emit(HostEvent::Ledger(LedgerEvent::Post(transfer)));
    Ok(Reply {
        code: code_bytes(ResponseCode::Approved),
        settlement_day: day,
        rrn: Some(rrn),
        approval: Some(approval),
        balance_minor: Some(tx.state().card_account_balance_minor(card_account)),
    })
}
