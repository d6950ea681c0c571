"""Unit tests of recycling workers for their request count or memory (stack/recycling.py)."""

import logging
import multiprocessing
import os
import time

import pytest

from stack.recycle_turns import RecycleTurn
from stack.recycling import Recycler, ResidentMemory
from stack.settings import hook_settings, settings_from_env

log = logging.getLogger("test.worker")
MiB = 2**20


def recycler(max_requests=0, jitter=0, ceiling_mb=0, rss_mb=None, turn=None):
    memory = (lambda: rss_mb * MiB) if rss_mb is not None else None
    made = Recycler(max_requests, jitter, ceiling_mb * MiB, turn or RecycleTurn(30), memory=memory)
    made.start(log, os.getpid())
    return made


def serve(made, requests):
    """Ask after each of `requests` requests; the request after which it was due, or None."""
    for number in range(1, requests + 1):
        if made.due(log, os.getpid()):
            return number
    return None


def test_a_worker_over_the_ceiling_is_due_after_the_request_that_crossed_it(caplog):
    with caplog.at_level(logging.WARNING):
        assert serve(recycler(ceiling_mb=100, rss_mb=101), 1) == 1
    assert "over the 100 MiB ceiling" in caplog.text


def test_a_worker_under_the_ceiling_carries_on():
    assert serve(recycler(ceiling_mb=100, rss_mb=100), 50) is None


def test_a_zero_ceiling_never_recycles():
    assert serve(recycler(ceiling_mb=0, rss_mb=10_000), 50) is None


def test_a_worker_that_served_its_share_of_requests_is_recycled(caplog):
    with caplog.at_level(logging.WARNING):
        assert serve(recycler(max_requests=1000), 2000) == 1000
    assert "served 1000 requests (GUNICORN_MAX_REQUESTS)" in caplog.text


def test_each_share_is_drawn_between_max_requests_and_max_requests_plus_jitter(caplog):
    with caplog.at_level(logging.INFO):
        shares = {recycler(max_requests=100, jitter=50).share for _ in range(200)}
    assert min(shares) >= 100 and max(shares) <= 150
    assert len(shares) > 20, "the shares should spread over the jitter"
    assert f"worker {os.getpid()} recycles after" in caplog.text


def test_a_worker_waits_while_another_recycles_and_goes_once_that_one_is_gone():
    turn = RecycleTurn(30)
    other = multiprocessing.get_context("fork").Process(target=time.sleep, args=(30,))
    other.start()
    try:
        assert turn.take(other.pid)
        made = recycler(max_requests=10, turn=turn)
        assert serve(made, 50) is None, "two workers must not recycle at once"
    finally:
        other.kill()
        other.join(10)
    # The replacement of the recycled worker starts: the turn passes on.
    turn.pass_on_if_gone()
    assert turn.holder() == 0
    assert made.due(log, os.getpid())
    assert turn.holder() == os.getpid()


def test_a_worker_over_the_memory_ceiling_never_waits_for_its_turn():
    turn = RecycleTurn(30)
    assert turn.take(1)  # another worker (pid 1 is alive) is recycling
    assert serve(recycler(ceiling_mb=100, rss_mb=101, turn=turn), 1) == 1
    assert turn.holder() == 1


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


def test_the_hooks_settings_defaults_and_overrides():
    assert hook_settings(settings_from_env({})) == {
        "drain_seconds": 3, "max_requests": 100_000, "max_requests_jitter": 10_000, "max_worker_memory_mb": 256,
        "connection_turns": True,
    }  # fmt: skip
    overridden = hook_settings(settings_from_env({
        "GUNICORN_DRAIN_SECONDS": "0", "GUNICORN_MAX_WORKER_MEMORY_MB": "64",
        "GUNICORN_MAX_REQUESTS": "0", "GUNICORN_MAX_REQUESTS_JITTER": "5", "GUNICORN_CONNECTION_TURNS": "off",
    }))  # fmt: skip
    assert overridden == {
        "drain_seconds": 0, "max_requests": 0, "max_requests_jitter": 5, "max_worker_memory_mb": 64,
        "connection_turns": False,
    }  # fmt: skip
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
            ballast = b"\xa5" * (64 * MiB)
            os.write(write, str(resident_memory_bytes() if ballast else 0).encode())
        finally:
            os._exit(0)  # never back into pytest
    os.close(write)
    child_rss = int(os.read(read, 64))
    os.waitpid(child, 0)
    os.close(read)
    # Read through the parent's descriptor, the child would report the parent's size. (A forked
    # child maps some of its parent's pages only when it touches them: not the whole 64 MiB.)
    assert child_rss - resident_memory_bytes() >= 48 * MiB
