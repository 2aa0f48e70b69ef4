"""Flask: ``app.wsgi_app = PugWSGIMiddleware(app.wsgi_app)``, under Flask's own test client."""

from __future__ import annotations

import flask

from pug_grpc import Pug
from pug_grpc.testing import LocalServer
from pug_grpc.web import PugWSGIMiddleware
from tests.web.conftest import CHROME_MAC, auto, received


def make_app(pug: Pug) -> flask.Flask:
    app = flask.Flask(__name__)

    @app.post("/checkout/<order>")
    def checkout(order: str) -> str:
        with pug.context(page_title="Checkout", properties={"order": order}):
            pug.track(flask.request.headers.get("X-User", "anon"), "checkout.done")
        return "ok"

    app.wsgi_app = PugWSGIMiddleware(app.wsgi_app)  # type: ignore[method-assign]
    return app


def test_flask_views_track_with_the_visitors_context(server: LocalServer, client: Pug) -> None:
    http = make_app(client).test_client()
    response = http.post(
        "/checkout/o-17?utm_campaign=spring",
        headers={
            "User-Agent": CHROME_MAC,
            "Referer": "https://www.bing.com/",
            "Accept-Language": "nb-NO,nb;q=0.9",
            "X-User": "alice",
        },
        base_url="https://shop.example",
    )
    assert response.status_code == 200
    (event,) = received(server, client)
    assert event.distinct_id == "alice"
    found = auto(event)
    assert found["$url"] == "https://shop.example/checkout/o-17?utm_campaign=spring"
    assert found["$referrer"] == "https://www.bing.com/"
    assert found["$locale"] == "nb-NO"
    assert found["$pageTitle"] == "Checkout"
    assert found["$browser"] == "Chrome"
    assert event.custom_properties["order"].string_value == "o-17"
    (row,) = server.store.events(server.project_id, kind="checkout.done")
    assert row.auto_props["$channel"] == ("s", "organic_search")
    assert row.auto_props["$utmCampaign"] == ("s", "spring")
