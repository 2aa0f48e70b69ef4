"""The client's messages in command-line terms, and the hints a command line user needs.

The library speaks Python (``pass allow_insecure=True``); the command line has options for the
same things (``--allow-insecure``). Messages are translated on their way out, in one place.
"""

from __future__ import annotations

import datetime as dt
import re

__all__ = ["busy_port_hint", "cli_terms", "milliseconds_hint"]

# Keyword arguments of Pug/PugAdmin that the command line offers as options.
_OPTIONS = {
    "endpoint": "--endpoint URL",
    "api_key": "--api-key KEY",
    "project_id": "--project-id ID",
    "timeout": "--timeout SECONDS",
}
_KEYWORD_RE = re.compile(r"\b(" + "|".join(_OPTIONS) + r")=\.\.\.")
_INSECURE_RE = re.compile(r"\ballow_insecure=True\b")
_CONNECT_RE = re.compile(r'\btransport="connect"')
# Keyword arguments that only the library has: say so instead of naming a Python call.
_LIBRARY_ONLY_RE = re.compile(
    r"\s*\((?:or )?pass (?:channel|refresh_token)=\.\.\.\)|,? or channel=\.\.\."
)


def cli_terms(text: str) -> str:
    """``text`` with the library's keyword arguments replaced by the matching options."""
    text = _KEYWORD_RE.sub(lambda match: _OPTIONS[match.group(1)], text)
    text = _INSECURE_RE.sub("--allow-insecure", text)
    text = _CONNECT_RE.sub("--transport connect", text)
    return _LIBRARY_ONLY_RE.sub("", text)


def milliseconds_hint(value: float) -> str:
    """A hint when a number is out of range as epoch seconds but fine as milliseconds."""
    seconds = value / 1000
    try:
        moment = dt.datetime.fromtimestamp(seconds, dt.UTC)
    except (OverflowError, OSError, ValueError):
        return ""
    if not 1970 <= moment.year <= 9999:
        return ""
    shown = f"{seconds:.3f}".rstrip("0").rstrip(".")
    return (
        f"; it looks like milliseconds since the epoch ({moment:%Y-%m-%d %H:%M:%S} UTC):"
        f" give seconds ({shown}) or RFC 3339 text"
    )


def busy_port_hint(host: str, port: int) -> str:
    """What to say when the local server cannot listen."""
    if port == 0:
        return f"cannot listen on {host}: no free port, or the address is not on this machine"
    return (
        f"cannot listen on {host}:{port}: the port is in use (or the address is not on this"
        " machine); try --port 0 to pick a free port"
    )
