//! Checks shared by several request types, each returning the response code that declines.

use codec::{Field, Message, ResponseCode};

use super::{Asking, HostTx};
use crate::pin;
use crate::policy::Policy;
use crate::state::cards::{Card, CardFacts, CardStatus};
use crate::state::ids::{Pan, PanError};
use crate::state::registry::Merchant;
use crate::state::{HostEvent, HostState};

pub type Declined = (ResponseCode, &'static str);

/// Content checks beyond the codec's syntax: what makes a message unusable (`30`).
pub fn format(msg: &Message, policy: &Policy) -> Option<&'static str> {
    if let Some(currency) = msg.get(Field::Currency) {
        if currency != policy.currency {
            return Some("F49 is not the host's currency");
        }
    }
    if let Some(pan) = msg.pan() {
        if !(16..=19).contains(&pan.len()) {
            return Some("F2 must have 16 to 19 digits");
        }
    }
    None
}

/// The card of F2, if it may be used at this merchant now (PROTOCOL.md 3.2, `14` to `57`).
pub fn usable_card<'s>(
    state: &'s HostState,
    msg: &Message,
    merchant: &Merchant,
) -> Result<&'s Card, Declined> {
    let card = find_card(state, msg)?;
    match card.status {
        CardStatus::Lost => return Err((ResponseCode::CardLost, "card reported lost")),
        CardStatus::Cancelled => {
            return Err((ResponseCode::CardCancelledOrFrozen, "card cancelled"))
        }
        CardStatus::Active => {}
    }
    if state.card_balance_minor(card) < 0 {
        return Err((
            ResponseCode::CardCancelledOrFrozen,
            "card frozen after an offline overdraft",
        ));
    }
    if card.expiry.is_expired_on(state.business_day) {
        return Err((ResponseCode::CardExpired, "card expired"));
    }
    if !merchant.accepts(card.kind) {
        return Err((
            ResponseCode::NotPermitted,
            "card kind not accepted by this merchant",
        ));
    }
    Ok(card)
}

pub fn find_card<'s>(state: &'s HostState, msg: &Message) -> Result<&'s Card, Declined> {
    let pan = msg.pan().ok_or((ResponseCode::FormatError, "F2 missing"))?;
    let pan = Pan::parse(pan).map_err(|e| match e {
        PanError::Luhn => (
            ResponseCode::UnknownCard,
            "card number fails the Luhn check",
        ),
        PanError::Length | PanError::NotDigits => {
            (ResponseCode::FormatError, "F2 is not a card number")
        }
    })?;
    state
        .card(&pan)
        .ok_or((ResponseCode::UnknownCard, "card not issued"))
}

/// Verifies F52 when the PIN is `required` or offered anyway. A wrong PIN counts a try; the
/// try that reaches the maximum, and every attempt after it, is `75` until a new PIN is set.
pub fn pin(
    tx: &mut HostTx<'_>,
    card: &CardFacts,
    msg: &Message,
    terminal: &Asking<'_>,
    policy: &Policy,
    required: bool,
) -> Result<(), Declined> {
    if card.pin_tries_failed >= policy.pin_tries_max {
        return Err((ResponseCode::PinTriesExceeded, "PIN tries exceeded"));
    }
    let Some(block) = msg.pin_block() else {
        return if required {
            Err((ResponseCode::PinWrong, "PIN required but missing"))
        } else {
            Ok(())
        };
    };
    let Some(verifier) = &card.pin_verifier else {
        return Err((ResponseCode::PinWrong, "no PIN set for this card"));
    };
    let right = terminal
        .prechecked
        .with_pin(terminal, &card.pan, block, |clear| {
            clear.is_ok_and(|clear| {
                pin::matches(
                    &policy.pin_key,
                    &verifier.set_on,
                    clear.digits(),
                    &verifier.value,
                )
            })
        });
    if right {
        if card.pin_tries_failed > 0 {
            tx.emit(HostEvent::PinTriesReset { pan: card.pan });
        }
        return Ok(());
    }
    tx.emit(HostEvent::PinTryFailed { pan: card.pan });
    if card.pin_tries_failed + 1 >= policy.pin_tries_max {
        Err((
            ResponseCode::PinTriesExceeded,
            "wrong PIN, tries now exceeded",
        ))
    } else {
        Err((ResponseCode::PinWrong, "wrong PIN"))
    }
}
