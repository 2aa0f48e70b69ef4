"""Process hooks: drain at exit within a budget, quiesce before ``fork()``, restart after.

Every running client parks its worker with nothing in flight before each fork, which gRPC's
fork support needs (:mod:`pug_grpc._ingest.fork_support`). When that support is off, the first
fork logs a warning that says what to set.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import time
import weakref
from collections.abc import Callable
from typing import Any

from pug_grpc._ingest import validator_warm_up
from pug_grpc._ingest.engine import live_engines
from pug_grpc._ingest.fork_support import FORK_SUPPORT_VARIABLE

__all__ = ["close_all_at_exit", "engine_started", "hook_multiprocessing_exit", "on_fork_in_child"]

_log = logging.getLogger("pug_grpc.process")

_after_fork_in_child: list[weakref.WeakMethod[Callable[[], None]]] = []
_warned: set[str] = set()
_multiprocessing_hooked: set[int] = set()
_child_hook_registered: list[bool] = []


def on_fork_in_child(method: Callable[[], None]) -> None:
    """Call the bound ``method`` in every forked child while its object lives.

    The child's hook is in place from the first client on, not only once a client has started:
    a fork while another thread is inside the first ``track()`` (holding a client's locks) must
    still give the child fresh ones.
    """
    if not _child_hook_registered:
        _child_hook_registered.append(True)
        os.register_at_fork(after_in_child=_after_fork_child)
    _after_fork_in_child[:] = [ref for ref in _after_fork_in_child if ref() is not None]
    _after_fork_in_child.append(weakref.WeakMethod(method))


def close_all_at_exit() -> None:
    """Drain every open client within one budget: the largest ``shutdown_timeout`` of them.

    Each drain goes on in its own worker at once; then each is waited for with what is left.
    """
    engines = live_engines()
    if not engines:
        return
    budget = max(e.shutdown_timeout for e in engines)
    deadline = time.monotonic() + budget
    for engine in engines:
        try:
            engine.close(budget, wait=False)
        except Exception:
            _log.exception("closing a client at exit failed")
    for engine in engines:
        try:
            engine.close(max(0.0, deadline - time.monotonic()))
        except Exception:
            _log.exception("closing a client at exit failed")


def _before_fork() -> None:
    engines = live_engines()
    if not engines:
        return
    validator_warm_up.finish_warm_up(5.0)
    if "fork support" not in _warned and not _grpc_fork_support():
        _warned.add("fork support")
        _log.warning(
            "fork() with a running pug-grpc client while gRPC's fork support is off: gRPC calls "
            "in the child may hang. Set %s=1 in the environment, or import pug_grpc before grpc",
            FORK_SUPPORT_VARIABLE,
        )
    for engine in engines:
        try:
            engine.before_fork()
        except Exception:
            _log.exception("quiescing a client before fork failed")


def _after_fork_parent() -> None:
    for engine in live_engines():
        engine.after_fork_in_parent()


def _after_fork_child() -> None:
    _multiprocessing_hooked.clear()
    validator_warm_up.after_fork_in_child()
    for engine in live_engines():
        try:
            engine.after_fork_in_child()
        except Exception:
            _log.exception("resetting a client after fork failed")
    for ref in list(_after_fork_in_child):
        method = ref()
        if method is None:
            continue
        try:
            method()
        except Exception:
            _log.exception("resetting a client after fork failed")


def _grpc_fork_support() -> bool:
    cygrpc = sys.modules.get("grpc._cython.cygrpc")  # loaded with grpc; private, so looked up
    check: Any = getattr(cygrpc, "is_fork_support_enabled", None)
    return bool(check()) if callable(check) else False


_fork_hooks_registered: list[bool] = []


def engine_started() -> None:
    """A client just opened its channel: make sure its process hooks are in place."""
    if not _fork_hooks_registered:
        # After gRPC's own: before-fork hooks run newest first, so ours parks the worker while
        # gRPC still delivers replies, and gRPC's then finds nothing in flight. gRPC registers
        # its hooks with the first channel of the process, which the client has just opened.
        _fork_hooks_registered.append(True)
        os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_parent)
    hook_multiprocessing_exit()


def hook_multiprocessing_exit() -> None:
    """Drain at the exit of a ``multiprocessing`` child too.

    Such a child ends with ``os._exit``, which skips ``atexit``; multiprocessing still runs its
    own exit finalizers there. Registered once per process that starts a worker, only when
    multiprocessing is loaded (it always is in its children). Draining twice is harmless.
    """
    util = sys.modules.get("multiprocessing.util")
    pid = os.getpid()
    if util is None or pid in _multiprocessing_hooked:
        return
    _multiprocessing_hooked.add(pid)
    util.Finalize(None, close_all_at_exit, exitpriority=100)


atexit.register(close_all_at_exit)
