//! The position of the first transfer posted with each RRN.
//!
//! The host hands out RRNs in increasing order, so almost every new RRN is above all earlier
//! ones: those are appended to a sorted `Vec` (no hashing, and the next insert touches the
//! same cache line) and found by binary search. An RRN that arrives out of order (a retry, an
//! imported history) goes to a hash map. A hash map for every RRN cost a cache miss per
//! posting once the book holds a few hundred thousand transfers.

use crate::hash::FastMap;

#[derive(Clone, Debug, Default)]
pub(crate) struct RrnIndex {
    /// Strictly increasing RRNs, each with its first position.
    ascending: Vec<(u64, u32)>,
    /// RRNs not above the last of `ascending` when first posted.
    out_of_order: FastMap<u64, u32>,
}

impl RrnIndex {
    pub(crate) fn get(&self, rrn: u64) -> Option<u32> {
        match self.ascending.binary_search_by_key(&rrn, |&(key, _)| key) {
            Ok(index) => Some(self.ascending[index].1),
            Err(_) => self.out_of_order.get(&rrn).copied(),
        }
    }

    /// Makes room for `additional` RRNs in order.
    pub(crate) fn reserve(&mut self, additional: usize) {
        self.ascending.reserve(additional);
    }

    /// Records `position` for `rrn` unless an earlier transfer already has that RRN.
    pub(crate) fn insert_first(&mut self, rrn: u64, position: u32) {
        match self.ascending.last() {
            Some(&(last, _)) if rrn <= last => {
                if self.get(rrn).is_none() {
                    self.out_of_order.insert(rrn, position);
                }
            }
            // Above every RRN so far (those out of order were below the last then): new.
            _ => self.ascending.push((rrn, position)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_first_position_in_and_out_of_order() {
        let mut index = RrnIndex::default();
        index.insert_first(10, 0);
        index.insert_first(20, 1);
        index.insert_first(10, 2); // repeated: the first stays
        index.insert_first(5, 3); // out of order
        index.insert_first(5, 4);
        index.insert_first(30, 5);
        index.insert_first(15, 6);
        assert_eq!(index.get(10), Some(0));
        assert_eq!(index.get(20), Some(1));
        assert_eq!(index.get(5), Some(3));
        assert_eq!(index.get(30), Some(5));
        assert_eq!(index.get(15), Some(6));
        assert_eq!(index.get(7), None);
        assert_eq!(index.get(40), None);
    }
}
