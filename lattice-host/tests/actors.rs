//! The example actors, run in a real wasmtime host: every method, results
//! that carry the user's errors, events, and actor-to-actor calls.

mod support;

use example_counter_contract::{
    Counter, CounterAddArgs, CounterCheckedAddArgs, CounterError, CounterGetArgs, CounterNameArgs,
    CounterRenameArgs, CounterResetArgs,
};
use example_echo_contract::{Echo, EchoEchoArgs, EchoEchoBytesArgs, EchoReverseArgs};
use example_relay_contract::{Relay, RelayAddToArgs, RelayEchoViaArgs};
use lattice::{Contract, ErrorKind, codec};
use lattice_host::{ActorLimits, Call, Host};
use serde::Serialize;
use serde::de::DeserializeOwned;

async fn call<C: Contract + ?Sized, A: Serialize, R: DeserializeOwned>(
    host: &Host,
    actor: &str,
    method: &str,
    args: &A,
) -> Result<R, lattice::Error> {
    let payload = codec::encode(args)?;
    let reply = host
        .invoke(Call::new(actor, C::NAME, method, &payload).fingerprint(C::FINGERPRINT))
        .await?;
    codec::decode(&reply)
}

/// `relay.add_to(counter, by)`, called at the host.
async fn add_to(host: &Host, counter: &str, by: u64) -> Result<u64, String> {
    let args = RelayAddToArgs {
        counter: counter.into(),
        by,
    };
    call::<dyn Relay, _, _>(host, "relay", "add_to", &args)
        .await
        .unwrap()
}

/// `relay.echo_via(actor, text)`, called at the host.
async fn echo_via(host: &Host, actor: &str, text: &str) -> Result<String, String> {
    let args = RelayEchoViaArgs {
        actor: actor.into(),
        text: text.into(),
    };
    call::<dyn Relay, _, _>(host, "relay", "echo_via", &args)
        .await
        .unwrap()
}

#[tokio::test]
async fn echo_strings_and_bytes() {
    let host = support::host();
    let info = support::start(&host, "echo", "example-echo-actor", ActorLimits::new()).await;
    assert_eq!(info.contracts.len(), 1);
    assert_eq!(info.contracts[0].name, "echo");
    assert_eq!(
        info.contracts[0].fingerprint_value(),
        Some(<dyn Echo as Contract>::FINGERPRINT)
    );
    let text: String = call::<dyn Echo, _, _>(
        &host,
        "echo",
        "echo",
        &EchoEchoArgs {
            text: "héllo".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(text, "héllo");
    let data: serde_bytes::ByteBuf = call::<dyn Echo, _, _>(
        &host,
        "echo",
        "echo_bytes",
        &EchoEchoBytesArgs {
            data: vec![0, 1, 255],
        },
    )
    .await
    .unwrap();
    assert_eq!(data.into_vec(), [0, 1, 255]);
    let reversed: String = call::<dyn Echo, _, _>(
        &host,
        "echo",
        "reverse",
        &EchoReverseArgs { text: "abc".into() },
    )
    .await
    .unwrap();
    assert_eq!(reversed, "cba");
}

#[tokio::test]
async fn counter_methods_errors_and_events() {
    let host = support::host();
    // One instance, so that the state of every call is the same.
    let limits = ActorLimits::new().max_instances(1);
    support::start(&host, "counter", "lattice-test-counter", limits).await;
    let mut events = host.published();

    let total: u64 = call::<dyn Counter, _, _>(&host, "counter", "add", &CounterAddArgs { by: 5 })
        .await
        .unwrap();
    assert_eq!(total, 5);
    let total: u64 = call::<dyn Counter, _, _>(&host, "counter", "add", &CounterAddArgs { by: 2 })
        .await
        .unwrap();
    assert_eq!(total, 7);
    let overflow: Result<u64, CounterError> = call::<dyn Counter, _, _>(
        &host,
        "counter",
        "checked_add",
        &CounterCheckedAddArgs { by: u64::MAX },
    )
    .await
    .unwrap();
    assert_eq!(overflow, Err(CounterError::Overflow));
    let renamed: Result<(), CounterError> = call::<dyn Counter, _, _>(
        &host,
        "counter",
        "rename",
        &CounterRenameArgs {
            name: String::new(),
        },
    )
    .await
    .unwrap();
    assert_eq!(
        renamed,
        Err(CounterError::InvalidName {
            name: String::new()
        })
    );
    let renamed: Result<(), CounterError> = call::<dyn Counter, _, _>(
        &host,
        "counter",
        "rename",
        &CounterRenameArgs {
            name: "visits".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(renamed, Ok(()));
    let name: String = call::<dyn Counter, _, _>(&host, "counter", "name", &CounterNameArgs {})
        .await
        .unwrap();
    assert_eq!(name, "visits");

    let () = call::<dyn Counter, _, _>(&host, "counter", "reset", &CounterResetArgs {})
        .await
        .unwrap();
    let total: u64 = call::<dyn Counter, _, _>(&host, "counter", "get", &CounterGetArgs {})
        .await
        .unwrap();
    assert_eq!(total, 0);
    let event = events.try_recv().expect("reset publishes an event");
    assert_eq!(event.actor, "counter");
    assert_eq!(event.subject, "counter.reset");
    assert_eq!(event.payload, 7u64.to_le_bytes());
}

#[tokio::test]
async fn an_actor_calls_another_actor() {
    support::init_tracing();
    let host = support::host();
    support::start(
        &host,
        "counter",
        "lattice-test-counter",
        ActorLimits::new().max_instances(1),
    )
    .await;
    support::start(&host, "echo", "example-echo-actor", ActorLimits::new()).await;
    let info = support::start(&host, "relay", "example-relay-actor", ActorLimits::new()).await;
    let mut names: Vec<&str> = info.contracts.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["echo", "relay"], "one actor, two contracts");

    for expected in [3u64, 6, 9] {
        assert_eq!(add_to(&host, "counter", 3).await, Ok(expected));
    }
    assert_eq!(echo_via(&host, "echo", "ping").await, Ok("ping".into()));

    // The relay implements Echo too.
    let text: String =
        call::<dyn Echo, _, _>(&host, "relay", "echo", &EchoEchoArgs { text: "hi".into() })
            .await
            .unwrap();
    assert_eq!(text, "relay: hi");
    let data: serde_bytes::ByteBuf = call::<dyn Echo, _, _>(
        &host,
        "relay",
        "echo_bytes",
        &EchoEchoBytesArgs { data: vec![4, 2] },
    )
    .await
    .unwrap();
    assert_eq!(data.into_vec(), [4, 2]);
    let reversed: String = call::<dyn Echo, _, _>(
        &host,
        "relay",
        "reverse",
        &EchoReverseArgs {
            text: "relay".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(reversed, "yaler");

    // A call to an actor that is not running comes back as the callee's typed error.
    let message = add_to(&host, "nobody", 1).await.unwrap_err();
    assert!(
        message.starts_with("no responders: no actor named `nobody`"),
        "{message}"
    );

    // The guest reuses one buffer for the replies of its calls: after an
    // error reply, and for replies longer and shorter than the last, each
    // comes back whole.
    for text in ["x".repeat(5000), "short".to_owned(), "y".repeat(70_000)] {
        assert_eq!(echo_via(&host, "echo", &text).await, Ok(text));
    }
    assert_eq!(add_to(&host, "counter", 3).await, Ok(12));
}

#[tokio::test]
async fn concurrent_calls_share_a_bounded_pool() {
    let host = support::host();
    support::start(
        &host,
        "echo",
        "example-echo-actor",
        ActorLimits::new().max_instances(3),
    )
    .await;
    let mut tasks = Vec::new();
    for i in 0..64 {
        let host = host.clone();
        tasks.push(tokio::spawn(async move {
            let text = format!("call {i}");
            let reply: String =
                call::<dyn Echo, _, _>(&host, "echo", "echo", &EchoEchoArgs { text: text.clone() })
                    .await
                    .unwrap();
            assert_eq!(reply, text);
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let idle = host.idle_instances("echo").unwrap();
    assert!((1..=3).contains(&idle), "{idle} idle instances");
}

#[tokio::test]
async fn stopped_actors_get_no_more_calls() {
    let host = support::host();
    support::start(&host, "echo", "example-echo-actor", ActorLimits::new()).await;
    assert_eq!(host.actor_names(), ["echo"]);
    let err = host
        .start_actor_file(
            "echo",
            support::wasm("example-echo-actor"),
            ActorLimits::new(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    host.stop_actor("echo").await.unwrap();
    assert!(host.actor_names().is_empty());
    let err =
        call::<dyn Echo, _, String>(&host, "echo", "echo", &EchoEchoArgs { text: "x".into() })
            .await
            .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoResponders);
    assert_eq!(
        host.stop_actor("echo").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

/// A call to the test actor `idle` that holds its instance for `ms`,
/// with the call's own `timeout`, on a task of its own.
fn sleep(
    host: &Host,
    ms: u64,
    timeout: Option<std::time::Duration>,
) -> tokio::task::JoinHandle<Result<u64, lattice::Error>> {
    let host = host.clone();
    tokio::spawn(async move {
        let payload = codec::encode(&std::collections::BTreeMap::from([("ms", ms)]))?;
        let mut call = Call::new("idle", "idle", "sleep", &payload);
        if let Some(timeout) = timeout {
            call = call.timeout(timeout);
        }
        codec::decode(&host.invoke(call).await?)
    })
}

#[tokio::test]
async fn calls_wait_for_a_busy_instance_and_the_limit_moves_both_ways() {
    use std::time::{Duration, Instant};
    let host = support::host();
    let two = ActorLimits::new().max_instances(2);
    support::start(&host, "idle", "lattice-test-idle", two).await;

    // Four calls on two instances: two wait for the first two to finish.
    let started = Instant::now();
    let calls: Vec<_> = (0..4).map(|_| sleep(&host, 150, None)).collect();
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap(), 150);
    }
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(host.idle_instances("idle"), Some(2));

    // Both busy: a call whose deadline passes first gets a typed error.
    let busy: Vec<_> = (0..2).map(|_| sleep(&host, 1_000, None)).collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let err = sleep(&host, 0, Some(Duration::from_millis(50)))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert!(err.message().contains("stayed busy"), "{err}");

    // Raising the limit lets a waiting call in at once, on a new instance.
    let waiting = sleep(&host, 0, None);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!waiting.is_finished(), "both instances are busy");
    assert_eq!(host.scale_actor("idle", 3).await.unwrap(), 2);
    assert_eq!(waiting.await.unwrap().unwrap(), 0);
    assert!(busy.iter().all(|b| !b.is_finished()), "served before them");
    for call in busy {
        assert_eq!(call.await.unwrap().unwrap(), 1_000);
    }
    assert_eq!(host.idle_instances("idle"), Some(3));

    // Lowering it drops the idle instances beyond it.
    assert_eq!(host.scale_actor("idle", 1).await.unwrap(), 3);
    assert_eq!(host.idle_instances("idle"), Some(1));
    assert_eq!(host.inventory().actors[0].max_instances, 1);

    // Stopping waits for the busy call and serves the waiting one first.
    // (The busy call has about 500 ms left when the stop begins: the
    // check below leaves 300 ms for the test's own sleeps to run late.)
    let busy = sleep(&host, 600, None);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let waiting = sleep(&host, 0, None);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let stopping = Instant::now();
    host.stop_actor("idle").await.unwrap();
    assert!(
        stopping.elapsed() >= Duration::from_millis(200),
        "it waited"
    );
    assert_eq!(busy.await.unwrap().unwrap(), 600);
    assert_eq!(waiting.await.unwrap().unwrap(), 0);
}
