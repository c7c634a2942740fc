//! The `Counter` contract: a named counter that can be added to, read and renamed.
//!
//! A contract crate holds only the trait and the types it uses. Actors depend
//! on it to implement the trait; callers depend on it for the generated
//! clients. Build with `cargo build -p example-counter-contract`; the crate
//! also builds for `wasm32-wasip1`, where the native client is left out.
#![deny(missing_docs)]

// ANCHOR: contract
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Why a counter refused a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum CounterError {
    /// The new name is empty or longer than 32 characters.
    InvalidName {
        /// The rejected name.
        name: String,
    },
    /// Adding would overflow the total.
    Overflow,
}

/// A counter.
#[lattice::contract(version = 1)]
pub trait Counter {
    /// Adds `by` and returns the new total (saturating at `u64::MAX`).
    fn add(&mut self, by: u64) -> u64;

    /// Adds `by` unless the total would overflow.
    fn checked_add(&mut self, by: u64) -> Result<u64, CounterError>;

    /// Returns the total.
    #[lattice(idempotent, timeout = "500ms")]
    fn get(&self) -> u64;

    /// Renames the counter.
    fn rename(&mut self, name: String) -> Result<(), CounterError>;

    /// Returns the counter's name.
    #[lattice(idempotent)]
    fn name(&self) -> String;

    /// Sets the total back to zero; no reply is sent.
    #[lattice(oneway)]
    fn reset(&mut self);
}
// ANCHOR_END: contract
