"""PugError and its subclasses, decoded from real rich statuses sent by a loopback server.

The server-sent cases run over gRPC (rich status trailer) and over Connect (error JSON with
details): both must decode to the same fields.
"""

from __future__ import annotations

import grpc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pug_grpc import (
    PugAuthenticationError,
    PugConflictError,
    PugDeadlineExceededError,
    PugError,
    PugFailedPreconditionError,
    PugInvalidArgumentError,
    PugNotFoundError,
    PugPermissionError,
    PugRateLimitedError,
    PugUnavailableError,
)
from pug_grpc._credentials import CredentialsInterceptor
from pug_grpc._errors import error_from_rpc
from pug_grpc._retry import RetrySettings
from pug_grpc._rpc.reads import Reads
from pug_grpc._rpc.transport import StatusError
from pug_grpc._transport import intercept
from tests.rpc import clients
from tests.rpc.clients import KEY, transport_of
from tests.support.read_servers import RawStatus, Running, rich_status, serve

TRANSPORTS = ("grpc", "connect")
GRPC_ONLY = ("test_details_trailer_that_disagrees_with_the_code_is_still_read",)

GET = "/shared.profiles.v1.ProfilesService/Get"
DELETE = "/shared.profiles.v1.ProfilesService/Delete"


def reads(server: Running, **kwargs: object) -> Reads:
    kwargs.setdefault("timeout", 5.0)
    return clients.reads(server, **kwargs)


CASES = [
    (grpc.StatusCode.UNAUTHENTICATED, PugAuthenticationError),
    (grpc.StatusCode.PERMISSION_DENIED, PugPermissionError),
    (grpc.StatusCode.NOT_FOUND, PugNotFoundError),
    (grpc.StatusCode.INVALID_ARGUMENT, PugInvalidArgumentError),
    (grpc.StatusCode.OUT_OF_RANGE, PugInvalidArgumentError),
    (grpc.StatusCode.ALREADY_EXISTS, PugConflictError),
    (grpc.StatusCode.ABORTED, PugConflictError),
    (grpc.StatusCode.FAILED_PRECONDITION, PugFailedPreconditionError),
    (grpc.StatusCode.RESOURCE_EXHAUSTED, PugRateLimitedError),
    (grpc.StatusCode.UNAVAILABLE, PugUnavailableError),
    (grpc.StatusCode.DEADLINE_EXCEEDED, PugDeadlineExceededError),
    (grpc.StatusCode.INTERNAL, PugError),
]


@pytest.mark.parametrize(("code", "cls"), CASES, ids=[c.name for c, _ in CASES])
def test_each_code_maps_to_its_subclass_with_decoded_details(
    server: Running, code: grpc.StatusCode, cls: type[PugError]
) -> None:
    violations = [("id", "value is required"), ("project_id", "must be a UUID")]
    server.state.fail(
        GET,
        rich_status(
            code,
            "profile lookup failed",
            reason=f"PUG_{code.name}",
            request_id="req-42",
            trace_id="trace-7",
            violations=violations,
            retry_after=1.5,
        ),
    )
    with pytest.raises(cls) as caught:
        reads(server).profiles.get("p1")
    err = caught.value
    assert type(err) is cls
    assert err.code == code
    assert err.message == "profile lookup failed"
    assert err.reason == f"PUG_{code.name}"
    assert err.domain == "pug.sh"
    assert err.request_id == "req-42"
    assert err.trace_id == "trace-7"
    assert err.field_violations == tuple(violations)
    assert err.retry_after == 1.5
    assert not err.is_client_side
    assert isinstance(err.__cause__, grpc.RpcError)
    if transport_of(server) == "grpc":
        assert isinstance(err.__cause__, grpc.Call)
    else:
        assert isinstance(err.__cause__, StatusError)
    assert err.__cause__.code() == code
    text = str(err)
    assert "\n" not in text
    for part in (code.name, "profile lookup failed", f"PUG_{code.name}", "req-42"):
        assert part in text


def test_plain_status_without_details(server: Running) -> None:
    server.state.fail(GET, RawStatus(grpc.StatusCode.NOT_FOUND, "no such profile"))
    with pytest.raises(PugNotFoundError) as caught:
        reads(server).profiles.get("p1")
    err = caught.value
    assert (err.reason, err.request_id, err.field_violations) == ("", "", ())
    assert str(err) == "NOT_FOUND: no such profile"


def test_details_trailer_that_disagrees_with_the_code_is_still_read(server: Running) -> None:
    status = rich_status(grpc.StatusCode.INTERNAL, "other text", reason="X", request_id="r-1")
    trailer = (("grpc-status-details-bin", status.SerializeToString()),)
    server.state.fail(GET, RawStatus(grpc.StatusCode.NOT_FOUND, "not here", trailer))
    with pytest.raises(PugNotFoundError) as caught:
        reads(server).profiles.get("p1")
    assert (caught.value.message, caught.value.reason, caught.value.request_id) == (
        "not here",
        "X",
        "r-1",
    )


def test_a_real_deadline_is_a_deadline_error(server: Running) -> None:
    server.state.delays[GET] = 0.5
    with pytest.raises(PugDeadlineExceededError) as caught:
        reads(server).profiles.get("p1", timeout=0.05)
    assert isinstance(caught.value, PugUnavailableError)
    assert caught.value.code == grpc.StatusCode.DEADLINE_EXCEEDED


def test_unreachable_server_is_unavailable_and_says_so() -> None:
    with serve() as gone:
        target = gone.target
    channel = intercept(grpc.insecure_channel(target), CredentialsInterceptor(api_key=KEY))
    with pytest.raises(PugUnavailableError) as caught:
        Reads(channel, api_key=KEY, timeout=5.0).profiles.get("p1")
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE
    assert isinstance(caught.value.__cause__, grpc.RpcError)


def test_non_call_rpc_error_still_converts() -> None:
    err = error_from_rpc(grpc.RpcError("opaque"))
    assert type(err) is PugError
    assert err.code == grpc.StatusCode.UNKNOWN


def test_server_validation_violations_are_pairs(server: Running) -> None:
    server.state.fail(
        GET,
        rich_status(
            grpc.StatusCode.INVALID_ARGUMENT,
            "invalid request",
            reason="INVALID_ARGUMENT",
            violations=[("id", "value is required")],
        ),
    )
    with pytest.raises(PugInvalidArgumentError) as caught:
        reads(server).profiles.get("p1")
    assert caught.value.field_violations == (("id", "value is required"),)
    assert isinstance(caught.value, ValueError)
    assert "violations=id: value is required" in str(caught.value)


# -- retries ---------------------------------------------------------------------------------


class Sleeps:
    """An injected clock and sleep: waiting only moves the clock."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def _policy(attempts: int) -> RetrySettings:
    return RetrySettings(initial_backoff=0.0, max_backoff=0.0, max_attempts=attempts)


def test_no_retry_by_default(server: Running) -> None:
    server.state.fail(GET, rich_status(grpc.StatusCode.UNAVAILABLE, "busy"))
    with pytest.raises(PugUnavailableError):
        reads(server).profiles.get("p1")
    assert len(server.state.calls(GET)) == 1


def test_per_call_retry_policy_sees_pug_errors(server: Running) -> None:
    server.state.fail(GET, rich_status(grpc.StatusCode.UNAVAILABLE, "busy"), times=2)
    reply = reads(server).profiles.get("p1", retry=_policy(3))
    assert reply.profile.id == ""
    assert len(server.state.calls(GET)) == 3


def test_exhausted_retries_raise_the_last_pug_error(server: Running) -> None:
    server.state.fail(GET, rich_status(grpc.StatusCode.UNAVAILABLE, "busy"), times=5)
    with pytest.raises(PugUnavailableError) as caught:
        reads(server).profiles.get("p1", retry=_policy(2))
    assert isinstance(caught.value.__cause__, grpc.RpcError)
    assert len(server.state.calls(GET)) == 2


def test_permanent_errors_are_not_retried(server: Running) -> None:
    server.state.fail(GET, rich_status(grpc.StatusCode.NOT_FOUND, "gone"), times=3)
    with pytest.raises(PugNotFoundError):
        reads(server).profiles.get("p1", retry=_policy(3))
    assert len(server.state.calls(GET)) == 1


def test_retry_waits_follow_the_settings_on_the_injected_clock(server: Running) -> None:
    sleeps = Sleeps()
    client = reads(server)
    ctx = client.profiles._ctx.replace(clock=sleeps.clock, sleep=sleeps.sleep)
    from pug_grpc._rpc.profiles import Profiles

    profiles = Profiles(ctx)
    server.state.fail(GET, rich_status(grpc.StatusCode.UNAVAILABLE, "busy"), times=50)
    settings = RetrySettings(initial_backoff=1.0, max_backoff=2.0, max_elapsed=2.5)
    with pytest.raises(PugUnavailableError):
        profiles.get("p1", retry=settings)
    # Full jitter under caps 1, 2, 2...: the 2.5 s budget ends it; no wait passes the budget.
    assert sleeps.waits
    assert sum(sleeps.waits) <= 2.5
    assert all(0.0 <= wait <= 2.0 for wait in sleeps.waits)
    assert len(server.state.calls(GET)) == len(sleeps.waits) + 1


def test_a_tenacity_policy_is_refused_with_a_clear_message(server: Running) -> None:
    with pytest.raises(TypeError, match="RetrySettings"):
        reads(server).profiles.get("p1", retry=object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="RetrySettings"):
        reads(server, retry=object())
    assert server.state.calls() == []


def test_client_default_retry_covers_reads_only(server: Running) -> None:
    client = reads(server, retry=_policy(3))
    server.state.fail(GET, rich_status(grpc.StatusCode.UNAVAILABLE, "busy"))
    client.profiles.get("p1")
    assert len(server.state.calls(GET)) == 2
    server.state.fail(DELETE, rich_status(grpc.StatusCode.UNAVAILABLE, "busy"))
    with pytest.raises(PugUnavailableError):
        client.profiles.delete("p1")
    assert len(server.state.calls(DELETE)) == 1
    server.state.fail(DELETE, rich_status(grpc.StatusCode.UNAVAILABLE, "busy"))
    client.profiles.delete("p1", retry=_policy(2))
    assert len(server.state.calls(DELETE)) == 3


def test_retry_none_per_call_disables_the_client_default(server: Running) -> None:
    server.state.fail(GET, rich_status(grpc.StatusCode.UNAVAILABLE, "busy"))
    with pytest.raises(PugUnavailableError):
        reads(server, retry=_policy(3)).profiles.get("p1", retry=None)
    assert len(server.state.calls(GET)) == 1


# -- str() -----------------------------------------------------------------------------------


@given(
    message=st.text(max_size=200),
    reason=st.text(max_size=40),
    request_id=st.text(max_size=40),
    violations=st.lists(st.tuples(st.text(max_size=20), st.text(max_size=40)), max_size=6),
    code=st.sampled_from(list(grpc.StatusCode)),
)
def test_str_is_always_one_line_with_the_code(
    message: str,
    reason: str,
    request_id: str,
    violations: list[tuple[str, str]],
    code: grpc.StatusCode,
) -> None:
    text = str(
        PugError(
            message, code=code, reason=reason, request_id=request_id, field_violations=violations
        )
    )
    assert len(text.splitlines()) == 1
    assert text.startswith(code.name + ": ")


def test_client_side_errors_are_marked() -> None:
    err = PugInvalidArgumentError.client_side("bad", reason="CLIENT_ARGUMENT")
    assert err.is_client_side
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert str(err) == "INVALID_ARGUMENT: bad (reason=CLIENT_ARGUMENT)"
    assert "PugInvalidArgumentError(code=INVALID_ARGUMENT" in repr(err)
