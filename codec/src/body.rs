//! The buffer a [`crate::MessageBuilder`] writes its fields into: inline while it is small,
//! so that building the profile's messages allocates only the output, on the heap beyond.

use std::ops::Range;

/// Bytes held inline: every message of the profile's card traffic fits (a 0210 approval's
/// fields take about 150), a blacklist download's F48 does not.
const INLINE: usize = 256;

/// A growable byte buffer with its first [`INLINE`] bytes inside the struct.
///
/// The bytes are `inline[..len]` while `heap` is empty, else all of `heap`. Bytes past
/// `len` in `inline` are stale: [`Body::grow`] and [`Body::resize`] hand back room that the
/// caller must fill.
#[derive(Clone)]
pub(crate) struct Body {
    inline: [u8; INLINE],
    len: usize,
    heap: Vec<u8>,
}

impl Body {
    #[inline]
    pub(crate) fn new() -> Body {
        Body {
            inline: [0; INLINE],
            len: 0,
            heap: Vec::new(),
        }
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub(crate) fn as_slice(&self) -> &[u8] {
        match self.heap.is_empty() {
            true => self.inline.get(..self.len).unwrap_or_default(),
            false => &self.heap,
        }
    }

    #[inline]
    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        match self.heap.is_empty() {
            true => self.inline.get_mut(..self.len).unwrap_or_default(),
            false => &mut self.heap,
        }
    }

    /// The bytes in `range`, empty if it is not within the buffer.
    #[inline]
    pub(crate) fn get(&self, range: Range<usize>) -> &[u8] {
        self.as_slice().get(range).unwrap_or_default()
    }

    /// Makes the buffer `extra` bytes longer and returns the new room at its end.
    #[inline]
    pub(crate) fn grow(&mut self, extra: usize) -> &mut [u8] {
        let start = self.len;
        self.resize(start + extra);
        self.as_mut_slice().get_mut(start..).unwrap_or_default()
    }

    /// Sets the length to `len`: what is past it is dropped, new bytes are to be filled.
    #[inline]
    pub(crate) fn resize(&mut self, len: usize) {
        if self.heap.is_empty() && len <= INLINE {
            self.len = len;
            return;
        }
        self.resize_on_heap(len);
    }

    /// [`Body::resize`] when the bytes are, or are to be, on the heap.
    #[cold]
    fn resize_on_heap(&mut self, len: usize) {
        if self.heap.is_empty() {
            // Moving to the heap (or emptied there: then `self.len` is 0).
            self.heap.reserve(len.max(2 * INLINE));
            self.heap
                .extend_from_slice(self.inline.get(..self.len).unwrap_or_default());
        }
        self.heap.resize(len, 0);
        self.len = len;
        debug_assert_eq!(self.heap.len(), self.len);
    }

    /// Extends the buffer with `data`.
    #[inline]
    pub(crate) fn extend_from_slice(&mut self, data: &[u8]) {
        self.grow(data.len()).copy_from_slice(data);
    }

    /// Removes the bytes in `range`, moving the ones after it down.
    pub(crate) fn remove(&mut self, range: Range<usize>) {
        let len = self.len;
        if range.start > range.end || range.end > len {
            return;
        }
        self.as_mut_slice().copy_within(range.end..len, range.start);
        self.resize(len - range.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Growing past the inline bytes keeps what was written, and so does shrinking back.
    #[test]
    fn spills_to_the_heap_intact() {
        let mut body = Body::new();
        let mut expected = Vec::new();
        for i in 0..100u8 {
            let chunk = [i; 7];
            body.extend_from_slice(&chunk);
            expected.extend_from_slice(&chunk);
            assert_eq!(body.as_slice(), &expected[..]);
        }
        assert!(!body.heap.is_empty());
        body.remove(3..690);
        expected.drain(3..690);
        assert_eq!(body.as_slice(), &expected[..]);
        body.resize(0);
        assert_eq!(body.as_slice(), b"");
        body.extend_from_slice(b"abc");
        assert_eq!(body.as_slice(), b"abc");
        assert_eq!(body.get(1..3), b"bc");
        assert_eq!(body.get(2..9), b"");
    }
}
