"""A request that outlives the worker timeout: nginx answers a JSON 504, gunicorn replaces the
stuck worker, and requests on the other workers never notice."""

import re

import pytest

from load import LoadLoop, one_request
from stack import composed_stack, wait_for


@pytest.fixture(scope="module")
def stuck_stack():
    # Sync workers block for the whole request, so a long sleep is a stuck worker. nginx
    # gives up (2s) before gunicorn kills the worker (4s), and retries only within 1s.
    env = {
        "NGINX_LIMITS": "off",
        "GUNICORN_WORKER_CLASS": "sync",
        "GUNICORN_WORKERS": "3",
        "GUNICORN_TIMEOUT": "4",
        "NGINX_PROXY_READ_TIMEOUT": "2s",
        "NGINX_PROXY_CONNECT_TIMEOUT": "1s",
        "NGINX_PROXY_NEXT_UPSTREAM_TIMEOUT": "1s",
    }
    with composed_stack("stuck", env=env) as composed:
        yield composed


def booted_workers(stack):
    return len(re.findall(r"Booting worker with pid", stack.logs("web")))


def test_a_stuck_request_gets_a_json_504_and_its_worker_is_replaced(stuck_stack):
    workers_before = booted_workers(stuck_stack)
    with LoadLoop(stuck_stack.base_url, ["/api/whoami"], clients=2) as load:
        load.wait_for_requests(20)
        stuck = one_request(stuck_stack.base_url, "/api/sleep/8000")
        wait_for(lambda: "WORKER TIMEOUT" in stuck_stack.logs("web"), deadline_s=15, message="the worker timeout")
        wait_for(lambda: booted_workers(stuck_stack) == workers_before + 1, deadline_s=15,
                 message="a replacement worker")
        load.wait_for_requests(len(load.outcomes) + 50)

    assert stuck.status == 504, stuck
    assert stuck.body["error"] == "gateway_timeout"
    assert 1.5 < stuck.elapsed_s < 4, "nginx must answer at its read timeout, before the worker is killed"
    # Not retried on another worker: exactly one worker got stuck.
    assert stuck_stack.logs("web").count("WORKER TIMEOUT") == 1
    load.report("stuck worker (sync, 8s request vs 4s timeout): other requests")
    assert len(load.outcomes) >= 70
    assert not load.failures, load.describe_failures()
    assert stuck_stack.get("/api/whoami").status_code == 200
