//! The Lattice host runtime.
//!
//! This crate will hold the wasmtime engine, the compiled-module cache, actor
//! instance pools, the NATS subscriptions and the `lattice` CLI. It is part of
//! the workspace from the start so that the layout is fixed; the runtime lands
//! with the issue "Actors in wasm: the actor SDK and the wasmtime host".
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub use lattice;
