"""Test-only endpoints that misbehave on purpose, for the reliability tests.

Mounted only when APP_PROBES and APP_FAULT_INJECTION are on; production enables neither.
"""

import logging
import os
import time

from flask import Blueprint, jsonify

from .answers import bounded_int, request_id

blueprint = Blueprint("faults", __name__, url_prefix="/api/faults")
log = logging.getLogger("gunicorn.error")

# Never freed: the leak the worker memory ceiling must contain.
_leaked = []
LEAK_MAX_KIB = 10 * 1024


@blueprint.get("/leak/<kib>")
def leak(kib):
    """Keep `kib` KiB of this worker's memory forever (touched, so it is resident)."""
    size = bounded_int(kib, "kib", LEAK_MAX_KIB) * 1024
    _leaked.append(b"\xa5" * size)
    return jsonify(pid=os.getpid(), leaked_kib=sum(map(len, _leaked)) // 1024)


@blueprint.post("/side-effect/<ms>")
def side_effect(ms):
    """Record a side effect in the log, then take `ms` milliseconds to answer."""
    wait_ms = bounded_int(ms, "ms", 60_000)
    log.info("side effect executed request_id=%s pid=%s", request_id(), os.getpid())
    time.sleep(wait_ms / 1000)
    return jsonify(executed=True, request_id=request_id())
