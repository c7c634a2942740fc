//! A keyed test actor: one tally per key, whose state the host loads before
//! each call and saves after each `&mut self` call.

use serde::{Deserialize, Serialize};

/// A tally per key.
#[lattice::contract(version = 1)]
pub trait Tally {
    /// Adds `by` and returns the new total.
    fn add(&mut self, by: u64) -> u64;
    /// The total.
    #[lattice(idempotent)]
    fn get(&self) -> u64;
    /// Adds `by`, then panics: the change must not be saved.
    fn add_then_panic(&mut self, by: u64) -> u64;
}

// ANCHOR: keyed
/// The state of one key.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct TallyActor {
    total: u64,
}

impl Tally for TallyActor {
    fn add(&mut self, by: u64) -> u64 {
        self.total = self.total.saturating_add(by);
        self.total
    }

    fn get(&self) -> u64 {
        self.total
    }

    fn add_then_panic(&mut self, by: u64) -> u64 {
        self.total = self.total.saturating_add(by);
        panic!("after adding {by}");
    }
}

lattice_actor::export!(keyed TallyActor: Tally);
// ANCHOR_END: keyed
