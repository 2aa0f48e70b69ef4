"""Local sinks for ``bench.py``, each run in its own process (``python bench_sinks.py KIND``).

- ``grpc``: the gRPC sink for pug-grpc (``bench_sink_grpc``): ``BatchCreate`` and
  ``Identify`` on a ``grpc.aio`` server, with added latency, outages and protovalidate.
- ``http``: the HTTP sink for PostHog and Segment (``bench_sink_http``), with the same knobs.
- ``pug``: our full local server (``pug_grpc.testing.LocalServer``, SQLite in memory, every
  event converted and stored; about 60 µs per event on the server). Its stores are observed so
  that the time of the last stored event is known.
- ``reads``: our local server seeded with profiles and one user's events, for the read figures.

Every sink listens on ``--host`` (127.0.0.1 unless the parent runs it in a network namespace)
and speaks the control protocol of ``bench_sink_core`` on stdin/stdout.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from typing import Any

from bench_common import API_KEY, FEED_USER, LOOPBACK
from bench_sink_core import Counter, Knobs, control_loop


def _pug_server(host: str, *, validate: bool) -> Any:
    from pug_grpc.testing import LocalServer, ServerConfig

    return LocalServer(
        ServerConfig(host=host, port=0, validate=validate, record=False, private_key=API_KEY)
    )


def run_pug(host: str, validate: bool) -> None:
    server = _pug_server(host, validate=validate)
    counter = Counter()
    store = server.store
    insert = store.insert_events

    def counted_insert(project_id: str, rows: Sequence[Any]) -> int:
        stored: int = insert(project_id, rows)
        # Every stored row (a redelivery is stored again, as in Pug): counted as it is stored.
        counter.store(counter.generation, [None] * stored)
        return stored

    # An instance attribute shadows the method for this sink only: the services call it.
    store.insert_events = counted_insert
    server.start()
    control_loop(server.port, counter, Knobs(), server.close)


_PROPS = {"plan": "pro", "seats": 3, "amount": 49.5, "currency": "EUR", "trial": False}


def run_reads(host: str, profiles: int, events: int) -> None:
    from pug_grpc._ingest.messages import build_events, new_session_id
    from pug_grpc.testing._servicers.ingestion import event_row

    server = _pug_server(host, validate=True)
    store = server.store
    project = server.project_id
    now_ns = time.time_ns()
    for i in range(profiles):
        traits = {"plan": ("free", "pro", "team")[i % 3], "seats": 1 + i % 20, "country": "NO"}
        store.identify(project, f"profile-{i:05d}", traits, now_us=now_ns // 1000)
    session = new_session_id()
    raws = [
        (None, "checkout.completed", FEED_USER, session, now_ns - (events - i) * 1_000_000, _PROPS)
        for i in range(events)
    ]
    rows = [event_row(e, received_us=now_ns // 1000, metadata={}) for e in build_events(raws)]
    store.insert_events(project, rows)
    server.start()
    control_loop(server.port, Counter(), Knobs(), server.close)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["grpc", "http", "pug", "reads"])
    parser.add_argument("--host", default=LOOPBACK, help="address to listen on")
    parser.add_argument("--validate", action="store_true", help="pug: protovalidate on")
    parser.add_argument("--profiles", type=int, default=10_000, help="reads: profiles to seed")
    parser.add_argument("--events", type=int, default=10_000, help="reads: events to seed")
    args = parser.parse_args(argv)
    if args.kind == "grpc":
        from bench_sink_grpc import run_grpc

        run_grpc(args.host)
    elif args.kind == "http":
        from bench_sink_http import run_http

        run_http(args.host)
    elif args.kind == "pug":
        run_pug(args.host, args.validate)
    else:
        run_reads(args.host, args.profiles, args.events)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
