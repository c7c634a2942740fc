//! What waking a hibernating instance costs.

use crate::measure::{Table, bench_options, echo_args_64, percentiles, scale, us};
use lattice_host::ActorLimits;
use lattice_host::Call;
use lattice_host::Host;
use std::time::Duration;
use std::time::Instant;

/// What a call to a hibernating instance pays to wake it: `Host::invoke` of
/// echo (64 B) on a host whose one instance hibernates after 1 ms idle,
/// each call once it sleeps, against the same call on a host whose
/// instance stays awake and has idled as long (called first, so that the
/// host's code is as warm for both).
pub(crate) async fn wake_cost(module: &std::path::Path, table: &mut Table) {
    let host = |id: &str, after: Option<Duration>| {
        Host::new(bench_options("wake", id, 8).hibernate_after(after)).expect("a host")
    };
    let (asleep, awake) = (host("s", Some(Duration::from_millis(1))), host("a", None));
    for host in [&asleep, &awake] {
        host.start_actor_file("echo", module, ActorLimits::new().max_instances(1))
            .await
            .expect("echo");
    }
    let args = echo_args_64();
    let call = |host: &Host| {
        let (host, args) = (host.clone(), args.clone());
        async move {
            let started = Instant::now();
            host.invoke(Call::new("echo", "echo", "echo_bytes", &args))
                .await
                .expect("echo");
            started.elapsed()
        }
    };
    let (mut awake_times, mut wake_times) = (Vec::new(), Vec::new());
    let before = asleep.stats().wakes;
    for _ in 0..scale(500) {
        while asleep.hibernating_instances("echo") != Some(1) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        awake_times.push(call(&awake).await);
        wake_times.push(call(&asleep).await);
    }
    let woken = asleep.stats().wakes - before;
    let ((awake_median, awake_p99), (wake_median, wake_p99)) =
        (percentiles(awake_times), percentiles(wake_times));
    table.row(
        format!("in process, after idle: awake, woken ({woken} wakes), median"),
        us(awake_median),
        us(wake_median),
        format!(
            "{:+.1} us",
            (wake_median.as_secs_f64() - awake_median.as_secs_f64()) * 1e6
        ),
    );
    table.row(
        "  p99",
        us(awake_p99),
        us(wake_p99),
        format!(
            "{:+.1} us",
            (wake_p99.as_secs_f64() - awake_p99.as_secs_f64()) * 1e6
        ),
    );
    asleep.shutdown().await;
    awake.shutdown().await;
}
