"""Your own app drops in: a foreign Flask app, placed where the README says, runs in the stack.

The app below has none of the demo's routes and no health endpoint: only `create_app()` in
services/web/app/__init__.py and a file in services/web/app/static/. The test copies the
repository's services and compose file to a folder of its own, puts this app where the demo
was, builds images under a tag of their own, and drives the composed stack.
"""

import re
import shutil
import subprocess
import uuid

import pytest

from composed import ROOT, composed_stack, log_entries

FOREIGN_APP = """\
from flask import Flask, request, url_for


def create_app():
    app = Flask(__name__)

    @app.get("/")
    def home():
        css = url_for("static", filename="notes.css")
        return f'<!doctype html><title>Notes</title><link rel="stylesheet" href="{css}"><h1>Notes</h1>'

    @app.get("/notes")
    def notes():
        return {"notes": ["buy milk"], "seen_request_id": request.headers.get("X-Request-ID")}

    return app
"""
FOREIGN_CSS = "h1 { color: rebeccapurple; }\n"


@pytest.fixture(scope="module")
def foreign_stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("drop-in")
    shutil.copy(ROOT / "compose.yaml", root / "compose.yaml")
    shutil.copytree(ROOT / "services", root / "services", ignore=shutil.ignore_patterns("__pycache__", "tests"))
    app = root / "services" / "web" / "app"
    shutil.rmtree(app)
    (app / "static").mkdir(parents=True)
    (app / "__init__.py").write_text(FOREIGN_APP)
    (app / "static" / "notes.css").write_text(FOREIGN_CSS)
    tag = f"drop-in-{uuid.uuid4().hex[:8]}"
    try:
        with composed_stack("drop-in", env={"IMAGE_TAG": tag}, root=root) as composed:
            yield composed
    finally:
        subprocess.run(
            ["docker", "image", "rm", "--force", f"flask-stack/web:{tag}", f"flask-stack/nginx:{tag}"],
            capture_output=True,
            timeout=120,
            check=False,
        )


def test_a_foreign_flask_app_drops_in_and_the_stack_serves_it(foreign_stack):
    # Healthy: `up --wait` returned, and /healthz is the stack's, not the app's.
    assert foreign_stack.get("/healthz").json() == {"status": "ok"}
    for service in ("web", "nginx"):
        (container,) = foreign_stack.running(service)
        assert container.attrs["State"]["Health"]["Status"] == "healthy"

    # nginx proxies the app's pages, and every response carries the request id.
    page = foreign_stack.get("/", headers={"X-Request-ID": "drop-in-page-0001"})
    assert page.status_code == 200 and "<h1>Notes</h1>" in page.text
    assert page.headers["X-Request-ID"] == "drop-in-page-0001"
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    notes = foreign_stack.get("/notes", headers={"X-Request-ID": "drop-in-notes-0001"})
    assert notes.json() == {"notes": ["buy milk"], "seen_request_id": "drop-in-notes-0001"}
    assert notes.headers["X-Request-ID"] == "drop-in-notes-0001"
    generated = foreign_stack.get("/notes")
    assert re.fullmatch(r"[A-Za-z0-9._-]{8,128}", generated.headers["X-Request-ID"])

    # nginx serves the app's static files, under the fingerprinted name url_for built and
    # under the plain one; gunicorn never sees them.
    (linked,) = re.findall(r'href="(/static/[^"]+)"', page.text)
    assert re.fullmatch(r"/static/notes\.[0-9a-f]{12}\.css", linked), linked
    for path, cache in ((linked, "public, max-age=31536000, immutable"), ("/static/notes.css", "no-cache")):
        static = foreign_stack.get(path)
        assert static.status_code == 200 and static.text == FOREIGN_CSS
        assert static.headers["Cache-Control"] == cache
    web_log = foreign_stack.logs("web")
    logged_ids = {entry.get("request_id") for entry in log_entries(web_log)}
    assert "GET /notes" in web_log and "drop-in-notes-0001" in logged_ids
    assert "drop-in-page-0001" in logged_ids
    assert "/static/" not in web_log

    # The demo's routes are not there: a path the app lacks is the app's own 404.
    assert foreign_stack.get("/no-such-page").status_code == 404
