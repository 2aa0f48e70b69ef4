"""How late the event loop runs while AsyncPug lists profiles and tracks events.

A probe task sleeps 2 ms in a loop and records how much later than asked it wakes up: the
loop's lag, which every other coroutine of the process (a web request, a gRPC handler) would
suffer too. Phases: the probe alone (the machine's own noise); one AsyncPug listing 10,000
profiles through ``profiles.list()`` while tracking 100,000 events (100 per loop turn, as many
request handlers would); each of the two alone; both with CPython's cyclic garbage collector
paused (to tell its pauses from the client's own); ``await flush()``; and, for contrast, the
same listing through the blocking ``Pug.profiles.list()`` called from the loop.

The reads go to the local Pug server seeded with the profiles (``bench_sinks.py reads``), the
events to the minimal counting ``EventsService`` (``bench_sinks.py grpc``), each in a process
of its own, so the servers' work weighs as little as it can on the client's 2 cores.

Usage: ``python scripts/bench_async.py [--profiles N] [--events N] [--json]``. The figures are
printed, not asserted: docs/performance.md ("asyncio") quotes a run.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SINKS = HERE / "bench_sinks.py"
API_KEY = "prv_bench_local_key_0000"  # the key bench_sinks.py's servers accept (loopback only)
PROBE_INTERVAL = 0.002
CHUNK = 100


@dataclass
class Lag:
    """Lateness of the 2 ms probe, in milliseconds, over one phase."""

    phase: str
    samples: int
    p50_ms: float
    p99_ms: float
    worst_ms: float
    seconds: float


class Probe:
    """A task that sleeps ``PROBE_INTERVAL`` in a loop and records each wake-up's lateness."""

    def __init__(self) -> None:
        self.lateness: list[float] = []
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        clock = time.perf_counter
        while not self._stop.is_set():
            asked = clock()
            await asyncio.sleep(PROBE_INTERVAL)
            self.lateness.append(clock() - asked - PROBE_INTERVAL)

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def stop(self, phase: str, seconds: float) -> Lag:
        self._stop.set()
        assert self._task is not None
        await self._task
        values = sorted(self.lateness) or [0.0]
        p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
        return Lag(
            phase=phase,
            samples=len(self.lateness),
            p50_ms=round(statistics.median(values) * 1000, 3),
            p99_ms=round(p99 * 1000, 3),
            worst_ms=round(max(values) * 1000, 3),
            seconds=round(seconds, 3),
        )


async def _probed(phase: str, work: Callable[[], Awaitable[Any]]) -> tuple[Lag, Any]:
    probe = Probe()
    probe.start()
    await asyncio.sleep(0.05)  # the probe is running before the work starts
    started = time.perf_counter()
    result = await work()
    seconds = time.perf_counter() - started
    return await probe.stop(phase, seconds), result


async def _list_and_track(
    servers: Servers, profiles: int, events: int, phase: str
) -> tuple[Lag, Lag, int, int]:
    """The loaded phase (``events=0``: listing only, ``profiles=0``: tracking only) and the
    flush after it, with one fresh AsyncPug."""
    import grpc.aio

    from pug_grpc import AsyncPug, BatchSettings

    # A queue large enough for the whole run: the figure is the loop's lag, not back-pressure.
    batch = BatchSettings(max_queue_size=max(events, 1) * 2, max_queue_bytes=512 * 1024 * 1024)
    reads = grpc.aio.insecure_channel(servers.reads_target)  # inside the loop, as it must be
    client = AsyncPug(API_KEY, servers.events, channel=reads, batch=batch, timeout=60.0)
    listed: list[int] = []

    async def listing() -> None:
        count = 0
        async for _profile in client.profiles.list():
            count += 1
        listed.append(count)

    users = profiles or 10_000

    async def tracking() -> None:
        for start in range(0, events, CHUNK):
            for i in range(start, min(start + CHUNK, events)):
                # Profiles that exist already: the listing sees the same 10,000 throughout.
                user = f"profile-{i % users:05d}"
                client.track(user, "page_view", {"path": "/pricing", "n": i})
            await asyncio.sleep(0)

    async def both() -> None:
        await asyncio.gather(*([listing()] if profiles else []), tracking())

    loaded, _ = await _probed(phase, both)
    flushed, result = await _probed("AsyncPug: await flush()", lambda: client.flush(120.0))
    await client.aclose()
    await reads.close()
    return loaded, flushed, listed[0] if listed else 0, result.accepted


@dataclass(frozen=True)
class Servers:
    """Where the reads and the events go."""

    reads_target: str
    events: str

    @property
    def reads(self) -> str:
        return "http://" + self.reads_target


async def _measure(servers: Servers, profiles: int, events: int) -> dict[str, Any]:
    from pug_grpc import Pug

    figures: dict[str, Any] = {"profiles": profiles, "events": events}
    idle, _ = await _probed("probe alone", lambda: asyncio.sleep(1.0))
    loaded, flushed, figures["listed"], figures["accepted"] = await _list_and_track(
        servers, profiles, events, "AsyncPug: list + track"
    )
    only_list, _, _, _ = await _list_and_track(servers, profiles, 0, "  ... listing alone")
    only_track, _, _, _ = await _list_and_track(servers, 0, events, "  ... tracking alone")
    # The same with CPython's cyclic garbage collector paused: what is left is the client's.
    gc.disable()
    try:
        no_gc, _, _, _ = await _list_and_track(servers, profiles, events, "  ... cyclic GC off")
    finally:
        gc.enable()

    blocking_client = Pug(API_KEY, servers.reads, send=False, timeout=60.0)

    async def blocking_listing() -> None:
        sum(1 for _ in blocking_client.profiles.list())  # runs on the loop: blocks it

    blocking, _ = await _probed("Pug: list on the loop", blocking_listing)
    blocking_client.close()
    phases = (idle, loaded, only_list, only_track, no_gc, flushed, blocking)
    figures["phases"] = [asdict(lag) for lag in phases]
    return figures


def _start_server(*args: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, str(SINKS), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise RuntimeError("the local server did not start")
    return proc, int(json.loads(line)["port"])


def _stop_server(proc: subprocess.Popen[str]) -> None:
    try:
        assert proc.stdin is not None
        proc.stdin.write("quit\n")
        proc.stdin.flush()
        proc.wait(timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        proc.kill()
        proc.wait()


def _table(figures: dict[str, Any]) -> str:
    rows = [
        f"listed {figures['listed']:,} profiles, tracked {figures['events']:,} events "
        f"({figures['accepted']:,} accepted)",
        "",
        f"{'phase':<26} {'seconds':>8} {'samples':>8} {'p50 ms':>8} {'p99 ms':>8} {'worst ms':>9}",
    ]
    for lag in figures["phases"]:
        rows.append(
            f"{lag['phase']:<26} {lag['seconds']:>8.2f} {lag['samples']:>8} "
            f"{lag['p50_ms']:>8.2f} {lag['p99_ms']:>8.2f} {lag['worst_ms']:>9.2f}"
        )
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    reads, reads_port = _start_server("reads", "--profiles", str(args.profiles), "--events", "10")
    try:
        sink, sink_port = _start_server("grpc")
        try:
            servers = Servers(f"127.0.0.1:{reads_port}", f"http://127.0.0.1:{sink_port}")
            figures = asyncio.run(_measure(servers, args.profiles, args.events))
        finally:
            _stop_server(sink)
    finally:
        _stop_server(reads)
    print(json.dumps(figures) if args.json else _table(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
