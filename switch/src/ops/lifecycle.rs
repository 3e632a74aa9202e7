//! A card's life after issue (PROTOCOL.md 8): replace, cancel, PIN, limits, expiry.

use arrayvec::ArrayVec;
use ledger::account::{AccountKind, Side};
use ledger::book::{LedgerEvent, Prepared};
use ledger::transfer::{Leg, References, Transfer, TransferKind};
use serde::{Deserialize, Deserializer};

use super::{reference_transfer_id, OpError};
use crate::authorize::HostTx;
use crate::money::parse_amount;
use crate::pin;
use crate::policy::Policy;
use crate::state::cards::{Card, CardStatus, Expiry, LimitOverrides};
use crate::state::ids::Pan;
use crate::state::HostEvent;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplaceRequest {
    pub new_pan: String,
    /// The new card's expiry, `YYMM`; the old card's when absent.
    pub expiry: Option<String>,
}

/// What a replacement did: the balance moved and the fee kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replaced {
    pub new_pan: Pan,
    pub moved_minor: u64,
    pub fee_minor: u64,
    /// The same replacement was asked for again: nothing was changed this time.
    pub repeated: bool,
}

fn issued<'s>(tx: &'s HostTx<'_>, pan: &Pan) -> Result<&'s Card, OpError> {
    tx.state()
        .card(pan)
        .ok_or_else(|| OpError::NotFound(format!("card {pan} is not issued")))
}

fn not_cancelled(card: &Card) -> Result<(), OpError> {
    if card.status == CardStatus::Cancelled {
        return Err(OpError::Conflict(format!("card {} is cancelled", card.pan)));
    }
    Ok(())
}

fn transfer(
    tx: &HostTx<'_>,
    id_action: &str,
    pan: &Pan,
    kind: TransferKind,
    legs: &[(ledger::account::AccountId, Side, u64)],
    now_ms: u64,
) -> Transfer {
    let legs: ArrayVec<Leg, { ledger::transfer::LEGS_MAX }> = legs
        .iter()
        .filter(|(_, _, amount)| *amount > 0)
        .map(|&(account, side, amount_minor)| Leg {
            account,
            side,
            amount_minor,
        })
        .collect();
    Transfer {
        // A card is replaced or cancelled once: its PAN names the transfer for ever.
        id: reference_transfer_id(id_action, pan.as_str()),
        kind,
        business_day: tx.state().business_day,
        legs,
        allow_overdraft: false,
        related: None,
        refs: References::NONE,
        timestamp_ms: now_ms,
    }
}

/// The old card is cancelled (and so blacklisted); a new card takes its holder, kind,
/// limits, PIN, today's usage and failed PIN tries, and its balance less the replacement fee,
/// in one ledger transfer: debit old, credit new, credit fee revenue. A fee above the balance
/// takes the whole balance.
pub fn replace_card(
    tx: &mut HostTx<'_>,
    policy: &Policy,
    old_pan: &Pan,
    request: &ReplaceRequest,
    now_ms: u64,
) -> Result<Replaced, OpError> {
    let new_pan =
        Pan::parse(&request.new_pan).map_err(|e| OpError::invalid(format!("new_pan: {e}")))?;
    let expiry = request
        .expiry
        .as_deref()
        .map(|e| Expiry::parse(e).ok_or_else(|| OpError::invalid("expiry must be YYMM")))
        .transpose()?;
    let old = issued(tx, old_pan)?.clone();
    if old.replaced_by == Some(new_pan) {
        let id = reference_transfer_id("replace", old_pan.as_str());
        let fee_account = tx.state().system().fee_revenue;
        let (moved_minor, fee_minor) = tx.state().book.transfer(id).map_or((0, 0), |t| {
            let credited = |account| {
                t.transfer
                    .legs
                    .iter()
                    .filter(|l| l.side == Side::Credit && l.account == account)
                    .map(|l| l.amount_minor)
                    .sum::<u64>()
            };
            let total = t.transfer.amount_minor();
            let fee = credited(fee_account);
            (total - fee, fee)
        });
        return Ok(Replaced {
            new_pan,
            moved_minor,
            fee_minor,
            repeated: true,
        });
    }
    not_cancelled(&old)?;
    if new_pan == *old_pan {
        return Err(OpError::invalid("new_pan is the card being replaced"));
    }
    if tx.state().cards.contains_key(&new_pan) {
        return Err(OpError::Conflict(format!(
            "card {new_pan} is already issued"
        )));
    }
    let balance = tx.state().card_balance_minor(&old);
    if balance < 0 {
        return Err(OpError::Conflict(format!(
            "card {old_pan} is overdrawn: bring its balance to zero with a deposit first"
        )));
    }
    let balance = balance as u64;
    let fee_minor = policy.replacement_fee_minor.min(balance);
    let moved_minor = balance - fee_minor;

    let account = tx.state().book.next_account_id();
    tx.emit(HostEvent::Ledger(LedgerEvent::OpenAccount {
        id: account,
        kind: AccountKind::CardStoredValue,
    }));
    let new_card = Card {
        pan: new_pan,
        account,
        status: CardStatus::Active,
        expiry: expiry.unwrap_or(old.expiry),
        replaced_by: None,
        ..old.clone()
    };
    tx.emit(HostEvent::CardIssued(Box::new(new_card)));
    if balance > 0 {
        let fee_revenue = tx.state().system().fee_revenue;
        let moving = transfer(
            tx,
            "replace",
            old_pan,
            TransferKind::Replacement,
            &[
                (old.account, Side::Debit, balance),
                (account, Side::Credit, moved_minor),
                (fee_revenue, Side::Credit, fee_minor),
            ],
            now_ms,
        );
        // The old card holds `balance`, the new account is fresh: this cannot be refused.
        assert_eq!(tx.state().book.prepare(&moving), Ok(Prepared::New));
        tx.emit(HostEvent::Ledger(LedgerEvent::Post(moving)));
    }
    tx.emit(HostEvent::CardStatusSet {
        pan: *old_pan,
        status: CardStatus::Cancelled,
        at_ms: now_ms,
    });
    tx.emit(HostEvent::CardReplaced {
        old: *old_pan,
        new: new_pan,
    });
    Ok(Replaced {
        new_pan,
        moved_minor,
        fee_minor,
        repeated: false,
    })
}

/// What cancelling did with the balance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cancelled {
    pub balance_minor: u64,
    pub to_forfeit: bool,
    pub repeated: bool,
}

/// Cancels a card (and so blacklists it). A remaining balance goes to forfeited balances or
/// is paid out at the cash desk, as configured. An overdrawn card is refused: its debt must
/// be settled first, not silently written off.
pub fn cancel_card(
    tx: &mut HostTx<'_>,
    policy: &Policy,
    pan: &Pan,
    now_ms: u64,
) -> Result<Cancelled, OpError> {
    let card = issued(tx, pan)?.clone();
    if card.status == CardStatus::Cancelled {
        return Ok(Cancelled {
            balance_minor: 0,
            to_forfeit: policy.cancel_balance_to_forfeit,
            repeated: true,
        });
    }
    let balance = tx.state().card_balance_minor(&card);
    if balance < 0 {
        return Err(OpError::Conflict(format!(
            "card {pan} is overdrawn: bring its balance to zero with a deposit first"
        )));
    }
    let balance = balance as u64;
    if balance > 0 {
        let system = tx.state().system();
        let to = if policy.cancel_balance_to_forfeit {
            system.forfeited
        } else {
            system.cash_desk
        };
        let closing = transfer(
            tx,
            "cancel",
            pan,
            TransferKind::Cancellation,
            &[
                (card.account, Side::Debit, balance),
                (to, Side::Credit, balance),
            ],
            now_ms,
        );
        assert_eq!(tx.state().book.prepare(&closing), Ok(Prepared::New));
        tx.emit(HostEvent::Ledger(LedgerEvent::Post(closing)));
    }
    tx.emit(HostEvent::CardStatusSet {
        pan: *pan,
        status: CardStatus::Cancelled,
        at_ms: now_ms,
    });
    Ok(Cancelled {
        balance_minor: balance,
        to_forfeit: policy.cancel_balance_to_forfeit,
        repeated: false,
    })
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinRequest {
    pub pin: String,
}

/// Sets a new PIN (only its keyed verification value is kept) and resets the failed tries.
pub fn set_pin(
    tx: &mut HostTx<'_>,
    policy: &Policy,
    pan: &Pan,
    request: &PinRequest,
) -> Result<(), OpError> {
    if !pin::is_valid_pin(&request.pin) {
        return Err(OpError::invalid("pin must be 4 to 12 digits"));
    }
    not_cancelled(issued(tx, pan)?)?;
    tx.emit(HostEvent::PinSet {
        pan: *pan,
        verifier: pin::verifier(&policy.pin_key, pan, &request.pin),
    });
    Ok(())
}

/// `Some(None)` for an explicit `null`, `None` for an absent field.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A change of limits: a field given sets the card's own limit, `null` returns it to its
/// kind's default from the configuration, an absent field is left as it is.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsUpdate {
    #[serde(default, deserialize_with = "present")]
    pub per_txn: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub daily_amount: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub daily_count: Option<Option<u32>>,
    #[serde(default, deserialize_with = "present")]
    pub pin_threshold: Option<Option<String>>,
}

/// Applies a limits change; returns the card's overrides before and after.
pub fn set_limits(
    tx: &mut HostTx<'_>,
    pan: &Pan,
    update: &LimitsUpdate,
) -> Result<(LimitOverrides, LimitOverrides), OpError> {
    let untouched = update.per_txn.is_none()
        && update.daily_amount.is_none()
        && update.daily_count.is_none()
        && update.pin_threshold.is_none();
    if untouched {
        return Err(OpError::invalid(
            "name at least one of per_txn, daily_amount, daily_count, pin_threshold",
        ));
    }
    let amount = |name: &str,
                  field: &Option<Option<String>>,
                  current: Option<u64>|
     -> Result<Option<u64>, OpError> {
        match field {
            None => Ok(current),
            Some(None) => Ok(None),
            Some(Some(text)) => parse_amount(text)
                .map(Some)
                .map_err(|e| OpError::invalid(format!("{name}: {e}"))),
        }
    };
    let card = issued(tx, pan)?;
    let before = card.limits;
    let after = LimitOverrides {
        per_txn_minor: amount("per_txn", &update.per_txn, before.per_txn_minor)?,
        daily_amount_minor: amount(
            "daily_amount",
            &update.daily_amount,
            before.daily_amount_minor,
        )?,
        daily_count: update.daily_count.unwrap_or(before.daily_count),
        pin_threshold_minor: amount(
            "pin_threshold",
            &update.pin_threshold,
            before.pin_threshold_minor,
        )?,
    };
    not_cancelled(card)?;
    if after != before {
        tx.emit(HostEvent::CardLimitsSet {
            pan: *pan,
            limits: after,
        });
    }
    Ok((before, after))
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpiryRequest {
    pub expiry: String,
}

/// Extends (or shortens) a card's validity; returns the expiry before.
pub fn set_expiry(
    tx: &mut HostTx<'_>,
    pan: &Pan,
    request: &ExpiryRequest,
) -> Result<Expiry, OpError> {
    let expiry =
        Expiry::parse(&request.expiry).ok_or_else(|| OpError::invalid("expiry must be YYMM"))?;
    let card = issued(tx, pan)?;
    not_cancelled(card)?;
    let before = card.expiry;
    if before != expiry {
        tx.emit(HostEvent::CardExpirySet { pan: *pan, expiry });
    }
    Ok(before)
}
