"""track() latency and delivery throughput with MemoryStorage vs SqliteStorage (a short run).

Against the local testing server on loopback, for each storage: one thread tracks ``--events``
events, timing every call; then ``flush()`` waits until the server has answered for all of
them. Prints track() p50/p99 (microseconds) and delivered events/s (first call to the end of
the flush). Runs in well under 30 seconds on defaults. ``--outage 30`` adds a 30-second
outage at ``--rate`` (5,000) events/s with SqliteStorage: events lost and RSS before/after::

    .venv/bin/python scripts/bench_storage.py [--events 20000] [--outage 30 --rate 5000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass

from pug_grpc import BatchSettings, MemoryStorage, Pug, SqliteStorage, Storage
from pug_grpc.testing import LocalServer, local_server


@dataclass(frozen=True)
class Result:
    name: str
    p50_us: float
    p99_us: float
    events_per_s: float
    accepted: int


def _percentile(sorted_ns: list[int], fraction: float) -> float:
    return sorted_ns[min(len(sorted_ns) - 1, int(len(sorted_ns) * fraction))] / 1000.0


def run(name: str, storage: Storage, events: int, server: LocalServer) -> Result:
    pug = Pug(
        server.private_key,
        server.endpoint,
        server.project_id,
        storage=storage,
        batch=BatchSettings(max_wait=0.05),
    )
    timings: list[int] = []
    clock = time.perf_counter_ns
    started = time.perf_counter()
    for seq in range(events):
        before = clock()
        pug.track(f"user-{seq % 500}", "bench.storage", {"seq": seq, "plan": "pro"})
        timings.append(clock() - before)
    result = pug.flush(60)
    elapsed = time.perf_counter() - started
    pug.close()
    timings.sort()
    return Result(
        name,
        _percentile(timings, 0.50),
        _percentile(timings, 0.99),
        result.accepted / elapsed if elapsed else 0.0,
        result.accepted,
    )


def _rss_mib() -> float:
    """The process's resident memory now (Linux), in MiB."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)


def outage(seconds: float, rate: int, server: LocalServer, spool: str) -> str:
    """Track ``rate`` events/s for ``seconds`` while the server is away, then deliver."""
    server.faults.outage()
    pug = Pug(
        server.private_key,
        server.endpoint,
        server.project_id,
        storage=SqliteStorage(spool),
        batch=BatchSettings(max_wait=0.05),
    )
    rss = [_rss_mib()]
    started = time.monotonic()
    sent = 0
    while (elapsed := time.monotonic() - started) < seconds:
        due = int(elapsed * rate)
        while sent < due:
            pug.track(f"user-{sent % 500}", "bench.outage", {"seq": sent})
            sent += 1
        if sent % rate < 50:
            rss.append(_rss_mib())
        time.sleep(0.005)
    rss.append(_rss_mib())
    server.faults.end_outage()
    result = pug.flush(120)
    pug.close()
    return (
        f"outage {seconds:g}s at {rate}/s with SqliteStorage: tracked {sent}, accepted "
        f"{result.accepted}, lost {sent - result.accepted}; RSS {rss[0]:.0f} -> {max(rss):.0f} MiB"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000, help="events per storage")
    parser.add_argument(
        "--outage", type=float, default=0.0, help="also track through an outage this long (s)"
    )
    parser.add_argument("--rate", type=int, default=5000, help="events/s during --outage")
    args = parser.parse_args(argv)
    extra = ""
    results: list[Result] = []
    with local_server() as server, tempfile.TemporaryDirectory(prefix="pug-bench-") as spool:
        for name, storage in (
            ("MemoryStorage", MemoryStorage()),
            ("SqliteStorage", SqliteStorage(os.path.join(spool, "spool"))),
        ):
            results.append(run(name, storage, args.events, server))
            server.reset()
        if args.outage > 0:
            extra = outage(args.outage, args.rate, server, os.path.join(spool, "outage")) + "\n"
    out = sys.stdout
    out.write(f"{args.events} events per storage, one tracking thread, local server\n")
    out.write(f"{'storage':<15}{'track p50 µs':>14}{'track p99 µs':>14}{'events/s':>12}{'ok':>8}\n")
    for r in results:
        out.write(
            f"{r.name:<15}{r.p50_us:>14.2f}{r.p99_us:>14.2f}{r.events_per_s:>12.0f}"
            f"{r.accepted:>8}\n"
        )
    out.write(extra)
    return 0 if all(r.accepted == args.events for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
