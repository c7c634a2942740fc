//! Instances of actors: the store state, the host imports, and one call.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use futures_util::FutureExt;
use lattice::abi::{self, LogLevel};
use lattice::{ContractInfo, Error, ErrorKind, RawCall};
use tokio::time::Instant;
use wasmtime::{
    Caller, Engine, Extern, Func, Instance, Linker, Memory, Module, ModuleExport, ResourceLimiter,
    Store, Trap, TypedFunc, UpdateDeadline, ValRaw, WasmParams, WasmResults,
};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p1::WasiP1Ctx;

use crate::runtime::hibernate::{PageMap, Snapshot};
use crate::runtime::host::{Actor, Call, HostInner, Published};

/// The longest log line or panic message taken from a guest.
const MAX_TEXT: usize = 16 << 10;
/// The first input buffer of an instance; it grows to fit larger calls.
const FIRST_SCRATCH: u32 = 1 << 10;

/// The state of one instance's store.
pub(crate) struct InstanceState {
    /// Built when the guest first calls a WASI function: most actors never
    /// do, and building one costs about 2,700 instructions and a kilobyte
    /// per instance.
    wasi: Option<Box<WasiP1Ctx>>,
    limiter: MemoryLimiter,
    host: Weak<HostInner>,
    actor: Arc<str>,
    /// What the actor's signed claims let it call and publish; `None`:
    /// anything.
    caps: Option<Arc<crate::claims::Capabilities>>,
    memory: Option<Memory>,
    /// The deadline of the call in progress.
    deadline: Instant,
    /// A reply waiting for `take_reply`.
    pending: Vec<u8>,
    /// The message the guest's panic hook handed over.
    panic: Option<String>,
    /// The trace context of the call in progress.
    traceparent: Option<String>,
    /// The guest code running now runs inline (on the host's thread, not
    /// on a fiber), so it cannot yield at an epoch tick.
    inline: bool,
    /// An inline call ran past an epoch tick: its actor moves to fibers.
    overran: bool,
}

impl InstanceState {
    /// The WASI context, built on first use: no arguments, no environment,
    /// no preopened directories, no stdio.
    fn wasi(&mut self) -> &mut WasiP1Ctx {
        self.wasi
            .get_or_insert_with(|| Box::new(WasiCtxBuilder::new().build_p1()))
    }
}

/// Caps linear memory, and remembers when the cap was hit.
struct MemoryLimiter {
    max: usize,
    hit: bool,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max {
            self.hit = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE)
    }
}

/// The most elements of a guest's table.
const MAX_TABLE: usize = 100_000;

/// Whether instances of a module of this shape need the limiter while they
/// are instantiated: when their memories or tables start larger than the
/// limits allow (the instantiation fails, as it should), or when a start
/// function runs in it. Otherwise the limiter, asked at instantiation about
/// each memory and table, would only say yes (about 130 instructions of a
/// fresh instance, callgrind), and it is installed after.
pub(crate) fn limits_instantiation(shape: &crate::runtime::module::Shape, max_memory: u64) -> bool {
    shape.start || shape.memory > max_memory || shape.table > MAX_TABLE as u64
}

/// The deadline passed: raised from the epoch callback.
#[derive(Debug)]
struct DeadlineExceeded;

impl std::fmt::Display for DeadlineExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the call ran past its deadline")
    }
}

impl std::error::Error for DeadlineExceeded {}

/// A guest broke the ABI (pointers out of bounds, bad names).
#[derive(Debug)]
struct AbiViolation(String);

impl std::fmt::Display for AbiViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the actor broke the lattice ABI: {}", self.0)
    }
}

impl std::error::Error for AbiViolation {}

/// Where a module's exports are, found once per module: an instance then
/// takes each by index. Looking an export up by name and typing it costs
/// about 2,000 instructions, five of them about 40% of a fresh instance
/// (callgrind), and a missing `_initialize` cost an error value each time.
pub(crate) struct Exports {
    memory: ModuleExport,
    dispatch: ModuleExport,
    describe: ModuleExport,
    alloc: ModuleExport,
    free: ModuleExport,
    /// The reactor initializer, when the module has one.
    initialize: Option<ModuleExport>,
    /// The module's own input buffer ([`abi::INPUT`]), when it has one.
    input: Option<ModuleExport>,
}

impl Exports {
    pub(crate) fn of(module: &Module) -> Result<Exports, Error> {
        let find = |name: &str| {
            module.get_export_index(name).ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidModule,
                    format!("the module does not export `{name}`"),
                )
            })
        };
        let dispatch = find(abi::DISPATCH)?;
        if !has_dispatch_type(module) {
            return Err(Error::new(
                ErrorKind::InvalidModule,
                format!(
                    "the module's `{}` export is not a function of type {DISPATCH_TYPE}; \
                     build the actor for wasm32-wasip1 with the actor SDK",
                    abi::DISPATCH
                ),
            ));
        }
        Ok(Exports {
            memory: find(abi::MEMORY)?,
            dispatch,
            describe: find(abi::DESCRIBE)?,
            alloc: find(abi::ALLOC)?,
            free: find(abi::FREE)?,
            initialize: module.get_export_index("_initialize"),
            input: module.get_export_index(abi::INPUT),
        })
    }
}

/// The parameters and result of [`abi::DISPATCH`].
type DispatchParams = (u32, u32, u32, u32, u64);
type DispatchFunc = TypedFunc<DispatchParams, u64>;
const DISPATCH_TYPE: &str = "(i32, i32, i32, i32, i64) -> i64";

/// Whether `module`'s [`abi::DISPATCH`] export has the type of
/// [`DispatchFunc`]: checked once per module, so that its instances can
/// type the function without checking again (see [`Dispatch::call`]).
fn has_dispatch_type(module: &Module) -> bool {
    let Some(wasmtime::ExternType::Func(ty)) = module.get_export(abi::DISPATCH) else {
        return false;
    };
    let params: Vec<_> = ty.params().collect();
    let results: Vec<_> = ty.results().collect();
    matches!(
        params.as_slice(),
        [a, b, c, d, e] if a.is_i32() && b.is_i32() && c.is_i32() && d.is_i32() && e.is_i64()
    ) && matches!(results.as_slice(), [r] if r.is_i64())
}

/// An instance's [`abi::DISPATCH`] function. Called inline, it needs no
/// typed wrapper: a [`TypedFunc`] roots its function type in the engine's
/// registry (a lock and a count, and again when it drops), about 130
/// instructions of each fresh instance (callgrind), which actors that run
/// inline never use. Calls on a fiber type it at the first of them.
struct Dispatch {
    func: Func,
    typed: Option<DispatchFunc>,
}

#[allow(unsafe_code)]
impl Dispatch {
    fn of(
        instance: &Instance,
        store: &mut Store<InstanceState>,
        actor: &Actor,
    ) -> Result<Dispatch, Error> {
        let func = instance
            .get_module_export(&mut *store, &actor.exports.dispatch)
            .and_then(Extern::into_func)
            .ok_or_else(|| setup_failed(actor, &"its dispatch export is not a function"))?;
        Ok(Dispatch { func, typed: None })
    }

    /// Calls the function, inline or on a fiber as the actor runs now.
    async fn call(
        &mut self,
        actor: &Actor,
        on_fiber: bool,
        store: &mut Store<InstanceState>,
        args: DispatchParams,
    ) -> wasmtime::Result<u64> {
        if actor.runs_inline(on_fiber) {
            return inline(actor, store, |store| self.call_inline(store, args));
        }
        let func = self.func;
        // SAFETY: `TypedFunc::new_unchecked` requires that `Func::typed`
        // would succeed for these types. `func` is the export
        // `actor.exports.dispatch` of an instance of `actor`'s module
        // (`exports` was found in the module its `InstancePre`
        // instantiates), and `Exports::of` refused that module unless this
        // export has exactly the type `has_dispatch_type` checks, `(i32, i32,
        // i32, i32, i64) -> i64`, which is `DispatchFunc`'s: plain numbers,
        // which `typed` matches exactly.
        let typed = self
            .typed
            .get_or_insert_with(|| unsafe { TypedFunc::new_unchecked(&*store, func) });
        run(actor, on_fiber, store, typed, args).await
    }

    fn call_inline(
        &self,
        store: &mut Store<InstanceState>,
        (input, contract_len, method_len, payload_len, fingerprint): DispatchParams,
    ) -> wasmtime::Result<u64> {
        let mut slots = [
            ValRaw::u32(input),
            ValRaw::u32(contract_len),
            ValRaw::u32(method_len),
            ValRaw::u32(payload_len),
            ValRaw::u64(fingerprint),
        ];
        // SAFETY: `Func::call_unchecked` requires `slots` to hold the
        // function's parameters, of its types, and room for its results:
        // the function has the type `(i32, i32, i32, i32, i64) -> i64`
        // (see `call` for why), which takes the five plain numbers above and
        // writes its one result over the first. It skips the checks of
        // `TypedFunc::call`, which hold here: a store that needs async calls
        // has async host functions, which only the fiber linker has, and an
        // actor runs inline only with the inline linker (see `linker`); and
        // this store is not on a fiber of its own, as an inline call runs
        // on the caller's stack.
        unsafe { self.func.call_unchecked(&mut *store, &mut slots)? };
        Ok(slots[0].get_u64())
    }
}

/// What a reply is copied into out of guest memory: a `Vec` for callers in
/// process, a body from the [`lattice::buffer`] arena for a reply that goes
/// out over NATS (a `Vec` would be one allocation more there, and a second
/// when async-nats first clones it).
pub(crate) trait ReplyBody: Sized {
    fn copy_of(reply: &[u8]) -> Self;
}

impl ReplyBody for Vec<u8> {
    fn copy_of(reply: &[u8]) -> Self {
        reply.to_vec()
    }
}

impl ReplyBody for bytes::Bytes {
    fn copy_of(reply: &[u8]) -> Self {
        lattice::buffer::copy(reply)
    }
}

/// A warm instance: its store and the exports a call needs. The rarely
/// used ones (`describe`, `free`, and `alloc`, which only an input larger
/// than the buffer needs) are taken from the instance when first used.
pub(crate) struct Warm {
    store: Store<InstanceState>,
    instance: Instance,
    memory: Memory,
    dispatch: Dispatch,
    alloc: Option<TypedFunc<u32, u32>>,
    /// Where the input goes: the module's own buffer, or one allocated with
    /// `alloc` (then `scratch_owned`, and freed when it is replaced).
    scratch: u32,
    scratch_len: u32,
    scratch_owned: bool,
    /// When it last went idle (set as it goes back to the idle list).
    pub(crate) idle_since: Instant,
    /// While it hibernates: the pages its memory had written (see
    /// `hibernate.rs`); the next call writes them back first.
    snapshot: Option<Snapshot>,
}

/// What a module may import and still run inline (see
/// [`HostOptions::inline_calls`](crate::HostOptions::inline_calls)): the
/// `lattice` imports that return at once, and the WASI functions that never
/// wait (`fd_write` through [`fd_write_inline`]).
const INLINE_IMPORTS: &[(&str, &str)] = &[
    (abi::IMPORT_MODULE, abi::TAKE_REPLY),
    (abi::IMPORT_MODULE, abi::LOG),
    (abi::IMPORT_MODULE, abi::LOG_ENABLED),
    (abi::IMPORT_MODULE, abi::PANIC),
    (abi::IMPORT_MODULE, abi::PUBLISH),
    (WASI, "args_get"),
    (WASI, "args_sizes_get"),
    (WASI, "environ_get"),
    (WASI, "environ_sizes_get"),
    (WASI, "clock_res_get"),
    (WASI, "clock_time_get"),
    (WASI, "random_get"),
    (WASI, "sched_yield"),
    (WASI, "proc_exit"),
    (WASI, "fd_write"),
];

const WASI: &str = "wasi_snapshot_preview1";

/// Whether every import of `module` is one an inline call may make.
pub(crate) fn can_run_inline(module: &Module) -> bool {
    module
        .imports()
        .all(|i| INLINE_IMPORTS.contains(&(i.module(), i.name())))
}

/// A linker with WASI preview 1 and the `lattice` imports. The `inline` one
/// links only modules that [`can_run_inline`]: its functions never wait, so
/// its instances can be called without a fiber (and on one, once their actor
/// moved to fibers). The other links every actor, and its instances are
/// always called on a fiber.
pub(crate) fn linker(engine: &Engine, inline: bool) -> Result<Linker<InstanceState>, Error> {
    let mut linker: Linker<InstanceState> = Linker::new(engine);
    let setup = |e: wasmtime::Error| {
        Error::new(
            ErrorKind::Remote,
            format!("cannot set up the linker: {e:#}"),
        )
    };
    if inline {
        // Only the WASI functions in `INLINE_IMPORTS` are reachable: the
        // others of the sync set block on the Tokio runtime, which panics on
        // one of its threads. `fd_write` is in that set, hence ours.
        wasmtime_wasi::p1::add_to_linker_sync(&mut linker, InstanceState::wasi).map_err(setup)?;
        linker.allow_shadowing(true);
        linker
            .func_wrap(WASI, "fd_write", fd_write_inline)
            .map_err(setup)?;
        linker.allow_shadowing(false);
        linker
            .func_wrap(
                abi::IMPORT_MODULE,
                abi::PUBLISH,
                |mut caller: Caller<'_, InstanceState>,
                 subject: u32,
                 subject_len: u32,
                 payload: u32,
                 payload_len: u32|
                 -> wasmtime::Result<u64> {
                    let event = Event::read(&caller, subject, subject_len, payload, payload_len)?;
                    // Inline, `publish` never waits (see `Event::publish`),
                    // so its future is ready at its first poll.
                    let result = event.publish(true).now_or_never().unwrap_or_else(|| {
                        Err(Error::new(
                            ErrorKind::Overloaded,
                            "the event could not be sent now",
                        ))
                    });
                    Ok(set_pending(caller.data_mut(), result))
                },
            )
            .map_err(setup)?;
    } else {
        wasmtime_wasi::p1::add_to_linker_async(&mut linker, InstanceState::wasi).map_err(setup)?;
        fiber_imports(&mut linker).map_err(setup)?;
    }
    lattice_imports(&mut linker).map_err(setup)?;
    Ok(linker)
}

/// The `lattice` imports that wait: `call`, `kv`, and `publish` as it
/// waits for room in the host's NATS connection.
fn fiber_imports(linker: &mut Linker<InstanceState>) -> wasmtime::Result<()> {
    linker.func_wrap_async(
        abi::IMPORT_MODULE,
        abi::CALL,
        |mut caller: Caller<'_, InstanceState>,
         (
            actor,
            actor_len,
            contract,
            contract_len,
            method,
            method_len,
            payload,
            payload_len,
            _version,
            fingerprint,
            timeout_ms,
            flags,
        ): (u32, u32, u32, u32, u32, u32, u32, u32, u32, u64, u64, i32)| {
            Box::new(async move {
                // Borrowed from the caller's memory: the caller waits in
                // this import, so nothing can change or grow its memory
                // until the call returns.
                let memory = memory(&caller)?;
                let actor = read_str(memory, actor, actor_len, "actor name")?;
                let contract = read_str(memory, contract, contract_len, "contract name")?;
                let method = read_str(memory, method, method_len, "method name")?;
                let payload = read(memory, payload, payload_len, "payload")?;
                let state = caller.data();
                let host = state.host.upgrade();
                let mut deadline = state.deadline;
                if timeout_ms > 0 {
                    deadline =
                        deadline.min(Instant::now() + std::time::Duration::from_millis(timeout_ms));
                }
                if let Some(caps) = &state.caps {
                    let granted = caps.may_call(lattice::key::split(actor).0, contract);
                    if let Err(e) = granted {
                        return Ok(set_pending(caller.data_mut(), Err(e)));
                    }
                }
                let outgoing = Outgoing {
                    actor,
                    contract,
                    method,
                    payload,
                    fingerprint: (fingerprint != 0).then_some(fingerprint),
                    deadline,
                    traceparent: state.traceparent.as_deref(),
                    oneway: flags & abi::CALL_ONEWAY != 0,
                    idempotent: flags & abi::CALL_IDEMPOTENT != 0,
                    on_fiber: true,
                };
                let result = match host {
                    None => Err(Error::new(
                        ErrorKind::Transport,
                        "the host is shutting down",
                    )),
                    Some(host) if outgoing.oneway => {
                        outgoing.spawn(host);
                        Ok(Vec::new())
                    }
                    Some(host) => outgoing.send(&host).await,
                };
                Ok(set_pending(caller.data_mut(), result))
            })
        },
    )?;

    linker.func_wrap_async(
        abi::IMPORT_MODULE,
        abi::KV,
        |mut caller: Caller<'_, InstanceState>, (request, request_len): (u32, u32)| {
            Box::new(async move {
                let memory = memory(&caller)?;
                let request = read(memory, request, request_len, "kv request")?;
                let state = caller.data();
                let result = match state.host.upgrade() {
                    None => Err(Error::new(
                        ErrorKind::Transport,
                        "the host is shutting down",
                    )),
                    Some(host) => {
                        let buckets = host.buckets();
                        crate::runtime::kv::run(&*buckets, &state.actor, request, state.deadline)
                            .await
                    }
                };
                Ok(set_pending(caller.data_mut(), result))
            })
        },
    )?;

    linker.func_wrap_async(
        abi::IMPORT_MODULE,
        abi::PUBLISH,
        |mut caller: Caller<'_, InstanceState>, (subject, subject_len, payload, payload_len)| {
            Box::new(async move {
                let event = Event::read(&caller, subject, subject_len, payload, payload_len)?;
                let result = event.publish(false).await;
                Ok(set_pending(caller.data_mut(), result))
            })
        },
    )?;

    Ok(())
}

/// The `lattice` imports that return at once.
fn lattice_imports(linker: &mut Linker<InstanceState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        abi::IMPORT_MODULE,
        abi::TAKE_REPLY,
        |mut caller: Caller<'_, InstanceState>, ptr: u32| -> wasmtime::Result<()> {
            let pending = std::mem::take(&mut caller.data_mut().pending);
            let memory = memory_of(&caller)?;
            memory
                .write(&mut caller, ptr as usize, &pending)
                .map_err(|_| {
                    AbiViolation(format!("take_reply to {ptr:#x} is outside memory")).into()
                })
        },
    )?;

    linker.func_wrap(
        abi::IMPORT_MODULE,
        abi::LOG,
        |caller: Caller<'_, InstanceState>,
         level: i32,
         msg: u32,
         msg_len: u32|
         -> wasmtime::Result<()> {
            let text = read_text(&caller, msg, msg_len)?;
            let actor = &*caller.data().actor;
            match LogLevel::from_i32(level) {
                LogLevel::Trace => tracing::trace!(target: "lattice::actor", actor, "{text}"),
                LogLevel::Debug => tracing::debug!(target: "lattice::actor", actor, "{text}"),
                LogLevel::Info => tracing::info!(target: "lattice::actor", actor, "{text}"),
                LogLevel::Warn => tracing::warn!(target: "lattice::actor", actor, "{text}"),
                LogLevel::Error => tracing::error!(target: "lattice::actor", actor, "{text}"),
            }
            Ok(())
        },
    )?;

    linker.func_wrap(
        abi::IMPORT_MODULE,
        abi::LOG_ENABLED,
        |_: Caller<'_, InstanceState>, level: i32| -> i32 {
            let enabled = match LogLevel::from_i32(level) {
                LogLevel::Trace => {
                    tracing::enabled!(target: "lattice::actor", tracing::Level::TRACE)
                }
                LogLevel::Debug => {
                    tracing::enabled!(target: "lattice::actor", tracing::Level::DEBUG)
                }
                LogLevel::Info => {
                    tracing::enabled!(target: "lattice::actor", tracing::Level::INFO)
                }
                LogLevel::Warn => {
                    tracing::enabled!(target: "lattice::actor", tracing::Level::WARN)
                }
                LogLevel::Error => {
                    tracing::enabled!(target: "lattice::actor", tracing::Level::ERROR)
                }
            };
            i32::from(enabled)
        },
    )?;

    linker.func_wrap(
        abi::IMPORT_MODULE,
        abi::PANIC,
        |mut caller: Caller<'_, InstanceState>, msg: u32, msg_len: u32| -> wasmtime::Result<()> {
            let text = read_text(&caller, msg, msg_len)?;
            caller.data_mut().panic = Some(text);
            Ok(())
        },
    )?;
    Ok(())
}

/// WASI's `fd_write` for instances that run inline. The WASI context of an
/// instance has no stdio, so this does what its own `fd_write` (which needs
/// a fiber) does: a write to stdout or stderr takes the first non-empty
/// buffer and drops it, any other descriptor is `EBADF`, and a pointer
/// outside memory or misaligned traps.
fn fd_write_inline(
    mut caller: Caller<'_, InstanceState>,
    fd: i32,
    iovs: u32,
    iovs_len: u32,
    nwritten: u32,
) -> wasmtime::Result<i32> {
    const SUCCESS: i32 = 0;
    const BADF: i32 = 8;
    if fd != 1 && fd != 2 {
        return Ok(BADF);
    }
    let Some(memory) = caller.get_export("memory").and_then(Extern::into_memory) else {
        return Ok(BADF);
    };
    let fault = |what: &str, at: u64| {
        wasmtime::Error::msg(format!(
            "WASI fd_write: the {what} at {at:#x} is outside memory or misaligned"
        ))
    };
    let data = memory.data(&caller);
    let word = |at: u64, what: &str| -> wasmtime::Result<u32> {
        let start = usize::try_from(at).map_err(|_| fault(what, at))?;
        match data
            .get(start..start + 4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
        {
            Some(bytes) if at.is_multiple_of(4) => Ok(u32::from_le_bytes(bytes)),
            _ => Err(fault(what, at)),
        }
    };
    let mut written = 0;
    for i in 0..u64::from(iovs_len) {
        let at = u64::from(iovs) + 8 * i;
        let (buf, len) = (word(at, "iovec")?, word(at + 4, "iovec")?);
        if len == 0 {
            continue;
        }
        if data
            .get(buf as usize..buf as usize + len as usize)
            .is_none()
        {
            return Err(fault("buffer", u64::from(buf)));
        }
        written = len;
        break;
    }
    let at = nwritten as usize;
    if !nwritten.is_multiple_of(4) || at + 4 > memory.data_size(&caller) {
        return Err(fault("result", u64::from(nwritten)));
    }
    memory.data_mut(&mut caller)[at..at + 4].copy_from_slice(&written.to_le_bytes());
    Ok(SUCCESS)
}

/// A call from a guest to another actor, borrowed from the caller's memory.
struct Outgoing<'a> {
    actor: &'a str,
    contract: &'a str,
    method: &'a str,
    payload: &'a [u8],
    fingerprint: Option<u64>,
    deadline: Instant,
    traceparent: Option<&'a str>,
    oneway: bool,
    idempotent: bool,
    /// Sent from the caller's `call` import, on its fiber (not from a task
    /// of its own).
    on_fiber: bool,
}

impl Outgoing<'_> {
    /// Sends a oneway call from a task of its own: the guest goes on at
    /// once, so the call owns copies of what it borrowed.
    fn spawn(&self, host: Arc<HostInner>) {
        let names = [self.actor, self.contract, self.method].concat();
        let ends = [self.actor.len(), self.actor.len() + self.contract.len()];
        let payload = self.payload.to_vec();
        let traceparent = self.traceparent.map(str::to_owned);
        let (fingerprint, deadline, idempotent) =
            (self.fingerprint, self.deadline, self.idempotent);
        tokio::spawn(async move {
            let outgoing = Outgoing {
                actor: &names[..ends[0]],
                contract: &names[ends[0]..ends[1]],
                method: &names[ends[1]..],
                payload: &payload,
                fingerprint,
                deadline,
                traceparent: traceparent.as_deref(),
                oneway: true,
                idempotent,
                on_fiber: false,
            };
            if let Err(e) = outgoing.send(&host).await {
                tracing::debug!(actor = outgoing.actor, error = %e, "oneway call failed");
            }
        });
    }

    /// Dispatches in process when the callee runs on this host (unless turned
    /// off), over NATS when the host has joined a lattice, and otherwise
    /// reports that nobody runs the callee.
    async fn send(&self, host: &Arc<HostInner>) -> Result<Vec<u8>, Error> {
        // A key's activation may live on another host: a keyed call on a
        // lattice always goes over it.
        let (name, key) = lattice::key::split(self.actor);
        let local = host.actor(name);
        match host.network() {
            Some(network) if !(local.is_some() && host.options().in_process && key.is_none()) => {
                host.stats
                    .guest_calls_over_nats
                    .fetch_add(1, Ordering::Relaxed);
                let remaining = self.deadline.saturating_duration_since(Instant::now());
                let reply = network
                    .call(RawCall {
                        actor: self.actor,
                        contract: self.contract,
                        method: self.method,
                        fingerprint: self.fingerprint,
                        payload: bytes::Bytes::copy_from_slice(self.payload),
                        idempotent: self.idempotent,
                        oneway: self.oneway,
                        timeout: Some(remaining),
                        traceparent: self.traceparent,
                    })
                    .await?;
                Ok(reply.to_vec())
            }
            _ => {
                host.stats
                    .guest_calls_in_process
                    .fetch_add(1, Ordering::Relaxed);
                let mut call = Call::new(name, self.contract, self.method, self.payload);
                call.on_fiber = self.on_fiber;
                call.key = key;
                if let Some(fp) = self.fingerprint {
                    call = call.fingerprint(fp);
                }
                if let Some(tp) = self.traceparent {
                    call = call.traceparent(tp);
                }
                match local {
                    Some(actor) => host.invoke_actor(actor, call, Some(self.deadline)).await,
                    None => host.invoke(call, Some(self.deadline)).await,
                }
            }
        }
    }
}

/// An event a guest publishes, read from its memory.
struct Event {
    host: Option<Arc<HostInner>>,
    actor: Arc<str>,
    caps: Option<Arc<crate::claims::Capabilities>>,
    subject: String,
    payload: Vec<u8>,
}

impl Event {
    fn read(
        caller: &Caller<'_, InstanceState>,
        subject: u32,
        subject_len: u32,
        payload: u32,
        payload_len: u32,
    ) -> wasmtime::Result<Event> {
        let memory = memory(caller)?;
        Ok(Event {
            subject: read_str(memory, subject, subject_len, "subject")?.to_owned(),
            payload: read(memory, payload, payload_len, "payload")?.to_vec(),
            host: caller.data().host.upgrade(),
            actor: caller.data().actor.clone(),
            caps: caller.data().caps.clone(),
        })
    }

    /// Delivers the event: to local subscribers, and on
    /// `lattice.{lattice}.pub.{subject}` when the host has joined a lattice.
    /// On a fiber it waits for room in the NATS connection's queue; `inline`,
    /// it never waits: when the queue is full the guest gets `overloaded`.
    async fn publish(self, inline: bool) -> Result<Vec<u8>, Error> {
        check_subject(&self.subject)?;
        if let Some(caps) = &self.caps {
            caps.may_publish(&self.subject)?;
        }
        let Some(host) = self.host else {
            return Err(Error::new(
                ErrorKind::Transport,
                "the host is shutting down",
            ));
        };
        if let Some(network) = host.network() {
            let sent = network.publish(&self.subject, self.payload.clone().into());
            let sent = if inline {
                // `unconstrained`: an exhausted task budget would make the
                // send wait even with room in the queue.
                tokio::task::unconstrained(sent)
                    .now_or_never()
                    .ok_or_else(|| {
                        Error::new(
                            ErrorKind::Overloaded,
                            "the host's NATS connection has no room for the event now; \
                             publish it again later",
                        )
                    })?
            } else {
                sent.await
            };
            sent?;
        }
        // Nobody listening locally is not an error: events are fire and forget.
        let _ = host.events.send(Published {
            actor: self.actor.to_string(),
            subject: self.subject,
            payload: self.payload,
        });
        Ok(Vec::new())
    }
}

fn check_subject(subject: &str) -> Result<(), Error> {
    for token in subject.split('.') {
        lattice::names::validate(lattice::NameKind::Event, token)?;
    }
    Ok(())
}

/// Stores a call's reply for `take_reply` and returns its packed length.
fn set_pending(state: &mut InstanceState, result: Result<Vec<u8>, Error>) -> u64 {
    let (bytes, is_error) = match result {
        Ok(bytes) => (bytes, false),
        Err(e) => (e.to_wire(), true),
    };
    let len = u32::try_from(bytes.len())
        .unwrap_or(u32::MAX)
        .min(abi::MAX_PACKED_LEN);
    state.pending = bytes;
    abi::pack(0, len, is_error)
}

fn memory_of(caller: &Caller<'_, InstanceState>) -> wasmtime::Result<Memory> {
    caller.data().memory.ok_or_else(|| {
        AbiViolation("a host import was called before the instance was ready".into()).into()
    })
}

/// The caller's memory, to read what it passes by pointer: taken once per
/// import call (each taking costs a store check).
fn memory<'c>(caller: &'c Caller<'_, InstanceState>) -> wasmtime::Result<&'c [u8]> {
    Ok(memory_of(caller)?.data(caller))
}

fn read<'m>(memory: &'m [u8], ptr: u32, len: u32, what: &str) -> wasmtime::Result<&'m [u8]> {
    memory
        .get(ptr as usize..ptr as usize + len as usize)
        .ok_or_else(|| {
            AbiViolation(format!("the {what} at {ptr:#x}+{len} is outside memory")).into()
        })
}

fn read_str<'m>(memory: &'m [u8], ptr: u32, len: u32, what: &str) -> wasmtime::Result<&'m str> {
    let bytes = read(memory, ptr, len, what)?;
    std::str::from_utf8(bytes).map_err(|_| AbiViolation(format!("the {what} is not UTF-8")).into())
}

fn read_text(caller: &Caller<'_, InstanceState>, ptr: u32, len: u32) -> wasmtime::Result<String> {
    let bytes = read(memory(caller)?, ptr, len.min(MAX_TEXT as u32), "text")?;
    Ok(String::from_utf8_lossy(bytes).into_owned())
}

/// How a guest on a fiber yields at an epoch tick: first as
/// `tokio::task::yield_now` does, so that the worker polls its I/O and
/// timers before it resumes the guest; then with a plain wake-up, as
/// wasmtime's own yield does, which puts the guest behind the tasks that
/// poll woke (tokio resumes a deferred task first, from its LIFO slot, so
/// without the second step a call that arrived during a slice waited for
/// the guest's next slice at each of its hops).
async fn yield_to_tokio() {
    tokio::task::yield_now().await;
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if std::mem::replace(&mut yielded, true) {
            std::task::Poll::Ready(())
        } else {
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await;
}

/// Creates a fresh instance of `actor`, ready for calls; its start function
/// and initializer, if any, must end by `deadline` (for a call that needs a
/// fresh instance, the call's own: no second clock read, and no longer than
/// the call may take). `on_fiber`: for a call from another guest (see
/// [`Actor::runs_inline`]).
pub(crate) async fn instantiate(
    host: &Arc<HostInner>,
    actor: &Actor,
    on_fiber: bool,
    deadline: Instant,
) -> Result<Box<Warm>, Error> {
    let state = InstanceState {
        wasi: None,
        limiter: MemoryLimiter {
            max: usize::try_from(actor.limits.max_memory).unwrap_or(usize::MAX),
            hit: false,
        },
        host: host.weak(),
        actor: actor.name.clone(),
        caps: actor.caps.clone(),
        memory: None,
        deadline,
        pending: Vec::new(),
        panic: None,
        traceparent: None,
        inline: false,
        overran: false,
    };
    let mut store = Store::new(&host.engine, state);
    if actor.limit_instantiation {
        store.limiter(|s| &mut s.limiter);
    }
    // Check the deadline at every epoch tick. On a fiber, yield to the
    // runtime in between, so that a busy guest never holds a thread of the
    // host for long; inline, it cannot yield: note it, to move its actor to
    // fibers.
    store.epoch_deadline_callback(|mut store| {
        let state = store.data_mut();
        if Instant::now() >= state.deadline {
            Err(DeadlineExceeded.into())
        } else if state.inline {
            state.overran = true;
            Ok(UpdateDeadline::Continue(1))
        } else {
            if let Some(host) = state.host.upgrade() {
                host.stats.guest_yields.fetch_add(1, Ordering::Relaxed);
            }
            // Not wasmtime's plain yield (a wake of the task from its own
            // poll) alone: while tasks stay ready, tokio looks at I/O, timers
            // and a `block_on` future only every 61 ticks (its
            // `event_interval`), and a short call beside a busy guest on one
            // thread waited about 300 ms of guest work between two of its
            // slices (see `yield_to_tokio`, and the test
            // `busy_guests_on_one_thread_take_turns_at_each_tick`).
            Ok(UpdateDeadline::YieldCustom(1, Box::pin(yield_to_tokio())))
        }
    });
    if actor.limits.fuel.is_some() {
        store
            .set_fuel(u64::MAX)
            .map_err(|e| setup_failed(actor, &e))?;
    }
    let instance = if actor.runs_inline(on_fiber) {
        // The start function, if any, runs inline too.
        inline(actor, &mut store, |store| actor.pre.instantiate(store))
    } else {
        store.set_epoch_deadline(1);
        actor.pre.instantiate_async(&mut store).await
    }
    .map_err(|e| call_failed(actor, &store, e, "instantiating"))?;
    if !actor.limit_instantiation {
        // Before any guest code runs (see `limits_instantiation`).
        store.limiter(|s| &mut s.limiter);
    }
    let exports = &actor.exports;
    let memory = instance
        .get_module_export(&mut store, &exports.memory)
        .and_then(Extern::into_memory)
        .ok_or_else(|| setup_failed(actor, &"its `memory` export is not a memory"))?;
    store.data_mut().memory = Some(memory);
    if let Some(at) = &exports.initialize {
        let initialize = typed_export::<(), ()>(&instance, &mut store, actor, at, "_initialize")?;
        run(actor, on_fiber, &mut store, &initialize, ())
            .await
            .map_err(|e| call_failed(actor, &store, e, "initializing"))?;
    }
    let dispatch = Dispatch::of(&instance, &mut store, actor)?;
    // The input goes to the module's own buffer, which is at the same place
    // in every instance (the first instance asked, see `input_buffer`), or
    // to one the first call allocates: a fresh instance runs no guest code
    // beyond its initializer, and takes `alloc` only when it needs it.
    let (scratch, scratch_len) = actor.input.unwrap_or((0, 0));
    Ok(Box::new(Warm {
        store,
        instance,
        memory,
        dispatch,
        alloc: None,
        scratch,
        scratch_len,
        scratch_owned: false,
        idle_since: Instant::now(),
        snapshot: None,
    }))
}

/// The function export at `at` of `instance`, typed.
fn typed_export<P: WasmParams, R: WasmResults>(
    instance: &Instance,
    store: &mut Store<InstanceState>,
    actor: &Actor,
    at: &ModuleExport,
    what: &str,
) -> Result<TypedFunc<P, R>, Error> {
    instance
        .get_module_export(&mut *store, at)
        .and_then(Extern::into_func)
        .ok_or_else(|| {
            setup_failed(
                actor,
                &format_args!("its `{what}` export is not a function"),
            )
        })?
        .typed(&*store)
        .map_err(|e| setup_failed(actor, &e))
}

/// Calls `func` inline or on a fiber, as the actor runs now (see
/// [`HostOptions::inline_calls`](crate::HostOptions::inline_calls)).
async fn run<P, R>(
    actor: &Actor,
    on_fiber: bool,
    store: &mut Store<InstanceState>,
    func: &TypedFunc<P, R>,
    args: P,
) -> wasmtime::Result<R>
where
    P: WasmParams + Send + Sync,
    R: WasmResults + Send + Sync,
{
    if actor.runs_inline(on_fiber) {
        inline(actor, store, |store| func.call(store, args))
    } else {
        // On a fiber, an instance idle for a tick would otherwise yield at
        // its first check.
        store.set_epoch_deadline(1);
        func.call_async(&mut *store, args).await
    }
}

/// Runs `f`, guest code, inline, and moves the actor to fibers if it ran
/// past an epoch tick.
fn inline<R>(
    actor: &Actor,
    store: &mut Store<InstanceState>,
    f: impl FnOnce(&mut Store<InstanceState>) -> R,
) -> R {
    // The epoch deadline is relative to the epoch when it is set. Inline, the
    // callback first runs after at least one whole tick: a call that only
    // straddles a tick does not move its actor to fibers.
    store.set_epoch_deadline(2);
    store.data_mut().inline = true;
    let result = f(store);
    let state = store.data_mut();
    state.inline = false;
    if std::mem::take(&mut state.overran) {
        actor.move_to_fibers(state.host.upgrade().as_deref());
    }
    result
}

fn setup_failed(actor: &Actor, e: &dyn std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::InvalidModule,
        format!("cannot set up an instance of `{}`: {e}", actor.name),
    )
}

/// Turns a failed guest call into a typed error.
fn call_failed(
    actor: &Actor,
    store: &Store<InstanceState>,
    e: wasmtime::Error,
    doing: &str,
) -> Error {
    let name = &actor.name;
    let state = store.data();
    if let Some(message) = &state.panic {
        return Error::new(
            ErrorKind::ActorPanicked,
            format!("actor `{name}` panicked: {message}"),
        );
    }
    if e.downcast_ref::<DeadlineExceeded>().is_some() {
        return Error::new(
            ErrorKind::TimedOut,
            format!(
                "actor `{name}` ran past the call's deadline while {doing}; the instance was stopped"
            ),
        );
    }
    if let Some(violation) = e.downcast_ref::<AbiViolation>() {
        return Error::new(
            ErrorKind::ActorTrapped,
            format!("actor `{name}`: {violation}"),
        );
    }
    if state.limiter.hit {
        return Error::new(
            ErrorKind::LimitExceeded,
            format!(
                "actor `{name}` reached its memory limit of {} bytes while {doing}",
                actor.limits.max_memory
            ),
        );
    }
    match e.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => Error::new(
            ErrorKind::LimitExceeded,
            format!("actor `{name}` ran out of fuel while {doing}"),
        ),
        Some(Trap::StackOverflow) => Error::new(
            ErrorKind::ActorTrapped,
            format!("actor `{name}` overflowed its stack while {doing}"),
        ),
        Some(Trap::Interrupt) => Error::new(
            ErrorKind::TimedOut,
            format!("actor `{name}` was interrupted while {doing}"),
        ),
        Some(trap) => Error::new(
            ErrorKind::ActorTrapped,
            format!("actor `{name}` trapped while {doing}: {trap}"),
        ),
        None => Error::new(
            ErrorKind::ActorTrapped,
            format!("actor `{name}` failed while {doing}: {e:#}"),
        ),
    }
}

impl Warm {
    /// A function export of the instance, typed.
    fn func<P: WasmParams, R: WasmResults>(
        &mut self,
        actor: &Actor,
        at: &ModuleExport,
        what: &str,
    ) -> Result<TypedFunc<P, R>, Error> {
        typed_export(&self.instance, &mut self.store, actor, at, what)
    }

    /// Asks the module for its input buffer ([`abi::INPUT`]), once per
    /// module, and makes it this instance's: `None` when the module has
    /// none (or an empty one). A buffer outside memory is found at the first
    /// call, as a broken ABI.
    pub(crate) async fn input_buffer(
        &mut self,
        actor: &Actor,
    ) -> Result<Option<(u32, u32)>, Error> {
        let Some(at) = &actor.exports.input else {
            return Ok(None);
        };
        self.store.data_mut().deadline = Instant::now() + actor.limits.timeout;
        let input = self.func::<(), u64>(actor, at, abi::INPUT)?;
        let packed = run(actor, false, &mut self.store, &input, ())
            .await
            .map_err(|e| call_failed(actor, &self.store, e, "naming its input buffer"))?;
        let (ptr, len, _) = abi::unpack(packed);
        if len == 0 || self.scratch_len > 0 {
            return Ok(None);
        }
        (self.scratch, self.scratch_len, self.scratch_owned) = (ptr, len, false);
        Ok(Some((ptr, len)))
    }

    /// Reads the contracts the instance implements.
    pub(crate) async fn describe(&mut self, actor: &Actor) -> Result<Vec<ContractInfo>, Error> {
        self.store.data_mut().deadline = Instant::now() + actor.limits.timeout;
        let describe = self.func::<(), u64>(actor, &actor.exports.describe, abi::DESCRIBE)?;
        let packed = run(actor, false, &mut self.store, &describe, ())
            .await
            .map_err(|e| call_failed(actor, &self.store, e, "describing its contracts"))?;
        let bytes = self.reply(actor, packed)?;
        // Schemas are JSON of any shape: bounded, as serde_json bounds what it
        // parses.
        let contracts: Vec<ContractInfo> =
            lattice::codec::decode_bounded(bytes, &"the actor's contract list", 128)
                .map_err(|e| Error::new(ErrorKind::InvalidModule, e.message().to_owned()))?;
        Ok(contracts)
    }

    /// Whether it hibernates.
    pub(crate) fn hibernates(&self) -> bool {
        self.snapshot.is_some()
    }

    /// Gives the pages of its memory back to the system, keeping those it
    /// wrote in a snapshot. On an error it stays awake, as it was.
    pub(crate) fn hibernate(&mut self, pages: &PageMap) -> std::io::Result<()> {
        if self.snapshot.is_none() {
            self.snapshot = Some(pages.hibernate(self.memory.data_mut(&mut self.store))?);
        }
        Ok(())
    }

    /// Writes a hibernated instance's pages back: an error if its snapshot
    /// does not fit its memory (then its state is lost, and it is dropped).
    fn wake(&mut self, actor: &Actor) -> Result<(), Error> {
        let Some(snapshot) = self.snapshot.take() else {
            return Ok(());
        };
        snapshot
            .restore(self.memory.data_mut(&mut self.store))
            .map_err(|e| Error::new(e.kind(), format!("`{}`: {}", actor.name, e.message())))
    }

    /// One call. The outer error means the instance is unusable and must be
    /// dropped; the inner result is the call's.
    pub(crate) async fn call<R: ReplyBody>(
        &mut self,
        actor: &Actor,
        call: Call<'_>,
        deadline: Instant,
    ) -> Result<Result<R, Error>, Error> {
        if self.snapshot.is_some() {
            self.wake(actor)?;
        }
        let (contract, method, payload) = (
            call.contract.as_bytes(),
            call.method.as_bytes(),
            call.payload,
        );
        let total = contract.len() + method.len() + payload.len();
        let total32 = u32::try_from(total).map_err(|_| {
            Error::new(
                ErrorKind::PayloadTooLarge,
                "the request is larger than 4 GiB",
            )
        });
        let total32 = match total32 {
            Ok(n) => n,
            Err(e) => return Ok(Err(e)),
        };
        {
            let state = self.store.data_mut();
            state.deadline = deadline;
            state.panic = None;
            state.limiter.hit = false;
            state.traceparent = call.traceparent.map(str::to_owned);
        }
        if let Some(fuel) = actor.limits.fuel {
            self.store
                .set_fuel(fuel)
                .map_err(|e| setup_failed(actor, &e))?;
        }
        if total32 > self.scratch_len {
            let want = total32.next_power_of_two().max(FIRST_SCRATCH);
            // Boxed: rare, and it keeps the future of every call small. The
            // module's own buffer is never freed.
            if self.scratch_owned {
                let free = self.func::<(u32, u32), ()>(actor, &actor.exports.free, abi::FREE)?;
                Box::pin(run(
                    actor,
                    call.on_fiber,
                    &mut self.store,
                    &free,
                    (self.scratch, self.scratch_len),
                ))
                .await
                .map_err(|e| call_failed(actor, &self.store, e, "freeing its input buffer"))?;
            }
            let alloc = match &self.alloc {
                Some(alloc) => alloc.clone(),
                None => {
                    let alloc = self.func(actor, &actor.exports.alloc, abi::ALLOC)?;
                    self.alloc.insert(alloc).clone()
                }
            };
            let ptr = Box::pin(run(actor, call.on_fiber, &mut self.store, &alloc, want))
                .await
                .map_err(|e| call_failed(actor, &self.store, e, "allocating its input buffer"))?;
            if ptr == 0 {
                return Err(Error::new(
                    ErrorKind::LimitExceeded,
                    format!(
                        "actor `{}` could not allocate {want} bytes for a request",
                        actor.name
                    ),
                ));
            }
            (self.scratch, self.scratch_len, self.scratch_owned) = (ptr, want, true);
        }
        let start = self.scratch as usize;
        let Some(input) = self
            .memory
            .data_mut(&mut self.store)
            .get_mut(start..start + total)
        else {
            return Err(Error::new(
                ErrorKind::ActorTrapped,
                format!(
                    "actor `{}` gave an input buffer outside its memory",
                    actor.name
                ),
            ));
        };
        input[..contract.len()].copy_from_slice(contract);
        input[contract.len()..contract.len() + method.len()].copy_from_slice(method);
        input[contract.len() + method.len()..].copy_from_slice(payload);

        let args = (
            self.scratch,
            contract.len() as u32,
            method.len() as u32,
            payload.len() as u32,
            call.fingerprint.unwrap_or(0),
        );
        let packed = self
            .dispatch
            .call(actor, call.on_fiber, &mut self.store, args)
            .await
            .map_err(|e| {
                call_failed(
                    actor,
                    &self.store,
                    e,
                    &format!("running {}.{}", call.contract, call.method),
                )
            })?;
        let (_, len, is_error) = abi::unpack(packed);
        if len as usize > actor.limits.max_payload {
            return Ok(Err(Error::new(
                ErrorKind::PayloadTooLarge,
                format!(
                    "the reply of {}.{} from `{}` is {len} bytes; the actor's limit is {}",
                    call.contract, call.method, actor.name, actor.limits.max_payload
                ),
            )));
        }
        let reply = self.reply(actor, packed)?;
        if is_error {
            return Ok(Err(Error::from_wire(None, reply)));
        }
        Ok(Ok(R::copy_of(reply)))
    }

    /// A packed reply, in guest memory.
    fn reply(&self, actor: &Actor, packed: u64) -> Result<&[u8], Error> {
        let (ptr, len, _) = abi::unpack(packed);
        self.memory
            .data(&self.store)
            .get(ptr as usize..ptr as usize + len as usize)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::ActorTrapped,
                    format!("actor `{}` returned a reply outside its memory", actor.name),
                )
            })
    }
}
