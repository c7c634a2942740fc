//! Message bodies carved out of a per-thread arena.
//!
//! A body built in a `Vec` of its own costs two allocations on its way to
//! NATS: the `Vec`, and the shared header that `bytes` allocates when a
//! `Bytes` made from a `Vec` is first cloned or sliced (async-nats clones
//! every payload it writes; the client slices its arguments to keep them for
//! a retry). Under load these are freed on another thread than the one that
//! allocated them, which glibc serves from its slow path: about 300
//! instructions a pair (callgrind). A body built here is a slice of a
//! thread's arena instead: no allocation but one per [`CHUNK`] bytes of
//! bodies, and clones are reference counts.
//!
//! The client builds its calls' bodies here and the host its replies.
//!
//! ```
//! let body = lattice::buffer::build(|buf| buf.extend_from_slice(b"hello"));
//! assert_eq!(&body[..], b"hello");
//! let copy = lattice::buffer::copy(b"world");
//! assert_eq!(&copy[..], b"world");
//! ```

use std::cell::RefCell;

use bytes::{Bytes, BytesMut};

/// The size of each arena chunk. A chunk is freed when the last body
/// carved from it is dropped, so a body kept for long keeps up to this much
/// memory alive.
pub const CHUNK: usize = 8 << 10;

/// A body larger than this gets an allocation of its own ([`copy`]), or
/// leaves the arena to its owner ([`build`]): a chunk that grew for it is not
/// kept for the next bodies.
pub const MAX_SHARED: usize = 2 << 10;

thread_local! {
    static ARENA: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// Builds a body: `fill` appends it to an empty buffer from this thread's
/// arena, and the result is returned as a `Bytes` sharing the arena's chunk.
pub fn build(fill: impl FnOnce(&mut BytesMut)) -> Bytes {
    try_build(|buf| {
        fill(buf);
        Ok::<(), std::convert::Infallible>(())
    })
    .unwrap_or_else(|never| match never {})
    .freeze()
}

/// [`build`], where `fill` may fail (what it wrote is then discarded), and
/// whose body can still be written to: `freeze` it to send it.
pub fn try_build<E>(fill: impl FnOnce(&mut BytesMut) -> Result<(), E>) -> Result<BytesMut, E> {
    ARENA.with(|arena| {
        let Ok(mut arena) = arena.try_borrow_mut() else {
            // `fill` itself builds a body (a `Serialize` impl that encodes
            // through a client, say): give it a buffer of its own.
            let mut own = BytesMut::new();
            return fill(&mut own).map(|()| own);
        };
        // Empty unless a `fill` panicked half way: its bytes are not the
        // next body's.
        arena.clear();
        if arena.capacity() < MAX_SHARED {
            // A new chunk, or the current one reused from its start when
            // every body carved from it has been dropped.
            arena.reserve(CHUNK);
        }
        let result = fill(&mut arena);
        let body = arena.split();
        if body.len() > MAX_SHARED {
            // The chunk may have grown for this body: let it go with it.
            *arena = BytesMut::new();
        }
        result.map(|()| body)
    })
}

/// A copy of `bytes` as a body: in the arena if it is small, else in an
/// allocation of its own.
pub fn copy(bytes: &[u8]) -> Bytes {
    if bytes.len() > MAX_SHARED {
        return Bytes::copy_from_slice(bytes);
    }
    build(|buf| buf.extend_from_slice(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_keep_their_bytes_while_the_arena_moves_on() {
        let bodies: Vec<Bytes> = (0..3 * CHUNK / 100)
            .map(|i| copy(&[u8::try_from(i % 251).unwrap(); 100]))
            .collect();
        for (i, body) in bodies.iter().enumerate() {
            assert_eq!(&body[..], &[u8::try_from(i % 251).unwrap(); 100][..]);
        }
    }

    #[test]
    fn a_chunk_is_reused_once_its_bodies_are_dropped() {
        let first = copy(&[1; 100]);
        let at = first.as_ptr();
        drop(first);
        // Bodies dropped at once: the arena comes back to the start of the
        // same chunk when it runs short, rather than take a new one.
        let reused = (0..2 * CHUNK / 100).any(|_| copy(&[2; 100]).as_ptr() == at);
        assert!(
            reused,
            "a chunk whose bodies were all dropped is not reused"
        );
    }

    #[test]
    fn large_bodies_do_not_stay_in_the_arena() {
        let big = build(|buf| buf.extend_from_slice(&vec![9; 4 * CHUNK]));
        assert_eq!(big.len(), 4 * CHUNK);
        ARENA.with(|arena| assert_eq!(arena.borrow().capacity(), 0));
        let copied = copy(&vec![3; MAX_SHARED + 1]);
        assert_eq!(copied.len(), MAX_SHARED + 1);
    }

    #[test]
    fn a_failed_build_leaves_nothing_behind() {
        let failed = try_build(|buf| {
            buf.extend_from_slice(b"half");
            Err("no")
        });
        assert_eq!(failed, Err("no"));
        let next = copy(b"next");
        assert_eq!(&next[..], b"next");
    }

    #[test]
    fn a_panic_while_building_leaves_nothing_behind() {
        let panicked = std::panic::catch_unwind(|| {
            build(|buf| {
                buf.extend_from_slice(b"half");
                panic!("a serializer panicked");
            })
        });
        assert!(panicked.is_err());
        assert_eq!(&copy(b"next")[..], b"next");
    }

    #[test]
    fn a_build_inside_a_build_gets_its_own_buffer() {
        let outer = build(|buf| {
            let inner = copy(b"inner");
            buf.extend_from_slice(&inner);
            buf.extend_from_slice(b"+outer");
        });
        assert_eq!(&outer[..], b"inner+outer");
    }
}
