"""A small User-Agent parser for the ``$browser``/``$os``/``$device`` properties Pug derives.

Pug parses the ``User-Agent`` header of the request that carried a batch and writes what it
finds only where an event lacks it. This parser knows the major browsers and operating systems;
any other agent (a gRPC client, a script) is named by its first product token, so the backend's
own agent (``pug-grpc/1.0 grpc-python/1.85``) comes out as browser ``pug-grpc`` version ``1.0``.
Its labels are the local server's; Pug's parser may name rarer agents differently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pug_grpc.testing._rows import TypedValue

__all__ = ["UserAgent", "parse_user_agent"]

_MAX_LENGTH = 1024
"""Longer headers are cut here first: every pattern then runs in bounded time."""

_BROWSERS = (
    ("Edge", re.compile(r"\bEdg(?:e|A|iOS)?/([\d.]+)")),
    ("Opera", re.compile(r"\b(?:OPR|Opera)/([\d.]+)")),
    ("Samsung Internet", re.compile(r"\bSamsungBrowser/([\d.]+)")),
    ("Firefox", re.compile(r"\b(?:Firefox|FxiOS)/([\d.]+)")),
    ("Chrome", re.compile(r"\b(?:Chrome|CriOS)/([\d.]+)")),
    ("Safari", re.compile(r"\bVersion/([\d.]+)[^()]*\bSafari/")),
)
_OPERATING_SYSTEMS = (  # iOS before macOS and Android before Linux: their agents name both
    ("iOS", re.compile(r"\b(?:iPhone|iPad|iPod)\b[^)]*?\bOS (\d+(?:_\d+)*)")),
    ("Android", re.compile(r"\bAndroid (\d+(?:\.\d+)*)")),
    ("Windows", re.compile(r"\bWindows NT (\d+(?:\.\d+)*)")),
    ("macOS", re.compile(r"\bMac OS X (\d+(?:[._]\d+)*)")),
    ("Chrome OS", re.compile(r"\bCrOS \S+ (\d+(?:\.\d+)*)")),
    ("Linux", re.compile(r"\b(?:Linux|linux)\b()")),
)
_PRODUCT = re.compile(r"(?:^|\s)([A-Za-z][\w.+-]*)/([\w.+-]+)")
_ENGINE_TOKENS = frozenset({"Mozilla", "AppleWebKit", "KHTML", "Gecko", "Mobile"})
_TABLET = re.compile(r"\biPad\b|\bTablet\b")
_MOBILE = re.compile(r"\bMobi(?:le)?\b|\biPhone\b|\biPod\b|\bAndroid\b")


@dataclass(frozen=True)
class UserAgent:
    """What a User-Agent header says; empty strings where it says nothing."""

    browser: str = ""
    browser_version: str = ""
    os: str = ""
    os_version: str = ""
    device: str = ""
    mobile: bool = False

    def properties(self) -> dict[str, TypedValue]:
        """The auto-properties Pug writes from it (only those with a value)."""
        found: dict[str, TypedValue] = {}
        for key, text in (
            ("$browser", self.browser),
            ("$browserVersion", self.browser_version),
            ("$os", self.os),
            ("$osVersion", self.os_version),
            ("$device", self.device),
        ):
            if text:
                found[key] = ("s", text)
        if self.device:
            found["$mobile"] = ("b", self.mobile)
        return found


def _browser(header: str) -> tuple[str, str]:
    for name, pattern in _BROWSERS:
        match = pattern.search(header)
        if match:
            return name, match.group(1)
    outside_comments = re.sub(r"\([^)]*\)", " ", header)
    for match in _PRODUCT.finditer(outside_comments):
        if match.group(1) not in _ENGINE_TOKENS:
            return match.group(1), match.group(2)
    return "", ""


def _operating_system(header: str) -> tuple[str, str]:
    for name, pattern in _OPERATING_SYSTEMS:
        match = pattern.search(header)
        if match:
            return name, match.group(1).replace("_", ".")
    return "", ""


def parse_user_agent(header: str) -> UserAgent:
    """Parse a User-Agent header; an empty or unrecognisable one gives an empty result."""
    header = header[:_MAX_LENGTH].strip()
    browser, browser_version = _browser(header)
    os_name, os_version = _operating_system(header)
    if not (browser or os_name):
        return UserAgent()
    if _TABLET.search(header) or (os_name == "Android" and "Mobile" not in header):
        device = "Tablet"
    elif _MOBILE.search(header):
        device = "Mobile"
    else:
        device = "Desktop"
    return UserAgent(
        browser=browser,
        browser_version=browser_version,
        os=os_name,
        os_version=os_version,
        device=device,
        mobile=device != "Desktop",
    )
