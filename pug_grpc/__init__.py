"""pug-grpc: the Python client for the Pug product-analytics API over native gRPC.

Generated message modules and stubs live under :mod:`pug_grpc.gen`, mirroring the proto
paths (``pug_grpc.gen.sdk.events.v1.events_pb2``).
"""

# gRPC reads GRPC_ENABLE_FORK_SUPPORT once, when it is first imported: it must be set first.
from pug_grpc._ingest.fork_support import enable_grpc_fork_support

enable_grpc_fork_support()

# ruff: noqa: E402 - every import below comes after the fork-support default
from pug_grpc._async_pug import AsyncPug
from pug_grpc._diagnosis import Cause as ConnectionCause
from pug_grpc._errors import (
    PugAuthenticationError,
    PugConflictError,
    PugConnectionError,
    PugDeadlineExceededError,
    PugError,
    PugFailedPreconditionError,
    PugInvalidArgumentError,
    PugMessageTooLargeError,
    PugNotFoundError,
    PugPermissionError,
    PugPublicKeyError,
    PugRateLimitedError,
    PugUnavailableError,
)
from pug_grpc._ingest.batches import Record
from pug_grpc._ingest.context import RequestContext
from pug_grpc._ingest.hooks import BeforeSend, TrackedEvent
from pug_grpc._ingest.messages import new_anonymous_id
from pug_grpc._ingest.outcomes import FlushResult, PugDeliveryError, Stats
from pug_grpc._ingest.reports import Reporter
from pug_grpc._ingest.settings import BatchSettings
from pug_grpc._ingest.sqlite_storage import SqliteStorage
from pug_grpc._ingest.storage import MemoryStorage, Storage, StorageError
from pug_grpc._pug import Pug
from pug_grpc._retry import RetrySettings
from pug_grpc._rpc.activity import Activity
from pug_grpc._rpc.admin import PugAdmin
from pug_grpc._rpc.aio import (
    AsyncActivity,
    AsyncCustomers,
    AsyncDashboards,
    AsyncEmailProviders,
    AsyncInsights,
    AsyncOrgs,
    AsyncPageStream,
    AsyncProfiles,
    AsyncProjects,
    AsyncSharedDashboards,
)
from pug_grpc._rpc.aio_admin import AsyncPugAdmin
from pug_grpc._rpc.aio_session import AsyncSession
from pug_grpc._rpc.call import USE_CLIENT_DEFAULT, CallOptions, PageStream, UseClientDefault
from pug_grpc._rpc.convert import TimeRangeLike, struct_to_dict
from pug_grpc._rpc.dashboards import Dashboards, SharedDashboards
from pug_grpc._rpc.insights import Insights
from pug_grpc._rpc.orgs import Customers, EmailProviders, Orgs
from pug_grpc._rpc.profiles import Profiles
from pug_grpc._rpc.projects import Projects
from pug_grpc._rpc.session import Session
from pug_grpc._version import __version__

__all__ = [  # noqa: RUF022 - grouped by feature, sorted within each group
    # ingestion
    "BatchSettings",
    "BeforeSend",
    "FlushResult",
    "Pug",
    "PugDeliveryError",
    "Reporter",
    "RequestContext",
    "RetrySettings",
    "Stats",
    "TrackedEvent",
    "new_anonymous_id",
    # storage
    "MemoryStorage",
    "Record",
    "SqliteStorage",
    "Storage",
    "StorageError",
    # reads/admin
    "USE_CLIENT_DEFAULT",
    "Activity",
    "CallOptions",
    "ConnectionCause",
    "Customers",
    "Dashboards",
    "EmailProviders",
    "Insights",
    "Orgs",
    "PageStream",
    "Profiles",
    "Projects",
    "PugAdmin",
    "PugAuthenticationError",
    "PugConflictError",
    "PugConnectionError",
    "PugDeadlineExceededError",
    "PugError",
    "PugFailedPreconditionError",
    "PugInvalidArgumentError",
    "PugMessageTooLargeError",
    "PugNotFoundError",
    "PugPermissionError",
    "PugPublicKeyError",
    "PugRateLimitedError",
    "PugUnavailableError",
    "Session",
    "SharedDashboards",
    "TimeRangeLike",
    "UseClientDefault",
    "struct_to_dict",
    # asyncio
    "AsyncActivity",
    "AsyncCustomers",
    "AsyncDashboards",
    "AsyncEmailProviders",
    "AsyncInsights",
    "AsyncOrgs",
    "AsyncPageStream",
    "AsyncProfiles",
    "AsyncProjects",
    "AsyncPug",
    "AsyncPugAdmin",
    "AsyncSession",
    "AsyncSharedDashboards",
    # package
    "__version__",
]
