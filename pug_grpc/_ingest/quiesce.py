"""Parking the worker for a fork: no request in flight and no thread inside gRPC at the fork.

The thread calling ``fork()`` asks (:meth:`ForkPause.request`) and waits; the worker, reaching
the pause message, stops starting requests, lets those in flight end (cancelling them if they
take too long: they are resent after the fork with the same ids), reports itself quiet, and
waits until the parent side of the fork releases it.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Final

from pug_grpc._ingest.handoff import Completion, Handoff
from pug_grpc._ingest.pipeline import Pipeline

__all__ = ["QUIESCE_S", "ForkPause"]

QUIESCE_S: Final = 2.0
"""How long a fork waits for requests in flight to finish before it cancels them (and then,
at most, for the cancellations to come back)."""


class ForkPause:
    """The two signals between the forking thread and the worker."""

    def __init__(self) -> None:
        self._quiet = threading.Event()
        self._resume = threading.Event()

    def arm(self) -> None:
        """Before the pause message is sent: the worker has not answered yet."""
        self._quiet.clear()
        self._resume.clear()

    def wait_quiet(self) -> bool:
        """The forking thread waits for the worker to park; False when it did not in time."""
        return self._quiet.wait(3 * QUIESCE_S)

    def release(self) -> None:
        """The fork is done (in the parent): the worker goes on."""
        self._resume.set()

    def park(self, pipeline: Pipeline, handoff: Handoff) -> None:
        """On the worker: stop starting requests, let those in flight end, then wait."""
        pipeline.paused = True
        ends = time.monotonic() + QUIESCE_S
        cancelled = False
        later: list[Any] = []  # everything but replies waits until after the fork, in order
        while pipeline.in_flight:
            left = ends - time.monotonic()
            if left <= 0 and not cancelled:
                pipeline.cancel_in_flight()  # resent after the fork, with the same ids
                cancelled = True
                ends = time.monotonic() + QUIESCE_S
                continue
            if left <= 0:
                break
            obj = handoff.next(min(left, 0.05))
            if obj is None:
                continue
            if isinstance(obj, Completion):
                pipeline.on_reply(obj.attempt, obj.reply)
            else:
                later.append(obj)
        handoff.put_back(later)
        self._quiet.set()
        self._resume.wait(QUIESCE_S + 5.0)
        pipeline.paused = False
