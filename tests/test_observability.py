"""The observability profile against the composed stack: a real Prometheus finds every web
replica through Docker's DNS and the nginx exporter beside nginx, the counts it returns are
the requests sent, and the metrics port is reachable by nothing outside the stack's network."""

import time

import pytest
import requests

from composed import compose_config_services, composed_stack, free_loopback_port, wait_for

SLEEP_ROUTE = "/api/sleep/<ms>"


@pytest.fixture(scope="module")
def observed_stack():
    env = {"COMPOSE_PROFILES": "observability", "PROMETHEUS_PORT": str(free_loopback_port())}
    with composed_stack("observability", env=env) as composed:
        composed.prometheus = f"http://127.0.0.1:{env['PROMETHEUS_PORT']}"
        yield composed


def query(stack, promql):
    """An instant query through Prometheus's HTTP API: [(labels, value)]."""
    answer = requests.get(f"{stack.prometheus}/api/v1/query", params={"query": promql}, timeout=10).json()
    assert answer["status"] == "success", answer
    return [(result["metric"], float(result["value"][1])) for result in answer["data"]["result"]]


def scalar(stack, promql):
    results = query(stack, f"sum({promql}) or vector(0)")
    return results[0][1]


def targets_up(stack, job):
    answer = requests.get(f"{stack.prometheus}/api/v1/targets", params={"state": "active"}, timeout=10).json()
    return sorted(
        target["labels"]["instance"]
        for target in answer["data"]["activeTargets"]
        if target["labels"]["job"] == job and target["health"] == "up"
    )


def web_addresses(stack):
    return sorted(f"{stack.address_of(container)}:9464" for container in stack.running("web"))


def test_every_replica_and_the_nginx_exporter_are_scraped(observed_stack):
    observed_stack.make("scale", "N=3")
    wait_for(
        lambda: targets_up(observed_stack, "web") == web_addresses(observed_stack),
        deadline_s=30,
        message="the 3 web replicas up as targets",
    )
    assert len(targets_up(observed_stack, "web")) == 3
    wait_for(lambda: targets_up(observed_stack, "nginx"), deadline_s=30, message="the nginx exporter up")
    wait_for(
        lambda: scalar(observed_stack, "nginx_connections_accepted") > 0,
        deadline_s=30,
        message="nginx's stub_status counts read through the exporter",
    )
    assert scalar(observed_stack, "nginx_up") == 1
    # The rules loaded and evaluate without errors.
    rules = requests.get(f"{observed_stack.prometheus}/api/v1/rules", timeout=10).json()["data"]["groups"]
    assert {group["name"] for group in rules} == {
        "flask-stack-recorded",
        "flask-stack-alerts",
        "tls-certificate-alerts",
    }
    # ACME off (no compose.acme.yaml): its job has no target at all, so none is down.
    targets = requests.get(f"{observed_stack.prometheus}/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
    assert not [target for target in targets if target["labels"]["job"] == "acme"]
    for group in rules:
        for rule in group["rules"]:
            assert rule["health"] in ("ok", "unknown"), rule


def test_prometheus_counts_exactly_the_requests_sent(observed_stack):
    counted = f'flask_stack_http_requests_total{{route="{SLEEP_ROUTE}",status="200"}}'
    timed = f'flask_stack_http_request_duration_seconds_count{{route="{SLEEP_ROUTE}"}}'
    before, before_timed = scalar(observed_stack, counted), scalar(observed_stack, timed)
    sent = 0
    for ms in range(1, 6):
        for _ in range(7):
            assert observed_stack.get(f"/api/sleep/{ms}").status_code == 200
            sent += 1
    wait_for(
        lambda: scalar(observed_stack, counted) == before + sent,
        deadline_s=30,
        message=f"Prometheus counting {sent} more sleeps",
    )
    # Scraped again: the count stays exact, and the histogram timed each one.
    time.sleep(6)
    assert scalar(observed_stack, counted) == before + sent
    assert scalar(observed_stack, timed) == before_timed + sent
    # One series per route template, never one per path: /api/sleep/1 ... /api/sleep/5 are one.
    routes = {labels["route"] for labels, _ in query(observed_stack, "flask_stack_http_requests_total")}
    assert not [route for route in routes if route.startswith("/api/sleep/") and route != SLEEP_ROUTE], routes
    # nginx spread them: more than one replica served some.
    per_replica = query(observed_stack, f"sum by (instance) ({counted})")
    assert len([value for _, value in per_replica if value > 0]) > 1, per_replica


def test_scaling_to_5_adds_their_targets_within_30_seconds(observed_stack):
    observed_stack.make("scale", "N=5")
    scaled = time.monotonic()
    wait_for(
        lambda: targets_up(observed_stack, "web") == web_addresses(observed_stack),
        deadline_s=30,
        interval_s=0.5,
        message="5 web targets up",
    )
    assert len(targets_up(observed_stack, "web")) == 5
    print(f"5 web targets up {time.monotonic() - scaled:.1f}s after make scale N=5 returned")


def test_the_metrics_ports_are_not_reachable_from_outside(observed_stack):
    # Through nginx, /metrics is the app's 404, whatever the request names.
    for headers in ({}, {"Host": "web:9464"}):
        response = observed_stack.get("/metrics", headers=headers)
        assert response.status_code == 404
        assert "flask_stack_" not in response.text
    assert observed_stack.get("/stub_status").status_code == 404
    # Nothing publishes the metrics port, nginx's stub_status port or the exporter's.
    for service in ("web", "nginx", "nginx-exporter"):
        for container in observed_stack.running(service):
            container.reload()
            published = {port for port, bindings in container.attrs["NetworkSettings"]["Ports"].items() if bindings}
            assert not published & {"9464/tcp", "8081/tcp", "9113/tcp"}, (service, published)


def test_the_production_overlay_runs_no_observability_unless_asked():
    prod = ("compose.yaml", "compose.prod.yaml")
    assert compose_config_services(*prod) == {"web", "nginx"}
    asked = compose_config_services(*prod, profiles=("observability",))
    assert asked == {"web", "nginx", "prometheus", "nginx-exporter"}
