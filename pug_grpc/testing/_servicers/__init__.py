"""The servicers of the local Pug server, one module per service family.

Credentials, validation, fault injection and error details are applied by the call path
(:mod:`pug_grpc.testing._call_path`); these classes only implement what each method does.
"""

from __future__ import annotations

import grpc

from pug_grpc.gen.public.auth.v1 import auth_pb2, auth_pb2_grpc
from pug_grpc.gen.sdk.events.v1 import events_pb2, events_pb2_grpc
from pug_grpc.gen.sdk.profiles.v1 import profiles_pb2 as sdk_profiles_pb2
from pug_grpc.gen.sdk.profiles.v1 import profiles_pb2_grpc as sdk_profiles_pb2_grpc
from pug_grpc.gen.shared.activity.v1 import activity_pb2, activity_pb2_grpc
from pug_grpc.gen.shared.insights.v1 import insights_pb2, insights_pb2_grpc
from pug_grpc.gen.shared.profiles.v1 import profiles_pb2, profiles_pb2_grpc
from pug_grpc.testing._servicers.activity import ActivityServicer
from pug_grpc.testing._servicers.auth import AuthServicer
from pug_grpc.testing._servicers.ingestion import EventsServicer, ProfilesSDKServicer
from pug_grpc.testing._servicers.insights import InsightsServicer
from pug_grpc.testing._servicers.profiles import ProfilesServicer
from pug_grpc.testing._servicers.state import ServerState

__all__ = ["ServerState", "add_all", "served_methods"]

_SERVED_SERVICES = (
    events_pb2.DESCRIPTOR.services_by_name["EventsService"],
    sdk_profiles_pb2.DESCRIPTOR.services_by_name["ProfilesSDKService"],
    profiles_pb2.DESCRIPTOR.services_by_name["ProfilesService"],
    activity_pb2.DESCRIPTOR.services_by_name["ActivityService"],
    insights_pb2.DESCRIPTOR.services_by_name["InsightsService"],
    auth_pb2.DESCRIPTOR.services_by_name["AuthService"],
)


def add_all(state: ServerState, server: grpc.Server) -> None:
    """Register every servicer of the local server on ``server``."""
    events_pb2_grpc.add_EventsServiceServicer_to_server(EventsServicer(state), server)
    sdk_profiles_pb2_grpc.add_ProfilesSDKServiceServicer_to_server(
        ProfilesSDKServicer(state), server
    )
    profiles_pb2_grpc.add_ProfilesServiceServicer_to_server(ProfilesServicer(state), server)
    activity_pb2_grpc.add_ActivityServiceServicer_to_server(ActivityServicer(state), server)
    insights_pb2_grpc.add_InsightsServiceServicer_to_server(InsightsServicer(state), server)
    auth_pb2_grpc.add_AuthServiceServicer_to_server(AuthServicer(state), server)


def served_methods() -> list[str]:
    """Full paths of every method the local server answers."""
    return [f"/{s.full_name}/{m.name}" for s in _SERVED_SERVICES for m in s.methods]
