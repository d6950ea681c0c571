"""Slow clients (headers or bodies sent a byte at a time) are nginx's to hold: with the sync
worker class and ONE worker, a normal request still answers promptly during the attack."""

import socket
import time

import pytest

from composed import composed_stack
from load import record

HEADER_TRICKLERS = 300
BODY_TRICKLERS = 100
ATTACK_SECONDS = 6
# "Well under a second": a request that waited for a trickler would take the attack's
# length (seconds); one that nginx answers at once takes milliseconds. The bound leaves a
# noisy shared machine a wide margin and still tells the two apart.
PROMPT_S = 0.5


@pytest.fixture(scope="module")
def one_worker_stack():
    env = {
        "NGINX_LIMITS": "off",
        "GUNICORN_WORKER_CLASS": "sync",
        "GUNICORN_WORKERS": "1",
    }
    with composed_stack("slowclients", env=env) as composed:
        yield composed


def open_tricklers(port):
    """Connections that have started a request and will never finish it quickly."""
    sockets = []
    for index in range(HEADER_TRICKLERS + BODY_TRICKLERS):
        conn = socket.create_connection(("127.0.0.1", port), timeout=5)
        if index < HEADER_TRICKLERS:
            conn.sendall(b"GET /api/whoami HTTP/1.1\r\nHost: localhost\r\n")
        else:
            conn.sendall(b"POST /api/echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000\r\n\r\n")
        sockets.append(conn)
    return sockets


def trickle(sockets):
    """Send one more byte on every connection still open; return how many still are."""
    alive = 0
    for conn in sockets:
        try:
            conn.sendall(b"X")
            alive += 1
        except OSError:
            conn.close()
    return alive


def timed_get(port):
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(b"GET /api/whoami HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        status_line = conn.makefile("rb").readline()
    return status_line, time.monotonic() - started


def test_a_normal_request_answers_promptly_during_a_slow_client_attack(one_worker_stack):
    port = one_worker_stack.port
    sockets = open_tricklers(port)
    answers = []
    try:
        deadline = time.monotonic() + ATTACK_SECONDS
        while time.monotonic() < deadline:
            alive = trickle(sockets)
            answers.append(timed_get(port))
            time.sleep(0.2)
    finally:
        for conn in sockets:
            conn.close()

    slowest = max(elapsed for _, elapsed in answers)
    failed = [line for line, _ in answers if not line.startswith(b"HTTP/1.1 200")]
    line = (
        f"slow clients ({HEADER_TRICKLERS} header + {BODY_TRICKLERS} body tricklers, sync x1): "
        f"{len(failed)} failed of {len(answers)} requests (slowest {slowest:.2f}s)"
    )
    record(line)
    assert alive == HEADER_TRICKLERS + BODY_TRICKLERS, "the attack must have been live throughout"
    assert len(answers) >= 10 and not failed, failed
    assert slowest < PROMPT_S, slowest
    # None of the unfinished requests ever reached gunicorn.
    assert "/api/echo" not in one_worker_stack.flushed_logs("web")


def test_without_nginx_the_same_slow_client_ties_up_the_only_worker(one_worker_stack):
    """The control experiment: one slow client talking to gunicorn directly blocks it."""
    (replica,) = one_worker_stack.running("web")
    # Only a timeout shows the worker was held: a refused or reset connection would be a
    # different failure, and proves nothing about slow clients.
    script = (
        "import socket, urllib.error, urllib.request\n"
        "slow = socket.create_connection(('127.0.0.1', 8000))\n"
        "slow.sendall(b'GET /healthz HTTP/1.1\\r\\nHost: x\\r\\n')\n"
        "try:\n"
        "    urllib.request.urlopen('http://127.0.0.1:8000/api/whoami', timeout=3)\n"
        "    print('answered')\n"
        "except TimeoutError:\n"
        "    print('timed out')\n"
        "except urllib.error.URLError as exc:\n"
        "    print('timed out' if isinstance(exc.reason, TimeoutError) else f'failed {exc.reason!r}')\n"
        "except Exception as exc:\n"
        "    print('failed', repr(exc))\n"
    )
    output = replica.exec_run(["python", "-c", script]).output.decode()
    assert output.strip() == "timed out", output
