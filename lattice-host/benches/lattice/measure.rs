//! What every section shares: which sections run, timing pairs of calls
//! against their baselines, memory and CPU readings, the table.

use crate::profile::profile_calls;
use crate::support;
use futures_util::StreamExt;
use lattice_host::Host;
use lattice_host::HostOptions;
use std::collections::BTreeMap;
use std::time::Duration;
use std::time::Instant;

/// Whether a section runs: `LATTICE_BENCH_ONLY=transport,a2a,density`
/// picks some; all run by default.
pub(crate) fn section(name: &str) -> bool {
    std::env::var("LATTICE_BENCH_ONLY")
        .map_or(true, |only| only.split(',').any(|s| s.trim() == name))
}

/// Whether a section that never runs by default was asked for by name
/// (one of [`PROFILE_MODES`], or `density100k`).
pub(crate) fn asked_for(name: &str) -> bool {
    std::env::var("LATTICE_BENCH_ONLY").is_ok_and(|only| only.split(',').any(|s| s.trim() == name))
}

pub(crate) fn scale(n: usize) -> usize {
    if std::env::var_os("LATTICE_BENCH_QUICK").is_some() {
        (n / 10).max(50)
    } else {
        n
    }
}

/// Median and 99th percentile.
pub(crate) fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99))
}

pub(crate) fn us(d: Duration) -> String {
    format!("{:.1} us", d.as_secs_f64() * 1e6)
}

pub(crate) struct Table(pub(crate) Vec<[String; 4]>);

impl Table {
    pub(crate) fn row(
        &mut self,
        what: impl Into<String>,
        raw: String,
        ours: String,
        ratio: String,
    ) {
        let row = [what.into(), raw, ours, ratio];
        println!(
            "{:<44} {:>16} {:>16} {:>10}",
            row[0], row[1], row[2], row[3]
        );
        self.0.push(row);
    }
}

/// Runs `calls` calls of `f`, `inflight` at once; returns calls per second.
pub(crate) async fn throughput<F, Fut>(calls: usize, inflight: usize, f: F) -> f64
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let start = Instant::now();
    futures_util::stream::iter(0..calls)
        .map(|_| f())
        .buffer_unordered(inflight)
        .collect::<Vec<()>>()
        .await;
    calls as f64 / start.elapsed().as_secs_f64()
}

/// `calls` throughput runs of `a` and of `b`, in [`ROUNDS`] rounds that
/// alternate which goes first (a b, b a, a b, ...), so that the machine's
/// drift (a third within minutes here) falls on both alike; returns each
/// one's calls per second over all its rounds, and the ratio of `b`'s rate
/// to `a`'s in each round (sorted): how far one run's ratio can be trusted.
pub(crate) async fn throughput_pair<FA, FutA, FB, FutB>(
    calls: usize,
    inflight: usize,
    a: FA,
    b: FB,
) -> (f64, f64, Vec<f64>)
where
    FA: Fn() -> FutA,
    FutA: std::future::Future<Output = ()>,
    FB: Fn() -> FutB,
    FutB: std::future::Future<Output = ()>,
{
    let each = (calls / ROUNDS).max(1);
    let (mut time_a, mut time_b) = (0.0, 0.0);
    let mut ratios = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        let timed_a = async { each as f64 / throughput(each, inflight, &a).await };
        let timed_b = async { each as f64 / throughput(each, inflight, &b).await };
        let (round_a, round_b) = if round % 2 == 0 {
            let round_a = timed_a.await;
            (round_a, timed_b.await)
        } else {
            let round_b = timed_b.await;
            (timed_a.await, round_b)
        };
        time_a += round_a;
        time_b += round_b;
        ratios.push(round_a / round_b);
    }
    ratios.sort_by(f64::total_cmp);
    let total = (each * ROUNDS) as f64;
    (total / time_a, total / time_b, ratios)
}

/// How many blocks [`sequential_pair`] splits its calls into for the
/// spread of its difference.
pub(crate) const BLOCKS: usize = 10;

/// One line under a table row: the lowest, middle and highest of `values`
/// (sorted), each formatted by `show`.
pub(crate) fn spread(of: &str, values: &[f64], show: impl Fn(f64) -> String) {
    if let (Some(&low), Some(&high)) = (values.first(), values.last()) {
        println!(
            "    {of}: lowest {}, median {}, highest {}",
            show(low),
            show(values[values.len() / 2]),
            show(high)
        );
    }
}

/// How many rounds [`throughput_pair`] alternates.
pub(crate) const ROUNDS: usize = 10;

/// `calls` sequential calls of `a` and of `b`, alternating call by call
/// (and which of the two goes first), after a tenth as many to warm up: the
/// machine's drift falls on both alike. Returns each one's median and
/// 99th percentile, and the difference of their medians (`b`'s less `a`'s,
/// in µs) in each of [`BLOCKS`] consecutive blocks of the calls (sorted).
pub(crate) async fn sequential_pair<FA, FutA, FB, FutB>(
    calls: usize,
    a: FA,
    b: FB,
) -> ((Duration, Duration), (Duration, Duration), Vec<f64>)
where
    FA: Fn() -> FutA,
    FutA: std::future::Future<Output = ()>,
    FB: Fn() -> FutB,
    FutB: std::future::Future<Output = ()>,
{
    for _ in 0..calls / 10 {
        a().await;
        b().await;
    }
    let (mut samples_a, mut samples_b) = (Vec::with_capacity(calls), Vec::with_capacity(calls));
    for i in 0..calls {
        let timed_a = async {
            let start = Instant::now();
            a().await;
            start.elapsed()
        };
        let timed_b = async {
            let start = Instant::now();
            b().await;
            start.elapsed()
        };
        if i % 2 == 0 {
            samples_a.push(timed_a.await);
            samples_b.push(timed_b.await);
        } else {
            samples_b.push(timed_b.await);
            samples_a.push(timed_a.await);
        }
    }
    let block = calls.div_ceil(BLOCKS).max(1);
    let mut differences: Vec<f64> = samples_a
        .chunks(block)
        .zip(samples_b.chunks(block))
        .map(|(a, b)| {
            let (a, _) = percentiles(a.to_vec());
            let (b, _) = percentiles(b.to_vec());
            (b.as_secs_f64() - a.as_secs_f64()) * 1e6
        })
        .collect();
    differences.sort_by(f64::total_cmp);
    (percentiles(samples_a), percentiles(samples_b), differences)
}

/// Resident memory: (all, anonymous) bytes. The rest is file and shared
/// memory: the pages of compiled code and of copy-on-write memory images
/// that an instance has read, counted once per mapping though shared.
/// The CPU time this process has used, all its threads (those that ended
/// too), user and system: `/proc/self/stat`, in clock ticks of 10 ms.
pub(crate) fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name, in parentheses, may hold spaces: the fields are
    // counted after it. utime and stime are fields 14 and 15 of the line,
    // the 12th and 13th after the name.
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .map_or_else(Vec::new, |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

pub(crate) fn rss_bytes() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kb| kb.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    (field("VmRSS:"), field("RssAnon:"))
}

/// The process's proportional set size: each resident page divided by the
/// number of mappings that share it. RSS counts a page of a module's
/// read-only memory image once per instance that maps it; PSS once in all.
pub(crate) fn pss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/smaps_rollup")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .map_or(0, kb)
}

/// The bytes of a `/proc/self/smaps` field's value (`   24 kB`).
pub(crate) fn kb(rest: &str) -> u64 {
    rest.split_whitespace()
        .next()
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

/// Resident bytes in mappings of exactly `size` bytes: the fiber stacks of
/// the pooling allocator are the only ones of their size.
pub(crate) fn resident_in_mappings_of(size: u64) -> u64 {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
    let mut total = 0;
    let mut matching = false;
    for line in smaps.lines() {
        if let Some(rest) = line.strip_prefix("Size:") {
            matching = kb(rest) == size;
        } else if let Some(rest) = line.strip_prefix("Rss:")
            && matching
        {
            total += kb(rest);
        }
    }
    total
}

/// Resident and anonymous (copied-on-write) bytes of the instances' memory
/// images: the mappings of a compiled module that appear at least `count`
/// times, one per instance.
pub(crate) fn resident_in_images(count: usize) -> (u64, u64) {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
    let mut groups: BTreeMap<u64, (usize, u64, u64)> = BTreeMap::new();
    let mut size = None;
    for line in smaps.lines() {
        // A mapping's first line starts with its address range, `a-b`.
        let first = line.split_whitespace().next().unwrap_or("");
        if first.contains('-') && !first.ends_with(':') {
            // Images are mapped from the module cache's `.cwasm` files, or,
            // for a module compiled in this process, from a memfd.
            let image = line.ends_with(".cwasm") || line.contains("wasm-memory-image");
            size = image.then_some(0);
        } else if let Some(rest) = line.strip_prefix("Size:")
            && let Some(s) = size.as_mut()
        {
            *s = kb(rest);
            groups.entry(*s).or_default().0 += 1;
        } else if let (Some(s), Some(rest)) = (size, line.strip_prefix("Rss:")) {
            groups.entry(s).or_default().1 += kb(rest);
        } else if let (Some(s), Some(rest)) = (size, line.strip_prefix("Anonymous:")) {
            groups.entry(s).or_default().2 += kb(rest);
        }
    }
    groups
        .values()
        .filter(|(maps, _, _)| *maps >= count)
        .fold((0, 0), |(r, a), (_, rss, anon)| (r + rss, a + anon))
}

/// The process's memory mappings (against `vm.max_map_count`).
pub(crate) fn mappings() -> usize {
    std::fs::read_to_string("/proc/self/maps").map_or(0, |m| m.lines().count())
}

/// A count of calls from the environment variable `name`, else `default`.
pub(crate) fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name).map_or(default, |n| {
        n.parse()
            .unwrap_or_else(|_| panic!("{name}: a number of calls, not {n:?}"))
    })
}

/// Makes `profile_calls()` calls of `f`, one after another; the mean time.
pub(crate) async fn per_call<F: std::future::Future>(mut f: impl FnMut() -> F) -> Duration {
    let calls = profile_calls();
    let started = Instant::now();
    for _ in 0..calls {
        f().await;
    }
    started.elapsed() / u32::try_from(calls.max(1)).unwrap_or(u32::MAX)
}

/// The arguments of `echo.echo_bytes` with 64 bytes of data, as the
/// generated client encodes them, for calls made with `Host::invoke`.
pub(crate) fn echo_args_64() -> Vec<u8> {
    let data = serde_bytes::ByteBuf::from(vec![7u8; 64]);
    lattice::codec::encode(&BTreeMap::from([("data", data)])).expect("encodes")
}

pub(crate) fn bench_host(lattice: &str, id: &str, pool_instances: u32) -> Host {
    Host::new(bench_options(lattice, id, pool_instances)).expect("a host")
}

pub(crate) fn bench_options(lattice: &str, id: &str, pool_instances: u32) -> HostOptions {
    HostOptions::new()
        .lattice(lattice)
        .host_id(id)
        .pool_instances(pool_instances)
        .module_cache(Some(support::shared_cache()))
}

pub(crate) fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default()
}
