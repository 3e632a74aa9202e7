//! The answers' index by request key: the position in the answers' log of each key's latest
//! answer. Every financial request probes it (a retransmission?) and then adds its own key,
//! at a random place in a table of millions of entries, on the engine thread: its cache
//! misses were a quarter of that thread's time with a `HashMap<RequestKey, u32>` (a probe of
//! the control bytes, then a write to the 32-byte bucket on another line).
//!
//! Hence open addressing with linear probing over 16-byte slots (four to a cache line) that
//! hold the key's 64-bit hash and the position: a probe for a new key and its insertion touch
//! the same line or two. The key itself is not stored: a slot whose hash matches is confirmed
//! against the answer in the log (`key_at`). Keys are chosen by terminals, so the hash is
//! seeded at random (`SeededState`). The table is 256 shards (the hash's top byte picks one), each grown
//! on its own: growing rehashes a 256th of the index while requests wait, never all of it.

use std::hash::BuildHasher;

use ledger::hash::{prefetch, SeededState};
use ledger::position_slot::{PositionSlot as Slot, LOAD_DENOMINATOR, LOAD_NUMERATOR};

use super::answers::RequestKey;

const SHARDS: usize = 256;
const SHARD_SLOTS_MIN: usize = 16;

/// A clone copies every slot (the `CowMap` it replaced shared them): nothing on the request
/// path clones it, and a snapshot leaves it out (restore rebuilds it from the log).
#[derive(Clone)]
pub struct AnswerIndex {
    /// Each a power of two long.
    shards: Vec<Vec<Slot>>,
    used: Vec<usize>,
    hasher: SeededState,
    len: usize,
}

impl Default for AnswerIndex {
    fn default() -> Self {
        AnswerIndex {
            shards: vec![vec![Slot::default(); SHARD_SLOTS_MIN]; SHARDS],
            used: vec![0; SHARDS],
            hasher: SeededState::default(),
            len: 0,
        }
    }
}

impl std::fmt::Debug for AnswerIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnswerIndex")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

/// Where a probe for a key ended: at its slot, or at the empty slot it would take.
enum Probe {
    Found(usize),
    Vacant(usize),
}

impl AnswerIndex {
    /// An empty index with room for `keys` without growing (a rebuild from a log).
    pub fn with_capacity(keys: usize) -> AnswerIndex {
        // A quarter more than the mean: the hash spreads keys over the shards unevenly.
        let per_shard = keys.div_ceil(SHARDS) * 5 / 4 + 8;
        let slots = (per_shard * LOAD_DENOMINATOR)
            .div_ceil(LOAD_NUMERATOR)
            .next_power_of_two()
            .max(SHARD_SLOTS_MIN);
        AnswerIndex {
            shards: vec![vec![Slot::default(); slots]; SHARDS],
            ..AnswerIndex::default()
        }
    }

    /// Keys indexed, each once.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The position of `key`'s latest answer; `key_at` reads the key of the answer at a
    /// position of the log.
    pub fn get(&self, key: &RequestKey, key_at: impl Fn(u32) -> RequestKey) -> Option<u32> {
        let hash = self.hasher.hash_one(key);
        let slots = &self.shards[shard_of(hash)];
        match probe(slots, hash, key, key_at) {
            Probe::Found(at) => Some(slots[at].position()),
            Probe::Vacant(_) => None,
        }
    }

    /// Asks the CPU to fetch the slot where `key`'s probe starts (the one a new key's
    /// insertion usually takes too). Changes nothing.
    pub fn prefetch(&self, key: &RequestKey) {
        let hash = self.hasher.hash_one(key);
        let slots = &self.shards[shard_of(hash)];
        if let Some(slot) = slots.get(home(hash, slots.len())) {
            prefetch(slot);
        }
    }

    /// Points `key` at `position`: a new entry, or the key's earlier answer replaced.
    pub fn set(&mut self, key: &RequestKey, position: u32, key_at: impl Fn(u32) -> RequestKey) {
        let hash = self.hasher.hash_one(key);
        let shard = shard_of(hash);
        let slot = Slot::new(hash, position);
        match probe(&self.shards[shard], hash, key, key_at) {
            Probe::Found(at) => self.shards[shard][at] = slot,
            Probe::Vacant(at) => {
                let slots = &mut self.shards[shard];
                if (self.used[shard] + 1) * LOAD_DENOMINATOR > slots.len() * LOAD_NUMERATOR {
                    grow(slots);
                    place(slots, slot);
                } else {
                    slots[at] = slot;
                }
                self.used[shard] += 1;
                self.len += 1;
            }
        }
    }
}

fn shard_of(hash: u64) -> usize {
    // The top byte: the slot within the shard is taken from the low bits.
    (hash >> 56) as usize % SHARDS
}

fn home(hash: u64, len: usize) -> usize {
    debug_assert!(len.is_power_of_two());
    hash as usize & (len - 1)
}

/// Linear probing from the key's home slot until its slot or an empty one (a shard is never
/// full: at most 5/8 used).
fn probe(slots: &[Slot], hash: u64, key: &RequestKey, key_at: impl Fn(u32) -> RequestKey) -> Probe {
    let mut at = home(hash, slots.len());
    loop {
        let slot = slots[at];
        if slot.is_empty() {
            return Probe::Vacant(at);
        }
        if slot.hash() == hash && key_at(slot.position()) == *key {
            return Probe::Found(at);
        }
        at = (at + 1) & (slots.len() - 1);
    }
}

/// Doubles a shard, placing its entries again by their hashes (no key is read).
fn grow(slots: &mut Vec<Slot>) {
    let old = std::mem::replace(slots, vec![Slot::default(); slots.len() * 2]);
    for slot in old.into_iter().filter(|slot| !slot.is_empty()) {
        place(slots, slot);
    }
}

/// Puts an entry known to be absent in the first empty slot from its home.
fn place(slots: &mut [Slot], slot: Slot) {
    let mut at = home(slot.hash(), slots.len());
    while !slots[at].is_empty() {
        at = (at + 1) & (slots.len() - 1);
    }
    slots[at] = slot;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::ids::TerminalId;

    fn key(n: u32) -> RequestKey {
        RequestKey {
            terminal: TerminalId::parse(&format!("T{:07}", n % 1000)).expect("terminal id"),
            stan: n,
            transmitted: *b"1207031500",
        }
    }

    #[test]
    fn finds_every_key_and_no_other_across_growth() {
        // The log: position p holds key(p).
        let key_at = |position: u32| key(position);
        let mut index = AnswerIndex::default();
        for n in 0..100_000 {
            assert_eq!(index.get(&key(n), key_at), None);
            index.set(&key(n), n, key_at);
        }
        assert_eq!(index.len(), 100_000);
        for n in 0..100_000 {
            assert_eq!(index.get(&key(n), key_at), Some(n));
        }
        assert_eq!(index.get(&key(100_000), key_at), None);
        for (shard, used) in index.shards.iter().zip(&index.used) {
            assert!(used * LOAD_DENOMINATOR <= shard.len() * LOAD_NUMERATOR);
        }
    }

    #[test]
    fn a_later_position_replaces_the_earlier_one_after_growth_too() {
        // Positions 0..KEYS hold keys 0..KEYS, the next KEYS positions the same keys again.
        const KEYS: u32 = 20_000;
        let key_at = |position: u32| key(position % KEYS);
        let mut index = AnswerIndex::default();
        for position in 0..2 * KEYS {
            index.set(&key(position % KEYS), position, key_at);
        }
        assert_eq!(index.len(), KEYS as usize, "each key counted once");
        for n in 0..KEYS {
            assert_eq!(index.get(&key(n), key_at), Some(n + KEYS));
        }
    }

    #[test]
    fn an_index_sized_for_its_keys_does_not_grow() {
        let key_at = |position: u32| key(position);
        let mut index = AnswerIndex::with_capacity(50_000);
        let lens: Vec<usize> = index.shards.iter().map(Vec::len).collect();
        for n in 0..50_000 {
            index.set(&key(n), n, key_at);
        }
        assert_eq!(index.shards.iter().map(Vec::len).collect::<Vec<_>>(), lens);
        assert_eq!(index.get(&key(49_999), key_at), Some(49_999));
    }

    #[test]
    fn equal_hashes_are_told_apart_by_the_key_in_the_log() {
        // Two keys forced into the same slot with the same hash: only the log can tell them
        // apart, as it does for a real 64-bit collision.
        let mut slots = vec![Slot::default(); SHARD_SLOTS_MIN];
        let (first, second) = (key(1), key(2));
        let key_at = |position: u32| if position == 0 { first } else { second };
        for (position, key) in [(0, &first), (1, &second)] {
            match probe(&slots, 7, key, key_at) {
                Probe::Vacant(at) => slots[at] = Slot::new(7, position),
                Probe::Found(_) => panic!("a new key found"),
            }
        }
        for (position, key) in [(0, &first), (1, &second)] {
            match probe(&slots, 7, key, key_at) {
                Probe::Found(at) => assert_eq!(slots[at].position(), position),
                Probe::Vacant(_) => panic!("an indexed key not found"),
            }
        }
    }
}
