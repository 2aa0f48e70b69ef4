"""The real server's channel rules: gzip only, a receive limit for the largest page, keepalive.

The page tests run over gRPC and Connect: a feed page over gRPC's default 4 MiB arrives whole,
and a reply over a deliberately small limit fails as "message too large", never as rate
limiting, and is not retried.
"""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pug_grpc.gen.shared.activity.v1 import activity_pb2

from pug_grpc import PugRateLimitedError
from pug_grpc._credentials import CredentialHeaders, CredentialsInterceptor
from pug_grpc._errors import PugMessageTooLargeError
from pug_grpc._retry import RetrySettings
from pug_grpc._rpc.activity import Activity
from pug_grpc._rpc.connect import ConnectTransport
from pug_grpc._rpc.reads import Reads
from pug_grpc._transport import (
    KEEPALIVE_OPTIONS,
    RECEIVE_LIMIT,
    _channel_options,
    check_compression,
    intercept,
    open_channel,
)
from tests.rpc.clients import KEY, reads, transport_of
from tests.support.read_servers import Running

TRANSPORTS = ("grpc", "connect")
FEED = "/shared.activity.v1.ActivityService/GetActivityFeed"
FOUR_MIB = 4 * 1024 * 1024


# -- compression -----------------------------------------------------------------------------


@pytest.mark.parametrize("ok", [None, grpc.Compression.NoCompression, grpc.Compression.Gzip])
def test_gzip_or_nothing_is_accepted(ok: grpc.Compression | None) -> None:
    assert check_compression(ok) is ok


def test_deflate_is_refused_at_construction_with_the_reason() -> None:
    with pytest.raises(ValueError, match="gzip") as caught:
        check_compression(grpc.Compression.Deflate)
    assert "Deflate" in str(caught.value)
    assert "UNIMPLEMENTED" in str(caught.value)
    with pytest.raises(ValueError, match="gzip"):
        open_channel("http://127.0.0.1:1", compression=grpc.Compression.Deflate)
    with pytest.raises(ValueError, match="gzip"):
        ConnectTransport("http://127.0.0.1:1", compression=grpc.Compression.Deflate)


@given(st.one_of(st.text(max_size=10), st.integers(), st.none(), st.sampled_from(grpc.Compression)))
def test_compression_check_accepts_exactly_gzip_and_none(value: object) -> None:
    allowed = value is None or (
        isinstance(value, grpc.Compression)
        and value in (grpc.Compression.NoCompression, grpc.Compression.Gzip)
    )
    if allowed:
        assert check_compression(value) is value
    else:
        with pytest.raises(ValueError, match="gzip"):
            check_compression(value)


# -- channel options -------------------------------------------------------------------------


def test_channel_defaults_hold_the_largest_page_and_keep_idle_channels_healthy() -> None:
    options = dict(_channel_options(()))
    assert options["grpc.max_receive_message_length"] == RECEIVE_LIMIT
    # A full page of the largest events the server accepts fits; int32 is gRPC's ceiling.
    assert 1_000 * 1024 * 1024 < RECEIVE_LIMIT < 2**31
    for key, value in KEEPALIVE_OPTIONS:
        assert options[key] == value
    assert options["grpc.keepalive_permit_without_calls"] == 0
    assert options["grpc.keepalive_time_ms"] >= 300_000  # what gRPC servers accept by default
    assert options["grpc.enable_retries"] == 0


def test_caller_options_override_the_defaults() -> None:
    options = dict(
        _channel_options(
            [("grpc.max_receive_message_length", 1234), ("grpc.keepalive_time_ms", 600_000)]
        )
    )
    assert options["grpc.max_receive_message_length"] == 1234
    assert options["grpc.keepalive_time_ms"] == 600_000


# -- pages and limits, on both transports ----------------------------------------------------


def big_page(events: int, payload: int) -> activity_pb2.GetActivityFeedResponse:
    page = activity_pb2.GetActivityFeedResponse()
    for i in range(events):
        event = page.events.add(event_id=f"e{i}", kind="page_view", distinct_id="u1")
        event.custom_properties["blob"] = "x" * payload
    return page


def test_a_full_feed_page_over_four_mib_arrives(server: Running) -> None:
    page = big_page(1_000, 5_000)
    assert page.ByteSize() > FOUR_MIB
    server.state.canned[FEED] = page
    got = reads(server, timeout=30.0).activity.feed_page("u1", page_size=1_000)
    assert len(got.events) == 1_000
    assert got.events[999].custom_properties["blob"] == "x" * 5_000


def small_limit_activity(server: Running, limit: int, waits: list[float]) -> Activity:
    if transport_of(server) == "connect":
        transport: Any = ConnectTransport(
            server.endpoint, credentials=CredentialHeaders(api_key=KEY), receive_limit=limit
        )
        made = Reads(transport, api_key=KEY, timeout=10.0)
    else:
        channel = open_channel(
            server.endpoint, channel_options=[("grpc.max_receive_message_length", limit)]
        )
        authed = intercept(channel, CredentialsInterceptor(api_key=KEY))
        made = Reads(authed, api_key=KEY, timeout=10.0)
    return Activity(made.activity._ctx.replace(sleep=waits.append))


def test_a_reply_over_the_local_limit_is_too_large_not_rate_limited(server: Running) -> None:
    server.state.canned[FEED] = big_page(50, 1_000)
    waits: list[float] = []
    activity = small_limit_activity(server, 10_000, waits)
    retry = RetrySettings(initial_backoff=0.0, max_backoff=0.0, max_attempts=4)
    with pytest.raises(PugMessageTooLargeError) as caught:
        activity.feed_page("u1", retry=retry)
    error = caught.value
    assert not isinstance(error, PugRateLimitedError)
    assert error.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error.reason == "MESSAGE_TOO_LARGE"
    assert error.is_client_side
    assert "page_size" in str(error)
    assert waits == []  # the same reply fails the same way: not retried
    assert len(server.state.calls(FEED)) == 1
