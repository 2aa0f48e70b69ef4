"""The plain WSGI and ASGI middleware, and what they read from requests."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from typing import Any
from wsgiref.types import StartResponse, WSGIEnvironment

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.test import Client

from pug_grpc import Pug
from pug_grpc._ingest.context import CONTEXT_KEYS
from pug_grpc._ingest.messages import AUTO_PROPERTIES
from pug_grpc.testing import LocalServer
from pug_grpc.web import PugASGIMiddleware, PugWSGIMiddleware, asgi_facts, wsgi_facts
from pug_grpc.web._requests import page_url, preferred_locale
from tests.web.conftest import CHROME_MAC, auto, received

HEADERS = {
    "User-Agent": CHROME_MAC,
    "Referer": "https://news.example/story",
    "Accept-Language": "fr-CH, fr;q=0.9, en;q=0.8, *;q=0.5",
}


def wsgi_app(pug: Pug) -> Any:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        pug.track("visitor", "wsgi.view")
        start_response("200 OK", [("Content-Type", "text/plain")])

        def body() -> Iterator[bytes]:
            yield b"a"
            pug.track("visitor", "wsgi.streamed")  # while the server sends the body
            yield b"b"

        return body()

    return app


def test_wsgi_events_carry_the_request_also_while_the_body_streams(
    server: LocalServer, client: Pug
) -> None:
    http = Client(PugWSGIMiddleware(wsgi_app(client)))
    response = http.get("/caf%C3%A9/menu?utm_source=ads&x=1", headers=HEADERS)
    assert response.data == b"ab"
    client.track("visitor", "after.request")
    view, streamed, after = received(server, client)
    for event in (view, streamed):
        found = auto(event)
        assert found["$url"] == "http://localhost/caf%C3%A9/menu?utm_source=ads&x=1"
        assert found["$referrer"] == "https://news.example/story"
        assert found["$locale"] == "fr-CH"
        assert found["$browser"] == "Chrome"
        assert found["$os"] == "macOS"
        assert set(found) <= CONTEXT_KEYS | set(AUTO_PROPERTIES)
    assert set(auto(after)) == set(AUTO_PROPERTIES)
    (row,) = server.store.events(server.project_id, kind="wsgi.view")
    assert row.auto_props["$pathname"] == ("s", "/caf%C3%A9/menu")
    assert row.auto_props["$utmSource"] == ("s", "ads")


def test_the_forwarded_scheme_and_host_are_used_unless_turned_off(
    server: LocalServer, client: Pug
) -> None:
    forwarded = {"X-Forwarded-Proto": "https, http", "X-Forwarded-Host": "shop.example, lb"}
    Client(PugWSGIMiddleware(wsgi_app(client))).get("/p", headers=forwarded)
    Client(PugWSGIMiddleware(wsgi_app(client), trust_forwarded=False)).get("/p", headers=forwarded)
    events = [e for e in received(server, client) if e.kind == "wsgi.view"]
    assert [auto(e)["$url"] for e in events] == ["https://shop.example/p", "http://localhost/p"]


async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
    assert scope["type"] == "http"
    pug: Pug = scope["state"]["pug"]
    await asyncio.sleep(0)
    pug.track("visitor", scope["path"].strip("/") or "root")
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def test_asgi_requests_each_get_their_own_context(server: LocalServer, client: Pug) -> None:
    app = PugASGIMiddleware(asgi_app)

    async def with_state(scope: Any, receive: Any, send: Any) -> None:
        scope["state"] = {"pug": client}
        await app(scope, receive, send)

    async def main() -> None:
        transport = httpx.ASGITransport(app=with_state)
        async with httpx.AsyncClient(transport=transport, base_url="https://api.example") as http:
            await asyncio.gather(
                *(
                    http.get(f"/page-{n}", headers={"Referer": f"https://r{n}.example/"})
                    for n in range(10)
                )
            )

    asyncio.run(main())
    events = received(server, client)
    assert len(events) == 10
    for event in events:
        n = event.kind.removeprefix("page-")
        found = auto(event)
        assert found["$url"] == f"https://api.example/page-{n}"
        assert found["$referrer"] == f"https://r{n}.example/"


def test_lifespan_passes_through_without_a_context() -> None:
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    asyncio.run(PugASGIMiddleware(app)({"type": "lifespan"}, None, None))  # type: ignore[arg-type]
    assert seen == ["lifespan"]


def test_websocket_and_server_fallbacks_make_a_url() -> None:
    facts = asgi_facts(
        {"type": "websocket", "scheme": "wss", "server": ("10.0.0.1", 8443), "path": "/ws"}
    )
    assert facts.url == "https://10.0.0.1:8443/ws"
    environ = {"wsgi.url_scheme": "https", "SERVER_NAME": "svc", "SERVER_PORT": "443"}
    assert wsgi_facts(environ).url == "https://svc/"


@settings(max_examples=400, deadline=None)
@given(header=st.text(max_size=200))
def test_any_accept_language_gives_one_of_its_own_tags_or_none(header: str) -> None:
    found = preferred_locale(header)
    if found is not None:
        assert found in header
        assert found != "*"


def test_accept_language_weights_pick_the_preferred_tag() -> None:
    assert preferred_locale("en;q=0.5, de-AT;q=0.9, fr") == "fr"
    assert preferred_locale("en;q=0.5, de-AT;q=0.9") == "de-AT"
    assert preferred_locale("*, en;q=0") is None
    assert preferred_locale("nl;q=abc, pt-BR") == "pt-BR"


@settings(max_examples=300, deadline=None)
@given(
    path=st.text(max_size=60),
    query=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=40),
    agent=st.text(max_size=100),
    referrer=st.text(max_size=100),
)
def test_any_request_parts_give_facts_without_raising(
    path: str, query: str, agent: str, referrer: str
) -> None:
    environ = {
        "wsgi.url_scheme": "http",
        "HTTP_HOST": "a.example",
        "PATH_INFO": path.encode("utf-8", "surrogatepass").decode("latin-1"),
        "QUERY_STRING": query,
        "HTTP_USER_AGENT": agent.encode("utf-8", "surrogatepass").decode("latin-1"),
        "HTTP_REFERER": referrer.encode("utf-8", "surrogatepass").decode("latin-1"),
    }
    facts = wsgi_facts(environ)
    assert facts.url is not None
    assert facts.url.startswith("http://a.example/")
    assert " " not in facts.url.split("?")[0]
    facts.derived()  # the context they make is built without raising
    assert page_url("gopher", "h", path, "") is not None
