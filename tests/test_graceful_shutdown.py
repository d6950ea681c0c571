"""Stopping a replica lets its requests finish; `docker compose down` exits cleanly (code 0)."""

import threading
import time

import pytest

from composed import composed_stack, wait_for
from load import one_request

pytestmark = pytest.mark.worker_count


@pytest.fixture(scope="module")
def stopping_stack():
    with composed_stack("graceful", env={"NGINX_LIMITS": "off"}) as composed:
        yield composed


def in_flight(stack, path):
    """Start `path` in a thread; return (thread, list that will hold its Outcome)."""
    result = []
    thread = threading.Thread(target=lambda: result.append(one_request(stack.base_url, path)))
    thread.start()
    # Give nginx time to pass it to gunicorn before anything is stopped.
    time.sleep(0.5)
    return thread, result


def test_a_five_second_request_completes_while_its_replica_stops(stopping_stack):
    (replica,) = stopping_stack.running("web")
    thread, result = in_flight(stopping_stack, "/api/sleep/5000")
    started = time.monotonic()
    stopping_stack.compose("stop", "web")
    stopped_after = time.monotonic() - started
    thread.join(30)

    (outcome,) = result
    assert outcome.status == 200, outcome
    assert outcome.body["slept_ms"] == 5000
    replica.reload()
    assert replica.attrs["State"]["ExitCode"] == 0
    # It stopped once its request was done, long before docker's SIGKILL (35s).
    assert 4 < stopped_after < 15, stopped_after
    print(f"replica with a 5s request in flight stopped in {stopped_after:.1f}s, exit code 0")


def test_compose_down_stops_every_container_with_exit_code_0_in_time(stopping_stack):
    stopping_stack.compose("up", "--detach", "--wait", "--wait-timeout", "120", timeout=300)
    # nginx was up all along: it serves again once it has re-resolved the new replica.
    wait_for(lambda: stopping_stack.get("/api/whoami").status_code == 200, deadline_s=15, message="serving again")
    thread, result = in_flight(stopping_stack, "/api/sleep/2000")
    since = time.time() - 1
    started = time.monotonic()
    stopping_stack.compose("down", "--timeout", "35", timeout=120)
    took = time.monotonic() - started
    thread.join(30)

    deaths = list(
        stopping_stack.docker.events(
            since=int(since),
            until=int(time.time()) + 1,
            decode=True,
            filters={
                "type": "container",
                "event": "die",
                "label": f"com.docker.compose.project={stopping_stack.project}",
            },
        )
    )
    exit_codes = {event["Actor"]["Attributes"]["name"]: event["Actor"]["Attributes"]["exitCode"] for event in deaths}
    assert len(exit_codes) == 2, exit_codes  # nginx and the web replica
    assert set(exit_codes.values()) == {"0"}, exit_codes
    assert took < 35, f"down took {took:.1f}s: something waited for SIGKILL"
    assert result[0].status == 200, result[0]
    print(f"docker compose down: {exit_codes} in {took:.1f}s")
