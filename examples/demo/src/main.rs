//! A host embedded in a Rust program, without NATS: the example actors, built
//! for wasm32-wasip1, started in a wasmtime host and called end to end,
//! including one actor calling another.
//!
//! Build the actors with `lattice build` or
//! `cargo build --release --target wasm32-wasip1 -p example-echo-actor
//! -p example-counter-actor -p example-relay-actor` and run
//! `cargo run -p example-demo -- DIR`, where DIR holds the `.wasm` files
//! (default: `$CARGO_TARGET_DIR/wasm32-wasip1/release`).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use example_counter_contract::{
    Counter, CounterAddArgs, CounterError, CounterGetArgs, CounterRenameArgs, CounterResetArgs,
};
use example_echo_contract::{Echo, EchoEchoArgs, EchoEchoBytesArgs};
use example_relay_contract::{Relay, RelayAddToArgs};
use lattice::{Contract, codec};
use lattice_host::{ActorLimits, Call, Host, HostOptions};
use serde::Serialize;
use serde::de::DeserializeOwned;

// ANCHOR: call
/// Calls `C.method` on `actor` with typed arguments and decodes the reply,
/// printing what went over the wire.
async fn call<C: Contract + ?Sized, A: Serialize, R: DeserializeOwned + std::fmt::Debug>(
    host: &Host,
    actor: &str,
    method: &str,
    args: &A,
    shown: &str,
) -> anyhow::Result<R> {
    let payload = codec::encode(args)?;
    let start = Instant::now();
    let reply = host
        .invoke(Call::new(actor, C::NAME, method, &payload).fingerprint(C::FINGERPRINT))
        .await?;
    let took = start.elapsed();
    let value: R = codec::decode(&reply)?;
    println!(
        "  {:<42} -> {:<30} {:>6.0} µs  ({} bytes in, {} out)",
        format!("{actor}: {}.{shown}", C::NAME),
        format!("{value:?}"),
        took.as_secs_f64() * 1e6,
        payload.len(),
        reply.len()
    );
    Ok(value)
}
// ANCHOR_END: call

fn module_dir() -> PathBuf {
    if let Some(dir) = std::env::args_os().nth(1) {
        return dir.into();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("wasm32-wasip1/release")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = module_dir();
    println!("Lattice demo: three example actors in one wasmtime host\n");
    // ANCHOR: start
    let host = Host::new(HostOptions::new())?;
    for (name, file, limits) in [
        ("echo", "example_echo_actor.wasm", ActorLimits::new()),
        // Keyed: one counter per key (`counter/alice`), its state kept by
        // the host (in memory here; on a lattice, in JetStream).
        ("counter", "example_counter_actor.wasm", ActorLimits::new()),
        ("relay", "example_relay_actor.wasm", ActorLimits::new()),
    ] {
        let path = dir.join(file);
        let start = Instant::now();
        let info = host
            .start_actor_file(name, &path, limits)
            .await
            .with_context(|| {
                format!(
                    "starting {} (build the actors first: ./.ci/demo does)",
                    path.display()
                )
            })?;
        let contracts: Vec<String> = info
            .contracts
            .iter()
            .map(|c| format!("{} v{}", c.name, c.version))
            .collect();
        println!(
            "  started {name:<8} sha256 {}…  implements {:<16} {} in {:.0} ms",
            &info.digest[..12],
            contracts.join(", "),
            if info.from_cache {
                "loaded from the module cache"
            } else {
                "compiled"
            },
            start.elapsed().as_secs_f64() * 1e3
        );
    }
    // ANCHOR_END: start
    let mut events = host.published();

    println!("\ntyped calls, encoded as MessagePack, dispatched in the guests:");
    call::<dyn Echo, _, String>(
        &host,
        "echo",
        "echo",
        &EchoEchoArgs {
            text: "hello, lattice".into(),
        },
        "echo(\"hello, lattice\")",
    )
    .await?;
    let bytes: serde_bytes::ByteBuf = call::<dyn Echo, _, _>(
        &host,
        "echo",
        "echo_bytes",
        &EchoEchoBytesArgs {
            data: vec![1, 2, 3],
        },
        "echo_bytes([1, 2, 3])",
    )
    .await?;
    assert_eq!(bytes.into_vec(), [1, 2, 3]);
    let alice = "counter/alice";
    call::<dyn Counter, _, u64>(&host, alice, "add", &CounterAddArgs { by: 5 }, "add(5)").await?;
    // Another key, another counter.
    call::<dyn Counter, _, u64>(
        &host,
        "counter/bob",
        "add",
        &CounterAddArgs { by: 2 },
        "add(2)",
    )
    .await?;
    let refused: Result<(), CounterError> = call::<dyn Counter, _, _>(
        &host,
        alice,
        "rename",
        &CounterRenameArgs {
            name: String::new(),
        },
        "rename(\"\")",
    )
    .await?;
    assert!(
        refused.is_err(),
        "the contract's own error comes back as data"
    );

    println!("\nan actor calling another actor (relay -> counter, through the host):");
    let total: Result<u64, String> = call::<dyn Relay, _, _>(
        &host,
        "relay",
        "add_to",
        &RelayAddToArgs {
            counter: alice.into(),
            by: 10,
        },
        "add_to(\"counter/alice\", 10)",
    )
    .await?;
    assert_eq!(total, Ok(15));
    call::<dyn Echo, _, String>(
        &host,
        "relay",
        "echo",
        &EchoEchoArgs {
            text: "two contracts".into(),
        },
        "echo(\"two contracts\")",
    )
    .await?;
    call::<dyn Counter, _, u64>(&host, alice, "get", &CounterGetArgs {}, "get()").await?;
    call::<dyn Counter, _, ()>(&host, alice, "reset", &CounterResetArgs {}, "reset()").await?;
    let event = events.try_recv().context("reset publishes an event")?;
    println!(
        "  event from {}: {} {:?}",
        event.actor,
        event.subject,
        u64::from_le_bytes(event.payload.as_slice().try_into().unwrap_or_default())
    );

    println!("\nbad calls get typed errors; the host keeps serving:");
    let cases: [(&str, &str, &str, &[u8]); 6] = [
        ("counter/alice", "counter", "nope", b""),
        ("counter/alice", "counter", "add", b"\x81\xa2by\xa4five"),
        ("counter/alice", "echo", "echo", b""),
        ("counter", "counter", "get", b""),
        ("counter/a b", "counter", "get", b""),
        ("nobody", "echo", "echo", b""),
    ];
    for (actor, contract, method, payload) in cases {
        let err = host
            .invoke(Call::new(actor, contract, method, payload))
            .await
            .expect_err("a bad call fails");
        println!(
            "  {:<30} -> [{} {}] {}",
            format!("{actor}: {contract}.{method}"),
            err.status(),
            err.kind().as_str(),
            err.message()
        );
    }
    let wrong = host
        .invoke(
            Call::new("echo", "echo", "echo", b"")
                .fingerprint(<dyn Echo as Contract>::FINGERPRINT ^ 1),
        )
        .await
        .expect_err("a stale client is refused");
    println!(
        "  {:<30} -> [{} {}]",
        "echo: stale fingerprint",
        wrong.status(),
        wrong.kind().as_str()
    );
    call::<dyn Counter, _, u64>(&host, alice, "add", &CounterAddArgs { by: 1 }, "add(1)").await?;
    println!("\ndone: every call above went through real wasm instances in wasmtime.");
    Ok(())
}
