"""AsyncPug's reads against a real grpc.aio channel: pages, streams, options and every error.

Over gRPC and Connect alike (Connect runs its blocking runtime in worker threads).
"""

from __future__ import annotations

import asyncio
import contextlib

import grpc
import pytest

from pug_grpc import (
    AsyncPageStream,
    AsyncPug,
    PugDeadlineExceededError,
    PugError,
    PugInvalidArgumentError,
    PugPublicKeyError,
    PugUnavailableError,
)
from pug_grpc._retry import RetrySettings
from pug_grpc._rpc.transport import StatusError
from tests.aio.clients import apug
from tests.rpc.clients import transport_of
from tests.rpc.test_errors import CASES
from tests.support.read_servers import Running, rich_status, sample_events, sample_profiles

TRANSPORTS = ("grpc", "connect")
# A grpc.aio channel belongs to one loop; the threaded Connect transport has none.
GRPC_ONLY = ("test_a_client_serves_the_event_loop_that_opened_its_channel",)

GET = "/shared.profiles.v1.ProfilesService/Get"
LIST = "/shared.profiles.v1.ProfilesService/List"
FEED = "/shared.activity.v1.ActivityService/GetActivityFeed"
SEGMENT = "/shared.insights.v1.InsightsService/SegmentUsers"
FAST = RetrySettings(initial_backoff=0.0, max_backoff=0.0, max_elapsed=10.0)


async def test_streamed_list_yields_every_profile_across_pages(server: Running) -> None:
    server.state.profiles = sample_profiles(7)  # pages of 2: four messages on one stream
    async with apug(server) as client:
        ids = [profile.id async for profile in client.profiles.list()]
    assert ids == [f"p{i}" for i in range(7)]
    assert len(server.state.calls(LIST)) == 1


async def test_list_pages_is_an_async_page_stream(server: Running) -> None:
    server.state.profiles = sample_profiles(5)
    async with apug(server) as client:
        pages = client.profiles.list_pages(page_token="2")
        assert isinstance(pages, AsyncPageStream)
        tokens = [page.next_page_token async for page in pages]
    assert tokens == ["4", ""]
    assert server.state.calls(LIST)[0].request.page_token == "2"


async def test_broken_stream_resumes_from_the_last_page_under_retry(server: Running) -> None:
    server.state.profiles = sample_profiles(6)
    server.state.break_stream_after = 2
    async with apug(server, read_retry=FAST) as client:
        ids = [profile.id async for profile in client.profiles.list()]
    assert ids == [f"p{i}" for i in range(6)]
    assert [c.request.page_token for c in server.state.calls(LIST)] == ["", "4"]


async def test_broken_stream_without_retry_raises_after_the_pages_it_got(server: Running) -> None:
    server.state.profiles = sample_profiles(6)
    server.state.break_stream_after = 1
    got: list[str] = []

    async def collect(client: AsyncPug) -> None:
        async for profile in client.profiles.list():
            got.append(profile.id)

    async with apug(server) as client:
        with pytest.raises(PugUnavailableError):
            await collect(client)
    assert got == ["p0", "p1"]


async def test_stopping_a_listing_early_cancels_the_stream(server: Running) -> None:
    server.state.profiles = sample_profiles(40)
    async with apug(server) as client:
        async with contextlib.aclosing(client.profiles.list()) as profiles:
            async for profile in profiles:
                if profile.id == "p2":
                    break
        after = await client.profiles.get("p1")  # the channel is still fine
    assert after is not None


async def test_paged_reads_follow_page_tokens(server: Running) -> None:
    server.state.events = sample_events(["u1", "u2"], 7)
    server.state.segment = [f"d{i}" for i in range(5)]
    async with apug(server) as client:
        feed = [event.event_id async for event in client.activity.feed("u1")]
        explorer = [e.event_id async for e in client.activity.event_explorer(page_size=4)]
        segment = [d async for d in client.insights.segment_users(time_range=(_day(1), _day(2)))]
        page = await client.activity.feed_page("u1", page_size=2)
    assert feed == [f"u1-e{i}" for i in range(7)]
    assert [c.request.page_token for c in server.state.calls(FEED)][:3] == ["", "3", "6"]
    assert len(explorer) == 14
    assert segment == [f"d{i}" for i in range(5)]
    assert len(server.state.calls(SEGMENT)) == 3
    assert (len(page.events), page.next_page_token) == (2, "2")


def _day(n: int) -> object:
    from datetime import UTC, datetime

    return datetime(2026, 1, n, tzinfo=UTC)


async def test_a_repeated_page_token_stops_the_listing(server: Running) -> None:
    from pug_grpc.gen.shared.activity.v1 import activity_pb2

    server.state.canned[FEED] = activity_pb2.GetActivityFeedResponse(next_page_token="same")
    async with apug(server) as client:
        with pytest.raises(PugError) as caught:
            _ = [event async for event in client.activity.feed("u1")]
    assert caught.value.reason == "PAGE_TOKEN_REPEATED"
    assert len(server.state.calls(FEED)) == 2


async def test_per_call_timeout_and_retry(server: Running) -> None:
    unavailable = rich_status(grpc.StatusCode.UNAVAILABLE, "blip", reason="BLIP")
    server.state.fail(GET, unavailable, times=2)
    async with apug(server, read_retry=None) as client:
        await client.profiles.get("p1", retry=FAST)  # per-call retries get through
        server.state.fail(GET, unavailable)
        with pytest.raises(PugUnavailableError):
            await client.profiles.get("p1")  # the client's default: no retries
        await client.profiles.get("p1", timeout=1.25)
    remaining = [c.time_remaining for c in server.state.calls(GET)]
    assert len(remaining) == 5
    # The server sees each call's deadline (with gRPC's rounding): 1.25 s given, else 5 s.
    assert remaining[-1] is not None
    assert 0 < remaining[-1] < 2.0
    assert remaining[0] is not None
    assert 2.0 < remaining[0] < 6.0


async def test_a_stream_deadline_bounds_each_page(server: Running) -> None:
    server.state.profiles = sample_profiles(4)
    server.state.delays[LIST] = 0.5
    async with apug(server) as client:
        with pytest.raises(PugDeadlineExceededError):
            _ = [p async for p in client.profiles.list(timeout=0.05)]


# The status codes and the classes they decode to: the synchronous tests' table, shared.


@pytest.mark.parametrize(("code", "cls"), CASES, ids=[c.name for c, _ in CASES])
async def test_each_code_maps_to_its_subclass_with_decoded_details(
    server: Running, code: grpc.StatusCode, cls: type[PugError]
) -> None:
    violations = [("id", "value is required"), ("project_id", "must be a UUID")]
    status = rich_status(
        code,
        "profile lookup failed",
        reason=f"PUG_{code.name}",
        request_id="req-42",
        trace_id="trace-7",
        violations=violations,
        retry_after=1.5,
    )
    server.state.fail(GET, status)
    async with apug(server) as client:
        with pytest.raises(cls) as caught:
            await client.profiles.get("p1")
    err = caught.value
    assert type(err) is cls
    assert (err.code, err.message, err.reason, err.domain) == (
        code,
        "profile lookup failed",
        f"PUG_{code.name}",
        "pug.sh",
    )
    assert (err.request_id, err.trace_id, err.retry_after) == ("req-42", "trace-7", 1.5)
    assert err.field_violations == tuple(violations)
    expected_cause = grpc.aio.AioRpcError if transport_of(server) == "grpc" else StatusError
    assert isinstance(err.__cause__, expected_cause)


async def test_refusals_before_the_network(server: Running) -> None:
    async with apug(server, key="pub_test_0123456789abcdef") as public:
        with pytest.raises(PugPublicKeyError):
            await public.profiles.get("p1")
        with pytest.raises(PugPublicKeyError):
            public.activity.feed("u1")  # an iterator refuses at the call, as Pug's does
    async with apug(server) as client:
        with pytest.raises(PugInvalidArgumentError) as caught:
            await client.profiles.get("p1", project_id="other")
        assert caught.value.reason == "PROJECT_ID_WITH_API_KEY"
        with pytest.raises(PugInvalidArgumentError):
            await client.profiles.get("")
    with pytest.raises(PugError) as closed:
        await client.profiles.get("p1")
    assert closed.value.reason == "CLIENT_CLOSED"
    assert server.state.calls(GET) == []


async def test_an_unreachable_endpoint_names_its_cause() -> None:
    async with AsyncPug("prv_test_0123456789abcdef", "http://127.0.0.1:9", send=False) as client:
        with pytest.raises(PugUnavailableError) as caught:
            await client.profiles.get("p1", timeout=5.0)
    assert caught.value.reason == "CONNECTION_REFUSED"


def test_a_client_serves_the_event_loop_that_opened_its_channel(server: Running) -> None:
    client = apug(server)

    async def first() -> None:
        await client.profiles.get("p1")

    async def second() -> None:
        with pytest.raises(PugError) as caught:
            await client.profiles.get("p1")
        assert caught.value.reason == "OTHER_EVENT_LOOP"

    asyncio.run(first())
    asyncio.run(second())
    assert len(server.state.calls(GET)) == 1
