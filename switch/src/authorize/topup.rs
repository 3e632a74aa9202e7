//! Top-up from the linked bank account, 0200 F3=400000 (PROTOCOL.md 3.5). The card and PIN
//! are checked here; the bank's authorization is the bank link's.

use codec::{Message, ResponseCode};

use super::checks;
use super::{Decision, HostTx};
use crate::policy::Policy;
use crate::state::answers::Reply;
use crate::state::cards::CardKind;
use crate::state::registry::Terminal;

pub fn decide(
    tx: &mut HostTx<'_>,
    msg: &Message,
    terminal: &Terminal,
    policy: &Policy,
) -> Decision {
    let state = tx.state();
    let day = state.business_day;
    let merchant = &state.merchants[&terminal.merchant];
    let outcome: Result<(), (ResponseCode, &str)> = checks::usable_card(state, msg, merchant)
        .cloned()
        .and_then(|card| {
            if card.kind == CardKind::Temporary || card.bank_account.is_none() {
                return Err((
                    ResponseCode::NotPermitted,
                    "card cannot top up from a bank account",
                ));
            }
            if msg.amount_minor().unwrap_or(0) == 0 {
                return Err((ResponseCode::InvalidAmount, "amount must be above zero"));
            }
            checks::pin(tx, &card, msg, terminal, policy, true)?;
            // No bank link is configured in this build's path: the bank is unavailable.
            Err((ResponseCode::BankUnavailable, "bank link down"))
        });
    let (code, reason) = outcome.unwrap_err();
    let mut reply = Reply::declined(code, day);
    reply.rrn = Some(tx.state().next_rrn);
    Decision {
        reply,
        private_data: None,
        mac_key: None,
        reason: Some(reason),
    }
}
