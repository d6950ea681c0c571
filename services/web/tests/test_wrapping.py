"""The stack around an app that is not the demo: a foreign Flask app drops in (stack/wrapping.py)."""

import hashlib

import pytest
from flask import Flask, url_for


@pytest.fixture
def foreign(tmp_path):
    """A Flask app with none of the demo's routes, no health endpoint, and a static folder."""
    static = tmp_path / "static"
    static.mkdir()
    (static / "app.css").write_text("body { color: teal; }\n")
    app = Flask("foreign", static_folder=str(static))

    @app.get("/")
    def index():
        return f'<!doctype html><link rel="stylesheet" href="{url_for("static", filename="app.css")}">'

    @app.get("/api/orders")
    def orders():
        return {"orders": []}

    return app


def test_the_stack_answers_healthz_for_an_app_without_one(wrapped, foreign):
    response = wrapped(foreign, PROBES=False).get("/healthz")
    assert response.status_code == 200 and response.json == {"status": "ok"}


def test_the_apps_own_pages_and_api_are_its_own(wrapped, foreign):
    client = wrapped(foreign)
    assert client.get("/api/orders").json == {"orders": []}
    page = client.get("/", headers={"X-Request-ID": "foreign-page-0001"})
    assert page.status_code == 200
    assert page.headers["X-Request-ID"] == "foreign-page-0001"
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]


def test_the_apps_static_links_are_fingerprinted_and_served_without_nginx(wrapped, foreign):
    client = wrapped(foreign)
    digest = hashlib.sha256(b"body { color: teal; }\n").hexdigest()[:12]
    assert f'href="/static/app.{digest}.css"' in client.get("/").text
    assert client.get(f"/static/app.{digest}.css").text == "body { color: teal; }\n"
    assert client.get("/static/app.000000000000.css").status_code == 404


def test_with_the_probes_off_only_healthz_is_the_stacks(wrapped, foreign):
    client = wrapped(foreign, PROBES=False)
    # Flask's own 404 page: the path is the app's, which has no such route.
    response = client.get("/api/whoami")
    assert response.status_code == 404 and response.mimetype == "text/html"


def test_with_the_probes_on_their_errors_are_json_whatever_the_app_answers(wrapped, foreign):
    client = wrapped(foreign)
    assert client.get("/api/whoami").json["pid"]
    refused = client.delete("/api/whoami")
    assert refused.status_code == 405 and refused.json["error"] == "method_not_allowed"
    assert client.get("/api/sleep/soon").json["status"] == 400
    assert client.get("/api/whoami/extra").json["error"] == "not_found"


def test_an_app_that_sends_its_own_content_policy_keeps_it(wrapped):
    app = Flask("own-policy")

    @app.get("/")
    def index():
        return "<p>hi</p>", 200, {"Content-Security-Policy": "default-src https://cdn.example"}

    assert wrapped(app).get("/").headers["Content-Security-Policy"] == "default-src https://cdn.example"
