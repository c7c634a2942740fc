//! Calls over NATS to a host whose workers run guests that compute.

use crate::measure::{Table, bench_options, percentiles, process_cpu, scale, us};
use crate::support;
use crate::support::nats;
use lattice_host::ActorLimits;
use lattice_host::Host;
use std::time::Duration;
use std::time::Instant;

/// Echo calls over NATS, one at a time from a caller with a runtime of its
/// own (as another process would be), to a host whose two workers run
/// guests that compute (the hostile test actor's `spin`, on fibers), against
/// the same calls to the same host idle. A busy guest yields at each epoch
/// tick (5 ms); what the calls wait is how soon the host's workers look at
/// the network between two slices of guest work.
pub(crate) async fn beside_busy_guests(url: &str, table: &mut Table) {
    // The host's default tick, set here so that the slices row can name it.
    let tick = Duration::from_millis(5);
    let host = Host::new(bench_options("busy", "b", 8).epoch_tick(tick)).expect("a host");
    host.start_actor_file(
        "echo",
        support::wasm("example-echo-actor"),
        ActorLimits::new(),
    )
    .await
    .expect("echo");
    let spin_for = Duration::from_secs(3);
    host.start_actor_file(
        "hostile",
        support::wasm("lattice-test-hostile"),
        ActorLimits::new()
            .max_instances(2)
            .timeout(spin_for)
            .inline(false),
    )
    .await
    .expect("hostile");
    host.join(nats::connect(url).await).await.expect("joins");
    let calls = scale(100).min(200);
    // Spread over the guests' time (see `echo_calls_from_elsewhere`), and
    // the same on the idle host, so that both sides idle alike in between.
    let every = (spin_for - Duration::from_millis(400)) / u32::try_from(calls).unwrap_or(1);
    let idle = support::echo_calls_from_elsewhere(url, "busy", calls, None, every);
    let (cpu_before, yields_before) = (process_cpu(), host.stats().guest_yields);
    let started = Instant::now();
    let busy = support::spin(&host, "hostile", 2);
    // Only the calls made while the guests compute count: later ones would
    // find the host idle.
    let guests_end = started + spin_for - Duration::from_millis(300);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let beside = support::echo_calls_from_elsewhere(url, "busy", calls, Some(guests_end), every);
    // The cores the guests kept while they computed (and the calls were
    // served): 2 if yielding to the calls cost them nothing.
    tokio::time::sleep_until(guests_end.into()).await;
    let window = started.elapsed().as_secs_f64();
    let cores = (process_cpu() - cpu_before).as_secs_f64() / window;
    let slices = (host.stats().guest_yields - yields_before) as f64 / window / 2.0;
    for call in busy {
        let _ = call.await;
    }
    let max = |samples: &[Duration]| samples.iter().copied().max().unwrap_or_default();
    let (idle_median, _) = percentiles(idle.clone());
    let (busy_median, _) = percentiles(beside.clone());
    table.row(
        "echo beside 2 busy guests, median",
        us(idle_median),
        us(busy_median),
        format!(
            "{:.0}x",
            busy_median.as_secs_f64() / idle_median.as_secs_f64().max(1e-9)
        ),
    );
    table.row(
        "echo beside 2 busy guests, slowest",
        us(max(&idle)),
        us(max(&beside)),
        format!("{} calls", beside.len()),
    );
    table.row(
        "cores the 2 busy guests kept",
        "2 workers".into(),
        format!("{cores:.2}"),
        format!("{:.2}x", cores / 2.0),
    );
    table.row(
        "  slices per second, each guest",
        format!("{:.0} ticks", 1.0 / tick.as_secs_f64()),
        format!("{slices:.0}"),
        String::new(),
    );
    host.shutdown().await;
}
