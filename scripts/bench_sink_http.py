"""The HTTP sink for the peers: PostHog's ``POST /batch/`` and Segment's ``POST /v1/batch``.

HTTP/1.1 with keep-alive, one thread per connection (so a request waiting out its added
latency never holds up another connection's), ``TCP_NODELAY`` and each answer in one write.
It parses the JSON (gunzipping it if needed) and counts the items by their id (PostHog's
``uuid``, Segment's ``messageId``). See ``bench_sink_core`` for the knobs and the protocol.

With ``validate`` on it does the per-event work the gRPC sink does for pug-grpc: it turns each
item into the same Pug ``Event`` message (kind, distinct id, event id, time, properties split
into ``$`` auto-properties and custom ones; an identify into an ``IdentifyRequest``) and
checks the request with protovalidate against the same rules. On top of that it pays for
building the messages in Python, where the gRPC sink's request arrives parsed by protobuf's C
code; the sink's own CPU per event is reported so the two sides can be compared.
"""

from __future__ import annotations

import datetime as dt
import functools
import gzip
import http.server
import json
import threading
import time
from typing import Any

from bench_common import SESSION_ID
from bench_sink_core import Counter, Knobs, control_loop, in_outage, shared_validator

_BATCH_PATHS = frozenset({"/batch/", "/batch", "/v1/batch"})
_IDENTIFY_KINDS = frozenset({"$identify", "$set"})


def _item_id(item: Any) -> str | None:
    if isinstance(item, dict):
        value = item.get("uuid") or item.get("messageId")
        return str(value) if value else None
    return None


def _value(target: Any, value: Any) -> None:
    if isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, int):
        target.int_value = value
    elif isinstance(value, float):
        target.double_value = value
    elif isinstance(value, str):
        target.string_value = value
    else:
        target.string_value = json.dumps(value, default=str)


def _timestamp(target: Any, raw: Any) -> None:
    try:
        when = dt.datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        return  # left unset: the "required" rule reports it
    target.FromDatetime(when.astimezone(dt.UTC).replace(tzinfo=None))


class _Converter:
    """Peers' JSON items as Pug messages, for the validating sink (built on first use)."""

    def __init__(self) -> None:
        from google.protobuf import struct_pb2
        from pug_grpc.gen.sdk.events.v1 import events_pb2
        from pug_grpc.gen.sdk.profiles.v1 import profiles_pb2

        self._events = events_pb2
        self._profiles = profiles_pb2
        self._struct = struct_pb2.Struct
        self.validator = shared_validator()

    def problem(self, batch: list[Any]) -> str | None:
        request = self._events.BatchCreateRequest()
        for item in batch:
            if not isinstance(item, dict):
                return "a batch item is not an object"
            kind = item.get("event") or ""
            distinct_id = str(item.get("distinct_id") or item.get("userId") or "")
            if item.get("type") == "identify" or kind in _IDENTIFY_KINDS:
                traits = self._struct()
                traits.update(item.get("traits") or item.get("properties", {}).get("$set") or {})
                identify = self._profiles.IdentifyRequest(external_id=distinct_id, traits=traits)
                problem = self.validator.problem(identify)
                if problem is not None:
                    return problem
                continue
            event = request.events.add(
                event_id=_item_id(item) or "",
                kind=kind,
                distinct_id=distinct_id,
                session_id=SESSION_ID,
            )
            _timestamp(event.occur_time, item.get("timestamp"))
            for key, value in (item.get("properties") or {}).items():
                group = event.auto_properties if key.startswith("$") else event.custom_properties
                _value(group[key], value)
            library = item.get("context", {}).get("library", {}).get("name")
            if library:
                event.auto_properties["$lib"].string_value = str(library)
        return self.validator.problem(request) if request.events else None


@functools.cache
def _converter() -> _Converter:
    return _Converter()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real endpoints
    # TCP_NODELAY, and each answer in one write (a buffered writer, flushed after each
    # request): otherwise Nagle's algorithm holds the body back until the client's delayed ACK
    # (40 ms), which would throttle the peers instead of measuring them.
    disable_nagle_algorithm = True
    wbufsize = 1 << 16
    counter: Counter
    knobs: Knobs

    def do_POST(self) -> None:
        generation, first_request = self.counter.arrive()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if self.path.split("?", 1)[0] not in _BATCH_PATHS:
            self._answer(404, b'{"error":"not found"}')
            return
        delay = self.knobs.delay
        if delay:
            time.sleep(delay / 2)
        try:
            if self.headers.get("Content-Encoding", "") == "gzip":
                body = gzip.decompress(body)
            batch = json.loads(body).get("batch")
        except (OSError, ValueError, AttributeError):
            batch = None
        if not isinstance(batch, list):
            self.counter.invalid(generation, 0)
            self._answer(400, b'{"error":"bad batch"}', delay)
            return
        if in_outage(self.knobs, first_request, time.monotonic()):
            self.counter.refuse(generation, len(batch))
            self._answer(503, b'{"error":"outage"}', delay)
            return
        if self.knobs.validate:
            problem = _converter().problem(batch)
            if problem is not None:
                self.counter.invalid(generation, len(batch))
                self._answer(400, json.dumps({"error": problem}).encode(), delay)
                return
        self.counter.store(generation, [_item_id(item) for item in batch])
        self._answer(200, b'{"status":1}', delay)

    def _answer(self, status: int, body: bytes, delay: float = 0.0) -> None:
        if delay:
            time.sleep(delay / 2)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


def run_http(host: str) -> None:
    """Serve until the parent says ``quit``."""
    counter = Counter()
    knobs = Knobs()
    handler = type("Handler", (_Handler,), {"counter": counter, "knobs": knobs})
    server = http.server.ThreadingHTTPServer((host, 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="http-sink", daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()

    control_loop(server.server_address[1], counter, knobs, stop)
