"""Import protovalidate off the caller's thread, once per process, and keep forks safe.

Checking a well-known event needs it; importing it costs tens of milliseconds, which the
first ``track()`` of a well-known kind would otherwise pay. A fork must not happen while the
import holds its lock in another thread (:mod:`pug_grpc._ingest.process` waits for it).
"""

from __future__ import annotations

import contextlib
import threading

__all__ = ["after_fork_in_child", "finish_warm_up", "warm_up"]

_warm_up: list[threading.Thread] = []


def warm_up() -> None:
    """Import protovalidate off the caller's thread, once per process.

    Checking a well-known event needs it; importing it costs tens of milliseconds, which the
    first ``track()`` of a well-known kind would otherwise pay.
    """
    if _warm_up:
        return

    def load() -> None:
        with contextlib.suppress(Exception):
            import protovalidate  # noqa: F401

    thread = threading.Thread(target=load, name="pug-grpc-warm-up", daemon=True)
    _warm_up.append(thread)
    thread.start()


def finish_warm_up(timeout: float) -> None:
    """Before a fork: an import under way in another thread would stay locked in the child."""
    for thread in _warm_up:
        thread.join(timeout)


def after_fork_in_child() -> None:
    """The warm-up thread does not exist in a child; what it imported is there."""
    _warm_up[:] = [threading.Thread()]
