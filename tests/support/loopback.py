"""Minimal in-process Pug servicers for tests: they record what arrives and fail on cue.

Built from the generated servicer base classes and served by a real ``grpcio`` server on
127.0.0.1 port 0, so tests exercise the real wire path instead of mocked stubs.

A script is a queue of actions consumed one per call: a ``grpc.StatusCode`` aborts the call
with that code, a response message is returned as is, and a callable ``(request, context)`` may
do either. When the script is empty the servicer answers success (every event accepted).
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from pug_grpc.gen.sdk.events.v1 import events_pb2, events_pb2_grpc
from pug_grpc.gen.sdk.profiles.v1 import profiles_pb2, profiles_pb2_grpc

Action = Any  # grpc.StatusCode | message | Callable[[request, context], message]


@dataclass
class Call:
    """One received call: the request and its invocation metadata (lower-cased keys)."""

    method: str
    request: Any
    metadata: dict[str, str]


@dataclass
class Recorder:
    """Shared log of every call the servicers saw, in arrival order."""

    calls: list[Call] = field(default_factory=list)
    script: deque[Action] = field(default_factory=deque)
    default: Action | None = None  # used when the script is empty (None: success)
    lock: threading.RLock = field(default_factory=threading.RLock)  # predicates re-enter it
    arrived: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.arrived = threading.Condition(self.lock)

    def fail_next(self, *actions: Action) -> None:
        with self.lock:
            self.script.extend(actions)

    def record(self, method: str, request: Any, context: grpc.ServicerContext) -> Action | None:
        md = {k.lower(): v for k, v in context.invocation_metadata()}
        with self.lock:
            self.calls.append(Call(method, request, md))
            action = self.script.popleft() if self.script else self.default
            self.arrived.notify_all()
        return action

    def batches(self) -> list[events_pb2.BatchCreateRequest]:
        with self.lock:
            return [c.request for c in self.calls if c.method == "BatchCreate"]

    def events(self) -> list[events_pb2.Event]:
        return [e for b in self.batches() for e in b.events]

    def identifies(self) -> list[profiles_pb2.IdentifyRequest]:
        with self.lock:
            return [c.request for c in self.calls if c.method == "Identify"]

    def wait_for(self, predicate: Callable[[Recorder], bool], timeout: float = 5.0) -> bool:
        with self.arrived:
            return self.arrived.wait_for(lambda: predicate(self), timeout)


def _apply(action: Action | None, request: Any, context: grpc.ServicerContext, default: Any) -> Any:
    if action is None:
        return default
    if isinstance(action, grpc.StatusCode):
        context.abort(action, f"scripted {action.name}")
    if callable(action):
        return action(request, context)
    return action


class EventsServicer(events_pb2_grpc.EventsServiceServicer):
    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    def BatchCreate(
        self, request: events_pb2.BatchCreateRequest, context: grpc.ServicerContext
    ) -> events_pb2.BatchCreateResponse:
        action = self.recorder.record("BatchCreate", request, context)
        ok = events_pb2.BatchCreateResponse(accepted=len(request.events))
        return _apply(action, request, context, ok)  # type: ignore[no-any-return]


class ProfilesServicer(profiles_pb2_grpc.ProfilesSDKServiceServicer):
    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    def Identify(
        self, request: profiles_pb2.IdentifyRequest, context: grpc.ServicerContext
    ) -> profiles_pb2.IdentifyResponse:
        action = self.recorder.record("Identify", request, context)
        return _apply(action, request, context, profiles_pb2.IdentifyResponse())  # type: ignore[no-any-return]


@dataclass
class Loopback:
    server: grpc.Server
    port: int
    recorder: Recorder

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


@contextmanager
def serve(
    *, server_credentials: grpc.ServerCredentials | None = None, host: str = "127.0.0.1"
) -> Iterator[Loopback]:
    """Run the recording servicers on ``host`` port 0 for the duration of the block."""
    recorder = Recorder()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    events_pb2_grpc.add_EventsServiceServicer_to_server(EventsServicer(recorder), server)
    profiles_pb2_grpc.add_ProfilesSDKServiceServicer_to_server(ProfilesServicer(recorder), server)
    address = f"{host}:0"
    if server_credentials is None:
        port = server.add_insecure_port(address)
    else:
        port = server.add_secure_port(address, server_credentials)
    server.start()
    try:
        yield Loopback(server, port, recorder)
    finally:
        server.stop(grace=None)


def trailers(**pairs: str) -> Callable[[Any, grpc.ServicerContext], Any]:
    """Action: abort UNAVAILABLE with the given trailing metadata (e.g. retry pushback)."""

    def action(request: Any, context: grpc.ServicerContext) -> Any:
        context.set_trailing_metadata(tuple((k.replace("_", "-"), v) for k, v in pairs.items()))
        context.abort(grpc.StatusCode.UNAVAILABLE, "scripted pushback")

    return action


@dataclass(frozen=True)
class SelfSignedCert:
    cert_pem: bytes
    key_pem: bytes

    def server_credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials([(self.key_pem, self.cert_pem)])

    def channel_credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(root_certificates=self.cert_pem)


def self_signed_cert(directory: Path) -> SelfSignedCert | None:
    """Make a throwaway certificate for localhost/127.0.0.1 with the openssl CLI, if present."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    key, cert = directory / "key.pem", directory / "cert.pem"
    args = "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1"
    subprocess.run(
        [
            openssl,
            *args.split(),
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return SelfSignedCert(cert.read_bytes(), key.read_bytes())


def channel_to(lb: Loopback) -> grpc.Channel:
    """A plain loopback channel with our options (retries off, user agent)."""
    from pug_grpc._transport import open_channel

    return open_channel(lb.endpoint)
