//! The Counter contract end to end, in one process: what `#[lattice::contract]`
//! generates, driven for real.
//!
//! Run it with `cargo run -p example-counter-demo`.
//!
//! 1. A plain Rust implementation of `Counter`.
//! 2. Calls through the generated guest client, over a transport that hands
//!    the encoded request to the generated dispatcher (what a host does
//!    between two actors), with the bytes on the wire printed.
//! 3. The same call built from JSON through the method descriptors, as the
//!    CLI and non-Rust clients do.
//! 4. Bad input: typed errors, not panics.

use std::cell::RefCell;

use anyhow::Context as _;
use example_counter_contract::{Counter, CounterAddArgs, CounterError, CounterGuestClient};
use lattice::guest::{GuestTransport, OutgoingCall};
use lattice::{Contract, Dispatch, Invocation};

// ANCHOR: impl
/// A counter kept in memory.
#[derive(Default)]
struct MemoryCounter {
    name: String,
    total: u64,
}

impl Counter for MemoryCounter {
    fn add(&mut self, by: u64) -> u64 {
        self.total = self.total.saturating_add(by);
        self.total
    }

    fn checked_add(&mut self, by: u64) -> Result<u64, CounterError> {
        self.total = self.total.checked_add(by).ok_or(CounterError::Overflow)?;
        Ok(self.total)
    }

    fn get(&self) -> u64 {
        self.total
    }

    fn rename(&mut self, name: String) -> Result<(), CounterError> {
        if name.is_empty() || name.len() > 32 {
            return Err(CounterError::InvalidName { name });
        }
        self.name = name;
        Ok(())
    }

    fn name(&self) -> String {
        self.name.clone()
    }

    fn reset(&mut self) {
        self.total = 0;
    }
}
// ANCHOR_END: impl

/// Hands every call to the generated dispatcher of one in-memory counter,
/// printing the bytes that would cross the wire.
struct InProcess {
    counter: RefCell<MemoryCounter>,
}

impl GuestTransport for InProcess {
    fn call(&self, call: OutgoingCall<'_>) -> lattice::Result<Vec<u8>> {
        let invocation = Invocation::new(call.method.name, call.payload)
            .with_fingerprint(call.contract.fingerprint);
        let mut reply = Vec::new();
        <dyn Counter>::dispatch(&mut *self.counter.borrow_mut(), invocation, &mut reply)?;
        println!(
            "    wire: lattice.demo.rpc.{}.{}.{}  request {}  reply {}",
            call.actor,
            call.contract.name,
            call.method.name,
            hex(call.payload),
            hex(&reply)
        );
        Ok(reply)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn main() -> anyhow::Result<()> {
    let contract = <dyn Counter as Contract>::DESCRIPTOR;
    println!(
        "contract `{}` v{} fingerprint {}",
        contract.name,
        contract.version,
        contract.fingerprint_hex()
    );
    for method in contract.methods {
        println!(
            "  {:<40} {}",
            lattice::json::signature(method),
            method.docs.lines().next().unwrap_or("")
        );
    }

    println!("\ntyped calls through the generated guest client:");
    let transport = InProcess {
        counter: RefCell::new(MemoryCounter::default()),
    };
    let counter = CounterGuestClient::with_transport(&transport, "counter")?;
    println!("  add(5) = {}", counter.add(5)?);
    println!("  add(37) = {}", counter.add(37)?);
    println!(
        "  rename(\"visits\") = {:?}",
        counter.rename("visits".into())?
    );
    println!("  rename(\"\") = {:?}", counter.rename(String::new())?);
    println!("  name() = {:?}", counter.name()?);
    println!(
        "  checked_add(u64::MAX) = {:?}",
        counter.checked_add(u64::MAX)?
    );
    counter.reset()?;
    println!("  reset(); get() = {}", counter.get()?);

    println!("\nthe same call from JSON, through the method descriptors:");
    // ANCHOR: json
    let add = contract.method("add").context("the contract has `add`")?;
    let json = serde_json::json!({ "by": 7 });
    let from_json = lattice::json::args_from_json(add, &json)?;
    let from_rust = lattice::codec::encode(&CounterAddArgs { by: 7 })?;
    println!(
        "  {json} -> {}  (typed client: {}, identical: {})",
        hex(&from_json),
        hex(&from_rust),
        from_json == from_rust
    );
    let mut reply = Vec::new();
    <dyn Counter>::dispatch(
        &mut *transport.counter.borrow_mut(),
        Invocation::new("add", &from_json),
        &mut reply,
    )?;
    println!(
        "  reply as JSON: {}",
        lattice::json::reply_to_json(add, &reply)?
    );
    // ANCHOR_END: json

    println!("\nbad input gets typed errors:");
    let mut actor = MemoryCounter::default();
    let cases: [(&str, Invocation<'_>); 3] = [
        ("unknown method", Invocation::new("ad", &[0x80])),
        (
            "malformed payload",
            Invocation::new("add", &[0x81, 0xa2, b'b', b'y', 0xa1, b'x']),
        ),
        (
            "wrong fingerprint",
            Invocation::new("get", &[]).with_fingerprint(contract.fingerprint ^ 1),
        ),
    ];
    for (what, call) in cases {
        let err = <dyn Counter>::dispatch(&mut actor, call, &mut Vec::new())
            .expect_err("bad input is refused");
        println!(
            "  {what:<18} -> [{} {}] {}",
            err.status(),
            err.kind().as_str(),
            err.message()
        );
    }
    Ok(())
}
