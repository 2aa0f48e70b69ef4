"""pug-grpc: the Python client for the Pug product-analytics API over native gRPC.

Generated message modules and stubs live under :mod:`pug_grpc.gen`, mirroring the proto
paths (``pug_grpc.gen.sdk.events.v1.events_pb2``).
"""

from pug_grpc._errors import (
    PugAuthenticationError,
    PugConflictError,
    PugDeadlineExceededError,
    PugError,
    PugFailedPreconditionError,
    PugInvalidArgumentError,
    PugNotFoundError,
    PugPermissionError,
    PugPublicKeyError,
    PugRateLimitedError,
    PugUnavailableError,
)
from pug_grpc._ingest.messages import new_anonymous_id
from pug_grpc._ingest.outcomes import FlushResult, PugDeliveryError, Stats
from pug_grpc._ingest.settings import BatchSettings, RetrySettings
from pug_grpc._pug import Pug
from pug_grpc._rpc.admin import PugAdmin
from pug_grpc._rpc.convert import struct_to_dict
from pug_grpc._version import __version__

__all__ = [  # noqa: RUF022 - grouped by feature, sorted within each group
    # ingestion (issue 3)
    "BatchSettings",
    "FlushResult",
    "Pug",
    "PugDeliveryError",
    "RetrySettings",
    "Stats",
    "new_anonymous_id",
    # reads/admin (issue 4)
    "PugAdmin",
    "PugAuthenticationError",
    "PugConflictError",
    "PugDeadlineExceededError",
    "PugError",
    "PugFailedPreconditionError",
    "PugInvalidArgumentError",
    "PugNotFoundError",
    "PugPermissionError",
    "PugPublicKeyError",
    "PugRateLimitedError",
    "PugUnavailableError",
    "struct_to_dict",
    # package
    "__version__",
]
