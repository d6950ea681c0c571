"""A request that outlives the worker timeout, on a stack of three replicas: nginx answers a
JSON 504 without retrying it on another replica (every replica's log shows it ran exactly
once), gunicorn replaces the stuck worker, and requests on the other workers never notice."""

import re
import uuid

import pytest

from composed import composed_stack, log_entries, wait_for
from load import LoadLoop, one_request

REPLICAS = 3


@pytest.fixture(scope="module")
def stuck_stack():
    # Sync workers block for the whole request, so a long sleep is a stuck worker. nginx
    # gives up (2s) before gunicorn kills the worker (4s), and passes a request to another
    # replica only within 1s of its start: the defaults' order (5s < 25s < 30s), scaled down.
    env = {
        "NGINX_LIMITS": "off",
        "GUNICORN_WORKER_CLASS": "sync",
        "GUNICORN_WORKERS": "3",
        "GUNICORN_TIMEOUT": "4",
        "NGINX_PROXY_READ_TIMEOUT": "2s",
        "NGINX_PROXY_CONNECT_TIMEOUT": "1s",
        "NGINX_PROXY_NEXT_UPSTREAM_TIMEOUT": "1s",
        # gunicorn's own pre_request hook logs each request as it starts, at debug level:
        # each replica's account of the requests it began, finished or not.
        "GUNICORN_LOG_LEVEL": "debug",
    }
    with composed_stack("stuck", env=env) as composed:
        composed.make("scale", f"N={REPLICAS}")
        composed.replicas_answering(REPLICAS)
        yield composed


def booted_workers(stack):
    return len(re.findall(r"Booting worker with pid", stack.logs("web")))


def test_a_stuck_request_gets_a_json_504_runs_once_and_its_worker_is_replaced(stuck_stack):
    replicas = stuck_stack.running("web")
    assert len(replicas) == REPLICAS
    workers_before = booted_workers(stuck_stack)
    # The only request for this path in this stack: it names this one request in every log.
    path = "/api/sleep/8000"
    request_id = f"stuck-{uuid.uuid4().hex[:12]}"
    with LoadLoop(stuck_stack.base_url, ["/api/whoami"], clients=2) as load:
        load.wait_for_requests(20)
        stuck = one_request(stuck_stack.base_url, path, headers={"X-Request-ID": request_id})
        wait_for(lambda: "WORKER TIMEOUT" in stuck_stack.logs("web"), deadline_s=15, message="the worker timeout")
        wait_for(
            lambda: booted_workers(stuck_stack) >= workers_before + 1, deadline_s=15, message="a replacement worker"
        )
        load.wait_for_requests(len(load.outcomes) + 50)

    # Every replica's own account: the request started on exactly one of them, and that
    # replica's worker, and no other, timed out.
    logs = {replica.id: replica.logs().decode("utf-8", "replace") for replica in replicas}
    started = {
        cid: sum(entry["level"] == "DEBUG" and entry["message"] == f"GET {path}" for entry in log_entries(log))
        for cid, log in logs.items()
    }
    assert sum(started.values()) == 1, f"the stuck request ran {sum(started.values())} times: {started}"
    (ran_on,) = [cid for cid, count in started.items() if count]
    timeouts = {cid: log.count("WORKER TIMEOUT") for cid, log in logs.items()}
    assert timeouts == {cid: int(cid == ran_on) for cid in logs}, timeouts
    # nginx's account agrees: one replica tried, the one that ran it, and the 504 is nginx's.
    (line,) = [entry for entry in stuck_stack.nginx_access_log() if entry["request_id"] == request_id]
    victim = next(replica for replica in replicas if replica.id == ran_on)
    assert line["upstream"] == f"{stuck_stack.address_of(victim)}:8000", line
    assert line["upstream_status"] == "504" and line["status"] == 504, line

    # nginx's JSON 504, at its read timeout.
    assert stuck.status == 504, stuck
    assert stuck.body["error"] == "gateway_timeout"
    assert 1.5 < stuck.elapsed_s < 4, "nginx must answer at its read timeout, before the worker is killed"

    load.report("stuck worker (sync, 3 replicas, 8s request vs 4s timeout): other requests")
    assert len(load.outcomes) >= 70
    assert not load.failures, load.describe_failures()
    assert booted_workers(stuck_stack) == workers_before + 1, "only the stuck worker was replaced"
    assert stuck_stack.get("/api/whoami").status_code == 200
