"""Fixtures and the coroutine runner of the asyncio client tests.

An ``async def`` test runs in a fresh event loop of its own (``asyncio.run``), so every
client, channel and task a test makes lives and dies with it; a test that leaves a task
running fails. Servers are synchronous (grpcio's thread-pool servers, run beside the loop):
``running`` and ``server`` are tests/rpc's (the scripted read server of
tests/support/read_servers.py, per module, reset per test), over gRPC and, in a module that
sets ``TRANSPORTS = ("grpc", "connect")``, over Connect too.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Coroutine
from typing import Any

import pytest

# The read-server fixtures and their transport parametrisation are tests/rpc's, shared as is.
from tests.rpc.conftest import pytest_generate_tests, running, server

__all__ = ["pytest_generate_tests", "running", "server"]


def _run_checked(test: Coroutine[Any, Any, None]) -> None:
    async def main() -> None:
        await test
        for _ in range(3):  # let callbacks already scheduled (gRPC's own bookkeeping) run
            await asyncio.sleep(0)
        current = asyncio.current_task()
        left = [task for task in asyncio.all_tasks() if task is not current]
        assert left == [], f"the test left tasks running: {left}"

    asyncio.run(main())


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run coroutine tests to completion in their own event loop."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    _run_checked(pyfuncitem.obj(**{name: pyfuncitem.funcargs[name] for name in names}))
    return True
