//! Card records: what a card is, its status, limits, PIN verifier and today's usage.
//! Balances are not here: they live in the ledger, under the card's account.

use serde::{Deserialize, Serialize};

use ledger::account::AccountId;
use ledger::transfer::BusinessDay;

use super::ids::Pan;

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CardKind {
    Student,
    Staff,
    Temporary,
}

impl CardKind {
    pub const ALL: [CardKind; 3] = [CardKind::Student, CardKind::Staff, CardKind::Temporary];

    pub fn parse(text: &str) -> Option<CardKind> {
        match text {
            "student" => Some(CardKind::Student),
            "staff" => Some(CardKind::Staff),
            "temporary" => Some(CardKind::Temporary),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CardKind::Student => "student",
            CardKind::Staff => "staff",
            CardKind::Temporary => "temporary",
        }
    }

    /// Bit of this kind in a merchant's accepted-kinds mask.
    pub fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// What an operator set. `frozen` is not stored: a card is frozen while its balance is
/// below zero (after an offline overdraft), so it thaws by itself when money comes in.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CardStatus {
    Active,
    Lost,
    Cancelled,
}

/// `YYMM`, valid through the last day of that month.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expiry {
    pub year: u16,
    pub month: u8,
}

impl Expiry {
    pub fn parse(text: &str) -> Option<Expiry> {
        if text.len() != 4 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let year = 2000 + text[..2].parse::<u16>().ok()?;
        let month = text[2..].parse::<u8>().ok()?;
        (1..=12).contains(&month).then_some(Expiry { year, month })
    }

    pub fn as_yymm(&self) -> String {
        format!("{:02}{:02}", self.year % 100, self.month)
    }

    /// Expired once the business day is past the expiry month.
    pub fn is_expired_on(&self, day: BusinessDay) -> bool {
        let (year, month) = ((day.0 / 10_000) as u16, (day.0 / 100 % 100) as u8);
        (year, month) > (self.year, self.month)
    }
}

/// A card's own limits; `None` takes the default of its kind from the configuration.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitOverrides {
    pub per_txn_minor: Option<u64>,
    pub daily_amount_minor: Option<u64>,
    pub daily_count: Option<u32>,
    pub pin_threshold_minor: Option<u64>,
}

/// Limits in force for a card: its overrides over its kind's defaults.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub per_txn_minor: u64,
    pub daily_amount_minor: u64,
    pub daily_count: u32,
    pub pin_threshold_minor: u64,
}

impl LimitOverrides {
    pub fn over(&self, defaults: &Limits) -> Limits {
        Limits {
            per_txn_minor: self.per_txn_minor.unwrap_or(defaults.per_txn_minor),
            daily_amount_minor: self
                .daily_amount_minor
                .unwrap_or(defaults.daily_amount_minor),
            daily_count: self.daily_count.unwrap_or(defaults.daily_count),
            pin_threshold_minor: self
                .pin_threshold_minor
                .unwrap_or(defaults.pin_threshold_minor),
        }
    }
}

/// Approved purchases of one business day, for the daily limits.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyUsage {
    pub day: BusinessDay,
    pub amount_minor: u64,
    pub count: u32,
}

impl DailyUsage {
    pub fn on(&self, day: BusinessDay) -> (u64, u32) {
        if self.day == day {
            (self.amount_minor, self.count)
        } else {
            (0, 0)
        }
    }

    pub fn add(&mut self, day: BusinessDay, amount_minor: u64) {
        if self.day != day {
            *self = DailyUsage {
                day,
                amount_minor: 0,
                count: 0,
            };
        }
        self.amount_minor += amount_minor;
        self.count += 1;
    }

    /// A reversed purchase no longer counts against the day it was made on.
    pub fn remove(&mut self, day: BusinessDay, amount_minor: u64) {
        if self.day == day {
            self.amount_minor = self.amount_minor.saturating_sub(amount_minor);
            self.count = self.count.saturating_sub(1);
        }
    }
}

/// A PIN's keyed verification value and the PAN it was computed over: a replacement card
/// keeps its predecessor's PIN, whose value is bound to the old PAN.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinVerifier {
    pub set_on: Pan,
    pub value: [u8; 32],
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Card {
    pub pan: Pan,
    pub account: AccountId,
    pub kind: CardKind,
    pub status: CardStatus,
    pub expiry: Expiry,
    pub holder_name: String,
    pub holder_id: String,
    /// The holder's bank card that top-ups are drawn from.
    pub bank_account: Option<Pan>,
    pub limits: LimitOverrides,
    /// Keyed verification value of the PIN; the clear PIN is never kept.
    pub pin_verifier: Option<PinVerifier>,
    pub pin_tries_failed: u8,
    pub usage: DailyUsage,
    /// Set when the card was replaced: the card that took its balance.
    pub replaced_by: Option<Pan>,
}

/// What a decision reads of a card: everything but the holder's name and id, so that it is
/// `Copy`. A request copies it out of the state (the state cannot stay borrowed while the
/// request emits events) without the two allocations a `Card`'s clone makes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct CardFacts {
    pub pan: Pan,
    pub account: AccountId,
    pub kind: CardKind,
    pub bank_account: Option<Pan>,
    pub limits: LimitOverrides,
    pub pin_verifier: Option<PinVerifier>,
    pub pin_tries_failed: u8,
    pub usage: DailyUsage,
}

impl Card {
    pub fn facts(&self) -> CardFacts {
        CardFacts {
            pan: self.pan,
            account: self.account,
            kind: self.kind,
            bank_account: self.bank_account,
            limits: self.limits,
            pin_verifier: self.pin_verifier,
            pin_tries_failed: self.pin_tries_failed,
            usage: self.usage,
        }
    }
}
