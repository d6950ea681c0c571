"""`make scale N=3` spreads requests over every replica; nginx follows live, never restarted."""

import time
from collections import Counter

import pytest

from composed import wait_for
from hostile import assert_json_error, assert_security_headers

pytestmark = pytest.mark.worker_count


def make_scale(stack, replicas):
    stack.make("scale", f"N={replicas}", timeout=300)


def hostnames_answering(stack, requests_count):
    return {stack.get("/api/whoami").json()["hostname"] for _ in range(requests_count)}


def nginx_identity(stack):
    (nginx,) = stack.running("nginx")
    nginx.reload()
    return nginx.id, nginx.attrs["State"]["StartedAt"], nginx.attrs["RestartCount"]


def test_scaling_up_is_picked_up_without_restarting_nginx(stack):
    nginx_before = nginx_identity(stack)
    try:
        make_scale(stack, 3)
        scaled_at = time.monotonic()
        replicas = {c.id[:12] for c in stack.running("web")}
        assert len(replicas) == 3

        seen = set()

        def every_replica_answered():
            seen.update(hostnames_answering(stack, 6))
            return seen == replicas

        wait_for(every_replica_answered, deadline_s=15, interval_s=0.1, message="all 3 replicas answering")
        picked_up_after_s = time.monotonic() - scaled_at
        print(f"new replicas answered {picked_up_after_s:.1f}s after `make scale N=3` returned")
        assert picked_up_after_s < 10
        assert nginx_identity(stack) == nginx_before
    finally:
        make_scale(stack, 1)


def test_requests_are_spread_over_three_replicas(stack):
    try:
        make_scale(stack, 3)
        replicas = {c.id[:12] for c in stack.running("web")}
        wait_for(lambda: hostnames_answering(stack, 9) == replicas, deadline_s=15, message="round robin over 3")
        counts = Counter(stack.get("/api/whoami").json()["hostname"] for _ in range(60))
        assert set(counts) == replicas
        # Round robin: no replica gets more than twice its fair share.
        assert max(counts.values()) <= 2 * 60 / 3, counts
    finally:
        make_scale(stack, 1)


def test_no_replica_left_is_a_json_502_with_the_security_headers_and_service_returns(stack):
    try:
        make_scale(stack, 0)

        def nginx_answers_502():
            response = stack.get("/api/whoami")
            # A Response is falsy for error statuses: wrap it to hand it back.
            return [response] if response.status_code == 502 else None

        (response,) = wait_for(nginx_answers_502, deadline_s=15, message="502 with no replicas")
        assert_json_error(response, 502, "bad_gateway")
        assert_security_headers(response)
    finally:
        make_scale(stack, 1)
    wait_for(lambda: stack.get("/api/whoami").status_code == 200, deadline_s=15, message="service back")
