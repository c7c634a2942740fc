//! Signed actors: what checking a module's claims adds to loading it
//! (against the load itself, compile included, with no module cache), and
//! what the capability check adds to an actor-to-actor call in process
//! (a signed relay, its call to the counter granted, against an unsigned
//! one, interleaved).

use std::path::Path;
use std::time::{Duration, Instant};

use example_relay_contract::RelayAddToArgs;
use lattice_host::claims::{self, Claims};
use lattice_host::{ActorLimits, Call, Host, HostOptions};
use nkeys::KeyPair;

use crate::measure::{BLOCKS, Table, bench_options, scale, sequential_pair, spread, us};

fn sign(module: &[u8], contracts: &[&str], calls: &[&str], issuer: &KeyPair) -> Vec<u8> {
    let strings = |items: &[&str]| items.iter().map(|c| c.to_string()).collect();
    let mut claims = Claims::new(KeyPair::new_module().public_key(), strings(contracts));
    claims.lattice.calls = strings(calls);
    claims::sign(module, claims, issuer).expect("signs")
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

pub(crate) async fn signed(
    echo_module: &Path,
    relay_module: &Path,
    counter_module: &Path,
    table: &mut Table,
) {
    let issuer = KeyPair::new_account();
    let trusted = [issuer.public_key()];
    let echo = std::fs::read(echo_module).expect("echo");
    let signed_echo = sign(&echo, &["echo"], &[], &issuer);

    // The check alone, and a whole load without a module cache.
    let checks: Vec<Duration> = (0..scale(200))
        .map(|_| {
            let start = Instant::now();
            claims::check(&signed_echo, &trusted, claims::now()).expect("valid");
            start.elapsed()
        })
        .collect();
    let host = Host::new(
        HostOptions::new()
            .module_cache(None)
            .hibernate_after(None)
            .trust(issuer.public_key()),
    )
    .expect("a host");
    let mut loads = Vec::new();
    for _ in 0..scale(10).max(3) {
        let start = Instant::now();
        host.start_actor("echo", signed_echo.clone(), ActorLimits::new())
            .await
            .expect("loads");
        loads.push(start.elapsed());
        host.stop_actor("echo").await.expect("stops");
    }
    host.shutdown().await;
    let (check, load) = (median(checks), median(loads));
    table.row(
        format!(
            "claims check of echo ({} KiB), in its load",
            signed_echo.len() >> 10
        ),
        format!("load {:.1} ms", load.as_secs_f64() * 1e3),
        us(check),
        format!("{:.3}x", check.as_secs_f64() / load.as_secs_f64()),
    );

    // relay -> counter in process: signed (granted) against unsigned.
    let relay = std::fs::read(relay_module).expect("relay");
    let counter = std::fs::read(counter_module).expect("counter");
    let plain = Host::new(bench_options("signed", "plain", 64)).expect("a host");
    let checked = Host::new(bench_options("signed", "checked", 64)).expect("a host");
    for (host, relay) in [
        (&plain, relay.clone()),
        (
            &checked,
            sign(&relay, &["relay", "echo"], &["counter.counter"], &issuer),
        ),
    ] {
        host.start_actor("relay", relay, ActorLimits::new())
            .await
            .expect("relay");
        host.start_actor("counter", counter.clone(), ActorLimits::new())
            .await
            .expect("counter");
    }
    let args = lattice::codec::encode(&RelayAddToArgs {
        counter: "counter".into(),
        by: 1,
    })
    .expect("encodes");
    let call = |host: &Host| {
        let host = host.clone();
        let args = args.clone();
        async move {
            host.invoke(Call::new("relay", "relay", "add_to", &args))
                .await
                .expect("add_to");
        }
    };
    let ((unchecked, _), (with_check, _), blocks) =
        sequential_pair(scale(20_000), || call(&plain), || call(&checked)).await;
    table.row(
        "relay -> counter in process, capability checked (target < 1.05x)",
        us(unchecked),
        us(with_check),
        format!("{:.3}x", with_check.as_secs_f64() / unchecked.as_secs_f64()),
    );
    spread(
        &format!("checked less unchecked, in {BLOCKS} blocks"),
        &blocks,
        |d| format!("{d:+.2} us"),
    );
    plain.shutdown().await;
    checked.shutdown().await;
}
