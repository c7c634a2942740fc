//! The baseline of the instantiation benchmarks: wasmtime's own
//! instantiation of a module from an `InstancePre`, with every import
//! linked as a trap, so that nothing of the host is counted. Shared by the
//! `in_host` and `lattice` benches.

use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, InstancePre, Linker, Module,
    PoolingAllocationConfig,
};

/// The pooling allocator with `slots` of each kind, like a host's, and
/// epoch interruption when `epochs` (a host's instances have it).
pub(crate) fn pooling_config(slots: u32, epochs: bool) -> Config {
    let mut config = Config::new();
    config.epoch_interruption(epochs);
    let mut pool = PoolingAllocationConfig::default();
    pool.total_core_instances(slots)
        .total_memories(slots)
        .total_tables(slots)
        .total_stacks(slots)
        .max_memories_per_module(1)
        .max_tables_per_module(1)
        .max_memory_size(64 << 20);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}

/// `bytes` compiled with `config` and linked with every import a trap.
pub(crate) fn raw_pre(config: Config, bytes: &[u8]) -> (Engine, InstancePre<()>) {
    let engine = Engine::new(&config).expect("engine");
    let module = Module::new(&engine, bytes).expect("compiles");
    let mut linker: Linker<()> = Linker::new(&engine);
    linker
        .define_unknown_imports_as_traps(&module)
        .expect("imports");
    let pre = linker.instantiate_pre(&module).expect("links");
    (engine, pre)
}
