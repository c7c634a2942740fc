//! The Lattice actor SDK: write actors that implement contracts.
//!
//! An actor is a type that implements one or more contracts (traits annotated
//! with `#[lattice::contract]`) and [`Default`], built as a `cdylib` for
//! `wasm32-wasip1`. [`export!`] wires it into the guest ABI:
//!
//! ```ignore
//! use example_counter_contract::{Counter, CounterError};
//!
//! #[derive(Default)]
//! struct MyCounter { total: u64 }
//!
//! impl Counter for MyCounter {
//!     fn add(&mut self, by: u64) -> u64 {
//!         lattice_actor::info!("adding {by}");
//!         self.total += by;
//!         self.total
//!     }
//!     // ...
//! }
//!
//! lattice_actor::export!(MyCounter: Counter);
//! ```
//!
//! ```toml
//! [lib]
//! crate-type = ["cdylib"]
//! ```
//!
//! Build it with `cargo build --target wasm32-wasip1 --release`.
//!
//! - State lives in the actor value, one per instance. A host may run several
//!   instances of an actor and starts a fresh one after a trap, so state that
//!   must survive belongs in a store, not in memory.
//! - A panic becomes an `actor_panicked` error reply carrying the panic
//!   message; the host replaces the instance.
//! - Calls to other actors go through the generated `…GuestClient` types;
//!   they are synchronous for the actor while the host does the I/O.
//! - [`info!`], [`warn!`] and friends log through the host's `tracing`.
//! - [`publish`] sends an event to the lattice.
//! - [`kv`] reads and writes the actor's own key-value bucket, shared by
//!   all its instances on every host.
//!
//! Outside wasm (for example in unit tests of an actor crate), the host
//! imports are replaced by stand-ins: guest clients, [`publish`] and [`kv`] return a
//! `transport` error and logs go to standard error.
#![deny(missing_docs)]

mod sys;

pub mod kv;

#[doc(hidden)]
pub mod __export;
mod log;

pub use lattice;
pub use lattice::abi::LogLevel;
pub use lattice::{Contract, Error, ErrorKind};
pub use log::{log, log_enabled};

/// Publishes `payload` as an event on `subject`, under the actor's lattice:
/// the host sends it to `lattice.{lattice}.pub.{subject}`.
///
/// `subject` is one or more names (`[a-z0-9_-]+`) separated by dots.
pub fn publish(subject: &str, payload: &[u8]) -> Result<(), Error> {
    for token in subject.split('.') {
        lattice::names::validate(lattice::NameKind::Event, token)?;
    }
    sys::publish(subject, payload)
}

/// Wires an actor type into the guest ABI, dispatching to the contracts it
/// implements.
///
/// ```ignore
/// lattice_actor::export!(MyActor: Counter, Echo);
/// ```
///
/// The type must implement [`Default`] (each instance starts from
/// `Default::default()`) and every contract listed. Use it once per actor
/// crate, at the crate root.
///
/// A **keyed** actor has one activation per key in the lattice, whose state
/// is the actor value itself, kept durable by the host:
///
/// ```ignore
/// #[derive(Default, serde::Serialize, serde::Deserialize)]
/// struct Account { cents: u64 }
/// lattice_actor::export!(keyed Account: Ledger);
/// ```
///
/// The type must also implement serde's `Serialize` and `Deserialize`:
/// before each call the host gives the instance the key's last saved state
/// (or `Default` for a new key), and after each call of a `&mut self`
/// method it saves the state before the reply is sent.
#[macro_export]
macro_rules! export {
    (keyed $actor:ty : $($contract:path),+ $(,)?) => {
        $crate::export!(@with $actor, [$($contract),+], |actor, contract, call, out| {
            if contract == $crate::lattice::abi::STATE_CONTRACT {
                return $crate::__export::state(actor, call, out);
            }
        });
        const _: () = {
            #[used]
            #[unsafe(link_section = "lattice_keyed")]
            static KEYED: [u8; 1] = [1];
        };
    };
    ($actor:ty : $($contract:path),+ $(,)?) => {
        $crate::export!(@with $actor, [$($contract),+], |_actor, _contract, _call, _out| {});
    };
    (@with $actor:ty, [$($contract:path),+], |$a:ident, $c:ident, $i:ident, $o:ident| $before:block) => {
        const _: () = {
            use $crate::lattice::{Contract as _, Dispatch as _};

            ::std::thread_local! {
                static ACTOR: ::core::cell::RefCell<::core::option::Option<$actor>> =
                    const { ::core::cell::RefCell::new(::core::option::Option::None) };
            }

            static CONTRACTS: &[&$crate::lattice::ContractDescriptor] =
                &[$(<dyn $contract as $crate::lattice::Contract>::DESCRIPTOR),+];

            fn route(
                $a: &mut $actor,
                $c: &str,
                $i: $crate::lattice::Invocation<'_>,
                $o: &mut ::std::vec::Vec<u8>,
            ) -> ::core::result::Result<(), $crate::lattice::Error> {
                $before
                $(
                    if $c == <dyn $contract as $crate::lattice::Contract>::NAME {
                        return <dyn $contract as $crate::lattice::Dispatch<$actor>>::dispatch($a, $i, $o);
                    }
                )+
                ::core::result::Result::Err($crate::__export::unknown_contract($c, CONTRACTS))
            }

            #[used]
            #[unsafe(link_section = "lattice_abi")]
            static ABI_VERSION: [u8; 4] = $crate::lattice::abi::VERSION.to_le_bytes();

            #[unsafe(no_mangle)]
            extern "C" fn lattice_alloc(size: u32) -> u32 {
                $crate::__export::alloc(size)
            }

            #[unsafe(no_mangle)]
            extern "C" fn lattice_free(ptr: u32, size: u32) {
                $crate::__export::free(ptr, size)
            }

            #[unsafe(no_mangle)]
            extern "C" fn lattice_input() -> u64 {
                $crate::__export::input()
            }

            #[unsafe(no_mangle)]
            extern "C" fn lattice_describe() -> u64 {
                $crate::__export::describe(CONTRACTS)
            }

            #[unsafe(no_mangle)]
            extern "C" fn lattice_dispatch(
                input: u32,
                contract_len: u32,
                method_len: u32,
                payload_len: u32,
                fingerprint: u64,
            ) -> u64 {
                $crate::__export::dispatch(input, contract_len, method_len, payload_len, fingerprint, |contract, call, out| {
                    ACTOR.with_borrow_mut(|slot| {
                        let actor = slot.get_or_insert_with(<$actor as ::core::default::Default>::default);
                        route(actor, contract, call, out)
                    })
                })
            }
        };
    };
}
