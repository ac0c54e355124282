//! The scrollback: a bounded ring of the most recent console bytes, replayed to each client on
//! attach before its live output (test T10).
//!
//! Bounded in bytes rather than lines so memory is fixed whatever the IOC prints; a replay may
//! therefore start mid-line, which is what a terminal scrollback does too.

use std::collections::VecDeque;

/// The last `capacity` bytes published, oldest first.
#[derive(Debug)]
pub(crate) struct History {
    buf: VecDeque<u8>,
    capacity: usize,
}

impl History {
    /// An empty history keeping at most `capacity` bytes (0 disables replay).
    pub(crate) fn new(capacity: usize) -> History {
        History {
            buf: VecDeque::with_capacity(capacity.min(64 * 1024)),
            capacity,
        }
    }

    /// Append bytes, forgetting the oldest ones beyond the capacity.
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        if self.capacity == 0 {
            return;
        }
        // only the tail of an oversized chunk can survive
        let bytes = &bytes[bytes.len().saturating_sub(self.capacity)..];
        let overflow = (self.buf.len() + bytes.len()).saturating_sub(self.capacity);
        self.buf.drain(..overflow);
        self.buf.extend(bytes);
    }

    /// A copy of everything held, oldest first.
    pub(crate) fn snapshot(&self) -> Vec<u8> {
        let (a, b) = self.buf.as_slices();
        let mut out = Vec::with_capacity(a.len() + b.len());
        out.extend_from_slice(a);
        out.extend_from_slice(b);
        out
    }

    /// Bytes currently held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_everything_under_capacity() {
        let mut h = History::new(10);
        h.push(b"abc");
        h.push(b"def");
        assert_eq!(h.snapshot(), b"abcdef");
        assert_eq!(h.len(), 6);
    }

    #[test]
    fn forgets_oldest_bytes_past_capacity() {
        let mut h = History::new(5);
        h.push(b"abc");
        h.push(b"defg");
        assert_eq!(h.snapshot(), b"cdefg");
    }

    #[test]
    fn oversized_chunk_keeps_its_tail() {
        let mut h = History::new(4);
        h.push(b"xy");
        h.push(b"0123456789");
        assert_eq!(h.snapshot(), b"6789");
    }

    #[test]
    fn wraps_many_times_and_stays_bounded() {
        let mut h = History::new(7);
        let mut all = Vec::new();
        for i in 0..1000u32 {
            let chunk = format!("{i},");
            h.push(chunk.as_bytes());
            all.extend_from_slice(chunk.as_bytes());
        }
        assert_eq!(h.len(), 7);
        assert_eq!(h.snapshot(), &all[all.len() - 7..]);
    }

    #[test]
    fn zero_capacity_disables_replay() {
        let mut h = History::new(0);
        h.push(b"abc");
        assert!(h.snapshot().is_empty());
    }
}
