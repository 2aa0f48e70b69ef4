"""pug-grpc: the Python client for the Pug product-analytics API over native gRPC.

Generated message modules and stubs live under :mod:`pug_grpc.gen`, mirroring the proto
paths (``pug_grpc.gen.sdk.events.v1.events_pb2``).
"""

from pug_grpc._version import __version__

__all__ = ["__version__"]
