//! The host: a wasmtime engine, the actors it runs, and calls into them.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};
use std::time::Duration;

use lattice::names::{NameKind, validate};
use lattice::{ContractInfo, Error, ErrorKind};
use tokio::sync::{Semaphore, broadcast};
use tokio::time::Instant;
use wasmtime::{Engine, InstancePre, Linker};

use crate::runtime::engine::{self, EpochTicker};
use crate::runtime::hibernate::{PageMap, Sweeper};
use crate::runtime::instance::{self, InstanceState, ReplyBody, Warm};
use crate::runtime::module::{self, ModuleCache};
use crate::runtime::network::Network;
use crate::runtime::options::{ActorLimits, HostOptions};

/// A host: runs actors and invokes them.
///
/// Cheap to clone; clones share the engine and the actors.
///
/// ```no_run
/// # async fn run() -> Result<(), lattice::Error> {
/// use lattice_host::{ActorLimits, Call, Host, HostOptions};
/// let host = Host::new(HostOptions::new())?;
/// host.start_actor_file("echo", "echo.wasm", ActorLimits::new()).await?;
/// let payload = lattice::codec::encode(&std::collections::BTreeMap::from([("text", "hi")]))?;
/// let reply = host.invoke(Call::new("echo", "echo", "echo", &payload)).await?;
/// assert_eq!(lattice::codec::decode::<String>(&reply)?, "hi");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Host {
    inner: Arc<HostInner>,
}

impl fmt::Debug for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Host")
            .field("actors", &self.actor_names())
            .finish_non_exhaustive()
    }
}

/// The running actors by name. Every call looks its actor up here: with
/// std's SipHash, hashing the name cost about 150 of the 250 instructions of
/// a lookup (callgrind); foldhash takes a few dozen.
type ActorTable = HashMap<String, Arc<Actor>, foldhash::fast::RandomState>;

pub(crate) struct HostInner {
    pub(crate) engine: Engine,
    /// Links every actor; its instances are called on fibers.
    linker: Linker<InstanceState>,
    /// Links the actors that can run inline (see [`HostOptions::inline_calls`]).
    inline_linker: Linker<InstanceState>,
    cache: ModuleCache,
    options: HostOptions,
    actors: RwLock<ActorTable>,
    pub(crate) events: broadcast::Sender<Published>,
    /// What puts the host on a lattice, once it joined one.
    network: OnceLock<Arc<dyn Network>>,
    /// Where keyed actors' states are kept: the host's memory until the
    /// node gives the lattice's.
    state: RwLock<Arc<dyn crate::runtime::state::StateStore>>,
    /// Where actors' key-value buckets are: the host's memory until the
    /// node gives the lattice's.
    buckets: RwLock<Arc<dyn crate::runtime::kv::Buckets>>,
    pub(crate) stats: Stats,
    started: std::time::Instant,
    labels: RwLock<std::collections::BTreeMap<String, String>>,
    stopping: std::sync::atomic::AtomicBool,
    stopped: tokio::sync::watch::Sender<bool>,
    _ticker: EpochTicker,
    _sweeper: Option<Sweeper>,
}

/// Counters of a host.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) calls_from_nats: AtomicU64,
    pub(crate) guest_calls_in_process: AtomicU64,
    pub(crate) guest_calls_over_nats: AtomicU64,
    pub(crate) guest_yields: AtomicU64,
    pub(crate) moved_to_fibers: AtomicU64,
    pub(crate) hibernations: AtomicU64,
    pub(crate) wakes: AtomicU64,
}

/// A snapshot of a host's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct HostStats {
    /// Calls this host took from NATS.
    pub calls_from_nats: u64,
    /// Calls from guests to actors on this host, dispatched without NATS.
    pub guest_calls_in_process: u64,
    /// Calls from guests sent over NATS.
    pub guest_calls_over_nats: u64,
    /// Times a guest was paused at an epoch tick so that other work could
    /// run: a call busy for longer than a tick (5 ms by default).
    pub guest_yields: u64,
    /// Actors whose calls ran inline until one ran past an epoch tick, and
    /// that run on fibers since (see [`HostOptions::inline_calls`]).
    pub moved_to_fibers: u64,
    /// Times an idle instance went to sleep (see
    /// [`HostOptions::hibernate_after`]).
    pub hibernations: u64,
    /// Times a call woke a hibernating instance.
    pub wakes: u64,
}

/// One running actor: its compiled module, limits and warm instances.
pub(crate) struct Actor {
    pub(crate) name: Arc<str>,
    pub(crate) digest: String,
    pub(crate) from_cache: bool,
    pub(crate) contracts: Vec<ContractInfo>,
    pub(crate) limits: ActorLimits,
    pub(crate) pre: InstancePre<InstanceState>,
    /// Whether its calls run inline (see [`HostOptions::inline_calls`]).
    inline: AtomicBool,
    /// The stack an inline call needs: the deepest wasm stack and room for
    /// the host's frames.
    inline_stack: usize,
    /// Whether its instances need the memory limiter while they are
    /// instantiated, or only after (see [`instance::limits_instantiation`]).
    pub(crate) limit_instantiation: bool,
    /// Where the module's exports are: each instance takes them by index.
    pub(crate) exports: instance::Exports,
    /// The module's own input buffer (address, length), when it has one:
    /// the same in every instance.
    pub(crate) input: Option<(u32, u32)>,
    idle: Mutex<Idle>,
    /// The instance limit now: starts at `limits.max_instances`, changed by
    /// [`Host::scale_actor`]; `permits` holds as many permits.
    instances: AtomicU32,
    permits: Arc<Semaphore>,
    pub(crate) stats: crate::runtime::stats::ActorStats,
    /// Whether it is a keyed actor: one state per key (see
    /// [`state`](crate::runtime::state)).
    pub(crate) keyed: bool,
    /// Its keys' activations on this host, when keyed.
    pub(crate) activations: crate::runtime::state::Activations,
    /// Its module's claims, when signed (see [`claims`](crate::claims)).
    pub(crate) claims: Option<Arc<crate::claims::Claims>>,
    /// What its claims let it call and publish; `None`: anything (an
    /// unsigned module).
    pub(crate) caps: Option<Arc<crate::claims::Capabilities>>,
}

/// An actor's idle instances: those awake, longest idle first (a call
/// takes the last, the one it finds warmest; the sweeper the first), and
/// those that hibernate, which a call takes only when none is awake.
/// Boxed: a call moves an instance out and back, a pointer each way.
#[derive(Default)]
pub(crate) struct Idle {
    awake: VecDeque<Box<Warm>>,
    #[expect(clippy::vec_box, reason = "instances move out and back")]
    asleep: Vec<Box<Warm>>,
}

impl Idle {
    fn len(&self) -> usize {
        self.awake.len() + self.asleep.len()
    }

    fn pop(&mut self) -> Option<Box<Warm>> {
        self.awake.pop_back().or_else(|| self.asleep.pop())
    }

    /// Back from a call: the warmest.
    fn push(&mut self, warm: Box<Warm>) {
        self.awake.push_back(warm);
    }

    /// Keeps `keep` instances: those awake that were used last.
    fn truncate(&mut self, keep: usize) {
        self.asleep.truncate(keep.saturating_sub(self.awake.len()));
        let surplus = self.awake.len().saturating_sub(keep);
        self.awake.drain(..surplus);
    }

    fn clear(&mut self) {
        self.awake.clear();
        self.asleep.clear();
    }

    /// The instance awake and idle longest, if idle since before `cutoff`.
    fn take_cold(&mut self, cutoff: Instant) -> Option<Box<Warm>> {
        if self.awake.front()?.idle_since > cutoff {
            return None;
        }
        self.awake.pop_front()
    }
}

/// The native stack an inline call needs beyond the wasm stack: the host's
/// and wasmtime's frames below the call, and the host functions it calls.
const INLINE_HOST_FRAMES: usize = 256 << 10;

/// What [`Host::start_actor`] started.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ActorInfo {
    /// The name the actor runs under.
    pub name: String,
    /// The sha256 of its module, as hex.
    pub digest: String,
    /// The contracts it implements, read from the module.
    pub contracts: Vec<ContractInfo>,
    /// Whether the compiled module came from the on-disk cache.
    pub from_cache: bool,
    /// Whether its calls run inline, on the calling thread without a fiber
    /// (see [`HostOptions::inline_calls`]); `false` once a call of it ran past
    /// an epoch tick.
    pub inline: bool,
}

/// An event an actor published with `lattice_actor::publish`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Published {
    /// The actor that published it.
    pub actor: String,
    /// The subject, relative to the lattice (`counter.reset`).
    pub subject: String,
    /// The payload.
    pub payload: Vec<u8>,
}

/// One call into an actor. Builder with by-value setters.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    pub(crate) actor: &'a str,
    pub(crate) contract: &'a str,
    pub(crate) method: &'a str,
    pub(crate) payload: &'a [u8],
    pub(crate) fingerprint: Option<u64>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) traceparent: Option<&'a str>,
    /// Made by a guest waiting in its `call` import: this runs on the
    /// caller's fiber (see [`Actor::runs_inline`]).
    pub(crate) on_fiber: bool,
    /// The key, for a keyed actor.
    pub(crate) key: Option<&'a str>,
}

impl<'a> Call<'a> {
    /// A call of `contract.method` on `actor` with an encoded arguments map.
    pub fn new(actor: &'a str, contract: &'a str, method: &'a str, payload: &'a [u8]) -> Self {
        Call {
            actor,
            contract,
            method,
            payload,
            fingerprint: None,
            timeout: None,
            traceparent: None,
            on_fiber: false,
            key: None,
        }
    }

    /// The key of a call to a keyed actor: the activation it goes to (see
    /// [`lattice::key`]).
    pub fn key(mut self, key: &'a str) -> Self {
        self.key = Some(key);
        self
    }

    /// The W3C trace context the call belongs to; calls the actor makes carry it on.
    pub fn traceparent(mut self, traceparent: &'a str) -> Self {
        self.traceparent = Some(traceparent);
        self
    }

    /// Checks the caller's contract fingerprint against the actor's.
    pub fn fingerprint(mut self, fingerprint: u64) -> Self {
        self.fingerprint = Some(fingerprint);
        self
    }

    /// The call's deadline, from now; capped by the actor's own timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

impl Host {
    /// Creates a host: the engine (with the pooling allocator unless turned
    /// off), the linker with WASI and the lattice imports, and the epoch ticker
    /// that enforces deadlines.
    pub fn new(options: HostOptions) -> Result<Host, Error> {
        options.check()?;
        let engine = engine::new_engine(&options)?;
        let linker = instance::linker(&engine, false)?;
        let inline_linker = instance::linker(&engine, true)?;
        let ticker = EpochTicker::start(&engine, options.epoch_tick);
        let (events, _) = broadcast::channel(1024);
        let labels = RwLock::new(options.labels.clone());
        Ok(Host {
            inner: Arc::new_cyclic(|host| HostInner {
                _sweeper: options
                    .hibernate_after
                    .and_then(|after| Sweeper::start(host.clone(), after)),
                cache: ModuleCache::new(options.module_cache.clone()),
                engine,
                linker,
                inline_linker,
                options,
                actors: RwLock::default(),
                events,
                network: OnceLock::new(),
                state: RwLock::new(Arc::new(crate::runtime::state::MemoryStore::default())),
                buckets: RwLock::new(Arc::new(crate::runtime::kv::MemoryBuckets::default())),
                stats: Stats::default(),
                started: std::time::Instant::now(),
                labels,
                stopping: std::sync::atomic::AtomicBool::new(false),
                stopped: tokio::sync::watch::Sender::new(false),
                _ticker: ticker,
            }),
        })
    }

    /// Starts the actor module `module` under `name`.
    ///
    /// The module is checked (is it a lattice actor, of a supported ABI
    /// version?), compiled or loaded from the cache, linked, and instantiated
    /// once to read the contracts it implements; that instance stays warm.
    pub async fn start_actor(
        &self,
        name: &str,
        module: Vec<u8>,
        limits: ActorLimits,
    ) -> Result<ActorInfo, Error> {
        validate(NameKind::Actor, name)?;
        if self.inner.actor(name).is_some() {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                format!(
                    "an actor named `{name}` is already running on this host; stop it first, \
                     update it, or pick another name"
                ),
            ));
        }
        let actor = Arc::new(self.load(name, module, limits).await?);
        let info = actor.info();
        {
            let mut actors = self.inner.actors.write().unwrap_or_else(|e| e.into_inner());
            if actors.contains_key(name) {
                return Err(Error::new(
                    ErrorKind::AlreadyExists,
                    format!("an actor named `{name}` was started on this host meanwhile"),
                ));
            }
            actors.insert(name.to_owned(), actor.clone());
        }
        if let Some(network) = self.inner.network() {
            match network.serve(name).await {
                Ok(()) => {}
                Err(e) => {
                    self.inner
                        .actors
                        .write()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(name);
                    return Err(e);
                }
            }
        }
        if let Some(network) = self.inner.network() {
            network.announce();
        }
        tracing::info!(actor = name, digest = %info.digest, from_cache = info.from_cache, "actor started");
        self.inner
            .event("actor_started", actor_event(&self.inner, &info))
            .await;
        Ok(info)
    }

    /// Checks, compiles (or loads from the cache), links and instantiates a
    /// module once, reading its contracts; the instance stays warm.
    async fn load(&self, name: &str, module: Vec<u8>, limits: ActorLimits) -> Result<Actor, Error> {
        limits.check(&self.inner.options)?;
        let max_module = self.inner.options.max_module_size;
        if module.len() > max_module {
            return Err(Error::new(
                ErrorKind::PayloadTooLarge,
                format!(
                    "the module is {} bytes; this host loads modules of at most {max_module} \
                     bytes (HostOptions::max_module_size, `lattice up --max-module-size`)",
                    module.len()
                ),
            ));
        }
        let claims = crate::claims::check(
            &module,
            &self.inner.options.trusted_issuers,
            crate::claims::now(),
        )?;
        let shape = module::check_abi(&module)?;
        let digest = module::digest(&module);
        let inner = self.inner.clone();
        let digest_for_compile = digest.clone();
        let (compiled, from_cache) = tokio::task::spawn_blocking(move || {
            inner
                .cache
                .load(&inner.engine, &module, &digest_for_compile)
        })
        .await
        .map_err(|e| Error::new(ErrorKind::Remote, format!("the compile task failed: {e}")))??;
        let options = &self.inner.options;
        let inline = options.inline_calls && limits.inline && instance::can_run_inline(&compiled);
        let linker = if inline {
            &self.inner.inline_linker
        } else {
            &self.inner.linker
        };
        let pre = linker.instantiate_pre(&compiled).map_err(|e| {
            Error::new(
                ErrorKind::InvalidModule,
                format!("the module cannot be linked on this host: {e:#}; actors may import only WASI preview 1 and the `lattice` module"),
            )
        })?;
        let exports = instance::Exports::of(pre.module())?;
        let limit_instantiation = instance::limits_instantiation(&shape, limits.max_memory);
        let mut actor = Actor {
            name: name.into(),
            digest,
            from_cache,
            contracts: Vec::new(),
            instances: AtomicU32::new(limits.max_instances),
            permits: Arc::new(Semaphore::new(limits.max_instances as usize)),
            limits,
            pre,
            inline: AtomicBool::new(inline),
            inline_stack: options.max_wasm_stack + INLINE_HOST_FRAMES,
            limit_instantiation,
            exports,
            input: None,
            idle: Mutex::default(),
            stats: crate::runtime::stats::ActorStats::new(&[]),
            keyed: shape.keyed,
            activations: Default::default(),
            caps: claims
                .as_ref()
                .map(|c| Arc::new(crate::claims::Capabilities::of(c))),
            claims: claims.map(Arc::new),
        };
        let deadline = Instant::now() + actor.limits.timeout;
        let mut warm = instance::instantiate(&self.inner, &actor, false, deadline).await?;
        actor.input = warm.input_buffer(&actor).await?;
        actor.contracts = warm.describe(&actor).await?;
        if let Some(claims) = &actor.claims {
            // A module signed for other contracts than it implements.
            if let Some(c) = actor
                .contracts
                .iter()
                .find(|c| !claims.lattice.contracts.contains(&c.name))
            {
                return Err(Error::new(
                    ErrorKind::Unauthorized,
                    format!(
                        "the module implements contract `{}`, which its claims do not list ({})",
                        c.name,
                        claims.lattice.contracts.join(", ")
                    ),
                ));
            }
        }
        actor.stats = crate::runtime::stats::ActorStats::new(&actor.contracts);
        actor
            .idle
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .push(warm);
        Ok(actor)
    }

    /// Replaces the module of the running actor `name` without dropping a
    /// call: the new module is loaded next to the old one, new calls go to it
    /// from the moment it is ready, and calls in flight on the old instances
    /// finish there (up to the actor's timeout) before those are dropped.
    /// The actor keeps its subscriptions, its instance limit and, unless
    /// `limits` is given, its limits.
    pub async fn update_actor(
        &self,
        name: &str,
        module: Vec<u8>,
        limits: Option<ActorLimits>,
    ) -> Result<ActorInfo, Error> {
        let old = self.inner.actor(name).ok_or_else(|| not_running(name))?;
        let limits = limits.unwrap_or_else(|| {
            old.limits
                .clone()
                .max_instances(old.instances.load(Ordering::Relaxed))
        });
        let new = Arc::new(self.load(name, module, limits).await?);
        {
            let mut actors = self.inner.actors.write().unwrap_or_else(|e| e.into_inner());
            match actors.get(name) {
                Some(current) if Arc::ptr_eq(current, &old) => {}
                _ => {
                    return Err(Error::new(
                        ErrorKind::AlreadyExists,
                        format!("`{name}` was stopped or updated meanwhile; nothing was changed"),
                    ));
                }
            }
            // Calls look the actor up by name, so from here on they reach
            // the new module, through the same subscriptions.
            actors.insert(name.to_owned(), new.clone());
        }
        old.drain().await;
        let info = new.info();
        tracing::info!(actor = name, from = %old.digest, to = %info.digest, "actor updated");
        let mut event = actor_event(&self.inner, &info);
        event["previous_digest"] = old.digest.clone().into();
        self.inner.event("actor_updated", event).await;
        Ok(info)
    }

    /// Sets how many instances of `name` may run at once on this host.
    /// Raising it takes effect at once; lowering it retires instances as
    /// their calls finish. Returns the previous limit.
    pub async fn scale_actor(&self, name: &str, max_instances: u32) -> Result<u32, Error> {
        crate::runtime::options::check_max_instances(max_instances)?;
        let actor = self.inner.actor(name).ok_or_else(|| not_running(name))?;
        let previous = actor.instances.swap(max_instances, Ordering::SeqCst);
        if max_instances > previous {
            actor
                .permits
                .add_permits((max_instances - previous) as usize);
        } else if max_instances < previous {
            let surplus = (previous - max_instances) as usize;
            let forgotten = actor.permits.forget_permits(surplus);
            {
                let mut idle = actor.lock_idle();
                let keep = idle.len().min(max_instances as usize);
                idle.truncate(keep);
            }
            // The rest are busy: retire them as their calls end.
            let rest = surplus - forgotten;
            if rest > 0 {
                let permits = actor.permits.clone();
                tokio::spawn(async move {
                    for _ in 0..rest {
                        match permits.acquire().await {
                            Ok(permit) => permit.forget(),
                            Err(_closed) => return,
                        }
                    }
                });
            }
        }
        tracing::info!(
            actor = name,
            from = previous,
            to = max_instances,
            "actor scaled"
        );
        self.inner
            .event(
                "actor_scaled",
                serde_json::json!({
                    "host": self.inner.host_id(),
                    "actor": name,
                    "max_instances": max_instances,
                    "previous": previous,
                }),
            )
            .await;
        Ok(previous)
    }

    /// Starts the actor module in the file `path` under `name`.
    pub async fn start_actor_file(
        &self,
        name: &str,
        path: impl AsRef<Path>,
        limits: ActorLimits,
    ) -> Result<ActorInfo, Error> {
        validate(NameKind::Actor, name)?;
        let bytes = module::read_file(path.as_ref(), self.inner.options.max_module_size).await?;
        self.start_actor(name, bytes, limits).await
    }

    /// Stops the actor `name`: new calls are refused at once, calls in flight
    /// finish (up to the actor's timeout), then its instances are dropped.
    pub async fn stop_actor(&self, name: &str) -> Result<(), Error> {
        let actor = self.inner.actor(name).ok_or_else(|| not_running(name))?;
        // Unsubscribe first, so that new calls from NATS go to other hosts
        // rather than finding the actor gone here.
        if let Some(network) = self.inner.network() {
            network.unserve(name).await;
        }
        if self
            .inner
            .actors
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name)
            .is_none()
        {
            // Stopped meanwhile by another caller.
            return Err(not_running(name));
        }
        if let Some(network) = self.inner.network() {
            network.announce();
        }
        actor.drain().await;
        tracing::info!(actor = name, "actor stopped");
        self.inner
            .event(
                "actor_stopped",
                serde_json::json!({ "host": self.inner.host_id(), "actor": name }),
            )
            .await;
        Ok(())
    }

    /// Stops every actor (draining their calls) and leaves the lattice.
    pub async fn shutdown(&self) {
        self.inner.begin_stopping();
        for name in self.actor_names() {
            let _ = self.stop_actor(&name).await;
        }
        self.inner
            .event(
                "host_stopped",
                serde_json::json!({ "host": self.inner.host_id() }),
            )
            .await;
        if let Some(network) = self.inner.network() {
            network.flush().await;
        }
        self.inner.stopped.send_replace(true);
    }

    /// Resolves once the host has shut down, by [`Host::shutdown`] or by a
    /// `stop_host` control request.
    pub async fn stopped(&self) {
        let mut stopped = self.inner.stopped.subscribe();
        let _ = stopped.wait_for(|s| *s).await;
    }

    pub(crate) fn from_inner(inner: Arc<HostInner>) -> Host {
        Host { inner }
    }

    pub(crate) fn inner(&self) -> &Arc<HostInner> {
        &self.inner
    }

    /// Who the host is: what it answers to a ping.
    pub fn summary(&self) -> crate::runtime::inventory::HostSummary {
        crate::runtime::inventory::HostSummary {
            host: self.inner.host_id().to_owned(),
            lattice: self.inner.lattice().to_owned(),
            version: crate::runtime::inventory::VERSION.to_owned(),
            uptime_ms: u64::try_from(self.inner.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            labels: self.labels(),
            actors: self
                .inner
                .actors
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .len(),
        }
    }

    /// Everything the host runs.
    pub fn inventory(&self) -> crate::runtime::inventory::Inventory {
        let actors = self.inner.actors_snapshot();
        let entries: Vec<crate::runtime::inventory::ActorEntry> = actors
            .iter()
            .map(|a| {
                let (idle, hibernating) = {
                    let idle = a.lock_idle();
                    (idle.len(), idle.asleep.len())
                };
                crate::runtime::inventory::ActorEntry {
                    name: a.name.to_string(),
                    digest: a.digest.clone(),
                    contracts: a.contracts.clone(),
                    max_instances: a.instances.load(Ordering::Relaxed),
                    idle_instances: idle,
                    hibernating_instances: hibernating,
                    inline: a.inline.load(Ordering::Relaxed),
                    keyed: a.keyed,
                    activations: a.activations.len(),
                }
            })
            .collect();
        crate::runtime::inventory::Inventory {
            host: self.inner.host_id().to_owned(),
            labels: self.labels(),
            actors: entries,
        }
    }

    /// (name, instance limit) of every actor: keyed actors first, then by
    /// name. A heartbeat lists the first ones only, and the other hosts
    /// route keyed calls by the keyed actors it lists.
    pub(crate) fn actor_limits(&self) -> Vec<(String, u32)> {
        let mut limits: Vec<(bool, String, u32)> = self
            .inner
            .actors
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(|a| {
                (
                    !a.keyed,
                    a.name.to_string(),
                    a.instances.load(Ordering::Relaxed),
                )
            })
            .collect();
        limits.sort();
        limits
            .into_iter()
            .map(|(_, name, instances)| (name, instances))
            .collect()
    }

    /// The host's labels.
    pub fn labels(&self) -> std::collections::BTreeMap<String, String> {
        self.inner
            .labels
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Sets and removes labels; returns the labels after the change. Label
    /// keys follow the naming rule; values are free text up to 256 bytes.
    pub fn update_labels(
        &self,
        change: crate::runtime::inventory::LabelsRequest,
    ) -> Result<std::collections::BTreeMap<String, String>, Error> {
        for (key, value) in &change.set {
            crate::runtime::options::check_label(key, value)?;
        }
        let mut labels = self.inner.labels.write().unwrap_or_else(|e| e.into_inner());
        for key in &change.remove {
            labels.remove(key);
        }
        labels.extend(change.set);
        Ok(labels.clone())
    }

    /// The host's id.
    pub fn id(&self) -> &str {
        self.inner.host_id()
    }

    /// The host's counters.
    pub fn stats(&self) -> HostStats {
        HostStats {
            calls_from_nats: self.inner.stats.calls_from_nats.load(Ordering::Relaxed),
            guest_calls_in_process: self
                .inner
                .stats
                .guest_calls_in_process
                .load(Ordering::Relaxed),
            guest_calls_over_nats: self
                .inner
                .stats
                .guest_calls_over_nats
                .load(Ordering::Relaxed),
            guest_yields: self.inner.stats.guest_yields.load(Ordering::Relaxed),
            moved_to_fibers: self.inner.stats.moved_to_fibers.load(Ordering::Relaxed),
            hibernations: self.inner.stats.hibernations.load(Ordering::Relaxed),
            wakes: self.inner.stats.wakes.load(Ordering::Relaxed),
        }
    }

    /// Calls into an actor and returns the reply body, or a typed error:
    /// the actor's own (unknown method, decode, contract mismatch) or the
    /// host's (not running, deadline, trap, panic, limits).
    pub async fn invoke(&self, call: Call<'_>) -> Result<Vec<u8>, Error> {
        self.inner.invoke(call, None).await
    }

    /// The names of the running actors, sorted.
    pub fn actor_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .inner
            .actors
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        names.sort();
        names
    }

    /// What is known of the running actor `name`: its module digest and the
    /// contracts it implements.
    pub fn actor(&self, name: &str) -> Option<ActorInfo> {
        self.inner.actor(name).map(|a| a.info())
    }

    /// Creates `count` fresh instances of the running actor `name`, one
    /// after another, each dropped before the next: what a call costs when
    /// no warm instance is idle, less what every call costs (finding the
    /// actor by name, its deadline), which this does once. For benchmarks.
    #[doc(hidden)]
    pub async fn fresh_instances(&self, name: &str, count: u64) -> Result<(), Error> {
        let actor = self.inner.actor(name).ok_or_else(|| not_running(name))?;
        let deadline = Instant::now() + actor.limits.timeout;
        for _ in 0..count {
            instance::instantiate(&self.inner, &actor, false, deadline).await?;
        }
        Ok(())
    }

    /// The host's wasmtime engine, for benchmarks that measure wasmtime on
    /// its own with exactly the host's configuration (pool, stacks,
    /// epochs).
    #[doc(hidden)]
    pub fn engine(&self) -> &wasmtime::Engine {
        &self.inner.engine
    }

    /// How many instances of `name` are warm and idle.
    pub fn idle_instances(&self, name: &str) -> Option<usize> {
        self.inner.actor(name).map(|a| a.lock_idle().len())
    }

    /// How many of the idle instances of `name` hibernate (see
    /// [`HostOptions::hibernate_after`]).
    pub fn hibernating_instances(&self, name: &str) -> Option<usize> {
        self.inner.actor(name).map(|a| a.lock_idle().asleep.len())
    }

    /// Events published by actors on this host.
    pub fn published(&self) -> broadcast::Receiver<Published> {
        self.inner.events.subscribe()
    }
}

/// What a keyed call needs beside the call: its key, the state to load,
/// whether to save after it, and the state saved.
pub(crate) struct Turn<'a> {
    key: &'a str,
    state: &'a [u8],
    save: bool,
    saved: Option<Vec<u8>>,
}

/// One keyed call in `warm`: the key's state loaded, the call, and the
/// state read back when the call succeeded and may have changed it. The
/// outer error is the instance's failure, as [`Warm::call`]'s.
async fn keyed_call<R: ReplyBody>(
    warm: &mut Warm,
    actor: &Actor,
    call: Call<'_>,
    deadline: Instant,
    turn: &mut Turn<'_>,
) -> Result<Result<R, Error>, Error> {
    let state_call = |method, payload| Call {
        contract: lattice::abi::STATE_CONTRACT,
        method,
        payload,
        fingerprint: None,
        key: None,
        ..call
    };
    let about = |e: Error, what: &str| {
        Error::new(
            e.kind(),
            format!(
                "cannot {what} the state of `{}/{}`: {}; the saved state is kept",
                actor.name,
                turn.key,
                e.message()
            ),
        )
    };
    let load = state_call(lattice::abi::STATE_LOAD, turn.state);
    if let Err(e) = warm.call::<Vec<u8>>(actor, load, deadline).await? {
        return Ok(Err(about(e, "load")));
    }
    let reply = warm.call::<R>(actor, call, deadline).await?;
    if turn.save && reply.is_ok() {
        let save = state_call(lattice::abi::STATE_SAVE, &[]);
        match warm.call::<Vec<u8>>(actor, save, deadline).await? {
            Ok(state) => turn.saved = Some(state),
            Err(e) => return Ok(Err(about(e, "save"))),
        }
    }
    Ok(reply)
}

impl Actor {
    /// A call's deadline from `now`: its own timeout, capped by the actor's,
    /// and by the caller's deadline `outer` when it has one.
    #[inline]
    fn deadline(&self, now: Instant, call: &Call<'_>, outer: Option<Instant>) -> Instant {
        let own = now
            + call
                .timeout
                .unwrap_or(self.limits.timeout)
                .min(self.limits.timeout);
        outer.map_or(own, |o| o.min(own))
    }

    /// Whether `contract.method` takes `&mut self`: for a keyed actor, a
    /// call whose state is saved after it. Unknown methods do not.
    fn mutates(&self, contract: &str, method: &str) -> bool {
        self.contracts
            .iter()
            .find(|c| c.name == contract)
            .and_then(|c| c.method(method))
            .is_some_and(|m| m.mutating)
    }

    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Idle> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Puts an instance back among the idle ones (those that sleep, or
    /// the warmest of those awake) after a call or the sweeper had it; or
    /// drops it if the idle ones already reach the instance limit: the
    /// limit was lowered while it was out (see [`Host::scale_actor`]).
    #[inline]
    fn put_back(&self, warm: Box<Warm>, asleep: bool) {
        let limit = self.instances.load(Ordering::Relaxed) as usize;
        let surplus = {
            let mut idle = self.lock_idle();
            if idle.len() >= limit {
                Some(warm)
            } else {
                if asleep {
                    idle.asleep.push(warm);
                } else {
                    idle.push(warm);
                }
                None
            }
        };
        // Dropped outside the lock: it frees the instance's memory.
        drop(surplus);
    }

    /// Hibernates the instances idle since before `cutoff`, longest idle
    /// first. Each is taken out with a permit, as a call takes one, so that
    /// no call makes a fresh instance in its place meanwhile (an actor
    /// limited to one instance keeps one state); none is taken while all
    /// permits are held.
    pub(crate) fn hibernate_idle(&self, pages: &PageMap, cutoff: Instant, stats: &Stats) {
        loop {
            let Ok(permit) = self.permits.try_acquire() else {
                return;
            };
            let Some(mut warm) = self.lock_idle().take_cold(cutoff) else {
                return;
            };
            match warm.hibernate(pages) {
                Ok(()) => {
                    stats.hibernations.fetch_add(1, Ordering::Relaxed);
                    self.put_back(warm, true);
                }
                Err(e) => {
                    // Back as if just used, so that it is tried again only
                    // after as long idle.
                    tracing::debug!(actor = %self.name, error = %e, "an idle instance cannot hibernate");
                    warm.idle_since = Instant::now();
                    self.put_back(warm, false);
                }
            }
            drop(permit);
        }
    }

    fn info(&self) -> ActorInfo {
        ActorInfo {
            name: self.name.to_string(),
            digest: self.digest.clone(),
            contracts: self.contracts.clone(),
            from_cache: self.from_cache,
            inline: self.inline.load(Ordering::Relaxed),
        }
    }

    /// Whether a call of this actor runs inline here and now: it can, it
    /// has not been moved to fibers, and the stack it would run on has room
    /// for the deepest wasm stack and the host's frames around it (a fiber
    /// brings its own stack).
    ///
    /// `on_fiber`: the call comes from another guest in process, and runs
    /// on that guest's fiber, whose stack `stacker` does not know (it
    /// measures the thread's). There the fiber's size leaves the room: 2 x
    /// `max_wasm_stack` + 1 MiB (see `engine.rs`), of which the caller's
    /// wasm takes at most `max_wasm_stack`; and an inline actor calls no
    /// one, so nothing nests deeper.
    pub(crate) fn runs_inline(&self, on_fiber: bool) -> bool {
        self.inline.load(Ordering::Relaxed)
            && (on_fiber
                || stacker::remaining_stack().is_some_and(|room| room >= self.inline_stack))
    }

    /// Calls of this actor run on fibers from now on, where they yield at
    /// each epoch tick.
    pub(crate) fn move_to_fibers(&self, host: Option<&HostInner>) {
        if self.inline.swap(false, Ordering::Relaxed) {
            if let Some(host) = host {
                host.stats.moved_to_fibers.fetch_add(1, Ordering::Relaxed);
            }
            tracing::info!(
                actor = %self.name,
                "a call ran past an epoch tick on the host's thread; \
                 this actor's calls run on fibers from now on"
            );
        }
    }

    /// Waits for the calls in flight to finish (up to the actor's timeout),
    /// then refuses new ones and drops the instances.
    async fn drain(&self) {
        let all = self.instances.load(Ordering::SeqCst);
        let drained =
            tokio::time::timeout(self.limits.timeout, self.permits.acquire_many(all)).await;
        if drained.is_err() {
            tracing::warn!(
                actor = %self.name,
                "calls still in flight after the actor's timeout; dropping its instances anyway"
            );
        }
        self.permits.close();
        self.lock_idle().clear();
    }
}

fn actor_event(host: &HostInner, info: &ActorInfo) -> serde_json::Value {
    serde_json::json!({
        "host": host.host_id(),
        "actor": info.name,
        "digest": info.digest,
        "contracts": info.contracts.iter().map(|c| format!("{} v{}", c.name, c.version)).collect::<Vec<_>>(),
    })
}

fn not_running(name: &str) -> Error {
    Error::new(
        ErrorKind::NotFound,
        format!("no actor named `{name}` is running on this host"),
    )
}

impl HostInner {
    /// What puts the host on a lattice, once it joined one.
    pub(crate) fn network(&self) -> Option<&Arc<dyn Network>> {
        self.network.get()
    }

    /// Where keyed actors' states are kept.
    pub(crate) fn state_store(&self) -> Arc<dyn crate::runtime::state::StateStore> {
        self.state.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Keeps keyed actors' states in `store` from now on (the lattice's,
    /// when the host joins one). Activations forget what they loaded from
    /// the store before.
    pub(crate) fn set_state_store(&self, store: Arc<dyn crate::runtime::state::StateStore>) {
        *self.state.write().unwrap_or_else(|e| e.into_inner()) = store;
        self.forget_activations();
    }

    /// Where actors' key-value buckets are.
    pub(crate) fn buckets(&self) -> Arc<dyn crate::runtime::kv::Buckets> {
        self.buckets
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Keeps actors' key-value buckets in `buckets` from now on (the
    /// lattice's, when the host joins one).
    pub(crate) fn set_buckets(&self, buckets: Arc<dyn crate::runtime::kv::Buckets>) {
        *self.buckets.write().unwrap_or_else(|e| e.into_inner()) = buckets;
    }

    /// Makes every key's activation load its state again at its next call:
    /// which host owns a key may have changed, and another may have saved
    /// since.
    pub(crate) fn forget_activations(&self) {
        let actors = self.actors.read().unwrap_or_else(|e| e.into_inner());
        for actor in actors.values().filter(|a| a.keyed) {
            actor.activations.clear();
        }
    }

    /// Gives the host its network; once only.
    pub(crate) fn set_network(&self, network: Arc<dyn Network>) -> Result<(), Error> {
        self.network.set(network).map_err(|_| {
            Error::new(
                ErrorKind::AlreadyExists,
                "this host has joined a lattice already",
            )
        })
    }

    /// Publishes a host event through the network, if the host has one.
    pub(crate) async fn event(&self, kind: &str, body: serde_json::Value) {
        if let Some(network) = self.network() {
            network.event(kind, body).await;
        }
    }

    pub(crate) fn lattice(&self) -> &str {
        &self.options.lattice
    }

    pub(crate) fn host_id(&self) -> &str {
        &self.options.host_id
    }

    pub(crate) fn options(&self) -> &HostOptions {
        &self.options
    }

    pub(crate) fn actors_snapshot(&self) -> Vec<Arc<Actor>> {
        let mut actors: Vec<Arc<Actor>> = self
            .actors
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        actors.sort_by(|a, b| a.name.cmp(&b.name));
        actors
    }

    pub(crate) fn begin_stopping(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    pub(crate) fn actor(&self, name: &str) -> Option<Arc<Actor>> {
        self.actors
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    /// Invokes an actor; `outer` is the deadline of the calling actor, if any.
    ///
    /// The rare steps (waiting for a busy instance, creating one, reporting a
    /// failed one) are boxed, so that the future of a call to a warm instance
    /// stays small: it is moved and allocated once per call.
    pub(crate) async fn invoke<R: ReplyBody>(
        self: &Arc<Self>,
        mut call: Call<'_>,
        outer: Option<Instant>,
    ) -> Result<R, Error> {
        // `tally/alice`: the actor and the key.
        if let (name, Some(key)) = lattice::key::split(call.actor) {
            call.actor = name;
            call.key = Some(key);
        }
        let actor = self.actor(call.actor).ok_or_else(|| {
            Error::new(
                ErrorKind::NoResponders,
                format!("no actor named `{}` is running on this host", call.actor),
            )
        })?;
        self.invoke_actor(actor, call, outer).await
    }

    /// [`HostInner::invoke`] of an actor already looked up by name.
    pub(crate) async fn invoke_actor<R: ReplyBody>(
        self: &Arc<Self>,
        actor: Arc<Actor>,
        call: Call<'_>,
        outer: Option<Instant>,
    ) -> Result<R, Error> {
        match (actor.keyed, call.key) {
            (false, None) => self.invoke_turn(actor, call, outer, None).await,
            (true, Some(key)) => Box::pin(self.invoke_keyed(actor, call, key, outer)).await,
            (true, None) => Err(Error::new(
                ErrorKind::Decode,
                format!(
                    "`{0}` is a keyed actor: call one of its keys, `{0}/KEY`",
                    actor.name
                ),
            )),
            (false, Some(_)) => Err(Error::new(
                ErrorKind::Decode,
                format!(
                    "`{0}` is not a keyed actor: call it as `{0}`, without a key",
                    actor.name
                ),
            )),
        }
    }

    /// A call to a keyed actor: in its key's turn, with the key's state
    /// loaded into the instance first and, after a call that can change
    /// it, saved before the reply leaves.
    async fn invoke_keyed<R: ReplyBody>(
        self: &Arc<Self>,
        actor: Arc<Actor>,
        call: Call<'_>,
        key: &str,
        outer: Option<Instant>,
    ) -> Result<R, Error> {
        lattice::key::validate_key(key)?;
        let deadline = actor.deadline(Instant::now(), &call, outer);
        let activation = actor.activations.of(key);
        let mut held = tokio::time::timeout_at(deadline, activation.lock())
            .await
            .map_err(|_| {
                Error::new(
                    ErrorKind::TimedOut,
                    format!(
                        "the calls to `{}/{key}` before this one ran until its deadline",
                        actor.name
                    ),
                )
            })?;
        let store = self.state_store();
        let (state, revision) = match held.state.take() {
            Some(loaded) => loaded,
            None => match store.load(&actor.name, key).await? {
                Some((state, revision)) => (state, Some(revision)),
                None => (Vec::new(), None),
            },
        };
        let mut turn = Turn {
            key,
            state: &state,
            save: actor.mutates(call.contract, call.method),
            saved: None,
        };
        let name = actor.name.clone();
        let reply = self.invoke_turn(actor, call, outer, Some(&mut turn)).await;
        let saved = turn.saved.take();
        match (reply, saved) {
            (Ok(reply), Some(new)) if new != state => {
                // The activation keeps nothing it could not save: a
                // conflict means another owns the key now.
                let revision = store.save(&name, key, new.clone(), revision).await?;
                held.state = Some((new, Some(revision)));
                held.last_used = Some(std::time::Instant::now());
                Ok(reply)
            }
            (reply, _) => {
                held.state = Some((state, revision));
                held.last_used = Some(std::time::Instant::now());
                reply
            }
        }
    }

    /// [`HostInner::invoke_actor`], with a keyed actor's `turn`.
    async fn invoke_turn<R: ReplyBody>(
        self: &Arc<Self>,
        mut actor: Arc<Actor>,
        call: Call<'_>,
        outer: Option<Instant>,
        turn: Option<&mut Turn<'_>>,
    ) -> Result<R, Error> {
        let now = Instant::now();
        // Statistics time the guest's call alone, not a wait for an instance
        // or its creation: `started` moves past each. When neither happens,
        // `now` is when the call starts (a clock read costs ~40 instructions).
        let mut started = now;
        let (actor, deadline, _permit) = loop {
            if call.payload.len() > actor.limits.max_payload {
                return Err(Error::new(
                    ErrorKind::PayloadTooLarge,
                    format!(
                        "the request to `{}` is {} bytes; the actor accepts at most {}",
                        call.actor,
                        call.payload.len(),
                        actor.limits.max_payload
                    ),
                ));
            }
            let deadline = actor.deadline(now, &call, outer);
            // An instance free now needs no timer.
            if let Ok(permit) = actor.permits.clone().try_acquire_owned() {
                break (actor, deadline, permit);
            }
            let wait = tokio::time::timeout_at(deadline, actor.permits.clone().acquire_owned());
            let waited = Box::pin(wait).await;
            started = Instant::now();
            match waited {
                Ok(Ok(permit)) => break (actor, deadline, permit),
                // Stopped, or updated: then the new module takes the call.
                Ok(Err(_closed)) => match self.actor(call.actor) {
                    Some(next) if !Arc::ptr_eq(&next, &actor) => actor = next,
                    _ => return Err(not_running(call.actor)),
                },
                Err(_) => {
                    return Err(Error::new(
                        ErrorKind::TimedOut,
                        format!(
                            "all {} instances of `{}` stayed busy until the call's deadline",
                            actor.instances.load(Ordering::Relaxed),
                            call.actor
                        ),
                    ));
                }
            }
        };
        let warm = actor.lock_idle().pop();
        let mut warm = match warm {
            Some(warm) => warm,
            None => {
                let fresh =
                    Box::pin(instance::instantiate(self, &actor, call.on_fiber, deadline)).await?;
                started = Instant::now();
                fresh
            }
        };
        if warm.hibernates() {
            self.stats.wakes.fetch_add(1, Ordering::Relaxed);
        }
        let outcome = match turn {
            None => warm.call(&actor, call, deadline).await,
            Some(turn) => Box::pin(keyed_call(&mut warm, &actor, call, deadline, turn)).await,
        };
        let ended = Instant::now();
        let took = ended.saturating_duration_since(started);
        let error = match &outcome {
            Ok(Err(e)) | Err(e) => Some(e),
            Ok(Ok(_)) => None,
        };
        actor.stats.record(call.contract, call.method, took, error);
        match outcome {
            Ok(reply) => {
                warm.idle_since = ended;
                actor.put_back(warm, false);
                reply
            }
            // The instance trapped or broke the ABI: it is dropped, and the
            // next call gets a fresh one.
            Err(failure) => {
                tracing::warn!(actor = %actor.name, error = %failure, "instance dropped");
                let failed = self.event(
                    "actor_failed",
                    serde_json::json!({
                        "host": self.host_id(),
                        "actor": &*actor.name,
                        "kind": failure.kind().as_str(),
                        "message": failure.message(),
                    }),
                );
                Box::pin(failed).await;
                Err(failure)
            }
        }
    }

    pub(crate) fn weak(self: &Arc<Self>) -> Weak<HostInner> {
        Arc::downgrade(self)
    }
}
