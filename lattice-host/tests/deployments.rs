//! Deployments against real processes: a nats-server with JetStream and
//! `lattice up` hosts, killed with SIGKILL, restarted, joined, while a
//! client calls the deployed actor.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use example_echo_contract::EchoClient;
use lattice_host::control::ControlClient;
use lattice_host::deploy::{DeploymentStatus, Stores, status};
use serde_json::Value;
use support::nats::{self, NatsServer};
use support::up::{HostProcess, LATTICE};

/// A host of these tests: heartbeats every 200 ms.
fn host(url: &str, id: &str) -> HostProcess {
    HostProcess::spawn(url, id, &["--heartbeat", "200ms"])
}

/// Runs `lattice ARGS --nats URL -o json`.
fn run(url: &str, args: &[&str]) -> Output {
    Command::new(LATTICE)
        .args(args)
        .args(["--nats", url, "--output", "json"])
        .env("LATTICE_HOME", std::env::temp_dir())
        .output()
        .expect("the lattice binary runs")
}

fn ok(url: &str, args: &[&str]) -> Value {
    let out = run(url, args);
    assert!(
        out.status.success(),
        "lattice {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

/// `lattice deploy NAME --module MODULE ARGS`.
fn deploy(url: &str, name: &str, module: &Path, args: &[&str]) -> Value {
    let mut all = vec!["deploy", name, "--module", module.to_str().unwrap()];
    all.extend(args);
    ok(url, &all)
}

fn refused(url: &str, args: &[&str]) -> String {
    let out = run(url, args);
    assert!(!out.status.success(), "lattice {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn wasm(package: &str) -> PathBuf {
    support::wasm(package)
}

/// Waits until `count` hosts answer a ping.
async fn hosts_up(control: &ControlClient, count: usize) {
    let start = Instant::now();
    while control.ping().await.map_or(0, |h| h.len()) < count {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{count} hosts did not come up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The status of `name` once `done` holds of it, or a panic after `within`.
async fn until(
    stores: &Stores,
    control: &ControlClient,
    name: &str,
    within: Duration,
    done: impl Fn(&DeploymentStatus) -> bool,
) -> DeploymentStatus {
    let start = Instant::now();
    loop {
        let desired = stores.list().await.unwrap();
        let reports = control.deployments().await.unwrap();
        let all = status(&desired, &reports);
        let last = all.into_iter().find(|s| s.name == name);
        if let Some(s) = &last
            && done(s)
        {
            return last.unwrap();
        }
        assert!(
            start.elapsed() < within,
            "`{name}` did not get there within {within:?}: {last:?}; hosts said {reports:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct Lattice {
    server: NatsServer,
    control: ControlClient,
    stores: Stores,
    nats: async_nats::Client,
}

impl Lattice {
    /// The status of `name` once `done` holds of it (see [`until`]).
    async fn until(
        &self,
        name: &str,
        within: Duration,
        done: impl Fn(&DeploymentStatus) -> bool,
    ) -> DeploymentStatus {
        until(&self.stores, &self.control, name, within, done).await
    }

    /// Why `name` failed, once it has.
    async fn failure(&self, name: &str) -> String {
        let failed = self
            .until(name, Duration::from_secs(10), |s| s.status == "failed")
            .await;
        failed.reason.expect("a failure has a reason")
    }
}

async fn lattice_of(hosts: usize) -> (Lattice, Vec<HostProcess>) {
    let server = NatsServer::jetstream();
    let url = server.url();
    let processes: Vec<HostProcess> = (0..hosts).map(|i| host(&url, &format!("h{i}"))).collect();
    let nats = nats::connect(&url).await;
    let control = ControlClient::new(nats.clone(), "default")
        .unwrap()
        .wait(Duration::from_millis(300));
    hosts_up(&control, hosts).await;
    let stores = Stores::open(&nats, "default").await.unwrap();
    (
        Lattice {
            server,
            control,
            stores,
            nats,
        },
        processes,
    )
}

/// Calls echo without pause from a few tasks until stopped: (ok, failed).
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<Vec<String>>>,
}

impl Load {
    fn start(nats: &async_nats::Client) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let tasks = (0..4)
            .map(|_| {
                let echo = EchoClient::new(nats.clone(), "default", "echo")
                    .unwrap()
                    .with_timeout(Duration::from_secs(10));
                let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
                tokio::spawn(async move {
                    let mut errors = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        match echo.echo("hi".into()).await {
                            Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                            Err(e) => {
                                if errors.len() < 5 {
                                    errors.push(e.to_string());
                                }
                                failed.fetch_add(1, Ordering::Relaxed)
                            }
                        };
                        // About 200 calls a second from each task.
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    errors
                })
            })
            .collect();
        Load {
            stop,
            ok,
            failed,
            tasks,
        }
    }

    async fn finish(self) -> (u64, u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let mut errors = Vec::new();
        for task in self.tasks {
            errors.extend(task.await.unwrap());
        }
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            errors,
        )
    }
}

fn manifest(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("lattice.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_outlives_a_sigkilled_host_with_no_failed_call() {
    let (lattice, mut hosts) = lattice_of(3).await;
    let url = lattice.server.url();
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("echo.wasm");
    std::fs::copy(wasm("example-echo-actor"), &module).unwrap();
    let path = manifest(
        dir.path(),
        "[[actor]]\nname = \"echo\"\nmodule = \"echo.wasm\"\nreplicas = 2\n",
    );
    let deployed = ok(&url, &["deploy", path.to_str().unwrap(), "--wait", "30s"]);
    assert_eq!(deployed[0]["change"], "created");
    // The same file again changes nothing.
    let again = ok(&url, &["deploy", path.to_str().unwrap()]);
    assert_eq!(again[0]["change"], "unchanged");
    let before = lattice
        .until("echo", Duration::from_secs(10), |s| s.is_deployed())
        .await;
    assert_eq!(
        (before.running, before.hosts.len()),
        (2, 2),
        "distinct hosts"
    );

    let load = Load::start(&lattice.nats);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let victim = hosts
        .iter_mut()
        .find(|h| before.hosts.contains(&h.id))
        .unwrap();
    let gone = victim.id.clone();
    let killed = Instant::now();
    victim.kill();
    let after = lattice
        .until("echo", Duration::from_secs(15), |s| {
            s.is_deployed() && !s.hosts.contains(&gone)
        })
        .await;
    let failover = killed.elapsed();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (calls, failed, errors) = load.finish().await;
    println!("failover after SIGKILL: {failover:?}; {calls} calls, {failed} failed");
    assert_eq!(after.running, 2);
    assert_eq!(failed, 0, "{errors:?}");
    assert!(calls > 100, "the load ran: {calls} calls");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_joining_and_restarting_get_their_share_back() {
    let (lattice, mut hosts) = lattice_of(2).await;
    let url = lattice.server.url();
    let echo = wasm("example-echo-actor");
    deploy(&url, "echo", &echo, &["--daemon", "--wait", "30s"]);
    // A host joining gets its daemon replica.
    hosts.push(host(&url, "h2"));
    let joined = lattice
        .until("echo", Duration::from_secs(20), |s| {
            s.is_deployed() && s.running == 3
        })
        .await;
    assert!(joined.hosts.contains(&"h2".to_owned()), "{joined:?}");
    // A host that restarts with the same id runs its share again.
    hosts[0].kill();
    lattice
        .until("echo", Duration::from_secs(10), |s| {
            s.running == 2 && !s.hosts.contains(&"h0".to_owned())
        })
        .await;
    hosts[0] = host(&url, "h0");
    lattice
        .until("echo", Duration::from_secs(20), |s| {
            s.running == 3 && s.hosts.contains(&"h0".to_owned())
        })
        .await;
    // Undeployed, it stops everywhere; an actor started by hand stays.
    let counter = wasm("lattice-test-counter");
    ok(
        &url,
        &[
            "start",
            "counter",
            counter.to_str().unwrap(),
            "--host",
            "h1",
        ],
    );
    // `lattice watch` shows the hosts' deployment events.
    let watch = Command::new(LATTICE)
        .args(["watch", "--nats", &url, "--output", "json", "--for", "4s"])
        .env("LATTICE_HOME", std::env::temp_dir())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    ok(&url, &["undeploy", "echo"]);
    let watched = tokio::task::spawn_blocking(|| watch.wait_with_output().unwrap())
        .await
        .unwrap();
    let stopped: Vec<Value> = String::from_utf8_lossy(&watched.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["kind"] == "deployment_stopped")
        .collect();
    assert_eq!(stopped.len(), 3, "{stopped:?}");
    assert_eq!(stopped[0]["body"]["reason"], "undeployed");
    let start = Instant::now();
    loop {
        let inventory = lattice.control.inventory().await.unwrap();
        let names: Vec<&str> = inventory
            .iter()
            .flat_map(|i| i.actors.iter().map(|a| a.name.as_str()))
            .collect();
        if !names.contains(&"echo") {
            assert_eq!(names, ["counter"]);
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{names:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let err = refused(&url, &["undeploy", "echo"]);
    assert!(err.contains("not_found"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_update_drops_no_call() {
    let (lattice, _hosts) = lattice_of(2).await;
    let url = lattice.server.url();
    let echo = wasm("example-echo-actor");
    let relay = wasm("example-relay-actor");
    deploy(&url, "echo", &echo, &["--replicas", "2", "--wait", "30s"]);
    let load = Load::start(&lattice.nats);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The relay implements echo too, answering "relay: …".
    let updated = deploy(&url, "echo", &relay, &["--replicas", "2", "--wait", "30s"]);
    assert_eq!(updated[0]["change"], "updated");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (calls, failed, errors) = load.finish().await;
    assert_eq!(failed, 0, "{errors:?}");
    assert!(calls > 100, "{calls}");
    let echo = EchoClient::new(lattice.nats.clone(), "default", "echo").unwrap();
    assert_eq!(echo.echo("x".into()).await.unwrap(), "relay: x");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desired_state_outlives_a_server_restart() {
    let (mut lattice, _hosts) = lattice_of(2).await;
    let url = lattice.server.url();
    let echo = wasm("example-echo-actor");
    deploy(&url, "echo", &echo, &["--replicas", "2", "--wait", "30s"]);
    lattice.server.restart();
    // The hosts reconnect on their own and follow what is declared after.
    let counter = wasm("lattice-test-counter");
    let start = Instant::now();
    loop {
        let out = run(
            &url,
            &[
                "deploy",
                "counter",
                "--module",
                counter.to_str().unwrap(),
                "--wait",
                "5s",
            ],
        );
        if out.status.success() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "no deploy after the restart: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let nats = nats::connect(&url).await;
    let control = ControlClient::new(nats.clone(), "default")
        .unwrap()
        .wait(Duration::from_millis(300));
    let stores = Stores::open(&nats, "default").await.unwrap();
    let names: Vec<String> = stores
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(names, ["counter", "echo"], "echo's deployment survived");
    until(&stores, &control, "echo", Duration::from_secs(20), |s| {
        s.is_deployed()
    })
    .await;
    until(&stores, &control, "counter", Duration::from_secs(20), |s| {
        s.is_deployed()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_deployments_get_typed_errors_naming_the_field() {
    let (lattice, _hosts) = lattice_of(1).await;
    let url = lattice.server.url();
    let dir = tempfile::tempdir().unwrap();
    let echo = wasm("example-echo-actor");
    let actor = |extra: &str| {
        format!(
            "[[actor]]\nname = \"echo\"\nmodule = \"{}\"\n{extra}\n",
            echo.display()
        )
    };
    for (text, expected) in [
        (actor("replica = 2"), "unknown field `replica`"),
        (actor("replicas = 0"), "`replicas` must be at least 1"),
        (
            actor(
                "requirements = { zone = \"eu\" }\n[[actor.spread]]\nrequirements = { zone = \"us\" }",
            ),
            "no host can meet both",
        ),
        (
            "[[actor]]\nname = \"echo\"\nmodule = \"missing.wasm\"\n".into(),
            "cannot read module",
        ),
        (
            format!(
                "[[actor]]\nname = \"echo\"\nmodule = \"sha256:{}\"\n",
                "ab".repeat(32)
            ),
            "is not in the lattice",
        ),
    ] {
        let path = manifest(dir.path(), &text);
        let err = refused(&url, &["deploy", path.to_str().unwrap()]);
        assert!(err.contains(expected), "{expected:?} in {err}");
    }
    let not_wasm = dir.path().join("not.wasm");
    std::fs::write(&not_wasm, b"hello, world").unwrap();
    let err = refused(
        &url,
        &["deploy", "x", "--module", not_wasm.to_str().unwrap()],
    );
    assert!(err.contains("not a WebAssembly module"), "{err}");
    assert!(
        lattice.stores.list().await.unwrap().is_empty(),
        "nothing was stored"
    );

    // Requirements no live host meets: waiting, and which.
    deploy(&url, "echo", &echo, &["--require", "zone=mars"]);
    let waiting = lattice
        .until("echo", Duration::from_secs(5), |s| s.status == "waiting")
        .await;
    assert!(
        waiting.reason.as_deref().unwrap().contains("zone=mars"),
        "{waiting:?}"
    );
    // A wasm module that is no actor fails to load on every host: failed,
    // with the host and the reason.
    let bare = dir.path().join("bare.wasm");
    std::fs::write(&bare, wat::parse_str("(module)").unwrap()).unwrap();
    ok(
        &url,
        &["deploy", "bare", "--module", bare.to_str().unwrap()],
    );
    let reason = lattice.failure("bare").await;
    assert!(reason.contains("on host h0"), "{reason}");
    let err = refused(
        &url,
        &[
            "deploy",
            "bare2",
            "--module",
            bare.to_str().unwrap(),
            "--wait",
            "2s",
        ],
    );
    assert!(err.contains("failed"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_host_loses_its_calls_and_its_replicas_then_comes_back() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let (lattice, hosts) = lattice_of(3).await;
    let url = lattice.server.url();
    let echo = wasm("example-echo-actor");
    deploy(&url, "echo", &echo, &["--replicas", "2", "--wait", "30s"]);
    let before = lattice
        .until("echo", Duration::from_secs(10), |s| s.is_deployed())
        .await;
    let load = Load::start(&lattice.nats);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let victim = hosts.iter().find(|h| before.hosts.contains(&h.id)).unwrap();
    let pid = Pid::from_raw(victim.child.id() as i32);
    let hung = Instant::now();
    kill(pid, Signal::SIGSTOP).unwrap();
    let moved = lattice
        .until("echo", Duration::from_secs(15), |s| {
            s.is_deployed() && !s.hosts.contains(&victim.id)
        })
        .await;
    println!(
        "replicas of a hung host placed elsewhere after {:?}",
        hung.elapsed()
    );
    assert_eq!(moved.running, 2);
    // Once the server has dropped the hung host (two unanswered pings a
    // second apart), calls go only to the live ones: quick again.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let client = EchoClient::new(lattice.nats.clone(), "default", "echo")
        .unwrap()
        .with_timeout(Duration::from_secs(10));
    let start = Instant::now();
    for _ in 0..50 {
        client.echo("quick".into()).await.unwrap();
    }
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "50 calls took {:?}: some still went to the hung host",
        start.elapsed()
    );
    kill(pid, Signal::SIGCONT).unwrap();
    // Back, it holds its replica again, and the stand-in lets go of it.
    lattice
        .until("echo", Duration::from_secs(30), |s| {
            s.is_deployed() && s.hosts.contains(&victim.id) && s.hosts.len() == 2
        })
        .await;
    let (calls, failed, errors) = load.finish().await;
    assert_eq!(failed, 0, "{errors:?}");
    assert!(calls > 100, "{calls}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_that_does_not_match_its_digest_is_refused() {
    let (lattice, _hosts) = lattice_of(1).await;
    // Stored under a name that is not its sha256, as a tampered store
    // would hold it.
    let bytes = std::fs::read(wasm("example-echo-actor")).unwrap();
    let wrong = "ab".repeat(32);
    lattice
        .stores
        .modules
        .put(wrong.as_str(), &mut bytes.as_slice())
        .await
        .unwrap();
    let deployment = lattice_host::deploy::Deployment {
        name: "echo".into(),
        module: wrong,
        replicas: Some(1),
        daemon: false,
        requirements: Default::default(),
        spread: Vec::new(),
        limits: Default::default(),
    };
    assert_eq!(
        lattice.stores.put(&deployment).await.unwrap(),
        lattice_host::deploy::store::Change::Created
    );
    let reason = lattice.failure("echo").await;
    assert!(
        reason.contains("refused") && reason.contains("has sha256"),
        "{reason}"
    );
    assert!(
        lattice.control.inventory().await.unwrap()[0]
            .actors
            .is_empty()
    );
}
