//! The modes that make one kind of call only, for profilers (perf,
//! callgrind); never run by default.

use crate::measure::{asked_for, echo_args_64, env_count, per_call, percentiles, throughput, us};
use crate::raw_echo;
use crate::raw_pre;
use crate::support::nats;
use example_echo_contract::EchoClient;
use example_echo_contract::EchoEchoBytesArgs;
use example_relay_contract::RelayAddToArgs;
use futures_util::StreamExt;
use lattice_host::ActorLimits;
use lattice_host::Call;
use std::time::Duration;
use std::time::Instant;

/// The modes that make one kind of call only, for profilers; never run by
/// default.
pub(crate) const PROFILE_MODES: [&str; 11] = [
    "profile",
    "profile-client",
    "profile-raw",
    "profile-raw-queue",
    "profile-invoke",
    "profile-cold",
    "profile-cold-raw",
    "profile-a2a",
    "profile-a2a-base",
    "profile-instantiate",
    "profile-instantiate-raw",
];

/// The calls of a profiling run: `LATTICE_BENCH_CALLS`, 200,000 by default.
pub(crate) fn profile_calls() -> usize {
    env_count("LATTICE_BENCH_CALLS", 200_000)
}

/// The calls in flight of a profiling run over NATS:
/// `LATTICE_BENCH_INFLIGHT`, 64 by default (1 profiles sequential calls).
pub(crate) fn profile_inflight() -> usize {
    env_count("LATTICE_BENCH_INFLIGHT", 64)
}

/// The echo actor's `lattice_dispatch`, called straight through wasmtime
/// (imports linked as traps, a pool of 8) with a request for
/// `echo.echo_bytes` written into its memory first, as the host does.
pub(crate) struct RawDispatch {
    store: wasmtime::Store<()>,
    memory: wasmtime::Memory,
    dispatch: wasmtime::TypedFunc<(u32, u32, u32, u32, u64), u64>,
    input: Vec<u8>,
    params: (u32, u32, u32, u32, u64),
}

impl RawDispatch {
    pub(crate) async fn new(module: &std::path::Path, args: &[u8]) -> RawDispatch {
        let bytes = std::fs::read(module).expect("the module");
        let (engine, pre) = raw_pre::raw_pre(raw_pre::pooling_config(8, false), &bytes);
        let mut store = wasmtime::Store::new(&engine, ());
        let instance = pre
            .instantiate_async(&mut store)
            .await
            .expect("instantiates");
        let memory = instance
            .get_memory(&mut store, lattice::abi::MEMORY)
            .expect("memory");
        let alloc = instance
            .get_typed_func::<u32, u32>(&mut store, lattice::abi::ALLOC)
            .expect("alloc");
        let dispatch = instance
            .get_typed_func::<(u32, u32, u32, u32, u64), u64>(&mut store, lattice::abi::DISPATCH)
            .expect("dispatch");
        let at = alloc.call_async(&mut store, 1024).await.expect("alloc");
        let params = (at, 4, 10, u32::try_from(args.len()).expect("small"), 0);
        RawDispatch {
            store,
            memory,
            dispatch,
            input: [&b"echoecho_bytes"[..], args].concat(),
            params,
        }
    }

    pub(crate) fn write(&mut self) {
        self.memory
            .write(&mut self.store, self.params.0 as usize, &self.input)
            .expect("writes");
    }

    /// Synchronously, on the thread's stack.
    pub(crate) fn call(&mut self) {
        self.write();
        let packed = self.dispatch.call(&mut self.store, self.params);
        std::hint::black_box(packed.expect("dispatches"));
    }

    /// On a fiber.
    pub(crate) async fn call_on_fiber(&mut self) {
        self.write();
        let packed = self.dispatch.call_async(&mut self.store, self.params).await;
        std::hint::black_box(packed.expect("dispatches"));
    }
}

/// Runs the profiling modes asked for in `LATTICE_BENCH_ONLY`.
pub(crate) async fn run(s: &crate::Setup<'_>) {
    let crate::Setup {
        url,
        client,
        echo,
        host,
        echo_module,
        counter_module,
        relay_module,
        ..
    } = *s;
    // Only lattice calls, or only raw request/reply, for profilers:
    // `LATTICE_BENCH_ONLY=profile perf record ...`, or under callgrind,
    // whose instruction counts per call do not move with the machine's
    // noise (see the performance chapter).
    for (name, raw_subject) in [
        ("profile", None),
        ("profile-raw", Some("bench.raw")),
        ("profile-raw-queue", Some("bench.rawq")),
    ] {
        if !asked_for(name) {
            continue;
        }
        let calls = profile_calls();
        let data = bytes::Bytes::from(vec![7u8; 64]);
        let rate = throughput(calls, profile_inflight(), || async {
            if let Some(subject) = raw_subject {
                client
                    .request(subject, data.clone())
                    .await
                    .expect("raw reply");
            } else {
                echo.echo_bytes(data.to_vec()).await.expect("echo");
            }
        })
        .await;
        println!("{name}: {calls} calls, {rate:.0} calls/s");
    }
    // The generated client alone: `EchoClient` calling a raw stand-in for an
    // actor named `raw`, which answers every call with the same reply.
    if asked_for("profile-client") {
        let responder = nats::connect(url).await;
        let mut calls_in = responder
            .subscribe("lattice.bench.rpc.raw.>")
            .await
            .expect("subscribes");
        responder.flush().await.expect("flush");
        let reply = bytes::Bytes::from(
            lattice::codec::encode(&serde_bytes::ByteBuf::from(vec![7u8; 64])).expect("encodes"),
        );
        tokio::spawn(async move {
            while let Some(message) = calls_in.next().await {
                if let Some(to) = message.reply {
                    let _ = responder.publish(to, reply.clone()).await;
                }
            }
        });
        let stand_in = EchoClient::new(client.clone(), "bench", "raw").expect("client");
        let data = vec![7u8; 64];
        let calls = profile_calls();
        let rate = throughput(calls, profile_inflight(), || async {
            stand_in.echo_bytes(data.clone()).await.expect("stand-in");
        })
        .await;
        println!("profile-client: {calls} calls, {rate:.0} calls/s");
    }
    // In process, for profilers, on the same host (8 slots): `Host::invoke`
    // of echo (64 B), relay calling counter, the host's fresh instance of
    // echo, and wasmtime's own instantiation of it from an `InstancePre`
    // (imports linked as traps), as in the criterion bench's rows.
    if asked_for("profile-invoke") {
        let args = echo_args_64();
        let call = || host.invoke(Call::new("echo", "echo", "echo_bytes", &args));
        let each = per_call(|| async { call().await.expect("echo") }).await;
        println!("echo.echo_bytes in process: {}", us(each));
    }
    // What a call costs when the caches are not warm: after touching other
    // memory (as the NATS server and the client do between sequential
    // calls), and after the thread has slept (as a host between calls).
    if asked_for("cold-invoke") {
        let args = echo_args_64();
        let call = || host.invoke(Call::new("echo", "echo", "echo_bytes", &args));
        let mut other = vec![0u8; 8 << 20];
        for kib in [0usize, 512, 2048, 8192] {
            let mut samples = Vec::with_capacity(2000);
            for round in 0..2000u32 {
                for at in (0..kib * 1024).step_by(64) {
                    other[at] = other[at].wrapping_add(round as u8);
                }
                let start = Instant::now();
                call().await.expect("echo");
                samples.push(start.elapsed());
            }
            let (median, p99) = percentiles(samples);
            println!(
                "echo.echo_bytes after touching {kib} KiB: median {}, p99 {}",
                us(median),
                us(p99)
            );
        }
        std::hint::black_box(&other);
        // The echo actor's own dispatch, called straight through wasmtime
        // (imports linked as traps, a pool of 8), on a fiber and
        // synchronously (as the host calls it since it runs inline): how
        // much of the cost after idle is the guest's call itself.
        let mut raw_dispatch = RawDispatch::new(echo_module, &args).await;
        // The smallest wasm echo, one `memory.copy`, also straight through
        // wasmtime.
        let mut raw = raw_echo::RawEcho::new();
        let (small_in, mut small_out) = ([7u8; 64], [0u8; 64]);
        // The four, one after another, each after the same idle time and
        // a call of another kind (`profile-cold` makes one kind only).
        for idle_us in [0u64, 50, 200, 1000] {
            let mut samples: [Vec<Duration>; 4] = Default::default();
            for _ in 0..2000 {
                for (kind, taken) in samples.iter_mut().enumerate() {
                    if idle_us > 0 {
                        tokio::time::sleep(Duration::from_micros(idle_us)).await;
                    }
                    let start = Instant::now();
                    if kind == 0 {
                        call().await.expect("echo");
                    } else if kind == 3 {
                        raw.call(&small_in, &mut small_out);
                    } else if kind == 1 {
                        raw_dispatch.call_on_fiber().await;
                    } else {
                        raw_dispatch.call();
                    }
                    taken.push(start.elapsed());
                }
            }
            let [host_call, on_fiber, synchronous, smallest] = samples.map(percentiles);
            println!(
                "after {idle_us} us idle, medians: Host::invoke of echo {}; its dispatch \
                 through raw wasmtime on a fiber {}, synchronous {}; the smallest wasm echo {}",
                us(host_call.0),
                us(on_fiber.0),
                us(synchronous.0),
                us(smallest.0)
            );
        }
    }
    // For profilers, the two sides of `cold-invoke`'s gap one at a time:
    // `Host::invoke` of echo (64 B), or the same actor's dispatch called
    // raw and synchronously, each after 200 us idle, with no call of
    // another kind between, as in `cold-invoke`. `LATTICE_BENCH_BETWEEN`
    // puts one (and another 200 us idle) before each timed call:
    // `raw` or `fiber` (the raw dispatch), `small` (the smallest wasm
    // echo), `host` (`Host::invoke` of echo), `counter` (the host's
    // `counter.get`), `touch` (writes a line in each 64 B of 1 MiB).
    if asked_for("profile-cold") || asked_for("profile-cold-raw") {
        let args = echo_args_64();
        let mut raw_dispatch = RawDispatch::new(echo_module, &args).await;
        let host_side = asked_for("profile-cold");
        let echo = || host.invoke(Call::new("echo", "echo", "echo_bytes", &args));
        let calls = profile_calls();
        let mut samples = Vec::with_capacity(calls);
        let between = std::env::var("LATTICE_BENCH_BETWEEN").unwrap_or_default();
        if between == "counter" {
            host.start_actor_file("counter", &counter_module, ActorLimits::new())
                .await
                .expect("starts");
        }
        let get =
            lattice::codec::encode(&example_counter_contract::CounterGetArgs {}).expect("encodes");
        let mut other = vec![0u8; 1 << 20];
        let mut small = raw_echo::RawEcho::new();
        let (small_in, mut small_out) = ([7u8; 64], [0u8; 64]);
        for _ in 0..calls {
            tokio::time::sleep(Duration::from_micros(200)).await;
            match between.as_str() {
                "raw" => raw_dispatch.call(),
                "fiber" => raw_dispatch.call_on_fiber().await,
                "small" => small.call(&small_in, &mut small_out),
                "counter" => {
                    host.invoke(Call::new("counter", "counter", "get", &get))
                        .await
                        .expect("get");
                }
                "touch" => {
                    for at in (0..other.len()).step_by(64) {
                        other[at] = other[at].wrapping_add(1);
                    }
                }
                "host" => {
                    echo().await.expect("echo");
                }
                "" => {}
                unknown => panic!(
                    "LATTICE_BENCH_BETWEEN: one of raw, fiber, small, host, counter, touch, not {unknown:?}"
                ),
            }
            if !between.is_empty() {
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
            let start = Instant::now();
            if host_side {
                echo().await.expect("echo");
            } else {
                raw_dispatch.call();
            }
            samples.push(start.elapsed());
        }
        let (median, p99) = percentiles(samples);
        let side = if host_side {
            "Host::invoke"
        } else {
            "raw synchronous dispatch"
        };
        println!(
            "{side} of echo after 200 us idle, {calls} calls: median {}, p99 {}",
            us(median),
            us(p99)
        );
    }
    if asked_for("profile-a2a") || asked_for("profile-a2a-base") {
        for (name, module) in [("relay", &relay_module), ("counter", &counter_module)] {
            host.start_actor_file(name, module, ActorLimits::new())
                .await
                .expect("starts");
        }
        // The base: relay's own call without an inner one (see `actor_to_actor`).
        let (contract, method, args) = if asked_for("profile-a2a") {
            let args = RelayAddToArgs {
                counter: "counter".into(),
                by: 1,
            };
            ("relay", "add_to", lattice::codec::encode(&args))
        } else {
            let args = EchoEchoBytesArgs { data: Vec::new() };
            ("echo", "echo_bytes", lattice::codec::encode(&args))
        };
        let args = args.expect("encodes");
        let call = || host.invoke(Call::new("relay", contract, method, &args));
        let each = per_call(|| async { call().await.expect("relay") }).await;
        println!("relay.{method} in process: {}", us(each));
    }
    if asked_for("profile-instantiate") {
        // One lookup of the actor by name for all of them, as a call makes
        // it whether or not it then needs a fresh instance.
        let calls = profile_calls();
        let started = Instant::now();
        host.fresh_instances("echo", calls as u64)
            .await
            .expect("instances");
        let each = started.elapsed() / u32::try_from(calls.max(1)).unwrap_or(u32::MAX);
        println!("host fresh instance: {}", us(each));
    }
    if asked_for("profile-instantiate-raw") {
        let bytes = std::fs::read(echo_module).expect("the module");
        let (engine, pre) = raw_pre::raw_pre(raw_pre::pooling_config(8, true), &bytes);
        // Synchronous, as the host instantiates an actor that runs inline
        // (the echo actor does).
        let each = per_call(|| async {
            let mut store = wasmtime::Store::new(&engine, ());
            pre.instantiate(&mut store).expect("instantiates");
        })
        .await;
        println!("raw InstancePre: {}", us(each));
    }
}
