//! The core of Lattice: typed contracts, the wire protocol and the native client.
//!
//! Lattice is a distributed WebAssembly actor framework built on NATS. A
//! *contract* is a Rust trait annotated with [`#[lattice::contract]`](contract);
//! the macro generates everything needed to call an implementation of that trait
//! across the lattice: message types, subjects, a native async client, an
//! in-guest client and the guest-side dispatcher.
//!
//! # Examples
//!
//! ```
//! #[lattice::contract(version = 1)]
//! pub trait Greeter {
//!     /// Returns a greeting for `name`.
//!     fn greet(&self, name: String) -> String;
//! }
//!
//! struct English;
//! impl Greeter for English {
//!     fn greet(&self, name: String) -> String {
//!         format!("Hello, {name}!")
//!     }
//! }
//!
//! // Encode a call as any client would, dispatch it into the implementation
//! // and decode the reply.
//! use lattice::{Contract, Dispatch, Invocation};
//! let payload = lattice::codec::encode(&GreeterGreetArgs { name: "Ada".into() })?;
//! let mut reply = Vec::new();
//! <dyn Greeter>::dispatch(&mut English, Invocation::new("greet", &payload), &mut reply)?;
//! let greeting: String = lattice::codec::decode(&reply)?;
//! assert_eq!(greeting, "Hello, Ada!");
//! assert_eq!(<dyn Greeter as Contract>::NAME, "greeter");
//! # Ok::<(), lattice::Error>(())
//! ```
//!
//! # Feature flags
//!
//! - `client` (default): the native async client over NATS ([`Client`] and the
//!   generated `…Client` types), built on async-nats and tokio. It is compiled
//!   only for non-wasm targets, so contract crates can depend on `lattice` with
//!   default features and still build for `wasm32-wasip1`.
//! - `json` (default): conversion between JSON values and the MessagePack wire
//!   format, driven by method descriptors ([`json`]). Used by the CLI and by
//!   bridges to other languages.
//!
//! # Crate layout
//!
//! - [`names`]: validation of lattice ids, actor, contract and method names.
//! - [`subject`]: building and parsing NATS subjects.
//! - [`headers`]: the NATS header names of the wire protocol.
//! - [`key`]: keys of keyed actors, addressed as `actor/key`.
//! - [`prefix`]: the call prefix, a call's fingerprint and time budget at the
//!   start of its body.
//! - [`codec`]: the MessagePack codec.
//! - [`buffer`]: message bodies from a per-thread arena (native only).
//! - [`Error`] and [`ErrorKind`]: one error type, with wire status codes.
//! - [`Contract`], [`ContractDescriptor`], [`MethodDescriptor`]: contract metadata.
//! - [`schema`]: the types of a contract as JSON Schema.
//! - [`Dispatch`]: the server side of a contract, implemented by the macro.
//! - [`guest`]: calls from inside an actor to other actors.
//! - [`abi`]: the guest ABI between hosts and actor modules.
#![deny(missing_docs)]
// Only `guest::sys`, the host imports on wasm, is unsafe.
#![deny(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

// Lets generated code name `::lattice` from inside this crate too.
#[allow(unused_extern_crates)]
extern crate self as lattice;

pub mod abi;
#[cfg(not(target_family = "wasm"))]
pub mod buffer;
pub mod codec;
mod contract;
mod dispatch;
mod error;
pub mod guest;
pub mod headers;
pub mod key;
pub mod names;
pub mod prefix;
pub mod schema;
pub mod subject;

#[cfg(all(feature = "client", not(target_family = "wasm")))]
pub mod client;
#[cfg(feature = "json")]
pub mod json;

#[doc(hidden)]
pub mod __private;

pub use bytes::Bytes;
pub use contract::{
    ArgDescriptor, ArgInfo, Contract, ContractDescriptor, ContractInfo, MethodDescriptor,
    MethodInfo, fingerprint, method_hash,
};
pub use dispatch::{Dispatch, Invocation};
pub use error::{Error, ErrorKind, MAX_ERROR_MESSAGE, Result};
pub use names::{NameError, NameKind};
pub use schema::{ContractSchema, MethodSchema};

/// The JSON Schema generator the contract macro describes types with,
/// re-exported for its version: derive `schemars::JsonSchema` on a
/// contract's types with a `schemars = "1"` dependency (see
/// [`schema`]).
pub use schemars;

#[cfg(all(feature = "client", not(target_family = "wasm")))]
pub use client::{ActorClient, CallOptions, Client, RawCall};

/// The NATS client the native clients take, re-exported so that a program
/// connects with the very version they were built against
/// (`lattice::async_nats::connect(url)`): another version of async-nats
/// is another `Client` type.
#[cfg(all(feature = "client", not(target_family = "wasm")))]
pub use async_nats;

/// Turns a trait into a lattice contract.
///
/// ```
/// #[lattice::contract(version = 1)]
/// pub trait Counter {
///     /// Adds `by` and returns the new total.
///     #[lattice(timeout = "2s")]
///     fn add(&mut self, by: u64) -> u64;
///     /// Reads the total.
///     #[lattice(idempotent)]
///     fn get(&self) -> u64;
/// }
/// # fn main() {}
/// ```
///
/// Options on the trait: `version = N` (default 1), `name = "…"` (the wire
/// name; default: the trait name in snake case), `crate = path` (where to
/// find this crate if it is renamed and cannot be found in `Cargo.toml`).
///
/// Options on a method, in `#[lattice(...)]`: `timeout = "500ms"` (default
/// deadline of a call), `idempotent` (clients may retry it), `oneway` (no
/// reply; the method must return `()`).
///
/// For a trait `Counter`, the macro generates:
///
/// - `CounterAddArgs`, … : one argument struct per method (named fields);
/// - `impl Contract for dyn Counter`: name, version, fingerprint and method
///   descriptors;
/// - `impl<A: Counter> Dispatch<A> for dyn Counter`: decodes a call, invokes
///   the implementation and encodes the reply;
/// - `CounterClient`: the native async client (feature `client`);
/// - `CounterGuestClient`: the client for calls from inside an actor.
///
/// See the book's "Contracts" chapter for the full picture.
pub use lattice_macros::contract;
