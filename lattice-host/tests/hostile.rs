//! Hostile guests and bad input: each failure is a typed error, and the same
//! host goes on serving that actor and others.

mod support;

use std::time::{Duration, Instant};

use lattice::{ErrorKind, codec};
use lattice_host::{ActorLimits, Call, Host, HostOptions};
use serde::Serialize;

#[derive(Serialize)]
struct NoArgs {}

#[derive(Serialize)]
struct Grow {
    mib: u32,
}

#[derive(Serialize)]
struct Recurse {
    depth: u64,
}

#[derive(Serialize)]
struct Panic {
    message: String,
}

#[derive(Serialize)]
struct Size {
    size: u32,
}

#[derive(Serialize)]
struct Data {
    #[serde(with = "serde_bytes")]
    data: Vec<u8>,
}

const CONTRACT: &str = "hostile";

async fn invoke<A: Serialize>(
    host: &Host,
    method: &str,
    args: &A,
) -> Result<Vec<u8>, lattice::Error> {
    let payload = codec::encode(args).unwrap();
    host.invoke(Call::new("hostile", CONTRACT, method, &payload))
        .await
}

async fn started() -> Host {
    support::init_tracing();
    let host = support::host();
    let limits = ActorLimits::new()
        .max_memory(16 << 20)
        .timeout(Duration::from_millis(500))
        .max_payload(64 << 10)
        .max_instances(2);
    support::start(&host, "hostile", "lattice-test-hostile", limits).await;
    support::start(&host, "echo", "example-echo-actor", ActorLimits::new()).await;
    host
}

/// A host running the hostile actor in a single instance, so that every
/// call sees the state the calls before it left.
async fn one_hostile_instance() -> Host {
    let host = support::host();
    support::start(
        &host,
        "hostile",
        "lattice-test-hostile",
        ActorLimits::new().max_instances(1),
    )
    .await;
    host
}

/// After a failure, the actor and its neighbours still answer, from a fresh
/// instance when the failure killed one.
async fn still_serving(host: &Host) {
    let ok: String = codec::decode(&invoke(host, "ok", &NoArgs {}).await.unwrap()).unwrap();
    assert_eq!(ok, "ok");
    echoes(host, "still here").await;
}

/// The `echo` actor on `host` answers `text` with `text`.
async fn echoes(host: &Host, text: &str) {
    let payload = codec::encode(&std::collections::BTreeMap::from([("text", text)])).unwrap();
    let reply = host
        .invoke(Call::new("echo", "echo", "echo", &payload))
        .await
        .unwrap();
    assert_eq!(codec::decode::<String>(&reply).unwrap(), text);
}

#[tokio::test]
async fn an_infinite_loop_hits_the_deadline() {
    let host = started().await;
    let start = Instant::now();
    let err = invoke(&host, "spin", &NoArgs {}).await.unwrap_err();
    let took = start.elapsed();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    assert!(err.message().contains("deadline"), "{err}");
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_secs(5),
        "{took:?}"
    );

    // A caller's shorter deadline wins.
    let start = Instant::now();
    let payload = codec::encode(&NoArgs {}).unwrap();
    let err = host
        .invoke(Call::new("hostile", CONTRACT, "spin", &payload).timeout(Duration::from_millis(50)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert!(
        start.elapsed() < Duration::from_millis(450),
        "{:?}",
        start.elapsed()
    );
    still_serving(&host).await;
}

#[tokio::test]
async fn a_memory_blow_up_hits_the_cap() {
    let host = started().await;
    let err = invoke(&host, "grow", &Grow { mib: 64 }).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LimitExceeded, "{err}");
    assert!(
        err.message().contains("memory limit of 16777216 bytes"),
        "{err}"
    );
    still_serving(&host).await;
    // Below the cap, growing works.
    let grown: u64 =
        codec::decode(&invoke(&host, "grow", &Grow { mib: 4 }).await.unwrap()).unwrap();
    assert_eq!(grown, 4);

    // The same inline: a hand-written actor asks for 64 MiB more, and traps
    // when refused.
    let greedy = actor_with_dispatch(
        "",
        "(if (i32.eq (memory.grow (i32.const 1024)) (i32.const -1)) (then unreachable))",
        1,
    );
    let limits = ActorLimits::new().max_memory(16 << 20);
    assert!(
        host.start_actor("greedy", greedy, limits)
            .await
            .unwrap()
            .inline
    );
    let err = host
        .invoke(Call::new("greedy", "any", "any", &[]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LimitExceeded, "{err}");
    still_serving(&host).await;
}

/// The memory limit holds while an instance is made too: for a module
/// whose memory starts above it, and for one whose start function grows it
/// (the host installs the limiter after instantiation for the others).
#[tokio::test]
async fn the_memory_cap_holds_from_instantiation() {
    let host = started().await;
    let module = |pages: u32, start: &str| {
        wat::parse_str(format!(
            r#"(module
                (memory (export "memory") {pages})
                (data (i32.const 16) "\90")
                {start}
                (func (export "lattice_alloc") (param i32) (result i32) i32.const 1024)
                (func (export "lattice_free") (param i32 i32))
                (func (export "lattice_describe") (result i64) i64.const 0x1_0000_0010)
                (func (export "lattice_dispatch") (param i32 i32 i32 i32 i64) (result i64)
                    i64.const 0x1_0000_0030)
                (@custom "lattice_abi" "\02\00\00\00"))"#
        ))
        .unwrap()
    };
    let limits = || ActorLimits::new().max_memory(16 << 20);
    // Refused, the start function traps, as a guest's allocator does.
    let grow = |pages: u32| {
        format!(
            "(func $grow (if (i32.eq (memory.grow (i32.const {pages})) (i32.const -1)) \
             (then unreachable))) (start $grow)"
        )
    };
    for (name, module) in [
        ("starts-large", module(257, "")),
        ("grows-at-start", module(1, &grow(1024))),
    ] {
        let err = host.start_actor(name, module, limits()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::LimitExceeded, "{name}: {err}");
        assert!(err.message().contains("memory limit"), "{name}: {err}");
    }
    // Just within it, and a start function that stays within it: both run.
    host.start_actor("starts-at-the-cap", module(256, ""), limits())
        .await
        .unwrap();
    host.start_actor("grows-a-little", module(1, &grow(1)), limits())
        .await
        .unwrap();
    still_serving(&host).await;
}

/// A guest describes its contracts with schemas of any JSON: one nested
/// without end gets a typed refusal, not the host's stack.
#[tokio::test]
async fn a_contract_list_nested_without_end_is_refused() {
    let host = started().await;
    let describing = |depth: usize| {
        let mut list = codec::encode(&serde_json::json!([{
            "name": "deep",
            "version": 1,
            "fingerprint": "0000000000000001",
            "methods": [],
            "types": { "T": null },
        }]))
        .unwrap();
        assert_eq!(list.pop(), Some(0xc0), "the null comes last");
        list.extend(std::iter::repeat_n(0x91, depth)); // [[[...
        list.push(0xc0);
        let data: String = list.iter().map(|b| format!("\\{b:02x}")).collect();
        wat::parse_str(format!(
            r#"(module
                (memory (export "memory") 1)
                (data (i32.const 16) "{data}")
                (func (export "lattice_alloc") (param i32) (result i32) i32.const 32768)
                (func (export "lattice_free") (param i32 i32))
                (func (export "lattice_describe") (result i64) i64.const {packed})
                (func (export "lattice_dispatch") (param i32 i32 i32 i32 i64) (result i64)
                    i64.const 0x1_0000_0010)
                (@custom "lattice_abi" "\02\00\00\00"))"#,
            packed = ((list.len() as u64) << 32) | 16,
        ))
        .unwrap()
    };
    for depth in [1_000, 25_000] {
        let err = host
            .start_actor("deep", describing(depth), ActorLimits::new())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidModule, "{err}");
        assert!(err.message().contains("depth"), "{err}");
    }
    // Nested as deep as schemas are: described.
    host.start_actor("nested", describing(60), ActorLimits::new())
        .await
        .unwrap();
    still_serving(&host).await;
}

#[tokio::test]
async fn a_stack_overflow_traps() {
    let host = started().await;
    let err = invoke(&host, "recurse", &Recurse { depth: 10_000_000 })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ActorTrapped, "{err}");
    assert!(err.message().contains("stack"), "{err}");
    still_serving(&host).await;
    let depth: u64 = codec::decode(
        &invoke(&host, "recurse", &Recurse { depth: 100 })
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(depth, 100);
}

#[tokio::test]
async fn a_panic_comes_back_with_its_message() {
    let host = started().await;
    let err = invoke(
        &host,
        "panic",
        &Panic {
            message: "the sky is falling".into(),
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ActorPanicked, "{err}");
    assert!(err.message().contains("the sky is falling"), "{err}");
    assert!(
        err.message().contains("src/lib.rs"),
        "the location is kept: {err}"
    );
    still_serving(&host).await;
}

#[tokio::test]
async fn a_trap_gets_a_fresh_instance() {
    let host = started().await;
    let count = |bytes: Vec<u8>| codec::decode::<u64>(&bytes).unwrap();
    assert_eq!(count(invoke(&host, "count", &NoArgs {}).await.unwrap()), 1);
    assert_eq!(count(invoke(&host, "count", &NoArgs {}).await.unwrap()), 2);
    let err = invoke(&host, "trap", &NoArgs {}).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ActorTrapped, "{err}");
    assert!(err.message().contains("unreachable"), "{err}");
    still_serving(&host).await;
    // The trapped instance is gone; its state with it.
    assert_eq!(count(invoke(&host, "count", &NoArgs {}).await.unwrap()), 1);
}

#[tokio::test]
async fn oversized_payloads_are_refused_both_ways() {
    let host = started().await;
    let err = invoke(&host, "big_reply", &Size { size: 100_000 })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PayloadTooLarge, "{err}");
    assert!(err.message().contains("reply"), "{err}");
    let err = invoke(
        &host,
        "echo",
        &Data {
            data: vec![1; 100_000],
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PayloadTooLarge, "{err}");
    assert!(err.message().contains("request"), "{err}");
    // Within the limit, large payloads round trip, growing the input buffer.
    let data: serde_bytes::ByteBuf = codec::decode(
        &invoke(
            &host,
            "echo",
            &Data {
                data: vec![9; 60_000],
            },
        )
        .await
        .unwrap(),
    )
    .unwrap();
    assert_eq!(data.len(), 60_000);
    still_serving(&host).await;
}

#[tokio::test]
async fn bad_calls_get_typed_errors() {
    let host = started().await;
    let cases: [(&str, &str, &[u8], ErrorKind, &str); 4] = [
        (
            CONTRACT,
            "ok",
            b"\xc1garbage",
            ErrorKind::Decode,
            "arguments of `hostile.ok` (an empty map, or nothing): got the byte 0xc1",
        ),
        (
            CONTRACT,
            "nope",
            b"",
            ErrorKind::UnknownMethod,
            "no method \"nope\"",
        ),
        (
            "counter",
            "get",
            b"",
            ErrorKind::UnknownContract,
            "implements: hostile",
        ),
        (
            CONTRACT,
            "grow",
            b"\x81\xa3mib\xa3two",
            ErrorKind::Decode,
            "hostile.grow",
        ),
    ];
    for (contract, method, payload, kind, needle) in cases {
        let err = host
            .invoke(Call::new("hostile", contract, method, payload))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), kind, "{err}");
        assert!(err.message().contains(needle), "{err}");
    }
    let err = host
        .invoke(Call::new("hostile", CONTRACT, "ok", b"").fingerprint(0x1234))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ContractMismatch, "{err}");
    let err = host
        .invoke(Call::new("nobody", "echo", "echo", b""))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoResponders, "{err}");
    still_serving(&host).await;
}

#[tokio::test]
async fn modules_that_are_not_actors_are_refused() {
    let host = started().await;
    let err = host
        .start_actor("junk", b"not wasm at all".to_vec(), ActorLimits::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidModule);
    assert!(err.message().contains("not a WebAssembly module"), "{err}");

    let plain = wat::parse_str(r#"(module (memory (export "memory") 1) (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))"#).unwrap();
    let err = host
        .start_actor("plain", plain, ActorLimits::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidModule);
    assert!(
        err.message().contains("does not export lattice_alloc"),
        "{err}"
    );

    // A `lattice_dispatch` of another type: refused when started, as the
    // host types it once per module (its instances do not check again).
    for (name, dispatch) in [
        (
            "i32-fingerprint",
            "(func (export \"lattice_dispatch\") (param i32 i32 i32 i32 i32) (result i64) i64.const 0)",
        ),
        (
            "i32-result",
            "(func (export \"lattice_dispatch\") (param i32 i32 i32 i32 i64) (result i32) i32.const 0)",
        ),
        (
            "a-global",
            "(global (export \"lattice_dispatch\") i64 (i64.const 0))",
        ),
    ] {
        let module = wat::parse_str(format!(
            r#"(module
                (memory (export "memory") 1)
                (func (export "lattice_alloc") (param i32) (result i32) i32.const 1024)
                (func (export "lattice_free") (param i32 i32))
                (func (export "lattice_describe") (result i64) i64.const 0)
                {dispatch}
                (@custom "lattice_abi" "\02\00\00\00"))"#
        ))
        .unwrap();
        let err = host
            .start_actor(name, module, ActorLimits::new())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidModule, "{name}: {err}");
        assert!(
            err.message()
                .contains("`lattice_dispatch` export is not a function of type (i32, i32, i32, i32, i64) -> i64"),
            "{name}: {err}"
        );
    }

    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), b"\0asm\x01\0\0\0").unwrap();
    let err = host
        .start_actor_file("empty", file.path(), ActorLimits::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidModule);

    let err = host
        .start_actor_file("missing", "/nonexistent/actor.wasm", ActorLimits::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.message().contains("/nonexistent/actor.wasm"), "{err}");
    still_serving(&host).await;
}

#[tokio::test]
async fn fuel_bounds_a_call() {
    let host = Host::new(support::options().fuel(true)).unwrap();
    let limits = ActorLimits::new()
        .fuel(Some(5_000_000))
        .timeout(Duration::from_secs(30));
    support::start(&host, "hostile", "lattice-test-hostile", limits).await;
    let err = invoke(&host, "spin", &NoArgs {}).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LimitExceeded, "{err}");
    assert!(err.message().contains("fuel"), "{err}");
    let ok: String = codec::decode(&invoke(&host, "ok", &NoArgs {}).await.unwrap()).unwrap();
    assert_eq!(ok, "ok");

    // The same inline, where the guest runs on the host's thread.
    let spin = actor_with_dispatch("", "(loop $spin (br $spin))", 1);
    let limits = ActorLimits::new()
        .fuel(Some(5_000_000))
        .timeout(Duration::from_secs(30));
    assert!(host.start_actor("spin", spin, limits).await.unwrap().inline);
    let err = host
        .invoke(Call::new("spin", "any", "any", &[]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LimitExceeded, "{err}");
    assert!(err.message().contains("fuel"), "{err}");
}

#[tokio::test]
async fn the_compiled_module_cache_skips_compilation() {
    let dir = tempfile::tempdir().unwrap();
    let options = || {
        HostOptions::new()
            .pool_instances(16)
            .module_cache(Some(dir.path().to_path_buf()))
    };
    let wasm = support::wasm("example-echo-actor");
    let first = Host::new(options()).unwrap();
    let info = first
        .start_actor_file("echo", &wasm, ActorLimits::new())
        .await
        .unwrap();
    assert!(!info.from_cache);
    let second = Host::new(options()).unwrap();
    let info = second
        .start_actor_file("echo", &wasm, ActorLimits::new())
        .await
        .unwrap();
    assert!(info.from_cache);
    echoes(&second, "cached").await;

    // Without pooling the same module runs too.
    let plain = Host::new(options().pooling(false)).unwrap();
    plain
        .start_actor_file("echo", &wasm, ActorLimits::new())
        .await
        .unwrap();
    echoes(&plain, "cached").await;
}

#[tokio::test]
async fn large_pools_use_small_reservations_and_too_large_ones_fail_clearly() {
    // 9,000 slots of 4 GiB would not fit the address-space budget: the host
    // reserves each instance's maximum instead, and guest code checks its
    // bounds explicitly.
    let host = Host::new(
        HostOptions::new()
            .pool_instances(9_000)
            .pool_memory(16 << 20)
            .module_cache(Some(support::shared_cache())),
    )
    .unwrap();
    support::start(
        &host,
        "echo",
        "example-echo-actor",
        ActorLimits::new().max_memory(16 << 20),
    )
    .await;
    echoes(&host, "small").await;

    // A pool the kernel's mapping limit cannot hold is refused up front,
    // with the fix in the message.
    let err = Host::new(HostOptions::new().pool_instances(50_000_000)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LimitExceeded, "{err}");
    assert!(err.message().contains("vm.max_map_count"), "{err}");
}

#[tokio::test]
async fn log_lines_below_the_hosts_level_are_not_even_formatted() {
    let host = started().await;
    for (filter, expected) in [
        ("lattice::actor=info", &["info", "warn", "error"][..]),
        (
            "lattice::actor=trace",
            &["trace", "debug", "info", "warn", "error"][..],
        ),
        ("lattice::actor=off", &[][..]),
    ] {
        // This test's calls run on its thread: a subscriber for this thread
        // decides what the host records.
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .finish();
        let _scope = tracing::subscriber::set_default(subscriber);
        let reply = invoke(&host, "log_each_level", &NoArgs {}).await.unwrap();
        let formatted: Vec<String> = codec::decode(&reply).unwrap();
        assert_eq!(formatted, expected, "with {filter}");
    }
}

#[tokio::test]
async fn an_instance_idle_for_ticks_does_not_yield_at_its_next_call() {
    let host = started().await;
    invoke(&host, "ok", &NoArgs {}).await.unwrap();
    let before = host.stats().guest_yields;
    for _ in 0..5 {
        // Several epoch ticks (5 ms each) pass while the instance is idle.
        tokio::time::sleep(Duration::from_millis(30)).await;
        invoke(&host, "ok", &NoArgs {}).await.unwrap();
    }
    // A tick may land inside one of these short calls, rarely; before each
    // call reset the deadline, every one of them yielded.
    let yields = host.stats().guest_yields - before;
    assert!(yields <= 1, "{yields} of 5 short calls yielded");
    // A busy guest yields at every tick until its deadline (500 ms).
    let err = invoke(&host, "spin", &NoArgs {}).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    assert!(host.stats().guest_yields - before > 10);
}

/// A hand-written actor that lists no contracts and answers every call with
/// the MessagePack byte `reply`, kept at 48; `funcs` adds its `alloc` and
/// other exports, and `check` runs first in `dispatch`.
fn hand_written_actor(reply: u8, funcs: &str, check: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module
            (memory (export "memory") 1)
            (data (i32.const 16) "\90")
            (data (i32.const 48) "\{reply:02x}")
            {funcs}
            (func (export "lattice_free") (param i32 i32))
            (func (export "lattice_describe") (result i64) i64.const 0x1_0000_0010)
            (func (export "lattice_dispatch") (param i32 i32 i32 i32 i64) (result i64)
                {check}
                i64.const 0x1_0000_0030)
            (@custom "lattice_abi" "\02\00\00\00"))"#
    ))
    .unwrap()
}

/// Its `_initialize` (a reactor's initializer, which the host runs once per
/// instance) turns the byte every call replies with from `false` into
/// `true`.
fn initialized_actor() -> Vec<u8> {
    hand_written_actor(
        0xc2,
        r#"(func (export "_initialize") (i32.store8 (i32.const 48) (i32.const 0xc3)))
           (func (export "lattice_alloc") (param i32) (result i32) i32.const 1024)"#,
        "",
    )
}

/// It names its own input buffer (`lattice::abi::INPUT`) with `input`, the body
/// of `lattice_input`; its `alloc` traps, and its `dispatch` traps unless
/// the input is at 1024.
fn input_buffer_actor(input: &str) -> Vec<u8> {
    hand_written_actor(
        0xc3,
        &format!(
            r#"(func (export "lattice_alloc") (param i32) (result i32) unreachable)
               (func (export "lattice_input") (result i64) {input})"#
        ),
        "(if (i32.ne (local.get 0) (i32.const 1024)) (then unreachable))",
    )
}

/// 64 bytes at 1024: inputs that fit never call `alloc`, in the instance
/// that was asked or in fresh ones.
fn own_input_buffer_actor() -> Vec<u8> {
    input_buffer_actor("i64.const 0x40_0000_0400")
}

#[tokio::test]
async fn a_modules_initializer_runs_once_in_every_instance() {
    let host = support::host();
    host.start_actor(
        "init",
        initialized_actor(),
        ActorLimits::new().max_instances(2),
    )
    .await
    .unwrap();
    // Two calls at once: two instances, each initialized.
    let call = || host.invoke(Call::new("init", "any", "any", &[]));
    let (a, b) = tokio::join!(call(), call());
    for reply in [a, b] {
        let initialized: bool = codec::decode(&reply.unwrap()).unwrap();
        assert!(initialized, "the instance ran without its initializer");
    }
}

/// A guest function that counts to two billion: a fraction of a second to
/// a few seconds of guest work.
const SPIN: &str = r#"(func $spin (local $i i32)
    (loop $again
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.ne (local.get $i) (i32.const 2000000000)))))"#;

/// Its `_initialize` and its `dispatch` each [`SPIN`].
fn slow_to_start_actor() -> Vec<u8> {
    hand_written_actor(
        0xc2,
        &format!(
            r#"{SPIN}
               (func (export "_initialize") (call $spin))
               (func (export "lattice_alloc") (param i32) (result i32) i32.const 1024)"#
        ),
        "(call $spin)",
    )
}

/// Its `dispatch` [`SPIN`]s.
fn busy_actor() -> Vec<u8> {
    hand_written_actor(
        0xc2,
        &format!(
            r#"{SPIN}
               (func (export "lattice_alloc") (param i32) (result i32) i32.const 1024)"#
        ),
        "(call $spin)",
    )
}

#[tokio::test]
async fn busy_guests_on_one_thread_take_turns_at_each_tick() {
    // One thread: a long call on a task of its own, and a short one in this
    // test's own future, each on a fiber, yielding at every epoch tick
    // (5 ms). Each yield lets the other run (and tokio poll its I/O and
    // timers), so the short call sees its deadline pass within a tick or
    // two. With wasmtime's plain yield the long call's task ran 61 slices
    // (about 300 ms) between two of the short call's.
    let host = support::host();
    host.start_actor("busy", busy_actor(), two_on_fibers())
        .await
        .unwrap();
    let took = short_call_beside_a_long_one(&host, "busy").await;
    assert!(
        took < Duration::from_millis(250),
        "a call with a 50 ms deadline took {took:?} beside a busy guest"
    );
}

/// Two instances, on fibers (yielding at each tick), and time for long calls.
fn two_on_fibers() -> ActorLimits {
    ActorLimits::new()
        .max_instances(2)
        .timeout(Duration::from_secs(60))
        .inline(false)
}

/// Makes a long call to `actor` on a task of its own, and meanwhile one
/// with a 50 ms deadline, which must time out; how long that one took.
async fn short_call_beside_a_long_one(host: &Host, actor: &str) -> Duration {
    let long = tokio::spawn({
        let (host, actor) = (host.clone(), actor.to_owned());
        async move { host.invoke(Call::new(&actor, "any", "any", &[])).await }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    let started = Instant::now();
    let err = host
        .invoke(Call::new(actor, "any", "any", &[]).timeout(Duration::from_millis(50)))
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    long.await.unwrap().unwrap();
    took
}

// Two workers, as a host has (see the previous test for one thread).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_instance_for_a_call_starts_within_the_calls_deadline() {
    let host = support::host();
    let limits = two_on_fibers();
    // Starting runs the initializer once, in the instance that answers
    // `describe`: how long one takes on this machine.
    let started = Instant::now();
    host.start_actor("slow", slow_to_start_actor(), limits)
        .await
        .unwrap();
    let initializer = started.elapsed();
    // A long call holds the one instance (on a fiber, yielding at each
    // tick), so the short call needs a fresh one, whose initializer takes
    // as long again: far past that call's own deadline.
    let took = short_call_beside_a_long_one(&host, "slow").await;
    assert!(
        took < initializer / 2 || took < Duration::from_millis(250),
        "the call waited {took:?} for an initializer that takes {initializer:?}; \
         its deadline was 50 ms"
    );
}

#[tokio::test]
async fn a_modules_own_input_buffer_spares_the_alloc_call() {
    let host = support::host();
    host.start_actor(
        "own",
        own_input_buffer_actor(),
        ActorLimits::new().max_instances(2),
    )
    .await
    .unwrap();
    // Two calls at once: the instance that was asked, and a fresh one.
    let call = |payload: &'static [u8]| host.invoke(Call::new("own", "any", "any", payload));
    let (a, b) = tokio::join!(call(&[]), call(&[0x80]));
    for reply in [a, b] {
        assert!(codec::decode::<bool>(&reply.unwrap()).unwrap());
    }
    // An input larger than the buffer takes `alloc`, which traps here: a
    // typed error, and the next small call is served.
    let err = call(&[0u8; 100]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ActorTrapped, "{err}");
    assert!(codec::decode::<bool>(&call(&[]).await.unwrap()).unwrap());
}

/// A module that names an input buffer outside its memory, or one that
/// traps when asked: typed errors, at start or at the call, never a panic.
#[tokio::test]
async fn a_broken_input_buffer_is_a_typed_error() {
    let host = support::host();
    host.start_actor(
        "outside",
        input_buffer_actor("i64.const 0x40_ffff_0000"),
        ActorLimits::new(),
    )
    .await
    .unwrap();
    let err = host
        .invoke(Call::new("outside", "any", "any", &[]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ActorTrapped, "{err}");
    assert!(err.message().contains("outside its memory"), "{err}");
    let err = host
        .start_actor(
            "trapping",
            input_buffer_actor("unreachable"),
            ActorLimits::new(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ActorTrapped, "{err}");
}

/// The WASI context is built when the guest first calls WASI: the calls
/// after an instance's first ones still see a clock, random bytes, and no
/// arguments or environment.
#[tokio::test]
async fn wasi_works_in_a_warm_instance() {
    let host = one_hostile_instance().await;
    // A call that touches no WASI first, then two that do.
    invoke(&host, "ok", &NoArgs {}).await.unwrap();
    for _ in 0..2 {
        let reply = invoke(&host, "wasi", &NoArgs {}).await.unwrap();
        let seen: Vec<u64> = codec::decode(&reply).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(
            seen[0].abs_diff(now) < 60,
            "the guest's clock says {}",
            seen[0]
        );
        assert_eq!(seen[1..3], [0, 0], "no arguments, no environment");
    }
}

/// An actor is a WASI reactor: its static constructors run once per
/// instance, before its first call, not around every call (what a command
/// module's export wrappers would do).
#[tokio::test]
async fn static_constructors_run_once_per_instance() {
    let host = one_hostile_instance().await;
    for _ in 0..3 {
        let reply = invoke(&host, "constructor_runs", &NoArgs {}).await.unwrap();
        assert_eq!(codec::decode::<u32>(&reply).unwrap(), 1);
    }
}

/// A oneway call from a guest returns at once; the host makes it from a
/// task of its own, with copies of what the guest's memory held.
#[tokio::test]
async fn a_guests_oneway_call_runs_after_it_returned() {
    #[derive(Serialize)]
    struct Target {
        actor: String,
    }
    let host = support::host();
    support::start(&host, "hostile", "lattice-test-hostile", ActorLimits::new()).await;
    support::start(
        &host,
        "counter",
        "lattice-test-counter",
        ActorLimits::new().max_instances(1),
    )
    .await;
    let counter = |method: &'static str, args: Vec<u8>| {
        let host = host.clone();
        async move {
            let reply = host
                .invoke(Call::new("counter", "counter", method, &args))
                .await
                .unwrap();
            codec::decode::<u64>(&reply).unwrap()
        }
    };
    let by_5 = codec::encode(&std::collections::BTreeMap::from([("by", 5u64)])).unwrap();
    assert_eq!(counter("add", by_5).await, 5);
    let target = Target {
        actor: "counter".into(),
    };
    let reply = invoke(&host, "reset_counter", &target).await.unwrap();
    let sent: Result<(), String> = codec::decode(&reply).unwrap();
    assert_eq!(sent, Ok(()));
    let reset = support::eventually(Duration::from_secs(5), || async {
        match counter("get", Vec::new()).await {
            0 => Ok(()),
            n => Err(format!("still {n}")),
        }
    })
    .await;
    assert!(reset.is_ok(), "{reset:?}");
}

#[tokio::test]
async fn the_input_buffer_grows_and_the_old_one_is_freed() {
    let host = support::host();
    support::start(
        &host,
        "echo",
        "example-echo-actor",
        ActorLimits::new().max_instances(1),
    )
    .await;
    // One instance: each larger request frees its buffer for a larger one.
    for size in [16, 4 << 10, 100 << 10] {
        let data = vec![7u8; size];
        let args = codec::encode(&std::collections::BTreeMap::from([(
            "data",
            serde_bytes::ByteBuf::from(data.clone()),
        )]))
        .unwrap();
        let reply = host
            .invoke(Call::new("echo", "echo", "echo_bytes", &args))
            .await
            .unwrap();
        let back: serde_bytes::ByteBuf = codec::decode(&reply).unwrap();
        assert_eq!(back.into_vec(), data, "{size} bytes");
    }
}

/// A hand-written actor whose `dispatch` runs `body` and replies with the
/// MessagePack bytes it left at 48 (`len` of them). It imports `imports`.
fn actor_with_dispatch(imports: &str, body: &str, len: u8) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module
            {imports}
            (memory (export "memory") 1)
            (data (i32.const 16) "\90")
            (func (export "lattice_alloc") (param i32) (result i32) i32.const 1024)
            (func (export "lattice_free") (param i32 i32))
            (func (export "lattice_describe") (result i64) i64.const 0x1_0000_0010)
            (func $recurse (param i32) (result i32)
                (i32.add (call $recurse (local.get 0)) (i32.const 1)))
            (func (export "lattice_dispatch") (param i32 i32 i32 i32 i64) (result i64)
                {body}
                i64.const 0x{len:x}_0000_0030)
            (@custom "lattice_abi" "\02\00\00\00"))"#
    ))
    .unwrap()
}

#[tokio::test]
async fn actors_that_cannot_wait_run_inline_and_the_others_on_fibers() {
    let host = support::host();
    for (name, package, inline) in [
        // Import nothing that waits: their calls run on the calling thread.
        ("echo", "example-echo-actor", true),
        ("counter", "lattice-test-counter", true),
        // `call`, and WASI's `poll_oneoff` (a sleep), wait.
        ("relay", "example-relay-actor", false),
        ("idle", "lattice-test-idle", false),
    ] {
        let info = support::start(&host, name, package, ActorLimits::new()).await;
        assert_eq!(info.inline, inline, "{name}");
    }
    for _ in 0..100 {
        echoes(&host, "inline").await;
    }
    assert!(
        host.actor("echo").unwrap().inline,
        "short calls stay inline"
    );
    let inventory = host.inventory();
    let entry = |name: &str| inventory.actors.iter().find(|a| a.name == name).unwrap();
    assert!(entry("echo").inline);
    assert!(!entry("relay").inline);

    // Turned off for one actor, that actor runs on fibers.
    let info = host
        .start_actor_file(
            "echo-on-fibers",
            support::wasm("example-echo-actor"),
            ActorLimits::new().inline(false),
        )
        .await
        .unwrap();
    assert!(!info.inline);

    // Turned off for the host, every actor runs on fibers, and answers the same.
    let fibers = Host::new(support::options().inline_calls(false)).unwrap();
    let info = support::start(&fibers, "echo", "example-echo-actor", ActorLimits::new()).await;
    assert!(!info.inline);
    echoes(&fibers, "on a fiber").await;
}

#[tokio::test]
async fn an_inline_call_past_a_tick_moves_its_actor_to_fibers() {
    let host = support::host();
    let spin = actor_with_dispatch("", "(loop $spin (br $spin))", 1);
    let limits = ActorLimits::new()
        .timeout(Duration::from_millis(300))
        .max_instances(2);
    let info = host.start_actor("spin", spin, limits).await.unwrap();
    assert!(info.inline);
    support::start(&host, "echo", "example-echo-actor", ActorLimits::new()).await;

    // Inline, the call cannot yield, but it still ends at its deadline with
    // a typed error, and the actor moves to fibers.
    let start = Instant::now();
    let err = host
        .invoke(Call::new("spin", "any", "any", &[]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    assert!(start.elapsed() >= Duration::from_millis(250));
    assert!(!host.actor("spin").unwrap().inline);
    assert_eq!(host.stats().moved_to_fibers, 1);

    // On a fiber, its next call yields at every tick until its deadline.
    let before = host.stats().guest_yields;
    let err = host
        .invoke(Call::new("spin", "any", "any", &[]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    assert!(host.stats().guest_yields - before > 10);
    // Its neighbour never moved.
    echoes(&host, "still inline").await;
    assert!(host.actor("echo").unwrap().inline);
}

#[tokio::test]
async fn an_inline_stack_overflow_traps_and_a_deep_wasm_stack_runs_on_a_fiber() {
    let recurse = || actor_with_dispatch("", "(drop (call $recurse (i32.const 0)))", 1);
    // Inline, on this test's thread (2 MiB of stack for 512 KiB of wasm).
    let host = support::host();
    assert!(
        host.start_actor("deep", recurse(), ActorLimits::new())
            .await
            .unwrap()
            .inline
    );
    let err = host
        .invoke(Call::new("deep", "any", "any", &[]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ActorTrapped, "{err}");
    assert!(err.message().contains("overflowed its stack"), "{err}");

    // A wasm stack deeper than this thread's own cannot run inline: the
    // call takes a fiber, whose stack fits it, and overflows there.
    let deep = Host::new(support::options().max_wasm_stack(4 << 20)).unwrap();
    deep.start_actor("deep", recurse(), ActorLimits::new())
        .await
        .unwrap();
    let err = deep
        .invoke(Call::new("deep", "any", "any", &[]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ActorTrapped, "{err}");
    assert!(err.message().contains("overflowed its stack"), "{err}");
}

#[derive(Serialize)]
struct CallDeep {
    depth: u64,
    actor: String,
}

#[tokio::test]
async fn an_inline_callee_on_a_deep_callers_fiber_overflows_cleanly() {
    // The hostile actor (on fibers: it calls) recurses, then calls an
    // inline actor in process, which runs on the caller's fiber and
    // recurses without end.
    let host = started().await;
    let deep = actor_with_dispatch("", "(drop (call $recurse (i32.const 0)))", 1);
    assert!(
        host.start_actor("deep", deep, ActorLimits::new())
            .await
            .unwrap()
            .inline
    );
    // The caller itself overflows somewhere between 4,000 and 8,000 frames:
    // the steps land one call close to its limit.
    for depth in (0..=8_000).step_by(250) {
        let args = CallDeep {
            depth,
            actor: "deep".into(),
        };
        match invoke(&host, "call_deep", &args).await {
            // The callee's overflow, as the caller got it.
            Ok(reply) => {
                let got: Result<u64, String> = codec::decode(&reply).unwrap();
                let err = got.unwrap_err();
                assert!(err.contains("overflowed its stack"), "{depth}: {err}");
            }
            // The caller's own overflow, before it could call.
            Err(err) => {
                assert_eq!(err.kind(), ErrorKind::ActorTrapped, "{depth}: {err}");
                assert!(err.message().contains("stack"), "{depth}: {err}");
            }
        }
    }
    still_serving(&host).await;
}

#[tokio::test]
async fn wasi_fd_write_inline_answers_as_the_wasi_context_does() {
    // `dispatch` writes two iovecs (the first empty, the second 5 bytes) to
    // the descriptor the method's length picks, and replies with
    // [errno, nwritten]; method "dddd" passes iovecs outside memory.
    let module = actor_with_dispatch(
        r#"(import "wasi_snapshot_preview1" "fd_write"
               (func $fd_write (param i32 i32 i32 i32) (result i32)))"#,
        r#"(i32.store (i32.const 256) (i32.const 300))
           (i32.store (i32.const 260) (i32.const 0))
           (i32.store (i32.const 264) (i32.const 300))
           (i32.store (i32.const 268) (i32.const 5))
           (i32.store (i32.const 512) (i32.const 0x7f))
           (i32.store8 (i32.const 48) (i32.const 0x92))
           (i32.store8 (i32.const 49)
               (call $fd_write
                   (select (i32.const 9)
                       (select (i32.const 2) (i32.const 1)
                           (i32.eq (local.get 2) (i32.const 2)))
                       (i32.eq (local.get 2) (i32.const 3)))
                   (select (i32.const 65532) (i32.const 256)
                       (i32.eq (local.get 2) (i32.const 4)))
                   (i32.const 2)
                   (i32.const 512)))
           (i32.store8 (i32.const 50) (i32.load8_u (i32.const 512)))"#,
        3,
    );
    let inline = support::host();
    let fibers = Host::new(support::options().inline_calls(false)).unwrap();
    assert!(
        inline
            .start_actor("w", module.clone(), ActorLimits::new())
            .await
            .unwrap()
            .inline
    );
    assert!(
        !fibers
            .start_actor("w", module, ActorLimits::new())
            .await
            .unwrap()
            .inline
    );
    for (method, expected) in [
        ("a", Ok(vec![0x92, 0, 5])),      // stdout: written (and dropped)
        ("bb", Ok(vec![0x92, 0, 5])),     // stderr
        ("ccc", Ok(vec![0x92, 8, 0x7f])), // no such descriptor: EBADF
        ("dddd", Err(ErrorKind::ActorTrapped)),
    ] {
        for host in [&inline, &fibers] {
            let got = host
                .invoke(Call::new("w", "any", method, &[]))
                .await
                .map_err(|e| e.kind());
            assert_eq!(
                got,
                expected,
                "{method}, inline: {}",
                host.actor("w").unwrap().inline
            );
        }
    }
}
