//! A hash map kept in a fixed number of shards behind `Arc`: a clone shares the shards, and
//! a write copies the one shard it touches while a clone still shares it.
//!
//! For the large maps of a state machine whose snapshot the engine thread takes between two
//! groups (the switch's cards): the snapshot costs
//! a few hundred pointer copies instead of a copy of every entry while no request is decided,
//! and the copying is spread over the writes that follow, one shard at a time. Keys are
//! hashed with a randomly seeded [`FastHasher`](crate::hash::FastHasher) (some are chosen by
//! terminals; SipHash cost more than the rest of a lookup); the shard is chosen with a second,
//! independent seed so that the keys of one shard still spread over its table.
//! Serialized as a plain map.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;

use crate::hash::{SeededMap, SeededState};

use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Shards per map: a write after a snapshot copies about 1/256 of the map.
const SHARDS: usize = 256;

#[derive(Clone)]
pub struct CowMap<K, V> {
    shards: Vec<Arc<SeededMap<K, V>>>,
    shard_hasher: SeededState,
    len: usize,
}

impl<K, V> Default for CowMap<K, V> {
    fn default() -> Self {
        let table_hasher = SeededState::default();
        CowMap {
            shards: (0..SHARDS)
                .map(|_| Arc::new(HashMap::with_hasher(table_hasher)))
                .collect(),
            shard_hasher: SeededState::default(),
            len: 0,
        }
    }
}

impl<K: Hash + Eq + Clone, V: Clone> CowMap<K, V> {
    pub fn new() -> CowMap<K, V> {
        CowMap::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn shard_of(&self, key: &K) -> usize {
        (self.shard_hasher.hash_one(key) % SHARDS as u64) as usize
    }

    pub fn get(&self, key: &K) -> Option<&V> {
        self.shards[self.shard_of(key)].get(key)
    }

    pub fn contains_key(&self, key: &K) -> bool {
        self.get(key).is_some()
    }

    /// The value, its shard copied first if a clone shares it.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let shard = self.shard_of(key);
        let shard = &mut self.shards[shard];
        // Not shared (the usual case): one lookup. Shared: look before copying the shard.
        if Arc::get_mut(shard).is_none() && !shard.contains_key(key) {
            return None;
        }
        Arc::make_mut(shard).get_mut(key)
    }

    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        let shard = self.shard_of(&key);
        let table = Arc::make_mut(&mut self.shards[shard]);
        grow_early(table, shard);
        let previous = table.insert(key, value);
        if previous.is_none() {
            self.len += 1;
        }
        previous
    }

    pub fn remove(&mut self, key: &K) -> Option<V> {
        let shard = self.shard_of(key);
        let shard = &mut self.shards[shard];
        if !shard.contains_key(key) {
            return None;
        }
        let removed = Arc::make_mut(shard).remove(key);
        self.len -= 1;
        removed
    }

    /// Keeps the entries `keep` says yes to. A shard that loses nothing is not copied.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &V) -> bool) {
        for shard in &mut self.shards {
            if shard.iter().all(|(key, value)| keep(key, value)) {
                continue;
            }
            let before = shard.len();
            Arc::make_mut(shard).retain(|key, value| keep(key, value));
            self.len -= before - shard.len();
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> + '_ {
        self.shards.iter().flat_map(|shard| shard.iter())
    }

    pub fn values(&self) -> impl Iterator<Item = &V> + '_ {
        self.shards.iter().flat_map(|shard| shard.values())
    }
}

/// Doubles a shard's table once it is between half full and full, at a fill that depends on
/// the shard. The shards fill at the same pace, and left to themselves they all doubled within
/// the same few thousand inserts: the answer index at 1.8M and 3.6M entries, 256 rehashes of
/// 7,000 and 14,000 entries in a row. `benches/examples/cow_map_growth.rs` (4M inserts in
/// windows of 500, two runs each): p99.9 of a window 2.1-2.3 ms before, 1.4 ms now, max
/// 3.2-3.5 ms against 2.2 ms; the price, larger tables sooner: 15 % more time per insert.
fn grow_early<K: Hash + Eq, V>(table: &mut SeededMap<K, V>, shard: usize) {
    let capacity = table.capacity();
    let fill_to_grow_at = capacity / 2 + capacity * shard / (2 * SHARDS);
    if capacity >= 64 && table.len() >= fill_to_grow_at {
        table.reserve(capacity + 1 - table.len());
    }
}

impl<K: Hash + Eq + Clone, V: Clone> FromIterator<(K, V)> for CowMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> CowMap<K, V> {
        let mut map = CowMap::new();
        for (key, value) in iter {
            map.insert(key, value);
        }
        map
    }
}

impl<K: std::fmt::Debug, V: std::fmt::Debug> std::fmt::Debug for CowMap<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.shards.iter().flat_map(|shard| shard.iter()))
            .finish()
    }
}

impl<K: Serialize, V: Serialize> Serialize for CowMap<K, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len))?;
        for (key, value) in self.shards.iter().flat_map(|shard| shard.iter()) {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

impl<'de, K, V> Deserialize<'de> for CowMap<K, V>
where
    K: Deserialize<'de> + Hash + Eq + Clone,
    V: Deserialize<'de> + Clone,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<CowMap<K, V>, D::Error> {
        let entries = HashMap::<K, V>::deserialize(deserializer)?;
        Ok(entries.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_double_their_tables_at_different_fills() {
        // 781 entries a shard on average: all at 896 (1,024 buckets) if they grew when full.
        let mut map: CowMap<u32, u32> = (0..200_000).map(|n| (n, n)).collect();
        let capacities: std::collections::BTreeSet<usize> =
            map.shards.iter().map(|shard| shard.capacity()).collect();
        assert!(capacities.len() > 1, "every shard at {capacities:?}");
        map.insert(1, 2);
        assert_eq!(map.get(&1), Some(&2));
        assert_eq!(map.len(), 200_000);
    }

    #[test]
    fn a_clone_keeps_its_entries_while_the_original_changes() {
        let mut map: CowMap<u32, u64> = (0..10_000).map(|n| (n, n as u64)).collect();
        let snapshot = map.clone();
        *map.get_mut(&5).expect("present") = 99;
        map.insert(10_000, 1);
        assert_eq!(map.remove(&7), Some(7));
        map.retain(|key, _| *key >= 100);
        assert_eq!(map.get(&5), None);
        assert_eq!(map.get(&500), Some(&500));
        // 10,000; less 7; plus 10,000; less the other 99 keys below 100.
        assert_eq!(map.len(), 9_901);
        assert_eq!(map.iter().count(), map.len());
        assert_eq!(snapshot.get(&5), Some(&5));
        assert_eq!(snapshot.get(&7), Some(&7));
        assert_eq!(snapshot.get(&10_000), None);
        assert_eq!(snapshot.len(), 10_000);
        assert_eq!(snapshot.values().sum::<u64>(), (0..10_000u64).sum());
        assert_eq!(map.get_mut(&123_456), None);
        assert_eq!(map.remove(&123_456), None);
    }

    #[test]
    fn round_trips_as_a_map() {
        let map: CowMap<u32, String> = (0..300).map(|n| (n, n.to_string())).collect();
        let bytes = postcard::to_stdvec(&map).expect("encodes");
        let plain: std::collections::BTreeMap<u32, String> =
            postcard::from_bytes(&bytes).expect("a plain map reads it");
        assert_eq!(plain.len(), 300);
        let back: CowMap<u32, String> = postcard::from_bytes(&bytes).expect("decodes");
        assert_eq!(back.len(), 300);
        assert_eq!(back.get(&299).map(String::as_str), Some("299"));
    }
}
