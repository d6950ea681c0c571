"""/api/outbound/<ms> calls a real HTTP upstream (a local server thread) and waits for it."""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class SlowUpstream(BaseHTTPRequestHandler):
    def do_GET(self):
        prefix, _, ms = self.path.rpartition("/")
        if prefix != "/sleep" or not ms.isdigit():
            self.send_error(404)
            return
        time.sleep(int(ms) / 1000)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def upstream_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), SlowUpstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def client_for(wrapped):
    return lambda url: wrapped(OUTBOUND_URL=url)


def test_there_is_no_outbound_endpoint_without_an_upstream(client):
    response = client.get("/api/outbound/1")
    assert response.status_code == 404
    assert response.json["error"] == "not_found"


def test_the_call_waits_for_the_upstream(upstream_url, client_for):
    response = client_for(upstream_url).get("/api/outbound/30")
    assert response.status_code == 200
    assert response.json["upstream_status"] == 200
    assert response.json["waited_ms"] == 30
    assert response.json["elapsed_ms"] >= 29


def test_an_upstream_error_is_a_json_502(upstream_url, client_for):
    # The upstream has no such path: its 404 is the app's 502, never passed on as is.
    response = client_for(upstream_url + "/missing").get("/api/outbound/0")
    assert response.status_code == 502
    assert response.json["message"] == "the upstream answered 404"


def test_an_unreachable_upstream_is_a_json_502(client_for):
    # Port 9 on the loopback: nothing listens there, the connection is refused at once.
    response = client_for("http://127.0.0.1:9").get("/api/outbound/0")
    assert response.status_code == 502
    assert "could not be reached" in response.json["message"]


def test_the_wait_is_bounded_like_sleep(upstream_url, client_for):
    response = client_for(upstream_url).get("/api/outbound/99999")
    assert response.status_code == 400
    assert "ms must be at most" in response.json["message"]
