#!/usr/bin/env python3
"""Instructions per call from two callgrind runs of the `lattice` bench.

Run the same profiling mode twice with different call counts, then:

    callgrind-per-call.py SHORT.out LONG.out CALLS [--top N] [--event EV]

CALLS is the difference in calls between the two runs; start-up and
shutdown cancel out. Guest functions are named when the runs had
`LATTICE_PERFMAP=1` (wasmtime's /tmp/perf-<pid>.map; the pid is read from
the callgrind file). Prints the total, groups, and the top functions.

`--event` counts another of the runs' events instead of instructions: with
`--cache-sim=yes` and caches too small to keep anything from one call to
the next (`--I1=4096,4,64 --D1=4096,4,64 --LL=16384,4,64`), the last-level
misses `ILmr`, `DLmr` and `DLmw` count about the distinct code and data
lines a call touches: what it has to fetch again after the machine idled.
See the "Instructions per call" section of the book's Performance chapter.
"""

import argparse
import bisect
import collections
import re
import subprocess

GROUPS = [
    ("the guest (compiled wasm)", r"^WASM "),
    # glibc's allocator and Rust's shims over it (not wasmtime's pools).
    ("malloc and free", r"malloc\.c|arena\.c|(alloc|free)\S* \[\S*libc\.so|__rdl_|__rust_(no_)?alloc|__rust_realloc|__rust_dealloc"),
    ("memcpy, memcmp", r"memmove|memcpy|memcmp|memset"),
    ("hashing", r"sip::|hash_one|Hasher|hashbrown|foldhash"),
    ("formatting", r"core::fmt|fmt::"),
    ("async-nats", r"async_nats|nuid"),
    ("wasmtime", r"wasmtime|cranelift"),
    ("tokio", r"tokio|mio::"),
    ("the host's own code", r"lattice_host"),
    ("lattice core (client, codec)", r"lattice::"),
    ("bytes", r"bytes::"),
    ("string scanning, UTF-8", r"core::str|from_utf8|memchr|CharSearcher|Utf8"),
    ("clock, syscalls", r"vdso|clock_gettime|Timespec|syscall|epoll"),
]


def perf_map(pid):
    try:
        rows = []
        with open(f"/tmp/perf-{pid}.map") as f:
            for line in f:
                start, size, name = line.rstrip("\n").split(" ", 2)
                rows.append((int(start, 16), int(size, 16), name))
        rows.sort()
        return rows
    except FileNotFoundError:
        return []


def functions(path, event):
    """`event` (instructions by default) by function name, guest addresses
    resolved."""
    with open(path, errors="replace") as f:
        pid = next((m.group(1) for m in (re.match(r"pid: (\d+)", l) for l in f) if m), None)
    rows = perf_map(pid) if pid else []
    starts = [r[0] for r in rows]
    out = subprocess.run(
        ["callgrind_annotate", "--threshold=100", "--auto=no", f"--show={event}",
         f"--sort={event}", path],
        capture_output=True, text=True, check=True,
    ).stdout
    counts = collections.Counter()
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\([^)]*\)\s+(.*)", line)
        if not m or "PROGRAM TOTALS" in m.group(2):
            continue
        name, ir = m.group(2), int(m.group(1).replace(",", ""))
        addr = re.match(r"\?\?\?:0x([0-9a-f]+) \[\?\?\?\]", name)
        if addr and rows:
            a = int(addr.group(1), 16)
            i = bisect.bisect_right(starts, a) - 1
            if i >= 0 and a < rows[i][0] + rows[i][1]:
                name = "WASM " + re.sub(r"::h[0-9a-f]{16}$", "", rows[i][2])
        counts[name] += ir
    return counts


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("short")
    p.add_argument("long")
    p.add_argument("calls", type=int)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--event", default="Ir", help="Ir, or e.g. ILmr with --cache-sim=yes")
    args = p.parse_args()
    a, b = functions(args.short, args.event), functions(args.long, args.event)
    per_call = {k: (b.get(k, 0) - a.get(k, 0)) / args.calls for k in a.keys() | b.keys()}
    print(f"{sum(per_call.values()):8.0f}  per call ({args.event})")
    groups = collections.Counter()
    for name, n in per_call.items():
        group = next((g for g, pat in GROUPS if re.search(pat, name)), "other")
        groups[group] += n
    for group, n in groups.most_common():
        if abs(n) >= 5:
            print(f"{n:8.0f}  {group}")
    print()
    for name, n in sorted(per_call.items(), key=lambda kv: -kv[1])[: args.top]:
        print(f"{n:8.0f}  {name[:120]}")


if __name__ == "__main__":
    main()
