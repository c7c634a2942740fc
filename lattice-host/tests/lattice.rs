//! The lattice over real nats-server processes: typed native clients, load
//! shared across hosts, leaf nodes, actor-to-actor calls across hosts, bad
//! input from raw NATS clients, payload limits, server restarts.

mod support;

use std::time::Duration;

use example_counter_contract::{CounterClient, CounterError};
use example_echo_contract::EchoClient;
use example_relay_contract::RelayClient;
use lattice::prefix::CallPrefix;
use lattice::{ErrorKind, headers};
use lattice_host::{ActorLimits, Host};
use support::nats::{self, NatsServer};

const WAIT: Duration = Duration::from_secs(10);

async fn host_with(url: &str, lattice: &str, id: &str, actors: &[(&str, &str)]) -> Host {
    let host = Host::new(support::lattice_options(lattice, id)).unwrap();
    for (name, package) in actors {
        support::start(&host, name, package, ActorLimits::new().max_instances(2)).await;
    }
    host.join(nats::connect(url).await).await.unwrap();
    host
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typed_client_calls_an_actor_over_nats() {
    support::init_tracing();
    let server = NatsServer::single();
    // ANCHOR: join
    let host = Host::new(support::lattice_options("typed", "h1")).unwrap();
    host.start_actor_file(
        "counter",
        support::wasm("lattice-test-counter"),
        ActorLimits::new().max_instances(1),
    )
    .await
    .unwrap();
    host.join(nats::connect(&server.url()).await).await.unwrap();

    let nats = nats::connect(&server.url()).await;
    let counter = CounterClient::new(nats.clone(), "typed", "counter").unwrap();
    assert_eq!(counter.add(5).await.unwrap(), 5);
    // ANCHOR_END: join
    assert_eq!(counter.add(2).await.unwrap(), 7);
    assert_eq!(counter.get().await.unwrap(), 7);
    assert_eq!(
        counter.checked_add(u64::MAX).await.unwrap(),
        Err(CounterError::Overflow)
    );
    assert_eq!(counter.rename("visits".into()).await.unwrap(), Ok(()));
    assert_eq!(counter.name().await.unwrap(), "visits");
    counter.reset().await.unwrap(); // oneway: a publish
    support::eventually(WAIT, || async {
        match counter.get().await {
            Ok(0) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await
    .unwrap();
    assert!(host.stats().calls_from_nats >= 8);

    // Nobody runs `nobody`: a typed error that says so, fast.
    let missing = CounterClient::new(nats.clone(), "typed", "nobody").unwrap();
    let err = missing.get().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoResponders, "{err}");
    assert!(
        err.message()
            .contains("no actor named `nobody` is running in lattice `typed`"),
        "{err}"
    );

    // Another lattice id reaches nobody either.
    let elsewhere = CounterClient::new(nats.clone(), "other", "counter").unwrap();
    assert_eq!(
        elsewhere.add(1).await.unwrap_err().kind(),
        ErrorKind::NoResponders
    );

    // An echo client against the counter: the contract is not implemented there.
    let wrong = EchoClient::new(nats, "typed", "counter").unwrap();
    let err = wrong.echo("x".into()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnknownContract, "{err}");
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_share_the_load() {
    let server = NatsServer::single();
    let a = host_with(
        &server.url(),
        "shared",
        "a",
        &[("echo", "example-echo-actor")],
    )
    .await;
    let b = host_with(
        &server.url(),
        "shared",
        "b",
        &[("echo", "example-echo-actor")],
    )
    .await;
    let echo = EchoClient::new(nats::connect(&server.url()).await, "shared", "echo").unwrap();
    let mut calls = Vec::new();
    for i in 0..200 {
        let echo = echo.clone();
        calls.push(tokio::spawn(async move { echo.echo(format!("{i}")).await }));
    }
    for (i, call) in calls.into_iter().enumerate() {
        assert_eq!(call.await.unwrap().unwrap(), format!("{i}"));
    }
    let (sa, sb) = (a.stats().calls_from_nats, b.stats().calls_from_nats);
    assert_eq!(sa + sb, 200);
    assert!(sa > 0 && sb > 0, "both hosts served: {sa} and {sb}");

    // Stopping the actor on one host moves its calls to the other.
    a.stop_actor("echo").await.unwrap();
    for i in 0..20 {
        assert_eq!(echo.echo(format!("{i}")).await.unwrap(), format!("{i}"));
    }
    assert_eq!(a.stats().calls_from_nats, sa);
    assert_eq!(b.stats().calls_from_nats, sb + 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saturated_host_answers_overloaded() {
    let server = NatsServer::single();
    let host = Host::new(support::lattice_options("busy", "h").max_inflight(1)).unwrap();
    support::start(&host, "slow", "lattice-test-hostile", ActorLimits::new()).await;
    host.join(nats::connect(&server.url()).await).await.unwrap();
    let client = lattice::Client::new(nats::connect(&server.url()).await, "busy").unwrap();
    let call = |ms: u64| {
        let client = client.clone();
        async move { sleep_call(&client, ms, Duration::from_secs(5)).await }
    };
    let first = tokio::spawn(call(500));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let err = call(1).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Overloaded, "{err}");
    assert!(err.message().contains("host h"), "{err}");
    first.await.unwrap().unwrap();
    // The finished call gave its place back.
    call(1).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_calls_do_not_hold_up_short_ones() {
    let server = NatsServer::single();
    let host = Host::new(support::lattice_options("long", "h")).unwrap();
    support::start(
        &host,
        "slow",
        "lattice-test-hostile",
        ActorLimits::new().max_instances(4),
    )
    .await;
    host.join(nats::connect(&server.url()).await).await.unwrap();
    let client = lattice::Client::new(nats::connect(&server.url()).await, "long").unwrap();
    // A guest that burns CPU until its 1 s deadline, and one that sleeps.
    let spin = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .request(lattice::RawCall {
                    timeout: Some(Duration::from_secs(1)),
                    ..lattice::RawCall::new("slow", "hostile", "spin", bytes::Bytes::new())
                })
                .await
        }
    });
    let sleep = tokio::spawn({
        let client = client.clone();
        async move { sleep_call(&client, 1_000, Duration::from_secs(5)).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    for _ in 0..5 {
        sleep_call(&client, 1, Duration::from_secs(5))
            .await
            .unwrap();
    }
    assert!(
        !spin.is_finished() && !sleep.is_finished(),
        "the short calls were answered only after the long ones"
    );
    let err = spin.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    sleep.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_on_a_leaf_node_calls_an_actor_on_the_hub() {
    let (hub, leaf) = nats::hub_and_leaf();
    let _host = host_with(
        &hub.url(),
        "leafy",
        "hub-host",
        &[("echo", "example-echo-actor")],
    )
    .await;
    let echo = EchoClient::new(nats::connect(&leaf.url()).await, "leafy", "echo").unwrap();
    let reply = support::eventually(WAIT, || echo.echo("across the leaf link".into()))
        .await
        .unwrap();
    assert_eq!(reply, "across the leaf link");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_carries_calls_between_its_nodes() {
    let servers = nats::cluster();
    let _host = host_with(
        &servers[0].url(),
        "clustered",
        "h0",
        &[("echo", "example-echo-actor")],
    )
    .await;
    let echo =
        EchoClient::new(nats::connect(&servers[2].url()).await, "clustered", "echo").unwrap();
    let reply = support::eventually(WAIT, || echo.reverse("route".into()))
        .await
        .unwrap();
    assert_eq!(reply, "etuor");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actors_call_actors_across_hosts_and_in_process() {
    let server = NatsServer::single();
    // relay on A, counter on B: the call crosses NATS.
    let a = host_with(
        &server.url(),
        "a2a",
        "a",
        &[("relay", "example-relay-actor")],
    )
    .await;
    let _b = host_with(
        &server.url(),
        "a2a",
        "b",
        &[("counter", "lattice-test-counter")],
    )
    .await;
    let nats_client = nats::connect(&server.url()).await;
    let relay = RelayClient::new(nats_client.clone(), "a2a", "relay").unwrap();
    assert_eq!(relay.add_to("counter".into(), 4).await.unwrap(), Ok(4));
    assert_eq!(a.stats().guest_calls_over_nats, 1);
    assert_eq!(a.stats().guest_calls_in_process, 0);

    // Both on one host: the call stays in process and behaves the same.
    let c = host_with(
        &server.url(),
        "a2a-local",
        "c",
        &[
            ("relay", "example-relay-actor"),
            ("counter", "lattice-test-counter"),
        ],
    )
    .await;
    let relay = RelayClient::new(nats_client.clone(), "a2a-local", "relay").unwrap();
    assert_eq!(relay.add_to("counter".into(), 4).await.unwrap(), Ok(4));
    assert_eq!(
        relay
            .add_to("nobody".into(), 4)
            .await
            .unwrap()
            .unwrap_err()
            .split(':')
            .next(),
        Some("no responders")
    );
    assert_eq!(c.stats().guest_calls_in_process, 1);
    assert_eq!(
        c.stats().guest_calls_over_nats,
        1,
        "the call to nobody went to the lattice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payload_limits() {
    let server =
        NatsServer::with_config(|port| format!("listen: 127.0.0.1:{port}\nmax_payload: 2MB\n"));
    let _host = host_with(&server.url(), "big", "h", &[("echo", "example-echo-actor")]).await;
    let echo = EchoClient::new(nats::connect(&server.url()).await, "big", "echo").unwrap();
    let mib = vec![0xa5u8; 1 << 20];
    assert_eq!(echo.echo_bytes(mib.clone()).await.unwrap(), mib);
    let err = echo.echo_bytes(vec![0; 3 << 20]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PayloadTooLarge, "{err}");
}

/// A reply larger than the NATS server takes comes back as a typed error,
/// and the actor goes on serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_over_max_payload_is_a_typed_error() {
    let server =
        NatsServer::with_config(|port| format!("listen: 127.0.0.1:{port}\nmax_payload: 64KB\n"));
    let _host = host_with(
        &server.url(),
        "bigreply",
        "h",
        &[("hostile", "lattice-test-hostile")],
    )
    .await;
    let client = lattice::Client::new(nats::connect(&server.url()).await, "bigreply").unwrap();
    let big_reply = |size: u32| {
        let client = client.clone();
        async move {
            let args = lattice::codec::encode(&std::collections::BTreeMap::from([("size", size)]))
                .unwrap();
            client
                .request(lattice::RawCall {
                    timeout: Some(Duration::from_secs(5)),
                    ..lattice::RawCall::new("hostile", "hostile", "big_reply", args.into())
                })
                .await
        }
    };
    let err = big_reply(100_000).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PayloadTooLarge, "{err}");
    assert!(err.message().contains("max_payload of 65536"), "{err}");
    let reply = big_reply(1_000).await.unwrap();
    let data: serde_bytes::ByteBuf = lattice::codec::decode(&reply).unwrap();
    assert_eq!(data.len(), 1_000);
}

/// The echo contract as another build might have it: same name, another
/// signature, so another fingerprint.
mod other_build {
    #![allow(unreachable_pub)]

    #[lattice::contract(version = 1)]
    pub trait Echo {
        fn echo(&self, text: String, times: u32) -> String;
    }
}

/// A generated client built against another version of a contract is
/// refused by the host with a typed error, through the call prefix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_of_another_contract_version_is_refused() {
    let server = NatsServer::single();
    let _host = host_with(
        &server.url(),
        "versions",
        "h",
        &[("echo", "example-echo-actor")],
    )
    .await;
    let nats = nats::connect(&server.url()).await;
    let stale = other_build::EchoClient::new(nats.clone(), "versions", "echo").unwrap();
    let err = stale.echo("hi".into(), 2).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ContractMismatch, "{err}");
    // The current client of the same actor is served.
    let echo = EchoClient::new(nats, "versions", "echo").unwrap();
    assert_eq!(echo.echo("hi".into()).await.unwrap(), "hi");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_from_raw_nats_clients_gets_typed_errors() {
    let server = NatsServer::single();
    let host = host_with(&server.url(), "raw", "h", &[("echo", "example-echo-actor")]).await;
    let nats = nats::connect(&server.url()).await;
    let request = |subject: &str, headers: &[(&str, &str)], body: &[u8]| {
        let mut map = async_nats::HeaderMap::new();
        for (k, v) in headers {
            map.insert(*k, *v);
        }
        let nats = nats.clone();
        let subject = subject.to_owned();
        let body = body.to_vec();
        async move {
            let reply = nats
                .send_request(
                    subject,
                    async_nats::Request::new()
                        .payload(body.into())
                        .headers(map)
                        .timeout(Some(WAIT)),
                )
                .await
                .unwrap();
            let status = reply
                .headers
                .as_ref()
                .and_then(|h| h.get(headers::STATUS))
                .map(|v| v.as_str().parse::<u16>().unwrap());
            lattice::Error::from_wire(status, &reply.payload)
        }
    };
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a [u8], ErrorKind);
    let stale = CallPrefix {
        fingerprint: Some(1),
        budget_ms: Some(1000),
    }
    .encode();
    let mut version_2 = stale;
    version_2[2] = 2;
    let cases: Vec<Case<'_>> = vec![
        (
            "lattice.raw.rpc.echo.echo.echo",
            vec![],
            b"\xc1\xc1\xc1",
            ErrorKind::Decode,
        ),
        (
            "lattice.raw.rpc.echo.echo.nope",
            vec![],
            b"",
            ErrorKind::UnknownMethod,
        ),
        (
            "lattice.raw.rpc.echo.counter.get",
            vec![],
            b"",
            ErrorKind::UnknownContract,
        ),
        (
            "lattice.raw.rpc.echo.echo.echo",
            vec![(headers::FINGERPRINT, "zz")],
            b"",
            ErrorKind::Decode,
        ),
        (
            "lattice.raw.rpc.echo.echo.echo",
            vec![(headers::FINGERPRINT, "0000000000000001")],
            b"",
            ErrorKind::ContractMismatch,
        ),
        (
            "lattice.raw.rpc.echo.echo.echo",
            vec![(headers::TIMEOUT_MS, "soon")],
            b"",
            ErrorKind::Decode,
        ),
        (
            "lattice.raw.rpc.echo.echo.echo",
            vec![(headers::CONTRACT, "counter")],
            b"",
            ErrorKind::Decode,
        ),
        (
            "lattice.raw.rpc.echo.echo.echo",
            vec![],
            &stale[..10],
            ErrorKind::Decode,
        ),
        (
            "lattice.raw.rpc.echo.echo.echo",
            vec![],
            &version_2,
            ErrorKind::Decode,
        ),
        (
            "lattice.raw.rpc.echo.echo.echo",
            vec![],
            &stale,
            ErrorKind::ContractMismatch,
        ),
        (
            "lattice.raw.rpc.echo.echo.echo.extra",
            vec![],
            b"",
            ErrorKind::InvalidName,
        ),
    ];
    for (subject, headers, body, kind) in cases {
        let err = request(subject, &headers, body).await;
        assert_eq!(err.kind(), kind, "{subject} {headers:?}: {err}");
    }
    // ANCHOR: raw
    // A call without headers works: any NATS client in any language can call.
    let body =
        lattice::codec::encode(&std::collections::BTreeMap::from([("text", "plain")])).unwrap();
    let reply = nats
        .request("lattice.raw.rpc.echo.echo.echo", body.into())
        .await
        .unwrap();
    assert_eq!(
        lattice::codec::decode::<String>(&reply.payload).unwrap(),
        "plain"
    );
    // ANCHOR_END: raw
    // With the call prefix, as the generated clients send it: the
    // fingerprint is checked and the arguments follow.
    let prefix = CallPrefix {
        fingerprint: Some(<dyn example_echo_contract::Echo as lattice::Contract>::FINGERPRINT),
        budget_ms: Some(2000),
    };
    let mut with_prefix = prefix.encode().to_vec();
    lattice::codec::encode_into(
        &std::collections::BTreeMap::from([("text", "plain")]),
        &mut with_prefix,
    )
    .unwrap();
    let reply = nats
        .request("lattice.raw.rpc.echo.echo.echo", with_prefix.into())
        .await
        .unwrap();
    assert!(reply.headers.is_none(), "an error reply: {reply:?}");
    assert_eq!(
        lattice::codec::decode::<String>(&reply.payload).unwrap(),
        "plain"
    );
    assert!(host.stats().calls_from_nats >= 13);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_reconnect_after_a_server_restart() {
    let mut server = NatsServer::single();
    let _host = host_with(
        &server.url(),
        "restart",
        "h",
        &[("echo", "example-echo-actor")],
    )
    .await;
    let echo = EchoClient::new(nats::connect(&server.url()).await, "restart", "echo").unwrap();
    assert_eq!(echo.echo("before".into()).await.unwrap(), "before");
    server.restart();
    let reply = support::eventually(Duration::from_secs(20), || echo.echo("after".into()))
        .await
        .unwrap();
    assert_eq!(reply, "after");
}

/// Host A dies mid-load (its runtime is torn down, as if the process died);
/// host B runs the same actors. Idempotent calls keep succeeding through B;
/// non-idempotent calls in flight on A fail with a typed error; nothing
/// waits past its deadline.
#[test]
fn a_host_dying_mid_load() {
    support::init_tracing();
    let server = NatsServer::single();
    let url = server.url();
    let actors = [
        ("echo", "example-echo-actor"),
        ("counter", "lattice-test-counter"),
        ("slow", "lattice-test-hostile"),
    ];
    let runtime_a = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let host_a = runtime_a.block_on(host_with(&url, "dying", "a", &actors));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let _host_b = host_with(&url, "dying", "b", &actors).await;
        let nats = nats::connect(&url).await;
        let deadline = Duration::from_secs(2);
        let echo = EchoClient::new(nats.clone(), "dying", "echo")
            .unwrap()
            .with_timeout(deadline);
        let counter = CounterClient::new(nats, "dying", "counter")
            .unwrap()
            .with_timeout(deadline);

        let kill = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(150)).await;
            runtime_a.shutdown_background();
        });
        let mut tasks = Vec::new();
        for worker in 0..8 {
            let (echo, counter) = (echo.clone(), counter.clone());
            tasks.push(tokio::spawn(async move {
                let mut outcomes = Vec::new();
                for i in 0..40 {
                    let start = std::time::Instant::now();
                    let text = format!("{worker}-{i}");
                    let echoed = echo.echo(text.clone()).await;
                    outcomes.push((
                        start.elapsed(),
                        echoed.map(|t| t == text).map_err(|e| e.kind()),
                        true,
                    ));
                    let start = std::time::Instant::now();
                    let added = counter.add(1).await;
                    outcomes.push((
                        start.elapsed(),
                        added.map(|_| true).map_err(|e| e.kind()),
                        false,
                    ));
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                outcomes
            }));
        }
        // Slow non-idempotent calls, some of them in flight on host a when it dies.
        let client = lattice::Client::new(nats::connect(&url).await, "dying").unwrap();
        let mut slow = Vec::new();
        for _ in 0..12 {
            let client = client.clone();
            slow.push(tokio::spawn(async move {
                let start = std::time::Instant::now();
                let result = sleep_call(&client, 250, Duration::from_secs(2)).await;
                (start.elapsed(), result.map(drop).map_err(|e| e.kind()))
            }));
        }
        kill.await.unwrap();
        let mut lost = 0;
        for call in slow {
            let (took, result) = call.await.unwrap();
            assert!(
                took < Duration::from_millis(2500),
                "a slow call took {took:?}"
            );
            match result {
                Ok(()) => {}
                Err(kind) => {
                    assert_eq!(
                        kind,
                        ErrorKind::TimedOut,
                        "a call lost with its host times out"
                    );
                    lost += 1;
                }
            }
        }
        assert!(
            lost > 0,
            "calls in flight on the dead host fail: {lost} of 12 lost"
        );
        let (mut failed_adds, mut adds) = (0, 0);
        for task in tasks {
            for (took, outcome, idempotent) in task.await.unwrap() {
                assert!(
                    took < deadline + Duration::from_millis(500),
                    "a call took {took:?}"
                );
                if idempotent {
                    assert_eq!(
                        outcome,
                        Ok(true),
                        "idempotent calls survive the host's death"
                    );
                } else {
                    adds += 1;
                    if let Err(kind) = outcome {
                        failed_adds += 1;
                        assert!(
                            matches!(
                                kind,
                                ErrorKind::TimedOut
                                    | ErrorKind::NoResponders
                                    | ErrorKind::Transport
                            ),
                            "{kind:?}"
                        );
                    }
                }
            }
        }
        assert_eq!(adds, 320);
        tracing::info!(failed_adds, "non-idempotent calls lost with host a");
    });
    assert!(
        host_a.stats().calls_from_nats > 0,
        "host a served calls before it died"
    );
    drop(host_a);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_between_actors_carry_the_deadline_and_the_trace() {
    use futures_util::StreamExt;
    let server = NatsServer::single();
    let _host = host_with(
        &server.url(),
        "traced",
        "h",
        &[("relay", "example-relay-actor")],
    )
    .await;
    // A plain NATS responder stands in for the actor `spy` and records what arrives.
    let spy_nats = nats::connect(&server.url()).await;
    let mut spy = spy_nats
        .queue_subscribe("lattice.traced.rpc.spy.>", "spy".into())
        .await
        .unwrap();
    spy_nats.flush().await.unwrap();
    let spy_task = tokio::spawn(async move {
        let message = spy.next().await.unwrap();
        let reply = lattice::codec::encode("from the spy").unwrap();
        spy_nats
            .publish(message.reply.clone().unwrap(), reply.into())
            .await
            .unwrap();
        spy_nats.flush().await.unwrap();
        message
    });
    let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let relay = RelayClient::new(nats::connect(&server.url()).await, "traced", "relay")
        .unwrap()
        .with_timeout(Duration::from_millis(1500))
        .with_traceparent(traceparent);
    assert_eq!(
        relay.echo_via("spy".into(), "hi".into()).await.unwrap(),
        Ok("from the spy".into())
    );
    let seen = spy_task.await.unwrap();
    assert_eq!(seen.subject.as_str(), "lattice.traced.rpc.spy.echo.echo");
    let header = |name: &str| {
        seen.headers
            .as_ref()
            .unwrap()
            .get(name)
            .unwrap()
            .as_str()
            .to_owned()
    };
    assert_eq!(header(headers::TRACEPARENT), traceparent);
    let (prefix, args) = CallPrefix::split(&seen.payload).unwrap();
    let prefix = prefix.expect("the call prefix");
    let budget = prefix.budget_ms.unwrap();
    assert!(
        budget > 0 && budget <= 1500,
        "the caller's remaining deadline travels on: {budget} ms"
    );
    assert_eq!(
        prefix.fingerprint,
        Some(<dyn example_echo_contract::Echo as lattice::Contract>::DESCRIPTOR.fingerprint)
    );
    assert_eq!(
        lattice::codec::decode::<std::collections::BTreeMap<String, String>>(args).unwrap()["text"],
        "hi"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_and_actors_publish_events() {
    let server = NatsServer::single();
    let watcher = nats::connect(&server.url()).await;
    let mut host_events = watcher.subscribe("lattice.ev.evt.>").await.unwrap();
    let mut actor_events = watcher.subscribe("lattice.ev.pub.>").await.unwrap();
    watcher.flush().await.unwrap();

    let host = Host::new(support::lattice_options("ev", "h1")).unwrap();
    host.join(nats::connect(&server.url()).await).await.unwrap();
    let limits = ActorLimits::new().timeout(Duration::from_millis(200));
    support::start(&host, "counter", "lattice-test-counter", limits.clone()).await;
    support::start(&host, "hostile", "lattice-test-hostile", limits).await;
    let counter = CounterClient::new(nats::connect(&server.url()).await, "ev", "counter").unwrap();
    counter.add(3).await.unwrap();
    counter.reset().await.unwrap();
    // Oneway: wait for its effect before stopping the actor.
    let published = next(&mut actor_events).await;
    assert_eq!(published.subject.as_str(), "lattice.ev.pub.counter.reset");
    assert_eq!(&published.payload[..], 3u64.to_le_bytes());
    let _ = host
        .invoke(lattice_host::Call::new("hostile", "hostile", "trap", b""))
        .await
        .unwrap_err();
    host.stop_actor("counter").await.unwrap();

    let mut kinds = Vec::new();
    while kinds.len() < 5 {
        let Ok(Some(event)) =
            tokio::time::timeout(WAIT, futures_util::StreamExt::next(&mut host_events)).await
        else {
            break;
        };
        if event.subject.ends_with(".heartbeat") {
            continue;
        }
        let body: serde_json::Value = serde_json::from_slice(&event.payload).unwrap();
        kinds.push((event.subject.to_string(), body));
    }
    let subjects: Vec<&str> = kinds.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        subjects,
        [
            "lattice.ev.evt.h1.host_started",
            "lattice.ev.evt.h1.actor_started",
            "lattice.ev.evt.h1.actor_started",
            "lattice.ev.evt.h1.actor_failed",
            "lattice.ev.evt.h1.actor_stopped",
        ]
    );
    assert_eq!(kinds[1].1["actor"], "counter");
    assert_eq!(kinds[3].1["kind"], "actor_trapped");
}

/// The next message of `sub`, failing the test after a while.
async fn next(sub: &mut async_nats::Subscriber) -> async_nats::Message {
    use futures_util::StreamExt;
    tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("a message arrives in time")
        .expect("the subscription is open")
}

/// Calls `sleep(ms)` on the hostile actor running as `slow`, as a
/// non-idempotent call: a slow call that must not be retried.
async fn sleep_call(
    client: &lattice::Client,
    ms: u64,
    timeout: Duration,
) -> Result<bytes::Bytes, lattice::Error> {
    let payload = lattice::codec::encode(&std::collections::BTreeMap::from([("ms", ms)])).unwrap();
    client
        .request(lattice::RawCall {
            timeout: Some(timeout),
            ..lattice::RawCall::new("slow", "hostile", "sleep", payload.into())
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_over_nats_are_answered_while_busy_guests_fill_every_worker() {
    let server = NatsServer::single();
    let host = Host::new(support::lattice_options("busy", "h1")).unwrap();
    // Calls that compute until their deadline, on fibers (yielding at each
    // 5 ms tick): one per worker of this host's runtime.
    let spinning = ActorLimits::new()
        .max_instances(2)
        .timeout(Duration::from_millis(1500))
        .inline(false);
    support::start(&host, "hostile", "lattice-test-hostile", spinning).await;
    support::start(&host, "echo", "example-echo-actor", ActorLimits::new()).await;
    host.join(nats::connect(&server.url()).await).await.unwrap();
    let busy = support::spin(&host, "hostile", 2);
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Twenty calls from elsewhere, one at a time, spread over a second
    // while the guests keep both workers busy.
    let every = Duration::from_millis(50);
    let took = support::echo_calls_from_elsewhere(&server.url(), "busy", 20, None, every);
    let slowest = took.into_iter().max().unwrap_or_default();
    for call in busy {
        let err = call.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    }
    // The slowest takes about three ticks here; with wasmtime's plain
    // yield, a worker looked at the network only every 61 slices of guest
    // work, and the slowest took about 300 ms.
    assert!(
        slowest < Duration::from_millis(150),
        "the slowest call took {slowest:?} beside two busy guests"
    );
}
