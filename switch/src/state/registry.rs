//! Merchants and terminals, as registered by operators.

use std::sync::Arc;

use codec::security::TdesKey;
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
    /// PIN key (double-length TDES).
    pub tpk: TerminalKey,
    /// MAC key (double-length TDES), when the terminal has one.
    pub tak: Option<TerminalKey>,
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

impl Terminal {
    /// The key its requests and responses are MACed under, when it must MAC.
    pub fn mac_key(&self) -> Option<TerminalKey> {
        self.mac_key_ref().cloned()
    }

    /// [`Terminal::mac_key`] without the clone.
    pub fn mac_key_ref(&self) -> Option<&TerminalKey> {
        self.tak.as_ref().filter(|_| self.mac_required)
    }

    /// The keys its requests are checked with.
    pub fn keys(&self) -> TerminalKeys {
        TerminalKeys {
            tpk: self.tpk.clone(),
            tak: self.mac_key(),
        }
    }
}

/// A terminal's double-length TDES key (TPK or TAK) with its key schedule, built once when
/// the key is registered or loaded instead of for every message (building one is four DES
/// key schedules). Stored and compared as its 16 bytes; `Debug` never prints it.
#[derive(Clone, Serialize, Deserialize)]
#[serde(from = "[u8; 16]", into = "[u8; 16]")]
pub struct TerminalKey {
    bytes: [u8; 16],
    schedule: Arc<TdesKey>,
}

impl TerminalKey {
    pub fn schedule(&self) -> &TdesKey {
        &self.schedule
    }
}

impl From<[u8; 16]> for TerminalKey {
    fn from(bytes: [u8; 16]) -> TerminalKey {
        TerminalKey {
            bytes,
            schedule: Arc::new(TdesKey::from_bytes(&bytes)),
        }
    }
}

impl From<TerminalKey> for [u8; 16] {
    fn from(key: TerminalKey) -> [u8; 16] {
        key.bytes
    }
}

impl PartialEq for TerminalKey {
    fn eq(&self, other: &TerminalKey) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for TerminalKey {}

impl std::fmt::Debug for TerminalKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TerminalKey([redacted])")
    }
}

/// What a terminal's requests are checked with: its PIN key, and its MAC key when it must
/// MAC. The connection keeps a copy to check MACs and decrypt PIN blocks before the engine
/// (`authorize::prechecked`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TerminalKeys {
    pub tpk: TerminalKey,
    pub tak: Option<TerminalKey>,
}
