"""gunicorn_single_write: a response's head reaches the socket in the same write as its body.

The response is written by gunicorn's own Response to a SOCK_SEQPACKET socket, which keeps
each write a separate record, so the peer sees exactly how many writes there were.
"""

import functools
import http.client
import io
import re
import socket
from pathlib import Path

import pytest
from gunicorn.config import Config
from gunicorn.http import wsgi
from gunicorn.http.parser import RequestParser

import gunicorn_single_write
from app import create_app
from app.static_files import static_url

PATCHED = ("send_headers", "_emit_body", "close", "sendfile")


@pytest.fixture
def unpatched_gunicorn():
    """gunicorn's Response as shipped (nothing in this process installs the patch but these
    tests), restored after each test whatever it did."""
    assert not getattr(wsgi.Response, "_single_write_installed", False)
    saved = {name: wsgi.Response.__dict__[name] for name in PATCHED}
    yield
    for name, method in saved.items():
        setattr(wsgi.Response, name, method)
    wsgi.Response._single_write_installed = False


@pytest.fixture
def single_write(unpatched_gunicorn):
    gunicorn_single_write.install()


def serve_one(app, raw_request):
    """Answer one request as a gunicorn worker does; return the records the client received."""
    server_side, client_side = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with server_side, client_side:
        cfg = Config()
        request = next(iter(RequestParser(cfg, iter([raw_request]), ("127.0.0.1", 40000))))
        response, environ = wsgi.create(request, server_side, ("127.0.0.1", 40000), ("127.0.0.1", 8000), cfg)
        body = app(environ, response.start_response)
        try:
            if isinstance(body, environ["wsgi.file_wrapper"]):
                response.write_file(body)
            else:
                for chunk in body:
                    response.write(chunk)
            response.close()
        finally:
            if hasattr(body, "close"):
                body.close()
        server_side.shutdown(socket.SHUT_WR)
        records = []
        while record := client_side.recv(1 << 20):
            records.append(record)
        return records


def parse(records, method="GET"):
    """Read the records back as one HTTP response, with the standard library's parser."""

    class Replay:
        def makefile(self, mode):
            return io.BytesIO(b"".join(records))

    response = http.client.HTTPResponse(Replay(), method=method)
    response.begin()
    return response.status, dict(response.getheaders()), response.read()


def get(path, method="GET"):
    return f"{method} {path} HTTP/1.1\r\nHost: web\r\n\r\n".encode()


@pytest.fixture
def flask_app():
    return create_app({"TESTING": True})


def test_gunicorn_as_shipped_writes_the_head_and_the_body_apart(unpatched_gunicorn, flask_app):
    records = serve_one(flask_app, get("/api/whoami"))
    assert len(records) == 2
    assert records[0].endswith(b"\r\n\r\n")


def test_a_json_response_leaves_in_one_write(single_write, flask_app):
    records = serve_one(flask_app, get("/api/whoami"))
    assert len(records) == 1
    status, headers, body = parse(records)
    assert status == 200
    assert int(headers["Content-Length"]) == len(body) > 0
    assert body.startswith(b"{")


def test_an_error_response_leaves_in_one_write(single_write, flask_app):
    records = serve_one(flask_app, get("/api/no-such-thing"))
    assert len(records) == 1
    status, headers, body = parse(records)
    assert status == 404
    assert headers["Content-Type"] == "application/json"
    assert b'"status": 404' in body or b'"status":404' in body


def test_a_head_request_gets_its_head_alone_in_one_write(single_write, flask_app):
    records = serve_one(flask_app, get("/healthz", method="HEAD"))
    assert len(records) == 1
    status, headers, body = parse(records, method="HEAD")
    assert status == 200
    assert int(headers["Content-Length"]) > 0
    assert body == b""


def test_a_streamed_response_sends_its_head_with_the_first_chunk(single_write):
    def streaming_app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"first "
        yield b""
        yield b"second"

    records = serve_one(streaming_app, get("/"))
    assert records[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert records[0].endswith(b"\r\n\r\n6\r\nfirst \r\n")
    status, headers, body = parse(records)
    assert status == 200
    assert headers["Transfer-Encoding"] == "chunked"
    assert body == b"first second"


def test_an_empty_streamed_response_is_still_well_formed(single_write):
    def empty_app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return []

    records = serve_one(empty_app, get("/"))
    assert len(records) == 1
    status, headers, body = parse(records)
    assert status == 200
    assert headers["Transfer-Encoding"] == "chunked"
    assert body == b""


def test_a_file_response_sends_the_head_first_then_the_whole_file(single_write, flask_app):
    with flask_app.test_request_context():
        url = static_url("css/site.css")
    records = serve_one(flask_app, get(url))
    assert records[0].endswith(b"\r\n\r\n")
    status, headers, body = parse(records)
    assert status == 200
    assert body == (Path(flask_app.root_path) / "static/css/site.css").read_bytes()
    assert int(headers["Content-Length"]) == len(body)


def test_install_is_idempotent(single_write):
    patched = wsgi.Response.send_headers
    gunicorn_single_write.install()
    assert wsgi.Response.send_headers is patched


def without_date(records):
    return re.sub(rb"\r\nDate: [^\r]*", b"", b"".join(records))


def status_app(status, body=b""):
    def app(environ, start_response):
        start_response(status, [("Content-Type", "text/plain")])
        return [body]

    return app


CASES = {
    "json": (None, get("/api/whoami")),
    "head": (None, get("/healthz", method="HEAD")),
    "http/1.0": (None, b"GET /healthz HTTP/1.0\r\n\r\n"),
    "204": (status_app("204 No Content"), get("/")),
    "304": (status_app("304 Not Modified"), get("/")),
}


@pytest.mark.parametrize("case", CASES)
def test_the_bytes_on_the_wire_are_gunicorns_own(case, unpatched_gunicorn, flask_app):
    app, raw_request = CASES[case]
    app = app or flask_app
    # Each response has a request id of its own (and /api/whoami the pid): compare the rest.
    scrub = functools.partial(re.sub, rb'"(pid|request_id)":[^,}]*|X-Request-ID: [^\r]*', b"")
    shipped = scrub(without_date(serve_one(app, raw_request)))
    gunicorn_single_write.install()
    records = serve_one(app, raw_request)
    assert len(records) == 1
    assert scrub(without_date(records)) == shipped


def test_a_file_without_a_descriptor_goes_out_with_its_head(single_write):
    def bytesio_file_app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
        return environ["wsgi.file_wrapper"](io.BytesIO(b"hello"))

    records = serve_one(bytesio_file_app, get("/"))
    assert len(records) == 1
    assert parse(records)[2] == b"hello"

