"""The workload every SDK runs, and how its calls are timed (client side of ``bench.py``).

One shape of event: a checkout with eight properties of mixed types (three strings, three
integers, a float and a bool), 1,000 distinct users, built before timing starts. Two ways to
call: a **burst** (every call as fast as one thread can) and **paced** (a fixed rate on an
absolute ``CLOCK_MONOTONIC`` schedule: the loop sleeps until the next event is due and, when it
fell behind, makes every call that is due, so the average rate holds without drifting; the
worst lag behind the schedule is reported). Each call is timed with ``perf_counter_ns``.
"""

from __future__ import annotations

import os
import resource
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

USERS = 1000
_PLANS = ("free", "pro", "team")

Call = Callable[[str, dict[str, Any]], object]


def workload() -> tuple[list[str], list[dict[str, Any]]]:
    """Distinct ids and property dicts (cycled by the loops)."""
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


def traits_of(props: dict[str, Any]) -> dict[str, Any]:
    """The traits an identify call sends for a user (a subset of its checkout)."""
    return {"plan": props["plan"], "seats": props["seats"]}


def cpu_s() -> float:
    """User + system CPU time of this process, every thread."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_kib() -> int:
    """Current resident set size (``/proc/self/statm``), in KiB."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


def peak_rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


@dataclass
class Timing:
    """What the calling loop measured."""

    latencies: array[int]
    first: float
    calls_done: float
    lag_max_s: float = 0.0


def _chooser(track: Call, identify: Call | None, identify_every: int) -> Callable[[int], Call]:
    traits_call: Call | None = None
    if identify is not None and identify_every > 0:
        call_identify = identify

        def traits_call(uid: str, props: dict[str, Any]) -> object:
            return call_identify(uid, traits_of(props))

    def choose(i: int) -> Call:
        if traits_call is not None and i % identify_every == identify_every - 1:
            return traits_call
        return track

    return choose


def burst(
    track: Call, events: int, *, identify: Call | None = None, identify_every: int = 0
) -> Timing:
    """``events`` calls as fast as one thread can."""
    ids, props = workload()
    choose = _chooser(track, identify, identify_every)
    calls = [choose(i) for i in range(min(events, USERS * max(1, identify_every)))]
    period = len(calls) or 1
    latencies = array("q", bytes(8 * events))
    clock = time.perf_counter_ns
    first = time.monotonic()
    for i in range(events):
        call = calls[i % period]
        uid = ids[i % USERS]
        p = props[i % USERS]
        t0 = clock()
        call(uid, p)
        latencies[i] = clock() - t0
    return Timing(latencies, first, time.monotonic())


def paced(
    track: Call,
    events: int,
    rate: float,
    *,
    identify: Call | None = None,
    identify_every: int = 0,
) -> Timing:
    """``events`` calls at ``rate`` per second, on an absolute monotonic schedule."""
    ids, props = workload()
    choose = _chooser(track, identify, identify_every)
    latencies = array("q", bytes(8 * events))
    clock = time.perf_counter_ns
    monotonic = time.monotonic
    lag_max = 0.0
    start = monotonic()
    i = 0
    while i < events:
        now = monotonic()
        due = min(events, int((now - start) * rate) + 1)
        if due <= i:
            time.sleep(start + i / rate - now)
            continue
        lag_max = max(lag_max, now - (start + i / rate))
        while i < due:
            call = choose(i)
            t0 = clock()
            call(ids[i % USERS], props[i % USERS])
            latencies[i] = clock() - t0
            i += 1
    return Timing(latencies, start, monotonic(), lag_max)


def percentile(sorted_ns: Sequence[int], q: float) -> float:
    """The ``q`` quantile in µs (nearest rank below)."""
    if not sorted_ns:
        return 0.0
    index = min(len(sorted_ns) - 1, int(q * len(sorted_ns)))
    return sorted_ns[index] / 1000.0


def result(
    *, sdk: str, events: int, timing: Timing, cpu: float, closed: float, extra: dict[str, Any]
) -> dict[str, Any]:
    """The JSON line a client prints: call latencies, clock marks, CPU and memory."""
    ordered = sorted(timing.latencies)
    calling = timing.calls_done - timing.first
    return {
        "sdk": sdk,
        "events": events,
        "p50_us": percentile(ordered, 0.50),
        "p99_us": percentile(ordered, 0.99),
        "p999_us": percentile(ordered, 0.999),
        "max_us": ordered[-1] / 1000.0 if ordered else 0.0,
        "first": timing.first,
        "calls_done": timing.calls_done,
        "closed": closed,
        "calls_per_s": events / calling if calling > 0 else 0.0,
        "lag_max_ms": timing.lag_max_s * 1000,
        "cpu_s": cpu,
        "peak_rss_kib": peak_rss_kib(),
        **extra,
    }
