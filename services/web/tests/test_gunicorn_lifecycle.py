"""gunicorn.conf.py's hooks in a real gunicorn: SIGTERM drains first, fat workers are recycled."""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

WEB_DIR = Path(__file__).resolve().parents[1]


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def request(port, method, path):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request(method, path, body=b"x" if method == "POST" else None)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def wait_until_serving(port, deadline_s=20):
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            return request(port, "GET", "/healthz")
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"gunicorn did not serve on port {port} within {deadline_s}s")


@pytest.fixture
def gunicorn(tmp_path):
    """Start gunicorn from gunicorn.conf.py with extra environment; always stopped afterwards."""
    started = []

    def start(**env):
        port = free_port()
        log = tmp_path / f"gunicorn-{port}.log"
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "app.wsgi:application"],
            cwd=WEB_DIR,
            env={**os.environ, "GUNICORN_PORT": str(port), "GUNICORN_WORKER_CLASS": "sync",
                 "GUNICORN_WORKERS": "1", "GUNICORN_WORKER_TMP_DIR": str(tmp_path),
                 "APP_TRUSTED_PROXY_HOPS": "0", **env},
            stdout=log.open("wb"), stderr=subprocess.STDOUT,
        )
        started.append(process)
        wait_until_serving(port)
        return process, port, log

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_sigterm_drains_before_the_listener_closes(gunicorn):
    process, port, log = gunicorn(GUNICORN_DRAIN_SECONDS="2")
    process.send_signal(signal.SIGTERM)
    time.sleep(0.5)

    status, body = request(port, "GET", "/api/whoami")
    assert status == 503 and b'"draining"' in body
    status, body = request(port, "POST", "/api/echo")
    assert status == 200, "a draining replica must still serve what nginx would never resend"

    assert process.wait(15) == 0
    assert "draining for 2s before the graceful stop" in log.read_text()
    with pytest.raises(ConnectionRefusedError):
        request(port, "GET", "/healthz")


def test_a_worker_over_the_memory_ceiling_is_replaced_and_no_request_fails(gunicorn):
    # Any worker holds more than 1 MiB: each one is recycled after its first request.
    _, port, log = gunicorn(GUNICORN_MAX_WORKER_MEMORY_MB="1")
    pids = set()
    for _ in range(4):
        status, body = request(port, "GET", "/api/whoami")
        assert status == 200
        pids.add(body.split(b'"pid":')[1].split(b",")[0])
    assert len(pids) == 4, "every request should have been served by a fresh worker"
    assert log.read_text().count("over the 1 MiB ceiling") >= 4


def test_a_head_gunicorn_refuses_is_answered_in_json(gunicorn):
    _, port, _ = gunicorn()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(b"GET /api/whoami HTTP/1.1\r\nHost: x\r\nX-Note: a\x01b\r\n\r\n")
        reply = b""
        while chunk := conn.recv(4096):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert b"Content-Type: application/json" in head
    error = json.loads(body)
    assert error["status"] == 400 and error["error"] == "bad_request" and error["message"]


def test_a_gevent_worker_serves_a_new_connection_between_another_ones_queued_requests(gunicorn):
    """One connection with many requests queued must not hold a gevent worker until it is done."""
    _, port, _ = gunicorn(GUNICORN_WORKER_CLASS="gevent")
    queued = 60
    # Each costs the worker's CPU for a few milliseconds: the queue lasts a fraction of a second.
    pipelined = b"GET /api/compute/20000 HTTP/1.1\r\nHost: x\r\n\r\n" * queued
    answered = []

    def read_all(conn):
        received = b""
        while received.count(b"HTTP/1.1 200 ") < queued:
            chunk = conn.recv(65536)
            if not chunk:
                break
            received += chunk
            answered.append(received.count(b"HTTP/1.1 200 "))

    with socket.create_connection(("127.0.0.1", port), timeout=10) as busy:
        busy.sendall(pipelined)
        reader = threading.Thread(target=read_all, args=(busy,))
        reader.start()
        deadline = time.monotonic() + 5
        while not answered and time.monotonic() < deadline:
            time.sleep(0.001)
        assert answered, "the queued requests were never answered"
        status, _ = request(port, "GET", "/healthz")
        done_when_answered = answered[-1]
        reader.join(10)
    assert status == 200
    assert answered[-1] == queued, "every queued request must be answered too"
    # Without turns the new connection waits for the whole queue (60 of 60 done first).
    assert done_when_answered < queued // 2, f"{done_when_answered} of {queued} queued requests went first"


def logged(log, marker, within_s):
    deadline = time.monotonic() + within_s
    while marker not in log.read_text():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.parametrize("worker_class", ["sync", "gthread", "gevent"])
def test_access_log_lines_are_held_then_written_with_no_request_to_push_them(gunicorn, worker_class):
    _, port, log = gunicorn(GUNICORN_WORKER_CLASS=worker_class, GUNICORN_ACCESS_LOG_FLUSH_SECONDS="2")
    assert request(port, "GET", "/api/whoami?probe=held")[0] == 200
    time.sleep(0.3)
    assert "probe=held" not in log.read_text(), "the line was written at once: the log is not batched"
    # Written by the worker's own flusher once due (2s, looked at every 0.5s), though idle.
    assert logged(log, '"GET /api/whoami?probe=held HTTP/1.1" 200', within_s=4)


@pytest.mark.parametrize("worker_class", ["sync", "gthread", "gevent"])
def test_a_stopping_worker_writes_the_lines_it_holds(gunicorn, worker_class):
    process, port, log = gunicorn(GUNICORN_WORKER_CLASS=worker_class, GUNICORN_ACCESS_LOG_FLUSH_SECONDS="600",
                                  GUNICORN_DRAIN_SECONDS="0")
    for number in range(3):
        assert request(port, "GET", f"/api/whoami?probe=stop-{number}")[0] == 200
    assert "probe=stop-" not in log.read_text()
    process.send_signal(signal.SIGTERM)
    assert process.wait(15) == 0
    text = log.read_text()
    assert all(f"probe=stop-{number}" in text for number in range(3))


def test_an_interval_of_zero_writes_each_line_at_once(gunicorn):
    _, port, log = gunicorn(GUNICORN_ACCESS_LOG_FLUSH_SECONDS="0")
    assert request(port, "GET", "/api/whoami?probe=at-once")[0] == 200
    # Well within the default interval of 1s.
    assert logged(log, "probe=at-once", within_s=0.8)


def test_workers_recycle_one_at_a_time_and_every_request_is_answered(gunicorn):
    # Two workers serving alike reach their share of requests together (no jitter here).
    _, port, log = gunicorn(GUNICORN_WORKERS="2", GUNICORN_MAX_REQUESTS="25", GUNICORN_MAX_REQUESTS_JITTER="0")
    statuses = []

    def client():
        for _ in range(100):
            statuses.append(request(port, "GET", "/healthz")[0])

    clients = [threading.Thread(target=client) for _ in range(8)]
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join(60)
    assert statuses == [200] * 800
    # R: a worker starts recycling; B: the master boots a replacement. Never two R in a row.
    events = "".join("R" if "recycling it" in line else "B" for line in log.read_text().splitlines()
                     if "recycling it" in line or "Booting worker" in line)
    # (A replacement takes many of the requests that follow: fewer recycles than 800 / 25.)
    assert events.count("R") >= 3, events
    assert "RR" not in events, f"two workers recycled at once: {events}"
