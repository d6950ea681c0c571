"""Unit tests of draining: the flag, the middleware and the first process (stack/drain*.py)."""

import contextlib
import multiprocessing
import os
import queue
import signal
import subprocess
import sys
import threading
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


# A stand-in server for drain_then_stop: it says "ready <pid>", then reports each signal it
# gets on stdout, with whether the drain flag was up by then, and exits on SIGTERM with
# status 3. On SIGUSR2 it runs `sh -c "sleep 5 & exit 0"` three times, reaping each sh: the
# sleeps are orphans, as a CLI tool an app runs leaves them.
SERVER = """
import os, signal, subprocess, sys, time
flag = sys.argv[1]
def report(signum, _frame):
    # os.write, not print: a signal arriving while print holds stdout's buffer would re-enter it.
    os.write(1, f"{signal.Signals(signum).name} {os.path.exists(flag)} {round(time.monotonic(), 2)}\\n".encode())
    if signum == signal.SIGTERM:
        sys.exit(3)
    if signum == signal.SIGUSR2:
        for _ in range(3):
            subprocess.run(["sh", "-c", "sleep 5 & exit 0"], check=True)
        os.write(1, b"orphaned\\n")
for name in ("SIGTERM", "SIGHUP", "SIGINT", "SIGQUIT", "SIGTTIN", "SIGUSR1", "SIGUSR2"):
    signal.signal(getattr(signal, name), report)
print("ready", os.getpid(), flush=True)
while True:
    time.sleep(0.05)
"""


class FirstProcess:
    """drain_then_stop around the stand-in server, in a session of its own: its stdout read
    line by line with a timeout, and the whole group killed when the test ends."""

    def __init__(self, environ, tmp_path, drain_seconds, server=SERVER):
        environ = {**environ, "GUNICORN_WORKER_TMP_DIR": str(tmp_path), "GUNICORN_DRAIN_SECONDS": str(drain_seconds)}
        command = [sys.executable, "-m", "stack.drain_then_stop", sys.executable, "-c", server]
        self.process = subprocess.Popen(
            [*command, str(tmp_path / "stack-draining")],
            cwd=WEB_DIR, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True,
        )  # fmt: skip
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.put(line.strip())
        self.lines.put(None)  # end of output

    def line(self, timeout=10):
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no line from the stand-in server within {timeout}s") from None

    def ready(self):
        word, pid = self.line().split()
        assert word == "ready"
        return int(pid)

    def kill(self):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        self.process.stdout.close()
        self.process.stderr.close()


@pytest.fixture
def first_process(tmp_path, marked_environ):
    started = []

    def start(drain_seconds, server=SERVER):
        started.append(FirstProcess(marked_environ, tmp_path, drain_seconds, server))
        return started[-1]

    yield start
    for process in started:
        process.kill()


def test_sigterm_raises_the_flag_and_reaches_the_server_only_after_the_drain(first_process, tmp_path):
    first = first_process(drain_seconds=1)
    first.ready()
    sent = time.monotonic()
    first.process.send_signal(signal.SIGTERM)
    name, flag_was_up, _ = first.line().split()
    waited = time.monotonic() - sent
    assert first.process.wait(10) == 3, "the first process exits with the server's status"
    assert (name, flag_was_up) == ("SIGTERM", "True")
    assert waited >= 1
    assert "draining for 1s before the graceful stop" in first.process.stderr.read()
    assert not (tmp_path / "stack-draining").exists(), "the flag goes with the server"


def test_other_signals_reach_the_server_at_once_without_a_drain(first_process):
    first = first_process(drain_seconds=30)
    first.ready()
    for signum in (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTTIN, signal.SIGUSR1):
        first.process.send_signal(signum)
        name, flag_was_up, _ = first.line().split()
        assert (name, flag_was_up) == (signal.Signals(signum).name, "False")


def test_signals_passed_on_while_draining_reach_the_server_at_once(first_process):
    first = first_process(drain_seconds=30)
    first.ready()
    first.process.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    for signum in (signal.SIGINT, signal.SIGQUIT):
        first.process.send_signal(signum)
        name, flag_was_up, _ = first.line(timeout=5).split()
        assert (name, flag_was_up) == (signal.Signals(signum).name, "True")


@pytest.mark.parametrize("when", ["serving", "draining"])
def test_the_server_dying_ends_the_first_process_at_once_with_its_status(first_process, when):
    first = first_process(drain_seconds=30)
    server = first.ready()
    if when == "draining":
        first.process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
    killed = time.monotonic()
    os.kill(server, signal.SIGKILL)
    assert first.process.wait(10) == 128 + signal.SIGKILL, "the shell's convention: 128 + the signal"
    assert time.monotonic() - killed < 1, "a 30 s drain must not outlive the server"


def test_a_second_sigterm_while_draining_changes_nothing(first_process):
    first = first_process(drain_seconds=1)
    first.ready()
    first.process.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    first.process.send_signal(signal.SIGTERM)
    assert first.process.wait(10) == 3
    lines = []
    while (line := first.line()) is not None:
        lines.append(line)
    assert [line.split()[0] for line in lines] == ["SIGTERM"]


def test_a_sigterm_before_the_server_starts_stops_without_starting_it(tmp_path, marked_environ):
    started = tmp_path / "started"
    # The SIGTERM is pending (blocked) when main() begins: it came before the server.
    script = f"""
import os, signal, sys
from stack import drain_then_stop
signal.pthread_sigmask(signal.SIG_BLOCK, {{signal.SIGTERM}})
os.kill(os.getpid(), signal.SIGTERM)
sys.exit(drain_then_stop.main(["touch", {str(started)!r}]))
"""
    environ = {**marked_environ, "GUNICORN_WORKER_TMP_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=WEB_DIR, env=environ, capture_output=True, text=True, timeout=20
    )
    assert result.returncode == 128 + signal.SIGTERM, result.stderr
    assert "stopped before the server started" in result.stderr
    assert not started.exists()


def children(pid):
    """(pid, state, command) of each child of `pid`, from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        command, rest = text[text.index("(") + 1 : text.rindex(")")], text[text.rindex(")") + 2 :].split()
        if int(rest[1]) == pid:
            found.append((int(stat.parent.name), rest[0], command))
    return found


def test_orphans_of_the_server_are_adopted_and_reaped(first_process):
    first = first_process(drain_seconds=0)
    server = first.ready()
    wrapper = first.process.pid
    first.process.send_signal(signal.SIGUSR2)
    assert first.line().startswith("SIGUSR2")
    assert first.line() == "orphaned"

    def adopted():
        # An orphan may not have become `sleep` yet (a forked sh before its exec).
        return [child for child in children(wrapper) if child[0] != server]

    assert len(adopted()) == 3, f"the orphaned sleeps should be the first process's children: {adopted()}"
    deadline = time.monotonic() + 20
    while adopted():
        assert time.monotonic() < deadline, f"orphans not reaped: {adopted()}"
        time.sleep(0.1)


def test_a_flag_left_from_an_earlier_run_is_lowered_at_start(first_process, tmp_path):
    (tmp_path / "stack-draining").touch()
    first = first_process(drain_seconds=0)
    first.ready()
    assert not (tmp_path / "stack-draining").exists()
    first.process.send_signal(signal.SIGTERM)
    assert first.process.wait(10) == 3


# Records, at the first import of a third-party package, whether SIGTERM is blocked yet.
IMPORT_WATCH = """
import runpy, signal, sys
seen = []
class Watch:
    def find_spec(self, name, path=None, target=None):
        if not seen and name.partition(".")[0] in ("gunicorn", "flask", "werkzeug", "gevent"):
            seen.append(signal.SIGTERM in signal.pthread_sigmask(signal.SIG_BLOCK, []))
        return None
sys.meta_path.insert(0, Watch())
sys.argv = ["drain_then_stop", "true"]
try:
    runpy.run_module("stack.drain_then_stop", run_name="__main__", alter_sys=True)
except SystemExit as stop:
    print("exit", stop.code, "blocked", seen)
"""


def test_signals_are_blocked_before_anything_slow_is_imported(tmp_path, marked_environ):
    """As PID 1, a signal whose action is still the default is dropped: a stop sent while the
    first process imports what it needs would be lost, and the container would wait out
    its grace period. So the signals are blocked before the first third-party import."""
    environ = {**marked_environ, "GUNICORN_WORKER_TMP_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_WATCH], cwd=WEB_DIR, env=environ, capture_output=True, text=True, timeout=20
    )
    assert result.stdout.split() == ["exit", "0", "blocked", "[True]"], result.stdout + result.stderr


def test_a_command_that_cannot_start_is_named_with_the_shells_status(tmp_path, marked_environ):
    environ = {**marked_environ, "GUNICORN_WORKER_TMP_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "stack.drain_then_stop", "no-such-server", "--config", "x"],
        cwd=WEB_DIR, env=environ, capture_output=True, text=True, timeout=20,
    )  # fmt: skip
    assert result.returncode == 127
    assert "cannot start 'no-such-server'" in result.stderr and "Traceback" not in result.stderr


def test_without_a_command_it_says_how_to_use_it():
    result = subprocess.run(
        [sys.executable, "-m", "stack.drain_then_stop"], cwd=WEB_DIR, capture_output=True, text=True, timeout=20
    )
    assert result.returncode == 1 and "usage: python -m stack.drain_then_stop COMMAND" in result.stderr
