"""The catalog's say over ``track()``: well-known events checked, lenient or strict.

A typed event always keeps its checks. A string kind naming a catalogued event that breaks
its rules is sent as given (the server accepts any properties for any kind), counted per
``"kind: rule"`` and warned about once, unless ``strict_catalog`` refuses it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any, Final

from pug_grpc._ingest.well_known import (
    CatalogError,
    is_well_known,
    pii_fields,
    properties_of_event,
    properties_of_kind,
)
from pug_grpc.gen.catalog import OTHER_PLATFORM_KINDS, SERVER_KINDS, WellKnownEvent

__all__ = ["CATALOGUED", "CatalogRules", "plain_kinds", "remember_plain"]

_log = logging.getLogger("pug_grpc.intake")

CATALOGUED: Final = frozenset(SERVER_KINDS) | OTHER_PLATFORM_KINDS
_PLAIN_KINDS_LIMIT: Final = 4096
plain_kinds: set[str] = set()
"""Kinds that passed the rules and are not catalogued (a service uses few; bounded)."""


def remember_plain(kind: object) -> None:
    """A valid kind the catalog does not know: ``Pug.track``'s fast path may take it."""
    if type(kind) is str and kind not in CATALOGUED and len(plain_kinds) < _PLAIN_KINDS_LIMIT:
        plain_kinds.add(kind)


class CatalogRules:
    """Checks events against the catalog and counts the lenient mismatches."""

    __slots__ = ("_lock", "_mismatches", "_send_pii", "_strict")

    def __init__(self, *, send_pii: bool, strict: bool) -> None:
        self._send_pii = send_pii
        self._strict = strict
        # Re-entrant: a signal handler's track() may interrupt stats() on this very thread.
        self._lock = threading.RLock()
        self._mismatches: dict[str, int] = {}

    def mismatches(self) -> dict[str, int]:
        """Events sent although they broke a catalog rule, per ``"kind: rule"``."""
        with self._lock:
            return dict(self._mismatches)

    def reset(self) -> None:
        """A forked child counts from zero, as ``stats()`` does."""
        self._lock = threading.RLock()
        self._mismatches = {}

    def properties(
        self,
        kind: str | WellKnownEvent,
        properties: Mapping[str, Any] | None,
        extra: Mapping[str, Any] | None,
    ) -> tuple[str, dict[str, Any] | None]:
        """Merge ``extra`` and check a well-known event; raises CatalogError or TypeError.

        A string kind naming a catalogued event that breaks its rules is sent as given (the
        server accepts any properties for any kind), counted and warned about once per kind
        and rule, unless ``strict_catalog``. Typed events keep their checks.
        """
        for name, given in (("properties", properties), ("extra", extra)):
            if given is not None and not isinstance(given, Mapping):
                raise TypeError(f"{name} must be a mapping, not {type(given).__name__}")
        merged = {**(properties or {}), **(extra or {})}
        if isinstance(kind, WellKnownEvent):
            fields = properties_of_event(kind, send_pii=self._send_pii)
            shadowed = sorted(k for k in merged if k in fields)
            if shadowed:
                _log.warning(
                    "%s: extra properties %s replaced by typed fields", kind.KIND, shadowed
                )
            return kind.KIND, {**merged, **fields}
        if not isinstance(kind, str):
            raise TypeError(
                f"kind must be a string or a well-known event, not {type(kind).__name__}"
            )
        if is_well_known(kind):
            try:
                fields, rest = properties_of_kind(kind, merged, send_pii=self._send_pii)
            except CatalogError as exc:
                if self._strict:
                    raise
                self._mismatch(kind, exc)
                if not self._send_pii:
                    withheld = pii_fields(kind)
                    merged = {k: v for k, v in merged.items() if k not in withheld}
                return kind, merged or None
            return kind, {**rest, **fields}
        return kind, merged or None

    def _mismatch(self, kind: str, exc: CatalogError) -> None:
        key = f"{kind}: {exc.rule}"
        with self._lock:
            seen = self._mismatches.get(key, 0)
            self._mismatches[key] = seen + 1
        if not seen:
            _log.warning(
                "%s; sent as given (Pug accepts any properties for any kind). Further events "
                "of this kind breaking this rule are counted in stats().catalog_mismatches; "
                "Pug(strict_catalog=True) refuses them",
                exc,
            )
