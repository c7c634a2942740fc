//! A hostile actor, for the host's tests. Each method misbehaves in one way;
//! the host must turn each into a typed error and keep serving.
#![allow(missing_docs)]

use std::hint::black_box;

#[lattice::contract(version = 1)]
pub trait Hostile {
    /// Behaves.
    fn ok(&self) -> String;
    /// Counts calls served by this instance.
    fn count(&mut self) -> u64;
    /// Never returns.
    fn spin(&self) -> u64;
    /// Allocates `mib` MiB, one at a time, touching every page.
    fn grow(&mut self, mib: u32) -> u64;
    /// Recurses `depth` times.
    fn recurse(&self, depth: u64) -> u64;
    /// Panics with `message`.
    fn panic(&self, message: String);
    /// Executes `unreachable`.
    fn trap(&self);
    /// Returns `size` bytes.
    fn big_reply(&self, size: u32) -> Vec<u8>;
    /// Returns `data`.
    fn echo(&self, data: Vec<u8>) -> Vec<u8>;
    /// Sleeps `ms` milliseconds (a slow call), then returns `ms`.
    fn sleep(&self, ms: u64) -> u64;
    /// Logs a line at each level; returns the levels whose lines were
    /// formatted (the others the host does not record).
    fn log_each_level(&self) -> Vec<String>;
    /// Uses WASI: the wall clock (seconds since the epoch), the number of
    /// arguments and of environment variables, and random bytes (through
    /// std's hash map seed).
    fn wasi(&self) -> Vec<u64>;
    /// Resets the counter actor `actor` with a oneway call: returns before
    /// the counter has run.
    fn reset_counter(&self, actor: String) -> Result<(), String>;
    /// How many times this instance has run its static constructors.
    fn constructor_runs(&self) -> u32;
    /// Recurses `depth` times, then calls `get` on the counter actor
    /// `actor` and waits for it: the callee runs on this call's stack.
    fn call_deep(&self, depth: u64, actor: String) -> Result<u64, String>;
    /// Keeps `data` in the instance's memory; returns the bytes kept.
    fn stash(&mut self, data: Vec<u8>) -> u64;
    /// FNV-1a of everything kept, in order.
    fn digest(&self) -> u64;
}

/// Counts runs of the module's static constructors (the `.init_array`
/// entry below): an instance runs them once, however many calls it serves.
static CONSTRUCTOR_RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

extern "C" fn count_constructor_run() {
    CONSTRUCTOR_RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// A static constructor, as the `ctor` and `inventory` crates make them.
#[used]
#[unsafe(link_section = ".init_array")]
static CONSTRUCTOR: extern "C" fn() = count_constructor_run;

/// Records, when formatted, that its level's line was built.
struct Noted<'a>(&'a std::cell::RefCell<Vec<String>>, &'static str);

impl std::fmt::Display for Noted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.borrow_mut().push(self.1.to_owned());
        f.write_str(self.1)
    }
}

#[derive(Debug, Default)]
pub struct HostileActor {
    calls: u64,
    hoard: Vec<Vec<u8>>,
}

fn recurse(depth: u64) -> u64 {
    if depth == 0 {
        return 0;
    }
    black_box(1 + recurse(black_box(depth - 1)))
}

impl Hostile for HostileActor {
    fn ok(&self) -> String {
        "ok".into()
    }

    fn count(&mut self) -> u64 {
        self.calls += 1;
        self.calls
    }

    fn spin(&self) -> u64 {
        let mut n: u64 = 0;
        loop {
            n = black_box(n.wrapping_add(1));
        }
    }

    fn grow(&mut self, mib: u32) -> u64 {
        for _ in 0..mib {
            self.hoard.push(black_box(vec![1u8; 1 << 20]));
        }
        self.hoard.len() as u64
    }

    fn recurse(&self, depth: u64) -> u64 {
        recurse(depth)
    }

    fn panic(&self, message: String) {
        panic!("{message}");
    }

    fn trap(&self) {
        std::process::abort();
    }

    fn big_reply(&self, size: u32) -> Vec<u8> {
        vec![7u8; size as usize]
    }

    fn echo(&self, data: Vec<u8>) -> Vec<u8> {
        data
    }

    fn sleep(&self, ms: u64) -> u64 {
        std::thread::sleep(std::time::Duration::from_millis(ms));
        ms
    }

    fn log_each_level(&self) -> Vec<String> {
        let formatted = std::cell::RefCell::new(Vec::new());
        lattice_actor::trace!("{}", Noted(&formatted, "trace"));
        lattice_actor::debug!("{}", Noted(&formatted, "debug"));
        lattice_actor::info!("{}", Noted(&formatted, "info"));
        lattice_actor::warn!("{}", Noted(&formatted, "warn"));
        lattice_actor::error!("{}", Noted(&formatted, "error"));
        formatted.into_inner()
    }

    fn wasi(&self) -> Vec<u64> {
        use std::hash::BuildHasher;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let seeded = std::collections::hash_map::RandomState::new().hash_one(1u8);
        vec![
            now,
            std::env::args().count() as u64,
            std::env::vars().count() as u64,
            seeded,
        ]
    }

    fn reset_counter(&self, actor: String) -> Result<(), String> {
        let counter =
            example_counter_contract::CounterGuestClient::new(&actor).map_err(|e| e.to_string())?;
        counter.reset().map_err(|e| e.to_string())
    }

    fn constructor_runs(&self) -> u32 {
        CONSTRUCTOR_RUNS.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn call_deep(&self, depth: u64, actor: String) -> Result<u64, String> {
        if depth > 0 {
            return black_box(self.call_deep(black_box(depth - 1), actor));
        }
        let counter =
            example_counter_contract::CounterGuestClient::new(&actor).map_err(|e| e.to_string())?;
        counter.get().map_err(|e| e.to_string())
    }

    fn stash(&mut self, data: Vec<u8>) -> u64 {
        self.hoard.push(data);
        self.hoard.iter().map(|d| d.len() as u64).sum()
    }

    fn digest(&self) -> u64 {
        self.hoard
            .iter()
            .flatten()
            .fold(0xcbf2_9ce4_8422_2325, |h, &b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            })
    }
}

lattice_actor::export!(HostileActor: Hostile);
