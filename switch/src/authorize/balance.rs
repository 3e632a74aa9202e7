//! Balance inquiry, 0100 F3=310000 (PROTOCOL.md 3.3): the card's checks, then F54. Changes
//! nothing but PIN tries.

use codec::{Message, ResponseCode};

use super::checks;
use super::{code_bytes, Asking, Decision, HostTx};
use crate::policy::Policy;
use crate::state::answers::Reply;

pub fn decide(
    tx: &mut HostTx<'_>,
    msg: &Message,
    terminal: &Asking<'_>,
    policy: &Policy,
) -> Decision {
    let state = tx.state();
    let day = state.business_day;
    let merchant = &state.merchants[&terminal.merchant];
    let outcome = checks::usable_card(state, msg, merchant)
        .map(|card| card.facts())
        .and_then(|card| {
            // No amount to compare with the threshold: a PIN is required only when the card asks
            // for one on every transaction (threshold 0); one offered anyway is checked.
            let limits = card.limits.over(policy.kind_limits(card.kind));
            checks::pin(
                tx,
                &card,
                msg,
                terminal,
                policy,
                limits.pin_threshold_minor == 0,
            )?;
            Ok(tx.state().card_account_balance_minor(card.account))
        });
    match outcome {
        Ok(balance_minor) => Decision {
            reply: Reply {
                code: code_bytes(ResponseCode::Approved),
                settlement_day: day,
                rrn: None,
                approval: None,
                balance_minor: Some(balance_minor),
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
