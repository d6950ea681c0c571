"""The request metrics (stack/metrics.py) inside the stack, in one process: labels by route
template, bounded methods, statuses, latency and the in-flight gauge. The multiprocess side,
across real gunicorn workers, is in test_gunicorn_lifecycle.py.

A request is counted when its response body is closed, as gunicorn does once it is sent:
`buffered=True` makes the test client read and close it."""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from flask import Flask
from prometheus_client import REGISTRY

from stack.metrics import Body, RequestMetrics, sample_in_flight, start_sampling_in_flight

WEB_DIR = Path(__file__).resolve().parents[1]


def count(route, status, method="GET"):
    labels = {"method": method, "route": route, "status": status}
    return REGISTRY.get_sample_value("flask_stack_http_requests_total", labels) or 0


def latency_count(route, method="GET"):
    labels = {"method": method, "route": route}
    return REGISTRY.get_sample_value("flask_stack_http_request_duration_seconds_count", labels) or 0


@pytest.fixture
def app():
    app = Flask("metered")

    @app.get("/orders/<int:order_id>")
    def order(order_id):
        return {"order": order_id}

    @app.get("/broken")
    def broken():
        raise RuntimeError("the app failed")

    return app


def test_requests_are_counted_by_route_template_never_by_path(wrapped, app):
    client = wrapped(app, PROBES=False)
    before = count("/orders/<int:order_id>", "200")
    for order_id in (1, 2, 3, 40000):
        assert client.get(f"/orders/{order_id}", buffered=True).status_code == 200
    assert count("/orders/<int:order_id>", "200") - before == 4
    paths = {sample.labels.get("route") for metric in REGISTRY.collect() for sample in metric.samples}
    assert not {path for path in paths if path and path.startswith("/orders/") and "<" not in path}


def test_unrouted_requests_share_one_series_and_odd_methods_are_other(wrapped, app):
    client = wrapped(app, PROBES=False)
    before_404, before_other = count("unmatched", "404"), count("unmatched", "405", method="other")
    for path in ("/a", "/b/c", "/d?e=f"):
        assert client.get(path, buffered=True).status_code == 404
    assert client.open("/orders/1", method="BREW", buffered=True).status_code == 405
    assert count("unmatched", "404") - before_404 == 3
    assert count("unmatched", "405", method="other") - before_other == 1


def test_the_probes_and_errors_are_counted_with_their_status(wrapped, app):
    client = wrapped(app, PROBES=True)
    before_sleep = count("/api/sleep/<ms>", "200")
    before_broken = count("/broken", "500")
    before_latency = latency_count("/api/sleep/<ms>")
    assert client.get("/api/sleep/1", buffered=True).status_code == 200
    assert client.get("/broken", buffered=True).status_code == 500
    assert count("/api/sleep/<ms>", "200") - before_sleep == 1
    assert latency_count("/api/sleep/<ms>") - before_latency == 1
    assert count("/broken", "500") - before_broken == 1
    # Both have finished, the failed one too: neither is left counted in flight.
    assert client.application.in_flight() == 0


def test_a_request_is_in_flight_until_its_body_is_closed_and_the_gauge_takes_the_workers_count(wrapped, app):
    client = wrapped(app, PROBES=False)
    metered = client.application
    assert isinstance(metered, RequestMetrics)
    response = client.get("/orders/5")
    assert metered.in_flight() == 1
    # Reading the count leaves it as it is.
    assert metered.in_flight() == 1
    stop = threading.Event()
    sampler = threading.Thread(target=sample_in_flight, args=(metered, 0.01, stop))
    sampler.start()
    try:
        deadline = time.monotonic() + 5
        while REGISTRY.get_sample_value("flask_stack_http_requests_in_flight") != 1:
            assert time.monotonic() < deadline, "the sampler never set the gauge"
            time.sleep(0.01)
        response.close()
        assert metered.in_flight() == 0
        while REGISTRY.get_sample_value("flask_stack_http_requests_in_flight") != 0:
            assert time.monotonic() < deadline, "the gauge never went back to 0"
            time.sleep(0.01)
    finally:
        stop.set()
        sampler.join(timeout=5)
    assert not sampler.is_alive()


def test_the_body_hands_the_server_the_apps_own_iterator_and_closes_both():
    closed = []

    class AppBody:
        def __init__(self):
            self.chunks = iter([b"a", b"b"])

        def __iter__(self):
            return self.chunks

        def close(self):
            closed.append("app")

    app_body = AppBody()
    body = Body(app_body, lambda: closed.append("metrics"))
    assert iter(body) is app_body.chunks
    assert b"".join(body) == b"ab"
    body.close()
    assert closed == ["app", "metrics"]


def test_the_request_is_counted_even_when_the_apps_close_raises():
    counted = []

    class FailingClose(list):
        def close(self):
            raise RuntimeError("close failed")

    body = Body(FailingClose([b"x"]), lambda: counted.append(1))
    with pytest.raises(RuntimeError):
        body.close()
    assert counted == [1]


def test_sampling_starts_only_for_a_metered_entry_point_and_stops_when_told(wrapped, app):
    stop = threading.Event()
    assert start_sampling_in_flight(wrapped(app, PROBES=False, METRICS=False).application, stop) is None
    thread = start_sampling_in_flight(wrapped(app, PROBES=False).application, stop)
    assert thread is not None and thread.daemon and thread.is_alive()
    stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive()


SAMPLES_IN_A_GREENLET = """
from gevent import monkey

monkey.patch_all()
import threading

import gevent
from prometheus_client import REGISTRY
from stack.metrics import RequestMetrics, start_sampling_in_flight

metered = RequestMetrics(lambda environ, start_response: [])
next(metered.started), next(metered.started)  # two requests in flight
stop = threading.Event()
sampler = start_sampling_in_flight(metered, stop)
gevent.sleep(0.05)
sampled = REGISTRY.get_sample_value("flask_stack_http_requests_in_flight")
stop.set()
sampler.join(timeout=5)
print(isinstance(sampler, gevent.Greenlet), sampled, sampler.dead)
"""


def test_under_gevents_patches_the_gauge_is_sampled_by_a_greenlet_not_a_thread_that_renames_the_worker():
    # Python 3.14's threads name their OS thread as they start; a patched one runs on the
    # worker's own thread, which ps and top would then show by the sampler's name.
    result = subprocess.run(
        [sys.executable, "-c", SAMPLES_IN_A_GREENLET], cwd=WEB_DIR, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "2.0", "True"]


def test_metrics_off_counts_nothing(wrapped, app):
    client = wrapped(app, PROBES=False, METRICS=False)
    before = count("/orders/<int:order_id>", "200")
    assert client.get("/orders/7", buffered=True).status_code == 200
    assert count("/orders/<int:order_id>", "200") == before


def test_the_app_does_not_serve_metrics(wrapped, app):
    assert wrapped(app, PROBES=False).get("/metrics").status_code == 404


ENTRY_POINT_SERVES = """
from werkzeug.test import Client
import stack.wsgi
response = Client(stack.wsgi.application).get("/healthz")
print(response.status_code, stack.wsgi.settings["METRICS"])
"""


@pytest.mark.parametrize("folder", ["", "/nonexistent/metrics"])
def test_the_entry_point_serves_without_metrics_under_another_server(folder):
    """flask run, waitress or uWSGI load stack.wsgi without gunicorn.conf.py, which makes the
    multiprocess folder: the stack serves, and counts nothing nobody would export."""
    environ = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": folder, "APP_METRICS": "on"}
    result = subprocess.run(
        [sys.executable, "-c", ENTRY_POINT_SERVES], cwd=WEB_DIR, env=environ, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["200", "False"]
