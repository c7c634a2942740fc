//! The wasmtime engine of a host and the ticker that drives its deadlines.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use lattice::{Error, ErrorKind};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::options::HostOptions;

/// One engine per host: async support (guests call other actors while the
/// host stays async), epoch interruption (deadlines), optional fuel, and the
/// pooling allocator unless turned off.
pub(crate) fn new_engine(options: &HostOptions) -> Result<Engine, Error> {
    let mut config = Config::new();
    config.epoch_interruption(true);
    config.consume_fuel(options.fuel);
    config.max_wasm_stack(options.max_wasm_stack);
    config.async_stack_size(options.max_wasm_stack + (1 << 20));
    if options.pooling {
        let mut pool = PoolingAllocationConfig::default();
        let n = options.pool_instances;
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
