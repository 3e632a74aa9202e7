//! An ordered map kept in runs of neighbouring keys, each run behind an `Arc`: a clone shares
//! the runs, and a write copies the one run it touches while a clone still shares it.
//!
//! For ordered maps of a state machine that grow without bound between two snapshots (the
//! switch's open offline batches, one entry per sale): copied whole, the first write after a
//! snapshot copied every sale of the batch on the engine thread; now it copies one run of at
//! most [`RUN_MAX`] entries. Serialized as a plain map, like a `BTreeMap`.
//!
//! A run is a sorted vector: keys mostly arrive in increasing order (a terminal's STANs), and
//! appending to a vector after one comparison with its last key touches one or two cache
//! lines, where a `BTreeMap` run walked its nodes from the root (two inserts per purchase on
//! the engine thread, each a few cache misses: 14 % of its samples in a profile).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Entries per run at most: a run splits in two when it grows past it.
pub const RUN_MAX: usize = 512;

/// A run's entries, sorted by key, no key twice.
type Run<K, V> = Vec<(K, V)>;

#[derive(Clone)]
pub struct CowOrdMap<K, V> {
    /// Each run under its lowest key; the runs' key ranges do not overlap. No run is empty.
    runs: BTreeMap<K, Arc<Run<K, V>>>,
    len: usize,
}

impl<K, V> Default for CowOrdMap<K, V> {
    fn default() -> Self {
        CowOrdMap {
            runs: BTreeMap::new(),
            len: 0,
        }
    }
}

impl<K, V> CowOrdMap<K, V> {
    /// Every entry in key order (for the impls that need no `Ord`).
    fn entries(&self) -> impl DoubleEndedIterator<Item = (&K, &V)> + '_ {
        self.runs
            .values()
            .flat_map(|run| run.iter().map(|(key, value)| (key, value)))
    }
}

/// Where `key` is in `run`, or where it would go.
fn search<K: Ord, V>(run: &[(K, V)], key: &K) -> Result<usize, usize> {
    match run.last() {
        // Appending: one comparison.
        Some((last, _)) if last < key => Err(run.len()),
        _ => run.binary_search_by(|(k, _)| k.cmp(key)),
    }
}

impl<K: Ord + Clone, V: Clone> CowOrdMap<K, V> {
    pub fn new() -> CowOrdMap<K, V> {
        CowOrdMap::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The run that holds `key` if any holds it: the one under the greatest lowest key not
    /// above it.
    fn run_of(&self, key: &K) -> Option<&Run<K, V>> {
        self.runs.range(..=key).next_back().map(|(_, run)| &**run)
    }

    pub fn get(&self, key: &K) -> Option<&V> {
        let run = self.run_of(key)?;
        let at = search(run, key).ok()?;
        Some(&run[at].1)
    }

    pub fn contains_key(&self, key: &K) -> bool {
        self.get(key).is_some()
    }

    /// The value, its run copied first if a clone shares it.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let run = self.runs.range_mut(..=key).next_back()?.1;
        let at = search(run, key).ok()?;
        Some(&mut Arc::make_mut(run)[at].1)
    }

    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        let in_last_run = self
            .runs
            .last_key_value()
            .is_some_and(|(lowest, _)| *lowest <= key);
        let run = if in_last_run {
            // The usual case (keys mostly rise): the last run, reached down the map's right
            // edge, without the range search of `run_to_take` (2 % of the engine thread's
            // samples in a profile, two inserts per purchase).
            self.runs
                .last_entry()
                .expect("a last run was just seen")
                .into_mut()
        } else {
            Self::run_to_take(&mut self.runs, &key)
        };
        let found = search(run, &key);
        let run = Arc::make_mut(run);
        let previous = match found {
            Ok(at) => Some(std::mem::replace(&mut run[at].1, value)),
            Err(at) => {
                run.insert(at, (key, value));
                self.len += 1;
                None
            }
        };
        if run.len() > RUN_MAX {
            // The upper half takes the appends that follow: room for them now; the lower half
            // gives back what it no longer needs.
            let mut upper = Vec::with_capacity(RUN_MAX + 1);
            upper.extend(run.drain(run.len() / 2..));
            run.shrink_to_fit();
            let middle = upper[0].0.clone();
            self.runs.insert(middle, Arc::new(upper));
        }
        previous
    }

    /// The run that takes `key`, below the last run's lowest key: the first run when `key` is
    /// below every run (or there is none), under its new lowest key.
    fn run_to_take<'a>(
        runs: &'a mut BTreeMap<K, Arc<Run<K, V>>>,
        key: &K,
    ) -> &'a mut Arc<Run<K, V>> {
        if runs
            .first_key_value()
            .is_none_or(|(lowest, _)| key < lowest)
        {
            let run = match runs.pop_first() {
                Some((_, run)) => run,
                None => Arc::new(Vec::new()),
            };
            runs.insert(key.clone(), run);
        }
        runs.range_mut(..=key)
            .next_back()
            .expect("the first run starts at or below the key")
            .1
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&K, &V)> + '_ {
        self.entries()
    }

    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &K> + '_ {
        self.iter().map(|(key, _)| key)
    }

    pub fn values(&self) -> impl DoubleEndedIterator<Item = &V> + '_ {
        self.iter().map(|(_, value)| value)
    }

    pub fn first_key(&self) -> Option<&K> {
        self.keys().next()
    }

    pub fn last_key(&self) -> Option<&K> {
        self.keys().next_back()
    }
}

impl<K: Ord + Clone, V: Clone> FromIterator<(K, V)> for CowOrdMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> CowOrdMap<K, V> {
        let mut map = CowOrdMap::new();
        for (key, value) in iter {
            map.insert(key, value);
        }
        map
    }
}

impl<K: Ord + Clone, V: Clone> Extend<(K, V)> for CowOrdMap<K, V> {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (key, value) in iter {
            self.insert(key, value);
        }
    }
}

impl<K: PartialEq, V: PartialEq> PartialEq for CowOrdMap<K, V> {
    /// Equal entries, however they are split into runs.
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.entries().eq(other.entries())
    }
}

impl<K: Eq, V: Eq> Eq for CowOrdMap<K, V> {}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for CowOrdMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.entries()).finish()
    }
}

impl<K: Serialize, V: Serialize> Serialize for CowOrdMap<K, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len))?;
        for (key, value) in self.entries() {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

impl<'de, K, V> Deserialize<'de> for CowOrdMap<K, V>
where
    K: Deserialize<'de> + Ord + Clone,
    V: Deserialize<'de> + Clone,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<CowOrdMap<K, V>, D::Error> {
        let entries = BTreeMap::<K, V>::deserialize(deserializer)?;
        Ok(entries.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clone_keeps_its_entries_while_the_original_changes_in_any_order() {
        // Keys in a scrambled order, below and above every run, so that runs split and the
        // first run takes new lowest keys.
        let keys: Vec<u32> = (0..5_000u32).map(|n| (n * 7_919) % 5_000 + 10).collect();
        let mut map: CowOrdMap<u32, u64> = keys.iter().map(|&k| (k, k as u64)).collect();
        let plain: BTreeMap<u32, u64> = keys.iter().map(|&k| (k, k as u64)).collect();
        assert_eq!(map.len(), 5_000);
        assert!(map.iter().map(|(k, v)| (*k, *v)).eq(plain.clone()));
        assert!(map.runs.len() > 5_000 / RUN_MAX, "runs split");

        let snapshot = map.clone();
        *map.get_mut(&500).expect("present") = 99;
        assert_eq!(map.insert(3, 3), None);
        assert_eq!(map.insert(9_999, 1), None);
        assert_eq!(map.insert(20, 21), Some(20));
        assert_eq!(map.get(&500), Some(&99));
        assert_eq!(map.get(&20), Some(&21));
        assert_eq!(map.first_key(), Some(&3));
        assert_eq!(map.last_key(), Some(&9_999));
        assert_eq!(map.len(), 5_002);
        assert_eq!(map.get_mut(&5), None);
        assert_eq!(map.get(&2), None);

        assert!(snapshot.iter().map(|(k, v)| (*k, *v)).eq(plain));
        assert_eq!(snapshot.first_key(), Some(&10));
        assert_eq!(snapshot.len(), 5_000);
        assert_ne!(snapshot, map);
    }

    #[test]
    fn keys_in_order_append_into_bounded_runs() {
        let mut map = CowOrdMap::new();
        for key in 0..3_000u32 {
            assert_eq!(map.insert(key, key), None);
        }
        assert_eq!(map.insert(1_500, 7), Some(1_500));
        assert_eq!(map.len(), 3_000);
        assert!(map.keys().copied().eq(0..3_000));
        assert_eq!(map.get(&1_500), Some(&7));
        // Split runs give back their room: memory stays bounded by the entries.
        assert!(map.runs.len() >= 3_000 / RUN_MAX);
        assert!(map
            .runs
            .values()
            .all(|run| !run.is_empty() && run.len() <= RUN_MAX && run.capacity() <= RUN_MAX + 1));
    }

    #[test]
    fn round_trips_as_a_plain_map_and_equals_however_split() {
        let map: CowOrdMap<u32, String> = (0..2_000).rev().map(|n| (n, n.to_string())).collect();
        let bytes = postcard::to_stdvec(&map).expect("encodes");
        let plain: BTreeMap<u32, String> =
            postcard::from_bytes(&bytes).expect("a plain map reads it");
        assert_eq!(postcard::to_stdvec(&plain).expect("encodes"), bytes);
        let back: CowOrdMap<u32, String> = postcard::from_bytes(&bytes).expect("decodes");
        assert_eq!(back, map, "built in another order, split otherwise, equal");
        assert_eq!(back.get(&1_999).map(String::as_str), Some("1999"));
    }
}
