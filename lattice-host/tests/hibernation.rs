//! Hibernation of idle instances (`HostOptions::hibernate_after`): an
//! instance gives its memory's pages back and gets them back at its next
//! call with every byte of its state, inline or on fibers, and calls that
//! race the sweeper see one state, never a fresh instance's.

#![cfg(target_os = "linux")]

mod support;

use std::time::Duration;

use lattice::codec;
use lattice_host::{ActorLimits, Call, Host};
use serde::Serialize;
use serde::de::DeserializeOwned;

#[derive(Serialize)]
struct NoArgs {}

#[derive(Serialize)]
struct Data {
    #[serde(with = "serde_bytes")]
    data: Vec<u8>,
}

/// A host whose instances hibernate once idle for `after`.
fn host(after: Duration) -> Host {
    support::init_tracing();
    Host::new(support::options().hibernate_after(Some(after))).expect("a host")
}

async fn call<A: Serialize, R: DeserializeOwned>(
    host: &Host,
    actor: &str,
    contract: &str,
    method: &str,
    args: &A,
) -> R {
    let payload = codec::encode(args).unwrap();
    let reply = host
        .invoke(Call::new(actor, contract, method, &payload))
        .await
        .unwrap_or_else(|e| panic!("{actor}.{method}: {e}"));
    codec::decode(&reply).unwrap()
}

/// `hostile.count`: the calls this instance served.
async fn count(host: &Host) -> u64 {
    call(host, "hostile", "hostile", "count", &NoArgs {}).await
}

/// `idle.sleep` for a millisecond, on a fiber.
async fn sleep_1ms(host: &Host) {
    let slept: u64 = call(host, "idle", "idle", "sleep", &serde_json::json!({"ms": 1})).await;
    assert_eq!(slept, 1);
}

/// Waits until `n` instances of `actor` hibernate (at most 10 s).
async fn until_hibernating(host: &Host, actor: &str, n: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while host.hibernating_instances(actor) != Some(n) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{actor}: {:?} hibernating, not {n}",
            host.hibernating_instances(actor)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Bytes that compress badly: an xorshift stream.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn fnv1a(chunks: &[Vec<u8>]) -> u64 {
    chunks
        .iter()
        .flatten()
        .fold(0xcbf2_9ce4_8422_2325, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
}

#[tokio::test]
async fn a_hibernating_instance_wakes_with_its_state() {
    let host = host(Duration::from_millis(50));
    let one = ActorLimits::new().max_instances(1);
    support::start(&host, "hostile", "lattice-test-hostile", one.clone()).await;
    // An actor whose calls run on fibers (its `sleep` waits on the host).
    support::start(&host, "idle", "lattice-test-idle", one).await;

    // Noise over many pages of the heap, and pages of zeros and of ones.
    let chunks = vec![
        noise(1, 300 << 10),
        vec![0; 64 << 10],
        noise(2, 5_000),
        vec![1; 200 << 10],
    ];
    for chunk in &chunks {
        let _: u64 = call(
            &host,
            "hostile",
            "hostile",
            "stash",
            &Data {
                data: chunk.clone(),
            },
        )
        .await;
    }
    assert_eq!(count(&host).await, 1);
    sleep_1ms(&host).await;
    // Either instance may have slept and woken already (the stash calls can
    // outlast the 50 ms): count the wakes from here.
    let woken = host.stats().wakes;

    until_hibernating(&host, "hostile", 1).await;
    until_hibernating(&host, "idle", 1).await;
    let inventory = host.inventory();
    assert!(
        inventory
            .actors
            .iter()
            .all(|a| a.hibernating_instances == 1 && a.idle_instances == 1),
        "{inventory:?}"
    );
    let stats = host.stats();
    assert!(stats.hibernations >= 2, "{stats:?}");
    assert_eq!(stats.wakes, woken, "nothing woke them");

    // Every byte is back, and the instance goes on from where it was.
    let digest: u64 = call(&host, "hostile", "hostile", "digest", &NoArgs {}).await;
    assert_eq!(digest, fnv1a(&chunks));
    assert_eq!(count(&host).await, 2, "the same instance, not a fresh one");
    sleep_1ms(&host).await;
    assert!(host.stats().wakes >= woken + 2, "{:?}", host.stats());

    // And again: a woken instance hibernates and wakes as often as it idles.
    until_hibernating(&host, "hostile", 1).await;
    let digest: u64 = call(&host, "hostile", "hostile", "digest", &NoArgs {}).await;
    assert_eq!(digest, fnv1a(&chunks));
}

#[tokio::test]
async fn calls_racing_the_sweeper_see_one_state() {
    // Instances idle for a millisecond hibernate, the sweeper looks every
    // 10 ms: calls a few milliseconds apart often find their instance
    // asleep, or being put to sleep.
    let host = host(Duration::from_millis(1));
    let one = ActorLimits::new().max_instances(1).max_payload(4 << 20);
    support::start(&host, "hostile", "lattice-test-hostile", one).await;
    // 4 MiB of half noise, half zeros: each hibernation compresses it for
    // some milliseconds, while calls arrive.
    for seed in [3, 4] {
        let mut data = noise(seed, 2 << 20);
        for chunk in data.chunks_mut(128) {
            chunk[64..].fill(0);
        }
        let _: u64 = call(&host, "hostile", "hostile", "stash", &Data { data }).await;
    }
    let callers: Vec<_> = (0..4u64)
        .map(|caller| {
            let host = host.clone();
            tokio::spawn(async move {
                let mut seen = Vec::new();
                for i in 0..40u64 {
                    seen.push(count(&host).await);
                    // 0 to 6 ms apart.
                    let pause = (caller * 7 + i * 3) % 7;
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
                seen
            })
        })
        .collect();
    let mut seen = Vec::new();
    for caller in callers {
        seen.extend(caller.await.unwrap());
    }
    // One instance, one count: each call saw the state the one before it
    // left, whether it found the instance awake or woke it.
    seen.sort_unstable();
    assert_eq!(seen, (1..=160).collect::<Vec<u64>>());
    let stats = host.stats();
    assert!(stats.hibernations > 0 && stats.wakes > 0, "{stats:?}");
}

#[tokio::test]
async fn an_instance_out_while_its_limit_falls_is_dropped_when_it_comes_back() {
    // Two instances busy (as with a call, or the sweeper), the limit
    // lowered to one: one of them goes back to the idle list, the other is
    // dropped.
    let host = host(Duration::from_secs(30));
    let two = ActorLimits::new().max_instances(2);
    support::start(&host, "hostile", "lattice-test-hostile", two).await;
    let sleeping: Vec<_> = (0..2)
        .map(|_| {
            let host = host.clone();
            tokio::spawn(async move {
                let _: u64 = call(
                    &host,
                    "hostile",
                    "hostile",
                    "sleep",
                    &serde_json::json!({"ms": 300}),
                )
                .await;
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(host.idle_instances("hostile"), Some(0), "both busy");
    assert_eq!(host.scale_actor("hostile", 1).await.unwrap(), 2);
    for call in sleeping {
        call.await.unwrap();
    }
    assert_eq!(host.idle_instances("hostile"), Some(1));
}
