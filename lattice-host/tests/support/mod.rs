//! Test support: builds the example and test actors for wasm32-wasip1 with
//! cargo, once per test process, and makes hosts for tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use lattice_host::{ActorInfo, ActorLimits, Host, HostOptions};

/// The actors the tests use: (package, module file stem).
const ACTORS: &[&str] = &[
    "example-echo-actor",
    "example-counter-actor",
    "example-relay-actor",
    "lattice-test-hostile",
    "lattice-test-idle",
    "lattice-test-keyed",
    "lattice-test-counter",
    "lattice-test-shared",
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("lattice-host sits in the workspace")
        .to_path_buf()
}

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace().join(dir),
        None => workspace().join("target"),
    }
}

/// Builds every test actor (once per process) and returns the path of the
/// module of `package`.
pub(crate) fn wasm(package: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut command = Command::new(cargo);
        command.current_dir(workspace()).args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip1",
            "--quiet",
        ]);
        for actor in ACTORS {
            command.args(["-p", actor]);
        }
        let status = command.status().expect("cargo runs");
        assert!(
            status.success(),
            "building the test actors for wasm32-wasip1 failed; if the target is missing, \
             run `rustup target add wasm32-wasip1` (the README's commands do it for you)"
        );
    });
    let path = target_dir()
        .join("wasm32-wasip1/release")
        .join(format!("{}.wasm", package.replace('-', "_")));
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// A module cache shared by the tests of this process, so that each module
/// is compiled once.
pub(crate) fn shared_cache() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("lattice-module-cache")
}

/// Host options for tests: a small pool (tests run many hosts at once) and
/// the shared module cache.
pub(crate) fn options() -> HostOptions {
    HostOptions::new()
        .pool_instances(64)
        .module_cache(Some(shared_cache()))
}

/// A host for tests.
pub(crate) fn host() -> Host {
    Host::new(options()).expect("a host starts")
}

/// Logs to the test's output when `RUST_LOG` is set.
pub(crate) fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

pub(crate) mod nats;
pub(crate) mod up;

/// Retries `f` until it succeeds or `limit` passes (for interest to cross
/// routes and leaf links); returns the last result.
pub(crate) async fn eventually<
    T,
    E: std::fmt::Debug,
    F: std::future::Future<Output = Result<T, E>>,
>(
    limit: std::time::Duration,
    mut f: impl FnMut() -> F,
) -> Result<T, E> {
    let start = std::time::Instant::now();
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if start.elapsed() >= limit => return Err(e),
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    }
}

/// Options of a host that joins lattice `lattice` as `id`.
pub(crate) fn lattice_options(lattice: &str, id: &str) -> HostOptions {
    options().lattice(lattice).host_id(id)
}

/// Starts `actor` on `host` from the module of the test or example actor
/// `package` (built by [`wasm`]).
pub(crate) async fn start(
    host: &Host,
    actor: &str,
    package: &str,
    limits: ActorLimits,
) -> ActorInfo {
    host.start_actor_file(actor, wasm(package), limits)
        .await
        .unwrap_or_else(|e| panic!("actor `{actor}` ({package}) does not start: {e}"))
}

/// Starts `count` calls of the hostile test actor's `spin` (running as
/// `actor` on `host`), each on a task of its own: guests that compute until
/// their deadline.
pub(crate) fn spin(
    host: &Host,
    actor: &str,
    count: usize,
) -> Vec<tokio::task::JoinHandle<Result<Vec<u8>, lattice::Error>>> {
    let no_args =
        lattice::codec::encode(&std::collections::BTreeMap::<&str, u8>::new()).expect("encodes");
    (0..count)
        .map(|_| {
            let (host, actor, args) = (host.clone(), actor.to_owned(), no_args.clone());
            tokio::spawn(async move {
                host.invoke(lattice_host::Call::new(&actor, "hostile", "spin", &args))
                    .await
            })
        })
        .collect()
}

/// `calls` echo calls of 64 bytes, one at a time, each starting `every`
/// after the one before (or at once when it took longer), to the echo
/// actor of `lattice` over the NATS server at `url`, from a thread and
/// runtime of their own (as another process would make them), fewer if
/// `until` passes first; how long each took. Spread out, the calls sample
/// a whole stretch of time, not only its first milliseconds (in the first
/// ticks of guests that compute, two may share one worker for a while,
/// leaving the other idle).
pub(crate) fn echo_calls_from_elsewhere(
    url: &str,
    lattice: &str,
    calls: usize,
    until: Option<std::time::Instant>,
    every: std::time::Duration,
) -> Vec<std::time::Duration> {
    let (url, lattice) = (url.to_owned(), lattice.to_owned());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async move {
            let echo =
                example_echo_contract::EchoClient::new(nats::connect(&url).await, &lattice, "echo")
                    .expect("a client");
            let mut took = Vec::with_capacity(calls);
            for _ in 0..calls {
                let started = std::time::Instant::now();
                if until.is_some_and(|until| started >= until) {
                    break;
                }
                let reply = echo.echo_bytes(vec![7; 64]).await.expect("echo");
                assert_eq!(reply, [7; 64]);
                took.push(started.elapsed());
                tokio::time::sleep_until((started + every).into()).await;
            }
            took
        })
    })
    .join()
    .expect("the caller's thread")
}
