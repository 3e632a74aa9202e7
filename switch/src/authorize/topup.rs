//! Top-up from the linked bank account, 0200 F3=400000 (PROTOCOL.md 3.5). The card and PIN
//! are checked here, on the engine thread; a top-up that passes is recorded as started
//! (durably, before the bank hears of it) and handed to `bank::topup` for the bank's answer.

use codec::{Message, ResponseCode};

use super::checks::{self, Declined};
use super::{Asking, BankGate, Decision, HostTx};
use crate::bank::messages::transmission_time;
use crate::policy::Policy;
use crate::state::answers::{Reply, RequestKey};
use crate::state::bank::PendingTopUp;
use crate::state::cards::CardKind;
use crate::state::HostEvent;

/// The decision (a decline), or the top-up to send to the bank.
pub fn decide(
    tx: &mut HostTx<'_>,
    msg: &Message,
    terminal: &Asking<'_>,
    policy: &Policy,
    (key, digest): (RequestKey, u128),
    gate: BankGate,
    now_ms: u64,
) -> (Decision, Option<PendingTopUp>) {
    let day = tx.state().business_day;
    let (code, reason) = match start(tx, msg, terminal, policy, (key, digest), gate, now_ms) {
        Ok(pending) => {
            // Not sent to the kiosk: the bank's answer replaces it.
            let placeholder = Decision {
                reply: Reply::declined(ResponseCode::BankUnavailable, day),
                private_data: None,
                mac_key: None,
                reason: None,
            };
            return (placeholder, Some(pending));
        }
        Err(declined) => declined,
    };
    (Decision::settled(tx, Err((code, reason))), None)
}

fn start(
    tx: &mut HostTx<'_>,
    msg: &Message,
    terminal: &Asking<'_>,
    policy: &Policy,
    (key, digest): (RequestKey, u128),
    gate: BankGate,
    now_ms: u64,
) -> Result<PendingTopUp, Declined> {
    let state = tx.state();
    let merchant = &state.merchants[&terminal.merchant];
    let card = checks::usable_card(state, msg, merchant)?.facts();
    let Some(bank_account) = card
        .bank_account
        .filter(|_| card.kind != CardKind::Temporary)
    else {
        return Err((
            ResponseCode::NotPermitted,
            "card cannot top up from a bank account",
        ));
    };
    let amount_minor = msg.amount_minor().unwrap_or(0);
    if amount_minor == 0 {
        return Err((ResponseCode::InvalidAmount, "amount must be above zero"));
    }
    checks::pin(tx, &card, msg, terminal, policy, true)?;
    let state = tx.state();
    if !gate.link_up {
        return Err((ResponseCode::BankUnavailable, "bank link down"));
    }
    if state.bank.saf.len() >= gate.saf_depth_max {
        return Err((
            ResponseCode::BankUnavailable,
            "store-and-forward queue full: no new bank traffic",
        ));
    }
    let pending = PendingTopUp {
        key,
        digest,
        bank_stan: state.bank.next_stan(),
        bank_transmitted: transmission_time(now_ms),
        rrn: state.next_rrn,
        card: card.pan,
        bank_account,
        amount_minor,
        terminal: terminal.id,
        merchant: terminal.merchant,
        batch: msg.batch().unwrap_or(0),
        local_time: super::local_time(msg),
        started_ms: now_ms,
    };
    tx.emit(HostEvent::TopUpStarted(Box::new(pending)));
    Ok(pending)
}
