//! The `Relay` contract: an actor that calls other actors.
#![deny(missing_docs)]

/// Passes calls on to other actors.
#[lattice::contract(version = 1)]
pub trait Relay {
    /// Adds `by` to the counter actor named `counter`; returns its new total,
    /// or the error of the call as text.
    fn add_to(&self, counter: String, by: u64) -> Result<u64, String>;

    /// Calls `echo` on the actor named `actor`.
    fn echo_via(&self, actor: String, text: String) -> Result<String, String>;
}
