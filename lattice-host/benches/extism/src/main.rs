//! The echo benchmark against Extism: a raw wasmtime call into a minimal
//! echo guest (copy in, call, copy out), the Lattice host's in-process invoke
//! of the echo actor (decode, dispatch, encode) and an Extism 1.30 call into
//! an `extism-pdk` echo plugin, on the same payloads, in one run.
//!
//! Prints medians and the ratios; run with `RUST_BACKTRACE` unset (an error
//! made on a hot path captures a backtrace when it is set):
//!
//! ```text
//! env -u RUST_BACKTRACE cargo run --release \
//!     --manifest-path lattice-host/benches/extism/Cargo.toml
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use lattice_host::{ActorLimits, Call, Host, HostOptions};

#[path = "../../common/raw_echo.rs"]
mod raw_echo;

const SIZES: [usize; 3] = [64, 4096, 65536];

/// Calls per timed batch, and batches; the figure is the median batch's
/// mean, which a noisy machine moves least.
const BATCH: u32 = 200;
const BATCHES: usize = 101;

fn main() -> anyhow::Result<()> {
    if std::env::var_os("RUST_BACKTRACE").is_some() {
        eprintln!("warning: RUST_BACKTRACE is set; errors on hot paths capture backtraces");
    }
    let (echo_actor, echo_plugin) = build_guests()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;

    // Raw wasmtime 48, the engine the host runs on.
    let mut raw_echo = raw_echo::RawEcho::new();

    // The Lattice host with the echo actor.
    let host = Host::new(HostOptions::new().pool_instances(16))?;
    rt.block_on(host.start_actor_file("echo", &echo_actor, ActorLimits::new()))?;

    // Extism, with the plugin compiled once.
    let manifest = extism::Manifest::new([extism::Wasm::data(std::fs::read(&echo_plugin)?)]);
    let mut plugin = extism::Plugin::new(&manifest, [], false)?;

    println!("echo, median of {BATCHES} batches of {BATCH} calls; one process, one run\n");
    println!(
        "{:>8} {:>12} {:>12} {:>12} {:>12} {:>14}",
        "payload", "raw wasmtime", "lattice", "extism", "lattice/raw", "lattice/extism"
    );
    for size in SIZES {
        let input = vec![7u8; size];
        let mut output = vec![0u8; size];
        let raw = median(|| raw_echo.call(&input, &mut output));
        let payload = lattice::codec::encode(&BTreeMap::from([(
            "data",
            serde_bytes::ByteBuf::from(input.clone()),
        )]))?;
        let ours = median(|| {
            rt.block_on(host.invoke(Call::new("echo", "echo", "echo_bytes", &payload)))
                .expect("echo");
        });
        let extism = median(|| {
            let out: &[u8] = plugin.call("echo", &input[..]).expect("extism echo");
            assert_eq!(out.len(), size);
        });
        println!(
            "{:>8} {:>12} {:>12} {:>12} {:>11.1}x {:>13.2}x",
            format!("{size} B"),
            us(raw),
            us(ours),
            us(extism),
            ours.as_secs_f64() / raw.as_secs_f64(),
            ours.as_secs_f64() / extism.as_secs_f64(),
        );
    }
    rt.block_on(host.shutdown());
    Ok(())
}

fn median(mut f: impl FnMut()) -> Duration {
    for _ in 0..BATCH * 5 {
        f();
    }
    let mut batches: Vec<Duration> = (0..BATCHES)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..BATCH {
                f();
            }
            start.elapsed() / BATCH
        })
        .collect();
    batches.sort();
    batches[BATCHES / 2]
}

fn us(d: Duration) -> String {
    format!("{:.2} us", d.as_secs_f64() * 1e6)
}

/// Builds the echo actor (main workspace, wasm32-wasip1) and the Extism echo
/// plugin (this workspace, wasm32-unknown-unknown) and returns their paths.
fn build_guests() -> anyhow::Result<(PathBuf, PathBuf)> {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = here.join("../../..").canonicalize()?;
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => here.join("target"),
    };
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let build = |dir: &Path, target_triple: &str, package: &str| -> anyhow::Result<()> {
        let status = Command::new(&cargo)
            .current_dir(dir)
            .env("CARGO_TARGET_DIR", &target)
            .args(["build", "--release", "--quiet", "--target", target_triple])
            .args(["-p", package])
            .status()?;
        anyhow::ensure!(
            status.success(),
            "building {package} for {target_triple} failed; `rustup target add {target_triple}` \
             if the target is missing"
        );
        Ok(())
    };
    build(&root, "wasm32-wasip1", "example-echo-actor")?;
    build(here, "wasm32-unknown-unknown", "lattice-extism-echo")?;
    Ok((
        target.join("wasm32-wasip1/release/example_echo_actor.wasm"),
        target.join("wasm32-unknown-unknown/release/lattice_extism_echo.wasm"),
    ))
}
