"""What an OK ``BatchCreate`` reply says about the events sent: accepted, dropped, missing.

The server's counts are clamped to what was sent, so a wrong reply can never count an event
twice or as delivered when it was not; what it does not account for is ``unacknowledged``.
Dropped and unacknowledged events are reported through ``on_error``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import grpc

from pug_grpc._ingest.outcomes import EVENTS_DROPPED, UNACKNOWLEDGED, Ledger, PugDeliveryError
from pug_grpc._ingest.reports import SafeReporter
from pug_grpc.gen.sdk.events.v1 import events_pb2

__all__ = ["Tally", "tally"]

_log = logging.getLogger("pug_grpc.pipeline")


@dataclass(frozen=True, slots=True)
class Tally:
    """The server's answer for ``sent`` events, clamped so that the three counts add up."""

    sent: int
    accepted: int
    dropped: int
    reasons: dict[str, int]
    missing: int
    claimed_accepted: int
    claimed_dropped: int

    def resolve(self, ledger: Ledger, window: int) -> None:
        """Count the request's events into ``ledger`` (the caller holds its lock)."""
        ledger.batches += 1
        ledger.resolve(window, "accepted", self.accepted, in_flight=True)
        ledger.resolve(window, "dropped", self.dropped, in_flight=True, reasons=self.reasons)
        ledger.resolve(window, "unacknowledged", self.missing, in_flight=True)

    def tell(self, report: SafeReporter) -> None:
        """Log an over-count, and report what the server dropped or did not account for."""
        sent, dropped, missing, reasons = self.sent, self.dropped, self.missing, self.reasons
        if self.claimed_accepted + self.claimed_dropped > sent:
            _log.warning(
                "server acknowledged %d events (accepted %d, dropped %d) for %d sent",
                self.claimed_accepted + self.claimed_dropped,
                self.claimed_accepted,
                self.claimed_dropped,
                sent,
            )
        if dropped:
            _log.warning("server dropped %d of %d events: %s", dropped, sent, reasons)
            report(
                PugDeliveryError(
                    f"the server dropped {dropped} of {sent} events",
                    reason=EVENTS_DROPPED,
                    code=grpc.StatusCode.OK,
                    dropped_by_reason=reasons,
                    domain="pug.sh",
                )
            )
        if missing:
            _log.warning("server accounted for %d of %d events", sent - missing, sent)
            report(
                PugDeliveryError(
                    f"the server answered OK but accounted for {sent - missing} of {sent} events",
                    reason=UNACKNOWLEDGED,
                    code=grpc.StatusCode.OK,
                    missing=missing,
                    domain="pug.sh",
                )
            )


def tally(sent: int, response: events_pb2.BatchCreateResponse | None) -> Tally:
    """Read ``response`` (None: an empty reply) for a request of ``sent`` events."""
    reply = response if response is not None else events_pb2.BatchCreateResponse()
    accepted = min(max(reply.accepted, 0), sent)
    reasons = {k: v for k, v in reply.dropped_by_reason.items() if v > 0}
    dropped = min(max(reply.dropped, sum(reasons.values()), 0), sent - accepted)
    if sum(reasons.values()) != dropped:
        reasons = {"unspecified": dropped} if dropped else {}
    return Tally(
        sent=sent,
        accepted=accepted,
        dropped=dropped,
        reasons=reasons,
        missing=sent - accepted - dropped,
        claimed_accepted=reply.accepted,
        claimed_dropped=reply.dropped,
    )
