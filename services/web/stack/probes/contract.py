"""The probe endpoints of the test contract (docs/configuration.md, "Probes"): identity
(whoami), the replica's effective settings (settings), IO-bound work (sleep), CPU-bound
work (compute) and request bodies (echo). The integration tests, the benchmark and the
demo's live page drive them.
"""

import hashlib
import json
import os
import socket
import time

from flask import Blueprint, current_app, jsonify, request

from ..settings import hook_settings
from .answers import bounded_int, request_id, served_by

blueprint = Blueprint("probes", __name__)


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
    hooks = hook_settings(config)
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
