//! The Lattice actor SDK: the guest half of the wasm ABI.
//!
//! Actors are `wasm32-wasip1` modules that implement contracts. This crate
//! will hold the ABI exports, the host imports (`call`, `publish`, `log`), the
//! export macro, the panic hook and the logging macros; they land with the
//! issue "Actors in wasm: the actor SDK and the wasmtime host". It depends on
//! `lattice` without its native client, which is what a guest needs.
#![deny(missing_docs)]

pub use lattice;
