//! Every actor's own key-value bucket, the `kv` import (`lattice_actor::kv`):
//! in process (the host's memory) and on a lattice (a JetStream bucket
//! shared by the actor's instances on every host), with typed errors for
//! bad keys, oversized values and stale compare-and-sets.

mod support;

use futures_util::StreamExt;
use lattice::{ErrorKind, RawCall};
use lattice_host::{ActorLimits, Call, Host};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use support::nats::{self, NatsServer};

/// The test actor's error as data.
#[derive(Debug, Deserialize, PartialEq)]
struct Failure {
    kind: String,
    message: String,
}

#[derive(Debug, Deserialize, PartialEq)]
struct Value {
    text: String,
    revision: u64,
}

#[derive(Serialize)]
struct Key<'a> {
    key: &'a str,
}

#[derive(Serialize)]
struct Set<'a> {
    key: &'a str,
    text: &'a str,
}

#[derive(Serialize)]
struct Cas<'a> {
    key: &'a str,
    text: &'a str,
    revision: Option<u64>,
}

#[derive(Serialize)]
struct Prefix<'a> {
    prefix: &'a str,
}

#[derive(Serialize)]
struct Zeros<'a> {
    key: &'a str,
    size: u32,
}

async fn op<A: Serialize, R: DeserializeOwned>(host: &Host, method: &str, args: A) -> R {
    let args = lattice::codec::encode(&args).unwrap();
    let reply = host
        .invoke(Call::new("shared", "shared", method, &args))
        .await
        .unwrap();
    lattice::codec::decode(&reply).unwrap()
}

#[tokio::test]
async fn every_operation_in_process() {
    let host = support::host();
    support::start(&host, "shared", "lattice-test-shared", ActorLimits::new()).await;
    // An actor that waits on the host for its bucket runs on fibers.
    assert!(!host.inventory().actors[0].inline);

    let none: Result<Option<Value>, Failure> = op(&host, "get", Key { key: "a" }).await;
    assert_eq!(none, Ok(None));
    let first: Result<u64, Failure> = op(
        &host,
        "set",
        Set {
            key: "a",
            text: "one",
        },
    )
    .await;
    let first = first.unwrap();
    let got: Result<Option<Value>, Failure> = op(&host, "get", Key { key: "a" }).await;
    assert_eq!(
        got,
        Ok(Some(Value {
            text: "one".into(),
            revision: first
        }))
    );
    // Compare-and-set: at the revision read, then stale.
    let second: Result<u64, Failure> = op(
        &host,
        "compare_and_set",
        Cas {
            key: "a",
            text: "two",
            revision: Some(first),
        },
    )
    .await;
    assert!(second.unwrap() > first);
    for revision in [Some(first), None] {
        let stale: Result<u64, Failure> = op(
            &host,
            "compare_and_set",
            Cas {
                key: "a",
                text: "three",
                revision,
            },
        )
        .await;
        let stale = stale.unwrap_err();
        assert_eq!(stale.kind, "conflict", "{stale:?}");
        assert!(stale.message.contains("nothing was written"), "{stale:?}");
    }
    let got: Result<Option<Value>, Failure> = op(&host, "get", Key { key: "a" }).await;
    assert_eq!(got.unwrap().unwrap().text, "two");
    // Keys by prefix, sorted.
    for key in ["user.b", "user.a", "team.x"] {
        let _: Result<u64, Failure> = op(&host, "set", Set { key, text: "" }).await;
    }
    let keys: Result<Vec<String>, Failure> = op(&host, "keys", Prefix { prefix: "user." }).await;
    assert_eq!(keys, Ok(vec!["user.a".to_owned(), "user.b".to_owned()]));
    let all: Result<Vec<String>, Failure> = op(&host, "keys", Prefix { prefix: "" }).await;
    assert_eq!(all.unwrap().len(), 4);
    // Delete, twice: the second deletes nothing and is no error.
    for _ in 0..2 {
        let deleted: Result<(), Failure> = op(&host, "delete", Key { key: "a" }).await;
        assert_eq!(deleted, Ok(()));
    }
    let gone: Result<Option<Value>, Failure> = op(&host, "get", Key { key: "a" }).await;
    assert_eq!(gone, Ok(None));
    // A deleted key can be created again by compare-and-set from nothing.
    let again: Result<u64, Failure> = op(
        &host,
        "compare_and_set",
        Cas {
            key: "a",
            text: "back",
            revision: None,
        },
    )
    .await;
    assert!(again.is_ok(), "{again:?}");
    bad_input(&host).await;
}

/// Bad keys and values: typed errors the actor gets as values, its
/// instance unharmed.
async fn bad_input(host: &Host) {
    for key in ["", "a b", ".a", "a.", "ключ", &"k".repeat(257)] {
        let bad: Result<Option<Value>, Failure> = op(host, "get", Key { key }).await;
        let bad = bad.unwrap_err();
        assert_eq!(bad.kind, "invalid_name", "{key:?}: {bad:?}");
    }
    let bad: Result<Vec<String>, Failure> = op(host, "keys", Prefix { prefix: "a/" }).await;
    assert_eq!(bad.unwrap_err().kind, "invalid_name");
    let big: Result<u64, Failure> = op(
        host,
        "set_zeros",
        Zeros {
            key: "big",
            size: (1 << 20) + 1,
        },
    )
    .await;
    let big = big.unwrap_err();
    assert_eq!(big.kind, "payload_too_large", "{big:?}");
    let ok: Result<u64, Failure> = op(
        host,
        "set_zeros",
        Zeros {
            key: "big",
            size: 1 << 19,
        },
    )
    .await;
    assert!(ok.is_ok(), "{ok:?}");
}

async fn lattice_op<A: Serialize, R: DeserializeOwned>(
    client: &lattice::Client,
    method: &str,
    args: A,
) -> Result<R, lattice::Error> {
    let args = lattice::codec::encode(&args).unwrap();
    let reply = client
        .request(RawCall::new("shared", "shared", method, args.into()))
        .await?;
    Ok(lattice::codec::decode(&reply).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_bucket_for_the_actor_on_every_host() {
    let server = NatsServer::jetstream();
    let mut hosts = Vec::new();
    for i in 0..2 {
        let host = Host::new(support::lattice_options("kv", &format!("h{i}"))).unwrap();
        host.join(nats::connect(&server.url()).await).await.unwrap();
        support::start(&host, "shared", "lattice-test-shared", ActorLimits::new()).await;
        hosts.push(host);
    }
    let nats = nats::connect(&server.url()).await;
    let client = lattice::Client::new(nats.clone(), "kv").unwrap();

    // 300 increments at 16 in flight, spread over both hosts and their
    // instances: read, then compare-and-set, retried on conflict.
    let results: Vec<Result<Result<u64, Failure>, lattice::Error>> =
        futures_util::stream::iter(0..300)
            .map(|_| lattice_op(&client, "increment", Key { key: "hits" }))
            .buffer_unordered(16)
            .collect()
            .await;
    let mut numbers: Vec<u64> = results.into_iter().map(|r| r.unwrap().unwrap()).collect();
    numbers.sort_unstable();
    assert_eq!(
        numbers,
        (1..=300).collect::<Vec<_>>(),
        "each increment once"
    );
    for host in &hosts {
        assert!(
            host.stats().calls_from_nats > 0,
            "{} served some",
            host.id()
        );
    }

    // The bucket is the actor's own JetStream bucket, on file storage.
    let js = async_nats::jetstream::new(nats.clone());
    let bucket = js.get_key_value("lattice-kv-kv-shared").await.unwrap();
    assert_eq!(bucket.get("hits").await.unwrap().unwrap(), "300".as_bytes());
    let status = bucket.status().await.unwrap();
    assert_eq!(
        status.info.config.storage,
        async_nats::jetstream::stream::StorageType::File
    );

    // It outlives the hosts.
    for host in hosts.drain(..) {
        host.shutdown().await;
    }
    let later = Host::new(support::lattice_options("kv", "later")).unwrap();
    later
        .join(nats::connect(&server.url()).await)
        .await
        .unwrap();
    support::start(&later, "shared", "lattice-test-shared", ActorLimits::new()).await;
    let got: Result<Option<Value>, Failure> = lattice_op(&client, "get", Key { key: "hits" })
        .await
        .unwrap();
    assert_eq!(got.unwrap().unwrap().text, "300");
    // Compare-and-set fenced on the server too.
    let stale: Result<u64, Failure> = lattice_op(
        &client,
        "compare_and_set",
        Cas {
            key: "hits",
            text: "0",
            revision: Some(1),
        },
    )
    .await
    .unwrap();
    assert_eq!(stale.unwrap_err().kind, "conflict");
    bad_input(&later).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_jetstream_the_bucket_says_so() {
    let server = NatsServer::single();
    let host = Host::new(support::lattice_options("kv", "h")).unwrap();
    host.join(nats::connect(&server.url()).await).await.unwrap();
    support::start(&host, "shared", "lattice-test-shared", ActorLimits::new()).await;
    let started = std::time::Instant::now();
    let failed: Result<Option<Value>, Failure> = op(&host, "get", Key { key: "a" }).await;
    let failed = failed.unwrap_err();
    assert_eq!(failed.kind, ErrorKind::Transport.as_str(), "{failed:?}");
    assert!(failed.message.contains("JetStream"), "{failed:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}
