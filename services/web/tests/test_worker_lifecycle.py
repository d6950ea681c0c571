"""Unit tests of draining and of the worker memory ceiling (worker_lifecycle.py)."""

import logging
import multiprocessing
import os
import sys
import time

import pytest
from werkzeug.test import Client
from werkzeug.wrappers import Response

from gunicorn_settings import lifecycle_settings_from_env
from recycle_turns import RecycleTurn
from worker_lifecycle import (
    DrainFlag,
    DrainingMiddleware,
    ResidentMemory,
    drain_then_stop,
    recycle_when_due,
    resident_memory_bytes,
)


def hello_app(environ, start_response):
    return Response(f"served {environ['REQUEST_METHOD']}")(environ, start_response)


def client_behind(flag):
    return Client(DrainingMiddleware(hello_app, flag))


def test_requests_are_served_normally_until_the_flag_is_raised():
    response = client_behind(DrainFlag()).get("/api/whoami")
    assert response.status_code == 200
    assert response.text == "served GET"


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "DELETE", "OPTIONS"])
def test_draining_answers_idempotent_requests_with_a_retryable_json_503(method):
    flag = DrainFlag()
    flag.raise_()
    response = client_behind(flag).open("/api/whoami", method=method, headers={"X-Request-ID": "abcdefgh1234"})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    if method != "HEAD":
        assert response.json["error"] == "draining"
        assert response.json["request_id"] == "abcdefgh1234"


@pytest.mark.parametrize("method", ["POST", "PATCH", "LOCK"])
def test_draining_still_serves_what_nginx_would_never_resend(method):
    flag = DrainFlag()
    flag.raise_()
    response = client_behind(flag).open("/api/echo", method=method)
    assert response.status_code == 200
    assert response.text == f"served {method}"


def raise_in_child(flag):
    flag.raise_()


def test_the_flag_raised_in_one_process_is_seen_by_processes_forked_before():
    flag = DrainFlag()
    child = multiprocessing.get_context("fork").Process(target=raise_in_child, args=(flag,))
    child.start()
    child.join(10)
    assert child.exitcode == 0
    assert flag.is_raised()


class FakeArbiter:
    log = logging.getLogger("test.arbiter")


def test_drain_raises_the_flag_waits_then_stops_once(monkeypatch):
    events = []
    monkeypatch.setattr("worker_lifecycle.time.sleep", lambda seconds: events.append(("slept", seconds)))
    flag = DrainFlag()
    drain_then_stop(FakeArbiter(), flag, 3, stop=lambda: events.append(("stopped", flag.is_raised())))
    assert events == [("slept", 3), ("stopped", True)]
    # A second SIGTERM while draining (or after) stops at once.
    drain_then_stop(FakeArbiter(), flag, 3, stop=lambda: events.append(("stopped again", True)))
    assert events[-1] == ("stopped again", True)
    assert events[0] == ("slept", 3) and len([e for e in events if e[0] == "slept"]) == 1


class FakeWorker:
    def __init__(self, nr=0, recycle_after=sys.maxsize):
        self.alive = True
        self.pid = os.getpid()
        self.nr = nr
        self.recycle_after = recycle_after
        self.log = logging.getLogger("test.worker")


def test_a_worker_over_the_ceiling_is_told_to_stop_after_its_requests(caplog):
    worker = FakeWorker()
    with caplog.at_level(logging.WARNING):
        assert recycle_when_due(worker, RecycleTurn(30), ceiling_bytes=100 * 2**20, rss_bytes=101 * 2**20)
    assert worker.alive is False
    assert "over the 100 MiB ceiling" in caplog.text


def test_a_worker_under_the_ceiling_carries_on():
    worker = FakeWorker()
    assert not recycle_when_due(worker, RecycleTurn(30), ceiling_bytes=100 * 2**20, rss_bytes=100 * 2**20)
    assert worker.alive is True


def test_a_zero_ceiling_never_recycles():
    worker = FakeWorker()
    assert not recycle_when_due(worker, RecycleTurn(30), ceiling_bytes=0, rss_bytes=10 * 2**30)
    assert worker.alive is True


def test_a_worker_that_served_its_share_of_requests_is_recycled(caplog):
    worker = FakeWorker(nr=1000, recycle_after=1000)
    with caplog.at_level(logging.WARNING):
        assert recycle_when_due(worker, RecycleTurn(30), ceiling_bytes=0)
    assert worker.alive is False
    assert "served 1000 requests (GUNICORN_MAX_REQUESTS)" in caplog.text


def test_a_worker_waits_while_another_recycles_and_goes_once_that_one_is_gone():
    turn = RecycleTurn(30)
    other = multiprocessing.get_context("fork").Process(target=time.sleep, args=(30,))
    other.start()
    try:
        assert turn.take(other.pid)
        worker = FakeWorker(nr=1000, recycle_after=1000)
        assert not recycle_when_due(worker, turn, ceiling_bytes=0)
        assert worker.alive is True, "two workers must not recycle at once"
    finally:
        other.kill()
        other.join(10)
    # The replacement of the recycled worker starts: the turn passes on.
    turn.pass_on_if_gone()
    assert turn.holder() == 0
    assert recycle_when_due(worker, turn, ceiling_bytes=0)
    assert turn.holder() == worker.pid


def test_a_worker_over_the_memory_ceiling_never_waits_for_its_turn():
    turn = RecycleTurn(30)
    assert turn.take(1)  # another worker (pid 1 is alive) is recycling
    worker = FakeWorker()
    assert recycle_when_due(worker, turn, ceiling_bytes=100 * 2**20, rss_bytes=101 * 2**20)
    assert worker.alive is False and turn.holder() == 1


def test_a_stale_turn_no_longer_holds_up_the_others():
    turn = RecycleTurn(stale_after_s=0)
    assert turn.take(1)  # pid 1 is alive, but its turn is already stale
    assert turn.take(os.getpid())


def take_in_child(turn, results):
    results.put(turn.take(os.getpid()))
    time.sleep(2)


def test_workers_forked_from_one_master_share_the_turn():
    turn = RecycleTurn(30)
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=take_in_child, args=(turn, results))
    child.start()
    try:
        assert results.get(timeout=10) is True
        assert turn.holder() == child.pid
        assert not turn.take(os.getpid())
    finally:
        child.join(10)
    turn.pass_on_if_gone()
    assert turn.take(os.getpid())


def test_resident_memory_grows_with_what_the_process_touches():
    before = resident_memory_bytes()
    ballast = b"\xa5" * (64 * 2**20)
    after = resident_memory_bytes()
    assert after - before >= 60 * 2**20
    assert len(ballast) and before > 0


def test_lifecycle_defaults_and_overrides():
    assert lifecycle_settings_from_env({}) == {
        "drain_seconds": 3, "max_worker_memory_mb": 256, "access_log_flush_seconds": 1,
    }
    assert lifecycle_settings_from_env({"GUNICORN_DRAIN_SECONDS": "0", "GUNICORN_MAX_WORKER_MEMORY_MB": "64",
                                        "GUNICORN_ACCESS_LOG_FLUSH_SECONDS": "0"}) == {
        "drain_seconds": 0, "max_worker_memory_mb": 64, "access_log_flush_seconds": 0,
    }
    with pytest.raises(ValueError, match="GUNICORN_MAX_WORKER_MEMORY_MB"):
        lifecycle_settings_from_env({"GUNICORN_MAX_WORKER_MEMORY_MB": "lots"})
    with pytest.raises(ValueError, match="GUNICORN_ACCESS_LOG_FLUSH_SECONDS must be at least 0"):
        lifecycle_settings_from_env({"GUNICORN_ACCESS_LOG_FLUSH_SECONDS": "-1"})


def test_resident_memory_reads_this_process():
    assert ResidentMemory(f"/proc/{os.getpid()}/statm")() > 1 * 2**20


def test_a_forked_child_reads_its_own_resident_memory_not_its_parents():
    resident_memory_bytes()  # opened by this process
    read, write = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            ballast = b"\xa5" * (64 * 2**20)
            os.write(write, str(resident_memory_bytes() if ballast else 0).encode())
        finally:
            os._exit(0)  # never back into pytest
    os.close(write)
    child_rss = int(os.read(read, 64))
    os.waitpid(child, 0)
    os.close(read)
    # Read through the parent's descriptor, the child would report the parent's size. (A forked
    # child maps some of its parent's pages only when it touches them: not the whole 64 MiB.)
    assert child_rss - resident_memory_bytes() >= 48 * 2**20
