//! The append-only list of applied transfers, in posting order.
//!
//! A copy-on-write vector ([`CowVec`]): fixed-size chunks behind `Arc`, so a snapshot copies
//! the list of chunk pointers, not the transfers (requirement: a snapshot is cheap to take on
//! the engine thread), and a full chunk never changes again. The last, growing chunk is
//! copied on the first push after a snapshot took a reference to it (at most one chunk per
//! snapshot). What it adds: positions are dense, and restore checks them.

use serde::{Deserialize, Serialize};

use crate::cow_vec::{CowVec, COW_CHUNK_LEN};
use crate::snapshot::SharedLog;
use crate::transfer::{Transfer, LEGS_MAX};

/// Transfers per chunk: small enough that the copy-on-write of the last chunk after a snapshot
/// is cheap (about 1 MB), large enough that the chunk list stays short.
pub const CHUNK_LEN: usize = COW_CHUNK_LEN;

/// The most transfers a book holds: positions are `u32`, and `POSITION_NONE` marks "none".
pub const TRANSFERS_MAX: u32 = u32::MAX - 1;

/// "No earlier posting" in a per-account posting chain.
pub const POSITION_NONE: u32 = u32::MAX;

/// A transfer as the book applied it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedTransfer {
    pub transfer: Transfer,
    /// Posting order in the book, from 0. Dense: the n-th applied transfer has position n.
    pub position: u32,
    /// For each leg: the position of the previous transfer that posted to the leg's account,
    /// `POSITION_NONE` when none (or when an earlier leg of this transfer already links the
    /// same account). Chains an account's postings through the history so that an account
    /// with no postings costs no index at all.
    pub(crate) previous_postings: [u32; LEGS_MAX],
}

#[derive(Clone, Debug, Default)]
pub struct History {
    log: CowVec<AppliedTransfer>,
}

impl History {
    pub fn len(&self) -> u32 {
        // Below TRANSFERS_MAX: `push` checks.
        self.log.len() as u32
    }

    pub fn is_empty(&self) -> bool {
        self.log.is_empty()
    }

    pub fn get(&self, position: u32) -> Option<&AppliedTransfer> {
        let entry = self.log.get(position as usize)?;
        debug_assert_eq!(entry.position, position);
        Some(entry)
    }

    pub fn push(&mut self, entry: AppliedTransfer) {
        assert_eq!(entry.position, self.len(), "history positions are dense");
        assert!(
            self.len() < TRANSFERS_MAX,
            "book is full: {} transfers",
            self.len()
        );
        self.log.push(entry);
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &AppliedTransfer> + '_ {
        self.log.iter()
    }

    /// Iterates from `position` on.
    pub fn iter_from(&self, position: u32) -> impl Iterator<Item = &AppliedTransfer> + '_ {
        self.log.iter_from(position as usize)
    }

    /// The chunks, shared: what a snapshot keeps. A full chunk is never changed again (there
    /// is no way to change an applied transfer), so a snapshot writes it to disk once.
    pub fn share(&self) -> SharedLog<AppliedTransfer> {
        self.log.share_log()
    }

    /// Rebuilds from a snapshot's chunks, checking the positions (a bug or a damaged snapshot
    /// must not become a book with holes in it; the log checks the chunks' shape).
    pub fn from_log(log: SharedLog<AppliedTransfer>) -> History {
        let log = CowVec::from_log(log);
        for (expected, entry) in log.iter().enumerate() {
            assert_eq!(
                entry.position as usize, expected,
                "history position out of order"
            );
        }
        History { log }
    }
}
