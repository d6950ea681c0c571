"""Unit tests of the demo page inside the stack, and the fingerprinted static URLs it links."""

import hashlib
import re
from pathlib import Path

import pytest

import app as demo

STATIC_DIR = Path(demo.__file__).parent / "static"


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


def test_the_html_page_has_a_policy_allowing_only_its_own_files(client):
    policy = client.get("/").headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'self'" in policy and "style-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy and "http" not in policy


def test_json_responses_carry_no_html_policy(client):
    assert "Content-Security-Policy" not in client.get("/api/whoami").headers


@pytest.mark.parametrize("path", ["/api/whoami", "/", "/api/nope"])
def test_an_untrusted_host_is_refused_by_the_probes_and_the_app(wrapped, path):
    trusting = wrapped(TRUSTED_HOSTS=["example.com"])
    assert trusting.get(path, headers={"Host": "example.com"}).status_code in (200, 404)
    refused = trusting.get(path, headers={"Host": "evil.example.net"})
    assert refused.status_code == 400


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "example.com", "evil.example.net"])
def test_healthz_answers_whatever_the_host_since_health_checks_send_their_own(wrapped, host):
    # Docker's check asks 127.0.0.1, nginx's localhost, a load balancer its own address.
    response = wrapped(TRUSTED_HOSTS=["example.com"]).get("/healthz", headers={"Host": host})
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
