"""The replica's Prometheus metrics, summed over gunicorn's workers by prometheus_client's
multiprocess mode: each process writes its values to files in PROMETHEUS_MULTIPROC_DIR
(a folder in /dev/shm, Docker's own tmpfs, which a read-only root leaves writable), and
the exporter (metrics_exporter.py, its own process and port) reads them all.

- RequestMetrics, WSGI middleware around the whole stack, counts each request by method,
  route template and status, times it until its last byte is handed to gunicorn, and keeps
  the number in flight. The route is Flask's rule (`/api/sleep/<ms>`), never the path,
  so a client cannot mint series; a request Flask did not route is `unmatched`.
- gunicorn.conf.py's hooks count workers leaving, and why a worker was recycled.

Names follow https://prometheus.io/docs/practices/naming/ and are prefixed with the stack's.
"""

import time

from prometheus_client import Counter, Gauge, Histogram
from werkzeug.wsgi import ClosingIterator

# Any other method (nginx passes any of 3 to 20 capitals) is counted as "other": a label
# value per made-up method would let clients grow the series without bound.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"
# From a static-speed answer (a few ms) through the probes' sleeps to nginx's read timeout
# (NGINX_PROXY_READ_TIMEOUT, 25 s), about 2.5x apart: p99 is read off within a bucket's width.
LATENCY_BUCKETS = (0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0)

REQUESTS = Counter(
    "flask_stack_http_requests",
    "Requests answered, by method, route template and status",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "flask_stack_http_request_duration_seconds",
    "Time from the request reaching the stack to its response's last byte, by method and route template",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)
# livesum: the sum over the workers that are alive; a dead worker's share is dropped with its
# files (mark_process_dead in gunicorn's child_exit hook).
IN_FLIGHT = Gauge("flask_stack_http_requests_in_flight", "Requests being served", multiprocess_mode="livesum")
WORKER_EXITS = Counter("flask_stack_worker_exits", "Workers that exited, for any reason (counted by the master)")
WORKER_RECYCLES = Counter(
    "flask_stack_worker_recycles", "Workers the stack recycled, by reason: max_requests or memory", ["reason"]
)
# Both reasons exported from the start, at 0, so rules can subtract them before any recycle.
for _reason in ("max_requests", "memory"):
    WORKER_RECYCLES.labels(_reason)


def route_of(environ):
    """The Flask rule that served the request, from the request object Werkzeug keeps in the
    environ (its documented `werkzeug.request` key). Flask clears that key once the request's
    context ends, so this is read while the response starts, inside it."""
    request = environ.get("werkzeug.request")
    rule = getattr(request, "url_rule", None)
    return rule.rule if rule is not None else UNMATCHED


class RequestMetrics:
    def __init__(self, app, clock=time.perf_counter):
        self.app = app
        self.clock = clock

    def __call__(self, environ, start_response):
        started = self.clock()
        # What a request that raised before answering is counted as.
        answer = {"status": "500", "route": UNMATCHED}

        def recording_start_response(status_line, headers, exc_info=None):
            answer["status"] = status_line[:3]
            answer["route"] = route_of(environ)
            return start_response(status_line, headers, exc_info)

        def finished():
            method = environ.get("REQUEST_METHOD", "")
            method = method if method in METHODS else "other"
            REQUESTS.labels(method, answer["route"], answer["status"]).inc()
            LATENCY.labels(method, answer["route"]).observe(self.clock() - started)
            IN_FLIGHT.dec()

        IN_FLIGHT.inc()
        try:
            body = self.app(environ, recording_start_response)
        except BaseException:
            finished()
            raise
        # gunicorn closes every response body once it is sent (PEP 3333): that is the end.
        return ClosingIterator(body, finished)
