//! Card actions (PROTOCOL.md 8): issue, lost and found, cash at the desk.

use arrayvec::ArrayVec;
use ledger::account::{AccountKind, Side};
use ledger::book::{LedgerEvent, Prepared, TransferError};
use ledger::transfer::{Leg, References, Transfer, TransferKind};
use serde::Deserialize;

use super::{reference_transfer_id, OpError};
use crate::authorize::HostTx;
use crate::money::parse_amount;
use crate::pin;
use crate::policy::Policy;
use crate::state::cards::{
    Card, CardKind, CardStatus, DailyUsage, Expiry, LimitOverrides, PinVerifier,
};
use crate::state::ids::Pan;
use crate::state::HostEvent;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsInput {
    pub per_txn: Option<String>,
    pub daily_amount: Option<String>,
    pub daily_count: Option<u32>,
    pub pin_threshold: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCard {
    pub pan: String,
    pub holder_name: String,
    pub holder_id: String,
    pub kind: String,
    pub expiry: String,
    pub pin: Option<String>,
    pub bank_account: Option<String>,
    pub limits: Option<LimitsInput>,
}

pub fn parse_pan(text: &str) -> Result<Pan, OpError> {
    Pan::parse(text).map_err(|e| OpError::invalid(format!("pan: {e}")))
}

pub fn parse_limits(input: &LimitsInput) -> Result<LimitOverrides, OpError> {
    let amount = |name: &str, value: &Option<String>| -> Result<Option<u64>, OpError> {
        value
            .as_deref()
            .map(parse_amount)
            .transpose()
            .map_err(|e| OpError::invalid(format!("limits.{name}: {e}")))
    };
    Ok(LimitOverrides {
        per_txn_minor: amount("per_txn", &input.per_txn)?,
        daily_amount_minor: amount("daily_amount", &input.daily_amount)?,
        daily_count: input.daily_count,
        pin_threshold_minor: amount("pin_threshold", &input.pin_threshold)?,
    })
}

pub fn issue_card(tx: &mut HostTx<'_>, policy: &Policy, new: &NewCard) -> Result<Card, OpError> {
    let pan = parse_pan(&new.pan)?;
    let kind = CardKind::parse(&new.kind).ok_or_else(|| {
        OpError::invalid(format!(
            "kind `{}` is not student, staff or temporary",
            new.kind
        ))
    })?;
    let expiry =
        Expiry::parse(&new.expiry).ok_or_else(|| OpError::invalid("expiry must be YYMM"))?;
    for (name, value) in [
        ("holder_name", &new.holder_name),
        ("holder_id", &new.holder_id),
    ] {
        if value.trim().is_empty() || value.len() > 100 || value.contains(['\n', '\r']) {
            return Err(OpError::invalid(format!(
                "{name} must be 1 to 100 characters on one line"
            )));
        }
    }
    let bank_account = match &new.bank_account {
        Some(account) => {
            Some(Pan::parse(account).map_err(|e| OpError::invalid(format!("bank_account: {e}")))?)
        }
        None => None,
    };
    if kind == CardKind::Temporary && bank_account.is_some() {
        return Err(OpError::invalid(
            "temporary cards cannot be linked to a bank account",
        ));
    }
    let limits = new
        .limits
        .as_ref()
        .map(parse_limits)
        .transpose()?
        .unwrap_or_default();
    if let Some(pin) = &new.pin {
        if !pin::is_valid_pin(pin) {
            return Err(OpError::invalid("pin must be 4 to 12 digits"));
        }
    }
    if tx.state().cards.contains_key(&pan) {
        return Err(OpError::Conflict(format!("card {pan} is already issued")));
    }
    let account = tx.state().book.next_account_id();
    tx.emit(HostEvent::Ledger(LedgerEvent::OpenAccount {
        id: account,
        kind: AccountKind::CardStoredValue,
    }));
    let card = Card {
        pan,
        account,
        kind,
        status: CardStatus::Active,
        expiry,
        holder_name: new.holder_name.trim().to_owned(),
        holder_id: new.holder_id.trim().to_owned(),
        bank_account,
        limits,
        pin_verifier: new.pin.as_deref().map(|p| PinVerifier {
            set_on: pan,
            value: pin::verifier(&policy.pin_key, &pan, p),
        }),
        pin_tries_failed: 0,
        usage: DailyUsage {
            day: tx.state().business_day,
            amount_minor: 0,
            count: 0,
        },
        replaced_by: None,
    };
    tx.emit(HostEvent::CardIssued(Box::new(card.clone())));
    Ok(card)
}

/// Lost blocks the card at once and puts it on the blacklist; found unblocks it.
pub fn set_lost(tx: &mut HostTx<'_>, pan: &Pan, lost: bool, now_ms: u64) -> Result<(), OpError> {
    let card = tx
        .state()
        .card(pan)
        .ok_or_else(|| OpError::NotFound(format!("card {pan} is not issued")))?;
    match (card.status, lost) {
        (CardStatus::Cancelled, _) => {
            return Err(OpError::Conflict(format!("card {pan} is cancelled")))
        }
        (CardStatus::Lost, true) | (CardStatus::Active, false) => return Ok(()),
        _ => {}
    }
    let status = if lost {
        CardStatus::Lost
    } else {
        CardStatus::Active
    };
    tx.emit(HostEvent::CardStatusSet {
        pan: *pan,
        status,
        at_ms: now_ms,
    });
    Ok(())
}

/// The first result of a desk action, or of its earlier twin with the same reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeskResult {
    pub amount_minor: u64,
    pub balance_minor: i64,
    pub repeated: bool,
}

/// Cash in (`Deposit`) or out (`Withdrawal`) at a service desk, idempotent by reference.
pub fn desk_cash(
    tx: &mut HostTx<'_>,
    pan: &Pan,
    kind: TransferKind,
    amount_minor: u64,
    reference: &str,
    now_ms: u64,
) -> Result<DeskResult, OpError> {
    debug_assert!(matches!(
        kind,
        TransferKind::Deposit | TransferKind::Withdrawal
    ));
    if reference.trim().is_empty() || reference.len() > 64 {
        return Err(OpError::invalid("reference must be 1 to 64 characters"));
    }
    if amount_minor == 0 {
        return Err(OpError::invalid("amount must be above zero"));
    }
    let state = tx.state();
    let card = state
        .card(pan)
        .ok_or_else(|| OpError::NotFound(format!("card {pan} is not issued")))?
        .clone();
    let id = reference_transfer_id(
        if kind == TransferKind::Deposit {
            "deposit"
        } else {
            "withdrawal"
        },
        reference,
    );
    let cash_desk = state.system().cash_desk;
    let (debit, credit) = match kind {
        TransferKind::Deposit => (cash_desk, card.account),
        _ => (card.account, cash_desk),
    };
    let mut legs = ArrayVec::new();
    legs.push(Leg {
        account: debit,
        side: Side::Debit,
        amount_minor,
    });
    legs.push(Leg {
        account: credit,
        side: Side::Credit,
        amount_minor,
    });
    let transfer = Transfer {
        id,
        kind,
        business_day: state.business_day,
        legs,
        allow_overdraft: false,
        related: None,
        refs: References::NONE,
        timestamp_ms: now_ms,
    };
    match state.book.prepare(&transfer) {
        Ok(Prepared::Duplicate(first)) => {
            let first_amount = first.transfer.amount_minor();
            let same_card = first
                .transfer
                .legs
                .iter()
                .any(|l| l.account == card.account);
            if !same_card || first_amount != amount_minor {
                return Err(OpError::Conflict(format!(
                    "reference `{reference}` was used for another request"
                )));
            }
            // The first result: the balance right after the first posting.
            let first_id = first.transfer.id;
            let balance_minor = state
                .book
                .postings_of(card.account)
                .rev()
                .find(|(applied, _)| applied.transfer.id == first_id)
                .map(|(_, balance)| balance)
                .expect("a transfer on the card is among its postings");
            return Ok(DeskResult {
                amount_minor,
                balance_minor,
                repeated: true,
            });
        }
        Ok(Prepared::New) => {}
        Err(TransferError::InsufficientFunds { .. }) => {
            return Err(OpError::Conflict(format!(
                "card {pan} has less than the amount"
            )))
        }
        Err(error) => {
            return Err(OpError::Conflict(format!(
                "ledger refused the transfer: {error}"
            )))
        }
    }
    if card.status == CardStatus::Cancelled {
        return Err(OpError::Conflict(format!("card {pan} is cancelled")));
    }
    tx.emit(HostEvent::Ledger(LedgerEvent::Post(transfer)));
    Ok(DeskResult {
        amount_minor,
        balance_minor: tx.state().card_balance_minor(&card),
        repeated: false,
    })
}
