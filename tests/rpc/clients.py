"""Clients for the read tests, over whichever transport the test's server speaks."""

from __future__ import annotations

from typing import Any

from pug_grpc._credentials import CredentialsInterceptor
from pug_grpc._rpc.reads import Reads, connect_reads
from pug_grpc._transport import intercept, open_channel
from tests.support.read_servers import Running

KEY = "prv_test_0123456789abcdef"


def transport_of(server: Running) -> str:
    """``"connect"`` for the Connect server, else ``"grpc"``."""
    return str(getattr(server, "transport", "grpc"))


def reads(server: Running, key: str = KEY, **kwargs: Any) -> Reads:
    """An API-key ``Reads`` against ``server``, with ``kwargs`` passed on."""
    if transport_of(server) == "connect":
        made, _ = connect_reads(server.endpoint, api_key=key, **kwargs)
        return made
    channel = intercept(open_channel(server.endpoint), CredentialsInterceptor(api_key=key))
    return Reads(channel, api_key=key, **kwargs)
