//! The baseline of the echo benchmarks: the smallest echo guest, called
//! straight through wasmtime. The host writes the input at 0, the guest
//! copies it to 64 KiB, the host reads it back. Shared by the `in_host`
//! bench, the Extism peer, and (its guest) the `lattice` bench's density
//! floor.

use wasmtime::{Engine, Linker, Memory, Module, Store, TypedFunc};

/// The guest: no data, no imports, one function.
pub(crate) const WAT: &str = r#"(module
  (memory (export "memory") 2)
  (func (export "echo") (param $len i32) (result i32)
    (memory.copy (i32.const 65536) (i32.const 0) (local.get $len))
    (local.get $len)))"#;

/// Where the guest writes its reply; inputs may be up to this long.
const REPLY_AT: usize = 65536;

/// An instance of the echo guest on an engine of its own.
pub(crate) struct RawEcho {
    store: Store<()>,
    memory: Memory,
    func: TypedFunc<i32, i32>,
}

impl RawEcho {
    pub(crate) fn new() -> Self {
        let engine = Engine::default();
        let module = Module::new(&engine, wat::parse_str(WAT).expect("wat")).expect("compiles");
        let mut store = Store::new(&engine, ());
        let instance = Linker::new(&engine)
            .instantiate(&mut store, &module)
            .expect("instantiates");
        let memory = instance.get_memory(&mut store, "memory").expect("memory");
        let func = instance.get_typed_func(&mut store, "echo").expect("echo");
        RawEcho {
            store,
            memory,
            func,
        }
    }

    /// Copies `input` in, calls, copies the reply out into `output`.
    pub(crate) fn call(&mut self, input: &[u8], output: &mut [u8]) {
        assert!(input.len() <= REPLY_AT, "the raw echo takes at most 64 KiB");
        self.memory.write(&mut self.store, 0, input).expect("write");
        let len = self
            .func
            .call(&mut self.store, input.len() as i32)
            .expect("call");
        self.memory
            .read(&self.store, REPLY_AT, &mut output[..len as usize])
            .expect("read");
    }
}
