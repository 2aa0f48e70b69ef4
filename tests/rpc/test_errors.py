"""PugError and its subclasses, decoded from real rich statuses sent by a loopback server."""

from __future__ import annotations

import grpc
import pytest
import tenacity
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
from pug_grpc._rpc.reads import Reads
from pug_grpc._transport import intercept
from tests.support.read_servers import RawStatus, Running, rich_status, serve

GET = "/shared.profiles.v1.ProfilesService/Get"
DELETE = "/shared.profiles.v1.ProfilesService/Delete"
KEY = "prv_test_0123456789abcdef"


def reads(server: Running, **kwargs: object) -> Reads:
    channel = intercept(grpc.insecure_channel(server.target), CredentialsInterceptor(api_key=KEY))
    return Reads(channel, api_key=KEY, timeout=5.0, **kwargs)  # type: ignore[arg-type]


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
    assert isinstance(err.__cause__, grpc.Call)
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


def test_unreachable_server_is_unavailable() -> None:
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


def _policy(attempts: int, *, reraise: bool = True) -> tenacity.Retrying:
    return tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(PugUnavailableError),
        stop=tenacity.stop_after_attempt(attempts),
        wait=tenacity.wait_none(),
        reraise=reraise,
    )


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


def test_exhausted_policy_without_reraise_still_raises_pug_error(server: Running) -> None:
    server.state.fail(GET, rich_status(grpc.StatusCode.UNAVAILABLE, "busy"), times=5)
    with pytest.raises(PugUnavailableError) as caught:
        reads(server).profiles.get("p1", retry=_policy(2, reraise=False))
    assert isinstance(caught.value.__cause__, grpc.RpcError)
    assert len(server.state.calls(GET)) == 2


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
