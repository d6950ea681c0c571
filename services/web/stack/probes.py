"""/healthz and the probe endpoints: the test contract, which the stack mounts around any app.

The integration tests, the benchmark and the demo's live page drive these
(docs/configuration.md, "Probes"): identity (whoami), the replica's effective settings
(settings), IO-bound work (sleep), CPU-bound work (compute), request bodies (echo), plus
faults.py and outbound.py when switched on. They are a small Flask app of the stack's
own, so every error on their paths is JSON whatever the user's app does. Only /healthz is
mounted unless APP_PROBES is on: the production overlay leaves the others off.
"""

import hashlib
import json
import os
import socket
import time

from flask import Blueprint, Flask, abort, current_app, jsonify, request
from werkzeug.exceptions import HTTPException, InternalServerError

from .gunicorn_settings import lifecycle_settings_from_env

health = Blueprint("health", __name__)
blueprint = Blueprint("probes", __name__)


def bounded_int(raw, name, upper):
    """Parse a path parameter as an int in [0, upper], or answer 400 saying why."""
    if not raw.isascii() or not raw.isdigit():
        abort(400, description=f"{name} must be a whole number from 0 to {upper}, got {_cut(raw)!r}")
    # Too many digits is too large, decided before int(), which refuses over 4300 digits.
    digits = raw.lstrip("0") or "0"
    if len(digits) > len(str(upper)) or int(digits) > upper:
        abort(400, description=f"{name} must be at most {upper}, got {_cut(digits)}")
    return int(digits)


def _cut(text, longest=40):
    """The client's value for an error message, cut short: a huge one is not echoed whole."""
    return text if len(text) <= longest else f"{text[:longest]}... ({len(text)} characters)"


@health.get("/healthz")
def healthz():
    return jsonify(status="ok")


@blueprint.get("/api/whoami")
def whoami():
    return jsonify(
        hostname=socket.gethostname(),
        version=current_app.config["APP_VERSION"],
        pid=os.getpid(),
        worker_class=os.environ.get("SERVER_WORKER_CLASS", "unknown"),
        request_id=request_id(),
        client_ip=request.remote_addr,
        scheme=request.scheme,
        host=request.host,
    )


@blueprint.get("/api/settings")
def settings():
    """What this replica runs with: gunicorn's effective settings, as gunicorn.conf.py put
    them in SERVER_SETTINGS at start (empty under another server), and the stack's own: its
    limits, and its hooks' drain and recycling settings."""
    config = current_app.config
    hooks = lifecycle_settings_from_env(os.environ)
    return jsonify(
        hostname=socket.gethostname(),
        version=config["APP_VERSION"],
        worker_class=os.environ.get("SERVER_WORKER_CLASS", "unknown"),
        server=json.loads(os.environ.get("SERVER_SETTINGS") or "{}"),
        stack={
            "trusted_proxy_hops": config["TRUSTED_PROXY_HOPS"],
            "max_body_bytes": config["MAX_CONTENT_LENGTH"],
            "sleep_max_ms": config["SLEEP_MAX_MS"],
            "compute_max_rounds": config["COMPUTE_MAX_ROUNDS"],
            "metrics": config["METRICS"],
            **hooks,
        },
    )


@blueprint.get("/api/sleep/<ms>")
def sleep(ms):
    wait_ms = bounded_int(ms, "ms", current_app.config["SLEEP_MAX_MS"])
    started = time.perf_counter()
    # Under the gevent worker time.sleep is patched to yield, like any IO wait would.
    time.sleep(wait_ms / 1000)
    return jsonify(
        slept_ms=wait_ms,
        elapsed_ms=round((time.perf_counter() - started) * 1000, 3),
        **served_by(),
    )


@blueprint.get("/api/compute/<n>")
def compute(n):
    rounds = bounded_int(n, "n", current_app.config["COMPUTE_MAX_ROUNDS"])
    started = time.perf_counter()
    digest = b""
    for _ in range(rounds):
        digest = hashlib.sha256(digest).digest()
    return jsonify(
        rounds=rounds,
        sha256=digest.hex(),
        elapsed_ms=round((time.perf_counter() - started) * 1000, 3),
        **served_by(),
    )


@blueprint.post("/api/echo")
def echo():
    """Report the size and hash of the request body (bodies beyond the limit are a 413)."""
    body = request.get_data(cache=False)
    return jsonify(bytes=len(body), sha256=hashlib.sha256(body).hexdigest())


def served_by():
    """The replica and worker that answered: the live page counts requests by them."""
    return {"hostname": socket.gethostname(), "pid": os.getpid()}


def request_id():
    """The id the stack's RequestId middleware put in the request (request_id.py)."""
    return request.headers.get("X-Request-ID", "")


def json_error(status, error, message):
    body = jsonify(error=error, status=status, message=message, request_id=request_id())
    body.status_code = status
    return body


def _http_error(exc):
    response = json_error(exc.code, _slug(exc.name), exc.description)
    # Keep headers the error carries, such as Allow on a 405.
    for name, value in exc.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def _unexpected_error(exc):
    if isinstance(exc, HTTPException):
        return _http_error(exc)
    # Flask logs an exception only when no handler takes it: this one must, or a 500 leaves
    # no trace in the logs.
    current_app.log_exception((type(exc), exc, exc.__traceback__))
    error = InternalServerError()
    return json_error(error.code, _slug(error.name), "The server could not complete the request.")


def _slug(name):
    return name.lower().replace(" ", "_").replace("'", "")


def create_probes(settings):
    """The stack's own Flask app for /healthz and, when switched on, the probes."""
    from . import faults, outbound

    app = Flask(__name__, static_folder=None)
    app.config.update(settings)
    app.register_blueprint(health)
    if settings["PROBES"]:
        app.register_blueprint(blueprint)
        if settings["FAULT_INJECTION"]:
            app.register_blueprint(faults.blueprint)
        if settings["OUTBOUND_URL"]:
            app.register_blueprint(outbound.blueprint)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
    return app


def mounts(app):
    """The paths the probes answer: each route's first two segments (/healthz, /api/sleep)."""
    return sorted({"/".join(rule.rule.split("/")[:3]) for rule in app.url_map.iter_rules()})
