"""gRPC's fork support, on by default when ``pug_grpc`` is imported before ``grpc``.

gRPC Python is fork-safe only with ``GRPC_ENABLE_FORK_SUPPORT=1`` (read once, when ``grpc`` is
first imported) and no call in flight at the fork. Without it, gRPC calls in a forked child
can hang past their deadlines (seen with grpcio 1.85 in children and grandchildren). This
module imports nothing of gRPC, so the package can set the default before ``grpc`` loads.
"""

from __future__ import annotations

import os
import sys
from typing import Final

__all__ = ["FORK_SUPPORT_VARIABLE", "enable_grpc_fork_support"]

FORK_SUPPORT_VARIABLE: Final = "GRPC_ENABLE_FORK_SUPPORT"


def enable_grpc_fork_support() -> None:
    """Default ``GRPC_ENABLE_FORK_SUPPORT`` to on, if ``grpc`` is not imported yet.

    A value the user set (``0`` included) is kept.
    """
    if "grpc" not in sys.modules:
        os.environ.setdefault(FORK_SUPPORT_VARIABLE, "1")
