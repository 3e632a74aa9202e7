//! Accounts: a kind and the running totals of what was posted to each side.

use serde::{Deserialize, Serialize};

/// Dense account number, allocated in order by the book: the book keeps accounts in a `Vec`
/// indexed by it, which is what keeps a million card accounts small.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AccountId(pub u32);

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Side {
    Debit,
    Credit,
}

/// What an account stands for. The kind fixes its normal side and its balance rule.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum AccountKind {
    /// A cardholder's stored value: owed by the host to the holder (credit-normal), never below
    /// zero unless a transfer is explicitly an offline overdraft.
    CardStoredValue,
    /// What the host owes a merchant for its sales (credit-normal).
    MerchantPayable,
    /// What the partner bank owes the host for top-ups it approved (debit-normal).
    BankSettlement,
    /// The institution's subsidy budget paid out to cards (debit-normal).
    SubsidyFund,
    /// Cash held at the service desks (debit-normal).
    CashDesk,
    /// Fees earned from merchants (credit-normal).
    FeeRevenue,
    /// Balances of cancelled cards kept by the institution (credit-normal).
    ForfeitedBalances,
    /// Offline sales the host could not charge to a card (debit-normal).
    OfflineSuspense,
}

impl AccountKind {
    pub fn normal_side(self) -> Side {
        match self {
            AccountKind::CardStoredValue
            | AccountKind::MerchantPayable
            | AccountKind::FeeRevenue
            | AccountKind::ForfeitedBalances => Side::Credit,
            AccountKind::BankSettlement
            | AccountKind::SubsidyFund
            | AccountKind::CashDesk
            | AccountKind::OfflineSuspense => Side::Debit,
        }
    }
}

/// Totals posted to an account. Balances are derived, never stored, so they cannot drift.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub debits_minor: u64,
    pub credits_minor: u64,
    pub kind: AccountKind,
}

impl Account {
    pub fn new(kind: AccountKind) -> Self {
        Account {
            debits_minor: 0,
            credits_minor: 0,
            kind,
        }
    }

    /// Balance on the account's normal side, in minor units; negative means overdrawn.
    pub fn balance_minor(&self) -> i64 {
        let (plus, minus) = match self.kind.normal_side() {
            Side::Credit => (self.credits_minor, self.debits_minor),
            Side::Debit => (self.debits_minor, self.credits_minor),
        };
        plus as i64 - minus as i64
    }
}
