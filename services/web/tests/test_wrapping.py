"""The stack around an app that is not the demo: a foreign Flask app drops in (stack/wrapping.py)."""

import hashlib
import re

import pytest
from flask import Flask, request, url_for

from stack.drain import DrainFlag


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


def app_with_an_upload_route(**config):
    """An app of a user's: one route that takes a body, and maybe a body limit of its own."""
    app = Flask(__name__)
    app.config.update(config)

    @app.post("/upload")
    def upload():
        return {"bytes": len(request.get_data())}

    return app


def test_the_body_limit_reaches_a_route_of_the_users_app(wrapped):
    client = wrapped(app_with_an_upload_route(), MAX_CONTENT_LENGTH=10)
    assert client.post("/upload", data=b"x" * 10).get_json() == {"bytes": 10}
    assert client.post("/upload", data=b"x" * 5000).status_code == 413


def test_an_app_that_sets_its_own_body_limit_keeps_it(wrapped):
    client = wrapped(app_with_an_upload_route(MAX_CONTENT_LENGTH=100), MAX_CONTENT_LENGTH=10)
    assert client.post("/upload", data=b"x" * 100).get_json() == {"bytes": 100}
    assert client.post("/upload", data=b"x" * 101).status_code == 413


@pytest.mark.parametrize("supplied", ["bad id with spaces <script>", "short", ""])
def test_a_draining_replicas_503_carries_a_well_formed_request_id_never_a_bad_one(wrapped, tmp_path, supplied):
    client = wrapped()
    DrainFlag(tmp_path / "draining").raise_()
    response = client.get("/api/whoami", headers={"X-Request-ID": supplied} if supplied else {})
    assert response.status_code == 503
    made = response.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", made), made
    assert response.get_json()["request_id"] == made
    assert "<script>" not in response.get_data(as_text=True)


def test_a_draining_replicas_503_keeps_a_well_formed_request_id(wrapped, tmp_path):
    client = wrapped()
    DrainFlag(tmp_path / "draining").raise_()
    response = client.get("/api/whoami", headers={"X-Request-ID": "nginx-id-1234"})
    assert response.status_code == 503
    assert response.headers["X-Request-ID"] == "nginx-id-1234"
    assert response.get_json()["request_id"] == "nginx-id-1234"
