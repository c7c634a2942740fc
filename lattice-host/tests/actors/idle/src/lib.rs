//! The density benchmark's actor: one method, which holds its instance for
//! a while. Its own crate, so that the benchmark measures an actor of a
//! fixed, small size whatever the test actors grow into.
#![allow(missing_docs)]

#[lattice::contract(version = 1)]
pub trait Idle {
    /// Sleeps `ms` milliseconds, then returns `ms`.
    fn sleep(&self, ms: u64) -> u64;
}

#[derive(Debug, Default)]
pub struct IdleActor;

impl Idle for IdleActor {
    fn sleep(&self, ms: u64) -> u64 {
        std::thread::sleep(std::time::Duration::from_millis(ms));
        ms
    }
}

lattice_actor::export!(IdleActor: Idle);
