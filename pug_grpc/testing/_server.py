"""The local Pug server: a real grpcio server on loopback with Pug's observable behaviour."""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
import time
import zoneinfo
from collections.abc import Callable, Iterator, Mapping
from concurrent import futures
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import grpc

from pug_grpc._names import PRIVATE_KEY_PREFIX, PUBLIC_KEY_PREFIX
from pug_grpc.gen.sdk.events.v1 import events_pb2
from pug_grpc.gen.sdk.profiles.v1 import profiles_pb2 as sdk_profiles_pb2
from pug_grpc.testing._call_path import CallPath
from pug_grpc.testing._credential_checks import Authenticator
from pug_grpc.testing._faults import Faults
from pug_grpc.testing._recording import RecordedCall, Recorder
from pug_grpc.testing._request_validation import RequestValidator
from pug_grpc.testing._servicers import ServerState, add_all, served_methods
from pug_grpc.testing._sessions import SessionIssuer
from pug_grpc.testing._store import Store

__all__ = ["LocalServer", "ServerConfig", "local_server"]

_log = logging.getLogger("pug_grpc.testing")

_GZIP_ONLY = 0b101
"""Accepted request compression: identity and gzip (bits 0 and 2); deflate is UNIMPLEMENTED."""
_MAX_REQUEST_BYTES = 64 * 1024 * 1024
"""Pug has no byte limit at the RPC layer: requests this large reach the handler, whose
``publish_limit_bytes`` answers as Pug does, instead of grpcio's RESOURCE_EXHAUSTED at 4 MiB."""


def _key(prefix: str) -> str:
    return prefix + "local_" + secrets.token_hex(12)


@dataclass(frozen=True)
class ServerConfig:
    """How a :class:`LocalServer` listens, what it accepts and where it keeps data.

    Keys left as ``None`` are generated per server; ``database`` is ``":memory:"`` or a SQLite
    file path (data then survives a restart). ``reporting_timezone`` is the project's stored
    time zone, which insight queries use whatever they ask for. ``publish_limit_bytes`` is the
    size past which a batch or an identify fails with ``INTERNAL`` "failed to accept events"
    (Pug's 1 MiB queue message cap; ``None`` for no limit).
    """

    host: str = "127.0.0.1"
    port: int = 0
    database: str | Path = ":memory:"
    project_id: str = "proj_local"
    public_key: str | None = None
    private_key: str | None = None
    extra_api_keys: Mapping[str, str] = field(default_factory=dict)
    user_email: str = "dev@pug.local"
    user_password: str = "pug-local-password"
    user_id: str = "user_local"
    access_token_ttl: float = 900.0
    validate: bool = True
    record: bool = True
    max_workers: int = 16
    reporting_timezone: str = "UTC"
    publish_limit_bytes: int | None = 1024 * 1024


def _zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"reporting_timezone {name!r} is not an IANA time zone") from None


class LocalServer:
    """A Pug server on loopback for development and tests.

    Start it with :meth:`start` (or use it as a context manager), point a client at
    :attr:`endpoint` with :attr:`private_key`, then inspect :attr:`events`, :attr:`identifies`
    and :attr:`calls`, or inject faults through :attr:`faults`.
    """

    def __init__(
        self,
        config: ServerConfig | None = None,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        config = config or ServerConfig()
        self.config = replace(
            config,
            public_key=config.public_key or _key(PUBLIC_KEY_PREFIX),
            private_key=config.private_key or _key(PRIVATE_KEY_PREFIX),
        )
        zone = _zone(self.config.reporting_timezone)
        self.store = Store(self.config.database)
        self.faults = Faults(served_methods(), clock=monotonic)
        self.sessions = SessionIssuer(
            email=self.config.user_email,
            password=self.config.user_password,
            user_id=self.config.user_id,
            project_id=self.config.project_id,
            secret=secrets.token_bytes(32),
            access_ttl=self.config.access_token_ttl,
            clock=clock,
        )
        self._recorder = Recorder(enabled=self.config.record, clock=clock)
        self._state = ServerState(
            store=self.store,
            sessions=self.sessions,
            faults=self.faults,
            recorder=self._recorder,
            clock=clock,
            reporting_timezone=zone,
            publish_limit_bytes=self.config.publish_limit_bytes,
        )
        keys = {
            self.public_key: self.config.project_id,
            self.private_key: self.config.project_id,
            **self.config.extra_api_keys,
        }
        self._stopping = threading.Event()
        self._call_path = CallPath(
            recorder=self._recorder,
            faults=self.faults,
            authenticator=Authenticator(api_keys=keys, sessions=self.sessions),
            validator=RequestValidator() if self.config.validate else None,
            stopping=self._stopping,
        )
        self._server: grpc.Server | None = None
        self._port = self.config.port

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> LocalServer:
        """Bind and serve; the first start picks a free port when the config says 0."""
        if self._server is not None:
            return self
        self._stopping.clear()
        server = grpc.server(
            futures.ThreadPoolExecutor(
                max_workers=self.config.max_workers, thread_name_prefix="pug-local"
            ),
            interceptors=[self._call_path],
            options=[
                ("grpc.so_reuseport", 0),
                ("grpc.compression_enabled_algorithms_bitset", _GZIP_ONLY),
                ("grpc.max_receive_message_length", _MAX_REQUEST_BYTES),
            ],
            compression=grpc.Compression.Gzip,
        )
        add_all(self._state, server)
        port = server.add_insecure_port(f"{self.config.host}:{self._port}")
        if port == 0:
            raise OSError(f"the local Pug server could not bind {self.config.host}:{self._port}")
        self._port = port
        server.start()
        self._server = server
        _log.info("local Pug server listening on %s", self.address)
        return self

    def stop(self, grace: float | None = 0.5) -> None:
        """Stop serving (calls in flight get ``grace`` seconds); data and recordings are kept."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.stop(grace).wait()
        _log.info("local Pug server on %s stopped", self.address)

    def restart(self, *, downtime: float = 0.0) -> None:
        """Stop, optionally stay down for ``downtime`` seconds, and serve again on the same port."""
        self.stop()
        if downtime > 0:
            time.sleep(downtime)
        self.start()

    def close(self) -> None:
        """Stop and release the database."""
        self.stop()
        self.store.close()

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def running(self) -> bool:
        """Whether the server is serving now."""
        return self._server is not None

    # -- where and how to connect ---------------------------------------------------------

    @property
    def port(self) -> int:
        """The port served (the one picked at the first start when the config says 0)."""
        return self._port

    @property
    def address(self) -> str:
        """``host:port``, for ``grpc.insecure_channel``."""
        return f"{self.config.host}:{self._port}"

    @property
    def endpoint(self) -> str:
        """``http://host:port``, the plaintext loopback endpoint form the client accepts."""
        return f"http://{self.address}"

    @property
    def project_id(self) -> str:
        """The project every key of this server belongs to."""
        return self.config.project_id

    @property
    def public_key(self) -> str:
        """The ``pub_`` key (ingestion only)."""
        return str(self.config.public_key)

    @property
    def private_key(self) -> str:
        """The ``prv_`` key (ingestion and reads)."""
        return str(self.config.private_key)

    def channel(self) -> grpc.Channel:
        """A new plaintext channel to this server (the caller closes it)."""
        return grpc.insecure_channel(self.address)

    def issue_tokens(self, *, ttl: float | None = None) -> tuple[str, str]:
        """A signed-in session for the configured user: (access JWT, refresh token).

        ``ttl`` overrides the access token's lifetime in seconds (0 gives an expired token).
        """
        access, refresh = self.sessions.new_session()
        if ttl is not None:
            access = self.sessions.access_token(str(self.sessions.verify(access)["sid"]), ttl=ttl)
        return access, refresh

    # -- inspection -----------------------------------------------------------------------

    @property
    def events(self) -> list[events_pb2.Event]:
        """Every accepted event in arrival order (a redelivered event appears again)."""
        return self._recorder.events

    @property
    def identifies(self) -> list[sdk_profiles_pb2.IdentifyRequest]:
        """Every accepted identify request in arrival order."""
        return self._recorder.identifies

    @property
    def calls(self) -> list[RecordedCall]:
        """Every call received, in order, including refused and failed ones."""
        return self._recorder.calls

    def calls_to(self, method: str) -> list[RecordedCall]:
        """Calls of one method (short, ``Service.Method`` or full path)."""
        path = self.faults.resolve(method)
        return [c for c in self.calls if c.method == path]

    def stored_event_count(self) -> int:
        """Events in storage as they count once merged: a redelivery of the same event counts
        once (it is a second row until :meth:`merge_duplicates`, as in Pug's store)."""
        return self.store.count_events(self.project_id)

    def stored_row_count(self) -> int:
        """Event rows in storage now: a redelivered event counts again until the merge."""
        return self.store.count_rows(self.project_id)

    def merge_duplicates(self) -> int:
        """Run Pug's background merge now (one row per project, minute, kind and event id);
        returns how many rows it removed. Reads never do it by themselves."""
        return self.store.merge_duplicates(self.project_id)

    def wait_for_events(self, count: int, *, timeout: float = 10.0) -> list[events_pb2.Event]:
        """Block until at least ``count`` events were accepted; ``TimeoutError`` otherwise."""
        return self._recorder.wait_for_events(count, timeout)

    def wait_for_identifies(
        self, count: int, *, timeout: float = 10.0
    ) -> list[sdk_profiles_pb2.IdentifyRequest]:
        """Block until at least ``count`` identify requests were accepted."""
        return self._recorder.wait_for_identifies(count, timeout)

    def reset(self) -> None:
        """Forget recordings and injected faults (stored data stays)."""
        self.faults.clear()
        self._recorder.clear()


@contextlib.contextmanager
def local_server(config: ServerConfig | None = None, **changes: Any) -> Iterator[LocalServer]:
    """Run a :class:`LocalServer` for the duration of a ``with`` block.

    Keyword arguments override fields of ``config`` (or of the default config), for example
    ``local_server(database="pug.db", port=50051)``.
    """
    server = LocalServer(replace(config or ServerConfig(), **changes))
    server.start()
    try:
        yield server
    finally:
        server.close()
