"""What only the Connect transport has: pre-encoded sends, gzip, HTTP/1.1, and its extra.

The facade tests run over Connect elsewhere (``TRANSPORTS`` in test_reads_facade and others);
these check the pieces the ingestion engine and ``Pug`` build on.
"""

from __future__ import annotations

import sys

import grpc
import pytest
from pug_grpc.gen.shared.profiles.v1 import profiles_pb2 as pb

from pug_grpc._credentials import CredentialHeaders
from pug_grpc._diagnosis import Cause
from pug_grpc._errors import PugConnectionError, error_from_rpc
from pug_grpc._rpc.connect import ConnectTransport, connect_available
from pug_grpc._rpc.profiles import _GET
from pug_grpc._rpc.transport import StatusError
from tests.rpc.clients import KEY
from tests.rpc.connect_server import serve_connect
from tests.support.read_servers import rich_status

GET = "/shared.profiles.v1.ProfilesService/Get"


def test_send_encoded_posts_the_bytes_with_gzip_and_credentials() -> None:
    with serve_connect() as server:
        transport = ConnectTransport(
            server.endpoint,
            credentials=CredentialHeaders(api_key=KEY),
            compression=grpc.Compression.Gzip,
        )
        server.state.canned[GET] = pb.GetResponse(profile=pb.Profile(id="p9"))
        body = pb.GetRequest(id="p9").SerializeToString()
        reply = transport.send_encoded(_GET, body, metadata=(("x-trace", "t1"),), timeout=5.0)
        transport.close()
    assert reply == pb.GetResponse(profile=pb.Profile(id="p9"))
    [call] = server.state.calls(GET)
    assert call.request == pb.GetRequest(id="p9")
    assert call.metadata["x-api-key"] == KEY
    assert call.metadata["x-trace"] == "t1"
    assert call.metadata["content-encoding"] == "gzip"
    assert "gzip" in call.metadata["accept-encoding"]
    assert call.metadata["user-agent"].startswith("pug-grpc/")


def test_send_encoded_raises_the_decoded_error() -> None:
    with serve_connect() as server:
        server.state.fail(
            GET,
            rich_status(
                grpc.StatusCode.INVALID_ARGUMENT,
                "event[3]: duplicate event_id",
                reason="INVALID_EVENT_BATCH",
                request_id="req-7",
                violations=[("events.kind", "must match the pattern")],
            ),
        )
        transport = ConnectTransport(server.endpoint, credentials=CredentialHeaders(api_key=KEY))
        with pytest.raises(StatusError) as caught:
            transport.send_encoded(_GET, b"", timeout=5.0)
    error = error_from_rpc(caught.value)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (error.reason, error.domain, error.request_id) == (
        "INVALID_EVENT_BATCH",
        "pug.sh",
        "req-7",
    )
    assert error.field_violations == (("events.kind", "must match the pattern"),)
    assert error.message == "event[3]: duplicate event_id"


def test_the_connect_server_is_http1_only_as_pugs_port_is() -> None:
    """Native gRPC cannot reach it, which is why the Connect transport exists."""
    from pug_grpc._rpc.reads import Reads
    from pug_grpc._rpc.transport import GrpcTransport
    from pug_grpc._transport import open_channel

    with serve_connect() as server:
        channel = open_channel(server.endpoint)
        reads = Reads(GrpcTransport(channel, tls=False), api_key=KEY, timeout=5.0)
        with pytest.raises(PugConnectionError) as caught:
            reads.profiles.get("p1")
        channel.close()
    assert caught.value.reason == Cause.HTTP1_ENDPOINT.value
    assert server.state.calls() == []


def test_a_local_socket_is_refused() -> None:
    with pytest.raises(ValueError, match="local socket"):
        ConnectTransport("unix:/tmp/pug.sock")


def test_without_the_extra_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    assert connect_available()
    monkeypatch.setitem(sys.modules, "connectrpc.client", None)
    assert not connect_available()
    with pytest.raises(ImportError, match=r"pug-grpc\[connect\]"):
        ConnectTransport("http://127.0.0.1:1")
