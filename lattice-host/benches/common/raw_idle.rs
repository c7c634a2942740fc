//! The baselines of the density benchmark: wasmtime alone running the idle
//! actor, and wasmtime's own floor, the smallest guest. Each instance is created from an `InstancePre` on the engine
//! given (a host's, so the pool, stacks and epochs are the host's), serves
//! one `sleep` call through the actor's dispatch export on a fiber, and is
//! kept. WASI is wasmtime-wasi's preview 1; the `lattice` imports (which a
//! sleeping call does not use) are traps.

use std::sync::Arc;

use lattice::abi;
use wasmtime::{Engine, InstancePre, Linker, Module, Store, TypedFunc};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p1::WasiP1Ctx;

/// The contract and method of the idle actor's one call.
const CONTRACT: &[u8] = b"idle";
const METHOD: &[u8] = b"sleep";

/// The idle actor's module, linked, and where its input buffer is.
pub(crate) struct RawIdle {
    engine: Engine,
    pre: InstancePre<WasiP1Ctx>,
    input_at: usize,
}

impl RawIdle {
    /// Compiles and links `module`, and asks one instance where the module's
    /// input buffer is (a static, at the same place in every instance).
    pub(crate) async fn new(engine: &Engine, module: &std::path::Path) -> RawIdle {
        let module = Module::from_file(engine, module).expect("compiles");
        let mut linker: Linker<WasiP1Ctx> = Linker::new(engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut linker, |wasi| wasi).expect("links WASI");
        linker
            .define_unknown_imports_as_traps(&module)
            .expect("links the rest");
        let pre = linker.instantiate_pre(&module).expect("links");
        let mut store = store(engine);
        let instance = pre
            .instantiate_async(&mut store)
            .await
            .expect("instantiates");
        let input = instance
            .get_typed_func::<(), i64>(&mut store, abi::INPUT)
            .expect("the idle actor exports its input buffer");
        let (input_at, _, _) =
            abi::unpack(input.call_async(&mut store, ()).await.expect("input") as u64);
        RawIdle {
            engine: engine.clone(),
            pre,
            input_at: input_at as usize,
        }
    }

    /// `count` instances, each having served one call with `payload` (all
    /// at once, each on a task of its own), kept.
    pub(crate) async fn serve(self, count: u32, payload: &[u8]) -> Vec<Store<WasiP1Ctx>> {
        let this = Arc::new(self);
        let input: Arc<[u8]> = [CONTRACT, METHOD, payload].concat().into();
        let lens = (
            CONTRACT.len() as i32,
            METHOD.len() as i32,
            payload.len() as i32,
        );
        let calls: Vec<_> = (0..count)
            .map(|_| {
                let this = this.clone();
                let input = input.clone();
                tokio::spawn(async move { this.call(&input, lens).await })
            })
            .collect();
        let mut kept = Vec::with_capacity(calls.len());
        for call in calls {
            kept.push(call.await.expect("joins"));
        }
        kept
    }

    /// A fresh instance that has served one call.
    async fn call(
        &self,
        input: &[u8],
        (contract, method, payload): (i32, i32, i32),
    ) -> Store<WasiP1Ctx> {
        let mut store = store(&self.engine);
        let instance = self
            .pre
            .instantiate_async(&mut store)
            .await
            .expect("instantiates");
        let memory = instance
            .get_memory(&mut store, abi::MEMORY)
            .expect("memory");
        memory
            .write(&mut store, self.input_at, input)
            .expect("the input fits");
        let dispatch = instance
            .get_typed_func::<(i32, i32, i32, i32, i64), i64>(&mut store, abi::DISPATCH)
            .expect("dispatch");
        let reply = dispatch
            .call_async(
                &mut store,
                (self.input_at as i32, contract, method, payload, 0),
            )
            .await
            .expect("sleeps");
        let (_, _, is_error) = abi::unpack(reply as u64);
        assert!(!is_error, "the idle actor's sleep failed");
        store
    }
}

/// A store whose calls never reach their epoch deadline.
fn store(engine: &Engine) -> Store<WasiP1Ctx> {
    let mut store = Store::new(engine, WasiCtxBuilder::new().build_p1());
    store.set_epoch_deadline(u64::MAX / 2);
    store
}

/// The smallest guest (the raw echo's), linked: wasmtime's own floor for an
/// idle instance.
pub(crate) struct RawSmallest {
    engine: Engine,
    pre: InstancePre<()>,
}

impl RawSmallest {
    pub(crate) fn new(engine: &Engine) -> RawSmallest {
        let module = Module::new(engine, wat::parse_str(crate::raw_echo::WAT).expect("wat"))
            .expect("compiles");
        let pre = Linker::new(engine).instantiate_pre(&module).expect("links");
        RawSmallest {
            engine: engine.clone(),
            pre,
        }
    }

    /// `count` instances, each having served one synchronous call of 64
    /// bytes (on the thread's stack: no fiber), kept.
    pub(crate) fn serve(&self, count: u32) -> Vec<Store<()>> {
        (0..count)
            .map(|_| {
                let mut store = Store::new(&self.engine, ());
                store.set_epoch_deadline(u64::MAX / 2);
                let instance = self.pre.instantiate(&mut store).expect("instantiates");
                let memory = instance.get_memory(&mut store, "memory").expect("memory");
                memory.write(&mut store, 0, &[7; 64]).expect("write");
                let echo: TypedFunc<i32, i32> =
                    instance.get_typed_func(&mut store, "echo").expect("echo");
                assert_eq!(echo.call(&mut store, 64).expect("echoes"), 64);
                store
            })
            .collect()
    }
}
