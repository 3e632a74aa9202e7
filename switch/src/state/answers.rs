//! Answers already given to financial requests, so that a retransmission (same F41, F11 and
//! F7) gets the same answer and posts nothing twice, even across a restart.

use serde::{Deserialize, Serialize};

use ledger::transfer::BusinessDay;

use super::ids::TerminalId;

/// F41 + F11 + F7: what identifies a request for retransmission (PROTOCOL.md 3.7).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RequestKey {
    pub terminal: TerminalId,
    pub stan: u32,
    pub transmitted: [u8; 10],
}

/// The parts of a response that are not echoed from the request.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// F39, two ASCII digits.
    pub code: [u8; 2],
    pub settlement_day: BusinessDay,
    pub rrn: Option<u64>,
    pub approval: Option<[u8; 6]>,
    /// F54: the card's balance after the request.
    pub balance_minor: Option<i64>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub key: RequestKey,
    /// Digest of the request's bytes: a retransmission must match it, or it is `94`.
    pub digest: u128,
    pub reply: Reply,
    pub day: BusinessDay,
}
