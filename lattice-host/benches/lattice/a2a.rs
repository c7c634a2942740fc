//! Actor-to-actor calls, in process and across hosts, against a NATS round
//! trip.

use crate::measure::{Table, bench_host, scale, sequential_pair, us};
use crate::support;
use crate::support::nats;
use example_counter_contract::CounterClient;
use example_echo_contract::EchoEchoBytesArgs;
use example_relay_contract::RelayAddToArgs;
use lattice_host::ActorLimits;
use lattice_host::Call;
use std::time::Duration;

pub(crate) async fn actor_to_actor(
    url: &str,
    client: &async_nats::Client,
    relay_module: &std::path::Path,
    counter_module: &std::path::Path,
    table: &mut Table,
) {
    // --- Actor to actor: relay -> counter, in process and across hosts,
    // measured at the host (Host::invoke) so that no client hop is counted.
    // The inner call costs relay's `add_to` minus relay's own call without
    // one (`echo_bytes` of nothing): both enter the same actor the same way
    // (on a fiber, as relay imports `call`), so what is left is the call
    // from actor to actor and the little guest work around it. (Counter's
    // own `add` would be the wrong base: it runs inline, which would put
    // relay's fiber entry into the figure, about 0.3 us.)
    let a2a = bench_host("a2a", "one", 64);
    a2a.start_actor_file("relay", &relay_module, ActorLimits::new())
        .await
        .expect("relay");
    a2a.start_actor_file("counter", &counter_module, ActorLimits::new())
        .await
        .expect("counter");
    let relay_args = lattice::codec::encode(&RelayAddToArgs {
        counter: "counter".into(),
        by: 1,
    })
    .expect("encodes");
    let nothing = lattice::codec::encode(&EchoEchoBytesArgs { data: Vec::new() }).expect("encodes");
    let n = scale(20_000);
    let base = || async {
        a2a.invoke(Call::new("relay", "echo", "echo_bytes", &nothing))
            .await
            .expect("relay echo_bytes");
    };
    let relay = || async {
        a2a.invoke(Call::new("relay", "relay", "add_to", &relay_args))
            .await
            .expect("relay");
    };
    let ((base_median, _), (via_relay, _), _) = sequential_pair(n, base, relay).await;
    let raw_request = || {
        let client = client.clone();
        async move {
            client
                .request("bench.raw", vec![0u8; 16].into())
                .await
                .expect("raw");
        }
    };
    // Across hosts: relay on `one`, counter only on `two`.
    a2a.stop_actor("counter").await.expect("stops");
    a2a.join(nats::connect(url).await).await.expect("joins");
    let two = bench_host("a2a", "two", 64);
    two.start_actor_file("counter", &counter_module, ActorLimits::new())
        .await
        .expect("counter");
    two.join(nats::connect(url).await).await.expect("joins");
    let counter = CounterClient::new(client.clone(), "a2a", "counter").expect("client");
    support::eventually(Duration::from_secs(5), || counter.get())
        .await
        .expect("counter reachable");
    let ((raw_rtt, _), (cross, _), _) = sequential_pair(scale(3000), raw_request, relay).await;
    let same_host = via_relay.saturating_sub(base_median);
    table.row(
        "actor to actor, same host (median)",
        us(raw_rtt),
        us(same_host),
        format!(
            "{:.0}x under",
            raw_rtt.as_secs_f64() / same_host.as_secs_f64().max(1e-9)
        ),
    );
    let other_host = cross.saturating_sub(base_median);
    table.row(
        "actor to actor, other host (median)",
        us(raw_rtt),
        us(other_host),
        format!("{:.2}x", other_host.as_secs_f64() / raw_rtt.as_secs_f64()),
    );

    a2a.shutdown().await;
    two.shutdown().await;
}
