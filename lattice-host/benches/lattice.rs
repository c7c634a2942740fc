//! The lattice against the limits it stands on, in one run on one machine:
//! raw async-nats request/reply vs lattice calls to the echo actor (latency,
//! throughput, payload sizes), actor-to-actor calls in process and across
//! hosts vs a NATS round trip, and host RSS with many idle instances.
//! Prints a table with ratios; noisy machines: compare within the run.
//!
//! `cargo bench -p lattice-host --bench lattice` (with `RUST_BACKTRACE`
//! unset). `LATTICE_BENCH_QUICK=1` runs a tenth of the calls.

#[path = "../tests/support/mod.rs"]
#[allow(unreachable_pub)]
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use example_counter_contract::{CounterAddArgs, CounterClient};
use example_echo_contract::EchoClient;
use example_relay_contract::RelayAddToArgs;
use futures_util::StreamExt;
use lattice_host::{ActorLimits, Call, Host, HostOptions};
use support::nats::{self, NatsServer};

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

async fn sequential<F, Fut>(calls: usize, f: F) -> (Duration, Duration)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for _ in 0..calls / 10 {
        f().await;
    }
    let mut samples = Vec::with_capacity(calls);
    for _ in 0..calls {
        let start = Instant::now();
        f().await;
        samples.push(start.elapsed());
    }
    percentiles(samples)
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn bench_host(lattice: &str, id: &str, pool_instances: u32) -> Host {
    Host::new(
        HostOptions::new()
            .lattice(lattice)
            .host_id(id)
            .pool_instances(pool_instances)
            .module_cache(Some(support::shared_cache())),
    )
    .expect("a host")
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(run());
}

async fn run() {
    if std::env::var_os("RUST_BACKTRACE").is_some() {
        eprintln!("warning: RUST_BACKTRACE is set; errors on hot paths capture backtraces");
    }
    let echo_module = support::wasm("example-echo-actor");
    let counter_module = support::wasm("example-counter-actor");
    let relay_module = support::wasm("example-relay-actor");
    let hostile_module = support::wasm("lattice-test-hostile");
    let server = NatsServer::single();
    let url = server.url();
    let mut table = Table(Vec::new());
    println!(
        "{:<44} {:>16} {:>16} {:>10}",
        "measure", "baseline", "lattice", "ratio"
    );

    // --- Transport: raw request/reply vs a lattice call, same server.
    let responder = nats::connect(&url).await;
    let mut sub = responder.subscribe("bench.raw").await.expect("subscribes");
    responder.flush().await.expect("flush");
    tokio::spawn(async move {
        while let Some(message) = sub.next().await {
            if let Some(reply) = message.reply {
                let _ = responder.publish(reply, message.payload).await;
            }
        }
    });
    let host = bench_host("bench", "a", 256);
    host.start_actor_file("echo", &echo_module, ActorLimits::new().max_instances(64))
        .await
        .expect("echo");
    host.join(nats::connect(&url).await).await.expect("joins");
    let client = nats::connect(&url).await;
    let echo = EchoClient::new(client.clone(), "bench", "echo").expect("client");

    for size in [64usize, 4096, 65536] {
        let data = vec![7u8; size];
        let raw = || {
            let client = client.clone();
            let data = data.clone();
            async move {
                client
                    .request("bench.raw", data.into())
                    .await
                    .expect("raw reply");
            }
        };
        let ours = || {
            let echo = echo.clone();
            let data = data.clone();
            async move {
                echo.echo_bytes(data).await.expect("echo reply");
            }
        };
        let n = scale(if size > 4096 { 1000 } else { 3000 });
        let (raw_median, raw_p99) = sequential(n, raw).await;
        let (our_median, our_p99) = sequential(n, ours).await;
        table.row(
            format!("sequential median, {size} B"),
            us(raw_median),
            us(our_median),
            format!(
                "+{:.1} us",
                (our_median.as_secs_f64() - raw_median.as_secs_f64()) * 1e6
            ),
        );
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
            let n = scale(if size > 4096 { 3000 } else { 20_000 });
            let raw_rate = throughput(n, inflight, raw).await;
            let our_rate = throughput(n, inflight, ours).await;
            table.row(
                format!("throughput, {inflight} in flight, {size} B"),
                format!("{raw_rate:.0}/s"),
                format!("{our_rate:.0}/s"),
                format!("{:.2}x", our_rate / raw_rate),
            );
        }
    }

    // --- Actor to actor: relay -> counter, in process and across hosts,
    // measured at the host (Host::invoke) so that no client hop is counted;
    // the cost of the inner call is relay's time minus counter's own.
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
    let counter_args = lattice::codec::encode(&CounterAddArgs { by: 1 }).expect("encodes");
    let n = scale(20_000);
    let (direct, _) = sequential(n, || async {
        a2a.invoke(Call::new("counter", "counter", "add", &counter_args))
            .await
            .expect("counter");
    })
    .await;
    let (via_relay, _) = sequential(n, || async {
        a2a.invoke(Call::new("relay", "relay", "add_to", &relay_args))
            .await
            .expect("relay");
    })
    .await;
    let (raw_rtt, _) = sequential(scale(3000), || {
        let client = client.clone();
        async move {
            client
                .request("bench.raw", vec![0u8; 16].into())
                .await
                .expect("raw");
        }
    })
    .await;
    let same_host = via_relay.saturating_sub(direct);
    table.row(
        "actor to actor, same host (median)",
        us(raw_rtt),
        us(same_host),
        format!(
            "{:.0}x under",
            raw_rtt.as_secs_f64() / same_host.as_secs_f64().max(1e-9)
        ),
    );
    // Across hosts: relay on `one`, counter only on `two`.
    a2a.stop_actor("counter").await.expect("stops");
    a2a.join(nats::connect(&url).await).await.expect("joins");
    let two = bench_host("a2a", "two", 64);
    two.start_actor_file("counter", &counter_module, ActorLimits::new())
        .await
        .expect("counter");
    two.join(nats::connect(&url).await).await.expect("joins");
    let counter = CounterClient::new(client.clone(), "a2a", "counter").expect("client");
    support::eventually(Duration::from_secs(5), || counter.get())
        .await
        .expect("counter reachable");
    let (cross, _) = sequential(scale(3000), || async {
        a2a.invoke(Call::new("relay", "relay", "add_to", &relay_args))
            .await
            .expect("relay");
    })
    .await;
    table.row(
        "actor to actor, other host (median)",
        us(raw_rtt),
        us(cross.saturating_sub(direct)),
        format!(
            "{:.2}x",
            cross.saturating_sub(direct).as_secs_f64() / raw_rtt.as_secs_f64()
        ),
    );

    // --- Density: RSS of idle instances, each having served one call: that
    // many calls at once (each sleeps 3 s), so that each gets an instance.
    for count in [1_000u32, 10_000] {
        let dense = bench_host("dense", "d", count + 16);
        dense
            .start_actor_file(
                "idle",
                &hostile_module,
                ActorLimits::new().max_instances(count),
            )
            .await
            .expect("starts");
        let payload = lattice::codec::encode(&BTreeMap::from([("ms", 3000u64)])).expect("encodes");
        let before = rss_bytes();
        let calls: Vec<_> = (0..count)
            .map(|_| {
                let dense = dense.clone();
                let payload = payload.clone();
                tokio::spawn(async move {
                    dense
                        .invoke(Call::new("idle", "hostile", "sleep", &payload))
                        .await
                        .expect("sleeps")
                })
            })
            .collect();
        for call in calls {
            call.await.expect("joins");
        }
        let idle = dense.idle_instances("idle").unwrap_or(0);
        let after = rss_bytes();
        let grown = after.saturating_sub(before);
        table.row(
            format!("RSS, {idle} idle instances"),
            format!("{} MiB total", after >> 20),
            format!("{} MiB added", grown >> 20),
            format!(
                "{:.1} KiB each",
                grown as f64 / 1024.0 / f64::from(idle.max(1) as u32)
            ),
        );
        dense.shutdown().await;
    }
    host.shutdown().await;
    a2a.shutdown().await;
    two.shutdown().await;
    println!(
        "\n{} measures; machine: {} cores, {}",
        table.0.len(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(
                |c| c.lines().find(|l| l.starts_with("model name")).map(|l| l
                    .split(':')
                    .nth(1)
                    .unwrap_or("")
                    .trim()
                    .to_owned())
            )
            .unwrap_or_default()
    );
}
