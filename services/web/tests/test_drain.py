"""Unit tests of draining: the flag, the middleware and the first process (stack/drain*.py)."""

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from werkzeug.test import Client
from werkzeug.wrappers import Response

from stack.drain import DrainFlag, DrainingMiddleware, flag_path

WEB_DIR = Path(__file__).resolve().parents[1]


def hello_app(environ, start_response):
    return Response(f"served {environ['REQUEST_METHOD']}")(environ, start_response)


@pytest.fixture
def flag(tmp_path):
    return DrainFlag(tmp_path / "draining")


def test_requests_are_served_normally_until_the_flag_is_raised(flag):
    response = Client(DrainingMiddleware(hello_app, flag)).get("/api/whoami")
    assert response.status_code == 200
    assert response.text == "served GET"


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "DELETE", "OPTIONS"])
def test_draining_answers_idempotent_requests_with_a_retryable_json_503(flag, method):
    flag.raise_()
    response = Client(DrainingMiddleware(hello_app, flag)).open(
        "/api/whoami", method=method, headers={"X-Request-ID": "abcdefgh1234"}
    )
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    if method != "HEAD":
        assert response.json["error"] == "draining"
        assert response.json["request_id"] == "abcdefgh1234"


@pytest.mark.parametrize("method", ["POST", "PATCH", "LOCK"])
def test_draining_still_serves_what_nginx_would_never_resend(flag, method):
    flag.raise_()
    response = Client(DrainingMiddleware(hello_app, flag)).open("/api/echo", method=method)
    assert response.status_code == 200
    assert response.text == f"served {method}"


def raise_in_child(flag):
    flag.raise_()


def test_the_flag_raised_in_one_process_is_seen_by_another(flag):
    child = multiprocessing.get_context("fork").Process(target=raise_in_child, args=(flag,))
    child.start()
    child.join(20)
    assert child.exitcode == 0
    assert flag.is_raised()
    flag.lower()
    assert not flag.is_raised()


def test_the_flag_lives_in_gunicorns_worker_tmp_dir():
    assert flag_path({}) == Path("/dev/shm/stack-draining")
    assert flag_path({"GUNICORN_WORKER_TMP_DIR": "/run/web"}) == Path("/run/web/stack-draining")


# A stand-in server for drain_then_stop: it reports each signal it gets on stdout, with
# whether the drain flag was up by then, and exits on SIGTERM with status 3.
SERVER = """
import os, signal, sys, time
flag = sys.argv[1]
def report(signum, _frame):
    # os.write, not print: a signal arriving while print holds stdout's buffer would re-enter it.
    os.write(1, f"{signal.Signals(signum).name} {os.path.exists(flag)} {round(time.monotonic(), 2)}\\n".encode())
    if signum == signal.SIGTERM:
        sys.exit(3)
for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGTTIN, signal.SIGUSR1):
    signal.signal(signum, report)
print("ready", flush=True)
while True:
    time.sleep(0.05)
"""


def run_first_process(tmp_path, drain_seconds):
    environ = {"GUNICORN_WORKER_TMP_DIR": str(tmp_path), "GUNICORN_DRAIN_SECONDS": str(drain_seconds), "PATH": ""}
    process = subprocess.Popen(
        [sys.executable, "-m", "stack.drain_then_stop", sys.executable, "-c", SERVER, str(tmp_path / "stack-draining")],
        cwd=WEB_DIR, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # A process group of their own: a test that gives up kills the server with the wrapper.
        start_new_session=True,
    )  # fmt: skip
    assert process.stdout.readline().strip() == "ready"
    return process


def test_sigterm_raises_the_flag_and_reaches_the_server_only_after_the_drain(tmp_path):
    process = run_first_process(tmp_path, drain_seconds=1)
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    name, flag_was_up, _ = process.stdout.readline().split()
    waited = time.monotonic() - sent
    assert process.wait(10) == 3, "the first process exits with the server's status"
    assert (name, flag_was_up) == ("SIGTERM", "True")
    assert waited >= 1
    assert "draining for 1s before the graceful stop" in process.stderr.read()
    assert not (tmp_path / "stack-draining").exists(), "the flag goes with the server"


def test_other_signals_reach_the_server_at_once_without_a_drain(tmp_path):
    process = run_first_process(tmp_path, drain_seconds=30)
    try:
        for signum in (signal.SIGHUP, signal.SIGTTIN, signal.SIGUSR1):
            process.send_signal(signum)
            name, flag_was_up, _ = process.stdout.readline().split()
            assert (name, flag_was_up) == (signal.Signals(signum).name, "False")
    finally:
        # SIGKILL cannot be passed on: the stand-in server, the wrapper's child, goes by its group.
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def test_a_second_sigterm_while_draining_changes_nothing(tmp_path):
    process = run_first_process(tmp_path, drain_seconds=1)
    process.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    process.send_signal(signal.SIGTERM)
    lines = process.stdout.read().split("\n")
    assert process.wait(10) == 3
    assert [line.split()[0] for line in lines if line] == ["SIGTERM"]


def test_a_flag_left_from_an_earlier_run_is_lowered_at_start(tmp_path):
    (tmp_path / "stack-draining").touch()
    process = run_first_process(tmp_path, drain_seconds=0)
    assert not (tmp_path / "stack-draining").exists()
    process.send_signal(signal.SIGTERM)
    assert process.wait(10) == 3


def test_without_a_command_it_says_how_to_use_it():
    result = subprocess.run(
        [sys.executable, "-m", "stack.drain_then_stop"], cwd=WEB_DIR, capture_output=True, text=True
    )
    assert result.returncode == 1 and "usage: python -m stack.drain_then_stop COMMAND" in result.stderr
