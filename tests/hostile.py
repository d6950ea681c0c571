"""Shared by the hostile-input tests: raw HTTP over a socket, response checks, and a guard
that the stack comes out of each test module unharmed."""

import json
import re
import socket
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
from requests.structures import CaseInsensitiveDict

from composed import wait_for_access_log_flush
from stack.security_headers import HTML_POLICY

# nginx's headers on every response (snippets/response-headers.conf).
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}
# nginx's policy for anything the app did not give one (everything but the app's HTML).
DENY_ALL_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# The app's policy for its HTML pages, errors included (services/web/stack/security_headers.py).
APP_HTML_CSP = HTML_POLICY
BODY_LIMIT = 1024 * 1024  # NGINX_CLIENT_MAX_BODY_SIZE=1m and APP_MAX_BODY_BYTES=1048576
# Strings that would only appear in a response if a file outside /static/ leaked.
LEAK_MARKERS = (b"root:x:0:0", b"worker_processes", b"server_tokens", b"proxy_pass", b"PATH=")


@dataclass
class RawResponse:
    """One HTTP/1.x response read off a socket; status_code is None without a status line."""

    status_code: int | None
    reason: str
    header_lines: list[tuple[str, str]]
    content: bytes
    headers: CaseInsensitiveDict = field(init=False)

    def __post_init__(self):
        self.headers = CaseInsensitiveDict()
        for name, value in self.header_lines:
            self.headers[name] = f"{self.headers[name]}, {value}" if name in self.headers else value

    @property
    def text(self):
        return self.content.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.content)

    def count(self, name):
        return sum(1 for header, _ in self.header_lines if header.lower() == name.lower())


def request_bytes(method, target, headers=(), body=b"", version=b"HTTP/1.1", host=b"127.0.0.1"):
    """A request as bytes, Host first unless host is None; header values are sent as given."""
    lines = [b"%s %s %s" % (method, target, version)]
    if host is not None:
        lines.append(b"Host: " + host)
    lines += [name + b": " + value for name, value in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def exchange(port, data, deadline_s=10, idle_s=1.0):
    """Send raw bytes to nginx; read until it closes, or until idle_s without data once a
    response has started, or until the deadline. Return the bytes read."""
    chunks = []
    deadline = time.monotonic() + deadline_s
    with socket.create_connection(("127.0.0.1", port), timeout=deadline_s) as sock:
        sock.sendall(data)
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(min(left, idle_s) if chunks else left)
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def parse_responses(raw):
    """Every response in raw (bodies framed by Content-Length or chunked); a reply without a
    status line (HTTP/0.9) is one response with status_code None."""
    if raw and not raw.startswith(b"HTTP/"):
        return [RawResponse(None, "", [], raw)]
    responses = []
    while raw.startswith(b"HTTP/"):
        head, separator, rest = raw.partition(b"\r\n\r\n")
        if not separator:
            raise AssertionError(f"incomplete response head: {raw[:200]!r}")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        _, code, reason = ([*status_line.split(" ", 2), ""])[:3]
        header_lines = [tuple(part.strip() for part in line.split(":", 1)) for line in lines]
        headers = CaseInsensitiveDict(header_lines)
        if "chunked" in headers.get("Transfer-Encoding", ""):
            body, rest = _dechunk(rest)
        elif "Content-Length" in headers:
            length = int(headers["Content-Length"])
            body, rest = rest[:length], rest[length:]
        else:
            body, rest = rest, b""
        responses.append(RawResponse(int(code), reason, header_lines, body))
        raw = rest
    return responses


def _dechunk(data):
    body = b""
    while True:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return body, data.partition(b"\r\n")[2]
        body, data = body + data[:size], data[size + 2 :]


def send(stack, data, **kwargs):
    """Send raw bytes to the stack; the single response it must get."""
    responses = parse_responses(exchange(stack.port, data, **kwargs))
    assert len(responses) == 1, f"expected one response, got {[r.status_code for r in responses]}"
    return responses[0]


def new_request_id():
    return f"hostile-{uuid.uuid4().hex}"


def assert_json_error(response, status, error=None):
    """A JSON error body whose status and request id match the response's."""
    assert response.status_code == status, (response.status_code, response.text[:300])
    assert response.headers["Content-Type"].startswith("application/json"), response.headers["Content-Type"]
    body = response.json()
    assert body["status"] == status
    assert body["error"] and body["message"]
    if error:
        assert body["error"] == error
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body


def assert_security_headers(response, csp=DENY_ALL_CSP):
    """nginx's headers, each exactly once; a content policy; never HSTS over plain http."""
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, f"{name}: {response.headers.get(name)!r}"
    assert response.headers.get("Content-Security-Policy") == csp
    assert "Strict-Transport-Security" not in response.headers
    assert re.fullmatch(r"[A-Za-z0-9._-]{8,128}", response.headers["X-Request-ID"])


def web_logs(stack, since=None):
    """web's log since the given time (the test stacks switch gunicorn's access log on)."""
    wait_for_access_log_flush()
    return "".join(c.logs(since=since).decode("utf-8", "replace") for c in stack.containers("web"))


def web_state(stack):
    """Each web container's id, start time and restart count: changes if one dies."""
    states = {}
    for container in stack.running("web"):
        container.reload()
        states[container.id] = (container.attrs["State"]["StartedAt"], container.attrs["RestartCount"])
    return states


@contextmanager
def comes_out_unharmed(stack):
    """Around hostile requests to `stack`: afterwards it still serves, no web container or
    gunicorn worker was restarted, nothing logged a traceback, and no response was a 500,
    502, 503 or 504 (nginx's access log covers every request, including those no test
    looked at)."""
    # The lines of requests made before are written by now, so none counts here.
    wait_for_access_log_flush()
    started = int(time.time())  # whole seconds: what the Docker API's `since` takes
    before = web_state(stack)
    yield
    health = stack.get("/healthz")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert stack.get("/api/whoami").status_code == 200
    assert web_state(stack) == before, "a web container restarted"
    logs = web_logs(stack, since=started)
    assert "Traceback" not in logs, logs[-3000:]
    assert "Booting worker" not in logs, "a gunicorn worker was replaced:\n" + logs[-3000:]
    failures = [line for line in stack.nginx_access_log(since=started) if line["status"] in (500, 502, 503, 504)]
    assert not failures, failures[:5]


@pytest.fixture(scope="module", autouse=True)
def stack_comes_out_unharmed(stack):
    """After every hostile test module that imports this guard, the session's stack is unharmed."""
    with comes_out_unharmed(stack):
        yield
