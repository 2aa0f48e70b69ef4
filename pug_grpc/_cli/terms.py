"""The client's messages in command-line terms, and the hints a command line user needs.

The library speaks Python (``pass allow_insecure=True``); the command line has options for the
same things (``--allow-insecure``). Messages are translated on their way out, in one place.
"""

from __future__ import annotations

import re

__all__ = ["busy_port_hint", "cli_terms"]

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


def busy_port_hint(host: str, port: int) -> str:
    """What to say when the local server cannot listen."""
    if port == 0:
        return f"cannot listen on {host}: no free port, or the address is not on this machine"
    return (
        f"cannot listen on {host}:{port}: the port is in use (or the address is not on this"
        " machine); try --port 0 to pick a free port"
    )
