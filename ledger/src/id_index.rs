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
//!
//! Growing does not stop the engine thread: rehashing 2.6 million ids into a fresh 128 MB
//! table at once held every request for 50-100 ms (docs/BENCHMARKS.md). The next table is
//! allocated and its pages faulted in on a helper thread as the current one nears growing
//! (an empty slot is all zeros, so zeroed pages are empty slots; faulting 128 MB in on the
//! engine thread still held requests for about 25 ms), and the old table's entries move over
//! a few slots per insert; until they have all moved, a lookup that misses in the new table
//! looks in the old one. [`IdIndex::reserve`] (replay, restore) grows at once.

use crate::history::History;
use crate::position_slot::{PositionSlot as Slot, LOAD_DENOMINATOR, LOAD_NUMERATOR};
use crate::transfer::TransferId;

const SLOTS_MIN: usize = 16;

/// Slots of the old table moved per insert while growing: all of them have moved after an
/// eighth of its length in inserts, long before the new table (twice as long) is full.
const MOVE_PER_INSERT: usize = 16;

#[derive(Debug, Default)]
pub(crate) struct IdIndex {
    /// A power of two long, or empty.
    slots: Vec<Slot>,
    /// The table before the last growth while its entries move to `slots` (empty otherwise).
    /// Frozen: its probe chains stay intact, and an entry already moved is found in `slots`
    /// first (both copies hold the same position).
    old: Vec<Slot>,
    /// Slots of `old` moved so far.
    moved: usize,
    /// The next table (twice as long), being prepared on a helper thread.
    next: Option<std::thread::JoinHandle<Vec<Slot>>>,
    len: usize,
}

impl Clone for IdIndex {
    /// A clone prepares its own next table when it needs one.
    fn clone(&self) -> IdIndex {
        IdIndex {
            slots: self.slots.clone(),
            old: self.old.clone(),
            moved: self.moved,
            next: None,
            len: self.len,
        }
    }
}

/// Tables this long or longer are prepared on a helper thread (4 MB): below that, faulting
/// the pages in costs less than a thread.
const PREPARED_SLOTS_MIN: usize = 1 << 18;

fn hash(id: TransferId) -> u64 {
    crate::hash::hash_u128(id.0)
}

/// The slot an id's probe starts at in a table of `len` slots (a power of two): the hash's
/// top bits (the best mixed).
fn home(hash: u64, len: usize) -> usize {
    debug_assert!(len.is_power_of_two());
    (hash >> (64 - len.trailing_zeros())) as usize
}

/// The position of the entry for `id` in `slots`, confirmed against the history.
fn probe(slots: &[Slot], id: TransferId, hash: u64, history: &History) -> Option<u32> {
    if slots.is_empty() {
        return None;
    }
    let mask = slots.len() - 1;
    let mut index = home(hash, slots.len());
    loop {
        let slot = slots[index];
        if slot.is_empty() {
            return None;
        }
        if slot.hash() == hash {
            let entry = history.get(slot.position()).expect("indexed transfer");
            if entry.transfer.id == id {
                return Some(slot.position());
            }
        }
        index = (index + 1) & mask;
    }
}

/// The table length that holds `entries` within the load limit.
fn table_len_for(entries: usize) -> usize {
    (entries
        .checked_mul(LOAD_DENOMINATOR)
        .expect("id index size overflows")
        / LOAD_NUMERATOR
        + 1)
    .next_power_of_two()
    .max(SLOTS_MIN)
}

/// `len` empty slots. From zeroed memory: a large table comes straight from the kernel's
/// zeroed pages, faulted in as probes reach them, instead of being written whole first.
fn empty_table(len: usize) -> Vec<Slot> {
    let layout = std::alloc::Layout::array::<Slot>(len).expect("id index size overflows");
    assert!(layout.size() > 0, "a table has slots");
    // SAFETY: the layout has a non-zero size; all-zero bytes are a valid `Slot` (two integers
    // and padding), an empty one; and the allocation has the layout `Vec<Slot>` frees with
    // (`Layout::array` of its capacity, from the global allocator).
    let mut slots = unsafe {
        let pointer = std::alloc::alloc_zeroed(layout).cast::<Slot>();
        if pointer.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        Vec::from_raw_parts(pointer, len, len)
    };
    advise_huge_pages(&mut slots);
    slots
}

/// The helper faults a table in this many bytes at a time, pausing between: at full speed
/// it takes a core for 18 ms at once (128 MB, idle machine), and on two cores the requests
/// wait behind it. Paced: 148 ms, in slices of about 0.25 ms (14.6 ms of CPU in all), long
/// before the table is needed (a quarter of its predecessor's growth later).
const PREPARE_STEP_BYTES: usize = 2 << 20;
const PREPARE_PAUSE: std::time::Duration = std::time::Duration::from_millis(2);

/// An empty table of `len` slots with every page already faulted in.
fn prepared_table(len: usize) -> Vec<Slot> {
    const SLOTS_PER_PAGE: usize = 4096 / std::mem::size_of::<Slot>();
    const SLOTS_PER_STEP: usize = PREPARE_STEP_BYTES / std::mem::size_of::<Slot>();
    let mut slots = empty_table(len);
    for step in slots.chunks_mut(SLOTS_PER_STEP) {
        for slot in step.iter_mut().step_by(SLOTS_PER_PAGE) {
            // Volatile: the compiler knows the memory is zeroed and would drop a plain store
            // of zeros, which is what makes the kernel hand the page over.
            // SAFETY: a valid, aligned, exclusive reference.
            unsafe { std::ptr::write_volatile(slot, Slot::EMPTY) };
        }
        std::thread::sleep(PREPARE_PAUSE);
    }
    slots
}

impl IdIndex {
    /// The position of the transfer with this id, confirmed against the history.
    pub(crate) fn get(&self, id: TransferId, history: &History) -> Option<u32> {
        let hash = hash(id);
        probe(&self.slots, id, hash, history).or_else(|| probe(&self.old, id, hash, history))
    }

    /// Adds an id the caller has just found absent (with [`IdIndex::get`]).
    pub(crate) fn insert_new(&mut self, id: TransferId, position: u32) {
        let slot = Slot::new(hash(id), position);
        let len = self.len.checked_add(1).expect("id index size overflows");
        if !self.has_room_for(len) {
            self.start_growing(len);
        }
        self.place(slot);
        self.len = len;
        self.move_old(MOVE_PER_INSERT);
        self.prepare_next();
    }

    /// Starts preparing the next table once this one holds three quarters of what it holds
    /// when it grows (a table starts at half of that).
    fn prepare_next(&mut self) {
        let next_len = self.slots.len() * 2;
        let near = self.len * 4 * LOAD_DENOMINATOR >= self.slots.len() * LOAD_NUMERATOR * 3;
        if self.next.is_some() || !near || next_len < PREPARED_SLOTS_MIN {
            return;
        }
        // Best effort: without a thread the table is made when needed.
        self.next = std::thread::Builder::new()
            .name("ledger-id-index".to_string())
            .spawn(move || prepared_table(next_len))
            .ok();
    }

    /// A table of `len` empty slots: the prepared one if it is that long.
    fn take_table(&mut self, len: usize) -> Vec<Slot> {
        let prepared = self.next.take().and_then(|helper| helper.join().ok());
        match prepared {
            Some(table) if table.len() == len => table,
            _ => empty_table(len),
        }
    }

    /// Makes room for `additional` more ids without growing, at once (for replay and restore,
    /// where nobody waits for an answer).
    pub(crate) fn reserve(&mut self, additional: usize) {
        let needed = self
            .len
            .checked_add(additional)
            .expect("id index size overflows");
        self.move_old(usize::MAX);
        if self.has_room_for(needed) {
            return;
        }
        let fresh = self.take_table(table_len_for(needed));
        let old = std::mem::replace(&mut self.slots, fresh);
        for slot in old.into_iter().filter(|slot| !slot.is_empty()) {
            self.place(slot);
        }
    }

    fn has_room_for(&self, entries: usize) -> bool {
        entries * LOAD_DENOMINATOR <= self.slots.len() * LOAD_NUMERATOR
    }

    /// A new table for `entries`; the current one becomes `old`, to be moved a few slots at
    /// a time.
    fn start_growing(&mut self, entries: usize) {
        // Moving finishes long before the next growth (MOVE_PER_INSERT); this only matters
        // if that ever changes.
        self.move_old(usize::MAX);
        debug_assert!(self.old.is_empty());
        let fresh = self.take_table(table_len_for(entries));
        self.old = std::mem::replace(&mut self.slots, fresh);
        self.moved = 0;
    }

    /// Moves up to `count` slots of the old table into the current one; frees the old table
    /// once all have moved.
    fn move_old(&mut self, count: usize) {
        if self.old.is_empty() {
            return;
        }
        let end = self.moved.saturating_add(count).min(self.old.len());
        for index in self.moved..end {
            let slot = self.old[index];
            if !slot.is_empty() {
                self.place(slot);
            }
        }
        self.moved = end;
        if self.moved == self.old.len() {
            self.old = Vec::new();
            self.moved = 0;
        }
    }

    /// Puts `slot` in the first empty slot of its probe (the table has room).
    fn place(&mut self, slot: Slot) {
        let mask = self.slots.len() - 1;
        let mut index = home(slot.hash(), self.slots.len());
        while !self.slots[index].is_empty() {
            index = (index + 1) & mask;
        }
        self.slots[index] = slot;
    }

    /// Asks the CPU to fetch the cache line where `id`'s probe starts, so that a lookup or
    /// insert a few transfers later does not wait for memory.
    pub(crate) fn prefetch(&self, id: TransferId) {
        if !self.slots.is_empty() {
            crate::hash::prefetch(&self.slots[home(hash(id), self.slots.len())]);
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
    use crate::history::{AppliedTransfer, POSITION_NONE};
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
    fn growth_moves_entries_a_few_at_a_time_and_finds_every_id_meanwhile() {
        let ids: Vec<u128> = (1..=3000).map(|i| i * 7919).collect();
        let history = history_of(&ids);
        let mut index = IdIndex::default();
        let mut growths = 0;
        for (position, &id) in ids.iter().enumerate() {
            let before = index.slots.len();
            index.insert_new(TransferId(id), position as u32);
            if index.slots.len() != before && before >= 1024 {
                growths += 1;
                assert!(
                    !index.old.is_empty(),
                    "a large table moves over several inserts"
                );
            }
            // Every id so far, wherever it is, and none beyond.
            if position % 97 == 0 || !index.old.is_empty() {
                for (earlier, &known) in ids[..=position].iter().enumerate() {
                    assert_eq!(index.get(TransferId(known), &history), Some(earlier as u32));
                }
                assert_eq!(index.get(TransferId(ids[position] + 1), &history), None);
            }
        }
        assert!(growths >= 1, "the test grew a table of 1024 slots or more");
        let slots = index.slots.len();
        while !index.old.is_empty() {
            index.move_old(MOVE_PER_INSERT);
        }
        assert_eq!(index.slots.len(), slots);
        let filled = index.slots.iter().filter(|slot| !slot.is_empty()).count();
        assert_eq!(filled, ids.len(), "each id once in the table, once moved");
    }

    #[test]
    fn a_large_table_grows_into_the_table_prepared_for_it() {
        let mut index = IdIndex::default();
        index.reserve(PREPARED_SLOTS_MIN * LOAD_NUMERATOR / LOAD_DENOMINATOR / 2);
        let slots = index.slots.len();
        assert!(slots >= PREPARED_SLOTS_MIN / 2);
        let mut id = 0u128;
        while index.next.is_none() {
            id += 1;
            index.insert_new(TransferId(id), id as u32);
            assert_eq!(index.slots.len(), slots, "prepared before it grows");
        }
        let prepared = index.next.take().unwrap().join().unwrap();
        assert_eq!(prepared.len(), slots * 2);
        assert!(prepared.iter().all(|slot| slot.is_empty()));
        let address = prepared.as_ptr();
        index.next = Some(std::thread::spawn(move || prepared));
        while index.slots.len() == slots {
            id += 1;
            index.insert_new(TransferId(id), id as u32);
        }
        assert_eq!(
            index.slots.as_ptr(),
            address,
            "grown into the prepared table"
        );
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
