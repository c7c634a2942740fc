//! Property-based fuzzing of what a host reads from outside: the JSON of
//! control requests, and arbitrary payloads, contracts and methods sent to
//! real wasm actors (the generated dispatchers, compiled for
//! wasm32-wasip1, decoding inside wasmtime). Every input gets a value or a
//! typed error, the host never panics, and it keeps serving.
//!
//! The budget is `LATTICE_FUZZ_CASES` cases per property (default 20,000: about 4 s in all, debug, on two cores);
//! for a longer run:
//! `LATTICE_FUZZ_CASES=1000000 cargo test --release -p lattice-host --test fuzz`.

mod support;

use std::sync::OnceLock;

use lattice::ErrorKind;
use lattice_host::control::{
    DescribeRequest, LabelsRequest, LimitsRequest, ScaleRequest, StartRequest, StopRequest,
    UpdateRequest,
};
use lattice_host::{ActorLimits, Call, Host};
use proptest::prelude::*;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("LATTICE_FUZZ_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20_000),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// One host with echo and counter, and a runtime to call it from, for the
/// whole process.
fn host() -> &'static (Host, tokio::runtime::Runtime) {
    static HOST: OnceLock<(Host, tokio::runtime::Runtime)> = OnceLock::new();
    HOST.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let host = runtime.block_on(async {
            let host = support::host();
            support::start(&host, "echo", "example-echo-actor", ActorLimits::new()).await;
            support::start(&host, "counter", "lattice-test-counter", ActorLimits::new()).await;
            host
        });
        (host, runtime)
    })
}

/// Bytes from outside: random, or a MessagePack map with random entries.
fn payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        prop::collection::btree_map(
            prop_oneof![Just("text".to_owned()), Just("by".to_owned()), "[a-z]{1,4}"],
            prop_oneof![
                any::<i64>().prop_map(rmpv::Value::from),
                any::<u64>().prop_map(rmpv::Value::from),
                ".{0,16}".prop_map(rmpv::Value::from),
                prop::collection::vec(any::<u8>(), 0..16).prop_map(rmpv::Value::from),
                Just(rmpv::Value::Nil),
            ],
            0..4,
        )
        .prop_map(|map| {
            let value = rmpv::Value::Map(
                map.into_iter()
                    .map(|(k, v)| (rmpv::Value::from(k), v))
                    .collect(),
            );
            let mut out = Vec::new();
            rmpv::encode::write_value(&mut out, &value).unwrap();
            out
        }),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn real_actors_answer_every_payload(
        target in prop_oneof![
            Just(("echo", "echo", "echo")),
            Just(("echo", "echo", "echo_bytes")),
            Just(("counter", "counter", "add")),
            Just(("counter", "counter", "checked_add")),
            Just(("counter", "counter", "get")),
            Just(("counter", "counter", "nope")),
            Just(("counter", "other", "get")),
            Just(("nobody", "echo", "echo")),
        ],
        payload in payload(),
        fingerprint in proptest::option::of(any::<u64>()),
    ) {
        let (host, runtime) = host();
        let (actor, contract, method) = target;
        let mut call = Call::new(actor, contract, method, &payload);
        if let Some(fingerprint) = fingerprint {
            call = call.fingerprint(fingerprint);
        }
        match runtime.block_on(host.invoke(call)) {
            Ok(reply) => prop_assert!(lattice::json::to_json(&reply).is_ok()),
            Err(e) => {
                prop_assert!(e.message().len() <= lattice::MAX_ERROR_MESSAGE);
                prop_assert!(
                    matches!(
                        e.kind(),
                        ErrorKind::Decode
                            | ErrorKind::UnknownMethod
                            | ErrorKind::UnknownContract
                            | ErrorKind::ContractMismatch
                            | ErrorKind::NotFound
                            | ErrorKind::NoResponders
                            | ErrorKind::Remote
                    ),
                    "{e}"
                );
            }
        }
    }

    #[test]
    fn control_requests_parse_or_say_why(
        body in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..200),
            ".{0,120}".prop_map(String::into_bytes),
            (
                prop_oneof![Just("name"), Just("path"), Just("module"), Just("limits"), Just("max_instances"), Just("set"), Just("remove")],
                prop_oneof![
                    Just(serde_json::json!(null)),
                    any::<i64>().prop_map(|n| serde_json::json!(n)),
                    ".{0,12}".prop_map(|s| serde_json::json!(s)),
                    Just(serde_json::json!({"timeout_ms": 0, "fuel": 1})),
                    Just(serde_json::json!(["a", 1])),
                ],
            )
                .prop_map(|(k, v)| serde_json::to_vec(&serde_json::json!({ k: v })).unwrap()),
        ],
    ) {
        // Each request type reads the JSON or refuses it; none panics.
        let _ = serde_json::from_slice::<StartRequest>(&body);
        let _ = serde_json::from_slice::<UpdateRequest>(&body);
        let _ = serde_json::from_slice::<ScaleRequest>(&body);
        let _ = serde_json::from_slice::<StopRequest>(&body);
        let _ = serde_json::from_slice::<DescribeRequest>(&body);
        let _ = serde_json::from_slice::<LabelsRequest>(&body);
        let _ = serde_json::from_slice::<LimitsRequest>(&body);
    }
}

#[test]
fn the_host_still_serves_after_the_fuzzing() {
    let (host, runtime) = host();
    let payload =
        lattice::codec::encode(&std::collections::BTreeMap::from([("text", "ok")])).unwrap();
    let reply = runtime
        .block_on(host.invoke(Call::new("echo", "echo", "echo", &payload)))
        .unwrap();
    assert_eq!(lattice::codec::decode::<String>(&reply).unwrap(), "ok");
}
