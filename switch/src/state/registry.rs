//! Merchants and terminals, as registered by operators.

use serde::{Deserialize, Serialize};

use ledger::account::AccountId;

use super::cards::CardKind;
use super::ids::{MerchantId, TerminalId};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Merchant {
    pub id: MerchantId,
    pub name: String,
    pub settlement_account: String,
    pub fee_bps: u32,
    /// Bit mask of `CardKind::bit`: which card kinds this merchant takes.
    pub accepted_kinds: u8,
    pub account: AccountId,
}

impl Merchant {
    pub fn accepts(&self, kind: CardKind) -> bool {
        self.accepted_kinds & kind.bit() != 0
    }
}

/// A terminal's keys are secrets: `Debug` never prints them and no endpoint returns them.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Terminal {
    pub id: TerminalId,
    pub merchant: MerchantId,
    /// PIN key (double-length TDES), 16 bytes.
    pub tpk: [u8; 16],
    /// MAC key (double-length TDES), 16 bytes, when the terminal has one.
    pub tak: Option<[u8; 16]>,
    pub mac_required: bool,
    pub offline_floor_limit_minor: u64,
    pub signed_on: bool,
    /// The latest blacklist version this terminal was served.
    pub blacklist_version_served: u64,
}

impl std::fmt::Debug for Terminal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Terminal")
            .field("id", &self.id)
            .field("merchant", &self.merchant)
            .field("mac_required", &self.mac_required)
            .field("signed_on", &self.signed_on)
            .finish_non_exhaustive()
    }
}
