//! The position of each applied transfer by its id: the book's largest table (one entry per
//! transfer ever posted), probed by every posting at a random place, so its cache misses are
//! most of the cost of applying a purchase once the book is large.
//!
//! Hence its own table rather than a `HashMap`: open addressing with linear probing over
//! 16-byte slots (four to a cache line) holding the id's 64-bit hash and the position, so a
//! probe costs one miss where a `HashMap<u128, u32>` costs two (its control bytes, then its
//! 32-byte slot); and the address of an id's slot can be prefetched ahead of applying it
//! ([`IdIndex::prefetch`], used by replay). The full id is not stored: a slot whose hash
//! matches is confirmed against the transfer in the history. Entries are never removed.

use crate::history::{History, POSITION_NONE};
use crate::transfer::TransferId;

/// At most 5/8 of the slots are used, so that a probe for a new id rarely leaves its line.
const LOAD_NUMERATOR: usize = 5;
const LOAD_DENOMINATOR: usize = 8;
const SLOTS_MIN: usize = 16;

#[derive(Copy, Clone, Debug)]
#[repr(C, align(16))]
struct Slot {
    hash: u64,
    /// `POSITION_NONE` for an empty slot.
    position: u32,
}

const EMPTY: Slot = Slot {
    hash: 0,
    position: POSITION_NONE,
};

#[derive(Clone, Debug, Default)]
pub(crate) struct IdIndex {
    /// A power of two long, or empty.
    slots: Vec<Slot>,
    len: usize,
}

fn hash(id: TransferId) -> u64 {
    crate::hash::hash_u128(id.0)
}

impl IdIndex {
    /// The slot an id's probe starts at: the hash's top bits (the best mixed).
    fn home(&self, hash: u64) -> usize {
        debug_assert!(self.slots.len().is_power_of_two());
        (hash >> (64 - self.slots.len().trailing_zeros())) as usize
    }

    /// The position of the transfer with this id, confirmed against the history.
    pub(crate) fn get(&self, id: TransferId, history: &History) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        let hash = hash(id);
        let mask = self.slots.len() - 1;
        let mut index = self.home(hash);
        loop {
            let slot = self.slots[index];
            if slot.position == POSITION_NONE {
                return None;
            }
            if slot.hash == hash {
                let entry = history.get(slot.position).expect("indexed transfer");
                if entry.transfer.id == id {
                    return Some(slot.position);
                }
            }
            index = (index + 1) & mask;
        }
    }

    /// Adds an id the caller has just found absent (with [`IdIndex::get`]).
    pub(crate) fn insert_new(&mut self, id: TransferId, position: u32) {
        assert!(position != POSITION_NONE, "a real position");
        self.reserve(1);
        self.place(Slot {
            hash: hash(id),
            position,
        });
        self.len += 1;
    }

    /// Makes room for `additional` more ids without growing.
    pub(crate) fn reserve(&mut self, additional: usize) {
        let needed = self
            .len
            .checked_add(additional)
            .expect("id index size overflows");
        if needed * LOAD_DENOMINATOR <= self.slots.len() * LOAD_NUMERATOR {
            return;
        }
        let slots = (needed
            .checked_mul(LOAD_DENOMINATOR)
            .expect("id index size overflows")
            / LOAD_NUMERATOR
            + 1)
        .next_power_of_two()
        .max(SLOTS_MIN);
        let mut fresh = Vec::with_capacity(slots);
        advise_huge_pages(&mut fresh);
        fresh.resize(slots, EMPTY);
        let old = std::mem::replace(&mut self.slots, fresh);
        for slot in old
            .into_iter()
            .filter(|slot| slot.position != POSITION_NONE)
        {
            self.place(slot);
        }
    }

    /// Puts `slot` in the first empty slot of its probe (the table has room).
    fn place(&mut self, slot: Slot) {
        let mask = self.slots.len() - 1;
        let mut index = self.home(slot.hash);
        while self.slots[index].position != POSITION_NONE {
            index = (index + 1) & mask;
        }
        self.slots[index] = slot;
    }

    /// Asks the CPU to fetch the cache line where `id`'s probe starts, so that a lookup or
    /// insert a few transfers later does not wait for memory.
    pub(crate) fn prefetch(&self, id: TransferId) {
        if !self.slots.is_empty() {
            crate::hash::prefetch(&self.slots[self.home(hash(id))]);
        }
    }
}

/// Asks Linux to back a large table with 2 MB pages, before anything is written to it: its
/// probes land anywhere in it, and with 4 KB pages nearly every one also misses the TLB. A
/// hint (a failure changes nothing), given for the vector's unused capacity.
fn advise_huge_pages(slots: &mut Vec<Slot>) {
    const PAGE: usize = 4096;
    const HUGE_PAGE: usize = 2 << 20;
    let bytes = slots.capacity() * std::mem::size_of::<Slot>();
    if bytes < 2 * HUGE_PAGE {
        return;
    }
    let start = slots.as_mut_ptr() as usize;
    let first_page = start.next_multiple_of(PAGE);
    let len = (start + bytes - first_page) / PAGE * PAGE;
    #[cfg(target_os = "linux")]
    // SAFETY: the range is whole pages inside the vector's own allocation; the advice changes
    // how the kernel backs it, never its contents or its mapping.
    unsafe {
        libc::madvise(first_page as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = len;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::AppliedTransfer;
    use crate::transfer::{BusinessDay, References, Transfer, TransferKind, LEGS_MAX};

    fn history_of(ids: &[u128]) -> History {
        let mut history = History::default();
        for (position, &id) in ids.iter().enumerate() {
            history.push(AppliedTransfer {
                transfer: Transfer {
                    id: TransferId(id),
                    kind: TransferKind::Purchase,
                    business_day: BusinessDay(20260101),
                    legs: Default::default(),
                    allow_overdraft: false,
                    related: None,
                    refs: References::NONE,
                    timestamp_ms: 0,
                },
                position: position as u32,
                previous_postings: [POSITION_NONE; LEGS_MAX],
            });
        }
        history
    }

    #[test]
    fn finds_every_id_and_no_other_across_growth() {
        // Ids that differ only in their high half, and only in their low half.
        let ids: Vec<u128> = (0..5000u128)
            .map(|i| if i % 2 == 0 { i << 64 } else { i })
            .collect();
        let history = history_of(&ids);
        let mut index = IdIndex::default();
        for (position, &id) in ids.iter().enumerate() {
            assert_eq!(index.get(TransferId(id), &history), None);
            index.insert_new(TransferId(id), position as u32);
        }
        assert_eq!(index.len, ids.len());
        for (position, &id) in ids.iter().enumerate() {
            assert_eq!(index.get(TransferId(id), &history), Some(position as u32));
            index.prefetch(TransferId(id));
        }
        assert_eq!(index.get(TransferId(5001), &history), None);
        assert_eq!(index.get(TransferId(1 << 100), &history), None);
    }

    #[test]
    fn reserve_keeps_entries_and_room() {
        let ids: Vec<u128> = (1..=100).collect();
        let history = history_of(&ids);
        let mut index = IdIndex::default();
        index.insert_new(TransferId(1), 0);
        index.reserve(1000);
        let slots = index.slots.len();
        assert!(slots * LOAD_NUMERATOR >= 1001 * LOAD_DENOMINATOR);
        for (position, &id) in ids.iter().enumerate().skip(1) {
            index.insert_new(TransferId(id), position as u32);
        }
        assert_eq!(index.slots.len(), slots, "no growth within the reserve");
        assert_eq!(index.get(TransferId(1), &history), Some(0));
        assert_eq!(index.get(TransferId(100), &history), Some(99));
    }
}
