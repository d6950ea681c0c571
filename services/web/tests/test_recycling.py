"""Unit tests of recycling workers for their request count or memory (stack/recycling.py)."""

import logging
import os
import random
import sys
from types import SimpleNamespace

import pytest
from gunicorn.config import Config
from gunicorn.workers.base import Worker

from stack.recycling import Recycler, ResidentMemory
from stack.settings import hook_settings, settings_from_env

log = logging.getLogger("test.worker")
MiB = 2**20


def a_worker(max_requests=0):
    """What the hooks read of a gunicorn worker: its pid, and its share (max_requests, with
    jitter drawn; sys.maxsize, gunicorn's never, when the setting is 0)."""
    return SimpleNamespace(pid=os.getpid(), max_requests=max_requests or sys.maxsize)


def recycler(worker, ceiling_mb=0, rss_mb=None):
    memory = (lambda: rss_mb * MiB) if rss_mb is not None else None
    made = Recycler(ceiling_mb * MiB, memory=memory)
    made.start(log, worker)
    return made


def serve(made, worker, requests):
    """Ask after each of `requests` requests: (the request after which it was due, why), or None."""
    for number in range(1, requests + 1):
        if reason := made.due(log, worker):
            return number, reason
    return None


def test_a_worker_over_the_ceiling_is_due_after_the_request_that_crossed_it(caplog):
    worker = a_worker()
    with caplog.at_level(logging.WARNING):
        assert serve(recycler(worker, ceiling_mb=100, rss_mb=101), worker, 1) == (1, "memory")
    assert "over the 100 MiB ceiling" in caplog.text


def test_a_worker_under_the_ceiling_carries_on():
    worker = a_worker()
    assert serve(recycler(worker, ceiling_mb=100, rss_mb=100), worker, 50) is None


def test_a_zero_ceiling_never_recycles():
    worker = a_worker()
    assert serve(recycler(worker, ceiling_mb=0, rss_mb=10_000), worker, 50) is None


def test_a_worker_that_served_its_share_is_said_to_recycle_once(caplog):
    worker = a_worker(max_requests=1000)
    made = recycler(worker)
    with caplog.at_level(logging.WARNING):
        assert serve(made, worker, 2000) == (1000, "max_requests")
        assert serve(made, worker, 10) is None, "said once: the requests in flight after it are not"
    assert caplog.text.count("served 1000 requests (GUNICORN_MAX_REQUESTS)") == 1


def test_the_share_gunicorn_drew_is_logged_when_the_worker_starts(caplog):
    with caplog.at_level(logging.INFO):
        recycler(a_worker(max_requests=1234))
        recycler(a_worker(max_requests=0))
    assert caplog.text.count("recycles after") == 1
    assert f"worker {os.getpid()} recycles after 1234 requests" in caplog.text


def test_gunicorns_worker_draws_its_share_between_max_requests_and_max_requests_plus_jitter():
    """The attribute the hooks read is gunicorn's own draw (gunicorn/workers/base.py)."""
    config = Config()
    config.set("max_requests", 100)
    config.set("max_requests_jitter", 50)
    random.seed(28)
    shares = {Worker(0, os.getppid(), [], None, 30, config, log).max_requests for _ in range(200)}
    assert min(shares) >= 100 and max(shares) <= 150
    assert len(shares) > 20, "the shares should spread over the jitter"
    config.set("max_requests", 0)
    assert Worker(0, os.getppid(), [], None, 30, config, log).max_requests == sys.maxsize


def test_the_hooks_settings_defaults_and_overrides():
    assert hook_settings(settings_from_env({})) == {
        "drain_seconds": 3, "max_worker_memory_mb": 256, "connection_turns": True,
    }  # fmt: skip
    overridden = hook_settings(settings_from_env({
        "GUNICORN_DRAIN_SECONDS": "0", "GUNICORN_MAX_WORKER_MEMORY_MB": "64", "GUNICORN_CONNECTION_TURNS": "off",
    }))  # fmt: skip
    assert overridden == {"drain_seconds": 0, "max_worker_memory_mb": 64, "connection_turns": False}
    with pytest.raises(ValueError, match="GUNICORN_MAX_WORKER_MEMORY_MB"):
        settings_from_env({"GUNICORN_MAX_WORKER_MEMORY_MB": "lots"})


resident_memory_bytes = ResidentMemory()


def test_resident_memory_grows_with_what_the_process_touches():
    before = resident_memory_bytes()
    ballast = b"\xa5" * (64 * MiB)
    after = resident_memory_bytes()
    assert after - before >= 60 * MiB
    assert len(ballast) and before > 0


def test_resident_memory_reads_this_process():
    assert ResidentMemory(f"/proc/{os.getpid()}/statm")() > 1 * MiB


def test_a_forked_child_reads_its_own_resident_memory_not_its_parents():
    resident_memory_bytes()  # opened by this process
    read, write = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            before = resident_memory_bytes()
            ballast = b"\xa5" * (64 * MiB)
            os.write(write, str(resident_memory_bytes() - before if ballast else 0).encode())
        finally:
            os._exit(0)  # never back into pytest
    os.close(write)
    child_growth = int(os.read(read, 64))
    os.waitpid(child, 0)
    os.close(read)
    # Read through the parent's descriptor, the child would see the parent's size, which its
    # ballast does not change. (Compared with each other, the two sizes also depend on how
    # much of the parent's memory is file-backed, which a child does not count until it
    # touches it: the shared libraries earlier tests loaded.)
    assert child_growth >= 48 * MiB
