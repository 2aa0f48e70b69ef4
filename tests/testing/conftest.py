"""Fixtures of the local-server tests.

``pug_server``, ``pug`` and ``pug_admin`` come from the installed pytest plugin (the
``pytest11`` entry point of pug-grpc), as they do for users; these build on them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

import grpc
import pytest
from pug_grpc.gen.common.v1 import time_pb2
from pug_grpc.gen.sdk.events.v1 import events_pb2, events_pb2_grpc
from pug_grpc.gen.sdk.profiles.v1 import profiles_pb2 as sdk_profiles_pb2
from pug_grpc.gen.sdk.profiles.v1 import profiles_pb2_grpc as sdk_profiles_pb2_grpc

from pug_grpc.testing import LocalServer
from tests.support.clock import FakeClock
from tests.support.server import event, key_md

Send = Callable[..., events_pb2.BatchCreateResponse]


@pytest.fixture
def clock() -> FakeClock:
    """Epoch seconds that move only when the test says so."""
    return FakeClock(start=1_700_000_000.0)


@pytest.fixture
def channel(pug_server: LocalServer) -> Iterator[grpc.Channel]:
    """A plaintext channel to ``pug_server``."""
    with pug_server.channel() as opened:
        yield opened


@pytest.fixture
def events_stub(channel: grpc.Channel) -> events_pb2_grpc.EventsServiceStub:
    return events_pb2_grpc.EventsServiceStub(channel)


@pytest.fixture
def identify_stub(channel: grpc.Channel) -> sdk_profiles_pb2_grpc.ProfilesSDKServiceStub:
    return sdk_profiles_pb2_grpc.ProfilesSDKServiceStub(channel)


@pytest.fixture
def send(pug_server: LocalServer, events_stub: events_pb2_grpc.EventsServiceStub) -> Send:
    """``send(*events, headers=[...])``: one BatchCreate with the public key (and headers)."""

    def call(
        *events: events_pb2.Event, headers: list[tuple[str, str]] | None = None
    ) -> events_pb2.BatchCreateResponse:
        request = events_pb2.BatchCreateRequest(events=list(events))
        metadata = key_md(pug_server, private=False) + (headers or [])
        return events_stub.BatchCreate(request, metadata=metadata, timeout=10)

    return call


T0 = dt.datetime(2024, 3, 4, 10, 0, tzinfo=dt.UTC)  # a Monday
"""The first event of :func:`seeded_server`'s data set; its clock reads three days later."""


def seed(server: LocalServer) -> None:
    """30 users with 6 events each over three days (2 a day, one kind a day) and traits."""
    with server.channel() as channel:
        batch: list[events_pb2.Event] = []
        for user in range(30):
            for hour in range(0, 72, 12):
                kind = ("page_view", "signup", "purchase")[hour // 24]
                batch.append(
                    event(
                        f"user-{user}",
                        kind,
                        when=T0 + dt.timedelta(hours=hour, minutes=user),
                        session_id=f"00000000-0000-4000-8000-{user:012d}",
                        custom={"amount": float(user), "plan": "pro" if user % 3 else "free"},
                        auto={"$browser": "Firefox"},
                    )
                )
        md = [*key_md(server, private=False), ("cf-ipcountry", "NO")]
        events_pb2_grpc.EventsServiceStub(channel).BatchCreate(
            events_pb2.BatchCreateRequest(events=batch), metadata=md, timeout=30
        )
        identify = sdk_profiles_pb2_grpc.ProfilesSDKServiceStub(channel)
        for user in range(30):
            request = sdk_profiles_pb2.IdentifyRequest(external_id=f"user-{user}")
            request.traits.update({"tier": "gold" if user < 10 else "silver", "age": user})
            identify.Identify(request, metadata=md, timeout=10)


@pytest.fixture(scope="module")
def seeded_server() -> Iterator[LocalServer]:
    """One server per module holding the :func:`seed` data set; tests only read it."""
    clock = FakeClock(start=(T0 + dt.timedelta(days=3)).timestamp())
    with LocalServer(clock=clock) as running:
        seed(running)
        yield running


@pytest.fixture
def seeded_channel(seeded_server: LocalServer) -> Iterator[grpc.Channel]:
    with seeded_server.channel() as opened:
        yield opened


def time_range(start: dt.datetime, end: dt.datetime) -> time_pb2.TimeRange:
    """A ``common.v1.TimeRange`` from ``start`` to ``end``."""
    result = time_pb2.TimeRange()
    getattr(result, "from").FromDatetime(start)
    result.to.FromDatetime(end)
    return result
