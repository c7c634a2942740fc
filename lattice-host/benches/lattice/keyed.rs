//! Keyed actors, one host on a nats-server with JetStream: a keyed call that
//! changes nothing (`tally.get` of a key) against an unkeyed lattice call
//! (`echo.echo`, as trivial), sequential medians interleaved; a keyed call
//! that saves (`tally.add`) against an unkeyed call plus one raw JetStream
//! KV put round trip, measured in the same run; and throughput at 64 in
//! flight of one key (turn-based: one call at a time) and of 1,000 keys,
//! against raw KV puts at 64 in flight; and 100,000 keys activated on one
//! host, against the density budget.

use std::path::Path;

use bytes::Bytes;
use example_echo_contract::EchoClient;
use lattice::RawCall;
use lattice_host::ActorLimits;

use crate::measure::{
    BLOCKS, Table, bench_host, rss_bytes, scale, sequential_pair, spread, throughput, us,
};
use crate::support::nats::{self, NatsServer};

#[derive(serde::Serialize)]
struct By {
    by: u64,
}

pub(crate) async fn keyed(echo_module: &Path, table: &mut Table) {
    let server = NatsServer::jetstream();
    let url = server.url();
    let host = bench_host("keyed", "k", 256);
    host.start_actor_file("echo", echo_module, ActorLimits::new().max_instances(64))
        .await
        .expect("echo");
    host.start_actor_file(
        "tally",
        crate::support::wasm("lattice-test-keyed"),
        ActorLimits::new().max_instances(64),
    )
    .await
    .expect("tally");
    host.join(nats::connect(&url).await).await.expect("joins");
    let nats = nats::connect(&url).await;
    let client = lattice::Client::new(nats.clone(), "keyed").expect("client");
    let echo = EchoClient::new(nats.clone(), "keyed", "echo").expect("echo client");
    let add = Bytes::from(lattice::codec::encode(&By { by: 1 }).expect("encodes"));
    let keyed_call = |address: String, method: &'static str, args: Bytes| {
        let client = client.clone();
        async move {
            client
                .request(RawCall::new(&address, "tally", method, args))
                .await
                .expect("a keyed call");
        }
    };
    // The state bucket exists once a key was saved.
    keyed_call("tally/warm".into(), "add", add.clone()).await;
    let bucket = async_nats::jetstream::new(nats.clone())
        .get_key_value("lattice-keyed-state")
        .await
        .expect("the state bucket");

    let n = scale(2_000);
    let unkeyed = || async {
        echo.echo("x".into()).await.expect("echo");
    };
    let get = || keyed_call("tally/warm".into(), "get", Bytes::new());
    let ((plain, _), (unchanged, _), blocks) = sequential_pair(n, unkeyed, get).await;
    table.row(
        "keyed call, no change (target <= 1.3x)",
        us(plain),
        us(unchanged),
        format!("{:.2}x", unchanged.as_secs_f64() / plain.as_secs_f64()),
    );
    spread(
        &format!("keyed less unkeyed, in {BLOCKS} blocks"),
        &blocks,
        |d| format!("{d:+.1} us"),
    );

    // A raw KV put round trip, interleaved with unkeyed calls; then the
    // keyed add, interleaved with unkeyed calls.
    let put = || {
        let bucket = bucket.clone();
        async move {
            bucket
                .put("bench.raw", Bytes::from_static(b"\x81\xa5total\x01"))
                .await
                .expect("a KV put");
        }
    };
    let ((_, _), (raw_put, _), _) = sequential_pair(n, unkeyed, put).await;
    let save = || keyed_call("tally/warm".into(), "add", add.clone());
    let ((plain2, _), (saved, _), blocks) = sequential_pair(n, unkeyed, save).await;
    let budget = plain2 + raw_put;
    table.row(
        "keyed call that saves (target <= (call + KV put) x 1.2)",
        format!("{} + {}", us(plain2), us(raw_put)),
        us(saved),
        format!("{:.2}x", saved.as_secs_f64() / budget.as_secs_f64()),
    );
    spread(
        &format!("keyed add less unkeyed, in {BLOCKS} blocks"),
        &blocks,
        |d| format!("{d:+.1} us"),
    );

    // Throughput at 64 in flight.
    let calls = scale(5_000);
    let raw_puts = throughput(calls, 64, || {
        let bucket = bucket.clone();
        async move {
            let key = format!("bench.k{}", fastrand::u32(0..1000));
            bucket
                .put(key, Bytes::from_static(b"\x01"))
                .await
                .expect("a KV put");
        }
    })
    .await;
    let one_key = throughput(calls, 64, || {
        keyed_call("tally/one".into(), "add", add.clone())
    })
    .await;
    let many_keys = throughput(calls, 64, || {
        keyed_call(
            format!("tally/k{}", fastrand::u32(0..1000)),
            "add",
            add.clone(),
        )
    })
    .await;
    let rate = |r: f64| format!("{:.1}k/s", r / 1000.0);
    table.row(
        "adds to one key, 64 in flight (turns)",
        format!("raw KV puts {}", rate(raw_puts)),
        rate(one_key),
        format!("{:.2}x", one_key / raw_puts),
    );
    table.row(
        "adds to 1,000 keys, 64 in flight",
        format!("raw KV puts {}", rate(raw_puts)),
        rate(many_keys),
        format!("{:.2}x", many_keys / raw_puts),
    );

    // 100,000 keys activated on one host, each once (a load that finds
    // nothing, then a save), 64 in flight: the host's memory after, against
    // the density budget of idle instances (10,000 in 256 MiB). A host
    // keeps the activations no call holds only up to a bound, so memory
    // stays flat as keys grow.
    let keys = scale(100_000);
    let (rss_before, _) = rss_bytes();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let rate = throughput(keys, 64, || {
        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        keyed_call(format!("tally/d{i}"), "add", add.clone())
    })
    .await;
    let (rss_after, _) = rss_bytes();
    let held: usize = host.inventory().actors.iter().map(|a| a.activations).sum();
    let grown = rss_after.saturating_sub(rss_before);
    let per_key = grown as f64 / keys as f64;
    let budget = 256.0 * 1024.0 * 1024.0 / 10_000.0;
    table.row(
        format!("{keys} keys activated on one host, 64 in flight"),
        format!("budget {:.1} KiB/key", budget / 1024.0),
        format!(
            "{:.1}k/s, +{:.0} MiB ({:.0} B/key), {held} held",
            rate / 1000.0,
            grown as f64 / 1048576.0,
            per_key
        ),
        format!("{:.3}x", per_key / budget),
    );
    host.shutdown().await;
}
