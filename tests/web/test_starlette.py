"""FastAPI and Starlette: ``app.add_middleware(PugASGIMiddleware)``, under their TestClient."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from pug_grpc import Pug
from pug_grpc.testing import LocalServer
from pug_grpc.web import PugASGIMiddleware
from tests.web.conftest import CHROME_MAC, auto, received

HEADERS = {
    "User-Agent": CHROME_MAC,
    "Referer": "https://chatgpt.com/",
    "Accept-Language": "es-MX;q=0.8, en-US",
}


def fastapi_app(pug: Pug) -> FastAPI:
    app = FastAPI()

    @app.get("/items/{item}")
    async def item_async(item: str) -> dict[str, str]:
        pug.track("alice", "item.viewed", {"item": item})
        return {"item": item}

    @app.get("/sync/{item}")
    def item_sync(item: str, request: Request) -> dict[str, str]:  # runs in a worker thread
        pug.track("alice", "item.synced", {"item": item})
        return {"item": item}

    app.add_middleware(PugASGIMiddleware)
    return app


def test_fastapi_async_and_threaded_endpoints_carry_the_context(
    server: LocalServer, client: Pug
) -> None:
    with TestClient(fastapi_app(client), base_url="https://api.example") as http:
        assert http.get("/items/i-1?ref=home", headers=HEADERS).status_code == 200
        assert http.get("/sync/i-2", headers=HEADERS).status_code == 200
    viewed, synced = received(server, client)
    assert auto(viewed)["$url"] == "https://api.example/items/i-1?ref=home"
    assert auto(synced)["$url"] == "https://api.example/sync/i-2"
    for event in (viewed, synced):
        found = auto(event)
        assert found["$referrer"] == "https://chatgpt.com/"
        assert found["$locale"] == "en-US"
        assert found["$browser"] == "Chrome"
    (row,) = server.store.events(server.project_id, kind="item.viewed")
    assert row.auto_props["$referrerDomain"] == ("s", "chatgpt.com")


def test_starlette_behind_a_proxy(server: LocalServer, client: Pug) -> None:
    async def home(request: object) -> PlainTextResponse:
        client.track("bob", "home")
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/", home)])
    app.add_middleware(PugASGIMiddleware)
    with TestClient(app) as http:
        http.get(
            "/", headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "www.shop.example"}
        )
    (event,) = received(server, client)
    assert auto(event)["$url"] == "https://www.shop.example/"
