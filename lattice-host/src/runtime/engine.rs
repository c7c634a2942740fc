//! The wasmtime engine of a host and the ticker that drives its deadlines.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use lattice::{Error, ErrorKind};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ProfilingStrategy,
};

use crate::runtime::options::HostOptions;

/// One engine per host: async support (guests call other actors while the
/// host stays async), epoch interruption (deadlines), optional fuel, and the
/// pooling allocator unless turned off.
pub(crate) fn new_engine(options: &HostOptions) -> Result<Engine, Error> {
    let mut config = Config::new();
    config.epoch_interruption(true);
    config.consume_fuel(options.fuel);
    config.max_wasm_stack(options.max_wasm_stack);
    // A fiber holds its guest's wasm stack and, when that guest calls an
    // actor that runs inline (see `Actor::runs_inline`), the callee's too;
    // plus 1 MiB for the host's frames. Only the pages used are resident.
    config.async_stack_size(2 * options.max_wasm_stack + (1 << 20));
    // `LATTICE_PERFMAP=1`: name the compiled guest functions in
    // /tmp/perf-PID.map, so that perf (and the performance chapter's
    // callgrind recipe) can tell guest code apart.
    if std::env::var_os("LATTICE_PERFMAP").is_some_and(|v| v != "0") {
        config.profiler(ProfilingStrategy::PerfMap);
    }
    if options.pooling {
        let n = options.pool_instances;
        check_map_count(n)?;
        if !fast_memories_fit(n) {
            // Past a few thousand slots, 4 GiB reservations no longer fit in
            // a process's address space: reserve what an instance may use,
            // and let compiled code check bounds explicitly.
            config.memory_reservation(options.pool_memory);
            config.memory_guard_size(SMALL_GUARD);
        }
        let mut pool = PoolingAllocationConfig::default();
        pool.total_core_instances(n);
        pool.total_memories(n);
        pool.total_tables(n);
        pool.total_stacks(n);
        pool.max_memories_per_module(1);
        pool.max_tables_per_module(1);
        pool.max_memory_size(usize::try_from(options.pool_memory).unwrap_or(usize::MAX));
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    Engine::new(&config).map_err(|e| {
        Error::new(
            ErrorKind::Remote,
            format!("cannot create the wasmtime engine: {e:#}"),
        )
    })
}

/// The address space of one pooled memory with wasmtime's defaults on 64-bit
/// hosts: a 4 GiB reservation (compiled code then needs no bounds checks)
/// and a 32 MiB guard region.
const FAST_SLOT: u64 = (4 << 30) + (32 << 20);

/// The share of the 128 TiB user address space of x86-64 and aarch64
/// Linux processes that pooled memories may take with fast slots.
const FAST_BUDGET: u64 = 32 << 40;

/// The guard region after each memory when reservations are small.
const SMALL_GUARD: u64 = 2 << 20;

/// Whether `n` pooled memories fit with 4 GiB reservations: up to about
/// 8,000 instances.
fn fast_memories_fit(n: u32) -> bool {
    u64::from(n) * FAST_SLOT <= FAST_BUDGET
}

/// Memory mappings a pooled instance needs: its memory slot split around its
/// accessible pages and copy-on-write image, and its fiber stack split at
/// its guard page (the `lattice` bench counts 6.0 per idle instance).
const MAPS_PER_INSTANCE: u64 = 6;

/// Mappings left for the rest of the process: libraries, thread stacks,
/// allocator arenas, compiled code.
const OTHER_MAPS: u64 = 5_000;

/// Fails early, with the fix, when the kernel's limit on memory mappings
/// (`vm.max_map_count`, 65,530 by default) is too low for `n` pooled
/// instances: wasmtime would fail later with a bare "out of memory".
fn check_map_count(n: u32) -> Result<(), Error> {
    let Some(limit) = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
    else {
        return Ok(());
    };
    let needed = u64::from(n) * MAPS_PER_INSTANCE + OTHER_MAPS;
    if needed > limit {
        return Err(Error::new(
            ErrorKind::LimitExceeded,
            format!(
                "a pool of {n} instances needs up to {needed} memory mappings, and this \
                 kernel allows {limit}: raise the limit (`sysctl -w vm.max_map_count={needed}`) \
                 or lower pool_instances"
            ),
        ));
    }
    Ok(())
}

/// Advances the engine's epoch every tick, on a thread of its own, until
/// dropped.
pub(crate) struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    pub(crate) fn start(engine: &Engine, tick: Duration) -> EpochTicker {
        let stop = Arc::new(AtomicBool::new(false));
        let weak = engine.weak();
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("lattice-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })
            .map(drop)
            .unwrap_or_else(|e| tracing::error!(error = %e, "cannot start the epoch ticker: deadlines will not be enforced"));
        EpochTicker { stop }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
