//! Keyed actors: one state per key, loaded before each call and saved
//! after each call that can change it, fenced by revision. In process, and
//! on a lattice with a JetStream server, where states are durable.

mod support;

use std::sync::Arc;

use futures_util::StreamExt;

use lattice::{ErrorKind, RawCall};
use lattice_host::{ActorLimits, Call, Host};
use serde::Serialize;
use support::nats::{self, NatsServer};

#[derive(Serialize)]
struct By {
    by: u64,
}

fn by(n: u64) -> Vec<u8> {
    lattice::codec::encode(&By { by: n }).unwrap()
}

fn total(reply: &[u8]) -> u64 {
    lattice::codec::decode(reply).unwrap()
}

async fn tally_host() -> Host {
    let host = support::host();
    support::start(&host, "tally", "lattice-test-keyed", ActorLimits::new()).await;
    host
}

async fn add(host: &Host, address: &str, n: u64) -> Result<u64, lattice::Error> {
    let args = by(n);
    host.invoke(Call::new(address, "tally", "add", &args))
        .await
        .map(|r| total(&r))
}

async fn get(host: &Host, address: &str) -> u64 {
    total(
        &host
            .invoke(Call::new(address, "tally", "get", &[]))
            .await
            .unwrap(),
    )
}

#[tokio::test]
async fn each_key_has_its_own_state_in_process() {
    let host = tally_host().await;
    assert_eq!(add(&host, "tally/alice", 5).await.unwrap(), 5);
    assert_eq!(add(&host, "tally/alice", 2).await.unwrap(), 7);
    assert_eq!(add(&host, "tally/bob", 1).await.unwrap(), 1);
    assert_eq!(get(&host, "tally/alice").await, 7);
    // The key as a builder, the same activation.
    let args = by(1);
    let reply = host
        .invoke(Call::new("tally", "tally", "add", &args).key("alice"))
        .await
        .unwrap();
    assert_eq!(total(&reply), 8);
    assert_eq!(
        get(&host, "tally/carol").await,
        0,
        "a new key starts from Default"
    );
}

#[tokio::test]
async fn idle_activations_go_away_and_come_back_with_their_state() {
    // Keys idle for 50 ms go, as idle instances hibernate.
    let host =
        Host::new(support::options().hibernate_after(Some(std::time::Duration::from_millis(50))))
            .unwrap();
    support::start(&host, "tally", "lattice-test-keyed", ActorLimits::new()).await;
    for key in ["a", "b", "c"] {
        add(&host, &format!("tally/{key}"), 2).await.unwrap();
    }
    let activations = || host.inventory().actors[0].activations;
    assert_eq!(activations(), 3);
    let start = std::time::Instant::now();
    while activations() > 0 {
        assert!(start.elapsed().as_secs() < 10, "they never went");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // The next call makes the activation again, from the saved state.
    assert_eq!(add(&host, "tally/b", 1).await.unwrap(), 3);
    assert_eq!(activations(), 1);
}

#[tokio::test]
async fn calls_to_one_key_take_turns() {
    let host = Arc::new(tally_host().await);
    // 8 instances, 400 concurrent adds to one key and 400 over 20 keys.
    let calls: Vec<_> = (0..800)
        .map(|i| {
            let host = host.clone();
            tokio::spawn(async move {
                let address = if i % 2 == 0 {
                    "tally/hot".to_owned()
                } else {
                    format!("tally/k{}", i % 20)
                };
                add(&host, &address, 1).await.unwrap();
            })
        })
        .collect();
    for call in calls {
        call.await.unwrap();
    }
    assert_eq!(get(&host, "tally/hot").await, 400);
    let spread: u64 = [1, 3, 5, 7, 9, 11, 13, 15, 17, 19]
        .iter()
        .map(|k| format!("tally/k{k}"))
        .map(|a| {
            let host = host.clone();
            async move { get(&host, &a).await }
        })
        .collect::<futures_util::future::JoinAll<_>>()
        .await
        .into_iter()
        .sum();
    assert_eq!(spread, 400);
}

#[tokio::test]
async fn a_call_that_fails_saves_nothing() {
    let host = tally_host().await;
    add(&host, "tally/alice", 10).await.unwrap();
    let args = by(5);
    let err = host
        .invoke(Call::new("tally/alice", "tally", "add_then_panic", &args))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ActorPanicked, "{err}");
    assert_eq!(
        get(&host, "tally/alice").await,
        10,
        "the panicked add was not saved"
    );
}

#[tokio::test]
async fn keys_are_checked() {
    let host = tally_host().await;
    support::start(&host, "echo", "example-echo-actor", ActorLimits::new()).await;
    let err = add(&host, "tally", 1).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode);
    assert!(err.message().contains("`tally/KEY`"), "{err}");
    let payload =
        lattice::codec::encode(&std::collections::BTreeMap::from([("text", "x")])).unwrap();
    let err = host
        .invoke(Call::new("echo/alice", "echo", "echo", &payload))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode);
    assert!(err.message().contains("not a keyed actor"), "{err}");
    for (key, says) in [
        ("", "empty"),
        ("a b", "' '"),
        (&"k".repeat(300) as &str, "300 bytes"),
    ] {
        let err = add(&host, &format!("tally/{key}"), 1).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidName, "{key:?}: {err}");
        assert!(err.message().contains(says), "{says} in {err}");
    }
}

/// A lattice of `hosts` hosts running tally, on a JetStream server, their
/// ids from `first` on.
async fn lattice_of(server: &NatsServer, first: usize, hosts: usize) -> Vec<Host> {
    let mut all = Vec::new();
    for i in first..first + hosts {
        let host = Host::new(support::lattice_options("keyed", &format!("h{i}"))).unwrap();
        support::start(&host, "tally", "lattice-test-keyed", ActorLimits::new()).await;
        host.join(nats::connect(&server.url()).await).await.unwrap();
        all.push(host);
    }
    all
}

async fn call_add(client: &lattice::Client, address: &str) -> Result<u64, lattice::Error> {
    let reply = client
        .request(RawCall::new(address, "tally", "add", by(1).into()))
        .await?;
    Ok(total(&reply))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn states_are_durable_on_the_lattice() {
    let server = NatsServer::jetstream();
    let hosts = lattice_of(&server, 0, 1).await;
    let client = lattice::Client::new(nats::connect(&server.url()).await, "keyed").unwrap();
    let calls: Vec<_> = (0..500)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { call_add(&client, "tally/alice").await.unwrap() })
        })
        .collect();
    let mut totals = Vec::new();
    for call in calls {
        totals.push(call.await.unwrap());
    }
    totals.sort();
    assert_eq!(
        totals,
        (1..=500).collect::<Vec<u64>>(),
        "one at a time, none lost"
    );
    // Another host, started after this one stops, finds the state.
    for host in hosts {
        host.shutdown().await;
    }
    let _hosts = lattice_of(&server, 1, 1).await;
    assert_eq!(call_add(&client, "tally/alice").await.unwrap(), 501);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_activations_of_one_key_never_lose_a_saved_add() {
    // Right after they join, before heartbeats tell the two hosts of each
    // other, each runs the key's calls itself: each save is fenced by the
    // revision its activation loaded, so of two racing adds one may fail
    // with `conflict`, and every add that got a reply is in the state.
    let server = NatsServer::jetstream();
    let _hosts = lattice_of(&server, 0, 2).await;
    let client = lattice::Client::new(nats::connect(&server.url()).await, "keyed").unwrap();
    let calls: Vec<_> = (0..400)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { call_add(&client, "tally/shared").await })
        })
        .collect();
    let (mut ok, mut conflicts) = (0u64, 0u64);
    for call in calls {
        match call.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) if e.kind() == ErrorKind::Conflict => conflicts += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(ok + conflicts, 400);
    // The saved state itself: a read through a host that does not own the
    // key yet may answer from what it last loaded.
    assert_eq!(
        saved_total(&server, "tally.shared").await,
        ok,
        "every add that got a reply, and no other"
    );
}

/// The total saved for a key of tally, read from the state bucket.
async fn saved_total(server: &NatsServer, entry: &str) -> u64 {
    #[derive(serde::Deserialize)]
    struct State {
        total: u64,
    }
    let bucket = async_nats::jetstream::new(nats::connect(&server.url()).await)
        .get_key_value("lattice-keyed-state")
        .await
        .unwrap();
    let bytes = bucket.get(entry).await.unwrap().expect("a saved state");
    lattice::codec::decode::<State>(&bytes).unwrap().total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_that_no_longer_decodes_is_kept_and_named() {
    let server = NatsServer::jetstream();
    let _hosts = lattice_of(&server, 0, 1).await;
    let nats = nats::connect(&server.url()).await;
    let client = lattice::Client::new(nats.clone(), "keyed").unwrap();
    call_add(&client, "tally/alice").await.unwrap();
    // What an older module saved, in a shape this one cannot read.
    let bucket = async_nats::jetstream::new(nats)
        .get_key_value("lattice-keyed-state")
        .await
        .unwrap();
    let old = lattice::codec::encode(&("a tuple", 7)).unwrap();
    bucket.put("tally.alice", old.clone().into()).await.unwrap();
    // The activation held revision 1: its save is refused, nothing written.
    let err = call_add(&client, "tally/alice").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    // The next call loads the newer state, which does not decode.
    let err = call_add(&client, "tally/alice").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode, "{err}");
    assert!(err.message().contains("`tally/alice`"), "{err}");
    assert!(err.message().contains("the saved state is kept"), "{err}");
    let kept = bucket.get("tally.alice").await.unwrap().unwrap();
    assert_eq!(
        kept.as_ref(),
        old.as_slice(),
        "never overwritten by a default"
    );
    // Other keys are unaffected.
    assert_eq!(call_add(&client, "tally/bob").await.unwrap(), 1);
}

/// Waits until every host counts all `count` hosts live (their
/// heartbeats, as keyed calls are routed by).
async fn converged(client: &lattice::Client, count: usize) {
    let control = lattice_host::control::ControlClient::new(client.nats().clone(), "keyed")
        .unwrap()
        .wait(std::time::Duration::from_millis(300));
    let start = std::time::Instant::now();
    loop {
        let reports = control.deployments().await.unwrap();
        if reports.len() == count && reports.iter().all(|r| r.live_hosts.len() == count) {
            // A host that hears a new host beats at once, so that the new
            // one learns what it runs: a moment for that beat to arrive.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            return;
        }
        assert!(start.elapsed().as_secs() < 20, "not converged: {reports:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Clients calling the lattice at once in the load tests.
const CLIENTS: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_key_has_one_owner_across_hosts() {
    let server = NatsServer::jetstream();
    let hosts = lattice_of(&server, 0, 3).await;
    let clients: Vec<lattice::Client> = {
        let mut all = Vec::new();
        for _ in 0..CLIENTS {
            all.push(lattice::Client::new(nats::connect(&server.url()).await, "keyed").unwrap());
        }
        all
    };
    converged(&clients[0], 3).await;
    // 10,000 adds to one key and 100 to each of 100 keys, from 8 clients at
    // once, 16 calls in flight each, arriving at all three hosts (the
    // actor's queue group spreads them).
    const HOT: usize = 10_000;
    const KEYS: usize = 100;
    const EACH: usize = 100;
    let total_calls = HOT + KEYS * EACH;
    let calls: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(c, client)| {
            let client = client.clone();
            tokio::spawn(async move {
                let addresses = (c..total_calls).step_by(CLIENTS).map(|i| {
                    if i < HOT {
                        "tally/hot".to_owned()
                    } else {
                        format!("tally/k{}", i % KEYS)
                    }
                });
                futures_util::stream::iter(addresses)
                    .map(|address| {
                        let client = client.clone();
                        async move { call_add(&client, &address).await }
                    })
                    .buffer_unordered(16)
                    .filter_map(|r| async move { r.err() })
                    .collect::<Vec<_>>()
                    .await
            })
        })
        .collect();
    let mut failed = Vec::new();
    for call in calls {
        failed.extend(call.await.unwrap());
    }
    assert!(
        failed.is_empty(),
        "{} failed: {:?}",
        failed.len(),
        &failed[..failed.len().min(3)]
    );
    let get = |address: String| {
        let client = clients[0].clone();
        async move {
            total(
                &client
                    .request(RawCall::new(&address, "tally", "get", bytes::Bytes::new()))
                    .await
                    .unwrap(),
            )
        }
    };
    assert_eq!(get("tally/hot".into()).await, HOT as u64);
    for k in 0..KEYS {
        assert_eq!(get(format!("tally/k{k}")).await, EACH as u64, "key k{k}");
    }
    // Every host served some of the calls, and forwarded what it did not own.
    for host in &hosts {
        assert!(host.stats().calls_from_nats > 0, "{}", host.id());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_comes_back_with_every_saved_add_when_its_owner_is_killed() {
    let server = NatsServer::jetstream();
    let (mut hosts, client, owner) = tally_processes(&server, "tally/alice").await;

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let started = std::time::Instant::now();
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let (client, stop) = (client.clone(), stop.clone());
            tokio::spawn(async move {
                // (when, whether it got a reply)
                let mut outcomes = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let call = RawCall {
                        timeout: Some(std::time::Duration::from_secs(3)),
                        ..RawCall::new("tally/alice", "tally", "add", by(1).into())
                    };
                    let ok = client.request(call).await.is_ok();
                    outcomes.push((started.elapsed(), ok));
                    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                }
                outcomes
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let killed = started.elapsed();
    hosts.iter_mut().find(|h| h.id == owner).unwrap().kill();
    // A fresh add every 20 ms, each allowed 300 ms, until one is answered:
    // when the key serves again (the adds of the load that were in flight
    // on the dead owner wait out their own deadlines).
    let back = loop {
        let call = RawCall {
            timeout: Some(std::time::Duration::from_millis(300)),
            ..RawCall::new("tally/alice", "tally", "add", by(0).into())
        };
        if client.request(call).await.is_ok() {
            break started.elapsed() - killed;
        }
        assert!(started.elapsed() - killed < std::time::Duration::from_secs(10));
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.extend(task.await.unwrap());
    }
    let replied = outcomes.iter().filter(|(_, ok)| *ok).count() as u64;
    let failed = outcomes.len() as u64 - replied;
    let state = saved_total(&server, "tally.alice").await;
    assert!(
        state >= replied && state <= replied + failed,
        "every add that got a reply is saved: state {state}, {replied} replied, {failed} failed"
    );
    assert!(
        outcomes.iter().any(|(at, ok)| *ok && *at > killed + back),
        "the load went on after the key came back"
    );
    println!(
        "the key served again {back:?} after its owner was killed; {replied} adds saved, {failed} failed"
    );
    assert!(back < std::time::Duration::from_secs(3), "{back:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inventory_shows_keyed_actors_and_their_activations() {
    let server = NatsServer::jetstream();
    let _hosts = lattice_of(&server, 0, 1).await;
    let client = lattice::Client::new(nats::connect(&server.url()).await, "keyed").unwrap();
    for key in ["a", "b", "c"] {
        call_add(&client, &format!("tally/{key}")).await.unwrap();
    }
    let control =
        lattice_host::control::ControlClient::new(client.nats().clone(), "keyed").unwrap();
    let inventory = control.inventory().await.unwrap();
    let tally = inventory[0]
        .actors
        .iter()
        .find(|a| a.name == "tally")
        .unwrap();
    assert!(tally.keyed);
    assert_eq!(tally.activations, 3);
    // The CLI calls a key with JSON, and says what is wrong with a bad one.
    let cli = |args: &[&str]| {
        std::process::Command::new(support::up::LATTICE)
            .args(args)
            .args([
                "--nats",
                &server.url(),
                "--lattice",
                "keyed",
                "--output",
                "json",
            ])
            .env("LATTICE_HOME", std::env::temp_dir())
            .output()
            .unwrap()
    };
    let out = cli(&["call", "tally/a", "add", r#"{"by": 2}"#]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "3");
    let out = cli(&["call", "tally", "get"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("`tally/KEY`"));
    let out = cli(&["call", "tally/a b", "get"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid_name"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_activation_cannot_overwrite_newer_state() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let server = NatsServer::jetstream();
    let (hosts, client, owner) = tally_processes(&server, "tally/alice").await;
    let pid = Pid::from_raw(hosts.iter().find(|h| h.id == owner).unwrap().child.id() as i32);
    let add = |client: lattice::Client| async move {
        let call = RawCall {
            timeout: Some(std::time::Duration::from_secs(5)),
            ..RawCall::new("tally/alice", "tally", "add", by(1).into())
        };
        client.request(call).await
    };
    // The owner holds the key's state at 5.
    for _ in 0..5 {
        add(client.clone()).await.unwrap();
    }
    // Paused, the key moves: another host takes it from the saved state.
    kill(pid, Signal::SIGSTOP).unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    for _ in 0..5 {
        add(client.clone()).await.unwrap();
    }
    assert_eq!(saved_total(&server, "tally.alice").await, 10);
    // Resumed, the old owner still holds 5; when it is the owner again,
    // its save is refused, and it loads the newer state.
    kill(pid, Signal::SIGCONT).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (mut ok, mut conflicts) = (0u64, 0u64);
    for _ in 0..10 {
        match add(client.clone()).await {
            Ok(_) => ok += 1,
            Err(e) if e.kind() == lattice::ErrorKind::Conflict => conflicts += 1,
            Err(e) => panic!("{e}"),
        }
    }
    println!("after the resume: {ok} adds saved, {conflicts} refused as stale");
    assert!(conflicts >= 1, "the stale activation's save was refused");
    assert_eq!(
        saved_total(&server, "tally.alice").await,
        10 + ok,
        "the newer state was never overwritten"
    );
}

/// Three `lattice up` processes running tally (200 ms heartbeats), once
/// they all count each other live: the hosts, a client, and the host that
/// owns `address`.
async fn tally_processes(
    server: &NatsServer,
    address: &str,
) -> (Vec<support::up::HostProcess>, lattice::Client, String) {
    use lattice_host::deploy::placement::{HostView, rank};
    let url = server.url();
    let module = support::wasm("lattice-test-keyed");
    let actor = format!("tally={}", module.display());
    let hosts: Vec<support::up::HostProcess> = (0..3)
        .map(|i| {
            support::up::HostProcess::spawn(
                &url,
                &format!("h{i}"),
                &[
                    "--lattice",
                    "keyed",
                    "--heartbeat",
                    "200ms",
                    "--actor",
                    &actor,
                ],
            )
        })
        .collect();
    let client = lattice::Client::new(nats::connect(&url).await, "keyed").unwrap();
    converged(&client, 3).await;
    let labels = std::collections::BTreeMap::new();
    let views: Vec<HostView<'_>> = hosts
        .iter()
        .map(|h| HostView {
            id: &h.id,
            labels: &labels,
        })
        .collect();
    let owner = rank(address, &views)[0].to_owned();
    (hosts, client, owner)
}

/// The example `counter` actor, as the README's demo runs it: keyed,
/// started on every host, called as `counter/KEY` by typed clients, the
/// relay actor and concurrent callers, each key exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_counter_example_counts_each_key_exactly() {
    use example_counter_contract::{CounterClient, CounterError};
    use example_relay_contract::RelayClient;

    let server = NatsServer::jetstream();
    let mut hosts = Vec::new();
    for i in 0..2 {
        let host = Host::new(support::lattice_options("keyed", &format!("h{i}"))).unwrap();
        host.join(nats::connect(&server.url()).await).await.unwrap();
        support::start(
            &host,
            "counter",
            "example-counter-actor",
            ActorLimits::new(),
        )
        .await;
        hosts.push(host);
    }
    support::start(
        &hosts[0],
        "relay",
        "example-relay-actor",
        ActorLimits::new(),
    )
    .await;
    let nats = nats::connect(&server.url()).await;
    let client = lattice::Client::new(nats.clone(), "keyed").unwrap();
    converged(&client, 2).await;

    let alice = CounterClient::keyed(nats.clone(), "keyed", "counter", "alice").unwrap();
    let adds: Vec<_> = futures_util::stream::iter(0..400)
        .map(|_| {
            let alice = alice.clone();
            async move { alice.add(1).await }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    assert!(adds.iter().all(Result::is_ok), "{adds:?}");
    assert_eq!(alice.get().await.unwrap(), 400);
    // Every state change is saved: the name, the contract's own errors
    // (which change nothing), and a oneway reset.
    alice.rename("visits".into()).await.unwrap().unwrap();
    assert_eq!(
        alice.checked_add(u64::MAX).await.unwrap(),
        Err(CounterError::Overflow)
    );
    assert_eq!(alice.name().await.unwrap(), "visits");
    // From inside wasm: relay calls another key of the counter.
    let relay = RelayClient::new(nats.clone(), "keyed", "relay").unwrap();
    assert_eq!(relay.add_to("counter/bob".into(), 5).await.unwrap(), Ok(5));
    assert_eq!(relay.add_to("counter/bob".into(), 2).await.unwrap(), Ok(7));
    assert_eq!(alice.get().await.unwrap(), 400, "keys do not share state");
    alice.reset().await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while alice.get().await.unwrap() != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the reset never landed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // The whole actor, without a key: a typed error that says how to call it.
    let unkeyed = CounterClient::new(nats.clone(), "keyed", "counter").unwrap();
    let err = unkeyed.get().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode, "{err}");
    assert!(err.message().contains("counter/KEY"), "{err}");
    // Durable: a host that starts later serves alice's saved state.
    for host in hosts.drain(..) {
        host.shutdown().await;
    }
    let later = Host::new(support::lattice_options("keyed", "later")).unwrap();
    later
        .join(nats::connect(&server.url()).await)
        .await
        .unwrap();
    support::start(
        &later,
        "counter",
        "example-counter-actor",
        ActorLimits::new(),
    )
    .await;
    assert_eq!(alice.name().await.unwrap(), "visits");
    let bob = CounterClient::keyed(nats, "keyed", "counter", "bob").unwrap();
    assert_eq!(bob.get().await.unwrap(), 7);
}
