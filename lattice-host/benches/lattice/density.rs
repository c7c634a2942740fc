//! Idle instances' memory, awake and hibernating, against wasmtime alone;
//! each count measured in a process of its own.

use crate::measure::{
    Table, mappings, pss_bytes, resident_in_images, resident_in_mappings_of, rss_bytes,
};
use crate::raw_idle;
use crate::support;
use lattice_host::ActorLimits;
use lattice_host::Call;
use lattice_host::Host;
use lattice_host::HostOptions;
use std::collections::BTreeMap;
use std::time::Duration;
use std::time::Instant;

/// What `count` idle instances, each having served one call, hold: measured
/// in a process of its own (see [`density`]).
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub(crate) struct Footprint {
    idle: u64,
    rss: u64,
    anon: u64,
    pss: u64,
    image: u64,
    image_anon: u64,
    stacks: u64,
    mappings: u64,
    seconds: f64,
}

impl Footprint {
    /// The one line a measuring process prints for its parent.
    pub(crate) fn to_line(self) -> String {
        format!(
            "footprint {}",
            serde_json::to_string(&self).expect("serializes")
        )
    }

    pub(crate) fn from_line(line: &str) -> Option<Footprint> {
        serde_json::from_str(line.strip_prefix("footprint ")?).ok()
    }

    /// KiB per idle instance.
    pub(crate) fn each(&self, bytes: u64) -> f64 {
        bytes as f64 / 1024.0 / self.idle.max(1) as f64
    }
}

/// The environment variable that makes this binary a measuring process:
/// `KIND:COUNT:SLEEP_MS`, KIND `lattice` (instances awake), `hibernated`
/// (after every instance went to sleep), `raw` (the idle actor on wasmtime
/// alone) or `smallest` (the smallest guest on wasmtime alone).
pub(crate) const FOOTPRINT_ENV: &str = "LATTICE_BENCH_FOOTPRINT";
/// The idle actor's module, passed to the measuring process.
pub(crate) const IDLE_MODULE_ENV: &str = "LATTICE_BENCH_IDLE_MODULE";
/// How long the instances of the `hibernated` measure stay idle before
/// they hibernate.
pub(crate) const HIBERNATE_AFTER: Duration = Duration::from_millis(200);

pub(crate) async fn density(
    module: &std::path::Path,
    counts: &[u32],
    sleep_ms: u64,
    table: &mut Table,
) {
    // --- Density: RSS of idle instances, each having served one call: that
    // many calls at once (each sleeps), so that each gets an instance. The
    // baseline is wasmtime alone: the same module on an engine configured
    // as the host's (its pool, stacks and epochs), each instance called
    // once on a fiber by a task of its own, and kept; and wasmtime's own
    // floor, the smallest guest (no data) called once synchronously. Each
    // runs in a fresh process of this binary, so that none reuses memory
    // another (or an earlier section) freed.
    for &count in counts {
        let measure = |kind: &str| footprint_in_child(kind, module, count, sleep_ms);
        let (Some(raw), Some(ours)) = (measure("raw"), measure("lattice")) else {
            continue;
        };
        let smallest = measure("smallest");
        let mib = |bytes: u64| format!("{} MiB", bytes >> 20);
        let ratio = |a: u64, b: u64| format!("{:.2}x", b as f64 / a.max(1) as f64);
        table.row(
            format!("RSS, {} idle instances", ours.idle),
            mib(raw.rss),
            mib(ours.rss),
            ratio(raw.rss, ours.rss),
        );
        let each = |f: &Footprint, bytes: u64| format!("{:.1} KiB", f.each(bytes));
        table.row(
            "  per instance",
            each(&raw, raw.rss),
            each(&ours, ours.rss),
            "256 MiB: 26.2".to_owned(),
        );
        table.row(
            "  per instance, anonymous",
            each(&raw, raw.anon),
            each(&ours, ours.anon),
            String::new(),
        );
        table.row(
            format!("PSS, {} idle instances", ours.idle),
            mib(raw.pss),
            mib(ours.pss),
            ratio(raw.pss, ours.pss),
        );
        table.row(
            "  per instance (shared pages once)",
            each(&raw, raw.pss),
            each(&ours, ours.pss),
            String::new(),
        );
        table.row(
            "  memory images, per instance",
            each(&raw, raw.image),
            each(&ours, ours.image),
            format!("copied {:.1}", ours.each(ours.image_anon)),
        );
        table.row(
            "  fiber stacks, per instance",
            each(&raw, raw.stacks),
            each(&ours, ours.stacks),
            String::new(),
        );
        if let Some(asleep) = measure("hibernated") {
            table.row(
                format!("RSS, {} hibernating instances", asleep.idle),
                mib(ours.rss),
                mib(asleep.rss),
                ratio(ours.rss, asleep.rss),
            );
            table.row(
                "  per instance: awake, hibernating",
                each(&ours, ours.rss),
                each(&asleep, asleep.rss),
                "256 MiB: 26.2".to_owned(),
            );
            table.row(
                "  PSS per instance: awake, hibernating",
                each(&ours, ours.pss),
                each(&asleep, asleep.pss),
                String::new(),
            );
            table.row(
                "  anonymous per instance: awake, hibernating",
                each(&ours, ours.anon),
                each(&asleep, asleep.anon),
                String::new(),
            );
        }
        if let Some(floor) = smallest {
            table.row(
                "  smallest guest, no fiber: RSS, PSS",
                each(&floor, floor.rss),
                each(&floor, floor.pss),
                "wasmtime alone".to_owned(),
            );
        }
        let maps = |f: &Footprint| {
            format!(
                "{:.1}, {:.1} s",
                f.mappings as f64 / f.idle.max(1) as f64,
                f.seconds
            )
        };
        table.row(
            "  mappings per instance, time",
            maps(&raw),
            maps(&ours),
            String::new(),
        );
    }
}

/// Runs this binary again to measure `kind` (see [`FOOTPRINT_ENV`]) with
/// `count` idle instances; `None` (and says why) if that failed.
pub(crate) fn footprint_in_child(
    kind: &str,
    module: &std::path::Path,
    count: u32,
    sleep_ms: u64,
) -> Option<Footprint> {
    let exe = std::env::current_exe().expect("this benchmark's path");
    let output = std::process::Command::new(exe)
        .env(FOOTPRINT_ENV, format!("{kind}:{count}:{sleep_ms}"))
        .env(IDLE_MODULE_ENV, module)
        .stderr(std::process::Stdio::inherit())
        .output();
    let stdout = match output {
        Ok(output) if output.status.success() => {
            String::from_utf8_lossy(&output.stdout).into_owned()
        }
        Ok(output) => {
            println!(
                "{count} instances, {kind}: the measuring process failed ({})",
                output.status
            );
            return None;
        }
        Err(e) => {
            println!("{count} instances, {kind}: cannot run the measuring process: {e}");
            return None;
        }
    };
    let found = stdout.lines().find_map(Footprint::from_line);
    if found.is_none() {
        println!("{count} instances, {kind}: {}", stdout.trim());
    }
    found
}

/// The measuring process: `spec` is [`FOOTPRINT_ENV`]'s value.
pub(crate) async fn footprint_child(spec: &str) {
    let mut parts = spec.split(':');
    let (Some(kind), Some(Ok(count)), Some(Ok(sleep_ms))) = (
        parts.next(),
        parts.next().map(str::parse::<u32>),
        parts.next().map(str::parse::<u64>),
    ) else {
        panic!("{FOOTPRINT_ENV}: expected KIND:COUNT:SLEEP_MS, not {spec:?}");
    };
    let module = std::env::var_os(IDLE_MODULE_ENV).expect("the idle actor's module");
    let module = std::path::Path::new(&module);
    let started = Instant::now();
    let maps_before = mappings();
    // The same options for both: the raw side takes the host's engine.
    // Awake (`lattice`), or hibernating once idle for 200 ms.
    let hibernated = kind == "hibernated";
    let dense = match Host::new(
        HostOptions::new()
            .lattice("dense")
            .host_id("d")
            .pool_instances(count + 16)
            .pool_memory(32 << 20)
            .module_cache(Some(support::shared_cache()))
            .hibernate_after(hibernated.then_some(HIBERNATE_AFTER)),
    ) {
        Ok(host) => host,
        Err(e) => {
            println!("{e}");
            return;
        }
    };
    let payload = lattice::codec::encode(&BTreeMap::from([("ms", sleep_ms)])).expect("encodes");
    // Compiled, linked and started before the first reading on each side.
    let (mut raw, mut smallest) = (None, None);
    match kind {
        "raw" => raw = Some(raw_idle::RawIdle::new(dense.engine(), module).await),
        "smallest" => smallest = Some(raw_idle::RawSmallest::new(dense.engine())),
        "lattice" | "hibernated" => {
            dense
                .start_actor_file(
                    "idle",
                    &module,
                    ActorLimits::new()
                        .max_instances(count)
                        .timeout(Duration::from_millis(sleep_ms * 2)),
                )
                .await
                .expect("starts");
        }
        other => {
            panic!("{FOOTPRINT_ENV}: no kind {other:?} (raw, smallest, lattice or hibernated)")
        }
    }
    let (before, pss_before) = (rss_bytes(), pss_bytes());
    let (mut kept_raw, mut kept_smallest) = (Vec::new(), Vec::new());
    let idle = match (raw, smallest) {
        (Some(raw), _) => {
            kept_raw = raw.serve(count, &payload).await;
            kept_raw.len()
        }
        (_, Some(smallest)) => {
            kept_smallest = smallest.serve(count);
            kept_smallest.len()
        }
        _ => {
            let calls: Vec<_> = (0..count)
                .map(|_| {
                    let dense = dense.clone();
                    let payload = payload.clone();
                    tokio::spawn(async move {
                        dense
                            .invoke(Call::new("idle", "idle", "sleep", &payload))
                            .await
                            .expect("sleeps")
                    })
                })
                .collect();
            for call in calls {
                call.await.expect("joins");
            }
            if hibernated {
                // Until every instance sleeps (the sweeper's thread puts
                // them to sleep one by one, from 200 ms after their call).
                let deadline = Instant::now() + Duration::from_secs(120);
                while dense.hibernating_instances("idle") < Some(count as usize)
                    && Instant::now() < deadline
                {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                dense.hibernating_instances("idle").unwrap_or(0)
            } else {
                dense.idle_instances("idle").unwrap_or(0)
            }
        }
    };
    let after = rss_bytes();
    let (image, image_anon) = resident_in_images(idle);
    let footprint = Footprint {
        idle: idle as u64,
        rss: after.0.saturating_sub(before.0),
        anon: after.1.saturating_sub(before.1),
        pss: pss_bytes().saturating_sub(pss_before),
        image,
        image_anon,
        // The engine's fiber stacks: 2 x max_wasm_stack (512 KiB) + 1 MiB.
        stacks: resident_in_mappings_of(2 * (512 << 10) + (1 << 20)),
        mappings: mappings().saturating_sub(maps_before) as u64,
        seconds: started.elapsed().as_secs_f64(),
    };
    println!("{}", footprint.to_line());
    drop((kept_raw, kept_smallest));
}
