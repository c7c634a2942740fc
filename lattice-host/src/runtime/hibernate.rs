//! Hibernation: an instance left idle gives the pages of its linear memory
//! back to the system and keeps what it wrote, compressed, on the side; the
//! next call puts those pages back first (see
//! [`HostOptions::hibernate_after`](crate::HostOptions::hibernate_after)).
//!
//! Which pages an instance wrote is read from `/proc/self/pagemap`: a page
//! of a private mapping that is present and anonymous (or swapped out) has
//! been written since it was mapped (or read as the shared zero page, which
//! costs nothing to keep). Every other page is as the mapping gives it: the
//! module's copy-on-write memory image, or zeros. `MADV_DONTNEED` on a
//! private mapping drops the written pages (their contents come back as the
//! mapping's, image or zeros) and unmaps the others (they come back
//! unchanged at the next touch). So saving the written pages, then
//! `MADV_DONTNEED` over the whole memory, then writing the saved pages back
//! restores every byte, whatever backs the memory (wasmtime's pool, its
//! on-demand mappings, with or without an image).
//!
//! Linux only; elsewhere [`PageMap::open`] says so and instances stay awake.

use std::io;
use std::sync::Weak;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use lattice::{Error, ErrorKind};
use tokio::time::Instant;

use crate::runtime::host::HostInner;

/// Hibernates the instances idle for longer than `after`, on a thread of
/// its own, until dropped (with the host).
pub(crate) struct Sweeper {
    _stop: mpsc::Sender<()>,
}

impl Sweeper {
    /// Starts the thread: it looks a quarter of `after` apart (from 10 ms
    /// to 5 s). `None`, with a warning, where hibernation cannot work.
    pub(crate) fn start(host: Weak<HostInner>, after: Duration) -> Option<Sweeper> {
        let pages = match PageMap::open() {
            Ok(pages) => pages,
            Err(e) => {
                tracing::warn!(error = %e, "idle instances will not hibernate");
                return None;
            }
        };
        let (stop, stopped) = mpsc::channel::<()>();
        let every = (after / 4).clamp(Duration::from_millis(10), Duration::from_secs(5));
        std::thread::Builder::new()
            .name("lattice-hibernate".into())
            .spawn(move || {
                // Until the host drops its sender (or sends, which it
                // never does).
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    // Not yet, while the host is being built (the thread
                    // starts inside `Arc::new_cyclic`); the host's drop
                    // ends the loop through the channel.
                    let Some(host) = host.upgrade() else {
                        continue;
                    };
                    if let Some(cutoff) = Instant::now().checked_sub(after) {
                        for actor in host.actors_snapshot() {
                            actor.hibernate_idle(&pages, cutoff, &host.stats);
                            // A keyed actor's idle keys go away too.
                            if actor.keyed {
                                actor.activations.let_go_idle(cutoff.into_std());
                            }
                        }
                    }
                }
            })
            .map_err(|e| tracing::warn!(error = %e, "idle instances will not hibernate"))
            .ok()?;
        Some(Sweeper { _stop: stop })
    }
}

/// The pages an instance had written when it went to sleep.
pub(crate) struct Snapshot {
    /// Their indexes in the linear memory (in units of the system's page),
    /// ascending.
    pages: Box<[u32]>,
    /// Their bytes, one page after the other, in LZ4 blocks of
    /// [`PAGES_PER_BLOCK`] pages, each after its length (`u32`, little
    /// endian): an instance that wrote much never needs a copy of it all.
    compressed: Box<[u8]>,
    /// The system's page size.
    page: usize,
}

#[cfg(test)]
impl Snapshot {
    /// The bytes the snapshot keeps on the heap.
    fn kept_bytes(&self) -> usize {
        self.pages.len() * 4 + self.compressed.len()
    }
}

/// The process's page map: which pages of its memory are present, and
/// whether each is anonymous or from a file.
pub(crate) struct PageMap {
    #[cfg(target_os = "linux")]
    file: std::fs::File,
    page: usize,
}

/// The pages compressed together: 256 KiB of 4 KiB pages.
const PAGES_PER_BLOCK: usize = 64;

/// The most written memory an instance saves when it hibernates: one that
/// wrote more stays awake (its snapshot would take as long to make, and
/// for a while as much memory again).
#[cfg(target_os = "linux")]
const MAX_SAVED: usize = 64 << 20;

/// Pagemap entries read at once: 4 KiB of entries, 2 MiB of memory.
#[cfg(target_os = "linux")]
const ENTRIES_AT_ONCE: usize = 512;

#[cfg(target_os = "linux")]
impl PageMap {
    /// Opens `/proc/self/pagemap`, and checks that it tells a written
    /// page from one given back (some sandboxes report nothing present,
    /// which would lose every instance's state).
    #[allow(unsafe_code)]
    pub(crate) fn open() -> io::Result<PageMap> {
        use rustix::mm::{MapFlags, ProtFlags};
        let map = PageMap {
            file: std::fs::File::open("/proc/self/pagemap")?,
            page: rustix::param::page_size(),
        };
        // SAFETY: a fresh private anonymous page, written, read through
        // the page map, and unmapped; nothing else refers to it.
        let (written, given_back) = unsafe {
            let ptr = rustix::mm::mmap_anonymous(
                std::ptr::null_mut(),
                map.page,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE,
            )?;
            ptr.cast::<u8>().write_volatile(1);
            let written = map.entry(ptr.cast());
            let given_back = rustix::mm::madvise(ptr, map.page, rustix::mm::Advice::LinuxDontNeed)
                .map_err(io::Error::from)
                .and_then(|()| map.entry(ptr.cast()));
            let _ = rustix::mm::munmap(ptr, map.page);
            (written?, given_back?)
        };
        if !written.is_written() || given_back.is_written() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "/proc/self/pagemap does not tell which pages were written",
            ));
        }
        Ok(map)
    }

    /// The page map's entry for the page at `at`.
    fn entry(&self, at: *const u8) -> io::Result<Entry> {
        use std::os::unix::fs::FileExt;
        let mut entry = [0u8; 8];
        self.file
            .read_exact_at(&mut entry, (at as usize / self.page * 8) as u64)?;
        Ok(Entry(u64::from_ne_bytes(entry)))
    }

    /// Saves the pages of `memory` written since it was mapped, then gives
    /// every page of it back to the system. On an error `memory` reads as
    /// it did.
    #[allow(unsafe_code)]
    pub(crate) fn hibernate(&self, memory: &mut [u8]) -> io::Result<Snapshot> {
        use std::os::unix::fs::FileExt;

        let page = self.page;
        let base = memory.as_mut_ptr();
        if !(base as usize).is_multiple_of(page) {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "the linear memory does not start on a page",
            ));
        }
        // Whole pages only; a memory's size is a multiple of 64 KiB unless
        // the module declares a custom page size.
        let count = memory.len() / page;
        let first = base as usize / page;
        let mut written = Vec::new();
        let mut entries = vec![0u8; 8 * ENTRIES_AT_ONCE];
        for start in (0..count).step_by(ENTRIES_AT_ONCE) {
            let n = ENTRIES_AT_ONCE.min(count - start);
            let entries = &mut entries[..8 * n];
            self.file
                .read_exact_at(entries, ((first + start) * 8) as u64)?;
            for (i, entry) in entries.chunks_exact(8).enumerate() {
                if Entry(u64::from_ne_bytes(entry.try_into().unwrap_or_default())).is_written() {
                    let index = u32::try_from(start + i).map_err(|_| {
                        io::Error::new(io::ErrorKind::Unsupported, "a linear memory of 2^32 pages")
                    })?;
                    written.push(index);
                }
            }
        }
        let refused = |why: &str| io::Error::other(format!("it stays awake: {why}"));
        let saved = written.len() * page;
        if saved > MAX_SAVED {
            return Err(refused(&format!(
                "it wrote {} MiB of its memory, more than the {} MiB a snapshot takes",
                saved >> 20,
                MAX_SAVED >> 20
            )));
        }
        let mut compressed = Vec::new();
        let mut raw = Vec::with_capacity(written.len().min(PAGES_PER_BLOCK) * page);
        for block in written.chunks(PAGES_PER_BLOCK) {
            raw.clear();
            for &index in block {
                raw.extend_from_slice(&memory[index as usize * page..][..page]);
            }
            let at = compressed.len();
            let room = 4 + lz4_flex::block::get_maximum_output_size(raw.len());
            compressed
                .try_reserve(room)
                .map_err(|_| refused("no memory for its snapshot"))?;
            compressed.resize(at + room, 0);
            let len = lz4_flex::block::compress_into(&raw, &mut compressed[at + 4..])
                .map_err(io::Error::other)?;
            compressed.truncate(at + 4 + len);
            let len = u32::try_from(len).map_err(io::Error::other)?;
            compressed[at..at + 4].copy_from_slice(&len.to_le_bytes());
        }
        // Hibernating saves memory only if what it wrote compresses.
        if compressed.len() > saved / 8 * 7 {
            return Err(refused(&format!(
                "the {} KiB it wrote do not compress",
                saved >> 10
            )));
        }
        let snapshot = Snapshot {
            pages: written.into_boxed_slice(),
            compressed: compressed.into_boxed_slice(),
            page,
        };
        // SAFETY: the range is `memory`'s whole pages, which this function
        // borrows exclusively: no reference into it outlives the call. On
        // a private mapping (wasmtime maps linear memories privately, and
        // a `malloc`ed one is anonymous) the advice drops the written
        // pages, saved above, and leaves the others as they read.
        let given_back = unsafe {
            rustix::mm::madvise(base.cast(), count * page, rustix::mm::Advice::LinuxDontNeed)
        };
        if let Err(e) = given_back {
            // Linux advises one mapping after the other and stops at the
            // first it refuses (a locked one): those before it were given
            // back. The snapshot puts back what they held.
            snapshot
                .restore(memory)
                .map_err(|e| io::Error::other(e.message().to_owned()))?;
            return Err(e.into());
        }
        Ok(snapshot)
    }
}

/// An entry of `/proc/self/pagemap`.
#[cfg(target_os = "linux")]
#[derive(Clone, Copy)]
struct Entry(u64);

#[cfg(target_os = "linux")]
impl Entry {
    /// Whether the page may read otherwise than its mapping gives it back
    /// (zeros, or the file's page): present and anonymous (a private page,
    /// or the shared zero page), or swapped out.
    fn is_written(self) -> bool {
        let (present, swapped, file) = (
            self.0 >> 63 & 1 == 1,
            self.0 >> 62 & 1 == 1,
            self.0 >> 61 & 1 == 1,
        );
        swapped || (present && !file)
    }
}

#[cfg(not(target_os = "linux"))]
impl PageMap {
    pub(crate) fn open() -> io::Result<PageMap> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "hibernation reads /proc/self/pagemap, which only Linux has",
        ))
    }

    pub(crate) fn hibernate(&self, _memory: &mut [u8]) -> io::Result<Snapshot> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "hibernation needs Linux",
        ))
    }
}

impl Snapshot {
    /// Writes the saved pages back into `memory`, the memory they were
    /// taken of. A saved page of zeros is written only if the page reads
    /// otherwise now, so that pages that were only read stay unallocated.
    pub(crate) fn restore(&self, memory: &mut [u8]) -> Result<(), Error> {
        let (snapshot, page) = (self, self.page);
        let broken = |what: &str| {
            Error::new(
                ErrorKind::Remote,
                format!("cannot wake a hibernated instance: {what}"),
            )
        };
        let mut raw = vec![0u8; snapshot.pages.len().min(PAGES_PER_BLOCK) * page];
        let mut rest = &snapshot.compressed[..];
        for block in snapshot.pages.chunks(PAGES_PER_BLOCK) {
            let (len, after) = rest
                .split_first_chunk::<4>()
                .ok_or_else(|| broken("its snapshot is cut short"))?;
            let (data, after) = after
                .split_at_checked(u32::from_le_bytes(*len) as usize)
                .ok_or_else(|| broken("its snapshot is cut short"))?;
            rest = after;
            let raw = &mut raw[..block.len() * page];
            let n =
                lz4_flex::block::decompress_into(data, raw).map_err(|e| broken(&e.to_string()))?;
            if n != raw.len() {
                return Err(broken("a block of its snapshot is short"));
            }
            for (saved, &index) in raw.chunks_exact(page).zip(block) {
                let now = memory
                    .get_mut(index as usize * page..)
                    .and_then(|rest| rest.get_mut(..page))
                    .ok_or_else(|| broken("its memory shrank"))?;
                if saved.iter().any(|&b| b != 0) || now.iter().any(|&b| b != 0) {
                    now.copy_from_slice(saved);
                }
            }
        }
        Ok(())
    }
}

#[cfg(all(test, target_os = "linux"))]
#[allow(unsafe_code)]
mod tests {
    use super::PageMap;

    /// The page map's entries of `memory`'s pages.
    fn entries(map: &PageMap, memory: &[u8]) -> Vec<u64> {
        (0..memory.len() / map.page)
            .map(|i| {
                map.entry(memory[i * map.page..].as_ptr())
                    .expect("reads the page map")
                    .0
            })
            .collect()
    }

    /// The pages of `memory` that hold memory of their own: present and
    /// mapped only here (not the shared zero page, not a file's page).
    fn own_pages(map: &PageMap, memory: &[u8]) -> Vec<usize> {
        let own = |e: u64| e >> 63 & 1 == 1 && e >> 61 & 1 == 0 && e >> 56 & 1 == 1;
        let entries = entries(map, memory).into_iter().enumerate();
        entries.filter(|&(_, e)| own(e)).map(|(i, _)| i).collect()
    }

    /// How many pages of `memory` are mapped at all.
    fn mapped_pages(map: &PageMap, memory: &[u8]) -> usize {
        let entries = entries(map, memory).into_iter();
        entries.filter(|e| e >> 63 & 1 == 1).count()
    }

    /// A private mapping of `pages` pages: the first `image` from a file of
    /// known bytes (as wasmtime maps a module's memory image), the rest
    /// anonymous.
    struct Mapping {
        ptr: *mut u8,
        len: usize,
    }

    impl Mapping {
        fn new(pages: usize, image: &[u8]) -> Mapping {
            use rustix::mm::{MapFlags, ProtFlags};
            let page = rustix::param::page_size();
            let len = pages * page;
            // SAFETY: a fresh anonymous mapping, then a file mapped over its
            // start: nothing else refers to either.
            unsafe {
                let ptr = rustix::mm::mmap_anonymous(
                    std::ptr::null_mut(),
                    len,
                    ProtFlags::READ | ProtFlags::WRITE,
                    MapFlags::PRIVATE,
                )
                .expect("mmap");
                if !image.is_empty() {
                    let file = tempfile::tempfile().expect("a file");
                    std::io::Write::write_all(&mut &file, image).expect("writes");
                    rustix::mm::mmap(
                        ptr,
                        image.len(),
                        ProtFlags::READ | ProtFlags::WRITE,
                        MapFlags::PRIVATE | MapFlags::FIXED,
                        &file,
                        0,
                    )
                    .expect("maps the file");
                }
                Mapping {
                    ptr: ptr.cast(),
                    len,
                }
            }
        }

        fn bytes(&mut self) -> &mut [u8] {
            // SAFETY: the mapping lives as long as `self`, which this
            // borrows mutably.
            unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
        }
    }

    impl Drop for Mapping {
        fn drop(&mut self) {
            // SAFETY: unmapping what `new` mapped; nothing borrows it now.
            unsafe {
                let _ = rustix::mm::munmap(self.ptr.cast(), self.len);
            }
        }
    }

    /// Fills `bytes` with an xorshift stream, which does not compress.
    fn noise(mut x: u64, bytes: &mut [u8]) {
        for byte in bytes {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *byte = x as u8;
        }
    }

    /// Four pages of an image of known bytes, and a mapping of sixteen
    /// pages that maps it first.
    fn image_and_mapping(page: usize) -> (Vec<u8>, Mapping) {
        let image: Vec<u8> = (0..4 * page).map(|i| (i % 251) as u8).collect();
        let mapping = Mapping::new(16, &image);
        (image, mapping)
    }

    #[test]
    fn a_hibernated_memory_reads_the_same_after_waking_and_holds_no_pages_in_between() {
        let map = PageMap::open().expect("the page map");
        let page = map.page;
        // Four pages of image, twelve anonymous.
        let (image, mut mapping) = image_and_mapping(page);
        let memory = mapping.bytes();
        // Pages 0 and 1 of the image read only; page 2 written; page 5
        // written, page 6 only read (the shared zero page), page 9 written
        // with zeros over zeros, page 15 written at its last byte.
        let mut sum = 0u64;
        for at in [0, page, 6 * page] {
            sum += u64::from(memory[at]);
        }
        std::hint::black_box(sum);
        let mut before = image.clone();
        before.resize(16 * page, 0);
        for bytes in [&mut *memory, &mut before[..]] {
            bytes[2 * page + 17] = 0xaa;
            bytes[5 * page..6 * page].fill(0x55);
            bytes[9 * page..10 * page].fill(0);
            bytes[16 * page - 1] = 1;
        }
        assert_eq!(own_pages(&map, memory), [2, 5, 9, 15]);

        let snapshot = map.hibernate(memory).expect("hibernates");
        // The zero page that page 6 read is saved too: it is anonymous, and
        // its zeros compress to nothing.
        assert_eq!(&*snapshot.pages, &[2, 5, 6, 9, 15]);
        assert!(
            snapshot.kept_bytes() < 2 * page,
            "five pages, mostly repeats, kept in {} bytes",
            snapshot.kept_bytes()
        );
        assert_eq!(mapped_pages(&map, memory), 0, "every page went back");

        snapshot.restore(memory).expect("wakes");
        assert!(memory == before, "the memory reads as before");
        // The pages written with something other than zeros hold memory
        // again; those of zeros read as zeros without any.
        assert_eq!(own_pages(&map, memory), [2, 5, 15]);

        // Again, now that every page has been read (the comparison above
        // mapped the zero page wherever the memory is anonymous).
        let again = map.hibernate(memory).expect("hibernates");
        assert_eq!(
            again.pages.len(),
            13,
            "all but the three image pages never written"
        );
        assert!(again.kept_bytes() < 2 * page, "{}", again.kept_bytes());
        again.restore(memory).expect("wakes");
        assert!(memory == before, "the memory reads as before, twice");
    }

    #[test]
    fn many_written_pages_are_saved_in_blocks_and_restored() {
        let map = PageMap::open().expect("the page map");
        let page = map.page;
        let mut mapping = Mapping::new(200, &[]);
        let memory = mapping.bytes();
        // 150 pages of noise (three blocks), every fourth page of the rest
        // written.
        noise(0x9e37_79b9_7f4a_7c15, &mut memory[..150 * page]);
        for index in (150..200).step_by(4) {
            memory[index * page + index] = index as u8;
        }
        let before = memory.to_vec();
        let snapshot = map.hibernate(memory).expect("hibernates");
        assert_eq!(snapshot.pages.len(), 200, "the copy above read every page");
        assert_eq!(mapped_pages(&map, memory), 0);
        snapshot.restore(memory).expect("wakes");
        assert!(memory == before, "every block back in place");
        assert_eq!(own_pages(&map, memory).len(), 150 + 13);
    }

    #[test]
    fn a_refused_madvise_leaves_the_memory_as_it_read() {
        let map = PageMap::open().expect("the page map");
        let page = map.page;
        let (image, mut mapping) = image_and_mapping(page);
        let memory = mapping.bytes();
        // Locked pages cannot be given back: `madvise` gives back the
        // mappings before them, then fails.
        // SAFETY: the last eight pages of the mapping, locked in place.
        unsafe {
            rustix::mm::mlock(memory[8 * page..].as_mut_ptr().cast(), 8 * page)
                .expect("mlock (RLIMIT_MEMLOCK allows 32 KiB)");
        }
        let mut before = image.clone();
        before.resize(16 * page, 0);
        for bytes in [&mut *memory, &mut before[..]] {
            bytes[2 * page] = 0xaa;
            bytes[5 * page..6 * page].fill(0x55);
            bytes[10 * page + 3] = 9;
        }
        let Err(err) = map.hibernate(memory) else {
            panic!("hibernated over locked pages");
        };
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
        assert!(memory == before, "the pages given back were put back");
    }

    #[test]
    fn memory_that_does_not_compress_stays_awake() {
        let map = PageMap::open().expect("the page map");
        let mut mapping = Mapping::new(8, &[]);
        let memory = mapping.bytes();
        noise(0x2545_f491_4f6c_dd1d, memory);
        let before = memory.to_vec();
        let Err(err) = map.hibernate(memory) else {
            panic!("hibernated noise");
        };
        assert!(err.to_string().contains("do not compress"), "{err}");
        assert_eq!(own_pages(&map, memory).len(), 8, "nothing given back");
        assert!(memory == before);
    }

    #[test]
    fn a_corrupt_snapshot_is_an_error_not_a_panic() {
        let map = PageMap::open().expect("the page map");
        let mut mapping = Mapping::new(2, &[]);
        let memory = mapping.bytes();
        memory[3] = 7;
        let mut snapshot = map.hibernate(memory).expect("hibernates");
        let good = snapshot.compressed.clone();
        // Cut short, a length past the end, a block that is not LZ4.
        for bad in [
            &good[..3],
            &[0xff, 0xff, 0, 0, 1][..],
            &[3, 0, 0, 0, 0xff, 0xff, 0xff][..],
        ] {
            snapshot.compressed = bad.into();
            let err = snapshot.restore(memory).unwrap_err();
            assert!(err.to_string().contains("cannot wake"), "{err}");
        }
        snapshot.compressed = good;
        snapshot.restore(memory).expect("wakes");
        assert_eq!(memory[3], 7);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: std::env::var("LATTICE_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000),
            failure_persistence: None,
            ..proptest::prelude::ProptestConfig::default()
        })]

        /// Whatever bytes a snapshot holds, and whichever pages it names,
        /// waking answers with the memory restored or an error.
        #[test]
        fn any_snapshot_wakes_or_says_why(
            compressed in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
            pages in proptest::collection::vec(0u32..8, 0..80),
            keep_length in proptest::prelude::any::<bool>(),
        ) {
            let page = rustix::param::page_size();
            let mut memory = vec![0u8; 4 * page];
            let mut compressed = compressed;
            if keep_length && compressed.len() >= 4 {
                // A plausible length, so that LZ4 itself reads the block.
                let len = (compressed.len() - 4) as u32;
                compressed[..4].copy_from_slice(&len.to_le_bytes());
            }
            let mut pages = pages;
            pages.sort_unstable();
            let snapshot = super::Snapshot {
                pages: pages.into(),
                compressed: compressed.into(),
                page,
            };
            if let Err(e) = snapshot.restore(&mut memory) {
                proptest::prop_assert!(e.to_string().contains("cannot wake"), "{}", e);
            }
        }
    }
}
