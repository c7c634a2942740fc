//! The Lattice host: runs wasm actors with wasmtime.
//!
//! A [`Host`] owns one wasmtime engine (async, epoch interruption for
//! deadlines, the pooling allocator by default), a cache of compiled modules
//! on disk, and the actors it runs. Each actor has a pool of warm instances,
//! up to [`ActorLimits::max_instances`], reused across calls; an instance that
//! traps is dropped and the next call gets a fresh one.
//!
//! Calls go in with [`Host::invoke`] and come back as reply bytes or a typed
//! [`lattice::Error`]. Actors call each other through the `call` import,
//! resolved by the host; a guest's call is synchronous for the guest, while
//! the host stays async.
//!
//! ```no_run
//! # async fn run() -> Result<(), lattice::Error> {
//! use lattice_host::{ActorLimits, Call, Host, HostOptions};
//!
//! let host = Host::new(HostOptions::new())?;
//! let info = host.start_actor_file("counter", "example_counter_actor.wasm", ActorLimits::new()).await?;
//! println!("started {} implementing {:?}", info.name, info.contracts);
//! // The example counter is keyed: each call names a key, `counter/KEY`.
//! let reply = host.invoke(Call::new("counter/alice", "counter", "get", &[])).await?;
//! let total: u64 = lattice::codec::decode(&reply)?;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
#![deny(unsafe_code)]

mod node;
mod runtime;

pub use lattice;
pub use node::{control, deploy};
pub use runtime::claims;
pub use runtime::host::{ActorInfo, Call, Host, HostStats, Published};
pub use runtime::options::{ActorLimits, HostOptions};
