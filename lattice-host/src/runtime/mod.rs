//! The runtime: runs wasm actors and knows nothing of NATS. An engine
//! (wasmtime, with epoch interruption for deadlines and the pooling
//! allocator), compiled modules and their cache, actors and their pools of
//! warm instances, hibernation of idle ones, and `invoke`. What it needs
//! from the layer that puts it on a lattice (calls to actors elsewhere,
//! publishing, serving an actor it starts) it gets through the
//! [`Network`](network::Network) that layer gives it, and where keyed
//! actors' states are kept through the [`StateStore`](state::StateStore)
//! it gives, and actors' key-value buckets through the
//! [`Buckets`](kv::Buckets).

pub mod claims;
pub(crate) mod engine;
pub(crate) mod hibernate;
pub(crate) mod host;
pub(crate) mod instance;
pub(crate) mod inventory;
pub(crate) mod kv;
pub(crate) mod module;
pub(crate) mod network;
pub(crate) mod options;
pub(crate) mod state;
pub(crate) mod stats;
