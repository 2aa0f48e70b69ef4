"""Endpoint rules, TLS/plaintext choice, user agent and disabled gRPC retries, on loopback."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest
from pug_grpc.gen.sdk.events.v1 import events_pb2, events_pb2_grpc

from pug_grpc import __version__
from pug_grpc._transport import USER_AGENT, Endpoint, is_loopback, open_channel, parse_endpoint
from tests.support.loopback import SelfSignedCert, self_signed_cert, serve


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("https://api.pug.sh", Endpoint("api.pug.sh:443", "api.pug.sh", tls=True)),
        ("https://api.pug.sh:8443/", Endpoint("api.pug.sh:8443", "api.pug.sh", tls=True)),
        ("HTTPS://API.pug.sh", Endpoint("api.pug.sh:443", "api.pug.sh", tls=True)),
        ("api.pug.sh:443", Endpoint("api.pug.sh:443", "api.pug.sh", tls=True)),
        ("api.pug.sh", Endpoint("api.pug.sh:443", "api.pug.sh", tls=True)),
        ("localhost:50051", Endpoint("localhost:50051", "localhost", tls=False)),
        ("127.0.0.1:50051", Endpoint("127.0.0.1:50051", "127.0.0.1", tls=False)),
        ("127.8.9.10:1", Endpoint("127.8.9.10:1", "127.8.9.10", tls=False)),
        ("[::1]:50051", Endpoint("[::1]:50051", "::1", tls=False)),
        ("http://localhost:50051", Endpoint("localhost:50051", "localhost", tls=False)),
        ("http://[::1]:7", Endpoint("[::1]:7", "::1", tls=False)),
        ("https://localhost:50051", Endpoint("localhost:50051", "localhost", tls=True)),
        ("10.0.0.1:50051", Endpoint("10.0.0.1:50051", "10.0.0.1", tls=True)),
        ("[2001:db8::1]:9", Endpoint("[2001:db8::1]:9", "2001:db8::1", tls=True)),
        ("unix:/tmp/pug.sock", Endpoint("unix:/tmp/pug.sock", "localhost", tls=False)),
    ],
)
def test_parse_endpoint(endpoint: str, expected: Endpoint) -> None:
    assert parse_endpoint(endpoint) == expected


def test_bare_loopback_with_credentials_is_tls() -> None:
    assert parse_endpoint("localhost:5", force_tls=True).tls is True


@pytest.mark.parametrize("endpoint", ["http://api.pug.sh:80", "http://10.0.0.1:5", "http://pug"])
def test_plaintext_to_a_remote_host_is_refused(endpoint: str) -> None:
    with pytest.raises(ValueError, match="allow_insecure=True"):
        parse_endpoint(endpoint)
    with pytest.raises(ValueError, match="allow_insecure=True"):
        open_channel(endpoint)


def test_plaintext_to_a_remote_host_with_opt_in(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="pug_grpc"):
        ep = parse_endpoint("http://api.pug.sh:8080", allow_insecure=True)
    assert ep == Endpoint("api.pug.sh:8080", "api.pug.sh", tls=False)
    assert "plaintext" in caplog.text
    open_channel("http://api.pug.sh:8080", allow_insecure=True).close()  # no connection is made


@pytest.mark.parametrize(
    "endpoint",
    ["", " ", "ftp://x:1", "https://host/path", "https://u:p@host", "host:notaport", "h:99999"],
)
def test_bad_endpoints_are_refused(endpoint: str) -> None:
    with pytest.raises(ValueError, match="endpoint"):
        parse_endpoint(endpoint)


def test_credentials_with_a_plaintext_endpoint_are_refused() -> None:
    with pytest.raises(ValueError, match="TLS credentials"):
        open_channel("http://localhost:1", credentials=grpc.ssl_channel_credentials())


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("localhost", True), ("LOCALHOST", True), ("127.0.0.1", True), ("::1", True),
     ("[::1]", True), ("0.0.0.0", False), ("example.com", False), ("10.1.1.1", False)],
)  # fmt: skip
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def _call(channel: grpc.Channel) -> events_pb2.BatchCreateResponse:
    stub = events_pb2_grpc.EventsServiceStub(channel)
    return stub.BatchCreate(events_pb2.BatchCreateRequest(), timeout=5)


def test_user_agent_is_sent() -> None:
    assert f"pug-grpc/{__version__}" == USER_AGENT
    with serve() as lb:
        with open_channel(lb.endpoint) as channel:
            _call(channel)
        with open_channel(lb.target, channel_options=[("grpc.primary_user_agent", "app/2")]) as ch:
            _call(ch)
        first, second = lb.recorder.calls
    assert first.metadata["user-agent"].startswith(f"pug-grpc/{__version__} ")
    assert second.metadata["user-agent"].startswith(f"app/2 pug-grpc/{__version__} ")


_RETRY_CONFIG = json.dumps(
    {
        "methodConfig": [
            {
                "name": [{"service": "sdk.events.v1.EventsService"}],
                "retryPolicy": {
                    "maxAttempts": 4,
                    "initialBackoff": "0.01s",
                    "maxBackoff": "0.01s",
                    "backoffMultiplier": 1,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    }
)


def test_grpc_retries_are_disabled_even_with_a_retry_service_config() -> None:
    options = [("grpc.service_config", _RETRY_CONFIG), ("grpc.enable_retries", 1)]
    with serve() as lb:
        # Control: a plain channel with this service config does retry.
        lb.recorder.fail_next(grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAVAILABLE)
        with grpc.insecure_channel(lb.target, options=options) as plain:
            _call(plain)
        assert len(lb.recorder.calls) == 3
        # Ours does not: one attempt, the error surfaces to the caller (tenacity's job).
        lb.recorder.fail_next(grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAVAILABLE)
        ours = open_channel(lb.endpoint, channel_options=options)
        with ours, pytest.raises(grpc.RpcError) as info:
            _call(ours)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        assert len(lb.recorder.calls) == 4


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> SelfSignedCert:
    made = self_signed_cert(Path(tmp_path_factory.mktemp("tls")))
    if made is None:
        pytest.skip("openssl CLI not available")
    return made


def test_https_with_given_credentials_uses_tls(cert: SelfSignedCert) -> None:
    with serve(server_credentials=cert.server_credentials()) as lb:
        creds = cert.channel_credentials()
        with open_channel(f"https://localhost:{lb.port}", credentials=creds) as channel:
            assert _call(channel).accepted == 0
        # A bare loopback host:port with explicit credentials is TLS too.
        with open_channel(f"localhost:{lb.port}", credentials=creds) as channel:
            _call(channel)
        assert len(lb.recorder.calls) == 2


def test_https_without_credentials_uses_system_roots(cert: SelfSignedCert) -> None:
    """A self-signed server is not trusted by the system roots: the handshake fails."""
    with serve(server_credentials=cert.server_credentials()) as lb:
        channel = open_channel(f"https://localhost:{lb.port}")
        with channel, pytest.raises(grpc.RpcError) as info:
            _call(channel)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        assert lb.recorder.calls == []


def test_bare_loopback_is_plaintext(cert: SelfSignedCert) -> None:
    with serve() as lb:
        with open_channel(f"localhost:{lb.port}") as channel:
            _call(channel)
        assert len(lb.recorder.calls) == 1
    with serve(server_credentials=cert.server_credentials()) as lb:
        channel = open_channel(f"127.0.0.1:{lb.port}")
        with channel, pytest.raises(grpc.RpcError):
            _call(channel)
        assert lb.recorder.calls == []
