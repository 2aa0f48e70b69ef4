"""Names shared by the benchmark's parent, sink and client processes (no imports of SDKs)."""

from __future__ import annotations

LOOPBACK = "127.0.0.1"
API_KEY = "prv_bench_local_key_0000"
"""The key the pug sinks accept (loopback only, never a real credential)."""
API_KEY_HEADER = "x-api-key"
FEED_USER = "reader-1"
"""The user whose events the reads sink holds."""
KIND = "checkout.completed"
"""The event every SDK tracks."""
SESSION_ID = "0190a3c4-5d6e-7f80-9a1b-2c3d4e5f6071"
"""The session the HTTP sink gives the peers' events when it validates them as Pug events."""
MAX_CONCURRENT_STREAMS = 250
"""What the real server allows per HTTP/2 connection (Go's default behind an HTTP/2 front)."""
