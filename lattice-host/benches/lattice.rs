//! The lattice against the limits it stands on, in one run on one machine:
//! raw async-nats request/reply vs lattice calls to the echo actor (latency,
//! throughput, payload sizes), actor-to-actor calls in process and across
//! hosts vs a NATS round trip, and host RSS with many idle instances vs
//! wasmtime alone with the same module and configuration.
//! Prints a table with ratios; noisy machines: compare within the run.
//!
//! `cargo bench -p lattice-host --bench lattice` (with `RUST_BACKTRACE`
//! unset). `LATTICE_BENCH_QUICK=1` runs a tenth of the calls.

#[path = "../tests/support/mod.rs"]
#[allow(unreachable_pub)]
mod support;

#[path = "common/raw_pre.rs"]
mod raw_pre;

#[path = "common/raw_echo.rs"]
mod raw_echo;

#[path = "common/raw_idle.rs"]
mod raw_idle;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use example_counter_contract::CounterClient;
use example_echo_contract::{Echo, EchoClient, EchoEchoBytesArgs};
use example_relay_contract::RelayAddToArgs;
use futures_util::StreamExt;
use lattice_host::{ActorLimits, Call, Host, HostOptions};
use support::nats::{self, NatsServer};

/// Whether a section runs: `LATTICE_BENCH_ONLY=transport,a2a,density`
/// picks some; all run by default.
fn section(name: &str) -> bool {
    std::env::var("LATTICE_BENCH_ONLY")
        .map_or(true, |only| only.split(',').any(|s| s.trim() == name))
}

/// Whether a section that never runs by default was asked for by name
/// (one of [`PROFILE_MODES`], or `density100k`).
fn asked_for(name: &str) -> bool {
    std::env::var("LATTICE_BENCH_ONLY").is_ok_and(|only| only.split(',').any(|s| s.trim() == name))
}

fn scale(n: usize) -> usize {
    if std::env::var_os("LATTICE_BENCH_QUICK").is_some() {
        (n / 10).max(50)
    } else {
        n
    }
}

/// Median and 99th percentile.
fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99))
}

fn us(d: Duration) -> String {
    format!("{:.1} us", d.as_secs_f64() * 1e6)
}

struct Table(Vec<[String; 4]>);

impl Table {
    fn row(&mut self, what: impl Into<String>, raw: String, ours: String, ratio: String) {
        let row = [what.into(), raw, ours, ratio];
        println!(
            "{:<44} {:>16} {:>16} {:>10}",
            row[0], row[1], row[2], row[3]
        );
        self.0.push(row);
    }
}

/// Runs `calls` calls of `f`, `inflight` at once; returns calls per second.
async fn throughput<F, Fut>(calls: usize, inflight: usize, f: F) -> f64
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let start = Instant::now();
    futures_util::stream::iter(0..calls)
        .map(|_| f())
        .buffer_unordered(inflight)
        .collect::<Vec<()>>()
        .await;
    calls as f64 / start.elapsed().as_secs_f64()
}

/// `calls` throughput runs of `a` and of `b`, in [`ROUNDS`] rounds that
/// alternate which goes first (a b, b a, a b, ...), so that the machine's
/// drift (a third within minutes here) falls on both alike; returns each
/// one's calls per second over all its rounds, and the ratio of `b`'s rate
/// to `a`'s in each round (sorted): how far one run's ratio can be trusted.
async fn throughput_pair<FA, FutA, FB, FutB>(
    calls: usize,
    inflight: usize,
    a: FA,
    b: FB,
) -> (f64, f64, Vec<f64>)
where
    FA: Fn() -> FutA,
    FutA: std::future::Future<Output = ()>,
    FB: Fn() -> FutB,
    FutB: std::future::Future<Output = ()>,
{
    let each = (calls / ROUNDS).max(1);
    let (mut time_a, mut time_b) = (0.0, 0.0);
    let mut ratios = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        let timed_a = async { each as f64 / throughput(each, inflight, &a).await };
        let timed_b = async { each as f64 / throughput(each, inflight, &b).await };
        let (round_a, round_b) = if round % 2 == 0 {
            let round_a = timed_a.await;
            (round_a, timed_b.await)
        } else {
            let round_b = timed_b.await;
            (timed_a.await, round_b)
        };
        time_a += round_a;
        time_b += round_b;
        ratios.push(round_a / round_b);
    }
    ratios.sort_by(f64::total_cmp);
    let total = (each * ROUNDS) as f64;
    (total / time_a, total / time_b, ratios)
}

/// How many blocks [`sequential_pair`] splits its calls into for the
/// spread of its difference.
const BLOCKS: usize = 10;

/// One line under a table row: the lowest, middle and highest of `values`
/// (sorted), each formatted by `show`.
fn spread(of: &str, values: &[f64], show: impl Fn(f64) -> String) {
    if let (Some(&low), Some(&high)) = (values.first(), values.last()) {
        println!(
            "    {of}: lowest {}, median {}, highest {}",
            show(low),
            show(values[values.len() / 2]),
            show(high)
        );
    }
}

/// How many rounds [`throughput_pair`] alternates.
const ROUNDS: usize = 10;

/// `calls` sequential calls of `a` and of `b`, alternating call by call
/// (and which of the two goes first), after a tenth as many to warm up: the
/// machine's drift falls on both alike. Returns each one's median and
/// 99th percentile, and the difference of their medians (`b`'s less `a`'s,
/// in µs) in each of [`BLOCKS`] consecutive blocks of the calls (sorted).
async fn sequential_pair<FA, FutA, FB, FutB>(
    calls: usize,
    a: FA,
    b: FB,
) -> ((Duration, Duration), (Duration, Duration), Vec<f64>)
where
    FA: Fn() -> FutA,
    FutA: std::future::Future<Output = ()>,
    FB: Fn() -> FutB,
    FutB: std::future::Future<Output = ()>,
{
    for _ in 0..calls / 10 {
        a().await;
        b().await;
    }
    let (mut samples_a, mut samples_b) = (Vec::with_capacity(calls), Vec::with_capacity(calls));
    for i in 0..calls {
        let timed_a = async {
            let start = Instant::now();
            a().await;
            start.elapsed()
        };
        let timed_b = async {
            let start = Instant::now();
            b().await;
            start.elapsed()
        };
        if i % 2 == 0 {
            samples_a.push(timed_a.await);
            samples_b.push(timed_b.await);
        } else {
            samples_b.push(timed_b.await);
            samples_a.push(timed_a.await);
        }
    }
    let block = calls.div_ceil(BLOCKS).max(1);
    let mut differences: Vec<f64> = samples_a
        .chunks(block)
        .zip(samples_b.chunks(block))
        .map(|(a, b)| {
            let (a, _) = percentiles(a.to_vec());
            let (b, _) = percentiles(b.to_vec());
            (b.as_secs_f64() - a.as_secs_f64()) * 1e6
        })
        .collect();
    differences.sort_by(f64::total_cmp);
    (percentiles(samples_a), percentiles(samples_b), differences)
}

/// Resident memory: (all, anonymous) bytes. The rest is file and shared
/// memory: the pages of compiled code and of copy-on-write memory images
/// that an instance has read, counted once per mapping though shared.
/// The CPU time this process has used, all its threads (those that ended
/// too), user and system: `/proc/self/stat`, in clock ticks of 10 ms.
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name, in parentheses, may hold spaces: the fields are
    // counted after it. utime and stime are fields 14 and 15 of the line,
    // the 12th and 13th after the name.
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .map_or_else(Vec::new, |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

fn rss_bytes() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kb| kb.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    (field("VmRSS:"), field("RssAnon:"))
}

/// The process's proportional set size: each resident page divided by the
/// number of mappings that share it. RSS counts a page of a module's
/// read-only memory image once per instance that maps it; PSS once in all.
fn pss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/smaps_rollup")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .map_or(0, kb)
}

/// The bytes of a `/proc/self/smaps` field's value (`   24 kB`).
fn kb(rest: &str) -> u64 {
    rest.split_whitespace()
        .next()
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

/// Resident bytes in mappings of exactly `size` bytes: the fiber stacks of
/// the pooling allocator are the only ones of their size.
fn resident_in_mappings_of(size: u64) -> u64 {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
    let mut total = 0;
    let mut matching = false;
    for line in smaps.lines() {
        if let Some(rest) = line.strip_prefix("Size:") {
            matching = kb(rest) == size;
        } else if let Some(rest) = line.strip_prefix("Rss:")
            && matching
        {
            total += kb(rest);
        }
    }
    total
}

/// Resident and anonymous (copied-on-write) bytes of the instances' memory
/// images: the mappings of a compiled module that appear at least `count`
/// times, one per instance.
fn resident_in_images(count: usize) -> (u64, u64) {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
    let mut groups: BTreeMap<u64, (usize, u64, u64)> = BTreeMap::new();
    let mut size = None;
    for line in smaps.lines() {
        // A mapping's first line starts with its address range, `a-b`.
        let first = line.split_whitespace().next().unwrap_or("");
        if first.contains('-') && !first.ends_with(':') {
            // Images are mapped from the module cache's `.cwasm` files, or,
            // for a module compiled in this process, from a memfd.
            let image = line.ends_with(".cwasm") || line.contains("wasm-memory-image");
            size = image.then_some(0);
        } else if let Some(rest) = line.strip_prefix("Size:")
            && let Some(s) = size.as_mut()
        {
            *s = kb(rest);
            groups.entry(*s).or_default().0 += 1;
        } else if let (Some(s), Some(rest)) = (size, line.strip_prefix("Rss:")) {
            groups.entry(s).or_default().1 += kb(rest);
        } else if let (Some(s), Some(rest)) = (size, line.strip_prefix("Anonymous:")) {
            groups.entry(s).or_default().2 += kb(rest);
        }
    }
    groups
        .values()
        .filter(|(maps, _, _)| *maps >= count)
        .fold((0, 0), |(r, a), (_, rss, anon)| (r + rss, a + anon))
}

/// The process's memory mappings (against `vm.max_map_count`).
fn mappings() -> usize {
    std::fs::read_to_string("/proc/self/maps").map_or(0, |m| m.lines().count())
}

/// The modes that make one kind of call only, for profilers; never run by
/// default.
const PROFILE_MODES: [&str; 11] = [
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
fn profile_calls() -> usize {
    env_count("LATTICE_BENCH_CALLS", 200_000)
}

/// The calls in flight of a profiling run over NATS:
/// `LATTICE_BENCH_INFLIGHT`, 64 by default (1 profiles sequential calls).
fn profile_inflight() -> usize {
    env_count("LATTICE_BENCH_INFLIGHT", 64)
}

/// A count of calls from the environment variable `name`, else `default`.
fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name).map_or(default, |n| {
        n.parse()
            .unwrap_or_else(|_| panic!("{name}: a number of calls, not {n:?}"))
    })
}

/// Makes `profile_calls()` calls of `f`, one after another; the mean time.
async fn per_call<F: std::future::Future>(mut f: impl FnMut() -> F) -> Duration {
    let calls = profile_calls();
    let started = Instant::now();
    for _ in 0..calls {
        f().await;
    }
    started.elapsed() / u32::try_from(calls.max(1)).unwrap_or(u32::MAX)
}

/// The arguments of `echo.echo_bytes` with 64 bytes of data, as the
/// generated client encodes them, for calls made with `Host::invoke`.
fn echo_args_64() -> Vec<u8> {
    let data = serde_bytes::ByteBuf::from(vec![7u8; 64]);
    lattice::codec::encode(&BTreeMap::from([("data", data)])).expect("encodes")
}

fn bench_host(lattice: &str, id: &str, pool_instances: u32) -> Host {
    Host::new(bench_options(lattice, id, pool_instances)).expect("a host")
}

fn bench_options(lattice: &str, id: &str, pool_instances: u32) -> HostOptions {
    HostOptions::new()
        .lattice(lattice)
        .host_id(id)
        .pool_instances(pool_instances)
        .module_cache(Some(support::shared_cache()))
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    // A measuring process of the density section (see `density`).
    if let Ok(spec) = std::env::var(FOOTPRINT_ENV) {
        runtime.block_on(footprint_child(&spec));
        return;
    }
    runtime.block_on(run());
}

async fn run() {
    if std::env::var_os("RUST_BACKTRACE").is_some() {
        eprintln!("warning: RUST_BACKTRACE is set; errors on hot paths capture backtraces");
    }
    let echo_module = support::wasm("example-echo-actor");
    let counter_module = support::wasm("example-counter-actor");
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
    let profiling = PROFILE_MODES.into_iter().any(asked_for);
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
        let responder = nats::connect(&url).await;
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
        let mut raw_dispatch = RawDispatch::new(&echo_module, &args).await;
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
        let mut raw_dispatch = RawDispatch::new(&echo_module, &args).await;
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
        let bytes = std::fs::read(&echo_module).expect("the module");
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
    if section("decompose") {
        decompose(&url, server.pid(), &client, &echo, &mut table).await;
    }
    let sizes: &[usize] = if section("transport") {
        &[64, 4096, 65536]
    } else {
        &[]
    };
    for &size in sizes {
        let data = vec![7u8; size];
        // A raw request/reply to the responder on `subject`.
        let raw_on = |subject: &'static str| {
            let (client, data) = (&client, &data);
            move || {
                let client = client.clone();
                let data = data.clone();
                async move {
                    client
                        .request(subject, data.into())
                        .await
                        .expect("raw reply");
                }
            }
        };
        let raw = raw_on("bench.raw");
        let ours = || {
            let echo = echo.clone();
            let data = data.clone();
            async move {
                echo.echo_bytes(data).await.expect("echo reply");
            }
        };
        // More calls at 64 B, where the targets are: blocks of 1,000 calls
        // disagreed by up to 16 us here, so a median of 3,000 was uncertain
        // by a few.
        let n = scale(match size {
            64 => 10_000,
            4096 => 3000,
            _ => 1000,
        });
        let ((raw_median, raw_p99), (our_median, our_p99), blocks) =
            sequential_pair(n, raw, ours).await;
        table.row(
            format!("sequential median, {size} B"),
            us(raw_median),
            us(our_median),
            format!(
                "{:+.1} us",
                (our_median.as_secs_f64() - raw_median.as_secs_f64()) * 1e6
            ),
        );
        spread(&format!("in {BLOCKS} blocks of the calls"), &blocks, |d| {
            format!("{d:+.1} us")
        });
        table.row(
            format!("sequential p99, {size} B"),
            us(raw_p99),
            us(our_p99),
            format!("{:.2}x", our_p99.as_secs_f64() / raw_p99.as_secs_f64()),
        );
        for inflight in [1usize, 16, 64] {
            if size > 4096 && inflight == 16 {
                continue;
            }
            let n = scale(match (size, inflight) {
                (64, 64) => 60_000,
                (65536, _) => 3000,
                _ => 20_000,
            });
            let (raw_rate, our_rate, rounds) = throughput_pair(n, inflight, raw, ours).await;
            table.row(
                format!("throughput, {inflight} in flight, {size} B"),
                format!("{raw_rate:.0}/s"),
                format!("{our_rate:.0}/s"),
                format!("{:.2}x", our_rate / raw_rate),
            );
            if (size, inflight) == (64, 64) {
                spread(&format!("in {ROUNDS} rounds"), &rounds, |r| {
                    format!("{r:.2}x")
                });
            }
        }
        if size == 64 {
            let queued = raw_on("bench.rawq");
            let n = scale(60_000);
            let (raw_rate, our_rate, rounds) = throughput_pair(n, 64, queued, ours).await;
            table.row(
                "throughput, 64 in flight, 64 B, raw queue group",
                format!("{raw_rate:.0}/s"),
                format!("{our_rate:.0}/s"),
                format!("{:.2}x", our_rate / raw_rate),
            );
            spread(&format!("in {ROUNDS} rounds"), &rounds, |r| {
                format!("{r:.2}x")
            });
        }
    }

    if section("a2a") {
        actor_to_actor(&url, &client, &relay_module, &counter_module, &mut table).await;
    }
    if section("busy") {
        beside_busy_guests(&url, &mut table).await;
    }
    if section("hibernate") {
        wake_cost(&echo_module, &mut table).await;
    }
    if section("density") {
        density(&idle_module, &[1_000, 10_000], 3_000, &mut table).await;
    }
    // 100,000 instances: only when asked for by name, as it needs
    // `sysctl -w vm.max_map_count=610000` (the pools have 16 slots to
    // spare; the host says what it needs otherwise).
    if asked_for("density100k") {
        density(&idle_module, &[100_000], 30_000, &mut table).await;
    }
    host.shutdown().await;
    println!(
        "\n{} measures; machine: {} cores, {}",
        table.0.len(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_model()
    );
}

/// What a call to a hibernating instance pays to wake it: `Host::invoke` of
/// echo (64 B) on a host whose one instance hibernates after 1 ms idle,
/// each call once it sleeps, against the same call on a host whose
/// instance stays awake and has idled as long (called first, so that the
/// host's code is as warm for both).
async fn wake_cost(module: &std::path::Path, table: &mut Table) {
    let host = |id: &str, after: Option<Duration>| {
        Host::new(bench_options("wake", id, 8).hibernate_after(after)).expect("a host")
    };
    let (asleep, awake) = (host("s", Some(Duration::from_millis(1))), host("a", None));
    for host in [&asleep, &awake] {
        host.start_actor_file("echo", module, ActorLimits::new().max_instances(1))
            .await
            .expect("echo");
    }
    let args = echo_args_64();
    let call = |host: &Host| {
        let (host, args) = (host.clone(), args.clone());
        async move {
            let started = Instant::now();
            host.invoke(Call::new("echo", "echo", "echo_bytes", &args))
                .await
                .expect("echo");
            started.elapsed()
        }
    };
    let (mut awake_times, mut wake_times) = (Vec::new(), Vec::new());
    let before = asleep.stats().wakes;
    for _ in 0..scale(500) {
        while asleep.hibernating_instances("echo") != Some(1) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        awake_times.push(call(&awake).await);
        wake_times.push(call(&asleep).await);
    }
    let woken = asleep.stats().wakes - before;
    let ((awake_median, awake_p99), (wake_median, wake_p99)) =
        (percentiles(awake_times), percentiles(wake_times));
    table.row(
        format!("in process, after idle: awake, woken ({woken} wakes), median"),
        us(awake_median),
        us(wake_median),
        format!(
            "{:+.1} us",
            (wake_median.as_secs_f64() - awake_median.as_secs_f64()) * 1e6
        ),
    );
    table.row(
        "  p99",
        us(awake_p99),
        us(wake_p99),
        format!(
            "{:+.1} us",
            (wake_p99.as_secs_f64() - awake_p99.as_secs_f64()) * 1e6
        ),
    );
    asleep.shutdown().await;
    awake.shutdown().await;
}

async fn actor_to_actor(
    url: &str,
    client: &async_nats::Client,
    relay_module: &std::path::Path,
    counter_module: &std::path::Path,
    table: &mut Table,
) {
    // --- Actor to actor: relay -> counter, in process and across hosts,
    // measured at the host (Host::invoke) so that no client hop is counted.
    // The inner call costs relay's `add_to` minus relay's own call without
    // one (`echo_bytes` of nothing): both enter the same actor the same way
    // (on a fiber, as relay imports `call`), so what is left is the call
    // from actor to actor and the little guest work around it. (Counter's
    // own `add` would be the wrong base: it runs inline, which would put
    // relay's fiber entry into the figure, about 0.3 us.)
    let a2a = bench_host("a2a", "one", 64);
    a2a.start_actor_file("relay", &relay_module, ActorLimits::new())
        .await
        .expect("relay");
    a2a.start_actor_file("counter", &counter_module, ActorLimits::new())
        .await
        .expect("counter");
    let relay_args = lattice::codec::encode(&RelayAddToArgs {
        counter: "counter".into(),
        by: 1,
    })
    .expect("encodes");
    let nothing = lattice::codec::encode(&EchoEchoBytesArgs { data: Vec::new() }).expect("encodes");
    let n = scale(20_000);
    let base = || async {
        a2a.invoke(Call::new("relay", "echo", "echo_bytes", &nothing))
            .await
            .expect("relay echo_bytes");
    };
    let relay = || async {
        a2a.invoke(Call::new("relay", "relay", "add_to", &relay_args))
            .await
            .expect("relay");
    };
    let ((base_median, _), (via_relay, _), _) = sequential_pair(n, base, relay).await;
    let raw_request = || {
        let client = client.clone();
        async move {
            client
                .request("bench.raw", vec![0u8; 16].into())
                .await
                .expect("raw");
        }
    };
    // Across hosts: relay on `one`, counter only on `two`.
    a2a.stop_actor("counter").await.expect("stops");
    a2a.join(nats::connect(url).await).await.expect("joins");
    let two = bench_host("a2a", "two", 64);
    two.start_actor_file("counter", &counter_module, ActorLimits::new())
        .await
        .expect("counter");
    two.join(nats::connect(url).await).await.expect("joins");
    let counter = CounterClient::new(client.clone(), "a2a", "counter").expect("client");
    support::eventually(Duration::from_secs(5), || counter.get())
        .await
        .expect("counter reachable");
    let ((raw_rtt, _), (cross, _), _) = sequential_pair(scale(3000), raw_request, relay).await;
    let same_host = via_relay.saturating_sub(base_median);
    table.row(
        "actor to actor, same host (median)",
        us(raw_rtt),
        us(same_host),
        format!(
            "{:.0}x under",
            raw_rtt.as_secs_f64() / same_host.as_secs_f64().max(1e-9)
        ),
    );
    let other_host = cross.saturating_sub(base_median);
    table.row(
        "actor to actor, other host (median)",
        us(raw_rtt),
        us(other_host),
        format!("{:.2}x", other_host.as_secs_f64() / raw_rtt.as_secs_f64()),
    );

    a2a.shutdown().await;
    two.shutdown().await;
}

/// Echo calls over NATS, one at a time from a caller with a runtime of its
/// own (as another process would be), to a host whose two workers run
/// guests that compute (the hostile test actor's `spin`, on fibers), against
/// the same calls to the same host idle. A busy guest yields at each epoch
/// tick (5 ms); what the calls wait is how soon the host's workers look at
/// the network between two slices of guest work.
async fn beside_busy_guests(url: &str, table: &mut Table) {
    // The host's default tick, set here so that the slices row can name it.
    let tick = Duration::from_millis(5);
    let host = Host::new(bench_options("busy", "b", 8).epoch_tick(tick)).expect("a host");
    host.start_actor_file(
        "echo",
        support::wasm("example-echo-actor"),
        ActorLimits::new(),
    )
    .await
    .expect("echo");
    let spin_for = Duration::from_secs(3);
    host.start_actor_file(
        "hostile",
        support::wasm("lattice-test-hostile"),
        ActorLimits::new()
            .max_instances(2)
            .timeout(spin_for)
            .inline(false),
    )
    .await
    .expect("hostile");
    host.join(nats::connect(url).await).await.expect("joins");
    let calls = scale(100).min(200);
    // Spread over the guests' time (see `echo_calls_from_elsewhere`), and
    // the same on the idle host, so that both sides idle alike in between.
    let every = (spin_for - Duration::from_millis(400)) / u32::try_from(calls).unwrap_or(1);
    let idle = support::echo_calls_from_elsewhere(url, "busy", calls, None, every);
    let (cpu_before, yields_before) = (process_cpu(), host.stats().guest_yields);
    let started = Instant::now();
    let busy = support::spin(&host, "hostile", 2);
    // Only the calls made while the guests compute count: later ones would
    // find the host idle.
    let guests_end = started + spin_for - Duration::from_millis(300);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let beside = support::echo_calls_from_elsewhere(url, "busy", calls, Some(guests_end), every);
    // The cores the guests kept while they computed (and the calls were
    // served): 2 if yielding to the calls cost them nothing.
    tokio::time::sleep_until(guests_end.into()).await;
    let window = started.elapsed().as_secs_f64();
    let cores = (process_cpu() - cpu_before).as_secs_f64() / window;
    let slices = (host.stats().guest_yields - yields_before) as f64 / window / 2.0;
    for call in busy {
        let _ = call.await;
    }
    let max = |samples: &[Duration]| samples.iter().copied().max().unwrap_or_default();
    let (idle_median, _) = percentiles(idle.clone());
    let (busy_median, _) = percentiles(beside.clone());
    table.row(
        "echo beside 2 busy guests, median",
        us(idle_median),
        us(busy_median),
        format!(
            "{:.0}x",
            busy_median.as_secs_f64() / idle_median.as_secs_f64().max(1e-9)
        ),
    );
    table.row(
        "echo beside 2 busy guests, slowest",
        us(max(&idle)),
        us(max(&beside)),
        format!("{} calls", beside.len()),
    );
    table.row(
        "cores the 2 busy guests kept",
        "2 workers".into(),
        format!("{cores:.2}"),
        format!("{:.2}x", cores / 2.0),
    );
    table.row(
        "  slices per second, each guest",
        format!("{:.0} ticks", 1.0 / tick.as_secs_f64()),
        format!("{slices:.0}"),
        String::new(),
    );
    host.shutdown().await;
}

/// What `count` idle instances, each having served one call, hold: measured
/// in a process of its own (see [`density`]).
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
struct Footprint {
    idle: u64,
    rss: u64,
    anon: u64,
    pss: u64,
    image: u64,
    image_anon: u64,
    stacks: u64,
    mappings: u64,
    seconds: f64,
}

impl Footprint {
    /// The one line a measuring process prints for its parent.
    fn to_line(self) -> String {
        format!(
            "footprint {}",
            serde_json::to_string(&self).expect("serializes")
        )
    }

    fn from_line(line: &str) -> Option<Footprint> {
        serde_json::from_str(line.strip_prefix("footprint ")?).ok()
    }

    /// KiB per idle instance.
    fn each(&self, bytes: u64) -> f64 {
        bytes as f64 / 1024.0 / self.idle.max(1) as f64
    }
}

/// The environment variable that makes this binary a measuring process:
/// `KIND:COUNT:SLEEP_MS`, KIND `lattice` (instances awake), `hibernated`
/// (after every instance went to sleep), `raw` (the idle actor on wasmtime
/// alone) or `smallest` (the smallest guest on wasmtime alone).
const FOOTPRINT_ENV: &str = "LATTICE_BENCH_FOOTPRINT";
/// The idle actor's module, passed to the measuring process.
const IDLE_MODULE_ENV: &str = "LATTICE_BENCH_IDLE_MODULE";
/// How long the instances of the `hibernated` measure stay idle before
/// they hibernate.
const HIBERNATE_AFTER: Duration = Duration::from_millis(200);

async fn density(module: &std::path::Path, counts: &[u32], sleep_ms: u64, table: &mut Table) {
    // --- Density: RSS of idle instances, each having served one call: that
    // many calls at once (each sleeps), so that each gets an instance. The
    // baseline is wasmtime alone: the same module on an engine configured
    // as the host's (its pool, stacks and epochs), each instance called
    // once on a fiber by a task of its own, and kept; and wasmtime's own
    // floor, the smallest guest (no data) called once synchronously. Each
    // runs in a fresh process of this binary, so that none reuses memory
    // another (or an earlier section) freed.
    for &count in counts {
        let measure = |kind: &str| footprint_in_child(kind, module, count, sleep_ms);
        let (Some(raw), Some(ours)) = (measure("raw"), measure("lattice")) else {
            continue;
        };
        let smallest = measure("smallest");
        let mib = |bytes: u64| format!("{} MiB", bytes >> 20);
        let ratio = |a: u64, b: u64| format!("{:.2}x", b as f64 / a.max(1) as f64);
        table.row(
            format!("RSS, {} idle instances", ours.idle),
            mib(raw.rss),
            mib(ours.rss),
            ratio(raw.rss, ours.rss),
        );
        let each = |f: &Footprint, bytes: u64| format!("{:.1} KiB", f.each(bytes));
        table.row(
            "  per instance",
            each(&raw, raw.rss),
            each(&ours, ours.rss),
            "256 MiB: 26.2".to_owned(),
        );
        table.row(
            "  per instance, anonymous",
            each(&raw, raw.anon),
            each(&ours, ours.anon),
            String::new(),
        );
        table.row(
            format!("PSS, {} idle instances", ours.idle),
            mib(raw.pss),
            mib(ours.pss),
            ratio(raw.pss, ours.pss),
        );
        table.row(
            "  per instance (shared pages once)",
            each(&raw, raw.pss),
            each(&ours, ours.pss),
            String::new(),
        );
        table.row(
            "  memory images, per instance",
            each(&raw, raw.image),
            each(&ours, ours.image),
            format!("copied {:.1}", ours.each(ours.image_anon)),
        );
        table.row(
            "  fiber stacks, per instance",
            each(&raw, raw.stacks),
            each(&ours, ours.stacks),
            String::new(),
        );
        if let Some(asleep) = measure("hibernated") {
            table.row(
                format!("RSS, {} hibernating instances", asleep.idle),
                mib(ours.rss),
                mib(asleep.rss),
                ratio(ours.rss, asleep.rss),
            );
            table.row(
                "  per instance: awake, hibernating",
                each(&ours, ours.rss),
                each(&asleep, asleep.rss),
                "256 MiB: 26.2".to_owned(),
            );
            table.row(
                "  PSS per instance: awake, hibernating",
                each(&ours, ours.pss),
                each(&asleep, asleep.pss),
                String::new(),
            );
            table.row(
                "  anonymous per instance: awake, hibernating",
                each(&ours, ours.anon),
                each(&asleep, asleep.anon),
                String::new(),
            );
        }
        if let Some(floor) = smallest {
            table.row(
                "  smallest guest, no fiber: RSS, PSS",
                each(&floor, floor.rss),
                each(&floor, floor.pss),
                "wasmtime alone".to_owned(),
            );
        }
        let maps = |f: &Footprint| {
            format!(
                "{:.1}, {:.1} s",
                f.mappings as f64 / f.idle.max(1) as f64,
                f.seconds
            )
        };
        table.row(
            "  mappings per instance, time",
            maps(&raw),
            maps(&ours),
            String::new(),
        );
    }
}

/// Runs this binary again to measure `kind` (see [`FOOTPRINT_ENV`]) with
/// `count` idle instances; `None` (and says why) if that failed.
fn footprint_in_child(
    kind: &str,
    module: &std::path::Path,
    count: u32,
    sleep_ms: u64,
) -> Option<Footprint> {
    let exe = std::env::current_exe().expect("this benchmark's path");
    let output = std::process::Command::new(exe)
        .env(FOOTPRINT_ENV, format!("{kind}:{count}:{sleep_ms}"))
        .env(IDLE_MODULE_ENV, module)
        .stderr(std::process::Stdio::inherit())
        .output();
    let stdout = match output {
        Ok(output) if output.status.success() => {
            String::from_utf8_lossy(&output.stdout).into_owned()
        }
        Ok(output) => {
            println!(
                "{count} instances, {kind}: the measuring process failed ({})",
                output.status
            );
            return None;
        }
        Err(e) => {
            println!("{count} instances, {kind}: cannot run the measuring process: {e}");
            return None;
        }
    };
    let found = stdout.lines().find_map(Footprint::from_line);
    if found.is_none() {
        println!("{count} instances, {kind}: {}", stdout.trim());
    }
    found
}

/// The measuring process: `spec` is [`FOOTPRINT_ENV`]'s value.
async fn footprint_child(spec: &str) {
    let mut parts = spec.split(':');
    let (Some(kind), Some(Ok(count)), Some(Ok(sleep_ms))) = (
        parts.next(),
        parts.next().map(str::parse::<u32>),
        parts.next().map(str::parse::<u64>),
    ) else {
        panic!("{FOOTPRINT_ENV}: expected KIND:COUNT:SLEEP_MS, not {spec:?}");
    };
    let module = std::env::var_os(IDLE_MODULE_ENV).expect("the idle actor's module");
    let module = std::path::Path::new(&module);
    let started = Instant::now();
    let maps_before = mappings();
    // The same options for both: the raw side takes the host's engine.
    // Awake (`lattice`), or hibernating once idle for 200 ms.
    let hibernated = kind == "hibernated";
    let dense = match Host::new(
        HostOptions::new()
            .lattice("dense")
            .host_id("d")
            .pool_instances(count + 16)
            .pool_memory(32 << 20)
            .module_cache(Some(support::shared_cache()))
            .hibernate_after(hibernated.then_some(HIBERNATE_AFTER)),
    ) {
        Ok(host) => host,
        Err(e) => {
            println!("{e}");
            return;
        }
    };
    let payload = lattice::codec::encode(&BTreeMap::from([("ms", sleep_ms)])).expect("encodes");
    // Compiled, linked and started before the first reading on each side.
    let (mut raw, mut smallest) = (None, None);
    match kind {
        "raw" => raw = Some(raw_idle::RawIdle::new(dense.engine(), module).await),
        "smallest" => smallest = Some(raw_idle::RawSmallest::new(dense.engine())),
        "lattice" | "hibernated" => {
            dense
                .start_actor_file(
                    "idle",
                    &module,
                    ActorLimits::new()
                        .max_instances(count)
                        .timeout(Duration::from_millis(sleep_ms * 2)),
                )
                .await
                .expect("starts");
        }
        other => {
            panic!("{FOOTPRINT_ENV}: no kind {other:?} (raw, smallest, lattice or hibernated)")
        }
    }
    let (before, pss_before) = (rss_bytes(), pss_bytes());
    let (mut kept_raw, mut kept_smallest) = (Vec::new(), Vec::new());
    let idle = match (raw, smallest) {
        (Some(raw), _) => {
            kept_raw = raw.serve(count, &payload).await;
            kept_raw.len()
        }
        (_, Some(smallest)) => {
            kept_smallest = smallest.serve(count);
            kept_smallest.len()
        }
        _ => {
            let calls: Vec<_> = (0..count)
                .map(|_| {
                    let dense = dense.clone();
                    let payload = payload.clone();
                    tokio::spawn(async move {
                        dense
                            .invoke(Call::new("idle", "idle", "sleep", &payload))
                            .await
                            .expect("sleeps")
                    })
                })
                .collect();
            for call in calls {
                call.await.expect("joins");
            }
            if hibernated {
                // Until every instance sleeps (the sweeper's thread puts
                // them to sleep one by one, from 200 ms after their call).
                let deadline = Instant::now() + Duration::from_secs(120);
                while dense.hibernating_instances("idle") < Some(count as usize)
                    && Instant::now() < deadline
                {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                dense.hibernating_instances("idle").unwrap_or(0)
            } else {
                dense.idle_instances("idle").unwrap_or(0)
            }
        }
    };
    let after = rss_bytes();
    let (image, image_anon) = resident_in_images(idle);
    let footprint = Footprint {
        idle: idle as u64,
        rss: after.0.saturating_sub(before.0),
        anon: after.1.saturating_sub(before.1),
        pss: pss_bytes().saturating_sub(pss_before),
        image,
        image_anon,
        // The engine's fiber stacks: 2 x max_wasm_stack (512 KiB) + 1 MiB.
        stacks: resident_in_mappings_of(2 * (512 << 10) + (1 << 20)),
        mappings: mappings().saturating_sub(maps_before) as u64,
        seconds: started.elapsed().as_secs_f64(),
    };
    println!("{}", footprint.to_line());
    drop((kept_raw, kept_smallest));
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default()
}

/// Where the wire path's cost goes: raw request/reply with the headers a
/// lattice call carries, with a queue group, with a task per message.
async fn decompose(
    url: &str,
    server: Option<u32>,
    client: &async_nats::Client,
    echo: &EchoClient,
    table: &mut Table,
) {
    let responder = nats::connect(url).await;
    let mut plain = responder.subscribe("bench.hdr").await.expect("subscribes");
    let mut queue = responder
        .queue_subscribe("bench.queue", "q".into())
        .await
        .expect("subscribes");
    let mut spawn = responder
        .queue_subscribe("bench.spawn", "q".into())
        .await
        .expect("subscribes");
    // A stand-in for an actor named `raw`, answering every call with the
    // same reply: the generated client's own cost against a raw responder.
    let mut stand_in = responder
        .queue_subscribe("lattice.bench.rpc.raw.>", "raw".into())
        .await
        .expect("subscribes");
    let reply = bytes::Bytes::from(
        lattice::codec::encode(&serde_bytes::ByteBuf::from(vec![7u8; 64])).expect("encodes"),
    );
    responder.flush().await.expect("flush");
    let r = responder.clone();
    tokio::spawn(async move {
        while let Some(m) = plain.next().await {
            let _ = r.publish(m.reply.unwrap(), m.payload).await;
        }
    });
    let r = responder.clone();
    tokio::spawn(async move {
        while let Some(m) = queue.next().await {
            let _ = r.publish(m.reply.unwrap(), m.payload).await;
        }
    });
    let r = responder.clone();
    tokio::spawn(async move {
        while let Some(m) = stand_in.next().await {
            let _ = r.publish(m.reply.unwrap(), reply.clone()).await;
        }
    });
    let r = responder.clone();
    tokio::spawn(async move {
        while let Some(m) = spawn.next().await {
            let r = r.clone();
            tokio::spawn(async move {
                let _ = r.publish(m.reply.unwrap(), m.payload).await;
            });
        }
    });
    let mut one = async_nats::HeaderMap::new();
    one.insert(lattice::headers::FINGERPRINT, "0123456789abcdef");
    let mut headers = async_nats::HeaderMap::new();
    // The five headers lattice requests carried before they were cut to two
    // (the version header has no constant any more).
    headers.insert(lattice::headers::CONTRACT, "echo");
    headers.insert("Lattice-Contract-Version", "1");
    headers.insert(lattice::headers::FINGERPRINT, "0123456789abcdef");
    headers.insert(
        lattice::headers::TRACEPARENT,
        lattice::client::new_traceparent().as_str(),
    );
    headers.insert(lattice::headers::TIMEOUT_MS, "5000");
    let data = bytes::Bytes::from(vec![7u8; 64]);
    let n = scale(20_000);
    // CPU seconds of the server and of this process per call.
    let cpu = |pid: &str| -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        (ticks(11) + ticks(12)) / 100.0
    };
    let server = server.map_or("0".to_owned(), |p| p.to_string());
    let mark = || (cpu(&server), cpu("self"));
    let mut report = |what: &str, rate: f64, before: (f64, f64), after: (f64, f64)| {
        let per = |a: f64, b: f64| (b - a) / n as f64 * 1e6;
        table.row(
            format!("64 in flight, 64 B: {what}"),
            format!("{rate:.0}/s"),
            format!("server {:.1} us", per(before.0, after.0)),
            format!("us {:.1} us", per(before.1, after.1)),
        );
    };
    let before = mark();
    let rate = throughput(n, 64, || async {
        client
            .request("bench.raw", data.clone())
            .await
            .expect("raw");
    })
    .await;
    report("raw, no headers", rate, before, mark());
    for (what, subject, headers) in [
        ("raw, 1 header", "bench.hdr", &one),
        ("raw, 5 headers", "bench.hdr", &headers),
        ("5 headers, queue group", "bench.queue", &headers),
        ("5 headers, queue, task per call", "bench.spawn", &headers),
    ] {
        let before = mark();
        let rate = throughput(n, 64, || async {
            let request = async_nats::Request::new()
                .payload(data.clone())
                .headers(headers.clone());
            client.send_request(subject, request).await.expect("reply");
        })
        .await;
        report(what, rate, before, mark());
    }
    // The two halves of a lattice call: the generated client against the
    // raw stand-in, and a raw request with the client's call prefix to the
    // host's echo actor (and, for comparison, with the two headers that
    // carried the same before the prefix).
    let stand_in = EchoClient::new(client.clone(), "bench", "raw").expect("client");
    let before = mark();
    let rate = throughput(n, 64, || async {
        stand_in.echo_bytes(data.to_vec()).await.expect("stand-in");
    })
    .await;
    report("lattice client, raw responder", rate, before, mark());
    let mut two = async_nats::HeaderMap::new();
    two.insert(
        lattice::headers::FINGERPRINT,
        format!("{:016x}", <dyn Echo as lattice::Contract>::FINGERPRINT),
    );
    two.insert(lattice::headers::TIMEOUT_MS, "5000");
    let args = bytes::Bytes::from(echo_args_64());
    let before = mark();
    let rate = throughput(n, 64, || async {
        let request = async_nats::Request::new()
            .payload(args.clone())
            .headers(two.clone());
        let reply = client
            .send_request("lattice.bench.rpc.echo.echo.echo_bytes", request)
            .await
            .expect("reply");
        assert!(reply.headers.is_none(), "an error reply");
    })
    .await;
    report("raw client, 2 headers, lattice host", rate, before, mark());
    let mut prefixed = lattice::prefix::CallPrefix {
        fingerprint: Some(<dyn Echo as lattice::Contract>::FINGERPRINT),
        budget_ms: Some(5000),
    }
    .encode()
    .to_vec();
    prefixed.extend_from_slice(&args);
    let prefixed = bytes::Bytes::from(prefixed);
    let lattice_host = || async {
        let reply = client
            .request("lattice.bench.rpc.echo.echo.echo_bytes", prefixed.clone())
            .await
            .expect("reply");
        assert!(reply.headers.is_none(), "an error reply");
    };
    let before = mark();
    let rate = throughput(n, 64, lattice_host).await;
    report(
        "raw client, call prefix, lattice host",
        rate,
        before,
        mark(),
    );
    let before = mark();
    let rate = throughput(n, 64, || async {
        echo.echo_bytes(data.to_vec()).await.expect("echo");
    })
    .await;
    report("lattice echo", rate, before, mark());

    // The same halves one call at a time, each paired with raw calls.
    let raw = || async {
        client
            .request("bench.raw", data.clone())
            .await
            .expect("raw");
    };
    let with_headers = || async {
        let request = async_nats::Request::new()
            .payload(data.clone())
            .headers(two.clone());
        client
            .send_request("bench.hdr", request)
            .await
            .expect("reply");
    };
    let lattice_client = || async {
        stand_in.echo_bytes(data.to_vec()).await.expect("stand-in");
    };
    let lattice_call = || async {
        echo.echo_bytes(data.to_vec()).await.expect("echo");
    };
    let n = scale(3000);
    let mut median =
        |what: &str, (raw, ours, _): ((Duration, Duration), (Duration, Duration), Vec<f64>)| {
            table.row(
                format!("sequential median, 64 B: {what}"),
                us(raw.0),
                us(ours.0),
                format!(
                    "{:+.1} us",
                    (ours.0.as_secs_f64() - raw.0.as_secs_f64()) * 1e6
                ),
            );
        };
    median(
        "raw, 2 headers",
        sequential_pair(n, raw, with_headers).await,
    );
    let queued = || async {
        client
            .request("bench.queue", data.clone())
            .await
            .expect("reply");
    };
    median("raw, queue group", sequential_pair(n, raw, queued).await);
    // What NATS alone makes of a lattice call's subject, queue group and
    // prefixed payload: the stand-in answers it without a host.
    let stand_in_raw = || async {
        client
            .request("lattice.bench.rpc.raw.echo.echo_bytes", prefixed.clone())
            .await
            .expect("reply");
    };
    median(
        "raw client, call prefix, raw stand-in",
        sequential_pair(n, raw, stand_in_raw).await,
    );
    median(
        "lattice client, raw responder",
        sequential_pair(n, raw, lattice_client).await,
    );
    median(
        "raw client, call prefix, lattice host",
        sequential_pair(n, raw, lattice_host).await,
    );
    median("lattice echo", sequential_pair(n, raw, lattice_call).await);
}

/// The echo actor's `lattice_dispatch`, called straight through wasmtime
/// (imports linked as traps, a pool of 8) with a request for
/// `echo.echo_bytes` written into its memory first, as the host does.
struct RawDispatch {
    store: wasmtime::Store<()>,
    memory: wasmtime::Memory,
    dispatch: wasmtime::TypedFunc<(u32, u32, u32, u32, u64), u64>,
    input: Vec<u8>,
    params: (u32, u32, u32, u32, u64),
}

impl RawDispatch {
    async fn new(module: &std::path::Path, args: &[u8]) -> RawDispatch {
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

    fn write(&mut self) {
        self.memory
            .write(&mut self.store, self.params.0 as usize, &self.input)
            .expect("writes");
    }

    /// Synchronously, on the thread's stack.
    fn call(&mut self) {
        self.write();
        let packed = self.dispatch.call(&mut self.store, self.params);
        std::hint::black_box(packed.expect("dispatches"));
    }

    /// On a fiber.
    async fn call_on_fiber(&mut self) {
        self.write();
        let packed = self.dispatch.call_async(&mut self.store, self.params).await;
        std::hint::black_box(packed.expect("dispatches"));
    }
}
