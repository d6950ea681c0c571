"""Unit tests of the HTML page and the fingerprinted static URLs it links."""

import hashlib
import re

import pytest

from app.static_files import STATIC_DIR


def test_index_renders_html_linking_fingerprinted_static_files(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    links = re.findall(r'(?:href|src)="(/static/[^"]+)"', response.get_data(as_text=True))
    assert {"css", "js", "img"} <= {link.split("/")[2] for link in links}
    for link in links:
        assert re.search(r"\.[0-9a-f]{12}\.[a-z]+$", link), link


def test_fingerprint_is_the_content_hash(client):
    page = client.get("/").get_data(as_text=True)
    digest = hashlib.sha256((STATIC_DIR / "css/site.css").read_bytes()).hexdigest()[:12]
    assert f"/static/css/site.{digest}.css" in page


def test_fingerprinted_and_plain_static_urls_serve_the_same_file(client):
    page = client.get("/").get_data(as_text=True)
    css_link = re.search(r'href="(/static/css/site\.[0-9a-f]{12}\.css)"', page)[1]
    expected = (STATIC_DIR / "css/site.css").read_bytes()
    assert client.get(css_link).data == expected
    assert client.get("/static/css/site.css").data == expected


def test_stale_fingerprint_is_a_404(client):
    assert client.get("/static/css/site.000000000000.css").status_code == 404


@pytest.mark.parametrize("path", ["/static/../__init__.py", "/static/%2e%2e/__init__.py", "/static/nope.css"])
def test_static_route_serves_nothing_outside_the_static_folder(client, path):
    assert client.get(path).status_code == 404
