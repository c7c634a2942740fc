//! Self-healing, on three `lattice up` host processes with the default
//! heartbeat and a nats-server with JetStream: from a SIGKILL of a host
//! running one of a deployment's two replicas to the replica running again
//! on another host (the `deployment_started` event of its new host), over
//! repeated trials, while an idempotent client calls the actor; and how
//! long 100 deployments take to run on three hosts.
//!
//! The baseline of the failover is what detection alone takes: three
//! heartbeat intervals without a beat.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use example_echo_contract::EchoClient;
use futures_util::StreamExt;
use lattice_host::control::ControlClient;
use lattice_host::deploy::{Deployment, Stores, status};

use crate::measure::{Table, spread};
use crate::support::nats::{self, NatsServer};
use crate::support::up::HostProcess;

/// The hosts' heartbeat: `lattice up`'s default.
const HEARTBEAT: Duration = Duration::from_millis(500);

fn deployment(name: &str, module: &str, replicas: u32) -> Deployment {
    Deployment {
        name: name.into(),
        module: module.into(),
        replicas: Some(replicas),
        daemon: false,
        requirements: Default::default(),
        spread: Vec::new(),
        limits: Default::default(),
    }
}

/// Waits until every deployment named in `names` runs all its replicas
/// with `hosts` live hosts; returns how long that took.
async fn converged(
    stores: &Stores,
    control: &ControlClient,
    names: &[String],
    hosts: usize,
) -> Duration {
    let start = Instant::now();
    loop {
        let desired = stores.list().await.expect("lists");
        let reports = control.deployments().await.expect("reports");
        let all = status(&desired, &reports);
        let done = reports.len() == hosts
            && names
                .iter()
                .all(|n| all.iter().any(|s| &s.name == n && s.is_deployed()));
        if done {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "not converged in 120 s: {all:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub(crate) async fn heal(echo_module: &Path, table: &mut Table) {
    let server = NatsServer::jetstream();
    let url = server.url();
    let mut hosts: Vec<HostProcess> = (0..3)
        .map(|i| HostProcess::spawn(&url, &format!("h{i}"), &[]))
        .collect();
    let nats = nats::connect(&url).await;
    let control = ControlClient::new(nats.clone(), "default")
        .expect("control")
        .wait(Duration::from_millis(150));
    let stores = Stores::open(&nats, "default").await.expect("stores");
    let module = stores
        .upload(&std::fs::read(echo_module).expect("the echo module"))
        .await
        .expect("uploads");
    stores
        .put(&deployment("echo", &module, 2))
        .await
        .expect("deploys");
    let echo_name = vec!["echo".to_owned()];
    converged(&stores, &control, &echo_name, 3).await;

    // An idempotent client at about 800 calls a second throughout.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let load: Vec<_> = (0..4)
        .map(|_| {
            let echo = EchoClient::new(nats.clone(), "default", "echo")
                .expect("client")
                .with_timeout(Duration::from_secs(10));
            let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    match echo.echo("hi".into()).await {
                        Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                        Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                    };
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        })
        .collect();

    let load_start = Instant::now();
    let mut started = nats
        .subscribe("lattice.default.evt.*.deployment_started")
        .await
        .expect("subscribes");
    let trials = crate::measure::env_count("LATTICE_BENCH_HEAL_TRIALS", 7);
    let mut failovers = Vec::with_capacity(trials);
    for _ in 0..trials {
        let before = status(
            &stores.list().await.expect("lists"),
            &control.deployments().await.expect("reports"),
        );
        let running_on = &before[0].hosts;
        let victim = hosts
            .iter_mut()
            .find(|h| running_on.contains(&h.id))
            .expect("a host runs echo");
        let id = victim.id.clone();
        let killed = Instant::now();
        victim.kill();
        loop {
            let event = tokio::time::timeout(Duration::from_secs(30), started.next())
                .await
                .expect("a replica started within 30 s")
                .expect("events");
            let body: serde_json::Value =
                serde_json::from_slice(&event.payload).unwrap_or_default();
            if body["name"] == "echo" && body["host"] != id.as_str() {
                failovers.push(killed.elapsed());
                break;
            }
        }
        // The host comes back with the same id, and takes its share back.
        *hosts.iter_mut().find(|h| h.id == id).expect("the victim") =
            HostProcess::spawn(&url, &id, &[]);
        converged(&stores, &control, &echo_name, 3).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        while tokio::time::timeout(Duration::from_millis(1), started.next())
            .await
            .is_ok()
        {}
    }
    stop.store(true, Ordering::Relaxed);
    for task in load {
        let _ = task.await;
    }
    let load_time = load_start.elapsed();
    failovers.sort();
    let median = failovers[failovers.len() / 2];
    let detection = HEARTBEAT * 3;
    table.row(
        "failover after SIGKILL, 3 hosts (target 3 s)",
        format!("{:.2} s", detection.as_secs_f64()),
        format!("{:.2} s", median.as_secs_f64()),
        format!("{:.2}x", median.as_secs_f64() / detection.as_secs_f64()),
    );
    let seconds: Vec<f64> = failovers.iter().map(Duration::as_secs_f64).collect();
    spread(&format!("{trials} trials"), &seconds, |s| {
        format!("{s:.2} s")
    });
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    table.row(
        "calls failed during the failovers",
        format!(
            "{} calls, {:.0}/s",
            ok + failed,
            (ok + failed) as f64 / load_time.as_secs_f64()
        ),
        format!("{failed} failed"),
        "-".into(),
    );

    // 100 deployments on three hosts, from the first put.
    stores.delete("echo").await.expect("undeploys");
    let names: Vec<String> = (0..100).map(|i| format!("a{i:03}")).collect();
    let start = Instant::now();
    for name in &names {
        stores
            .put(&deployment(name, &module, 1))
            .await
            .expect("deploys");
    }
    converged(&stores, &control, &names, 3).await;
    let hundred = start.elapsed();
    table.row(
        "100 deployments on 3 hosts converge in",
        "-".into(),
        format!("{:.2} s", hundred.as_secs_f64()),
        "-".into(),
    );
    drop(hosts);
}
