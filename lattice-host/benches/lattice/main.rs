//! The lattice against the limits it stands on, in one run on one machine:
//! raw async-nats request/reply vs lattice calls to the echo actor (latency,
//! throughput, payload sizes), actor-to-actor calls in process and across
//! hosts vs a NATS round trip, and host RSS with many idle instances vs
//! wasmtime alone with the same module and configuration.
//! Prints a table with ratios; noisy machines: compare within the run.
//!
//! `cargo bench -p lattice-host --bench lattice` (with `RUST_BACKTRACE`
//! unset). `LATTICE_BENCH_QUICK=1` runs a tenth of the calls;
//! `LATTICE_BENCH_ONLY=a,b` runs the sections named.
//!
//! One file a section: `transport` (and `decompose`), `a2a`, `busy`,
//! `hibernate`, `density`, `heal` (deployments' failover), `keyed` (keyed
//! actors' calls against unkeyed ones and raw KV puts), and `profile` (the single-kind modes for
//! profilers, never run by default); `measure` is what they share (timing
//! pairs against a baseline, memory and CPU readings, the table).

#[path = "../../tests/support/mod.rs"]
#[allow(unreachable_pub)]
mod support;

#[path = "../common/raw_pre.rs"]
mod raw_pre;

#[path = "../common/raw_echo.rs"]
mod raw_echo;

#[path = "../common/raw_idle.rs"]
mod raw_idle;

use example_echo_contract::EchoClient;
use futures_util::StreamExt;
use lattice_host::{ActorLimits, Host};
use support::nats::{self, NatsServer};

use measure::{Table, asked_for, bench_host, section};

mod a2a;
mod busy;
mod density;
mod heal;
mod hibernate;
mod keyed;
mod measure;
mod profile;
mod signed;
mod transport;

/// What the sections share: the server, the echo host and a client of it,
/// and the modules.
#[derive(Clone, Copy)]
struct Setup<'a> {
    url: &'a str,
    client: &'a async_nats::Client,
    echo: &'a EchoClient,
    host: &'a Host,
    echo_module: &'a std::path::Path,
    counter_module: &'a std::path::Path,
    relay_module: &'a std::path::Path,
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    // A measuring process of the density section (see `density`).
    if let Ok(spec) = std::env::var(density::FOOTPRINT_ENV) {
        runtime.block_on(density::footprint_child(&spec));
        return;
    }
    runtime.block_on(run());
}

async fn run() {
    if std::env::var_os("RUST_BACKTRACE").is_some() {
        eprintln!("warning: RUST_BACKTRACE is set; errors on hot paths capture backtraces");
    }
    let echo_module = support::wasm("example-echo-actor");
    let counter_module = support::wasm("lattice-test-counter");
    let relay_module = support::wasm("example-relay-actor");
    let idle_module = support::wasm("lattice-test-idle");
    let server = NatsServer::single();
    let url = server.url();
    let mut table = Table(Vec::new());
    println!(
        "{:<44} {:>16} {:>16} {:>10}",
        "measure", "baseline", "lattice", "ratio"
    );

    // --- Transport: raw request/reply vs a lattice call, same server.
    // The raw responder, on a plain subscription (the baseline) and
    // on a queue group's (as every load-balanced NATS service subscribes,
    // the lattice's hosts included: nats-server does more per message).
    let responder = nats::connect(&url).await;
    for (subject, queue) in [("bench.raw", None), ("bench.rawq", Some("q"))] {
        let mut sub = match queue {
            None => responder.subscribe(subject).await,
            Some(queue) => responder.queue_subscribe(subject, queue.into()).await,
        }
        .expect("subscribes");
        let responder = responder.clone();
        tokio::spawn(async move {
            while let Some(message) = sub.next().await {
                if let Some(reply) = message.reply {
                    let _ = responder.publish(reply, message.payload).await;
                }
            }
        });
    }
    responder.flush().await.expect("flush");
    // Profiling runs take a small pool: valgrind reserves no more than
    // about 32 GiB (eight slots of 4 GiB).
    let profiling = profile::PROFILE_MODES.into_iter().any(asked_for);
    let pool = if profiling { 8 } else { 256 };
    if profiling {
        eprintln!("note: a profiling run: the echo host has 8 instance slots, not 256");
    }
    let host = bench_host("bench", "a", pool);
    host.start_actor_file(
        "echo",
        &echo_module,
        ActorLimits::new().max_instances(pool.min(64)),
    )
    .await
    .expect("echo");
    let runs = |inline| if inline { "inline" } else { "on fibers" };
    eprintln!(
        "note: the echo actor's calls run {}",
        runs(host.actor("echo").is_some_and(|a| a.inline))
    );
    host.join(nats::connect(&url).await).await.expect("joins");
    let client = nats::connect(&url).await;
    let echo = EchoClient::new(client.clone(), "bench", "echo").expect("client");

    let setup = Setup {
        url: &url,
        client: &client,
        echo: &echo,
        host: &host,
        echo_module: &echo_module,
        counter_module: &counter_module,
        relay_module: &relay_module,
    };
    profile::run(&setup).await;
    if section("decompose") {
        transport::decompose(&url, server.pid(), &client, &echo, &mut table).await;
    }
    if section("transport") {
        transport::run(&setup, &mut table).await;
    }
    if section("a2a") {
        a2a::actor_to_actor(&url, &client, &relay_module, &counter_module, &mut table).await;
    }
    if section("busy") {
        busy::beside_busy_guests(&url, &mut table).await;
    }
    if section("hibernate") {
        hibernate::wake_cost(&echo_module, &mut table).await;
    }
    if section("density") {
        density::density(&idle_module, &[1_000, 10_000], 3_000, &mut table).await;
    }
    if section("heal") {
        heal::heal(&echo_module, &mut table).await;
    }
    if section("keyed") {
        keyed::keyed(&echo_module, &mut table).await;
    }
    if section("signed") {
        signed::signed(&echo_module, &relay_module, &counter_module, &mut table).await;
    }
    // 100,000 instances: only when asked for by name, as it needs
    // `sysctl -w vm.max_map_count=610000` (the pools have 16 slots to
    // spare; the host says what it needs otherwise).
    if asked_for("density100k") {
        density::density(&idle_module, &[100_000], 30_000, &mut table).await;
    }
    host.shutdown().await;
    println!(
        "\n{} measures; machine: {} cores, {}",
        table.0.len(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        measure::cpu_model()
    );
}
