//! Transfers: balanced multi-leg postings with an idempotency id and the references the
//! switch needs to find them again (refunds, reversals, batches, clearing).

use arrayvec::ArrayVec;
use serde::{Deserialize, Serialize};

use crate::account::{AccountId, Side};

/// Chosen by the caller and unique for ever: applying the same id twice changes nothing.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TransferId(pub u128);

/// Business day as `YYYYMMDD` (e.g. `20261122`): days are compared and summed by this number.
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub struct BusinessDay(pub u32);

/// The most legs a transfer may have: a replacement (old card, new card, fee) needs three.
pub const LEGS_MAX: usize = 4;

#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leg {
    pub account: AccountId,
    pub side: Side,
    pub amount_minor: u64,
}

/// What a transfer is, for totals, statements and clearing files.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum TransferKind {
    Purchase,
    Refund,
    TopUp,
    OfflinePurchase,
    /// An offline sale on a card blocked in a blacklist the terminal had: the merchant bears it.
    OfflineRejected,
    Deposit,
    Withdrawal,
    Subsidy,
    Replacement,
    Cancellation,
    /// Undoes the transfer named in `Transfer::related`.
    Reversal,
}

impl TransferKind {
    /// The kind's name in statements, reports and clearing files.
    pub fn name(self) -> &'static str {
        match self {
            TransferKind::Purchase => "purchase",
            TransferKind::Refund => "refund",
            TransferKind::TopUp => "topup",
            TransferKind::OfflinePurchase => "offline_purchase",
            TransferKind::OfflineRejected => "offline_rejected",
            TransferKind::Deposit => "deposit",
            TransferKind::Withdrawal => "withdrawal",
            TransferKind::Subsidy => "subsidy",
            TransferKind::Replacement => "replacement",
            TransferKind::Cancellation => "cancellation",
            TransferKind::Reversal => "reversal",
        }
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Channel {
    Online,
    Offline,
}

/// Where a transfer came from. Fixed-size fields so that a transfer never allocates.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct References {
    /// Retrieval reference number assigned by the host, 0 when there is none.
    pub rrn: u64,
    /// Terminal id (8 bytes, space-filled), all zeros when there is none.
    pub terminal: [u8; 8],
    /// Merchant id (15 bytes, space-filled), all zeros when there is none.
    pub merchant: [u8; 15],
    /// Terminal batch (F60), 0 when there is none.
    pub batch: u32,
    /// Terminal's trace number (F11), 0 when there is none.
    pub stan: u32,
    /// Local date and time at the terminal as `MMDDhhmmss` digits, all zeros when unknown.
    pub local_time: [u8; 10],
    /// Approval code (F38), all zeros when there is none.
    pub approval: [u8; 6],
    pub channel: Channel,
}

impl References {
    pub const NONE: References = References {
        rrn: 0,
        terminal: [0; 8],
        merchant: [0; 15],
        batch: 0,
        stan: 0,
        local_time: [0; 10],
        approval: [0; 6],
        channel: Channel::Online,
    };
}

#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    pub id: TransferId,
    pub kind: TransferKind,
    pub business_day: BusinessDay,
    pub legs: ArrayVec<Leg, LEGS_MAX>,
    /// An offline sale may take a card below zero; nothing else may.
    pub allow_overdraft: bool,
    /// For a reversal: the transfer it undoes. For a refund: the purchase it refunds.
    pub related: Option<TransferId>,
    pub refs: References,
    /// Host time the transfer was decided, milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
}

/// By hand: `ArrayVec`'s own `clone` copies the legs one by one through an iterator (a
/// tenth of the cost of applying a purchase); they are `Copy`, so one `memcpy` does.
impl Clone for Transfer {
    fn clone(&self) -> Transfer {
        let mut legs = ArrayVec::new();
        legs.try_extend_from_slice(&self.legs)
            .expect("same capacity");
        Transfer { legs, ..*self }
    }
}

impl Transfer {
    /// Sum of debits equals sum of credits, at least two legs, no zero legs.
    pub fn is_balanced(&self) -> bool {
        let mut debits: u128 = 0;
        let mut credits: u128 = 0;
        for leg in &self.legs {
            match leg.side {
                Side::Debit => debits += leg.amount_minor as u128,
                Side::Credit => credits += leg.amount_minor as u128,
            }
        }
        self.legs.len() >= 2 && debits == credits && self.legs.iter().all(|l| l.amount_minor > 0)
    }

    /// The amount moved: the sum of the debit legs.
    pub fn amount_minor(&self) -> u64 {
        self.legs
            .iter()
            .filter(|l| l.side == Side::Debit)
            .map(|l| l.amount_minor)
            .sum()
    }
}
