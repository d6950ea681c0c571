"""The replica's Prometheus metrics, summed over gunicorn's workers by prometheus_client's
multiprocess mode: each process writes its values to files in PROMETHEUS_MULTIPROC_DIR
(a folder in /dev/shm, Docker's own tmpfs, which a read-only root leaves writable), and
the exporter (metrics_exporter.py, its own process and port) reads them all.

- RequestMetrics, WSGI middleware around the whole stack, counts each request by method,
  route template and status, times it until its last byte is handed to gunicorn, and keeps
  the number in flight. The route is Flask's rule (`/api/sleep/<ms>`), never the path,
  so a client cannot mint series; a request Flask did not route is `unmatched`.
  What it costs a request is part of the stack's overhead, so it does the least it can:
  it keeps each label set's child (labels() takes a lock and builds a key every call),
  and counts the requests in flight in the worker's memory, where sample_in_flight, once
  a second from a thread gunicorn.conf.py starts in each worker, sets the gauge: two file
  writes a request fewer, for a gauge at most a second old (bench/README.md, "Metrics").
- gunicorn.conf.py's hooks count workers leaving, and why a worker was recycled.

Names follow https://prometheus.io/docs/practices/naming/ and are prefixed with the stack's.
"""

import itertools
import sys
import threading
import time

from prometheus_client import Counter, Gauge, Histogram

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
# files (mark_process_dead in gunicorn's child_exit hook). Set once a second (sample_in_flight).
IN_FLIGHT = Gauge("flask_stack_http_requests_in_flight", "Requests being served", multiprocess_mode="livesum")
# How often each worker sets its share of the gauge.
IN_FLIGHT_SAMPLE_SECONDS = 1.0
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
        # (method, route, status) -> (its counter child, its histogram child). Bounded as the
        # labels are: methods by METHODS, routes by the app's rules, statuses by three digits.
        self.children = {}
        # Requests started and finished in this worker. next() on a count is one C call, safe
        # from any thread: gthread workers' threads share these without a lock.
        self.started = itertools.count()
        self.finished = itertools.count()

    def in_flight(self):
        """The requests this worker is serving. Each count moves on by one here too, which
        leaves their difference as it was."""
        return next(self.started) - next(self.finished)

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
            key = (method, answer["route"], answer["status"])
            children = self.children.get(key)
            if children is None:
                children = self.children[key] = (REQUESTS.labels(*key), LATENCY.labels(method, answer["route"]))
            children[0].inc()
            children[1].observe(self.clock() - started)
            next(self.finished)

        next(self.started)
        try:
            body = self.app(environ, recording_start_response)
        except BaseException:
            finished()
            raise
        # gunicorn closes every response body once it is sent (PEP 3333): that is the end.
        return Body(body, finished)


class Body:
    """A response body whose close() also runs `when_closed`. Iterating it iterates the
    app's own body: the server gets the app's iterator, and no call is added per chunk."""

    def __init__(self, body, when_closed):
        self.body = body
        self.when_closed = when_closed

    def __iter__(self):
        return iter(self.body)

    def close(self):
        try:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
        finally:
            self.when_closed()


def sample_in_flight(request_metrics, every_s=IN_FLIGHT_SAMPLE_SECONDS, stop=None):
    """Set this worker's share of the in-flight gauge every `every_s` until `stop` is set."""
    stop = stop or threading.Event()
    while True:
        IN_FLIGHT.set(request_metrics.in_flight())
        if stop.wait(every_s):
            return


def start_sampling_in_flight(app, stop=None):
    """In a worker, after its fork: a greenlet under gevent's patches, a daemon thread
    otherwise, that keeps the gauge for `app`, the stack's entry point, when its metrics are
    on (RequestMetrics is then its outermost layer, wrapping.py), until `stop` is set or the
    worker exits. Returns the greenlet or thread, or None."""
    if not isinstance(app, RequestMetrics):
        return None
    arguments = (app, IN_FLIGHT_SAMPLE_SECONDS, stop)
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("threading"):
        # Not a patched threading.Thread: from Python 3.14 a thread names its OS thread when
        # it starts, and a patched one runs on the worker's main thread, so the worker itself
        # would take the name in ps and top (and pkill gunicorn would miss it).
        import gevent

        return gevent.spawn(sample_in_flight, *arguments)
    thread = threading.Thread(target=sample_in_flight, args=arguments, name="in-flight gauge", daemon=True)
    thread.start()
    return thread
