"""Every contract method is reachable from the asyncio clients, with the request Pug's make.

The table is tests/rpc/contract_cases.py, run as is: each case calls ``c.reads.<ns>.<method>``
or ``c.admin.<method>`` with plain arguments, here on an ``AsyncPug`` and an
``AsyncPugAdmin``; the call is awaited (or its iterator drained) and the loopback server must
see the same method path, request and credential as from the synchronous clients.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.aio.clients import KEY, admin, apug, drain
from tests.rpc.contract_cases import CASES, SESSION_FIELDS, Clients
from tests.support.read_servers import EMAIL, PASSWORD, Running

TRANSPORTS = ("grpc", "connect")


@pytest.mark.parametrize("path", sorted(CASES))
async def test_method_is_reachable_from_the_asyncio_facade(path: str, server: Running) -> None:
    case = CASES[path]
    async with apug(server) as reads, admin(server) as signed_in:
        await signed_in.sign_in_with_email(EMAIL, PASSWORD)
        server.state.received.clear()
        clients: Any = Clients(reads, signed_in)  # the asyncio clients, duck-typed
        await drain(case.call(clients))
    calls = server.state.calls(path)
    assert [c.path for c in calls] == [path], server.state.paths()
    sent = calls[0].request
    if path in SESSION_FIELDS:
        assert sent.refresh_token
        sent = type(sent)()
    assert sent == case.expected
    family = path.lstrip("/").split(".", 1)[0]
    auth = calls[0].metadata.get("authorization", "")
    if family == "public":
        assert auth == ""
    elif family == "dashboard":
        assert auth.startswith("Bearer ")
    else:
        assert calls[0].metadata.get("x-api-key") == KEY
