"""The client side of ``bench.py``: one SDK, one workload, one process, one JSON line out.

``python bench_clients.py SDK --port N [--rate R] ...`` where SDK is ``pug``, ``posthog`` or
``segment``. Every SDK gets the same calls (``bench_workload``): a burst, or paced calls with
``--rate``. The process's CPU time (user + system, every thread) runs from just before the
first call to just after the SDK has delivered everything it will (its flush and close
returned); peak RSS is ``ru_maxrss``.

pug-grpc is driven only through its public API: ``Pug(...)``, ``track``, ``identify``,
``flush``, ``close``, ``stats`` and ``BatchSettings(**--pug-settings)`` (a JSON object; empty:
no ``batch`` argument at all, the pure defaults). ``--memory`` instead queues the events behind
a stopped server (nothing listening) and reports the RSS growth. ``reads`` and ``profile`` are
in ``bench_client_extras``.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import json
import os
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench_common import API_KEY, KIND, LOOPBACK
from bench_workload import (
    Call,
    Timing,
    burst,
    cpu_s,
    paced,
    result,
    rss_kib,
    workload,
)


@dataclass
class Client:
    """One SDK behind the calls the workload makes."""

    track: Call
    identify: Call
    finish: Callable[[], None]
    """Deliver everything queued (waiting as long as it takes), then shut down."""
    queued: Callable[[], int]
    stats: Callable[[], dict[str, Any]]


def _endpoint_host(host: str) -> str:
    return f"[{host}]" if ipaddress.ip_address(host).version == 6 else host


def pug_client(args: argparse.Namespace, port: int) -> Client:
    import grpc

    from pug_grpc import BatchSettings, Pug

    options: dict[str, Any] = {}
    settings = json.loads(args.pug_settings)
    if settings:
        options["batch"] = BatchSettings(**settings)
    if args.gzip:
        options["compression"] = grpc.Compression.Gzip
    if not ipaddress.ip_address(args.host).is_loopback:
        options["allow_insecure"] = True  # a veth pair between two network namespaces
    pug = Pug(API_KEY, f"http://{_endpoint_host(args.host)}:{port}", **options)

    def finish() -> None:
        pug.flush(timeout=args.drain_timeout)
        pug.close()

    def stats() -> dict[str, Any]:
        snapshot = pug.stats()
        if dataclasses.is_dataclass(snapshot):
            return {k: v for k, v in dataclasses.asdict(snapshot).items() if _plain(v)}
        return {}

    return Client(
        track=lambda uid, p: pug.track(uid, KIND, p),
        identify=pug.identify,
        finish=finish,
        queued=lambda: int(getattr(pug.stats(), "queue_depth", 0)),
        stats=stats,
    )


def _plain(value: Any) -> bool:
    return isinstance(value, int | float | str | bool) or (
        isinstance(value, dict) and all(isinstance(v, int) for v in value.values())
    )


def posthog_client(args: argparse.Namespace, port: int) -> Client:
    from posthog import Posthog

    options: dict[str, Any] = {"host": f"http://{_endpoint_host(args.host)}:{port}"}
    if args.queue_size:
        options["max_queue_size"] = args.queue_size
    client = Posthog("phc_bench_local_key", **options)

    def finish() -> None:
        client.flush()
        client.shutdown()

    return Client(
        track=lambda uid, p: client.capture(KIND, distinct_id=uid, properties=p),
        identify=lambda uid, traits: client.set(distinct_id=uid, properties=traits),
        finish=finish,
        queued=client.queue.qsize,
        stats=dict,
    )


def segment_client(args: argparse.Namespace, port: int) -> Client:
    from segment.analytics import Client as Segment  # type: ignore[import-untyped]

    options: dict[str, Any] = {"host": f"http://{_endpoint_host(args.host)}:{port}"}
    if args.queue_size:
        options["max_queue_size"] = args.queue_size
    client = Segment("bench_local_write_key", **options)

    def finish() -> None:
        client.flush()
        client.shutdown()

    return Client(
        track=lambda uid, p: client.track(user_id=uid, event=KIND, properties=p),
        identify=lambda uid, traits: client.identify(user_id=uid, traits=traits),
        finish=finish,
        queued=client.queue.qsize,
        stats=dict,
    )


CLIENTS: dict[str, Callable[[argparse.Namespace, int], Client]] = {
    "pug": pug_client,
    "posthog": posthog_client,
    "segment": segment_client,
}


def run_calls(args: argparse.Namespace) -> dict[str, Any]:
    """The workload against a listening sink, then deliver everything."""
    client = CLIENTS[args.sdk](args, args.port)
    cpu0 = cpu_s()
    timing: Timing
    if args.rate > 0:
        timing = paced(
            client.track,
            args.events,
            args.rate,
            identify=client.identify,
            identify_every=args.identify_every,
        )
    else:
        timing = burst(
            client.track, args.events, identify=client.identify, identify_every=args.identify_every
        )
    client.finish()
    closed = time.monotonic()
    cpu = cpu_s() - cpu0
    return result(
        sdk=args.sdk,
        events=args.events,
        timing=timing,
        cpu=cpu,
        closed=closed,
        extra={"client_stats": client.stats()},
    )


def _closed_port(host: str) -> int:
    """A port with nothing listening (a stopped server)."""
    family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    with socket.socket(family) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
    return port


def run_memory(args: argparse.Namespace) -> dict[str, Any]:
    """RSS growth while ``--events`` events queue up behind a stopped server."""
    client = CLIENTS[args.sdk](args, _closed_port(args.host))
    ids, props = workload()
    client.track(ids[0], props[0])  # start the worker and the channel before measuring
    time.sleep(args.settle)  # the worker now holds its first batch, waiting to retry it
    before = rss_kib()
    for i in range(args.events):
        client.track(ids[i % len(ids)], props[i % len(props)])
    after = rss_kib()
    queued = client.queued()
    return {
        "sdk": args.sdk,
        "events": args.events,
        "queued": queued,
        "rss_before_kib": before,
        "rss_after_kib": after,
        "growth_mb": (after - before) / 1024,
        "bytes_per_queued_event": (after - before) * 1024 / queued if queued else 0.0,
        "client_stats": client.stats(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sdk", choices=[*CLIENTS, "reads", "profile"])
    parser.add_argument("--host", default=LOOPBACK)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=0.0, help="events/s (0: a burst)")
    parser.add_argument("--identify-every", type=int, default=0, help="every Nth call identifies")
    parser.add_argument("--pug-settings", default="{}", help="JSON: BatchSettings(**...)")
    parser.add_argument("--gzip", action="store_true", help="pug: gzip compression")
    parser.add_argument("--queue-size", type=int, default=0, help="peers: max_queue_size")
    parser.add_argument("--drain-timeout", type=float, default=300.0, help="pug: flush timeout")
    parser.add_argument("--memory", action="store_true", help="queue behind a stopped server")
    parser.add_argument("--settle", type=float, default=1.0, help="memory: seconds before")
    parser.add_argument("--top", type=int, default=15, help="profile: functions listed")
    args = parser.parse_args(argv)
    if args.sdk in ("reads", "profile"):
        from bench_client_extras import run_profile, run_reads

        out = run_reads(args) if args.sdk == "reads" else run_profile(args)
    elif args.memory:
        out = run_memory(args)
        print(json.dumps(out), flush=True)
        os._exit(0)  # the queue is meant to be lost: no drain, no exit hook
    else:
        out = run_calls(args)
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
