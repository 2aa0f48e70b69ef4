"""Connection failures get their cause named, against real loopback servers of each kind.

Each case points a read at a server that is wrong for it (an HTTP/1.1 server, a closed port,
a name that does not resolve, TLS and plaintext crossed, an untrusted certificate) over gRPC
and, where it applies, over Connect, and checks the ``PugConnectionError`` the caller gets.
"""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pug_grpc._credentials import CredentialsInterceptor
from pug_grpc._diagnosis import Cause, diagnose
from pug_grpc._errors import PugConnectionError, PugUnavailableError
from pug_grpc._retry import RetrySettings
from pug_grpc._rpc.profiles import Profiles
from pug_grpc._rpc.reads import Reads, connect_reads
from pug_grpc._transport import intercept, open_channel, parse_endpoint
from tests.rpc.clients import KEY
from tests.support.loopback import SelfSignedCert, self_signed_cert
from tests.support.read_servers import rich_status, serve

pytestmark = pytest.mark.timeout(60)

RETRY = RetrySettings(initial_backoff=0.0, max_backoff=0.0, max_attempts=5)


class _Counting(http.server.BaseHTTPRequestHandler):
    """Answers every request with 400 (as an HTTP/1.1 origin does to HTTP/2) and counts it."""

    hits: list[str] = []  # noqa: RUF012 - shared by the server's handler instances

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output quiet."""

    def handle_one_request(self) -> None:
        self.hits.append(self.client_address[0])
        super().handle_one_request()


@pytest.fixture(scope="module")
def http1() -> Iterator[int]:
    """A plain HTTP/1.1 server on loopback: the port of Pug's own server binary."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> SelfSignedCert:
    made = self_signed_cert(Path(tmp_path_factory.mktemp("cert")))
    if made is None:
        pytest.skip("the openssl command is not available")
    return made


@pytest.fixture(scope="module")
def tls_port(cert: SelfSignedCert) -> Iterator[int]:
    """A gRPC server that speaks TLS only."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    port = server.add_secure_port("127.0.0.1:0", cert.server_credentials())
    server.start()
    yield port
    server.stop(grace=None)


@pytest.fixture(scope="module")
def plain_grpc_port() -> Iterator[int]:
    """A gRPC server that speaks plaintext HTTP/2 only."""
    with serve() as running:
        yield running.port


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def grpc_reads(endpoint: str, credentials: grpc.ChannelCredentials | None = None) -> Reads:
    channel = open_channel(endpoint, credentials=credentials)
    tls = parse_endpoint(endpoint, force_tls=credentials is not None).tls
    authed = intercept(channel, CredentialsInterceptor(api_key=KEY))
    # As Pug builds its reads: a function returning the client's channel, and what it is.
    return Reads(lambda: authed, api_key=KEY, timeout=10.0, retry=RETRY, endpoint=endpoint, tls=tls)


def fails_with(reads: Reads, cause: Cause) -> PugConnectionError:
    with pytest.raises(PugConnectionError) as caught:
        reads.profiles.get("p1")
    error = caught.value
    assert error.reason == cause.value
    assert error.is_client_side
    assert isinstance(error, PugUnavailableError)
    assert isinstance(error.__cause__, grpc.RpcError)
    return error


def test_grpc_to_an_http1_port_names_both_fixes_and_is_not_retried(http1: int) -> None:
    endpoint = f"http://127.0.0.1:{http1}"
    reads = grpc_reads(endpoint)
    waits: list[float] = []
    profiles = Profiles(reads.profiles._ctx.replace(sleep=waits.append))
    with pytest.raises(PugConnectionError) as caught:
        profiles.get("p1")
    text = str(caught.value)
    assert caught.value.reason == Cause.HTTP1_ENDPOINT.value
    assert endpoint in text
    assert "HTTP/1" in text
    assert "Caddy" in text
    assert "trailers" in text
    assert 'transport="connect"' in text
    assert waits == []  # five attempts were allowed; a misconfiguration gets one
    assert _Counting.hits  # the HTTP/1.1 server was really reached


def test_a_refused_connection_is_retried_under_retry_settings() -> None:
    reads = grpc_reads(f"http://127.0.0.1:{closed_port()}")
    waits: list[float] = []
    profiles = Profiles(reads.profiles._ctx.replace(sleep=waits.append))
    with pytest.raises(PugConnectionError) as caught:
        profiles.get("p1")
    assert caught.value.reason == Cause.CONNECTION_REFUSED.value
    assert len(waits) == RETRY.max_attempts - 1  # a server may come back: this one is retried


@pytest.mark.parametrize("transport", ["grpc", "connect"])
def test_a_closed_port_is_connection_refused(transport: str) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    reads = grpc_reads(endpoint) if transport == "grpc" else connect(endpoint)
    error = fails_with(reads, Cause.CONNECTION_REFUSED)
    assert "refused" in str(error)


@pytest.mark.parametrize("transport", ["grpc", "connect"])
def test_an_unknown_host_is_name_not_found(transport: str) -> None:
    endpoint = "https://pug.nonexistent.invalid"
    reads = grpc_reads(endpoint) if transport == "grpc" else connect(endpoint)
    error = fails_with(reads, Cause.NAME_NOT_FOUND)
    assert "host name" in str(error)


def connect(endpoint: str, roots: bytes | None = None) -> Reads:
    made, _ = connect_reads(
        endpoint, api_key=KEY, timeout=10.0, retry=RETRY, root_certificates=roots
    )
    return made


def test_grpc_tls_to_a_plaintext_port(plain_grpc_port: int, cert: SelfSignedCert) -> None:
    endpoint = f"https://127.0.0.1:{plain_grpc_port}"
    error = fails_with(
        grpc_reads(endpoint, cert.channel_credentials()), Cause.TLS_TO_PLAINTEXT_PORT
    )
    assert "http://" in str(error)


def test_connect_tls_to_a_plaintext_port(http1: int, cert: SelfSignedCert) -> None:
    fails_with(connect(f"https://127.0.0.1:{http1}", cert.cert_pem), Cause.TLS_TO_PLAINTEXT_PORT)


@pytest.mark.parametrize("transport", ["grpc", "connect"])
def test_plaintext_to_a_tls_port(transport: str, tls_port: int) -> None:
    endpoint = f"http://127.0.0.1:{tls_port}"
    reads = grpc_reads(endpoint) if transport == "grpc" else connect(endpoint)
    error = fails_with(reads, Cause.PLAINTEXT_TO_TLS_PORT)
    assert "https://" in str(error)


def test_an_untrusted_certificate(tls_port: int) -> None:
    error = fails_with(grpc_reads(f"https://localhost:{tls_port}"), Cause.TLS_UNTRUSTED)
    assert "root" in str(error)


def test_connect_to_an_http2_only_grpc_server(plain_grpc_port: int) -> None:
    error = fails_with(connect(f"http://127.0.0.1:{plain_grpc_port}"), Cause.HTTP2_ONLY_ENDPOINT)
    assert 'transport="grpc"' in str(error)


def test_a_server_sent_unavailable_is_not_taken_for_a_local_failure() -> None:
    with serve() as running:
        running.state.fail(
            "/shared.profiles.v1.ProfilesService/Get",
            rich_status(grpc.StatusCode.UNAVAILABLE, "upstream connect error: connection refused"),
        )
        channel = intercept(
            grpc.insecure_channel(running.target), CredentialsInterceptor(api_key=KEY)
        )
        with pytest.raises(PugUnavailableError) as caught:
            Reads(channel, api_key=KEY, timeout=5.0).profiles.get("p1")
    assert type(caught.value) is PugUnavailableError
    assert not caught.value.is_client_side


@given(st.text(max_size=300), st.sampled_from([None, True, False]))
def test_diagnose_never_raises_and_needs_a_local_failure(text: str, tls: bool | None) -> None:
    error = RuntimeError(text)
    found = diagnose(error, tls=tls)
    if found is not None:
        assert any(
            marker in text.lower()
            for marker in ("failed to connect", "resolving", "dns resolution", "sending request")
        )
        assert found.message


def test_diagnose_reads_the_cause_chain_and_quotes_the_endpoint() -> None:
    inner = ConnectionError(
        "error sending request for url (http://x): tcp connect error: Connection refused"
    )
    outer = RuntimeError("UNAVAILABLE")
    outer.__cause__ = inner
    found = diagnose(outer, endpoint="http://x")
    assert found is not None
    assert found.cause is Cause.CONNECTION_REFUSED
    assert found.retryable
    assert found.message.startswith("http://x: ")
    assert diagnose(RuntimeError("connection refused")) is None
