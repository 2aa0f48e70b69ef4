"""Local sinks for ``bench.py``, each run in its own process, bound to loopback only.

- ``grpc``: a minimal ``EventsService`` built from our generated servicer base class: it checks
  the API key, lets grpcio parse each ``BatchCreate`` request and counts its events. The
  throughput sink: it costs the server a few µs per event, like the peers' sink below.
- ``pug``: our full local server (``pug_grpc.testing.LocalServer``, SQLite in memory, every
  event converted and stored; about 60 µs per event on the server). Its stores are observed so
  that the time of the last stored event is known exactly.
- ``http``: a minimal HTTP/1.1 endpoint accepting PostHog's ``POST /batch/`` and Segment's
  ``POST /v1/batch`` JSON (gzip or not); it parses each batch and counts its events.
- ``reads``: our local server seeded with profiles and one user's events, for the read figures.

Protocol with the parent: one JSON line ``{"port": N}`` on stdout once listening, then one JSON
line of counters for every ``stats`` line read on stdin; ``quit`` or end of input stops it.
"""

from __future__ import annotations

import argparse
import gzip
import http.server
import json
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

LOOPBACK = "127.0.0.1"
API_KEY = "prv_bench_local_key_0000"
"""The key the pug sink accepts (loopback only, never a real credential)."""
API_KEY_HEADER = "x-api-key"
FEED_USER = "reader-1"
"""The user whose events the reads sink holds."""


class Counter:
    """Events stored so far, and when the first and the last of them were stored."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events = 0
        self.requests = 0
        self.first = 0.0
        self.last = 0.0

    def add(self, count: int) -> None:
        now = time.monotonic()  # CLOCK_MONOTONIC: comparable with the client process's clock
        with self.lock:
            if not self.events:
                self.first = now
            self.events += count
            self.requests += 1
            if count:
                self.last = now

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "events": self.events,
                "requests": self.requests,
                "first": self.first,
                "last": self.last,
            }


def _serve_forever(port: int, counter: Counter, stop: Callable[[], None]) -> None:
    print(json.dumps({"port": port}), flush=True)
    try:
        for line in sys.stdin:
            command = line.strip()
            if command == "stats":
                print(json.dumps(counter.snapshot()), flush=True)
            elif command == "quit":
                break
    finally:
        stop()


# -- grpc: the minimal counting EventsService --------------------------------------------------
def run_grpc() -> None:
    from concurrent import futures

    import grpc
    from pug_grpc.gen.sdk.events.v1 import events_pb2, events_pb2_grpc

    counter = Counter()

    class Events(events_pb2_grpc.EventsServiceServicer):
        def BatchCreate(  # noqa: N802 (the generated RPC name)
            self, request: events_pb2.BatchCreateRequest, context: grpc.ServicerContext
        ) -> events_pb2.BatchCreateResponse:
            if (API_KEY_HEADER, API_KEY) not in context.invocation_metadata():
                context.abort(grpc.StatusCode.UNAUTHENTICATED, "unknown API key")
            count = len(request.events)
            counter.add(count)
            return events_pb2.BatchCreateResponse(accepted=count)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    events_pb2_grpc.add_EventsServiceServicer_to_server(Events(), server)
    port = server.add_insecure_port(f"{LOOPBACK}:0")
    server.start()

    def stop() -> None:
        server.stop(None).wait()

    _serve_forever(port, counter, stop)


# -- pug: the local server -----------------------------------------------------------------
def _pug_server(*, validate: bool) -> Any:
    from pug_grpc.testing import LocalServer, ServerConfig

    return LocalServer(
        ServerConfig(host=LOOPBACK, port=0, validate=validate, record=False, private_key=API_KEY)
    )


def run_pug(validate: bool) -> None:
    server = _pug_server(validate=validate)
    counter = Counter()
    store = server.store
    insert = store.insert_events

    def counted_insert(project_id: str, rows: Sequence[Any]) -> int:
        stored: int = insert(project_id, rows)
        counter.add(stored)  # every stored row: a redelivery is stored again, as in Pug
        return stored

    # An instance attribute shadows the method for this sink only: the services call it.
    store.insert_events = counted_insert
    server.start()
    _serve_forever(server.port, counter, server.close)


def run_reads(profiles: int, events: int) -> None:
    from pug_grpc._ingest.messages import build_events, new_session_id
    from pug_grpc.testing._servicers.ingestion import event_row

    server = _pug_server(validate=True)
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
    _serve_forever(server.port, Counter(), server.close)


_PROPS = {"plan": "pro", "seats": 3, "amount": 49.5, "currency": "EUR", "trial": False}


# -- http: PostHog's and Segment's batch endpoints ------------------------------------------
_BATCH_PATHS = frozenset({"/batch/", "/batch", "/v1/batch"})


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real endpoints
    # TCP_NODELAY, and each answer in one write (a buffered writer, flushed after each
    # request): otherwise Nagle's algorithm holds the body back until the client's delayed ACK
    # (40 ms), which would throttle the peers instead of measuring them.
    disable_nagle_algorithm = True
    wbufsize = 1 << 16
    counter: Counter

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if self.path not in _BATCH_PATHS:
            self._answer(404, b'{"error":"not found"}')
            return
        try:
            if self.headers.get("Content-Encoding", "") == "gzip":
                body = gzip.decompress(body)
            batch = json.loads(body).get("batch")
        except (OSError, ValueError, AttributeError):
            self._answer(400, b'{"error":"bad batch"}')
            return
        if not isinstance(batch, list):
            self._answer(400, b'{"error":"no batch"}')
            return
        self.counter.add(len(batch))
        self._answer(200, b'{"status":1}')

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


def run_http() -> None:
    counter = Counter()
    handler = type("Handler", (_Handler,), {"counter": counter})
    server = http.server.ThreadingHTTPServer((LOOPBACK, 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="http-sink", daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()

    _serve_forever(server.server_address[1], counter, stop)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["grpc", "pug", "http", "reads"])
    parser.add_argument("--validate", action="store_true", help="pug: protovalidate on")
    parser.add_argument("--profiles", type=int, default=10_000, help="reads: profiles to seed")
    parser.add_argument("--events", type=int, default=10_000, help="reads: events to seed")
    args = parser.parse_args(argv)
    if args.kind == "grpc":
        run_grpc()
    elif args.kind == "pug":
        run_pug(args.validate)
    elif args.kind == "reads":
        run_reads(args.profiles, args.events)
    else:
        run_http()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
