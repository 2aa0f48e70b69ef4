"""Django: ``pug_grpc.web.django.PugDjangoMiddleware`` in MIDDLEWARE, under Django's clients."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import django
import pytest
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.test import AsyncClient
from django.test import Client as DjangoClient
from django.urls import path

from pug_grpc import Pug
from pug_grpc.testing import LocalServer
from tests.web.conftest import CHROME_MAC, auto, received

CURRENT: dict[str, Pug] = {}


def sync_view(request: HttpRequest, slug: str) -> HttpResponse:
    CURRENT["pug"].track("alice", "article.read", {"slug": slug})
    return HttpResponse("ok")


async def async_view(request: HttpRequest) -> HttpResponse:
    await asyncio.sleep(0)
    CURRENT["pug"].track("alice", "async.read")
    return HttpResponse("ok")


urlpatterns = [path("articles/<slug:slug>", sync_view), path("async", async_view)]

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="tests-only",
        ROOT_URLCONF=__name__,
        ALLOWED_HOSTS=["testserver", "blog.example"],
        MIDDLEWARE=["pug_grpc.web.django.PugDjangoMiddleware"],
        USE_X_FORWARDED_HOST=True,
        SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"),
    )
    django.setup()


@pytest.fixture
def pug(client: Pug) -> Iterator[Pug]:
    CURRENT["pug"] = client
    yield client
    CURRENT.clear()


HEADERS: dict[str, str] = {
    "User-Agent": CHROME_MAC,
    "Referer": "https://duckduckgo.com/",
    "Accept-Language": "pt-BR,pt;q=0.9",
}


def test_django_sync_views_carry_the_context(server: LocalServer, pug: Pug) -> None:
    response = DjangoClient().get(
        "/articles/hello?utm_source=feed",
        headers={**HEADERS, "X-Forwarded-Host": "blog.example", "X-Forwarded-Proto": "https"},
    )
    assert response.status_code == 200
    (event,) = received(server, pug)
    found = auto(event)
    assert found["$url"] == "https://blog.example/articles/hello?utm_source=feed"
    assert found["$referrer"] == "https://duckduckgo.com/"
    assert found["$locale"] == "pt-BR"
    assert found["$browser"] == "Chrome"
    (row,) = server.store.events(server.project_id, kind="article.read")
    assert row.auto_props["$channel"] == ("s", "organic_search")


def test_django_async_views_carry_the_context(server: LocalServer, pug: Pug) -> None:
    async def main() -> int:
        response = await AsyncClient().get("/async", headers=HEADERS)
        return int(response.status_code)

    assert asyncio.run(main()) == 200
    (event,) = received(server, pug)
    assert auto(event)["$url"] == "http://testserver/async"
    assert auto(event)["$locale"] == "pt-BR"


def test_a_host_django_refuses_gives_no_url_and_the_event_still_goes(
    server: LocalServer, pug: Pug
) -> None:
    response = DjangoClient().get("/articles/x", headers={**HEADERS, "Host": "evil.example"})
    assert response.status_code == 200  # the view did not ask for the host: Django let it be
    (event,) = received(server, pug)
    assert "$url" not in auto(event)
    assert auto(event)["$referrer"] == "https://duckduckgo.com/"
