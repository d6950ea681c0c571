"""Shared fixtures of the web service's unit tests: the demo app inside the stack, and the
check that no process a test started outlives the run."""

import os
import time
import uuid
from pathlib import Path

import pytest
from werkzeug.test import Client

from app import create_app
from stack.drain import DrainFlag
from stack.settings import settings_from_env
from stack.wrapping import wrap

# Every process the tests start inherits this mark in its environment (the fixtures that
# start servers pass os.environ on), so the run can find what it left behind, wherever
# the process was reparented.
RUN_MARK = "STACK_UNIT_TEST_RUN"
os.environ[RUN_MARK] = uuid.uuid4().hex


def processes_marked(mark, proc=Path("/proc")):
    """(pid, command line) of each live process whose environment carries `mark`."""
    needle = f"{RUN_MARK}={mark}".encode()
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # gone meanwhile, or another user's
        if state != "Z":  # a zombie is a process that has ended; its parent's to reap
            found.append((int(entry.name), command.strip()))
    return found


def pytest_sessionfinish(session, exitstatus):
    # A process killed a moment ago may take that long to go.
    deadline = time.monotonic() + 3
    while (left := processes_marked(os.environ[RUN_MARK])) and time.monotonic() < deadline:
        time.sleep(0.1)
    if left:
        listing = "\n".join(f"  {pid}: {command}" for pid, command in left)
        session.config.pluginmanager.get_plugin("terminalreporter").write_line(
            f"FAILED: processes the unit tests started are still alive:\n{listing}", red=True
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def marked_environ():
    """The least environment for a process a test starts: PATH, and the run's mark."""
    return {RUN_MARK: os.environ[RUN_MARK], "PATH": os.environ["PATH"]}


@pytest.fixture
def wrapped(tmp_path):
    """wrapped(app=None, **settings): a test client of `app` (the demo app by default) inside
    the stack, with the probes on and the given settings over the defaults."""

    def build(app=None, **settings):
        app = app or create_app({"TESTING": True})
        merged = {**settings_from_env({}), "PROBES": True, **settings}
        return Client(wrap(app, merged, DrainFlag(tmp_path / "draining")))

    return build


@pytest.fixture
def client(wrapped):
    """The demo app inside the stack with the default settings and the probes on."""
    return wrapped()
