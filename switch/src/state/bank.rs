//! The bank side of the host's state: top-ups waiting for the bank's answer, and the
//! store-and-forward queue (0420 reversal advices, 0500 clearing hand-offs). Both live in the
//! log, so a crash loses neither: a top-up whose answer never came is reversed at the bank
//! after a restart, and every queued advice is sent again until the bank answers it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use ledger::hash::SeededMap;
use ledger::transfer::BusinessDay;

use super::answers::RequestKey;
use super::ids::{MerchantId, Pan, TerminalId};

/// STANs of the host's own financial and advice messages to the bank; network management
/// (sign-on, echo) uses the range above, counted in memory (see docs/BANK.md).
pub const BANK_STAN_MAX: u32 = 899_999;

/// A kiosk top-up sent (or about to be sent) to the bank, whose answer is not yet recorded.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingTopUp {
    /// The kiosk's request (F41 + F11 + F7).
    pub key: RequestKey,
    /// Digest of the kiosk's request: a retransmission must match it.
    pub digest: u128,
    /// F11 of the host's 0200 to the bank.
    pub bank_stan: u32,
    /// F7 of the host's 0200 to the bank (UTC `MMDDhhmmss`): F90 of its reversal names it.
    pub bank_transmitted: [u8; 10],
    pub rrn: u64,
    pub card: Pan,
    pub bank_account: Pan,
    pub amount_minor: u64,
    pub terminal: TerminalId,
    pub merchant: MerchantId,
    pub batch: u32,
    /// F13 + F12 of the kiosk's request, `MMDDhhmmss`.
    pub local_time: [u8; 10],
    pub started_ms: u64,
}

/// What a queued advice is for.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SafKind {
    /// 0420 reversing the top-up whose bank STAN is given.
    Reversal { original_stan: u32 },
    /// 0500 handing off the clearing file of a business day.
    Clearing { day: BusinessDay },
}

/// A message the bank must receive, kept until it answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SafEntry {
    /// Queue order: entries are sent oldest first, one at a time.
    pub seq: u64,
    pub stan: u32,
    pub kind: SafKind,
    /// The message as first sent (0420 or 0500); a repeat of a 0420 goes out as 0421.
    pub message: Vec<u8>,
    /// Set once the message may have reached the bank: later sends are repeats.
    pub sent: bool,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct BankState {
    pub pending_topups: SeededMap<RequestKey, PendingTopUp>,
    pub saf: BTreeMap<u64, SafEntry>,
    pub next_saf_seq: u64,
    /// Last STAN used on the bank link for a financial or advice message.
    pub last_stan: u32,
}

impl BankState {
    /// The STAN the next top-up or advice will carry: 1..=BANK_STAN_MAX, wrapping.
    pub fn next_stan(&self) -> u32 {
        if self.last_stan >= BANK_STAN_MAX {
            1
        } else {
            self.last_stan + 1
        }
    }

    pub fn use_stan(&mut self, stan: u32) {
        assert!((1..=BANK_STAN_MAX).contains(&stan), "bank STAN in range");
        self.last_stan = stan;
    }

    /// The oldest queued advice.
    pub fn saf_head(&self) -> Option<&SafEntry> {
        self.saf.values().next()
    }

    pub fn clearing_queued(&self, day: BusinessDay) -> bool {
        self.saf
            .values()
            .any(|e| e.kind == SafKind::Clearing { day })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stans_wrap_within_the_financial_range() {
        let mut bank = BankState::default();
        assert_eq!(bank.next_stan(), 1);
        bank.use_stan(BANK_STAN_MAX);
        assert_eq!(bank.next_stan(), 1);
    }
}
