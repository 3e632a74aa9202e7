//! The append-only list of applied transfers, in posting order.
//!
//! Stored as fixed-size chunks behind `Arc`: a full chunk never changes again, so a snapshot
//! copies the list of chunk pointers, not the transfers (requirement: a snapshot is cheap to
//! take on the engine thread). The last, growing chunk is copied on the first push after a
//! snapshot took a reference to it (at most one chunk per snapshot).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::snapshot::SharedLog;
use crate::transfer::{Transfer, LEGS_MAX};
use crate::warm_chunks::WarmChunks;

/// Transfers per chunk: small enough that the copy-on-write of the last chunk after a snapshot
/// is cheap (about 1 MB), large enough that the chunk list stays short.
pub const CHUNK_LEN: usize = 4096;

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

pub type Chunk = Vec<AppliedTransfer>;

#[derive(Clone, Debug)]
pub struct History {
    chunks: Vec<Arc<Chunk>>,
    len: u32,
    /// New chunks, their pages already touched off the engine thread.
    fresh: WarmChunks<AppliedTransfer>,
}

impl Default for History {
    fn default() -> Self {
        History {
            chunks: Vec::new(),
            len: 0,
            fresh: WarmChunks::new(CHUNK_LEN),
        }
    }
}

impl History {
    pub fn len(&self) -> u32 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn get(&self, position: u32) -> Option<&AppliedTransfer> {
        if position >= self.len {
            return None;
        }
        let chunk = &self.chunks[position as usize / CHUNK_LEN];
        let entry = &chunk[position as usize % CHUNK_LEN];
        debug_assert_eq!(entry.position, position);
        Some(entry)
    }

    pub fn push(&mut self, entry: AppliedTransfer) {
        assert_eq!(entry.position, self.len, "history positions are dense");
        assert!(
            self.len < TRANSFERS_MAX,
            "book is full: {} transfers",
            self.len
        );
        let need_chunk = match self.chunks.last() {
            None => true,
            Some(last) => last.len() == CHUNK_LEN,
        };
        if need_chunk {
            self.chunks.push(Arc::new(self.fresh.take()));
        }
        let last = self.chunks.last_mut().expect("a chunk was just ensured");
        if Arc::get_mut(last).is_none() {
            // A snapshot shares this chunk: copy it once, keeping room for the whole chunk.
            let mut copy = self.fresh.take();
            copy.extend_from_slice(last);
            *last = Arc::new(copy);
        }
        Arc::get_mut(last).expect("chunk is unshared").push(entry);
        self.len += 1;
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &AppliedTransfer> + '_ {
        self.chunks.iter().flat_map(|chunk| chunk.iter())
    }

    /// Iterates from `position` on.
    pub fn iter_from(&self, position: u32) -> impl Iterator<Item = &AppliedTransfer> + '_ {
        let first_chunk = position as usize / CHUNK_LEN;
        let skip = position as usize % CHUNK_LEN;
        self.chunks
            .iter()
            .skip(first_chunk)
            .flat_map(|chunk| chunk.iter())
            .skip(skip)
    }

    /// The chunks, shared: what a snapshot keeps. A full chunk is never changed again (there
    /// is no way to change an applied transfer), so a snapshot writes it to disk once.
    pub fn share(&self) -> SharedLog<AppliedTransfer> {
        SharedLog::new(self.chunks.clone(), CHUNK_LEN)
    }

    /// Rebuilds from a snapshot's chunks, checking their shape (a bug or a damaged snapshot
    /// must not become a book with holes in it).
    pub fn from_log(log: SharedLog<AppliedTransfer>) -> History {
        assert_eq!(
            log.chunk_len(),
            CHUNK_LEN,
            "history chunks of another length"
        );
        let chunks = log.into_chunks();
        let mut len: u32 = 0;
        let count = chunks.len();
        for (index, chunk) in chunks.iter().enumerate() {
            assert!(!chunk.is_empty(), "history chunk {index} is empty");
            assert!(
                chunk.len() <= CHUNK_LEN,
                "history chunk {index} is too long"
            );
            if index + 1 < count {
                assert_eq!(chunk.len(), CHUNK_LEN, "history chunk {index} is short");
            }
            for entry in chunk.iter() {
                assert_eq!(entry.position, len, "history position out of order");
                len += 1;
            }
        }
        History {
            chunks,
            len,
            fresh: WarmChunks::new(CHUNK_LEN),
        }
    }
}
