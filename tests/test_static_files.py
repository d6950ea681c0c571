"""Static files are nginx's: cache headers by name, gzip, and never a request to gunicorn."""

import re
import time

import pytest

from composed import ROOT
from stack.static_urls import fingerprint

STATIC_DIR = ROOT / "services/web/app/static"


def static_url(filename):
    """The URL the app's url_for("static", ...) builds inside the stack (stack/static_urls.py)."""
    return f"/static/{fingerprint(STATIC_DIR, filename)}"


def test_fingerprinted_file_is_cached_for_a_year_and_gzipped(stack):
    response = stack.get(static_url("css/site.css"), headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert response.headers["Content-Encoding"] == "gzip"
    assert response.headers["Content-Type"].startswith("text/css")
    # requests decompresses: the body is the file itself.
    assert response.content == (STATIC_DIR / "css/site.css").read_bytes()


def test_page_links_resolve_to_immutable_static_files(stack):
    links = re.findall(r'(?:href|src)="(/static/[^"]+)"', stack.get("/").text)
    assert len(links) >= 3
    for link in links:
        response = stack.get(link)
        assert response.status_code == 200, link
        assert "immutable" in response.headers["Cache-Control"], link


def test_plain_name_must_revalidate_and_answers_304_when_unchanged(stack):
    first = stack.get("/static/js/live.js")
    assert first.status_code == 200
    assert first.headers["Cache-Control"] == "no-cache"
    again = stack.get("/static/js/live.js", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304


def test_wrong_fingerprint_or_missing_file_is_a_404(stack):
    assert stack.get("/static/css/site.000000000000.css").status_code == 404
    assert stack.get("/static/no-such-file.txt").status_code == 404


@pytest.mark.parametrize(
    "path", ["/static/../app/__init__.py", "/static/%2e%2e/__init__.py", "/static/..%2f..%2fetc/passwd"]
)
def test_nothing_outside_the_static_folder_is_served(stack, path):
    response = stack.get(path)
    assert response.status_code in (400, 404)
    assert "import" not in response.text and "root:" not in response.text


def test_static_requests_never_reach_gunicorn(stack):
    marker = f"static-probe-{time.monotonic_ns()}"
    for relative in ("css/site.css", "js/live.js", "img/logo.svg"):
        assert stack.get(f"/static/{relative}", params={"probe": marker}).status_code == 200
        assert stack.get(static_url(relative), params={"probe": marker}).status_code == 200
    # A dynamic request with the same marker must show up in web's log: proves the log is read.
    assert stack.get("/healthz", params={"probe": marker}).status_code == 200
    web_log = stack.flushed_logs("web")
    assert f"/healthz?probe={marker}" in web_log
    assert not [line for line in web_log.splitlines() if marker in line and "/static/" in line]
    assert len([line for line in web_log.splitlines() if marker in line]) == 1
