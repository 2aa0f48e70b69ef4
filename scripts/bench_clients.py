"""The client side of ``bench.py``: one SDK, one workload, one process, one JSON line out.

Every SDK gets the same workload: ``--events`` events of one shape (a checkout with eight
properties of mixed types, 1,000 distinct users), tracked in a tight loop on one thread as fast
as it goes. Each call is timed with ``perf_counter_ns``; the process's CPU time (user + system,
every thread) is taken from just before the first call to just after the SDK has delivered
everything (its flush/close returned). Peak RSS is the process's ``ru_maxrss``.

Modes: ``pug``, ``posthog``, ``segment`` (the burst), ``memory`` (bytes per event queued behind
a stopped server), ``reads`` (profiles.list and activity.feed) and ``profile`` (the pug burst
under cProfile, caller and worker threads profiled separately).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import resource
import socket
import sys
import threading
import time
from array import array
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from bench_sinks import API_KEY, FEED_USER, LOOPBACK

USERS = 1000
KIND = "checkout.completed"
_PLANS = ("free", "pro", "team")


def workload() -> tuple[list[str], list[dict[str, Any]]]:
    """Distinct ids and property dicts, built before timing starts (cycled by the loop)."""
    ids = [f"user-{i:05d}" for i in range(USERS)]
    props = [
        {
            "plan": _PLANS[i % 3],
            "seats": 1 + i % 20,
            "amount": 9.99 + i % 50,
            "currency": "EUR",
            "trial": i % 4 == 0,
            "path": "/checkout/confirm",
            "referrer": "https://www.example.com/pricing",
            "items": 1 + i % 5,
        }
        for i in range(USERS)
    ]
    return ids, props


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _rss_kib() -> int:
    """Current resident set size (``/proc/self/statm``), in KiB."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


def _percentile(sorted_ns: Sequence[int], q: float) -> float:
    index = min(len(sorted_ns) - 1, int(q * len(sorted_ns)))
    return sorted_ns[index] / 1000.0


def _burst(call: Callable[[str, dict[str, Any]], Any], events: int) -> tuple[array[int], float]:
    ids, props = workload()
    latencies = array("q", bytes(8 * events))
    clock = time.perf_counter_ns
    first = time.monotonic()
    for i in range(events):
        uid = ids[i % USERS]
        p = props[i % USERS]
        t0 = clock()
        call(uid, p)
        latencies[i] = clock() - t0
    return latencies, first


def _result(
    *,
    sdk: str,
    variant: str,
    events: int,
    latencies: array[int],
    first: float,
    calls_done: float,
    cpu: float,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    closed = time.monotonic()
    ordered = sorted(latencies)
    return {
        "sdk": sdk,
        "variant": variant,
        "events": events,
        "p50_us": _percentile(ordered, 0.50),
        "p99_us": _percentile(ordered, 0.99),
        "p999_us": _percentile(ordered, 0.999),
        "max_us": ordered[-1] / 1000.0 if ordered else 0.0,
        "first": first,
        "calls_done": calls_done,
        "closed": closed,
        "cpu_s": cpu,
        "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        **(extra or {}),
    }


# -- pug-grpc ------------------------------------------------------------------------------
def _pug_client(args: argparse.Namespace, **kwargs: Any) -> Any:
    import grpc

    from pug_grpc import BatchSettings, Pug

    return Pug(
        API_KEY,
        f"http://{LOOPBACK}:{args.port}",
        batch=BatchSettings(max_size=args.batch_size),
        compression=grpc.Compression.Gzip if args.gzip else None,
        **kwargs,
    )


def run_pug(args: argparse.Namespace) -> dict[str, Any]:
    pug = _pug_client(args)
    cpu0 = _cpu()
    latencies, first = _burst(lambda uid, p: pug.track(uid, KIND, p), args.events)
    calls_done = time.monotonic()
    pug.close(timeout=300)
    cpu = _cpu() - cpu0
    s = pug.stats()
    stats = {"sent": s.sent, "overflowed": s.overflowed, "dead_lettered": s.dead_lettered}
    extra = {"client_stats": stats, "batches": s.batches, "retried": s.retried}
    return _result(
        sdk="pug-grpc",
        variant=args.variant,
        events=args.events,
        latencies=latencies,
        first=first,
        calls_done=calls_done,
        cpu=cpu,
        extra=extra,
    )


# -- peers ---------------------------------------------------------------------------------
def run_posthog(args: argparse.Namespace) -> dict[str, Any]:
    from posthog import Posthog

    options: dict[str, Any] = {"host": f"http://{LOOPBACK}:{args.port}"}
    if args.queue_size:
        options["max_queue_size"] = args.queue_size
    client = Posthog("phc_bench_local_key", **options)
    cpu0 = _cpu()
    latencies, first = _burst(
        lambda uid, p: client.capture(KIND, distinct_id=uid, properties=p), args.events
    )
    calls_done = time.monotonic()
    client.flush()
    client.shutdown()
    cpu = _cpu() - cpu0
    return _result(
        sdk="posthog",
        variant=args.variant,
        events=args.events,
        latencies=latencies,
        first=first,
        calls_done=calls_done,
        cpu=cpu,
    )


def run_segment(args: argparse.Namespace) -> dict[str, Any]:
    from segment.analytics import Client  # type: ignore[import-untyped]

    options: dict[str, Any] = {"host": f"http://{LOOPBACK}:{args.port}"}
    if args.queue_size:
        options["max_queue_size"] = args.queue_size
    client = Client("bench_local_write_key", **options)
    cpu0 = _cpu()
    latencies, first = _burst(
        lambda uid, p: client.track(user_id=uid, event=KIND, properties=p), args.events
    )
    calls_done = time.monotonic()
    client.flush()
    client.shutdown()
    cpu = _cpu() - cpu0
    return _result(
        sdk="segment",
        variant=args.variant,
        events=args.events,
        latencies=latencies,
        first=first,
        calls_done=calls_done,
        cpu=cpu,
    )


# -- memory per queued event ---------------------------------------------------------------
def _closed_port() -> int:
    """A loopback port with nothing listening (a stopped server)."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
    return port


def run_memory(args: argparse.Namespace) -> dict[str, Any]:
    from pug_grpc import BatchSettings, Pug

    count = args.events
    pug = Pug(
        API_KEY,
        f"http://{LOOPBACK}:{_closed_port()}",
        batch=BatchSettings(max_queue_size=count + 1000),
    )
    ids, props = workload()
    pug.track(ids[0], KIND, props[0])  # start the worker and the channel before measuring
    deadline = time.monotonic() + 10
    while pug.stats().retried == 0 and time.monotonic() < deadline:
        time.sleep(0.01)  # the worker is now holding its first batch, waiting to retry
    before = _rss_kib()
    for i in range(count):
        pug.track(ids[i % USERS], KIND, props[i % USERS])
    after = _rss_kib()
    depth = pug.stats().queue_depth
    pug.close(timeout=0.2)  # everything is reported as undelivered; nothing is sent
    return {
        "mode": "memory",
        "events": count,
        "queue_depth": depth,
        "rss_before_kib": before,
        "rss_after_kib": after,
        "bytes_per_event": (after - before) * 1024 / count,
    }


# -- reads ---------------------------------------------------------------------------------
def run_reads(args: argparse.Namespace) -> dict[str, Any]:
    from pug_grpc import Pug

    out: dict[str, Any] = {"mode": "reads"}
    with Pug(API_KEY, f"http://{LOOPBACK}:{args.port}") as pug:
        reads: dict[str, Callable[[], Iterable[Any]]] = {
            "profiles_list": pug.profiles.list,
            "feed": lambda: pug.activity.feed(FEED_USER),
            "feed_page_1000": lambda: pug.activity.feed(FEED_USER, page_size=1000),
        }
        for name, read in reads.items():
            cpu0 = _cpu()
            start = time.perf_counter()
            count = sum(1 for _ in read())
            elapsed = time.perf_counter() - start
            cpu = _cpu() - cpu0
            out[name] = {
                "items": count,
                "seconds": elapsed,
                "items_per_s": count / elapsed,
                "client_cpu_us_per_item": cpu / count * 1e6 if count else 0.0,
            }
    return out


# -- profile -------------------------------------------------------------------------------
def _top(profile: cProfile.Profile, limit: int) -> list[dict[str, Any]]:
    stats = pstats.Stats(profile, stream=io.StringIO())
    rows = []
    for (filename, line, name), (_, calls, tottime, cumtime, _) in stats.stats.items():  # type: ignore[attr-defined]
        where = f"{os.path.basename(filename)}:{line}" if line else filename
        rows.append(
            {
                "function": f"{name} ({where})",
                "calls": calls,
                "tottime_s": tottime,
                "cumtime_s": cumtime,
            }
        )
    rows.sort(key=lambda r: r["tottime_s"], reverse=True)
    return rows[:limit]


def run_profile(args: argparse.Namespace) -> dict[str, Any]:
    caller = cProfile.Profile()
    worker = cProfile.Profile()

    def start_worker_profile(*_: Any) -> None:
        # Runs once in each new thread (threading.setprofile), replaced by cProfile's hook.
        sys.setprofile(None)
        if threading.current_thread().name == "pug-grpc-worker":
            worker.enable()

    threading.setprofile(start_worker_profile)
    pug = _pug_client(args)
    ids, props = workload()
    track = pug.track
    start = time.perf_counter()
    caller.enable()
    for i in range(args.events):
        track(ids[i % USERS], KIND, props[i % USERS])
    caller.disable()
    pug.close(timeout=300)
    elapsed = time.perf_counter() - start
    threading.setprofile(None)
    worker.disable()
    s = pug.stats()
    return {
        "mode": "profile",
        "events": args.events,
        "seconds": elapsed,
        "sent": s.sent,
        "overflowed": s.overflowed,
        "caller": _top(caller, args.top),
        "worker": _top(worker, args.top),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["pug", "posthog", "segment", "memory", "reads", "profile"])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--variant", default="default")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--gzip", action="store_true")
    parser.add_argument("--queue-size", type=int, default=0, help="peers: max_queue_size")
    parser.add_argument("--top", type=int, default=15, help="profile: functions listed")
    args = parser.parse_args(argv)
    runners: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
        "pug": run_pug,
        "posthog": run_posthog,
        "segment": run_segment,
        "memory": run_memory,
        "reads": run_reads,
        "profile": run_profile,
    }
    result = runners[args.mode](args)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
