"""Small in-process servers for the read/admin tests, built from the generated servicer bases.

Every method of the shared, dashboard and public services is served on a real ``grpcio`` server
bound to 127.0.0.1 port 0. Each servicer subclasses its generated ``*Servicer`` base and routes
every call to one :class:`ReadServer` that records it, checks the credential the way the Pug
server does per family, applies a queued fault (a rich ``google.rpc.Status``), and answers: the
paging methods page over fixed data, the auth service issues and rotates unsigned JWTs, and
everything else returns a canned or empty response.
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from types import ModuleType
from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.any_pb2 import Any as AnyMessage
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from google.rpc.error_details_pb2 import BadRequest, ErrorInfo, RequestInfo, RetryInfo
from google.rpc.status_pb2 import Status
from grpc_status import rpc_status
from pug_grpc.gen.dashboard.customers.v1 import customers_pb2_grpc
from pug_grpc.gen.dashboard.dashboards.v1 import dashboards_pb2_grpc
from pug_grpc.gen.dashboard.orgemailproviders.v1 import orgemailproviders_pb2_grpc
from pug_grpc.gen.dashboard.orgs.v1 import orgs_pb2_grpc
from pug_grpc.gen.dashboard.projects.v1 import projects_pb2_grpc
from pug_grpc.gen.public.auth.v1 import auth_pb2, auth_pb2_grpc
from pug_grpc.gen.public.dashboards.v1 import dashboards_pb2_grpc as public_dashboards_pb2_grpc
from pug_grpc.gen.shared.activity.v1 import activity_pb2, activity_pb2_grpc
from pug_grpc.gen.shared.insights.v1 import insights_pb2, insights_pb2_grpc
from pug_grpc.gen.shared.profiles.v1 import profiles_pb2, profiles_pb2_grpc

from tests.support.clock import FakeClock

# (generated *_pb2_grpc module, service name): every service this file serves.
SERVICES: tuple[tuple[ModuleType, str], ...] = (
    (profiles_pb2_grpc, "ProfilesService"),
    (activity_pb2_grpc, "ActivityService"),
    (insights_pb2_grpc, "InsightsService"),
    (orgs_pb2_grpc, "OrgsService"),
    (projects_pb2_grpc, "ProjectsService"),
    (dashboards_pb2_grpc, "DashboardsService"),
    (orgemailproviders_pb2_grpc, "OrgEmailProvidersService"),
    (customers_pb2_grpc, "CustomersService"),
    (auth_pb2_grpc, "AuthService"),
    (public_dashboards_pb2_grpc, "SharedDashboardsService"),
)

EMAIL, PASSWORD = "ops@example.com", "correct horse battery"


def make_jwt(exp: float, subject: str) -> str:
    """An unsigned JWT-shaped token with an ``exp`` claim (the client never checks signatures)."""

    def part(obj: dict[str, Any]) -> str:
        raw = json.dumps(obj, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part({'sub': subject, 'exp': exp})}.sig"


def rich_status(
    code: grpc.StatusCode,
    message: str,
    *,
    reason: str = "",
    request_id: str = "",
    violations: Sequence[tuple[str, str]] = (),
    trace_id: str = "",
    retry_after: float | None = None,
) -> Status:
    """A ``google.rpc.Status`` shaped like the Pug server's errors."""
    status = Status(code=code.value[0], message=message)
    if reason:
        info = ErrorInfo(reason=reason, domain="pug.sh")
        if trace_id:
            info.metadata["trace_id"] = trace_id
        status.details.add().Pack(info)
    if request_id:
        status.details.add().Pack(RequestInfo(request_id=request_id))
    if violations:
        bad = BadRequest()
        for name, description in violations:
            bad.field_violations.add(field=name, description=description)
        status.details.add().Pack(bad)
    if retry_after is not None:
        delay = Duration()
        delay.FromTimedelta(timedelta(seconds=retry_after))
        status.details.add().Pack(RetryInfo(retry_delay=delay))
    unknown = AnyMessage()
    unknown.Pack(Duration(seconds=1))  # a detail type the client does not know is skipped
    status.details.append(unknown)
    return status


@dataclass
class Received:
    path: str
    request: Any
    metadata: dict[str, str]
    time_remaining: float | None


class RawStatus(grpc.Status):
    """A status given verbatim, e.g. a details trailer that disagrees with the code."""

    def __init__(
        self, code: grpc.StatusCode, details: str, trailing_metadata: tuple[Any, ...] = ()
    ) -> None:
        self.code = code
        self.details = details
        self.trailing_metadata = trailing_metadata


def _family(path: str) -> str:
    return path.lstrip("/").split(".", 1)[0]


@dataclass
class ReadServer:
    """Shared state and behaviour behind every servicer; tests poke it between calls."""

    now: Callable[[], float]
    token_lifetime: float = 3600.0
    received: list[Received] = field(default_factory=list)
    faults: dict[str, deque[Status | grpc.Status]] = field(
        default_factory=lambda: defaultdict(deque)
    )
    delays: dict[str, float] = field(default_factory=dict)
    canned: dict[str, Message] = field(default_factory=dict)
    valid_access: set[str] = field(default_factory=set)
    refresh_pairs: dict[str, str] = field(default_factory=dict)  # refresh -> its access token
    events: list[activity_pb2.ActivityEvent] = field(default_factory=list)
    profiles: list[profiles_pb2.Profile] = field(default_factory=list)
    segment: list[str] = field(default_factory=list)
    profile_page_size: int = 2
    break_stream_after: int | None = None  # pages sent before a List stream fails UNAVAILABLE
    lock: threading.Lock = field(default_factory=threading.Lock)
    _serial: Iterator[int] = field(default_factory=itertools.count)

    # -- bookkeeping -----------------------------------------------------------------------

    def calls(self, suffix: str = "") -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path.endswith(suffix)]

    def paths(self) -> list[str]:
        with self.lock:
            return [r.path for r in self.received]

    def fail(self, path: str, status: Status | grpc.Status, times: int = 1) -> None:
        with self.lock:
            self.faults[path].extend([status] * times)

    def issue_tokens(self, subject: str = "customer-1") -> tuple[str, str]:
        with self.lock:
            n = next(self._serial)
            access = make_jwt(self.now() + self.token_lifetime, f"{subject}-{n}")
            refresh = f"refresh-{subject}-{n}-secretpart"
            self.valid_access.add(access)
            self.refresh_pairs[refresh] = access
            return access, refresh

    def revoke_access(self, token: str) -> None:
        with self.lock:
            self.valid_access.discard(token)

    def reset(self) -> None:
        with self.lock:
            self.received.clear()
            self.faults.clear()
            self.canned.clear()
            self.delays.clear()
            self.valid_access.clear()
            self.refresh_pairs.clear()
            self.events, self.profiles, self.segment = [], [], []
            self.profile_page_size, self.break_stream_after = 2, None
            self.token_lifetime = 3600.0

    # -- per-call pipeline -----------------------------------------------------------------

    def _record(self, path: str, request: Any, context: grpc.ServicerContext) -> None:
        md = {k.lower(): v for k, v in context.invocation_metadata() if isinstance(v, str)}
        with self.lock:
            self.received.append(Received(path, request, md, context.time_remaining()))
            fault = self.faults[path].popleft() if self.faults.get(path) else None
            delay = self.delays.get(path)
        if delay:
            threading.Event().wait(delay)
        if isinstance(fault, Status):
            context.abort_with_status(rpc_status.to_status(fault))
        elif fault is not None:
            context.abort_with_status(fault)
        self._check_credentials(path, md, context)

    def _deny(self, context: grpc.ServicerContext, code: grpc.StatusCode, message: str) -> None:
        context.abort_with_status(
            rpc_status.to_status(
                rich_status(code, message, reason=code.name, request_id=f"req-{id(message)}")
            )
        )

    def _check_credentials(
        self, path: str, md: dict[str, str], context: grpc.ServicerContext
    ) -> None:
        family = _family(path)
        if family == "public":
            return
        key = md.get("x-api-key", "")
        bearer = md.get("authorization", "")
        token = bearer.removeprefix("Bearer ") if bearer.startswith("Bearer ") else ""
        if family == "shared" and key:
            if key.startswith("prv_"):
                return
            self._deny(context, grpc.StatusCode.PERMISSION_DENIED, "a pub_ key cannot read")
        with self.lock:
            valid = token in self.valid_access
        if not valid:
            self._deny(context, grpc.StatusCode.UNAUTHENTICATED, "missing or invalid token")
        if family == "shared" and not md.get("x-project-id"):
            self._deny(context, grpc.StatusCode.INVALID_ARGUMENT, "x-project-id is required")

    def unary(self, path: str, output: type[Message]) -> Callable[..., Message]:
        special = getattr(self, "_" + path.rsplit("/", 1)[1], None)

        def handle(request: Message, context: grpc.ServicerContext) -> Message:
            self._record(path, request, context)
            with self.lock:
                canned = self.canned.get(path)
            if canned is not None:
                return canned
            if special is not None and path.startswith(("/shared.", "/public.auth")):
                return special(request, output)  # type: ignore[no-any-return]
            return output()

        return handle

    # -- behaviours ------------------------------------------------------------------------

    def _page(self, items: Sequence[Any], request: Any, default_size: int) -> tuple[Any, str]:
        start = int(request.page_token or 0)
        size = request.page_size or default_size
        end = start + size
        return items[start:end], (str(end) if end < len(items) else "")

    def _GetActivityFeed(self, request: Any, output: type[Message]) -> Message:
        mine = [e for e in self.events if e.distinct_id == request.distinct_id]
        page, token = self._page(mine, request, 3)
        return activity_pb2.GetActivityFeedResponse(events=page, next_page_token=token)

    def _GetEventExplorer(self, request: Any, output: type[Message]) -> Message:
        page, token = self._page(self.events, request, 3)
        return activity_pb2.GetEventExplorerResponse(events=page, next_page_token=token)

    def _SegmentUsers(self, request: Any, output: type[Message]) -> Message:
        page, token = self._page(self.segment, request, 2)
        return insights_pb2.SegmentUsersResponse(distinct_ids=page, next_page_token=token)

    def _pair(self, output: type[Message], **extra: Any) -> Message:
        access, refresh = self.issue_tokens()
        return output(token=access, refresh_token=refresh, **extra)

    def _SignInWithEmail(self, request: Any, output: type[Message]) -> Message:
        return self._pair(output)

    def _CompleteMagicLink(self, request: Any, output: type[Message]) -> Message:
        return self._pair(output)

    def _CompleteOAuthSignIn(self, request: Any, output: type[Message]) -> Message:
        return self._pair(output)

    def _DemoSignIn(self, request: Any, output: type[Message]) -> Message:
        return self._pair(output, project_id="demo-project")

    def _RefreshSession(self, request: Any, output: type[Message]) -> Message:
        with self.lock:
            known = self.refresh_pairs.pop(request.refresh_token, None)
        if known is None:
            raise _AbortError(grpc.StatusCode.UNAUTHENTICATED, "refresh token revoked")
        return self._pair(output)

    def _SignOut(self, request: Any, output: type[Message]) -> Message:
        with self.lock:
            access = self.refresh_pairs.pop(request.refresh_token, None)
            self.valid_access.discard(access or "")
        return output()

    def profiles_list(
        self, request: profiles_pb2.ListRequest, context: grpc.ServicerContext
    ) -> Iterator[profiles_pb2.ListResponse]:
        path = "/shared.profiles.v1.ProfilesService/List"
        self._record(path, request, context)
        start = int(request.page_token or 0)
        sent = 0
        while True:
            if self.break_stream_after is not None and sent == self.break_stream_after:
                self.break_stream_after = None  # break once, then behave
                context.abort(grpc.StatusCode.UNAVAILABLE, "stream interrupted")
            end = start + self.profile_page_size
            more = end < len(self.profiles)
            yield profiles_pb2.ListResponse(
                profiles=self.profiles[start:end], next_page_token=str(end) if more else ""
            )
            sent += 1
            if not more:
                return
            start = end


class _AbortError(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def _servicer(module: ModuleType, service: str, state: ReadServer) -> Any:
    """A subclass of the generated ``<service>Servicer`` whose methods all route to ``state``."""
    base = getattr(module, f"{service}Servicer")
    descriptor = _service_descriptor(module, service)
    methods: dict[str, Any] = {}
    for method in descriptor.methods:
        path = f"/{descriptor.full_name}/{method.name}"
        if method.server_streaming:
            assert path == "/shared.profiles.v1.ProfilesService/List", path
            methods[method.name] = lambda self, request, context: state.profiles_list(
                request, context
            )
            continue
        output = message_factory.GetMessageClass(method.output_type)
        handle = state.unary(path, output)

        def call(
            self: Any,
            request: Message,
            context: grpc.ServicerContext,
            _handle: Callable[..., Message] = handle,
        ) -> Message:
            try:
                return _handle(request, context)
            except _AbortError as abort:
                context.abort_with_status(
                    rpc_status.to_status(rich_status(abort.code, str(abort), reason="TOKEN"))
                )
                raise  # unreachable: abort raises

        methods[method.name] = call
    return type(f"Test{service}Servicer", (base,), methods)()


def _service_descriptor(module: ModuleType, service: str) -> Any:
    pb2_name = module.__name__.removesuffix("_grpc")
    pb2 = __import__(pb2_name, fromlist=["DESCRIPTOR"])
    return pb2.DESCRIPTOR.services_by_name[service]


EPOCH_START = 1_800_000_000.0
"""Where the read servers' clock starts: epoch seconds (2027), unlike the monotonic default."""


@dataclass
class Running:
    state: ReadServer
    port: int
    clock: FakeClock

    def reset(self) -> Running:
        """Forget everything from earlier tests (the server is shared per module for speed)."""
        self.state.reset()
        self.clock.now = EPOCH_START
        return self

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def serve() -> Iterator[Running]:
    """Serve every shared/dashboard/public service on 127.0.0.1 port 0 for the block."""
    clock = FakeClock(EPOCH_START)
    state = ReadServer(now=clock)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    for module, service in SERVICES:
        add = getattr(module, f"add_{service}Servicer_to_server")
        add(_servicer(module, service, state), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield Running(state, port, clock)
    finally:
        server.stop(grace=None)


def sample_events(distinct_ids: Sequence[str], per_user: int) -> list[activity_pb2.ActivityEvent]:
    events = []
    for did in distinct_ids:
        for i in range(per_user):
            event = activity_pb2.ActivityEvent(
                event_id=f"{did}-e{i}", kind="page_view", distinct_id=did
            )
            event.custom_properties.update({"n": i, "path": f"/p/{i}"})
            events.append(event)
    return events


def sample_profiles(count: int) -> list[profiles_pb2.Profile]:
    profiles = []
    for i in range(count):
        profile = profiles_pb2.Profile(id=f"p{i}", external_id=f"user-{i}", project_id="proj-1")
        profile.properties.update({"plan": "pro" if i % 2 else "free", "seats": i})
        profiles.append(profile)
    return profiles


TOKEN_METHODS = frozenset(
    {"SignInWithEmail", "CompleteMagicLink", "CompleteOAuthSignIn", "DemoSignIn", "RefreshSession"}
)
assert set(auth_pb2.DESCRIPTOR.services_by_name["AuthService"].methods_by_name) >= TOKEN_METHODS
