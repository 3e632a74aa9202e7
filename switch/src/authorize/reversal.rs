//! Reversal, 0400/0420 (PROTOCOL.md 3.6): undo the original if it was approved and is not yet
//! reversed. Anything else is answered `00` and changes nothing: reversals are idempotent.

use codec::{Message, ResponseCode};
use ledger::book::{LedgerEvent, Prepared};

use super::{code_bytes, online_refs, transfer_id_of, Decision, HostTx};
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
    let state = tx.state();
    let day = state.business_day;
    let approved = Decision {
        reply: Reply {
            code: code_bytes(ResponseCode::Approved),
            settlement_day: day,
            rrn: None,
            approval: None,
            balance_minor: None,
        },
        private_data: None,
        mac_key: None,
        reason: None,
    };
    let Some(original_key) = original_key(msg, terminal) else {
        let mut declined = approved;
        declined.reply.code = code_bytes(ResponseCode::FormatError);
        declined.reason = Some("F90 is not MTI + F11 + F7 of an original");
        return declined;
    };
    let original_id = transfer_id_of(&original_key);
    let Some(original) = state.book.transfer(original_id) else {
        tracing::info!(terminal = %terminal.id, stan = original_key.stan, "reversal of an unknown original: nothing to undo");
        return approved;
    };
    if state.book.is_reversed(original_id) {
        return approved;
    }
    let same_card = msg
        .pan()
        .and_then(|p| crate::state::ids::Pan::parse(p).ok())
        .and_then(|p| state.card(&p));
    if !same_card.is_some_and(|card| {
        original
            .transfer
            .legs
            .iter()
            .any(|l| l.account == card.account)
    }) {
        tracing::warn!(terminal = %terminal.id, "reversal names a different card than its original: nothing undone");
        return approved;
    }
    let refs = online_refs(terminal, msg, &key, 0, original.transfer.refs.approval);
    let reversal = match state.book.reversal_of(
        original_id,
        transfer_id_of(&key),
        day,
        refs,
        now_ms,
    ) {
        Ok(reversal) => reversal,
        Err(error) => {
            tracing::warn!(terminal = %terminal.id, ?error, "reversal refused by the ledger: nothing undone");
            return approved;
        }
    };
    if !matches!(state.book.prepare(&reversal), Ok(Prepared::New)) {
        return approved;
    }
    tx.emit(HostEvent::Ledger(LedgerEvent::Post(reversal)));
    approved
}

/// The original's request key from F90: MTI(4) + F11(6) + F7(10) + 22 zeros.
fn original_key(msg: &Message, terminal: &Terminal) -> Option<RequestKey> {
    let data = msg.get(codec::Field::OriginalData)?;
    if data.len() != 42 || !data.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let stan: u32 = std::str::from_utf8(&data[4..10]).ok()?.parse().ok()?;
    let mut transmitted = [0u8; 10];
    transmitted.copy_from_slice(&data[10..20]);
    Some(RequestKey {
        terminal: terminal.id,
        stan,
        transmitted,
    })
}
