"""Key checks, masking, and the credentials interceptor against a real loopback server."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pug_grpc.gen.sdk.events.v1 import events_pb2, events_pb2_grpc

from pug_grpc._credentials import CredentialsInterceptor, check_api_key, mask
from pug_grpc._transport import intercept, open_channel
from tests.support.loopback import serve

KEY = "prv_0123456789abcdefWXYZ"


def test_mask_shows_only_last_four() -> None:
    assert mask(KEY) == "****WXYZ"
    assert mask(None) == "<none>"
    assert mask("") == "<none>"
    assert mask("pub_1234") == "****"  # too short to reveal any of it


@given(st.text())
def test_mask_never_reveals_more_than_four_characters(secret: str) -> None:
    out = mask(secret)
    assert out in ("<none>", "****") or (out == "****" + secret[-4:] and len(secret) >= 9)


@pytest.mark.parametrize("key", ["pub_abc", "prv_" + "x" * 40, KEY])
def test_check_api_key_accepts_pug_keys(key: str) -> None:
    assert check_api_key(key) == key


@pytest.mark.parametrize(
    "key", ["", "abc", "pub_", "prv_", "Bearer prv_abc", "prv_abc def", "prv_abc\n", "prv_é123456"]
)
def test_check_api_key_refuses_bad_keys(key: str) -> None:
    with pytest.raises(ValueError, match="API key"):
        check_api_key(key)


def test_check_api_key_refuses_non_strings() -> None:
    with pytest.raises(ValueError, match="string"):
        check_api_key(123)  # type: ignore[arg-type]


@given(st.text(min_size=5))
def test_check_api_key_message_never_contains_the_key(key: str) -> None:
    message = ""
    try:
        check_api_key(key)
    except ValueError as exc:
        message = str(exc)
    assert key not in message


def test_interceptor_repr_masks_the_key() -> None:
    ic = CredentialsInterceptor(api_key=KEY, access_token=lambda: "jwt-secret", project_id="p1")
    text = repr(ic)
    assert KEY not in text
    assert "jwt-secret" not in text
    assert "****WXYZ" in text


def test_interceptor_checks_the_key() -> None:
    with pytest.raises(ValueError, match="pub_"):
        CredentialsInterceptor(api_key="nope")


def _send(channel: grpc.Channel, metadata: tuple[tuple[str, str], ...] = ()) -> None:
    stub = events_pb2_grpc.EventsServiceStub(channel)
    stub.BatchCreate(events_pb2.BatchCreateRequest(), timeout=5, metadata=metadata)


def test_api_key_and_project_headers_reach_the_server() -> None:
    with serve() as lb:
        channel = intercept(
            open_channel(lb.endpoint), CredentialsInterceptor(api_key=KEY, project_id="proj-1")
        )
        with channel:
            _send(channel)
        md = lb.recorder.calls[0].metadata
    assert md["x-api-key"] == KEY
    assert md["x-project-id"] == "proj-1"
    assert "authorization" not in md


def test_bearer_token_is_fetched_per_call() -> None:
    tokens = iter(["tok-1", "tok-2", None])
    with serve() as lb:
        channel = intercept(
            open_channel(lb.endpoint), CredentialsInterceptor(access_token=lambda: next(tokens))
        )
        with channel:
            _send(channel)
            _send(channel)
            _send(channel)
        calls = lb.recorder.calls
    assert calls[0].metadata["authorization"] == "Bearer tok-1"
    assert calls[1].metadata["authorization"] == "Bearer tok-2"
    assert "authorization" not in calls[2].metadata  # no token now: no header
    assert "x-api-key" not in calls[0].metadata
    assert "x-project-id" not in calls[0].metadata


def test_per_call_project_id_overrides_the_configured_one() -> None:
    with serve() as lb:
        channel = intercept(
            open_channel(lb.endpoint), CredentialsInterceptor(api_key=KEY, project_id="default")
        )
        with channel:
            _send(channel, metadata=(("x-project-id", "other"),))
            _send(channel)
        calls = lb.recorder.calls
    assert calls[0].metadata["x-project-id"] == "other"
    assert calls[1].metadata["x-project-id"] == "default"
    assert calls[0].metadata["x-api-key"] == KEY


def test_every_call_shape_carries_the_headers() -> None:
    """Unary-stream, stream-unary and stream-stream calls go through the interceptor too."""
    seen: list[dict[str, str]] = []

    def record(context: grpc.ServicerContext) -> None:
        seen.append({k: v for k, v in context.invocation_metadata() if isinstance(v, str)})

    def unary_stream(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        record(context)
        yield request

    def stream_unary(requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
        record(context)
        return b"".join(requests)

    def stream_stream(requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        record(context)
        yield from requests

    handler = grpc.method_handlers_generic_handler(
        "t.T",
        {
            "US": grpc.unary_stream_rpc_method_handler(unary_stream),
            "SU": grpc.stream_unary_rpc_method_handler(stream_unary),
            "SS": grpc.stream_stream_rpc_method_handler(stream_stream),
        },
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        ic = CredentialsInterceptor(api_key=KEY, project_id="p")
        with intercept(open_channel(f"127.0.0.1:{port}"), ic) as channel:
            assert list(channel.unary_stream("/t.T/US")(b"a", timeout=5)) == [b"a"]
            assert channel.stream_unary("/t.T/SU")(iter([b"a", b"b"]), timeout=5) == b"ab"
            assert list(channel.stream_stream("/t.T/SS")(iter([b"c"]), timeout=5)) == [b"c"]
    finally:
        server.stop(grace=None)
    assert len(seen) == 3
    for md in seen:
        assert md["x-api-key"] == KEY
        assert md["x-project-id"] == "p"
