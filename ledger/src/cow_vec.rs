//! A vector kept in fixed-size chunks behind `Arc`: a clone copies the chunk pointers only,
//! and a write copies the one chunk it touches while a clone still shares it.
//!
//! What lets the engine thread take a snapshot of a large state at once: copying a million
//! accounts (24 MB) stalled every request for 66 ms on a loaded machine; sharing their
//! chunks takes microseconds, and the copying is spread over the writes that follow, one
//! chunk (about 100 KB) at a time. Serialized as a plain sequence, like a `Vec`.

use std::sync::Arc;

use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::snapshot::SharedLog;
use crate::warm_chunks::WarmChunks;

/// Elements per chunk.
pub const COW_CHUNK_LEN: usize = 4096;

#[derive(Clone, Debug)]
pub struct CowVec<T> {
    chunks: Vec<Arc<Vec<T>>>,
    len: usize,
    /// New chunks, their pages already touched off the engine thread.
    fresh: WarmChunks<T>,
}

impl<T> Default for CowVec<T> {
    fn default() -> Self {
        CowVec {
            chunks: Vec::new(),
            len: 0,
            fresh: WarmChunks::new(COW_CHUNK_LEN),
        }
    }
}

/// Equal when the values are: how the chunks are shared or prepared does not count.
impl<T: PartialEq> PartialEq for CowVec<T> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.chunks == other.chunks
    }
}

impl<T: Eq> Eq for CowVec<T> {}

impl<T: Clone> CowVec<T> {
    pub fn new() -> CowVec<T> {
        CowVec::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn get(&self, index: usize) -> Option<&T> {
        self.chunks
            .get(index / COW_CHUNK_LEN)?
            .get(index % COW_CHUNK_LEN)
    }

    /// The element, its chunk copied first if a clone shares it.
    pub fn get_mut(&mut self, index: usize) -> Option<&mut T> {
        let chunk = self.chunks.get_mut(index / COW_CHUNK_LEN)?;
        Arc::make_mut(chunk).get_mut(index % COW_CHUNK_LEN)
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + '_ {
        self.chunks.iter().flat_map(|chunk| chunk.iter())
    }

    /// Iterates from `index` on, skipping the chunks before it whole.
    pub fn iter_from(&self, index: usize) -> impl Iterator<Item = &T> + '_ {
        self.chunks
            .iter()
            .skip(index / COW_CHUNK_LEN)
            .flat_map(|chunk| chunk.iter())
            .skip(index % COW_CHUNK_LEN)
    }

    /// As a snapshot's log, sharing the chunks: for a vector that is only pushed to, whose
    /// full chunks never change again (a snapshot writes each of them once).
    pub fn share_log(&self) -> SharedLog<T> {
        SharedLog::new(self.chunks.clone(), COW_CHUNK_LEN)
    }

    /// Back from a snapshot's log, its chunks kept (so the next snapshot knows them; the log
    /// checks their shape).
    pub fn from_log(log: SharedLog<T>) -> CowVec<T> {
        assert_eq!(
            log.chunk_len(),
            COW_CHUNK_LEN,
            "a log of another chunk length"
        );
        let len = log.len();
        CowVec {
            chunks: log.into_chunks(),
            len,
            fresh: WarmChunks::new(COW_CHUNK_LEN),
        }
    }
}

impl<T: Clone + Send + 'static> CowVec<T> {
    pub fn push(&mut self, value: T) {
        if self.len % COW_CHUNK_LEN == 0 {
            self.chunks.push(Arc::new(self.fresh.take()));
        }
        let last = self.chunks.last_mut().expect("a chunk with room");
        if Arc::get_mut(last).is_none() {
            // A snapshot shares this chunk: copy it once into a chunk with room for all of it
            // (`Arc::make_mut` would copy it at its length and grow it again on this thread).
            let mut copy = self.fresh.take();
            copy.extend_from_slice(last);
            *last = Arc::new(copy);
        }
        Arc::get_mut(last).expect("chunk is unshared").push(value);
        self.len += 1;
    }
}

impl<T: Clone + Send + 'static> FromIterator<T> for CowVec<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> CowVec<T> {
        let mut vec = CowVec::new();
        for value in iter {
            vec.push(value);
        }
        vec
    }
}

impl<T: Clone + Serialize> Serialize for CowVec<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // The length first: postcard (and any length-prefixed format) needs it up front.
        let mut seq = serializer.serialize_seq(Some(self.len))?;
        for value in self.iter() {
            seq.serialize_element(value)?;
        }
        seq.end()
    }
}

impl<'de, T: Clone + Send + 'static + Deserialize<'de>> Deserialize<'de> for CowVec<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<CowVec<T>, D::Error> {
        let values = Vec::<T>::deserialize(deserializer)?;
        Ok(values.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clone_keeps_its_values_while_the_original_changes() {
        let mut vec: CowVec<u64> = (0..10_000).collect();
        let snapshot = vec.clone();
        *vec.get_mut(5).expect("in range") = 99;
        *vec.get_mut(9_999).expect("in range") += 1;
        vec.push(10_000);
        assert_eq!(vec.get(5), Some(&99));
        assert_eq!(vec.get(9_999), Some(&10_000));
        assert_eq!(vec.len(), 10_001);
        assert_eq!(snapshot.get(5), Some(&5));
        assert_eq!(snapshot.get(9_999), Some(&9_999));
        assert_eq!(snapshot.len(), 10_000);
        assert_eq!(snapshot.get(10_000), None);
        assert!(snapshot.iter().copied().eq(0..10_000));
    }

    #[test]
    fn a_push_after_a_clone_copies_the_last_chunk_with_room_for_all_of_it() {
        let mut vec: CowVec<u64> = (0..5_000).collect();
        let snapshot = vec.clone();
        vec.push(5_000);
        assert!(vec.chunks.last().expect("chunks").capacity() >= COW_CHUNK_LEN);
        assert_eq!(vec.get(5_000), Some(&5_000));
        assert_eq!(snapshot.len(), 5_000);
        assert_eq!(snapshot.get(5_000), None);
        assert!(vec.iter().copied().eq(0..=5_000));
    }

    #[test]
    fn iterates_from_any_index() {
        let vec: CowVec<u32> = (0..10_000).collect();
        for from in [0, 1, 4_095, 4_096, 4_097, 9_999, 10_000, 12_000] {
            assert!(
                vec.iter_from(from).copied().eq(from as u32..10_000),
                "from {from}"
            );
        }
    }

    #[test]
    fn encodes_as_a_plain_sequence() {
        let vec: CowVec<u32> = (0..5000).collect();
        let plain: Vec<u32> = (0..5000).collect();
        let bytes = postcard::to_stdvec(&vec).expect("encodes");
        assert_eq!(bytes, postcard::to_stdvec(&plain).expect("encodes"));
        let back: CowVec<u32> = postcard::from_bytes(&bytes).expect("decodes");
        assert_eq!(back, vec);
    }
}
