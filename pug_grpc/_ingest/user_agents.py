"""The end user's browser, OS and device from a User-Agent header, with ``ua-parser``.

Pug parses the User-Agent of the request that carried a batch and writes ``$browser`` and the
rest only where an event lacks them, so a backend that sends nothing gets its own gRPC agent
parsed. Sending the visitor's parsed values fixes that. ``ua-parser`` is an optional extra
(``pip install 'pug-grpc[useragent]'``): without it the user agent is not sent at all, since a
raw header would be stored as no property Pug reads.

Parsing costs microseconds; a web service sees few distinct agents, so results are remembered
in a bounded LRU (:data:`CACHE_SIZE`).
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Mapping
from typing import Any, Final

__all__ = ["AGENT_KEYS", "CACHE_SIZE", "available", "parse_user_agent"]

_log = logging.getLogger("pug_grpc.context")

CACHE_SIZE: Final = 2048
"""Distinct User-Agent headers whose parsed properties are remembered."""
MAX_AGENT_LEN: Final = 1024
"""Longer headers are cut here before parsing (bounded time, bounded cache)."""

AGENT_KEYS: Final = ("$browser", "$browserVersion", "$os", "$osVersion", "$device", "$mobile")

# ua-parser's family names to the plain product names Pug's dashboards group by.
_BROWSER_NAMES: Final[Mapping[str, str]] = {
    "Mobile Safari": "Safari",
    "Mobile Safari UI/WKWebView": "Safari",
    "Chrome Mobile": "Chrome",
    "Chrome Mobile iOS": "Chrome",
    "Chrome Mobile WebView": "Chrome",
    "Firefox Mobile": "Firefox",
    "Firefox iOS": "Firefox",
    "Edge Mobile": "Edge",
    "Opera Mobile": "Opera",
}
_OS_NAMES: Final[Mapping[str, str]] = {"Mac OS X": "macOS"}
_TABLET: Final = re.compile(r"\biPad\b|\bTablet\b|\bKindle\b|\bSilk\b")
_MOBILE: Final = re.compile(r"\bMobi(?:le)?\b|\biPhone\b|\biPod\b")
_MOBILE_OS: Final = frozenset({"iOS", "Android", "Windows Phone", "BlackBerry OS"})


def _load() -> Any:
    try:
        from ua_parser import parse
    except ImportError:
        return None
    return parse


_parse: Any = _load()


def available() -> bool:
    """Whether ``ua-parser`` is installed (without it no browser property is sent)."""
    return _parse is not None


def _version(part: Any) -> str:
    pieces = [getattr(part, name, None) for name in ("major", "minor", "patch", "patch_minor")]
    out: list[str] = []
    for piece in pieces:
        if not piece:
            break
        out.append(str(piece))
    return ".".join(out)


def _device(header: str, os_name: str, device_family: str) -> str:
    if device_family == "Spider":
        return "Bot"
    if _TABLET.search(header) or (os_name == "Android" and "Mobile" not in header):
        return "Tablet"
    if _MOBILE.search(header) or os_name in _MOBILE_OS:
        return "Mobile"
    return "Desktop"


@functools.lru_cache(maxsize=CACHE_SIZE)
def _parsed(header: str) -> tuple[tuple[str, str | bool], ...]:
    result = _parse(header)
    agent, system, device = result.user_agent, result.os, result.device
    browser = _BROWSER_NAMES.get(agent.family, agent.family) if agent is not None else ""
    os_name = _OS_NAMES.get(system.family, system.family) if system is not None else ""
    if browser == "Other":
        browser = ""
    if os_name == "Other":
        os_name = ""
    if not (browser or os_name):
        return ()
    found: list[tuple[str, str | bool]] = []
    if browser:
        found.append(("$browser", browser))
        version = _version(agent)
        if version:
            found.append(("$browserVersion", version))
    if os_name:
        found.append(("$os", os_name))
        version = _version(system)
        if version:
            found.append(("$osVersion", version))
    kind = _device(header, os_name, device.family if device is not None else "")
    found.append(("$device", kind))
    found.append(("$mobile", kind in ("Mobile", "Tablet")))
    return tuple(found)


def parse_user_agent(header: str) -> dict[str, str | bool]:
    """The ``$browser``... auto-properties of ``header``; empty without ``ua-parser``.

    An agent the parser does not recognise gives nothing (Pug then parses the backend's own).
    """
    if _parse is None or not header:
        return {}
    try:
        return dict(_parsed(header[:MAX_AGENT_LEN].strip()))
    except Exception:  # a parser bug must never cost the event
        _log.debug("the User-Agent could not be parsed", exc_info=True)
        return {}
