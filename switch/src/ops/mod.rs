//! Operator actions: what the admin API (and the demo seeding) does to the host's state.
//! Each validates fully before emitting its first event, so a failed action changes nothing.

pub mod audit;
pub mod cards;
pub mod genesis;
pub mod lifecycle;
pub mod registry;
pub mod subsidies;

use ledger::transfer::TransferId;
use sha2::{Digest, Sha256};

/// Why an operator action was refused, with the HTTP status it maps to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
}

impl OpError {
    pub fn invalid(message: impl Into<String>) -> OpError {
        OpError::Invalid(message.into())
    }
}

/// Transfer id of an operator action, from its kind and the operator's reference: the same
/// reference again finds the same transfer, which is what makes desk actions idempotent.
/// The top bit keeps these ids apart from terminal requests' (whose top byte is ASCII).
pub fn reference_transfer_id(action: &str, reference: &str) -> TransferId {
    let hash = Sha256::new()
        .chain_update(action.as_bytes())
        .chain_update([0])
        .chain_update(reference.as_bytes())
        .finalize();
    let mut id = u128::from_be_bytes(hash[..16].try_into().expect("16 bytes"));
    id |= 1 << 127;
    TransferId(id)
}
