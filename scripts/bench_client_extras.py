"""pug-grpc figures beyond ingestion, for ``bench.py``: read rates and a cProfile of the burst.

``reads``: ``profiles.list`` and ``activity.feed`` against the seeded local server. ``profile``:
the default burst under cProfile, the caller thread and the SDK's own threads (those whose name
starts with ``pug-grpc``) profiled separately.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from bench_common import API_KEY, FEED_USER, KIND, LOOPBACK
from bench_workload import USERS, cpu_s, workload


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
            cpu0 = cpu_s()
            start = time.perf_counter()
            count = sum(1 for _ in read())
            elapsed = time.perf_counter() - start
            cpu = cpu_s() - cpu0
            out[name] = {
                "items": count,
                "seconds": elapsed,
                "items_per_s": count / elapsed,
                "client_cpu_us_per_item": cpu / count * 1e6 if count else 0.0,
            }
    return out


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
    from pug_grpc import Pug

    caller = cProfile.Profile()
    worker = cProfile.Profile()

    def start_worker_profile(*_: Any) -> None:
        # Runs once in each new thread (threading.setprofile), replaced by cProfile's hook.
        sys.setprofile(None)
        if threading.current_thread().name.startswith("pug-grpc"):
            worker.enable()

    threading.setprofile(start_worker_profile)
    pug = Pug(API_KEY, f"http://{LOOPBACK}:{args.port}")
    ids, props = workload()
    track = pug.track
    start = time.perf_counter()
    caller.enable()
    for i in range(args.events):
        track(ids[i % USERS], KIND, props[i % USERS])
    caller.disable()
    pug.flush(timeout=args.drain_timeout)
    pug.close()
    elapsed = time.perf_counter() - start
    threading.setprofile(None)
    worker.disable()
    s = pug.stats()
    return {
        "mode": "profile",
        "events": args.events,
        "seconds": elapsed,
        "sent": getattr(s, "sent", None),  # Stats fields of this version, when it has them
        "overflowed": getattr(s, "overflowed", None),
        "caller": _top(caller, args.top),
        "worker": _top(worker, args.top),
    }
