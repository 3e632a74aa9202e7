//! A fast, non-cryptographic hasher for the book's indexes and the switch's state.
//!
//! The default SipHash costs more than the rest of a posting. Its protection against
//! chosen-key flooding is not needed for the book: every key it indexes is chosen by the host
//! (transfer ids, RRNs) or checked against registered terminals and merchants by the switch
//! before a transfer is built. Maps whose keys a terminal picks (the answers kept for
//! retransmission: F41, F11, F7) use [`SeededState`]: the same mix from a random seed per
//! map, so that colliding keys cannot be worked out ahead of time (the protection foldhash
//! and ahash give, not SipHash's proof).
//!
//! The mix is a folded 64x64->128 multiply (as in foldhash and wyhash): every input bit
//! reaches every output bit, so keys that differ only in high bits (ids built as
//! `time << 64 | counter`) still spread over the low bits the table indexes by.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// A map hashed with [`FastHasher`] from a random seed of its own.
pub type SeededMap<K, V> = HashMap<K, V, SeededState>;

/// Builds [`FastHasher`]s that start from a random seed, drawn once per map (`Default` draws
/// one); clones share it.
#[derive(Clone, Copy, Debug)]
pub struct SeededState {
    seed: u64,
}

impl Default for SeededState {
    fn default() -> Self {
        // std's `RandomState` holds keys drawn from the OS once per thread, then stepped for
        // each new state: its hash of a constant is a fresh random value per call.
        SeededState {
            seed: RandomState::new().hash_one(SEED),
        }
    }
}

impl BuildHasher for SeededState {
    type Hasher = FastHasher;

    #[inline]
    fn build_hasher(&self) -> FastHasher {
        FastHasher { state: self.seed }
    }
}

const MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;
const SEED: u64 = 0x243F_6A88_85A3_08D3;

#[derive(Clone, Copy)]
pub struct FastHasher {
    state: u64,
}

impl Default for FastHasher {
    fn default() -> Self {
        FastHasher { state: SEED }
    }
}

#[inline(always)]
fn folded_multiply(x: u64, y: u64) -> u64 {
    let product = (x as u128) * (y as u128);
    (product as u64) ^ ((product >> 64) as u64)
}

impl FastHasher {
    #[inline(always)]
    fn absorb(&mut self, word: u64) {
        self.state = folded_multiply(self.state ^ word, MULTIPLIER);
    }
}

/// The hash of a `u128` (a transfer id), as `FastHasher` computes it.
pub(crate) fn hash_u128(n: u128) -> u64 {
    let mut hasher = FastHasher::default();
    hasher.write_u128(n);
    hasher.finish()
}

/// Asks the CPU to bring `value`'s cache line in, without waiting for it: a hint that
/// changes no result (a no-op off x86-64).
#[inline(always)]
pub fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch reads nothing architecturally and cannot fault, whatever the
    // address; SSE, which it needs, is part of the x86-64 baseline.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>((value as *const T).cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.absorb(u64::from_le_bytes(chunk.try_into().expect("chunk of 8")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            // The length keeps "ab" and "ab\0" apart.
            self.absorb(u64::from_le_bytes(last) ^ ((rest.len() as u64) << 59));
        }
    }

    #[inline]
    fn write_u8(&mut self, n: u8) {
        self.absorb(n as u64);
    }

    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.absorb(n as u64);
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.absorb(n);
    }

    #[inline]
    fn write_u128(&mut self, n: u128) {
        self.absorb(n as u64);
        self.absorb((n >> 64) as u64);
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.absorb(n as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::{BuildHasher, BuildHasherDefault};

    fn hash<T: std::hash::Hash>(value: T) -> u64 {
        BuildHasherDefault::<FastHasher>::default().hash_one(value)
    }

    #[test]
    fn high_bits_reach_low_bits() {
        // Ids that differ only above bit 64 must not collide in the table's low bits.
        let mut low_bits = std::collections::HashSet::new();
        for i in 0..1024u128 {
            low_bits.insert(hash(i << 64) & 0xFFFF);
        }
        assert!(low_bits.len() > 1000, "{} distinct", low_bits.len());
    }

    #[test]
    fn seeded_states_differ_and_clones_agree() {
        let (a, b) = (SeededState::default(), SeededState::default());
        assert_ne!(a.hash_one(42u64), b.hash_one(42u64));
        assert_eq!(a.hash_one(42u64), a.clone().hash_one(42u64));
        let mut low_bits = std::collections::HashSet::new();
        for i in 0..1024u128 {
            low_bits.insert(a.hash_one(i << 64) & 0xFFFF);
        }
        assert!(low_bits.len() > 1000, "{} distinct", low_bits.len());
    }

    #[test]
    fn byte_strings_of_different_length_differ() {
        assert_ne!(hash(&b"ab"[..]), hash(&b"ab\0"[..]));
    }
}
