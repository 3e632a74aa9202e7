//! Bulk subsidies (PROTOCOL.md 8): many cards credited from the subsidy fund, all or nothing,
//! idempotent by the batch's reference.

use std::collections::HashSet;

use arrayvec::ArrayVec;
use ledger::account::Side;
use ledger::book::{LedgerEvent, Prepared};
use ledger::transfer::{Leg, References, Transfer, TransferId, TransferKind};
use serde::Deserialize;

use super::{reference_transfer_id, OpError};
use crate::authorize::HostTx;
use crate::money::parse_amount;
use crate::state::cards::CardStatus;
use crate::state::ids::Pan;
use crate::state::HostEvent;

/// Most items in one batch: a batch is one atomic WAL group, and stalls terminal traffic
/// while the engine thread runs it.
pub const SUBSIDY_ITEMS_MAX: usize = 10_000;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubsidyBatch {
    pub reference: String,
    pub items: Vec<SubsidyItem>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubsidyItem {
    pub pan: String,
    pub amount: String,
}

/// An item that makes the whole batch fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedItem {
    pub index: usize,
    pub pan: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubsidyError {
    Op(OpError),
    /// Nothing was posted because of these items.
    Rejected(Vec<RejectedItem>),
}

impl From<OpError> for SubsidyError {
    fn from(error: OpError) -> SubsidyError {
        SubsidyError::Op(error)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubsidyPaid {
    pub count: usize,
    pub total_minor: u64,
    pub repeated: bool,
}

/// Item `index` of batch `reference` is the transfer with this id.
fn item_id(reference: &str, index: usize) -> TransferId {
    reference_transfer_id("subsidy", &format!("{reference}\0{index}"))
}

pub fn pay_subsidies(
    tx: &mut HostTx<'_>,
    batch: &SubsidyBatch,
    now_ms: u64,
) -> Result<SubsidyPaid, SubsidyError> {
    let reference = batch.reference.as_str();
    if reference.trim().is_empty() || reference.len() > 64 {
        return Err(OpError::invalid("reference must be 1 to 64 characters").into());
    }
    if batch.items.is_empty() || batch.items.len() > SUBSIDY_ITEMS_MAX {
        return Err(OpError::invalid(format!(
            "items must hold 1 to {SUBSIDY_ITEMS_MAX} subsidies"
        ))
        .into());
    }
    if tx.state().book.transfer(item_id(reference, 0)).is_some() {
        return repeated(tx, batch);
    }

    let state = tx.state();
    let mut rejected = Vec::new();
    let mut seen = HashSet::with_capacity(batch.items.len());
    let mut credits = Vec::with_capacity(batch.items.len());
    for (index, item) in batch.items.iter().enumerate() {
        let mut reject = |reason: String| {
            rejected.push(RejectedItem {
                index,
                pan: item.pan.clone(),
                reason,
            })
        };
        let pan = match Pan::parse(&item.pan) {
            Ok(pan) => pan,
            Err(e) => {
                reject(format!("pan: {e}"));
                continue;
            }
        };
        let amount = match parse_amount(&item.amount) {
            Ok(0) => {
                reject("amount must be above zero".into());
                continue;
            }
            Ok(amount) => amount,
            Err(e) => {
                reject(format!("amount: {e}"));
                continue;
            }
        };
        if !seen.insert(pan) {
            reject("card listed more than once in the batch".into());
            continue;
        }
        match state.card(&pan) {
            None => reject("card is not issued".into()),
            Some(card) if card.status == CardStatus::Cancelled => {
                reject("card is cancelled".into())
            }
            Some(card) => credits.push((card.account, amount)),
        }
    }
    if !rejected.is_empty() {
        return Err(SubsidyError::Rejected(rejected));
    }

    let fund = state.system().subsidy_fund;
    let day = state.business_day;
    let transfers: Vec<Transfer> = credits
        .iter()
        .enumerate()
        .map(|(index, &(account, amount_minor))| {
            let mut legs = ArrayVec::new();
            legs.push(Leg {
                account: fund,
                side: Side::Debit,
                amount_minor,
            });
            legs.push(Leg {
                account,
                side: Side::Credit,
                amount_minor,
            });
            Transfer {
                id: item_id(reference, index),
                kind: TransferKind::Subsidy,
                business_day: day,
                legs,
                allow_overdraft: false,
                related: None,
                refs: References::NONE,
                timestamp_ms: now_ms,
            }
        })
        .collect();
    // Every card appears once and credits cannot be refused short of an overflow: check all
    // before posting any, so the batch stays all or nothing.
    for (index, transfer) in transfers.iter().enumerate() {
        match state.book.prepare(transfer) {
            Ok(Prepared::New) => {}
            Ok(Prepared::Duplicate(_)) => {
                return Err(OpError::Conflict(format!(
                    "item {index} of reference `{reference}` was already posted"
                ))
                .into())
            }
            Err(e) => {
                return Err(SubsidyError::Rejected(vec![RejectedItem {
                    index,
                    pan: batch.items[index].pan.clone(),
                    reason: format!("ledger refused it: {e}"),
                }]))
            }
        }
    }
    let total_minor = transfers.iter().map(Transfer::amount_minor).sum();
    let count = transfers.len();
    for transfer in transfers {
        tx.emit(HostEvent::Ledger(LedgerEvent::Post(transfer)));
    }
    Ok(SubsidyPaid {
        count,
        total_minor,
        repeated: false,
    })
}

/// The batch's reference was posted before: the same batch gets its first result, another
/// batch under the same reference is refused.
fn repeated(tx: &HostTx<'_>, batch: &SubsidyBatch) -> Result<SubsidyPaid, SubsidyError> {
    let state = tx.state();
    let conflict = || {
        SubsidyError::Op(OpError::Conflict(format!(
            "reference `{}` was used for another subsidy batch",
            batch.reference
        )))
    };
    let mut total_minor = 0;
    for (index, item) in batch.items.iter().enumerate() {
        let posted = state
            .book
            .transfer(item_id(&batch.reference, index))
            .ok_or_else(conflict)?;
        let account = Pan::parse(&item.pan)
            .ok()
            .and_then(|pan| state.card(&pan))
            .map(|card| card.account);
        let same = parse_amount(&item.amount).ok() == Some(posted.transfer.amount_minor())
            && posted
                .transfer
                .legs
                .iter()
                .any(|leg| Some(leg.account) == account && leg.side == Side::Credit);
        if !same {
            return Err(conflict());
        }
        total_minor += posted.transfer.amount_minor();
    }
    if state
        .book
        .transfer(item_id(&batch.reference, batch.items.len()))
        .is_some()
    {
        return Err(conflict());
    }
    Ok(SubsidyPaid {
        count: batch.items.len(),
        total_minor,
        repeated: true,
    })
}
