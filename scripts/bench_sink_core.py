"""What every benchmark sink shares: the counter, the knobs and the control protocol.

A sink process serves many runs. Between runs the parent sends ``reset`` (a new generation:
counters to zero; requests still in flight from the previous client are not counted) and
``set name=value ...`` to change the knobs: ``delay`` (seconds of added latency per request,
half before the request is handled and half before it is answered, never blocking other
requests), ``outage_after``/``outage_for`` (seconds after the generation's first request; in
that window every request is refused as the sink's transport would: gRPC ``UNAVAILABLE``,
HTTP 503) and ``validate`` (check every request with protovalidate).

Protocol on stdin/stdout: the sink prints ``{"port": N}`` once listening, then answers each
command line with one JSON line: ``stats``, ``reset``, ``set ...``; ``quit`` (or end of input)
stops it without an answer.
"""

from __future__ import annotations

import json
import resource
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, fields
from typing import Any


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Knobs:
    """How the sink behaves for the current run (changed by ``set`` between runs)."""

    delay: float = 0.0
    outage_after: float = 0.0
    outage_for: float = 0.0
    validate: bool = False

    def update(self, words: Iterable[str]) -> None:
        names = {f.name for f in fields(self)}
        for word in words:
            name, _, raw = word.partition("=")
            if name not in names:
                raise ValueError(f"unknown knob {name!r}")
            value: Any = raw.lower() in ("1", "true", "yes") if name == "validate" else float(raw)
            setattr(self, name, value)


class Counter:
    """What the sink stored in the current generation, by distinct item id, and when.

    ``events``: distinct ids stored (a redelivered id counts once, in ``duplicates``);
    ``identifies``: pug ``Identify`` calls answered OK (they carry no id); ``refused_*``: what
    the outage turned away; ``invalid_*``: what validation refused. ``first``/``last``: the
    ``CLOCK_MONOTONIC`` time of the first and last stored item (comparable with the clients').
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.generation = 0
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.generation += 1
            self._seen: set[str] = set()
            self._anonymous = 0
            self.duplicates = 0
            self.identifies = 0
            self.requests = 0
            self.refused_requests = 0
            self.refused_items = 0
            self.invalid_requests = 0
            self.invalid_items = 0
            self.first_request = 0.0
            self.first = 0.0
            self.last = 0.0
            self._cpu0 = _cpu_s()

    def arrive(self) -> tuple[int, float]:
        """A request arrived: its generation, and the generation's first request time."""
        now = time.monotonic()
        with self._lock:
            self.requests += 1
            if not self.first_request:
                self.first_request = now
            return self.generation, self.first_request

    def _stored(self, now: float) -> None:
        if not self.first:
            self.first = now
        self.last = now

    def store(self, generation: int, ids: Iterable[str | None]) -> None:
        now = time.monotonic()
        with self._lock:
            if generation != self.generation:
                return
            seen = self._seen
            for item_id in ids:
                if item_id is None:
                    self._anonymous += 1
                elif item_id in seen:
                    self.duplicates += 1
                else:
                    seen.add(item_id)
            self._stored(now)

    def store_identify(self, generation: int) -> None:
        now = time.monotonic()
        with self._lock:
            if generation == self.generation:
                self.identifies += 1
                self._stored(now)

    def refuse(self, generation: int, items: int) -> None:
        with self._lock:
            if generation == self.generation:
                self.refused_requests += 1
                self.refused_items += items

    def invalid(self, generation: int, items: int) -> None:
        with self._lock:
            if generation == self.generation:
                self.invalid_requests += 1
                self.invalid_items += items

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "events": len(self._seen) + self._anonymous,
                "identifies": self.identifies,
                "duplicates": self.duplicates,
                "requests": self.requests,
                "refused_requests": self.refused_requests,
                "refused_items": self.refused_items,
                "invalid_requests": self.invalid_requests,
                "invalid_items": self.invalid_items,
                "first_request": self.first_request,
                "first": self.first,
                "last": self.last,
                "cpu_s": _cpu_s() - self._cpu0,
            }


def in_outage(knobs: Knobs, first_request: float, now: float) -> bool:
    """Whether ``now`` falls in the outage window of the current run."""
    if knobs.outage_for <= 0:
        return False
    start = first_request + knobs.outage_after
    return start <= now < start + knobs.outage_for


def control_loop(port: int, counter: Counter, knobs: Knobs, stop: Callable[[], None]) -> None:
    """Announce the port, then answer the parent's commands until ``quit``."""
    print(json.dumps({"port": port}), flush=True)
    try:
        for line in sys.stdin:
            command, *words = line.split()
            if command == "quit":
                break
            if command == "stats":
                answer: dict[str, Any] = counter.snapshot()
            elif command == "reset":
                counter.reset()
                answer = {"ok": True, "generation": counter.generation}
            elif command == "set":
                try:
                    knobs.update(words)
                    if knobs.validate:
                        shared_validator()  # built before the run, not during it
                    answer = {"ok": True, **asdict(knobs)}
                except ValueError as error:
                    answer = {"ok": False, "error": str(error)}
            else:
                answer = {"ok": False, "error": f"unknown command {command!r}"}
            print(json.dumps(answer), flush=True)
    finally:
        stop()


class Validator:
    """protovalidate, as the real server runs it on every request (one per sink process)."""

    def __init__(self) -> None:
        import protovalidate

        self._validator = protovalidate.Validator()
        self._error = protovalidate.ValidationError
        self._warm()

    def _warm(self) -> None:
        """Compile the rules now, so that the first run's first request does not pay for it."""
        from pug_grpc.gen.sdk.events.v1 import events_pb2
        from pug_grpc.gen.sdk.profiles.v1 import profiles_pb2

        request = events_pb2.BatchCreateRequest()
        event = request.events.add(event_id="0190a3c4-5d6e-7f80-9a1b-2c3d4e5f6071", kind="warm")
        event.custom_properties["text"].string_value = "x"
        event.occur_time.GetCurrentTime()
        self.problem(request)
        self.problem(profiles_pb2.IdentifyRequest(external_id="warm"))

    def problem(self, message: Any) -> str | None:
        """The first violation in ``message``, or None when it passes."""
        try:
            self._validator.validate(message)
        except self._error as error:
            return str(error)
        return None


_validator: list[Validator] = []
_validator_lock = threading.Lock()


def shared_validator() -> Validator:
    """The sink's validator, built (and warmed) on first use."""
    with _validator_lock:
        if not _validator:
            _validator.append(Validator())
        return _validator[0]
