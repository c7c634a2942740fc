//! Configuration of a host and of the actors it runs.

use std::path::PathBuf;
use std::time::Duration;

use lattice::{Error, ErrorKind};

/// How a [`Host`](crate::Host) is set up. Builder with by-value setters;
/// every default is documented on its setter.
///
/// ```
/// use lattice_host::HostOptions;
/// let options = HostOptions::new().pooling(false).module_cache(None);
/// ```
#[derive(Debug, Clone)]
pub struct HostOptions {
    pub(crate) pooling: bool,
    pub(crate) pool_instances: u32,
    pub(crate) pool_memory: u64,
    pub(crate) module_cache: Option<PathBuf>,
    pub(crate) fuel: bool,
    pub(crate) epoch_tick: Duration,
    pub(crate) max_wasm_stack: usize,
    pub(crate) lattice: String,
    pub(crate) host_id: String,
    pub(crate) in_process: bool,
    pub(crate) inline_calls: bool,
    pub(crate) max_inflight: usize,
    pub(crate) heartbeat: Duration,
    pub(crate) labels: std::collections::BTreeMap<String, String>,
    pub(crate) hibernate_after: Option<Duration>,
    pub(crate) module_dir: Option<PathBuf>,
    pub(crate) max_module_size: usize,
    pub(crate) trusted_issuers: Vec<String>,
}

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions {
            lattice: "default".into(),
            host_id: format!("h{:012x}", fastrand::u64(..) >> 16),
            in_process: true,
            inline_calls: true,
            max_inflight: 1024,
            heartbeat: Duration::from_millis(500),
            labels: std::collections::BTreeMap::new(),
            pooling: true,
            pool_instances: 1_000,
            pool_memory: 64 << 20,
            module_cache: default_cache_dir(),
            fuel: false,
            epoch_tick: Duration::from_millis(5),
            max_wasm_stack: 512 << 10,
            hibernate_after: Some(Duration::from_secs(30)),
            module_dir: None,
            max_module_size: 64 << 20,
            trusted_issuers: Vec::new(),
        }
    }
}

fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("lattice").join("modules"))
}

impl HostOptions {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether instances come from wasmtime's pooling allocator, which
    /// reserves their memory up front and makes instantiation a few
    /// microseconds. Default: on.
    pub fn pooling(mut self, on: bool) -> Self {
        self.pooling = on;
        self
    }

    /// With pooling: how many instances may exist at once across all actors.
    /// Default: 1,000.
    pub fn pool_instances(mut self, n: u32) -> Self {
        self.pool_instances = n;
        self
    }

    /// With pooling: the largest linear memory of any instance, in bytes; the
    /// per-actor [`ActorLimits::max_memory`] must not exceed it. Default: 64 MiB.
    pub fn pool_memory(mut self, bytes: u64) -> Self {
        self.pool_memory = bytes;
        self
    }

    /// Where compiled modules are cached, keyed by the module's sha256 and the
    /// engine's compatibility hash; `None` turns the cache off. Default:
    /// `$XDG_CACHE_HOME/lattice/modules` or `~/.cache/lattice/modules`.
    pub fn module_cache(mut self, dir: Option<PathBuf>) -> Self {
        self.module_cache = dir;
        self
    }

    /// Whether fuel metering is compiled in, so that actors can be given a
    /// [fuel budget](ActorLimits::fuel). It slows guest code by roughly a
    /// third. Default: off.
    pub fn fuel(mut self, on: bool) -> Self {
        self.fuel = on;
        self
    }

    /// The granularity of deadlines: how often the engine's epoch advances.
    /// Default: 5 ms.
    pub fn epoch_tick(mut self, tick: Duration) -> Self {
        self.epoch_tick = tick.max(Duration::from_micros(100));
        self
    }

    /// How long an instance stays idle before it hibernates: it gives the
    /// pages of its linear memory back to the system, keeping those it
    /// wrote compressed on the side (a few KiB for a small actor), and the
    /// next call that takes it writes them back first (a page fault per
    /// page: 22 to 28 µs more for a small actor on the benchmark's VM).
    /// Its state is kept: an actor cannot tell. Calls take awake instances
    /// before hibernating ones. `None` keeps every instance awake. Linux
    /// only (elsewhere, instances stay awake). Default: 30 s.
    pub fn hibernate_after(mut self, after: Option<Duration>) -> Self {
        self.hibernate_after = after;
        self
    }

    /// The lattice the host joins. Default: `default`.
    pub fn lattice(mut self, lattice: impl Into<String>) -> Self {
        self.lattice = lattice.into();
        self
    }

    /// The host's id in subjects and events. Default: `h` and 12 random hex digits.
    pub fn host_id(mut self, id: impl Into<String>) -> Self {
        self.host_id = id.into();
        self
    }

    /// Whether a guest's call to an actor that also runs on this host is
    /// dispatched in process, without NATS. Same deadlines, limits and errors
    /// either way. Default: on.
    pub fn in_process(mut self, on: bool) -> Self {
        self.in_process = on;
        self
    }

    /// Whether the calls of actors that cannot wait run on the calling
    /// thread, without a fiber. An actor cannot wait when its module imports
    /// nothing that waits: no `call` (to other actors), and from WASI only
    /// functions that return at once (clocks, randomness, environment,
    /// writes to its discarded stdout and stderr). Its `publish` then does
    /// not wait for room in the host's NATS connection either: when the
    /// connection's queue is full, the guest gets `overloaded`. An inline
    /// call skips wasmtime's fiber (3,685 instead of 4,492 instructions for
    /// the echo actor's call); but it cannot yield to other work at an epoch
    /// tick. So the first call of an actor that runs past one tick (5 ms by
    /// default) moves the actor to fibers, where its later calls yield at
    /// each tick; that first call holds its thread until it ends or reaches
    /// its deadline. Turn this off for hosts whose actors may compute for
    /// long, or per actor with [`ActorLimits::inline`]. Default: on.
    pub fn inline_calls(mut self, on: bool) -> Self {
        self.inline_calls = on;
        self
    }

    /// How many calls from NATS the host runs at once; beyond that it answers
    /// `overloaded` at once, so that callers retry elsewhere. Default: 1,024.
    pub fn max_inflight(mut self, n: usize) -> Self {
        self.max_inflight = n;
        self
    }

    /// How often the host publishes its heartbeat once it has joined a
    /// lattice. Default: 500 ms. The other hosts count it gone after three
    /// intervals without a beat, and place its deployed replicas elsewhere.
    pub fn heartbeat(mut self, every: Duration) -> Self {
        self.heartbeat = every.max(Duration::from_millis(10));
        self
    }

    /// Adds a label (`zone = "eu-1"`), sent in pings, inventories and heartbeats.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// The largest wasm stack of a call, in bytes; deeper recursion traps with
    /// a stack overflow. Default: 512 KiB.
    pub fn max_wasm_stack(mut self, bytes: usize) -> Self {
        self.max_wasm_stack = bytes;
        self
    }

    /// The directory from which control requests may name module files on
    /// this host's disk (`start` or `update` with `path`): regular files
    /// inside it only, read with a deadline and up to
    /// [`max_module_size`](Self::max_module_size). `None` refuses every
    /// such request with `unauthorized`, so that whoever can reach the
    /// control subjects can neither read the host's files nor learn which
    /// exist; modules then travel in the request. The host's own program
    /// ([`Host::start_actor_file`](crate::Host::start_actor_file)) is not
    /// bound by it. Default: `None`.
    pub fn module_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.module_dir = dir;
        self
    }

    /// The largest module in bytes this host loads, by any path: bytes,
    /// a file, a control request. Default: 64 MiB.
    pub fn max_module_size(mut self, bytes: usize) -> Self {
        self.max_module_size = bytes;
        self
    }

    /// Checks every option that has a range, naming the option.
    /// Trusts modules signed by the issuer with public key `issuer` (an
    /// nkeys account key, `A…`; `lattice keys new issuer`). With one or more
    /// trusted issuers the host runs only modules signed by one of them
    /// (see [`claims`](crate::claims)); with none (the default) it runs
    /// unsigned modules too. Either way a signed module whose claims do not
    /// hold (tampered, expired, not yet valid) is refused.
    pub fn trust(mut self, issuer: impl Into<String>) -> Self {
        self.trusted_issuers.push(issuer.into());
        self
    }

    pub(crate) fn check(&self) -> Result<(), Error> {
        lattice::names::validate(lattice::names::NameKind::Lattice, &self.lattice)?;
        lattice::names::validate(lattice::names::NameKind::Host, &self.host_id)?;
        for (key, value) in &self.labels {
            check_label(key, value)?;
        }
        if self.max_inflight == 0 {
            return Err(invalid("max_inflight", "must be at least 1"));
        }
        if self.heartbeat.is_zero() {
            return Err(invalid("heartbeat", "must be longer than zero"));
        }
        if self.epoch_tick.is_zero() {
            return Err(invalid("epoch_tick", "must be longer than zero"));
        }
        if self.max_module_size == 0 {
            return Err(invalid("max_module_size", "must be at least 1 byte"));
        }
        for issuer in &self.trusted_issuers {
            crate::claims::check_issuer(issuer)?;
        }
        Ok(())
    }
}

/// The longest value of a label, in bytes.
pub(crate) const MAX_LABEL_VALUE: usize = 256;

/// Checks a label: its key follows the naming rule, its value is at most
/// [`MAX_LABEL_VALUE`] bytes.
pub(crate) fn check_label(key: &str, value: &str) -> Result<(), Error> {
    lattice::names::validate(lattice::names::NameKind::Label, key)?;
    if value.len() > MAX_LABEL_VALUE {
        return Err(invalid(
            "labels",
            format!(
                "the value of label `{key}` is {} bytes; at most {MAX_LABEL_VALUE}",
                value.len()
            ),
        ));
    }
    Ok(())
}

/// A bad value of the option or field `field`: a `decode` error (400, a
/// bad request) that names it.
pub(crate) fn invalid(field: &str, why: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Decode, format!("`{field}` {why}"))
}

/// The longest per-call timeout an actor may be given: a day.
pub(crate) const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

/// The smallest memory limit: one wasm page.
pub(crate) const MIN_MEMORY: u64 = 64 << 10;

/// Limits of one actor. Builder with by-value setters.
///
/// ```
/// use std::time::Duration;
/// use lattice_host::ActorLimits;
/// let limits = ActorLimits::new().max_memory(16 << 20).timeout(Duration::from_secs(1));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActorLimits {
    pub(crate) max_memory: u64,
    pub(crate) timeout: Duration,
    pub(crate) fuel: Option<u64>,
    pub(crate) max_payload: usize,
    pub(crate) max_instances: u32,
    pub(crate) inline: bool,
}

impl Default for ActorLimits {
    fn default() -> Self {
        ActorLimits {
            max_memory: 32 << 20,
            timeout: Duration::from_secs(10),
            fuel: None,
            max_payload: 8 << 20,
            max_instances: 8,
            inline: true,
        }
    }
}

impl ActorLimits {
    /// Checks every limit against its range and the host's options, naming
    /// the field: every path that starts, updates or scales an actor (the
    /// library, control requests, the CLI) goes through here.
    pub(crate) fn check(&self, host: &HostOptions) -> Result<(), Error> {
        check_max_instances(self.max_instances)?;
        if self.timeout.is_zero() || self.timeout > MAX_TIMEOUT {
            return Err(invalid(
                "timeout_ms",
                format_args!(
                    "must be between 1 and {} (a day); it was {}",
                    MAX_TIMEOUT.as_millis(),
                    self.timeout.as_millis()
                ),
            ));
        }
        if self.max_memory < MIN_MEMORY {
            return Err(invalid(
                "max_memory",
                format_args!(
                    "must be at least {MIN_MEMORY} bytes (one wasm page); it was {}",
                    self.max_memory
                ),
            ));
        }
        if host.pooling && self.max_memory > host.pool_memory {
            return Err(invalid(
                "max_memory",
                format_args!(
                    "({} bytes) exceeds the host's pooling slot ({} bytes); lower it, or \
                     raise HostOptions::pool_memory",
                    self.max_memory, host.pool_memory
                ),
            ));
        }
        if self.max_payload == 0 {
            return Err(invalid("max_payload", "must be at least 1 byte"));
        }
        match self.fuel {
            Some(_) if !host.fuel => Err(invalid(
                "fuel",
                "needs a host with fuel metering (HostOptions::fuel, `lattice up --fuel`); \
                 this host has none",
            )),
            Some(0) => Err(invalid("fuel", "must be at least 1")),
            _ => Ok(()),
        }
    }
}

/// Checks an instance limit.
pub(crate) fn check_max_instances(n: u32) -> Result<(), Error> {
    if n == 0 {
        return Err(invalid(
            "max_instances",
            "must be at least 1; stop the actor to run none",
        ));
    }
    Ok(())
}

impl ActorLimits {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// The largest linear memory of one instance, in bytes. Default: 32 MiB.
    pub fn max_memory(mut self, bytes: u64) -> Self {
        self.max_memory = bytes;
        self
    }

    /// The longest a call may run when the caller sets no deadline, and the
    /// cap on any deadline a caller sets. Default: 10 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The fuel (roughly, wasm instructions) one call may burn; needs
    /// [`HostOptions::fuel`]. Default: unlimited.
    pub fn fuel(mut self, fuel: Option<u64>) -> Self {
        self.fuel = fuel;
        self
    }

    /// The largest request or reply payload, in bytes. Default: 8 MiB.
    pub fn max_payload(mut self, bytes: usize) -> Self {
        self.max_payload = bytes;
        self
    }

    /// How many instances of the actor may run at once on this host (calls
    /// beyond that wait for one to be free, within their deadline). Default: 8.
    pub fn max_instances(mut self, n: u32) -> Self {
        self.max_instances = n;
        self
    }

    /// Whether the actor's calls may run inline, when its module allows it
    /// and the host does ([`HostOptions::inline_calls`]). Turn it off for an
    /// actor known to compute for long stretches: its calls then run on
    /// fibers from the start, and yield at each epoch tick, instead of its
    /// first long call holding a thread. Default: on.
    pub fn inline(mut self, on: bool) -> Self {
        self.inline = on;
        self
    }
}
