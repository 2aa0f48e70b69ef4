"""The pytest plugin as users enable it, run in a nested pytest session."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.timeout(120)


def test_plugin_fixture_gives_a_running_server(pytester: pytest.Pytester) -> None:
    pytester.makeconftest('pytest_plugins = ["pug_grpc.testing.pytest_plugin"]\n')
    pytester.makepyfile(
        """
        import uuid

        from pug_grpc.gen.sdk.events.v1 import events_pb2, events_pb2_grpc
        from pug_grpc.testing import ServerConfig
        import pytest


        @pytest.fixture
        def pug_server_config():
            return ServerConfig(project_id="proj_custom")


        def test_track_reaches_the_server(pug_server):
            assert pug_server.project_id == "proj_custom"
            event = events_pb2.Event(
                event_id=str(uuid.uuid4()), kind="signup", distinct_id="u",
                session_id=str(uuid.uuid4()),
            )
            event.occur_time.GetCurrentTime()
            with pug_server.channel() as channel:
                reply = events_pb2_grpc.EventsServiceStub(channel).BatchCreate(
                    events_pb2.BatchCreateRequest(events=[event]),
                    metadata=[("x-api-key", pug_server.public_key)],
                )
            assert reply.accepted == 1
            assert pug_server.events[0].kind == "signup"


        def test_each_test_gets_a_fresh_server(pug_server):
            assert pug_server.events == []
        """
    )
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
