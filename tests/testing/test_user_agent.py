"""The User-Agent parser behind ``$browser``, ``$os`` and ``$device``."""

from __future__ import annotations

import hypothesis.strategies as st
import pytest
from hypothesis import given

from pug_grpc.testing._user_agent import UserAgent, parse_user_agent

CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/120.0.0.0 Safari/537.36"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15"
    " (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
)
SAFARI_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
    " Version/17.1 Safari/605.1.15"
)
CHROME_ANDROID_PHONE = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/120.0.6099.43 Mobile Safari/537.36"
)
SAMSUNG_TABLET = (
    "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko)"
    " SamsungBrowser/23.0 Chrome/115.0.0.0 Safari/537.36"
)
FIREFOX_LINUX = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
EDGE = CHROME_WINDOWS + " Edg/120.0.2210.91"
GRPC = "pug-grpc/0.1.0 grpc-python/1.85.3 grpc-c/58.0.0 (linux; chttp2)"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (CHROME_WINDOWS, UserAgent("Chrome", "120.0.0.0", "Windows", "10.0", "Desktop", False)),
        (SAFARI_IPHONE, UserAgent("Safari", "17.1", "iOS", "17.1.2", "Mobile", True)),
        (SAFARI_MAC, UserAgent("Safari", "17.1", "macOS", "10.15.7", "Desktop", False)),
        (
            CHROME_ANDROID_PHONE,
            UserAgent("Chrome", "120.0.6099.43", "Android", "14", "Mobile", True),
        ),
        (SAMSUNG_TABLET, UserAgent("Samsung Internet", "23.0", "Android", "13", "Tablet", True)),
        (FIREFOX_LINUX, UserAgent("Firefox", "121.0", "Linux", "", "Desktop", False)),
        (EDGE, UserAgent("Edge", "120.0.2210.91", "Windows", "10.0", "Desktop", False)),
        (GRPC, UserAgent("pug-grpc", "0.1.0", "Linux", "", "Desktop", False)),
        ("curl/8.4.0", UserAgent("curl", "8.4.0", "", "", "Desktop", False)),
        ("", UserAgent()),
        ("(nothing to see)", UserAgent()),
    ],
)
def test_known_agents(header: str, expected: UserAgent) -> None:
    assert parse_user_agent(header) == expected


def test_properties_use_the_contract_names() -> None:
    assert parse_user_agent(SAFARI_IPHONE).properties() == {
        "$browser": ("s", "Safari"),
        "$browserVersion": ("s", "17.1"),
        "$os": ("s", "iOS"),
        "$osVersion": ("s", "17.1.2"),
        "$device": ("s", "Mobile"),
        "$mobile": ("b", True),
    }
    assert parse_user_agent("").properties() == {}


@given(st.text(max_size=3000))
def test_any_header_parses_to_strings_without_raising(header: str) -> None:
    parsed = parse_user_agent(header)
    props = parsed.properties()
    assert all(case == "s" for key, (case, _) in props.items() if key != "$mobile")
    assert parsed.mobile == (parsed.device in ("Mobile", "Tablet"))
