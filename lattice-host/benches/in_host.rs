//! In-process benchmarks (criterion), each against its physical limit in the
//! same run: a raw wasmtime call into a minimal echo guest vs the host's
//! invoke of the echo actor; one actor calling another on the same host;
//! a raw `InstancePre` instantiation vs the host's
//! fresh instance; module load from the cache vs a cold compile; the codec.
//!
//! `cargo bench -p lattice-host --bench in_host`; run with `RUST_BACKTRACE`
//! unset (an error created on a hot path captures a backtrace when it is set).
//! The figures and ratios are in the book's "Performance" chapter.

#[path = "../tests/support/mod.rs"]
#[allow(unreachable_pub)]
mod support;

#[path = "common/raw_echo.rs"]
mod raw_echo;

#[path = "common/raw_pre.rs"]
mod raw_pre;

use std::collections::BTreeMap;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use lattice_host::{ActorLimits, Call, Host, HostOptions};
use wasmtime::{Config, Store};

const SIZES: [usize; 2] = [64, 4096];

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// A host with the echo actor started.
fn echo_host(rt: &tokio::runtime::Runtime) -> Host {
    let host = Host::new(
        HostOptions::new()
            .pool_instances(64)
            .module_cache(Some(support::shared_cache())),
    )
    .expect("a host");
    rt.block_on(host.start_actor_file(
        "echo",
        support::wasm("example-echo-actor"),
        ActorLimits::new(),
    ))
    .expect("echo starts");
    host
}

fn echo(c: &mut Criterion) {
    let mut group = c.benchmark_group("echo");
    // Raw wasmtime: copy in, call, copy out.
    let mut raw = raw_echo::RawEcho::new();
    let rt = runtime();
    let host = echo_host(&rt);
    for size in SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        let input = vec![7u8; size];
        let mut output = vec![0u8; size];
        group.bench_with_input(BenchmarkId::new("raw_wasmtime", size), &size, |b, _| {
            b.iter(|| raw.call(&input, &mut output));
        });
        // The host: encode nothing (the payload is ready), dispatch into the
        // actor (decode the arguments, run, encode the reply), return bytes.
        let payload = lattice::codec::encode(&BTreeMap::from([(
            "data",
            serde_bytes::ByteBuf::from(input.clone()),
        )]))
        .expect("encodes");
        group.bench_with_input(BenchmarkId::new("host_invoke", size), &size, |b, _| {
            b.to_async(&rt).iter(|| async {
                host.invoke(Call::new("echo", "echo", "echo_bytes", &payload))
                    .await
                    .expect("echo")
            });
        });
    }
    group.finish();
}

/// A call from one actor to another on the same host: relay's `add_to`
/// calls counter's `add` through the host's `call` import. The inner call
/// costs `relay_add_to` minus `relay_echo_bytes` (relay's own call without
/// an inner one; both run on a fiber); `counter_add` is the callee's own.
fn actor_to_actor(c: &mut Criterion) {
    use example_counter_contract::CounterAddArgs;
    use example_echo_contract::EchoEchoBytesArgs;
    use example_relay_contract::RelayAddToArgs;
    let mut group = c.benchmark_group("actor_to_actor");
    let rt = runtime();
    let host = Host::new(
        HostOptions::new()
            .pool_instances(64)
            .module_cache(Some(support::shared_cache())),
    )
    .expect("a host");
    // The unkeyed counter (instance memory), as the relay's callee: a
    // plain actor-to-actor call.
    for (actor, package) in [
        ("counter", "lattice-test-counter"),
        ("relay", "example-relay-actor"),
    ] {
        rt.block_on(host.start_actor_file(actor, support::wasm(package), ActorLimits::new()))
            .expect("starts");
    }
    let add = lattice::codec::encode(&CounterAddArgs { by: 1 }).expect("encodes");
    let add_to = lattice::codec::encode(&RelayAddToArgs {
        counter: "counter".into(),
        by: 1,
    })
    .expect("encodes");
    group.bench_function("counter_add", |b| {
        b.to_async(&rt).iter(|| async {
            host.invoke(Call::new("counter", "counter", "add", &add))
                .await
                .expect("add")
        });
    });
    // The same actor's own call without an inner one: the outer invocation
    // of a fiber actor, which `relay_add_to` pays too.
    let nothing = lattice::codec::encode(&EchoEchoBytesArgs { data: Vec::new() }).expect("encodes");
    group.bench_function("relay_echo_bytes", |b| {
        b.to_async(&rt).iter(|| async {
            host.invoke(Call::new("relay", "echo", "echo_bytes", &nothing))
                .await
                .expect("echo_bytes")
        });
    });
    group.bench_function("relay_add_to", |b| {
        b.to_async(&rt).iter(|| async {
            host.invoke(Call::new("relay", "relay", "add_to", &add_to))
                .await
                .expect("add_to")
        });
    });
    group.finish();
}

fn instantiate(c: &mut Criterion) {
    let mut group = c.benchmark_group("instantiate");
    let bytes = std::fs::read(support::wasm("example-echo-actor")).expect("the module");
    let raw = |name: &str, config: Config, group: &mut criterion::BenchmarkGroup<'_, _>| {
        let (engine, pre) = raw_pre::raw_pre(config, &bytes);
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut store = Store::new(&engine, ());
                pre.instantiate(&mut store).expect("instantiates")
            });
        });
    };
    raw("raw_instance_pre_default", Config::new(), &mut group);
    raw(
        "raw_instance_pre_pooling",
        raw_pre::pooling_config(64, false),
        &mut group,
    );
    {
        let (engine, pre) = raw_pre::raw_pre(raw_pre::pooling_config(64, true), &bytes);
        let rt = runtime();
        group.bench_function("raw_instance_pre_pooling_async", |b| {
            b.to_async(&rt).iter(|| async {
                let mut store = Store::new(&engine, ());
                pre.instantiate_async(&mut store)
                    .await
                    .expect("instantiates")
            });
        });
    }
    let rt = runtime();
    let host = echo_host(&rt);
    group.bench_function("host_fresh_instance", |b| {
        // The actor is found by name once per sample, as a call finds it
        // whether or not it then needs a fresh instance.
        b.to_async(&rt).iter_custom(|count| {
            let host = &host;
            async move {
                let started = std::time::Instant::now();
                host.fresh_instances("echo", count)
                    .await
                    .expect("instances");
                started.elapsed()
            }
        });
    });
    group.finish();
}

fn module_load(c: &mut Criterion) {
    let mut group = c.benchmark_group("module_load");
    group.sample_size(10);
    let bytes = std::fs::read(support::wasm("example-echo-actor")).expect("the module");
    let rt = runtime();
    for (name, cache) in [
        ("warm_cache", Some(support::shared_cache())),
        ("cold_compile", None),
    ] {
        let host =
            Host::new(HostOptions::new().pool_instances(8).module_cache(cache)).expect("host");
        group.bench_function(name, |b| {
            b.to_async(&rt).iter(|| async {
                host.start_actor("echo", bytes.clone(), ActorLimits::new())
                    .await
                    .expect("starts");
                host.stop_actor("echo").await.expect("stops");
            });
        });
    }
    group.finish();
}

fn codec(c: &mut Criterion) {
    use example_counter_contract::CounterAddArgs;
    use example_echo_contract::EchoEchoArgs;
    use example_relay_contract::RelayAddToArgs;
    let mut group = c.benchmark_group("codec");
    let add = CounterAddArgs { by: 5 };
    let echo = EchoEchoArgs {
        text: "x".repeat(64),
    };
    let relay = RelayAddToArgs {
        counter: "counter".into(),
        by: 2,
    };
    macro_rules! round_trip {
        ($name:literal, $value:expr, $ty:ty) => {
            let bytes = lattice::codec::encode(&$value).expect("encodes");
            group.bench_function(concat!("encode_", $name), |b| {
                b.iter(|| lattice::codec::encode(&$value).expect("encodes"))
            });
            group.bench_function(concat!("decode_", $name), |b| {
                b.iter(|| lattice::codec::decode::<$ty>(&bytes).expect("decodes"))
            });
        };
    }
    round_trip!("counter_add", add, CounterAddArgs);
    round_trip!("echo_64b", echo, EchoEchoArgs);
    round_trip!("relay_add_to", relay, RelayAddToArgs);
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = echo, actor_to_actor, instantiate, module_load, codec
}
criterion_main!(benches);
