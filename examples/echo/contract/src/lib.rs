//! The `Echo` contract: strings and bytes, back as they came.
//!
//! Built by `cargo build -p example-echo-contract`; implemented by
//! `examples/echo/actor` and by `examples/relay/actor`.
#![deny(missing_docs)]

// ANCHOR: contract
/// Sends back what it is given.
#[lattice::contract(version = 1)]
pub trait Echo {
    /// Returns `text` unchanged.
    #[lattice(idempotent)]
    fn echo(&self, text: String) -> String;

    /// Returns `data` unchanged; bytes travel as MessagePack bin.
    #[lattice(idempotent)]
    fn echo_bytes(&self, data: Vec<u8>) -> Vec<u8>;

    /// Returns `text` with its characters in reverse order.
    #[lattice(idempotent)]
    fn reverse(&self, text: String) -> String;
}
// ANCHOR_END: contract
