"""What Pug changes in the auto-properties of an accepted event, as its contract README says.

- ``$ip`` is always stripped.
- Geo (``$country``, ``$region``, ``$city``, ``$continent``, ``$postalCode``, ``$latitude``,
  ``$longitude``, ``$timezone``) is always overwritten from the CDN headers of the request that
  carried the batch, or removed where there are none. The local server reads Cloudflare's
  visitor-location header names (``cf-ipcountry``, ``cf-region``, ``cf-ipcity``, …).
- ``$browser``, ``$browserVersion``, ``$os``, ``$osVersion``, ``$device`` and ``$mobile`` are
  parsed from the request's own ``User-Agent`` and written only where the event lacks them.
- ``$bot_score``, ``$verified_bot``, ``$referrerDomain`` and ``$channel`` are server-only:
  client values are stripped; ``$referrerDomain`` and ``$channel`` are derived from
  ``$referrer`` and ``$url`` (the bot signals come from a CDN the local server does not have).
- ``$pathname``, ``$hostname`` and the UTM keys are derived from ``$url`` where missing;
  ``$locale`` is normalised in place (``en_us`` becomes ``en-US``); everything else is kept.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from urllib.parse import parse_qs, urlsplit

from pug_grpc.testing._rows import TypedValue
from pug_grpc.testing._user_agent import UserAgent, parse_user_agent

__all__ = ["GEO_KEYS", "SERVER_ONLY_KEYS", "channel_of", "enrich", "normalise_locale"]

GEO_KEYS = (
    "$country",
    "$region",
    "$city",
    "$continent",
    "$postalCode",
    "$latitude",
    "$longitude",
    "$timezone",
)
SERVER_ONLY_KEYS = ("$bot_score", "$verified_bot", "$referrerDomain", "$channel")
_STRIPPED = frozenset({"$ip", *GEO_KEYS, *SERVER_ONLY_KEYS})
_GEO_HEADERS = (
    ("cf-ipcountry", "$country"),
    ("cf-region", "$region"),
    ("cf-ipcity", "$city"),
    ("cf-ipcontinent", "$continent"),
    ("cf-postal-code", "$postalCode"),
    ("cf-iplatitude", "$latitude"),
    ("cf-iplongitude", "$longitude"),
    ("cf-timezone", "$timezone"),
)
_NUMERIC_GEO = frozenset({"$latitude", "$longitude"})
_UNKNOWN_COUNTRIES = frozenset({"XX", "T1"})  # Cloudflare: unknown, Tor
_UTM = (
    ("utm_source", "$utmSource"),
    ("utm_medium", "$utmMedium"),
    ("utm_campaign", "$utmCampaign"),
    ("utm_term", "$utmTerm"),
    ("utm_content", "$utmContent"),
)
_PAID_MEDIA = frozenset({"cpc", "ppc", "paid", "paidsearch", "paid_search", "cpm", "display"})
_EMAIL_MEDIA = frozenset({"email", "e-mail", "newsletter"})
_SOCIAL_MEDIA = frozenset({"social", "social-media", "social_media"})
_SEARCH_SITES = frozenset({"google", "bing", "duckduckgo", "yahoo", "baidu", "yandex", "ecosia"})
_SOCIAL_SITES = frozenset(
    {"facebook", "instagram", "linkedin", "twitter", "reddit", "youtube", "tiktok", "pinterest"}
)
_SOCIAL_HOSTS = frozenset({"t.co", "x.com"})
_LOCALE = re.compile(
    r"^([A-Za-z]{2,3})(?:[-_]([A-Za-z]{4}))?(?:[-_]([A-Za-z]{2}|\d{3}))?(?:[.@][^\s]*)?$"
)


def normalise_locale(text: str) -> str:
    """BCP 47 casing and hyphens (``en_us.UTF-8`` → ``en-US``); anything else unchanged."""
    match = _LOCALE.match(text.strip())
    if match is None:
        return text
    language, script, region = match.groups()
    parts = [language.lower()]
    if script:
        parts.append(script.title())
    if region:
        parts.append(region.upper())
    return "-".join(parts)


def _geo(metadata: Mapping[str, str]) -> dict[str, TypedValue]:
    found: dict[str, TypedValue] = {}
    for header, key in _GEO_HEADERS:
        text = metadata.get(header, "").strip()
        if not text or (key == "$country" and text.upper() in _UNKNOWN_COUNTRIES):
            continue
        if key in _NUMERIC_GEO:
            try:
                found[key] = ("d", float(text))
            except ValueError:
                continue
        else:
            found[key] = ("s", text)
    return found


@functools.lru_cache(maxsize=256)
def _agent(header: str) -> UserAgent:
    return parse_user_agent(header)


def _text(auto: Mapping[str, TypedValue], key: str) -> str:
    value = auto.get(key)
    return str(value[1]) if value is not None and value[0] == "s" else ""


def _host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def _from_url(auto: dict[str, TypedValue]) -> None:
    url = _text(auto, "$url")
    if not url:
        return
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return
    if host:
        auto.setdefault("$hostname", ("s", host))
    auto.setdefault("$pathname", ("s", parts.path or "/"))
    query = parse_qs(parts.query)
    for name, key in _UTM:
        if query.get(name):
            auto.setdefault(key, ("s", query[name][0]))


def channel_of(*, medium: str, referrer_host: str, own_host: str) -> str:
    """The local server's marketing channel label for one event."""
    medium = medium.lower()
    if medium in _PAID_MEDIA:
        return "paid"
    if medium in _EMAIL_MEDIA:
        return "email"
    if medium in _SOCIAL_MEDIA:
        return "social"
    if referrer_host and referrer_host != own_host:
        labels = set(referrer_host.split("."))
        if labels & _SEARCH_SITES:
            return "organic_search"
        if labels & _SOCIAL_SITES or referrer_host in _SOCIAL_HOSTS:
            return "social"
        return "referral"
    return "direct"


def _referrer_and_channel(auto: dict[str, TypedValue]) -> None:
    referrer = _text(auto, "$referrer")
    if not referrer and "$url" not in auto:
        return
    referrer_host = _host(referrer).removeprefix("www.")
    if referrer_host:
        auto["$referrerDomain"] = ("s", referrer_host)
    own_host = _text(auto, "$hostname").lower().removeprefix("www.")
    auto["$channel"] = (
        "s",
        channel_of(
            medium=_text(auto, "$utmMedium"), referrer_host=referrer_host, own_host=own_host
        ),
    )


def enrich(auto: Mapping[str, TypedValue], metadata: Mapping[str, str]) -> dict[str, TypedValue]:
    """The auto-properties Pug stores for an event sent with these request headers."""
    out = {key: value for key, value in auto.items() if key not in _STRIPPED}
    out.update(_geo(metadata))
    for key, value in _agent(metadata.get("user-agent", "")).properties().items():
        out.setdefault(key, value)
    _from_url(out)
    locale = out.get("$locale")
    if locale is not None and locale[0] == "s":
        out["$locale"] = ("s", normalise_locale(str(locale[1])))
    _referrer_and_channel(out)
    return out
