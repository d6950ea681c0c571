"""The JSON endpoints of the contract: health, identity, IO-bound and CPU-bound work."""

import hashlib
import os
import socket
import time

from flask import Blueprint, abort, current_app, jsonify, request

from . import request_id

blueprint = Blueprint("api", __name__)


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


@blueprint.get("/healthz")
def healthz():
    return jsonify(status="ok")


@blueprint.get("/api/whoami")
def whoami():
    return jsonify(
        hostname=socket.gethostname(),
        version=current_app.config["APP_VERSION"],
        pid=os.getpid(),
        worker_class=os.environ.get("SERVER_WORKER_CLASS", "unknown"),
        request_id=request_id.current(),
        client_ip=request.remote_addr,
        scheme=request.scheme,
        host=request.host,
    )


@blueprint.get("/api/sleep/<ms>")
def sleep(ms):
    wait_ms = bounded_int(ms, "ms", current_app.config["SLEEP_MAX_MS"])
    started = time.perf_counter()
    # Under the gevent worker time.sleep is patched to yield, like any IO wait would.
    time.sleep(wait_ms / 1000)
    return jsonify(slept_ms=wait_ms, elapsed_ms=round((time.perf_counter() - started) * 1000, 3))


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
    )


@blueprint.post("/api/echo")
def echo():
    """Report the size and hash of the request body (bodies beyond the limit are a 413)."""
    body = request.get_data(cache=False)
    return jsonify(bytes=len(body), sha256=hashlib.sha256(body).hexdigest())
