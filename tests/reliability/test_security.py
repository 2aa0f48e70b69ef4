"""Transport security and secrets: TLS verified against the right root only, no plaintext to a
remote host unless asked for, no read with a ``pub_`` key, and no credential in any log record,
exception, ``repr`` or ``on_error`` payload (the leak guard runs on every test of the suite;
here it also watches the JWTs and refresh tokens of a signed-in session).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pug_grpc import (
    BatchSettings,
    Pug,
    PugAdmin,
    PugAuthenticationError,
    PugError,
    PugNotFoundError,
    PugPublicKeyError,
    RetrySettings,
)
from tests.support.loopback import Loopback, serve
from tests.support.reliability import (
    PRIVATE_KEY,
    PROJECT_ID,
    PUBLIC_KEY,
    LeakGuard,
    client,
    exception_texts,
    pug_server,
)

pytestmark = pytest.mark.timeout(60)

NO_WAIT = BatchSettings(max_size=100, max_wait=0.05)
TWO_TRIES = RetrySettings(max_attempts=2, initial_backoff=0.01, max_backoff=0.01)


@dataclass(frozen=True)
class Cert:
    cert_pem: bytes
    key_pem: bytes


def self_signed(common_name: str = "localhost") -> Cert:
    """A throwaway self-signed certificate for localhost and 127.0.0.1 (it is its own root)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return Cert(
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


@pytest.fixture(scope="module")
def server_cert() -> Cert:
    return self_signed()


@pytest.fixture
def tls_server(server_cert: Cert) -> Iterator[Loopback]:
    creds = grpc.ssl_server_credentials([(server_cert.key_pem, server_cert.cert_pem)])
    with serve(server_credentials=creds) as running:
        yield running


# -- TLS ---------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ["https://localhost:{port}", "127.0.0.1:{port}"])
def test_tls_with_the_right_root_delivers(
    tls_server: Loopback,
    server_cert: Cert,
    leak_guard: LeakGuard,
    endpoint: str,
) -> None:
    reports = leak_guard.reports()
    creds = grpc.ssl_channel_credentials(root_certificates=server_cert.cert_pem)
    with Pug(
        PRIVATE_KEY, endpoint.format(port=tls_server.port), credentials=creds, batch=NO_WAIT,
        retry=TWO_TRIES, on_error=reports,
    ) as pug:  # fmt: skip
        for seq in range(5):
            pug.track("user-1", "tls.test", {"seq": seq})
        result = pug.flush(timeout=10)
    assert result.ok
    assert result.accepted == 5
    assert [len(b.events) for b in tls_server.recorder.batches()] == [5]
    assert tls_server.recorder.calls[0].metadata["x-api-key"] == PRIVATE_KEY  # inside TLS
    assert reports.all == []


@pytest.mark.parametrize("roots", ["unknown-root", "system-roots"])
def test_tls_with_an_unknown_root_is_refused(
    tls_server: Loopback,
    leak_guard: LeakGuard,
    roots: str,
) -> None:
    reports = leak_guard.reports()
    other = self_signed("pug.example.test")  # valid, but not the server's certificate
    creds = (
        grpc.ssl_channel_credentials(root_certificates=other.cert_pem)
        if roots == "unknown-root"
        else None
    )
    with Pug(
        PRIVATE_KEY, f"https://localhost:{tls_server.port}", credentials=creds, batch=NO_WAIT,
        retry=TWO_TRIES, on_error=reports, timeout=5,
    ) as pug:  # fmt: skip
        pug.track("user-1", "tls.refused")
        result = pug.flush(timeout=15)
    assert result.completed
    assert result.dead_lettered == 1
    assert tls_server.recorder.calls == [], "no call may pass an unverified handshake"
    (report,) = reports.all
    assert isinstance(report.error, PugError)
    assert report.error.code == grpc.StatusCode.UNAVAILABLE


# -- plaintext ---------------------------------------------------------------------------


def refused_construction(guard: LeakGuard, build: Callable[[], Any]) -> ValueError:
    with pytest.raises(ValueError, match="allow_insecure") as caught:
        build()
    guard.add(*exception_texts(caught.value))
    return caught.value


def test_plaintext_to_a_remote_host_is_refused_unless_allowed(
    leak_guard: LeakGuard,
) -> None:
    for endpoint in ("http://203.0.113.7:50051", "http://pug.example.com:80"):
        refused_construction(leak_guard, lambda e=endpoint: Pug(PRIVATE_KEY, e))  # type: ignore[misc]
        refused_construction(leak_guard, lambda e=endpoint: PugAdmin(e))  # type: ignore[misc]
    allowed = Pug(PRIVATE_KEY, "http://203.0.113.7:50051", allow_insecure=True)
    leak_guard.add(repr(allowed))
    allowed.close()

    # Nothing is served on a non-loopback address here: this machine's tests send traffic to
    # loopback only. That a bare remote host:port means TLS is covered in test_transport.py.


# -- public keys -------------------------------------------------------------------------


def test_a_public_key_read_is_refused_before_any_network_call(
    leak_guard: LeakGuard,
) -> None:
    end = dt.datetime.now(dt.UTC)
    start = end - dt.timedelta(days=1)
    with pug_server() as server, client(server, api_key=PUBLIC_KEY) as pug:
        reads: list[Callable[[], Any]] = [
            lambda: pug.profiles.get_by_external_id("user-1"),
            lambda: pug.profiles.get("profile-1"),
            lambda: list(pug.profiles.list()),
            lambda: list(pug.activity.feed("user-1")),
            lambda: pug.insights.query(
                {"insight_type": "trends"}, time_range=(start, end), granularity="day"
            ),
        ]
        for read in reads:
            with pytest.raises(PugPublicKeyError) as caught:
                read()
            assert caught.value.is_client_side
            assert caught.value.reason == "PUBLIC_KEY_NOT_ALLOWED"
            leak_guard.add(*exception_texts(caught.value))
        assert server.calls == [], "a pub_ key read must not reach the network"
        # Ingestion with the same key still works (pub_ keys are valid for sdk services).
        pug.track("user-1", "public.key")
        assert pug.flush(timeout=10).ok
        assert [c.short_method for c in server.calls] == ["BatchCreate"]
        leak_guard.add(repr(pug))


# -- secrets -----------------------------------------------------------------------------


def test_no_key_jwt_or_refresh_token_leaks_through_a_session(
    leak_guard: LeakGuard,
) -> None:
    with pug_server() as server:
        password = server.config.user_password
        leak_guard.watch(password)
        seen: list[str] = []

        def on_tokens(access: str, refresh: str) -> None:
            leak_guard.watch(access, refresh)
            seen.extend((access, refresh))

        errors: list[BaseException] = []

        def expect(error_type: type[PugError], call: Callable[[], Any]) -> None:
            with pytest.raises(error_type) as caught:
                call()
            errors.append(caught.value)

        with PugAdmin(server.endpoint, project_id=PROJECT_ID, on_tokens=on_tokens) as admin:
            expect(PugAuthenticationError, lambda: admin.sign_in_with_email("x@y.z", password))
            admin.sign_in_with_email(server.config.user_email, password)
            expect(PugNotFoundError, lambda: admin.profiles.get_by_external_id("nobody"))
            old_refresh = admin.session.refresh_token
            admin.refresh()
            expect(PugNotFoundError, lambda: admin.profiles.get_by_external_id("nobody"))
            leak_guard.add(repr(admin), repr(admin.session), str(admin.session))
            admin.sign_out()

        # A used refresh token is refused; the error names it only masked.
        assert old_refresh is not None
        with PugAdmin(server.endpoint, refresh_token=old_refresh) as stale:
            expect(PugAuthenticationError, stale.refresh)
            leak_guard.add(repr(stale), repr(stale.session))

        # An expired access token is refreshed on the server's UNAUTHENTICATED, then works.
        access, refresh = server.issue_tokens(ttl=0)
        leak_guard.watch(access, refresh)
        with PugAdmin(
            server.endpoint, access_token=access, refresh_token=refresh, project_id=PROJECT_ID,
            on_tokens=on_tokens, refresh_margin=0,
        ) as expired:  # fmt: skip
            expect(PugNotFoundError, lambda: expired.profiles.get_by_external_id("nobody"))
            leak_guard.add(repr(expired))

        # An ingestion client with a key the server refuses, and one with a bad key.
        reports = leak_guard.reports()
        with client(server, api_key="prv_" + "0" * 40, on_error=reports, batch=NO_WAIT) as pug:
            pug.track("user-1", "secret.test")
            pug.flush(timeout=10)
            leak_guard.add(repr(pug), pug.stats())
        assert reports.reasons() == {"UNAUTHENTICATED": 1}
        for bad in (PRIVATE_KEY + "\n", PRIVATE_KEY.replace("prv_", "sk_"), PRIVATE_KEY + " x"):
            with pytest.raises(ValueError, match="API key") as caught:
                Pug(bad, server.endpoint)
            leak_guard.watch(bad.strip())
            errors.append(caught.value)

        for error in errors:
            leak_guard.add(*exception_texts(error))
        assert len(seen) >= 6, "the session never rotated tokens: nothing to look for"
        # The scan had material: debug records from the session code mention the tokens masked.
        assert any("session tokens set" in m for m in leak_guard.messages("pug_grpc"))
