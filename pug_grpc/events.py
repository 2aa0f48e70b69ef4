"""Typed well-known events: one frozen dataclass per server kind of Pug's event catalog.

Pass an instance to :meth:`pug_grpc.Pug.track` (``pug.track("user_42", ProductViewed(...))``);
mypy checks property names and types. The classes are generated from ``proto/common/events/v1``.
"""

from pug_grpc.gen.catalog import *  # noqa: F403
from pug_grpc.gen.catalog import __all__  # noqa: F401  (re-exported)
