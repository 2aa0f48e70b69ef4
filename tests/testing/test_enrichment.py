"""What the server changes in an accepted event's auto-properties (the contract README's list)."""

from __future__ import annotations

import grpc
import hypothesis.strategies as st
import pytest
from hypothesis import given
from pug_grpc.gen.sdk.events.v1 import events_pb2, events_pb2_grpc

from pug_grpc.testing import LocalServer
from pug_grpc.testing._enrichment import (
    GEO_KEYS,
    SERVER_ONLY_KEYS,
    channel_of,
    enrich,
    normalise_locale,
)
from pug_grpc.testing._rows import TypedValue
from tests.support.server import event, key_md
from tests.testing.conftest import Send

BROWSER_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/120.0.0.0 Safari/537.36"
)
CDN_HEADERS = {
    "cf-ipcountry": "NO",
    "cf-region": "Oslo",
    "cf-ipcity": "Oslo",
    "cf-ipcontinent": "EU",
    "cf-postal-code": "0150",
    "cf-iplatitude": "59.91",
    "cf-iplongitude": "10.75",
    "cf-timezone": "Europe/Oslo",
}
GEO_HEADER_OF = {
    "$country": "cf-ipcountry",
    "$region": "cf-region",
    "$city": "cf-ipcity",
    "$continent": "cf-ipcontinent",
    "$postalCode": "cf-postal-code",
    "$latitude": "cf-iplatitude",
    "$longitude": "cf-iplongitude",
    "$timezone": "cf-timezone",
}


def _s(text: str) -> TypedValue:
    return ("s", text)


def _stored_auto(server: LocalServer) -> dict[str, TypedValue]:
    return next(iter(server.store.events(server.project_id))).auto_props


def test_ip_and_client_geo_are_stripped_without_cdn_headers(
    pug_server: LocalServer, send: Send
) -> None:
    send(event(auto={"$ip": "203.0.113.9", "$country": "US", "$city": "Austin", "$lib": "x"}))
    auto = _stored_auto(pug_server)
    assert not set(auto) & {"$ip", *GEO_KEYS}
    assert auto["$lib"] == _s("x")
    assert pug_server.events[0].auto_properties["$ip"].string_value == "203.0.113.9"  # as sent


def test_geo_is_overwritten_from_the_cdn_headers(pug_server: LocalServer, send: Send) -> None:
    send(event(auto={"$country": "US"}), headers=list(CDN_HEADERS.items()))
    auto = _stored_auto(pug_server)
    assert {k: auto[k] for k in GEO_KEYS} == {
        "$country": _s("NO"),
        "$region": _s("Oslo"),
        "$city": _s("Oslo"),
        "$continent": _s("EU"),
        "$postalCode": _s("0150"),
        "$latitude": ("d", 59.91),
        "$longitude": ("d", 10.75),
        "$timezone": _s("Europe/Oslo"),
    }


def test_the_request_user_agent_fills_only_what_the_event_lacks(pug_server: LocalServer) -> None:
    # grpcio takes the user agent from a channel option (and appends its own).
    options = [("grpc.primary_user_agent", BROWSER_UA)]
    with grpc.insecure_channel(pug_server.address, options=options) as channel:
        events_pb2_grpc.EventsServiceStub(channel).BatchCreate(
            events_pb2.BatchCreateRequest(events=[event(auto={"$browser": "Firefox"})]),
            metadata=key_md(pug_server),
            timeout=10,
        )
    assert pug_server.calls[-1].metadata["user-agent"].startswith(BROWSER_UA)
    auto = _stored_auto(pug_server)
    assert auto["$browser"] == _s("Firefox")  # the end user's value, sent by the SDK, is kept
    assert auto["$os"] == _s("Windows")
    assert auto["$device"] == _s("Desktop")
    assert auto["$mobile"] == ("b", False)
    assert "$user_agent" not in auto  # Pug invents no such property


def test_without_a_browser_the_backends_grpc_agent_is_what_gets_parsed(
    pug_server: LocalServer, send: Send
) -> None:
    send(event())
    auto = _stored_auto(pug_server)
    user_agent = pug_server.calls[-1].metadata["user-agent"]
    assert user_agent.startswith("grpc-python")
    assert auto["$browser"] == _s("grpc-python")
    assert auto["$os"] == _s("Linux")
    assert "$user_agent" not in auto


def test_server_only_properties_are_replaced_by_the_servers_own(
    pug_server: LocalServer, send: Send
) -> None:
    client_values = {
        "$bot_score": 99,
        "$verified_bot": True,
        "$referrerDomain": "forged.example",
        "$channel": "forged",
        "$url": "https://shop.example/cart?utm_source=news&utm_medium=email&utm_campaign=spring",
        "$referrer": "https://www.mail.example/inbox",
        "$pageTitle": "Cart",
        "$screenWidth": 1280,
    }
    send(event(auto=client_values))
    auto = _stored_auto(pug_server)
    assert "$bot_score" not in auto
    assert "$verified_bot" not in auto
    assert auto["$referrerDomain"] == _s("mail.example")
    assert auto["$channel"] == _s("email")
    assert auto["$pathname"] == _s("/cart")
    assert auto["$hostname"] == _s("shop.example")
    assert auto["$utmSource"] == _s("news")
    assert auto["$utmCampaign"] == _s("spring")
    assert auto["$pageTitle"] == _s("Cart")
    assert auto["$screenWidth"] == ("i", 1280)


def test_url_derived_keys_are_written_only_where_missing() -> None:
    auto = enrich(
        {"$url": _s("https://a.example/x?utm_source=ad"), "$pathname": _s("/mine")},
        {},
    )
    assert auto["$pathname"] == _s("/mine")
    assert auto["$utmSource"] == _s("ad")
    assert auto["$hostname"] == _s("a.example")


@pytest.mark.parametrize(
    ("given_locale", "stored"),
    [
        ("en_us", "en-US"),
        ("EN", "en"),
        ("zh_hant_tw", "zh-Hant-TW"),
        ("de_DE.UTF-8", "de-DE"),
        ("pt-br", "pt-BR"),
        ("C", "C"),
        ("not a locale", "not a locale"),
    ],
)
def test_locale_is_normalised(given_locale: str, stored: str) -> None:
    assert normalise_locale(given_locale) == stored
    assert enrich({"$locale": _s(given_locale)}, {})["$locale"] == _s(stored)


@pytest.mark.parametrize(
    ("medium", "referrer", "channel"),
    [
        ("cpc", "google.com", "paid"),
        ("", "google.co.uk", "organic_search"),
        ("", "news.google.com", "organic_search"),
        ("", "t.co", "social"),
        ("", "m.facebook.com", "social"),
        ("", "blog.example", "referral"),
        ("", "shop.example", "direct"),  # the site itself
        ("", "", "direct"),
    ],
)
def test_channels(medium: str, referrer: str, channel: str) -> None:
    assert channel_of(medium=medium, referrer_host=referrer, own_host="shop.example") == channel


def test_events_without_url_or_referrer_get_no_channel() -> None:
    assert "$channel" not in enrich({"$lib": _s("python")}, {})


_keys = st.one_of(
    st.sampled_from(
        ["$ip", "$url", "$referrer", "$locale", "$browser", *GEO_KEYS, *SERVER_ONLY_KEYS]
    ),
    st.text(max_size=10),
)
_values = st.one_of(
    st.text(max_size=60).map(_s),
    st.sampled_from(["http://[::1", "https://x.example/p?utm_medium=cpc", "//", "en_gb"]).map(_s),
    st.integers().map(lambda i: ("i", i)),
    st.booleans().map(lambda b: ("b", b)),
)


@given(
    auto=st.dictionaries(_keys, _values, max_size=8),
    headers=st.dictionaries(
        st.sampled_from([*CDN_HEADERS, "user-agent"]), st.text(max_size=80), max_size=4
    ),
)
def test_enrichment_never_raises_and_keeps_every_other_client_value(
    auto: dict[str, TypedValue], headers: dict[str, str]
) -> None:
    out = enrich(auto, headers)
    assert not set(out) & {"$ip", "$bot_score", "$verified_bot"}
    for key in GEO_KEYS:
        assert key not in out or GEO_HEADER_OF[key] in headers, key  # geo only from the CDN
    replaced = {"$ip", "$locale", *GEO_KEYS, *SERVER_ONLY_KEYS}
    assert all(out[k] == v for k, v in auto.items() if k not in replaced)
