//! The slot of the open-addressing tables that find an entry of a log by a key's hash: the
//! ledger's id index and the switch's answers' index. Each slot holds the key's 64-bit hash
//! and the entry's position in the log, 16 bytes, four to a cache line; the key itself is not
//! stored, a slot whose hash matches is confirmed against the log. All zeros is an empty slot,
//! so a zeroed table is an empty one.

/// At most 5/8 of a table's slots are used: a probe for a missing key reads about four slots
/// and rarely leaves its cache line.
pub const LOAD_NUMERATOR: usize = 5;
pub const LOAD_DENOMINATOR: usize = 8;

#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
#[repr(C, align(16))]
pub struct PositionSlot {
    hash: u64,
    /// The position plus one; 0 in an empty slot.
    position_plus_one: u32,
}

impl PositionSlot {
    pub const EMPTY: PositionSlot = PositionSlot {
        hash: 0,
        position_plus_one: 0,
    };

    /// Panics at `u32::MAX`, which the slot cannot hold (it is no position of a log either).
    /// Inline, like the accessors: the switch probes these slots on its hot path.
    #[inline]
    pub fn new(hash: u64, position: u32) -> PositionSlot {
        PositionSlot {
            hash,
            position_plus_one: position.checked_add(1).expect("a position below u32::MAX"),
        }
    }

    #[inline]
    pub fn hash(self) -> u64 {
        self.hash
    }

    #[inline]
    pub fn is_empty(self) -> bool {
        self.position_plus_one == 0
    }

    /// The position of a slot that is not empty.
    #[inline]
    pub fn position(self) -> u32 {
        self.position_plus_one - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixteen_bytes_empty_when_zero_and_every_position_below_the_last() {
        assert_eq!(std::mem::size_of::<PositionSlot>(), 16);
        assert!(PositionSlot::default().is_empty());
        assert_eq!(PositionSlot::default(), PositionSlot::EMPTY);
        for position in [0, 1, u32::MAX - 1] {
            let slot = PositionSlot::new(7, position);
            assert!(!slot.is_empty());
            assert_eq!((slot.hash(), slot.position()), (7, position));
        }
        assert!(std::panic::catch_unwind(|| PositionSlot::new(7, u32::MAX)).is_err());
    }
}
