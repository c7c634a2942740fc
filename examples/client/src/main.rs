//! A native Rust client of a running lattice: the generated typed clients of
//! the example contracts, calling actors on whichever hosts run them.
//!
//! Bring up a lattice and start the example actors (`./.ci/demo` does all of
//! it), then: `cargo run -p example-client -- [NATS_URL] [LATTICE]`
//! (defaults: `$LATTICE_NATS_URL` or nats://127.0.0.1:4222, and `default`),
//! with `LATTICE_NATS_NKEY` naming a seed file (or holding a seed) when the
//! server requires one, as `lattice up`'s does.

use std::time::{Duration, Instant};

use example_counter_contract::{CounterClient, CounterError};
use example_echo_contract::EchoClient;
use example_relay_contract::RelayClient;
use futures_util::StreamExt;
use lattice::ErrorKind;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .or_else(|| std::env::var("LATTICE_NATS_URL").ok())
        .unwrap_or_else(|| "nats://127.0.0.1:4222".into());
    let lattice = args.next().unwrap_or_else(|| "default".into());

    // ANCHOR: connect
    // The local nats-server of `lattice up` requires credentials: the
    // caller's nkey seed, $LATTICE_HOME/credentials/caller.nk.
    let mut options = async_nats::ConnectOptions::new();
    if let Ok(seed) = std::env::var("LATTICE_NATS_NKEY") {
        let seed = std::fs::read_to_string(&seed).unwrap_or(seed);
        options = options.nkey(seed.trim().to_owned());
    }
    let nats = options.connect(&url).await?;
    let echo = EchoClient::new(nats.clone(), &lattice, "echo")?;
    // The counter is keyed: this client calls the counter of key `alice`.
    let counter = CounterClient::keyed(nats.clone(), &lattice, "counter", "alice")?;
    let relay = RelayClient::new(nats.clone(), &lattice, "relay")?;

    let text = echo.echo("hello from native Rust".into()).await?;
    let total = counter.add(10).await?;
    // ANCHOR_END: connect
    println!("  echo.echo(\"hello from native Rust\")  -> {text:?}");
    println!("  counter/alice.add(10)                -> {total}");
    println!(
        "  echo.reverse(\"lattice\")              -> {:?}",
        echo.reverse("lattice".into()).await?
    );
    println!(
        "  echo.echo_bytes([0, 159, 255])       -> {:?}",
        echo.echo_bytes(vec![0, 159, 255]).await?
    );
    // The relay actor calls the counter actor from inside wasm: in process if
    // they share a host, over NATS if not.
    println!(
        "  relay.add_to(\"counter/alice\", 5)     -> {:?}   (relay -> counter, actor to actor)",
        relay.add_to("counter/alice".into(), 5).await?
    );
    // The contract's own error type comes back as data.
    let overflow: Result<u64, CounterError> = counter.checked_add(u64::MAX).await?;
    println!("  counter/alice.checked_add(u64::MAX)  -> {overflow:?}");

    // One key, many callers at once: its calls take turns, wherever they
    // arrive, and every add is counted (a fresh key per run).
    let key = format!("run-{}", std::process::id());
    let adds: u64 = 500;
    let one = CounterClient::keyed(nats.clone(), &lattice, "counter", &key)?;
    let replies: Vec<_> = futures_util::stream::iter(0..adds)
        .map(|_| {
            let one = one.clone();
            async move { one.add(1).await }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let failed = replies.iter().filter(|r| r.is_err()).count();
    let total = one.get().await?;
    println!("  {adds} x counter/{key}.add(1), 32 in flight -> get() = {total} ({failed} failed)");
    if let Some(Err(e)) = replies.iter().find(|r| r.is_err()) {
        anyhow::bail!("{failed} adds failed, the first with: {e}");
    }
    anyhow::ensure!(total == adds, "lost adds: {total} of {adds}");

    // Typed errors from the lattice.
    let nobody = CounterClient::new(nats.clone(), &lattice, "nobody")?
        .with_timeout(Duration::from_millis(500));
    match nobody.get().await {
        Err(e) if e.kind() == ErrorKind::NoResponders => {
            println!(
                "  nobody.get()                         -> error {}: {}",
                e.kind().as_str(),
                e.message()
            )
        }
        other => anyhow::bail!("expected no_responders, got {other:?}"),
    }

    // Many calls at once: the hosts running an actor share its load.
    let calls: u32 = 2_000;
    let start = Instant::now();
    let replies: Vec<_> = futures_util::stream::iter(0..calls)
        .map(|i| {
            let echo = echo.clone();
            async move { echo.echo(format!("call {i}")).await }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    let took = start.elapsed();
    let failed = u32::try_from(replies.iter().filter(|r| r.is_err()).count())?;
    println!(
        "  {calls} echo calls, 64 in flight        -> {} ok, {failed} failed, {:.0} calls/s",
        calls - failed,
        f64::from(calls) / took.as_secs_f64()
    );
    anyhow::ensure!(failed == 0, "{failed} calls failed");
    Ok(())
}
